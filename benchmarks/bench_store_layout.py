"""What the store's idempotent write costs, by table layout: the measurements behind the next store layout.

    python benchmarks/bench_store_layout.py            # 400,000 rows, 3 repeats
    python benchmarks/bench_store_layout.py --quick    # 100,000 rows, 1 repeat

The same PMS5003 records (key columns + pm1, pm2_5, pm10), in 5,000-row
transactions (one ingest group), appended from Arrow into a DuckDB file with
the store's settings (64 MB checkpoints) under four layouts:

- ``wide, primary key``: the ``readings`` table as the store creates it
  (48 columns: one per known quantity, NULL where a record has none) with
  its primary key on ``(device, boot, seq)`` — the reference;
- ``wide, no key``: the same columns, no key;
- ``narrow, unique index``: only the 11 columns these records fill, with a
  unique index on ``(device, boot, seq)`` (one table per sensor family);
- ``narrow, no key``.

Prints rows/s (median of the repeats) and each layout's ratio to the
reference measured in the same run.

Sources: DuckDB "Indexes" (ART, unique constraints) and "Data import"
(appending from Arrow), https://duckdb.org/docs/stable/sql/indexes ,
https://duckdb.org/docs/stable/guides/python/import_arrow
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_args import parse  # noqa: E402

from ingest.store import CHECKPOINT_WAL, create_schema  # noqa: E402

GROUP = 5000


def group(k: int, n: int) -> pa.Table:
    seq = np.arange(k * n, (k + 1) * n)
    t = 1_700_000_000_000 + seq * 1000
    return pa.table({
        "campaign": pa.array(["bench"] * n), "device": pa.array(["kit-b"] * n), "boot": pa.array(["b0"] * n),
        "seq": pa.array(seq), "time": pa.array(t).cast(pa.timestamp("ms")),
        "sensor": pa.array(["plantower-pms5003"] * n), "flags": pa.array(np.zeros(n, np.int32)),
        "received": pa.array(t + 500).cast(pa.timestamp("ms")),
        "pm1": pa.array(seq % 7 + 3.0), "pm2_5": pa.array(seq % 11 + 5.0), "pm10": pa.array(seq % 13 + 8.0)})


def _wide_key(con: duckdb.DuckDBPyConnection, first: pa.Table) -> None:
    create_schema(con)


def _wide_no_key(con: duckdb.DuckDBPyConnection, first: pa.Table) -> None:
    create_schema(con)
    con.execute("CREATE TABLE r2 AS SELECT * FROM readings LIMIT 0")
    con.execute("DROP TABLE readings")
    con.execute("ALTER TABLE r2 RENAME TO readings")


def _narrow_no_key(con: duckdb.DuckDBPyConnection, first: pa.Table) -> None:
    con.register("first_group", first)
    con.execute("CREATE TABLE readings AS SELECT * FROM first_group LIMIT 0")
    con.unregister("first_group")


def _narrow_index(con: duckdb.DuckDBPyConnection, first: pa.Table) -> None:
    _narrow_no_key(con, first)
    con.execute("CREATE UNIQUE INDEX readings_key ON readings (device, boot, seq)")


LAYOUTS = {"wide, primary key (the store today)": _wide_key, "wide, no key": _wide_no_key,
           "narrow, unique index": _narrow_index, "narrow, no key": _narrow_no_key}


def rate(make, groups: list[pa.Table]) -> float:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as d:
        con = duckdb.connect(str(Path(d) / "layout.duckdb"))
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_WAL}'")
        make(con, groups[0])
        cols = ", ".join(groups[0].column_names)
        t = time.perf_counter()
        for g in groups:
            con.execute("BEGIN")
            con.register("incoming", g)
            con.execute(f"INSERT INTO readings ({cols}) SELECT {cols} FROM incoming")
            con.unregister("incoming")
            con.execute("COMMIT")
        dt = time.perf_counter() - t
        con.close()
    return GROUP * len(groups) / dt


def main() -> None:
    a = parse(__doc__, "rows", 400_000, 100_000)
    groups = [group(k, GROUP) for k in range(max(1, a.rows // GROUP))]
    res: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for r in range(a.repeats):
        for name, make in LAYOUTS.items():  # interleaved: the machine's load falls on every layout alike
            res[name].append(rate(make, groups))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items()), flush=True)
    ref = statistics.median(res[next(iter(LAYOUTS))])
    print(f"\n{len(groups) * GROUP:,} rows in {GROUP:,}-row transactions, medians of {a.repeats}")
    for name, values in res.items():
        m = statistics.median(values)
        print(f"  {name:<38} {m:>10,.0f} rows/s   {m / ref:.2f} x the store today")


if __name__ == "__main__":
    main()
