"""Fault soak: several kits stream through bridge -> broker -> ingest for minutes while every part is killed.

The long version of ``tests/test_faults_pipeline.py``.  Each kit is a real
bridge process fed by a deterministic generator with its own ground-truth log
(``tests/_support/fault_bridge.py``); ingest is ``qsec ingest`` with a pool of
decoding processes; the broker is a private Mosquitto.  A seeded random plan
brings a fault every 2–8 s, drawn evenly among: kill -9 the bridge of a random
kit, kill -9 ingest, kill -9 one decoding process of ingest, kill -9 the
broker, and a network cut (the broker stopped for 1–5 s).  When generation
ends the soak waits for every kit's spool to be settled, stops everything and
compares the store with the ground truth, per kit and in total.  A part that
exits by itself is reported as a crash and started again, as a supervisor
would.  Exit code: 1 if anything was lost, doubled or stored with a value the
generator did not produce (or the spools did not settle, or a decoding process
outlived its ingest); 3 if the data are exact but a part crashed; else 0.

    python benchmarks/soak_faults.py --minutes 10 --kits 3 --seed 1   # the figures in docs/performance.md
    python benchmarks/soak_faults.py --quick                          # ~2 minutes

The machinery (processes, faults, accounting) is shared with the test: this
script puts ``tests/_support`` on ``sys.path`` and imports
``fault_pipeline`` from there.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "_support"))
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (harness.wait_until reports a timeout through pytest.fail)

from fault_pipeline import FAULTS, Fault, KitCount, Pipeline, account  # noqa: E402
from harness import wait_until  # noqa: E402
from qsec.broker import find_mosquitto  # noqa: E402


def draw_plan(rng: random.Random, seconds: float, kits: int, every: tuple[float, float] = (2.0, 8.0),
              down: tuple[float, float] = (1.0, 5.0)) -> list[Fault]:
    """A fault every ``every`` s, kinds drawn evenly, until ``seconds`` (counting each fault's own time)."""
    plan: list[Fault] = []
    t = 0.0
    while True:
        wait, kind = rng.uniform(*every), rng.choice(FAULTS)
        fault = Fault(kind, wait_s=round(wait, 2), kit=rng.randrange(kits), down_s=round(rng.uniform(*down), 1))
        t += wait + (fault.down_s if kind == "network" else 0.5)
        if t > seconds:
            return plan
        plan.append(fault)


def report(counts: list[KitCount], dead_all: int, doubled_all: int, faults: Counter, bridge_kills: Counter) -> bool:
    """Print per kit and in total; True when nothing was lost, doubled or wrong."""
    width = max(len(c.device) for c in counts + [KitCount("total")])
    for c in counts:
        print(f"  {c.device:<{width}}  {c.line()}, bridge kills {bridge_kills[c.device]}")
        for problem in c.problems[:10]:
            print(f"  {'':<{width}}  ! {problem}")
    total = KitCount("total", **{k: sum(getattr(c, k) for c in counts)
                                 for k in ("generated", "stored", "lost", "doubled", "boots")})
    total.dead = dead_all
    print(f"  {'total':<{width}}  {total.line()}")
    print("  faults: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS) + f" (all {sum(faults.values())})")
    return total.lost == 0 and total.doubled == 0 and doubled_all == 0 and not any(c.problems for c in counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="generation time with faults [min]")
    ap.add_argument("--kits", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=100.0, help="records per second per kit")
    ap.add_argument("--decode-processes", type=int, default=2, help="ingest's decoding processes")
    ap.add_argument("--quick", action="store_true", help="2 minutes")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (kept anyway on failure)")
    args = ap.parse_args()
    if find_mosquitto() is None:
        print("no mosquitto binary: apt-get install -y mosquitto", file=sys.stderr)
        return 2
    seconds = 120.0 if args.quick else args.minutes * 60
    plan = draw_plan(random.Random(args.seed), seconds - 5, args.kits)
    tmp = Path(tempfile.mkdtemp(prefix="qsec-soak-faults-"))
    print(f"fault soak: {args.kits} kits × {args.rate:g} records/s for {seconds:.0f} s, {len(plan)} faults "
          f"(seed {args.seed}), ingest with {args.decode_processes} decoding processes; folder {tmp}", flush=True)
    p = Pipeline(tmp, kits=args.kits, rate=args.rate, generate_s=seconds, decode_processes=args.decode_processes,
                 say=lambda line: print(line, flush=True))
    settled = True
    try:
        p.start()
        p.run(plan, lambda i, f, what: print(f"[{time.monotonic() - p.t0:7.1f} s] fault {i:3d}/{len(plan)} "
                                             f"{f.kind:<8} {what}", flush=True))
        ended = p.generation_ends
        try:
            p.settle(timeout=600)
            print(f"generation ended; every spool settled {time.monotonic() - ended:.1f} s later", flush=True)
        except pytest.fail.Exception as exc:
            settled = False
            print(f"NOT SETTLED: {exc}", flush=True)
    finally:
        p.stop()
    try:
        wait_until(lambda: not p.leftover_decoders(), timeout=2.0, interval=0.1, what="orphaned decoders to exit")
    except pytest.fail.Exception:
        pass
    leftovers = p.leftover_decoders()
    counts, dead_all, doubled_all = account(p)
    ok = report(counts, dead_all, doubled_all, p.faults, p.bridge_kills) and settled and not leftovers
    if leftovers:
        print(f"  decoding processes left behind by killed ingest processes: {[x.pid for x in leftovers]}")
    print(f"  crashes (parts that exited by themselves): {len(p.crashes)}")
    for crash in p.crashes:
        print(f"    {crash}")
    code = 0 if ok and not p.crashes else 3 if ok else 1
    print({0: "OK: 0 lost, 0 doubled", 3: "DATA EXACT (0 lost, 0 doubled), BUT A PART CRASHED", 1: "FAILED"}[code],
          flush=True)
    if code == 0 and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"run folder kept: {tmp}")
    return code


if __name__ == "__main__":
    sys.exit(main())
