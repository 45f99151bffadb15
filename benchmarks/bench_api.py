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
               of 30: 5 devices × 3 quantity sets (PM2.5, PM10, both) ×
               (the first page, the page after it through ``cursor``)
``aggregate``  ``GET /research/v1/readings/aggregate`` — one device, one day,
               PM2.5 hourly means with coverage
``floor``      ``GET /research/v1/flags`` — no store access: the cost of
               HTTP, FastAPI and the token check, measured in the same run

The server runs twice on copies of the store:

``cold``       without a change feed, so without the page cache: every
               request reads the store;
``cached``     with the page cache (``research_router(..., versions=…)``;
               nothing writes during the run, so after the warm-up every
               page of the mix is answered from memory): the steady state
               of clients asking again for pages that have not changed.

The clients are plain asyncio HTTP/1.1 connections (about 0.15 ms of CPU a
request, where an ``httpx.AsyncClient`` took ~7 ms: with it the benchmark
measured its own clients), in this process; the server's CPU time per
request is read from ``/proc/<pid>/stat`` (Linux).  In a closed loop the
latency is the number of clients over the throughput (Little's law), so
the CPU time a request costs the server bounds the p50 and the p99: the
last lines print that bound.

Goal: p99 < 100 ms for ``readings`` with 50 clients.  Medians of the
repeats, and each p99 as a ratio to the floor's p99 of the same run.

    python benchmarks/bench_api.py            # 3 repeats, 40 requests per client
    python benchmarks/bench_api.py --quick    # 3 repeats, 8 requests per client
    python benchmarks/bench_api.py --profile  # also a cProfile of each server (its main thread)
    python benchmarks/bench_api.py --quick --mode cached   # one server only

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
import time
from collections.abc import Sequence
from pathlib import Path
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


def serve(store: str, port: int, pepper: str, cached: bool) -> None:
    """Run in the server subprocess: the researcher router on uvicorn, with the page cache if ``cached``."""
    import uvicorn
    from fastapi import FastAPI

    from dashboards.research import ResearchSettings, research_router

    db = duckdb.connect(store)
    db.execute("SET TimeZone = 'UTC'")

    def new_cursor() -> duckdb.DuckDBPyConnection:  # as ingest.store.Store.new_cursor
        cur = db.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    app = FastAPI(docs_url=None, redoc_url=None)
    settings = ResearchSettings(token_pepper=SecretStr(pepper), token_rate=10_000, token_burst=100_000)
    feed: dict[str, object] = {}
    if cached:  # nothing writes the store while it serves: the change feed is never bumped, and exactly so
        from dashboards.research import DataVersions

        feed["versions"] = DataVersions()
    app.include_router(research_router(new_cursor, settings, **feed))  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


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


async def _client(port: int, requests: Sequence[bytes], count: int, latencies: list[float], seed: int) -> None:
    """One keep-alive HTTP/1.1 connection sending ``count`` requests drawn from ``requests``, one at a time."""
    draw = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            request = draw.choice(requests)
            t0 = time.perf_counter()
            await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()


def load(port: int, requests: Sequence[bytes], clients: int, per_client: int) -> tuple[np.ndarray, float]:
    """Latencies [ms] of ``clients`` concurrent connections, and the throughput [requests/s]."""
    latencies: list[float] = []
    seed = random.randrange(2**32)

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(port, requests, per_client, latencies, seed + i) for i in range(clients)))
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


def measure(port: int, pid: int, requests: Sequence[bytes], per_client: int, repeats: int) -> dict[str, float]:
    """Medians over ``repeats`` of the sequential p50 and the 50-client p50, p99, throughput and CPU costs."""
    runs: list[dict[str, float]] = []
    for request in requests:  # warm-up: every request of the mix once (the cached server's steady state) ...
        load(port, [request], 1, 1)
    load(port, requests, CLIENTS, 2)  # ... then connections, pools
    for _ in range(repeats):
        seq, _ = load(port, requests, 1, max(20, per_client * 2))
        server0, client0 = cpu_s(pid), own_cpu_s()
        ms, rate = load(port, requests, CLIENTS, per_client)
        server, client = (cpu_s(pid) - server0) * 1000 / len(ms), (own_cpu_s() - client0) * 1000 / len(ms)
        runs.append({"seq": float(np.percentile(seq, 50)), "p50": float(np.percentile(ms, 50)),
                     "p99": float(np.percentile(ms, 99)), "rate": rate, "server_cpu": server, "client_cpu": client})
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def request_bytes(port: int, path: str, params: dict[str, object], token: str) -> bytes:
    target = f"/research/v1{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\n\r\n").encode()


def readings_mix(port: int, token: str) -> list[bytes]:
    """The 30 readings requests: 5 devices × 3 quantity sets × (first page, the page after it)."""

    async def first_pages(requests: list[bytes]) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return [await exchange(reader, writer, r) for r in requests]
        finally:
            writer.close()

    params = [{"campaign": "bench", "device": device, "quantity": quantities, **DAY, "limit": 100}
              for device in DEVICES for quantities in (["pm2_5"], ["pm10"], ["pm2_5", "pm10"])]
    firsts = [request_bytes(port, "/readings", p, token) for p in params]
    cursors = [json.loads(body)["next_cursor"] for body in asyncio.run(first_pages(firsts))]
    return firsts + [request_bytes(port, "/readings", p | {"cursor": c}, token) for p, c in zip(params, cursors,
                                                                                                 strict=True)]


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
    """Start a server (``cold`` or ``cached``) on ``store``, measure its routes, print a row each, stop it."""
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
        if mode == "cold":
            cases["aggregate"] = [request_bytes(port, "/readings/aggregate", one | {"window": "1h"}, token)]
        for name, requests in cases.items():
            r = results[name] = measure(port, server.pid, requests, per_client, repeats)
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
    parser.add_argument("--mode", choices=("cold", "cached", "both"), default="both", help="which servers to run")
    parser.add_argument("--serve", nargs=4, metavar=("STORE", "PORT", "PEPPER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2], args.serve[3] == "cached")
        return
    per_client = 8 if args.quick else 40
    pepper = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="qsec-bench-api-") as tmp:
        store = Path(tmp) / "qsec.duckdb"
        token = make_store(store, pepper)
        print(f"{CLIENTS} clients × {per_client} requests, medians of {args.repeats} repeats; "
              f"sequential = one client; CPU = per request; readings = a mix of 30 requests")
        print(f"{'server':<7} {'route':<10} {'sequential':>10} {'p50':>8} {'p99':>8} {'p99/floor':>9} {'req/s':>7} "
              f"{'server CPU':>10} {'client CPU':>10}")
        results = {}
        for mode in ("cold", "cached") if args.mode == "both" else (args.mode,):
            copy = Path(tmp) / f"{mode}.duckdb"
            shutil.copy(store, copy)
            profile = Path(tmp) / f"{mode}.prof" if args.profile else None
            results[mode] = run_mode(mode, copy, token, pepper, per_client, args.repeats, profile)
        for mode, r in results.items():
            p99 = r["readings"]["p99"]
            print(f"{mode}: readings p99 {p99:.0f} ms, {p99 / r['floor']['p99']:.1f}× the floor's; "
                  f"goal p99 < {GOAL_MS:.0f} ms {'met' if p99 < GOAL_MS else 'NOT met'}")
        if "cold" not in results:
            return
        r = results["cold"]["readings"]
        cores = os.cpu_count() or 1
        print(f"closed-loop bound (Little's law), cold: {CLIENTS} clients / {r['rate']:.0f} req/s = "
              f"{CLIENTS / r['rate'] * 1000:.0f} ms mean latency; the goal needs "
              f"{CLIENTS / GOAL_MS * 1000:.0f} req/s or more, i.e. at most {cores} cores × {GOAL_MS / CLIENTS:.1f} ms "
              f"= {cores * GOAL_MS / CLIENTS:.1f} ms of CPU a request, server and clients together "
              f"(now {r['server_cpu'] + r['client_cpu']:.1f} ms)")


if __name__ == "__main__":
    main()
