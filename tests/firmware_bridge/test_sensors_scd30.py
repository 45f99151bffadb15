"""Sensirion SCD30 over Modbus: the interface description's (v1.0, May 2020) requests and float answers."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings, strategies as st

from decoding import check_decode

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, Unsupported, WarmingUp
from firmware_bridge.sensors.sensirion import scd30

# The interface description's example measurement: 0x43DB8C2E = 439.095 ppm, 0x41D9E7FF = 27.238 °C,
# 0x42433A1B = 48.807 % RH, as a Modbus answer (CRC 50 07).
EXAMPLE = bytes.fromhex("61030c" "43db8c2e" "41d9e7ff" "42433a1b" "5007")


def floats(*values: float) -> bytes:
    regs = struct.unpack(">6H", struct.pack(">3f", *values))
    return modbus.read_response(0x61, 0x03, list(regs))


DECODE_CASES = [
    pytest.param(EXAMPLE, {"co2": 439.095, "temperature": 27.238, "relative_humidity": 48.807},
                 id="the interface description's example measurement"),
    pytest.param(floats(0, 0, 0), WarmingUp, id="zeros before the first measurement mean warming up"),
    pytest.param(scd30.encode_data_ready(False), WarmingUp, id="data ready 0 means no new measurement yet"),
    pytest.param(scd30.encode_data_ready(True), Unsupported, id="data ready 1 is not a measurement"),
    pytest.param(scd30.START_MEASUREMENT, Unsupported, id="the echo of the start command is ignored"),
    pytest.param(floats(math.nan, 20.0, 50.0), FrameError, id="a value that is not a number is dropped"),
    pytest.param(modbus.exception_response(0x61, 0x03, 0x02), FrameError, id="an exception response is dropped"),
    pytest.param(EXAMPLE[:-1] + b"\x00", FrameError, id="a wrong CRC is dropped"),
    pytest.param(modbus.read_response(0x61, 0x03, [1, 2]), FrameError, id="an answer of two registers is dropped"),
    pytest.param(modbus.read_response(0x62, 0x03, [1]), FrameError, id="an answer from another slave is dropped"),
]


@pytest.mark.parametrize(("frame", "expected"), DECODE_CASES)
def test_decode(frame: bytes, expected: dict[str, float] | type[Exception]) -> None:
    check_decode(scd30.decode, frame, expected, sensor="sensirion-scd30", approx={"abs": 0.001})


@pytest.mark.parametrize(("command", "expected_hex"), [
    pytest.param(scd30.START_MEASUREMENT, "6106003600006064", id="trigger continuous measurement, no pressure"),
    pytest.param(scd30.READ_COMMAND, "6103002800064c60", id="read measurement"),
    pytest.param(scd30.DATA_READY_COMMAND, "6103002700013da1", id="get data ready status"),
    pytest.param(scd30.STOP_MEASUREMENT, "610600370001f064", id="stop continuous measurement"),
    pytest.param(scd30.measurement_interval(2), "6106002500021060", id="set measurement interval 2 s"),
    pytest.param(scd30.self_calibration(True), "6106003a000161a7", id="automatic self-calibration on"),
    pytest.param(scd30.self_calibration(False), "6106003a0000a067", id="automatic self-calibration off"),
])
def test_requests_match_the_interface_description(command: bytes, expected_hex: str) -> None:
    assert command.hex() == expected_hex


def test_start_measurement_carries_the_ambient_pressure() -> None:
    assert modbus.parse_request(scd30.start_measurement(1013)).value == 1013
    with pytest.raises(ValueError, match="700..1400"):
        scd30.start_measurement(500)


def test_temperature_offset_is_written_in_hundredths_of_a_kelvin() -> None:
    assert modbus.parse_request(scd30.temperature_offset(1.5)) == modbus.Request(0x61, 0x06, 0x003B, 150)
    with pytest.raises(ValueError, match="offset"):
        scd30.temperature_offset(-0.5)


def test_the_measurement_is_read_from_register_0x0028_and_data_ready_from_0x0027() -> None:
    # The I2C interface calls "get data ready" 0x0202 and "read measurement" 0x0300; Modbus uses registers.
    assert modbus.parse_request(scd30.READ_COMMAND) == modbus.Request(0x61, 0x03, 0x0028, 6)
    assert modbus.parse_request(scd30.DATA_READY_COMMAND) == modbus.Request(0x61, 0x03, 0x0027, 1)
    assert scd30.encode_data_ready(True).hex() == "6103020001f98c"


def test_measurement_interval_is_bounded() -> None:
    assert modbus.parse_request(scd30.measurement_interval(5)).value == 5
    with pytest.raises(ValueError, match="2..1800"):
        scd30.measurement_interval(1)


def test_decode_data_ready() -> None:
    assert scd30.decode_data_ready(scd30.encode_data_ready(True)) is True
    assert scd30.decode_data_ready(scd30.encode_data_ready(False)) is False
    with pytest.raises(FrameError, match="1"):
        scd30.decode_data_ready(EXAMPLE)


@pytest.mark.parametrize(("buffer", "frame", "rest"), [
    pytest.param(b"\x61\x00" + scd30.READ_COMMAND + EXAMPLE, EXAMPLE, b"", id="the echoed request is passed over"),
    pytest.param(scd30.START_MEASUREMENT + EXAMPLE, scd30.START_MEASUREMENT, EXAMPLE, id="a write echo is cut"),
    pytest.param(EXAMPLE[:9], None, EXAMPLE[:9], id="half an answer waits for the rest"),
])
def test_find_frame(buffer: bytes, frame: bytes | None, rest: bytes) -> None:
    assert scd30.find_frame(buffer) == (frame, rest)


f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(f32.filter(lambda v: v != 0), f32, f32)
def test_decode_encode_round_trips(co2: float, temperature: float, humidity: float) -> None:
    values = scd30.decode(scd30.encode(co2, temperature, humidity)).values
    assert values == {"co2": co2, "temperature": temperature, "relative_humidity": humidity}
