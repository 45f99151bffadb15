"""The bridge's spool: recovery from torn, corrupt and rotted files and from kill -9, on real files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from firmware_bridge.spool import Spool
from firmware_bridge.spool import _format as fmt
from spool_support import ROOT, crash, entry_bounds, rec, recs, segment_files, seqs


# ---------------------------------------------------------------- recovery from damaged files
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


# ---------------------------------------------------------------- recovery from kill -9 and crashes
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
