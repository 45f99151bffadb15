"""Segment files: creating, rolling, dropping (spool full) and removing them, and reading entries back.

See ``docs/spool.md`` for the segment format and the bounds.
"""

from __future__ import annotations

import bisect
import collections
import os
from array import array
from typing import Iterator

from qsec import contract

from . import _format as fmt
from ._acks import Acks
from ._base import log, segment_name
from ._files import sync_dir
from ._index import LOC_MASK, LOC_SHIFT, LOST, PENDING, BootIndex, Segment
from .errors import io_error


class Segments(Acks):
    """The segment files on disk and the index of what each holds."""

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

    def _delete_segments(self, segs: list[Segment]) -> None:
        """Remove fully settled segments from the index; their files go now or at the next group commit."""
        for seg in segs:
            self._remove_segment(seg, unlink=self.fsync != "group")
        if self.fsync != "group":
            self._unlink_doomed()
        self._maybe_compact_acks()

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
