"""Faults a kit meets in the field, through real pseudo-terminals, a real Mosquitto and real ingest.

Each test compares the DuckDB store with the simulator's ground truth
(:attr:`Kit.emissions`) or with what the bridge's spool recorded, as
tests/test_end_to_end.py does.  Kits start paused and resume once the readers
have opened their ports (pyserial empties a port's input when it opens it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from harness import wait_until
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.bridge import Bridge, BridgeSettings
from firmware_bridge.simulator import ROUTES, Kit
from firmware_bridge.spool import Spool
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract
from qsec.broker import MosquittoProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SENSOR_OF = {"pms5003": "plantower-pms5003", "mhz19": "winsen-mhz19", "nmea": "nmea-gps"}
BROKER_DOWN_S = 30.0
ROOT = Path(__file__).resolve().parents[2]


def _key(sensor: str, values: dict[str, float]) -> tuple:
    return (sensor, tuple(sorted((k, round(float(v), 6)) for k, v in values.items())))


def _sent(kit: Kit, sensor: str | None = None) -> Counter:
    return Counter(_key(SENSOR_OF[e.sensor], e.values) for e in list(kit.emissions)
                   if sensor is None or e.sensor == sensor)


def _stored(store: Store, device: str, sensor: str | None = None) -> Counter:
    cols = store.quantity_columns
    rows = store.cursor().execute(f"SELECT sensor, {', '.join(cols)} FROM readings WHERE device = ?",
                                  [device]).fetchall()
    return Counter(_key(r[0], {c: v for c, v in zip(cols, r[1:]) if v is not None}) for r in rows
                   if sensor is None or r[0] == SENSOR_OF[sensor])


def _seqs(store: Store, device: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for boot, seq in store.cursor().execute("SELECT boot, seq FROM readings WHERE device = ?", [device]).fetchall():
        out.setdefault(boot, set()).add(seq)
    return out


def _assert_each_once(store: Store, device: str) -> int:
    n, distinct = store.cursor().execute(
        "SELECT count(*), count(DISTINCT (boot, seq)) FROM readings WHERE device = ?", [device]).fetchone()
    assert n == distinct, f"{device}: {n - distinct} records stored twice"
    return int(n)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "qsec.duckdb")
    yield s
    s.close()


def _worker(store: Store, port: int, unique: str, campaign: str) -> IngestWorker:
    return IngestWorker(store, IngestSettings(host="127.0.0.1", port=port, client_id=f"faults-ingest-{unique}",
                                              share_group=None, campaign_filter=campaign, batch_ms=50)).start()


def _settings(tmp_path: Path, kit: Kit, port: int, unique: str, **kw: object) -> BridgeSettings:
    opts: dict = {"device": f"{kit.name}-{unique}", "campaign": f"faults{unique}", "spool_dir": tmp_path / "spool",
                  "sensors": kit.paths, "host": "127.0.0.1", "port": port, "poll_interval_s": 0.2, "batch_ms": 100,
                  "resend_after_s": 3.0, "reconnect_max_s": 1, "reopen_max_s": 0.5, "status_every_s": 1.0}
    opts.update(kw)
    return BridgeSettings(**opts)


def _kit(tmp_path: Path, seed: int, rate_hz: float = 5.0) -> Kit:
    return Kit("kit01", next(iter(ROUTES)), seed, tmp_path / "dev", rate_hz=rate_hz)


def _drain(kit: Kit, bridge: Bridge, missing_ok: int = 0) -> None:
    """Pause the kit, let the bridge read what was sent, stop its readers."""
    kit.pause()
    wait_until(lambda: bridge.counters["observations"] >= len(kit.emissions) - missing_ok, timeout=10,
               what="the bridge to read every frame the kit sent")
    for r in bridge.readers:
        r.stop()


def test_an_unplugged_sensor_is_reopened_and_nothing_is_doubled(tmp_path: Path, own_broker: MosquittoProcess,
                                                                store: Store, unique: str) -> None:
    kit = _kit(tmp_path, 3).start(paused=True)
    worker = _worker(store, own_broker.port, unique, f"faults{unique}")
    bridge = Bridge(_settings(tmp_path, kit, own_broker.port, unique)).start()
    pms = next(r for r in bridge.readers if r.protocol == "pms5003")
    try:
        wait_until(lambda: all(r.opened.is_set() for r in bridge.readers), what="the readers to open their ports")
        kit.resume()
        wait_until(lambda: pms.stats.observations >= 5, what="PMS5003 readings")
        kit.unplug("pms5003")  # mid-stream: the adapter is pulled out
        wait_until(lambda: not pms.opened.is_set() and pms.stats.reopens >= 2, what="the reader to notice and retry")
        kit.pause()  # plugged back while quiet: pyserial empties the input of a port it opens
        kit.plug("pms5003")
        wait_until(pms.opened.is_set, timeout=10, what="the reader to reopen the re-pointed link")
        before = pms.stats.observations
        kit.resume()
        wait_until(lambda: pms.stats.observations >= before + 5, what="PMS5003 readings after the replug")
        _drain(kit, bridge, missing_ok=1)
        wait_until(lambda: bridge.spool.stats().pending_records == 0, timeout=20, what="ingest to settle the spool")

        device = bridge.s.device
        n = _assert_each_once(store, device)
        assert store.gaps(device) == []
        for sensor in ("mhz19", "nmea"):
            assert _stored(store, device, sensor) == _sent(kit, sensor), f"{sensor} differs from what was sent"
        sent_pms, stored_pms = _sent(kit, "pms5003"), _stored(store, device, "pms5003")
        assert not stored_pms - sent_pms, "a PMS5003 reading was stored that the sensor did not send (or twice)"
        lost = sum((sent_pms - stored_pms).values())
        assert lost <= 1, f"{lost} PMS5003 frames lost around the unplug"
        assert pms.stats.opens == 2 and pms.stats.reopens >= 2
        print(f"\nunplug: {n} records stored once; PMS5003 reopened after {pms.stats.reopens} failed attempts, "
              f"{lost} frame lost in the pulled adapter")
    finally:
        bridge.stop()
        kit.stop()
        worker.stop()


def test_every_record_is_stored_once_after_the_broker_was_down_for_30_s(tmp_path: Path, own_broker: MosquittoProcess,
                                                                        store: Store, unique: str) -> None:
    kit = _kit(tmp_path, 5, rate_hz=2.0).start(paused=True)
    campaign = f"faults{unique}"
    worker = _worker(store, own_broker.port, unique, campaign)
    bridge = Bridge(_settings(tmp_path, kit, own_broker.port, unique)).start()
    try:
        wait_until(lambda: all(r.opened.is_set() for r in bridge.readers), what="the readers to open their ports")
        kit.resume()
        wait_until(lambda: store.counts()["readings"] >= 8, what="the first records in the store")
        worker.stop()
        own_broker.stop()
        down_at = time.monotonic()
        wait_until(lambda: not bridge.connected, what="the bridge to notice the broker is gone")
        pending_before = bridge.spool.stats().pending_records
        time.sleep(max(0.0, BROKER_DOWN_S - (time.monotonic() - down_at)))  # the outage itself
        assert bridge.spool.stats().pending_records > pending_before + 30, "the sensors went on talking into the spool"
        own_broker.start()  # same port, same data folder
        worker = _worker(store, own_broker.port, unique, campaign)
        wait_until(lambda: bridge.connected, timeout=10, what="the bridge to reconnect")
        _drain(kit, bridge)
        wait_until(lambda: bridge.spool.stats().pending_records == 0, timeout=20, what="ingest to settle the spool")

        device = bridge.s.device
        n = _assert_each_once(store, device)
        assert _stored(store, device) == _sent(kit), "the store differs from what the sensors sent"
        assert store.gaps(device) == []
        print(f"\nbroker down {BROKER_DOWN_S:.0f} s: {len(kit.emissions)} frames sent, {n} stored once; "
              f"{bridge.counters['disconnects']} disconnect, {bridge.outbox.resent} records resent")
    finally:
        bridge.stop()
        kit.stop()
        worker.stop()


def _write_config(path: Path, kit: Kit, port: int, device: str, campaign: str, spool: Path) -> Path:
    sensors = "".join(f'\n[[sensors]]\nprotocol = "{p}"\nport = "{link}"\ninterval = 0.2\n'
                      for p, link in kit.paths.items())
    path.write_text(f'device = "{device}"\ncampaign = "{campaign}"\n\n[broker]\nport = {port}\nreconnect_max_s = 1\n\n'
                    f'[spool]\ndir = "{spool}"\n\n[publish]\nbatch_ms = 100\nresend_after_s = 2\n'
                    f'status_every_s = 1\n\n[reader]\nreopen_max_s = 0.5\n{sensors}')
    return path


def _spool_seqs(spool_dir: Path) -> dict[str, set[int]]:
    with Spool(spool_dir) as spool:
        out: dict[str, set[int]] = {}
        for boot, rec in spool.pending():
            out.setdefault(boot, set()).add(rec.seq)
        return out


def test_every_spooled_record_is_stored_once_after_a_kill_9(tmp_path: Path, own_broker: MosquittoProcess,
                                                            store: Store, unique: str) -> None:
    kit = _kit(tmp_path, 7, rate_hz=10.0).start()
    device, campaign, spool_dir = f"kit01-{unique}", f"faults{unique}", tmp_path / "spool"
    config = _write_config(tmp_path / "kit.toml", kit, own_broker.port, device, campaign, spool_dir)
    cmd = [sys.executable, "-m", "qsec", "bridge", "run", "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = _worker(store, own_broker.port, unique, campaign)
    procs: list[subprocess.Popen] = []
    try:
        with open(tmp_path / "bridge-1.log", "wb") as log1:
            procs.append(subprocess.Popen(cmd, stdout=log1, stderr=log1, env=env, cwd=tmp_path))
        wait_until(lambda: store.counts()["readings"] >= 40, timeout=20, what="the first bridge to deliver records")
        os.kill(procs[0].pid, signal.SIGKILL)  # mid-stream: reading, spooling and publishing
        procs[0].wait(10)

        stored_then = _seqs(store, device)
        pending = _spool_seqs(spool_dir)
        (boot1,) = set(stored_then) | set(pending)
        recorded1 = stored_then.get(boot1, set()) | pending.get(boot1, set())
        assert recorded1 == set(range(max(recorded1) + 1)), "the spool kept every record the killed bridge read"

        with open(tmp_path / "bridge-2.log", "wb") as log2:
            procs.append(subprocess.Popen(cmd, stdout=log2, stderr=log2, env=env, cwd=tmp_path))
        wait_until(lambda: _seqs(store, device).get(boot1, set()) >= recorded1, timeout=30,
                   what="the restarted bridge to deliver what the killed one left in the spool")
        wait_until(lambda: len(min(_seqs(store, device).values(), key=len, default=())) >= 20 and
                   len(_seqs(store, device)) == 2, timeout=15, what="records of the second boot")
        kit.pause()
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(15) == 0

        seqs = _seqs(store, device)
        boot2 = (set(seqs) - {boot1}).pop()
        left = _spool_seqs(spool_dir)  # what the stopped bridge had not had confirmed yet
        recorded2 = seqs[boot2] | left.get(boot2, set())
        assert seqs[boot1] == recorded1, "boot 1: the store holds exactly what the spool recorded"
        assert recorded2 == set(range(max(recorded2) + 1))
        assert not left.get(boot1), "boot 1 is settled in full"
        n = _assert_each_once(store, device)
        assert not _stored(store, device) - _sent(kit), "a stored value the sensors never sent"
        print(f"\nkill -9: boot 1 spooled {len(recorded1)} records ({len(pending.get(boot1, ()))} unconfirmed at the "
              f"kill), all stored once; boot 2 {len(seqs[boot2])} stored + {len(left.get(boot2, ()))} still spooled; "
              f"{n} rows, {len(kit.emissions)} frames sent by the kit")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        kit.stop()
        worker.stop()


def _retained_status(port: int, campaign: str, device: str, timeout: float = 3.0) -> dict | None:
    """The retained status message as a new subscriber receives it, or None."""
    got: list[dict] = []
    done = threading.Event()

    def on_message(client, userdata, msg) -> None:  # noqa: ANN001
        if msg.retain:
            got.append(json.loads(msg.payload))
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe(contract.topic(campaign, device, "status"), qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0] if got else None


def test_a_full_spool_counts_its_drops_in_the_retained_status(tmp_path: Path, own_broker: MosquittoProcess,
                                                              unique: str) -> None:
    own_broker.stop()  # unreachable from the start
    kit = _kit(tmp_path, 9, rate_hz=20.0).start()
    bridge = Bridge(_settings(tmp_path, kit, own_broker.port, unique, spool_max_bytes=4096)).start()
    try:
        wait_until(lambda: bridge.spool.stats().dropped_full > 0, timeout=15, what="the tiny spool to overflow")
        own_broker.start()
        wait_until(lambda: bridge.connected, timeout=10, what="the bridge to reach the broker")
        status = wait_until(lambda: (s := _retained_status(own_broker.port, bridge.s.campaign, bridge.s.device))
                            and s["spool"]["dropped_full"] > 0 and s, timeout=15,
                            what="a retained status message showing the drops")
        assert status["state"] == "online" and status["boot"] == bridge.boot
        assert 0 < status["spool"]["dropped_full"] <= bridge.spool.stats().dropped_full
        assert status["spool"]["appended_total"] >= status["spool"]["dropped_full"] + status["spool"]["pending"]
        print(f"\nspool full: {status['spool']['dropped_full']} records dropped (oldest first) and reported; "
              f"{status['spool']['pending']} kept in {bridge.s.spool_max_bytes} bytes")
    finally:
        bridge.stop()
        kit.stop()
