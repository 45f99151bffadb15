"""Recovery on opening: rebuilding the index from the files and repairing torn tails.

See ``docs/spool.md`` ("Recovery") for the rules.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _format as fmt
from ._append import Appending
from ._base import ACKS_NAME, SEGMENT_RE, STATE_NAME, log, segment_name
from ._index import LOC_SHIFT, BootIndex, Segment
from .errors import io_error


class Recovering(Appending):
    """Rebuilds the spool's state from its directory."""

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
