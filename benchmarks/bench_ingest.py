"""Sustained ingest rate through a real Mosquitto, against raw paho on the same broker, in one run.

    python benchmarks/bench_ingest.py            # 200k records, 3 repeats
    python benchmarks/bench_ingest.py --quick    # 40k records, 1 repeat

What is measured (QoS 1, JSON batches of 50 records, loopback, a private
mosquitto with qsec's configuration).  The publisher always runs in a process
of its own, as kits publish from elsewhere; it starts sending when told, and
the clock runs from then until the last record has arrived (raw) or is
committed (qsec):

- reference: a paho publisher -> mosquitto -> a paho subscriber that only
  counts records (parses nothing): the transport's own rate;
- raw, 2 subscribers: the same with two paho subscribers sharing one MQTT 5
  shared subscription (``$share/…``): how far the transport itself scales
  with a second consumer on this machine;
- qsec, 1 worker: publisher -> mosquitto -> IngestWorker (validate, store
  idempotently in DuckDB, acknowledge after commit, feedback), decoding as
  ``qsec ingest`` does by default on this machine (in a thread on one
  core, else in half the cores' worth of processes, 1 to 4:
  ``ingest.decode.default_processes``);
- qsec, 2 workers: two IngestWorkers in one shared subscription, writing to
  the same store, decoding the same way;
- qsec, 1 worker decoding the other way (one decoding process on 1-2 cores,
  in a thread beyond), for comparison;
- the store alone: the same records, decoded beforehand, written by the
  store's idempotent write with nothing else running: the ceiling of any
  ingest into this table.

Prints medians and the ratios qsec/raw and 2 workers / 1 worker, then the CPU
time per record of each part (publisher, broker, ingest or subscriber,
decoding processes) and the cores each run kept busy: a run that keeps all
the machine's cores busy is bound by the machine, and a second worker (or a
second raw subscriber) can only share the same cores.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_args import parse  # noqa: E402

from ingest.decode import default_processes  # noqa: E402
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


def _publisher(port: int, topic: str, msgs: list[bytes], go) -> None:  # noqa: ANN001
    go.wait()
    publish_all(port, topic, msgs)


class Publisher:
    """A publishing process, started and connected-ready before the clock starts."""

    def __init__(self, port: int, topic: str, msgs: list[bytes]):
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.proc = ctx.Process(target=_publisher, args=(port, topic, msgs, self.go), daemon=True)
        self.proc.start()

    def fire(self) -> float:
        time.sleep(0.5)  # the child's imports are done
        t = time.perf_counter()
        self.go.set()
        return t

    def join(self) -> None:
        self.proc.join(120)


class CpuMeter:
    """CPU time [µs per record] of each part of a run: publisher, broker, this process, decoding processes (psutil)."""

    def __init__(self, pub: Publisher, broker_pid: int):
        import psutil

        me = psutil.Process()
        decoders = [p for p in me.children() if p.pid != pub.proc.pid and "spawn_main" in " ".join(p.cmdline())]
        self.parts = {"publisher": [psutil.Process(pub.proc.pid)], "mosquitto": [psutil.Process(broker_pid)],
                      "ingest / subscriber": [me], "decoding processes": decoders}
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        import psutil

        out = {}
        for part, procs in self.parts.items():
            total = 0.0
            for p in procs:
                try:
                    c = p.cpu_times()
                    total += c.user + c.system
                except psutil.Error:
                    pass
            out[part] = total
        return out

    def per_record(self, n_records: int) -> dict[str, float]:
        end = self._now()
        return {k: 1e6 * (end[k] - self.start[k]) / n_records for k in end}


def raw_rate(port: int, msgs: list[bytes], n_records: int, broker_pid: int,
             subscribers: int = 1) -> tuple[float, dict[str, float]]:
    """The transport's own rate: paho subscribers that only count, sharing ``$share/rawbench/...`` when several."""
    done = threading.Event()
    got = [0]
    lock = threading.Lock()

    def on_message(c, u, m):  # noqa: ANN001
        with lock:
            got[0] += BATCH
            if got[0] >= n_records:
                done.set()

    subs = []
    for _ in range(subscribers):
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.on_message = on_message
        sub.connect("127.0.0.1", port)
        sub.subscribe("bench/raw" if subscribers == 1 else "$share/rawbench/bench/raw", qos=1)
        sub.loop_start()
        subs.append(sub)
    pub = Publisher(port, "bench/raw", msgs)
    meter = CpuMeter(pub, broker_pid)
    t = pub.fire()
    done.wait(300)
    dt = time.perf_counter() - t
    cpu = meter.per_record(n_records)
    pub.join()
    for sub in subs:
        sub.loop_stop()
        sub.disconnect()
    return n_records / dt, cpu


def qsec_rate(port: int, msgs: list[bytes], n_records: int, workers: int, tag: str, decode_processes: int,
              broker_pid: int) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "bench.duckdb")
        ws = [IngestWorker(store, IngestSettings(port=port, client_id=f"bench-{tag}-{i}", share_group=f"bench{tag}",
                                                 campaign_filter=f"bench{tag}", batch_ms=100,
                                                 decode_processes=decode_processes)).start()
              for i in range(workers)]
        pub = Publisher(port, contract.topic(f"bench{tag}", "kit-b"), msgs)
        meter = CpuMeter(pub, broker_pid)
        t = pub.fire()
        cur = store.new_cursor()
        while cur.execute("SELECT count(*) FROM readings").fetchone()[0] < n_records:
            time.sleep(0.02)
        dt = time.perf_counter() - t
        cpu = meter.per_record(n_records)
        pub.join()
        for w in ws:
            w.stop()
        store.close()
    return n_records / dt, cpu


def store_rate(msgs: list[bytes], n_records: int, tag: str) -> float:
    """The store alone: the same records, decoded beforehand into groups of 100 messages, written by write_arrow."""
    from ingest import decode

    now_ms = int(time.time() * 1000)
    topic = contract.topic(f"bench{tag}", "kit-b")
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "bench.duckdb")
        tables = [decode.decode([(topic, m) for m in msgs[i:i + 100]], now_ms=now_ms, not_before={},
                                limits=contract.LIMITS, quantity_columns=store.quantity_columns).table
                  for i in range(0, len(msgs), 100)]
        t = time.perf_counter()
        for table in tables:
            store.write_arrow(table, [], received_ms=now_ms)
        dt = time.perf_counter() - t
        store.close()
    return n_records / dt


def main() -> None:
    a = parse(__doc__, "records", 200_000, 40_000)
    with tempfile.TemporaryDirectory() as d:
        broker = MosquittoProcess(Path(d), BrokerConfig(port=free_port(), max_inflight_messages=100)).start()
        try:
            res: dict[str, list[float]] = {"raw": [], "raw-2": [], "qsec-1": [], "qsec-2": [], "qsec-1-other": [],
                                           "store": []}
            dp = default_processes()
            other = 1 if dp == 0 else 0
            cpu: dict[str, list[dict[str, float]]] = {k: [] for k in ("raw", "raw-2", "qsec-1", "qsec-2",
                                                                      "qsec-1-other")}
            pid = broker.proc.pid
            for r in range(a.repeats):
                msgs = payloads(a.records, "kit-b", f"boot{r}")
                for key, run in (("raw", lambda: raw_rate(broker.port, msgs, a.records, pid)),
                                 ("raw-2", lambda: raw_rate(broker.port, msgs, a.records, pid, subscribers=2)),
                                 ("qsec-1", lambda: qsec_rate(broker.port, msgs, a.records, 1, f"a{r}", dp, pid)),
                                 ("qsec-2", lambda: qsec_rate(broker.port, msgs, a.records, 2, f"b{r}", dp, pid)),
                                 ("qsec-1-other", lambda: qsec_rate(broker.port, msgs, a.records, 1, f"c{r}", other,
                                                                    pid))):
                    rec_s, used = run()
                    res[key].append(rec_s)
                    if key in cpu:
                        cpu[key].append(used)
                res["store"].append(store_rate(msgs, a.records, f"d{r}"))
                print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} rec/s" for k, v in res.items()), flush=True)
        finally:
            broker.stop()
    med = {k: statistics.median(v) for k, v in res.items()}
    dp = default_processes()
    way = {0: "decoding in a thread", 1: "1 decoding process"}
    raw = med["raw"]
    print(f"\n{a.records:,} records, QoS 1, batches of {BATCH}, medians of {a.repeats}, {os.cpu_count()} cores")
    rows = [
        ("raw paho -> mosquitto -> paho (reference)", raw, ""),
        ("raw, 2 paho subscribers sharing the subscription", med["raw-2"], f", {med['raw-2'] / raw:.2f} x 1 subscriber"),
        (f"qsec ingest, 1 worker ({way.get(dp, f'{dp} decoding processes')})", med["qsec-1"], ""),
        ("qsec ingest, 2 workers, one store", med["qsec-2"], f", {med['qsec-2'] / med['qsec-1']:.2f} x 1 worker"),
        (f"qsec ingest, 1 worker ({way[1 if dp == 0 else 0]})", med["qsec-1-other"], ""),
        ("the store alone (write_arrow, no MQTT): the ceiling", med["store"], ""),
    ]
    for label, rate, extra in rows:
        print(f"  {label:<55} {rate:>10,.0f} records/s   {rate / raw:.2f} x raw{extra}")
    # CPU time per record times records per second = cores kept busy: where it reaches the machine's cores, a run
    # is bound by the machine (publisher, broker and ingest share it), and no second worker can add throughput.
    print(f"\nCPU per record [µs] by part, and the cores each run kept busy (medians; this machine has "
          f"{os.cpu_count()} cores)")
    keys = ("raw", "raw-2", "qsec-1", "qsec-2", "qsec-1-other")
    print(f"  {'':<22} " + " | ".join(f"{k:>12}" for k in keys))
    for part in list(cpu["raw"][0]) + ["total"]:
        cells = [statistics.median(sum(c.values()) if part == "total" else c[part] for c in cpu[k]) for k in keys]
        print(f"  {part:<22} " + " | ".join(f"{v:12.2f}" for v in cells))
    busy = [statistics.median(sum(c.values()) for c in cpu[k]) * med[k] / 1e6 for k in keys]
    print(f"  {'cores busy':<22} " + " | ".join(f"{v:12.2f}" for v in busy))


if __name__ == "__main__":
    main()
