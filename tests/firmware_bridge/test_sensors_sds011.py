"""Nova Fitness SDS011: frames and commands from the Laser Dust Sensor Control Protocol V1.3 and real captures.

Every command and reply below marked "the protocol's example" is one of the protocol document's worked
examples for device A160, byte for byte; the captured frames are avaldebe/PyPMS's.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode, frames_in_pieces

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
    pytest.param(sds011.command(sds011.CMD_MODE), "aab402000000000000000000000000ffff00ab",
                 id="the protocol's example: query the reporting mode"),
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
    pytest.param(sds011.working_period(0, device_id=0xA160), "aab408010000000000000000000000a1600aab",
                 id="the protocol's example: continuous working on A160"),
    pytest.param(sds011.command(sds011.CMD_PERIOD, device_id=0xA160), "aab408000000000000000000000000a16009ab",
                 id="the protocol's example: query the working period of A160"),
    pytest.param(sds011.command(sds011.CMD_SLEEP, b"\x01\x00", device_id=0xA160),
                 "aab406010000000000000000000000a16008ab", id="the protocol's example: A160 to sleep"),
    pytest.param(sds011.command(sds011.CMD_SLEEP, b"\x01\x01", device_id=0xA160),
                 "aab406010100000000000000000000a16009ab", id="the protocol's example: A160 to work"),
    pytest.param(sds011.command(sds011.CMD_SLEEP, device_id=0xA160), "aab406000000000000000000000000a16007ab",
                 id="the protocol's example: query the working state of A160"),
    pytest.param(sds011.command(sds011.CMD_QUERY, device_id=0xA160), "aab404000000000000000000000000a16005ab",
                 id="the protocol's example: query data from A160"),
    pytest.param(sds011.set_device_id(0xA001, device_id=0xA160), "aab40500000000000000000000a001a160a7ab",
                 id="the protocol's example: device A160 becomes A001"),
    pytest.param(sds011.command(sds011.CMD_FIRMWARE, device_id=0xA160), "aab407000000000000000000000000a16008ab",
                 id="the protocol's example: firmware version of A160"),
    pytest.param(sds011.FIRMWARE_VERSION, "aab407000000000000000000000000ffff05ab", id="firmware version of any"),
]


@pytest.mark.parametrize(("command", "expected_hex"), COMMANDS)
def test_commands_match_the_control_protocol(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex
    parsed = sds011.parse_command(command)
    assert sds011.command(parsed.cmd, parsed.data, device_id=parsed.device_id) == command


def test_the_example_reply_is_what_encode_reply_builds() -> None:
    assert sds011.encode_reply(sds011.CMD_MODE, b"\x01\x01\x00") == EXAMPLE_REPLY


REPLIES = [  # the protocol's example replies of device A160, and what each reports
    pytest.param("aac502000000a16003ab", "reporting mode is active", id="reporting mode: active"),
    pytest.param("aac502000100a16004ab", "reporting mode is query", id="reporting mode: query"),
    pytest.param("aac502010100a16005ab", "reporting mode set to query", id="reporting mode set to query"),
    pytest.param("aac506010000a16008ab", "state set to sleep", id="set to sleep"),
    pytest.param("aac506010100a16009ab", "state set to work", id="set to work"),
    pytest.param("aac506000100a16008ab", "state is work", id="working"),
    pytest.param("aac508010100a1600bab", "working period set to 1 min", id="period set to one minute"),
    pytest.param("aac508010000a1600aab", "working period set to continuous", id="period set to continuous"),
    pytest.param("aac508000200a1600bab", "working period is 2 min", id="period is two minutes"),
    pytest.param("aac5070f070aa16028ab", "firmware 15-07-10", id="firmware version"),
    pytest.param("aac505000000a001a6ab", "device ID set to a001", id="new device ID"),
]


@pytest.mark.parametrize(("reply", "says"), REPLIES)
def test_replies_are_cut_and_refused_as_measurements_saying_what_they_report(reply: str, says: str) -> None:
    frame = bytes.fromhex(reply)
    assert sds011.find_frame(b"\x00" + frame + b"\xaa") == (frame, b"\xaa")
    with pytest.raises(Unsupported, match=says):
        sds011.decode(frame)


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
    pytest.param(bytes.fromhex("3A0AA1601DABAAC0D4043A0AA1601DAB"), EXAMPLE, b"",
                 id="PyPMS: data at the end of the buffer after the tail of the last frame"),
    pytest.param(b"\xaa\xaa" + EXAMPLE, EXAMPLE, b"", id="a doubled head byte is passed over"),
    pytest.param(b"\xaa\x12\xaa\xc0\xd4", None, b"\xaa\xc0\xd4", id="a head byte followed by no known kind is dropped"),
    pytest.param(b"\x00\xaa", None, b"\xaa", id="a trailing head byte is kept"),
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


# ------------------------------------------------------------------ captured frames
# avaldebe/PyPMS tests/captured_data/SDS01x.hexdump: ten frames read from an SDS011 (device D958), and
# tests/captured_data/SDS01x.csv: PM2.5 and PM10 as PyPMS decodes them [µg/m³].
PYPMS_HEXDUMP = """
aa c0 06 00 06 00 58 d9 3d ab  aa c0 09 00 09 00 58 d9 43 ab  aa c0 09 00 09 00 58 d9 43 ab
aa c0 09 00 09 00 58 d9 43 ab  aa c0 09 00 09 00 58 d9 43 ab  aa c0 09 00 09 00 58 d9 43 ab
aa c0 09 00 09 00 58 d9 43 ab  aa c0 08 00 08 00 58 d9 41 ab  aa c0 08 00 08 00 58 d9 41 ab
aa c0 08 00 08 00 58 d9 41 ab
"""
PYPMS_CSV = [(0.6, 0.6), (0.9, 0.9), (0.9, 0.9), (0.9, 0.9), (0.9, 0.9), (0.9, 0.9), (0.9, 0.9),
             (0.8, 0.8), (0.8, 0.8), (0.8, 0.8)]


@pytest.mark.parametrize("chunk", [1, 3, 9, 10, 11, 100])
def test_pypms_capture_split_across_reads_decodes_to_pypms_values(chunk: int) -> None:
    capture = bytes.fromhex(PYPMS_HEXDUMP)
    frames = frames_in_pieces(sds011.find_frame, capture, chunk)
    assert [(o.values["pm2_5"], o.values["pm10"]) for o in map(sds011.decode, frames)] == PYPMS_CSV


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=30))
def test_decode_encode_round_trips_and_find_frame_resyncs(pm2_5: int, pm10: int, device: int, garbage: bytes) -> None:
    frame = sds011.encode(pm2_5 / 10, pm10 / 10, device_id=device)
    if pm2_5 or pm10:
        assert sds011.decode(frame).values == {"pm2_5": pm2_5 / 10, "pm10": pm10 / 10}
    assert sds011.find_frame(garbage.replace(b"\xaa", b"\x00") + frame)[0] == frame
