"""The embedded store: one DuckDB file, raw records idempotent on ``(device, boot, seq)``.

Schema in ``docs/store.md``.  Raw records are immutable: the primary key
``(device, boot, seq)`` refuses a repeat, counted as a duplicate.  A group is
appended with a plain ``INSERT``; one that meets a repeat is rolled back and
written again with ``ON CONFLICT DO NOTHING RETURNING`` (DuckDB INSERT docs:
https://duckdb.org/docs/stable/sql/statements/insert).  Writes go through Arrow tables, never
``executemany`` (≈800 rows/s here, see PERF-NOTES).

DuckDB allows one writing process per file: the process running ingest owns
it; readers in the same process use :meth:`Store.cursor`.

Migrations are numbered functions applied in order and recorded in
``schema_migrations``; a quantity added to :mod:`qsec.quantities` becomes a
new nullable column at the next start.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from ingest import keys
from qsec import contract
from qsec.quantities import QUANTITIES

if TYPE_CHECKING:
    from ingest.tracking import SeqTracker

CHECKPOINT_WAL = "64MB"  # WAL size that triggers an automatic checkpoint
ROW_KEY_COLUMNS = ("campaign", "device", "boot", "seq", "time", "sensor", "flags", "received")


def _migration_1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS readings (
            campaign VARCHAR NOT NULL, device VARCHAR NOT NULL, boot VARCHAR NOT NULL, seq BIGINT NOT NULL,
            time TIMESTAMP NOT NULL, sensor VARCHAR NOT NULL, flags INTEGER NOT NULL DEFAULT 0,
            received TIMESTAMP NOT NULL,
            PRIMARY KEY (device, boot, seq))
        """
    )
    con.execute("CREATE SEQUENCE IF NOT EXISTS deadletter_id")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS deadletter (
            id BIGINT PRIMARY KEY DEFAULT nextval('deadletter_id'), received TIMESTAMP NOT NULL,
            topic VARCHAR, device VARCHAR, boot VARCHAR, seq BIGINT, reason VARCHAR NOT NULL,
            detail VARCHAR, raw VARCHAR, status VARCHAR NOT NULL DEFAULT 'open')
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS campaigns (
            campaign VARCHAR PRIMARY KEY, title VARCHAR, starts TIMESTAMP, ends TIMESTAMP, created TIMESTAMP)
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS devices (
            device VARCHAR PRIMARY KEY, campaign VARCHAR NOT NULL, kind VARCHAR, created TIMESTAMP)
        """
    )


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    """Campaign management: kits, pseudonymous participants, home zones, opt-outs, deletions (docs/campaigns.md)."""
    from ingest.registry import ensure_registry_schema

    ensure_registry_schema(con)


MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection], None], ...] = (_migration_1, _migration_2)


def create_schema(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Apply the pending migrations and add a column for every quantity of the table.

    Returns the quantity columns.  Idempotent: run at every start.
    """
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TIMESTAMP)")
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, step in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        con.execute("BEGIN")
        step(con)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        con.execute("COMMIT")
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'readings'").fetchall()}
    for name in QUANTITIES:
        if name not in have:
            con.execute(f'ALTER TABLE readings ADD COLUMN "{name}" DOUBLE')
    return tuple(QUANTITIES)


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    duplicates: int


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    reason: str
    detail: str
    raw: str
    device: str | None = None
    boot: str | None = None
    seq: int | None = None


def records_table(rows: Sequence[tuple[str, str, str, contract.Record]], quantity_columns: Sequence[str],
                  received_ms: int) -> pa.Table:
    """The store's wide Arrow table for ``(campaign, device, boot, record)`` rows."""
    n = len(rows)
    cols: dict[str, list] = {c: [None] * n for c in quantity_columns}
    camp, dev, boot, seq, t, sensor, flags = [], [], [], [], [], [], []
    for i, (c, d, b, r) in enumerate(rows):
        camp.append(c); dev.append(d); boot.append(b); seq.append(r.seq)  # noqa: E702
        t.append(r.t); sensor.append(r.sensor); flags.append(r.flags)  # noqa: E702
        for q, v in r.values.items():
            cols[q][i] = float(v)
    arrays = {
        "campaign": pa.array(camp, pa.string()), "device": pa.array(dev, pa.string()),
        "boot": pa.array(boot, pa.string()), "seq": pa.array(seq, pa.int64()),
        "time": pa.array(t, pa.int64()).cast(pa.timestamp("ms")),
        "sensor": pa.array(sensor, pa.string()), "flags": pa.array(flags, pa.int32()),
        "received": pa.array([received_ms] * n, pa.int64()).cast(pa.timestamp("ms")),
    }
    for q in quantity_columns:
        arrays[q] = pa.array(cols[q], pa.float64())
    return pa.table(arrays)


class Store:
    """One DuckDB database file holding raw readings, dead letters and the registry."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(self.path))
        self._db.execute("SET TimeZone = 'UTC'")
        # Large exports and analyses spill to disk instead of growing without bound.
        self._db.execute("SET memory_limit = '2GB'")
        self._db.execute(f"SET temp_directory = '{self.path.parent / 'duckdb-tmp'}'")
        # A checkpoint (WAL folded into the file, primary-key index rewritten) every 16 MB of WAL, DuckDB's default,
        # took half of a sustained ingest's time here; every 64 MB takes a quarter as many pauses and bounds the
        # replay after a crash to 64 MB.  https://duckdb.org/docs/stable/configuration/overview
        self._db.execute(f"SET checkpoint_threshold = '{CHECKPOINT_WAL}'")
        self._write_lock = threading.Lock()
        self._tracker: SeqTracker | None = None
        self.exact_writes = 0  # commits that met a repeat and took the ON CONFLICT path
        self._local = threading.local()
        self.quantity_columns: tuple[str, ...] = create_schema(self._db)

    # ------------------------------------------------------------ access
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._db.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._db.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ registry
    def ensure_campaign(self, campaign: str, title: str | None = None, starts_ms: int | None = None) -> None:
        with self._write_lock:
            self.cursor().execute(
                "INSERT INTO campaigns VALUES (?, ?, to_timestamp(? / 1000.0)::TIMESTAMP, NULL, now()) ON CONFLICT DO NOTHING",
                [campaign, title or campaign, starts_ms])

    def ensure_device(self, device: str, campaign: str, kind: str | None = None) -> None:
        with self._write_lock:
            self.cursor().execute("INSERT INTO devices VALUES (?, ?, ?, now()) ON CONFLICT DO NOTHING",
                                  [device, campaign, kind])

    def campaign_start_ms(self, campaign: str) -> int | None:
        row = self.cursor().execute(
            "SELECT epoch_ms(starts) FROM campaigns WHERE campaign = ?", [campaign]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # ------------------------------------------------------------ writes
    def to_arrow(self, rows: Sequence[tuple[str, str, str, contract.Record]], received_ms: int) -> pa.Table:
        """Build the wide Arrow table for ``(campaign, device, boot, record)`` rows."""
        return records_table(rows, self.quantity_columns, received_ms)

    def write(self, rows: Sequence[tuple[str, str, str, contract.Record]], dead: Iterable[DeadLetter] = (),
              received_ms: int | None = None) -> tuple[WriteResult, list[tuple[str, str, int]]]:
        """Store ``(campaign, device, boot, record)`` rows idempotently, and dead letters, in one transaction.

        Returns the counts and the keys ``(device, boot, seq)`` that were new.
        """
        received_ms = received_ms if received_ms is not None else int(time.time() * 1000)
        return self.write_table(self.to_arrow(rows, received_ms) if rows else None, dead, received_ms)

    def write_table(self, batch: pa.Table | None, dead: Iterable[DeadLetter] = (),
                    received_ms: int | None = None) -> tuple[WriteResult, list[tuple[str, str, int]]]:
        """Store a wide Arrow table of records and dead letters, in one transaction.

        ``batch`` has the key columns and any subset of the quantity columns.
        Returns the counts and the keys ``(device, boot, seq)`` that were new.
        """
        result, new = self.write_arrow(batch, dead, received_ms)
        if batch is None or not result.inserted:
            return result, []
        kept = batch.select(["device", "boot", "seq"]).filter(pa.array(new))
        return result, list(zip(kept.column(0).to_pylist(), kept.column(1).to_pylist(), kept.column(2).to_pylist()))

    def write_arrow(self, batch: pa.Table | None, dead: Iterable[DeadLetter] = (),
                    received_ms: int | None = None) -> tuple[WriteResult, np.ndarray]:
        """Store a wide Arrow table of records and dead letters in one transaction; say which rows were new.

        Returns the counts and a boolean mask over ``batch``'s rows: True for a
        row stored by this call, False for a repeat (already stored, or its key
        earlier in the same batch).

        Notes
        -----
        The common case has no repeat, so the rows are first appended with a
        plain ``INSERT`` (≈4× faster here than ``ON CONFLICT … RETURNING``,
        see docs/performance.md).  The primary key still checks every row: if
        any key is already stored, DuckDB refuses the whole statement, the
        transaction is rolled back and the batch goes through the exact
        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` path.  Either way the
        primary key alone decides what is a repeat.
        """
        received_ms = received_ms if received_ms is not None else int(time.time() * 1000)
        dead = list(dead)
        n = 0 if batch is None else batch.num_rows
        new = np.ones(n, dtype=bool)
        cur = self.cursor()
        with self._write_lock:
            cur.execute("BEGIN")
            try:
                if n:
                    # registering is transactional: a rollback also forgets the view
                    cur.register("incoming_batch", batch)
                    try:
                        cur.execute(self._insert_sql(batch))
                    except duckdb.ConstraintException:  # a repeat: start again, the exact way
                        cur.execute("ROLLBACK")
                        self.exact_writes += 1
                        cur.execute("BEGIN")
                        cur.register("incoming_batch", batch)
                        returned = cur.execute(self._insert_sql(batch) + " ON CONFLICT DO NOTHING "
                                               "RETURNING device, boot, seq").fetchall()
                        new = keys.first_of_keys(batch, returned)
                    cur.unregister("incoming_batch")
                if dead:
                    self._insert_dead(cur, dead, received_ms)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        inserted = int(new.sum())
        return WriteResult(inserted=inserted, duplicates=n - inserted), new

    @staticmethod
    def _insert_sql(batch: pa.Table) -> str:
        # a table may carry only some quantity columns: the others are NULL
        cols = ", ".join(f'"{c}"' for c in batch.column_names)
        return f"INSERT INTO readings ({cols}) SELECT {cols} FROM incoming_batch"

    @staticmethod
    def _insert_dead(cur: duckdb.DuckDBPyConnection, dead: list[DeadLetter], received_ms: int) -> None:
        dl = pa.table({
            "received": pa.array([received_ms] * len(dead), pa.int64()).cast(pa.timestamp("ms")),
            "topic": [d.topic for d in dead], "device": [d.device for d in dead],
            "boot": [d.boot for d in dead], "seq": pa.array([d.seq for d in dead], pa.int64()),
            "reason": [d.reason for d in dead], "detail": [d.detail for d in dead],
            "raw": [d.raw for d in dead]})
        cur.register("incoming_dead", dl)
        cur.execute("INSERT INTO deadletter (received, topic, device, boot, seq, reason, detail, raw) "
                    "SELECT * FROM incoming_dead")
        cur.unregister("incoming_dead")

    # ------------------------------------------------------------ reads used by ingest and status
    def seq_tracker(self) -> "SeqTracker":
        """The gap accounting of this store, seeded from it once: shared by every worker writing here."""
        with self._write_lock:
            if self._tracker is None:
                from ingest.tracking import SeqTracker

                self._tracker = SeqTracker()
                self._tracker.seed(self.seq_tallies())
            return self._tracker

    def seq_tallies(self) -> list[tuple[str, str, int, int]]:
        """``(device, boot, max(seq), count)`` for every boot: the seed of gap accounting."""
        return [tuple(r) for r in self.cursor().execute(
            "SELECT device, boot, max(seq), count(*) FROM readings GROUP BY device, boot").fetchall()]

    def highest_seq(self, device: str) -> dict[str, int]:
        return dict(self.cursor().execute(
            "SELECT boot, max(seq) FROM readings WHERE device = ? GROUP BY boot", [device]).fetchall())

    def counts(self) -> dict[str, int]:
        cur = self.cursor()
        (readings,) = cur.execute("SELECT count(*) FROM readings").fetchone()  # type: ignore[misc]
        (dead,) = cur.execute("SELECT count(*) FROM deadletter").fetchone()  # type: ignore[misc]
        return {"readings": int(readings), "deadletter": int(dead)}

    def gaps(self, device: str | None = None) -> list[tuple[str, str, int, int]]:
        """Sequence gaps per ``(device, boot)``: ``(device, boot, first_missing, last_missing)``."""
        where = "WHERE device = ?" if device else ""
        params = [device] if device else []
        return [tuple(r) for r in self.cursor().execute(
            f"""SELECT device, boot, prev + 1, seq - 1 FROM (
                    SELECT device, boot, seq, lag(seq) OVER (PARTITION BY device, boot ORDER BY seq) AS prev
                    FROM readings {where})
                WHERE prev IS NOT NULL AND seq > prev + 1 ORDER BY device, boot, seq""", params).fetchall()]
