"""The outbox: batches, a bounded window in flight, resends, and catching up from the spool."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.outbox import Outbox
from qsec.contract import Record

BOOT = "b0"


def _rec(seq: int) -> Record:
    return Record(seq=seq, t=1_780_000_000_000 + seq, sensor="plantower-pms5003", values={"pm2_5": 1.0})


class SpoolModel:
    """The spool as the outbox sees it: pending records, oldest first, until settled."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int], Record] = {}
        self.reads = 0

    def add(self, seq: int, boot: str = BOOT) -> Record:
        rec = self.pending[(boot, seq)] = _rec(seq)
        return rec

    def read(self, limit: int) -> list[tuple[str, Record]]:
        self.reads += 1
        return [(b, r) for (b, _), r in list(self.pending.items())[:limit]]

    def settle(self, box: Outbox, sent: list[tuple[str, Record]]) -> None:
        for b, r in sent:
            self.pending.pop((b, r.seq), None)
            box.settled(b, {r.seq})


def _box(**kw: object) -> Outbox:
    opts: dict = {"batch_records": 5, "batch_s": 0.5, "resend_after_s": 10.0, "window": 10}
    opts.update(kw)
    return Outbox(**opts)


def test_fresh_records_wait_for_a_full_batch_or_the_batch_time() -> None:
    box, spool = _box(), SpoolModel()
    for seq in range(3):
        assert not box.added(BOOT, spool.add(seq), now=0.0)
    assert box.take(0.1, spool.read) == []
    assert box.next_due(0.1) == 0.5
    assert [r.seq for _, r in box.take(0.5, spool.read)] == [0, 1, 2]
    ready = [box.added(BOOT, spool.add(seq), now=1.0) for seq in range(3, 8)]
    assert ready == [False, False, False, False, True]
    assert [r.seq for _, r in box.take(1.0, spool.read)] == [3, 4, 5, 6, 7]
    assert spool.reads == 0, "fresh records are sent from memory, not read back from disk"


def test_no_more_than_the_window_is_in_flight_until_ingest_settles() -> None:
    box, spool = _box(), SpoolModel()
    for seq in range(25):
        box.added(BOOT, spool.add(seq), now=0.0)
    first = box.take(1.0, spool.read)
    assert len(first) == 10 and box.in_flight == 10
    assert box.take(2.0, spool.read) == [] and box.next_due(2.0) == 11.0  # full: only a resend is due
    spool.settle(box, first[:4])
    assert [r.seq for _, r in box.take(2.0, spool.read)] == [10, 11, 12, 13]


def test_unsettled_records_go_again_after_the_timeout_and_at_once_after_a_reconnect() -> None:
    box, spool = _box(), SpoolModel()
    for seq in range(4):
        box.added(BOOT, spool.add(seq), now=0.0)
    sent = box.take(1.0, spool.read, flush=True)
    spool.settle(box, sent[:1])
    assert box.take(10.9, spool.read) == []
    assert [r.seq for _, r in box.take(11.0, spool.read)] == [1, 2, 3] and box.resent == 3
    box.reconnected()
    assert [r.seq for _, r in box.take(11.5, spool.read)] == [1, 2, 3] and box.resent == 6


def test_a_backlog_is_read_from_the_spool_until_it_has_caught_up() -> None:
    spool = SpoolModel()
    for seq in range(23):
        spool.add(seq, boot="old")
    box = _box(backlog=True)
    assert not box.added(BOOT, spool.add(0), now=0.0), "while catching up, new records wait in the spool"
    sent: list = []
    for turn in range(10):
        batch = box.take(float(turn), spool.read)
        assert len(batch) <= 10 and box.in_flight <= 10
        sent += batch
        spool.settle(box, batch)
        if not box.backlog:
            break
    assert [(b, r.seq) for b, r in sent] == [("old", s) for s in range(23)] + [(BOOT, 0)]
    box.added(BOOT, spool.add(1), now=20.0)
    assert [r.seq for _, r in box.take(20.0, spool.read, flush=True)] == [1] and box.backlog is False


def test_too_many_fresh_records_while_offline_switch_to_reading_the_spool() -> None:
    box, spool = _box(fresh_max=12), SpoolModel()
    for seq in range(13):
        box.added(BOOT, spool.add(seq), now=0.0)
    assert box.backlog and box.fresh == 0
    assert [r.seq for _, r in box.take(1.0, spool.read)] == list(range(10))


@given(st.lists(st.tuples(st.sampled_from(["add", "take", "settle", "reconnect"]), st.integers(1, 30)),
                max_size=80))
@settings(max_examples=150, deadline=None)
def test_every_record_is_sent_the_window_holds_and_nothing_is_sent_twice_at_once(ops: list[tuple[str, int]]) -> None:
    box, spool = _box(fresh_max=15), SpoolModel()
    seq, now = 0, 0.0
    in_flight: list = []
    for op, n in ops:
        now += 0.3
        if op == "add":
            for _ in range(n):
                box.added(BOOT, spool.add(seq), now)
                seq += 1
        elif op == "take":
            batch = box.take(now, spool.read)
            keys = [(b, r.seq) for b, r in batch]
            assert len(keys) == len(set(keys))
            in_flight += batch
        elif op == "settle":
            spool.settle(box, in_flight[:n])
            in_flight = in_flight[n:]
        else:
            box.reconnected()
        assert box.in_flight <= 10
    for _ in range(200):  # drain: take, settle everything, until nothing is pending
        now += 11.0
        spool.settle(box, box.take(now, spool.read, flush=True))
        if not spool.pending:
            break
    assert not spool.pending, "every record is eventually sent and settled"
