"""Senseair S8 over Modbus: IR1-IR4 answers, meter status bits, warm-up (Modbus on Senseair S8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.senseair import s8

# IR1-IR4 of a sensor in an aired classroom: status 0, alarm 0, output 0, 612 ppm.
CLASSROOM = bytes.fromhex("fe0408" "0000" "0000" "0000" "0264" "1791")


def answer(*registers: int) -> bytes:
    return modbus.read_response(0xFE, 0x04, list(registers))


DECODE_CASES = [
    pytest.param(CLASSROOM, {"co2": 612.0}, id="an aired classroom reads 612 ppm"),
    pytest.param(answer(0, 0, 0, 415), {"co2": 415.0}, id="fresh outdoor air reads about 415 ppm"),
    pytest.param(answer(0, 0, 0x0001, 2100), {"co2": 2100.0}, id="the alarm output bit does not refuse the value"),
    pytest.param(answer(0, 0, 0, 0), WarmingUp, id="0 ppm with no error is the warm-up after power-on"),
    pytest.param(answer(0x0020, 0, 0, 2000), "out of range", id="the out-of-range bit refuses the clipped value"),
    pytest.param(answer(0x0001, 0, 0, 612), "fatal error", id="the fatal error bit refuses the value"),
    pytest.param(answer(0x0006, 0, 0, 612), "offset regulation error, algorithm error",
                 id="several error bits are all named"),
    pytest.param(modbus.exception_response(0xFE, 0x04, 0x02), "illegal data address",
                 id="an exception response names its Modbus code"),
    pytest.param(answer(0, 612), "2 registers", id="an answer with two registers is dropped"),
    pytest.param(CLASSROOM[:-1] + b"\x00", "CRC", id="a wrong CRC is dropped"),
    pytest.param(CLASSROOM[:-3], "CRC|at least", id="a short answer is dropped"),
    pytest.param(modbus.read_response(0xFE, 0x03, [180]), Unsupported, id="a holding register answer is ignored"),
    pytest.param(modbus.request(0xFE, 0x06, 0x0001, 0x7C06), Unsupported,
                 id="the echo of a calibration command is ignored"),
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


def test_the_read_command_is_the_datasheets_status_and_co2_sequence() -> None:
    assert s8.READ_COMMAND.hex() == "fe0400000004e5c6"
    assert s8.RESPONSE_SIZE == len(CLASSROOM)


def test_find_frame_passes_over_an_echoed_request_and_garbage() -> None:
    assert s8.find_frame(b"\xfe\x00" + s8.READ_COMMAND + CLASSROOM + b"\xfe\x04") == (CLASSROOM, b"\xfe\x04")


@pytest.mark.parametrize("co2", [-1, 65536, float("nan")])
def test_encode_refuses_what_a_register_cannot_carry(co2: float) -> None:
    with pytest.raises(ValueError):
        s8.encode(co2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=20))
def test_decode_encode_round_trips_and_find_frame_resyncs(co2: int, output: int, garbage: bytes) -> None:
    frame = s8.encode(co2, output_status=output)
    assert s8.decode(frame).values == {"co2": co2}
    assert s8.find_frame(garbage.replace(b"\xfe", b"") + frame) == (frame, b"")
