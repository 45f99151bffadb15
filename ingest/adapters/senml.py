"""SenML (RFC 8428) JSON packs over MQTT.

Source: RFC 8428 "Sensor Measurement Lists (SenML)", sections 4.1-4.6
(base fields, resolved records, relative times, units), with the units of the
IANA "SenML Units" registry (RFC 8428 section 12.1 and RFC 8798).

A pack is resolved as RFC 8428 section 4.6 says: base fields (``bn``,
``bt``, ``bu``, ``bv``, ``bver``) apply to the record that carries them
and to every later one until changed; the name is ``bn + n``; the time is
``bt + t`` [s]; a resolved time below 2**28 s is relative to the time of
receipt.  The value is ``bv + v``; records with ``vs`` (string), ``vb``
(boolean), ``vd`` (data) or ``s`` (sum) are refused: qsec stores numbers.

The measured quantity is taken from the last part of the name (after the
last ``:`` or ``/``) through :data:`NAMES`; an empty last part (RFC 8428
example 5.1.2: ``bn`` only, the unit telling what it is) is taken from the
unit through :data:`UNIT_ONLY`.  Units are converted by :data:`UNITS`.

All entries of one time form one record (one sensor, one time): boot
``senml``, seq the time [ms], sensor the ``sensor`` context value (default
``senml``).  An entry refused refuses its whole record, so that reprocessing
it later stores the record complete.

MQTT topic: ``senml/<campaign>/<device>`` (campaign and device from the topic).
"""

from __future__ import annotations

import math
from typing import Any

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import Collector, load_json, normalise_device, text_of
from qsec import contract
from qsec.quantities import QUANTITIES

NAME = "senml"
TOPICS = ("senml/+/+",)
RELATIVE_LIMIT_S = 2**28  # RFC 8428 section 4.5.3
SUPPORTED_VERSION = 10  # RFC 8428 section 4.4

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
# a nameless measurement (name = base name only) identified by its unit
UNIT_ONLY = {"%RH": "relative_humidity", "lat": "latitude", "lon": "longitude", "Cel": "temperature",
             "hPa": "pressure", "Pa": "pressure"}
# qsec unit -> SenML unit (RFC 8428 section 12.1, RFC 8798) -> (factor, offset) into the qsec unit
BY_QSEC_UNIT: dict[str, dict[str, tuple[float, float]]] = {
    "µg/m³": {"ug/m3": (1, 0), "kg/m3": (1e9, 0)},
    "mg/m³": {"kg/m3": (1e6, 0)},
    "°C": {"Cel": (1, 0), "K": (1, -273.15)},
    "%": {"%RH": (1, 0), "%": (1, 0)},
    "hPa": {"hPa": (1, 0), "Pa": (0.01, 0), "kPa": (10, 0), "bar": (1000, 0), "mbar": (1, 0)},
    "ppm": {"ppm": (1, 0), "ppb": (0.001, 0)},
    "ppb": {"ppb": (1, 0), "ppm": (1000, 0)},
    "m": {"m": (1, 0), "km": (1000, 0)},
    "m/s": {"m/s": (1, 0), "km/h": (1 / 3.6, 0)},
    "V": {"V": (1, 0), "mV": (0.001, 0)},
}
# quantity -> SenML unit -> (factor, offset); a missing unit means the qsec unit
UNITS: dict[str, dict[str, tuple[float, float]]] = {
    **{q.name: BY_QSEC_UNIT[q.unit] for q in QUANTITIES.values() if q.unit in BY_QSEC_UNIT},
    "latitude": {"lat": (1, 0), "deg": (1, 0)},
    "longitude": {"lon": (1, 0), "deg": (1, 0)},
}
_KNOWN_FIELDS = {"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _quantity(name: str, unit: str | None) -> str:
    last = name.replace("/", ":").rsplit(":", 1)[-1].strip().lower()
    if last:
        q = NAMES.get(last) or (last if last in QUANTITIES else None)
        if q is None:
            raise contract.UnknownQuantity(f"SenML name {name!r}: {last!r} is not a known quantity "
                                           f"(see docs/adapters.md, SenML names)")
        return q
    q = UNIT_ONLY.get(unit or "")
    if q is None:
        raise contract.UnknownQuantity(f"SenML record {name!r} has no name part and its unit {unit!r} does not "
                                       "tell the quantity; give it a name such as pm2_5 or temp")
    return q


def _convert(quantity: str, unit: str | None, value: float) -> float:
    if unit is None:
        return value
    accepted = UNITS.get(quantity, {})
    if unit not in accepted:
        names = ", ".join(accepted) or "none (leave u out: the value is read in qsec's unit)"
        raise contract.BadSchema(f"unit {unit!r} for {quantity}: accepted units are {names}")
    factor, offset = accepted[unit]
    return value * factor + offset


def _resolve(pack: list[Any], received_s: float) -> list[tuple[float, str, str | None, float, dict[str, Any]]]:
    """RFC 8428 section 4.6: resolved ``(time [s], name, unit, base value, record)``; raises on a pack-level fault."""
    base: dict[str, Any] = {"bn": "", "bt": 0.0, "bu": None, "bv": 0.0}
    out = []
    for rec in pack:
        if not isinstance(rec, dict):
            raise contract.BadSchema("a SenML pack is a JSON array of objects")
        must = [k for k in rec if k.endswith("_") and k not in _KNOWN_FIELDS]
        if must:
            raise contract.BadSchema(f"SenML fields {must} must be understood (RFC 8428 section 4.4) and are not")
        bver = rec.get("bver", SUPPORTED_VERSION)
        if not isinstance(bver, int) or isinstance(bver, bool) or bver > SUPPORTED_VERSION:
            raise contract.WrongVersion(f"SenML bver={bver!r}; this adapter reads version {SUPPORTED_VERSION} and below")
        for key, kind in (("bn", str), ("bu", str), ("n", str), ("u", str)):
            if key in rec and not isinstance(rec[key], kind):
                raise contract.BadSchema(f"SenML field {key} must be a string, got {rec[key]!r}")
        for key in ("bt", "bv", "t"):
            if key in rec and not _finite(rec[key]):
                error = contract.BadSchema if key == "bv" else contract.BadTime
                raise error(f"SenML field {key} must be a number, got {rec[key]!r}")
        base.update({k: rec[k] for k in ("bn", "bt", "bu", "bv") if k in rec})
        if not any(k in rec for k in ("n", "v", "vs", "vb", "vd", "s")):
            continue  # a record carrying base fields only
        t = base["bt"] + rec.get("t", 0)
        if t < RELATIVE_LIMIT_S:
            t += received_s
        out.append((t, base["bn"] + rec.get("n", ""), rec.get("u", base["bu"]), base["bv"], rec))
    return out


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one SenML JSON pack; device and campaign from ``senml/<campaign>/<device>`` or the context.

    Context: ``campaign`` (used when the source is not a SenML topic), ``device``
    (overrides the topic's), ``sensor`` (sensor model of the records,
    default ``senml``), ``not_before_ms``.
    """
    parts = source.split("/")
    ctx = dict(context)
    if len(parts) == 3 and parts[0] == "senml":
        ctx["campaign"] = parts[1] if contract.ID_PATTERN.match(parts[1]) else ctx.get("campaign")
        ctx.setdefault("device", parts[2])
    out = Collector(NAME, source, received_ms, ctx, text_of(payload))
    sensor = str(ctx.get("sensor", "senml"))
    try:
        device = normalise_device(str(ctx.get("device") or ""))
        pack = load_json(payload, out.limits)
        if not isinstance(pack, list) or not pack:
            raise contract.BadSchema("a SenML pack is a non-empty JSON array (RFC 8428 section 4)")
        resolved = _resolve(pack, received_ms / 1000)
    except contract.ContractError as exc:
        out.refuse_error(exc, device=ctx.get("device") and _safe_device(ctx["device"]))
        return out.result
    groups: dict[int, dict[str, float]] = {}
    faults: dict[int, contract.ContractError] = {}
    for t, name, unit, bv, rec in resolved:
        t_ms = round(t * 1000)
        values = groups.setdefault(t_ms, {})
        try:
            for key in ("vs", "vb", "vd", "s"):
                if key in rec:
                    raise contract.BadSchema(f"SenML record {name!r} carries {key!r}: qsec stores numeric values (v) only")
            if not _finite(rec.get("v")):
                raise contract.BadSchema(f"SenML record {name!r} has no numeric value v")
            q = _quantity(name, unit)
            value = _convert(q, unit, bv + float(rec["v"]))
            if q in values and values[q] != value:
                raise contract.BadSchema(f"SenML pack gives {q} twice at t={t_ms} ms with different values")
            values[q] = value
        except contract.ContractError as exc:
            faults.setdefault(t_ms, exc)
    for t_ms, values in groups.items():
        if t_ms in faults:
            out.refuse_record(device, "", t_ms, faults[t_ms].reason, str(faults[t_ms]))
        else:
            out.record(device, "", t_ms, sensor, values)
    return out.result


def _safe_device(value: str) -> str | None:
    try:
        return normalise_device(value)
    except contract.ContractError:
        return None


ADAPTER = Adapter(NAME, decode, "SenML (RFC 8428) JSON packs over MQTT, topic senml/<campaign>/<device>", TOPICS)
