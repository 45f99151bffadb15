"""As-of join of sensor records onto GPS fixes by device, 5 s tolerance: qsec vs DuckDB vs pandas.

1 million sensor records (50 kits at 1 Hz) onto 200,000 fixes (one every
5 s, jittered), in the order a store query returns them (by device, then
time).  Each contender starts from the same two DataFrames and ends with
a DataFrame holding every record and its position (NaN beyond 5 s):

- ``qsec backward`` / ``qsec nearest``: :func:`analysis.fusion.attach_positions`
  (lag 0, so the work is the same as the others'), records in their input order;
- ``pandas sort+merge_asof``: sort both by time (merge_asof needs it),
  then ``merge_asof(by="device", tolerance=5 s, direction="backward")``,
  result in time order — the reference of the ratios;
- ``pandas merge_asof (pre-sorted)``: merge_asof alone on inputs sorted
  beforehand (the sort is not timed);
- ``DuckDB ASOF JOIN``: ``ASOF LEFT JOIN … ON device = device AND
  r.time >= f.time`` on the registered DataFrames, tolerance applied with a
  CASE, fetched as a DataFrame;
- ``DuckDB ASOF JOIN (tables, Arrow)``: the same query on tables already
  inside DuckDB (loading not timed), fetched as an Arrow table — the
  engine's own time, without pandas on either side.

Repeats are interleaved (each round runs every contender once), so load
changes on a shared machine hit all alike.  Prints the median of the
repeats and each one's time relative to the reference (lower is faster).

    python benchmarks/bench_asof.py            # 1M records, 200k fixes, 5 repeats
    python benchmarks/bench_asof.py --quick    # 100k records, 20k fixes, 3 repeats
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fusion import attach_positions  # noqa: E402

TOLERANCE = pd.Timedelta(seconds=5)
KITS = 50


def make_data(n_records: int, n_fixes: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sensor records at ~1 Hz and fixes at ~0.2 Hz per kit, sorted by device then time."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-05-17 08:00:00")
    per_kit_r, per_kit_f = n_records // KITS, n_fixes // KITS
    devices = np.array([f"kit-{k:02d}" for k in range(KITS)])
    r_seconds = np.arange(per_kit_r)[None, :] + rng.uniform(0, 0.05, (KITS, per_kit_r))
    f_seconds = 5.0 * np.arange(per_kit_f)[None, :] + rng.uniform(0, 0.5, (KITS, per_kit_f))
    # a few outages: 2 % of fixes missing, so some records have no fix within 5 s
    keep = rng.random((KITS, per_kit_f)) > 0.02
    records = pd.DataFrame({
        "device": np.repeat(devices, per_kit_r),
        "time": (start + pd.to_timedelta(r_seconds.ravel().round(6), unit="s")).as_unit("us"),
        "pm2_5": rng.uniform(2, 60, KITS * per_kit_r),
    })
    fixes = pd.DataFrame({
        "device": np.repeat(devices, per_kit_f)[keep.ravel()],
        "time": (start + pd.to_timedelta(f_seconds.ravel()[keep.ravel()].round(6), unit="s")).as_unit("us"),
        "latitude": rng.uniform(48.80, 48.90, int(keep.sum())),
        "longitude": rng.uniform(2.25, 2.42, int(keep.sum())),
        "hdop": rng.uniform(0.7, 2.0, int(keep.sum())),
    })
    return records, fixes


def run_qsec(method: str) -> Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    def run(records: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
        return attach_positions(records, fixes, tolerance_s=5.0, method=method, lag_s=0.0)  # type: ignore[arg-type]
    return run


def run_pandas(records: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
    return pd.merge_asof(records.sort_values("time"), fixes.sort_values("time"), on="time", by="device",
                         tolerance=TOLERANCE, direction="backward")


def run_pandas_presorted(records: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
    return pd.merge_asof(records, fixes, on="time", by="device", tolerance=TOLERANCE, direction="backward")


ASOF_SQL = """
    SELECT r.device, r.time, r.pm2_5,
           CASE WHEN r.time - f.time <= INTERVAL 5 SECOND THEN f.latitude END AS latitude,
           CASE WHEN r.time - f.time <= INTERVAL 5 SECOND THEN f.longitude END AS longitude,
           CASE WHEN r.time - f.time <= INTERVAL 5 SECOND THEN f.hdop END AS hdop
    FROM {recs} r ASOF LEFT JOIN {fixes} f ON r.device = f.device AND r.time >= f.time
"""


def run_duckdb(con: duckdb.DuckDBPyConnection) -> Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    def run(records: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
        con.register("recs_df", records)
        con.register("fixes_df", fixes)
        return con.execute(ASOF_SQL.format(recs="recs_df", fixes="fixes_df")).df()
    return run


def run_duckdb_tables(con: duckdb.DuckDBPyConnection, records: pd.DataFrame,
                      fixes: pd.DataFrame) -> Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    con.register("recs_in", records)
    con.register("fixes_in", fixes)
    con.execute("CREATE OR REPLACE TABLE recs_t AS SELECT * FROM recs_in")
    con.execute("CREATE OR REPLACE TABLE fixes_t AS SELECT * FROM fixes_in")
    sql = ASOF_SQL.format(recs="recs_t", fixes="fixes_t")

    def run(_records: pd.DataFrame, _fixes: pd.DataFrame) -> pd.DataFrame:
        table = con.execute(sql).to_arrow_table()
        return pd.DataFrame({"latitude": table.column("latitude").to_numpy()})  # only to count positions
    return run


Contender = tuple[str, Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]


def timed(contenders: list[Contender], repeats: int) -> list[tuple[str, float, int]]:
    """Median seconds of each contender and the positions it found.

    One warm-up run each, then ``repeats`` rounds in which every contender
    runs once in turn: on a shared machine, load changes hit all of them
    alike instead of whichever happened to run at the time.
    """
    found = [int(fn(*data)["latitude"].notna().sum()) for _, fn, data in contenders]
    seconds: list[list[float]] = [[] for _ in contenders]
    for _ in range(repeats):
        for k, (_, fn, data) in enumerate(contenders):
            start = time.perf_counter()
            fn(*data)
            seconds[k].append(time.perf_counter() - start)
    return [(name, statistics.median(s), n) for (name, _, _), s, n in zip(contenders, seconds, found, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k records, 20k fixes, 3 repeats")
    parser.add_argument("--repeats", type=int, help="runs per contender (default 5, quick 3)")
    args = parser.parse_args(argv)
    n_records, n_fixes = (100_000, 20_000) if args.quick else (1_000_000, 200_000)
    repeats = args.repeats or (3 if args.quick else 5)
    warnings.simplefilter("ignore")  # DuckDB's DataFrame export warns about a pandas deprecation
    records, fixes = make_data(n_records, n_fixes)
    presorted = (records.sort_values("time"), fixes.sort_values("time"))
    con = duckdb.connect()
    con.execute("SET threads = 2")

    contenders: list[Contender] = [
        ("pandas sort+merge_asof (reference)", run_pandas, (records, fixes)),
        ("pandas merge_asof (pre-sorted)", run_pandas_presorted, presorted),
        ("DuckDB ASOF JOIN", run_duckdb(con), (records, fixes)),
        ("DuckDB ASOF JOIN (tables, Arrow)", run_duckdb_tables(con, records, fixes), (records, fixes)),
        ("qsec attach_positions backward", run_qsec("backward"), (records, fixes)),
        ("qsec attach_positions nearest", run_qsec("nearest"), (records, fixes)),
    ]
    print(f"as-of join: {len(records):,} records onto {len(fixes):,} fixes by device, tolerance 5 s, "
          f"median of {repeats}")
    results = timed(contenders, repeats)
    reference = results[0][1]
    print(f"{'contender':38s} {'median':>9s} {'ratio':>7s} {'records/s':>12s} {'positions':>10s}")
    for name, seconds, found in results:
        print(f"{name:38s} {seconds * 1000:7.0f}ms {seconds / reference:6.2f}× {len(records) / seconds:12,.0f} "
              f"{found:10,}")
    backward = {name: found for name, _, found in results if "nearest" not in name}
    if len(set(backward.values())) != 1:
        print(f"WARNING: backward joins disagree on positions found: {backward}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
