"""In-memory index of the spool: where each record is on disk and whether it is settled.

Compact on purpose (``array`` and ``bytearray``, no object per record): a
full 64 MiB spool holds about 300 000 records, and the bridge runs on a
512 MB machine.  ``docs/spool.md`` gives the measured cost per record.
"""

from __future__ import annotations

import bisect
from array import array
from pathlib import Path
from typing import Any, Iterable

PENDING, SETTLED, LOST = 0, 1, 2  # per-entry state
SETTLED_BYTE = bytes([SETTLED])
LOC_SHIFT = 32
LOC_MASK = (1 << LOC_SHIFT) - 1


class Segment:
    """In-memory index of one segment file: where each entry is and whether it is settled."""

    __slots__ = ("id", "path", "size", "offsets", "lengths", "boots", "state", "live", "live_bytes")

    def __init__(self, seg_id: int, path: Path) -> None:
        self.id = seg_id
        self.path = path
        self.size = 0
        self.offsets = array("I")  # entry start in the file
        self.lengths = array("I")  # entry length, header included
        self.boots = array("I")  # index into the spool's boot table
        self.state = bytearray()  # PENDING / SETTLED / LOST
        self.live = 0  # entries still pending
        self.live_bytes = 0

    def add(self, offset: int, length: int, boot_id: int) -> int:
        """Index a pending entry; return its position in the segment."""
        self.offsets.append(offset)
        self.lengths.append(length)
        self.boots.append(boot_id)
        self.state.append(PENDING)
        self.live += 1
        self.live_bytes += length
        return len(self.state) - 1


class BootIndex:
    """The records of one boot: ascending seqs and their locations ``seg_id << 32 | entry``."""

    __slots__ = ("seqs", "locs", "stale")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.locs = array("q")
        self.stale = 0  # locations pointing into removed segments

    def add(self, seq: int, loc: int) -> None:
        if not self.seqs or seq > self.seqs[-1]:
            self.seqs.append(seq)
            self.locs.append(loc)
        else:  # only met when recovering a spool written out of order
            k = bisect.bisect_right(self.seqs, seq)
            self.seqs.insert(k, seq)
            self.locs.insert(k, loc)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort inclusive ranges and merge overlapping or touching ones; empty ones (lo > hi) go."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(r for r in ranges if r[0] <= r[1]):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def runs(seqs: list[int]) -> list[list[int]]:
    """Inclusive ``[lo, hi]`` runs of an ascending list of seqs."""
    out: list[list[int]] = []
    for s in seqs:
        if out and s <= out[-1][1] + 1:
            if s > out[-1][1]:
                out[-1][1] = s
        else:
            out.append([s, s])
    return out


def checked_range(rng: Any) -> tuple[int, int]:
    try:
        lo, hi = rng
    except (TypeError, ValueError):
        raise ValueError(f"settle ranges must be [lo, hi] pairs of seqs, got {rng!r}") from None
    if type(lo) is not int or type(hi) is not int:
        raise ValueError(f"settle range {rng!r} must hold integer seqs")
    return lo, hi
