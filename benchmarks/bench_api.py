"""Latency of the researcher API under 50 concurrent clients: a one-device, one-day query.

A real uvicorn server (a subprocess, so clients and server do not share a
GIL) serves a store of 5 kits × 1 day at 1 Hz (432,000 records).  Each
route is measured twice:

- **sequential**: one client, one request at a time: the server's own
  time per request (plus the loopback);
- **50 clients**: 50 concurrent keep-alive connections, each sending the
  same request again as soon as it has its answer (a closed loop, no
  think time): p50, p99 and the throughput.

The routes:

``readings``   ``GET /research/v1/readings`` — one device, one day, PM2.5,
               the first page of 100 records (keyset-paged)
``aggregate``  ``GET /research/v1/readings/aggregate`` — one device, one day,
               PM2.5 hourly means with coverage
``floor``      ``GET /research/v1/flags`` — no store access: the cost of
               HTTP, FastAPI and the token check, measured in the same run

The clients are plain asyncio HTTP/1.1 connections (about 0.5 ms of CPU a
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
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def serve(store: str, port: int, pepper: str) -> None:
    """Run in the server subprocess: the researcher router on uvicorn."""
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
    app.include_router(research_router(new_cursor, settings))
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


async def _client(port: int, request: bytes, count: int, latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection sending ``request`` ``count`` times, one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
    finally:
        writer.close()


def load(port: int, request: bytes, clients: int, per_client: int) -> tuple[np.ndarray, float]:
    """Latencies [ms] of ``clients`` concurrent connections, and the throughput [requests/s]."""
    latencies: list[float] = []

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(port, request, per_client, latencies) for _ in range(clients)))
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


def measure(port: int, pid: int, request: bytes, per_client: int, repeats: int) -> dict[str, float]:
    """Medians over ``repeats`` of the sequential p50 and the 50-client p50, p99, throughput and CPU costs."""
    runs: list[dict[str, float]] = []
    load(port, request, CLIENTS, 2)  # warm-up: connections, caches, pools
    for _ in range(repeats):
        seq, _ = load(port, request, 1, max(20, per_client * 2))
        server0, client0 = cpu_s(pid), own_cpu_s()
        ms, rate = load(port, request, CLIENTS, per_client)
        server, client = (cpu_s(pid) - server0) * 1000 / len(ms), (own_cpu_s() - client0) * 1000 / len(ms)
        runs.append({"seq": float(np.percentile(seq, 50)), "p50": float(np.percentile(ms, 50)),
                     "p99": float(np.percentile(ms, 99)), "rate": rate, "server_cpu": server, "client_cpu": client})
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def request_bytes(port: int, path: str, params: dict[str, object], token: str) -> bytes:
    target = f"/research/v1{path}" + (f"?{urlencode(params)}" if params else "")
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\n\r\n").encode()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve", nargs=3, metavar=("STORE", "PORT", "PEPPER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    per_client = 8 if args.quick else 40
    pepper = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="qsec-bench-api-") as tmp:
        store = Path(tmp) / "qsec.duckdb"
        token = make_store(store, pepper)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(store), str(port), pepper])
        try:
            wait_for_server(port, server)
            one: dict[str, object] = {"campaign": "bench", "device": "kit-03", "quantity": "pm2_5", **DAY}
            cases: dict[str, tuple[str, dict[str, object]]] = {
                "floor": ("/flags", {}), "readings": ("/readings", one | {"limit": 100}),
                "aggregate": ("/readings/aggregate", one | {"window": "1h"})}
            print(f"{CLIENTS} clients × {per_client} requests, medians of {args.repeats} repeats; "
                  f"sequential = one client; CPU = per request")
            print(f"{'route':<10} {'sequential':>10} {'p50':>8} {'p99':>8} {'p99/floor':>9} {'req/s':>7} "
                  f"{'server CPU':>10} {'client CPU':>10}")
            results = {}
            for name, (path, params) in cases.items():
                r = results[name] = measure(port, server.pid, request_bytes(port, path, params, token), per_client,
                                            args.repeats)
                print(f"{name:<10} {r['seq']:7.1f} ms {r['p50']:5.0f} ms {r['p99']:5.0f} ms "
                      f"{r['p99'] / results['floor']['p99']:8.1f}× {r['rate']:7.0f} "
                      f"{r['server_cpu']:7.2f} ms {r['client_cpu']:7.2f} ms")
            r = results["readings"]
            print(f"goal p99 < {GOAL_MS:.0f} ms for readings: {'met' if r['p99'] < GOAL_MS else 'NOT met'}")
            print(f"closed-loop bound (Little's law): {CLIENTS} clients / {r['rate']:.0f} req/s = "
                  f"{CLIENTS / r['rate'] * 1000:.0f} ms mean latency; the goal needs "
                  f"{CLIENTS / GOAL_MS * 1000:.0f} req/s or more, i.e. at most "
                  f"{os.cpu_count() or 1} cores × {GOAL_MS / CLIENTS:.1f} ms = "
                  f"{(os.cpu_count() or 1) * GOAL_MS / CLIENTS:.1f} ms of CPU a request, server and clients together "
                  f"(now {r['server_cpu'] + r['client_cpu']:.1f} ms)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
