"""Sensirion SCD30 CO2, temperature and humidity sensor over Modbus RTU.

Sources: Sensirion "Interface Description Sensirion SCD30 Sensor Module"
Version 1.0 – D1 (May 2020): section 1.2 (Modbus: slave address 0x61,
functions 03 and 06), 1.4 (the command set: trigger continuous measurement
0x0036, stop 0x0037, measurement interval 0x0025, get data ready 0x0027,
read measurement 0x0028, automatic self-calibration 0x003A, temperature
offset 0x003B) with its example frames (used as test vectors here), and 1.5
(each value a big-endian float32, most significant word first); Modbus
framing from :mod:`firmware_bridge.sensors.modbus`.  Serial: 19200 baud,
8 data bits, no parity, 1 stop bit; pull the SEL pin to VDD at power-up to
select Modbus instead of I2C.  The register map matches the open-source
Modbus drivers of the SCD30 (``SCD30_CMD_READ_MEASUREMENT 0x0028``,
``SCD30_CMD_GET_DATA_READY 0x0027``, ``SCD30_CMD_AUTOMATIC_SELF_CALIBRATION
0x003A``).  The I2C interface numbers its commands differently (data ready
is 0x0202 there); those are not Modbus registers.

Registered as ``sensirion-scd30`` (*polled*: opening the port sends
:data:`START_MEASUREMENT`, then the reader sends :data:`READ_COMMAND`
every interval)::

    trigger continuous measurement  61 06 00 36 00 00 60 64      (value: ambient pressure
                                                                  [mbar], 0 = no compensation)
    set measurement interval 2 s    61 06 00 25 00 02 10 60
    get data ready status           61 03 00 27 00 01 3D A1      answer: 1 register, 1 = ready
    read measurement                61 03 00 28 00 06 4C 60      answer: 6 registers =
                                    three big-endian float32: CO2 [ppm], T [°C], RH [%]
    automatic self-calibration on   61 06 00 3A 00 01 61 A7      (0 = off)

Notes
-----
- The sensor measures every 2 s by default (register 0x0025); poll it no
  faster (``qsec bridge run --poll-interval 2``), or the same measurement is
  read twice.  The data-ready register (:data:`DATA_READY_COMMAND`,
  :func:`decode_data_ready`) tells whether a new one is there, for a
  reader able to ask it first.
- Continuous measurement is kept in non-volatile memory: a sensor once
  started measures again after a power cycle.  Before the first
  measurement the registers hold zeros: :class:`WarmingUp`.
- The temperature and humidity are those of the sensor's case, which the
  NDIR lamp warms; set an offset (:func:`temperature_offset`) for air
  temperature.
- Automatic self-calibration (ASC) is kept in non-volatile memory;
  :func:`self_calibration` switches it (once on, it needs fresh air at
  least one hour a day for its first seven days).  The bridge leaves it.
- Answers to other requests (the echo of the start command, data ready)
  decode as :class:`Unsupported`, except "data ready = 0", which is
  :class:`WarmingUp`.  Exception responses raise :class:`FrameError` with
  the Modbus exception code.
"""

from __future__ import annotations

import math
import struct

from firmware_bridge.sensors import modbus
from firmware_bridge.sensors.base import FrameError, Observation, Unsupported, WarmingUp, scaled_int

SENSOR = "sensirion-scd30"
KIND = "polled"
BAUDRATE = 19200
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

SLAVE = 0x61
REG_MEASUREMENT_INTERVAL = 0x0025
REG_DATA_READY = 0x0027
REG_MEASUREMENT = 0x0028
REG_START = 0x0036
REG_STOP = 0x0037
REG_ASC = 0x003A
REG_TEMPERATURE_OFFSET = 0x003B
MEASUREMENT_REGISTERS = 6
FIELDS: tuple[str, ...] = ("co2", "temperature", "relative_humidity")
_FLOATS = struct.Struct(">3f")
_REGISTERS = struct.Struct(">6H")


def start_measurement(pressure_mbar: int = 0) -> bytes:
    """The request that starts continuous measurement, compensated for ``pressure_mbar`` (0 = none).

    Raises
    ------
    ValueError : a pressure other than 0 or 700..1400 mbar
    """
    if pressure_mbar != 0 and not 700 <= pressure_mbar <= 1400:
        raise ValueError(f"SCD30 ambient pressure {pressure_mbar} mbar; choose 0 (no compensation) or 700..1400")
    return modbus.request(SLAVE, modbus.WRITE_SINGLE, REG_START, pressure_mbar)


def measurement_interval(seconds: int) -> bytes:
    """The request that sets the measurement interval, 2..1800 s."""
    if not 2 <= seconds <= 1800:
        raise ValueError(f"SCD30 measurement interval {seconds} s; choose 2..1800")
    return modbus.request(SLAVE, modbus.WRITE_SINGLE, REG_MEASUREMENT_INTERVAL, seconds)


def self_calibration(on: bool) -> bytes:
    """The request that switches automatic self-calibration (ASC) on or off."""
    return modbus.request(SLAVE, modbus.WRITE_SINGLE, REG_ASC, 1 if on else 0)


def temperature_offset(kelvin: float) -> bytes:
    """The request that sets the temperature offset [K] (0.01 K steps) subtracted from the case temperature.

    Raises
    ------
    ValueError : a negative offset (the register is unsigned) or one beyond 655.35 K
    """
    return modbus.request(SLAVE, modbus.WRITE_SINGLE, REG_TEMPERATURE_OFFSET,
                          scaled_int("offset", kelvin, 0, 0xFFFF, scale=100, what="the SCD30 offset register"))


START_MEASUREMENT = start_measurement(0)
STOP_MEASUREMENT = modbus.request(SLAVE, modbus.WRITE_SINGLE, REG_STOP, 0x0001)
DATA_READY_COMMAND = modbus.request(SLAVE, modbus.READ_HOLDING, REG_DATA_READY, 1)
READ_COMMAND = modbus.request(SLAVE, modbus.READ_HOLDING, REG_MEASUREMENT, MEASUREMENT_REGISTERS)
INIT_COMMANDS: tuple[bytes, ...] = (START_MEASUREMENT,)
# Modbus RTU ends a frame with 3.5 characters of silence (1.8 ms at 19200 baud): a request written right
# after another can reach the sensor glued to it and be dropped.  A reader waits this long between writes.
COMMAND_GAP_S = 0.05  # [s]
RESPONSE_SIZE = 5 + 2 * MEASUREMENT_REGISTERS


def decode(frame: bytes) -> Observation:
    """Decode the response to :data:`READ_COMMAND`.

    Returns
    -------
    Observation with ``co2`` [ppm], ``temperature`` [°C] and ``relative_humidity`` [%].

    Raises
    ------
    FrameError : a malformed frame, a Modbus exception, a value that is not a finite number
    WarmingUp : no measurement yet (zeros), or a data-ready answer of 0
    Unsupported : the echo of a write (start, interval), a data-ready answer of 1
    """
    response = modbus.parse_response(frame, SLAVE)
    regs = response.registers
    if response.function == modbus.WRITE_SINGLE:
        raise Unsupported(f"SCD30 acknowledges writing 0x{regs[1]:04X} to register 0x{regs[0]:04X}")
    if len(regs) == 1:
        if regs[0] == 0:
            raise WarmingUp("SCD30 has no new measurement yet (data ready = 0)")
        raise Unsupported(f"SCD30 data ready status {regs[0]}, not a measurement")
    if len(regs) != MEASUREMENT_REGISTERS:
        raise FrameError(f"SCD30 response with {len(regs)} registers; a measurement has {MEASUREMENT_REGISTERS}")
    values = _FLOATS.unpack(_REGISTERS.pack(*regs))
    if not math.isfinite(sum(values)):  # three float32 cannot overflow a double: only inf or NaN can do this
        raise FrameError(f"SCD30 measurement {values} holds a value that is not a finite number")
    if not any(values):
        raise WarmingUp("SCD30 registers hold zeros: no measurement since it started")
    return Observation(SENSOR, dict(zip(FIELDS, values)))


def decode_data_ready(frame: bytes) -> bool:
    """True if ``frame``, the answer to :data:`DATA_READY_COMMAND`, says a new measurement is there.

    Raises
    ------
    FrameError : a malformed frame, an exception, or not a one-register answer
    """
    regs = modbus.parse_response(frame, SLAVE).registers
    if len(regs) != 1:
        raise FrameError(f"SCD30 data ready answer with {len(regs)} registers; expected 1")
    return regs[0] == 1


def encode(co2: float, temperature: float, relative_humidity: float) -> bytes:
    """Build the response to :data:`READ_COMMAND`: the three values as big-endian float32."""
    regs = _REGISTERS.unpack(_FLOATS.pack(co2, temperature, relative_humidity))
    return modbus.read_response(SLAVE, modbus.READ_HOLDING, regs)


def encode_data_ready(ready: bool) -> bytes:
    """Build the response to :data:`DATA_READY_COMMAND`."""
    return modbus.read_response(SLAVE, modbus.READ_HOLDING, [1 if ready else 0])


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next SCD30 response out of ``buffer`` (measurement, data ready, write echo, exception)."""
    return modbus.find_frame(buffer, SLAVE, {modbus.READ_HOLDING: (1, MEASUREMENT_REGISTERS)})
