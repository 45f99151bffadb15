"""Nova Fitness SDS011: frames and commands from the Laser Dust Sensor Control Protocol V1.3."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.novafitness import sds011

# The protocol's example answer to "query data" from device A160: PM2.5 = 0x04D4 = 123.6, PM10 = 0x0A3A = 261.8.
EXAMPLE = bytes.fromhex("aac0d4043a0aa1601dab")
# Its example reply to "set query mode" sent to device A160.
EXAMPLE_REPLY = bytes.fromhex("aac502010100a16005ab")
# Captured from a sensor in clean air (avaldebe/PyPMS tests/captured_data/SDS01x.hexdump): 0.6 and 0.6 µg/m³.
CAPTURED = bytes.fromhex("aac00600060058d93dab")


def sealed(body: bytes) -> bytes:
    """``AA C0`` + 6 bytes: append the checksum and the tail."""
    return body + bytes([sds011.checksum(body[2:8]), 0xAB])


DECODE_CASES = [
    pytest.param(EXAMPLE, {"pm2_5": 123.6, "pm10": 261.8}, id="the protocol's example frame"),
    pytest.param(CAPTURED, {"pm2_5": 0.6, "pm10": 0.6}, id="a frame captured in clean air"),
    pytest.param(sealed(bytes.fromhex("aac00f27ffff0000")), {"pm2_5": 999.9, "pm10": 6553.5},
                 id="the largest words are 999.9 and 6553.5 µg/m³"),
    pytest.param(EXAMPLE[:-1], FrameError, id="a frame one byte short is dropped"),
    pytest.param(b"\xab" + EXAMPLE[1:], FrameError, id="a wrong head is dropped"),
    pytest.param(EXAMPLE[:-1] + b"\xaa", FrameError, id="a wrong tail is dropped"),
    pytest.param(EXAMPLE[:8] + b"\x00\xab", FrameError, id="a wrong checksum is dropped"),
    pytest.param(sealed(bytes.fromhex("aac10000000000a160")), FrameError, id="an unknown frame kind is dropped"),
    pytest.param(sealed(bytes.fromhex("aac000000000a160")), WarmingUp, id="zeros while the fan starts mean warming up"),
    pytest.param(EXAMPLE_REPLY, Unsupported, id="a reply to a command is not a measurement"),
    pytest.param(sds011.QUERY_DATA, FrameError, id="our own command echoed back is dropped"),
    pytest.param("AAC0", FrameError, id="text instead of bytes is dropped"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(sds011.decode, frame, expected, sensor="novafitness-sds011")


COMMANDS = [
    pytest.param(sds011.command(sds011.CMD_MODE, b"\x01\x01", device_id=0xA160),
                 "aab402010100000000000000000000a16005ab", id="the protocol's example: set query mode on A160"),
    pytest.param(sds011.QUERY_DATA, "aab404000000000000000000000000ffff02ab", id="query data from any sensor"),
    pytest.param(sds011.ACTIVE_MODE, "aab402010000000000000000000000ffff01ab", id="set active reporting"),
    pytest.param(sds011.QUERY_MODE, "aab402010100000000000000000000ffff02ab", id="set query reporting"),
    pytest.param(sds011.SLEEP, "aab406010000000000000000000000ffff05ab", id="sleep"),
    pytest.param(sds011.WORK, "aab406010100000000000000000000ffff06ab", id="work"),
    pytest.param(sds011.working_period(1, device_id=0xA160), "aab408010100000000000000000000a1600bab",
                 id="the protocol's example: one measurement a minute on A160"),
    pytest.param(sds011.CONTINUOUS, "aab408010000000000000000000000ffff07ab", id="continuous working"),
]


@pytest.mark.parametrize(("command", "expected_hex"), COMMANDS)
def test_commands_match_the_control_protocol(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex
    parsed = sds011.parse_command(command)
    assert sds011.command(parsed.cmd, parsed.data, device_id=parsed.device_id) == command


def test_the_example_reply_is_what_encode_reply_builds() -> None:
    assert sds011.encode_reply(sds011.CMD_MODE, b"\x01\x01\x00") == EXAMPLE_REPLY


@pytest.mark.parametrize(("bad", "error"), [
    pytest.param(sds011.QUERY_DATA[:-1], FrameError, id="a command one byte short"),
    pytest.param(sds011.QUERY_DATA[:17] + b"\x00\xab", FrameError, id="a command with a wrong checksum"),
    pytest.param(bytes.fromhex("aab409") + bytes(12) + b"\xff\xff\x07\xab", Unsupported, id="an unknown command byte"),
])
def test_parse_command_refuses(bad: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        sds011.parse_command(bad)


@pytest.mark.parametrize(("args", "match"), [((0x42,), "unknown"), ((0x04, bytes(13)), "12 bytes"),
                                              ((0x04, b"", 0x10000), "16 bits")])
def test_command_refuses_what_the_protocol_cannot_carry(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        if len(args) == 3:
            sds011.command(args[0], args[1], device_id=args[2])
        else:
            sds011.command(*args)


def test_a_working_period_beyond_thirty_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="0 .continuous. to 30"):
        sds011.working_period(31)


FIND_CASES = [
    pytest.param(b"\x00\xaa\x12" + EXAMPLE + b"\xaa\xc0", EXAMPLE, b"\xaa\xc0", id="garbage before a frame is skipped"),
    pytest.param(EXAMPLE[:6], None, EXAMPLE[:6], id="half a frame waits for the rest"),
    pytest.param(EXAMPLE[:4] + EXAMPLE, EXAMPLE, b"", id="a frame inside a torn one is found"),
    pytest.param(EXAMPLE_REPLY + EXAMPLE, EXAMPLE_REPLY, EXAMPLE, id="a reply is cut like a data frame"),
    pytest.param(sds011.QUERY_DATA + EXAMPLE, EXAMPLE, b"", id="a command echoed back is passed over"),
    pytest.param(b"no head", None, b"", id="garbage alone leaves nothing"),
]


@pytest.mark.parametrize(("buffer", "frame", "rest"), FIND_CASES)
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert sds011.find_frame(buffer) == (frame, rest)


def test_find_command_finds_a_command_after_noise() -> None:
    assert sds011.find_command(b"\xaa\x00" + sds011.WORK + b"\xaa") == (sds011.WORK, b"\xaa")


@pytest.mark.parametrize("value", [-0.1, 6553.6, float("nan")])
def test_encode_refuses_what_a_frame_cannot_carry(value: float) -> None:
    with pytest.raises(ValueError):
        sds011.encode(value, 1.0)


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=30))
def test_decode_encode_round_trips_and_find_frame_resyncs(pm2_5: int, pm10: int, device: int, garbage: bytes) -> None:
    frame = sds011.encode(pm2_5 / 10, pm10 / 10, device_id=device)
    if pm2_5 or pm10:
        assert sds011.decode(frame).values == {"pm2_5": pm2_5 / 10, "pm10": pm10 / 10}
    assert sds011.find_frame(garbage.replace(b"\xaa", b"\x00") + frame)[0] == frame
