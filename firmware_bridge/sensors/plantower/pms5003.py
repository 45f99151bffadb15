"""Plantower PMS5003 (and PMS1003, PMS7003, PMSA003) particulate matter sensor frames.

Sources
-------
- Plantower "PMS5003 series data manual" v2.3 (2016), "Appendix I: PMS5003
  transport protocol - Active Mode" (frame, check code) and "Appendix II:
  PMS5003 transport protocol - Passive Mode" (commands); the PMS7003 (v2.5),
  PMSA003 (v2.2) and PMS1003 (v2.5) manuals give the same 32-byte frame and
  commands; the PMS1003 and PMS7003 manuals name data word 13 "version
  number and error code".
- Frame lengths by model: esphome/esphome ``esphome/components/pmsx003/pmsx003.cpp``
  (``check_payload_length_``: 20 for the PMS3003, 28 for the PMS1003, PMS5003,
  PMS5003S, PMS5003T, PMS7003, PMSA003, 36 for the PMS5003ST) and
  avaldebe/PyPMS ``docs/sensors/Plantower.md``.
- Command answers: avaldebe/PyPMS ``src/pms/sensors/plantower/pmsx003.py``
  (``commands``: mode and sleep are answered by an 8-byte frame of length 4,
  wake-up and read by a data frame); the same commands in the Linux kernel's
  ``drivers/iio/chemical/pms7003.c`` (torvalds/linux) and arendst/Tasmota
  ``tasmota/tasmota_xsns_sensor/xsns_18_pms5003.ino``.
- Captured frames used as test vectors: avaldebe/PyPMS
  ``tests/captured_data/PMSx003.hexdump`` (with ``PMSx003.csv``) and
  ``tests/sensor/test_sensor.py``.

Serial: 9600 baud, 8 data bits, no parity, 1 stop bit, 3.3 V TTL.

Registered names: ``pms5003``, ``pms7003`` and ``pmsa003`` (active mode, a
*stream*: each opening of the port sends :data:`WAKEUP` then
:data:`ACTIVE_MODE`), and ``pms5003-passive`` (passive mode, *polled*:
:data:`WAKEUP` and :data:`PASSIVE_MODE` once, then :data:`PASSIVE_READ`
every interval).  A PMS1003 sends the same frames (read it as ``pms5003``).
The frame helpers (:func:`find_frame`, :func:`checked_words`, :func:`pack`,
:func:`command`) serve the PMS5003T and PMS5003ST modules too: same start
characters, checksum, commands and framing, other data words.

Data frame (32 bytes, every word big-endian)::

    byte  0-1   start characters 0x42 0x4D ("BM")
    byte  2-3   frame length = 2 x 13 + 2 = 28 (bytes after this field)
    byte  4-15  data 1-6:   PM1.0, PM2.5, PM10 "CF=1, standard particle" [µg/m³]
                            PM1.0, PM2.5, PM10 "under atmospheric environment" [µg/m³]
    byte 16-27  data 7-12:  particles beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm [#/0.1 L]
    byte 28-29  data 13:    reserved (PMS1003, PMS7003: version number, high byte,
                            and error code, low byte; PMS5003S: formaldehyde,
                            :mod:`~firmware_bridge.sensors.plantower.pms5003s`)
    byte 30-31  check code = sum of bytes 0-29, as uint16

Other Plantower data frames (same start, check code and commands)::

    length 20 (24 bytes)   PMS3003: six PM words, three reserved words
                           (:mod:`~firmware_bridge.sensors.plantower.pms3003`)
    length 28 (32 bytes)   PMS5003T: data 11-12 are temperature and humidity
                           (:mod:`~firmware_bridge.sensors.plantower.pms5003t`)
    length 36 (40 bytes)   PMS5003ST (:mod:`~firmware_bridge.sensors.plantower.pms5003st`)

Command frame (7 bytes), host to sensor::

    0x42 0x4D CMD DATAH DATAL LRCH LRCL     LRC = sum of the 5 bytes before it

    CMD 0xE2 data 0x0000   read, in passive mode (answer: a data frame)
    CMD 0xE1 data 0x0000   change to passive mode (answer: 42 4D 00 04 E1 00 01 74)
    CMD 0xE1 data 0x0001   change to active mode  (answer: 42 4D 00 04 E1 01 01 75)
    CMD 0xE4 data 0x0000   sleep, fan and laser off (answer: 42 4D 00 04 E4 00 01 77)
    CMD 0xE4 data 0x0001   wake up (no answer of its own: data frames follow)

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
- The acknowledgements of the mode and sleep commands (8 bytes, length
  field 4: start characters, length, command, DATAL, check code) are not in
  the manual.  :func:`find_frame` cuts them like data frames and
  :func:`decode` raises :class:`Unsupported` naming the command (the reader
  counts them as ignored); :func:`encode_ack` builds them.
- :func:`find_frame` cuts every checksum-valid Plantower frame, whatever the
  model: a frame of another model (a PMS5003ST read with ``pms5003``) is
  not passed over in silence but raises :class:`FrameError` in
  :func:`decode`, naming the models that send such frames and the protocols
  that read them.
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
# Length fields of the data frames Plantower sensors send -> the models that send them.
DATA_LENGTHS: dict[int, str] = {
    20: "PMS3003",
    28: "PMS1003, PMS5003, PMS5003S, PMS5003T, PMS7003 or PMSA003",
    36: "PMS5003ST",
}
# ... and the bridge's protocols that read them.
PROTOCOLS_BY_LENGTH: dict[int, str] = {
    20: "pms3003",
    28: "pms5003, pms5003s, pms5003t, pms7003 or pmsa003",
    36: "pms5003st",
}
_LENGTHS = frozenset((*DATA_LENGTHS, ACK_LENGTH))  # every length field find_frame cuts

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
_SETTINGS: dict[int, tuple[str, str]] = {CMD_MODE: ("passive mode", "active mode"), CMD_SLEEP: ("sleep", "wake up")}


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
    FrameError : wrong type, size, start characters, length field or checksum; a frame of another model
    Unsupported : a checksum-valid acknowledgement of a mode or sleep command
    """
    if type(frame) is not bytes:
        frame = as_bytes(frame)
    size = words.size + 6
    if len(frame) != size or frame[:4] != _head(size):
        ack = describe_ack(frame)
        if ack:
            raise Unsupported(f"{model} {ack}, not a measurement")
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
    length = int.from_bytes(frame[2:4], "big") if len(frame) >= 4 else None
    if frame[:2] == HEADER and length in DATA_LENGTHS and len(frame) == length + 4 and length != size - 4:
        return (f"{model} protocol got a frame of length {length} ({len(frame)} bytes), as a {DATA_LENGTHS[length]} "
                f"sends, not the length {size - 4} of a {model}: choose the protocol of the sensor's model "
                f"({PROTOCOLS_BY_LENGTH[length]})")
    if len(frame) != size:
        return f"{model} frame of {len(frame)} bytes; expected {size}"
    if frame[:2] != HEADER:
        return f"{model} frame starts with {frame[:2].hex()}; expected 424d"
    return f"{model} frame length field is {length}; expected {size - 4}"


def checked_words(frame: bytes, words: struct.Struct, model: str, particles: int) -> tuple[int, ...]:
    """:func:`unpack`, then the checks every Plantower particle frame gets.

    Parameters
    ----------
    particles : how many of the first data words are PM and particle-count words (12, or 10 on a PMS5003T)

    Raises
    ------
    FrameError : see :func:`unpack`; mass (``pm10``, word 6) without any particle above 0.3 µm (word 7)
    Unsupported : an acknowledgement
    WarmingUp : all particle words are zero (fan spinning up)
    """
    data = unpack(frame, words, model)
    if not any(data[:particles]):
        raise WarmingUp(f"{model} sends all-zero particle data: the fan is still spinning up")
    if data[6] == 0 and data[5] > 0:
        raise FrameError(f"{model} inconsistent frame: pm10={data[5]} µg/m³ but no particle > 0.3 µm")
    return data


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
    FrameError : wrong size, header, length field or checksum; a frame of another model; inconsistent data
    Unsupported : an acknowledgement of a mode or sleep command
    WarmingUp : all twelve data words are zero (fan spinning up)
    """
    words = checked_words(frame, _WORDS, "PMS5003", 12)
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
    reserved : data word 13 (version and error code on a PMS7003)

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
    """Cut the next checksum-valid Plantower frame out of ``buffer``, resynchronising past garbage.

    Every model's data frames (length field 20, 28 or 36) and the 8-byte
    acknowledgements (length field 4) are cut: :func:`decode` tells a frame
    of another model or an acknowledgement from a measurement.  The PMS5003T
    and PMS5003ST modules use this framer too.

    Returns
    -------
    (frame, rest) : ``frame`` is a checksum-valid frame or ``None``; ``rest``
        is what follows it, or, when no frame is complete yet, the tail that
        may still begin one (keep it and append the next bytes).

    Notes
    -----
    A start sequence followed by an unknown length or a wrong checksum is
    taken for garbage: the search goes on one byte further, so a real frame
    that begins inside a torn one, or after start characters that happen to
    be in a payload, is still found.
    """
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(HEADER, start)
        if i < 0:
            return _no_start(buf)
        if len(buf) - i < 4:
            return None, buf[i:]
        length = (buf[i + 2] << 8) | buf[i + 3]
        if length in _LENGTHS:
            end = i + length + 4
            if len(buf) < end:
                return None, buf[i:]
            frame = buf[i:end]
            if _checksum_ok(frame):
                return frame, buf[end:]
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


# ------------------------------------------------------------------ acknowledgements
def encode_ack(cmd: int, data: int) -> bytes:
    """The 8-byte acknowledgement ``42 4D 00 04 CMD DATAL CSH CSL`` a sensor sends after a mode or sleep command.

    Real sensors acknowledge passive mode (``42 4D 00 04 E1 00 01 74``), active
    mode (``… E1 01 01 75``) and sleep (``… E4 00 01 77``); they answer wake-up
    with data frames, not with an acknowledgement.
    """
    body = HEADER + ACK_LENGTH.to_bytes(2, "big") + bytes([cmd & 0xFF, data & 0xFF])
    return body + checksum(body).to_bytes(2, "big")


def describe_ack(frame: bytes) -> str | None:
    """``"acknowledgement of passive mode"`` for a checksum-valid acknowledgement, else None."""
    if len(frame) != ACK_SIZE or frame[:4] != _head(ACK_SIZE) or not _checksum_ok(frame):
        return None
    cmd, data = frame[4], frame[5]
    settings = _SETTINGS.get(cmd)
    what = settings[data] if settings and data < 2 else f"command 0x{cmd:02X} with data 0x{data:02X}"
    return f"acknowledgement of {what}"
