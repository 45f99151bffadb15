"""Each error class of the mirror against a real HTTP server answering as scripted.

The mirror's steps are driven by hand (``pump``) with a manual clock, so back-off
delays are read, not waited for; one test runs the background thread.  The
expected actions are those of Telegraf's ``plugins/outputs/influxdb_v2/http.go``
and the documented differences (ingest/mirror/policy.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import wait_until
from scripted_http import Reply, ScriptedHTTPServer, influx1_error, influx_error, partial_writer
from victoria import free_port

from ingest.mirror import InfluxMirror, MirrorSettings, OutboxEntry, store_dead_letters
from ingest.mirror.lineproto import MAX_TIME_MS
from ingest.store import Store
from qsec import contract

T0 = 1_790_000_000_000


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def rows(n: int, start: int = 0, bad: frozenset[int] = frozenset()) -> list[tuple[str, str, str, contract.Record]]:
    """``n`` records of one device; seqs in ``bad`` carry the marker value pm10=666 a scripted server refuses."""
    return [("camp", "kit-01", "boot-a", contract.Record(s, T0 + s * 1000, "plantower-pms5003",
                                                       {"pm2_5": 1.0 + s, "pm10": 666.0 if s in bad else 2.0}))
            for s in range(start, start + n)]


def is_bad(line: str) -> bool:
    return "pm10=666," in line


class Rejected:
    """A dead-letter callback recording what it gets."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[list[OutboxEntry], str, str]] = []
        self.fail_times = fail_times

    def __call__(self, points: list[OutboxEntry], reason: str, detail: str) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("dead-letter store unavailable")
        self.calls.append((points, reason, detail))

    @property
    def seqs(self) -> list[int]:
        return [p.seq for pts, _, _ in self.calls for p in pts]


@pytest.fixture
def server() -> Iterator[ScriptedHTTPServer]:
    with ScriptedHTTPServer() as srv:
        yield srv


def make_mirror(tmp_path: Path, url: str, clock: ManualClock | None = None, rejected: Rejected | None = None,
                **kw: object) -> InfluxMirror:
    opts: dict[str, object] = {"token": "tok", "org": "qsec-org", "bucket": "air", "backoff_initial_s": 1.0,
                               "backoff_max_s": 60.0, "alarm_retry_s": 120.0, "timeout_ms": 5000,
                               "outbox_sync": "normal", **kw}
    s = MirrorSettings(url=url, outbox_path=tmp_path / "outbox.sqlite", **opts)  # type: ignore[arg-type]
    return InfluxMirror(s, on_rejected=rejected, clock=clock or ManualClock())


def drain(m: InfluxMirror, limit: int = 200) -> None:
    """Pump until the outbox is empty, failing if the mirror asks to wait."""
    for _ in range(limit):
        delay = m.pump(force=True)
        if delay is None:
            return
        assert delay == 0.0, f"the mirror asked to wait {delay} s: {m.metrics()['last_error']}"
    pytest.fail("the outbox did not drain")


def delivered_lines(srv: ScriptedHTTPServer, statuses: list[int]) -> list[str]:
    """Lines of the requests answered 2xx, in order (statuses: what each request was answered)."""
    return [ln for r, st in zip(srv.writes, statuses) if 200 <= st < 300 for ln in r.lines]


def test_a_2xx_removes_the_batch_and_every_point_is_sent_once_in_order(tmp_path: Path, server) -> None:
    m = make_mirror(tmp_path, server.url, batch_points=4)
    expected = [m._encoder.line(c, d, b, r) for c, d, b, r in rows(10)]
    assert m.submit(rows(10)) == 10
    drain(m)
    assert [len(r.lines) for r in server.writes] == [4, 4, 2]
    assert [ln for r in server.writes for ln in r.lines] == expected
    first = server.writes[0]
    assert first.query == {"org": "qsec-org", "bucket": "air", "precision": "ms"}
    assert first.headers["Authorization"] == "Token tok"
    got = m.metrics()
    assert (got["points_enqueued"], got["points_mirrored"], got["outbox_depth"], got["requests"]) == (10, 10, 0, 3)
    m.close()


def test_413_splits_the_batch_in_halves_recursively_and_keeps_the_order(tmp_path: Path, server) -> None:
    too_large = influx_error(413, "request too large")
    server.script(too_large, too_large)  # 8 -> 4 + 4; the first 4 -> 2 + 2; then all 204
    m = make_mirror(tmp_path, server.url, batch_points=8)
    m.submit(rows(8))
    drain(m)
    assert [len(r.lines) for r in server.writes] == [8, 4, 2, 2, 4]
    assert delivered_lines(server, [413, 413, 204, 204, 204]) == [ln for r in server.writes[:1] for ln in r.lines]
    got = m.metrics()
    assert (got["split_batches"], got["points_mirrored"], got["rejected_points"]) == (2, 8, 0)
    m.close()


def test_a_lone_point_still_refused_as_too_large_raises_the_config_alarm_and_is_kept(tmp_path: Path, server,
                                                                                    caplog) -> None:
    """Telegraf keeps such a point too; a point of a few hundred bytes is never too large for a sane limit."""
    server.script(influx_error(413, "too large"), Reply(204), influx_error(413, "too large"))
    clock = ManualClock()
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, clock, batch_points=2, rejected=rejected)
    m.submit(rows(3))
    # [0, 1] -> 413 -> [0] ok, [1] 413 alone -> kept, alarm, retried after alarm_retry_s
    assert m.pump(force=True) == 0.0 and m.pump(force=True) == 0.0
    with caplog.at_level(logging.ERROR, logger="qsec.ingest.mirror"):
        assert m.pump(force=True) == 120.0
    assert "body size limit" in caplog.text
    got = m.metrics()
    assert (got["config_failed"], got["outbox_depth"], got["rejected_points"], rejected.calls) == (True, 2, 0, [])
    clock.advance(120)
    drain(m)  # the limit was raised: [1] then [2] go through, in order
    assert [len(r.lines) for r in server.writes] == [2, 1, 1, 1, 1]
    assert server.writes[3].lines == server.writes[2].lines and "seq=2i" in server.writes[4].lines[0]
    assert m.metrics()["config_failed"] is False and m.metrics()["points_mirrored"] == 3
    m.close()


@pytest.mark.parametrize("name_first_line", [True, False], ids=["server-names-the-line", "bisection"])
def test_400_dead_letters_exactly_the_offending_points_and_writes_the_rest(tmp_path: Path,
                                                                          name_first_line: bool) -> None:
    stored: list[str] = []
    bad = frozenset({2, 5, 6})
    with ScriptedHTTPServer(partial_writer(is_bad, name_first_line=name_first_line, stored=stored)) as srv:
        rejected = Rejected()
        m = make_mirror(tmp_path, srv.url, batch_points=8, rejected=rejected)
        m.submit(rows(8, bad=bad) + rows(4, start=8))
        drain(m)
        good = [m._encoder.line(c, d, b, r) for c, d, b, r in rows(12) if r.seq not in bad]
        assert sorted(rejected.seqs) == sorted(bad)
        assert {reason for _, reason, _ in rejected.calls} == {"mirror_400"}
        assert all("unable to parse" in detail for _, _, detail in rejected.calls)
        assert sorted(set(stored)) == sorted(good)  # every good point written (some twice: harmless overwrites)
        assert srv.writes[-1].lines == good[-4:]  # the next batch went on after the refused points
        got = m.metrics()
        assert (got["rejected_points"], got["rejected_by_status"], got["outbox_depth"]) == (3, {"400": 3}, 0)
        assert got["points_mirrored"] == 12 - 3
        m.close()


def test_422_with_every_point_dropped_dead_letters_the_batch_in_one_step(tmp_path: Path, server) -> None:
    server.script(influx_error(422, "partial write: points beyond retention policy dropped=4"))
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, batch_points=4, rejected=rejected)
    m.submit(rows(4))
    drain(m)
    assert len(server.writes) == 1 and rejected.seqs == [0, 1, 2, 3] and rejected.calls[0][1] == "mirror_422"
    m.close()


def test_another_4xx_dead_letters_the_whole_batch_as_telegraf_drops_it(tmp_path: Path, server) -> None:
    server.script(Reply(405, body="method not allowed"))
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, batch_points=3, rejected=rejected)
    m.submit(rows(5))
    drain(m)
    assert rejected.seqs == [0, 1, 2] and rejected.calls[0][1:] == ("mirror_405", "method not allowed")
    assert [len(r.lines) for r in server.writes] == [3, 2]
    m.close()


def test_429_keeps_the_batch_waits_for_retry_after_and_sends_nothing_newer_first(tmp_path: Path, server) -> None:
    server.script(Reply(429, {"Retry-After": "7"}))
    clock = ManualClock()
    m = make_mirror(tmp_path, server.url, clock, batch_points=3)
    m.submit(rows(3))
    assert m.pump(force=True) == pytest.approx(7.0)  # Retry-After beats the 1 s back-off
    m.submit(rows(3, start=3))  # arrives during the wait
    clock.advance(5)
    assert m.pump(force=True) == pytest.approx(2.0) and len(server.writes) == 1  # nothing sent before the time
    clock.advance(2)
    drain(m)
    bodies = [r.body for r in server.writes]
    assert bodies[0] == bodies[1]  # the same batch again, first
    assert [r.seq for _, _, _, r in rows(6)] == [int(ln.split("seq=")[1].split("i")[0])
                                                 for r in server.writes[1:] for ln in r.lines]
    got = m.metrics()
    assert (got["retries"], got["points_mirrored"], got["last_error_status"]) == (1, 6, 429)
    m.close()


def test_5xx_keeps_the_batch_and_backs_off_on_telegraf_s_curve(tmp_path: Path, server) -> None:
    server.script(Reply(500), Reply(503), Reply(502), Reply(504))
    clock = ManualClock()
    m = make_mirror(tmp_path, server.url, clock, batch_points=5, backoff_initial_s=0.01)
    m.submit(rows(5))
    delays = []
    for _ in range(4):
        delays.append(m.pump(force=True))
        clock.advance(delays[-1])
    assert delays == pytest.approx([1 / 40, 4 / 40, 9 / 40, 16 / 40])  # count**2 / 40 s
    assert m.metrics()["outbox_depth"] == 5 and m.metrics()["consecutive_failures"] == 4
    drain(m)
    assert len({r.body for r in server.writes}) == 1 and len(server.writes) == 5
    assert m.metrics()["consecutive_failures"] == 0 and m.metrics()["points_mirrored"] == 5
    m.close()


@pytest.mark.parametrize("status, flag, hint", [(401, "auth_failed", "token"), (403, "auth_failed", "token"),
                                                (404, "config_failed", "bucket")])
def test_an_auth_or_config_refusal_raises_the_alarm_keeps_the_data_and_retries_slowly(
        tmp_path: Path, server, caplog, status: int, flag: str, hint: str) -> None:
    server.script(influx_error(status, "nope"), influx_error(status, "nope"))
    clock = ManualClock()
    m = make_mirror(tmp_path, server.url, clock, batch_points=5)
    m.submit(rows(5))
    with caplog.at_level(logging.ERROR, logger="qsec.ingest.mirror"):
        assert m.pump(force=True) == 120.0 and m.metrics()[flag] is True
    assert hint in caplog.text and "stay queued (5)" in caplog.text
    clock.advance(120)
    assert m.pump(force=True) == 120.0  # still refused: same slow period, not a growing back-off
    assert m.metrics()["outbox_depth"] == 5 and "nope" in str(m.metrics()["last_error"])
    clock.advance(120)
    drain(m)
    assert m.metrics()[flag] is False and m.metrics()["points_mirrored"] == 5
    m.close()


def test_a_server_that_does_not_answer_keeps_the_data_until_it_does(tmp_path: Path) -> None:
    port = free_port()
    clock = ManualClock()
    m = make_mirror(tmp_path, f"http://127.0.0.1:{port}", clock, batch_points=10, backoff_initial_s=0.1)
    m.submit(rows(4))
    assert m.pump(force=True) == 0.1  # the floor: 1/40 s is shorter
    assert "Connection refused" in str(m.metrics()["last_error"]) and m.metrics()["last_error_status"] is None
    clock.advance(1)
    assert m.pump(force=True) == 0.1
    clock.advance(1)
    assert m.pump(force=True) == pytest.approx(9 / 40)
    with ScriptedHTTPServer(port=port) as srv:
        clock.advance(1)
        drain(m)
        assert [len(r.lines) for r in srv.writes] == [4]
    m.close()


def test_a_failing_dead_letter_callback_keeps_the_refused_points_until_it_works(tmp_path: Path, server) -> None:
    server.script(influx_error(400, "bad"), influx_error(400, "bad"))
    clock = ManualClock()
    rejected = Rejected(fail_times=1)
    m = make_mirror(tmp_path, server.url, clock, batch_points=1, rejected=rejected)
    m.submit(rows(1))
    assert m.pump(force=True) == 1.0  # callback failed: kept, backing off
    assert m.metrics()["outbox_depth"] == 1 and m.metrics()["callback_errors"] == 1
    clock.advance(1)
    drain(m)
    assert rejected.seqs == [0] and m.metrics()["outbox_depth"] == 0
    m.close()


def test_refused_points_land_in_the_store_dead_letter_table_with_their_identity(tmp_path: Path, server) -> None:
    server.script(influx_error(400, "field type conflict"))
    store = Store(tmp_path / "qsec.duckdb")
    m = make_mirror(tmp_path, server.url, batch_points=1)
    m.on_rejected = store_dead_letters(store)
    m.submit(rows(2))
    drain(m)
    got = store.cursor().execute("SELECT topic, device, boot, seq, reason, detail, raw FROM deadletter").fetchall()
    assert got == [("qsec/v1/camp/kit-01/readings", "kit-01", "boot-a", 0, "mirror_400", "field type conflict",
                    m._encoder.line(*rows(1)[0]))]
    m.close()
    store.close()


def test_the_thread_sends_full_batches_at_once_and_the_rest_after_the_interval(tmp_path: Path, server) -> None:
    m = make_mirror(tmp_path, server.url, clock=time.monotonic, batch_points=5, flush_interval_ms=300).start()
    try:
        m.submit(rows(12))
        wait_until(lambda: m.metrics()["outbox_depth"] == 0, timeout=20, what="the outbox to drain")
        assert [len(r.lines) for r in server.writes] == [5, 5, 2]
        assert m.metrics()["running"] is True
    finally:
        m.close()
    assert m.metrics()["running"] is False


def test_the_thread_honours_retry_after_through_the_injected_sleep(tmp_path: Path, server) -> None:
    server.script(Reply(503, {"Retry-After": "42"}))
    clock = ManualClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        time.sleep(0.002)

    s = MirrorSettings(url=server.url, outbox_path=tmp_path / "o.sqlite", batch_points=3, outbox_sync="normal")
    m = InfluxMirror(s, clock=clock, sleep=sleep).start()
    try:
        m.submit(rows(3))
        wait_until(lambda: m.metrics()["points_mirrored"] == 3, timeout=20, what="the retried batch")
        assert 42.0 in slept and len(server.writes) == 2
    finally:
        m.close()


def test_408_request_timeout_keeps_the_batch_and_retries_it(tmp_path: Path, server) -> None:
    """RFC 9110 15.5.9: the client may repeat the request (Telegraf would drop it as any other 4xx)."""
    server.script(Reply(408, {"Connection": "close"}, "request timeout"))
    clock = ManualClock()
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, clock, batch_points=3, rejected=rejected)
    m.submit(rows(3))
    assert m.pump(force=True) == 1.0 and m.metrics()["outbox_depth"] == 3
    clock.advance(1)
    drain(m)
    assert rejected.calls == [] and server.writes[0].body == server.writes[1].body
    assert m.metrics()["points_mirrored"] == 3
    m.close()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_retry_after_longer_than_the_back_off_is_honoured(tmp_path: Path, server, status: int) -> None:
    server.script(Reply(status, {"Retry-After": "30"}))
    m = make_mirror(tmp_path, server.url, batch_points=2)
    m.submit(rows(2))
    assert m.pump(force=True) == 30.0 and m.metrics()["retry_in_s"] == 30.0
    m.close()


def test_an_influxdb1_partial_write_with_every_point_dropped_goes_to_the_dead_letters_at_once(tmp_path: Path,
                                                                                            server) -> None:
    """InfluxDB 1.x answers partial writes with 400 and {"error": "... dropped=N"}."""
    server.script(influx1_error(400, "partial write: points beyond retention policy dropped=3"))
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, batch_points=3, rejected=rejected)
    m.submit(rows(3))
    drain(m)
    assert len(server.writes) == 1 and rejected.seqs == [0, 1, 2]
    assert rejected.calls[0][1:] == ("mirror_400", "partial write: points beyond retention policy dropped=3")
    m.close()


def test_an_error_told_only_in_the_x_influxdb_error_header_becomes_the_dead_letter_detail(tmp_path: Path,
                                                                                        server) -> None:
    server.script(Reply(400, {"X-Influxdb-Error": "unable to parse 'x': bad timestamp"}))
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, batch_points=1, rejected=rejected)
    m.submit(rows(1))
    drain(m)
    assert rejected.calls[0][1:] == ("mirror_400", "unable to parse 'x': bad timestamp")
    m.close()


def unencodable_rows() -> list[tuple[str, str, str, contract.Record]]:
    good = rows(2)
    return [good[0],
            ("camp", "kit-01", "boot-a", contract.Record(7, T0, "plantower-pms5003", {"pm10": math.nan})),
            ("camp", "kit-01", "boot-a", contract.Record(8, MAX_TIME_MS + 1, "plantower-pms5003", {"pm10": 1.0})),
            good[1]]


def test_a_record_line_protocol_cannot_carry_is_dead_lettered_at_once_and_the_others_are_sent(tmp_path: Path,
                                                                                             server) -> None:
    rejected = Rejected()
    m = make_mirror(tmp_path, server.url, batch_points=10, rejected=rejected)
    assert m.submit(unencodable_rows()) == 2
    assert [(p.seq, reason) for pts, reason, _ in rejected.calls for p in pts] == [(7, "mirror_unencodable"),
                                                                                 (8, "mirror_unencodable")]
    details = [d for _, _, d in rejected.calls]
    assert "pm10: line protocol cannot carry the non-finite value nan" in details[0]
    assert "outside the range InfluxDB can store" in details[1]
    assert '"pm10": NaN' in rejected.calls[0][0][0].line  # the record, as JSON
    drain(m)
    assert [ln for r in server.writes for ln in r.lines] == [m._encoder.line(*r) for r in rows(2)]
    assert m.metrics()["unencodable_records"] == 2 and m.metrics()["points_enqueued"] == 2
    m.close()


def test_an_unencodable_record_lands_in_the_store_dead_letter_table(tmp_path: Path, server) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    m = make_mirror(tmp_path, server.url)
    m.on_rejected = store_dead_letters(store)
    m.submit(unencodable_rows())
    got = store.cursor().execute("SELECT seq, reason, detail, raw FROM deadletter ORDER BY seq").fetchall()
    assert [(seq, reason) for seq, reason, _, _ in got] == [(7, "mirror_unencodable"), (8, "mirror_unencodable")]
    assert got[1][2].startswith("not sent: timestamp") and '"seq": 8' in got[1][3]
    m.close()
    store.close()


def test_a_failing_dead_letter_callback_for_an_unencodable_record_reaches_the_caller_after_the_others_are_queued(
        tmp_path: Path, server) -> None:
    """The caller (ingest's hand-over) then holds its mark, so the next start queues those records again."""
    m = make_mirror(tmp_path, server.url, rejected=Rejected(fail_times=1))
    with pytest.raises(OSError, match="dead-letter store unavailable"):
        m.submit(unencodable_rows())
    assert m.outbox.depth == 2 and m.metrics()["callback_errors"] == 1
    m.close()


def test_influxdb_1_8_compatibility_sends_user_password_token_and_database_slash_retention_policy(
        tmp_path: Path, server) -> None:
    """influxdb-client-python examples/influxdb_18_example.py: token 'user:password', org '-', bucket 'db/rp'."""
    m = make_mirror(tmp_path, server.url, token="qsec:s3cret", org="-", bucket="air/autogen")
    m.submit(rows(1))
    drain(m)
    req = server.writes[0]
    assert req.query == {"org": "-", "bucket": "air/autogen", "precision": "ms"}
    assert req.headers["Authorization"] == "Token qsec:s3cret"
    assert req.headers["Content-Type"].startswith("text/plain")
    m.close()


def test_without_a_dead_letter_callback_an_unencodable_record_is_logged_with_its_reason(tmp_path: Path, server,
                                                                                      caplog) -> None:
    m = make_mirror(tmp_path, server.url)
    with caplog.at_level(logging.ERROR, logger="qsec.ingest.mirror"):
        assert m.submit(unencodable_rows()) == 2
    assert caplog.text.count("refused for good (mirror_unencodable") == 2 and '"seq": 7' in caplog.text
    m.close()
