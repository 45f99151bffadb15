"""Senseair S8 (S8 LP) NDIR CO2 sensor over Modbus RTU.

Sources: Senseair AB, "Modbus on Senseair S8" (register map, and its
"Sensor status and CO2 read sequence" example, which reads IR1-IR4 in one
request); "Product Specification Senseair S8 LP" (warm-up time, range
400-2000 ppm with a 0-10000 ppm extended output); Modbus framing from
:mod:`firmware_bridge.sensors.modbus`.  Serial: 9600 baud, 8 data bits, no
parity, 1 stop bit, 3.3 V TTL on a 5 V supply.

Registered as ``senseair-s8`` (*polled*: every interval the reader sends
:data:`READ_COMMAND`, "read input registers 1-4" to the any-sensor
address 0xFE)::

    request   FE 04 00 00 00 04 E5 C6
    response  FE 04 08 MS_HI MS_LO AS_HI AS_LO OS_HI OS_LO CO2_HI CO2_LO CRC_LO CRC_HI

    IR1 (address 0)  MeterStatus     bit 0 fatal error, 1 offset regulation error,
                                     2 algorithm error, 3 output error,
                                     4 self-diagnostics error, 5 out of range, 6 memory error
    IR2 (address 1)  AlarmStatus     (not used here)
    IR3 (address 2)  OutputStatus    bit 0 alarm output, 1 PWM output at full scale
    IR4 (address 3)  Space CO2       [ppm], unsigned

Notes
-----
- Any MeterStatus error bit raises :class:`FrameError` naming the bits:
  the CO2 value is not trustworthy then ("out of range" means the reading
  is clipped to the range, so it is not a measurement either).
- During warm-up (under 30 s after power-on, :data:`WARMUP_S`) the sensor
  answers with no error bit and CO2 = 0: :class:`WarmingUp`.  No real air
  holds 0 ppm.
- ABC (automatic baseline correction, every 180 h by default, holding
  register HR32) is left as the sensor has it; it assumes fresh air
  (~400 ppm) is seen at least once a week.
- An exception response (e.g. 0x02 "illegal data address") raises
  :class:`FrameError` with the Modbus exception code.
"""

from __future__ import annotations

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, Observation, Unsupported, WarmingUp, scaled_int

SENSOR = "senseair-s8"
KIND = "polled"
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1
WARMUP_S = 30.0  # [s]

SLAVE = 0xFE  # "any address": the S8 answers whatever its own address
REGISTERS = 4  # IR1-IR4
READ_COMMAND = modbus.request(SLAVE, modbus.READ_INPUT, 0x0000, REGISTERS)
INIT_COMMANDS: tuple[bytes, ...] = ()
COMMAND_GAP_S = 0.05  # [s] silence a reader keeps between two requests (Modbus RTU, see sensors.modbus)
RESPONSE_SIZE = 5 + 2 * REGISTERS

METER_STATUS: dict[int, str] = {
    0x01: "fatal error", 0x02: "offset regulation error", 0x04: "algorithm error", 0x08: "output error",
    0x10: "self-diagnostics error", 0x20: "out of range", 0x40: "memory error",
}
ERROR_MASK = 0x7F


def decode(frame: bytes) -> Observation:
    """Decode the response to :data:`READ_COMMAND`.

    Returns
    -------
    Observation with ``co2`` [ppm].

    Raises
    ------
    FrameError : a malformed frame, a Modbus exception, an error bit in MeterStatus, a wrong register count
    WarmingUp : no error bit and CO2 = 0 (warm-up after power-on)
    Unsupported : a response to another request (a write, or a read of holding registers)
    """
    response = modbus.parse_response(frame, SLAVE)
    if response.function != modbus.READ_INPUT:
        raise Unsupported(f"S8 response to {modbus.FUNCTIONS[response.function]}, not a measurement")
    if len(response.registers) != REGISTERS:
        raise FrameError(f"S8 response with {len(response.registers)} registers; expected IR1-IR4")
    status, co2 = response.registers[0], response.registers[3]
    if status & ERROR_MASK:
        bits = ", ".join(text for bit, text in METER_STATUS.items() if status & bit)
        raise FrameError(f"S8 MeterStatus 0x{status:04X}: {bits}; the CO2 value is not a measurement")
    if co2 == 0:
        raise WarmingUp("S8 reads 0 ppm with no error: it is still warming up")
    return Observation(sensor=SENSOR, values={"co2": float(co2)})


def encode(co2: float, *, meter_status: int = 0, alarm_status: int = 0, output_status: int = 0) -> bytes:
    """Build the response to :data:`READ_COMMAND` for ``co2`` [ppm] (rounded to 1 ppm).

    Raises
    ------
    ValueError : CO2 or a status outside 0..65535, or not a number
    """
    registers = [meter_status, alarm_status, output_status, scaled_int("co2", co2, 0, 0xFFFF, what="an S8 register")]
    if not all(0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"S8 registers are 16-bit unsigned: {registers}")
    return modbus.read_response(SLAVE, modbus.READ_INPUT, registers)


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next response from the S8 out of ``buffer`` (IR1-IR4 reads, write echoes, exceptions)."""
    return modbus.find_frame(buffer, SLAVE, {modbus.READ_INPUT: (REGISTERS,)})
