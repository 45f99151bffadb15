"""The mirror's outbox: a first-in first-out queue of line-protocol points in one SQLite file.

Why SQLite (Python's standard ``sqlite3``) rather than a DuckDB table or a
hand-written log: the outbox is a queue — append at the tail, read and delete
at the head, a few thousand rows at a time — which is the transactional,
row-at-a-time work SQLite is built for.  Its write-ahead log makes each
:meth:`Outbox.append` one atomic commit that survives ``kill -9`` (and, with
``synchronous=FULL``, a power cut); pages freed by deletes are reused, so the
file does not grow under steady churn; and a torn tail, checksums and recovery
are SQLite's, not ours.  DuckDB is a column store made for scans, and a
hand-written log would repeat the bridge spool's recovery code for no gain.

One process owns an outbox: the file is opened with ``locking_mode=EXCLUSIVE``
and a second opener gets :class:`OutboxLocked`.  The lock dies with the
process, so a killed mirror's successor opens it at once.

Sources
-------
- SQLite write-ahead logging: https://www.sqlite.org/wal.html
- ``PRAGMA synchronous`` and ``PRAGMA locking_mode``: https://www.sqlite.org/pragma.html
- Atomic commit: https://www.sqlite.org/atomiccommit.html
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYNC_MODES = {"full": "FULL", "normal": "NORMAL"}


class OutboxError(RuntimeError):
    """The outbox file cannot be used; the message says what to do."""


class OutboxLocked(OutboxError):
    """Another process holds the outbox (two mirrors must not drain the same file)."""


@dataclass(frozen=True)
class OutboxEntry:
    """One queued point: its line of line protocol and where the record came from.

    id : position in the queue (increasing)
    line : the point, line protocol, timestamp [ms]; for a record refused before it was queued
        (``mirror_unencodable``, ``id`` 0), the record as JSON
    campaign, device, boot, seq : the record's identity, for dead letters (``boot`` may be ``None``)
    """

    id: int
    line: str
    campaign: str
    device: str
    boot: str | None
    seq: int


class Outbox:
    """A durable FIFO of points.  Thread-safe: one connection behind a lock.

    Parameters
    ----------
    path : the SQLite file (created with its folder)
    sync : ``"full"`` (each commit reaches the disk: survives a power cut) or ``"normal"``
        (survives a killed process; a power cut may lose the last commits)
    """

    def __init__(self, path: Path | str, *, sync: str = "full"):
        if sync not in SYNC_MODES:
            raise ValueError(f"outbox sync={sync!r}; allowed: {', '.join(SYNC_MODES)}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=0)
            # The exclusive lock mode must come before WAL: the WAL index then lives in memory, not in -shm.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={SYNC_MODES[sync]}")
            self._db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, and keeps it
            self._db.execute("""CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY, line TEXT NOT NULL, campaign TEXT NOT NULL, device TEXT NOT NULL,
                boot TEXT, seq INTEGER NOT NULL)""")
            self._db.execute("COMMIT")
            (self._depth,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise OutboxLocked(f"the mirror outbox {self.path} is open in another process; stop that mirror "
                                   "or give this one its own outbox_path") from None
            raise OutboxError(f"cannot open the mirror outbox {self.path}: {exc}; check the folder's permissions "
                              "and free space") from exc
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{self.path} is not a usable SQLite outbox ({exc}); move it aside — the records "
                              "are still in the store — and start again") from exc

    @property
    def depth(self) -> int:
        """Points waiting."""
        return self._depth

    def append(self, rows: Iterable[tuple[str, str, str, str | None, int]]) -> int:
        """Append ``(line, campaign, device, boot, seq)`` rows in one commit; returns how many.

        When this returns the rows are on disk (per ``sync``) and survive the process.
        """
        rows = list(rows)
        if not rows:
            return 0
        with self._lock:
            self._write("INSERT INTO outbox (line, campaign, device, boot, seq) VALUES (?, ?, ?, ?, ?)", rows,
                        "append to")
            self._depth += len(rows)
        return len(rows)

    def head(self, limit: int) -> list[OutboxEntry]:
        """The oldest ``limit`` points, oldest first (they stay queued until :meth:`remove`)."""
        with self._lock:
            cur = self._db.execute("SELECT id, line, campaign, device, boot, seq FROM outbox ORDER BY id LIMIT ?",
                                   (int(limit),))
            return [OutboxEntry(*row) for row in cur.fetchall()]

    def remove(self, entries: Sequence[OutboxEntry]) -> int:
        """Remove a run of consecutive head entries (as :meth:`head` gave them), in one commit."""
        if not entries:
            return 0
        lo, hi = entries[0].id, entries[-1].id
        with self._lock:
            n = self._write("DELETE FROM outbox WHERE id BETWEEN ? AND ?", [(lo, hi)], "remove from")
            self._depth -= n
        return n

    def close(self) -> None:
        """Close the file and release the lock.  Calling it twice is harmless."""
        with self._lock:
            self._db.close()

    def _write(self, sql: str, rows: Sequence[tuple], what: str) -> int:
        """Run ``sql`` for each row in one transaction; returns the rows changed.  Caller holds the lock."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._db.executemany(sql, rows).rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot {what} the mirror outbox {self.path}: {exc}; free space on its disk or fix "
                              "its permissions (the records are safe in the store)") from exc
        return changed
