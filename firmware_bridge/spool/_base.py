"""The spool's state and the pieces every part of it uses: names, counters, state.json, read descriptors.

The classes of the spool build on each other, one concern per module:
:class:`SpoolBase` (here) < :class:`~._commit.Committing` (syncing) <
:class:`~._acks.Acks` (the settlement log) < :class:`~._segments.Segments`
(segment files, reading them back) < :class:`~._append.Appending` <
:class:`~._recover.Recovering` < :class:`~.core.Spool` (the public API).
See ``docs/spool.md`` for the on-disk format and the recovery rules.
Standard library only: this runs on a Raspberry Pi.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import _format as fmt
from ._files import atomic_write, unlock
from ._index import BootIndex, Segment
from .errors import SpoolClosed, io_error

log = logging.getLogger("firmware_bridge.spool.core")  # one logger for every part of the Spool class

FSYNC_POLICIES = ("always", "group", "never")
STATE_NAME = "state.json"
ACKS_NAME = "acks.log"
SEGMENT_RE = re.compile(r"^seg-(\d{8,})\.log$")
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




class SpoolBase:
    """The fields of a :class:`~firmware_bridge.spool.Spool` (set in its ``__init__``) and its simplest helpers."""

    directory: Path
    max_bytes: int
    segment_bytes: int
    fsync: str
    group_interval_s: float
    _clock: Callable[[], float]
    _sync: bool
    _lock: threading.RLock
    _closed: bool
    _segments: collections.OrderedDict[int, Segment]
    _active: Segment | None
    _active_fd: int | None
    _read_fds: collections.OrderedDict[int, int]
    _unsynced: set[int]  # ids of closed segments not yet synced ("never" mode)
    _closing: list[tuple[Path, int]]  # rolled segments to sync and close at the next group commit
    _doomed: list[Path]  # settled segments to unlink at the next group commit
    _dir_dirty: bool  # a segment was created since the last group commit
    _boots: dict[str, BootIndex]
    _boot_names: list[str]
    _boot_ids: dict[str, int]
    _prefixes: dict[str, bytes]
    _last_seq: dict[str, int]
    _skips: dict[int, dict[int, int]]  # segment -> {start: end} of counted corrupt bytes
    _next_id: int
    _disk_bytes: int
    _appended: int
    _settled: int
    _dropped: int
    _torn: int
    _dropped_through: int
    _acks_fd: int | None
    _acks_size: int
    _acks_compacted_size: int
    _seg_dirty: bool
    _acks_dirty: bool
    _last_flush: float
    _dir_fd: int
    _lock_fd: int

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolClosed(f"spool {self.directory} is closed; open a new Spool to use it again")

    def _unlink_quietly(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise io_error(exc, "removing", path) from exc

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
