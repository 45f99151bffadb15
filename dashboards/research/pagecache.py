"""An exact cache of answered pages: keyed by the query and the version of the data it reads; strong ETags.

A page is stored under its normalised query *and* a snapshot of
:class:`DataVersions` taken **before** the store was read: for each device
the query names (every device, when it names none) the commits of records
on the UTC days its time range touches (all its commits, for a query
without a range), and one counter for everything else (the registry:
campaigns, assignments, opt-outs, deletions).  Whoever writes bumps the
counters *after* its commit (ingest's commit listeners:
:meth:`DataVersions.listener`, which knows each record's time; the API's
own write requests and imports: :meth:`DataVersions.bump_all`).  So:

- a page read before a commit is stored under the old snapshot, which no
  request made after the bump asks for: never a stale answer once the
  writer has bumped;
- a page read between the commit and the bump already holds the new data
  (its entry is merely wasted);
- during a live campaign, commits of today's records every few hundred
  milliseconds leave the pages of past days cached; a late upload of a
  past day's records (store and forward) changes that day's counters.

Without a change feed nothing may be cached: the router caches only when it
is given the :class:`DataVersions` that every writer of its store bumps.

Entries are evicted least recently used first, within a byte budget.  The
ETag of a body is a strong validator (a hash of the exact bytes), and
``If-None-Match`` is evaluated with the weak comparison, as RFC 9110 asks.

Sources
-------
- RFC 9110 §8.8.3 (ETag), §13.1.2 (If-None-Match), §15.4.5 (304 Not Modified):
  https://www.rfc-editor.org/rfc/rfc9110
- RFC 9111 §5.2.2.4 (``no-cache``), §5.2.2.7 (``private``): https://www.rfc-editor.org/rfc/rfc9111
- Python ``hashlib.blake2b``: https://docs.python.org/3/library/hashlib.html#blake2
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

ENTRY_OVERHEAD = 300  # [bytes] key, tuple and dict slot of an entry, counted against the budget
DAY_MS = 86_400_000  # [ms] one UTC day (POSIX time has no leap seconds)
ONE_DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Counts:
    """Commit counters of one device (or of all devices): per UTC day, undated, and in all."""

    __slots__ = ("days", "total", "undated")

    def __init__(self) -> None:
        self.days: dict[int, int] = {}  # UTC day number -> commits of records of that day; only days seen
        self.undated = 0  # changes of unknown time (every day)
        self.total = 0

    def bump(self, days: set[int] | None) -> None:
        """One commit touching ``days`` (None: a change at a time not told)."""
        if days is None:
            self.undated += 1
        else:
            for day in days:
                self.days[day] = self.days.get(day, 0) + 1
        self.total += 1

    def within(self, first: int | None, last: int | None) -> int:
        """A number that grows with every bump touching days ``first``..``last`` (None: unbounded) and no other."""
        if first is None and last is None:
            return self.total
        lo = -(2**63) if first is None else first
        hi = 2**63 if last is None else last
        return self.undated + sum(n for day, n in self.days.items() if lo <= day <= hi)


def _dated(days: set[int | None]) -> set[int] | None:
    """The days, or None when one of them is None (not told)."""
    dated = {day for day in days if day is not None}
    return dated if len(dated) == len(days) else None


def day_span(start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
    """The first and last UTC day numbers (days since 1970-01-01) that ``[start, end)`` touches.

    A naive datetime is UTC (as the store's times); None leaves that side open.
    """
    def instant(when: datetime) -> datetime:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when

    first = None if start is None else (instant(start) - EPOCH) // ONE_DAY
    last = None if end is None else (instant(end) - EPOCH - timedelta(microseconds=1)) // ONE_DAY
    return first, last


class DataVersions:
    """Generation counters of the store's data: per device and UTC day, per device, for all devices, for the rest.

    A page about a time range depends only on the counters of its devices
    (of every device, when it names none) on the days its range touches:
    a commit of today's records leaves yesterday's pages cached, a late
    record of yesterday changes them.  A page without a range depends on
    every commit of its devices.  Memory: one counter per device and day
    that records were committed for.

    Thread-safe: ingest bumps from its worker thread, requests read from the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._device: dict[str, _Counts] = {}
        self._any_device = _Counts()  # bumped with every device
        self._other = 0  # registry, imports: anything not told per device

    def bump(self, devices: Iterable[str]) -> None:
        """Records of ``devices`` were changed at times not told (e.g. deleted): every page about them."""
        self.bump_days({(device, None) for device in devices})

    def bump_days(self, touched: set[tuple[str, int | None]]) -> None:
        """Records were committed for these ``(device, UTC day number)`` pairs (day None: at any time)."""
        if not touched:
            return
        by_device: dict[str, set[int | None]] = {}
        for device, day in touched:
            by_device.setdefault(device, set()).add(day)
        every = set().union(*by_device.values())
        with self._lock:
            for device, days in by_device.items():
                counts = self._device.get(device)
                if counts is None:
                    counts = self._device[device] = _Counts()
                counts.bump(_dated(days))
            self._any_device.bump(_dated(every))

    def bump_all(self) -> None:
        """Something was committed that may change any answer (a registry change, an import)."""
        with self._lock:
            self._other += 1

    @property
    def registry(self) -> int:
        """The counter of everything but records (:meth:`bump_all`): what cached registry look-ups depend on."""
        with self._lock:
            return self._other

    def snapshot(self, devices: Sequence[str], days: tuple[int | None, int | None] = (None, None)
                 ) -> tuple[int, ...]:
        """The counters an answer about ``devices`` (all devices when empty) on ``days`` (see :func:`day_span`)."""
        first, last = days
        with self._lock:
            if not devices:
                return (self._other, self._any_device.within(first, last))
            return (self._other, *(c.within(first, last) if (c := self._device.get(d)) else 0 for d in devices))

    def listener(self, committed: list[tuple[str, str, str, Any]]) -> None:
        """An ingest commit listener (``ingest.worker.CommitListener``): bump the devices and days of the records."""
        self.bump_days({(device, record.t // DAY_MS) for _campaign, device, _boot, record in committed})


def etag_of(body: bytes) -> str:
    """A strong entity tag for exactly these bytes (RFC 9110 §8.8.3)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` or is ``*`` (weak comparison, RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


class PageCache:
    """Answered bodies by key, least recently used evicted first, within ``budget`` bytes.

    A ``budget`` of 0 stores nothing.  Thread-safe.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> tuple[bytes, str] | None:
        """``(body, etag)`` stored under ``key``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable, body: bytes, etag: str) -> None:
        """Store ``body`` under ``key``; evict the least recently used entries beyond the budget."""
        size = len(body) + ENTRY_OVERHEAD
        if size > self.budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.used -= len(old[0]) + ENTRY_OVERHEAD
            self._entries[key] = (body, etag)
            self.used += size
            while self.used > self.budget:
                _, (evicted, _) = self._entries.popitem(last=False)
                self.used -= len(evicted) + ENTRY_OVERHEAD
