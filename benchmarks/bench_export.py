"""Export of 10 million readings to Parquet: qsec's streamed bundle vs DuckDB's own ``COPY … TO``.

The data: 20 kits at 1 Hz (PM1, PM2.5, PM10, temperature, humidity),
written by SQL into a DuckDB file.  Both variants read the same ordered
query (:func:`analysis.export.plan`, the researcher view) on the same
connection:

``qsec``    :func:`analysis.export.write_bundle`: Arrow record batches →
            ``pyarrow.parquet.ParquetWriter`` → zip entry, plus manifest and
            checksums (constant memory, one batch at a time)
``duckdb``  ``COPY (<same query>) TO 'x.parquet' (FORMAT parquet)``: DuckDB's
            multi-threaded native writer, no bundle

Medians of three runs and the throughput ratio qsec / duckdb (goal ≥ 50 %).

    python benchmarks/bench_export.py            # 10M rows
    python benchmarks/bench_export.py --quick    # 1M rows
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.export import Selection, plan, write_bundle  # noqa: E402
from ingest.store import create_schema  # noqa: E402


def make_store(path: Path, rows: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    create_schema(con)
    con.execute(f"""
        INSERT INTO readings (campaign, device, boot, seq, time, sensor, flags, received, pm1, pm2_5, pm10,
                              temperature, relative_humidity)
        SELECT 'bench', 'kit-' || lpad((i % 20)::VARCHAR, 2, '0'), 'b0', i // 20,
               TIMESTAMP '2026-05-01' + to_milliseconds(i // 20 * 1000 + (i % 20)), 'plantower-pms5003', 0,
               TIMESTAMP '2026-05-01', round(random() * 40), round(random() * 60), round(random() * 80),
               15 + random() * 10, 40 + random() * 40
        FROM range({rows}) t(i)""")
    return con


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1M rows instead of 10M")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = 1_000_000 if args.quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="qsec-bench-export-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        con = make_store(folder / "qsec.duckdb", rows)
        print(f"store: {rows:,} rows written in {time.perf_counter() - t0:.1f} s")
        selection = Selection(campaign="bench")
        p = plan(con, selection)
        ours, theirs = [], []
        for k in range(args.repeats):
            t0 = time.perf_counter()
            result = write_bundle(con, selection, "parquet", folder / f"ours-{k}.zip", batch_rows=131_072)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.execute(f"COPY ({p.sql}) TO '{folder / f'ref-{k}.parquet'}' (FORMAT parquet)", list(p.params))
            theirs.append(time.perf_counter() - t0)
            assert result.rows == rows
        q, d = statistics.median(ours), statistics.median(theirs)
        print(f"qsec bundle (parquet): median {q:.2f} s  ({rows / q / 1e6:.2f} M rows/s)  runs {[round(x, 2) for x in ours]}")
        print(f"duckdb COPY TO parquet: median {d:.2f} s  ({rows / d / 1e6:.2f} M rows/s)  runs {[round(x, 2) for x in theirs]}")
        print(f"ratio qsec/duckdb throughput: {d / q:.0%}  (goal >= 50 %)")


if __name__ == "__main__":
    main()
