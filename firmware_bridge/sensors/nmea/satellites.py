"""NMEA 0183 satellite sentences: GSA (DOP and active satellites) and GSV (satellites in view).

Source: NMEA 0183 Interface Standard v4.11 (2018), section 6.3, "GSA" and
"GSV" (the system ID of GSA and the signal ID of GSV are v4.10+ fields);
Eric S. Raymond, "NMEA Revealed" (gpsd project, v2.23) for the example
sentences.  Decoding into observations is :mod:`.nmea0183`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.sensors.base import FrameError
from firmware_bridge.sensors.nmea.fields import integer, number


@dataclass(frozen=True)
class Gsa:
    """A GSA sentence: ``mode`` (M/A), ``fix_type`` (1 none, 2 2D, 3 3D), satellite numbers, DOPs, system ID."""

    mode: str
    fix_type: int
    satellites: tuple[int, ...]
    pdop: float | None
    hdop: float | None
    vdop: float | None
    system: int | None


def parse_gsa(fields: list[str]) -> Gsa:
    """Check and split the fields of a GSA sentence (after its address).

    Raises
    ------
    FrameError : too few fields, an unknown mode or fix type, a malformed number
    """
    if len(fields) < 17:
        raise FrameError(f"GSA with {len(fields)} fields; expected 17 or 18")
    if fields[0] not in ("M", "A"):
        raise FrameError(f"GSA mode {fields[0]!r}; expected M or A")
    fix_type = integer(fields[1], "GSA fix type")
    if fix_type not in (1, 2, 3):
        raise FrameError(f"GSA fix type {fix_type}; expected 1, 2 or 3")
    prns = tuple(integer(f, "GSA satellite number") for f in fields[2:14] if f)
    pdop, hdop, vdop = (number(f, "GSA DOP", signed=False) if f else None for f in fields[14:17])
    system = integer(fields[17], "GSA system ID") if len(fields) > 17 and fields[17] else None
    return Gsa(fields[0], fix_type, prns, pdop, hdop, vdop, system)


@dataclass(frozen=True)
class Gsv:
    """A GSV sentence: ``number`` of ``total`` in its group, satellites in view, and up to four satellites.

    ``satellites`` holds ``(prn, elevation [°], azimuth [°], snr [dB-Hz])``; empty fields are ``None``.
    """

    total: int
    number: int
    in_view: int
    satellites: tuple[tuple[int, int | None, int | None, int | None], ...]


def parse_gsv(fields: list[str]) -> Gsv:
    """Check and split the fields of a GSV sentence (after its address).

    Raises
    ------
    FrameError : a wrong field count, a sentence number beyond the total, an angle out of range
    """
    if len(fields) < 3 or (len(fields) - 3) % 4 not in (0, 1):
        raise FrameError(f"GSV with {len(fields)} fields; expected 3 + 4 per satellite (+ a signal ID)")
    total, number, in_view = (integer(f, "GSV count") for f in fields[:3])
    if not 1 <= number <= total <= 9:
        raise FrameError(f"GSV sentence {number} of {total}; expected 1 <= number <= total <= 9")
    satellites = []
    for i in range(3, len(fields) - 3, 4):
        prn, elevation, azimuth, snr = (integer(f, "GSV satellite field") if f else None for f in fields[i:i + 4])
        if prn is None or (elevation or 0) > 90 or (azimuth or 0) > 359 or (snr or 0) > 99:
            raise FrameError(f"GSV satellite {','.join(fields[i:i + 4])!r} is out of range")
        satellites.append((prn, elevation, azimuth, snr))
    return Gsv(total, number, in_view, tuple(satellites))
