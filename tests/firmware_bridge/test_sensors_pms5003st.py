"""Plantower PMS5003ST 40-byte frames: formaldehyde, temperature and humidity after the PMS5003's twelve words.

No capture of a PMS5003ST is public in the projects the decoder is checked against (avaldebe/PyPMS has an
empty ``PMS5003ST`` section in ``docs/sensors/Plantower.md``): the kitchen frame below is built from the
data manual's layout with the particle words of PyPMS's PMS5003T capture; PyPMS's own PMS5003ST test frame
(``tests/sensors/test_sensor.py``) is used for the inconsistent case.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.plantower import pms5003, pms5003st

# A kitchen while cooking: 0.021 mg/m³ of formaldehyde, 21.2 °C, 22.4 %; firmware 0x91, no error.
KITCHEN = bytes.fromhex(
    "424d0024"  # start characters, frame length 36
    "0017" "0027" "0029" "0016" "0023" "0029"  # PM CF=1 and atmospheric [µg/m³]
    "1008" "04a9" "0116" "000c" "0004" "0001"  # particles > 0.3 … 10 µm [#/0.1 L]
    "0015"  # formaldehyde 21 [µg/m³]
    "00d4" "00e0"  # 21.2 °C, 22.4 %
    "0000" "9100"  # reserved, version and error code
    "04c3"  # check code
)
KITCHEN_VALUES = {
    "pm1_cf1": 23.0, "pm2_5_cf1": 39.0, "pm10_cf1": 41.0, "pm1": 22.0, "pm2_5": 35.0, "pm10": 41.0,
    "pn0_3": 4104.0, "pn0_5": 1193.0, "pn1": 278.0, "pn2_5": 12.0, "pn5": 4.0, "pn10": 1.0,
    "hcho": 0.021, "temperature": 21.2, "relative_humidity": 22.4,
}


def sealed(body: bytes) -> bytes:
    return body + pms5003.checksum(body).to_bytes(2, "big")


# avaldebe/PyPMS tests/sensors/test_sensor.py: PM10 = 32 µg/m³ but no particle > 0.3 µm.
PYPMS_INCONSISTENT = bytes.fromhex(
    "424d00240000000a00200000000a002000000000000000000000000000000000000000009700019E")

DECODE_CASES = [
    pytest.param(KITCHEN, KITCHEN_VALUES, id="a kitchen frame gives formaldehyde in mg/m³"),
    pytest.param(sealed(KITCHEN[:30] + b"\xff\xe2" + KITCHEN[32:38]), {**KITCHEN_VALUES, "temperature": -3.0},
                 id="a negative temperature is a signed word"),
    pytest.param(KITCHEN[:32], FrameError, id="a 32-byte PMS5003 frame is not a PMS5003ST frame"),
    pytest.param(sealed(KITCHEN[:2] + b"\x00\x1c" + KITCHEN[4:38]), FrameError, id="a length field of 28 is dropped"),
    pytest.param(KITCHEN[:-1] + b"\x45", FrameError, id="a wrong check code is dropped"),
    pytest.param(sealed(KITCHEN[:4] + bytes(24) + KITCHEN[28:38]), WarmingUp,
                 id="all-zero particle data means the fan is still starting"),
    pytest.param(sealed(KITCHEN[:16] + bytes(12) + KITCHEN[28:38]), FrameError,
                 id="mass without any particle counted is inconsistent"),
    pytest.param(PYPMS_INCONSISTENT, FrameError, id="PyPMS's inconsistent frame is refused as PyPMS refuses it"),
    pytest.param(pms5003.encode_ack(pms5003.CMD_SLEEP, 0), Unsupported,
                 id="the acknowledgement of sleep is not a measurement"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003st.decode, frame, expected, sensor="plantower-pms5003st", approx={})


def test_the_table_frame_carries_its_correct_check_code() -> None:
    assert int.from_bytes(KITCHEN[-2:], "big") == pms5003.checksum(KITCHEN[:-2])


def test_encoding_the_kitchen_values_gives_the_kitchen_frame() -> None:
    assert pms5003st.encode(KITCHEN_VALUES, version=0x91) == KITCHEN


@pytest.mark.parametrize(("buffer", "frame", "rest"), [
    pytest.param(b"garbage\x42" + KITCHEN + b"\x42\x4d", KITCHEN, b"\x42\x4d", id="garbage before a frame is skipped"),
    pytest.param(KITCHEN[:39], None, KITCHEN[:39], id="a frame one byte short waits for the rest"),
    pytest.param(KITCHEN[:12] + KITCHEN, KITCHEN, b"", id="a frame inside a torn one is found"),
    pytest.param(KITCHEN[20:] + KITCHEN[:25], None, KITCHEN[:25], id="a frame split across reads waits"),
])
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert pms5003st.find_frame(buffer) == (frame, rest)


def test_a_pms5003_frame_is_cut_and_refused_naming_the_models_that_send_it() -> None:
    frame = pms5003.encode(dict.fromkeys(pms5003.FIELDS, 5))
    assert pms5003st.find_frame(frame + KITCHEN) == (frame, KITCHEN)
    with pytest.raises(FrameError, match="length 28.*PMS5003,.*choose the protocol"):
        pms5003st.decode(frame)


def test_encode_refuses_a_version_beyond_a_byte() -> None:
    with pytest.raises(ValueError, match="byte"):
        pms5003st.encode(KITCHEN_VALUES, version=256)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({name: st.integers(1, 0xFFFF) for name in pms5003st.PARTICLES}),
       st.integers(0, 10_000), st.integers(-400, 850), st.integers(0, 1000))
def test_decode_encode_round_trips(values: dict[str, int], ug: int, tenths_c: int, tenths_rh: int) -> None:
    values = {**values, "hcho": ug / 1000, "temperature": tenths_c / 10, "relative_humidity": tenths_rh / 10}
    assert pms5003st.decode(pms5003st.encode(values)).values == values
