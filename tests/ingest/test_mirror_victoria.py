"""The mirror against a real server process: Debian's VictoriaMetrics, written through influxdb-client.

VictoriaMetrics stores field ``f`` of measurement ``readings`` as the series
``readings_f`` with the point's tags as labels; these tests read every sample
back with ``/api/v1/export`` and compare exactly.  It runs without
deduplication, so a point written twice would show twice.

What VictoriaMetrics 1.79 answers (checked here): 204 for good lines; 204 too
for a NaN field or a timestamp beyond InfluxDB's range, which it drops without
a word (so the mirror must refuse those itself); 400 with a text body for a
line far longer than ``-influx.maxLineSize`` (256 KiB), having stored the
lines before it and none after it (the check runs on its read buffer, so a
line only a little over the limit is sometimes taken).  Its storage rounds
values to about 12 significant digits of the largest value in a block, so
number forms are compared one per series.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import require, wait_until
from victoria import VictoriaMetrics, find_victoria

from ingest.mirror import InfluxMirror, MirrorSettings, OutboxEntry
from ingest.mirror.lineproto import MAX_TIME_MS
from qsec import contract

T0 = 1_790_000_000_000
SENSORS = {"plantower-pms5003": ("pm1", "pm2_5", "pm10"), "winsen-mhz19": ("co2", "temperature")}


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    require(find_victoria() is not None, "no victoria-metrics binary (apt-get install -y victoria-metrics)")
    server = VictoriaMetrics(tmp_path / "vm", dedup=False).start()
    try:
        yield server
    finally:
        server.stop()


def records(devices: int, per_device: int, start: int = 0) -> list[tuple[str, str, str, contract.Record]]:
    out = []
    for d in range(devices):
        for s in range(start, start + per_device):
            sensor = list(SENSORS)[s % 2]
            values = {q: round(0.5 + d * 100 + s * 1.25 + i, 2) for i, q in enumerate(SENSORS[sensor])}
            out.append(("walk-1", f"kit-{d:02d}", f"boot-{d}", contract.Record(s, T0 + s * 500, sensor, values,
                                                                                 flags=s % 3)))
    return out


def expected_samples(rows: list[tuple[str, str, str, contract.Record]]) -> list[tuple]:
    """What VictoriaMetrics should hold: one sample per quantity, seq and flags of every record."""
    out = []
    for campaign, device, boot, rec in rows:
        labels = tuple(sorted({"boot": boot, "campaign": campaign, "device": device, "sensor": rec.sensor}.items()))
        fields = {**rec.values, "seq": rec.seq, "flags": rec.flags}
        out += [(f"readings_{f}", labels, rec.t, float(v)) for f, v in fields.items()]
    return sorted(out)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_records_written_through_the_mirror_read_back_exactly(tmp_path: Path, vm: VictoriaMetrics, gzip: bool) -> None:
    rows = records(devices=3, per_device=200)
    m = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite", batch_points=250,
                                    gzip=gzip))
    m.submit(rows)
    assert m.flush(timeout=30)
    assert vm.samples() == expected_samples(rows)
    assert m.metrics()["points_mirrored"] == 600 and m.metrics()["requests"] == 3
    m.close()


@pytest.fixture
def vm_one_value_per_point(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics keeping one value per series and millisecond, as InfluxDB keeps one value per point."""
    require(find_victoria() is not None, "no victoria-metrics binary (apt-get install -y victoria-metrics)")
    server = VictoriaMetrics(tmp_path / "vm", dedup=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_stopped_server_loses_nothing_and_doubles_nothing(tmp_path: Path, vm_one_value_per_point) -> None:
    """Stopped mid-request, the server may have stored a batch it never acknowledged: the mirror sends it again
    (at least once), and the point identity makes the repeat harmless, as InfluxDB's does."""
    vm = vm_one_value_per_point
    m = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite", batch_points=40,
                                    flush_interval_ms=20, backoff_initial_s=0.05, backoff_max_s=0.2,
                                    timeout_ms=2000)).start()
    all_rows: list[tuple[str, str, str, contract.Record]] = []

    def feed(calls: int, start: int) -> None:
        for k in range(calls):
            batch = records(devices=2, per_device=10, start=start + 10 * k)
            all_rows.extend(batch)
            m.on_commit(batch)  # 4-tuples are accepted too: the boot becomes a tag
            time.sleep(0.005)

    try:
        feed(10, 0)
        vm.stop()  # mid-stream: the thread may be sending right now
        feed(10, 100)
        wait_until(lambda: m.metrics()["consecutive_failures"] >= 2, timeout=20, what="failed writes while down")
        assert m.metrics()["outbox_depth"] > 0 and m.metrics()["last_error_status"] is None
        feed(10, 200)
        vm.start()
        wait_until(lambda: m.metrics()["outbox_depth"] == 0, timeout=30, what="the outbox to drain after restart")
    finally:
        m.close()
    assert len(all_rows) == 600
    assert vm.samples() == expected_samples(all_rows)  # every sample once: nothing lost, nothing doubled
    got = m.metrics()
    assert got["points_mirrored"] == got["points_enqueued"] == 600 and got["retries"] >= 2


@pytest.mark.broker
def test_records_committed_by_ingest_reach_the_server_through_the_commit_listener(
        tmp_path: Path, vm: VictoriaMetrics, broker: tuple[str, int], unique: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.store import Store
    from ingest.worker import IngestSettings, IngestWorker

    store = Store(tmp_path / "qsec.duckdb")
    mirror = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite",
                                         flush_interval_ms=50)).start()
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"mirror-{unique}",
                                                share_group=f"m{unique}", campaign_filter=f"c{unique}", batch_ms=50))
    worker.listeners.append(mirror.on_commit)
    worker.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        wait_until(lambda: worker.connected, timeout=20, what="ingest connected")
        pub.connect(*broker)
        pub.loop_start()
        t0 = int(time.time() * 1000) - 60_000
        recs = tuple(contract.Record(s, t0 + s * 1000, "winsen-mhz19", {"co2": 400.0 + s}) for s in range(30))
        batch = contract.encode_batch(contract.Batch("kit-01", "boot-z", recs))
        # The worker's subscription may not be in place yet when it says connected: publish until stored
        # (the repeats are duplicates for the store, so they must not reach the mirror again).
        deadline = time.monotonic() + 30
        while worker.metrics["records_stored"] < 30 and time.monotonic() < deadline:
            pub.publish(contract.topic(f"c{unique}", "kit-01"), batch, qos=1).wait_for_publish(10)
            time.sleep(0.3)
        pub.publish(contract.topic(f"c{unique}", "kit-01"), batch, qos=1).wait_for_publish(10)  # one more repeat
        wait_until(lambda: worker.metrics["records_duplicate"] >= 30, timeout=30, what="the repeat seen as duplicate")
        wait_until(lambda: mirror.metrics()["points_mirrored"] == 30, timeout=30, what="30 points mirrored")
    finally:
        pub.loop_stop()
        pub.disconnect()
        worker.stop()
        mirror.close()
        store.close()
    labels = (("boot", "boot-z"), ("campaign", f"c{unique}"), ("device", "kit-01"), ("sensor", "winsen-mhz19"))
    assert vm.samples('{__name__="readings_co2"}') == [("readings_co2", labels, r.t, r.values["co2"]) for r in recs]
    assert mirror.metrics()["points_enqueued"] == 30  # the repeat was a duplicate in the store: not mirrored again


def test_records_committed_but_never_handed_to_the_mirror_are_caught_up_at_start(
        tmp_path: Path, vm_one_value_per_point) -> None:
    """A kill between the store's commit and the outbox append: the next start finds them by the mark."""
    from ingest.mirror.catchup import HandOver, catch_up
    from ingest.store import Store

    vm = vm_one_value_per_point
    store = Store(tmp_path / "qsec.duckdb")
    rows = records(devices=2, per_device=20)
    first, second = rows[:20], rows[20:]
    store.write(first, received_ms=1_800_000_000_000)   # handed over: the mark says so
    store.write(second, received_ms=1_800_000_005_000)  # committed, then the process died before the hand-over
    hand = HandOver(None, None, tmp_path / "influx-outbox.mark")
    hand._write_mark(1_800_000_000_000)
    mirror = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite", flush_interval_ms=20))
    try:
        queued = catch_up(store, mirror, hand.mark())
        assert queued == len(rows)  # at or after the mark: the last handed commit again (harmless) and the lost one
        assert catch_up(store, mirror, None) == 0  # no mark: a new mirror starts from now
        mirror.start()
        wait_until(lambda: mirror.metrics()["outbox_depth"] == 0, timeout=30, what="the outbox to drain")
    finally:
        mirror.close()
        store.close()
    assert vm.samples() == expected_samples(rows)


def test_numbers_in_every_form_the_encoder_writes_read_back_exactly(tmp_path: Path, vm: VictoriaMetrics) -> None:
    """Exponents (1e+16, 1.5e-05), negative zero, and 53-bit integers, as parsed by a real server."""
    values = [1e16, 1.5e-05, -0.0, 123456.789, 2.5e20, -7.25e-3, 415.0]
    rows = [("walk-1", f"kit-{i:02d}", "boot-0", contract.Record(2**53 - 1 - i, T0 + i, "winsen-mhz19",
                                                                 {"co2": v}, flags=2**16 - 1))
            for i, v in enumerate(values)]
    m = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite"))
    m.submit(rows)
    assert m.flush(timeout=30)
    m.close()
    assert vm.samples() == expected_samples(rows)
    assert [v for name, _, _, v in vm.samples() if name == "readings_co2"] == values  # sorted by device


class Refused:
    def __init__(self) -> None:
        self.calls: list[tuple[list[OutboxEntry], str, str]] = []

    def __call__(self, points: list[OutboxEntry], reason: str, detail: str) -> None:
        self.calls.append((points, reason, detail))


def test_records_the_server_would_drop_silently_are_dead_lettered_and_never_sent(tmp_path: Path,
                                                                                 vm: VictoriaMetrics) -> None:
    good = records(devices=1, per_device=4)
    bad = [("walk-1", "kit-00", "boot-0", contract.Record(90, T0, "winsen-mhz19", {"co2": float("nan")})),
           ("walk-1", "kit-00", "boot-0", contract.Record(91, MAX_TIME_MS + 1, "winsen-mhz19", {"co2": 1.0}))]
    refused = Refused()
    m = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite"), on_rejected=refused)
    assert m.submit(good[:2] + bad + good[2:]) == 4
    assert m.flush(timeout=30)
    m.close()
    assert vm.samples() == expected_samples(good)
    assert [(p.seq, reason) for pts, reason, _ in refused.calls for p in pts] == [(90, "mirror_unencodable"),
                                                                                (91, "mirror_unencodable")]


def test_a_line_the_server_refuses_with_400_is_isolated_and_every_other_point_is_stored_once(
        tmp_path: Path, vm_one_value_per_point) -> None:
    """A real 400: VictoriaMetrics refuses a line far over -influx.maxLineSize (256 KiB), after storing the
    lines before it.  The mirror cuts the batch until that line stands alone, dead-letters it, and
    writes the rest (some twice: this server keeps one value per series and millisecond, as InfluxDB does)."""
    vm = vm_one_value_per_point
    rows = records(devices=1, per_device=20)
    refused = Refused()
    m = InfluxMirror(MirrorSettings(url=vm.url, outbox_path=tmp_path / "outbox.sqlite", batch_points=40),
                     on_rejected=refused)
    long_line = f"readings,campaign=walk-1,device={'x' * 2_000_000} co2=1 {T0}"  # 8 times the limit
    m.submit(rows)
    m.outbox.append([(long_line, "walk-1", "kit-xx", "boot-x", 999)])
    assert m.flush(timeout=60)
    got = m.metrics()
    m.close()
    assert vm.samples() == expected_samples(rows)  # every good point, once
    assert [(p.seq, reason) for pts, reason, _ in refused.calls for p in pts] == [(999, "mirror_400")]
    assert "too long line" in refused.calls[0][2]
    assert got["rejected_by_status"] == {"400": 1} and got["points_mirrored"] == 20
    assert got["rejection_splits"] >= 5  # 21 -> 11 -> 6 -> 3 -> 2 -> 1: halving, as the text body names no line
