"""Bridge -> broker -> ingest while everything is killed: 0 lost, 0 doubled.

A generator inside a real bridge process streams records with a ground-truth
log; the test kill -9s the bridge, the ingest process and the broker several
times each, and cuts the network (the broker stopped for a few seconds).  At the
end the store must hold exactly the generator's records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fault_bridge import value
from harness import require, wait_until
from qsec import contract
from qsec.broker import BrokerConfig, MosquittoProcess, find_mosquitto, free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SUPPORT = Path(__file__).resolve().parent / "_support"
RATE = 100  # records/s


class Pipeline:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.broker = MosquittoProcess(tmp / "broker", BrokerConfig(port=self.port, autosave_interval_s=1))
        self.bridge: subprocess.Popen | None = None
        self.ingest: subprocess.Popen | None = None
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
        self.kills: dict[str, int] = defaultdict(int)

    def start_broker(self) -> None:
        self.broker = MosquittoProcess(self.tmp / "broker", self.broker.config).start()

    def start_bridge(self, seconds: float) -> None:
        self.bridge = subprocess.Popen(
            [sys.executable, str(SUPPORT / "fault_bridge.py"), "kit-f", "faults", "127.0.0.1", str(self.port),
             str(self.tmp / "spool"), str(self.tmp / "truth.log"), str(RATE), str(seconds)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "bridge.err", "ab"))

    def start_ingest(self) -> None:
        self.ingest = subprocess.Popen(
            [sys.executable, "-m", "qsec", "ingest", "--data-dir", str(self.tmp / "data"), "--broker",
             f"127.0.0.1:{self.port}", "--client-id", "fault-ingest"],
            stdout=subprocess.DEVNULL, stderr=open(self.tmp / "ingest.err", "ab"))

    def kill(self, what: str) -> None:
        self.kills[what] += 1
        if what == "broker":
            self.broker.kill()
        else:
            proc = getattr(self, what)
            proc.send_signal(signal.SIGKILL)
            proc.wait()


class StatusWatch:
    """The kit's retained status, as any MQTT client sees it."""

    def __init__(self, port: int):
        self.last: dict = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(contract.topic("faults", "kit-f", "status"))
        self.client.on_message = lambda c, u, m: self.last.update(json.loads(m.payload))
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def drained(self) -> bool:
        return self.last.get("state") == "online" and (self.last.get("spool") or {}).get("pending") == 0


def _truth(path: Path) -> dict[str, int]:
    """boot -> last seq the generator logged."""
    last: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            boot, seq = line.split()
            last[boot] = max(last.get(boot, -1), int(seq))
    return last


def test_the_store_holds_exactly_the_generated_records_after_kills_of_every_part(tmp_path: Path) -> None:
    require(find_mosquitto() is not None, "no mosquitto binary (apt-get install mosquitto)")
    p = Pipeline(tmp_path)
    p.start_broker()
    p.start_ingest()
    generate_s = 24.0
    p.start_bridge(generate_s)
    watch = StatusWatch(p.port)
    t0 = time.monotonic()
    plan = ["bridge", "ingest", "broker", "network", "bridge", "ingest", "broker", "network"]
    try:
        for step in plan:
            time.sleep(2.0)
            if step == "network":  # the broker goes away for 3 s (clean stop: a network cut for every client)
                p.kills["network"] += 1
                p.broker.stop()
                time.sleep(3.0)
                p.start_broker()
            elif step == "broker":
                p.kill("broker")
                time.sleep(0.5)
                p.start_broker()
            else:
                p.kill(step)
                time.sleep(0.3)
                p.start_ingest() if step == "ingest" else p.start_bridge(max(1.0, generate_s - (time.monotonic() - t0)))
        wait_until(lambda: time.monotonic() - t0 > generate_s + 1, timeout=60, interval=0.5, what="generation to end")
        wait_until(watch.drained, timeout=90, interval=0.5, what="the kit's spool to be settled by ingest")
    finally:
        watch.client.loop_stop()
        for proc in (p.bridge, p.ingest):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        p.broker.stop()

    truth = _truth(tmp_path / "truth.log")
    con = duckdb.connect(str(tmp_path / "data" / "qsec.duckdb"), read_only=True)
    rows = con.execute("SELECT boot, seq, pm2_5 FROM readings WHERE device = 'kit-f'").fetchall()
    (doubled,) = con.execute("SELECT count(*) - count(DISTINCT (device, boot, seq)) FROM readings").fetchone()
    (dead,) = con.execute("SELECT count(*) FROM deadletter").fetchone()
    con.close()
    stored: dict[str, set[int]] = defaultdict(set)
    for boot, seq, pm in rows:
        assert pm == value(boot, seq), f"record {boot}/{seq} stored with a value the generator did not produce"
        stored[boot].add(seq)
    lost = 0
    for boot, last in truth.items():
        # The log is written just after the durable append: a kill -9 between the two leaves one record
        # in the spool (and so in the store) that the log lacks.  Every logged record must be there.
        lost += len(set(range(last + 1)) - stored[boot])
        assert max(stored[boot]) in (last, last + 1), f"boot {boot}: stored up to {max(stored[boot])}, logged {last}"
        assert stored[boot] == set(range(max(stored[boot]) + 1)), f"boot {boot}: a hole in the stored seqs"
    assert set(stored) == set(truth)
    generated = sum(last + 1 for last in truth.values())
    print(f"\nfaults {dict(p.kills)}: generated {generated}, stored {len(rows)}, lost {lost}, doubled {doubled}, "
          f"dead letters {dead}, boots {len(truth)}")
    assert lost == 0 and doubled == 0 and dead == 0
    assert p.kills == {"bridge": 2, "ingest": 2, "broker": 2, "network": 2}
