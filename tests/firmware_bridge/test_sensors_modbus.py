"""Modbus RTU framing: CRC-16/MODBUS, requests, responses and exceptions (Modbus application protocol V1.1b3).

Test vectors: the requests of esphome's Senseair component and answers captured from S8 sensors (each cited).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, SensorError


@pytest.mark.parametrize(("data", "crc"), [
    pytest.param(b"123456789", 0x4B37, id="the CRC catalogue's check value"),
    pytest.param(b"", 0xFFFF, id="nothing leaves the initial value"),
    pytest.param(bytes.fromhex("fe0400030001"), 0xC5D5, id="the Senseair S8 read-CO2 request (D5 C5 on the wire)"),
])
def test_crc16(data: bytes, crc: int) -> None:
    assert modbus.crc16(data) == crc


@pytest.mark.parametrize(("args", "expected_hex"), [
    pytest.param((0xFE, 0x04, 0x0003, 1), "fe0400030001d5c5", id="S8: read IR4, the datasheet's example"),
    pytest.param((0xFE, 0x04, 0x0000, 4), "fe0400000004e5c6", id="S8: read IR1-IR4"),
    pytest.param((0x61, 0x06, 0x0036, 0), "6106003600006064", id="SCD30: trigger continuous measurement"),
    pytest.param((0x61, 0x03, 0x0028, 6), "6103002800064c60", id="SCD30: read measurement"),
    pytest.param((0x61, 0x03, 0x0027, 1), "6103002700013da1", id="SCD30: get data ready"),
])
def test_requests_match_the_datasheets(args: tuple[int, int, int, int], expected_hex: str) -> None:
    frame = modbus.request(*args)
    assert frame.hex() == expected_hex
    assert modbus.parse_request(frame) == modbus.Request(*args)


# Requests esphome sends to a Senseair S8, byte for byte (esphome/esphome esphome/components/senseair/senseair.cpp).
@pytest.mark.parametrize(("args", "expected_hex"), [
    pytest.param((0xFE, 0x04, 0x0000, 4), "fe0400000004e5c6", id="SENSEAIR_COMMAND_GET_PPM_STATUS"),
    pytest.param((0xFE, 0x06, 0x0000, 0x0000), "fe06000000009dc5", id="SENSEAIR_COMMAND_CLEAR_ACK_REGISTER"),
    pytest.param((0xFE, 0x06, 0x0001, 0x7C06), "fe0600017c066cc7", id="SENSEAIR_COMMAND_BACKGROUND_CAL"),
    pytest.param((0xFE, 0x03, 0x0000, 1), "fe03000000019005", id="SENSEAIR_COMMAND_BACKGROUND_CAL_RESULT"),
    pytest.param((0xFE, 0x06, 0x001F, 180), "fe06001f00b4ac74", id="SENSEAIR_COMMAND_ABC_ENABLE"),
    pytest.param((0xFE, 0x06, 0x001F, 0), "fe06001f0000ac03", id="SENSEAIR_COMMAND_ABC_DISABLE"),
    pytest.param((0xFE, 0x03, 0x001F, 1), "fe03001f0001a1c3", id="SENSEAIR_COMMAND_ABC_GET_PERIOD"),
])
def test_requests_match_esphomes_senseair_commands(args: tuple[int, int, int, int], expected_hex: str) -> None:
    assert modbus.request(*args).hex() == expected_hex


@pytest.mark.parametrize(("args", "match"), [
    pytest.param((0x01, 0x10, 0, 1), "function 0x10", id="write multiple registers is not supported"),
    pytest.param((248, 0x03, 0, 1), "slave address", id="slave 248 is reserved"),
    pytest.param((1, 0x03, 0, 126), "1..125", id="more than 125 registers cannot be read at once"),
    pytest.param((1, 0x06, 0x10000, 0), "16-bit", id="an address beyond 16 bits"),
    pytest.param((0, 0x04, 0, 1), "broadcast", id="a read to the broadcast address would never be answered"),
])
def test_request_refuses_what_modbus_cannot_carry(args: tuple[int, int, int, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        modbus.request(*args)


RESPONSE_CASES = [
    pytest.param(bytes.fromhex("fe04020190acd8"), modbus.Response(0xFE, 0x04, (400,)),
                 id="the S8's example answer: 400 ppm (jcomas/S8_UART src/s8_uart.h)"),
    # Answers captured from S8 sensors: Tasmota's comments (xsns_17_senseair.ino), SFeli/ESP32_S8 issue 4, and
    # esphome/issues issue 2444 (the background calibration result).
    pytest.param(bytes.fromhex("fe04020000ad24"), modbus.Response(0xFE, 0x04, (0,)), id="Tasmota: IR1 meter status 0"),
    pytest.param(bytes.fromhex("fe0402062caf59"), modbus.Response(0xFE, 0x04, (1580,)), id="Tasmota: IR4 1580 ppm"),
    pytest.param(bytes.fromhex("fe04020177ec92"), modbus.Response(0xFE, 0x04, (0x0177,)), id="Tasmota: IR27 type id"),
    pytest.param(bytes.fromhex("fe04020154ad4b"), modbus.Response(0xFE, 0x04, (0x0154,)), id="Tasmota: IR29 firmware"),
    pytest.param(bytes.fromhex("fe040222c3f5d5"), modbus.Response(0xFE, 0x04, (8899,)), id="SFeli: IR4 8899 ppm"),
    pytest.param(bytes.fromhex("fe040222bff434"), modbus.Response(0xFE, 0x04, (8895,)), id="SFeli: IR4 8895 ppm"),
    pytest.param(bytes.fromhex("fe03020000ac50"), modbus.Response(0xFE, 0x03, (0,)), id="esphome: HR1 flags 0"),
    pytest.param(bytes.fromhex("fe8402f2f1"), "0x02 .illegal data address. to read input",
                 id="Tasmota: the S8 has no IR5 and says so"),
    pytest.param(modbus.request(0x61, 0x06, 0x0036, 0), modbus.Response(0x61, 0x06, (0x0036, 0)),
                 id="a write is answered by its echo"),
    pytest.param(modbus.exception_response(0xFE, 0x04, 0x02), "0x02 .illegal data address. to read input",
                 id="an exception names its code"),
    pytest.param(modbus.exception_response(0xFE, 0x04, 0x0C), "not defined", id="an unknown exception code"),
    pytest.param(bytes.fromhex("fe04020190acd9"), "CRC", id="a wrong CRC"),
    pytest.param(bytes.fromhex("fe0402"), "at least 5", id="a response too short"),
    pytest.param(modbus.read_response(0x61, 0x04, [1]), "slave 0x61", id="another slave"),
    pytest.param(modbus.seal(bytes.fromhex("fe0403019000")), "byte count", id="an odd byte count"),
    pytest.param(modbus.seal(bytes.fromhex("fe0801")), "function 0x08", id="a diagnostics answer"),
    pytest.param(modbus.seal(bytes.fromhex("fe8402ff")), "5", id="an exception of the wrong size"),
]


@pytest.mark.parametrize(("frame", "expected"), RESPONSE_CASES)
def test_parse_response(frame: bytes, expected: modbus.Response | str) -> None:
    if isinstance(expected, modbus.Response):
        assert modbus.parse_response(frame, expected.slave) == expected
    else:
        with pytest.raises(FrameError, match=expected):
            modbus.parse_response(frame, 0xFE)


@pytest.mark.parametrize(("word", "value"), [(0, 0), (612, 612), (0x7FFF, 32767), (0x8000, -32768), (0xFFF0, -16)])
def test_int16_reads_a_register_as_twos_complement(word: int, value: int) -> None:
    assert modbus.int16(word) == value


S8_ANSWER = modbus.read_response(0xFE, 0x04, [0, 0, 0, 612])
READS = {0x04: (4,)}
FIND_CASES = [
    pytest.param(b"\x00\xfe\x04" + S8_ANSWER + b"\xfe", S8_ANSWER, b"\xfe", id="garbage before a response is skipped"),
    pytest.param(S8_ANSWER[:7], None, S8_ANSWER[:7], id="half a response waits for the rest"),
    pytest.param(S8_ANSWER[:5] + S8_ANSWER, S8_ANSWER, b"", id="a response inside a torn one is found"),
    pytest.param(modbus.request(0xFE, 0x04, 0, 4) + S8_ANSWER, S8_ANSWER, b"", id="the echoed request is passed over"),
    pytest.param(modbus.exception_response(0xFE, 0x04, 2), modbus.exception_response(0xFE, 0x04, 2), b"",
                 id="an exception response is cut"),
    pytest.param(modbus.read_response(0xFE, 0x04, [1]) + S8_ANSWER, S8_ANSWER, b"",
                 id="an answer of an unexpected size is passed over"),
    pytest.param(b"\x01\x02\x03", None, b"", id="bytes without the slave address leave nothing"),
]


@pytest.mark.parametrize(("buffer", "frame", "rest"), FIND_CASES)
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert modbus.find_frame(buffer, 0xFE, READS) == (frame, rest)


def test_find_request_skips_noise_and_other_slaves() -> None:
    req = modbus.request(0x61, 0x03, 0x0028, 6)
    assert modbus.find_request(b"\x61\x00" + modbus.request(0x62, 0x03, 0, 1) + req, 0x61) == (req, b"")


@pytest.mark.parametrize("frame", [b"\x61\x03\x00", modbus.request(0x61, 0x03, 0, 1)[:-1] + b"\x00",
                                   modbus.seal(bytes.fromhex("611000000001"))])
def test_parse_request_refuses_malformed_requests(frame: bytes) -> None:
    with pytest.raises(FrameError):
        modbus.parse_request(frame)


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_raise_only_sensor_errors(data: bytes) -> None:
    try:
        modbus.parse_response(data, 0xFE)
    except SensorError:
        pass
    frame, rest = modbus.find_frame(data, 0xFE, READS)
    assert frame is None or modbus.crc_ok(frame)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 247), st.sampled_from([0x03, 0x04]), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_read_responses_round_trip(slave: int, function: int, registers: list[int]) -> None:
    frame = modbus.read_response(slave, function, registers)
    assert modbus.crc16(frame) == 0
    assert modbus.parse_response(frame, slave) == modbus.Response(slave, function, tuple(registers))
    assert modbus.find_frame(frame, slave, {function: (len(registers),)}) == (frame, b"")
