"""Latency of the researcher API under 50 concurrent clients: a one-device, one-day query.

A real uvicorn server (a subprocess, so clients and server do not share a
GIL) serves a store of 5 kits × 1 day at 1 Hz (432,000 records).  Each
route is measured twice:

- **sequential**: one client, one request at a time: the server's own
  time per request (plus the loopback);
- **50 clients**: 50 concurrent keep-alive connections, each sending its
  next request as soon as it has its answer (a closed loop, no think
  time): p50, p99 and the throughput.

The routes:

``readings``   ``GET /research/v1/readings`` — one device, one day, 100
               records a page.  Each request is drawn at random from a mix
               of 60: 5 devices × 3 quantity sets (PM2.5, PM10, both) ×
               4 depths in the day (the first page, the page after it, a
               page from noon and one from 23:58, through ``cursor``)
``aggregate``  ``GET /research/v1/readings/aggregate`` — one device, one day,
               PM2.5 hourly means with coverage
``floor``      ``GET /research/v1/flags`` — no store access: the cost of
               HTTP, FastAPI and the token check, measured in the same run

The server runs four times on copies of the store, always with the
store's change feed (``research_router(..., versions=…)``, as ``qsec up``):

``store``      no page cache, no resident blocks: every request is a query
               of the store (the cost of a page of a day nobody asked for
               yet, or of a selection blocks do not serve);
``blocks``     no page cache, resident blocks (:mod:`dashboards.research.blocks`):
               every page is cut anew from the day's columns in memory, read
               once from the store by the warm-up (the cost of a page the
               page cache does not hold);
``cached``     with the page cache and blocks, nothing writing during the run:
               after the warm-up every page of the mix is answered from
               memory (clients asking again for pages that have not changed);
``live``       with the page cache and blocks while a live campaign goes on: a thread
               of the server commits records of the *next* day (the
               campaign's today) for the same 5 devices, 1 record/s each,
               every 200 ms, through ingest's own path (``Store.write_arrow``,
               ``ingest.decode.records_of``, the commit listeners), while
               the clients ask for the past day; each 50-client run lasts
               5 s at least (some 25 commits).

The clients are plain asyncio HTTP/1.1 connections (about 0.15 ms of CPU a
request, where an ``httpx.AsyncClient`` took ~7 ms: with it the benchmark
measured its own clients), in this process; the server's CPU time per
request is read from ``/proc/<pid>/stat`` (Linux).  In a closed loop the
latency is the number of clients over the throughput (Little's law), so
the CPU time a request costs the server bounds the p50 and the p99: the
last lines print that bound.

Goal: p99 < 100 ms for ``readings`` with 50 clients, whichever server.  Medians of the
repeats, and each p99 as a ratio to the floor's p99 of the same run.

    python benchmarks/bench_api.py            # 3 repeats, 40 requests per client
    python benchmarks/bench_api.py --quick    # 3 repeats, 8 requests per client
    python benchmarks/bench_api.py --profile  # also a cProfile of each server (its main thread)
    python benchmarks/bench_api.py --quick --mode live     # one server only
    python benchmarks/bench_api.py --query    # a page alone: the store's query by depth, join left out or forced,
                                              # and a page cut from blocks, and reading a block

Sources
-------
- HTTP/1.1 message syntax (persistent connections, Content-Length): RFC 9112,
  https://www.rfc-editor.org/rfc/rfc9112
- Little's law: J. D. C. Little, "A proof for the queuing formula L = λW",
  Operations Research 9(3), 1961.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import numpy as np
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.research.auth import create_token
from ingest.registry import create_campaign, ensure_registry_schema
from ingest.store import create_schema

CLIENTS = 50
GOAL_MS = 100.0
DAY: dict[str, object] = {"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z"}
DEVICES = tuple(f"kit-0{i}" for i in range(5))
QUANTITY_SETS = (["pm2_5"], ["pm10"], ["pm2_5", "pm10"])
MODES = ("store", "blocks", "cached", "live")
LIVE_HZ = 1.0  # [records/s] per device, in live mode
LIVE_COMMIT_S = 0.2  # [s] between ingest's commits, in live mode
LIVE_MIN_S = 5.0  # [s] each 50-client run lasts at least, in live mode: some 25 commits
TODAY_MS = 1_777_680_000_000  # 2026-05-02T00:00:00Z: live records are the day after DAY


def serve(store: str, port: int, pepper: str, mode: str) -> None:
    """Run in the server subprocess: the researcher router on uvicorn (see :data:`MODES`)."""
    import uvicorn
    from fastapi import FastAPI

    from dashboards.heap import freeze_startup
    from dashboards.research import DataVersions, ResearchSettings, research_router
    from ingest.store import Store

    db = Store(store)
    settings = ResearchSettings(token_pepper=SecretStr(pepper), token_rate=10_000, token_burst=100_000,
                                page_cache_mb=0 if mode in ("store", "blocks") else 64,
                                block_cache_mb=0 if mode == "store" else 256)
    versions = DataVersions()  # nothing but the live writer writes the store while it serves
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(db.new_cursor, settings, versions=versions))
    stop = threading.Event()
    writer = threading.Thread(target=commit_today, args=(db, [versions.listener], stop), daemon=True)
    if mode == "live":
        writer.start()
    freeze_startup()  # as qsec up does
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(10)
        db.close()


def commit_today(store: Any, listeners: Sequence[Callable[[list[Any]], None]], stop: threading.Event) -> None:
    """Commit records of today for :data:`DEVICES` at :data:`LIVE_HZ` each, every :data:`LIVE_COMMIT_S`, until ``stop``.

    As ``IngestWorker._commit``: one transaction (``Store.write_arrow``),
    then the listeners with the new records (``ingest.decode.records_of``).
    Device *i*'s records are due at ``(k + i/5) / LIVE_HZ`` s, so each commit
    carries some devices' records.
    """
    from ingest.decode import records_of
    from qsec.contract import Record

    t0, sent, commits = time.monotonic(), [0] * len(DEVICES), 0
    while not stop.wait(LIVE_COMMIT_S):
        elapsed, rows = time.monotonic() - t0, []
        for i, device in enumerate(DEVICES):
            due = max(0, int(elapsed * LIVE_HZ - i / len(DEVICES)) + 1)
            rows += [("bench", device, "live", Record(seq, TODAY_MS + int((seq + i / len(DEVICES)) * 1000 / LIVE_HZ),
                                                      "plantower-pms5003", {"pm2_5": 12.0, "pm10": 20.0}))
                     for seq in range(sent[i], due)]
            sent[i] = due
        now_ms = int(time.time() * 1000)
        table = store.to_arrow(rows, now_ms) if rows else None
        _, new = store.write_arrow(table, (), now_ms)
        committed = records_of(table, np.flatnonzero(new)) if table is not None else []
        for listener in listeners:
            listener(committed)
        commits += 1
    print(f"live writer: {commits} commits, {sum(sent)} records of today, in {time.monotonic() - t0:.0f} s",
          flush=True)


def make_store(path: Path, pepper: str) -> str:
    con = duckdb.connect(str(path))
    create_schema(con)
    con.execute("""
        INSERT INTO readings (campaign, device, boot, seq, time, sensor, flags, received, pm2_5, pm10)
        SELECT 'bench', 'kit-0' || (i % 5), 'b0', i // 5, TIMESTAMP '2026-05-01' + to_seconds(i // 5),
               'plantower-pms5003', 0, TIMESTAMP '2026-05-01', round(random() * 60), round(random() * 80)
        FROM range(5 * 86400) t(i)""")
    ensure_registry_schema(con)
    create_campaign(con, "bench", public=False)
    _, token = create_token(con, pepper, name="bench", role="researcher")
    con.close()
    return token


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """Send one request on a keep-alive connection; its body (an error for any status but 200)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
    return body


async def _client(port: int, requests: Sequence[bytes], count: int, latencies: list[float], seed: int,
                  until: float) -> None:
    """One keep-alive HTTP/1.1 connection sending requests drawn from ``requests``, one at a time.

    ``count`` of them, and more until ``time.perf_counter()`` reaches ``until``.
    """
    draw = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        sent = 0
        while sent < count or time.perf_counter() < until:
            sent += 1
            request = draw.choice(requests)
            t0 = time.perf_counter()
            await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()


def load(port: int, requests: Sequence[bytes], clients: int, per_client: int,
         min_s: float = 0.0) -> tuple[np.ndarray, float]:
    """Latencies [ms] of ``clients`` concurrent connections, ``min_s`` at least, and the throughput [requests/s]."""
    latencies: list[float] = []
    seed = random.randrange(2**32)

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(port, requests, per_client, latencies, seed + i, t0 + min_s)
                               for i in range(clients)))
        return time.perf_counter() - t0

    wall = asyncio.run(run())
    return np.array(latencies) * 1000, len(latencies) / wall


def cpu_s(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far [s] (``/proc/<pid>/stat``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(port: int, pid: int, requests: Sequence[bytes], per_client: int, repeats: int,
            min_s: float = 0.0) -> dict[str, float]:
    """Medians over ``repeats`` of the sequential p50 and the 50-client p50, p99, throughput and CPU costs.

    Each 50-client run lasts ``min_s`` at least.
    """
    runs: list[dict[str, float]] = []
    for request in requests:  # warm-up: every request of the mix once (the cached server's steady state) ...
        load(port, [request], 1, 1)
    load(port, requests, CLIENTS, 2)  # ... then connections, pools
    for _ in range(repeats):
        seq, _ = load(port, requests, 1, max(20, per_client * 2))
        server0, client0 = cpu_s(pid), own_cpu_s()
        ms, rate = load(port, requests, CLIENTS, per_client, min_s)
        server, client = (cpu_s(pid) - server0) * 1000 / len(ms), (own_cpu_s() - client0) * 1000 / len(ms)
        runs.append({"seq": float(np.percentile(seq, 50)), "p50": float(np.percentile(ms, 50)),
                     "p99": float(np.percentile(ms, 99)), "rate": rate, "server_cpu": server, "client_cpu": client})
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def request_bytes(port: int, path: str, params: dict[str, object], token: str) -> bytes:
    target = f"/research/v1{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\n\r\n").encode()


def readings_mix(port: int, token: str) -> list[bytes]:
    """The 60 readings requests: 5 devices × 3 quantity sets × 4 depths (first page, second, noon, 23:58)."""
    from dashboards.research.routes_data import encode_cursor

    async def first_pages(requests: list[bytes]) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return [await exchange(reader, writer, r) for r in requests]
        finally:
            writer.close()

    params = [{"campaign": "bench", "device": device, "quantity": quantities, **DAY, "limit": 100}
              for device in DEVICES for quantities in QUANTITY_SETS]
    firsts = [request_bytes(port, "/readings", p, token) for p in params]
    cursors = [json.loads(body)["next_cursor"] for body in asyncio.run(first_pages(firsts))]
    start = datetime.fromisoformat(str(DAY["start"]))
    deep = [encode_cursor({"time": start + timedelta(hours=h, minutes=m), "device": p["device"], "boot": "b0",
                           "seq": 0}) for p in params for h, m in ((12, 0), (23, 58))]
    return firsts + [request_bytes(port, "/readings", p | {"cursor": c}, token)
                     for p, c in zip([*params, *(p for p in params for _ in range(2))], [*cursors, *deep],
                                     strict=True)]


def query_cost(store: Path, repeats: int, loops: int = 10) -> None:
    """Print the CPU time of the pages' queries (plan and fetch) in this process, by depth and with or without the join.

    No HTTP, no threads: :func:`analysis.export.plan` and the page's fetch.
    First the 30 pages of the benchmark's mix with the participant's ``ASOF``
    join left out (nobody was assigned: what the server does) and forced (as
    if every device had been); then, join left out, the cost by the depth of
    the page in the day: the first page, the page after it, a page whose
    cursor is at noon and one at 23:58 (a deep page must cost no more than
    the first: its cursor's time bound reaches the table scan's zone maps).
    """
    from analysis.export.selection import Selection, assigned_devices, plan, store_shape
    from dashboards.research.blocks import BlockCache, read_block
    from dashboards.research.pagecache import DataVersions
    from dashboards.research.routes_data import page_rows
    from ingest.store import Store

    db = Store(store)
    cur = db.new_cursor()
    shape = store_shape(cur)
    start, end = (datetime.fromisoformat(str(DAY[k])) for k in ("start", "end"))
    selections = [Selection(campaign="bench", devices=(d,), quantities=tuple(q), start=start, end=end)
                  for d in DEVICES for q in QUANTITY_SETS]
    second = {s: tuple(page_rows(cur, plan(cur, s, limit=101, shape=shape))[99][k]
                       for k in ("time", "device", "boot", "seq")) for s in selections}
    depths = {"first page": {s: None for s in selections}, "second page": second,
              "cursor at noon": {s: (start + timedelta(hours=12), s.devices[0], "b0", 0) for s in selections},
              "cursor at 23:58": {s: (end - timedelta(minutes=2), s.devices[0], "b0", 0) for s in selections}}
    mix = [(s, after) for s in selections for after in (None, second[s])]
    variants = {"join left out": (assigned_devices(cur), mix), "join forced": (frozenset(DEVICES), mix)}
    variants.update({name: (frozenset(), list(pages.items())) for name, pages in depths.items()})
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (assigned, pages) in variants.items():  # interleaved: the machine's load falls on each alike
            t0 = time.process_time()
            for _ in range(loops):
                for selection, after in pages:
                    page_rows(cur, plan(cur, selection, after=after, limit=101, shape=shape, assigned=assigned))
            runs[name].append((time.process_time() - t0) * 1000 / (loops * len(pages)))
    blocks = BlockCache(DataVersions(), 1 << 30)
    cut: dict[str, list[float]] = {name: [] for name in depths}
    reads: list[float] = []
    day = (start - datetime.fromtimestamp(0, start.tzinfo)) // timedelta(days=1)
    for _ in range(repeats):
        t0 = time.process_time()
        for device in DEVICES:
            read_block(cur, "bench", device, day, ("pm2_5",))
        reads.append((time.process_time() - t0) * 1000 / len(DEVICES))
        for name, pages in depths.items():
            t0 = time.process_time()
            for _ in range(loops):
                for selection, after in pages.items():
                    blocks.page(cur, selection, shape, after, 101)
            cut[name].append((time.process_time() - t0) * 1000 / (loops * len(pages)))
    db.close()
    cost = {name: statistics.median(r) for name, r in runs.items()}
    print(f"the page's query in one process (plan + fetch, {len(mix)} pages × {loops}, medians of {repeats}): "
          + ", ".join(f"{name} {cost[name]:.2f} ms of CPU" for name in ("join left out", "join forced"))
          + f"; left out / forced {cost['join left out'] / cost['join forced']:.2f}")
    print("by depth in the day (join left out): " + ", ".join(
        f"{name} {cost[name]:.2f} ms ({cost[name] / cost['first page']:.2f} x the first)" for name in depths))
    print("cut from resident blocks (dashboards.research.blocks): " + ", ".join(
        f"{name} {statistics.median(cut[name]):.3f} ms ({cost[name] / statistics.median(cut[name]):.0f} x less "
        "than the store)" for name in depths))
    print(f"reading a block (one device, one day, {86_400} records, PM2.5) from the store: "
          f"{statistics.median(reads):.1f} ms of CPU, the price of {statistics.median(reads) / cost['first page']:.1f} "
          "first pages from the store")


def wait_for_server(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_mode(mode: str, store: Path, token: str, pepper: str, per_client: int, repeats: int,
             profile: Path | None) -> dict[str, dict[str, float]]:
    """Start a server (one of :data:`MODES`) on ``store``, measure its routes, print a row each, stop it."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(store), str(port), pepper, mode]
    if profile is not None:
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    server = subprocess.Popen(command)
    results: dict[str, dict[str, float]] = {}
    try:
        wait_for_server(port, server)
        one: dict[str, object] = {"campaign": "bench", "device": "kit-03", "quantity": "pm2_5", **DAY}
        cases: dict[str, list[bytes]] = {"floor": [request_bytes(port, "/flags", {}, token)],
                                         "readings": readings_mix(port, token)}
        if mode == "store":
            cases["aggregate"] = [request_bytes(port, "/readings/aggregate", one | {"window": "1h"}, token)]
        for name, requests in cases.items():
            r = results[name] = measure(port, server.pid, requests, per_client, repeats,
                                        LIVE_MIN_S if mode == "live" else 0.0)
            print(f"{mode:<7} {name:<10} {r['seq']:7.1f} ms {r['p50']:5.0f} ms {r['p99']:5.0f} ms "
                  f"{r['p99'] / results['floor']['p99']:8.1f}× {r['rate']:7.0f} "
                  f"{r['server_cpu']:7.2f} ms {r['client_cpu']:7.2f} ms", flush=True)
    finally:
        server.send_signal(signal.SIGINT)  # uvicorn stops cleanly (and cProfile writes its file)
        server.wait(30)
    if profile is not None:
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each server's main thread")
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all", help="which servers to run")
    parser.add_argument("--query", action="store_true", help="only the page's query in this process (no server)")
    parser.add_argument("--serve", nargs=4, metavar=("STORE", "PORT", "PEPPER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2], args.serve[3])
        return
    per_client = 8 if args.quick else 40
    pepper = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="qsec-bench-api-") as tmp:
        store = Path(tmp) / "qsec.duckdb"
        token = make_store(store, pepper)
        if args.query:
            query_cost(store, max(args.repeats, 5))
            return
        print(f"{CLIENTS} clients × {per_client} requests, medians of {args.repeats} repeats; "
              f"sequential = one client; CPU = per request; readings = a mix of 60 requests")
        print(f"{'server':<7} {'route':<10} {'sequential':>10} {'p50':>8} {'p99':>8} {'p99/floor':>9} {'req/s':>7} "
              f"{'server CPU':>10} {'client CPU':>10}")
        results = {}
        for mode in MODES if args.mode == "all" else (args.mode,):
            copy = Path(tmp) / f"{mode}.duckdb"
            shutil.copy(store, copy)
            profile = Path(tmp) / f"{mode}.prof" if args.profile else None
            results[mode] = run_mode(mode, copy, token, pepper, per_client, args.repeats, profile)
        for mode, r in results.items():
            p99 = r["readings"]["p99"]
            verdict = f"goal p99 < {GOAL_MS:.0f} ms {'met' if p99 < GOAL_MS else 'NOT met'}"
            if mode == "store":  # not a way qsec serves a day it has read: the price of a day read for the first time
                verdict = f"the reference without blocks or page cache ({verdict})"
            print(f"{mode}: readings p99 {p99:.0f} ms, {p99 / r['floor']['p99']:.1f}× the floor's; {verdict}")
        if "live" in results and "cached" in results:
            live, cached = results["live"]["readings"], results["cached"]["readings"]
            print(f"live / cached readings: p99 {live['p99'] / cached['p99']:.2f}×, "
                  f"server CPU a request {live['server_cpu'] / cached['server_cpu']:.2f}×")
        cores = os.cpu_count() or 1
        for mode in ("store", "blocks"):
            if mode not in results:
                continue
            r = results[mode]["readings"]
            print(f"closed-loop bound (Little's law), {mode}: {CLIENTS} clients / {r['rate']:.0f} req/s = "
                  f"{CLIENTS / r['rate'] * 1000:.0f} ms mean latency; the goal needs {CLIENTS / GOAL_MS * 1000:.0f} "
                  f"req/s or more, i.e. at most {cores} cores × {GOAL_MS / CLIENTS:.1f} ms = "
                  f"{cores * GOAL_MS / CLIENTS:.1f} ms of CPU a request, server and clients together "
                  f"(now {r['server_cpu'] + r['client_cpu']:.1f} ms)")

if __name__ == "__main__":
    main()
