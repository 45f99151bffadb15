"""Plantower PMS5003T particulate matter, temperature and humidity sensor frames.

Sources: Plantower "PMS5003T series data manual" (2016 edition, the one
linked from avaldebe/PyPMS ``docs/sensors/Plantower.md``), appendix
"transport protocol - Active Mode"; the layout cross-checked with PyPMS
``src/pms/sensors/plantower/pms5003t.py`` (``>10Hh2H``: the temperature
word is signed) and esphome/esphome ``esphome/components/pmsx003/pmsx003.cpp``
(temperature an ``int16_t`` at byte 24, humidity at byte 26, both / 10),
and PyPMS's captured frames (``tests/captured_data/PMS5003T.hexdump`` and
``PMS5003T.csv``, used as test vectors here).  arendst/Tasmota
``xsns_18_pms5003.ino`` reads the temperature word unsigned, which turns
-5.2 °C into 6548.4 °C; it is signed here.  Serial: 9600 baud, 8 data bits, no
parity, 1 stop bit, 3.3 V TTL.  Registered as ``pms5003t`` (active mode, a
stream); commands, acknowledgements, framer and checksum are the PMS5003's
(:mod:`firmware_bridge.sensors.plantower.pms5003`).

Data frame (32 bytes, every word big-endian: the PMS5003's size and length
field, 28, so the two cannot be told apart on the wire — choose the protocol
that matches the sensor's label)::

    byte  0-1   start characters 0x42 0x4D
    byte  2-3   frame length = 28
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 CF=1; PM1.0, PM2.5, PM10 atmospheric [µg/m³]
    byte 16-23  data 7-10:  particles beyond 0.3, 0.5, 1.0, 2.5 µm [#/0.1 L]
    byte 24-25  data 11:    temperature x 10 [0.1 °C], signed
    byte 26-27  data 12:    relative humidity x 10 [0.1 %]
    byte 28-29  data 13:    firmware version and error code
    byte 30-31  check code = sum of bytes 0-29, as uint16

Notes
-----
- The temperature and humidity are those of the air inside the sensor's
  case, which the laser and fan warm by 1-2 °C: a device value, not a
  weather-station one.
- All ten particle words zero means the fan is spinning up:
  :class:`WarmingUp`, as for the PMS5003 (the temperature is still dropped).
- Mass without any particle above 0.3 µm is inconsistent: :class:`FrameError`.
"""

from __future__ import annotations

import struct
from typing import Mapping

from firmware_bridge.sensors.base import Observation
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.plantower.common import (
    BAUDRATE, BYTESIZE, INIT_COMMANDS, KIND, PARITY, STOPBITS, WARMUP_S, find_frame, frame_values,
)

SENSOR = "plantower-pms5003t"

FRAME_SIZE = 32
FRAME_LENGTH = 28
PARTICLES: tuple[str, ...] = (
    "pm1_cf1", "pm2_5_cf1", "pm10_cf1", "pm1", "pm2_5", "pm10", "pn0_3", "pn0_5", "pn1", "pn2_5",
)
FIELDS: tuple[str, ...] = (*PARTICLES, "temperature", "relative_humidity")
_WORDS = struct.Struct(">10Hh2H")
_SCALED = {"temperature": (10, 10), "relative_humidity": (11, 10)}  # name: (index of the data word, divisor)


def decode(frame: bytes) -> Observation:
    """Decode one 32-byte PMS5003T data frame.

    Returns
    -------
    Observation with ``pm1_cf1, pm2_5_cf1, pm10_cf1, pm1, pm2_5, pm10`` [µg/m³],
    ``pn0_3, pn0_5, pn1, pn2_5`` [#/0.1 L], ``temperature`` [°C] and
    ``relative_humidity`` [%].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; a frame of another model; inconsistent data
    Unsupported : an acknowledgement of a mode or sleep command
    WarmingUp : all particle words are zero (fan spinning up)
    """
    return Observation(sensor=SENSOR, values=frame_values(frame, _WORDS, "PMS5003T", PARTICLES, _SCALED))


def encode(values: Mapping[str, float], *, version: int = 0) -> bytes:
    """Build the 32-byte frame a PMS5003T sends for ``values`` (every name of :data:`FIELDS`).

    Particle values are rounded to whole units, temperature and humidity to 0.1.

    Raises
    ------
    ValueError : a quantity is missing, or a value does not fit in its data word
    """
    data = [pms5003.word(name, pms5003.required(values, name, "PMS5003T")) for name in PARTICLES]
    data.append(pms5003.word("temperature", pms5003.required(values, "temperature", "PMS5003T"), 10, signed=True))
    data.append(pms5003.word("relative_humidity", pms5003.required(values, "relative_humidity", "PMS5003T"), 10))
    data.append(pms5003.word("version", version))
    return pms5003.pack(_WORDS, data)


__all__ = ["BAUDRATE", "BYTESIZE", "FIELDS", "FRAME_LENGTH", "FRAME_SIZE", "INIT_COMMANDS", "KIND", "PARITY",
           "PARTICLES", "SENSOR", "STOPBITS", "WARMUP_S", "decode", "encode", "find_frame"]
