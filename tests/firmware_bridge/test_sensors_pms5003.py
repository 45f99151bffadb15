"""Plantower PMS5003 frames: frames captured from real sensors, the data manual v2.3 (2016) and field answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode, frames_in_pieces

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
# avaldebe/PyPMS tests/sensor/test_sensor.py, "PMSx003 good data" and its values.
PYPMS_GOOD = bytes.fromhex("424d001c0005000d00160005000d001602fd00fc001d000f00060006970003c5")
PYPMS_GOOD_VALUES = dict(zip(pms5003.FIELDS, map(float, (5, 13, 22, 5, 13, 22, 765, 252, 29, 15, 6, 6))))
# avaldebe/PyPMS tests/sensor/test_sensor.py, "PMS3003 good data": a 24-byte frame of length 20.
PMS3003_FRAME = bytes.fromhex("424d00140051006A007700350046004F33D20F28003F041A")
# avaldebe/PyPMS tests/sensors/test_sensor.py: a PMS5003ST frame (length 36) with mass but no particle.
PMS5003ST_FRAME = bytes.fromhex(
    "424d00240000000a00200000000a002000000000000000000000000000000000000000009700019E")
# avaldebe/PyPMS tests/sensors/test_sensor.py: PM10 = 32 µg/m³ but no particle > 0.3 µm.
PYPMS_INCONSISTENT = bytes.fromhex("424d001c0000000a00200000000a002000000000000000000000000097000196")
# Acknowledgements read from real sensors (the answer lengths in avaldebe/PyPMS
# src/pms/sensors/plantower/pmsx003.py ``commands``: 8 bytes for the mode and sleep commands).
ACK_PASSIVE = bytes.fromhex("424d0004e1000174")
ACK_ACTIVE = bytes.fromhex("424d0004e1010175")
ACK_SLEEP = bytes.fromhex("424d0004e4000177")


def with_checksum(body: bytes) -> bytes:
    """Append a correct check code to the first bytes of a frame."""
    return body + pms5003.checksum(body).to_bytes(2, "big")


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


ZEROS = with_checksum(bytes.fromhex("424d001c") + bytes(26))
MASS_WITHOUT_PARTICLES = with_checksum(bytes.fromhex("424d001c") + bytes.fromhex("0005" * 6) + bytes(14))

DECODE_CASES = [
    pytest.param(CLEAN_AIR, CLEAN_AIR_VALUES, id="a frame in clean air decodes to its twelve values"),
    pytest.param(PYPMS_GOOD, PYPMS_GOOD_VALUES, id="PyPMS's good frame decodes to PyPMS's values"),
    pytest.param(CLEAN_AIR[:-1], FrameError, id="a frame one byte short is dropped"),
    pytest.param(b"", FrameError, id="no bytes at all is dropped"),
    pytest.param(CLEAN_AIR + b"\x00", FrameError, id="a frame one byte long is dropped"),
    pytest.param(b"\x42\x4e" + CLEAN_AIR[2:], FrameError, id="a wrong second start character is dropped"),
    pytest.param(with_checksum(b"\x42\x4d\x00\x14" + CLEAN_AIR[4:30]), FrameError,
                 id="a length field of 20 in a 32-byte frame is dropped"),
    pytest.param(flip(CLEAN_AIR, 31), FrameError, id="a wrong check code is dropped"),
    pytest.param(flip(CLEAN_AIR, 9, 0x80), FrameError, id="a data bit flipped in transit is dropped"),
    pytest.param(ZEROS, WarmingUp, id="all-zero data after power-on means warming up"),
    pytest.param(MASS_WITHOUT_PARTICLES, FrameError, id="mass without any particle counted is inconsistent"),
    pytest.param(PYPMS_INCONSISTENT, FrameError, id="PyPMS's inconsistent frame is refused as PyPMS refuses it"),
    pytest.param(PMS3003_FRAME, FrameError, id="a PMS3003 frame is another model's"),
    pytest.param(PMS5003ST_FRAME, FrameError, id="a PMS5003ST frame is another model's"),
    pytest.param(ACK_PASSIVE, Unsupported, id="the acknowledgement of passive mode is not a measurement"),
    pytest.param(ACK_SLEEP, Unsupported, id="the acknowledgement of sleep is not a measurement"),
    pytest.param(flip(ACK_PASSIVE, 7), FrameError, id="an acknowledgement with a wrong check code is dropped"),
    pytest.param(pms5003.PASSIVE_READ, FrameError, id="a command frame is not a data frame"),
    pytest.param(bytearray(CLEAN_AIR), CLEAN_AIR_VALUES, id="a bytearray decodes like bytes"),
    pytest.param("BM" + "x" * 30, FrameError, id="text instead of bytes is dropped"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(pms5003.decode, frame, expected, sensor="plantower-pms5003")


@pytest.mark.parametrize(("frame", "words"), [
    pytest.param(PMS3003_FRAME, ["length 20", "PMS3003", "(pms3003)"], id="PMS3003"),
    pytest.param(PMS5003ST_FRAME, ["length 36", "PMS5003ST", "(pms5003st)"], id="PMS5003ST"),
])
def test_a_frame_of_another_model_is_refused_naming_that_model_and_its_protocol(frame: bytes, words: list[str]) -> None:
    with pytest.raises(FrameError) as caught:
        pms5003.decode(frame)
    assert all(word in str(caught.value) for word in words), caught.value


@pytest.mark.parametrize(("ack", "what"), [
    pytest.param(ACK_PASSIVE, "passive mode", id="passive"), pytest.param(ACK_ACTIVE, "active mode", id="active"),
    pytest.param(ACK_SLEEP, "sleep", id="sleep"),
])
def test_acknowledgements_seen_in_the_field_are_cut_and_named(ack: bytes, what: str) -> None:
    assert pms5003.find_frame(b"\x00" + ack + CLEAN_AIR) == (ack, CLEAN_AIR)
    with pytest.raises(Unsupported, match=f"acknowledgement of {what},"):
        pms5003.decode(ack)
    assert pms5003.encode_ack(ack[4], ack[5]) == ack


FIND_CASES = [
    pytest.param(b"\x00\xff\x42garbage" + CLEAN_AIR + b"\x42\x4d\x00",
                 CLEAN_AIR, b"\x42\x4d\x00", id="garbage before a good frame is skipped and the next start kept"),
    pytest.param(CLEAN_AIR[:20], None, CLEAN_AIR[:20], id="half a frame waits for the rest"),
    pytest.param(CLEAN_AIR[:7] + CLEAN_AIR, CLEAN_AIR, b"", id="a good frame inside a torn one is found"),
    pytest.param(flip(CLEAN_AIR, 31) + CLEAN_AIR, CLEAN_AIR, b"", id="a frame with a bad checksum is passed over"),
    pytest.param(PYPMS_GOOD[16:] + PYPMS_GOOD, PYPMS_GOOD, b"",
                 id="PyPMS: data at the end of the buffer after the tail of the last frame"),
    pytest.param(CLEAN_AIR + CLEAN_AIR, CLEAN_AIR, CLEAN_AIR, id="two frames back to back come one at a time"),
    pytest.param(PMS5003ST_FRAME + CLEAN_AIR, PMS5003ST_FRAME, CLEAN_AIR,
                 id="another model's frame is cut whole, for decode to name it"),
    pytest.param(b"no frame here", None, b"", id="garbage alone leaves nothing to keep"),
    pytest.param(b"no frame here\x42", None, b"\x42", id="a trailing first start character is kept"),
    pytest.param(b"", None, b"", id="an empty buffer gives nothing"),
]


@pytest.mark.parametrize(("buffer", "frame", "rest"), FIND_CASES)
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert pms5003.find_frame(buffer) == (frame, rest)


def test_start_characters_inside_a_torn_frames_payload_do_not_hide_the_next_frame() -> None:
    # A frame whose particle count is 0x424D = 16973 and whose next word reads as length 28 ("BM" 00 1C):
    # torn before its own start, its payload looks like the start of a frame for a while.
    values = {**CLEAN_AIR_VALUES, "pn0_3": 0x424D, "pn0_5": 0x001C}
    decoy = pms5003.encode(values)
    assert decoy[16:20] == b"\x42\x4d\x00\x1c"
    buffer = decoy[3:] + CLEAN_AIR
    assert pms5003.find_frame(buffer) == (CLEAN_AIR, b"")
    assert pms5003.decode(decoy).values["pn0_3"] == 0x424D  # the whole decoy is a valid frame of its own


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
        pms5003.parse_command(with_checksum(b"\x42\x4d\xe9\x00\x00"))
    with pytest.raises(ValueError):
        pms5003.command(0xE9)


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


# ------------------------------------------------------------------ captured frames
# avaldebe/PyPMS tests/captured_data/PMSx003.hexdump: ten frames read from a PMS5003, ten seconds apart.
PYPMS_HEXDUMP = """
42 4d 00 1c 00 00 00 08 00 08 00 00 00 08 00 08 00 d2 00 46 00 2d 00 1e 00 00 00 00 97 00 02 c5
42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 d2 00 46 00 2d 00 1e 00 00 00 00 97 00 02 c1
42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 bd 00 3f 00 2a 00 1b 00 00 00 00 97 00 02 9f
42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 b4 00 3c 00 27 00 18 00 00 00 00 97 00 02 8d
42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 b4 00 3c 00 27 00 18 00 00 00 00 97 00 02 8d
42 4d 00 1c 00 00 00 06 00 06 00 00 00 06 00 06 00 b4 00 3c 00 1d 00 15 00 00 00 00 97 00 02 7c
42 4d 00 1c 00 00 00 06 00 06 00 00 00 06 00 06 00 b4 00 3c 00 1d 00 15 00 00 00 00 97 00 02 7c
42 4d 00 1c 00 00 00 06 00 06 00 00 00 06 00 06 00 9f 00 35 00 1a 00 12 00 00 00 00 97 00 02 5a
42 4d 00 1c 00 00 00 06 00 06 00 00 00 06 00 06 00 9f 00 35 00 1a 00 12 00 00 00 00 97 00 02 5a
42 4d 00 1c 00 00 00 05 00 05 00 00 00 05 00 05 00 8a 00 2e 00 17 00 0f 00 00 00 00 97 00 02 34
"""
# avaldebe/PyPMS tests/captured_data/PMSx003.csv, the same frames as PyPMS decodes them: raw01, raw25, raw10
# (CF=1), pm01, pm25, pm10, then n0_3 … n10_0 in #/cm³ (PyPMS divides the counts per 0.1 L by 100).
PYPMS_CSV = """
0, 8, 8, 0.0, 8.0, 8.0, 2.10, 0.70, 0.45, 0.30, 0.00, 0.00
0, 7, 7, 0.0, 7.0, 7.0, 2.10, 0.70, 0.45, 0.30, 0.00, 0.00
0, 7, 7, 0.0, 7.0, 7.0, 1.89, 0.63, 0.42, 0.27, 0.00, 0.00
0, 7, 7, 0.0, 7.0, 7.0, 1.80, 0.60, 0.39, 0.24, 0.00, 0.00
0, 7, 7, 0.0, 7.0, 7.0, 1.80, 0.60, 0.39, 0.24, 0.00, 0.00
0, 6, 6, 0.0, 6.0, 6.0, 1.80, 0.60, 0.29, 0.21, 0.00, 0.00
0, 6, 6, 0.0, 6.0, 6.0, 1.80, 0.60, 0.29, 0.21, 0.00, 0.00
0, 6, 6, 0.0, 6.0, 6.0, 1.59, 0.53, 0.26, 0.18, 0.00, 0.00
0, 6, 6, 0.0, 6.0, 6.0, 1.59, 0.53, 0.26, 0.18, 0.00, 0.00
0, 5, 5, 0.0, 5.0, 5.0, 1.38, 0.46, 0.23, 0.15, 0.00, 0.00
"""
CAPTURE = bytes.fromhex(PYPMS_HEXDUMP)


def pypms_rows() -> list[dict[str, float]]:
    rows = []
    for line in PYPMS_CSV.strip().splitlines():
        numbers = [float(x) for x in line.split(",")]
        rows.append(dict(zip(pms5003.FIELDS, numbers[:6] + [round(n * 100) for n in numbers[6:]])))
    return rows


def cut_all(data: bytes, chunk: int) -> list[bytes]:
    """Feed ``data`` to find_frame ``chunk`` bytes at a time, as the reader does; return the frames cut."""
    return frames_in_pieces(pms5003.find_frame, data, chunk)


@pytest.mark.parametrize("chunk", [1, 7, 31, 32, 33, 64, 320])
def test_pypms_capture_split_across_reads_decodes_to_pypms_values(chunk: int) -> None:
    frames = cut_all(CAPTURE, chunk)
    assert frames == [CAPTURE[i:i + 32] for i in range(0, len(CAPTURE), 32)]
    assert [pms5003.decode(f).values for f in frames] == pypms_rows()


def test_pypms_capture_is_found_again_after_garbage_and_a_torn_frame() -> None:
    noisy = b"\x00\x42\x42\x4d\xff" + CAPTURE[40:] + CAPTURE[:64]  # torn second frame, then two whole ones
    frames = cut_all(noisy, 5)
    assert frames == [CAPTURE[i:i + 32] for i in range(64, len(CAPTURE), 32)] + [CAPTURE[:32], CAPTURE[32:64]]


def test_the_alias_keyword_names_the_model_in_the_observation() -> None:
    assert pms5003.decode(CLEAN_AIR, sensor="plantower-pmsa003").sensor == "plantower-pmsa003"


def test_opening_the_port_wakes_the_sensor_and_sets_the_mode_the_registration_reads() -> None:
    assert pms5003.INIT_COMMANDS == (pms5003.WAKEUP, pms5003.ACTIVE_MODE)
    assert pms5003.PASSIVE_INIT_COMMANDS == (pms5003.WAKEUP, pms5003.PASSIVE_MODE)


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
def test_find_frame_returns_only_checksum_valid_plantower_frames_and_never_grows_the_buffer(data: bytes) -> None:
    frame, rest = pms5003.find_frame(data)
    assert len(rest) <= len(data)
    if frame is not None:
        assert frame[:2] == pms5003.HEADER and len(frame) in (8, 24, 32, 40)
        assert int.from_bytes(frame[2:4], "big") == len(frame) - 4
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
