"""The bridge's spool: appending and reading back, what append refuses, locking, closing, I/O errors and export."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.spool import Spool, SpoolClosed, SpoolIOError, SpoolLocked
from qsec import contract
from spool_support import ROOT, T0, rec, recs, segment_files, seqs


# ---------------------------------------------------------------- round trip
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
