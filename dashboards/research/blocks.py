"""Resident blocks of records: a page of a past day cut from memory, without a query of the store.

The question researchers ask most — "this device, that day, 100 records at
a time" — costs the store ~4–5 ms of CPU a page, most of it DuckDB binding,
planning and optimising the same query again (``docs/performance.md``).
Here each ``(campaign, device, UTC day)`` the pages ask about is read once
into columns (a :class:`Block`: times, boot, seq, sensor, flags and the
quantity columns pages asked for, more read in when a page asks for others),
and each page is cut from them with binary searches and vectorised masks.
Reading a block costs about one or two pages from the store; each page after
it costs ~15-20 times less (``python benchmarks/bench_api.py --query``).

**Exact**, as the page cache is (:mod:`dashboards.research.pagecache`):

- a block is kept under the :class:`~dashboards.research.pagecache.DataVersions`
  snapshot of its device and day taken *before* it was read, and used only
  while that snapshot is still the current one: a commit of a record of
  that device and day (or any registry change or import) makes the next
  page read it again;
- what the registry says (public campaigns, who carried which device when,
  opted-out ranges) is read into :class:`RegistryFacts`, kept under the
  registry counter taken before it was read;
- the rows, their order ``(time, device, boot, seq)``, the keyset cursor,
  the filters (time range, flags, quantities, opted-out ranges), the
  participant of each record and the answer's quantity columns follow
  :func:`analysis.export.plan` to the byte; ``tests/dashboards/test_research_blocks.py``
  compares both on random selections.

**Which pages:** a campaign, 1 to :data:`MAX_DEVICES` devices, a time range
with both ends within :data:`MAX_DAYS` UTC days, all ending before the
current UTC day (today's records change with every commit of a live
campaign: their pages go to the store), no bounding box, no positions and no
participant filter.  Any other selection is answered by the store, as before.

Blocks are evicted least recently used first within ``budget`` bytes; a
block that alone exceeds the budget is not kept (its page goes to the store).
One thread reads a given block; the others asking for it meanwhile wait for it.

Sources
-------
- DuckDB ``ASOF`` join semantics (the latest right row at or before the left
  row's time): https://duckdb.org/docs/stable/sql/query_syntax/from#as-of-joins
- NumPy ``searchsorted`` (``side='left'``/``'right'``):
  https://numpy.org/doc/stable/reference/generated/numpy.searchsorted.html
- Apache Arrow dictionary encoding (``pyarrow.Array.dictionary_encode``):
  https://arrow.apache.org/docs/python/generated/pyarrow.Array.html
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analysis.columns import quote
from analysis.export.selection import (
    ASSIGNED_RANGES, OPTED_OUT_RANGES, PRIVATE_QUANTITIES, Selection, StoreShape,
)
from analysis.times import to_store_time
from dashboards.research.pagecache import EPOCH, ONE_DAY, DataVersions, day_span

MAX_DEVICES = 8  # devices a page may name and still be cut from blocks
MAX_DAYS = 7  # UTC days its time range may touch
PROBE_FROM = 6  # read more quantity columns than this in two scans (which have values, then those)
BLOCK_OVERHEAD = 4096  # [bytes] a block's key, dataclass and dictionaries, counted against the budget


@dataclass(frozen=True, slots=True)
class Block:
    """The records of one campaign's device on one UTC day, in ``(time, boot, seq)`` order, as columns.

    ``times`` are microseconds since the epoch (UTC); ``boots`` and
    ``sensors`` index ``boot_names`` and ``sensor_names`` (in name order);
    ``columns`` are the quantity columns read; ``values`` hold those with at
    least one value that day (NaN where NULL) and ``valid`` says which are
    not NULL (a stored NaN is a value).
    """

    times: np.ndarray
    boots: np.ndarray
    boot_names: tuple[str, ...]
    seqs: np.ndarray
    sensors: np.ndarray
    sensor_names: tuple[str, ...]
    flags: np.ndarray
    values: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    columns: frozenset[str]

    @property
    def nbytes(self) -> int:
        arrays = (self.times, self.boots, self.seqs, self.sensors, self.flags, *self.values.values(),
                  *self.valid.values())
        return BLOCK_OVERHEAD + sum(a.nbytes for a in arrays)


@dataclass(frozen=True, slots=True)
class RegistryFacts:
    """What the registry says that a page depends on; times in microseconds since the epoch (UTC).

    ``assignments[device]`` is ``(starts, ends, participants)`` ordered by
    start (an open assignment ends at 9999-12-31); ``opted_out[device]`` the
    ``[starts, ends)`` ranges a participant who carried it opted out of.
    """

    registry: bool
    public: frozenset[str]
    assignments: dict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]]
    opted_out: dict[str, tuple[tuple[int, int], ...]]


def read_block(con: duckdb.DuckDBPyConnection, campaign: str, device: str, day: int,
               quantities: Sequence[str], *, probe: bool = False) -> Block:
    """Read the records of ``device`` in ``campaign`` on UTC day number ``day`` (days since 1970-01-01).

    Every record, with the ``quantities`` columns; put in ``(time, boot,
    seq)`` order here rather than by the store (``docs/performance.md``).
    With ``probe`` (for many columns), first find which of them have a
    value that day and read only those: two narrow scans cost less than one
    scan of every column.
    """
    start = datetime(1970, 1, 1) + day * ONE_DAY
    where = "FROM readings r WHERE r.campaign = ? AND r.device = ? AND r.time >= ? AND r.time < ?"
    params = [campaign, device, start, start + ONE_DAY]
    names = list(quantities)
    if probe and names:
        counts = con.execute(f"SELECT {', '.join(f'count(r.{quote(q)})' for q in names)} {where}",
                             params).fetchall()[0]
        names = [q for q, n in zip(names, counts, strict=True) if n]
    table = con.sql(f"SELECT epoch_us(r.time) AS t, r.boot, r.seq, r.sensor, r.flags"
                    f"{''.join(f', r.{quote(q)}' for q in names)} {where}", params=params).to_arrow_table()
    return block_of(table, names, frozenset(quantities))


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, tuple[str, ...]]:
    encoded = column.combine_chunks().dictionary_encode()
    return (encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False),
            tuple(encoded.dictionary.to_pylist()))


def block_of(table: pa.Table, quantities: Sequence[str], columns: frozenset[str] | None = None) -> Block:
    """A :class:`Block` of an Arrow table with columns ``t, boot, seq, sensor, flags`` and ``quantities``, in any order.

    ``columns`` are the quantity columns the block knows (default: ``quantities``);
    those without a value are all NULL.
    """
    times = table.column("t").to_numpy().astype(np.int64, copy=False)
    seqs = table.column("seq").to_numpy().astype(np.int64, copy=False)
    boots, boot_names = _codes(table.column("boot"))
    rank = np.argsort(np.array(boot_names, dtype=object)).argsort().astype(np.int32) if boot_names else boots
    boots = rank[boots] if len(boot_names) > 1 else boots
    boot_names = tuple(sorted(boot_names))  # codes are now ranks: comparing codes compares boots
    order = None if _ordered(times, boots, seqs) else np.lexsort((seqs, boots, times))

    def arranged(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    values: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    for name in quantities:
        column = table.column(name)
        if column.null_count == len(column):
            continue
        values[name] = arranged(column.to_numpy().astype(np.float64, copy=False))  # NULL → NaN
        valid[name] = arranged(column.is_valid().to_numpy(zero_copy_only=False)) if column.null_count else np.ones(
            len(column), dtype=bool)
    sensors, sensor_names = _codes(table.column("sensor"))
    return Block(times=arranged(times), boots=arranged(boots), boot_names=boot_names, seqs=arranged(seqs),
                 sensors=arranged(sensors), sensor_names=sensor_names,
                 flags=arranged(table.column("flags").to_numpy().astype(np.int64, copy=False)), values=values,
                 valid=valid, columns=frozenset(quantities) if columns is None else columns)


def _ordered(times: np.ndarray, boots: np.ndarray, seqs: np.ndarray) -> bool:
    """True when the rows are already in ``(time, boot, seq)`` order (as ingest mostly writes them)."""
    if len(times) < 2:
        return True
    step = np.diff(times)
    if (step < 0).any():
        return False
    ties = np.flatnonzero(step == 0)
    if not len(ties):
        return True
    a, b = ties, ties + 1
    return bool(((boots[a] < boots[b]) | ((boots[a] == boots[b]) & (seqs[a] < seqs[b]))).all())


def read_facts(con: duckdb.DuckDBPyConnection, registry: bool) -> RegistryFacts:
    """The registry's public campaigns, assignments by device and opted-out ranges by device."""
    if not registry:
        return RegistryFacts(False, frozenset(), {}, {})
    public = frozenset(c for (c,) in con.execute("SELECT campaign FROM campaign_settings WHERE public").fetchall())
    assignments: dict[str, list[tuple[int, int, str]]] = {}
    for device, starts, ends, participant in con.execute(
            f"SELECT device, epoch_us(starts), epoch_us(ends), participant FROM ({ASSIGNED_RANGES}) "
            "ORDER BY device, starts").fetchall():
        assignments.setdefault(device, []).append((starts, ends, participant))
    opted: dict[str, list[tuple[int, int]]] = {}
    for device, starts, ends in con.execute(
            f"SELECT device, epoch_us(starts), epoch_us(ends) FROM ({OPTED_OUT_RANGES})").fetchall():
        opted.setdefault(device, []).append((starts, ends))
    return RegistryFacts(
        True, public,
        {d: (np.array([a[0] for a in rows], dtype=np.int64), np.array([a[1] for a in rows], dtype=np.int64),
             tuple(a[2] for a in rows)) for d, rows in assignments.items()},
        {d: tuple(ranges) for d, ranges in opted.items()})


def eligible_days(sel: Selection, today: int) -> list[int] | None:
    """The UTC days a page of ``sel`` reads from blocks, or None when the store must answer it (module docstring)."""
    if (sel.campaign is None or not 1 <= len(set(sel.devices)) <= MAX_DEVICES or sel.start is None
            or sel.end is None or sel.bbox is not None or sel.positions or sel.participant is not None):
        return None
    first, last = day_span(sel.start, sel.end)
    if first is None or last is None or last - first >= MAX_DAYS or last >= today:
        return None
    return list(range(first, last + 1))


@dataclass(frozen=True, slots=True)
class _Scan:
    """A selection's bounds and filters, in the blocks' terms."""

    lo: int  # [µs] first time kept
    hi: int  # [µs] first time left out
    flags_none: int
    flags_all: int
    quantities: tuple[str, ...]  # records carrying at least one of these (empty: every record)
    hidden: tuple[tuple[int, int], ...]  # opted-out ranges of the device

    def mask(self, block: Block, a: int, b: int) -> np.ndarray | None:
        """Which of the block's rows ``a:b`` the filters keep (None: all of them)."""
        keep: np.ndarray | None = None

        def both(m: np.ndarray) -> np.ndarray:
            return m if keep is None else keep & m

        if self.flags_none:
            keep = both((block.flags[a:b] & self.flags_none) == 0)
        if self.flags_all:
            keep = both((block.flags[a:b] & self.flags_all) == self.flags_all)
        if self.quantities:
            carried = np.zeros(b - a, dtype=bool)
            for name in self.quantities:
                if name in block.valid:
                    carried |= block.valid[name][a:b]
            keep = both(carried)
        if self.hidden:
            t = block.times[a:b]
            for starts, ends in self.hidden:
                keep = both(~((t >= starts) & (t < ends)))
        return keep


def _scan_of(sel: Selection, facts: RegistryFacts, device: str) -> _Scan:
    hide = (sel.public or sel.hide_opted_out) and facts.registry
    return _Scan(lo=_epoch_us(sel.start), hi=_epoch_us(sel.end), flags_none=int(sel.flags_none),
                 flags_all=int(sel.flags_all), quantities=tuple(sel.quantities),
                 hidden=facts.opted_out.get(device, ()) if hide else ())


def _epoch_us(when: datetime | None) -> int:
    naive = to_store_time(when)
    return (naive - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _first_after(block: Block, device: str, after: tuple[int, str, str, int] | None, lo: int) -> int:
    """The first row index of ``block`` at or after ``lo`` whose key ``(time, device, boot, seq)`` is after ``after``."""
    start = int(np.searchsorted(block.times, lo, "left"))
    if after is None:
        return start
    t, cursor_device, boot, seq = after
    if device > cursor_device:
        return max(start, int(np.searchsorted(block.times, t, "left")))
    if device < cursor_device:
        return max(start, int(np.searchsorted(block.times, t, "right")))
    k = int(np.searchsorted(block.times, t, "left"))
    end = int(np.searchsorted(block.times, t, "right"))
    while k < end and (block.boot_names[block.boots[k]], int(block.seqs[k])) <= (boot, seq):
        k += 1
    return max(start, k)


def _take(block: Block, scan: _Scan, start: int, need: int) -> np.ndarray:
    """Indices of the first ``need`` rows from ``start`` that the filters keep, before ``scan.hi``."""
    stop = int(np.searchsorted(block.times, scan.hi, "left"))
    found: list[np.ndarray] = []
    have = 0
    size = max(2 * need, 256)
    a = start
    while a < stop and have < need:
        b = min(stop, a + size)
        keep = scan.mask(block, a, b)
        picked = np.arange(a, b) if keep is None else a + np.flatnonzero(keep)
        found.append(picked)
        have += len(picked)
        a = b
        size *= 4
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(found)[:need]


def present(blocks: dict[str, list[Block]], sel: Selection, facts: RegistryFacts,
            shape: StoreShape) -> tuple[str, ...]:
    """The store's quantity columns with at least one value in the selection (as ``_present`` in the store)."""
    if sel.public and sel.campaign not in facts.public:
        return ()
    names = [n for n in shape.quantities if not (sel.public and n in PRIVATE_QUANTITIES)]
    seen: set[str] = set()
    for device, days in blocks.items():
        scan = _scan_of(sel, facts, device)
        for block in days:
            a = int(np.searchsorted(block.times, scan.lo, "left"))
            b = int(np.searchsorted(block.times, scan.hi, "left"))
            if a >= b:
                continue
            keep = scan.mask(block, a, b)
            for name in names:
                if name not in seen and name in block.valid:
                    column = block.valid[name][a:b]
                    if (column if keep is None else column & keep).any():
                        seen.add(name)
    return tuple(n for n in names if n in seen)


def page_rows(blocks: dict[str, list[Block]], sel: Selection, facts: RegistryFacts, quantities: Sequence[str],
              participant: bool, after: tuple[int, str, str, int] | None, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of ``sel`` after ``after`` (µs, device, boot, seq), as the store's page has them.

    ``blocks`` maps each selected device to its blocks, one per day in
    order; ``quantities`` are the answer's quantity columns; ``participant``
    asks for the participant column (the researcher view).  Rows are dicts
    with the keys of :func:`analysis.export.plan`'s schema, ``time`` an aware
    UTC datetime, NULL values None.
    """
    if sel.public and sel.campaign not in facts.public:
        return []  # as the store: public selections read public campaigns only
    picked: list[tuple[int, str, str, int, int]] = []  # (time, device, boot, seq, part)
    parts: list[tuple[str, Block, np.ndarray]] = []  # (device, block, row indices) of each part
    for device, days in blocks.items():
        scan = _scan_of(sel, facts, device)
        need = limit
        for block in days:
            rows = _take(block, scan, _first_after(block, device, after, scan.lo), need)
            if not len(rows):
                continue
            names = block.boot_names
            part = len(parts)
            parts.append((device, block, rows))
            picked += [(t, device, names[b], s, part) for t, b, s in zip(
                block.times[rows].tolist(), block.boots[rows].tolist(), block.seqs[rows].tolist(), strict=True)]
            need -= len(rows)
            if need <= 0:
                break
    if len(parts) > 1:  # one part is in order already
        picked.sort(key=lambda p: p[:4])
    picked = picked[:limit]
    columns = [_columns(device, block, rows, quantities, facts if participant else None)
               for device, block, rows in parts]
    cursor = [0] * len(parts)
    out: list[dict[str, Any]] = []
    for t, device, boot, seq, part in picked:
        k = cursor[part]  # rows of a part come out in the part's order
        cursor[part] = k + 1
        carried, sensors, flags, values = columns[part]
        row: dict[str, Any] = {"campaign": sel.campaign, "device": device}
        if participant:
            row["participant"] = carried[k]
        row.update(boot=boot, seq=seq, time=EPOCH + timedelta(microseconds=t), sensor=sensors[k], flags=flags[k])
        for name, column in values:
            row[name] = None if column is None else column[k]
        out.append(row)
    return out


def _columns(device: str, block: Block, rows: np.ndarray, quantities: Sequence[str], facts: RegistryFacts | None
             ) -> tuple[list[str | None], list[str], list[int], list[tuple[str, list[float | None] | None]]]:
    """The participants (with ``facts``), sensors, flags and quantity values of ``rows``, as Python lists."""
    carried: list[str | None] = []
    if facts is not None:
        carried = _carriers(facts, device, block.times[rows])
    sensors = [block.sensor_names[c] for c in block.sensors[rows].tolist()]
    values: list[tuple[str, list[float | None] | None]] = []
    for name in quantities:
        column = block.values.get(name)
        if column is None:
            values.append((name, None))
            continue
        valid = block.valid[name][rows]
        numbers = column[rows].tolist()
        values.append((name, numbers if valid.all() else [v if ok else None for v, ok in zip(
            numbers, valid.tolist(), strict=True)]))
    return carried, sensors, block.flags[rows].tolist(), values


def _carriers(facts: RegistryFacts, device: str, times: np.ndarray) -> list[str | None]:
    """Who carried ``device`` at each of ``times``: the latest assignment begun by then, if not yet ended.

    As the store's ``ASOF`` join (:func:`analysis.export.plan`).
    """
    found = facts.assignments.get(device)
    if found is None:
        return [None] * len(times)
    starts, ends, participants = found
    j = np.searchsorted(starts, times, "right") - 1
    inside = (j >= 0) & (times < ends[np.maximum(j, 0)])
    return [participants[i] if ok else None for i, ok in zip(j.tolist(), inside.tolist(), strict=True)]


class _NotResident(Exception):
    """A page asked from memory only needs a read of the store."""


class BlockCache:
    """Blocks and registry facts, kept exact by a :class:`~dashboards.research.pagecache.DataVersions` feed.

    ``budget`` bytes of blocks at most (0: none kept, every page goes to the
    store); ``clock`` gives the current time [s since the epoch], which
    decides what "today" is.  Thread-safe.
    """

    def __init__(self, versions: DataVersions, budget: int, clock: Callable[[], float] = time.time) -> None:
        self.versions = versions
        self.budget = budget
        self.clock = clock
        self.used = 0
        self.reads = 0  # blocks read from the store
        self.hits = 0
        self._blocks: OrderedDict[tuple[str, str, int], tuple[tuple[int, ...], Block]] = OrderedDict()
        self._facts: tuple[int, RegistryFacts] | None = None
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str, int], threading.Lock] = {}

    def today(self) -> int:
        return int(self.clock() // 86_400)

    def days(self, sel: Selection) -> list[int] | None:
        """The days a page of ``sel`` would read from blocks; None when the store must answer it."""
        return eligible_days(sel, self.today()) if self.budget else None

    def facts(self, con: duckdb.DuckDBPyConnection | None, shape: StoreShape) -> RegistryFacts:
        """The registry's :class:`RegistryFacts`, read again after any registry change."""
        version = self.versions.registry
        cached = self._facts
        if cached is not None and cached[0] == version and cached[1].registry == shape.registry:
            return cached[1]
        if con is None:
            raise _NotResident
        facts = read_facts(con, shape.registry)
        self._facts = (version, facts)
        return facts

    def block(self, con: duckdb.DuckDBPyConnection | None, campaign: str, device: str, day: int,
              need: Sequence[str], shape: StoreShape) -> Block:
        """The block of ``(campaign, device, day)`` with at least the ``need`` columns (empty: every column).

        From memory while its data version holds and it has those columns;
        else read, with the columns it had and the ones needed.
        """
        key = (campaign, device, day)
        wanted = frozenset(need or shape.quantities)
        hit = self._current(key, wanted)
        if hit is not None:
            return hit
        if con is None:
            raise _NotResident
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            hit = self._current(key, wanted)  # read meanwhile by the thread that held the gate
            if hit is not None:
                return hit
            version = self.versions.snapshot((device,), (day, day))  # before the read: see the module docstring
            with self._lock:
                old = self._blocks.get(key)
            if old is not None and old[0] == version:
                wanted |= old[1].columns
            columns = [q for q in shape.quantities if q in wanted]
            block = read_block(con, campaign, device, day, columns, probe=len(columns) > PROBE_FROM)
            self._put(key, version, block)
        with self._lock:
            self._loading.pop(key, None)
        return block

    def page(self, con: duckdb.DuckDBPyConnection | None, selection: Selection, shape: StoreShape,
             after: tuple[datetime, str, str, int] | None, limit: int
             ) -> tuple[list[dict[str, Any]], tuple[str, ...]] | None:
        """The page's rows and quantity columns (as the store's page), or None when the store must answer it.

        ``after`` is the keyset cursor (naive UTC time, device, boot, seq).
        Without ``con``, only from what is resident: None when a block or
        the registry facts would have to be read.
        """
        sel = selection.checked()
        days = self.days(sel)
        if days is None or sel.campaign is None:
            return None
        try:
            return self._page(con, sel, sel.campaign, days, shape, after, limit)
        except _NotResident:
            return None

    def _page(self, con: duckdb.DuckDBPyConnection | None, sel: Selection, campaign: str, days: list[int],
              shape: StoreShape, after: tuple[datetime, str, str, int] | None, limit: int
              ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        facts = self.facts(con, shape)
        need = [q for q in shape.quantities if q in sel.quantities]  # none: every column (the answer's are not known)
        blocks = {device: [self.block(con, campaign, device, day, need, shape) for day in days]
                  for device in sorted(set(sel.devices))}
        quantities = (tuple(q for q in shape.quantities if q in sel.quantities) if sel.quantities
                      else present(blocks, sel, facts, shape))
        key = None if after is None else (_epoch_us(after[0]), after[1], after[2], after[3])
        rows = page_rows(blocks, sel, facts, quantities, facts.registry and not sel.public, key, limit)
        return rows, quantities

    def _current(self, key: tuple[str, str, int], columns: frozenset[str]) -> Block | None:
        version = self.versions.snapshot((key[1],), (key[2], key[2]))
        with self._lock:
            entry = self._blocks.get(key)
            if entry is None or entry[0] != version or not columns <= entry[1].columns:
                return None
            self._blocks.move_to_end(key)
            self.hits += 1
            return entry[1]

    def _put(self, key: tuple[str, str, int], version: tuple[int, ...], block: Block) -> None:
        size = block.nbytes
        with self._lock:
            self.reads += 1
            old = self._blocks.pop(key, None)
            if old is not None:
                self.used -= old[1].nbytes
            if size > self.budget:
                return
            self._blocks[key] = (version, block)
            self.used += size
            while self.used > self.budget:
                _, (_, evicted) = self._blocks.popitem(last=False)
                self.used -= evicted.nbytes

    def __len__(self) -> int:
        return len(self._blocks)
