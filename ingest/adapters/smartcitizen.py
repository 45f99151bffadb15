"""Smart Citizen Kit (SCK 2.x) readings over MQTT.

Sources: Smart Citizen platform, ``smartcitizen-api``
(``app/lib/mqtt_messages_handler.rb``, ``app/grammars/raw_message.tt``;
documented at https://docs.smartcitizen.me/data/data-platform), and the
platform sensor ids of the SCK 2.x firmware (``smartcitizen-kit-2x``,
``sam/lib/Sensors/Sensors.h``: id, unit of each measurement).

The kit publishes to ``device/sck/<device token>/readings/raw`` a compact
"raw" payload, a brace-wrapped list of ``id:value`` pairs and the time ``t``::

    {t:2026-03-01T12:00:05Z,10:97,14:120,53:41.5,55:18.3,56:61.2,58:101.2,87:9,88:12,89:6}

Also read: the same as proper JSON (``{"t": "...", "55": 18.3, …}``) and the
platform's documented JSON on ``device/sck/<token>/readings``
(``{"data": [{"recorded_at": "...", "sensors": [{"id": 55, "value": 18.3}]}]}``).

Sensor ids are mapped through :data:`SENSOR_IDS` (shared with the SD-card
CSV adapter); the values of one sensor (model) at one time form a record:
boot ``smartcitizen-<model>``, seq the time [ms].  Pressure comes in kPa and
becomes hPa.  Ids the kit sends that qsec has no quantity for (battery %,
light, noise) are listed in :data:`NOT_STORED` and not kept; any other id is
refused with ``unknown_quantity``.

The device token authenticates the kit on the platform and must not leak:
the device id is ``context["devices"][token]`` when given, else
``sck-`` + the first 12 hex digits of the token's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import (
    Collector,
    iso_to_ms,
    normalise_device,
    number,
    text_of,
)
from qsec import contract

NAME = "smartcitizen"
TOPICS = ("device/sck/+/readings/raw", "device/sck/+/readings")

# platform sensor id -> (model, sensor name, quantity, factor into the qsec unit)
SENSOR_IDS: dict[int, tuple[str, str, str, float]] = {
    55: ("sht31", "sensirion-sht31", "temperature", 1), 56: ("sht31", "sensirion-sht31", "relative_humidity", 1),
    58: ("mpl3115a2", "nxp-mpl3115a2", "pressure", 10),  # kPa -> hPa
    89: ("pms5003", "plantower-pms5003", "pm1", 1), 87: ("pms5003", "plantower-pms5003", "pm2_5", 1),
    88: ("pms5003", "plantower-pms5003", "pm10", 1),
    113: ("ccs811", "ams-ccs811", "tvoc", 1),
    158: ("scd30", "sensirion-scd30", "co2", 1), 160: ("scd30", "sensirion-scd30", "temperature", 1),
    161: ("scd30", "sensirion-scd30", "relative_humidity", 1),
    79: ("sht31-ext", "sensirion-sht31", "temperature", 1), 80: ("sht31-ext", "sensirion-sht31", "relative_humidity", 1),
    71: ("pms5003-a", "plantower-pms5003", "pm1", 1), 72: ("pms5003-a", "plantower-pms5003", "pm2_5", 1),
    73: ("pms5003-a", "plantower-pms5003", "pm10", 1),
    99: ("pms5003-a", "plantower-pms5003", "pn0_3", 1), 100: ("pms5003-a", "plantower-pms5003", "pn0_5", 1),
    101: ("pms5003-a", "plantower-pms5003", "pn1", 1), 102: ("pms5003-a", "plantower-pms5003", "pn2_5", 1),
    103: ("pms5003-a", "plantower-pms5003", "pn5", 1), 104: ("pms5003-a", "plantower-pms5003", "pn10", 1),
    75: ("pms5003-b", "plantower-pms5003", "pm1", 1), 76: ("pms5003-b", "plantower-pms5003", "pm2_5", 1),
    77: ("pms5003-b", "plantower-pms5003", "pm10", 1),
    105: ("pms5003-b", "plantower-pms5003", "pn0_3", 1), 106: ("pms5003-b", "plantower-pms5003", "pn0_5", 1),
    107: ("pms5003-b", "plantower-pms5003", "pn1", 1), 108: ("pms5003-b", "plantower-pms5003", "pn2_5", 1),
    109: ("pms5003-b", "plantower-pms5003", "pn5", 1), 110: ("pms5003-b", "plantower-pms5003", "pn10", 1),
    125: ("gps", "gps", "latitude", 1), 126: ("gps", "gps", "longitude", 1), 127: ("gps", "gps", "altitude", 1),
    128: ("gps", "gps", "fix_quality", 1), 129: ("gps", "gps", "speed", 1), 130: ("gps", "gps", "satellites", 1),
    131: ("gps", "gps", "hdop", 1),
}
# ids the kit sends that have no qsec quantity: battery [%], light [lux], noise [dBA], CCS811 eCO2 (an
# estimate from its VOC signal, not a CO2 measurement)
NOT_STORED: dict[int, str] = {10: "battery [%]", 14: "light [lux]", 53: "noise [dBA]", 112: "CCS811 eCO2 [ppm]"}

_PAIR = re.compile(r"\s*(t|-?\d+)\s*:\s*([^,]*)\s*")


def device_id(token: str, devices: dict[str, str] | None = None) -> str:
    """The qsec device id of a kit's token (the token itself is never used as an id)."""
    if devices and token in devices:
        return normalise_device(devices[token])
    return "sck-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def parse(text: str) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """``[(time, [(id, value), …]), …]`` from any of the three payload forms; raises on a malformed one."""
    stripped = text.strip()
    try:
        doc = json.loads(stripped)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        out = []
        for reading in doc["data"]:
            if not isinstance(reading, dict) or not isinstance(reading.get("sensors"), list):
                raise contract.BadSchema("each data entry needs recorded_at and a sensors list")
            pairs = [(s.get("id"), s.get("value")) if isinstance(s, dict) else (None, s) for s in reading["sensors"]]
            out.append((reading.get("recorded_at"), pairs))
        return out
    if isinstance(doc, dict):
        return [(doc.get("t"), [(k, v) for k, v in doc.items() if k != "t"])]
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise contract.BadJson("not a Smart Citizen payload: neither JSON nor the raw {t:…,id:value,…} form")
    pairs = []
    for item in filter(None, (p.strip() for p in stripped[1:-1].split(","))):
        m = _PAIR.fullmatch(item)
        if not m:
            raise contract.BadSchema(f"raw pair {item!r} is not id:value")
        pairs.append((m.group(1), m.group(2)))
    times = [v for k, v in pairs if k == "t"]
    return [(times[0] if times else None, [(k, v) for k, v in pairs if k != "t"])]


def group(pairs: list[tuple[Any, Any]]) -> tuple[dict[str, tuple[str, dict[str, float]]], dict[str, str]]:
    """Sensor values by model, and the first fault of each model (``"reason|detail"``)."""
    records: dict[str, tuple[str, dict[str, float]]] = {}
    faults: dict[str, str] = {}
    for raw_id, raw_value in pairs:
        try:
            sid = int(raw_id)
        except (TypeError, ValueError):
            faults.setdefault(f"id-{raw_id}", f"bad_schema|sensor id {raw_id!r} is not a number")
            continue
        if sid in NOT_STORED:
            continue
        if sid not in SENSOR_IDS:
            faults.setdefault(f"id-{sid}", f"unknown_quantity|Smart Citizen sensor id {sid} is not in the "
                                           "adapter's table (docs/adapters.md)")
            records.setdefault(f"id-{sid}", (f"smartcitizen-id-{sid}", {}))
            continue
        model, sensor, quantity, factor = SENSOR_IDS[sid]
        records.setdefault(model, (sensor, {}))
        value = number(raw_value)
        if value is None:
            faults.setdefault(model, f"bad_schema|sensor id {sid} value {raw_value!r} is not a number")
        else:
            records[model][1][quantity] = value * factor
    return records, faults


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one kit message published on ``device/sck/<token>/readings[/raw]``.

    Context: ``campaign``; ``devices`` (token -> device id); ``device``
    (overrides the id from the token); ``not_before_ms``.
    """
    out = Collector(NAME, source, received_ms, context, text_of(payload))
    parts = source.split("/")
    device: str | None = None
    try:
        if context.get("device"):
            device = normalise_device(str(context["device"]))
        elif len(parts) >= 4 and parts[:2] == ["device", "sck"] and parts[2]:
            device = device_id(parts[2], context.get("devices"))
        else:
            raise contract.BadTopic(f"topic {source!r} is not device/sck/<token>/readings[/raw]")
        if len(payload) > out.limits.max_payload_bytes:
            raise contract.PayloadTooLarge(f"payload of {len(payload)} bytes; the limit is {out.limits.max_payload_bytes}")
        readings = parse(text_of(payload))
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    for when, pairs in readings:
        try:
            if not isinstance(when, str):
                raise contract.BadTime(f"reading time {when!r} is missing or not an ISO 8601 date-time")
            t_ms = iso_to_ms(when)
        except contract.ContractError as exc:
            out.refuse_error(exc, device=device)
            continue
        records, faults = group(pairs)
        for model, (sensor, values) in records.items():
            if model in faults:
                reason, detail = faults[model].split("|", 1)
                out.refuse_record(device, model, t_ms, reason, detail)
            else:
                out.record(device, model, t_ms, sensor, values)
        for model in faults.keys() - records.keys():
            reason, detail = faults[model].split("|", 1)
            out.refuse_record(device, model, t_ms, reason, detail)
    return out.result


ADAPTER = Adapter(NAME, decode, "Smart Citizen Kit 2.x over MQTT, topic device/sck/<token>/readings[/raw]", TOPICS)
