"""SenML packs (RFC 8428), JSON or CBOR, over MQTT.

Sources
-------
- RFC 8428 "Sensor Measurement Lists (SenML)": §4.1-4.2 base and regular
  fields, §4.3 labels (Table 1), §4.4 extensibility (labels ending in ``_``
  must be understood; version), §4.5.1 names, §4.5.2 units, §4.5.3 time,
  §4.5.4 values, §4.6 resolved records, §5 JSON, §6 CBOR (Table 4: integer
  labels), §11 CDDL (base labels start with ``b``), §12.1 the SenML Units
  registry (``%`` is a ratio 0..1, note 2; units marked ``*`` are read).
- RFC 8798 "Additional Units for SenML": §2 new primary units (``kg/m3``,
  ``deg``…), §3 the secondary units registry (Table 2: ``ppm``, ``ug/m3``,
  ``hPa``, ``/100``, ``km/h``, ``mV``… with scale and offset to a primary
  unit), and the later entries of that IANA registry (``ppb``, ``ppt``…) as
  listed in RIOT-OS/RIOT ``sys/include/senml.h``.
- RFC 9100 "SenML Features and Versions" §2-4: ``bver`` is a feature bitmap;
  10 is the base, 26 = 10 + the Secondary Units feature (code 4).
- CBOR (RFC 8949) is decoded by ``cbor2``; decimal fractions (tag 4) are read
  as numbers, as RFC 8428 §6 allows.

Representation: a payload whose first byte is a CBOR array head
(``0x80``-``0x9f``) or the self-described CBOR tag (``d9 d9 f7``) is
``application/senml+cbor``; anything else is read as ``application/senml+json``
(a JSON pack starts with ``[``, perhaps after white space).  A CBOR pack that
is set aside keeps, as its raw payload, its JSON form (RFC 8428 §6 maps one
onto the other; ``vd`` in base64url), so that it reads and reprocesses like
JSON; a CBOR payload that cannot be decoded keeps its bytes in hex.

Resolution (RFC 8428 §4.6): base fields apply to their record and every later
one until given again; the name is ``bn + n``, the time ``bt + t`` [s] (a
missing one is 0; a sum below 2**28 is relative to the time of receipt), the
value ``bv + v``, the unit ``u`` or else ``bu``.  A whole pack is refused for
a version this ingest does not read, versions that differ between records, a
label ending in ``_``, or a field of the wrong type (names, units, times and
base fields).  ``ut``, sums (``s``, ``bs``) next to a value, and labels it does
not know are ignored.

Each record is then one of:

- a measurement (``v``): its quantity comes from the last part of the name
  (after the last ``:`` or ``/``) through :data:`NAMES`; when the name names a
  sensor rather than a quantity (the record has no ``n`` of its own, the name
  is a ``urn:dev:`` device URN, or its last part is empty, as in RFC 8428
  §5.1.1-5.1.4) the unit tells it (:data:`UNIT_ONLY`).  The value is converted
  into qsec's unit (:data:`ACCEPTED_UNITS`);
- set aside on its own (reason ``bad_schema``, boot set, seq empty): a string,
  boolean or data value, a sum alone, no value, or a name that breaks §4.5.1;
  it can never become a number, so it does not hold back the others;
- a record made of base fields only (``{"bn": …}``, RFC 8428 §5.1.7) sets
  bases and carries nothing.

Identity: the device is the topic's.  The *source* of a measurement is its name
without the quantity part (the whole name when the unit told the quantity):
``urn:dev:mac:0024befffe804ff1:pm2.5`` → ``urn:dev:mac:0024befffe804ff1:``.
All measurements of one source at one time form one qsec record, boot
``senml-<source>`` (``senml`` when the source is empty or is the device itself),
seq the time [ms].  A pack naming several sensors or devices (RFC 8428 §5.1.6)
gives one record per source, with keys that do not depend on the rest of the
pack: the same pack delivered twice gives the same keys.  A measurement refused
(unknown name, unit not accepted, value out of range) refuses its whole record,
so that a later reprocessing stores it complete.

MQTT topic: ``senml/<campaign>/<device>`` (campaign and device from the topic).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import cbor2

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import Collector, normalise_device, slug, text_of
from qsec import contract
from qsec.quantities import QUANTITIES

NAME = "senml"
TOPICS = ("senml/+/+",)
RELATIVE_LIMIT_S = 2**28  # RFC 8428 §4.5.3
BASE_VERSION = 10  # RFC 8428 §4.4
SECONDARY_UNITS_FEATURE = 1 << 4  # RFC 9100 §4
SUPPORTED_VERSIONS = "up to 10, and 26 (10 + Secondary Units, RFC 9100)"
ASIDE_SHOWN = 5  # records named in the detail of a dead letter of set-aside records

# RFC 8428 §6 Table 4: CBOR integer labels
CBOR_LABELS = {-1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
               0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd"}
_NAME_OK = re.compile(r"[A-Za-z0-9][-:./_A-Za-z0-9]*\Z")  # RFC 8428 §4.5.1
_DEVICE_URN = re.compile(r"urn:dev:[a-z]+:[^:/]+[:/]?\Z", re.IGNORECASE)  # a name that is a device, not a quantity

# RFC 8428 §12.1 Table 6 and RFC 8798 §2: primary unit symbols
PRIMARY_UNITS = frozenset((
    "m", "kg", "g", "s", "A", "K", "cd", "mol", "Hz", "rad", "sr", "N", "Pa", "J", "W", "C", "V", "F", "Ohm", "S",
    "Wb", "T", "H", "Cel", "lm", "lx", "Bq", "Gy", "Sv", "kat", "m2", "m3", "l", "m/s", "m/s2", "m3/s", "l/s", "W/m2",
    "cd/m2", "bit", "bit/s", "lat", "lon", "pH", "dB", "dBW", "Bspl", "count", "/", "%", "%RH", "%EL", "EL", "1/s",
    "1/min", "beat/min", "beats", "S/m",
    "B", "VA", "VAs", "var", "vars", "J/m", "kg/m3", "deg",  # RFC 8798 §2
))
_F = Fraction
# symbol -> (primary unit, scale, offset): value in the primary unit = value * scale + offset.
# RFC 8798 §3 Table 2, then the later entries of the IANA secondary units registry; and the RFC 8428 §12.1 units
# that are other names of a primary one ("%" is the ratio "/", note 2; the units marked * with their base unit).
SECONDARY_UNITS: dict[str, tuple[str, Fraction, Fraction]] = {
    "ms": ("s", _F(1, 1000), _F(0)), "min": ("s", _F(60), _F(0)), "h": ("s", _F(3600), _F(0)),
    "MHz": ("Hz", _F(10**6), _F(0)), "kW": ("W", _F(1000), _F(0)), "kVA": ("VA", _F(1000), _F(0)),
    "kvar": ("var", _F(1000), _F(0)), "Ah": ("C", _F(3600), _F(0)), "Wh": ("J", _F(3600), _F(0)),
    "kWh": ("J", _F(3_600_000), _F(0)), "varh": ("vars", _F(3600), _F(0)), "kvarh": ("vars", _F(3_600_000), _F(0)),
    "kVAh": ("VAs", _F(3_600_000), _F(0)), "Wh/km": ("J/m", _F("3.6"), _F(0)), "KiB": ("B", _F(1024), _F(0)),
    "GB": ("B", _F(10**9), _F(0)), "Mbit/s": ("bit/s", _F(10**6), _F(0)), "B/s": ("bit/s", _F(8), _F(0)),
    "MB/s": ("bit/s", _F(8 * 10**6), _F(0)), "mV": ("V", _F(1, 1000), _F(0)), "mA": ("A", _F(1, 1000), _F(0)),
    "dBm": ("dBW", _F(1), _F(-30)), "ug/m3": ("kg/m3", _F(1, 10**9), _F(0)), "mm/h": ("m/s", _F(1, 3_600_000), _F(0)),
    "m/h": ("m/s", _F(1, 3600), _F(0)), "ppm": ("/", _F(1, 10**6), _F(0)), "/100": ("/", _F(1, 100), _F(0)),
    "/1000": ("/", _F(1, 1000), _F(0)), "hPa": ("Pa", _F(100), _F(0)), "mm": ("m", _F(1, 1000), _F(0)),
    "cm": ("m", _F(1, 100), _F(0)), "km": ("m", _F(1000), _F(0)), "km/h": ("m/s", 1 / _F("3.6"), _F(0)),
    # later IANA registry entries
    "ppb": ("/", _F(1, 10**9), _F(0)), "ppt": ("/", _F(1, 10**12), _F(0)), "VAh": ("VAs", _F(3600), _F(0)),
    "mg/l": ("kg/m3", _F(1, 1000), _F(0)), "ug/l": ("kg/m3", _F(1, 10**6), _F(0)), "g/l": ("kg/m3", _F(1), _F(0)),
    # RFC 8428 §12.1: other names of primary units
    "%": ("/", _F(1), _F(0)), "g": ("kg", _F(1, 1000), _F(0)), "l": ("m3", _F(1, 1000), _F(0)),
    "l/s": ("m3/s", _F(1, 1000), _F(0)), "1/min": ("1/s", _F(1, 60), _F(0)),
}

# qsec unit -> SenML primary unit -> (factor, offset): value in the qsec unit = value in the primary * factor + offset
_QSEC_FROM_PRIMARY: dict[str, dict[str, tuple[Fraction, Fraction]]] = {
    "µg/m³": {"kg/m3": (_F(10**9), _F(0))},
    "mg/m³": {"kg/m3": (_F(10**6), _F(0))},
    "°C": {"Cel": (_F(1), _F(0)), "K": (_F(1), _F("-273.15"))},
    "%": {"%RH": (_F(1), _F(0)), "/": (_F(100), _F(0))},  # relative humidity: %RH, or a ratio
    "hPa": {"Pa": (_F(1, 100), _F(0))},
    "ppm": {"/": (_F(10**6), _F(0))},
    "ppb": {"/": (_F(10**9), _F(0))},
    "µm": {"m": (_F(10**6), _F(0))},
    "m": {"m": (_F(1), _F(0))},
    "m/s": {"m/s": (_F(1), _F(0))},
    "V": {"V": (_F(1), _F(0))},
}
# quantities whose qsec unit ("°", "1") does not say which SenML unit fits
_BY_QUANTITY: dict[str, dict[str, tuple[Fraction, Fraction]]] = {
    "latitude": {"lat": (_F(1), _F(0))},
    "longitude": {"lon": (_F(1), _F(0))},
    "course": {"deg": (_F(1), _F(0)), "rad": (_F(180 / math.pi), _F(0))},
    "satellites": {"count": (_F(1), _F(0))},
    "satellites_in_view": {"count": (_F(1), _F(0))},
}
FROM_PRIMARY: dict[str, dict[str, tuple[Fraction, Fraction]]] = {
    q.name: _BY_QUANTITY.get(q.name) or _QSEC_FROM_PRIMARY.get(q.unit, {}) for q in QUANTITIES.values()}


def _primary(unit: str) -> tuple[str, Fraction, Fraction] | None:
    """``(primary unit, scale, offset)`` of a registered SenML unit, else ``None``."""
    if unit in SECONDARY_UNITS:
        return SECONDARY_UNITS[unit]
    return (unit, _F(1), _F(0)) if unit in PRIMARY_UNITS else None


# quantity -> every SenML unit symbol it accepts (for messages and docs)
ACCEPTED_UNITS: dict[str, tuple[str, ...]] = {
    q: tuple(u for u in [*sorted(PRIMARY_UNITS - SECONDARY_UNITS.keys()), *SECONDARY_UNITS]
             if (p := _primary(u)) and p[0] in table)
    for q, table in FROM_PRIMARY.items()}

# last part of a SenML name (lower-case) -> qsec quantity; every qsec name maps to itself too
NAMES: dict[str, str] = {
    "temp": "temperature", "temperature": "temperature",
    "hum": "relative_humidity", "humidity": "relative_humidity", "rh": "relative_humidity",
    "press": "pressure", "pressure": "pressure", "baro": "pressure",
    "pm1": "pm1", "pm1.0": "pm1", "pm1_0": "pm1",
    "pm2.5": "pm2_5", "pm25": "pm2_5", "pm2_5": "pm2_5",
    "pm4": "pm4", "pm4.0": "pm4", "pm10": "pm10", "pm10.0": "pm10",
    "co2": "co2", "tvoc": "tvoc", "voc": "tvoc",
    "lat": "latitude", "latitude": "latitude", "lon": "longitude", "lng": "longitude", "longitude": "longitude",
    "alt": "altitude", "altitude": "altitude", "speed": "speed",
    "bat": "battery", "batt": "battery", "battery": "battery",
}
# a measurement named by its sensor only: the quantity its (primary) unit means
UNIT_ONLY = {"Cel": "temperature", "K": "temperature", "%RH": "relative_humidity", "lat": "latitude",
             "lon": "longitude", "Pa": "pressure"}


@dataclass(frozen=True)
class _Entry:
    """One resolved SenML record (RFC 8428 §4.6)."""

    name: str
    own_name: bool  # the record has a non-empty ``n`` of its own
    unit: str | None
    t_ms: int
    bv: float
    rec: dict[str, Any]


# ---------------------------------------------------------------- parsing
def _is_cbor(payload: bytes) -> bool:
    return bool(payload) and (0x80 <= payload[0] <= 0x9F or payload.startswith(b"\xd9\xd9\xf7"))


def _parse(payload: bytes, limits: contract.Limits) -> list[dict[str, Any]]:
    """The pack as a list of records with text labels; raises on a payload-level fault."""
    if len(payload) > limits.max_payload_bytes:
        raise contract.PayloadTooLarge(f"payload of {len(payload)} bytes; the limit is {limits.max_payload_bytes}")
    if _is_cbor(payload):
        fp = io.BytesIO(payload)
        try:
            pack = cbor2.CBORDecoder(fp, max_depth=16, allow_duplicate_keys=False).decode()
        except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise contract.BadJson(f"payload is not a valid SenML CBOR pack (RFC 8428 §6): {exc}") from None
        if fp.tell() != len(payload):
            raise contract.BadJson(f"SenML CBOR pack followed by {len(payload) - fp.tell()} extra bytes")
    else:
        try:
            pack = json.loads(payload.decode("utf-8"), object_pairs_hook=_unique_keys)
        except (UnicodeDecodeError, ValueError) as exc:
            raise contract.BadJson(f"payload is neither SenML JSON (a UTF-8 array, '[') nor SenML CBOR (an array, "
                                   f"first byte 0x80-0x9f): {exc}") from None
    if not isinstance(pack, (list, tuple)) or not pack:
        raise contract.BadSchema("a SenML pack is a non-empty array of records (RFC 8428 §4)")
    return [_labels(rec, i) for i, rec in enumerate(pack)]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError(f"a SenML record gives a label twice: {sorted(k for k, _ in pairs)}")
    return out


def _labels(rec: Any, i: int) -> dict[str, Any]:
    """A record's fields under their JSON labels (RFC 8428 §6 Table 4 for CBOR's integer labels)."""
    if not isinstance(rec, Mapping):
        raise contract.BadSchema(f"record {i} of the SenML pack is not a map/object")
    out: dict[str, Any] = {}
    for key, value in rec.items():
        label = CBOR_LABELS.get(key, str(key)) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(label, str):
            raise contract.BadSchema(f"record {i}: label {key!r} is neither text nor an integer")
        if label in out:
            raise contract.BadSchema(f"record {i} gives the field {label!r} twice")
        out[label] = value
    return out


def _as_json(value: Any) -> Any:
    """A decoded CBOR value in its JSON form (RFC 8428 §5-6): bytes in base64url, decimal fractions as numbers."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()
    if isinstance(value, Decimal):
        number = _number(value)
        return str(value) if number is None else number
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


# ---------------------------------------------------------------- resolving (RFC 8428 §4.6)
def _number(x: Any) -> float | None:
    """A finite SenML number (JSON number, CBOR integer, float or decimal fraction) as a float, else ``None``."""
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        return None
    try:
        f = float(x)
    except (OverflowError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _version(pack: list[dict[str, Any]]) -> None:
    """RFC 8428 §4.4 and RFC 9100 §2: one version for the whole pack, and one this ingest reads."""
    current, seen = BASE_VERSION, set()
    for i, rec in enumerate(pack):
        if "bver" in rec:
            bver = rec["bver"]
            if _number(bver) is None or bver < 0 or bver != int(bver):
                raise contract.BadSchema(f"record {i}: bver {bver!r} must be an unsigned integer (RFC 8428 §4.3)")
            current = int(bver)
        seen.add(current)
    if len(seen) > 1:
        raise contract.BadSchema(f"the records of one SenML pack must share one version (RFC 8428 §4.4); "
                                 f"this one mixes {sorted(seen)}")
    if current > BASE_VERSION and current != BASE_VERSION | SECONDARY_UNITS_FEATURE:
        raise contract.WrongVersion(f"SenML bver={current}; this ingest reads versions {SUPPORTED_VERSIONS}")


def _resolve(pack: list[dict[str, Any]], received_s: float, max_ms: int) -> list[_Entry]:
    """Resolved records (RFC 8428 §4.6), base-only records left out; raises on a pack-level fault."""
    _version(pack)
    base: dict[str, Any] = {"bn": "", "bt": 0.0, "bu": None, "bv": 0.0}
    out = []
    for i, rec in enumerate(pack):
        must = sorted(k for k in rec if k.endswith("_"))
        if must:
            raise contract.BadSchema(f"record {i}: fields {must} must be understood (RFC 8428 §4.4) and qsec "
                                     "does not know them")
        for key in ("bn", "bu", "n", "u"):
            if key in rec and not isinstance(rec[key], str):
                raise contract.BadSchema(f"record {i}: SenML field {key} must be a string, got {rec[key]!r}")
        for key in ("bt", "bv", "bs", "t"):
            if key in rec and _number(rec[key]) is None:
                error = contract.BadTime if key in ("bt", "t") else contract.BadSchema
                raise error(f"record {i}: SenML field {key} must be a number, got {rec[key]!r}")
        base.update({k: rec[k] for k in ("bn", "bu") if k in rec})
        base.update({k: _number(rec[k]) for k in ("bt", "bv") if k in rec})
        if rec and all(k.startswith("b") for k in rec):
            continue  # base fields only (RFC 8428 §5.1.7)
        t = base["bt"] + (_number(rec["t"]) if "t" in rec else 0.0)
        if t < RELATIVE_LIMIT_S:
            t += received_s
        if not (math.isfinite(t) and 0 <= t * 1000 <= max_ms):
            raise contract.BadTime(f"record {i}: the time bt + t = {t} s is not between 1970 and year 285,000")
        out.append(_Entry(base["bn"] + rec.get("n", ""), bool(rec.get("n")), rec.get("u", base["bu"]),
                          round(t * 1000), base["bv"], rec))
    return out


# ---------------------------------------------------------------- names, units, values
def _identify(e: _Entry) -> tuple[str, str | None]:
    """``(source, quantity or None)`` of a measurement (see the module docstring)."""
    cut = max(e.name.rfind(":"), e.name.rfind("/")) + 1
    source, last = e.name[:cut], e.name[cut:].lower()
    q = NAMES.get(last) or (last if last in QUANTITIES else None)
    if q is not None:
        return source, q
    if not last or not e.own_name or _DEVICE_URN.match(e.name):
        primary = _primary(e.unit or "")
        return e.name, UNIT_ONLY.get(primary[0]) if primary else None
    return source, None


def _unknown(e: _Entry, source: str) -> contract.ContractError:
    if source == e.name:
        return contract.UnknownQuantity(f"SenML record {e.name!r} names a sensor, and its unit {e.unit!r} does not "
                                        "tell a qsec quantity; give it a name such as pm2_5 or temp")
    return contract.UnknownQuantity(f"SenML name {e.name!r}: {e.name[len(source):]!r} is not a known quantity "
                                    "(see docs/adapters.md, SenML names)")


def _convert(quantity: str, unit: str | None, value: float) -> float:
    """``value`` [``unit``] in the qsec unit of ``quantity`` (no unit: already in it)."""
    if unit is None:
        return value
    primary = _primary(unit)
    table = FROM_PRIMARY[quantity]
    if primary is None or primary[0] not in table:
        names = ", ".join(ACCEPTED_UNITS[quantity]) or "none (leave u out: the value is read in qsec's unit)"
        known = "" if primary else " (it is not in the SenML units registries, RFC 8428 §12.1 and RFC 8798)"
        raise contract.BadSchema(f"unit {unit!r} for {quantity}{known}: accepted units are {names}")
    factor, offset = table[primary[0]]
    scale = primary[1] * factor
    out = (value if scale == 1 else value * float(scale)) + float(primary[2] * factor + offset)
    q = QUANTITIES[quantity]
    if unit in ("%", "/") and not q.minimum <= out <= q.maximum:
        raise contract.OutOfRange(f"{quantity}: SenML unit {unit!r} is a ratio from 0 to 1, not a percentage "
                                  f"(RFC 8428 §12.1, note 2): {value} is {out:g} {q.unit}; send percent as '%RH' "
                                  "or '/100'")
    return out


def _set_aside(e: _Entry) -> str | None:
    """Why a record can never become a qsec value (it is dead-lettered alone), or ``None``."""
    kinds = [k for k in ("v", "vs", "vb", "vd") if k in e.rec]
    if not kinds:
        if "s" in e.rec:
            return f"SenML record {e.name!r} at t={e.t_ms} ms carries a sum (s) alone: qsec stores values (v) only"
        return f"SenML record {e.name!r} at t={e.t_ms} ms has no value (v, vs, vb, vd or s; RFC 8428 §4.2)"
    if not _NAME_OK.match(e.name):
        return (f"SenML name {e.name!r} breaks RFC 8428 §4.5.1 (letters, digits and - : . / _ only, "
                "starting with a letter or digit)")
    what = {"vs": "a string value (vs)", "vb": "a boolean value (vb)", "vd": "a data value (vd)"}
    if kinds in (["vs"], ["vb"], ["vd"]):
        return f"SenML record {e.name!r} at t={e.t_ms} ms carries {what[kinds[0]]}: qsec stores numbers only"
    return None


def _value(e: _Entry, quantity: str) -> float:
    kinds = [k for k in ("v", "vs", "vb", "vd") if k in e.rec]
    if len(kinds) > 1:
        raise contract.BadSchema(f"SenML record {e.name!r} carries {kinds}: exactly one value is allowed "
                                 "(RFC 8428 §4.2)")
    for key in ("v", "s", "ut"):
        if key in e.rec and _number(e.rec[key]) is None:
            raise contract.BadSchema(f"SenML record {e.name!r}: {key} must be a number, got {e.rec[key]!r}")
    value = e.bv + (_number(e.rec["v"]) or 0.0)
    if not math.isfinite(value):
        raise contract.BadSchema(f"SenML record {e.name!r}: bv + v overflows")
    return _convert(quantity, e.unit, value)


def _model(source: str, device: str) -> str:
    """The boot's tail for a source: empty for no source or the device itself; at most 58 characters."""
    tail = slug(source) if source.strip("-:./_") else ""
    if tail == device:
        return ""
    if len(tail) > 58:
        tail = tail[:49].rstrip("-_") + "-" + hashlib.sha1(source.encode()).hexdigest()[:8]
    return tail


# ---------------------------------------------------------------- the adapter
def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one SenML pack (JSON or CBOR); device and campaign from ``senml/<campaign>/<device>`` or the context.

    Context: ``campaign`` (used when the source is not a SenML topic), ``device``
    (overrides the topic's), ``sensor`` (sensor model of the records,
    default ``senml``), ``not_before_ms``.
    """
    parts = source.split("/")
    ctx = dict(context)
    if len(parts) == 3 and parts[0] == "senml":
        ctx["campaign"] = parts[1] if contract.ID_PATTERN.match(parts[1]) else ctx.get("campaign")
        ctx.setdefault("device", parts[2])
    cbor = _is_cbor(payload)
    out = Collector(NAME, source, received_ms, ctx, payload.hex() if cbor else text_of(payload))
    sensor = str(ctx.get("sensor", "senml"))
    try:
        device = normalise_device(str(ctx.get("device") or ""))
        pack = _parse(payload, out.limits)
        if cbor:
            out.raw = json.dumps(_as_json(pack), ensure_ascii=False)
        entries = _resolve(pack, received_ms / 1000, out.limits.max_seq)
    except contract.ContractError as exc:
        out.refuse_error(exc, device=ctx.get("device") and _safe_device(ctx["device"]))
        return out.result
    groups: dict[tuple[str, int], dict[str, float]] = {}
    faults: dict[tuple[str, int], contract.ContractError] = {}
    aside: dict[str, list[str]] = {}
    for e in entries:
        src, q = _identify(e)
        model = _model(src, device)
        why = _set_aside(e)
        if why is not None:
            aside.setdefault(model, []).append(why)
            continue
        key = (model, e.t_ms)
        values = groups.setdefault(key, {})
        try:
            if q is None:
                raise _unknown(e, src)
            value = _value(e, q)
            if q in values and values[q] != value:
                raise contract.BadSchema(f"SenML pack gives {q} twice at t={e.t_ms} ms with different values")
            values[q] = value
        except contract.ContractError as exc:
            faults.setdefault(key, exc)
    for (model, t_ms), values in groups.items():
        fault = faults.get((model, t_ms))
        if fault is not None:
            out.refuse_record(device, model, t_ms, fault.reason, str(fault))
        else:
            out.record(device, model, t_ms, sensor, values)
    for model, whys in aside.items():  # one dead letter per source, however many records it sets aside
        more = f"; and {len(whys) - ASIDE_SHOWN} more" if len(whys) > ASIDE_SHOWN else ""
        out.refuse(contract.BadSchema.reason, f"{len(whys)} SenML record(s) set aside: "
                   + "; ".join(whys[:ASIDE_SHOWN]) + more, device=device, boot=out.boot(model))
    return out.result


def _safe_device(value: str) -> str | None:
    try:
        return normalise_device(value)
    except contract.ContractError:
        return None


ADAPTER = Adapter(NAME, decode, "SenML (RFC 8428) JSON or CBOR packs over MQTT, topic senml/<campaign>/<device>",
                  TOPICS)
