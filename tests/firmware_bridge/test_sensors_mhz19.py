"""Winsen MH-Z19B answers and commands: test vectors from the MH-Z19B user's manual v1.0 and captured answers.

Captured answers: avaldebe/PyPMS tests/captured_data/MHZ19B.hexdump (a sensor polled every 10 s; its CSV gives
636, 636, 635, 633 ppm).  Commands: letscontrolit/ESPEasy src/src/PluginStructs/P049_data_struct.cpp lists them
with their checksums.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, SensorError, Unsupported, WarmingUp
from firmware_bridge.sensors.winsen import mhz19

# The manual's example answer: FF 86 02 60 47 00 00 00 D1 -> 0x0260 = 608 ppm; 0x47 - 40 = 31 °C.
MANUAL_ANSWER = bytes.fromhex("ff86026047000000d1")
CAPTURED = [bytes.fromhex(h) for h in ("ff86027c42000000ba", "ff86027b42000000bb", "ff86027942000000bd")]


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
    pytest.param(CAPTURED[0], {"co2": 636.0, "temperature": 26.0}, id="a captured answer: 636 ppm at 26 °C"),
    pytest.param(CAPTURED[1], {"co2": 635.0, "temperature": 26.0}, id="a captured answer: 635 ppm"),
    pytest.param(CAPTURED[2], {"co2": 633.0, "temperature": 26.0}, id="a captured answer: 633 ppm"),
    pytest.param(sealed(bytes.fromhex("ff8603203c400000")), {"co2": 800.0, "temperature": 20.0},
                 id="an original MH-Z19's stability byte 64 (stable) is accepted"),
    pytest.param(sealed(bytes.fromhex("ff79000000000000")), Unsupported,
                 id="the answer to the ABC command is an acknowledgement"),
    pytest.param(sealed(bytes.fromhex("ff99000000000000")), Unsupported,
                 id="the answer to the range command is an acknowledgement"),
    pytest.param(bytes.fromhex("ff17040002d307d039"), FrameError, id="a Winsen formaldehyde module's packet"),
    pytest.param(MANUAL_ANSWER[:8] + b"\xd2", FrameError, id="a wrong checksum is dropped"),
    pytest.param(bytes.fromhex("ff8601f40000000084"), "checksum", id="PyPMS's wrong-checksum vector"),
    pytest.param(mhz19.READ_COMMAND, FrameError, id="our own read command echoed back is dropped"),
    pytest.param(bytes.fromhex("ff860000000000007a"), WarmingUp,
                 id="an all-zero answer while starting means warming up (PyPMS's test vector)"),
    pytest.param(sealed(bytes.fromhex("ff86000040000000")), WarmingUp, id="0 ppm at 24 °C is no reading either"),
    pytest.param(sealed(bytes.fromhex("ff8601f440003a98")), WarmingUp,
                 id="U1U2 = 15000 marks a booting sensor (Tasmota, ESPEasy)"),
    pytest.param(sealed(bytes.fromhex("ff8601f440010000")), WarmingUp,
                 id="SS = 1 marks a booting original MH-Z19 (Tasmota, ESPEasy)"),
    pytest.param(sealed(bytes.fromhex("ff86ec8440000000")), "60548 ppm",
                 id="60548 ppm right after power-up is beyond any range (WifWaf/MH-Z19 issue 2)"),
    pytest.param(mhz19.encode_response(10000, 20), {"co2": 10000.0, "temperature": 20.0},
                 id="the top of the widest range is a reading"),
    pytest.param([0xFF, 0x86], FrameError, id="a list instead of bytes is dropped"),
]


@pytest.mark.parametrize(("answer", "expected"), DECODE_CASES)
def test_decode(answer: bytes, expected: dict[str, float] | str | type[Exception]) -> None:
    if isinstance(expected, str):
        with pytest.raises(FrameError, match=expected):
            mhz19.decode(answer)
    else:
        check_decode(mhz19.decode, answer, expected, sensor="winsen-mhz19")


def test_a_captured_poll_sequence_decodes_to_pypms_csv() -> None:
    stream = b"".join([CAPTURED[0]] * 8 + CAPTURED[1:])  # the hexdump's ten answers, one after the other
    values, rest = [], stream
    while True:
        frame, rest = mhz19.find_frame(rest)
        if frame is None:
            break
        values.append(mhz19.decode(frame).values["co2"])
    assert values == [636.0] * 8 + [635.0, 633.0] and rest == b""


@pytest.mark.parametrize(("command", "expected_hex"), [
    pytest.param(mhz19.READ_COMMAND, "ff0186000000000079", id="read CO2"),
    pytest.param(mhz19.ABC_ON, "ff0179a000000000e6", id="self-calibration on"),
    pytest.param(mhz19.ABC_OFF, "ff0179000000000086", id="self-calibration off"),
    pytest.param(mhz19.ZERO_CALIBRATION, "ff0187000000000078", id="zero point calibration"),
    pytest.param(mhz19.span_calibration(2000), "ff018807d0000000a0", id="span point calibration at 2000 ppm"),
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
        mhz19.parse_command(sealed(bytes.fromhex("ff018d0000000000")))  # reset (Tasmota, ESPEasy)
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
    pytest.param(b"\xff" + CAPTURED[0] + CAPTURED[1], CAPTURED[0], CAPTURED[1], id="a doubled start byte is passed"),
    pytest.param(sealed(bytes.fromhex("ff79000000000000")) + MANUAL_ANSWER, sealed(bytes.fromhex("ff79000000000000")),
                 MANUAL_ANSWER, id="an acknowledgement is cut before the answer that follows"),
    pytest.param(mhz19.ABC_OFF + MANUAL_ANSWER, MANUAL_ANSWER, b"", id="an echoed command is passed over"),
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
def test_any_answer_with_a_valid_checksum_decodes_or_says_why_not(data: bytes) -> None:
    co2, booting = data[0] * 256 + data[1], data[3] == 1 or data[4:6] == (15000).to_bytes(2, "big")
    if booting or co2 == 0:
        with pytest.raises(WarmingUp):
            mhz19.decode(sealed(b"\xff\x86" + data))
    elif co2 > 10000:
        with pytest.raises(FrameError, match="above its largest range"):
            mhz19.decode(sealed(b"\xff\x86" + data))
    else:
        obs = mhz19.decode(sealed(b"\xff\x86" + data))
        assert obs.values == {"co2": co2, "temperature": data[2] - 40}


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10000), st.integers(-40, 215))
def test_decode_encode_round_trips(co2: int, temperature: int) -> None:
    assert mhz19.decode(mhz19.encode_response(co2, temperature)).values == {"co2": co2, "temperature": temperature}


@settings(max_examples=100, deadline=None)
@given(st.floats(1, 10000), st.floats(-40, 215))
def test_encoding_rounds_to_whole_ppm_and_degrees(co2: float, temperature: float) -> None:
    values = mhz19.decode(mhz19.encode_response(co2, temperature)).values
    assert abs(values["co2"] - co2) <= 0.5
    assert abs(values["temperature"] - temperature) <= 0.5


# ------------------------------------------------------------------ range, self-calibration at start-up
@pytest.mark.parametrize(("ppm", "expected_hex"), [
    pytest.param(2000, "ff019900000007d08f", id="the manual's 0-2000 ppm range command"),
    pytest.param(5000, "ff01990000001388cb", id="the manual's 0-5000 ppm range command"),
    pytest.param(10000, "ff019900000027102f", id="0-10000 ppm"),
])
def test_range_commands_match_the_manual(ppm: int, expected_hex: str) -> None:
    command = mhz19.set_range(ppm)
    assert command.hex() == expected_hex
    assert mhz19.parse_command(command) == (mhz19.CMD_RANGE, b"\x00\x00\x00" + ppm.to_bytes(2, "big"))


def test_a_range_the_sensor_does_not_have_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="2000, 5000, 10000"):
        mhz19.set_range(3000)


@pytest.mark.parametrize("ppm", [0, 10001])
def test_a_span_beyond_the_widest_range_is_refused(ppm: int) -> None:
    with pytest.raises(ValueError, match="1..10000"):
        mhz19.span_calibration(ppm)


def test_opening_the_port_switches_self_calibration_off_unless_the_abc_variant_is_chosen() -> None:
    assert mhz19.INIT_COMMANDS == (mhz19.ABC_OFF,)
    assert mhz19.REBOOT_COMMANDS == (mhz19.ABC_OFF,), "the sensor boots with ABC on: off again after a reboot"
    assert mhz19.ABC_INIT_COMMANDS == (mhz19.ABC_ON,)
    assert mhz19.WARMUP_S == mhz19.PREHEAT_S == 180.0
