"""Plantower PMS3003 (G3) particulate matter sensor frames.

Sources: Plantower "PMS3003 series data manual" (the English and Chinese
editions linked from avaldebe/PyPMS ``docs/sensors/Plantower.md``), transport
protocol; PyPMS ``docs/sensors/Plantower.md`` ("PMS3003": a 24-byte message,
``42 4d 00 14``, six values and three reserved words; "With the exception of
the PMS3003, all the Plantower PM sensors can be fully controlled with serial
commands"; sleep is the SET pin) and ``src/pms/sensors/plantower/pms3003.py``
("do not support commands", warm-up when the whole payload is zero);
esphome/esphome ``esphome/components/pmsx003/pmsx003.cpp`` (``PMS3003``:
payload length 20, "Data 7/8/9 not set/reserved").  Test vectors: PyPMS's
"PMS3003 good data" frame (``tests/sensor/test_sensor.py``) and its captured
frames (``tests/cli/captured_data/PMS3003.hexdump`` with
``tests/captured_data/PMS3003.csv``).  Serial: 9600 baud, 8 data bits, no
parity, 1 stop bit, 3.3 V TTL.

Registered as ``pms3003`` (a *stream*: the sensor sends a frame on its own
about once a second).  It takes no serial command, so opening the port sends
nothing; a sensor held asleep by its SET pin (low) is silent, and the reader
reopens its port after ``silence_s``.  Framer and checksum are the PMS5003's
(:func:`firmware_bridge.sensors.plantower.pms5003.find_frame` cuts every
Plantower frame; a frame of another model raises :class:`FrameError` naming
it).

Data frame (24 bytes, every word big-endian)::

    byte  0-1   start characters 0x42 0x4D
    byte  2-3   frame length = 2 x 9 + 2 = 20
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 CF=1; PM1.0, PM2.5, PM10 atmospheric [µg/m³]
    byte 16-21  data 7-9:   reserved
    byte 22-23  check code = sum of bytes 0-21, as uint16

Notes
-----
- No particle counts: a PMS3003 in clean air reads 0 µg/m³, and does so in
  PyPMS's capture (reserved word 9 = 0x0051 in every frame).  Zero mass is
  therefore a measurement; only a frame whose nine data words are all zero
  is :class:`WarmingUp`, PyPMS's rule.  The first ``WARMUP_S`` seconds after
  the port opens are flagged warming up by the reader, as for the PMS5003.
- CF=1 and atmospheric values are kept apart (``pm*_cf1`` and ``pm*``), as
  for the PMS5003.
"""

from __future__ import annotations

import struct
from typing import Mapping

from firmware_bridge.sensors.base import Observation, WarmingUp
from firmware_bridge.sensors.plantower import pms5003

SENSOR = "plantower-pms3003"
KIND = "stream"
BAUDRATE = pms5003.BAUDRATE
BYTESIZE = pms5003.BYTESIZE
PARITY = pms5003.PARITY
STOPBITS = pms5003.STOPBITS
WARMUP_S = pms5003.WARMUP_S
INIT_COMMANDS: tuple[bytes, ...] = ()  # the PMS3003 takes no serial command
find_frame = pms5003.find_frame

FRAME_SIZE = 24
FRAME_LENGTH = 20
FIELDS: tuple[str, ...] = pms5003.FIELDS[:6]
_WORDS = struct.Struct(">9H")


def decode(frame: bytes) -> Observation:
    """Decode one 24-byte PMS3003 data frame.

    Returns
    -------
    Observation with ``pm1_cf1, pm2_5_cf1, pm10_cf1, pm1, pm2_5, pm10`` [µg/m³].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; a frame of another model
    Unsupported : an acknowledgement (another model's answer to a command)
    WarmingUp : all nine data words are zero
    """
    data = pms5003.unpack(frame, _WORDS, "PMS3003")
    if not any(data):
        raise WarmingUp("PMS3003 sends all-zero data: the fan is still spinning up")
    return Observation(sensor=SENSOR, values=dict(zip(FIELDS, map(float, data[:6]))))


def encode(values: Mapping[str, float], *, reserved: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """Build the 24-byte frame a PMS3003 sends for ``values`` (every name of :data:`FIELDS`, rounded to 1 µg/m³).

    Raises
    ------
    ValueError : a quantity is missing, or a value does not fit in a data word
    """
    words = [pms5003.word(name, pms5003.required(values, name, "PMS3003")) for name in FIELDS]
    return pms5003.pack(_WORDS, [*words, *(pms5003.word("reserved", r) for r in reserved)])


__all__ = ["BAUDRATE", "BYTESIZE", "FIELDS", "FRAME_LENGTH", "FRAME_SIZE", "INIT_COMMANDS", "KIND", "PARITY",
           "SENSOR", "STOPBITS", "WARMUP_S", "decode", "encode", "find_frame"]
