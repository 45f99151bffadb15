"""What to publish now: fresh records in batches, unsettled ones again, a bounded window in flight.

The spool holds every record until ingest settles it; the outbox only decides
*when* each one goes out, without reading the spool on the hot path:

- **fresh** records (appended since the last publish) wait until there are
  ``batch_records`` of them or the oldest has waited ``batch_s``;
- at most ``window`` records are **in flight** (sent, not yet settled).  A
  record still in flight ``resend_after_s`` after it was sent goes again;
  after a reconnect every record in flight goes again at once;
- **backlog**: when the spool may hold pending records the outbox does not
  have in memory (at start, after a restart on the same spool, or when more
  fresh records piled up than ``fresh_max`` while disconnected), it reads
  them from the spool (``pending(limit)``, oldest first) to fill the window,
  until a read shows nothing more is waiting; fresh records are not kept
  meanwhile (they are in the spool).

Repeats are harmless: ingest deduplicates on ``(device, boot, seq)``
(DESIGN.md, "Delivery semantics").  Not thread-safe: the bridge calls it
under its lock, together with the spool appends, so that no record is
appended between a backlog read and the end of the backlog.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

from qsec.contract import Record

Key = tuple[str, int]  # (boot, seq)
Item = tuple[str, Record]
PendingReader = Callable[[int], list[Item]]  # limit -> oldest pending (boot, record) pairs


class Outbox:
    """Schedules publishing of spooled records (see the module docstring).

    Parameters
    ----------
    batch_records : records per message
    batch_s : longest wait of a fresh record before it is sent [s]
    resend_after_s : a record unsettled this long after it was sent is sent again [s]
    window : records in flight at most
    fresh_max : fresh records kept in memory at most, beyond which the spool is read back
    backlog : whether the spool may already hold records to send
    """

    def __init__(self, *, batch_records: int, batch_s: float, resend_after_s: float, window: int,
                 fresh_max: int | None = None, backlog: bool = False):
        self.batch_records = batch_records
        self.batch_s = batch_s
        self.resend_after_s = resend_after_s
        self.window = window
        self.fresh_max = fresh_max or 2 * window
        self.backlog = backlog
        self.resent = 0
        self._fresh: deque[tuple[float, Item]] = deque()
        self._in_flight: OrderedDict[Key, tuple[float, Record]] = OrderedDict()  # oldest send first

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def fresh(self) -> int:
        return len(self._fresh)

    def added(self, boot: str, record: Record, now: float) -> bool:
        """A record was appended to the spool; True when a full batch is ready."""
        if self.backlog:
            return False
        self._fresh.append((now, (boot, record)))
        if len(self._fresh) > self.fresh_max:
            self._fresh.clear()
            self.backlog = True
            return False
        return len(self._fresh) >= self.batch_records

    def settled(self, boot: str, seqs: set[int] | range) -> None:
        """Ingest committed these records: they leave the window."""
        if not self._in_flight:
            return
        if len(seqs) > len(self._in_flight):
            for key in [k for k in self._in_flight if k[0] == boot and k[1] in seqs]:
                del self._in_flight[key]
        else:
            for seq in seqs:
                self._in_flight.pop((boot, seq), None)

    def reconnected(self) -> None:
        """A new connection: everything in flight is due again now."""
        for key, (_, rec) in list(self._in_flight.items()):
            self._in_flight[key] = (float("-inf"), rec)

    def next_due(self, now: float) -> float:
        """When something becomes due [same clock as ``now``]; ``inf`` when nothing is waiting."""
        due = float("inf")
        if self._in_flight:
            due = min(due, next(iter(self._in_flight.values()))[0] + self.resend_after_s)
        if len(self._in_flight) < self.window:  # a full window waits for settlements or resends
            if self.backlog:
                due = min(due, now)
            elif self._fresh:
                due = min(due, self._fresh[0][0] + self.batch_s)
        return due

    def take(self, now: float, read_pending: PendingReader, *, flush: bool = False) -> list[Item]:
        """Records to publish now, marked as sent at ``now``: resends first, then backlog or fresh."""
        out: list[Item] = []
        while self._in_flight:
            key, (sent, rec) = next(iter(self._in_flight.items()))
            if sent + self.resend_after_s > now:
                break
            del self._in_flight[key]
            out.append((key[0], rec))
            self.resent += 1
        room = self.window - len(self._in_flight) - len(out)
        if room > 0 and self.backlog:
            out += self._from_spool(room, read_pending, {(b, r.seq) for b, r in out})
        elif room > 0 and self._fresh and (flush or len(self._fresh) >= self.batch_records
                                           or now - self._fresh[0][0] >= self.batch_s):
            for _ in range(min(room, len(self._fresh))):
                out.append(self._fresh.popleft()[1])
        for boot, rec in out:
            self._in_flight[(boot, rec.seq)] = (now, rec)
        return out

    def _from_spool(self, room: int, read_pending: PendingReader, taken: set[Key]) -> list[Item]:
        limit = len(self._in_flight) + len(taken) + room
        pending = read_pending(limit)
        new = [(b, r) for b, r in pending if (b, r.seq) not in self._in_flight and (b, r.seq) not in taken]
        if len(pending) < limit and len(new) <= room:
            self.backlog = False  # the spool holds nothing more than what is in flight or sent now
        return new[:room]
