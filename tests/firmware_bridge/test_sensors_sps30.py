"""Sensirion SPS30 SHDLC frames: the datasheet's (v1.0, March 2020) commands and captured answers."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors.base import FrameError, SensorError, Unsupported, WarmingUp
from firmware_bridge.sensors.sensirion import sps30

# Captured answers to "read measured values" (avaldebe/PyPMS tests/captured_data/SPS30.hexdump, third and
# fifth frames): 7D 31, 7D 5E and 7D 5D are stuffed 0x11, 0x7E and 0x7D.
CAPTURED = bytes.fromhex(
    "7e0003002840df03da417d3162ae41279e32412c107d5e42307d5ed34255c04c425e0908425fa28a425fe4433f40fa1fff7e")
CAPTURED_VALUES = {"pm1": 7.0, "pm2_5": 9.1, "pm4": 10.5, "pm10": 10.8, "nc0_5": 44.12, "nc1": 53.44,
                   "nc2_5": 55.51, "nc4": 55.91, "nc10": 55.97, "typical_particle_size": 0.75}
CAPTURED_2 = bytes.fromhex(
    "7e0003002841051c4c41278b14413d385941418e354256926c4280797c42849312"
    "42855cb242857d5dfb3f3e67ea317e")
# Short answers as PyPMS's tests quote them: no new data, and "command not allowed in current state".
NO_DATA = bytes.fromhex("7e00030000fc7e")
ALREADY_MEASURING = bytes.fromhex("7e00004300bc7e")
NOT_MEASURING = bytes.fromhex("7e00034300b97e")
START_ANSWER = bytes.fromhex("7e00000000ff7e")


def answer(state: int, data: bytes, cmd: int = sps30.CMD_READ) -> bytes:
    return sps30.response(cmd, data, state=state)


DECODE_CASES = [
    pytest.param(CAPTURED, CAPTURED_VALUES, id="a captured answer with stuffed bytes decodes as PyPMS rounds it"),
    pytest.param(NO_DATA, WarmingUp, id="an empty answer means no new measurement yet"),
    pytest.param(answer(0, bytes(40)), WarmingUp, id="ten zeros while the fan starts mean warming up"),
    pytest.param(NOT_MEASURING, FrameError, id="state 0x43 to a read means the sensor is not measuring"),
    pytest.param(answer(0x80, sps30.encode(CAPTURED_VALUES)[5:-2]), FrameError,
                 id="the device error flag refuses the values"),
    pytest.param(START_ANSWER, Unsupported, id="the answer to start measurement is not a measurement"),
    pytest.param(ALREADY_MEASURING, Unsupported, id="a start sent to a measuring sensor is ignored"),
    pytest.param(CAPTURED[:-1], FrameError, id="a frame without its end flag is dropped"),
    pytest.param(CAPTURED[:-2] + b"\x00\x7e", FrameError, id="a wrong checksum is dropped"),
    pytest.param(CAPTURED[:4] + b"\x27" + CAPTURED[5:], FrameError, id="a length byte that disagrees is dropped"),
    pytest.param(bytes.fromhex("7e01030000fb7e"), FrameError, id="an answer from address 1 is dropped"),
    pytest.param(bytes.fromhex("7e00037d00fb7e"), FrameError, id="a bad escape sequence is dropped"),
    pytest.param(answer(0, bytes(20)), FrameError, id="integer format (20 bytes) is refused with the reason"),
    pytest.param(answer(0, struct.pack(">10f", *([1.0] * 9 + [math.nan]))), FrameError,
                 id="a value that is not a number is dropped"),
    pytest.param(sps30.READ_COMMAND, FrameError, id="our own read command echoed back is dropped"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    if isinstance(expected, dict):
        obs = sps30.decode(frame)
        assert obs.sensor == "sensirion-sps30"
        assert {k: round(v, 2) for k, v in obs.values.items()} == pytest.approx(expected, abs=0.051)
    else:
        with pytest.raises(expected):
            sps30.decode(frame)


def test_a_second_captured_answer_with_stuffed_bytes_decodes_to_plausible_values() -> None:
    values = sps30.decode(CAPTURED_2).values
    assert values["pm1"] <= values["pm2_5"] <= values["pm4"] <= values["pm10"]
    assert values["nc0_5"] <= values["nc1"] <= values["nc2_5"] <= values["nc4"] <= values["nc10"]


@pytest.mark.parametrize(("command", "expected_hex"), [
    pytest.param(sps30.START_MEASUREMENT, "7e0000020103f97e", id="start measurement in float format"),
    pytest.param(sps30.STOP_MEASUREMENT, "7e000100fe7e", id="stop measurement"),
    pytest.param(sps30.READ_COMMAND, "7e000300fc7e", id="read measured values"),
    pytest.param(sps30.command(sps30.CMD_WAKE_UP), "7e007d3100ee7e", id="wake-up: the command byte 0x11 is stuffed"),
])
def test_commands_match_the_datasheet(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex
    cmd, data = sps30.parse_command(command)
    assert sps30.command(cmd, data) == command


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SPS30 command"):
        sps30.command(0x42)


@pytest.mark.parametrize(("data", "stuffed"), [
    pytest.param(b"\x7e", b"\x7d\x5e", id="the flag"), pytest.param(b"\x7d", b"\x7d\x5d", id="the escape"),
    pytest.param(b"\x11", b"\x7d\x31", id="XON"), pytest.param(b"\x13", b"\x7d\x33", id="XOFF"),
    pytest.param(b"\x00\x12\xff", b"\x00\x12\xff", id="other bytes pass unchanged"),
])
def test_byte_stuffing_follows_the_datasheet(data: bytes, stuffed: bytes) -> None:
    assert sps30.stuff(data) == stuffed
    assert sps30.unstuff(stuffed) == data


def test_the_checksum_is_the_inverted_lsb_of_the_sum() -> None:
    assert sps30.checksum(bytes([0x00, 0x00, 0x02, 0x01, 0x03])) == 0xF9


FIND_CASES = [
    pytest.param(b"\x01\x02" + NO_DATA + CAPTURED[:9], NO_DATA, CAPTURED[:9], id="garbage before a frame is skipped"),
    pytest.param(CAPTURED[20:] + CAPTURED, CAPTURED, b"",
                 id="the end flag of a torn frame and the next start flag make one start"),
    pytest.param(CAPTURED[:30], None, CAPTURED[:30], id="half a frame waits for the rest"),
    pytest.param(b"no flag", None, b"", id="garbage alone leaves nothing"),
]


@pytest.mark.parametrize(("buffer", "frame", "rest"), FIND_CASES)
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert sps30.find_frame(buffer) == (frame, rest)


def test_encode_names_a_missing_quantity() -> None:
    with pytest.raises(ValueError, match="typical_particle_size"):
        sps30.encode({k: v for k, v in CAPTURED_VALUES.items() if k != "typical_particle_size"})


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_sensor_errors(data: bytes) -> None:
    try:
        sps30.decode(b"\x7e" + data + b"\x7e")
    except SensorError:
        pass
    frame, rest = sps30.find_frame(data)
    assert len(rest) + len(frame or b"") <= len(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_stuffing_round_trips_and_leaves_no_special_byte(data: bytes) -> None:
    stuffed = sps30.stuff(data)
    assert not {0x7E, 0x11, 0x13} & set(stuffed)
    assert sps30.unstuff(stuffed) == data


floats32 = st.floats(min_value=0.5, max_value=3000, width=32)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({name: floats32 for name in sps30.FIELDS}), st.binary(max_size=20))
def test_decode_encode_round_trips_through_find_frame(values: dict[str, float], garbage: bytes) -> None:
    frame = sps30.encode(values)
    found, rest = sps30.find_frame(garbage.replace(b"\x7e", b"") + frame)
    assert found == frame and rest == b""
    assert sps30.decode(found).values == values
