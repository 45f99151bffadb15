"""`qsec deadletter`: list, explain and reprocess after a fix, against a real DuckDB store (and a real ingest)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from harness import wait_until
from paho.mqtt import publish

from ingest import deadletter as dl
from ingest.adapters import senml
from ingest.mirror import store_dead_letters
from ingest.mirror.outbox import OutboxEntry
from ingest.store import DeadLetter, Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract
from qsec.cli import main

NOW = int(time.time() * 1000)
START = NOW - 3_600_000  # the campaign starts an hour ago
TOPIC = "qsec/v1/lyon-2026/kit-01/readings"


def _record(seq: int, t: int, **values: float) -> dict:
    return {"seq": seq, "t": t, "sensor": "winsen-mhz19", "values": values or {"co2": 420.0}}


def _refuse_as_ingest_does(store: Store, payload: bytes, limits: contract.Limits = contract.LIMITS) -> None:
    """Dead-letter a message exactly as ingest.worker does: whole, or record by record."""
    try:
        dec = contract.decode_batch(payload, device="kit-01", now_ms=NOW,
                                    not_before_ms=store.campaign_start_ms("lyon-2026"), limits=limits)
    except contract.ContractError as exc:
        store.write([], [DeadLetter(TOPIC, exc.reason, str(exc), payload.decode(), "kit-01")], received_ms=NOW)
        return
    rows = [("lyon-2026", "kit-01", dec.boot, r) for r in dec.records]
    dead = [DeadLetter(TOPIC, exc.reason, str(exc), json.dumps(raw), "kit-01", dec.boot, exc.seq)
            for raw, exc in dec.refused]
    store.write(rows, dead, received_ms=NOW)


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "qsec.duckdb")
    s.ensure_campaign("lyon-2026", starts_ms=START)
    yield s
    s.close()


def _batch(*records: dict, boot: str = "b1") -> bytes:
    return json.dumps({"v": 1, "device": "kit-01", "boot": boot, "records": list(records)}).encode()


def _count(store: Store) -> int:
    return store.cursor().execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]


def test_dead_letters_are_listed_newest_first_with_counts_by_reason(store: Store) -> None:
    _refuse_as_ingest_does(store, _batch(_record(0, START - 60_000), _record(1, NOW + 600_000), _record(2, NOW)))
    _refuse_as_ingest_does(store, b"{oops")
    assert dl.counts_by_reason(store) == {"bad_json": 1, "before_campaign": 1, "future_time": 1}
    rows = dl.list_dead_letters(store)
    assert [r.reason for r in rows] == ["bad_json", "future_time", "before_campaign"]
    assert [r.seq for r in dl.list_dead_letters(store, reasons=["future_time"])] == [1]


def test_explain_shows_the_raw_payload_the_reason_and_what_to_fix(store: Store) -> None:
    _refuse_as_ingest_does(store, _batch(_record(7, START - 60_000)))
    (row,) = dl.list_dead_letters(store)
    text = dl.explain(dl.get(store, row.id))
    assert f"dead letter {row.id} (open)" in text and f"topic {TOPIC}" in text
    assert "before_campaign" in text and "Fix the device clock, or correct the campaign's start date" in text
    assert '"seq": 7' in text and "Raw record:" in text
    with pytest.raises(KeyError, match="qsec deadletter list"):
        dl.get(store, 999)


def test_a_record_refused_before_the_campaign_is_stored_once_its_start_is_corrected(store: Store) -> None:
    _refuse_as_ingest_does(store, _batch(_record(0, START - 60_000), _record(1, START + 60_000)))
    assert _count(store) == 1
    store.cursor().execute("UPDATE campaigns SET starts = to_timestamp(?)::TIMESTAMP", [(START - 600_000) / 1000])
    report = dl.reprocess(store)
    assert (report.examined, report.reprocessed, report.stored) == (1, 1, 1)
    assert _count(store) == 2 and dl.counts_by_reason(store) == {}
    assert dl.counts_by_reason(store, "reprocessed") == {"before_campaign": 1}
    assert dl.reprocess(store).examined == 0  # nothing open any more


def test_what_still_fails_stays_open_with_its_reason_and_time_is_judged_at_arrival(store: Store) -> None:
    _refuse_as_ingest_does(store, _batch(_record(0, NOW + 600_000)))  # the device clock was 10 min ahead
    _refuse_as_ingest_does(store, b"{oops")
    report = dl.reprocess(store)
    assert (report.examined, report.reprocessed, dict(report.still_open)) == (2, 0, {"future_time": 1, "bad_json": 1})
    assert dl.counts_by_reason(store) == {"bad_json": 1, "future_time": 1}


def test_the_mirrors_dead_letters_are_explained_as_such_and_left_by_reprocess(store: Store) -> None:
    """A point InfluxDB refused is a stored record whose copy failed: nothing for reprocess to store again."""
    on_rejected = store_dead_letters(store)
    line = "readings,campaign=lyon-2026,device=kit-01 co2=\"high\" 1772366405000"
    on_rejected([OutboxEntry(3, line, "lyon-2026", "kit-01", "b1", 7)], "mirror_400",
                "field type conflict: input field \"co2\" is type string, already exists as type float")
    on_rejected([OutboxEntry(0, json.dumps({"seq": 8, "values": {"co2": "nan"}}), "lyon-2026", "kit-01", "b1", 8)],
                "mirror_unencodable", "co2 is NaN")
    _refuse_as_ingest_does(store, b"{oops")
    refused, unencodable = sorted((r for r in dl.list_dead_letters(store) if r.reason.startswith("mirror_")),
                                  key=lambda r: r.reason)
    assert "only its copy in InfluxDB was refused" in dl.explain(refused) and line in dl.explain(refused)
    assert "never sent to InfluxDB" in dl.explain(unencodable)
    report = dl.reprocess(store)
    assert (report.examined, dict(report.still_open)) == (1, {"bad_json": 1})  # only ingest's own refusal
    assert dl.counts_by_reason(store) == {"bad_json": 1, "mirror_400": 1, "mirror_unencodable": 1}


def test_a_whole_message_refused_under_a_stricter_limit_is_stored_once_the_limit_is_raised(store: Store) -> None:
    payload = _batch(*(_record(s, NOW - 1000 * s) for s in range(12)), _record(12, NOW, co2=-5.0))
    _refuse_as_ingest_does(store, payload, limits=contract.Limits(max_records=10))
    (row,) = dl.list_dead_letters(store)
    assert (row.reason, row.boot) == ("too_many_records", None)
    report = dl.reprocess(store)
    # the 12 good records are stored; the message stays open for its one impossible record
    assert (report.stored, report.reprocessed, dict(report.still_open)) == (12, 0, {"out_of_range": 1})
    (row,) = dl.list_dead_letters(store)
    assert row.reason == "out_of_range" and row.detail.startswith("1 of 13 records still refused")
    assert dl.reprocess(store).duplicates == 12  # running it again stores nothing twice


def test_an_unknown_senml_name_is_stored_complete_after_the_adapter_learns_it(store: Store,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pack = [{"bn": "kit-01/", "bt": NOW / 1000 - 60, "n": "pm2_5", "u": "ug/m3", "v": 6.5},
            {"n": "pm25_raw", "u": "ug/m3", "v": 7.1}, {"n": "pm10", "t": 1, "u": "ug/m3", "v": 9}]
    result = senml.decode(json.dumps(pack).encode(), source="senml/lyon-2026/kit-01", received_ms=NOW)
    store.write(result.rows, result.refused, received_ms=NOW)
    assert dl.counts_by_reason(store) == {"unknown_quantity": 1} and _count(store) == 1
    assert dl.reprocess(store).reprocessed == 0
    monkeypatch.setitem(senml.NAMES, "pm25_raw", "pm2_5_cf1")  # a new qsec release maps the name
    report = dl.reprocess(store, reasons=["unknown_quantity"])
    assert (report.reprocessed, report.stored) == (1, 1)
    row = store.cursor().execute("SELECT boot, pm2_5, pm2_5_cf1 FROM readings WHERE pm2_5 IS NOT NULL").fetchall()
    assert row == [("senml", 6.5, 7.1)]


def test_the_cli_lists_explains_and_reprocesses_by_reason_and_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    store.ensure_campaign("lyon-2026", starts_ms=START)
    _refuse_as_ingest_does(store, _batch(_record(0, START - 60_000), _record(1, START - 30_000)))
    _refuse_as_ingest_does(store, b"{oops")
    store.cursor().execute("UPDATE campaigns SET starts = to_timestamp(?)::TIMESTAMP", [(START - 600_000) / 1000])
    store.close()
    run = CliRunner().invoke
    listed = run(main, ["deadletter", "list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0 and "3 open dead letters by reason:" in listed.output
    assert "before_campaign    2" in listed.output and "bad_json           1" in listed.output
    explained = run(main, ["deadletter", "explain", "3", "--data-dir", str(tmp_path)])
    assert explained.exit_code == 0 and "bad_json" in explained.output and "{oops" in explained.output
    missing = run(main, ["deadletter", "explain", "99", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no dead letter with id 99" in missing.output
    one = run(main, ["deadletter", "reprocess", "--id", "1", "--data-dir", str(tmp_path)])
    assert "1 examined: 1 reprocessed (1 records stored, 0 already stored), 0 still open" in one.output
    rest = run(main, ["deadletter", "reprocess", "--reason", "before_campaign", "--reason", "bad_json",
                      "--data-dir", str(tmp_path)])
    assert "2 examined: 1 reprocessed (1 records stored, 0 already stored), 1 still open (bad_json 1)" in rest.output


@pytest.mark.broker
def test_a_record_ingest_refused_over_mqtt_is_reprocessed_after_the_fix(tmp_path: Path, broker: tuple[str, int],
                                                                      unique: str) -> None:
    campaign = f"c{unique}"
    store = Store(tmp_path / "qsec.duckdb")
    store.ensure_campaign(campaign, starts_ms=START)
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"dl-{unique}",
                                                share_group=f"g{unique}", campaign_filter=campaign, batch_ms=50)).start()
    probe = contract.encode_batch(contract.Batch("probe", "probe", ()))  # until ingest's subscription is active
    wait_until(lambda: publish.single(contract.topic(campaign, "probe"), probe, hostname=broker[0], port=broker[1])
               or worker.metrics["messages_received"], timeout=30, interval=0.3, what="ingest to subscribe")
    try:
        payload = _batch(_record(0, START - 120_000), _record(1, START + 1000))
        publish.single(contract.topic(campaign, "kit-01"), payload, qos=1, hostname=broker[0], port=broker[1],
                       protocol=mqtt.MQTTv5)
        wait_until(lambda: worker.metrics["deadletter"] == 1 and worker.metrics["records_stored"] == 1, timeout=30,
                   what="ingest to store one record and dead-letter the other")
    finally:
        worker.stop()
    try:
        store.cursor().execute("UPDATE campaigns SET starts = to_timestamp(?)::TIMESTAMP WHERE campaign = ?",
                               [(START - 600_000) / 1000, campaign])
        report = dl.reprocess(store)
        assert (report.reprocessed, report.stored) == (1, 1) and _count(store) == 2
    finally:
        store.close()


@pytest.mark.broker
def test_a_tasmota_record_refused_over_mqtt_is_stored_at_its_zones_utc_time_after_the_fix(tmp_path: Path, own_broker,
                                                                                        unique: str) -> None:
    """Ingest reads Tasmota's zone-less Time in its configured zone; the dead letter keeps that zone for reprocess."""
    campaign, device = f"ext{unique}", f"balcony-{unique}"
    local = "2026-01-15T08:00:00"  # the device's clock, in Montreal (EST, -05:00): 13:00 UTC; read in Paris: 07:00
    utc = int(datetime.fromisoformat("2026-01-15T13:00:00+00:00").timestamp() * 1000)
    store = Store(tmp_path / "qsec.duckdb")
    store.ensure_campaign(campaign, starts_ms=utc + 3_600_000)  # the campaign's start set an hour too late
    worker = IngestWorker(store, IngestSettings(port=own_broker.port, client_id=f"tz-{unique}", batch_ms=50,
                                                external_campaign=campaign,
                                                external_timezone="America/Montreal")).start()
    try:
        payload = json.dumps({"Time": local, "SDS0X1": {"PM2.5": 7.3, "PM10": 12.1}, "TempUnit": "C"}).encode()
        publish.single(f"tele/{device}/SENSOR", payload, qos=1, hostname="127.0.0.1", port=own_broker.port,
                       protocol=mqtt.MQTTv5)
        wait_until(lambda: worker.metrics["deadletter"] == 1, timeout=30, what="ingest to dead-letter the record")
    finally:
        worker.stop()
    try:
        (row,) = dl.list_dead_letters(store)
        assert (row.reason, row.device, row.boot, row.seq) == ("before_campaign", device, "tasmota-sds011", utc)
        assert row.topic == f"tasmota:{campaign}:tele/{device}/SENSOR#timezone=America/Montreal"
        # the start corrected to 10:00 UTC: 13:00 passes; 07:00, the time read in Paris, would still be refused
        store.cursor().execute("UPDATE campaigns SET starts = to_timestamp(?)::TIMESTAMP WHERE campaign = ?",
                               [(utc - 3 * 3_600_000) / 1000, campaign])
    finally:
        store.close()
    done = CliRunner().invoke(main, ["deadletter", "reprocess", "--data-dir", str(tmp_path)])
    assert "1 examined: 1 reprocessed (1 records stored, 0 already stored), 0 still open" in done.output, done.output
    store = Store(tmp_path / "qsec.duckdb")
    try:
        stored = store.cursor().execute("SELECT device, boot, seq, epoch_ms(time), pm2_5, pm10 FROM readings")
        assert stored.fetchall() == [(device, "tasmota-sds011", utc, utc, 7.3, 12.1)]
    finally:
        store.close()
