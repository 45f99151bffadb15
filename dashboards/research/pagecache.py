"""An exact cache of answered pages: keyed by the query and the version of the data it reads; strong ETags.

A page is stored under its normalised query *and* a snapshot of
:class:`DataVersions` taken **before** the store was read: the counter of
each device the query names (of every device, when it names none) and one
counter for everything else (the registry: campaigns, assignments,
opt-outs, deletions).  Whoever writes bumps the counters *after* its commit
(ingest's commit listeners: :meth:`DataVersions.listener`; the API's own
write requests and imports: :meth:`DataVersions.bump_all`).  So:

- a page read before a commit is stored under the old snapshot, which no
  request made after the bump asks for: never a stale answer once the
  writer has bumped;
- a page read between the commit and the bump already holds the new data
  (its entry is merely wasted).

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
from typing import Any

ENTRY_OVERHEAD = 300  # [bytes] key, tuple and dict slot of an entry, counted against the budget


class DataVersions:
    """Generation counters of the store's data: one per device, one for all devices, one for everything else.

    Thread-safe: ingest bumps from its worker thread, requests read from the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._device: dict[str, int] = {}
        self._any_device = 0  # bumped with every device
        self._other = 0  # registry, imports: anything not told per device

    def bump(self, devices: Iterable[str]) -> None:
        """Records of ``devices`` were committed (stored, changed or deleted)."""
        with self._lock:
            for device in set(devices):
                self._device[device] = self._device.get(device, 0) + 1
            self._any_device += 1

    def bump_all(self) -> None:
        """Something was committed that may change any answer (a registry change, an import)."""
        with self._lock:
            self._other += 1

    def snapshot(self, devices: Sequence[str]) -> tuple[int, ...]:
        """The counters an answer about ``devices`` (all devices when empty) depends on."""
        with self._lock:
            if not devices:
                return (self._other, self._any_device)
            return (self._other, *(self._device.get(d, 0) for d in devices))

    def listener(self, committed: list[tuple[str, str, str, Any]]) -> None:
        """An ingest commit listener (``ingest.worker.CommitListener``): bump the devices of the new records."""
        if committed:
            self.bump(device for _campaign, device, _boot, _record in committed)


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
