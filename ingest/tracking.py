"""Sequence-gap accounting per ``(device, boot)``, in constant time per record.

A bridge numbers its records 0, 1, 2… within a boot, so for each
``(device, boot)`` the records not (yet) stored are ``max_seq + 1 - count``.
That figure rises when a record arrives after a hole (a gap opens: still in a
spool, in flight, or dropped by a full spool) and falls when a resend fills the
hole.  Seeded once from the store, then updated with each commit's new keys.

One tracker per store file (:meth:`ingest.store.Store.seq_tracker`): every
worker writing to the store accounts into it, so workers sharing a
subscription see the whole of each device's sequence.  Its methods take a lock:
writers add while ``/metrics`` and ``qsec status`` read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable


@dataclass
class BootTally:
    max_seq: int = -1
    count: int = 0

    @property
    def missing(self) -> int:
        return self.max_seq + 1 - self.count


class SeqTracker:
    """Missing records per device, from the keys committed so far."""

    def __init__(self) -> None:
        self._boots: dict[tuple[str, str], BootTally] = {}
        self._lock = threading.Lock()

    def seed(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Start from the store: ``(device, boot, max_seq, count)`` rows."""
        with self._lock:
            for device, boot, max_seq, count in rows:
                self._boots[(device, boot)] = BootTally(int(max_seq), int(count))

    def add(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """Account for newly stored ``(device, boot, seq)`` keys (each new exactly once)."""
        for device, boot, seq in keys:
            self.add_group(device, boot, 1, seq)

    def add_group(self, device: str, boot: str, count: int, max_seq: int) -> None:
        """Account for ``count`` newly stored keys of one ``(device, boot)``, the highest being ``max_seq``."""
        if count <= 0:
            return
        with self._lock:
            tally = self._boots.get((device, boot))
            if tally is None:
                tally = self._boots[(device, boot)] = BootTally()
            tally.count += count
            if max_seq > tally.max_seq:
                tally.max_seq = max_seq

    def missing_by_device(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._lock:
            for (device, _), tally in self._boots.items():
                out[device] = out.get(device, 0) + tally.missing
        return out

    def highest(self, device: str) -> dict[str, int]:
        with self._lock:
            return {boot: t.max_seq for (d, boot), t in self._boots.items() if d == device}
