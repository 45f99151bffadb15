"""The bridge's spool: durability, recovery, bounds, settlement and export, on real files."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from firmware_bridge.spool import Spool, SpoolClosed, SpoolIOError, SpoolLocked, _acks, _commit
from firmware_bridge.spool import _format as fmt
from qsec import contract
from qsec.contract import Record

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000


def rec(seq: int, **values: float) -> Record:
    return Record(seq=seq, t=T0 + 1000 * seq, sensor="plantower-pms5003",
                  values=values or {"pm2_5": 5.0 + seq % 7, "pm10": 9.5})


def recs(lo: int, hi: int) -> list[Record]:
    return [rec(s) for s in range(lo, hi)]


def seqs(pending: list[tuple[str, Record]]) -> list[tuple[str, int]]:
    return [(boot, r.seq) for boot, r in pending]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log"))


def entry_bounds(path: Path) -> list[tuple[int, int]]:
    """(start, end) of every entry in a spool file."""
    data = path.read_bytes()
    return [(e.start, e.end) for e in fmt.scan(data) if isinstance(e, fmt.Entry)]


def crash(spool: Spool) -> None:
    """What kill -9 leaves behind: every byte written so far, no sync, no state saved, the lock released."""
    spool._closed = True
    spool._close_fds()


# ---------------------------------------------------------------- round trip and settlement
def test_appended_records_come_back_pending_oldest_first_with_their_boot(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append("boot-a", rec(0, pm2_5=1.25, temperature=-3.5))
        spool.append_many("boot-a", recs(1, 5))
        spool.append_many("boot-b", recs(0, 3))
        pending = spool.pending()
        assert seqs(pending) == [("boot-a", s) for s in range(5)] + [("boot-b", s) for s in range(3)]
        assert pending[0][1] == rec(0, pm2_5=1.25, temperature=-3.5)
        assert seqs(spool.pending(limit=2)) == [("boot-a", 0), ("boot-a", 1)]
        assert spool.pending(limit=0) == []
        stats = spool.stats()
        assert (stats.pending_records, stats.appended_total, stats.oldest_pending_t) == (8, 8, T0)
        assert stats.pending_bytes == stats.disk_bytes > 0


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


# ---------------------------------------------------------------- recovery
def test_a_torn_tail_at_every_byte_is_skipped_counted_and_truncated(tmp_path: Path) -> None:
    original = tmp_path / "original"
    with Spool(original, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 5))
    seg = segment_files(original)[0]
    start, end = entry_bounds(seg)[-1]
    for cut in range(start + 1, end):
        directory = tmp_path / f"cut-{cut}"
        shutil.copytree(original, directory)
        with open(directory / seg.name, "r+b") as f:
            f.truncate(cut)
        with Spool(directory, fsync="never") as spool:
            assert [r.seq for _, r in spool.pending()] == [0, 1, 2, 3], cut
            assert spool.stats().torn_skipped == 1
            assert (directory / seg.name).stat().st_size == start  # cut back to the last good entry
            spool.append_many("boot-b", recs(0, 2))
        with Spool(directory, fsync="never") as spool:
            assert seqs(spool.pending()) == [("boot-a", s) for s in range(4)] + [("boot-b", 0), ("boot-b", 1)]
            assert spool.stats().torn_skipped == 1  # counted once
        shutil.rmtree(directory)


def test_zeros_left_at_the_tail_by_a_power_cut_are_cut_off(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 3))
    seg = segment_files(directory)[0]
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(bytes(4096))
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == [0, 1, 2]
        assert spool.stats().torn_skipped == 1
    assert seg.stat().st_size == size


@pytest.mark.parametrize("where", ["payload", "crc", "length", "magic"])
def test_a_corrupt_entry_in_the_middle_is_caught_skipped_and_counted_once(tmp_path: Path, where: str) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 9))
    seg = segment_files(directory)[0]
    start, end = entry_bounds(seg)[4]
    offset = {"magic": start, "length": start + 5, "crc": start + 9, "payload": (start + end) // 2}[where]
    data = bytearray(seg.read_bytes())
    data[offset] ^= 0x20
    seg.write_bytes(bytes(data))
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == [0, 1, 2, 3, 5, 6, 7, 8]
        assert spool.stats().torn_skipped == 1
        spool.append("boot-a", rec(9))
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
        assert spool.stats().torn_skipped == 1
        spool.settle("boot-a", [[0, 9]])
    assert segment_files(directory) == []


def test_a_record_that_rots_on_disk_after_it_was_written_is_skipped_when_read(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 5))
        seg = segment_files(directory)[0]
        start, end = entry_bounds(seg)[2]
        with open(seg, "r+b") as f:
            f.seek(end - 3)
            f.write(b"\xff")
        assert [r.seq for _, r in spool.pending()] == [0, 1, 3, 4]
        assert spool.stats().torn_skipped == 1
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == [0, 1, 3, 4]
        assert spool.stats().torn_skipped == 1


def test_a_damaged_acks_log_is_rewritten_and_its_readable_settlements_kept(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 10))
        spool.settle("boot-a", [[0, 1]])
        spool.settle("boot-a", [[2, 3]])
    acks = directory / "acks.log"
    with open(acks, "r+b") as f:
        f.truncate(acks.stat().st_size - 4)
    with Spool(directory, fsync="never") as spool:
        # the torn settlement is lost: those records are offered again (ingest deduplicates them)
        assert [r.seq for _, r in spool.pending()] == list(range(2, 10))
        assert spool.stats().settled_total >= 2
    assert all(isinstance(e, fmt.Entry) for e in fmt.scan(acks.read_bytes()))


def test_files_that_are_not_segments_are_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "notes.txt").write_text("hello")
    (directory / "seg-abc.log").write_text("not a segment name")
    with Spool(directory, fsync="never") as spool:
        spool.append("boot-a", rec(0))
    assert (directory / "notes.txt").read_text() == "hello"
    assert (directory / "seg-abc.log").exists()


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from firmware_bridge.spool import Spool
    from qsec.contract import Record

    spool = Spool(Path(sys.argv[1]), fsync="always", segment_bytes=2048, max_bytes=1 << 20)
    boot = sys.argv[2]
    seq = 0
    while True:
        spool.append(boot, Record(seq=seq, t=1767225600000 + seq, sensor="plantower-pms5003",
                                  values={"pm2_5": float(seq % 50), "pm10": 12.5}))
        print("a", seq, flush=True)
        if seq % 3 == 2:
            print("S", seq - 2, seq - 1, flush=True)  # about to settle: these may be gone or not
            spool.settle(boot, [[seq - 2, seq - 1]])
            print("s", seq - 2, seq - 1, flush=True)  # settled for sure
        seq += 1
""")


def test_kill_9_mid_stream_loses_no_record_that_was_acknowledged_and_doubles_none(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    appended: dict[str, set[int]] = {}  # append returned
    settling: dict[str, set[int]] = {}  # settle called
    settled: dict[str, set[int]] = {}  # settle returned
    for round_, stop_after in enumerate((120, 75, 160)):
        boot = f"kill-{round_}"
        lines: list[str] = []
        with subprocess.Popen([sys.executable, "-c", CHILD, str(directory), boot], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) as child:
            assert child.stdout is not None and child.stderr is not None
            try:
                for line in child.stdout:
                    lines.append(line)
                    if sum(1 for seen in lines if seen[0] == "a") >= stop_after:
                        child.send_signal(signal.SIGKILL)  # mid-stream: the child is busy with the next one
                        break
            finally:
                child.kill()
                rest = child.stdout.read()  # what the child printed before it died, buffered lines included
                err = child.stderr.read()
                child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        appended[boot], settling[boot], settled[boot] = set(), set(), set()
        for line in lines + rest.splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # the kill cut the line
            kind, *numbers = line.split()
            if kind == "a":
                appended[boot].add(int(numbers[0]))
            else:
                target = settling if kind == "S" else settled
                target[boot].update(range(int(numbers[0]), int(numbers[1]) + 1))
        assert len(appended[boot]) >= stop_after
        with Spool(directory, fsync="always") as spool:
            pending = seqs(spool.pending())
            assert len(pending) == len(set(pending)), "a record came back twice"
            for b in appended:
                held = {s for pb, s in pending if pb == b}
                lost = appended[b] - settling[b] - held
                assert not lost, f"lost {sorted(lost)}"
                assert not held & settled[b], "a settled record came back"
                assert held <= set(range(max(appended[b]) + 2)), "a record appeared from nowhere"
            stats = spool.stats()
            assert stats.torn_skipped <= round_ + 1
            assert stats.pending_records + stats.settled_total + stats.dropped_full <= stats.appended_total


def test_counters_survive_reopen_and_add_up(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never", segment_bytes=512, max_bytes=2048) as spool:
        spool.append_many("boot-a", recs(0, 30))
        spool.settle("boot-a", [[20, 25]])
        before = spool.stats()
    assert before.dropped_full > 0
    with Spool(directory, fsync="never", segment_bytes=512, max_bytes=2048) as spool:
        after = spool.stats()
    assert after == before
    assert after.appended_total == after.pending_records + after.settled_total + after.dropped_full


def test_counters_are_rebuilt_after_a_crash_without_a_saved_state(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    spool = Spool(directory, fsync="never", segment_bytes=1024, max_bytes=1 << 20)
    spool.append_many("boot-a", recs(0, 50))
    spool.settle("boot-a", [[0, 29]])
    crash(spool)
    with Spool(directory, fsync="never") as spool:
        stats = spool.stats()
        assert (stats.appended_total, stats.settled_total, stats.pending_records) == (50, 30, 20)
        assert [r.seq for _, r in spool.pending()] == list(range(30, 50))


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


# ---------------------------------------------------------------- what append refuses
def test_append_refuses_seqs_that_do_not_increase_bad_boots_and_non_finite_values(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 3))
        with pytest.raises(ValueError, match="must increase"):
            spool.append("boot-a", rec(2))
        with pytest.raises(ValueError, match="must increase"):
            spool.append_many("boot-a", [rec(3), rec(5), rec(4)])
        with pytest.raises(ValueError, match="boot"):
            spool.append("bad boot!", rec(0))
        with pytest.raises(ValueError, match="finite"):
            spool.append_many("boot-a", [rec(3), rec(4, pm2_5=float("nan"))])
        assert [r.seq for _, r in spool.pending()] == [0, 1, 2]  # nothing of a refused call is written
        spool.append("boot-a", rec(3))
    with Spool(tmp_path / "s", fsync="never") as spool:
        with pytest.raises(ValueError, match="must increase"):
            spool.append("boot-a", rec(3))  # remembered across reopen while the records are held


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


# ---------------------------------------------------------------- locking, closing, errors
def test_a_second_spool_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never"):
        with pytest.raises(SpoolLocked, match="another bridge process"):
            Spool(directory, fsync="never")
        code = f"from firmware_bridge.spool import Spool; Spool({str(directory)!r})"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode != 0 and f"pid {os.getpid()}" in out.stderr
    with Spool(directory, fsync="never"):
        pass  # free again once closed


def test_a_closed_spool_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", fsync="never")
    spool.close()
    spool.close()
    for call in (lambda: spool.append("boot-a", rec(0)), spool.pending, spool.stats, spool.flush, spool.tick):
        with pytest.raises(SpoolClosed, match="closed"):
            call()


def test_a_full_disk_raises_an_error_saying_what_to_do_and_leaves_no_half_entry(tmp_path: Path,
                                                                                monkeypatch) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 3))
        size = segment_files(directory)[0].stat().st_size
        real_write = os.write

        def half_then_full(fd: int, data) -> int:
            if len(data) > 40:
                return real_write(fd, bytes(data[:40]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_full)
        with pytest.raises(SpoolIOError, match="full: free space") as info:
            spool.append("boot-a", rec(3))
        assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
        monkeypatch.undo()
        assert segment_files(directory)[0].stat().st_size == size
        spool.append("boot-a", rec(3))
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == [0, 1, 2, 3]
        assert spool.stats().torn_skipped == 0


def test_a_batch_that_fails_in_its_second_segment_is_taken_back_whole(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "s"
    with Spool(directory, fsync="never", segment_bytes=1024, max_bytes=1 << 20) as spool:
        spool.append_many("boot-a", recs(0, 5))
        before = spool.stats()
        sizes = {f.name: f.stat().st_size for f in segment_files(directory)}
        real_write = os.write
        calls = []

        def second_write_fails(fd: int, data) -> int:
            calls.append(len(data))
            if len(calls) == 2:
                raise OSError(errno.EIO, "Input/output error")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", second_write_fails)
        with pytest.raises(SpoolIOError, match="failing"):
            spool.append_many("boot-a", recs(5, 30))  # more than the first segment holds
        monkeypatch.undo()
        assert len(calls) == 2
        assert dataclasses.replace(spool.stats(), segments=before.segments) == before  # plus an empty segment
        assert [r.seq for _, r in spool.pending()] == list(range(5))
        assert {f.name: f.stat().st_size for f in segment_files(directory) if f.stat().st_size} == sizes
        spool.append_many("boot-a", recs(5, 30))  # the same records again: accepted
    with Spool(directory, fsync="never") as spool:
        assert [r.seq for _, r in spool.pending()] == list(range(30))
        assert spool.stats().appended_total == 30


def test_a_spool_path_that_is_a_file_gives_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpoolIOError, match="spool directory"):
        Spool(tmp_path / "file", fsync="never")


# ---------------------------------------------------------------- export
def test_export_writes_a_header_and_batches_that_ingest_accepts(tmp_path: Path) -> None:
    out = tmp_path / "usb" / "kit-07.qsec.jsonl"
    out.parent.mkdir()
    with Spool(tmp_path / "s", fsync="never") as spool:
        spool.append_many("boot-a", recs(0, 700))
        spool.append_many("boot-b", [rec(s, pm2_5=1.5, relative_humidity=55.0) for s in range(300)])
        spool.settle("boot-a", [[0, 99]])
        assert spool.export(out, device="kit-07", campaign="lyon-2026") == 900
        assert spool.stats().pending_records == 900  # exporting does not settle
        expected = seqs(spool.pending())
    lines = out.read_bytes().splitlines()
    header = json.loads(lines[0])
    assert header["qsec_spool_export"] == 1 and header["device"] == "kit-07" and header["campaign"] == "lyon-2026"
    assert isinstance(header["exported"], int)
    got: list[tuple[str, int]] = []
    for line in lines[1:]:
        decoded = contract.decode_batch(line, device="kit-07")
        assert decoded.refused == [] and 0 < len(decoded.records) <= 500
        got.extend((decoded.boot, r.seq) for r in decoded.records)
    assert got == expected
    assert [len(json.loads(line)["records"]) for line in lines[1:]] == [500, 100, 300]
    assert not out.with_name(out.name + ".tmp").exists()


def test_export_refuses_ids_that_break_the_contract(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", fsync="never") as spool:
        with pytest.raises(ValueError, match="device"):
            spool.export(tmp_path / "x.jsonl", device="Kit 7", campaign="c")
    assert not (tmp_path / "x.jsonl").exists()


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
