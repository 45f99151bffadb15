"""Plantower PMS5003 (and PMS7003, PMSA003) particulate matter sensor frames.

Source: Plantower "PMS5003 series data manual" v2.3 (2016), sections
"Appendix I: PMS5003 transport protocol - Active Mode" and "Appendix II:
PMS5003 transport protocol - Passive Mode".  The PMS7003 and PMSA003 manuals
give the same 32-byte frame.  Serial: 9600 baud, 8 data bits, no parity,
1 stop bit, 3.3 V TTL.

Data frame (32 bytes, every word big-endian)::

    byte  0-1   start characters 0x42 0x4D ("BM")
    byte  2-3   frame length = 2 x 13 + 2 = 28 (bytes after this field)
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 "CF=1, standard particle" [µg/m³]
                            PM1.0, PM2.5, PM10 "under atmospheric environment" [µg/m³]
    byte 16-27  data 7-12:  particles beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm [#/0.1 L]
    byte 28-29  data 13:    reserved (PMSA003: version number and error code)
    byte 30-31  check code = sum of bytes 0-29, as uint16

Command frame (7 bytes), host to sensor::

    0x42 0x4D CMD DATAH DATAL LRCH LRCL     LRC = sum of the 5 bytes before it

    CMD 0xE2 data 0x0000   read, in passive mode (answer: a data frame)
    CMD 0xE1 data 0x0000   change to passive mode
    CMD 0xE1 data 0x0001   change to active mode
    CMD 0xE4 data 0x0000   sleep (fan and laser off)
    CMD 0xE4 data 0x0001   wake up

Notes
-----
- "CF=1" values use the factory's standard particle; the manual says to use
  the "atmospheric environment" values for ambient air.  Below about
  30 µg/m³ both are equal; above it CF=1 reads higher.  Both are kept
  (``pm*_cf1`` and ``pm*``), never mixed.
- Counts are per 0.1 litre of air and cumulative ("beyond" a diameter), so
  ``pn0_3 >= pn0_5 >= ... >= pn10`` in a sane frame.
- After power-on or wake-up the fan needs about 30 s to stabilise; during
  that time the sensor sends frames whose twelve data words are all zero.
  Such a frame raises :class:`WarmingUp`.  Real air always holds particles
  above 0.3 µm, so all-zero data never is a measurement.
- A frame with mass (``pm10 > 0``) but no particle above 0.3 µm is
  inconsistent (seen with a failing laser; avaldebe/PyPMS refuses it too):
  :class:`FrameError`.
- The manual does not document any answer to the mode and sleep commands.
  Sensors in the field answer the mode change with an 8-byte frame of
  length 4: ``42 4D 00 04 E1 00 01 74`` (passive).  :func:`find_frame`
  passes over such acknowledgements; :func:`encode_ack` builds them.
"""

from __future__ import annotations

import struct
from typing import Mapping

from firmware_bridge.sensors.base import FrameError, Observation, Unsupported, WarmingUp, as_bytes

SENSOR = "plantower-pms5003"
KIND = "stream"  # active mode: the sensor pushes frames on its own
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

HEADER = b"\x42\x4d"
FRAME_SIZE = 32
FRAME_LENGTH = 28  # the value of bytes 2-3
ACK_SIZE = 8
ACK_LENGTH = 4
COMMAND_SIZE = 7

# Data words 1-12, in frame order, as canonical quantity names.
FIELDS: tuple[str, ...] = (
    "pm1_cf1", "pm2_5_cf1", "pm10_cf1",
    "pm1", "pm2_5", "pm10",
    "pn0_3", "pn0_5", "pn1", "pn2_5", "pn5", "pn10",
)
_WORDS = struct.Struct(">13H")

CMD_READ = 0xE2
CMD_MODE = 0xE1
CMD_SLEEP = 0xE4
COMMANDS: dict[int, str] = {CMD_READ: "read", CMD_MODE: "mode", CMD_SLEEP: "sleep"}


def checksum(data: bytes) -> int:
    """Plantower check code: the sum of ``data``'s bytes, as uint16."""
    return sum(data) & 0xFFFF


def _checksum_ok(frame: bytes) -> bool:
    return int.from_bytes(frame[-2:], "big") == checksum(frame[:-2])


# ------------------------------------------------------------------ data frames
def decode(frame: bytes) -> Observation:
    """Decode one 32-byte data frame.

    Parameters
    ----------
    frame : exactly :data:`FRAME_SIZE` bytes, as cut by :func:`find_frame`

    Returns
    -------
    Observation with ``pm1_cf1, pm2_5_cf1, pm10_cf1, pm1, pm2_5, pm10`` [µg/m³]
    and ``pn0_3, pn0_5, pn1, pn2_5, pn5, pn10`` [#/0.1 L].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; inconsistent data
    WarmingUp : all twelve data words are zero (fan spinning up)
    """
    frame = as_bytes(frame)
    if len(frame) != FRAME_SIZE:
        raise FrameError(f"PMS5003 frame of {len(frame)} bytes; expected {FRAME_SIZE}")
    if frame[:2] != HEADER:
        raise FrameError(f"PMS5003 frame starts with {frame[:2].hex()}; expected 424d")
    length = int.from_bytes(frame[2:4], "big")
    if length != FRAME_LENGTH:
        raise FrameError(f"PMS5003 frame length field is {length}; expected {FRAME_LENGTH}")
    if not _checksum_ok(frame):
        raise FrameError(
            f"PMS5003 checksum {frame[-2:].hex()} does not match {checksum(frame[:-2]):04x}")
    words = _WORDS.unpack(frame[4:30])
    values = {name: float(word) for name, word in zip(FIELDS, words)}
    if not any(words[:12]):
        raise WarmingUp("PMS5003 sends all-zero data: the fan is still spinning up")
    if values["pn0_3"] == 0 and values["pm10"] > 0:
        raise FrameError(f"PMS5003 inconsistent frame: pm10={values['pm10']:g} µg/m³ but no particle > 0.3 µm")
    return Observation(sensor=SENSOR, values=values)


def encode(obs_values: Mapping[str, float], *, reserved: int = 0) -> bytes:
    """Build the 32-byte data frame a sensor would send for these values.

    Parameters
    ----------
    obs_values : every name of :data:`FIELDS` -> value [µg/m³ or #/0.1 L];
        values are rounded to the nearest integer (the frame's resolution)
    reserved : data word 13 (version and error code on a PMSA003)

    Raises
    ------
    ValueError : a quantity is missing, or a value does not fit in a uint16
    """
    words: list[int] = []
    for name in FIELDS:
        if name not in obs_values:
            raise ValueError(f"PMS5003 frame needs {name}; got {', '.join(sorted(obs_values)) or 'nothing'}")
        words.append(_uint16(name, obs_values[name]))
    words.append(_uint16("reserved", reserved))
    body = HEADER + FRAME_LENGTH.to_bytes(2, "big") + _WORDS.pack(*words)
    return body + checksum(body).to_bytes(2, "big")


def _uint16(name: str, value: float) -> int:
    try:
        word = round(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={value!r} is not a finite number") from None
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"{name}={value!r} does not fit in a PMS5003 data word (0..65535)")
    return word


WARMING_UP_FRAME = encode(dict.fromkeys(FIELDS, 0))


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first valid data frame in ``buffer``, resynchronising past garbage.

    Returns
    -------
    (frame, rest) : ``frame`` is a checksum-valid 32-byte data frame or ``None``;
        ``rest`` is what follows it, or, when no frame is complete yet, the tail
        that may still begin one (keep it and append the next bytes).

    Notes
    -----
    A start sequence followed by a wrong length or a wrong checksum is taken
    for garbage: the search goes on one byte further, so a real frame that
    begins inside a torn one is still found.  Command acknowledgements
    (8 bytes, length field 4, valid checksum) are passed over whole.
    """
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(HEADER, start)
        if i < 0:
            keep = 1 if buf.endswith(HEADER[:1]) else 0
            return None, buf[len(buf) - keep:]
        if len(buf) - i < 4:
            return None, buf[i:]
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if length == FRAME_LENGTH:
            if len(buf) - i < FRAME_SIZE:
                return None, buf[i:]
            frame = buf[i:i + FRAME_SIZE]
            if _checksum_ok(frame):
                return frame, buf[i + FRAME_SIZE:]
        elif length == ACK_LENGTH:
            if len(buf) - i < ACK_SIZE:
                return None, buf[i:]
            if _checksum_ok(buf[i:i + ACK_SIZE]):
                start = i + ACK_SIZE
                continue
        start = i + 1


# ------------------------------------------------------------------ commands
def command(cmd: int, data: int = 0) -> bytes:
    """Build a 7-byte command frame ``42 4D CMD DATAH DATAL LRCH LRCL``."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown PMS5003 command 0x{cmd:02X}; known: "
                         + ", ".join(f"0x{c:02X} ({n})" for c, n in COMMANDS.items()))
    if not 0 <= data <= 0xFFFF:
        raise ValueError(f"PMS5003 command data {data} does not fit in 16 bits")
    body = HEADER + bytes([cmd]) + data.to_bytes(2, "big")
    return body + checksum(body).to_bytes(2, "big")


PASSIVE_READ = command(CMD_READ, 0x0000)
PASSIVE_MODE = command(CMD_MODE, 0x0000)
ACTIVE_MODE = command(CMD_MODE, 0x0001)
SLEEP = command(CMD_SLEEP, 0x0000)
WAKEUP = command(CMD_SLEEP, 0x0001)


def parse_command(frame: bytes) -> tuple[int, int]:
    """Split a 7-byte command frame into ``(cmd, data)``.

    Raises
    ------
    FrameError : wrong size, header or checksum
    Unsupported : a well-formed frame with a command byte the manual does not list
    """
    frame = as_bytes(frame)
    if len(frame) != COMMAND_SIZE:
        raise FrameError(f"PMS5003 command of {len(frame)} bytes; expected {COMMAND_SIZE}")
    if frame[:2] != HEADER:
        raise FrameError(f"PMS5003 command starts with {frame[:2].hex()}; expected 424d")
    if not _checksum_ok(frame):
        raise FrameError(f"PMS5003 command checksum {frame[-2:].hex()} does not match {checksum(frame[:-2]):04x}")
    cmd, data = frame[2], int.from_bytes(frame[3:5], "big")
    if cmd not in COMMANDS:
        raise Unsupported(f"PMS5003 command 0x{cmd:02X} is not in the data manual")
    return cmd, data


def find_command(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Like :func:`find_frame`, for the 7-byte command frames a host sends (simulators use it)."""
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(HEADER, start)
        if i < 0:
            keep = 1 if buf.endswith(HEADER[:1]) else 0
            return None, buf[len(buf) - keep:]
        if len(buf) - i < COMMAND_SIZE:
            return None, buf[i:]
        frame = buf[i:i + COMMAND_SIZE]
        if _checksum_ok(frame) and frame[2] in COMMANDS:
            return frame, buf[i + COMMAND_SIZE:]
        start = i + 1


def encode_ack(cmd: int, data: int) -> bytes:
    """The 8-byte acknowledgement field sensors send after a mode or sleep command.

    Not in the data manual; observed as ``42 4D 00 04 CMD DATAL CSH CSL``.
    """
    body = HEADER + ACK_LENGTH.to_bytes(2, "big") + bytes([cmd & 0xFF, data & 0xFF])
    return body + checksum(body).to_bytes(2, "big")
