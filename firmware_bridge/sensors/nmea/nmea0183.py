"""NMEA 0183 GPS sentences: GGA and RMC, decoded and encoded by hand.

Sources: NMEA 0183 Interface Standard v4.11 (2018), sections 5.3 "sentence
formats", 6.3 "GGA" and "RMC"; Eric S. Raymond, "NMEA Revealed" (gpsd
project, v2.23), for what receivers actually send.  Serial: NMEA 0183 says
4800 baud; every current receiver module (u-blox, MediaTek, Quectel)
defaults to 9600 baud, 8 data bits, no parity, 1 stop bit, which is used here.

Sentence::

    $<talker><type>,<field>,...,<field>*<hh><CR><LF>

- ``talker`` is two letters: GP (GPS), GL (GLONASS), GA (Galileo), BD or
  GB (BeiDou; GB since v4.11), GN (a combined multi-constellation fix).
- ``hh`` is the XOR of every character between ``$`` and ``*``, in two
  hexadecimal digits.  This module requires it.
- Latitude is ``ddmm.mmmm`` and longitude ``dddmm.mmmm`` (degrees, then
  decimal minutes), unsigned, followed by N/S or E/W.

GGA (fix data)::

    $GPGGA,hhmmss.ss,llll.ll,a,yyyyy.yy,a,q,nn,h.h,a.a,M,g.g,M,age,stn*hh
           time      lat       lon        |  |  |   |     |      differential
                                          |  |  |   |     geoid separation [m]
                                          |  |  |   altitude above mean sea level [m]
                                          |  |  HDOP
                                          |  satellites in use
                                          fix quality: 0 invalid, 1 GPS, 2 DGPS, 4 RTK, 5 float RTK, 6 estimated

RMC (recommended minimum)::

    $GPRMC,hhmmss.ss,A,llll.ll,a,yyyyy.yy,a,s.s,c.c,ddmmyy,m.m,a,mode*hh
           time      status (A valid, V void)   |   |   date   magnetic variation
                                       speed [knots] course over ground [° true]

Notes
-----
- GGA carries the time of day but no date, so only RMC sets
  ``Observation.time``.  RMC years have two digits: 80-99 are read as
  1980-1999 and 00-79 as 2000-2079 (gpsd's pivot).
- A leap second (``hhmm60``) cannot be a Python ``datetime``: such an RMC
  raises :class:`FrameError` and one sentence is lost.
- Speed is converted from knots to m/s (1 kn = 1852/3600 m/s).  Course is
  empty when the receiver is not moving; it is then left out.
- GGA fix quality 0, RMC status V or RMC mode indicator N (v2.3+) mean "no
  fix": :class:`NoFix`.  Receivers send these sentences, with empty
  positions, all through a cold start.
- Receivers also send GSA, GSV, VTG, GLL, TXT… :class:`Unsupported` for
  those just means "not decoded here": a reader skips them.
- :func:`decode` tolerates bytes before the ``$`` (a line torn when the port
  opened): it decodes from the last ``$``.  The checksum guards the rest.
"""

from __future__ import annotations

import re
from datetime import datetime, time as dtime, timezone
from typing import Callable

from firmware_bridge.sensors.base import FrameError, NoFix, Observation, Unsupported

SENSOR = "nmea-gps"
KIND = "line"  # CR/LF-terminated sentences
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

TALKERS = frozenset({"GP", "GN", "GL", "GA", "BD", "GB"})
KNOT = 1852.0 / 3600.0  # [m/s]

_ADDRESS = re.compile(r"[A-Z]{5}")
_CHECKSUM = re.compile(r"[0-9A-Fa-f]{2}")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6}))?")
_DATE = re.compile(r"(\d{2})(\d{2})(\d{2})")


def checksum(body: str) -> int:
    """XOR of the characters of ``body`` (the text between ``$`` and ``*``)."""
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def sentence(body: str) -> bytes:
    """Frame ``body`` as a sentence: ``$`` + body + ``*hh`` + CR LF."""
    return f"${body}*{checksum(body):02X}\r\n".encode("ascii")


# ------------------------------------------------------------------ decoding
def decode(line: bytes | str) -> Observation:
    """Decode one GGA or RMC sentence.

    Returns
    -------
    Observation of sensor ``nmea-gps``:

    - GGA: ``latitude, longitude`` [° WGS84], ``fix_quality``, and when
      present ``satellites``, ``hdop``, ``altitude`` [m above mean sea level];
    - RMC: ``latitude, longitude`` [°], ``speed`` [m/s], ``course`` [° true]
      when moving, and ``time`` (UTC).

    Raises
    ------
    FrameError : not a sentence, bad or missing checksum, malformed field
    NoFix : a GGA with fix quality 0 or an RMC with status V (or mode N)
    Unsupported : another sentence type, another talker, or a proprietary sentence
    """
    text = _text(line)
    body, star, tail = text[1:].partition("*")
    if not star:
        raise FrameError("NMEA sentence without checksum")
    if not _CHECKSUM.fullmatch(tail):
        raise FrameError(f"NMEA checksum field {tail[:8]!r} is not two hexadecimal digits")
    if int(tail, 16) != checksum(body):
        raise FrameError(f"NMEA checksum {tail} does not match {checksum(body):02X}")
    fields = body.split(",")
    address = fields[0]
    if address.startswith("P"):
        raise Unsupported(f"proprietary NMEA sentence {address!r}")
    if not _ADDRESS.fullmatch(address):
        raise FrameError(f"NMEA address field {address[:8]!r} is not a talker and a sentence type")
    talker, kind = address[:2], address[2:]
    if talker not in TALKERS:
        raise Unsupported(f"NMEA talker {talker!r}; known: {', '.join(sorted(TALKERS))}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise Unsupported(f"NMEA sentence {kind!r} is not decoded; known: {', '.join(_PARSERS)}")
    return parser(fields[1:])


def _text(line: bytes | str) -> str:
    """The sentence from its last ``$``, without CR LF, checked to be printable ASCII."""
    if isinstance(line, (bytes, bytearray, memoryview)):
        raw = bytes(line)
        start = raw.rfind(b"$")
        if start < 0:
            raise FrameError("not an NMEA sentence: no '$'")
        try:
            text = raw[start:].decode("ascii")
        except UnicodeDecodeError:
            raise FrameError("NMEA sentence with non-ASCII bytes") from None
    elif isinstance(line, str):
        start = line.rfind("$")
        if start < 0:
            raise FrameError("not an NMEA sentence: no '$'")
        text = line[start:]
    else:
        raise FrameError(f"expected bytes or str, got {type(line).__name__}")
    text = text.rstrip("\r\n")
    if any(not " " <= char <= "~" for char in text):
        raise FrameError("NMEA sentence with control or non-ASCII characters")
    return text


def _gga(fields: list[str]) -> Observation:
    if len(fields) < 14:
        raise FrameError(f"GGA with {len(fields)} fields; expected 14")
    if fields[0]:
        _time_of_day(fields[0])
    quality = _integer(fields[5], "GGA fix quality")
    if quality == 0:
        raise NoFix("GGA fix quality 0: no position")
    values = {
        "latitude": _angle(fields[1], fields[2], "NS", 2, 90.0),
        "longitude": _angle(fields[3], fields[4], "EW", 3, 180.0),
        "fix_quality": float(quality),
    }
    if fields[6]:
        values["satellites"] = float(_integer(fields[6], "GGA satellites"))
    if fields[7]:
        values["hdop"] = _number(fields[7], "GGA HDOP", signed=False)
    if fields[8]:
        if fields[9] not in ("M", ""):
            raise FrameError(f"GGA altitude unit {fields[9]!r}; expected M")
        values["altitude"] = _number(fields[8], "GGA altitude", signed=True)
    return Observation(sensor=SENSOR, values=values)


def _rmc(fields: list[str]) -> Observation:
    if len(fields) < 11:
        raise FrameError(f"RMC with {len(fields)} fields; expected 11 to 13")
    status = fields[1]
    if status == "V":
        raise NoFix("RMC status V: no valid position")
    if status != "A":
        raise FrameError(f"RMC status {status!r}; expected A or V")
    if len(fields) > 11 and fields[11] == "N":
        raise NoFix("RMC mode indicator N: data not valid")
    if not fields[0] or not fields[8]:
        raise FrameError("RMC with status A but no time or date")
    hour, minute, second, micro = _time_of_day(fields[0])
    match = _DATE.fullmatch(fields[8])
    if not match:
        raise FrameError(f"RMC date {fields[8]!r} is not ddmmyy")
    day, month, yy = (int(g) for g in match.groups())
    year = 1900 + yy if yy >= 80 else 2000 + yy
    try:
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError as exc:
        raise FrameError(f"RMC date/time {fields[8]} {fields[0]} is not a valid UTC time: {exc}") from None
    values = {
        "latitude": _angle(fields[2], fields[3], "NS", 2, 90.0),
        "longitude": _angle(fields[4], fields[5], "EW", 3, 180.0),
    }
    if fields[6]:
        values["speed"] = _number(fields[6], "RMC speed", signed=False) * KNOT
    if fields[7]:
        course = _number(fields[7], "RMC course", signed=False)
        if course > 360.0:
            raise FrameError(f"RMC course {course} is above 360°")
        values["course"] = course
    return Observation(sensor=SENSOR, values=values, time=when)


_PARSERS: dict[str, Callable[[list[str]], Observation]] = {"GGA": _gga, "RMC": _rmc}


def _number(text: str, what: str, *, signed: bool) -> float:
    if not _NUMBER.fullmatch(text) or (not signed and text.startswith("-")):
        raise FrameError(f"{what} {text!r} is not a number")
    return float(text)


def _integer(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise FrameError(f"{what} {text!r} is not an integer")
    return int(text)


def _angle(text: str, hemisphere: str, signs: str, degree_digits: int, limit: float) -> float:
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


def _time_of_day(text: str) -> tuple[int, int, int, int]:
    match = _TIME.fullmatch(text)
    if not match:
        raise FrameError(f"time {text!r} is not hhmmss.ss")
    hour, minute, second = (int(g) for g in match.groups()[:3])
    if hour > 23 or minute > 59 or second > 60:
        raise FrameError(f"time {text!r} is out of range")
    micro = int((match.group(4) or "").ljust(6, "0"))
    return hour, minute, second, micro


# ------------------------------------------------------------------ line framing
def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the first complete line starting with ``$`` out of ``buffer``.

    Returns ``(line, rest)``: ``line`` runs from its ``$`` through the LF
    (not yet checked: :func:`decode` does that), or is ``None`` when no
    complete line is there; ``rest`` keeps what may still begin one.
    Bytes before a ``$`` are skipped, and a ``$`` followed by another ``$``
    before the end of line (a torn sentence) is skipped too.
    """
    buf = bytes(buffer) if isinstance(buffer, (bytearray, memoryview)) else buffer
    if not isinstance(buf, bytes):
        raise FrameError(f"expected bytes, got {type(buffer).__name__}")
    start = buf.find(b"$")
    if start < 0:
        return None, b""
    end = buf.find(b"\n", start)
    if end < 0:
        return None, buf[start:]
    start = buf.rfind(b"$", start, end)
    return buf[start:end + 1], buf[end + 1:]


# ------------------------------------------------------------------ encoding
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
