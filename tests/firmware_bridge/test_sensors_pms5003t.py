"""Plantower PMS5003T frames: captured frames (avaldebe/PyPMS) and the data manual's layout."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, WarmingUp
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
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003t.decode, frame, expected, sensor="plantower-pms5003t", approx={})


def test_find_frame_passes_over_garbage_and_acknowledgements() -> None:
    buffer = b"\x00\x42" + pms5003.encode_ack(0xE1, 1) + CAPTURED + CAPTURED_2[:10]
    assert pms5003t.find_frame(buffer) == (CAPTURED, CAPTURED_2[:10])


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
