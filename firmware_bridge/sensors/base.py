"""What every sensor protocol decoder returns or raises.

A decoder is a pure function of bytes: no serial I/O, no clock.  It is
*total*: whatever it is given, it returns an :class:`Observation` or raises
one of the :class:`SensorError` subclasses below, whose name says what the
caller should do:

=================  ==============================================================
exception          what the reader does
=================  ==============================================================
``FrameError``     drop the frame and resynchronise (bad header, length, checksum,
                   short or inconsistent frame)
``WarmingUp``      the sensor is alive but not ready yet: keep reading, wait
``NoFix``          the GPS is talking but has no position: keep reading, wait
``Unsupported``    a sentence or command this decoder does not know; when it is
                   the configuration that names it, refuse to start
=================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True, init=False)
class Observation:
    """One decoded reading of one sensor.

    Attributes
    ----------
    sensor : sensor model id, e.g. ``"plantower-pms5003"``, ``"winsen-mhz19"``, ``"nmea-gps"``
    values : canonical quantity name (:mod:`qsec.quantities`) -> value in that quantity's unit
    time : measurement time, only when the device itself states it (GPS RMC) [UTC, aware]
    warming_up : the sensor is in its warm-up period; the values may be biased
    """

    sensor: str
    values: dict[str, float]
    time: datetime | None = None
    warming_up: bool = False

    def __init__(self, sensor: str, values: dict[str, float], time: datetime | None = None,
                 warming_up: bool = False) -> None:
        # One dict update instead of four object.__setattr__ calls: decoding is the bridge's hot path.
        self.__dict__.update(sensor=sensor, values=values, time=time, warming_up=warming_up)


class SensorError(Exception):
    """Base class of everything a decoder raises."""


class FrameError(SensorError):
    """The bytes are not a valid frame: drop them and resynchronise."""


class WarmingUp(SensorError):
    """The sensor answers but is not ready: wait."""


class NoFix(SensorError):
    """The GPS receiver talks but has no position fix: wait."""


class Unsupported(SensorError):
    """A sentence, command or protocol this code does not handle."""


def as_bytes(data: object) -> bytes:
    """Return ``data`` as ``bytes``, or raise :class:`FrameError` if it is not bytes-like."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise FrameError(f"expected bytes, got {type(data).__name__}")


def scaled_int(name: str, value: float, lo: int, hi: int, *, scale: float = 1.0, what: str = "a frame") -> int:
    """``value * scale`` rounded to the nearest integer, for an encoder (the sensor's side).

    Raises
    ------
    ValueError : not a finite number, or outside ``lo..hi`` once scaled (the message gives the range
        in ``value``'s own unit and names ``what`` cannot carry it)
    """
    try:
        n = round(value * scale)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={value!r} is not a finite number") from None
    if not lo <= n <= hi:
        raise ValueError(f"{name}={value!r} is outside what {what} carries ({lo / scale:g}..{hi / scale:g})")
    return n


def known_command(cmd: int, commands: Mapping[int, str], model: str) -> int:
    """``cmd`` if ``commands`` lists it, else a ValueError naming the commands ``model`` knows."""
    if cmd not in commands:
        raise ValueError(f"unknown {model} command 0x{cmd:02X}; known: "
                         + ", ".join(f"0x{c:02X} ({n})" for c, n in commands.items()))
    return cmd
