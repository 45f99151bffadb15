"""NMEA 0183 GPS sentences: GGA, RMC, VTG, GSA and GSV, decoded by hand.

Sources: NMEA 0183 Interface Standard v4.11 (2018), sections 5.3 "sentence
formats", 6.3 "GGA", "RMC" and "VTG" (GSA and GSV fields: :mod:`.satellites`);
Eric S. Raymond, "NMEA Revealed" (gpsd project, v2.23), for what receivers
actually send.  Serial: NMEA 0183 says
4800 baud; every current receiver module (u-blox, MediaTek, Quectel)
defaults to 9600 baud, 8 data bits, no parity, 1 stop bit, which is used here.

Sentence::

    $<talker><type>,<field>,...,<field>*<hh><CR><LF>

- ``talker`` is two letters: GP (GPS), GL (GLONASS), GA (Galileo), BD or
  GB (BeiDou; GB since v4.11), QZ (QZSS), GN (a combined multi-constellation fix).
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

VTG (course and speed over ground)::

    $GPVTG,c.c,T,c.c,M,s.s,N,s.s,K,mode*hh
           course [° true], [° magnetic], speed [knots], speed [km/h], mode (v2.3+)

GSA (DOP and active satellites)::

    $GPGSA,a,f,s1,…,s12,p.p,h.h,v.v[,sys]*hh
           mode (M manual, A automatic), fix type (1 none, 2 2D, 3 3D),
           satellites used (12 fields), PDOP, HDOP, VDOP, system ID (v4.11)

GSV (satellites in view, several sentences per constellation)::

    $GPGSV,t,n,nn,prn,el,az,snr,…[,signal]*hh
           sentences in this group, this sentence's number, satellites in view,
           then up to 4 x (PRN, elevation [°], azimuth [°], SNR [dB-Hz])

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
- VTG gives speed in knots and in km/h: the km/h field (finer per digit)
  is used, knots when it is empty.  Mode N, or no speed at all: :class:`NoFix`.
- GSA: fix type 1 is :class:`NoFix`; otherwise the fix type, PDOP, HDOP
  and VDOP present are recorded (:func:`parse_gsa`).
- GSV is checked (:func:`parse_gsv`).  The count of satellites in view is
  per constellation and repeated in every sentence of a group, so only the
  first sentence of each group gives an observation (``satellites_in_view``,
  that constellation's count); the others are :class:`Unsupported`.
- Receivers send the same quantity in several sentences (speed in RMC and
  VTG, HDOP in GGA and GSA); each decoded sentence is its own record.  Turn
  off what you do not need in the receiver's configuration.
- GLL, ZDA, TXT and proprietary sentences: :class:`Unsupported`, which for a
  reader means "not decoded here, skip".
- :func:`decode` tolerates bytes before the ``$`` (a line torn when the port
  opened): it decodes from the last ``$``.  The checksum guards the rest.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable

from firmware_bridge.sensors.base import FrameError, NoFix, Observation, Unsupported
from firmware_bridge.sensors.nmea.encode import (
    KMH, KNOT, TALKERS, checksum, encode_gga, encode_gsa, encode_gsv, encode_rmc, encode_vtg, sentence,
)
from firmware_bridge.sensors.nmea.fields import angle, course, integer, number, time_of_day
from firmware_bridge.sensors.nmea.satellites import Gsa, Gsv, parse_gsa, parse_gsv
from qsec.quantities import QUANTITIES

SENSOR = "nmea-gps"
KIND = "line"  # CR/LF-terminated sentences
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

_ADDRESS = re.compile(r"[A-Z]{5}")
_CHECKSUM = re.compile(r"[0-9A-Fa-f]{2}")
_DATE = re.compile(r"(\d{2})(\d{2})(\d{2})")

__all__ = ["SENSOR", "KIND", "BAUDRATE", "BYTESIZE", "PARITY", "STOPBITS", "TALKERS", "KNOT", "KMH",
           "checksum", "sentence", "fields_of", "decode", "Gsa", "Gsv", "parse_gsa", "parse_gsv", "find_frame",
           "encode_gga", "encode_rmc", "encode_vtg", "encode_gsa", "encode_gsv"]


# ------------------------------------------------------------------ decoding
def fields_of(line: bytes | str, what: str = "NMEA") -> list[str]:
    """Check a ``$…*hh`` sentence (printable ASCII, XOR checksum) and split it at commas.

    The first field is the address (``GPGGA``); bytes before the last ``$``
    are ignored, CR LF is stripped.  ``what`` names the format in errors.

    Raises
    ------
    FrameError : no ``$``, non-ASCII or control characters, a missing, malformed or wrong checksum
    """
    text = _text(line, what)
    body, star, tail = text[1:].partition("*")
    if not star:
        raise FrameError(f"{what} sentence without checksum")
    if not _CHECKSUM.fullmatch(tail):
        raise FrameError(f"{what} checksum field {tail[:8]!r} is not two hexadecimal digits")
    if int(tail, 16) != checksum(body):
        raise FrameError(f"{what} checksum {tail} does not match {checksum(body):02X}")
    return body.split(",")


def decode(line: bytes | str) -> Observation:
    """Decode one GGA, RMC, VTG or GSA sentence.

    Returns
    -------
    Observation of sensor ``nmea-gps``:

    - GGA: ``latitude, longitude`` [° WGS84], ``fix_quality``, and when
      present ``satellites``, ``hdop``, ``altitude`` [m above mean sea level];
    - RMC: ``latitude, longitude`` [°], ``speed`` [m/s], ``course`` [° true]
      when moving, and ``time`` (UTC);
    - VTG: ``speed`` [m/s] and ``course`` [° true] when moving;
    - GSA: ``hdop``, ``pdop``, ``vdop``, ``fix_type``.

    Raises
    ------
    FrameError : not a sentence, bad or missing checksum, malformed field
    NoFix : a GGA with fix quality 0, an RMC with status V (or mode N), a VTG
        with mode N or no speed, a GSA with fix type 1
    Unsupported : GSV (nothing stored), another sentence type, another talker,
        or a proprietary sentence
    """
    fields = fields_of(line)
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


def _text(line: bytes | str, what: str) -> str:
    """The sentence from its last ``$``, without CR LF, checked to be printable ASCII."""
    if isinstance(line, (bytes, bytearray, memoryview)):
        raw = bytes(line)
        start = raw.rfind(b"$")
        if start < 0:
            raise FrameError(f"not a {what} sentence: no '$'")
        try:
            text = raw[start:].decode("ascii")
        except UnicodeDecodeError:
            raise FrameError(f"{what} sentence with non-ASCII bytes") from None
    elif isinstance(line, str):
        start = line.rfind("$")
        if start < 0:
            raise FrameError(f"not a {what} sentence: no '$'")
        text = line[start:]
    else:
        raise FrameError(f"expected bytes or str, got {type(line).__name__}")
    text = text.rstrip("\r\n")
    if any(not " " <= char <= "~" for char in text):
        raise FrameError(f"{what} sentence with control or non-ASCII characters")
    return text


def _gga(fields: list[str]) -> Observation:
    if len(fields) < 14:
        raise FrameError(f"GGA with {len(fields)} fields; expected 14")
    if fields[0]:
        time_of_day(fields[0])
    quality = integer(fields[5], "GGA fix quality")
    if quality == 0:
        raise NoFix("GGA fix quality 0: no position")
    values = {
        "latitude": angle(fields[1], fields[2], "NS", 2, 90.0),
        "longitude": angle(fields[3], fields[4], "EW", 3, 180.0),
        "fix_quality": float(quality),
    }
    if fields[6]:
        values["satellites"] = float(integer(fields[6], "GGA satellites"))
    if fields[7]:
        values["hdop"] = number(fields[7], "GGA HDOP", signed=False)
    if fields[8]:
        if fields[9] not in ("M", ""):
            raise FrameError(f"GGA altitude unit {fields[9]!r}; expected M")
        values["altitude"] = number(fields[8], "GGA altitude", signed=True)
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
    hour, minute, second, micro = time_of_day(fields[0])
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
        "latitude": angle(fields[2], fields[3], "NS", 2, 90.0),
        "longitude": angle(fields[4], fields[5], "EW", 3, 180.0),
    }
    if fields[6]:
        values["speed"] = number(fields[6], "RMC speed", signed=False) * KNOT
    if fields[7]:
        values["course"] = course(fields[7], "RMC")
    return Observation(sensor=SENSOR, values=values, time=when)


def _vtg(fields: list[str]) -> Observation:
    if len(fields) == 4:  # pre-2.3 layout without unit letters: course T, course M, knots, km/h
        fields = [fields[0], "T", fields[1], "M", fields[2], "N", fields[3], "K"]
    if len(fields) < 8 or fields[1] not in ("T", "") or fields[3] not in ("M", "") \
            or fields[5] not in ("N", "") or fields[7] not in ("K", ""):
        raise FrameError(f"VTG fields {','.join(fields[:9])!r} are not course,T,course,M,knots,N,km/h,K")
    if len(fields) > 8 and fields[8] == "N":
        raise NoFix("VTG mode indicator N: data not valid")
    if fields[6]:
        speed = number(fields[6], "VTG speed [km/h]", signed=False) * KMH
    elif fields[4]:
        speed = number(fields[4], "VTG speed [knots]", signed=False) * KNOT
    else:
        raise NoFix("VTG without speed: no fix")
    values = {"speed": speed}
    if fields[0]:
        values["course"] = course(fields[0], "VTG")
    return Observation(sensor=SENSOR, values=values)


def _gsa(fields: list[str]) -> Observation:
    gsa = parse_gsa(fields)
    if gsa.fix_type == 1:
        raise NoFix("GSA fix type 1: no fix")
    values = _known({"fix_type": float(gsa.fix_type), "pdop": gsa.pdop, "hdop": gsa.hdop, "vdop": gsa.vdop})
    if not values:
        raise Unsupported("GSA carries no fix type nor DOP")
    return Observation(sensor=SENSOR, values=values)


def _gsv(fields: list[str]) -> Observation:
    gsv = parse_gsv(fields)
    if gsv.number != 1:  # every sentence of a group repeats the count: keep the first one's
        raise Unsupported(f"GSV sentence {gsv.number} of {gsv.total} repeats the count of sentence 1")
    return Observation(sensor=SENSOR, values={"satellites_in_view": float(gsv.in_view)})


def _known(values: dict[str, float | None]) -> dict[str, float]:
    """The values that are present and whose name is a quantity of :mod:`qsec.quantities`."""
    return {name: value for name, value in values.items() if value is not None and name in QUANTITIES}


_PARSERS: dict[str, Callable[[list[str]], Observation]] = {
    "GGA": _gga, "RMC": _rmc, "VTG": _vtg, "GSA": _gsa, "GSV": _gsv,
}


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
