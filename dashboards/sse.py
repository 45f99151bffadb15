"""Server-Sent Events encoding of hub events (text/event-stream, WHATWG HTML §9.2).

The stream sends:

- ``retry: <ms>``: how long a browser waits before reconnecting;
- ``event: reading`` with one hub event as JSON ``data`` per committed record;
- every ``heartbeat_s`` seconds without a reading, a comment line
  (``: heartbeat``, which keeps proxies from closing an idle link) and an
  ``event: ping`` whose data is the server time [ms UTC], so the page knows
  the link is alive and can correct its clock offset.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from dashboards.live import Event, LiveHub

HEARTBEAT_S = 10.0  # [s]
RETRY_MS = 2000  # [ms] browser reconnection delay


def clean_event(event: Event) -> dict[str, Any]:
    """Keep the contract's fields of an event, with non-finite values removed.

    ``NaN`` and infinities are not valid JSON; a value that is not a finite
    number is left out rather than sent as something the browser cannot parse.
    """
    values = event.get("values") or {}
    return {
        "campaign": str(event.get("campaign", "")),
        "device": str(event.get("device", "")),
        "sensor": str(event.get("sensor", "")),
        "t": int(event.get("t", 0)),
        "values": {
            str(name): float(value)
            for name, value in values.items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        },
    }


def message(event: str, data: Mapping[str, Any]) -> str:
    """Encode one SSE message (JSON data on one line)."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n"


def ping(now_ms: int) -> str:
    """A heartbeat: an SSE comment followed by a ``ping`` event carrying the server time."""
    return f": heartbeat\n{message('ping', {'server_time': now_ms})}"


async def stream(
    hub: LiveHub,
    *,
    campaign: str | None = None,
    heartbeat_s: float = HEARTBEAT_S,
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    transform: Callable[[Event], Event | None] | None = None,
) -> AsyncIterator[str]:
    """Yield the SSE text of hub events until the hub closes or the client leaves.

    Parameters
    ----------
    hub : LiveHub
    campaign : str, optional
        Forward only events of this campaign.
    heartbeat_s : float, optional
        Longest silence before a heartbeat [s].
    clock_ms : callable, optional
        Server clock [ms since the Unix epoch, UTC], for the heartbeat.
    transform : callable, optional
        Applied to each event before it is sent, e.g. the privacy filter
        that removes positions a public screen must not receive; an event
        it turns into ``None`` is not sent (an opted-out record).
    """
    async with hub.subscription() as sub:
        yield f"retry: {RETRY_MS}\n{ping(clock_ms())}"
        last_sent = time.monotonic()
        while True:
            wait = max(0.0, heartbeat_s - (time.monotonic() - last_sent))
            try:
                event = await sub.get(timeout=wait)
            except StopAsyncIteration:
                return
            if event is None:
                yield ping(clock_ms())
            elif campaign is not None and event.get("campaign") != campaign:
                continue
            else:
                shown = event if transform is None else transform(event)
                if shown is None:
                    continue
                yield message("reading", clean_event(shown))
            last_sent = time.monotonic()
