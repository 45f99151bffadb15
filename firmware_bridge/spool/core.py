"""The bridge's durable spool: an append-only log of records with a settlement log.

See ``docs/spool.md`` for the on-disk format, the recovery rules and the
performance figures.  Standard library only: this runs on a Raspberry Pi.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import os
import re
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from qsec import contract

from . import _format as fmt
from ._export import write_export
from ._files import atomic_write, datasync, lock_directory, sync_dir, unlock, write_all
from ._index import (
    LOC_MASK, LOC_SHIFT, LOST, PENDING, SETTLED, SETTLED_BYTE, BootIndex, Segment, checked_range, merge_ranges, runs,
)
from .errors import SpoolClosed, io_error

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "group", "never")
STATE_NAME = "state.json"
ACKS_NAME = "acks.log"
SEGMENT_RE = re.compile(r"^seg-(\d{8,})\.log$")
ACKS_COMPACT_BYTES = 64 * 1024  # acks.log is rewritten once it is above this and has doubled
READ_FDS = 8  # segments kept open for reading
MIN_SEGMENT_BYTES = 256
MAX_SEGMENT_BYTES = 2**31


def segment_name(seg_id: int) -> str:
    """File name of segment ``seg_id``: ``seg-<n:08d>.log``."""
    return f"seg-{seg_id:08d}.log"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class SpoolStats:
    """A snapshot of the spool's counters.

    Attributes
    ----------
    pending_records, pending_bytes : int
        Unsettled records and their size on disk (entry headers included).
    appended_total, settled_total : int
        Records appended and settled over the spool's life (they survive restarts).
    dropped_full : int
        Unsettled records dropped because the spool was full (oldest first).
    torn_skipped : int
        Torn or corrupt entries (or runs of corrupt bytes) skipped.
    segments : int
        Segment files on disk.
    oldest_pending_t : int or None
        Measurement time [ms since epoch] of the oldest pending record
        (the first in spool order), None when nothing is pending.
    disk_bytes : int
        Total size of the segment files (what ``max_bytes`` bounds).
    """

    pending_records: int
    pending_bytes: int
    appended_total: int
    settled_total: int
    dropped_full: int
    torn_skipped: int
    segments: int
    oldest_pending_t: int | None
    disk_bytes: int = 0


class Spool:
    """Durable, bounded, crash-safe spool of records awaiting end-to-end settlement.

    Every record is appended to a segment file before it is published; it
    leaves the spool when :meth:`settle` names it (ingest committed it).
    One process at a time may open a directory.  Methods are thread-safe
    (they take an internal lock), so the MQTT thread may call :meth:`settle`
    while the main loop appends.

    Parameters
    ----------
    directory : Path
        Spool directory, created if missing.  Use a directory of its own.
    max_bytes : int
        Bound on the total size of segment files.  When an append would pass
        it, the oldest segments are dropped whole and their unsettled records
        counted in ``dropped_full``.  At least ``2 * segment_bytes``.
    fsync : {"always", "group", "never"}
        ``"always"``: every append and settle is synced before it returns.
        ``"group"``: synced at most ``group_interval_s`` later (by the next
        append or settle once the interval has passed, or by :meth:`tick`,
        which the caller's loop calls regularly).  ``"never"``: left to the
        operating system (tests, tmpfs).  In every mode a record is handed
        to the kernel before :meth:`append` returns, so killing the process
        loses nothing; the policy decides what a power cut may lose.
    group_interval_s : float
        Group-commit interval [s].
    segment_bytes : int
        A new segment file is started when the current one would pass this size.
    clock : callable
        Monotonic clock [s] used for the group-commit timer.

    Raises
    ------
    SpoolLocked
        When another process (or another open Spool) uses the directory.
    SpoolIOError
        On a real I/O problem (permissions, full or read-only disk); the message says what to do.
    ValueError
        On inconsistent parameters.
    """

    def __init__(self, directory: Path, *, max_bytes: int = 64 * 2**20, fsync: str = "group",
                 group_interval_s: float = 0.1, segment_bytes: int = 1 * 2**20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync={fsync!r}; use one of {', '.join(FSYNC_POLICIES)}")
        if not MIN_SEGMENT_BYTES <= segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes={segment_bytes} must be from {MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES}")
        if max_bytes < 2 * segment_bytes:
            raise ValueError(f"max_bytes={max_bytes} must be at least 2 * segment_bytes ({2 * segment_bytes}): "
                             "the spool drops whole segments when full; lower segment_bytes or raise max_bytes")
        if not group_interval_s >= 0:
            raise ValueError(f"group_interval_s={group_interval_s} must be >= 0")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.group_interval_s = group_interval_s
        self._clock = clock
        self._sync = fsync != "never"
        self._lock = threading.RLock()
        self._closed = True

        self._segments: collections.OrderedDict[int, Segment] = collections.OrderedDict()
        self._active: Segment | None = None
        self._active_fd: int | None = None
        self._read_fds: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._unsynced: set[int] = set()  # ids of closed segments not yet synced ("never" mode)
        self._closing: list[tuple[Path, int]] = []  # rolled segments to sync and close at the next group commit
        self._doomed: list[Path] = []  # settled segments to unlink at the next group commit
        self._dir_dirty = False  # a segment was created since the last group commit
        self._boots: dict[str, BootIndex] = {}
        self._boot_names: list[str] = []
        self._boot_ids: dict[str, int] = {}
        self._prefixes: dict[str, bytes] = {}
        self._last_seq: dict[str, int] = {}
        self._skips: dict[int, dict[int, int]] = {}  # segment -> {start: end} of counted corrupt bytes
        self._next_id = 1
        self._disk_bytes = 0
        self._appended = self._settled = self._dropped = self._torn = 0
        self._dropped_through = 0
        self._acks_fd: int | None = None
        self._acks_size = 0
        self._acks_compacted_size = 0
        self._seg_dirty = self._acks_dirty = False
        self._last_flush = clock()

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error(exc, "creating the spool directory", self.directory) from exc
        self._dir_fd = -1
        self._lock_fd = lock_directory(self.directory)
        try:
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            self._recover()
        except BaseException:
            self._close_fds()
            raise
        self._closed = False

    # ------------------------------------------------------------ public API
    def append(self, boot: str, record: contract.Record) -> None:
        """Append one record of ``boot``; see :meth:`append_many`."""
        with self._lock:
            self._append_locked(boot, (record,))

    def append_many(self, boot: str, records: Iterable[contract.Record]) -> None:
        """Append records of ``boot``, in order, with one write.

        The records reach the kernel before this returns (a killed process
        loses none), and the disk per the ``fsync`` policy.

        Raises
        ------
        ValueError
            When ``boot`` breaks the contract's boot pattern, a seq is not
            above the last seq spooled for ``boot`` (seqs must increase within
            a boot), or a record cannot be encoded as JSON (non-finite value);
            nothing of the call is written then.
        SpoolIOError
            When the disk refuses the write.  Nothing of the call is kept then
            (chunks already written to earlier segments are taken back), so
            the caller may retry the same records.
        """
        with self._lock:
            self._append_locked(boot, records)

    def flush(self) -> None:
        """Sync everything written so far to the disk now, whatever the policy."""
        with self._lock:
            self._check_open()
            self._sync_files()

    def tick(self) -> None:
        """Group-commit timer: sync when there is unsynced data and the interval has passed.

        Call it from the bridge's main loop (every few tens of milliseconds);
        it costs nothing when there is nothing to do.
        """
        with self._lock:
            self._check_open()
            if (self.fsync == "group" and self._dirty()
                    and self._clock() - self._last_flush >= self.group_interval_s):
                self._sync_files()

    def pending(self, limit: int | None = None) -> list[tuple[str, contract.Record]]:
        """Unsettled records, oldest first, as ``(boot, record)`` pairs.

        Parameters
        ----------
        limit : int, optional
            At most this many.  On a small machine use a limit: a full spool
            holds hundreds of thousands of records.
        """
        with self._lock:
            self._check_open()
            if limit is not None and limit <= 0:
                return []
            out: list[tuple[str, contract.Record]] = []
            for chunk in self._iter_pending(limit):
                out.extend(chunk)
            return out

    def settle(self, boot: str, ranges: Iterable[Iterable[int]]) -> int:
        """Mark records of ``boot`` settled (ingest confirmed them) and release them.

        Parameters
        ----------
        boot : str
            Boot id the ranges belong to.
        ranges : list of [lo, hi]
            Inclusive seq ranges (``Feedback.settled[boot]``).  Seqs the spool
            does not hold are ignored; settling twice is harmless.

        Returns
        -------
        int
            How many records were newly settled.
        """
        with self._lock:
            self._check_open()
            merged = merge_ranges(checked_range(r) for r in ranges)
            bi = self._boots.get(boot)
            if bi is None or not merged:
                return 0
            spans, seqs = self._find_pending(bi, merged)
            if not seqs:
                return 0
            payload = fmt.json_bytes({"b": boot, "r": runs(seqs), "n": len(seqs)})
            self._write_ack(fmt.frame(fmt.ACK, payload))
            done: dict[int, Segment] = {}
            for seg, a, b in spans:
                seg.state[a:b] = SETTLED_BYTE * (b - a)
                seg.live -= b - a
                seg.live_bytes -= sum(seg.lengths[a:b])
                if seg.live == 0 and seg is not self._active:
                    done[seg.id] = seg
            self._settled += len(seqs)
            self._after_write()
            if done:
                self._delete_segments(list(done.values()))
            return len(seqs)

    def stats(self) -> SpoolStats:
        """Counters and sizes now (cheap; reads one record for ``oldest_pending_t``)."""
        with self._lock:
            self._check_open()
            oldest = None
            for chunk in self._iter_pending(1):
                oldest = chunk[0][1].t
            segs = self._segments.values()
            return SpoolStats(
                pending_records=sum(s.live for s in segs), pending_bytes=sum(s.live_bytes for s in segs),
                appended_total=self._appended, settled_total=self._settled, dropped_full=self._dropped,
                torn_skipped=self._torn, segments=len(self._segments), oldest_pending_t=oldest,
                disk_bytes=self._disk_bytes)

    def export(self, out_path: Path, device: str, campaign: str) -> int:
        """Write every pending record to ``out_path`` for ``qsec import`` (offline kits, USB stick).

        The file is JSON lines: a header ``{"qsec_spool_export": 1, "device",
        "campaign", "exported": ms}``, then one contract v1 Batch per line
        (records of one boot, at most 500 a line, oldest first).  It is
        written to a temporary name, synced and renamed, so a pulled stick
        never holds half a file under the final name.  Records stay pending:
        ingest deduplicates them if they are later uploaded over MQTT too.

        Returns
        -------
        int
            Records written.
        """
        with self._lock:
            self._check_open()
            return write_export(Path(out_path), device, campaign, self._iter_pending(None))

    def close(self) -> None:
        """Sync (unless fsync="never"), save the counters, release the directory.

        A last segment whose records are all settled is removed.  Calling it
        twice is harmless.
        """
        with self._lock:
            if self._closed:
                return
            try:
                if self._active is not None and self._active.live == 0:
                    self._roll()
                if self._sync:
                    self._sync_files()
                self._save_state()
                self._maybe_compact_acks()
            finally:
                self._closed = True
                self._close_fds()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._segments)} segments, {self._disk_bytes} bytes"
        return f"Spool({str(self.directory)!r}, fsync={self.fsync!r}, {state})"

    # ------------------------------------------------------------ appending
    def _check_open(self) -> None:
        if self._closed:
            raise SpoolClosed(f"spool {self.directory} is closed; open a new Spool to use it again")

    def _boot_prefix(self, boot: str) -> bytes:
        prefix = self._prefixes.get(boot)
        if prefix is None:
            if not isinstance(boot, str) or not contract.BOOT_PATTERN.match(boot):
                raise ValueError(f"boot {boot!r} must match {contract.BOOT_PATTERN.pattern}")
            prefix = self._prefixes[boot] = fmt.boot_prefix(boot)
            self._boot_id(boot)
        return prefix

    def _boot_id(self, boot: str) -> int:
        bid = self._boot_ids.get(boot)
        if bid is None:
            bid = self._boot_ids[boot] = len(self._boot_names)
            self._boot_names.append(boot)
        return bid

    def _append_locked(self, boot: str, records: Iterable[contract.Record]) -> None:
        self._check_open()
        prefix = self._boot_prefix(boot)
        last = self._last_seq.get(boot, -1)
        seqs: list[int] = []
        frames: list[bytes] = []
        for record in records:
            seq = record.seq
            if type(seq) is not int or seq < 0:
                raise ValueError(f"record seq {seq!r} of boot {boot!r} must be an integer >= 0")
            if seq <= last:
                raise ValueError(f"record seq {seq!r} of boot {boot!r} is not above the last spooled seq {last}: "
                                 "seqs must increase within a boot (start a new boot id after a restart)")
            try:
                data = fmt.record_frame(prefix, record)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"record seq {seq} of boot {boot!r} cannot be spooled ({exc}); "
                                 "values must be finite numbers and fields JSON types") from None
            if len(data) > self.segment_bytes:
                raise ValueError(f"record seq {seq} takes {len(data)} bytes, more than segment_bytes "
                                 f"({self.segment_bytes}); raise segment_bytes")
            seqs.append(seq)
            frames.append(data)
            last = seq
        if frames:
            self._write_records(boot, seqs, frames)

    def _write_records(self, boot: str, seqs: list[int], frames: list[bytes]) -> None:
        """Write, index and sync (per policy) the frames, all or none.

        A failure, of the write or of the sync, takes back the chunks already
        written, so the caller may retry with the same records.
        """
        last_before = self._last_seq.get(boot)
        written: list[tuple[Segment, int, int]] = []  # (segment, size, entries) before each chunk
        try:
            self._write_chunks(boot, seqs, frames, written)
            self._after_write()
        except BaseException:
            if written:
                self._undo_chunks(boot, written, last_before)
            raise

    def _write_chunks(self, boot: str, seqs: list[int], frames: list[bytes],
                      written: list[tuple[Segment, int, int]]) -> None:
        bid = self._boot_ids[boot]
        i, n = 0, len(frames)
        while i < n:
            seg = self._place(len(frames[i]))  # may drop or remove segments, hence the boot index fetched after
            bi = self._boots.get(boot)
            if bi is None:
                bi = self._boots[boot] = BootIndex()
            room = min(self.segment_bytes - seg.size, self.max_bytes - self._disk_bytes)
            j, size = i + 1, len(frames[i])  # _place made room for the first
            while j < n and size + len(frames[j]) <= room:
                size += len(frames[j])
                j += 1
            assert self._active_fd is not None
            write_all(self._active_fd, b"".join(frames[i:j]), seg.path, seg.size)
            written.append((seg, seg.size, len(seg.state)))
            count = j - i
            lengths = [len(f) for f in frames[i:j]]
            first = len(seg.state)
            seg.offsets.extend(itertools.accumulate(lengths[:-1], initial=seg.size))
            seg.lengths.extend(lengths)
            seg.boots.extend(array("I", (bid,)) * count)
            seg.state.extend(bytes(count))  # PENDING
            seg.live += count
            seg.live_bytes += size
            base = (seg.id << LOC_SHIFT) | first
            if bi.seqs and seqs[i] <= bi.seqs[-1]:  # never met: seqs increase within a boot
                for k in range(count):
                    bi.add(seqs[i + k], base + k)
            else:
                bi.seqs.extend(seqs[i:j])
                bi.locs.extend(range(base, base + count))
            seg.size += size
            self._disk_bytes += size
            self._appended += count
            self._last_seq[boot] = seqs[j - 1]
            self._seg_dirty = True
            i = j

    def _undo_chunks(self, boot: str, written: list[tuple[Segment, int, int]], last_before: int | None) -> None:
        """Take back the chunks of a failed append: out of the index, and cut off the files."""
        count = sum(len(seg.state) - entries for seg, _, entries in written)
        bi = self._boots[boot]
        del bi.seqs[len(bi.seqs) - count:]
        del bi.locs[len(bi.locs) - count:]
        for seg, size, entries in reversed(written):
            removed_bytes = seg.size - size
            seg.live -= len(seg.state) - entries
            seg.live_bytes -= removed_bytes
            del seg.offsets[entries:], seg.lengths[entries:], seg.boots[entries:], seg.state[entries:]
            seg.size = size
            self._disk_bytes -= removed_bytes
            try:
                os.truncate(seg.path, size)
            except OSError as exc:  # they come back as pending after a restart; ingest deduplicates them
                log.error("spool %s: could not cut %s back after a failed append: %s", self.directory, seg.path, exc)
        self._appended -= count
        if last_before is None:
            self._last_seq.pop(boot, None)
        else:
            self._last_seq[boot] = last_before

    def _place(self, size: int) -> Segment:
        """Make room for an entry of ``size`` bytes and return the segment it goes to."""
        seg = self._active
        if seg is not None and seg.size > 0 and seg.size + size > self.segment_bytes:
            self._roll()
        if self._disk_bytes + size > self.max_bytes:
            self._drop_oldest(size)
        if self._active is None:
            self._new_segment()
        assert self._active is not None
        return self._active

    def _new_segment(self) -> None:
        seg_id = self._next_id
        path = self.directory / segment_name(seg_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError as exc:
            raise io_error(exc, "creating", path) from exc
        self._next_id += 1
        if self.fsync == "always":
            sync_dir(self._dir_fd, self.directory)
        elif self.fsync == "group":
            self._dir_dirty = True
        seg = Segment(seg_id, path)
        self._segments[seg_id] = seg
        self._active, self._active_fd = seg, fd

    def _roll(self) -> None:
        """Close the current segment (synced per policy); remove it if fully settled."""
        seg, fd = self._active, self._active_fd
        if seg is None or fd is None:
            return
        self._active = self._active_fd = None
        if self._seg_dirty and self.fsync == "group":
            self._closing.append((seg.path, fd))  # synced with the next group commit
        else:
            if self._seg_dirty:
                self._unsynced.add(seg.id)  # "never": synced by an explicit flush() only
            os.close(fd)
        self._seg_dirty = False
        if seg.live == 0:
            self._delete_segments([seg])

    def _drop_oldest(self, size: int) -> None:
        """The spool is full: drop the oldest segments whole, counting their unsettled records."""
        victims: list[Segment] = []
        freed = 0
        for seg in self._segments.values():
            if self._disk_bytes - freed + size <= self.max_bytes or seg is self._active:
                break
            victims.append(seg)
            freed += seg.size
        if not victims:
            return
        lost = sum(v.live for v in victims)
        self._dropped += lost
        self._dropped_through = max(self._dropped_through, victims[-1].id)
        # Count first, then delete: after a crash in between, recovery deletes
        # segments up to dropped_through again without counting them twice.
        self._save_state()
        for seg in victims:
            self._remove_segment(seg)
        self._maybe_compact_acks()
        log.warning("spool %s full (max_bytes=%d): dropped %d unsettled records in %d oldest segment(s)",
                    self.directory, self.max_bytes, lost, len(victims))

    def _after_write(self) -> None:
        if self.fsync == "always":
            self._sync_files()
        elif self.fsync == "group" and self._clock() - self._last_flush >= self.group_interval_s:
            self._sync_files()

    def _dirty(self) -> bool:
        return bool(self._seg_dirty or self._acks_dirty or self._closing or self._dir_dirty or self._doomed
                    or self._unsynced)

    def _sync_files(self) -> None:
        """One commit: sync every written file and the directory, then unlink settled segments."""
        if self._seg_dirty and self._active_fd is not None and self._active is not None:
            datasync(self._active_fd, self._active.path)
        self._seg_dirty = False
        while self._closing:
            path, fd = self._closing[-1]
            try:
                datasync(fd, path)
            finally:
                self._closing.pop()
                os.close(fd)
        if self._dir_dirty:
            sync_dir(self._dir_fd, self.directory)
            self._dir_dirty = False
        if self._acks_dirty and self._acks_fd is not None:
            datasync(self._acks_fd, self.directory / ACKS_NAME)
        self._acks_dirty = False
        self._unlink_doomed()
        while self._unsynced:
            seg = self._segments.get(self._unsynced.pop())
            if seg is not None:
                datasync(self._reader(seg), seg.path)
        self._last_flush = self._clock()

    # ------------------------------------------------------------ settling and removing
    def _find_pending(self, bi: BootIndex, merged: list[tuple[int, int]]
                      ) -> tuple[list[tuple[Segment, int, int]], list[int]]:
        """Pending entries of ``bi`` within ``merged`` ranges: entry spans and their seqs (ascending)."""
        spans: list[tuple[Segment, int, int]] = []
        seqs: list[int] = []
        for lo, hi in merged:
            i = bisect.bisect_left(bi.seqs, lo)
            j = bisect.bisect_right(bi.seqs, hi)
            if i == j:
                continue
            first, last = bi.locs[i], bi.locs[j - 1]
            seg = self._segments.get(first >> LOC_SHIFT)
            if seg is not None and last - first == j - 1 - i:  # one run of consecutive entries in one segment
                a = first & LOC_MASK
                if seg.state.count(PENDING, a, a + j - i) == j - i:
                    spans.append((seg, a, a + j - i))
                    seqs.extend(bi.seqs[i:j])
                    continue
            for k in range(i, j):
                loc = bi.locs[k]
                seg = self._segments.get(loc >> LOC_SHIFT)
                idx = loc & LOC_MASK
                if seg is not None and seg.state[idx] == PENDING:
                    spans.append((seg, idx, idx + 1))
                    seqs.append(bi.seqs[k])
        return spans, seqs

    def _write_ack(self, data: bytes) -> None:
        assert self._acks_fd is not None
        write_all(self._acks_fd, data, self.directory / ACKS_NAME, self._acks_size)
        self._acks_size += len(data)
        self._acks_dirty = True

    def _delete_segments(self, segs: list[Segment]) -> None:
        """Remove fully settled segments from the index; their files go now or at the next group commit."""
        for seg in segs:
            self._remove_segment(seg, unlink=self.fsync != "group")
        if self.fsync != "group":
            self._unlink_doomed()
        self._maybe_compact_acks()

    def _maybe_compact_acks(self) -> None:
        """Compact acks.log when no segment is left, or when it passed ACKS_COMPACT_BYTES and doubled."""
        grown = self._acks_size > self._acks_compacted_size
        if (grown and not self._segments) or self._acks_size > max(ACKS_COMPACT_BYTES, 2 * self._acks_compacted_size):
            self._compact_acks()

    def _unlink_doomed(self) -> None:
        """Unlink settled segments, once the settlements are synced.

        Syncing acks.log first keeps ``settled_total`` (rebuilt from it after
        a power cut) counting the records of the removed files.
        """
        if self._acks_dirty and self._acks_fd is not None and self._sync:
            datasync(self._acks_fd, self.directory / ACKS_NAME)
            self._acks_dirty = False
        while self._doomed:
            self._unlink_quietly(self._doomed.pop())

    def _remove_segment(self, seg: Segment, unlink: bool = True) -> None:
        fd = self._read_fds.pop(seg.id, None)
        if fd is not None:
            os.close(fd)
        if seg is self._active:
            assert self._active_fd is not None
            os.close(self._active_fd)
            self._active = self._active_fd = None
            self._seg_dirty = False
        if unlink:
            self._unlink_quietly(seg.path)
        else:
            self._doomed.append(seg.path)
        del self._segments[seg.id]
        self._unsynced.discard(seg.id)
        self._skips.pop(seg.id, None)
        self._disk_bytes -= seg.size
        for bid, count in collections.Counter(seg.boots).items():
            boot = self._boot_names[bid]
            bi = self._boots.get(boot)
            if bi is None:
                continue
            bi.stale += count
            if bi.stale >= len(bi.seqs):
                del self._boots[boot]
            elif bi.stale * 2 > len(bi.seqs):
                live = self._segments
                keep = [(s, loc) for s, loc in zip(bi.seqs, bi.locs, strict=True) if (loc >> LOC_SHIFT) in live]
                bi.seqs = array("q", (s for s, _ in keep))
                bi.locs = array("q", (loc for _, loc in keep))
                bi.stale = 0

    def _compact_acks(self) -> None:
        """Rewrite acks.log with only the settlements of records still on disk (atomic)."""
        parts = [fmt.frame(fmt.HEAD, fmt.json_bytes(
            {"qsec_spool_acks": 1, "settled_total": self._settled, "created": _now_ms()}))]
        for boot, bi in self._boots.items():
            seqs: list[int] = []
            for seq, loc in zip(bi.seqs, bi.locs, strict=True):
                seg = self._segments.get(loc >> LOC_SHIFT)
                if seg is not None and seg.state[loc & LOC_MASK] == SETTLED:
                    seqs.append(seq)
            if seqs:
                parts.append(fmt.frame(fmt.ACK, fmt.json_bytes({"b": boot, "r": runs(seqs), "n": 0})))
        data = b"".join(parts)
        self._unlink_doomed()  # the settlements of removed files leave acks.log only once the files are gone
        if self._acks_fd is not None:
            os.close(self._acks_fd)
            self._acks_fd = None
        atomic_write(self.directory, self._dir_fd, ACKS_NAME, data, sync=self._sync)
        path = self.directory / ACKS_NAME
        try:
            self._acks_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise io_error(exc, "opening", path) from exc
        self._acks_size = self._acks_compacted_size = len(data)
        self._acks_dirty = False

    # ------------------------------------------------------------ reading
    def _reader(self, seg: Segment) -> int:
        fd = self._read_fds.get(seg.id)
        if fd is not None:
            self._read_fds.move_to_end(seg.id)
            return fd
        try:
            fd = os.open(seg.path, os.O_RDONLY)
        except OSError as exc:
            raise io_error(exc, "opening", seg.path) from exc
        self._read_fds[seg.id] = fd
        if len(self._read_fds) > READ_FDS:
            os.close(self._read_fds.popitem(last=False)[1])
        return fd

    def _iter_pending(self, limit: int | None, chunk: int = 512) -> Iterator[list[tuple[str, contract.Record]]]:
        """Yield pending records oldest first, in lists of at most ``chunk``, reading from disk."""
        remaining = -1 if limit is None else limit
        for seg in list(self._segments.values()):
            if seg.live == 0:
                continue
            idx = seg.state.find(PENDING)
            while idx != -1 and remaining != 0:
                picks: list[int] = []
                want = chunk if remaining < 0 else min(chunk, remaining)
                while idx != -1 and len(picks) < want:
                    picks.append(idx)
                    idx = seg.state.find(PENDING, idx + 1)
                out = self._read_entries(seg, picks)
                if remaining > 0:
                    remaining -= len(out)
                if out:
                    yield out
            if remaining == 0:
                return

    def _read_entries(self, seg: Segment, picks: list[int]) -> list[tuple[str, contract.Record]]:
        fd = self._reader(seg)
        out: list[tuple[str, contract.Record]] = []
        run_start = 0
        for r in range(1, len(picks) + 1):
            if r < len(picks) and picks[r] == picks[r - 1] + 1:
                continue
            first, last = picks[run_start], picks[r - 1]
            base = seg.offsets[first]
            try:
                buf = os.pread(fd, seg.offsets[last] + seg.lengths[last] - base, base)
            except OSError as exc:
                raise io_error(exc, "reading", seg.path) from exc
            for idx in picks[run_start:r]:
                start = seg.offsets[idx] - base
                found = fmt.entry_at(buf, start)
                if found is None or found[0] != fmt.RECORD or found[1] != start + seg.lengths[idx]:
                    self._mark_lost(seg, idx)
                    continue
                try:
                    out.append(fmt.decode_record(buf[start + fmt.HEADER_SIZE:found[1]]))
                except ValueError:
                    self._mark_lost(seg, idx)
            run_start = r
        return out

    def _mark_lost(self, seg: Segment, idx: int) -> None:
        """An entry went bad on disk after it was written: count it once and stop offering it."""
        seg.state[idx] = LOST
        seg.live -= 1
        seg.live_bytes -= seg.lengths[idx]
        self._torn += 1
        start = seg.offsets[idx]
        self._skips.setdefault(seg.id, {})[start] = start + seg.lengths[idx]
        log.error("spool %s: record at %s offset %d is corrupt on disk (failing storage?); skipped",
                  self.directory, seg.path.name, start)
        self._save_state()

    # ------------------------------------------------------------ state and recovery
    def _state_doc(self) -> dict[str, Any]:
        return {
            "qsec_spool_state": 1,
            "appended_total": self._appended, "settled_total": self._settled,
            "dropped_full": self._dropped, "torn_skipped": self._torn,
            "dropped_through": self._dropped_through, "next_segment": self._next_id,
            "skips": {str(k): sorted([a, b] for a, b in v.items()) for k, v in self._skips.items() if v},
            "saved": _now_ms(),
        }

    def _save_state(self) -> None:
        """Write state.json atomically (synced unless fsync="never")."""
        atomic_write(self.directory, self._dir_fd, STATE_NAME, fmt.json_bytes(self._state_doc()), sync=self._sync)

    def _load_state(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {"appended_total": 0, "settled_total": 0, "dropped_full": 0, "torn_skipped": 0,
                                    "dropped_through": 0, "next_segment": 1, "skips": {}}
        path = self.directory / STATE_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return defaults
        except OSError as exc:
            raise io_error(exc, "reading", path) from exc
        doc = fmt.decode_json(raw)
        if doc is None or doc.get("qsec_spool_state") != 1:
            log.warning("spool %s: %s is unreadable; counters restart from what the files show", self.directory, path)
            return defaults
        out = dict(defaults)
        for key in ("appended_total", "settled_total", "dropped_full", "torn_skipped", "dropped_through",
                    "next_segment"):
            value = doc.get(key)
            if type(value) is int and value >= 0:
                out[key] = value
        skips = doc.get("skips")
        if isinstance(skips, dict):
            try:
                out["skips"] = {int(k): {int(a): int(b) for a, b in v} for k, v in skips.items()}
            except (TypeError, ValueError):
                log.warning("spool %s: ignoring malformed skips in %s", self.directory, path)
        return out

    def _recover(self) -> None:
        """Rebuild the index from the files, repairing torn tails; see docs/spool.md "Recovery"."""
        directory = self.directory
        for name in (STATE_NAME + ".tmp", ACKS_NAME + ".tmp"):
            try:
                os.unlink(directory / name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise io_error(exc, "removing", directory / name) from exc
        state = self._load_state()
        self._appended, self._dropped = state["appended_total"], state["dropped_full"]
        self._torn, self._dropped_through = state["torn_skipped"], state["dropped_through"]
        try:
            names = os.listdir(directory)
        except OSError as exc:
            raise io_error(exc, "listing", directory) from exc
        ids = sorted(int(m.group(1)) for m in map(SEGMENT_RE.match, names) if m)
        self._next_id = max([state["next_segment"], self._dropped_through + 1, 1] + [i + 1 for i in ids])
        torn_before = self._torn
        for seg_id in ids:
            path = directory / segment_name(seg_id)
            if seg_id <= self._dropped_through:  # dropped (and counted) before a crash
                self._unlink_quietly(path)
                continue
            self._recover_segment(seg_id, path, state["skips"].get(seg_id, {}))
        self._recover_acks(state["settled_total"])
        # Records appended since the last state save are pending, settled or
        # dropped now: the state's count is a floor, the identity the rest.
        pending = sum(seg.live for seg in self._segments.values())
        self._appended = max(self._appended, pending + self._settled + self._dropped)
        for boot, bi in self._boots.items():
            self._last_seq[boot] = bi.seqs[-1]
        if self._segments:
            last = next(reversed(self._segments.values()))
            if last.size < self.segment_bytes:
                try:
                    self._active_fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)
                except OSError as exc:
                    raise io_error(exc, "opening", last.path) from exc
                self._active = last
        if self._torn > torn_before:
            log.warning("spool %s: skipped %d torn or corrupt entries while recovering",
                        directory, self._torn - torn_before)
        self._save_state()
        settled = [s for s in self._segments.values() if s.live == 0]
        if settled:
            self._delete_segments(settled)

    def _unlink_quietly(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise io_error(exc, "removing", path) from exc

    def _recover_segment(self, seg_id: int, path: Path, known: dict[int, int]) -> None:
        try:
            buf = path.read_bytes()
        except OSError as exc:
            raise io_error(exc, "reading", path) from exc
        seg = Segment(seg_id, path)
        skips = dict(known)
        cut: int | None = None
        for item in fmt.scan(buf, known):
            if isinstance(item, fmt.Entry):
                key = fmt.record_key(buf[item.start + fmt.HEADER_SIZE:item.end]) if item.magic == fmt.RECORD else None
                if key is not None:
                    boot, seq = key
                    idx = seg.add(item.start, item.end - item.start, self._boot_id(boot))
                    self._boots.setdefault(boot, BootIndex()).add(seq, seg_id << LOC_SHIFT | idx)
                    continue
                bad = fmt.Bad(item.start, item.end)  # good framing, not a record: misplaced data
            else:
                bad = item
            self._torn += 1
            if bad.end >= len(buf):
                cut = bad.start
            else:
                skips[bad.start] = bad.end
        size = len(buf) if cut is None else cut
        skips = {a: b for a, b in skips.items() if b <= size}
        if not seg.state:  # nothing recoverable (empty, or only bad bytes)
            self._unlink_quietly(path)
            return
        if cut is not None:
            try:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.ftruncate(fd, cut)
                    if self._sync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise io_error(exc, "truncating the torn tail of", path) from exc
        seg.size = size
        self._segments[seg_id] = seg
        self._disk_bytes += size
        if skips:
            self._skips[seg_id] = skips

    def _recover_acks(self, settled_floor: int) -> None:
        path = self.directory / ACKS_NAME
        try:
            buf = path.read_bytes()
        except FileNotFoundError:
            buf = b""
        except OSError as exc:
            raise io_error(exc, "reading", path) from exc
        base: int | None = None
        total_n = 0
        clean = bool(buf)
        for item in fmt.scan(buf):
            doc = fmt.decode_json(buf[item.start + fmt.HEADER_SIZE:item.end]) if isinstance(item, fmt.Entry) else None
            if doc is None or not isinstance(item, fmt.Entry):
                clean = False
                continue
            if item.magic == fmt.HEAD and item.start == 0 and type(doc.get("settled_total")) is int:
                base = doc["settled_total"]
            elif item.magic == fmt.ACK and isinstance(doc.get("b"), str) and isinstance(doc.get("r"), list):
                total_n += doc["n"] if type(doc.get("n")) is int else 0
                self._replay_ack(doc["b"], doc["r"])
            else:
                clean = False
        if base is None:
            clean = False
        self._settled = max(settled_floor, (base or 0) + total_n)
        if clean:
            try:
                self._acks_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            except OSError as exc:
                raise io_error(exc, "opening", path) from exc
            self._acks_size = len(buf)
            self._acks_compacted_size = min(len(buf), ACKS_COMPACT_BYTES)
        else:
            if buf:
                log.warning("spool %s: %s was damaged; rewriting it (unreadable settlements are re-sent and "
                            "deduplicated by ingest)", self.directory, path)
            self._compact_acks()

    def _replay_ack(self, boot: str, ranges: list[Any]) -> None:
        bi = self._boots.get(boot)
        if bi is None:
            return
        for rng in ranges:
            try:
                lo, hi = checked_range(rng)
            except ValueError:
                continue
            for k in range(bisect.bisect_left(bi.seqs, lo), bisect.bisect_right(bi.seqs, hi)):
                loc = bi.locs[k]
                seg = self._segments.get(loc >> LOC_SHIFT)
                idx = loc & LOC_MASK
                if seg is not None and seg.state[idx] == PENDING:
                    seg.state[idx] = SETTLED
                    seg.live -= 1
                    seg.live_bytes -= seg.lengths[idx]

    def _close_fds(self) -> None:
        fds = [self._active_fd, self._acks_fd, *self._read_fds.values(), *(fd for _, fd in self._closing)]
        self._closing.clear()
        if self._dir_fd >= 0:
            fds.append(self._dir_fd)
        self._active_fd = self._acks_fd = None
        self._read_fds.clear()
        self._dir_fd = -1
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self._lock_fd >= 0:
            unlock(self._lock_fd)
            self._lock_fd = -1
