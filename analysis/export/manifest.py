"""The manifest of an export bundle: licence, provenance, flag legend, column schema, checksums.

``manifest.json`` makes a bundle self-describing: whoever receives it
knows under which licence they may use it, where each number comes from
(devices, sensor models, calibration versions, qsec version, the query),
what each flag bit means, what each column holds and in which unit, and
can check every file against its SHA-256.

Sources
-------
- SPDX licence list (identifiers such as ``ODbL-1.0``, ``CC-BY-4.0``):
  https://spdx.org/licenses/
- Open Data Commons Open Database License v1.0:
  https://opendatacommons.org/licenses/odbl/1-0/
- W3C PROV-O (the provenance vocabulary the ``provenance`` keys follow
  loosely: entity, activity, agent): https://www.w3.org/TR/prov-o/
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from analysis.export.selection import Plan, Selection
from qsec import __version__ as QSEC_VERSION
from qsec import contract

MANIFEST_VERSION = 1
LICENCES = {
    "ODbL-1.0": ("Open Data Commons Open Database License v1.0", "https://opendatacommons.org/licenses/odbl/1-0/"),
    "CC-BY-4.0": ("Creative Commons Attribution 4.0 International", "https://creativecommons.org/licenses/by/4.0/"),
    "CC-BY-SA-4.0": ("Creative Commons Attribution-ShareAlike 4.0 International",
                     "https://creativecommons.org/licenses/by-sa/4.0/"),
    "CC0-1.0": ("Creative Commons Zero v1.0 Universal", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "etalab-2.0": ("Licence Ouverte / Open Licence version 2.0", "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"),
}
FLAG_MEANINGS = {
    "clock_jump": "the bridge's clock stepped since the last record",
    "warming_up": "the sensor said, or the reader knew, it was warming up",
    "time_from_gps": "the time came from GPS (information, not a fault)",
    "time_unsynced": "no NTP or GPS time yet: the clock may be wrong",
    "replayed": "replayed from a capture, not a live sensor",
    "qc_range": "a value is outside its sensor model's documented range",
    "qc_spike": "a value is far from the rolling median (Hampel filter)",
    "qc_stuck": "a value repeats many times in a row",
    "qc_humidity": "optical PM record in relative humidity above the threshold",
    "qc_warmup": "measured within the sensor's warm-up time after its boot",
    "qc_clock_jump": "bridge clock jump, or time went backwards within a boot",
    "qc_gps_jump": "a GPS fix implying an impossible speed",
}


def flag_legend() -> list[dict[str, Any]]:
    """Every flag bit: bit, value, name, source (bridge or QC) and meaning."""
    try:
        from analysis.qc import FLAG_NAMES
    except ImportError:  # analysis.qc is optional for exports: the bridge's flags are always known
        FLAG_NAMES = dict(contract.BRIDGE_FLAGS)
    return [{"bit": value.bit_length() - 1, "value": value, "name": name,
             "source": "bridge" if value < 256 else "qc", "meaning": FLAG_MEANINGS.get(name, "")}
            for value, name in sorted(FLAG_NAMES.items())]


def licence_text(licence: str, campaign_title: str) -> str:
    """The LICENCE.txt of a bundle."""
    name, url = LICENCES.get(licence, (licence, ""))
    return (f"{campaign_title}\n\nThis data is made available under the {name} ({licence}).\n"
            + (f"Full text: {url}\n" if url else "")
            + "\nAttribution: the campaign's participants and organisers, collected with qsec.\n")


def columns(schema: pa.Schema) -> list[dict[str, Any]]:
    """The column schema: name, Arrow type, unit, long and standard names."""
    out = []
    for f in schema:
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        out.append({"name": f.name, "type": str(f.type), "unit": meta.get("units"),
                    "long_name": meta.get("long_name"), "standard_name": meta.get("standard_name") or None})
    return out


@dataclass
class DeviceStats:
    """Per device and sensor model: rows, first and last time — gathered batch by batch."""

    seen: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    rows: int = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        grouped = pa.Table.from_batches([batch]).group_by(["device", "sensor"]).aggregate(
            [("time", "min"), ("time", "max"), ("seq", "count")])
        for device, sensor, first, last, n in zip(*(grouped.column(c).to_pylist() for c in (
                "device", "sensor", "time_min", "time_max", "seq_count")), strict=True):
            entry = self.seen.setdefault((device, sensor), [first, last, 0])
            entry[0], entry[1], entry[2] = min(entry[0], first), max(entry[1], last), entry[2] + n

    def devices(self) -> list[dict[str, Any]]:
        by_device: dict[str, dict[str, Any]] = {}
        for (device, sensor), (first, last, n) in sorted(self.seen.items()):
            d = by_device.setdefault(device, {"device": device, "sensors": [], "rows": 0, "first": first,
                                              "last": last})
            d["sensors"].append(sensor)
            d["rows"] += n
            d["first"], d["last"] = min(d["first"], first), max(d["last"], last)
        for d in by_device.values():
            d["first"], d["last"] = _iso(d["first"]), _iso(d["last"])
        return list(by_device.values())


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def calibrations(con: duckdb.DuckDBPyConnection, devices: list[str]) -> list[dict[str, Any]]:
    """Calibration model versions stored for these devices, and generic ones (``analysis.calibration``)."""
    (present,) = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'calibrations'").fetchall()[0]
    if not present:
        return []
    marks = ", ".join("?" for _ in devices) or "NULL"
    rows = con.execute(f"SELECT model_id, version, kind, quantity, source, device, created FROM calibrations "
                       f"WHERE device IS NULL OR device IN ({marks}) ORDER BY model_id, version", devices).fetchall()
    keys = ("model_id", "version", "kind", "quantity", "source", "device", "created")
    return [dict(zip(keys, (str(v) if k == "created" else v for k, v in zip(keys, r, strict=True)), strict=True))
            for r in rows]


def software() -> dict[str, str]:
    out = {"qsec": QSEC_VERSION}
    for dist in ("duckdb", "pyarrow", "netCDF4"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def base(selection: Selection, fmt: str, *, licence: str, title: str,
         created: datetime | None = None) -> dict[str, Any]:
    """What is known before the rows are written: embedded in the data file where the format allows."""
    name, url = LICENCES.get(licence, (licence, ""))
    return {
        "qsec_export": MANIFEST_VERSION,
        "title": title,
        "created": _iso(created or datetime.now(UTC)),
        "qsec_version": QSEC_VERSION,
        "format": fmt,
        "licence": {"id": licence, "name": name, "url": url},
        "query": selection.describe(),
        "flags": flag_legend(),
    }


def complete(head: dict[str, Any], p: Plan, files: list[dict[str, Any]], stats: DeviceStats,
             calibration_rows: list[dict[str, Any]], public: bool) -> dict[str, Any]:
    """The whole manifest once the data file is written."""
    devices = stats.devices()
    return head | {
        "rows": stats.rows,
        "columns": columns(p.schema),
        "files": files,
        "provenance": {
            "devices": devices,
            "sensor_models": sorted({s for d in devices for s in d["sensors"]}),
            "calibrations": calibration_rows,
            "software": software(),
            "note": "values are raw sensor values as stored; calibrations listed are available, not applied",
        },
        "privacy": {
            "public": public,
            "rule": ("public view: no positions, no participant ids, opted-out ranges left out"
                     if public else "researcher view: contains pseudonymous participant ids and positions; "
                     "do not publish records, publish gridded maps with a minimum of participants per cell"),
        },
    }
