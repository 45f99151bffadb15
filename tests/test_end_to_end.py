"""Kits -> bridges -> real Mosquitto -> ingest -> DuckDB: exactly the records the sensors produced."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge, BridgeSettings
from firmware_bridge.simulator import start_kits
from harness import wait_until
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SENSOR_OF = {"pms5003": "plantower-pms5003", "mhz19": "winsen-mhz19", "nmea": "nmea-gps"}


def _key(sensor: str, values: dict[str, float]) -> tuple:
    return (sensor, tuple(sorted((k, round(float(v), 6)) for k, v in values.items())))


def test_every_frame_the_kits_sent_is_stored_exactly_once(tmp_path: Path, broker: tuple[str, int], unique: str) -> None:
    campaign = f"e2e{unique}"
    store = Store(tmp_path / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"e2e-ingest-{unique}",
                                                share_group=f"e2e{unique}", campaign_filter=campaign, batch_ms=50))
    worker.start()
    kits = start_kits(2, tmp_path / "devices", seed=11, rate_hz=5.0, paused=True)
    bridges = [Bridge(BridgeSettings(device=f"{k.name}-{unique}", campaign=campaign, spool_dir=tmp_path / "spool" / k.name,
                                     sensors=k.paths, host=broker[0], port=broker[1], poll_interval_s=0.2,
                                     batch_ms=100, resend_after_s=3.0)).start() for k in kits]
    try:
        wait_until(lambda: all(r.opened.is_set() for b in bridges for r in b.readers), what="bridges to open their ports")
        for k in kits:
            k.resume()
        time.sleep(4.0)
        for k in kits:
            k.pause()  # no new frame; the ports stay open so the bridges read what was sent
        time.sleep(1.0)
        for b in bridges:
            for r in b.readers:
                r.stop()
        wait_until(lambda: all(b.spool.stats().pending_records == 0 for b in bridges), timeout=20,
                   what="every bridge's spool to be settled by ingest's feedback")

        cur = store.cursor()
        for kit, b in zip(kits, bridges):
            sent = Counter(_key(SENSOR_OF[e.sensor], e.values) for e in kit.emissions)
            assert sum(sent.values()) == len(kit.emissions) > 20
            cols = store.quantity_columns
            rows = cur.execute(f"SELECT sensor, {', '.join(cols)} FROM readings WHERE device = ?", [b.s.device]).fetchall()
            stored = Counter(_key(r[0], {c: v for c, v in zip(cols, r[1:]) if v is not None}) for r in rows)
            assert stored == sent, f"{kit.name}: stored differs from what the sensors sent"
            (n, distinct) = cur.execute("SELECT count(*), count(DISTINCT (boot, seq)) FROM readings WHERE device = ?",
                                        [b.s.device]).fetchone()
            assert n == distinct == len(kit.emissions)
            assert store.gaps(b.s.device) == []
        assert cur.execute("SELECT count(*) FROM deadletter").fetchone()[0] == 0
        print(f"\nend-to-end: {sum(len(k.emissions) for k in kits)} frames sent, "
              f"{worker.metrics['records_stored']} stored, {worker.metrics['records_duplicate']} duplicates absorbed")
    finally:
        for b in bridges:
            b.stop()
        for k in kits:
            k.stop()
        worker.stop()
        store.close()
