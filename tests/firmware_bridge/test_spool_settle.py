"""The bridge's spool: settlement by acknowledgement, and the release of settled segments and acks, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.spool import Spool, _acks
from firmware_bridge.spool import _format as fmt
from spool_support import T0, entry_bounds, recs, segment_files


# ---------------------------------------------------------------- settlement
def test_settle_releases_records_counts_only_new_ones_and_is_idempotent(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 10))
        assert spool.settle("boot-a", [[0, 3], [2, 5]]) == 6
        assert spool.settle("boot-a", [[0, 5]]) == 0
        assert spool.settle("boot-a", [[5, 7], [9, 9]]) == 3
        assert [r.seq for _, r in spool.pending()] == [8]
        stats = spool.stats()
        assert (stats.settled_total, stats.pending_records, stats.oldest_pending_t) == (9, 1, T0 + 8000)


def test_settle_ignores_unknown_boots_seqs_and_empty_ranges(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append_many("boot-a", recs(5, 8))
        assert spool.settle("boot-x", [[0, 100]]) == 0
        assert spool.settle("boot-a", [[0, 4], [8, 1000], [7, 6]]) == 0
        assert spool.settle("boot-a", []) == 0
        assert spool.stats().pending_records == 3
        assert (tmp_path / "s" / "acks.log").stat().st_size == entry_bounds(tmp_path / "s" / "acks.log")[0][1]


@pytest.mark.parametrize("bad", [[[1]], [[1, 2, 3]], [["1", 2]], [[1.0, 2]], [5], [[True, 2]]],
                         ids=["one-seq", "three-seqs", "string", "float", "not-a-pair", "bool"])
def test_settle_refuses_malformed_ranges_with_a_clear_error(tmp_path: Path, bad: list) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 3))
        with pytest.raises(ValueError, match="settle range"):
            spool.settle("boot-a", bad)
        assert spool.stats().pending_records == 3


def test_settlements_survive_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="always") as spool:
        spool.append_many("boot-a", recs(0, 20))
        spool.settle("boot-a", [[0, 4], [10, 14]])
    with Spool(directory, fsync="always") as spool:
        assert [r.seq for _, r in spool.pending()] == [*range(5, 10), *range(15, 20)]
        assert spool.settle("boot-a", [[0, 4]]) == 0
        stats = spool.stats()
        assert (stats.appended_total, stats.settled_total, stats.pending_records) == (20, 10, 10)


# ---------------------------------------------------------------- release of settled segments and acks
def test_segments_are_deleted_once_every_record_in_them_is_settled(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never", segment_bytes=1024, max_bytes=1 << 20) as spool:
        spool.append_many("boot-a", recs(0, 100))
        files = segment_files(directory)
        assert len(files) >= 5
        first = entry_bounds(files[0])
        spool.settle("boot-a", [[0, len(first) - 2]])
        assert files[0].exists()  # one record of it still pending
        spool.settle("boot-a", [[len(first) - 1, len(first) - 1]])
        assert not files[0].exists()
        spool.settle("boot-a", [[0, 99]])
        assert segment_files(directory) == [files[-1]]  # the segment being written stays until closed
        assert spool.stats().segments == 1
    assert segment_files(directory) == []


def test_group_mode_unlinks_settled_segments_with_the_next_commit(tmp_path: Path) -> None:
    now = [0.0]
    directory = tmp_path / "s"
    with Spool(directory, fsync="group", segment_bytes=1024, max_bytes=1 << 20, clock=lambda: now[0]) as spool:
        spool.append_many("boot-a", recs(0, 40))
        files = segment_files(directory)
        spool.settle("boot-a", [[0, 39]])
        assert spool.stats().segments == 1
        assert all(f.exists() for f in files)  # unlinked after the settlements are synced
        now[0] += 1
        spool.tick()
        assert segment_files(directory) == [files[-1]]


def test_acks_log_shrinks_to_its_header_once_everything_is_settled(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    acks = directory / "acks.log"
    with Spool(directory, fsync="never", segment_bytes=1024, max_bytes=1 << 20) as spool:
        assert len(entry_bounds(acks)) == 1
        spool.append_many("boot-a", recs(0, 60))
        for s in range(0, 60, 2):
            spool.settle("boot-a", [[s, s + 1]])
        assert len(entry_bounds(acks)) > 1
    entries = [e for e in fmt.scan(acks.read_bytes()) if isinstance(e, fmt.Entry)]
    assert [e.magic for e in entries] == [fmt.HEAD]
    assert entries[0].end == acks.stat().st_size
    with Spool(directory, fsync="never") as spool:
        assert spool.pending() == []
        assert spool.stats().settled_total == 60


def test_acks_compaction_keeps_settlements_of_records_still_on_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_acks, "ACKS_COMPACT_BYTES", 256)  # where acks.log is compacted
    directory = tmp_path / "s"
    acks = directory / "acks.log"
    with Spool(directory, fsync="never", segment_bytes=1024, max_bytes=1 << 20) as spool:
        spool.append_many("boot-a", recs(0, 200))
        for s in range(0, 200, 2):  # every other record: no segment empties until the end
            spool.settle("boot-a", [[s, s]])
        grown = acks.stat().st_size
        last = entry_bounds(segment_files(directory)[0])
        spool.settle("boot-a", [[s, s] for s in range(1, 2 * len(last), 2)])  # empties the first segments
        assert acks.stat().st_size < grown  # rewritten without the settlements of deleted files
        expected = [s for s in range(2 * len(last), 200) if s % 2]
        assert [r.seq for _, r in spool.pending()] == expected
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == expected
        assert spool.stats().settled_total == 200 - len(expected)
