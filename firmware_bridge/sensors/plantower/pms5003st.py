"""Plantower PMS5003ST particulate matter, formaldehyde, temperature and humidity sensor frames.

Sources: Plantower "PMS5003ST series data manual" (2016 edition, the one
linked from avaldebe/PyPMS ``docs/sensors/Plantower.md``), appendix
"transport protocol - Active Mode"; the layout cross-checked with PyPMS
``src/pms/sensors/plantower/pms5003st.py`` (``>13Hh3H``, formaldehyde read
in µg/m³ and divided by 1000) and esphome/esphome
``esphome/components/pmsx003/pmsx003.cpp`` (formaldehyde at byte 28,
temperature an ``int16_t`` at byte 30, humidity at byte 32, firmware version
and error code at bytes 36-37); PyPMS's test frame for an inconsistent
PMS5003ST observation (``tests/sensors/test_sensor.py``) is a test vector
here.  No public capture of a PMS5003ST exists in those projects: the other
test frames are built from the manual's layout.  Serial: 9600 baud, 8 data
bits, no parity, 1 stop bit, 3.3 V TTL.  Registered as ``pms5003st``
(active mode, a stream); commands, acknowledgements, framer and checksum
are the PMS5003's (:mod:`firmware_bridge.sensors.plantower.pms5003`).

Data frame (40 bytes, every word big-endian)::

    byte  0-1   start characters 0x42 0x4D
    byte  2-3   frame length = 2 x 17 + 2 = 36
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 CF=1; PM1.0, PM2.5, PM10 atmospheric [µg/m³]
    byte 16-27  data 7-12:  particles beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm [#/0.1 L]
    byte 28-29  data 13:    formaldehyde x 1000 [0.001 mg/m³ = µg/m³]
    byte 30-31  data 14:    temperature x 10 [0.1 °C], signed
    byte 32-33  data 15:    relative humidity x 10 [0.1 %]
    byte 34-35  data 16:    reserved
    byte 36-37  data 17:    firmware version (high byte) and error code (low byte)
    byte 38-39  check code = sum of bytes 0-37, as uint16

Notes
-----
- Formaldehyde is stored as ``hcho`` [mg/m³] (the table's unit), so the
  word is divided by 1000.  The electrochemical cell needs far longer than
  the fan to settle (the manual gives no figure; count hours, not seconds).
- All twelve particle words zero means the fan is spinning up:
  :class:`WarmingUp`, as for the PMS5003.
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

SENSOR = "plantower-pms5003st"

FRAME_SIZE = 40
FRAME_LENGTH = 36
PARTICLES = pms5003.FIELDS
FIELDS: tuple[str, ...] = (*PARTICLES, "hcho", "temperature", "relative_humidity")
_WORDS = struct.Struct(">13Hh3H")
# name: (index of the data word, divisor)
_SCALED = {"hcho": (12, 1000), "temperature": (13, 10), "relative_humidity": (14, 10)}


def decode(frame: bytes) -> Observation:
    """Decode one 40-byte PMS5003ST data frame.

    Returns
    -------
    Observation with the PMS5003's twelve values [µg/m³, #/0.1 L], ``hcho``
    [mg/m³], ``temperature`` [°C] and ``relative_humidity`` [%].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; a frame of another model; inconsistent data
    Unsupported : an acknowledgement of a mode or sleep command
    WarmingUp : all particle words are zero (fan spinning up)
    """
    return Observation(sensor=SENSOR, values=frame_values(frame, _WORDS, "PMS5003ST", PARTICLES, _SCALED))


def encode(values: Mapping[str, float], *, version: int = 0, error: int = 0) -> bytes:
    """Build the 40-byte frame a PMS5003ST sends for ``values`` (every name of :data:`FIELDS`).

    Particle values are rounded to whole units, ``hcho`` to 0.001 mg/m³,
    temperature and humidity to 0.1.

    Raises
    ------
    ValueError : a quantity is missing, or a value does not fit in its data word
    """
    def get(name: str) -> float:
        return pms5003.required(values, name, "PMS5003ST")

    data = [pms5003.word(name, get(name)) for name in PARTICLES]
    data.append(pms5003.word("hcho", get("hcho"), 1000))
    data.append(pms5003.word("temperature", get("temperature"), 10, signed=True))
    data.append(pms5003.word("relative_humidity", get("relative_humidity"), 10))
    if not (0 <= version <= 0xFF and 0 <= error <= 0xFF):
        raise ValueError(f"PMS5003ST version {version} and error code {error} must each fit in a byte")
    data += [0, version << 8 | error]
    return pms5003.pack(_WORDS, data)


__all__ = ["BAUDRATE", "BYTESIZE", "FIELDS", "FRAME_LENGTH", "FRAME_SIZE", "INIT_COMMANDS", "KIND", "PARITY",
           "PARTICLES", "SENSOR", "STOPBITS", "WARMUP_S", "decode", "encode", "find_frame"]
