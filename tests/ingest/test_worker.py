"""Ingest against the real Mosquitto broker and a real DuckDB file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness import wait_until
from ingest.metrics import QsecCollector, render
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker, _Pending
from qsec import contract

pytestmark = pytest.mark.broker


def _client(host: str, port: int, cid: str = "") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.loop_start()
    return c


def _batch(device: str, boot: str, seqs: range, t0: int) -> bytes:
    recs = tuple(contract.Record(s, t0 + s * 1000, "plantower-pms5003", {"pm2_5": 5.0 + s, "pm10": 9.0 + s}) for s in seqs)
    return contract.encode_batch(contract.Batch(device, boot, recs))


@pytest.fixture(params=[0, 2], ids=["decode-inline", "decode-2-processes"])
def worker(request, tmp_path: Path, broker: tuple[str, int], unique: str):
    """A worker decoding in its own thread, and one with a pool of decoding processes: both must behave alike."""
    store = Store(tmp_path / "qsec.duckdb")
    w = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-{unique}",
                                           share_group=f"g{unique}", campaign_filter=f"c{unique}", batch_ms=50,
                                           decode_processes=request.param))
    w.start()
    yield w
    w.stop()
    store.close()


def test_ingest_stores_each_record_once_and_answers_the_device(worker: IngestWorker, broker, unique: str) -> None:
    campaign, device = f"c{unique}", "kit-01"
    feedback: list[contract.Feedback] = []
    pub = _client(*broker)
    pub.on_message = lambda c, u, m: feedback.append(contract.Feedback.decode(m.payload))
    pub.subscribe(contract.topic(campaign, device, "ingest"), qos=1)
    heard: list[tuple[str, str, str, contract.Record]] = []
    worker.listeners.append(heard.extend)
    time.sleep(0.2)
    t0 = int(time.time() * 1000) - 60_000
    topic = contract.topic(campaign, device)
    pub.publish(topic, _batch(device, "boot-a", range(0, 50), t0), qos=1).wait_for_publish(5)
    pub.publish(topic, _batch(device, "boot-a", range(25, 75), t0), qos=1).wait_for_publish(5)  # half repeats
    pub.publish(topic, _batch(device, "boot-b", range(0, 10), t0), qos=1).wait_for_publish(5)

    cur = worker.store.cursor()
    wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 85, what="85 records stored")
    rows = cur.execute("SELECT boot, seq, pm2_5 FROM readings ORDER BY boot, seq").fetchall()
    assert rows == [("boot-a", s, 5.0 + s) for s in range(75)] + [("boot-b", s, 5.0 + s) for s in range(10)]
    # the counters and listeners follow the commit that made the rows visible
    wait_until(lambda: worker.metrics["records_stored"] == 85 and len(heard) == 85, what="counters and listeners")
    assert worker.metrics["records_duplicate"] == 25
    # listeners hear each newly stored record once, as it was sent
    assert sorted((b, r.seq, r.t, r.sensor, r.values["pm2_5"], r.values["pm10"]) for c, d, b, r in heard) == [
        (b, s, t0 + s * 1000, "plantower-pms5003", 5.0 + s, 9.0 + s)
        for b, n in (("boot-a", 75), ("boot-b", 10)) for s in range(n)]
    assert {(c, d) for c, d, _, _ in heard} == {(campaign, device)}

    def settled() -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for f in list(feedback):
            for b, r in f.settled.items():
                out.setdefault(b, set()).update(contract.expand(r))
        return out

    expected = {"boot-a": set(range(75)), "boot-b": set(range(10))}
    wait_until(lambda: settled() == expected, what="feedback settling every record")
    assert feedback[-1].highest == {"boot-a": 74, "boot-b": 9}
    pub.loop_stop()


def test_a_bad_record_goes_to_the_dead_letter_table_and_its_batch_is_stored(worker: IngestWorker, broker, unique) -> None:
    campaign, device = f"c{unique}", "kit-02"
    t0 = int(time.time() * 1000) - 5000
    good = [{"seq": s, "t": t0, "sensor": "winsen-mhz19", "values": {"co2": 420.0 + s}} for s in range(3)]
    bad = {"seq": 3, "t": t0, "sensor": "winsen-mhz19", "values": {"co2": -1}}
    payload = json.dumps({"v": 1, "boot": "b", "records": [good[0], bad, good[1], good[2]]}).encode()
    pub = _client(*broker)
    pub.publish(contract.topic(campaign, device), payload, qos=1).wait_for_publish(5)
    pub.publish(contract.topic(campaign, device), b"{oops", qos=1).wait_for_publish(5)
    cur = worker.store.cursor()
    wait_until(lambda: cur.execute("SELECT count(*) FROM deadletter").fetchone()[0] == 2, what="2 dead letters")
    assert cur.execute("SELECT seq, co2 FROM readings ORDER BY seq").fetchall() == [(0, 420.0), (1, 421.0), (2, 422.0)]
    dl = cur.execute("SELECT device, seq, reason, raw FROM deadletter ORDER BY id").fetchall()
    assert dl[0][:3] == (device, 3, "out_of_range") and json.loads(dl[0][3]) == bad
    assert dl[1][:3] == (device, None, "bad_json") and dl[1][3] == "{oops"
    assert worker.deadletter_reasons == {"out_of_range": 1, "bad_json": 1}
    pub.loop_stop()


def test_messages_sent_while_ingest_is_down_are_stored_when_it_comes_back(tmp_path: Path, broker, unique) -> None:
    """The persistent session (stable client id, clean_start=False) holds what arrives meanwhile."""
    settings = IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-p-{unique}",
                              share_group=None, campaign_filter=f"c{unique}", batch_ms=50)
    store = Store(tmp_path / "qsec.duckdb")
    first = IngestWorker(store, settings).start()
    first.stop()
    pub = _client(*broker)
    t0 = int(time.time() * 1000) - 60_000
    for i in range(5):
        pub.publish(contract.topic(f"c{unique}", "kit-03"), _batch("kit-03", "b", range(i * 10, i * 10 + 10), t0),
                    qos=1).wait_for_publish(5)
    second = IngestWorker(store, settings).start()
    try:
        cur = store.cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 50, what="50 queued records")
        assert cur.execute("SELECT count(DISTINCT seq) FROM readings").fetchone()[0] == 50
    finally:
        second.stop()
        store.close()
        pub.loop_stop()


def test_a_tasmota_message_over_mqtt_is_stored_through_its_adapter(tmp_path: Path, own_broker, unique: str) -> None:
    """External formats ride the same worker: subscribed when a campaign is named for them."""
    store = Store(tmp_path / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(port=own_broker.port, client_id=f"ext-{unique}", batch_ms=50,
                                                external_campaign=f"ext{unique}")).start()
    try:
        pub = _client("127.0.0.1", own_broker.port)
        sample = (Path(__file__).parent / "samples" / "tasmota_sds011_bme280.json").read_bytes()
        pub.publish(f"tele/balcony-{unique}/SENSOR", sample, qos=1).wait_for_publish(5)
        pub.publish("tele/nope/STATE", b"{}", qos=1).wait_for_publish(5)  # not a topic ingest reads: never delivered
        cur = store.cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 2, what="SDS011 + BME280 records")
        rows = cur.execute("SELECT campaign, device, sensor, pm2_5, pm10, temperature, pressure FROM readings "
                           "ORDER BY sensor").fetchall()
        assert {r[1] for r in rows} == {f"balcony-{unique}"} and {r[0] for r in rows} == {f"ext{unique}"}
        by_values = {r[2]: r[3:] for r in rows}
        assert (7.3, 12.1) in [v[:2] for v in by_values.values()]
        assert (18.4, 1011.2) in [v[2:] for v in by_values.values()]
        # the dew point is computed by Tasmota from the other two: set aside, and counted where people look
        wait_until(lambda: worker.snapshot()["ignored_by_field"] == {"tasmota:BME280.DewPoint": 1},
                   what="the dew point counted as set aside")
        assert 'qsec_ingest_ignored_total{adapter="tasmota",field="BME280.DewPoint"} 1.0' in render(
            QsecCollector(worker)).decode()
        pub.publish(f"tele/balcony-{unique}/SENSOR", sample, qos=1).wait_for_publish(5)  # the same message again
        wait_until(lambda: worker.metrics["records_duplicate"] == 2, what="the repeat counted as duplicates")
        assert cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 2
        pub.loop_stop()
    finally:
        worker.stop()
        store.close()


def test_only_the_contracts_status_topic_is_a_bridge_status_and_a_senml_device_named_status_is_stored(
        tmp_path: Path, own_broker, unique: str) -> None:
    """``senml/<campaign>/status`` ends in /status too: it is a SenML pack for its adapter, not a bridge's status."""
    campaign = f"c{unique}"
    store = Store(tmp_path / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(port=own_broker.port, client_id=f"st-{unique}", batch_ms=50,
                                                external_campaign=f"ext{unique}")).start()
    try:
        pub = _client("127.0.0.1", own_broker.port)
        status = {"v": 1, "state": "online", "boot": "b1", "spool": {"pending": 0, "dropped_full": 0},
                  "sensors": {"pms5003": {"observations": 9, "set_aside": {"frame_error": {"checksum": 3}}}}}
        pub.publish(contract.topic(campaign, "kit-01", "status"), json.dumps(status), qos=1,
                    retain=True).wait_for_publish(5)
        t = int(time.time()) - 60
        pack = [{"n": "pm2_5", "u": "ug/m3", "v": 6.5, "t": t}, {"n": "co2", "u": "ppm", "v": 415, "t": t}]
        pub.publish(f"senml/{campaign}/status", json.dumps(pack), qos=1).wait_for_publish(5)
        cur = store.cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 1,
                   what="the SenML record of the device named status")
        assert cur.execute("SELECT campaign, device, boot, epoch_ms(time), pm2_5, co2 FROM readings").fetchall() == [
            (campaign, "status", "senml", t * 1000, 6.5, 415.0)]
        wait_until(lambda: worker.bridges.get("kit-01") == status, what="the bridge's retained status")
        assert set(worker.bridges) == {"kit-01"}
        assert (worker.metrics["status_unreadable"], worker.metrics["deadletter"]) == (0, 0)
        assert ('qsec_bridge_frames_set_aside_total{device="kit-01",kind="frame_error",reason="checksum",'
                'sensor="pms5003"} 3.0') in render(QsecCollector(worker)).decode()
        pub.loop_stop()
    finally:
        worker.stop()
        store.close()


def test_an_unknown_external_time_zone_is_refused_at_start_naming_the_option() -> None:
    with pytest.raises(ValueError, match="external_timezone: unknown time zone 'Europe/Lyon'.*IANA name"):
        IngestSettings(external_timezone="Europe/Lyon")


def test_a_commit_mixing_clean_and_odd_messages_stores_both(worker: IngestWorker, broker, unique: str) -> None:
    """Clean messages take the bulk path and odd ones the exact path; one commit holds both."""
    campaign, device = f"c{unique}", "kit-04"
    t0 = int(time.time() * 1000) - 5000
    odd = json.dumps({"v": 1, "boot": "b", "records": [
        {"seq": 10, "t": t0, "sensor": "winsen-mhz19", "values": {"co2": 500.0}},
        {"seq": 11, "t": t0, "sensor": "winsen-mhz19", "values": {"co2": -5}}]}).encode()
    worker.process([_Pending(1, 1, contract.topic(campaign, device), _batch(device, "b", range(0, 10), t0)),
                    _Pending(2, 1, contract.topic(campaign, device), odd)])
    cur = worker.store.cursor()
    assert cur.execute("SELECT count(*), count(co2), count(pm2_5) FROM readings").fetchone() == (11, 1, 10)
    assert worker.metrics["records_stored"] == 11 and worker.deadletter_reasons == {"out_of_range": 1}
    assert worker.tracker.highest(device) == {"b": 10} and worker.tracker.missing_by_device() == {device: 0}


def test_a_decoding_process_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path, broker, unique: str) -> None:
    """kill -9 of a decoding process: its group stays unacknowledged, a new pool decodes it again."""
    import os
    import signal

    import psutil

    store = Store(tmp_path / "qsec.duckdb")
    w = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-{unique}",
                                           share_group=f"g{unique}", campaign_filter=f"c{unique}", batch_ms=20,
                                           decode_processes=2)).start()
    try:
        pub = _client(*broker)
        topic, t0 = contract.topic(f"c{unique}", "kit-05"), int(time.time() * 1000) - 3_000_000  # 2,000 s of records
        sent = 0
        for k in range(30):  # values stay within the PM range (5 + seq < 2000)
            pub.publish(topic, _batch("kit-05", "b", range(k * 50, k * 50 + 50), t0), qos=1).wait_for_publish(5)
            sent += 50
            if k == 10:
                decoders = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
                assert decoders, "the pool's processes are children of this one"
                os.kill(decoders[0].pid, signal.SIGKILL)
        cur = store.new_cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == sent, timeout=60,
                   what=f"all {sent} records stored after the kill")
        assert cur.execute("SELECT count(DISTINCT seq), min(seq), max(seq) FROM readings").fetchone() == (
            sent, 0, sent - 1)
        assert cur.execute("SELECT count(*) FROM deadletter").fetchone()[0] == 0
        assert w.metrics["decoder_restarts"] >= 1
        pub.loop_stop()
    finally:
        w.stop()
        store.close()


def test_a_decoding_process_killed_while_the_pool_starts_is_replaced(tmp_path: Path, broker, unique: str) -> None:
    """The pool warms up at start; a process killed then breaks it before any message: a new pool is started."""
    import os
    import signal

    import psutil

    killed = threading.Event()

    def kill_first_decoder() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed.is_set():
            for p in psutil.Process().children():
                try:
                    if "spawn_main" in " ".join(p.cmdline()):
                        os.kill(p.pid, signal.SIGKILL)
                        killed.set()
                        return
                except psutil.Error:
                    pass
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_decoder, daemon=True)
    killer.start()
    store = Store(tmp_path / "qsec.duckdb")
    w = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-{unique}",
                                           share_group=f"g{unique}", campaign_filter=f"c{unique}", batch_ms=20,
                                           decode_processes=1))
    try:
        w.start(wait=30)
        killer.join(5)
        assert killed.is_set()
        pub = _client(*broker)
        t0 = int(time.time() * 1000) - 60_000
        pub.publish(contract.topic(f"c{unique}", "kit-06"), _batch("kit-06", "b", range(10), t0), qos=1)
        cur = store.new_cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 10, what="10 records stored")
        assert w.metrics["decoder_restarts"] >= 1  # at start, or (had the kill come later) at the first group
        pub.loop_stop()
    finally:
        w.stop()
        store.close()


@pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_qsec_ingest_decodes_in_a_thread_on_one_core_and_in_processes_beyond(cpus: int, expected: int) -> None:
    from ingest.decode import default_processes

    assert default_processes(cpus) == expected


def test_the_broker_sends_more_than_its_default_window_before_the_first_commit(tmp_path: Path, broker, unique) -> None:
    """MQTT 5 Receive Maximum: ingest may hold up to 1000 unacknowledged messages, not Mosquitto's 20/100.

    Messages are acknowledged after their commit; with a window of 100 the broker would stop at 100 messages
    until the first commit, and receiving could never run ahead of committing.
    """
    store = Store(tmp_path / "qsec.duckdb")
    w = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-{unique}",
                                           share_group=f"g{unique}", campaign_filter=f"c{unique}",
                                           batch_ms=60_000, batch_records=50 * 1000)).start()
    try:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.max_inflight_messages_set(100)
        pub.connect(*broker)
        pub.loop_start()
        topic, t0 = contract.topic(f"c{unique}", "kit-07"), int(time.time() * 1000) - 600_000
        for k in range(300):
            pub.publish(topic, _batch("kit-07", "b", range(k, k + 1), t0), qos=1)
        wait_until(lambda: w.metrics["messages_received"] == 300, timeout=30, what="300 unacknowledged messages held")
        assert store.new_cursor().execute("SELECT count(*) FROM readings").fetchone()[0] == 0  # nothing committed yet
        pub.loop_stop()
    finally:
        w.stop()  # stop() commits what it holds
        store.close()


def test_two_workers_sharing_a_subscription_account_gaps_together(tmp_path: Path, broker, unique: str) -> None:
    """Each worker gets part of a device's messages; the store's one tracker still sees the whole sequence."""
    store = Store(tmp_path / "qsec.duckdb")
    ws = [IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"test-ingest-{unique}-{i}",
                                             share_group=f"g{unique}", campaign_filter=f"c{unique}", batch_ms=20)).start()
          for i in range(2)]
    try:
        pub = _client(*broker)
        topic, t0 = contract.topic(f"c{unique}", "kit-08"), int(time.time() * 1000) - 600_000
        for k in range(40):
            pub.publish(topic, _batch("kit-08", "b", range(k * 10, k * 10 + 10), t0), qos=1).wait_for_publish(5)
        cur = store.new_cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 400, what="400 records")
        wait_until(lambda: sum(w.metrics["records_stored"] for w in ws) == 400, what="both workers' counters")
        assert all(w.metrics["records_stored"] > 0 for w in ws), "the shared subscription split the messages"
        for w in ws:
            assert w.tracker.missing_by_device() == {"kit-08": 0} and w.tracker.highest("kit-08") == {"b": 399}
        pub.loop_stop()
    finally:
        for w in ws:
            w.stop()
        store.close()
