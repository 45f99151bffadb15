"""Plantower PMS5003 (and PMS7003, PMSA003) particulate matter sensor frames.

Source: Plantower "PMS5003 series data manual" v2.3 (2016), sections
"Appendix I: PMS5003 transport protocol - Active Mode" and "Appendix II:
PMS5003 transport protocol - Passive Mode".  The PMS7003 and PMSA003 manuals
(v2.5 and v2.2) give the same 32-byte frame and commands.  Serial: 9600 baud,
8 data bits, no parity, 1 stop bit, 3.3 V TTL.

Registered names: ``pms5003``, ``pms7003`` and ``pmsa003`` (active mode, a
*stream*: each opening of the port sends :data:`WAKEUP` then
:data:`ACTIVE_MODE`), and ``pms5003-passive`` (passive mode, *polled*:
:data:`WAKEUP` and :data:`PASSIVE_MODE` once, then :data:`PASSIVE_READ`
every interval).  The frame helpers (:func:`unpack`, :func:`find_data_frame`,
:func:`pack`, :func:`command`) serve the PMS5003T and PMS5003ST modules too:
same start characters, checksum and commands, other data words.

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

import functools
import struct
from typing import Mapping

from firmware_bridge.sensors.base import (
    FrameError, Observation, Unsupported, WarmingUp, as_bytes, known_command, scaled_int,
)

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
def unpack(frame: bytes, words: struct.Struct, model: str) -> tuple[int, ...]:
    """Check a data frame's size, start characters, length field and checksum; return its data words.

    Parameters
    ----------
    frame : the whole frame, ``42 4D``, length, data words, check code
    words : the layout of the data words (``>13H`` for the PMS5003)
    model : named in error messages

    Raises
    ------
    FrameError : wrong type, size, start characters, length field or checksum
    """
    if type(frame) is not bytes:
        frame = as_bytes(frame)
    size = words.size + 6
    if len(frame) != size or frame[:4] != _head(size):
        raise FrameError(_why(frame, size, model))
    check = (frame[-2] << 8) | frame[-1]
    if check != sum(frame[:-2]) & 0xFFFF:
        raise FrameError(f"{model} checksum {check:04x} does not match {checksum(frame[:-2]):04x}")
    return words.unpack_from(frame, 4)


@functools.lru_cache(maxsize=None)
def _head(size: int) -> bytes:
    """The first four bytes of every data frame of ``size`` bytes: start characters and length field."""
    return HEADER + (size - 4).to_bytes(2, "big")


def _why(frame: bytes, size: int, model: str) -> str:
    if len(frame) != size:
        return f"{model} frame of {len(frame)} bytes; expected {size}"
    if frame[:2] != HEADER:
        return f"{model} frame starts with {frame[:2].hex()}; expected 424d"
    return f"{model} frame length field is {int.from_bytes(frame[2:4], 'big')}; expected {size - 4}"


def decode(frame: bytes, *, sensor: str = SENSOR) -> Observation:
    """Decode one 32-byte data frame.

    Parameters
    ----------
    frame : exactly :data:`FRAME_SIZE` bytes, as cut by :func:`find_frame`
    sensor : the model id written into the observation (``plantower-pms7003`` for the alias)

    Returns
    -------
    Observation with ``pm1_cf1, pm2_5_cf1, pm10_cf1, pm1, pm2_5, pm10`` [µg/m³]
    and ``pn0_3, pn0_5, pn1, pn2_5, pn5, pn10`` [#/0.1 L].

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; inconsistent data
    WarmingUp : all twelve data words are zero (fan spinning up)
    """
    words = unpack(frame, _WORDS, "PMS5003")
    if not any(words[:12]):
        raise WarmingUp("PMS5003 sends all-zero data: the fan is still spinning up")
    if words[6] == 0 and words[5] > 0:
        raise FrameError(f"PMS5003 inconsistent frame: pm10={words[5]} µg/m³ but no particle > 0.3 µm")
    return Observation(sensor=sensor, values=dict(zip(FIELDS, map(float, words))))


def pack(words: struct.Struct, data: list[int]) -> bytes:
    """Build a data frame: start characters, length field, ``data`` laid out by ``words``, check code."""
    body = HEADER + (words.size + 2).to_bytes(2, "big") + words.pack(*data)
    return body + checksum(body).to_bytes(2, "big")


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
    words = [word(name, required(obs_values, name, "PMS5003")) for name in FIELDS]
    return pack(_WORDS, [*words, word("reserved", reserved)])


def required(values: Mapping[str, float], name: str, model: str) -> float:
    """``values[name]``, or a ValueError naming what the frame needs and what was given."""
    if name not in values:
        raise ValueError(f"{model} frame needs {name}; got {', '.join(sorted(values)) or 'nothing'}")
    return values[name]


def word(name: str, value: float, scale: float = 1.0, *, signed: bool = False) -> int:
    """``value * scale`` rounded to a data word (uint16, or int16 when ``signed``).

    Raises
    ------
    ValueError : not a finite number, or outside what the word can carry
    """
    lo, hi = (-0x8000, 0x7FFF) if signed else (0, 0xFFFF)
    return scaled_int(name, value, lo, hi, scale=scale, what="a Plantower data word")


WARMING_UP_FRAME = encode(dict.fromkeys(FIELDS, 0))


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first valid 32-byte data frame in ``buffer`` (see :func:`find_data_frame`)."""
    return find_data_frame(buffer, FRAME_LENGTH)


def find_data_frame(buffer: bytes, frame_length: int) -> tuple[bytes | None, bytes]:
    """Find the first valid data frame whose length field is ``frame_length``, resynchronising past garbage.

    Returns
    -------
    (frame, rest) : ``frame`` is a checksum-valid data frame of ``frame_length + 4``
        bytes or ``None``; ``rest`` is what follows it, or, when no frame is
        complete yet, the tail that may still begin one (keep it and append
        the next bytes).

    Notes
    -----
    A start sequence followed by a wrong length or a wrong checksum is taken
    for garbage: the search goes on one byte further, so a real frame that
    begins inside a torn one is still found.  Command acknowledgements
    (8 bytes, length field 4, valid checksum) are passed over whole.
    """
    buf = as_bytes(buffer)
    size = frame_length + 4
    start = 0
    while True:
        i = buf.find(HEADER, start)
        if i < 0:
            return _no_start(buf)
        if len(buf) - i < 4:
            return None, buf[i:]
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if length == frame_length:
            if len(buf) - i < size:
                return None, buf[i:]
            frame = buf[i:i + size]
            if _checksum_ok(frame):
                return frame, buf[i + size:]
        elif length == ACK_LENGTH:
            if len(buf) - i < ACK_SIZE:
                return None, buf[i:]
            if _checksum_ok(buf[i:i + ACK_SIZE]):
                start = i + ACK_SIZE
                continue
        start = i + 1


def _no_start(buf: bytes) -> tuple[None, bytes]:
    """No start characters left in ``buf``: keep only a last byte that may begin them."""
    keep = 1 if buf.endswith(HEADER[:1]) else 0
    return None, buf[len(buf) - keep:]


# ------------------------------------------------------------------ commands
def command(cmd: int, data: int = 0) -> bytes:
    """Build a 7-byte command frame ``42 4D CMD DATAH DATAL LRCH LRCL``."""
    known_command(cmd, COMMANDS, "PMS5003")
    if not 0 <= data <= 0xFFFF:
        raise ValueError(f"PMS5003 command data {data} does not fit in 16 bits")
    body = HEADER + bytes([cmd]) + data.to_bytes(2, "big")
    return body + checksum(body).to_bytes(2, "big")


PASSIVE_READ = command(CMD_READ, 0x0000)
PASSIVE_MODE = command(CMD_MODE, 0x0000)
ACTIVE_MODE = command(CMD_MODE, 0x0001)
SLEEP = command(CMD_SLEEP, 0x0000)
WAKEUP = command(CMD_SLEEP, 0x0001)

# Written once after each opening of the port: a sensor left asleep or in
# passive mode by an earlier program streams again (its answers are acknowledgements).
INIT_COMMANDS: tuple[bytes, ...] = (WAKEUP, ACTIVE_MODE)
# The ``pms5003-passive`` registration: the reader asks for each frame.
PASSIVE_INIT_COMMANDS: tuple[bytes, ...] = (WAKEUP, PASSIVE_MODE)
WARMUP_S = 30.0  # [s] fan stabilisation after power-on or wake-up (data manual, "stable data")


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
            return _no_start(buf)
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
