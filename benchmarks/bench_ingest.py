"""Sustained ingest rate through a real Mosquitto, against raw paho on the same broker, in one run.

    python benchmarks/bench_ingest.py            # 200k records, 3 repeats
    python benchmarks/bench_ingest.py --quick    # 40k records, 1 repeat

What is measured (QoS 1, JSON batches of 50 records, loopback, a private
mosquitto with qsec's configuration):

- reference: a paho publisher -> mosquitto -> a paho subscriber that only
  counts records (parses nothing): the transport's own rate;
- qsec, 1 worker: publisher -> mosquitto -> IngestWorker (validate, store
  idempotently in DuckDB, acknowledge after commit, feedback) until every
  record is committed;
- qsec, 2 workers: the same with two workers in one shared subscription.

Prints medians and the ratios qsec/raw and 2 workers / 1 worker.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.store import Store  # noqa: E402
from ingest.worker import IngestSettings, IngestWorker  # noqa: E402
from qsec import contract  # noqa: E402
from qsec.broker import BrokerConfig, MosquittoProcess, free_port  # noqa: E402

BATCH = 50


def payloads(n_records: int, device: str, boot: str) -> list[bytes]:
    t0 = int(time.time() * 1000) - n_records * 10
    out = []
    for start in range(0, n_records, BATCH):
        recs = tuple(contract.Record(s, t0 + s * 10, "plantower-pms5003",
                                     {"pm1": 3.0 + s % 7, "pm2_5": 5.0 + s % 11, "pm10": 8.0 + s % 13})
                     for s in range(start, min(start + BATCH, n_records)))
        out.append(contract.encode_batch(contract.Batch(device, boot, recs)))
    return out


def publish_all(port: int, topic: str, msgs: list[bytes]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    last = None
    for m in msgs:
        last = pub.publish(topic, m, qos=1)
    if last is not None:
        last.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def raw_rate(port: int, msgs: list[bytes], n_records: int) -> float:
    done = threading.Event()
    got = [0]

    def on_message(c, u, m):  # noqa: ANN001
        got[0] += BATCH
        if got[0] >= n_records:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("bench/raw", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    t = time.perf_counter()
    publish_all(port, "bench/raw", msgs)
    done.wait(300)
    dt = time.perf_counter() - t
    sub.loop_stop()
    sub.disconnect()
    return n_records / dt


def qsec_rate(port: int, msgs: list[bytes], n_records: int, workers: int, tag: str) -> float:
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "bench.duckdb")
        ws = [IngestWorker(store, IngestSettings(port=port, client_id=f"bench-{tag}-{i}", share_group=f"bench{tag}",
                                                 campaign_filter=f"bench{tag}", batch_ms=100)).start()
              for i in range(workers)]
        time.sleep(0.3)
        t = time.perf_counter()
        publish_all(port, contract.topic(f"bench{tag}", "kit-b"), msgs)
        cur = store.new_cursor()
        while cur.execute("SELECT count(*) FROM readings").fetchone()[0] < n_records:
            time.sleep(0.02)
        dt = time.perf_counter() - t
        for w in ws:
            w.stop()
        store.close()
    return n_records / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.records, a.repeats = 40_000, 1
    with tempfile.TemporaryDirectory() as d:
        broker = MosquittoProcess(Path(d), BrokerConfig(port=free_port(), max_inflight_messages=100)).start()
        try:
            res: dict[str, list[float]] = {"raw": [], "qsec-1": [], "qsec-2": []}
            for r in range(a.repeats):
                msgs = payloads(a.records, "kit-b", f"boot{r}")
                res["raw"].append(raw_rate(broker.port, msgs, a.records))
                res["qsec-1"].append(qsec_rate(broker.port, msgs, a.records, 1, f"a{r}"))
                res["qsec-2"].append(qsec_rate(broker.port, msgs, a.records, 2, f"b{r}"))
                print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} rec/s" for k, v in res.items()), flush=True)
        finally:
            broker.stop()
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\n{a.records:,} records, QoS 1, batches of {BATCH}, medians of {a.repeats}")
    print(f"  raw paho -> mosquitto -> paho   {med['raw']:>10,.0f} records/s")
    print(f"  qsec ingest, 1 worker           {med['qsec-1']:>10,.0f} records/s   {med['qsec-1'] / med['raw']:.2f} x raw")
    print(f"  qsec ingest, 2 workers          {med['qsec-2']:>10,.0f} records/s   {med['qsec-2'] / med['raw']:.2f} x raw, "
          f"{med['qsec-2'] / med['qsec-1']:.2f} x 1 worker")


if __name__ == "__main__":
    main()
