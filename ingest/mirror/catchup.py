"""Close the hand-over window between the store and the mirror's outbox.

Ingest commits records to the store, then hands them to the mirror.  A
process killed between the two would leave records in the store that never
reach the outbox.  :class:`HandOver` therefore keeps a high-water mark: the
``received`` time of the last commit whose records are durably in the outbox,
written (atomically, fsynced) *after* the outbox append.  At start,
:func:`catch_up` queues every record the store received at or after that mark.
Records queued twice are harmless: a point written twice to InfluxDB is one point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qsec import contract

_KEYS = ("campaign", "device", "boot", "seq", "t", "sensor", "flags")


class HandOver:
    """A commit listener that queues new records in the mirror, then advances the high-water mark."""

    def __init__(self, mirror: Any, worker: Any, mark_path: Path):
        self.mirror = mirror
        self.worker = worker
        self.mark_path = Path(mark_path)
        self._held = False  # a hand-over failed: the mark stays where it was until the next start

    def mark(self) -> int | None:
        """The high-water mark [ms since epoch, UTC], or None before the first hand-over."""
        try:
            return int(self.mark_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _write_mark(self, received_ms: int) -> None:
        tmp = self.mark_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(str(received_ms))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.mark_path)

    def __call__(self, committed: list[tuple[str, str, str, contract.Record]]) -> None:
        if committed:
            try:
                self.mirror.submit(committed)
            except Exception:
                self._held = True  # these records are not in the outbox: the next start catches them up
                raise
        received = getattr(self.worker, "last_commit_received_ms", None)
        if received is not None and not self._held:
            self._write_mark(received)


def catch_up(store: Any, mirror: Any, since_ms: int | None, *, batch_rows: int = 50_000) -> int:
    """Queue in the mirror every record the store received at or after ``since_ms``; returns how many.

    With no mark yet (``None``), nothing is queued: a mirror added to an existing store
    starts from now (use ``qsec export`` and a bulk load for the history).
    """
    if since_ms is None:
        return 0
    cur = store.new_cursor()
    cols = ", ".join(f'"{c}"' for c in store.quantity_columns)
    res = cur.execute(
        f"SELECT campaign, device, boot, seq, epoch_ms(time), sensor, flags, {cols} FROM readings "
        "WHERE received >= to_timestamp(? / 1000.0)::TIMESTAMP ORDER BY received, device, boot, seq", [since_ms])
    total = 0
    while rows := res.fetchmany(batch_rows):
        batch = []
        for r in rows:
            values = {q: v for q, v in zip(store.quantity_columns, r[7:]) if v is not None}
            batch.append((r[0], r[1], r[2], contract.Record(int(r[3]), int(r[4]), r[5], values, int(r[6]))))
        total += mirror.submit(batch)
    cur.close()
    return total
