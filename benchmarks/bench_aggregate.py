"""1-minute aggregation of 10 million readings: qsec's resample vs DuckDB SQL vs a per-device pandas loop.

The data: 20 kits at 1 Hz for ~5.8 days (2 % of seconds missing, a few ms
of jitter), one PM2.5 column in whole µg/m³, flags, device as a category
and time as naive UTC microseconds — what a wide ``readings`` query gives.
Each variant computes, per device and minute, the mean, the 5/50/95 %
quantiles, the count and the coverage (count / 60), and returns a pandas
DataFrame:

``qsec``     :func:`analysis.resample.resample`
``duckdb``   one ``GROUP BY`` query over the same DataFrame (``time_bucket``, ``quantile_cont``)
``pandas``   ``DataFrame.groupby`` by device and floored minute
``naive``    a Python loop over devices, ``Series.resample`` for each

Each variant runs in a fresh subprocess (so that peak memory is its own),
three times; the median is reported with the ratio against DuckDB, and
the peak resident memory above the interpreter's own (``ru_maxrss`` minus
the resident size before the data was loaded) against the data's size.

    python benchmarks/bench_aggregate.py            # 10M rows
    python benchmarks/bench_aggregate.py --quick    # 1M rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("qsec", "duckdb", "pandas", "naive")
DEVICES = 20
QUANTILES = (0.05, 0.5, 0.95)


def generate(rows: int, directory: Path, seed: int = 0) -> None:
    """Write the columns as .npy files (loaded by each subprocess without a memory peak)."""
    rng = np.random.default_rng(seed)
    per_device = int(rows / DEVICES / 0.98) + 1
    start_us = int(pd.Timestamp("2026-05-01").value // 1000)
    seconds = np.arange(per_device, dtype="int64")
    parts_t, parts_d = [], []
    for device in range(DEVICES):
        kept = seconds[rng.random(per_device) >= 0.02]
        parts_t.append(start_us + kept * 1_000_000 + rng.integers(0, 40_000, len(kept)))
        parts_d.append(np.full(len(kept), device, dtype="int8"))
    t, d = np.concatenate(parts_t)[:rows], np.concatenate(parts_d)[:rows]
    np.save(directory / "time.npy", t)
    np.save(directory / "device.npy", d)
    np.save(directory / "pm2_5.npy", np.round(rng.gamma(2.0, 6.0, len(t))))
    np.save(directory / "flags.npy", np.where(rng.random(len(t)) < 0.01, 2, 0).astype("int32"))


def load(directory: Path) -> pd.DataFrame:
    names = np.array([f"kit-{i:02d}" for i in range(DEVICES)], dtype=object)
    return pd.DataFrame({  # copy=False: no consolidation copy, so loading peaks at the data's size
        "device": pd.Categorical.from_codes(np.load(directory / "device.npy"), names),
        "time": np.load(directory / "time.npy").view("datetime64[us]"),
        "flags": np.load(directory / "flags.npy"),
        "pm2_5": np.load(directory / "pm2_5.npy"),
    }, copy=False)


def run_qsec(frame: pd.DataFrame) -> pd.DataFrame:
    from analysis.resample import resample

    out = resample(frame, "1min", stats=("mean", "quantiles"), quantiles=QUANTILES)
    assert isinstance(out, pd.DataFrame)
    return out


def run_duckdb(frame: pd.DataFrame) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.register("readings", frame)
    sql = """
        SELECT device, t AS time, mean, q[1] AS q05, q[2] AS q50, q[3] AS q95, count, count / 60.0 AS coverage
        FROM (SELECT device, time_bucket(INTERVAL 1 MINUTE, time) AS t, avg(pm2_5) AS mean,
                     quantile_cont(pm2_5, [0.05, 0.5, 0.95]) AS q, count(pm2_5) AS count
              FROM readings WHERE isfinite(pm2_5) GROUP BY ALL)
        ORDER BY device, time
    """
    out = con.execute(sql).df()
    con.close()
    return out


def run_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(["device", frame["time"].dt.floor("1min")], observed=True)["pm2_5"]
    out = grouped.agg(["mean", "count"])
    for p in QUANTILES:
        out[f"q{100 * p:02g}"] = grouped.quantile(p)
    out["coverage"] = (out["count"] / 60.0).clip(upper=1.0)
    return out.reset_index()


def run_naive(frame: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for device in frame["device"].cat.categories:  # the loop the vectorised version avoids
        values = frame.loc[frame["device"] == device].set_index("time")["pm2_5"].resample("1min")
        part = pd.DataFrame({"mean": values.mean(), "count": values.count()})
        for p in QUANTILES:
            part[f"q{100 * p:02g}"] = values.quantile(p)
        part["coverage"] = (part["count"] / 60.0).clip(upper=1.0)
        parts.append(part[part["count"] > 0].assign(device=device))
    return pd.concat(parts).reset_index()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(variant: str, directory: Path, repeats: int) -> None:
    """Time one variant; print a JSON line with timings, memory and a checksum."""
    import duckdb  # noqa: F401  (import every library before the baseline, whichever variant runs)
    import xarray  # noqa: F401

    import analysis.resample  # noqa: F401

    before = rss_bytes()
    frame = load(directory)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data_bytes = int(frame.memory_usage(deep=True).sum())
    func = {"qsec": run_qsec, "duckdb": run_duckdb, "pandas": run_pandas, "naive": run_naive}[variant]
    seconds, out = [], pd.DataFrame()
    for _ in range(max(repeats, 1)):
        del out  # free the previous result before the next run
        start = time.perf_counter()
        out = func(frame)
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    checksum = {"windows": len(out), "count": int(out["count"].sum()), "mean_sum": float(out["mean"].sum()),
                "q50_sum": float(out["q50"].sum()), "q95_sum": float(out["q95"].sum())}
    print(json.dumps({"variant": variant, "seconds": seconds, "baseline": before, "peak": peak, "loaded": loaded,
                      "data_bytes": data_bytes, "rows": len(frame), **checksum}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows instead of 10M")
    parser.add_argument("--rows", type=int, help="rows to aggregate")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, among {VARIANTS}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.repeats)
        return 0
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as tmp:
        directory = Path(tmp)
        generate(rows, directory)
        print(f"{rows:,} rows, {DEVICES} devices, 1-minute mean + quantiles 5/50/95 + count + coverage; "
              f"{args.repeats} runs per variant in a fresh process; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs")
        results = {}
        for variant in args.variants.split(","):
            done = subprocess.run([sys.executable, __file__, "--child", variant, "--data", str(directory),
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{variant}: failed\n{done.stderr}", file=sys.stderr)
                return 1
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    report(results)
    return 0


def report(results: dict[str, dict]) -> None:  # type: ignore[type-arg]
    reference = statistics.median(results["duckdb"]["seconds"]) if "duckdb" in results else None
    data_mb = next(iter(results.values()))["data_bytes"] / 1e6
    print(f"data in memory: {data_mb:,.0f} MB\n")
    print(f"{'variant':<8}{'median s':>10}{'min':>8}{'max':>8}{'vs duckdb':>11}{'peak MB':>10}{'x data':>8}"
          f"{'windows':>10}{'mean sum':>16}{'q95 sum':>14}")
    for variant, r in results.items():
        med = statistics.median(r["seconds"])
        ratio = f"{med / reference:.2f}" if reference else "-"
        extra = (r["peak"] - r["baseline"]) / 1e6
        print(f"{variant:<8}{med:>10.3f}{min(r['seconds']):>8.3f}{max(r['seconds']):>8.3f}{ratio:>11}"
              f"{extra:>10,.0f}{extra / data_mb:>8.2f}{r['windows']:>10,}{r['mean_sum']:>16,.3f}{r['q95_sum']:>14,.3f}")
    print("\n'vs duckdb' = median time / DuckDB's median time (below 1: faster than DuckDB).")
    print("'peak MB' = peak resident memory above the interpreter's own (imports done), data included;")
    print("'x data' = that peak / the data's in-memory size.")


if __name__ == "__main__":
    sys.exit(main())
