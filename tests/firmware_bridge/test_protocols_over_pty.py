"""Every registered protocol, end to end: an emulated sensor on a real pseudo-terminal, read by the real reader.

Each emulator starts in the state a careless earlier program would leave a
sensor in (asleep, in the other mode, not measuring): the observations only
come if the protocol's start-up commands and polling work as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from harness import wait_until

from firmware_bridge.reader import SerialReader
from firmware_bridge.sensors import PROTOCOLS, Observation
from firmware_bridge.sensors.plantower import pms5003, pms5003st, pms5003t
from firmware_bridge.simulator.emulators import (
    EmulatorPort, KitlineEmulator, Mhz19Emulator, NmeaEmulator, PlantowerEmulator, S8Emulator, Scd30Emulator,
    Sds011Emulator, Sps30Emulator,
)
from firmware_bridge.simulator.pty import PtyPort

PMS = {"pm1_cf1": 9, "pm2_5_cf1": 14, "pm10_cf1": 17, "pm1": 9, "pm2_5": 14, "pm10": 17,
       "pn0_3": 1520, "pn0_5": 433, "pn1": 71, "pn2_5": 9, "pn5": 2, "pn10": 1}
PMS_T = {**{k: PMS[k] for k in pms5003t.PARTICLES}, "temperature": -3.5, "relative_humidity": 81.2}
PMS_ST = {**PMS, "hcho": 0.021, "temperature": 21.2, "relative_humidity": 22.4}
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
    "sds011": Case(lambda: Sds011Emulator(12.3, 20.1), [("novafitness-sds011", {"pm2_5": 12.3, "pm10": 20.1})],
                   lambda e: e.active and e.working),
    "sds011-query": Case(lambda: Sds011Emulator(12.3, 20.1, active=True),
                         [("novafitness-sds011", {"pm2_5": 12.3, "pm10": 20.1})], lambda e: e.working and not e.active),
    "sds021": Case(lambda: Sds011Emulator(4.2, 6.0), [("novafitness-sds021", {"pm2_5": 4.2, "pm10": 6.0})],
                   lambda e: e.active and e.working),
    "sps30": Case(lambda: Sps30Emulator(SPS), [("sensirion-sps30", SPS)], lambda e: e.measuring, waits=True),
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
