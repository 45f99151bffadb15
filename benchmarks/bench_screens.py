"""Ingest → screen latency with 50 screens connected, against a real uvicorn server.

50 Server-Sent Events clients (httpx on one asyncio loop) read ``/api/live``
from a uvicorn server running the dashboard; a thread publishes events
through the :class:`~dashboards.live.LiveHub` as ingest does after each
commit.  Latency is the time from ``hub.publish`` to the moment a client has
parsed the event, for every (event, client) pair.  The reference, measured
in the same run, is the hub alone: 50 in-process subscribers, no HTTP, no
JSON.  Reports the median over repeats of p50, p99 and max, and the ratio
SSE / hub.

    python benchmarks/bench_screens.py            # 3 repeats of 10 s at 20 events/s
    python benchmarks/bench_screens.py --quick    # 1 repeat of 4 s

Everything runs in one process on 127.0.0.1 (server thread, publisher
thread, client loop), as ``qsec up`` runs ingest and the dashboard in one
process; the clients' parsing competes for the same interpreter, so the
figures are an upper bound of what a screen on another machine sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.app import create_app
from dashboards.live import LiveHub
from dashboards.serve_thread import start_server
from ingest.store import create_schema

CLIENTS = 50
GOAL_P99_S = 1.0


def store_app(hub: LiveHub, folder: Path, campaign: str = "bench") -> object:
    """The dashboard over an empty store file, as a fresh ``qsec up`` has."""
    con = duckdb.connect(str(folder / "qsec.duckdb"))
    create_schema(con)
    return create_app(lambda: con.cursor(), hub, campaign=campaign)


def event(seq: int) -> dict[str, object]:
    return {"campaign": "bench", "device": f"kit{seq % 3:02d}", "sensor": "plantower-pms5003",
            "t": time.time_ns() // 1_000_000, "values": {"pm2_5": float(seq), "pm10": 1.5 * seq}}


def publisher(hub: LiveHub, sent: dict[int, float], n: int, rate_hz: float, start: threading.Event) -> None:
    """Publish ``n`` events at ``rate_hz`` from this thread, noting each publish time."""
    start.wait()
    period = 1.0 / rate_hz
    begin = time.perf_counter()
    for seq in range(n):
        delay = begin + seq * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[seq] = time.perf_counter()
        hub.publish(event(seq))


async def sse_client(url: str, n: int, got: list[float], sent: dict[int, float], ready: asyncio.Event,
                     counter: list[int], clients: int) -> None:
    async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", f"{url}/api/live") as response:
        lines = response.aiter_lines()
        await lines.__anext__()  # "retry:" is sent once the client is subscribed
        counter[0] += 1
        if counter[0] == clients:
            ready.set()
        seen = 0
        async for line in lines:
            if line.startswith("data: ") and '"values"' in line:
                seq = int(json.loads(line[6:])["values"]["pm2_5"])
                got.append(time.perf_counter() - sent[seq])
                seen += 1
                if seen == n:
                    return


def run_sse(n: int, rate_hz: float, clients: int = CLIENTS) -> np.ndarray:
    """Latencies [s] of ``n`` events to ``clients`` SSE clients."""
    hub = LiveHub(maxsize=1024)
    with tempfile.TemporaryDirectory(prefix="qsec-bench-screens-") as folder:
        served = start_server(store_app(hub, Path(folder)))
        sent: dict[int, float] = {}
        go = threading.Event()
        thread = threading.Thread(target=publisher, args=(hub, sent, n, rate_hz, go), daemon=True)
        thread.start()
        got: list[float] = []

        async def main() -> None:
            ready = asyncio.Event()
            counter = [0]
            tasks = [asyncio.create_task(sse_client(served.url, n, got, sent, ready, counter, clients))
                     for _ in range(clients)]
            await asyncio.wait_for(ready.wait(), 30)
            go.set()
            await asyncio.wait_for(asyncio.gather(*tasks), n / rate_hz + 60)

        try:
            asyncio.run(main())
        finally:
            thread.join(timeout=30)
            hub.close()
            served.stop()
    if len(got) != n * clients:
        raise RuntimeError(f"{n * clients - len(got)} of {n * clients} deliveries missing (dropped: {hub.dropped})")
    return np.array(got)


def run_hub(n: int, rate_hz: float, clients: int = CLIENTS) -> np.ndarray:
    """The reference: latencies [s] of the same events to in-process hub subscribers."""
    hub = LiveHub(maxsize=1024)
    sent: dict[int, float] = {}
    go = threading.Event()
    got: list[float] = []

    async def reader(sub: object) -> None:
        for _ in range(n):
            item = await sub.get(timeout=60)  # type: ignore[attr-defined]
            got.append(time.perf_counter() - sent[int(item["values"]["pm2_5"])])

    async def main() -> None:
        subs = [hub.subscription() for _ in range(clients)]
        thread = threading.Thread(target=publisher, args=(hub, sent, n, rate_hz, go), daemon=True)
        thread.start()
        go.set()
        await asyncio.gather(*(reader(s) for s in subs))
        thread.join()

    asyncio.run(main())
    return np.array(got)


def summary(latencies: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="events published per second")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()
    repeats, seconds = (1, 4.0) if args.quick else (args.repeats, args.seconds)
    n = int(seconds * args.rate)
    runs: dict[str, list[dict[str, float]]] = {"sse": [], "hub": []}
    for _ in range(repeats):
        runs["hub"].append(summary(run_hub(n, args.rate, args.clients)))
        runs["sse"].append(summary(run_sse(n, args.rate, args.clients)))
    print(f"{args.clients} screens, {n} events at {args.rate:g}/s, {repeats} repeat(s); medians over repeats [ms]")
    medians = {name: {key: statistics.median(r[key] for r in rs) for key in ("p50", "p99", "max")}
               for name, rs in runs.items()}
    for name, label in (("hub", "hub only (reference)"), ("sse", "uvicorn + SSE")):
        m = medians[name]
        print(f"  {label:22s} p50 {m['p50'] * 1e3:7.2f}   p99 {m['p99'] * 1e3:7.2f}   max {m['max'] * 1e3:7.2f}")
    ratio = medians["sse"]["p99"] / medians["hub"]["p99"]
    print(f"  ratio SSE / hub at p99: {ratio:.1f}x;  goal p99 < {GOAL_P99_S * 1e3:.0f} ms: "
          f"{'met' if medians['sse']['p99'] < GOAL_P99_S else 'NOT met'}")
    return 0 if medians["sse"]["p99"] < GOAL_P99_S else 1


if __name__ == "__main__":
    sys.exit(main())
