"""The bridge's spool: its size bound, parameters that cannot work, and the fsync policies, on real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware_bridge.spool import Spool, _commit
from qsec.contract import Record
from spool_support import T0, crash, rec, recs, segment_files


# ---------------------------------------------------------------- bounds
def test_a_full_spool_drops_the_oldest_segments_and_counts_exactly(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    kw: dict[str, Any] = dict(fsync="never", segment_bytes=1024, max_bytes=4096)
    appended: list[int] = []
    dropped = 0
    with Spool(directory, **kw) as spool:
        spool.append_many("boot-a", recs(0, 10))
        spool.settle("boot-a", [[0, 4]])  # settled records are not counted as dropped
        appended = list(range(5, 10))
        for seq in range(10, 200):
            spool.append("boot-a", rec(seq))
            appended.append(seq)
            held = [r.seq for _, r in spool.pending()]
            assert held == appended[len(appended) - len(held):]  # what is left is the newest
            dropped += len(appended) - len(held)
            appended = held
            assert spool.stats().dropped_full == dropped
            assert sum(f.stat().st_size for f in segment_files(directory)) <= 4096
        stats = spool.stats()
    assert dropped > 100
    assert stats.appended_total == 200 == stats.pending_records + stats.settled_total + stats.dropped_full
    with Spool(directory, **kw) as spool:
        assert spool.stats() == stats
        assert [r.seq for _, r in spool.pending()] == appended


def test_a_segment_counted_as_dropped_before_a_crash_is_not_counted_again(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "s"
    kw: dict[str, Any] = dict(fsync="never", segment_bytes=1024, max_bytes=4096)
    with Spool(directory, **kw) as spool:
        spool.append_many("boot-a", recs(0, 30))
        first = segment_files(directory)[0]
        saved = first.read_bytes()

        def crash_before_unlink(path: Path) -> None:
            raise SystemExit("killed between counting and deleting")

        monkeypatch.setattr(spool, "_unlink_quietly", crash_before_unlink)
        with pytest.raises(SystemExit):
            spool.append_many("boot-a", recs(30, 60))
        counted = spool.stats().dropped_full
        monkeypatch.undo()
        crash(spool)
    assert counted > 0 and first.read_bytes() == saved
    with Spool(directory, **kw) as spool:
        assert spool.stats().dropped_full == counted
        assert not first.exists()


# ---------------------------------------------------------------- parameters
def test_parameters_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        Spool(tmp_path / "a", fsync="sometimes")
    with pytest.raises(ValueError, match="2 \\* segment_bytes"):
        Spool(tmp_path / "b", segment_bytes=4096, max_bytes=4096)
    with pytest.raises(ValueError, match="segment_bytes"):
        Spool(tmp_path / "c", segment_bytes=10)


def test_a_record_larger_than_a_segment_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never", segment_bytes=256, max_bytes=1024) as spool:
        big = Record(seq=0, t=T0, sensor="plantower-pms5003", values={f"q{i}": 1.0 for i in range(40)})
        with pytest.raises(ValueError, match="segment_bytes"):
            spool.append("boot-a", big)


# ---------------------------------------------------------------- fsync policies
def count_syncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = _commit.datasync  # every sync of the spool's files goes through the group commit

    def counting(fd: int, path: Path) -> None:
        calls.append(fd)
        real(fd, path)

    monkeypatch.setattr(_commit, "datasync", counting)
    return calls


def test_group_commit_syncs_once_the_interval_has_passed(tmp_path: Path, monkeypatch) -> None:
    calls = count_syncs(monkeypatch)
    now = [100.0]
    with Spool(tmp_path / "s", fsync="group", group_interval_s=0.1, clock=lambda: now[0]) as spool:
        for seq in range(20):
            spool.append("boot-a", rec(seq))
            spool.tick()
        assert calls == []
        now[0] += 0.05
        spool.tick()
        assert calls == []
        now[0] += 0.06
        spool.tick()
        assert len(calls) == 1
        spool.tick()
        assert len(calls) == 1  # nothing new to sync
        now[0] += 1
        spool.append("boot-a", rec(20))  # the interval has passed: the append syncs itself
        assert len(calls) == 2
        spool.settle("boot-a", [[0, 5]])
        spool.flush()
        assert len(calls) == 3


def test_fsync_always_syncs_every_append_and_settle_and_never_syncs_none(tmp_path: Path, monkeypatch) -> None:
    calls = count_syncs(monkeypatch)
    with Spool(tmp_path / "a", fsync="always") as spool:
        spool.append("boot-a", rec(0))
        spool.append_many("boot-a", recs(1, 50))
        spool.settle("boot-a", [[0, 9]])
        assert len(calls) == 3
    calls.clear()
    with Spool(tmp_path / "n", fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 50))
        spool.settle("boot-a", [[0, 9]])
        spool.tick()
        assert calls == []
        spool.flush()
        assert len(calls) == 2  # explicit flush syncs whatever the policy
