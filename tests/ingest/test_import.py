"""`qsec import`: files into a real DuckDB store, once; spool exports against a real broker and ingest."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from harness import wait_until
from paho.mqtt import publish

from firmware_bridge.spool import Spool
from ingest.importer import detect_format, import_file, open_store, publish_spool
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract
from qsec.cli import main

SAMPLES = Path(__file__).parent / "samples"
SDS = SAMPLES / "2026-03-01_sds011_sensor_12345.csv"


def _spool_export(tmp_path: Path, device: str, campaign: str, n: int = 120, bad: bool = False) -> tuple[Path, Spool]:
    """A kit's spool holding ``n`` records of boot ``b1`` (and, with ``bad``, one refused), exported to a file."""
    t0 = int(time.time() * 1000) - (n + 600) * 1000
    recs = [contract.Record(s, t0 + s * 1000, "plantower-pms5003", {"pm2_5": 5.0 + s % 7, "pm10": 9.0})
            for s in range(n)]
    if bad:
        recs.append(contract.Record(n, t0 + n * 1000, "winsen-mhz19", {"co2": 90_000.0}))
    spool = Spool(tmp_path / "spool", fsync="never")
    spool.append_many("b1", recs)
    out = tmp_path / f"{device}-export.jsonl"
    spool.export(out, device, campaign)
    return out, spool


def _subscribed(worker: IngestWorker, broker: tuple[str, int], campaign: str) -> IngestWorker:
    """The worker once its subscription is active (``start()`` returns at CONNACK, before the SUBACK)."""
    probe = contract.encode_batch(contract.Batch("probe", "probe", ()))
    wait_until(lambda: publish.single(contract.topic(campaign, "probe"), probe, hostname=broker[0], port=broker[1])
               or worker.metrics["messages_received"], timeout=30, interval=0.3, what="ingest to subscribe")
    return worker


def _count(store: Store) -> int:
    return store.cursor().execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize(("sample", "fmt"), [
    ("2026-03-01_sds011_sensor_12345.csv", "sensor-community"), ("smartcitizen_sd_card.csv", "smartcitizen"),
    ("qsec_export.csv", "qsec-csv")])
def test_the_format_is_told_from_the_first_lines(sample: str, fmt: str) -> None:
    assert detect_format(SAMPLES / sample) == fmt


def test_a_spool_export_is_recognised_and_an_unknown_file_is_named(tmp_path: Path) -> None:
    path, spool = _spool_export(tmp_path, "kit-07", "lyon-2026", n=3)
    spool.close()
    assert detect_format(path) == "spool"
    with pytest.raises(ValueError, match="pass --format"):
        detect_format(SAMPLES / "tasmota_sds011_bme280.json")


def test_importing_a_file_twice_stores_nothing_twice_and_adds_no_dead_letter(tmp_path: Path) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    seen: list[int] = []
    try:
        first = import_file(store, SDS, campaign="lyon-2026", batch_rows=2, progress=seen.append)
        again = import_file(store, SDS, campaign="lyon-2026")
        dead = store.cursor().execute("SELECT count(*) FROM deadletter").fetchone()[0]  # type: ignore[index]
        registered = store.cursor().execute("SELECT device, campaign FROM devices").fetchall()
        assert (first.stored, first.duplicates, dict(first.dead)) == (6, 0, {"out_of_range": 1, "bad_schema": 1})
        assert (again.stored, again.duplicates, again.dead_total, again.dead_known) == (0, 6, 0, 2)
        assert _count(store) == 6 and dead == 2 and sum(seen) == SDS.stat().st_size
        assert registered == [("sensor-community-12345", "lyon-2026")]
    finally:
        store.close()


def test_a_csv_archive_needs_a_campaign(tmp_path: Path) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    try:
        with pytest.raises(ValueError, match="--campaign"):
            import_file(store, SDS)
    finally:
        store.close()


def test_a_spool_export_keeps_its_identity_and_dead_letters_under_the_device_topic(tmp_path: Path) -> None:
    path, spool = _spool_export(tmp_path, "kit-07", "lyon-2026", n=1100, bad=True)
    spool.close()
    store = Store(tmp_path / "qsec.duckdb")
    try:
        counts = import_file(store, path)
        keys = store.cursor().execute("SELECT DISTINCT campaign, device, boot FROM readings").fetchall()
        dead = store.cursor().execute("SELECT topic, device, boot, seq, reason FROM deadletter").fetchall()
    finally:
        store.close()
    assert (counts.format, counts.stored, dict(counts.dead)) == ("spool", 1100, {"out_of_range": 1})
    assert keys == [("lyon-2026", "kit-07", "b1")]
    assert dead == [("qsec/v1/lyon-2026/kit-07/readings", "kit-07", "b1", 1100, "out_of_range")]


@pytest.mark.broker
def test_a_spool_export_imported_then_uploaded_over_mqtt_is_stored_once(tmp_path: Path, broker: tuple[str, int],
                                                                        unique: str) -> None:
    campaign, device = f"c{unique}", "kit-07"
    path, spool = _spool_export(tmp_path, device, campaign)
    store = Store(tmp_path / "qsec.duckdb")
    counts = import_file(store, path)
    assert (counts.stored, counts.duplicates) == (120, 0)
    worker = _subscribed(IngestWorker(store, IngestSettings(
        host=broker[0], port=broker[1], client_id=f"imp-{unique}", share_group=f"g{unique}", campaign_filter=campaign,
        batch_ms=50)).start(), broker, campaign)
    try:
        pending = spool.pending()  # the kit comes back online and uploads what its spool still holds
        batches = [contract.Batch(device, "b1", tuple(r for _, r in pending[i:i + 50])) for i in range(0, 120, 50)]
        publish.multiple([{"topic": contract.topic(campaign, device), "payload": contract.encode_batch(b), "qos": 1}
                          for b in batches], hostname=broker[0], port=broker[1], protocol=mqtt.MQTTv5)
        wait_until(lambda: worker.metrics["records_duplicate"] == 120, timeout=30, what="ingest to see 120 repeats")
        assert _count(store) == 120 and worker.metrics["records_stored"] == 0
    finally:
        worker.stop()
        spool.close()
        store.close()


@pytest.mark.broker
def test_via_broker_hands_a_spool_export_to_the_running_ingest_and_waits_for_its_answer(
        tmp_path: Path, broker: tuple[str, int], unique: str) -> None:
    campaign = f"c{unique}"
    path, spool = _spool_export(tmp_path, "kit-08", campaign, n=60, bad=True)
    spool.close()
    store = Store(tmp_path / "qsec.duckdb")
    worker = _subscribed(IngestWorker(store, IngestSettings(
        host=broker[0], port=broker[1], client_id=f"via-{unique}", share_group=f"g{unique}", campaign_filter=campaign,
        batch_ms=50)).start(), broker, campaign)
    try:
        result = CliRunner().invoke(main, ["import", str(path), "--via-broker", f"{broker[0]}:{broker[1]}",
                                           "--timeout", "30"])
        assert result.exit_code == 0, result.output
        assert "61 records in 1 messages; ingest confirmed 61: 60 stored, 0 duplicates, refused out_of_range 1" \
            in result.output
        again = publish_spool(path, *broker, timeout=30)
        assert (again.complete, again.accepted, again.duplicates) == (True, 0, 60)
        assert _count(store) == 60
    finally:
        worker.stop()
        store.close()


def test_via_broker_takes_only_spool_exports() -> None:
    result = CliRunner().invoke(main, ["import", str(SDS), "--via-broker", "127.0.0.1:1", "--campaign", "c1"])
    assert result.exit_code == 2 and "only spool exports go through the broker" in result.output


def test_qsec_import_prints_what_it_stored_and_refused_by_reason(tmp_path: Path) -> None:
    broken = tmp_path / "notes.txt"
    broken.write_text("hello\n")
    result = CliRunner().invoke(main, ["import", str(SDS), str(SAMPLES / "qsec_export.csv"), str(broken),
                                       "--campaign", "lyon-2026", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1  # one file could not be imported; the others were
    assert f"{SDS} (sensor-community): 6 stored, 0 duplicates, 2 dead-lettered (" in result.output
    assert "6 values set aside on purpose (column location 6)" in result.output  # metadata, counted, not stored
    assert "(qsec-csv): 3 stored, 0 duplicates, 1 dead-lettered (out_of_range 1)" in result.output
    assert "notes.txt: not imported: cannot tell the format" in result.output
    assert "total: 9 stored, 0 duplicates, 3 dead-lettered, 1 files not imported" in result.output
    store = open_store(tmp_path)
    try:
        assert _count(store) == 9
    finally:
        store.close()


def test_qsec_import_refuses_clearly_while_another_process_holds_the_store(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from ingest.store import Store; s = Store(sys.argv[1]); "
                                "print('ready', flush=True); sys.stdin.read()"), str(tmp_path / "qsec.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(main, ["import", str(SDS), "--campaign", "c1", "--data-dir", str(tmp_path)])
    finally:
        holder.communicate("", timeout=30)
    assert result.exit_code == 1
    assert "in use by another process" in result.output and "qsec serve" in result.output
    assert "--via-broker" in result.output
