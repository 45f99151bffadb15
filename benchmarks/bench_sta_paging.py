"""SensorThings Observations: a deep page by ``$skiptoken`` (keyset) against ``$skip`` (offset) and the first page.

A store of one public campaign (``--records`` PM records of 3 devices at
1 Hz, two quantities each) is served by the researcher router; each page
is asked through Starlette's test client (the whole application, no
network).  The reference, measured in the same run, is the first page.
The deep page is the one starting at 90 % of the observations, asked once
with ``$skip`` and once with the ``$skiptoken`` the page before it would
have given.  Reports the median time of each [ms] and its ratio to the
first page.

    python benchmarks/bench_sta_paging.py              # 300 000 records, 15 repeats
    python benchmarks/bench_sta_paging.py --quick      # 60 000 records, 5 repeats
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.research import ResearchSettings, research_router  # noqa: E402
from dashboards.research.sta import encode_token  # noqa: E402
from ingest import registry as reg  # noqa: E402
from ingest.store import create_schema  # noqa: E402

TOP = 100


def build(path: Path, records: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    create_schema(con)
    per = records // 3
    start = pd.Timestamp("2026-05-17 08:00:00")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "campaign": "bench", "device": np.repeat(["kit-1", "kit-2", "kit-3"], per), "boot": "b0",
        "seq": np.tile(np.arange(per, dtype="int64"), 3),
        "time": np.tile(start + pd.to_timedelta(np.arange(per), unit="s"), 3), "sensor": "plantower-pms5003",
        "flags": 0, "pm2_5": rng.integers(2, 40, 3 * per).astype(float),
        "pm10": rng.integers(4, 60, 3 * per).astype(float),
    })
    frame["received"] = frame["time"]
    con.register("incoming", frame)
    con.execute("INSERT INTO readings BY NAME SELECT * FROM incoming")
    con.unregister("incoming")
    reg.ensure_registry_schema(con)
    reg.create_campaign(con, "bench", title="Bench", public=True)
    return con


def timed(client: TestClient, params: dict[str, object], repeats: int) -> float:
    """Median time of one page [ms]."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        answer = client.get("/sta/v1.1/Observations", params=params)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200 and len(answer.json()["value"]) == TOP, answer.text[:200]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    records, repeats = (60_000, 5) if args.quick else (args.records, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        con = build(Path(folder) / "qsec.duckdb", records)
        app = FastAPI()
        app.include_router(research_router(con.cursor, ResearchSettings(token_pepper=secrets.token_urlsafe(32))))
        observations = 2 * 3 * (records // 3)
        deep = int(observations * 0.9)
        # The key of the observation before the deep page, in the order the API pages in.
        row = con.execute("""SELECT epoch_us(time), device, boot, seq, quantity FROM (UNPIVOT (SELECT * FROM readings)
                             ON pm2_5, pm10 INTO NAME quantity VALUE v) ORDER BY time, device, boot, seq, quantity
                             LIMIT 1 OFFSET ?""", [deep - 1]).fetchone()
        assert row is not None
        token = encode_token((int(row[0]), row[1], row[2], int(row[3]), row[4]))
        with TestClient(app) as client:
            timed(client, {"$top": TOP}, 2)  # warm the catalogue and the cursor pool
            first = timed(client, {"$top": TOP}, repeats)
            skip = timed(client, {"$top": TOP, "$skip": deep}, repeats)
            keyset = timed(client, {"$top": TOP, "$skiptoken": token}, repeats)
            same = client.get("/sta/v1.1/Observations", params={"$top": TOP, "$skip": deep}).json()["value"]
            keyed = client.get("/sta/v1.1/Observations", params={"$top": TOP, "$skiptoken": token}).json()["value"]
            assert same == keyed
        con.close()
    print(f"{records} records, {observations} observations; page of {TOP} at observation {deep}; "
          f"medians of {repeats}")
    print(f"first page (reference)   {first:8.1f} ms")
    print(f"deep page, $skip         {skip:8.1f} ms   ×{skip / first:.2f}")
    print(f"deep page, $skiptoken    {keyset:8.1f} ms   ×{keyset / first:.2f}")


if __name__ == "__main__":
    main()
