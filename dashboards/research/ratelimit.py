"""A small in-memory token-bucket rate limiter, one bucket per key (API token or client address).

Each bucket holds at most ``burst`` tokens and refills at ``rate`` tokens
per second; a request takes ``cost`` tokens or is refused with the time
until it could pass (sent as ``Retry-After``, RFC 9110 §10.2.3, with
status 429, RFC 6585 §4).  State lives in this process only: behind
several server processes, limits apply per process.

Sources
-------
- RFC 6585 §4 (429 Too Many Requests), RFC 9110 §10.2.3 (Retry-After):
  https://www.rfc-editor.org/rfc/rfc6585, https://www.rfc-editor.org/rfc/rfc9110
- Token bucket: ITU-T I.371 (generic cell rate algorithm), as in most API gateways.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_KEYS = 10_000  # buckets kept before full (idle) ones are forgotten


class TokenBuckets:
    """Token buckets by key, thread-safe.

    Parameters
    ----------
    rate : float
        Refill [tokens/s].
    burst : int
        Capacity [tokens].
    clock : callable returning float, optional
        Monotonic seconds; injected by tests.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(rate) and rate > 0 and burst >= 1):
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, not rate={rate!r} burst={burst!r}")
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket.

        Returns
        -------
        float
            0 when allowed; otherwise the seconds to wait before it would be [s].
        """
        cost = min(float(cost), self.burst)
        with self._lock:
            now = self._clock()
            tokens, at = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= cost:
                self._state[key] = (tokens - cost, now)
                if len(self._state) > MAX_KEYS:
                    self._forget(now)
                return 0.0
            self._state[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def _forget(self, now: float) -> None:
        full = [k for k, (tokens, at) in self._state.items() if tokens + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._state[key]
