"""Fan-out of live events from the ingest thread to asynchronous screen clients.

Ingest commits records in its own thread and calls :meth:`LiveHub.publish`
once per committed record with::

    {"campaign": str, "device": str, "sensor": str,
     "t": int,                      # measurement time [ms since the Unix epoch, UTC]
     "values": {quantity: float}}   # canonical quantity names and units

Each subscriber (one per Server-Sent Events client) owns a bounded
:class:`asyncio.Queue` on its own event loop.  ``publish`` never blocks and
never touches a queue directly: it schedules the put on the subscriber's
loop with :meth:`asyncio.AbstractEventLoop.call_soon_threadsafe`.  A client
that reads too slowly loses its *oldest* waiting events, never the newest,
and every event lost that way is counted in :attr:`LiveHub.dropped`.
Events are shared between subscribers, not copied: do not mutate an event
after publishing it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

Event = Mapping[str, Any]
DEFAULT_QUEUE_SIZE = 256  # events waiting per client: minutes of one kit's records at 1 Hz


class _Closed:
    """Sentinel put in queues when the hub closes."""


_CLOSED = _Closed()


class Subscription:
    """One client's view of the hub: a bounded queue on the client's event loop.

    Created by :meth:`LiveHub.subscription`; use it as a context manager (sync
    or async) so it is always removed from the hub.
    """

    def __init__(self, hub: LiveHub, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._hub = hub
        self._loop = loop
        self._queue: asyncio.Queue[Event | _Closed] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        """Events this subscriber lost because its queue was full."""
        self.closed = False

    async def get(self, timeout: float | None = None) -> Event | None:
        """Wait for the next event.

        Parameters
        ----------
        timeout : float, optional
            Give up after this long [s] and return ``None``.

        Returns
        -------
        Mapping or None
            The event; ``None`` on timeout.

        Raises
        ------
        StopAsyncIteration
            When the hub has closed (or this subscription was closed).
        """
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, _Closed):
            self.closed = True
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Leave the hub; events already queued can still be read."""
        self.closed = True
        self._hub._remove(self)

    def _deliver(self, item: Event | _Closed) -> None:
        """Put an item, dropping the oldest one if full.  Runs on the subscriber's loop."""
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            self._hub._count_drop()
        self._queue.put_nowait(item)

    def _schedule(self, item: Event | _Closed) -> bool:
        """Schedule a delivery from any thread; ``False`` if the loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, item)
        except RuntimeError:  # the loop is closed: the client went away without closing
            return False
        return True

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LiveHub:
    """Thread-safe fan-out of live events to asyncio subscribers.

    Parameters
    ----------
    maxsize : int, optional
        Events that may wait in each subscriber's queue before the oldest is
        dropped.

    Examples
    --------
    In an ``async`` request handler::

        async for event in hub.subscribe():
            ...

    and from any thread (ingest)::

        hub.publish({"campaign": "expo", "device": "kit-1", "sensor": "plantower-pms5003",
                     "t": 1779019200000, "values": {"pm2_5": 12.0}})
    """

    def __init__(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, not {maxsize}")
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._dropped = 0
        self._published = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        """Events lost by slow subscribers since the hub started (oldest dropped first)."""
        with self._lock:
            return self._dropped

    @property
    def published(self) -> int:
        """Events published since the hub started."""
        with self._lock:
            return self._published

    @property
    def subscribers(self) -> int:
        """Subscribers connected now."""
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """Send ``event`` to every current subscriber.  Callable from any thread; never blocks."""
        with self._lock:
            self._published += 1
            targets = list(self._subscribers)
        gone = [sub for sub in targets if not sub._schedule(event)]
        for sub in gone:
            self._remove(sub)

    def subscription(self) -> Subscription:
        """Register a subscriber on the running event loop and return it.

        Raises
        ------
        RuntimeError
            If called outside a running event loop.
        """
        sub = Subscription(self, asyncio.get_running_loop(), self.maxsize)
        with self._lock:
            if self._closed:
                sub.closed = True
            else:
                self._subscribers.add(sub)
        return sub

    async def subscribe(self) -> AsyncIterator[Event]:
        """Yield events as they are published, until the hub closes."""
        with self.subscription() as sub:
            while True:
                try:
                    event = await sub.get()
                except StopAsyncIteration:
                    return
                if event is not None:
                    yield event

    def close(self) -> None:
        """End every subscription (their iterators stop); later subscriptions end at once."""
        with self._lock:
            self._closed = True
            targets = list(self._subscribers)
            self._subscribers.clear()
        for sub in targets:
            sub._schedule(_CLOSED)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1
