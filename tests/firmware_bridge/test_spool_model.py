"""The bridge's spool: a model-based test of any interleaving of append, settle, reopen and crash."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from firmware_bridge.spool import Spool
from spool_support import crash, rec, seqs


# ---------------------------------------------------------------- model-based
class SpoolModel(RuleBasedStateMachine):
    """Any interleaving of append, settle, reopen and crash keeps pending == appended - settled - dropped."""

    BOOTS = ("boot-a", "boot-b", "boot-c")

    @initialize(policy=st.sampled_from(["never", "group"]), small=st.booleans())
    def open_spool(self, policy: str, small: bool) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.now = [0.0]
        self.kw: dict[str, Any] = dict(fsync=policy, segment_bytes=512, max_bytes=2048 if small else 1 << 20,
                       clock=lambda: self.now[0])
        self.spool = Spool(self.dir, **self.kw)
        self.next_seq = dict.fromkeys(self.BOOTS, 0)
        self.pending: list[tuple[str, int]] = []  # in append order
        self.appended = self.settled = self.dropped = 0

    def teardown(self) -> None:
        if hasattr(self, "spool"):
            self.spool.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(boot=st.sampled_from(BOOTS), count=st.integers(1, 12), gap=st.integers(1, 3))
    def append(self, boot: str, count: int, gap: int) -> None:
        first = self.next_seq[boot]
        batch = [rec(first + gap * k) for k in range(count)]
        if count == 1:
            self.spool.append(boot, batch[0])
        else:
            self.spool.append_many(boot, batch)
        self.next_seq[boot] = batch[-1].seq + 1
        self.pending.extend((boot, r.seq) for r in batch)
        self.appended += count
        self.account_for_drops()

    def account_for_drops(self) -> None:
        held = seqs(self.spool.pending())
        lost = len(self.pending) - len(held)
        assert lost >= 0 and held == self.pending[lost:], "drops must take the oldest records"
        self.dropped += lost
        self.pending = held

    @rule(boot=st.sampled_from(BOOTS), data=st.data())
    def settle(self, boot: str, data: st.DataObject) -> None:
        top = self.next_seq[boot] + 2
        pairs = data.draw(st.lists(st.tuples(st.integers(0, top), st.integers(0, 4)), max_size=3))
        ranges = [[lo, lo + width] for lo, width in pairs]
        hit = {(boot, s) for lo, hi in ranges for s in range(lo, hi + 1)} & set(self.pending)
        assert self.spool.settle(boot, ranges) == len(hit)
        self.pending = [p for p in self.pending if p not in hit]
        self.settled += len(hit)

    @rule(seconds=st.sampled_from([0.01, 0.2]))
    def tick(self, seconds: float) -> None:
        self.now[0] += seconds
        self.spool.tick()

    @rule()
    def reopen(self) -> None:
        self.spool.close()
        self.spool = Spool(self.dir, **self.kw)

    @precondition(lambda self: hasattr(self, "spool"))
    @rule()
    def crash_and_recover(self) -> None:
        crash(self.spool)
        self.spool = Spool(self.dir, **self.kw)

    @invariant()
    def pending_is_appended_minus_settled_minus_dropped(self) -> None:
        if not hasattr(self, "spool"):
            return
        assert seqs(self.spool.pending()) == self.pending
        stats = self.spool.stats()
        assert stats.pending_records == len(self.pending)
        assert (stats.appended_total, stats.settled_total, stats.dropped_full) == (
            self.appended, self.settled, self.dropped)
        assert stats.torn_skipped == 0
        assert stats.disk_bytes <= self.kw["max_bytes"]


TestAnyInterleavingKeepsPendingEqualToAppendedMinusSettledMinusDropped = SpoolModel.TestCase
TestAnyInterleavingKeepsPendingEqualToAppendedMinusSettledMinusDropped.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
