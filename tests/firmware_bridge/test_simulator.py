"""Simulated kits: real pseudo-terminals read with pyserial and decoded with our decoders."""

from __future__ import annotations

import math
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import serial

from firmware_bridge.sensors import NoFix, WarmingUp
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator import ROUTES, Kit, Route, World, start_kits
from firmware_bridge.simulator.routes import METRES_PER_DEGREE

FAST = 25.0  # [Hz] ticks per second in pty tests


class ManualClock:
    """A clock that only moves when the test says so; its sleep really sleeps a little."""

    def __init__(self, start: float = 1_795_000_000.0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        time.sleep(0.002)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    east = (b[1] - a[1]) * METRES_PER_DEGREE * math.cos(math.radians(a[0]))
    return math.hypot(east, (b[0] - a[0]) * METRES_PER_DEGREE)


def read_pms_frames(port: serial.Serial, n: int, timeout: float = 3.0) -> list[bytes]:
    frames: list[bytes] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        buf += port.read(64)
        while True:
            frame, buf = pms5003.find_frame(buf)
            if frame is None:
                break
            frames.append(frame)
    return frames


def read_lines(port: serial.Serial, n: int, timeout: float = 3.0) -> list[bytes]:
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        line = port.readline()
        if line.endswith(b"\n"):
            lines.append(line)
    return lines


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    with Kit("kit01", "versailles-chateau", seed=7, device_dir=tmp_path, rate_hz=FAST) as running:
        yield running


@pytest.fixture
def manual_kit(tmp_path: Path) -> Iterator[tuple[Kit, ManualClock]]:
    clock = ManualClock()
    with Kit("kit02", "rambouillet-parc", seed=3, device_dir=tmp_path, rate_hz=1.0, clock=clock,
             sleep=clock.sleep, pms_warmup_frames=3, gps_fix_after=3) as running:
        yield running, clock


# ------------------------------------------------------------------ over pseudo-terminals
def test_a_kit_exposes_one_stable_link_per_sensor_and_removes_them_when_stopped(tmp_path: Path) -> None:
    kit = Kit("kit09", "saint-germain-terrasse", seed=1, device_dir=tmp_path / "dev")
    assert kit.paths == {s: str(tmp_path / "dev" / f"kit09-{s}") for s in ("pms5003", "mhz19", "nmea")}
    with kit:
        for path in kit.paths.values():
            assert os.readlink(path).startswith("/dev/pts/")
    assert not any(os.path.lexists(p) for p in kit.paths.values())


def test_pms5003_frames_read_with_pyserial_decode_to_plausible_ordered_values(kit: Kit) -> None:
    with serial.Serial(kit.paths["pms5003"], 9600, timeout=0.2) as port:
        frames = read_pms_frames(port, 8)
    assert len(frames) == 8
    for frame in frames:
        v = pms5003.decode(frame).values
        assert 1 <= v["pm2_5"] <= 300
        assert v["pm1"] < v["pm2_5"] < v["pm10"]
        assert v["pn0_3"] >= v["pn0_5"] >= v["pn1"] >= v["pn2_5"] >= v["pn5"] >= v["pn10"]
        assert v["pn0_3"] > 50 * v["pm1"]
        for name in ("pm1", "pm2_5", "pm10"):
            if v[name] <= 30:
                assert v[f"{name}_cf1"] == v[name]
            else:
                assert v[f"{name}_cf1"] > v[name]


def test_mhz19_answers_each_read_command_it_receives_and_nothing_else(kit: Kit) -> None:
    with serial.Serial(kit.paths["mhz19"], 9600, timeout=0.3) as port:
        assert port.read(9) == b""  # silent until asked
        answers = []
        for _ in range(3):
            port.write(mhz19.READ_COMMAND)
            answers.append(port.read(9))
        port.write(mhz19.READ_COMMAND[:8] + b"\x00")  # corrupted: no answer
        assert port.read(9) == b""
    for answer in answers:
        obs = mhz19.decode(answer)
        assert 400 <= obs.values["co2"] <= 2000
        assert -10 <= obs.values["temperature"] <= 45
    assert kit.counts["mhz19_requests"] == 3
    assert kit.counts["mhz19"] == 3


def test_gps_sentences_decode_and_the_position_moves_along_the_route(kit: Kit) -> None:
    with serial.Serial(kit.paths["nmea"], 9600, timeout=0.2) as port:
        lines = read_lines(port, 60)
    fixes = [nmea0183.decode(line) for line in lines]
    gga = [o for o in fixes if "fix_quality" in o.values]
    rmc = [o for o in fixes if o.time is not None]
    assert len(gga) >= 25 and len(rmc) >= 25
    first, last = gga[0].values, gga[-1].values
    assert distance_m((first["latitude"], first["longitude"]), (last["latitude"], last["longitude"])) > 15
    assert all(48.79 < o.values["latitude"] < 48.82 and 2.10 < o.values["longitude"] < 2.15 for o in fixes)
    assert all(0.8 < o.values["speed"] < 1.8 for o in rmc)
    assert rmc[-1].time is not None
    assert abs((datetime.now(timezone.utc) - rmc[-1].time).total_seconds()) < 5


def test_ticks_follow_the_injected_clock_and_counts_are_the_ground_truth(
        manual_kit: tuple[Kit, ManualClock]) -> None:
    kit, clock = manual_kit
    start = clock()  # tick 0 was sent by start(); pyserial flushes it when it opens the port
    with serial.Serial(kit.paths["pms5003"], 9600, timeout=0.1) as pms, \
            serial.Serial(kit.paths["nmea"], 9600, timeout=0.1) as gps:
        frames: list[bytes] = []
        for _ in range(4):
            clock.advance(1.0)
            frames += read_pms_frames(pms, 1)
        assert read_pms_frames(pms, 1, timeout=0.3) == []  # the clock stands still: nothing more
        lines = read_lines(gps, 8)
    assert len(frames) == 4 and len(lines) == 8
    for frame in frames[:2]:  # ticks 1 and 2: the fan is still spinning up
        with pytest.raises(WarmingUp):
            pms5003.decode(frame)
    assert all(pms5003.decode(f).values["pm2_5"] > 0 for f in frames[2:])
    assert kit.counts["pms5003_warming_up"] == 3 and kit.counts["pms5003"] == 2
    for line in lines[:4]:  # ticks 1 and 2: no fix yet
        with pytest.raises(NoFix):
            nmea0183.decode(line)
    rmc = [nmea0183.decode(line) for line in lines[4:] if b"RMC" in line]
    assert [o.time for o in rmc] == [datetime.fromtimestamp(start + s, timezone.utc) for s in (3, 4)]
    assert kit.counts["nmea_no_fix"] == 6 and kit.counts["nmea"] == 4


def test_pms5003_obeys_passive_mode_and_answers_a_passive_read(manual_kit: tuple[Kit, ManualClock]) -> None:
    kit, clock = manual_kit
    with serial.Serial(kit.paths["pms5003"], 9600, timeout=0.3) as port:
        port.write(pms5003.PASSIVE_MODE)
        assert port.read(8) == pms5003.encode_ack(0xE1, 0)
        clock.advance(1.0)
        assert port.read(32) == b""  # passive: no frame on its own
        answers = []
        for _ in range(3):  # two warm-up frames are left after tick 0, then data
            port.write(pms5003.PASSIVE_READ)
            answers.append(port.read(32))
        for answer in answers[:2]:
            with pytest.raises(WarmingUp):
                pms5003.decode(answer)
        assert pms5003.decode(answers[2]).values["pm10"] > 0
        port.write(pms5003.ACTIVE_MODE)
        assert port.read(8) == pms5003.encode_ack(0xE1, 1)
        clock.advance(1.0)
        assert len(read_pms_frames(port, 1)) == 1


def test_replug_breaks_the_open_port_and_the_link_leads_to_the_new_device(kit: Kit) -> None:
    link = kit.paths["pms5003"]
    with serial.Serial(link, 9600, timeout=0.2) as port:
        assert read_pms_frames(port, 1)
        kit.replug("pms5003")
        with pytest.raises(serial.SerialException):
            for _ in range(20):
                port.read(64)
    with serial.Serial(link, 9600, timeout=0.2) as port:
        assert read_pms_frames(port, 2)
    kit.unplug("nmea")
    assert not os.path.lexists(kit.paths["nmea"])
    kit.plug("nmea")
    with serial.Serial(kit.paths["nmea"], 9600, timeout=0.2) as port:
        assert nmea0183.decode(read_lines(port, 1)[0]).sensor == "nmea-gps"


def test_start_kits_puts_kits_on_different_routes_and_starting_points(tmp_path: Path) -> None:
    kits = start_kits(5, tmp_path, seed=11, rate_hz=FAST)
    try:
        assert [k.name for k in kits] == ["kit01", "kit02", "kit03", "kit04", "kit05"]
        assert len({k.route.name for k in kits}) == 4
        assert kits[4].route == kits[0].route
        positions = [(k.world.walker.position().latitude, k.world.walker.position().longitude) for k in kits]
        assert distance_m(positions[0], positions[4]) > 200
        assert len({p for k in kits for p in k.paths.values()}) == 15
    finally:
        for k in kits:
            k.stop()


def test_a_kit_refuses_a_bad_name_an_unknown_route_and_a_null_rate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kit name"):
        Kit("Kit 1", "versailles-chateau", 0, tmp_path)
    with pytest.raises(ValueError, match="versailles-chateau"):
        Kit("kit01", "paris", 0, tmp_path)
    with pytest.raises(ValueError, match="rate_hz"):
        Kit("kit01", "versailles-chateau", 0, tmp_path, rate_hz=0)


# ------------------------------------------------------------------ the world model, without ptys
def test_the_world_is_deterministic_with_a_seed() -> None:
    route = ROUTES["saint-germain-terrasse"]
    a, b, c = World(route, 5), World(route, 5), World(route, 6)
    series_a = [a.step() for _ in range(300)]
    assert series_a == [b.step() for _ in range(300)]
    assert series_a != [c.step() for _ in range(300)]


def test_a_loop_of_versailles_has_traffic_peaks_and_stuffy_rooms() -> None:
    route = ROUTES["versailles-chateau"]
    world = World(route, 42)
    stops = sum(w.stop_s for w in route.waypoints)
    states = [world.step() for _ in range(int(route.length / route.speed + stops))]
    traffic = [s.pm["pm2_5"] for s in states if s.traffic]
    park = [s.pm["pm2_5"] for s in states[60:] if not s.traffic and not s.indoor and s.speed > 0]
    assert sum(traffic) / len(traffic) > 1.8 * sum(park) / len(park)
    assert 5 <= sorted(park)[len(park) // 2] <= 14
    indoor_co2 = [s.co2 for s in states if s.indoor]
    assert 950 <= max(indoor_co2) <= 1600
    last_indoor = 0
    for s in states:
        if s.indoor:
            last_indoor = s.tick
        elif s.tick - last_indoor > 300:
            assert 405 <= s.co2 <= 465
    for s in states:
        pm = s.pm
        assert pm["pm1"] < pm["pm2_5"] < pm["pm10"]
        assert pm["pn0_3"] >= pm["pn0_5"] >= pm["pn1"] >= pm["pn2_5"] >= pm["pn5"] >= pm["pn10"]
        assert 5 <= s.temperature <= 30
        assert (s.course is None) == (s.speed < 0.5)
    moving = [s.speed for s in states if s.course is not None]
    assert 1.2 < sum(moving) / len(moving) < 1.4


@pytest.mark.parametrize("route", list(ROUTES.values()), ids=list(ROUTES))
def test_every_route_is_a_plausible_loop_in_the_yvelines(route: Route) -> None:
    for w in route.waypoints:
        assert 48.43 < w.latitude < 49.09 and 1.44 < w.longitude < 2.23, w.name
    assert 2000 < route.length < 8000
    assert any(w.indoor and w.stop_s >= 120 for w in route.waypoints)
    assert any(w.traffic for w in route.waypoints)
    assert all(leg.length < 1200 for leg in route.legs)
