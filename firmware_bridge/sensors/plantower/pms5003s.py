"""Plantower PMS5003S particulate matter and formaldehyde sensor frames.

Sources: avaldebe/PyPMS ``docs/sensors/Plantower.md`` ("PMS5003S": a 32-byte
message, ``42 4d 00 1c``, 13 values: the PMS5003's twelve, then HCHO in
µg/m³) and ``src/pms/sensors/plantower/pms5003s.py`` (the PMS5003's commands;
formaldehyde read in µg/m³ and divided by 1000 into mg/m³: "datasheet says
1/1000 mg/m3 ie μg/m3"); esphome/esphome
``esphome/components/pmsx003/pmsx003.cpp`` (``PMS5003S``: payload length 28,
formaldehyde at byte 28, no temperature or humidity).  It is the PMS5003ST
without temperature and humidity
(:mod:`~firmware_bridge.sensors.plantower.pms5003st`).  No public capture of
a PMS5003S exists in those projects (PyPMS's hexdump section for it is
empty): the test frames are built from that layout.  Serial: 9600 baud, 8 data
bits, no parity, 1 stop bit, 3.3 V TTL.  Registered as ``pms5003s`` (active
mode, a stream); commands, acknowledgements, framer and checksum are the
PMS5003's (:mod:`firmware_bridge.sensors.plantower.pms5003`).

Data frame (32 bytes, every word big-endian: the PMS5003's size and length
field, 28, so the two cannot be told apart on the wire — choose the protocol
that matches the sensor's label)::

    byte  0-1   start characters 0x42 0x4D
    byte  2-3   frame length = 28
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 CF=1; PM1.0, PM2.5, PM10 atmospheric [µg/m³]
    byte 16-27  data 7-12:  particles beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm [#/0.1 L]
    byte 28-29  data 13:    formaldehyde x 1000 [0.001 mg/m³ = µg/m³]
    byte 30-31  check code = sum of bytes 0-29, as uint16

Notes
-----
- Formaldehyde is stored as ``hcho`` [mg/m³] (the table's unit).  Read with
  ``pms5003``, the frame gives the particles and the formaldehyde word is
  left unread.  The electrochemical cell settles far more slowly than the
  fan (count hours).
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

SENSOR = "plantower-pms5003s"

FRAME_SIZE = pms5003.FRAME_SIZE
FRAME_LENGTH = pms5003.FRAME_LENGTH
PARTICLES = pms5003.FIELDS
FIELDS: tuple[str, ...] = (*PARTICLES, "hcho")
_WORDS = struct.Struct(">13H")
_SCALED = {"hcho": (12, 1000)}  # name: (index of the data word, divisor)


def decode(frame: bytes) -> Observation:
    """Decode one 32-byte PMS5003S data frame.

    Returns
    -------
    Observation with the PMS5003's twelve values [µg/m³, #/0.1 L] and ``hcho`` [mg/m³].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; a frame of another model; inconsistent data
    Unsupported : an acknowledgement of a mode or sleep command
    WarmingUp : all particle words are zero (fan spinning up)
    """
    return Observation(sensor=SENSOR, values=frame_values(frame, _WORDS, "PMS5003S", PARTICLES, _SCALED))


def encode(values: Mapping[str, float]) -> bytes:
    """Build the 32-byte frame a PMS5003S sends for ``values`` (every name of :data:`FIELDS`).

    Particle values are rounded to whole units, ``hcho`` to 0.001 mg/m³.

    Raises
    ------
    ValueError : a quantity is missing, or a value does not fit in its data word
    """
    hcho = pms5003.word("hcho", pms5003.required(values, "hcho", "PMS5003S"), 1000)
    return pms5003.encode(values, reserved=hcho)


__all__ = ["BAUDRATE", "BYTESIZE", "FIELDS", "FRAME_LENGTH", "FRAME_SIZE", "INIT_COMMANDS", "KIND", "PARITY",
           "PARTICLES", "SENSOR", "STOPBITS", "WARMUP_S", "decode", "encode", "find_frame"]
