"""Senseair S8 over Modbus: IR1-IR4 answers, meter status bits, warm-up (Modbus on Senseair S8, TDE2067).

Real frames: the requests esphome sends (esphome/esphome esphome/components/senseair/senseair.cpp) and the
exception an S8 answers for a register it does not have (arendst/Tasmota xsns_17_senseair.ino).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.senseair import s8

# IR1-IR4 of a sensor in an aired classroom: status 0, alarm 0, output 0, 612 ppm.
CLASSROOM = bytes.fromhex("fe0408" "0000" "0000" "0000" "0264" "1791")
# What an S8 answers to a read of IR5 (it has no temperature), captured in Tasmota's xsns_17_senseair.ino.
NO_SUCH_REGISTER = bytes.fromhex("fe8402f2f1")


def answer(*registers: int) -> bytes:
    return modbus.read_response(0xFE, 0x04, list(registers))


DECODE_CASES = [
    pytest.param(CLASSROOM, {"co2": 612.0}, id="an aired classroom reads 612 ppm"),
    pytest.param(answer(0, 0, 0, 415), {"co2": 415.0}, id="fresh outdoor air reads about 415 ppm"),
    pytest.param(answer(0, 0, 0x0001, 2100), {"co2": 2100.0}, id="the alarm output bit does not refuse the value"),
    pytest.param(answer(0x0080, 0, 0, 700), {"co2": 700.0},
                 id="a reserved status bit is not an error (Tasmota masks 0x7F)"),
    pytest.param(answer(0, 0, 0, 0), WarmingUp, id="0 ppm with no error is the warm-up after power-on"),
    pytest.param(answer(0x0020, 0, 0, 0), WarmingUp,
                 id="0 ppm with only the out-of-range bit is the warm-up too (esphome pull request 10275)"),
    pytest.param(answer(0x0020, 0, 0, 2000), "out of range", id="the out-of-range bit refuses the clipped value"),
    pytest.param(answer(0x0001, 0, 0, 612), "fatal error", id="the fatal error bit refuses the value"),
    pytest.param(answer(0x0021, 0, 0, 0), "fatal error", id="0 ppm with an error bit is an error, not a warm-up"),
    pytest.param(answer(0x0006, 0, 0, 612), "offset regulation error, algorithm error",
                 id="several error bits are all named"),
    pytest.param(answer(0, 0, 0, 0xFFF0), "-16 ppm", id="IR4 is signed: 0xFFF0 is -16 ppm, not 65520"),
    pytest.param(modbus.exception_response(0xFE, 0x04, 0x02), "illegal data address",
                 id="an exception response names its Modbus code"),
    pytest.param(NO_SUCH_REGISTER, "illegal data address", id="the exception an S8 really sends"),
    pytest.param(answer(0, 612), "2 registers", id="an answer with two registers is dropped"),
    pytest.param(CLASSROOM[:-1] + b"\x00", "CRC", id="a wrong CRC is dropped"),
    pytest.param(CLASSROOM[:-3], "CRC|at least", id="a short answer is dropped"),
    pytest.param(modbus.read_response(0xFE, 0x03, [180]), Unsupported, id="a holding register answer is ignored"),
    pytest.param(s8.BACKGROUND_CALIBRATION, Unsupported, id="the echo of a calibration command is ignored"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | str | type[Exception]) -> None:
    if isinstance(expected, dict):
        obs = s8.decode(frame)
        assert (obs.sensor, obs.values) == ("senseair-s8", expected)
    elif isinstance(expected, str):
        with pytest.raises(FrameError, match=expected):
            s8.decode(frame)
    else:
        with pytest.raises(expected):
            s8.decode(frame)


def test_the_table_answer_is_what_encode_builds() -> None:
    assert s8.encode(612) == CLASSROOM
    assert s8.encode(-16) == answer(0, 0, 0, 0xFFF0)


@pytest.mark.parametrize(("command", "expected_hex"), [
    pytest.param(s8.READ_COMMAND, "fe0400000004e5c6", id="read IR1-IR4 (SENSEAIR_COMMAND_GET_PPM_STATUS)"),
    pytest.param(s8.CLEAR_ACKNOWLEDGEMENT, "fe06000000009dc5", id="clear HR1 (SENSEAIR_COMMAND_CLEAR_ACK_REGISTER)"),
    pytest.param(s8.BACKGROUND_CALIBRATION, "fe0600017c066cc7", id="background calibration (..._BACKGROUND_CAL)"),
    pytest.param(s8.abc_period(180), "fe06001f00b4ac74", id="ABC every 180 h (SENSEAIR_COMMAND_ABC_ENABLE)"),
    pytest.param(s8.abc_period(0), "fe06001f0000ac03", id="ABC off (SENSEAIR_COMMAND_ABC_DISABLE)"),
])
def test_requests_are_esphomes_byte_for_byte(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex


def test_each_request_follows_esphomes_wake_up_byte_after_more_than_a_modbus_frame_gap() -> None:
    assert s8.WAKE_BYTES == b"\x00"
    assert s8.WAKE_GAP_S >= 0.005 > 3.5 * 11 / s8.BAUDRATE  # esphome's 5 ms; 3.5 characters of 11 bits
    assert s8.find_frame(s8.WAKE_BYTES)[0] is None, "the byte is no answer"


def test_the_response_size_is_that_of_an_ir1_to_ir4_answer() -> None:
    assert s8.RESPONSE_SIZE == len(CLASSROOM)


@pytest.mark.parametrize("hours", [-1, 4801])
def test_an_abc_period_the_sensor_does_not_take_is_refused(hours: int) -> None:
    with pytest.raises(ValueError, match="0 .off. .. 4800"):
        s8.abc_period(hours)


@pytest.mark.parametrize(("buffer", "frame", "rest"), [
    pytest.param(b"\xfe\x00" + s8.READ_COMMAND + CLASSROOM + b"\xfe\x04", CLASSROOM, b"\xfe\x04",
                 id="an echoed request and garbage are passed over"),
    pytest.param(b"\x13" + NO_SUCH_REGISTER + CLASSROOM, NO_SUCH_REGISTER, CLASSROOM, id="an exception is cut"),
    pytest.param(s8.BACKGROUND_CALIBRATION + CLASSROOM, s8.BACKGROUND_CALIBRATION, CLASSROOM,
                 id="the echo of a write is cut"),
])
def test_find_frame(buffer: bytes, frame: bytes, rest: bytes) -> None:
    assert s8.find_frame(buffer) == (frame, rest)


@pytest.mark.parametrize("co2", [-32769, 32768, float("nan")])
def test_encode_refuses_what_a_register_cannot_carry(co2: float) -> None:
    with pytest.raises(ValueError):
        s8.encode(co2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 0x7FFF), st.integers(0, 0xFFFF), st.binary(max_size=20))
def test_decode_encode_round_trips_and_find_frame_resyncs(co2: int, output: int, garbage: bytes) -> None:
    frame = s8.encode(co2, output_status=output)
    assert s8.decode(frame).values == {"co2": co2}
    assert s8.find_frame(garbage.replace(b"\xfe", b"") + frame) == (frame, b"")
