"""What to read from the store: one :class:`Selection`, one SQL query, one column schema.

Every way out of the store — API pages, API exports, ``qsec export`` —
builds its query here, so the rows and the column schema are the same
whatever the route for the same selection and access level.

Columns (in this order; ``docs/exports.md``):

``campaign, device, participant, boot, seq, time, sensor, flags``, then
``latitude, longitude, position_age_s`` when positions are asked for, then
the selected quantity columns [each quantity's unit].

- ``time`` is UTC (``timestamp[us, tz=UTC]``), the bridge's measurement time.
- ``participant`` is the pseudonymous id of whoever carried the device at
  that time (``ingest.registry`` assignments), NULL when nobody was assigned.
- With positions, a record without its own fix takes the latest fix of
  the same device at most ``tolerance_s`` earlier (a DuckDB ``ASOF`` join,
  as :func:`analysis.fusion.attach_positions` with ``method="backward"``
  but without the sensor-lag table); ``position_age_s`` says how old the
  fix is (0 for a GPS record's own).

**Public** selections (no token) drop ``participant`` and every position
quantity (latitude, longitude, altitude, speed, course, hdop, satellites,
fix quality), refuse positions and bounding boxes, keep only public
campaigns, and leave out every range a participant opted out of.  Maps
for the public go through gridding with home-zone masking and a minimum
of participants per cell instead (``analysis.privacy``).

Sources
-------
- DuckDB ASOF joins: https://duckdb.org/docs/guides/sql_features/asof_join
- DuckDB Arrow export (``to_arrow_reader``, record batches):
  https://duckdb.org/docs/guides/python/export_arrow
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb
import pyarrow as pa

from analysis.columns import quantity_columns, quote
from analysis.times import to_store_time
from qsec import quantities as qty

KEY_COLUMNS = ("campaign", "device", "participant", "boot", "seq", "time", "sensor", "flags")
POSITION_COLUMNS = ("latitude", "longitude", "position_age_s")
PRIVATE_QUANTITIES = tuple(q.name for q in qty.QUANTITIES.values() if q.kind is qty.Kind.POSITION)
ORDER = ("time", "device", "boot", "seq")
_FOREVER = "TIMESTAMP '9999-12-31'"
OPTED_OUT_RANGES = f"""SELECT k.device AS device, greatest(o.starts, a.starts) AS starts,
    least(o.ends, coalesce(a.ends, {_FOREVER})) AS ends FROM opt_outs o JOIN assignments a USING (participant)
    JOIN kit_devices k ON k.kit = a.kit"""
"""SQL of what participants opted out of: ``(device, starts, ends)`` [naive UTC, ``[starts, ends)``] per device
they carried, as the registry's ``opt_outs`` and ``assignments`` say; every public path leaves these out."""
ASSIGNED_RANGES = f"""SELECT k.device AS device, a.starts AS starts, coalesce(a.ends, {_FOREVER}) AS ends,
    a.participant AS participant FROM assignments a JOIN kit_devices k ON k.kit = a.kit"""
"""SQL of who carried each device when: ``(device, starts, ends, participant)`` [naive UTC, ``[starts, ends)``,
an open assignment ending at 9999-12-31], as the registry's ``assignments`` and ``kit_devices`` say."""
_TYPES: dict[str, pa.DataType] = {
    "campaign": pa.string(), "device": pa.string(), "participant": pa.string(), "boot": pa.string(),
    "seq": pa.int64(), "time": pa.timestamp("us", tz="UTC"), "sensor": pa.string(), "flags": pa.int32(),
    "position_age_s": pa.float64(),
}
_DESCRIPTIONS = {
    "campaign": "campaign id", "device": "device id (one bridge: one MQTT identity)",
    "participant": "pseudonymous participant who carried the device then (NULL: nobody assigned)",
    "boot": "boot id of the bridge", "seq": "per-(device, boot) sequence number",
    "time": "measurement time, UTC", "sensor": "sensor model that produced the record",
    "flags": "bit-field of bridge and QC flags (see the manifest's flag legend)",
    "position_age_s": "age of the GPS fix the position comes from [s]; 0 for the record's own fix",
}


class SelectionError(ValueError):
    """A selection that cannot be answered as asked; the message says what to change."""


@dataclass(frozen=True)
class Selection:
    """Which records, which columns, for whom.

    Attributes
    ----------
    campaign : str, optional
    devices : tuple of str
        Empty: every device.
    quantities : tuple of str
        Quantity columns, and only records carrying at least one of them;
        empty: every record, every quantity with at least one value.
    start, end : datetime, optional
        Measurement-time bounds ``[start, end)``; naive = UTC.
    bbox : (min_lon, min_lat, max_lon, max_lat), optional
        [° WGS84], GeoJSON order; needs positions (turned on).
    flags_none : int
        Leave out records with any of these flag bits (e.g. QC faults).
    flags_all : int
        Keep only records with all of these bits.
    positions : bool
        Add ``latitude, longitude, position_age_s``.
    public : bool
        The public view (see module docstring).
    participant : str, optional
        Only the data this participant carried (their export, GDPR Art. 20).
    tolerance_s : float
        Oldest fix a record may take its position from [s].
    hide_opted_out : bool
        Leave out opted-out ranges without the rest of the public view
        (for maps computed from positions, then gridded).
    """

    campaign: str | None = None
    devices: tuple[str, ...] = ()
    quantities: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    flags_none: int = 0
    flags_all: int = 0
    positions: bool = False
    public: bool = False
    participant: str | None = None
    tolerance_s: float = 5.0
    hide_opted_out: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def checked(self) -> Selection:
        """Validate; returns the selection with positions turned on when a bbox needs them."""
        if self.start and self.end and to_store_time(self.end) <= to_store_time(self.start):
            raise SelectionError(f"end {self.end} must come after start {self.start}")
        if not math.isfinite(self.tolerance_s) or not 0 <= self.tolerance_s <= 3600:
            raise SelectionError("tolerance_s must be between 0 and 3600 seconds")
        for name in self.quantities:
            if name not in qty.QUANTITIES:
                raise SelectionError(f"unknown quantity {name!r}; known: {', '.join(qty.QUANTITIES)}")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise SelectionError("bbox is min_lon,min_lat,max_lon,max_lat [° WGS84] with min < max")
        if self.public:
            if self.positions or self.bbox is not None:
                raise SelectionError("public data carries no positions (participants' tracks stay private): "
                                     "use the campaign's grid for maps, or a researcher token")
            if self.participant is not None:
                raise SelectionError("a participant's data is only exported with a researcher token")
            hidden = set(self.quantities) & set(PRIVATE_QUANTITIES)
            if hidden:
                raise SelectionError(f"{sorted(hidden)} are positions and are not public")
        return replace(self, positions=True) if self.bbox is not None else self

    def describe(self) -> dict[str, object]:
        """The selection as plain JSON values, for the manifest and the export log."""
        out: dict[str, object] = {
            "campaign": self.campaign, "devices": list(self.devices), "quantities": list(self.quantities),
            "start": None if self.start is None else to_store_time(self.start).isoformat() + "Z",
            "end": None if self.end is None else to_store_time(self.end).isoformat() + "Z",
            "bbox": None if self.bbox is None else list(self.bbox), "flags_none": self.flags_none,
            "flags_all": self.flags_all, "positions": self.positions, "public": self.public,
            "participant": self.participant, "tolerance_s": self.tolerance_s,
            "hide_opted_out": self.hide_opted_out,
        }
        return out | dict(self.extra)


@dataclass(frozen=True)
class Plan:
    """The SQL of a selection, its parameters and its Arrow schema.

    ``unordered`` is the same rows without the final sort, for counting
    (the sort of a large selection costs more than its count); it is
    ``sql`` itself when a limit makes the order part of which rows.
    """

    sql: str
    params: tuple[object, ...]
    schema: pa.Schema
    quantities: tuple[str, ...]
    unordered: str = ""

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def registry_present(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the store has the registry tables (``ingest.registry.ensure_registry_schema``)."""
    (n,) = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name IN "
                       "('assignments', 'kit_devices', 'opt_outs', 'campaign_settings')").fetchall()[0]
    return int(n) == 4


@dataclass(frozen=True)
class StoreShape:
    """What a plan needs to know of the store's tables: two catalogue look-ups a server may keep a while.

    Attributes
    ----------
    registry : bool
        The registry tables are there (:func:`registry_present`).
    quantities : tuple of str
        Quantity columns of ``readings``, in quantity-table order.
    """

    registry: bool
    quantities: tuple[str, ...]


def store_shape(con: duckdb.DuckDBPyConnection) -> StoreShape:
    """The store's :class:`StoreShape` now."""
    return StoreShape(registry_present(con), tuple(quantity_columns(con)))


def _where(sel: Selection, registry: bool, alias: str = "r") -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []
    if sel.campaign is not None:
        where.append(f"{alias}.campaign = ?")
        params.append(sel.campaign)
    if sel.devices:
        where.append(f"{alias}.device IN ({', '.join('?' for _ in sel.devices)})")
        params.extend(sel.devices)
    if sel.start is not None:
        where.append(f"{alias}.time >= ?")
        params.append(to_store_time(sel.start))
    if sel.end is not None:
        where.append(f"{alias}.time < ?")
        params.append(to_store_time(sel.end))
    if sel.flags_none:
        where.append(f"({alias}.flags & ?) = 0")
        params.append(int(sel.flags_none))
    if sel.flags_all:
        where.append(f"({alias}.flags & ?) = ?")
        params.extend([int(sel.flags_all)] * 2)
    if sel.public:
        where.append(f"{alias}.campaign IN (SELECT campaign FROM campaign_settings WHERE public)" if registry
                     else "false")
    if sel.public or sel.hide_opted_out:
        if registry:
            where.append(f"NOT EXISTS (SELECT 1 FROM ({OPTED_OUT_RANGES}) h WHERE h.device = {alias}.device "
                         f"AND {alias}.time >= h.starts AND {alias}.time < h.ends)")
    if sel.quantities:
        where.append("(" + " OR ".join(f"{alias}.{quote(q)} IS NOT NULL" for q in sel.quantities) + ")")
    if sel.participant is not None:
        where.append(f"""EXISTS (SELECT 1 FROM assignments a JOIN kit_devices k ON k.kit = a.kit
            WHERE a.participant = ? AND k.device = {alias}.device AND {alias}.time >= a.starts
            AND {alias}.time < coalesce(a.ends, {_FOREVER}))""")
        params.append(sel.participant)
    return where, params


def conditions(sel: Selection, registry: bool, alias: str = "r") -> tuple[list[str], list[object]]:
    """The WHERE conditions of ``sel`` on ``readings`` aliased ``alias``, and their parameters.

    For queries built elsewhere (the screens' aggregates) that must leave out
    the same records as the exports; ``registry`` is :func:`registry_present`.
    """
    return _where(sel, registry, alias)


def _present(con: duckdb.DuckDBPyConnection, sel: Selection, registry: bool,
             names: Sequence[str]) -> tuple[str, ...]:
    """Quantities among ``names`` with at least one value in the selection (one columnar pass)."""
    if sel.public:
        names = [n for n in names if n not in PRIVATE_QUANTITIES]
    if not names:
        return ()
    where, params = _where(sel, registry)
    counts = con.execute(f"SELECT {', '.join(f'count({quote(n)})' for n in names)} FROM readings r "
                         f"{'WHERE ' + ' AND '.join(where) if where else ''}", params).fetchall()[0]
    return tuple(n for n, c in zip(names, counts, strict=True) if c)


def schema_for(quantities: Sequence[str], *, positions: bool, public: bool) -> pa.Schema:
    """The Arrow schema of a selection's rows, with units and descriptions as field metadata."""
    names = [c for c in KEY_COLUMNS if not (public and c == "participant")]
    if positions:
        names += list(POSITION_COLUMNS)
    names += [q for q in quantities if not (positions and q in ("latitude", "longitude"))]
    fields = []
    for name in names:
        if name in qty.QUANTITIES:
            q = qty.get(name)
            meta = {"units": q.unit, "long_name": q.long_name, "standard_name": q.standard_name or ""}
            fields.append(pa.field(name, pa.float64(), metadata=meta))
        else:
            fields.append(pa.field(name, _TYPES[name], metadata={"long_name": _DESCRIPTIONS[name]}))
    return pa.schema(fields)


def assigned_devices(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Devices whose kit has ever been assigned to a participant: the only ones whose records have one."""
    rows = con.execute("SELECT DISTINCT k.device FROM assignments a JOIN kit_devices k ON k.kit = a.kit").fetchall()
    return frozenset(device for (device,) in rows)


def _any_assigned(con: duckdb.DuckDBPyConnection, devices: Sequence[str], assigned: Set[str] | None) -> bool:
    """True when a record of ``devices`` (empty: any device) may have a participant (see :func:`assigned_devices`)."""
    known = assigned_devices(con) if assigned is None else assigned
    return bool(known) if not devices else not known.isdisjoint(devices)


def plan(con: duckdb.DuckDBPyConnection, selection: Selection, *, after: tuple[object, ...] | None = None,
         limit: int | None = None, columns: Sequence[str] | None = None, shape: StoreShape | None = None,
         assigned: Set[str] | None = None) -> Plan:
    """Build the query of ``selection``, ordered by ``(time, device, boot, seq)``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Cursor on the store.
    selection : Selection
    after : (time, device, boot, seq), optional
        Keyset pagination: only rows after this key (naive UTC time).
    limit : int, optional
        At most this many rows.  Without a bbox, the page is cut from the
        ``readings`` table before the participant lookup, the positions
        and the time zone conversion, so their cost grows with the page,
        not with the selection.
    columns : sequence of str, optional
        Only these of the selection's columns, in schema order, with the
        ordering key (time, device, boot, seq) and, for a bbox, the
        position always kept: leaving out ``participant`` saves a registry
        join.
    shape : StoreShape, optional
        The store's shape, when the caller keeps it (a server); else looked up.
    assigned : set of str, optional
        :func:`assigned_devices`, when the caller keeps it (a server); else
        looked up.  Without an assignment among the selected devices, the
        participant lookup (an ``ASOF`` join) is left out: it would find nobody.

    Raises
    ------
    SelectionError
        If the selection is not valid (see :meth:`Selection.checked`).
    """
    sel = selection.checked()
    shape = shape or store_shape(con)
    registry = shape.registry
    quantities = (tuple(q for q in shape.quantities if q in sel.quantities) if sel.quantities
                  else _present(con, sel, registry, shape.quantities))
    schema = schema_for(quantities, positions=sel.positions, public=sel.public)
    where, params = _where(sel, registry)
    if after is not None:
        # ``r.time >= t`` is implied by the row comparison, but only a plain column bound reaches the table scan's
        # min-max zone maps: with it a deep page skips the row groups before its cursor (2-3x less CPU at mid-day).
        t_after = to_store_time(after[0]) if isinstance(after[0], datetime) else after[0]
        where.append("r.time >= ?::TIMESTAMP AND (r.time, r.device, r.boot, r.seq) > (?::TIMESTAMP, ?, ?, ?)")
        params += [t_after, t_after, *after[1:]]
    if columns is not None:
        keep = set(columns) | set(ORDER) | ({"latitude", "longitude"} if sel.bbox is not None else set())
        schema = pa.schema([f for f in schema if f.name in keep])
    # Only the columns the rows are made of (binding ``*`` would bind every quantity column of the table).
    read = [f"r.{c}" for c in KEY_COLUMNS if c != "participant"] + [
        f"r.{quote(q)}" for q in quantities if q in schema.names or (sel.positions and q in ("latitude", "longitude"))]
    read += [f"r.{quote(c)}" for c in ("latitude", "longitude") if sel.positions and c not in quantities]
    rows = f"SELECT {', '.join(read)} FROM readings r WHERE {' AND '.join(where) or 'true'}"
    if limit is not None and sel.bbox is None:
        # The page first, on the table's own columns (min-max zone maps on time, a top-N that can skip
        # row groups), then the per-row participant lookup, positions and time zone on its rows only.
        rows += f" ORDER BY {', '.join(f'r.{c}' for c in ORDER)} LIMIT {int(limit)}"
    select = {"campaign": "r.campaign", "device": "r.device", "participant": "NULL::VARCHAR", "boot": "r.boot",
              "seq": "r.seq", "time": "r.time AT TIME ZONE 'UTC'", "sensor": "r.sensor", "flags": "r.flags"}
    select.update({q: f"r.{quote(q)}" for q in quantities})
    source = f"({rows}) r"
    if registry and "participant" in schema.names and _any_assigned(con, sel.devices, assigned):
        # Who carried the device then: the latest assignment of its kit begun by then, if not yet ended
        # (the registry refuses overlapping assignments of a kit, and a device belongs to one kit).
        source += (f" ASOF LEFT JOIN (SELECT device AS adev, starts AS astarts, ends AS aends, participant AS apart "
                   f"FROM ({ASSIGNED_RANGES})) asg ON r.device = asg.adev AND r.time >= asg.astarts")
        select["participant"] = "CASE WHEN r.time < asg.aends THEN asg.apart END"
    if sel.positions:
        tol = f"INTERVAL {int(round(sel.tolerance_s * 1e6))} MICROSECOND"
        fix_where, fix_params = _where(replace(sel, start=None, end=None, flags_none=0, flags_all=0, public=False,
                                               participant=None, hide_opted_out=False, quantities=()), registry, "f")
        if sel.start is not None:
            fix_where.append(f"f.time >= ?::TIMESTAMP - {tol}")
            fix_params.append(to_store_time(sel.start))
        if sel.end is not None:
            fix_where.append("f.time < ?")
            fix_params.append(to_store_time(sel.end))
        fix_where.append("f.latitude IS NOT NULL AND f.longitude IS NOT NULL")
        source += (f" ASOF LEFT JOIN (SELECT f.device AS fdev, f.time AS ftime, f.latitude AS flat, "
                   f"f.longitude AS flon FROM readings f WHERE {' AND '.join(fix_where)}) fx "
                   f"ON r.device = fx.fdev AND r.time >= fx.ftime")
        params = params + fix_params
        fresh = f"(fx.ftime IS NOT NULL AND r.time - fx.ftime <= {tol})"
        select["latitude"] = f"CASE WHEN r.latitude IS NOT NULL THEN r.latitude WHEN {fresh} THEN fx.flat END"
        select["longitude"] = f"CASE WHEN r.latitude IS NOT NULL THEN r.longitude WHEN {fresh} THEN fx.flon END"
        select["position_age_s"] = (f"CASE WHEN r.latitude IS NOT NULL THEN 0.0 WHEN {fresh} THEN "
                                    f"epoch(r.time - fx.ftime) END")
    sql = f"SELECT {', '.join(f'{select[n]} AS {_q(n)}' for n in schema.names)} FROM {source}"
    if sel.bbox is not None:
        w, s, e, n = sel.bbox
        sql = f"SELECT * FROM ({sql}) sel WHERE longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?"
        params += [w, e, s, n]
    unordered = sql
    sql += " ORDER BY " + ", ".join(_q(c) for c in ORDER)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
        unordered = sql
    return Plan(sql, tuple(params), schema, quantities, unordered)


def _q(name: str) -> str:
    return f'"{name}"'


def count_rows(con: duckdb.DuckDBPyConnection, p: Plan) -> int:
    """How many rows the plan yields (for progress bars and the manifest)."""
    (n,) = con.execute(f"SELECT count(*) FROM ({p.unordered or p.sql})", list(p.params)).fetchall()[0]
    return int(n)


def batches(con: duckdb.DuckDBPyConnection, p: Plan, batch_rows: int = 65_536) -> pa.RecordBatchReader:
    """Stream the plan's rows as Arrow record batches of the plan's schema (constant memory)."""
    reader = con.sql(p.sql, params=list(p.params)).to_arrow_reader(batch_rows)

    def conform() -> object:
        for batch in reader:
            yield pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(batch.columns, p.schema, strict=True)],
                                             schema=p.schema)

    return pa.RecordBatchReader.from_batches(p.schema, conform())  # type: ignore[arg-type]
