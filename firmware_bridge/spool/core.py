"""The bridge's durable spool: an append-only log of records with a settlement log.

See ``docs/spool.md`` for the on-disk format, the recovery rules and the
performance figures.  Standard library only: this runs on a Raspberry Pi.

This module holds the public :class:`Spool`; the parts it is built from
live beside it (``_base``, ``_commit``, ``_acks``, ``_segments``,
``_append``, ``_recover``), and the names other code uses are re-exported
here.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from qsec import contract

from . import _format as fmt
from ._acks import ACKS_COMPACT_BYTES
from ._base import (
    ACKS_NAME, FSYNC_POLICIES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, READ_FDS, SEGMENT_RE, STATE_NAME, SpoolStats,
    segment_name,
)
from ._export import write_export
from ._files import lock_directory
from ._index import SETTLED_BYTE, Segment, checked_range, merge_ranges, runs
from ._recover import Recovering
from .errors import io_error

__all__ = ["ACKS_COMPACT_BYTES", "ACKS_NAME", "FSYNC_POLICIES", "MAX_SEGMENT_BYTES", "MIN_SEGMENT_BYTES", "READ_FDS",
           "SEGMENT_RE", "STATE_NAME", "Spool", "SpoolStats", "segment_name"]


class Spool(Recovering):
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

        self._segments = collections.OrderedDict()
        self._active = None
        self._active_fd = None
        self._read_fds = collections.OrderedDict()
        self._unsynced = set()
        self._closing = []
        self._doomed = []
        self._dir_dirty = False  # a segment was created since the last group commit
        self._boots = {}
        self._boot_names = []
        self._boot_ids = {}
        self._prefixes = {}
        self._last_seq = {}
        self._skips = {}
        self._next_id = 1
        self._disk_bytes = 0
        self._appended = self._settled = self._dropped = self._torn = 0
        self._dropped_through = 0
        self._acks_fd = None
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
