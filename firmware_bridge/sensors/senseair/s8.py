"""Senseair S8 (S8 LP) NDIR CO2 sensor over Modbus RTU.

Sources: Senseair AB, "Modbus on Senseair S8" (document TDE2067: register
map, and its "Sensor status and CO2 read sequence" example, which reads
IR1-IR4 in one request); "Product Specification Senseair S8 LP" (warm-up
time, range 400-2000 ppm with a 0-10000 ppm extended output); Modbus framing
from :mod:`firmware_bridge.sensors.modbus`.  Serial: 9600 baud, 8 data bits,
no parity, 1 stop bit, 3.3 V TTL on a 5 V supply.

Checked against open-source drivers and the frames they captured:
esphome ``esphome/components/senseair/senseair.cpp`` (the same IR1-IR4 read,
``FE 04 00 00 00 04 E5 C6``; the calibration and ABC requests; a 0 ppm answer
with the out-of-range bit before the first measurement is dropped, esphome
pull request 10275), jcomas/S8_UART ``src/s8_uart.h`` (register and bit names;
IR4 read as a signed ``int16_t``), arendst/Tasmota
``tasmota/tasmota_xsns_sensor/xsns_17_senseair.ino`` (answers captured from an
S8, MeterStatus masked with 0x7F, "out of range or warm up is expected after
power on").

Registered as ``senseair-s8`` (*polled*: every interval the reader sends
:data:`READ_COMMAND`, "read input registers 1-4" to the any-sensor
address 0xFE; registers are numbered from 1 in the document and addressed
from 0 on the wire)::

    request   FE 04 00 00 00 04 E5 C6
    response  FE 04 08 MS_HI MS_LO AS_HI AS_LO OS_HI OS_LO CO2_HI CO2_LO CRC_LO CRC_HI

    IR1 (address 0)  MeterStatus     bit 0 fatal error, 1 offset regulation error,
                                     2 algorithm error, 3 output error,
                                     4 self-diagnostics error, 5 out of range, 6 memory error
    IR2 (address 1)  AlarmStatus     (not used here)
    IR3 (address 2)  OutputStatus    bit 0 alarm output, 1 PWM output at full scale
    IR4 (address 3)  Space CO2       [ppm], signed 16-bit

Notes
-----
- Any MeterStatus error bit raises :class:`FrameError` naming the bits:
  the CO2 value is not trustworthy then ("out of range" means the reading
  is clipped to the range, so it is not a measurement either).
- Warm-up: until its first measurement (about 30 s after power-on,
  :data:`WARMUP_S`) the sensor answers CO2 = 0, with no error bit or with
  only the out-of-range bit: :class:`WarmingUp`.  No real air holds 0 ppm.
- IR4 is signed: a sensor whose baseline has drifted far (ABC never seeing
  fresh air) reads below zero, e.g. ``0xFFF0`` = -16 ppm.  Read unsigned that
  would be 65520 ppm; it is refused with :class:`FrameError`.  A background
  calibration in fresh air (:data:`BACKGROUND_CALIBRATION`) fixes it.
- ABC (automatic baseline correction, every 180 h by default, holding
  register HR32) is left as the sensor has it; it assumes fresh air
  (~400 ppm) is seen at least once a week.  :func:`abc_period` builds the
  request that changes it (0 switches ABC off).
- An exception response (e.g. 0x02 "illegal data address") raises
  :class:`FrameError` with the Modbus exception code.
- The address 0x68 (the S8's own default) works too, but 0xFE reaches the
  one sensor on the line whatever its address, and the S8 answers from 0xFE.
- Some S8 units need a wake-up byte before each request: esphome writes
  0x00, waits until it is sent and 5 ms more, then the request
  (``senseair_write_command_``: "Write wake up byte required by some S8 sensor
  models").  The reader does the same (:data:`WAKE_BYTES`, :data:`WAKE_GAP_S`):
  the pause is longer than Modbus RTU's 3.5-character silence (3.6 ms at 9600
  baud), so the lone byte is a frame of its own, too short to be a request,
  which a unit that does not need it drops.
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
WAKE_BYTES = b"\x00"  # written before each request (esphome senseair.cpp)
WAKE_GAP_S = 0.01  # [s] after the wake-up byte has left the port: esphome's 5 ms, with room for a slow tcdrain
RESPONSE_SIZE = 5 + 2 * REGISTERS

METER_STATUS: dict[int, str] = {
    0x01: "fatal error", 0x02: "offset regulation error", 0x04: "algorithm error", 0x08: "output error",
    0x10: "self-diagnostics error", 0x20: "out of range", 0x40: "memory error",
}
ERROR_MASK = 0x7F
OUT_OF_RANGE = 0x20

# Holding registers (TDE2067): HR1 acknowledgement flags, HR2 special command, HR32 ABC period [h].
HR_ACKNOWLEDGEMENT = 0x0000
HR_SPECIAL_COMMAND = 0x0001
HR_ABC_PERIOD = 0x001F
CLEAR_ACKNOWLEDGEMENT = modbus.request(SLAVE, modbus.WRITE_SINGLE, HR_ACKNOWLEDGEMENT, 0x0000)
BACKGROUND_CALIBRATION = modbus.request(SLAVE, modbus.WRITE_SINGLE, HR_SPECIAL_COMMAND, 0x7C06)  # in ~400 ppm air


def abc_period(hours: int) -> bytes:
    """The request that sets the ABC period to ``hours`` (0 switches ABC off; the factory value is 180).

    Raises
    ------
    ValueError : outside 0..4800 h (the range jcomas/S8_UART accepts)
    """
    if not 0 <= hours <= 4800:
        raise ValueError(f"S8 ABC period {hours} h; choose 0 (off) .. 4800")
    return modbus.request(SLAVE, modbus.WRITE_SINGLE, HR_ABC_PERIOD, hours)


def decode(frame: bytes) -> Observation:
    """Decode the response to :data:`READ_COMMAND`.

    Returns
    -------
    Observation with ``co2`` [ppm].

    Raises
    ------
    FrameError : a malformed frame, a Modbus exception, an error bit in MeterStatus, a negative CO2,
        a wrong register count
    WarmingUp : CO2 = 0 with no error bit, or with only the out-of-range bit (before the first measurement)
    Unsupported : a response to another request (a write, or a read of holding registers)
    """
    response = modbus.parse_response(frame, SLAVE)
    if response.function != modbus.READ_INPUT:
        raise Unsupported(f"S8 response to {modbus.FUNCTIONS[response.function]}, not a measurement")
    if len(response.registers) != REGISTERS:
        raise FrameError(f"S8 response with {len(response.registers)} registers; expected IR1-IR4")
    status, co2 = response.registers[0] & ERROR_MASK, modbus.int16(response.registers[3])
    if co2 == 0 and status in (0, OUT_OF_RANGE):
        raise WarmingUp("S8 reads 0 ppm: no measurement yet (warm-up after power-on)")
    if status:
        bits = ", ".join(text for bit, text in METER_STATUS.items() if status & bit)
        raise FrameError(f"S8 MeterStatus 0x{response.registers[0]:04X}: {bits}; the CO2 value is not a measurement")
    if co2 < 0:
        raise FrameError(f"S8 reads {co2} ppm: its baseline has drifted; calibrate it in fresh air")
    return Observation(sensor=SENSOR, values={"co2": float(co2)})


def encode(co2: float, *, meter_status: int = 0, alarm_status: int = 0, output_status: int = 0) -> bytes:
    """Build the response to :data:`READ_COMMAND` for ``co2`` [ppm] (rounded to 1 ppm, signed 16-bit).

    Raises
    ------
    ValueError : CO2 outside -32768..32767, a status outside 0..65535, or not a number
    """
    ppm = scaled_int("co2", co2, -0x8000, 0x7FFF, what="an S8 register") & 0xFFFF
    registers = [meter_status, alarm_status, output_status, ppm]
    if not all(0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"S8 status registers are 16-bit unsigned: {registers[:3]}")
    return modbus.read_response(SLAVE, modbus.READ_INPUT, registers)


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next response from the S8 out of ``buffer`` (IR1-IR4 reads, write echoes, exceptions)."""
    return modbus.find_frame(buffer, SLAVE, {modbus.READ_INPUT: (REGISTERS,)})
