"""Plantower PMS3003 24-byte frames: six PM words and three reserved words, PyPMS's frames as test vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode, frames_in_pieces

from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.plantower import pms3003, pms5003

# avaldebe/PyPMS tests/sensor/test_sensor.py, "PMS3003 good data", and the values PyPMS reads from it.
PYPMS_GOOD = bytes.fromhex("424d00140051006A007700350046004F33D20F28003F041A")
PYPMS_GOOD_VALUES = dict(zip(pms3003.FIELDS, (81.0, 106.0, 119.0, 53.0, 70.0, 79.0)))
# avaldebe/PyPMS tests/cli/captured_data/PMS3003.hexdump: clean air, 0 then 1 µg/m³ (tests/captured_data/PMS3003.csv).
CAPTURED = [bytes.fromhex("424d0014" + "0000" * 8 + "0051" + "00f4")] * 4 + \
           [bytes.fromhex("424d0014" + "0001" * 6 + "0000" * 2 + "0051" + "00fa")] * 3 + \
           [bytes.fromhex("424d0014" + "0000" * 8 + "0051" + "00f4")] * 3
CAPTURED_PM2_5 = [0.0] * 4 + [1.0] * 3 + [0.0] * 3  # PMS3003.csv, column pm25


def sealed(body: bytes) -> bytes:
    return body + pms5003.checksum(body).to_bytes(2, "big")


DECODE_CASES = [
    pytest.param(PYPMS_GOOD, PYPMS_GOOD_VALUES, id="PyPMS's good frame decodes to PyPMS's values"),
    pytest.param(CAPTURED[0], dict.fromkeys(pms3003.FIELDS, 0.0),
                 id="zero mass with a reserved word set is clean air, not warm-up"),
    pytest.param(sealed(b"\x42\x4d\x00\x14" + bytes(18)), WarmingUp, id="nine zero words mean warming up"),
    pytest.param(PYPMS_GOOD[:-1] + b"\x1b", FrameError, id="a wrong check code is dropped"),
    pytest.param(PYPMS_GOOD[:-2], FrameError, id="a frame two bytes short is dropped"),
    pytest.param(pms5003.encode(dict.fromkeys(pms5003.FIELDS, 3)), FrameError,
                 id="a 32-byte PMS5003 frame is another model's"),
    pytest.param(pms5003.encode_ack(pms5003.CMD_MODE, 1), Unsupported,
                 id="an acknowledgement is not a measurement"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms3003.decode, frame, expected, sensor="plantower-pms3003")


def test_the_captured_frames_split_across_reads_decode_to_pypms_csv() -> None:
    frames = frames_in_pieces(pms3003.find_frame, b"\x00\x42" + b"".join(CAPTURED), 7)
    assert [pms3003.decode(f).values["pm2_5"] for f in frames] == CAPTURED_PM2_5


def test_a_pms5003_frame_read_as_a_pms3003_names_the_protocols_that_read_it() -> None:
    with pytest.raises(FrameError, match=r"length 28 .*choose the protocol of the sensor's model \(pms5003,"):
        pms3003.decode(pms5003.encode(dict.fromkeys(pms5003.FIELDS, 3)))


def test_a_pms3003_frame_read_as_a_pms5003_names_the_pms3003_protocol() -> None:
    with pytest.raises(FrameError, match=r"as a PMS3003 sends.*\(pms3003\)"):
        pms5003.decode(PYPMS_GOOD)


def test_encoding_pypms_values_gives_pypms_frame() -> None:
    assert pms3003.encode(PYPMS_GOOD_VALUES, reserved=(0x33D2, 0x0F28, 0x003F)) == PYPMS_GOOD


def test_it_takes_no_command() -> None:
    assert pms3003.INIT_COMMANDS == () and pms3003.KIND == "stream"


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({name: st.integers(0, 0xFFFF) for name in pms3003.FIELDS}), st.integers(1, 0xFFFF))
def test_decode_encode_round_trips(values: dict[str, int], reserved: int) -> None:
    frame = pms3003.encode(values, reserved=(0, 0, reserved))
    assert pms3003.decode(frame).values == values
    assert pms3003.find_frame(b"\x42garbage" + frame) == (frame, b"")
