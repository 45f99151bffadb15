"""Latency of the researcher API under 50 concurrent clients: a one-device, one-day query.

A real uvicorn server (a subprocess, so clients and server do not share a
GIL) serves a store of 5 kits × 1 day at 1 Hz (432,000 records).  50
asyncio clients (httpx) each send the same kind of request in a loop:

``readings``   ``GET /research/v1/readings`` — one device, one day, PM2.5,
               the first page of 100 records (keyset-paged)
``aggregate``  ``GET /research/v1/readings/aggregate`` — one device, one day,
               PM2.5 hourly means with coverage
``floor``      ``GET /research/v1/flags`` — no store access: the cost of
               HTTP, FastAPI and the token check, measured in the same run

p50 and p99 latencies (goal: p99 < 100 ms for ``readings``) and the ratio
of each p99 to the floor's.

    python benchmarks/bench_api.py            # 40 requests per client
    python benchmarks/bench_api.py --quick    # 8 requests per client
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.research.auth import create_token  # noqa: E402
from ingest.registry import create_campaign, ensure_registry_schema  # noqa: E402
from ingest.store import create_schema  # noqa: E402

CLIENTS = 50
DAY = {"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z"}


def serve(store: str, port: int, pepper: str) -> None:
    """Run in the server subprocess: the researcher router on uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    from dashboards.research import ResearchSettings, research_router

    db = duckdb.connect(store)
    db.execute("SET TimeZone = 'UTC'")
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(db.cursor, ResearchSettings(token_pepper=pepper, token_rate=10_000,
                                                                   token_burst=100_000)))
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


async def load(url: str, params: dict[str, object], token: str, per_client: int) -> np.ndarray:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60) as client:
        async def one_client() -> None:
            for _ in range(per_client):
                t0 = time.perf_counter()
                answer = await client.get(url, params=params)
                latencies.append(time.perf_counter() - t0)
                answer.raise_for_status()

        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return np.array(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
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
        base = f"http://127.0.0.1:{port}/research/v1"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/flags", headers={"Authorization": f"Bearer {token}"}, timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            one = {"campaign": "bench", "device": "kit-03", "quantity": "pm2_5"} | DAY
            cases = {"floor": ("/flags", {}), "readings": ("/readings", one | {"limit": 100}),
                     "aggregate": ("/readings/aggregate", one | {"window": "1h"})}
            p99 = {}
            for name, (path, params) in cases.items():
                asyncio.run(load(base + path, params, token, 2))  # warm-up
                ms = asyncio.run(load(base + path, params, token, per_client))
                p99[name] = np.percentile(ms, 99)
                print(f"{name:<10} {len(ms):5d} requests, {CLIENTS} clients: p50 {np.percentile(ms, 50):7.1f} ms  "
                      f"p99 {p99[name]:7.1f} ms  ({p99[name] / p99['floor']:.1f}× the floor's p99)")
            print(f"goal p99 < 100 ms for readings: {'met' if p99['readings'] < 100 else 'NOT met'}")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
