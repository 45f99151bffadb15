"""The qsec kit line protocol: readings printed as text by a microcontroller kit.

An Arduino or ESP32 reads its I2C sensors (SGP40 VOC index, BME280,
SCD4x…) with the vendors' libraries and prints one line per sensor and
reading on its USB serial port; the bridge reads the lines.  The
specification, for people writing the sketch, is ``docs/line-protocol.md``;
this docstring is its summary.  The checksummed sentence borrows NMEA 0183's
framing (NMEA 0183 v4.11, section 5.3: ``$``, fields, ``*hh`` XOR checksum,
CR LF) because every kit already has the code; the JSON form is RFC 8259
JSON, one object per line (JSON Lines).  Serial: 115200 baud, 8 data bits,
no parity, 1 stop bit (the USB CDC port ignores the speed).

Registered as ``kitline`` (a *line* protocol).  Two forms, both CR LF or LF
terminated, at most :data:`MAX_LINE` characters::

    $QSEC,1,sensirion-sgp40,voc_index=112*78
    $QSEC,1,bosch-bme280,temperature=21.43,relative_humidity=48.2,pressure=1009.8*33
    {"s":"sensirion-scd41","v":{"co2":612,"temperature":22.1,"relative_humidity":45.3}}
    {"s":"sensirion-sgp40","v":{"voc_index":0},"w":1}*hh        (checksum optional in JSON)

- ``1`` is the format version; ``s`` / the third field is the sensor model
  id (``^[a-z0-9][a-z0-9._-]{0,63}$``, vendor-model, as the contract has it);
- every value is ``quantity=number`` (CSV) or ``"quantity": number`` (JSON),
  with a quantity of :mod:`qsec.quantities` in its unit there [°C, %, hPa,
  ppm, …]: the kit converts, the bridge never does;
- ``w=1`` (CSV) or ``"w": 1`` (JSON) marks a reading taken while the sensor
  warms up (``Observation.warming_up``);
- ``*hh``: XOR of every character between ``$`` and ``*`` (CSV, required),
  or between ``{`` and the last ``}`` inclusive (JSON, optional).

Notes
-----
- A VOC or NOx index of 0 is Sensirion's gas index algorithm saying "not yet"
  (its first 45 samples; the index scale starts at 1): the line raises
  :class:`WarmingUp`.  An index stays ``voc_index`` / ``nox_index``, never a
  concentration.
- An unknown quantity raises :class:`FrameError` naming the allowed ones; so
  do a value that is not a finite number (Arduino prints ``nan``, ``inf`` or
  ``ovf``), a repeated quantity, and a bad checksum.
- A line that starts with neither ``$QSEC`` nor ``{`` (boot messages, debug
  prints) is :class:`Unsupported`: the reader counts it as ignored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from firmware_bridge.sensors.base import FrameError, Observation, Unsupported, WarmingUp
from firmware_bridge.sensors.nmea.nmea0183 import checksum, fields_of
from qsec.contract import SENSOR_PATTERN
from qsec.quantities import QUANTITIES, Kind

SENSOR = "qsec-kitline"  # the protocol's own name; each observation names the sensor of its line
KIND = "line"
BAUDRATE = 115200
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

TAG = "QSEC"
VERSION = "1"
MAX_LINE = 512
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CHECKSUM = re.compile(r"\*([0-9A-Fa-f]{2})")
_INDICES = frozenset(q.name for q in QUANTITIES.values() if q.kind is Kind.INDEX)


def decode(line: bytes | str) -> Observation:
    """Decode one kit line (``$QSEC`` sentence or JSON object).

    Returns
    -------
    Observation whose ``sensor`` is the line's, with the line's values in
    their quantities' units.

    Raises
    ------
    FrameError : malformed line, bad checksum, unknown quantity, a value that is not a finite number
    WarmingUp : a VOC or NOx index of 0
    Unsupported : a line that is not a kit line (boot or debug text)
    """
    text = _text(line)
    if text.startswith("{"):
        return _json(text)
    start = text.rfind("$" + TAG + ",")  # bytes torn before the "$" when the port opened are skipped
    if start >= 0:
        return _sentence(text[start:])
    raise Unsupported(f"not a kit line: {text[:40]!r}")


def _text(line: bytes | str) -> str:
    if isinstance(line, (bytes, bytearray, memoryview)):
        text = bytes(line).decode("utf-8", errors="replace")  # torn bytes; the checksum or JSON parser judges
    elif isinstance(line, str):
        text = line
    else:
        raise FrameError(f"expected bytes or str, got {type(line).__name__}")
    text = text.strip()
    if len(text) > MAX_LINE:
        raise FrameError(f"kit line of {len(text)} characters; the limit is {MAX_LINE}")
    return text


def _sentence(text: str) -> Observation:
    fields = fields_of(text, "kit line")
    if len(fields) < 4:
        raise FrameError(f"kit line with {len(fields)} fields; expected $QSEC,version,sensor,quantity=value…")
    if fields[1] != VERSION:
        raise FrameError(f"kit line format version {fields[1]!r}; this bridge reads version {VERSION}")
    values: dict[str, Any] = {}
    warming = False
    for item in fields[3:]:
        name, eq, number = item.partition("=")
        if not eq:
            raise FrameError(f"kit line field {item!r} is not quantity=value")
        if name == "w":
            warming = _flag(number)
            continue
        if name in values:
            raise FrameError(f"kit line gives {name} twice")
        if not _NUMBER.fullmatch(number):
            raise FrameError(f"kit line value {name}={number!r} is not a finite number")
        values[name] = float(number)
    return _observation(fields[2], values, warming)


def _json(text: str) -> Observation:
    match = _CHECKSUM.search(text, text.rfind("}") + 1)
    if match:
        body = text[:match.start()]
        if match.end() != len(text):
            raise FrameError("kit line has text after its checksum")
        if int(match.group(1), 16) != checksum(body):
            raise FrameError(f"kit line checksum {match.group(1)} does not match {checksum(body):02X}")
        text = body
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"kit line is not a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError("kit line JSON must be an object")
    extra = set(obj) - {"s", "v", "w"}
    if extra:
        raise FrameError(f"kit line JSON keys {sorted(extra)}; allowed: s (sensor), v (values), w (warming up)")
    values = obj.get("v")
    if not isinstance(values, dict):
        raise FrameError('kit line JSON needs "v": {quantity: number, …}')
    return _observation(obj.get("s"), values, _flag(obj.get("w", 0)))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FrameError(f"kit line gives {key} twice")
        out[key] = value
    return out


def _no_constant(name: str) -> float:
    raise FrameError(f"kit line value {name} is not a finite number")


def _flag(value: object) -> bool:
    if value in ("0", "1") or (type(value) is int and value in (0, 1)):
        return value in ("1", 1)
    raise FrameError(f"kit line warming-up flag w={value!r}; write 0 or 1")


def _observation(sensor: object, raw: dict[str, Any], warming: bool) -> Observation:
    if not isinstance(sensor, str) or not SENSOR_PATTERN.match(sensor):
        raise FrameError(f"kit line sensor {sensor!r} must match {SENSOR_PATTERN.pattern} (e.g. sensirion-sgp40)")
    if not raw:
        raise FrameError("kit line carries no value")
    values: dict[str, float] = {}
    for name, value in raw.items():
        if name not in QUANTITIES:
            raise FrameError(f"kit line quantity {name!r} is unknown; allowed: {', '.join(QUANTITIES)}")
        try:
            number = float(value) if type(value) in (int, float) else math.nan
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise FrameError(f"kit line value {name}={value!r} is not a finite number")
        values[name] = number
    if any(values.get(name) == 0 for name in _INDICES):
        raise WarmingUp(f"{sensor} gas index 0: the algorithm is still learning (first 45 samples)")
    return Observation(sensor=sensor, values=values, warming_up=warming)


# ------------------------------------------------------------------ encoding (the kit's side)
def encode(sensor: str, values: dict[str, float], *, warming_up: bool = False, form: str = "csv") -> bytes:
    """Build the line a kit prints, in ``form`` ``"csv"`` (``$QSEC`` sentence) or ``"json"``.

    Raises
    ------
    ValueError : an unknown form, or nothing to print
    """
    if not values:
        raise ValueError("a kit line carries at least one value")
    if form == "csv":
        items = [f"{name}={value!r}" for name, value in values.items()] + (["w=1"] if warming_up else [])
        body = ",".join([TAG, VERSION, sensor, *items])
        return f"${body}*{checksum(body):02X}\r\n".encode("ascii")
    if form == "json":
        obj: dict[str, Any] = {"s": sensor, "v": values}
        if warming_up:
            obj["w"] = 1
        return (json.dumps(obj, separators=(",", ":")) + "\r\n").encode("utf-8")
    raise ValueError(f"kit line form {form!r}; choose csv or json")


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the first complete line (through LF) out of ``buffer``; ``rest`` keeps a partial line.

    A partial line longer than :data:`MAX_LINE` is dropped.
    """
    buf = bytes(buffer) if isinstance(buffer, (bytearray, memoryview)) else buffer
    if not isinstance(buf, bytes):
        raise FrameError(f"expected bytes, got {type(buffer).__name__}")
    end = buf.find(b"\n")
    if end < 0:
        return None, buf if len(buf) <= MAX_LINE else b""
    return buf[:end + 1], buf[end + 1:]
