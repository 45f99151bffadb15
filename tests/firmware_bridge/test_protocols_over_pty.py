"""Every registered protocol, end to end: an emulated sensor on a real pseudo-terminal, read by the real reader.

Each emulator starts in the state a careless earlier program would leave a
sensor in (asleep, in the other mode, not measuring): the observations only
come if the protocol's start-up commands and polling work as on the wire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Self

import pytest
from harness import wait_until

from firmware_bridge.reader import SerialReader
from firmware_bridge.sensors import PROTOCOLS, Observation
from firmware_bridge.sensors.plantower import pms3003, pms5003, pms5003s, pms5003st, pms5003t
from firmware_bridge.sensors.senseair import s8
from firmware_bridge.sensors.sensirion import sps30
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator.emulators import (
    EmulatorPort, KitlineEmulator, Mhz19Emulator, NmeaEmulator, PlantowerEmulator, S8Emulator, Scd30Emulator,
    Sds011Emulator, Sps30Emulator,
)
from firmware_bridge.simulator.pty import PtyPort

PMS = {"pm1_cf1": 9, "pm2_5_cf1": 14, "pm10_cf1": 17, "pm1": 9, "pm2_5": 14, "pm10": 17,
       "pn0_3": 1520, "pn0_5": 433, "pn1": 71, "pn2_5": 9, "pn5": 2, "pn10": 1}
PMS_T = {**{k: PMS[k] for k in pms5003t.PARTICLES}, "temperature": -3.5, "relative_humidity": 81.2}
PMS_ST = {**PMS, "hcho": 0.021, "temperature": 21.2, "relative_humidity": 22.4}
PMS_S = {**PMS, "hcho": 0.008}
PMS_3003 = {k: PMS[k] for k in pms3003.FIELDS}
# Values a float32 carries exactly, so the decoded floats compare equal.
SPS = {"pm1": 6.5, "pm2_5": 9.25, "pm4": 10.5, "pm10": 10.75, "nc0_5": 44.0, "nc1": 53.5, "nc2_5": 55.5,
       "nc4": 55.875, "nc10": 56.0, "typical_particle_size": 0.75}
VERSAILLES = (48.804865, 2.120355)
KIT = [("sensirion-sgp40", {"voc_index": 112.0}, "csv"),
       ("bosch-bme280", {"temperature": 21.43, "relative_humidity": 48.2, "pressure": 1009.8}, "csv"),
       ("sensirion-scd41", {"co2": 612.0, "temperature": 22.1, "relative_humidity": 45.3}, "json")]


def plantower(frame: Callable[[], bytes], zeros: bytes, **state: bool) -> PlantowerEmulator:
    return PlantowerEmulator(frame, zeros, warmup=2, **state)


def passive_pms() -> PlantowerEmulator:
    return plantower(lambda: pms5003.encode(PMS), pms5003.WARMING_UP_FRAME, active=True, asleep=False)


@dataclass
class Case:
    """An emulator, the observations that must arrive (sensor, values), and the state it must be left in."""

    emulator: Callable[[], object]
    expect: list[tuple[str, dict[str, float]]]
    state: Callable[[object], bool] = field(default=lambda emulator: True)
    waits: bool | None = False  # None: depends on timing, not checked  # warm-up or "no data yet" answers are expected first


def pms_case(sensor: str) -> Case:
    return Case(lambda: plantower(lambda: pms5003.encode(PMS), pms5003.WARMING_UP_FRAME),
                [(sensor, PMS)], lambda e: e.active and not e.asleep, waits=True)


CASES: dict[str, Case] = {
    "pms5003": pms_case("plantower-pms5003"),
    "pms7003": pms_case("plantower-pms7003"),
    "pmsa003": pms_case("plantower-pmsa003"),
    "pms5003-passive": Case(passive_pms, [("plantower-pms5003", PMS)], lambda e: not e.active),
    "pms5003t": Case(lambda: plantower(lambda: pms5003t.encode(PMS_T), pms5003t.encode(dict.fromkeys(PMS_T, 0))),
                     [("plantower-pms5003t", PMS_T)], lambda e: e.active and not e.asleep, waits=True),
    "pms5003st": Case(lambda: plantower(lambda: pms5003st.encode(PMS_ST),
                                        pms5003st.encode(dict.fromkeys(PMS_ST, 0))),
                      [("plantower-pms5003st", PMS_ST)], lambda e: e.active and not e.asleep, waits=True),
    "pms5003s": Case(lambda: plantower(lambda: pms5003s.encode(PMS_S), pms5003s.encode(dict.fromkeys(PMS_S, 0))),
                     [("plantower-pms5003s", PMS_S)], lambda e: e.active and not e.asleep, waits=True),
    # A PMS3003 takes no command: it streams from power-on, and opening the port sends nothing.
    "pms3003": Case(lambda: plantower(lambda: pms3003.encode(PMS_3003, reserved=(0, 0, 0x51)), pms3003.encode(
        dict.fromkeys(PMS_3003, 0)), active=True, asleep=False, commands=False), [("plantower-pms3003", PMS_3003)]),
    "sds011": Case(lambda: Sds011Emulator(12.3, 20.1), [("novafitness-sds011", {"pm2_5": 12.3, "pm10": 20.1})],
                   lambda e: e.active and e.working),
    "sds011-query": Case(lambda: Sds011Emulator(12.3, 20.1, active=True),
                         [("novafitness-sds011", {"pm2_5": 12.3, "pm10": 20.1})], lambda e: e.working and not e.active),
    "sds021": Case(lambda: Sds011Emulator(4.2, 6.0), [("novafitness-sds021", {"pm2_5": 4.2, "pm10": 6.0})],
                   lambda e: e.active and e.working),
    # Left asleep by another program: only the 0xFF byte and wake-up reach it.
    # (whether the first read comes before the first measurement after the start-up commands is timing)
    "sps30": Case(lambda: Sps30Emulator(SPS, asleep=True), [("sensirion-sps30", SPS)],
                  lambda e: e.output_format == sps30.FLOAT_FORMAT, waits=None),
    "mhz19": Case(lambda: Mhz19Emulator(612, 24), [("winsen-mhz19", {"co2": 612.0, "temperature": 24.0})],
                  lambda e: not e.abc),
    "mhz19-abc": Case(lambda: Mhz19Emulator(431, 19), [("winsen-mhz19", {"co2": 431.0, "temperature": 19.0})],
                      lambda e: e.abc),
    "senseair-s8": Case(lambda: S8Emulator(745, warmup=3), [("senseair-s8", {"co2": 745.0})], waits=True),
    "sensirion-scd30": Case(lambda: Scd30Emulator(612.5, 22.25, 45.5),
                            [("sensirion-scd30", {"co2": 612.5, "temperature": 22.25, "relative_humidity": 45.5})],
                            # whether the first read comes before the first measurement is ready is timing
                            lambda e: e.measuring, waits=None),
    "nmea": Case(lambda: NmeaEmulator(*VERSAILLES, speed=1.4, course=90.0, hdop=0.9),
                 [("nmea-gps", {"latitude": VERSAILLES[0], "longitude": VERSAILLES[1], "altitude": 131.5}),
                  ("nmea-gps", {"speed": 1.4, "course": 90.0}), ("nmea-gps", {"hdop": 0.9})]),
    "kitline": Case(lambda: KitlineEmulator(KIT), [(sensor, values) for sensor, values, _ in KIT]),
}


def seen(observations: list[Observation], sensor: str, values: dict[str, float]) -> bool:
    return any(o.sensor == sensor and all(k in o.values and o.values[k] == pytest.approx(v, abs=1e-5)
                                          for k, v in values.items()) for o in observations)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_the_reader_gets_the_emulated_sensors_values_through_a_pseudo_terminal(name: str, tmp_path: Path) -> None:
    assert name in CASES, f"protocol {name} is registered but has no emulated device in this test"
    case = CASES[name]
    emulator = case.emulator()
    port = PtyPort(tmp_path / name)
    device = EmulatorPort(port, emulator, tick_s=0.05)  # type: ignore[arg-type]
    got: list[Observation] = []
    reader = SerialReader(name, str(port.link), got.append, interval_s=0.05)
    device.start()
    reader.start()
    try:
        wait_until(lambda: all(seen(list(got), s, v) for s, v in case.expect), timeout=10,
                   what=f"{name}: observations {case.expect}; got {got[-3:]}, reader {reader.stats}")
    finally:
        reader.stop()
        device.stop()
        port.close()
    assert case.state(emulator), f"{name}: the start-up commands did not leave the sensor as the bridge needs it"
    assert reader.stats.frame_errors == 0, reader.stats
    if case.waits is not None:
        assert (reader.stats.waits > 0) == case.waits, reader.stats
    if name != "kitline":  # a kit line names its own sensor
        assert {o.sensor for o in got} == {case.expect[0][0]}


# ---------------------------------------------------------------- start-up and recovery, on the wire
class Wire:
    """An emulator on a pseudo-terminal and a reader on its link; ``got`` collects the observations."""

    def __init__(self, tmp_path: Path, protocol: str, emulator: object, *, tick_s: float = 0.05,
                 interval_s: float = 0.05, **reader: object):
        self.emulator = emulator
        self.port = PtyPort(tmp_path / protocol)
        self.device = EmulatorPort(self.port, emulator, tick_s=tick_s)  # type: ignore[arg-type]
        self.got: list[Observation] = []
        self.reader = SerialReader(protocol, str(self.port.link), self.got.append, interval_s=interval_s,
                                   **reader)  # type: ignore[arg-type]

    def __enter__(self) -> Self:
        self.device.start()
        self.reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.stop()
        self.device.stop()
        self.port.close()


def test_an_sps30_left_measuring_in_integers_is_stopped_and_started_again_in_floats(tmp_path: Path) -> None:
    with Wire(tmp_path, "sps30", Sps30Emulator(SPS, measuring=sps30.UINT16_FORMAT)) as w:
        # SPS holds fractions an integer answer cannot carry: seeing them exactly means the float format.
        wait_until(lambda: seen(list(w.got), "sensirion-sps30", SPS), what=f"float values; got {w.got[-2:]}")
    assert w.emulator.output_format == sps30.FLOAT_FORMAT
    assert w.device.received.startswith(sps30.WAKE_UP + sps30.STOP_MEASUREMENT + sps30.START_MEASUREMENT)
    assert w.reader.stats.frame_errors == 0
    assert sum(w.reader.set_aside.counts()["ignored"].values()) == 3, "three start-up answers, each set aside"


def test_a_power_cycled_mhz19_gets_its_self_calibration_switched_off_again(tmp_path: Path) -> None:
    emulator = Mhz19Emulator(612, 24)
    skipped = [0.0]  # the reader's clock runs ahead by this much [s]: the 3-minute preheat passes at once
    booted: list[Observation] = []  # readings after the boot answers
    with Wire(tmp_path, "mhz19", emulator, clock=lambda: time.monotonic() + skipped[0], silence_s=3600) as w:
        def sink(obs: Observation) -> None:
            w.got.append(obs)
            if w.reader.stats.waits:  # the boot answers came before it
                booted.append(obs)

        w.reader.sink = sink
        wait_until(lambda: len(w.got) >= 3, what="readings before the power cut")
        assert not emulator.abc and w.device.received.count(mhz19.ABC_OFF) == 1
        skipped[0] = mhz19.PREHEAT_S + 1
        wait_until(lambda: not w.got[-1].warming_up, what="readings after the preheat")
        before = len(w.got)
        emulator.power_cycle(boot_answers=3)  # the port stays open; the sensor boots with ABC on
        wait_until(lambda: w.reader.stats.reboots == 1 and not emulator.abc and len(w.got) > before + 2,
                   what=f"ABC off again after the reboot; reader {w.reader.stats}")
    assert w.device.received.count(mhz19.ABC_OFF) == 2 and w.reader.stats.opens == 1
    assert w.reader.stats.waits == 3 and "boot mark" in w.reader.set_aside.last()["waiting"]
    assert len(booted) >= 2 and all(o.warming_up for o in booted), "its preheat starts over after the reboot"


def test_a_power_cycled_mhz19_read_with_abc_on_gets_nothing_again(tmp_path: Path) -> None:
    emulator = Mhz19Emulator(431, 19)
    with Wire(tmp_path, "mhz19-abc", emulator) as w:
        wait_until(lambda: len(w.got) >= 3, what="readings before the power cut")
        before = len(w.got)
        emulator.power_cycle(boot_answers=2)
        wait_until(lambda: w.reader.stats.waits == 2 and len(w.got) > before + 2, what="readings after the reboot")
    assert emulator.abc and w.reader.stats.reboots == 0
    assert w.device.received.count(mhz19.ABC_ON) == 1 and mhz19.ABC_OFF not in w.device.received


def test_an_s8_that_needs_a_wake_up_byte_answers_every_read(tmp_path: Path) -> None:
    emulator = S8Emulator(745, needs_wake=True)
    with Wire(tmp_path, "senseair-s8", emulator, interval_s=0.1) as w:
        wait_until(lambda: len(w.got) >= 3, what=f"S8 readings; reader {w.reader.stats}")
    assert {o.values["co2"] for o in w.got} == {745.0} and emulator.unanswered == 0
    reads = w.device.received.count(s8.READ_COMMAND)
    assert reads >= 3 and w.device.received.count(s8.WAKE_BYTES + s8.READ_COMMAND) == reads


def test_an_s8_without_the_wake_up_byte_stays_silent(tmp_path: Path) -> None:
    """The emulator's unit really needs the byte: the same requests without it go unanswered."""
    emulator = S8Emulator(745, needs_wake=True)
    assert emulator.on_input(s8.READ_COMMAND) == [] and emulator.unanswered == 1
    assert s8.decode(emulator.on_input(s8.WAKE_BYTES + s8.READ_COMMAND)[0]).values == {"co2": 745.0}


def test_waking_a_plantower_sensor_brings_data_frames_and_no_acknowledgement(tmp_path: Path) -> None:
    emulator = plantower(lambda: pms5003.encode(PMS), pms5003.WARMING_UP_FRAME)  # asleep, passive
    assert emulator.on_input(pms5003.WAKEUP) == [] and not emulator.asleep
    with Wire(tmp_path, "pms5003", plantower(lambda: pms5003.encode(PMS), pms5003.WARMING_UP_FRAME)) as w:
        wait_until(lambda: seen(list(w.got), "plantower-pms5003", PMS), what="frames after the wake-up")
    # Of the two start-up commands only active mode is acknowledged; the zero frames are the fan's warm-up.
    assert w.reader.set_aside.counts()["ignored"] == {"PMS5003 acknowledgement of active mode, not a measurement": 1}
    assert set(w.reader.set_aside.counts()["waiting"]) == {
        "PMS5003 sends all-zero particle data: the fan is still spinning up"}


def test_an_asleep_sps30_hears_only_a_wake_up_after_a_0xff_byte() -> None:
    emulator = Sps30Emulator(SPS, asleep=True)
    assert emulator.on_input(sps30.START_MEASUREMENT + sps30.command(sps30.CMD_WAKE_UP)) == [], "its UART is off"
    assert emulator.on_input(b"\xff") == []
    (answer,) = emulator.on_input(sps30.command(sps30.CMD_WAKE_UP))  # within the same wake-up, in a later read
    assert sps30.parse_answer(answer) == (sps30.CMD_WAKE_UP, 0, b"") and not emulator.asleep
    assert sps30.parse_answer(emulator.on_input(sps30.WAKE_UP)[0]).state == 0x43, "awake already"
