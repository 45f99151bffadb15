"""Appending records: checking them, writing them in chunks across segments, taking a failed append back.

See ``docs/spool.md`` ("API", ``append_many``) for the all-or-nothing rule.
"""

from __future__ import annotations

import itertools
import os
from array import array
from typing import Iterable

from qsec import contract

from . import _format as fmt
from ._base import log
from ._files import write_all
from ._index import LOC_SHIFT, BootIndex, Segment
from ._segments import Segments


class Appending(Segments):
    """Appends records of a boot, all or nothing."""

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
