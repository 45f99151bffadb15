"""Plantower PMS5003 frames: test vectors from the PMS5003 series data manual v2.3 (2016)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors.base import FrameError, SensorError, Unsupported, WarmingUp
from firmware_bridge.sensors.plantower import pms5003

# A frame as a sensor in clean outdoor air sends it: PM2.5 = 8 µg/m³, 933 particles > 0.3 µm
# per 0.1 L, reserved word 0x9700; check code 0x0266 = sum of the 30 bytes before it.
CLEAN_AIR = bytes.fromhex(
    "424d001c"  # start characters, frame length 28
    "0005" "0008" "000a"  # PM1, PM2.5, PM10, CF=1 [µg/m³]
    "0005" "0008" "000a"  # PM1, PM2.5, PM10, atmospheric [µg/m³]
    "03a5" "0109" "003c" "0006" "0002" "0000"  # > 0.3, 0.5, 1, 2.5, 5, 10 µm [#/0.1 L]
    "9700"  # reserved
    "0266"  # check code
)
CLEAN_AIR_VALUES = {
    "pm1_cf1": 5.0, "pm2_5_cf1": 8.0, "pm10_cf1": 10.0, "pm1": 5.0, "pm2_5": 8.0, "pm10": 10.0,
    "pn0_3": 933.0, "pn0_5": 265.0, "pn1": 60.0, "pn2_5": 6.0, "pn5": 2.0, "pn10": 0.0,
}


def with_checksum(body: bytes) -> bytes:
    """Append a correct check code to the first 30 bytes of a frame."""
    return body + pms5003.checksum(body).to_bytes(2, "big")


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


ZEROS = with_checksum(bytes.fromhex("424d001c") + bytes(26))
MASS_WITHOUT_PARTICLES = with_checksum(bytes.fromhex("424d001c") + bytes.fromhex("0005" * 6) + bytes(14))

DECODE_CASES = [
    pytest.param(CLEAN_AIR, CLEAN_AIR_VALUES, id="a frame in clean air decodes to its twelve values"),
    pytest.param(CLEAN_AIR[:-1], FrameError, id="a frame one byte short is dropped"),
    pytest.param(b"", FrameError, id="no bytes at all is dropped"),
    pytest.param(CLEAN_AIR + b"\x00", FrameError, id="a frame one byte long is dropped"),
    pytest.param(b"\x42\x4e" + CLEAN_AIR[2:], FrameError, id="a wrong second start character is dropped"),
    pytest.param(with_checksum(b"\x42\x4d\x00\x14" + CLEAN_AIR[4:30]), FrameError,
                 id="a length field of 20 instead of 28 is dropped"),
    pytest.param(flip(CLEAN_AIR, 31), FrameError, id="a wrong check code is dropped"),
    pytest.param(flip(CLEAN_AIR, 9, 0x80), FrameError, id="a data bit flipped in transit is dropped"),
    pytest.param(ZEROS, WarmingUp, id="all-zero data after power-on means warming up"),
    pytest.param(MASS_WITHOUT_PARTICLES, FrameError, id="mass without any particle counted is inconsistent"),
    pytest.param(pms5003.PASSIVE_READ, FrameError, id="a command frame is not a data frame"),
    pytest.param(bytearray(CLEAN_AIR), CLEAN_AIR_VALUES, id="a bytearray decodes like bytes"),
    pytest.param("BM" + "x" * 30, FrameError, id="text instead of bytes is dropped"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003.decode, frame, expected, sensor="plantower-pms5003")


FIND_CASES = [
    pytest.param(b"\x00\xff\x42garbage" + CLEAN_AIR + b"\x42\x4d\x00",
                 CLEAN_AIR, b"\x42\x4d\x00", id="garbage before a good frame is skipped and the next start kept"),
    pytest.param(CLEAN_AIR[:20], None, CLEAN_AIR[:20], id="half a frame waits for the rest"),
    pytest.param(CLEAN_AIR[:7] + CLEAN_AIR, CLEAN_AIR, b"", id="a good frame inside a torn one is found"),
    pytest.param(flip(CLEAN_AIR, 31) + CLEAN_AIR, CLEAN_AIR, b"", id="a frame with a bad checksum is passed over"),
    pytest.param(pms5003.encode_ack(0xE1, 0) + CLEAN_AIR, CLEAN_AIR, b"",
                 id="a mode change acknowledgement is passed over"),
    pytest.param(CLEAN_AIR + CLEAN_AIR, CLEAN_AIR, CLEAN_AIR, id="two frames back to back come one at a time"),
    pytest.param(b"no frame here", None, b"", id="garbage alone leaves nothing to keep"),
    pytest.param(b"no frame here\x42", None, b"\x42", id="a trailing first start character is kept"),
    pytest.param(b"", None, b"", id="an empty buffer gives nothing"),
]


@pytest.mark.parametrize(("buffer", "frame", "rest"), FIND_CASES)
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert pms5003.find_frame(buffer) == (frame, rest)


COMMAND_CASES = [
    pytest.param(pms5003.PASSIVE_READ, "424de200000171", id="read in passive mode"),
    pytest.param(pms5003.PASSIVE_MODE, "424de100000170", id="change to passive mode"),
    pytest.param(pms5003.ACTIVE_MODE, "424de100010171", id="change to active mode"),
    pytest.param(pms5003.SLEEP, "424de400000173", id="sleep"),
    pytest.param(pms5003.WAKEUP, "424de400010174", id="wake up"),
]


@pytest.mark.parametrize(("command", "expected_hex"), COMMAND_CASES)
def test_command_frames_match_the_data_manual(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex
    cmd, data = pms5003.parse_command(command)
    assert pms5003.command(cmd, data) == command


def test_an_unknown_command_byte_is_refused() -> None:
    with pytest.raises(Unsupported):
        pms5003.parse_command(with_checksum_command(0xE9))
    with pytest.raises(ValueError):
        pms5003.command(0xE9)


def with_checksum_command(cmd: int) -> bytes:
    body = b"\x42\x4d" + bytes([cmd, 0, 0])
    return body + pms5003.checksum(body).to_bytes(2, "big")


def test_find_command_skips_noise_before_a_command() -> None:
    assert pms5003.find_command(b"\x42\x00" + pms5003.SLEEP + b"\x42") == (pms5003.SLEEP, b"\x42")


def test_encode_refuses_missing_and_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="pn10"):
        pms5003.encode({k: 1 for k in pms5003.FIELDS if k != "pn10"})
    with pytest.raises(ValueError, match="uint16|data word"):
        pms5003.encode(dict.fromkeys(pms5003.FIELDS, 70000))
    with pytest.raises(ValueError):
        pms5003.encode(dict.fromkeys(pms5003.FIELDS, float("nan")))


def test_the_warming_up_frame_is_all_zero_data() -> None:
    assert pms5003.WARMING_UP_FRAME == ZEROS


# ------------------------------------------------------------------ properties
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_documented_sensor_errors(data: bytes) -> None:
    try:
        pms5003.decode(data)
    except SensorError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=26, max_size=26))
def test_random_data_in_a_well_formed_frame_decodes_or_raises_sensor_errors(data: bytes) -> None:
    frame = with_checksum(b"\x42\x4d\x00\x1c" + data)
    try:
        obs = pms5003.decode(frame)
    except (WarmingUp, FrameError):
        return
    assert set(obs.values) == set(pms5003.FIELDS)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_find_frame_returns_only_valid_frames_and_never_grows_the_buffer(data: bytes) -> None:
    frame, rest = pms5003.find_frame(data)
    assert len(rest) <= len(data)
    if frame is not None:
        assert len(frame) == pms5003.FRAME_SIZE and frame[:2] == pms5003.HEADER
        assert int.from_bytes(frame[-2:], "big") == pms5003.checksum(frame[:-2])


uint16 = st.integers(min_value=0, max_value=0xFFFF)
plausible_values = st.fixed_dictionaries({name: uint16 for name in pms5003.FIELDS}).filter(
    lambda v: v["pn0_3"] > 0)


@settings(max_examples=200, deadline=None)
@given(plausible_values, st.binary(max_size=40))
def test_decode_encode_round_trips_and_find_frame_resyncs(values: dict[str, int], garbage: bytes) -> None:
    frame = pms5003.encode(values)
    assert pms5003.decode(frame).values == values
    found, _ = pms5003.find_frame(garbage.replace(b"\x42", b"\x00") + frame)
    assert found == frame


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({name: st.floats(min_value=1.0, max_value=60000.0) for name in pms5003.FIELDS}))
def test_encoding_rounds_to_the_nearest_whole_unit(values: dict[str, float]) -> None:
    decoded = pms5003.decode(pms5003.encode(values)).values
    assert all(abs(decoded[name] - values[name]) <= 0.5 for name in pms5003.FIELDS)


# ------------------------------------------------------------------ PyPMS captures, aliases, start-up
# Frames captured from a PMS5003 (avaldebe/PyPMS tests/captured_data/PMSx003.hexdump): PM1 = 0 but PM2.5 = 8.
PYPMS_CAPTURE = bytes.fromhex(
    "424d001c0000000800080000000800080" "0d20046002d001e00000000970002c5"
    "424d001c0000000700070000000700070" "0d20046002d001e00000000970002c1"
)


def test_frames_captured_by_pypms_decode_to_the_values_pypms_gives() -> None:
    first, rest = pms5003.find_frame(PYPMS_CAPTURE)
    second, _ = pms5003.find_frame(rest)
    assert first is not None and second is not None
    assert pms5003.decode(first).values == {
        "pm1_cf1": 0.0, "pm2_5_cf1": 8.0, "pm10_cf1": 8.0, "pm1": 0.0, "pm2_5": 8.0, "pm10": 8.0,
        "pn0_3": 210.0, "pn0_5": 70.0, "pn1": 45.0, "pn2_5": 30.0, "pn5": 0.0, "pn10": 0.0}
    assert pms5003.decode(second).values["pm2_5"] == 7.0


def test_the_alias_keyword_names_the_model_in_the_observation() -> None:
    assert pms5003.decode(CLEAN_AIR, sensor="plantower-pmsa003").sensor == "plantower-pmsa003"


def test_opening_the_port_wakes_the_sensor_and_sets_the_mode_the_registration_reads() -> None:
    assert pms5003.INIT_COMMANDS == (pms5003.WAKEUP, pms5003.ACTIVE_MODE)
    assert pms5003.PASSIVE_INIT_COMMANDS == (pms5003.WAKEUP, pms5003.PASSIVE_MODE)


@pytest.mark.parametrize(("cmd", "data", "expected_hex"), [
    pytest.param(pms5003.CMD_MODE, 0, "424d0004e1000174", id="passive mode acknowledged as seen in the field"),
    pytest.param(pms5003.CMD_SLEEP, 1, "424d0004e4010178", id="wake-up acknowledged"),
])
def test_acknowledgements_are_eight_bytes_of_length_four(cmd: int, data: int, expected_hex: str) -> None:
    ack = pms5003.encode_ack(cmd, data)
    assert ack.hex() == expected_hex
    assert pms5003.find_frame(ack) == (None, b"")


@pytest.mark.parametrize(("value", "scale", "signed", "expected"), [
    pytest.param(-3.5, 10, True, -35, id="a negative temperature fits a signed word"),
    pytest.param(0.0214, 1000, False, 21, id="formaldehyde rounds to the nearest µg/m³"),
    pytest.param(65535, 1, False, 65535, id="the largest unsigned word"),
])
def test_word_scales_and_rounds(value: float, scale: float, signed: bool, expected: int) -> None:
    assert pms5003.word("x", value, scale, signed=signed) == expected


@pytest.mark.parametrize(("value", "scale", "signed"), [(-1, 1, False), (3277, 10, True), (float("inf"), 1, False)])
def test_word_refuses_what_a_data_word_cannot_carry(value: float, scale: float, signed: bool) -> None:
    with pytest.raises(ValueError):
        pms5003.word("x", value, scale, signed=signed)
