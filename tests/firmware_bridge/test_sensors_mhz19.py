"""Winsen MH-Z19B answers and commands: test vectors from the MH-Z19B user's manual v1.0."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors.base import FrameError, SensorError, Unsupported
from firmware_bridge.sensors.winsen import mhz19

# The manual's example answer: FF 86 02 60 47 00 00 00 D1 -> 0x0260 = 608 ppm; 0x47 - 40 = 31 °C.
MANUAL_ANSWER = bytes.fromhex("ff86026047000000d1")


def sealed(body: bytes) -> bytes:
    """Append the Winsen checksum to 8 bytes."""
    return body + bytes([mhz19.checksum(body)])


DECODE_CASES = [
    pytest.param(MANUAL_ANSWER, {"co2": 608.0, "temperature": 31.0}, id="the manual's example answer is 608 ppm"),
    pytest.param(sealed(bytes.fromhex("ff8601a63c400000")), {"co2": 422.0, "temperature": 20.0},
                 id="fresh outdoor air reads about 420 ppm"),
    pytest.param(sealed(bytes.fromhex("ff8605dc28000000")), {"co2": 1500.0, "temperature": 0.0},
                 id="a crowded room reads 1500 ppm at 0 °C"),
    pytest.param(MANUAL_ANSWER[:8], FrameError, id="an answer one byte short is dropped"),
    pytest.param(MANUAL_ANSWER + b"\xff", FrameError, id="an answer one byte long is dropped"),
    pytest.param(b"", FrameError, id="no answer at all is dropped"),
    pytest.param(b"\xfe" + MANUAL_ANSWER[1:], FrameError, id="a wrong start byte is dropped"),
    pytest.param(sealed(bytes.fromhex("ff79000000000000")), FrameError, id="an answer to another command is dropped"),
    pytest.param(MANUAL_ANSWER[:8] + b"\xd2", FrameError, id="a wrong checksum is dropped"),
    pytest.param(mhz19.READ_COMMAND, FrameError, id="our own read command echoed back is dropped"),
    pytest.param([0xFF, 0x86], FrameError, id="a list instead of bytes is dropped"),
]


@pytest.mark.parametrize(("answer", "expected"), DECODE_CASES)
def test_decode(answer: bytes, expected: dict[str, float] | type[Exception]) -> None:
    if isinstance(expected, dict):
        obs = mhz19.decode(answer)
        assert obs.sensor == "winsen-mhz19"
        assert obs.values == expected
        assert not obs.warming_up
    else:
        with pytest.raises(expected):
            mhz19.decode(answer)


@pytest.mark.parametrize(("command", "expected_hex"), [
    pytest.param(mhz19.READ_COMMAND, "ff0186000000000079", id="read CO2"),
    pytest.param(mhz19.ABC_ON, "ff0179a000000000e6", id="self-calibration on"),
    pytest.param(mhz19.ABC_OFF, "ff0179000000000086", id="self-calibration off"),
])
def test_commands_match_the_manual(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex
    assert command[8] == mhz19.checksum(command)


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(mhz19.READ_COMMAND, True, id="the read command is a read command"),
    pytest.param(bytearray(mhz19.READ_COMMAND), True, id="a bytearray read command is a read command"),
    pytest.param(mhz19.READ_COMMAND[:8] + b"\x78", False, id="a read command with a bad checksum is not"),
    pytest.param(mhz19.ABC_OFF, False, id="the ABC command is not a read command"),
    pytest.param(mhz19.READ_COMMAND * 2, False, id="two read commands glued together are not one"),
    pytest.param("FF0186", False, id="text is not a read command"),
])
def test_is_read_command(data: bytes, expected: bool) -> None:
    assert mhz19.is_read_command(data) is expected


def test_parse_command_refuses_unknown_commands_and_bad_checksums() -> None:
    assert mhz19.parse_command(mhz19.ABC_ON) == (mhz19.CMD_ABC, b"\xa0\x00\x00\x00\x00")
    with pytest.raises(Unsupported):
        mhz19.parse_command(sealed(bytes.fromhex("ff01870000000000")))  # zero-point calibration
    with pytest.raises(FrameError):
        mhz19.parse_command(mhz19.READ_COMMAND[:8] + b"\x00")


def test_preheating_marks_the_observation_warming_up() -> None:
    assert mhz19.decode(MANUAL_ANSWER, preheating=True).warming_up


@pytest.mark.parametrize(("buffer", "frame", "rest"), [
    pytest.param(b"\x00\x12\xff" + MANUAL_ANSWER + b"\xff", MANUAL_ANSWER, b"\xff",
                 id="garbage before an answer is skipped and a trailing start byte kept"),
    pytest.param(MANUAL_ANSWER[:5], None, MANUAL_ANSWER[:5], id="part of an answer waits for the rest"),
    pytest.param(MANUAL_ANSWER[:4] + MANUAL_ANSWER, MANUAL_ANSWER, b"", id="an answer inside a torn one is found"),
    pytest.param(b"nothing", None, b"", id="garbage alone leaves nothing to keep"),
])
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert mhz19.find_frame(buffer) == (frame, rest)


def test_find_command_finds_a_read_command_after_noise() -> None:
    assert mhz19.find_command(b"\xff\x00" + mhz19.READ_COMMAND) == (mhz19.READ_COMMAND, b"")


@pytest.mark.parametrize(("co2", "temperature"), [(-1, 20), (65536, 20), (400, -41), (400, 216), (float("inf"), 0)])
def test_encode_response_refuses_what_an_answer_cannot_carry(co2: float, temperature: float) -> None:
    with pytest.raises(ValueError):
        mhz19.encode_response(co2, temperature)


# ------------------------------------------------------------------ properties
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=20))
def test_random_bytes_raise_only_documented_sensor_errors(data: bytes) -> None:
    try:
        mhz19.decode(data)
    except SensorError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=6, max_size=6))
def test_any_answer_with_a_valid_checksum_decodes(data: bytes) -> None:
    obs = mhz19.decode(sealed(b"\xff\x86" + data))
    assert 0 <= obs.values["co2"] <= 65535
    assert -40 <= obs.values["temperature"] <= 215


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), st.integers(-40, 215))
def test_decode_encode_round_trips(co2: int, temperature: int) -> None:
    assert mhz19.decode(mhz19.encode_response(co2, temperature)).values == {"co2": co2, "temperature": temperature}


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 65535), st.floats(-40, 215))
def test_encoding_rounds_to_whole_ppm_and_degrees(co2: float, temperature: float) -> None:
    values = mhz19.decode(mhz19.encode_response(co2, temperature)).values
    assert abs(values["co2"] - co2) <= 0.5
    assert abs(values["temperature"] - temperature) <= 0.5
