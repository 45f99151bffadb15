"""Plantower PMS5003S 32-byte frames: the PMS5003's twelve words, then formaldehyde.

No capture of a PMS5003S is public in the projects the decoder is checked against (avaldebe/PyPMS's
``docs/sensors/Plantower.md`` has an empty hexdump for it): the frame below is built from the layout PyPMS
and esphome read (formaldehyde in data word 13, µg/m³), with the particle words of the PMS5003 tests' clean-air
frame.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.plantower import pms5003, pms5003s

# Clean outdoor air, 0.008 mg/m³ of formaldehyde.
OUTDOOR = bytes.fromhex(
    "424d001c"  # start characters, frame length 28
    "0005" "0008" "000a" "0005" "0008" "000a"  # PM CF=1 and atmospheric [µg/m³]
    "03a5" "0109" "003c" "0006" "0002" "0000"  # particles > 0.3 … 10 µm [#/0.1 L]
    "0008"  # formaldehyde 8 [µg/m³]
    "01d7"  # check code
)
OUTDOOR_VALUES = {
    "pm1_cf1": 5.0, "pm2_5_cf1": 8.0, "pm10_cf1": 10.0, "pm1": 5.0, "pm2_5": 8.0, "pm10": 10.0,
    "pn0_3": 933.0, "pn0_5": 265.0, "pn1": 60.0, "pn2_5": 6.0, "pn5": 2.0, "pn10": 0.0, "hcho": 0.008,
}


def sealed(body: bytes) -> bytes:
    return body + pms5003.checksum(body).to_bytes(2, "big")


DECODE_CASES = [
    pytest.param(OUTDOOR, OUTDOOR_VALUES, id="formaldehyde is word 13, in mg/m³"),
    pytest.param(sealed(OUTDOOR[:4] + bytes(24) + OUTDOOR[28:30]), WarmingUp,
                 id="all-zero particle data means the fan is still starting"),
    pytest.param(OUTDOOR[:-1] + b"\x00", FrameError, id="a wrong check code is dropped"),
    pytest.param(sealed(OUTDOOR[:16] + bytes(12) + OUTDOOR[28:30]), FrameError,
                 id="mass without any particle counted is inconsistent"),
    pytest.param(pms5003.encode_ack(pms5003.CMD_MODE, 0), Unsupported,
                 id="the acknowledgement of passive mode is not a measurement"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003s.decode, frame, expected, sensor="plantower-pms5003s", approx={})


def test_the_table_frame_carries_its_correct_check_code_and_is_what_encode_builds() -> None:
    assert int.from_bytes(OUTDOOR[-2:], "big") == pms5003.checksum(OUTDOOR[:-2])
    assert pms5003s.encode(OUTDOOR_VALUES) == OUTDOOR


def test_read_as_a_pms5003_the_frame_gives_the_particles_without_the_formaldehyde() -> None:
    assert pms5003.decode(OUTDOOR).values == {k: v for k, v in OUTDOOR_VALUES.items() if k != "hcho"}


def test_a_pms5003st_frame_names_its_protocol() -> None:
    st_frame = sealed(bytes.fromhex("424d0024") + OUTDOOR[4:30] + bytes.fromhex("00d400e000009100"))
    with pytest.raises(FrameError, match=r"PMS5003ST.*\(pms5003st\)"):
        pms5003s.decode(st_frame)


def test_start_up_is_the_pms5003s() -> None:
    assert pms5003s.INIT_COMMANDS == pms5003.INIT_COMMANDS and pms5003s.find_frame is pms5003.find_frame


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({name: st.integers(1, 0xFFFF) for name in pms5003s.PARTICLES}), st.integers(0, 0xFFFF))
def test_decode_encode_round_trips(values: dict[str, int], ug: int) -> None:
    values = {**values, "hcho": ug / 1000}
    assert pms5003s.decode(pms5003s.encode(values)).values == values
