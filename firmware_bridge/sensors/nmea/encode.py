"""NMEA 0183 sentences built from values: the receiver's side, for simulators and tests.

Source: NMEA 0183 Interface Standard v4.11 (2018), sections 5.3 (sentence
format and checksum) and 6.3 (GGA, RMC, VTG, GSA, GSV).  The decoder is
:mod:`firmware_bridge.sensors.nmea.nmea0183`, which re-exports these names.
"""

from __future__ import annotations

from datetime import datetime, time as dtime, timezone
from typing import Sequence

# NMEA 0183 v4.11 talkers (GP GPS, GL GLONASS, GA Galileo, GB BeiDou, GQ QZSS, GI NavIC, GN combined),
# and the older BD (BeiDou) and QZ (QZSS) that receivers still send.
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "GQ", "GI", "BD", "QZ"})
KNOT = 1852.0 / 3600.0  # [m/s]
KMH = 1000.0 / 3600.0  # [m/s]


def checksum(body: str) -> int:
    """XOR of the characters of ``body`` (the text between ``$`` and ``*``)."""
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def sentence(body: str) -> bytes:
    """Frame ``body`` as a sentence: ``$`` + body + ``*hh`` + CR LF."""
    return f"${body}*{checksum(body):02X}\r\n".encode("ascii")


def encode_gga(when: datetime | dtime, latitude: float | None, longitude: float | None, *,
               fix_quality: int = 1, satellites: int = 8, hdop: float | None = 0.9,
               altitude: float | None = 0.0, geoid_separation: float | None = 46.9,
               talker: str = "GP", decimals: int = 5) -> bytes:
    """Build a GGA sentence.

    Parameters
    ----------
    when : UTC time of the fix (an aware datetime, converted to UTC, or a ``time``)
    latitude, longitude : [° WGS84]; ``None`` leaves the fields empty (no fix)
    fix_quality : 0 (no fix) .. 8
    satellites : satellites in use
    hdop : horizontal dilution of precision, ``None`` for an empty field
    altitude : above mean sea level [m]
    geoid_separation : geoid height above the WGS84 ellipsoid [m] (about 46 m around Paris)
    talker : GP, GN, ...
    decimals : digits of decimal minutes (5 = 1.9 cm of latitude)
    """
    fields = [
        "GGA",
        _format_time(when),
        *_format_angle(latitude, "NS", 2, decimals),
        *_format_angle(longitude, "EW", 3, decimals),
        str(fix_quality),
        f"{satellites:02d}",
        "" if hdop is None else f"{hdop:.1f}",
        "" if altitude is None else f"{altitude:.1f}",
        "" if altitude is None else "M",
        "" if geoid_separation is None else f"{geoid_separation:.1f}",
        "" if geoid_separation is None else "M",
        "",
        "",
    ]
    return sentence(_talker(talker) + ",".join(fields))


def encode_rmc(when: datetime, latitude: float | None, longitude: float | None, *,
               speed: float | None = 0.0, course: float | None = None, valid: bool = True,
               talker: str = "GP", decimals: int = 5) -> bytes:
    """Build an RMC sentence (v2.3 layout, with the mode indicator).

    Parameters
    ----------
    when : UTC date and time (an aware datetime)
    latitude, longitude : [° WGS84]; ``None`` leaves the fields empty
    speed : speed over ground [m/s], sent in knots
    course : course over ground [° true], ``None`` when not moving
    valid : status A (True) or V (False)
    """
    if when.tzinfo is None:
        raise ValueError("RMC time must be timezone-aware (UTC)")
    utc = when.astimezone(timezone.utc)
    fields = [
        "RMC",
        _format_time(utc),
        "A" if valid else "V",
        *_format_angle(latitude, "NS", 2, decimals),
        *_format_angle(longitude, "EW", 3, decimals),
        "" if speed is None else f"{speed / KNOT:.3f}",
        "" if course is None else f"{course % 360.0:.1f}",
        f"{utc:%d%m%y}",
        "",
        "",
        "A" if valid else "N",
    ]
    return sentence(_talker(talker) + ",".join(fields))


def encode_vtg(speed: float | None, course: float | None, *, valid: bool = True, talker: str = "GP") -> bytes:
    """Build a VTG sentence (v2.3 layout, with the mode indicator).

    Parameters
    ----------
    speed : speed over ground [m/s], sent in knots and in km/h; ``None`` leaves both empty
    course : course over ground [° true], ``None`` when not moving
    valid : mode indicator A (True) or N (False)
    """
    fields = [
        "VTG",
        "" if course is None else f"{course % 360.0:.1f}", "T",
        "", "M",
        "" if speed is None else f"{speed / KNOT:.3f}", "N",
        "" if speed is None else f"{speed / KMH:.3f}", "K",
        "A" if valid else "N",
    ]
    return sentence(_talker(talker) + ",".join(fields))


def encode_gsa(fix_type: int, satellites: Sequence[int], *, pdop: float | None = 1.6, hdop: float | None = 0.9,
               vdop: float | None = 1.3, talker: str = "GP") -> bytes:
    """Build a GSA sentence: automatic mode, ``fix_type`` (1 none, 2 2D, 3 3D), up to 12 satellite numbers, DOPs."""
    if fix_type not in (1, 2, 3) or len(satellites) > 12:
        raise ValueError("GSA fix type is 1, 2 or 3 and lists at most 12 satellites")
    prns = [f"{n:02d}" for n in satellites] + [""] * (12 - len(satellites))
    dops = ["" if d is None else f"{d:.2f}" for d in (pdop, hdop, vdop)]
    return sentence(_talker(talker) + ",".join(["GSA", "A", str(fix_type), *prns, *dops]))


def encode_gsv(satellites: Sequence[tuple[int, int, int, int | None]], *, talker: str = "GP") -> list[bytes]:
    """Build the GSV sentences (four satellites each) for ``(prn, elevation [°], azimuth [°], SNR [dB-Hz])``."""
    groups = [satellites[i:i + 4] for i in range(0, len(satellites), 4)] or [[]]
    out = []
    for number, group in enumerate(groups, start=1):
        fields = ["GSV", str(len(groups)), str(number), f"{len(satellites):02d}"]
        for prn, elevation, azimuth, snr in group:
            fields += [f"{prn:02d}", f"{elevation:02d}", f"{azimuth:03d}", "" if snr is None else f"{snr:02d}"]
        out.append(sentence(_talker(talker) + ",".join(fields)))
    return out


def _talker(talker: str) -> str:
    if talker not in TALKERS:
        raise ValueError(f"NMEA talker {talker!r}; choose one of {', '.join(sorted(TALKERS))}")
    return talker


def _format_time(when: datetime | dtime) -> str:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("NMEA time must be timezone-aware (UTC)")
        when = when.astimezone(timezone.utc)
    return f"{when.hour:02d}{when.minute:02d}{when.second:02d}.{when.microsecond // 10_000:02d}"


def _format_angle(value: float | None, signs: str, degree_digits: int, decimals: int) -> tuple[str, str]:
    if value is None:
        return "", ""
    scale = 10 ** decimals
    units = round(abs(value) * 60 * scale)  # whole 10^-decimals minutes, so 59.99999 never prints as 60
    degrees, rest = divmod(units, 60 * scale)
    minutes = rest / scale
    text = f"{degrees:0{degree_digits}d}{minutes:0{decimals + 3}.{decimals}f}"
    return text, signs[1] if value < 0 else signs[0]
