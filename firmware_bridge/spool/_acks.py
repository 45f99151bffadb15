"""The settlement log ``acks.log``: appending settlements, compacting it, replaying it after a restart.

See ``docs/spool.md`` for its format and its recovery rules.
"""

from __future__ import annotations

import bisect
import os
from typing import Any

from . import _format as fmt
from ._base import ACKS_NAME, _now_ms, log
from ._commit import Committing
from ._files import atomic_write, write_all
from ._index import LOC_MASK, LOC_SHIFT, PENDING, SETTLED, checked_range, runs
from .errors import io_error

ACKS_COMPACT_BYTES = 64 * 1024  # acks.log is rewritten once it is above this and has doubled


class Acks(Committing):
    """Writes, compacts and replays the settlement log."""

    def _write_ack(self, data: bytes) -> None:
        assert self._acks_fd is not None
        write_all(self._acks_fd, data, self.directory / ACKS_NAME, self._acks_size)
        self._acks_size += len(data)
        self._acks_dirty = True

    def _maybe_compact_acks(self) -> None:
        """Compact acks.log when no segment is left, or when it passed ACKS_COMPACT_BYTES and doubled."""
        grown = self._acks_size > self._acks_compacted_size
        if (grown and not self._segments) or self._acks_size > max(ACKS_COMPACT_BYTES, 2 * self._acks_compacted_size):
            self._compact_acks()

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
