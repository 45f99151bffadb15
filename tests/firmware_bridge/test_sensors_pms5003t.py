"""Plantower PMS5003T frames: captured frames (avaldebe/PyPMS) and the data manual's layout."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode, frames_in_pieces

from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.plantower import pms5003, pms5003t

# The first two frames of avaldebe/PyPMS tests/captured_data/PMS5003T.hexdump; PyPMS's CSV gives for the
# first: PM 23/39/41 (CF=1), 22/35/41 µg/m³, 4104/1193/278/12 particles per 0.1 L, 21.2 °C, 22.4 %.
CAPTURED = bytes.fromhex("424d001c0017002700290016002300291008" "04a90116000c00d400e09a0004aa")
CAPTURED_2 = bytes.fromhex("424d001c0015002400240014002100240dc8" "041f00e4000e00d400e09a000599")
CAPTURED_VALUES = {
    "pm1_cf1": 23.0, "pm2_5_cf1": 39.0, "pm10_cf1": 41.0, "pm1": 22.0, "pm2_5": 35.0, "pm10": 41.0,
    "pn0_3": 4104.0, "pn0_5": 1193.0, "pn1": 278.0, "pn2_5": 12.0, "temperature": 21.2, "relative_humidity": 22.4,
}


def sealed(body: bytes) -> bytes:
    return body + pms5003.checksum(body).to_bytes(2, "big")


FROST = sealed(CAPTURED[:24] + (-52).to_bytes(2, "big", signed=True) + CAPTURED[26:30])
ZEROS = sealed(CAPTURED[:4] + bytes(20) + CAPTURED[24:30])
MASS_ONLY = sealed(CAPTURED[:16] + bytes(8) + CAPTURED[24:30])

DECODE_CASES = [
    pytest.param(CAPTURED, CAPTURED_VALUES, id="a captured frame decodes as PyPMS decodes it"),
    pytest.param(FROST, {**CAPTURED_VALUES, "temperature": -5.2}, id="a frost night gives a negative temperature"),
    pytest.param(CAPTURED[:-1], FrameError, id="a frame one byte short is dropped"),
    pytest.param(b"\x42\x4e" + CAPTURED[2:], FrameError, id="a wrong start character is dropped"),
    pytest.param(CAPTURED[:-1] + b"\x00", FrameError, id="a wrong check code is dropped"),
    pytest.param(ZEROS, WarmingUp, id="all-zero particle data while the fan starts means warming up"),
    pytest.param(MASS_ONLY, FrameError, id="mass without any particle counted is inconsistent"),
    pytest.param(b"", FrameError, id="no bytes at all is dropped"),
    pytest.param(pms5003.encode_ack(pms5003.CMD_MODE, 1), Unsupported,
                 id="the acknowledgement of active mode is not a measurement"),
    pytest.param(pms5003.pack(struct.Struct(">17H"), [1] * 17), FrameError,
                 id="a 40-byte PMS5003ST frame is another model's"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003t.decode, frame, expected, sensor="plantower-pms5003t", approx={})


def test_find_frame_cuts_acknowledgements_and_frames_out_of_garbage() -> None:
    ack = pms5003.encode_ack(0xE1, 1)
    frame, rest = pms5003t.find_frame(b"\x00\x42" + ack + CAPTURED + CAPTURED_2[:10])
    assert frame == ack
    assert pms5003t.find_frame(rest) == (CAPTURED, CAPTURED_2[:10])


# avaldebe/PyPMS tests/captured_data/PMS5003T.hexdump: ten frames read from a PMS5003T, ten seconds apart.
PYPMS_HEXDUMP = """
42 4d 00 1c 00 17 00 27 00 29 00 16 00 23 00 29 10 08 04 a9 01 16 00 0c 00 d4 00 e0 9a 00 04 aa
42 4d 00 1c 00 15 00 24 00 24 00 14 00 21 00 24 0d c8 04 1f 00 e4 00 0e 00 d4 00 e0 9a 00 05 99
42 4d 00 1c 00 15 00 25 00 26 00 14 00 22 00 26 0f 00 04 66 00 fa 00 16 00 d4 00 e0 9a 00 05 3e
42 4d 00 1c 00 14 00 23 00 2a 00 13 00 20 00 2a 0e a6 04 37 01 06 00 1e 00 d4 00 df 9a 00 04 ca
42 4d 00 1c 00 17 00 26 00 26 00 16 00 23 00 26 0e e8 04 62 01 1e 00 0e 00 d4 00 e0 9a 00 05 44
42 4d 00 1c 00 16 00 25 00 27 00 15 00 22 00 27 0e fd 04 5a 01 20 00 14 00 d4 00 df 9a 00 05 56
42 4d 00 1c 00 16 00 24 00 2a 00 15 00 21 00 2a 0e af 04 56 01 1a 00 16 00 d4 00 df 9a 00 05 04
42 4d 00 1c 00 17 00 25 00 2d 00 16 00 22 00 2d 0e fd 04 6f 01 24 00 16 00 d5 00 de 9a 00 05 7f
42 4d 00 1c 00 15 00 23 00 2c 00 14 00 20 00 2c 0e ca 04 5a 01 1e 00 18 00 d5 00 de 9a 00 05 29
42 4d 00 1c 00 14 00 22 00 2b 00 13 00 20 00 2b 0e 13 04 14 01 10 00 1e 00 d5 00 df 9a 00 04 20
"""
# avaldebe/PyPMS tests/captured_data/PMS5003T.csv: raw01, raw25, raw10 (CF=1), pm01, pm25, pm10, n0_3 … n2_5
# in #/cm³ (counts per 0.1 L / 100), temp [°C], rhum [%].
PYPMS_CSV = """
23, 39, 41, 22.0, 35.0, 41.0, 41.04, 11.93, 2.78, 0.12, 21.2, 22.4
21, 36, 36, 20.0, 33.0, 36.0, 35.28, 10.55, 2.28, 0.14, 21.2, 22.4
21, 37, 38, 20.0, 34.0, 38.0, 38.40, 11.26, 2.50, 0.22, 21.2, 22.4
20, 35, 42, 19.0, 32.0, 42.0, 37.50, 10.79, 2.62, 0.30, 21.2, 22.3
23, 38, 38, 22.0, 35.0, 38.0, 38.16, 11.22, 2.86, 0.14, 21.2, 22.4
22, 37, 39, 21.0, 34.0, 39.0, 38.37, 11.14, 2.88, 0.20, 21.2, 22.3
22, 36, 42, 21.0, 33.0, 42.0, 37.59, 11.10, 2.82, 0.22, 21.2, 22.3
23, 37, 45, 22.0, 34.0, 45.0, 38.37, 11.35, 2.92, 0.22, 21.3, 22.2
21, 35, 44, 20.0, 32.0, 44.0, 37.86, 11.14, 2.86, 0.24, 21.3, 22.2
20, 34, 43, 19.0, 32.0, 43.0, 36.03, 10.44, 2.72, 0.30, 21.3, 22.3
"""


def test_the_whole_pypms_capture_read_in_small_pieces_decodes_to_pypms_values() -> None:
    capture = bytes.fromhex(PYPMS_HEXDUMP)
    frames = frames_in_pieces(pms5003t.find_frame, capture, 5)  # five bytes per read: every frame arrives split
    expected = []
    for line in PYPMS_CSV.strip().splitlines():
        n = [float(x) for x in line.split(",")]
        expected.append(dict(zip(pms5003t.FIELDS, n[:6] + [round(x * 100) for x in n[6:10]] + n[10:])))
    assert len(frames) == len(expected) == 10
    for frame, values in zip(frames, expected):
        assert pms5003t.decode(frame).values == pytest.approx(values)


def test_encoding_the_captured_values_gives_the_captured_frame() -> None:
    assert pms5003t.encode(CAPTURED_VALUES, version=0x9A00) == CAPTURED


def test_encode_names_a_missing_quantity() -> None:
    with pytest.raises(ValueError, match="relative_humidity"):
        pms5003t.encode({k: v for k, v in CAPTURED_VALUES.items() if k != "relative_humidity"})


particles = st.fixed_dictionaries({name: st.integers(1, 0xFFFF) for name in pms5003t.PARTICLES})


@settings(max_examples=150, deadline=None)
@given(particles, st.integers(-400, 850), st.integers(0, 1000))
def test_decode_encode_round_trips(values: dict[str, int], tenths_c: int, tenths_rh: int) -> None:
    values = {**values, "temperature": tenths_c / 10, "relative_humidity": tenths_rh / 10}
    assert pms5003t.decode(pms5003t.encode(values)).values == values
