"""NMEA 0183 GPS sentences: GGA, RMC, GLL, VTG, GSA, GSV and ZDA, decoded by hand.

Sources: NMEA 0183 Interface Standard v4.11 (2018), sections 5.3 "sentence
formats", 6.3 "GGA", "GLL", "RMC", "VTG" and "ZDA" (GSA and GSV fields:
:mod:`.satellites`); Eric S. Raymond, "NMEA Revealed" (gpsd project,
v2.23), for what receivers actually send.  Checked against Knio/pynmea2
(``pynmea2/nmea.py``: the checksum is optional, its hex digits in either
case; ``test/test_types.py``, ``test/test_pynmea.py`` and ``test/test_file.py``:
sentences captured from receivers, used as test vectors here).  Serial:
NMEA 0183 says 4800 baud; every current receiver module (u-blox, MediaTek,
Quectel) defaults to 9600 baud, 8 data bits, no parity, 1 stop bit, which
is used here.

Sentence::

    $<talker><type>,<field>,...,<field>[*<hh>]<CR><LF>

- ``talker`` is two letters: GP (GPS), GL (GLONASS), GA (Galileo), GB
  (BeiDou; BD before v4.11), GQ (QZSS; QZ on older receivers), GI (NavIC),
  GN (a combined multi-constellation fix).
- ``hh`` is the XOR of every character between ``$`` and ``*``, in two
  hexadecimal digits, upper or lower case.  The standard makes it optional
  except in a few sentences, RMC among them: a sentence without one is read,
  an RMC without one is refused.  Every current receiver sends it.
- Latitude is ``ddmm.mmmm`` and longitude ``dddmm.mmmm`` (degrees, then
  decimal minutes, as many decimals as the receiver gives), unsigned,
  followed by N/S or E/W.
- A field with no data is empty (``,,``): a receiver without a fix sends
  its sentences with empty positions.

GGA (fix data)::

    $GPGGA,hhmmss.ss,llll.ll,a,yyyyy.yy,a,q,nn,h.h,a.a,M,g.g,M,age,stn*hh
           time      lat       lon        |  |  |   |     |      differential
                                          |  |  |   |     geoid separation [m]
                                          |  |  |   altitude above mean sea level [m]
                                          |  |  HDOP
                                          |  satellites in use
                                          fix quality: 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK,
                                          5 float RTK, 6 estimated, 7 manual, 8 simulator

RMC (recommended minimum)::

    $GPRMC,hhmmss.ss,A,llll.ll,a,yyyyy.yy,a,s.s,c.c,ddmmyy,m.m,a[,mode[,nav]]*hh
           time      status (A valid, V void)   |   |   date   magnetic variation
                                       speed [knots] course over ground [° true]

GLL (position)::

    $GPGLL,llll.ll,a,yyyyy.yy,a,hhmmss.ss,A[,mode]*hh

VTG (course and speed over ground)::

    $GPVTG,c.c,T,c.c,M,s.s,N,s.s,K[,mode]*hh
           course [° true], [° magnetic], speed [knots], speed [km/h], mode (v2.3+)

GSA (DOP and active satellites)::

    $GPGSA,a,f,s1,…,s12,p.p,h.h,v.v[,sys]*hh
           mode (M manual, A automatic), fix type (1 none, 2 2D, 3 3D),
           satellites used (12 fields), PDOP, HDOP, VDOP, system ID (v4.11)

GSV (satellites in view, several sentences per constellation)::

    $GPGSV,t,n,nn,prn,el,az,snr,…[,signal]*hh
           sentences in this group, this sentence's number, satellites in view,
           then up to 4 x (PRN, elevation [°], azimuth [°], SNR [dB-Hz])

ZDA (time and date)::

    $GPZDA,hhmmss.ss,dd,mm,yyyy,zh,zm*hh        UTC time, day, month, year, local zone

Notes
-----
- Time of day comes with or without fractional seconds (``123519`` or
  ``123519.00``).  GGA and GLL carry the time of day but no date, so only
  RMC sets ``Observation.time``.  RMC years have two digits: 80-99 are
  read as 1980-1999 and 00-79 as 2000-2079.  A leap second (``hhmm60``)
  cannot be a Python ``datetime``: such an RMC raises :class:`FrameError`
  and one sentence is lost.
- Speed is converted from knots to m/s (1 kn = 1852/3600 m/s).  Course is
  empty when the receiver is not moving; it is then left out.
- "No fix" (:class:`NoFix`) is: GGA fix quality 0 or empty; RMC or GLL
  status V or empty; mode indicator N (v2.3+: RMC, GLL, VTG); GSA fix type
  1 or empty; VTG without speed.  Receivers send these, often with empty
  positions, all through a cold start.  Other mode letters (A, D, E, F, M,
  P, R, S) are accepted; an unknown letter is a :class:`FrameError`.
- VTG gives speed in knots and in km/h: the km/h field (finer per digit)
  is used, knots when it is empty.  The pre-2.3 layout without unit
  letters, and a VTG that stops after the knots (``$GPVTG,,T,,M,0.00,N``),
  are read too.
- GSA: the fix type, PDOP, HDOP and VDOP present are recorded
  (:func:`parse_gsa`).
- GSV is checked (:func:`parse_gsv`).  The count of satellites in view is
  per constellation and repeated in every sentence of a group, so only the
  first sentence of each group gives an observation (``satellites_in_view``,
  that constellation's count); the others are :class:`Unsupported`.
- ZDA is checked (:func:`parse_zda`) and then :class:`Unsupported`: it
  carries no quantity, and the bridge takes GPS time from RMC.
- Receivers send the same quantity in several sentences (position in GGA,
  RMC and GLL, speed in RMC and VTG, HDOP in GGA and GSA); each decoded
  sentence is its own record.  Turn off what you do not need in the
  receiver's configuration.
- TXT, GNS, GST, other sentences, other talkers and proprietary sentences
  (``$P…``, e.g. u-blox ``$PUBX``): :class:`Unsupported`, which for a reader
  means "not decoded here, skip" (counted as ignored).
- :func:`decode` tolerates bytes before the ``$`` (a line torn when the port
  opened, or baud-rate garbage): it decodes from the last ``$``.  The line
  may end with CR LF or a lone LF.  Bytes that are not printable ASCII are a
  :class:`FrameError`.  No length limit is enforced: NMEA says 82
  characters, but receivers in high-precision mode send more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from firmware_bridge.sensors.base import FrameError, NoFix, Observation, Unsupported
from firmware_bridge.sensors.nmea.encode import (
    KMH, KNOT, TALKERS, checksum, encode_gga, encode_gsa, encode_gsv, encode_rmc, encode_vtg, sentence,
)
from firmware_bridge.sensors.nmea.fields import angle, course, date_ddmmyy, integer, mode, number, time_of_day, utc
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
CHECKSUM_REQUIRED = frozenset({"RMC"})  # NMEA 0183: compulsory in RMC (and RMA, RMB, not decoded here)

__all__ = ["SENSOR", "KIND", "BAUDRATE", "BYTESIZE", "PARITY", "STOPBITS", "TALKERS", "KNOT", "KMH",
           "checksum", "sentence", "fields_of", "decode", "Gsa", "Gsv", "Zda", "parse_gsa", "parse_gsv", "parse_zda",
           "find_frame", "encode_gga", "encode_rmc", "encode_vtg", "encode_gsa", "encode_gsv"]


# ------------------------------------------------------------------ sentences
def fields_of(line: bytes | str, what: str = "NMEA") -> list[str]:
    """Check a ``$…*hh`` sentence (printable ASCII, XOR checksum) and split it at commas.

    The first field is the address (``GPGGA``); bytes before the last ``$``
    are ignored, CR LF is stripped.  ``what`` names the format in errors.

    Raises
    ------
    FrameError : no ``$``, non-ASCII or control characters, a missing, malformed or wrong checksum
    """
    fields, checked = _split(line, what)
    if not checked:
        raise FrameError(f"{what} sentence without checksum")
    return fields


def _split(line: bytes | str, what: str) -> tuple[list[str], bool]:
    """The fields of a sentence, and whether it carried a checksum (checked when it did)."""
    text = _text(line, what)
    body, star, tail = text[1:].partition("*")
    if not star:
        return body.split(","), False
    if not _CHECKSUM.fullmatch(tail):
        raise FrameError(f"{what} checksum field {tail[:8]!r} is not two hexadecimal digits")
    if int(tail, 16) != checksum(body):
        raise FrameError(f"{what} checksum {tail} does not match {checksum(body):02X}")
    return body.split(","), True


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


def decode(line: bytes | str) -> Observation:
    """Decode one GGA, RMC, GLL, VTG, GSA or GSV sentence.

    Returns
    -------
    Observation of sensor ``nmea-gps``:

    - GGA: ``latitude, longitude`` [° WGS84], ``fix_quality``, and when
      present ``satellites``, ``hdop``, ``altitude`` [m above mean sea level];
    - RMC: ``latitude, longitude`` [°], ``speed`` [m/s], ``course`` [° true]
      when moving, and ``time`` (UTC);
    - GLL: ``latitude, longitude`` [°];
    - VTG: ``speed`` [m/s] and ``course`` [° true] when moving;
    - GSA: ``hdop``, ``pdop``, ``vdop``, ``fix_type``;
    - GSV (first sentence of a group): ``satellites_in_view``.

    Raises
    ------
    FrameError : not a sentence, a bad checksum (or none on an RMC), a malformed field
    NoFix : a sentence that says the receiver has no fix (see Notes in the module)
    Unsupported : ZDA, a GSV after the first of its group, another sentence type,
        another talker, or a proprietary sentence
    """
    fields, checked = _split(line, "NMEA")
    address = fields[0]
    if address.startswith("P"):
        raise Unsupported(f"proprietary NMEA sentence {address[:8]!r}")
    if not _ADDRESS.fullmatch(address):
        raise FrameError(f"NMEA address field {address[:8]!r} is not a talker and a sentence type")
    talker, kind = address[:2], address[2:]
    if talker not in TALKERS:
        raise Unsupported(f"NMEA talker {talker!r}; known: {', '.join(sorted(TALKERS))}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise Unsupported(f"NMEA sentence {kind!r} is not decoded; known: {', '.join(_PARSERS)}")
    if not checked and kind in CHECKSUM_REQUIRED:
        raise FrameError(f"{kind} sentence without checksum: NMEA 0183 requires one in {kind}")
    return parser(fields[1:])


# ------------------------------------------------------------------ position
def _position(fields: list[str]) -> dict[str, float]:
    """``latitude`` and ``longitude`` from the four fields lat, N/S, lon, E/W."""
    return {"latitude": angle(fields[0], fields[1], "NS", 2, 90.0),
            "longitude": angle(fields[2], fields[3], "EW", 3, 180.0)}


def _status(status: str, mode_text: str, what: str) -> None:
    """Raise :class:`NoFix` for status V (or empty) or mode N; :class:`FrameError` for another status."""
    if status in ("V", ""):
        raise NoFix(f"{what} status {status or 'empty'}: no valid position")
    if status != "A":
        raise FrameError(f"{what} status {status!r}; expected A or V")
    if mode(mode_text, what) == "N":
        raise NoFix(f"{what} mode indicator N: data not valid")


def _gga(fields: list[str]) -> Observation:
    if len(fields) < 14:
        raise FrameError(f"GGA with {len(fields)} fields; expected 14")
    if fields[0]:
        time_of_day(fields[0])
    if not fields[5]:
        raise NoFix("GGA without fix quality: no position")
    quality = integer(fields[5], "GGA fix quality")
    if quality == 0:
        raise NoFix("GGA fix quality 0: no position")
    values = {**_position(fields[1:5]), "fix_quality": float(quality)}
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
    _status(fields[1], fields[11] if len(fields) > 11 else "", "RMC")
    if not fields[0] or not fields[8]:
        raise FrameError("RMC with status A but no time or date")
    when = utc(*date_ddmmyy(fields[8], "RMC"), fields[0], "RMC")
    values = _position(fields[2:6])
    if fields[6]:
        values["speed"] = number(fields[6], "RMC speed", signed=False) * KNOT
    if fields[7]:
        values["course"] = course(fields[7], "RMC")
    return Observation(sensor=SENSOR, values=values, time=when)


def _gll(fields: list[str]) -> Observation:
    if len(fields) < 6:
        raise FrameError(f"GLL with {len(fields)} fields; expected 6 or 7 (lat, N/S, lon, E/W, time, status)")
    _status(fields[5], fields[6] if len(fields) > 6 else "", "GLL")
    if fields[4]:
        time_of_day(fields[4])
    return Observation(sensor=SENSOR, values=_position(fields[:4]))


# ------------------------------------------------------------------ speed, DOP, satellites, time
def _vtg(fields: list[str]) -> Observation:
    if len(fields) == 4:  # pre-2.3 layout without unit letters: course T, course M, knots, km/h
        fields = [fields[0], "T", fields[1], "M", fields[2], "N", fields[3], "K"]
    elif len(fields) == 6:  # stops after the knots: $GPVTG,,T,,M,0.00,N (pynmea2's test_missing_3)
        fields = [*fields, "", "K"]
    if len(fields) < 8 or fields[1] not in ("T", "") or fields[3] not in ("M", "") \
            or fields[5] not in ("N", "") or fields[7] not in ("K", ""):
        raise FrameError(f"VTG fields {','.join(fields[:9])!r} are not course,T,course,M,knots,N,km/h,K")
    if mode(fields[8] if len(fields) > 8 else "", "VTG") == "N":
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
    if len(fields) > 1 and not fields[1]:
        raise NoFix("GSA without fix type: no fix")
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


@dataclass(frozen=True)
class Zda:
    """A ZDA sentence: the UTC ``time`` (aware), and the local zone's offset from UTC [min] when given."""

    time: datetime
    zone_minutes: int | None


def parse_zda(fields: list[str]) -> Zda:
    """Check and split the fields of a ZDA sentence (after its address).

    Raises
    ------
    NoFix : empty time or date (the receiver does not know the time yet)
    FrameError : too few fields, a malformed or impossible date, a local zone beyond ±13 h 59 min
    """
    if len(fields) < 6:
        raise FrameError(f"ZDA with {len(fields)} fields; expected 6 (time, day, month, year, zone h, zone min)")
    if not all(fields[:4]):
        raise NoFix("ZDA without time or date: the receiver does not know the time yet")
    day, month, year = (integer(f, "ZDA date") for f in fields[1:4])
    when = utc(year, month, day, fields[0], "ZDA")
    zone = None
    if fields[4] or fields[5]:
        sign = -1 if fields[4].startswith("-") else 1
        hours = integer(fields[4].lstrip("+-") or "0", "ZDA zone hours")
        minutes = integer(fields[5] or "0", "ZDA zone minutes")
        if hours > 13 or minutes > 59:
            raise FrameError(f"ZDA local zone {fields[4]}:{fields[5]} is beyond ±13 h 59 min")
        zone = sign * (hours * 60 + minutes)
    return Zda(when, zone)


def _zda(fields: list[str]) -> Observation:
    zda = parse_zda(fields)
    raise Unsupported(f"ZDA ({zda.time:%Y-%m-%d %H:%M:%S} UTC) carries no quantity; GPS time comes from RMC")


def _known(values: dict[str, float | None]) -> dict[str, float]:
    """The values that are present and whose name is a quantity of :mod:`qsec.quantities`."""
    return {name: value for name, value in values.items() if value is not None and name in QUANTITIES}


_PARSERS: dict[str, Callable[[list[str]], Observation]] = {
    "GGA": _gga, "RMC": _rmc, "GLL": _gll, "VTG": _vtg, "GSA": _gsa, "GSV": _gsv, "ZDA": _zda,
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
