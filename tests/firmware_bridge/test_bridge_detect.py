"""`qsec bridge detect`: which sensor answers on which port, on simulated sensors' pseudo-terminals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.detect import Detection, count_frames, detect, identify
from firmware_bridge.sensors import PROTOCOLS
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator import ROUTES, Kit
from qsec.cli import main

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PMS = pms5003.encode(dict.fromkeys(pms5003.FIELDS, 7.0))
GGA = nmea0183.encode_gga(WHEN, 48.8, 2.1)
RMC_NO_FIX = nmea0183.encode_rmc(WHEN, None, None, speed=None, valid=False)
MHZ = mhz19.encode_response(612, 21)


@pytest.mark.parametrize("data, best, n", [
    (b"\x00garbage" + PMS + PMS[:10] + PMS, "pms5003", 2),
    (GGA + RMC_NO_FIX + b"$GPGSV,1,1,00*79\r\n", "nmea", 3),  # GGA, RMC (no fix yet) and GSV (0 in view)
    (MHZ + MHZ, "mhz19", 2),
    (b"\xff" * 100, None, 0),
], ids=["pms-with-garbage", "nmea-fix-nofix-unused", "mhz19-answers", "noise"])
def test_frames_heard_are_credited_to_the_protocol_that_recognises_them(data: bytes, best: str | None, n: int) -> None:
    d = Detection("/dev/x", identify(data))
    assert d.protocol == best
    if best:
        assert d.frames[best] == n
        assert d.candidates[0] == best and all(d.frames[p] == n for p in d.candidates)


@given(st.binary(max_size=300))
def test_random_bytes_never_break_the_count(data: bytes) -> None:
    for name in PROTOCOLS:
        assert count_frames(name, data) >= 0


def test_each_simulated_sensor_is_recognised_on_its_own_port(tmp_path: Path) -> None:
    kit = Kit("det", next(iter(ROUTES)), 2, tmp_path / "dev", rate_hz=5.0).start()
    try:
        found = {Path(d.port).name: d for d in detect([*kit.paths.values(), str(tmp_path / "dev" / "nothing")],
                                                      listen_s=0.7)}
    finally:
        kit.stop()
    assert found["det-pms5003"].protocol == "pms5003" and "pms7003" in found["det-pms5003"].candidates
    assert found["det-mhz19"].protocol == "mhz19"
    assert found["det-nmea"].protocol == "nmea" and found["det-nmea"].frames["nmea"] >= 4
    assert found["nothing"].protocol is None and "cannot open" in (found["nothing"].error or "")


def test_the_detect_command_prints_one_json_object_per_port(tmp_path: Path) -> None:
    kit = Kit("cli", next(iter(ROUTES)), 3, tmp_path / "dev", rate_hz=5.0).start()
    try:
        result = CliRunner().invoke(main, ["bridge", "detect", "--ports", kit.paths["nmea"], "--seconds", "0.5",
                                           "--json"])
    finally:
        kit.stop()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["port"] == kit.paths["nmea"] and doc["protocol"] == "nmea" and doc["error"] is None
