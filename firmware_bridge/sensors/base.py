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


@dataclass(frozen=True)
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
