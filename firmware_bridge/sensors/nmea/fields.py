"""NMEA 0183 field syntax: numbers, integers, angles, times, as sentences write them.

Source: NMEA 0183 Interface Standard v4.11 (2018), section 5.3 (field
types); the mode indicator letters as gpsd's "NMEA Revealed" lists them.
Shared by the sentence parsers of :mod:`.nmea0183` and :mod:`.satellites`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from firmware_bridge.sensors.base import FrameError

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6}))?")
_DATE = re.compile(r"(\d{2})(\d{2})(\d{2})")
# Mode indicator (NMEA 2.3+, in RMC, GLL, VTG): A autonomous, D differential, E estimated (dead
# reckoning), F float RTK, M manual input, N not valid, P precise, R RTK, S simulator.
MODES = frozenset("ADEFMNPRS")


def number(text: str, what: str, *, signed: bool) -> float:
    """A decimal field (``-12.5``, ``.5``, ``3.``); ``what`` names it in the :class:`FrameError`."""
    if not _NUMBER.fullmatch(text) or (not signed and text.startswith("-")):
        raise FrameError(f"{what} {text!r} is not a number")
    return float(text)


def integer(text: str, what: str) -> int:
    """An unsigned integer field of ASCII digits."""
    if not text.isdigit() or not text.isascii():
        raise FrameError(f"{what} {text!r} is not an integer")
    return int(text)


def angle(text: str, hemisphere: str, signs: str, degree_digits: int, limit: float) -> float:
    """``ddmm.mmmm`` (or ``dddmm.mmmm``) and a hemisphere letter -> signed decimal degrees."""
    if not text or not hemisphere:
        raise FrameError("position field is empty in a sentence that claims a fix")
    if len(hemisphere) != 1 or hemisphere not in signs:
        raise FrameError(f"hemisphere {hemisphere!r}; expected one of {signs}")
    head, _, frac = text.partition(".")
    if not head.isdigit() or not head.isascii() or not 3 <= len(head) <= degree_digits + 2 \
            or (frac and (not frac.isdigit() or not frac.isascii())):
        raise FrameError(f"position {text!r} is not {'d' * degree_digits}mm.mmmm")
    degrees = int(head[:-2] or "0")
    minutes = float(f"{head[-2:]}.{frac or '0'}")
    if minutes >= 60.0:
        raise FrameError(f"position {text!r} has {minutes} minutes")
    value = degrees + minutes / 60.0
    if value > limit:
        raise FrameError(f"position {text!r} is beyond {limit:g}°")
    return -value if hemisphere == signs[1] else value


def time_of_day(text: str) -> tuple[int, int, int, int]:
    """``hhmmss.ss`` -> (hour, minute, second, microsecond); second 60 (a leap second) passes."""
    match = _TIME.fullmatch(text)
    if not match:
        raise FrameError(f"time {text!r} is not hhmmss.ss")
    hour, minute, second = (int(g) for g in match.groups()[:3])
    if hour > 23 or minute > 59 or second > 60:
        raise FrameError(f"time {text!r} is out of range")
    micro = int((match.group(4) or "").ljust(6, "0"))
    return hour, minute, second, micro


def course(text: str, what: str) -> float:
    """A course over ground [° true], 0..360."""
    value = number(text, f"{what} course", signed=False)
    if value > 360.0:
        raise FrameError(f"{what} course {value} is above 360°")
    return value


def mode(text: str, what: str) -> str:
    """A mode indicator letter (empty when the receiver predates NMEA 2.3)."""
    if text and (len(text) != 1 or text not in MODES):
        raise FrameError(f"{what} mode indicator {text!r}; expected one of {''.join(sorted(MODES))}")
    return text


def utc(year: int, month: int, day: int, time_text: str, what: str) -> datetime:
    """The UTC datetime of a date and an ``hhmmss.ss`` time (a leap second cannot be a ``datetime``)."""
    hour, minute, second, micro = time_of_day(time_text)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError as exc:
        raise FrameError(f"{what} date {year:04d}-{month:02d}-{day:02d} {time_text} is not a UTC time: {exc}") from None


def date_ddmmyy(text: str, what: str) -> tuple[int, int, int]:
    """``ddmmyy`` -> (year, month, day); 80-99 are 1980-1999, 00-79 are 2000-2079."""
    match = _DATE.fullmatch(text)
    if not match:
        raise FrameError(f"{what} date {text!r} is not ddmmyy")
    day, month, yy = (int(g) for g in match.groups())
    return (1900 + yy if yy >= 80 else 2000 + yy), month, day
