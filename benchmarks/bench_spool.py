"""Spool append throughput for each fsync policy, the way the bridge uses it.

Each run appends records in batches of 50 (``append_many``), settles each
batch right after (as the ingest feedback would), calls ``tick()`` like the
bridge's loop, and closes the spool; the time covers all of it.  Reports the
median of the repeats and the throughput ratios group/never and always/never.

    python benchmarks/bench_spool.py            # 200k records (always: 20k), 5 repeats
    python benchmarks/bench_spool.py --quick    # a few seconds

Run it on the file system the bridge uses: on tmpfs fsync costs nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_bridge.spool import Spool  # noqa: E402
from qsec.contract import Record  # noqa: E402

BATCH = 50


def make_records(n: int) -> list[Record]:
    """PMS5003-like records: 5 quantities each, values varying a little."""
    pool = [{"pm1": 3.0 + k % 7, "pm2_5": 5.5 + k % 11, "pm10": 9.25 + k % 13, "temperature": 21.5 + k % 5 / 10,
             "relative_humidity": 48.0 + k % 9} for k in range(97)]
    t0 = 1_767_225_600_000
    return [Record(seq=i, t=t0 + i * 1000, sensor="plantower-pms5003", values=pool[i % 97]) for i in range(n)]


def one_run(directory: Path, records: list[Record], fsync: str) -> float:
    """Seconds to append and settle ``records`` in batches of 50 into a fresh spool."""
    shutil.rmtree(directory, ignore_errors=True)
    boot = "bench-boot"
    start = time.perf_counter()
    with Spool(directory, fsync=fsync) as spool:
        for i in range(0, len(records), BATCH):
            batch = records[i:i + BATCH]
            spool.append_many(boot, batch)
            spool.settle(boot, [[batch[0].seq, batch[-1].seq]])
            spool.tick()
    elapsed = time.perf_counter() - start
    shutil.rmtree(directory, ignore_errors=True)
    return elapsed


def fs_type(path: Path) -> str:
    """File-system type holding ``path`` (from /proc/mounts; "?" elsewhere)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k records (always: 2k), 3 repeats")
    parser.add_argument("--records", type=int, help="records for never and group (default 200000)")
    parser.add_argument("--always-records", type=int, help="records for always (default 20000)")
    parser.add_argument("--repeats", type=int, help="runs per policy (default 5)")
    parser.add_argument("--dir", type=Path, help="parent directory for the spool (default: the temp dir)")
    args = parser.parse_args(argv)
    n = args.records or (20_000 if args.quick else 200_000)
    n_always = args.always_records or (2_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 5)
    parent = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=args.dir))
    kind = fs_type(parent.resolve())
    print(f"spool in {parent} ({kind}); batches of {BATCH}, settle after each, {repeats} repeats, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if kind == "tmpfs":
        print("warning: tmpfs makes fsync free; use --dir on a real disk")
    records = make_records(max(n, n_always))
    plan = (("never", n), ("group", n), ("always", n_always))
    rates: dict[str, list[float]] = {fsync: [] for fsync, _ in plan}
    try:
        for _ in range(repeats):  # interleaved, so that a change of load on the machine hits every policy
            for fsync, count in plan:
                rates[fsync].append(count / one_run(parent / "spool", records[:count], fsync))
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    medians = {fsync: statistics.median(r) for fsync, r in rates.items()}
    rows = [(fsync, count, medians[fsync], min(rates[fsync]), max(rates[fsync])) for fsync, count in plan]
    print()
    print(f"{'fsync':<8}{'records':>9}{'median rec/s':>15}{'min':>12}{'max':>12}{'µs/record':>11}{'vs never':>10}")
    for fsync, count, med, lo, hi in rows:
        print(f"{fsync:<8}{count:>9}{med:>15,.0f}{lo:>12,.0f}{hi:>12,.0f}{1e6 / med:>11.2f}"
              f"{med / medians['never']:>10.2f}")
    print()
    print(f"group/never  = {medians['group'] / medians['never']:.2f}  "
          f"(cost {100 * (1 - medians['group'] / medians['never']):.0f} %)")
    print(f"always/never = {medians['always'] / medians['never']:.2f}  "
          f"({medians['never'] / medians['always']:.1f}x slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
