"""The optional InfluxDB mirror: committed records, through a durable outbox, to ``/api/v2/write``.

Delivery rules (DESIGN.md "Storage"; user guide in docs/mirror.md):

- :meth:`InfluxMirror.on_commit` is an ingest commit listener.  It encodes the
  records as line protocol and appends them to the outbox in one commit before
  it returns: from then on a stopped server, a killed process or a reboot loses
  nothing.  A record that line protocol cannot carry (a non-finite value, a
  timestamp outside InfluxDB's range) is not queued: it goes to the dead-letter
  callback with the reason ``mirror_unencodable``, and the others are queued.
- A point leaves the outbox only after a 2xx for the request that carried it,
  or after the dead-letter callback took it.  Delivery is at least once: a
  process killed between the server's 2xx and the outbox commit sends that
  batch again, which InfluxDB absorbs (one point per series and timestamp).
- One batch is in flight at a time, taken from the head of the queue.  A batch
  that fails with a retryable error is retried, unchanged, before anything
  queued after it: the order of points is kept per series and overall.
- Error classes and back-off: see :mod:`ingest.mirror.policy` (Telegraf's
  influxdb_v2 output, and where the mirror differs from it).

influxdb-client is used in its synchronous mode (``write_api(write_options=
SYNCHRONOUS)``): each ``write(…, write_precision=WritePrecision.MS)`` is one
``POST /api/v2/write?org=…&bucket=…&precision=ms`` whose non-2xx answer raises
``ApiException`` (status, body, headers).  The client retries nothing by itself
(``InfluxDBClient(retries=…)`` defaults to no retry, and ``WriteOptions``'
retry settings apply to its batching mode only), so every retry is the
mirror's own.  Its batching mode is not used: its buffer lives in memory (a
kill loses it) and its retries run on their own schedule, whereas the outbox
is durable and keeps the order.  The same request
works against InfluxDB 1.8+ (token ``username:password``, bucket
``database/retention-policy``, org ignored).

Sources
-------
- influxdb-client-python 1.50: ``influxdb_client/client/write_api.py``
  (``WriteApi.write``, ``SYNCHRONOUS``), ``influxdb_client/client/influxdb_client.py``
  (``retries``), ``influxdb_client/rest.py`` (``ApiException``),
  ``influxdb_client/client/exceptions.py`` (error text from the body or the
  ``X-Platform-Error-Code`` / ``X-Influx-Error`` / ``X-InfluxDb-Error`` headers),
  ``examples/influxdb_18_example.py`` (InfluxDB 1.8 compatibility);
  https://influxdb-client.readthedocs.io/en/stable/usage.html#write
- influxdata/telegraf, ``plugins/outputs/influxdb_v2/http.go`` (what to do with each answer).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from ingest.mirror import policy
from ingest.mirror.lineproto import RecordEncoder
from ingest.mirror.outbox import Outbox, OutboxEntry
from ingest.mirror.settings import MirrorSettings
from qsec import contract

log = logging.getLogger("qsec.ingest.mirror")

RejectedCallback = Callable[[list[OutboxEntry], str, str], None]
"""``on_rejected(points, reason, detail)``: refused points, a stable reason code, the server's message."""

ERROR_HEADERS = ("X-Influxdb-Error", "X-Influx-Error", "X-Platform-Error-Code")
"""Headers that carry the error text when the body does not (InfluxDB 1.x sets ``X-InfluxDB-Error``)."""

CommittedRow = tuple[str, str, contract.Record] | tuple[str, str, str, contract.Record]
"""``(campaign, device, record)`` as ingest's commit listeners get it, or ``(campaign, device, boot, record)``."""


@dataclass(frozen=True)
class Answer:
    """The server's answer to one write: ``status`` is ``None`` when there was none (refused, reset, timeout)."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str = ""


class InfluxWriter:
    """A synchronous line-protocol writer on influxdb-client, turning every outcome into an :class:`Answer`."""

    def __init__(self, settings: MirrorSettings):
        self.settings = settings
        # No token: no Authorization header at all (servers without authentication).
        self._client = InfluxDBClient(url=settings.url, token=settings.token or None,  # type: ignore[arg-type]
                                      org=settings.org, timeout=settings.timeout_ms, enable_gzip=settings.gzip)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> Answer:
        s = self.settings
        try:
            self._api.write(bucket=s.bucket, org=s.org, record="\n".join(lines),
                            write_precision=WritePrecision.MS)  # type: ignore[arg-type]  # a str constant
        except ApiException as exc:
            status = int(exc.status) if exc.status else None  # status 0: TLS failure, no HTTP answer
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
            headers: Mapping[str, str] = exc.headers or {}  # urllib3's HTTPHeaderDict: case-insensitive
            if not body.strip():
                body = next((headers[h] for h in ERROR_HEADERS if headers.get(h)), "")
            return Answer(status, body, headers.get("Retry-After"), f"HTTP {exc.status} {exc.reason}: {body[:300]}")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Answer(None, error=f"{type(exc).__name__}: {exc}")
        return Answer(204)

    def close(self) -> None:
        self._client.close()


class InfluxMirror:
    """Mirror committed records to an InfluxDB-compatible server, through a durable outbox.

    Parameters
    ----------
    settings : where and how to write (:class:`MirrorSettings`)
    on_rejected : called with points refused for good: by the server (400/422, other 4xx;
        they leave the outbox only when it returns) or by the encoder (``mirror_unencodable``,
        never queued).  Without it they are logged at ERROR level and counted.
    clock : monotonic clock [s], for batching and back-off
    sleep : ``sleep(seconds)`` used by the background thread between steps; by default a
        wait that new data, :meth:`flush` and :meth:`stop` cut short
    wall_clock : wall clock [s since epoch], to read ``Retry-After`` dates
    """

    def __init__(self, settings: MirrorSettings, *, on_rejected: RejectedCallback | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] | None = None,
                 wall_clock: Callable[[], float] = time.time):
        self.settings = settings
        self.on_rejected = on_rejected
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.outbox = Outbox(settings.outbox_path, sync=settings.outbox_sync)
        self._encoder = RecordEncoder(settings.measurement)
        self._writer = InfluxWriter(settings)
        self._chunks: deque[list[OutboxEntry]] = deque()  # the batch in flight, cut into pieces to send in order
        self._due_at = clock()  # a recovered outbox is sent at once
        self._retry_at = float("-inf")
        self._failures = 0
        self._flush_requested = False
        self._pump_lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._counters: Counter[str] = Counter()
        self._rejected_by_status: Counter[str] = Counter()
        self._last_error: str | None = None
        self._last_error_status: int | None = None
        self._last_error_at: float | None = None
        self._last_success_at: float | None = None
        self.auth_failed = False
        self.config_failed = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ input
    def submit(self, rows: Sequence[CommittedRow]) -> int:
        """Encode and durably queue records; returns how many were queued.  ``rows`` as :data:`CommittedRow`.

        A record line protocol cannot carry is handed to the dead-letter callback
        (``mirror_unencodable``, the reason as detail, the record as JSON in ``line``)
        after the others are queued.  If that callback raises, the exception goes to
        the caller once the others are safely queued.
        """
        enc = self._encoder
        out: list[tuple[str, str, str, str | None, int]] = []
        refused: list[tuple[OutboxEntry, str]] = []
        for row in rows:
            if len(row) == 4:
                campaign, device, boot, rec = row  # type: ignore[misc]
            else:
                campaign, device, rec = row  # type: ignore[misc]
                boot = None
            try:
                out.append((enc.line(campaign, device, boot, rec), campaign, device, boot, rec.seq))
            except ValueError as exc:
                raw = json.dumps(rec.to_json(), allow_nan=True, default=str)
                refused.append((OutboxEntry(0, raw, campaign, device, boot, rec.seq), str(exc)))
        n = self.outbox.append(out)
        if n:
            with self._metrics_lock:
                self._counters["points_enqueued"] += n
            self._wake.set()
        for entry, reason in refused:
            with self._metrics_lock:
                self._counters["unencodable_records"] += 1
            try:
                self._dead_letter([entry], "mirror_unencodable", f"not sent: {reason}")
            except Exception:
                self._count_callback_error()
                raise
        return n

    def _dead_letter(self, points: list[OutboxEntry], reason: str, detail: str) -> None:
        """Hand refused points to ``on_rejected``, or log them without one.  The callback's errors propagate."""
        if self.on_rejected is None:
            for e in points:
                log.error("mirror: a point is refused for good (%s: %s): %s", reason, detail, e.line)
        else:
            self.on_rejected(list(points), reason, detail)

    def _count_callback_error(self) -> None:
        with self._metrics_lock:
            self._counters["callback_errors"] += 1

    def on_commit(self, committed: list[tuple[str, str, str, contract.Record]]) -> None:
        """Ingest commit listener (``worker.listeners.append(mirror.on_commit)``)."""
        self.submit(committed)

    # ------------------------------------------------------------ the core step
    def pump(self, force: bool = False) -> float | None:
        """Send at most one request if one is due; returns seconds until the next step is useful.

        ``None`` means the outbox is empty.  ``force`` sends a partial batch now (it does
        not cut a back-off short).  Thread-safe; the background thread calls it in a loop.
        """
        with self._pump_lock:
            now = self._clock()
            if now < self._retry_at:
                return self._retry_at - now
            if not self._chunks:
                depth = self.outbox.depth
                if depth == 0:
                    self._flush_requested = False
                    return None
                due = force or self._flush_requested or depth >= self.settings.batch_points or now >= self._due_at
                if not due:
                    return self._due_at - now
                self._chunks.append(self.outbox.head(self.settings.batch_points))
                self._due_at = now + self.settings.flush_interval_s
            chunk = self._chunks[0]
            answer = self._writer.write([e.line for e in chunk])
            with self._metrics_lock:
                self._counters["requests"] += 1
            return self._settle(chunk, answer)

    def _settle(self, chunk: list[OutboxEntry], answer: Answer) -> float:
        action = policy.classify(answer.status)
        if action is policy.Action.DELIVERED:
            self.outbox.remove(chunk)
            self._chunks.popleft()
            if self._failures:
                log.info("mirror: the server takes writes again after %d failed attempts", self._failures)
            self._failures = 0
            self._retry_at = float("-inf")
            self.auth_failed = self.config_failed = False
            with self._metrics_lock:
                self._counters["points_mirrored"] += len(chunk)
                self._last_success_at = self._wall_clock()
            return 0.0
        if action is policy.Action.SPLIT and len(chunk) > 1:
            half = len(chunk) // 2
            log.warning("mirror: request of %d points too large (413); sending it in two halves", len(chunk))
            self._replace_head([chunk[:half], chunk[half:]])
            with self._metrics_lock:
                self._counters["split_batches"] += 1
            return 0.0
        if action is policy.Action.SPLIT:  # one point of a few hundred bytes: a body limit is misconfigured
            return self._retry_later(answer, policy.Action.CONFIG_ALARM)
        if action is policy.Action.ISOLATE:
            sizes = policy.split_after_rejection(len(chunk), policy.parse_rejection(answer.body))
            if sizes is None:
                return self._reject(chunk, answer, f"mirror_{answer.status}")
            pieces, start = [], 0
            for n in sizes:
                pieces.append(chunk[start:start + n])
                start += n
            self._replace_head(pieces)
            with self._metrics_lock:
                self._counters["rejection_splits"] += 1
            return 0.0
        if action is policy.Action.REJECT:
            return self._reject(chunk, answer, f"mirror_{answer.status}")
        return self._retry_later(answer, action)

    def _replace_head(self, pieces: list[list[OutboxEntry]]) -> None:
        self._chunks.popleft()
        self._chunks.extendleft(reversed(pieces))

    def _reject(self, chunk: list[OutboxEntry], answer: Answer, reason: str) -> float:
        detail = policy.parse_rejection(answer.body).message or answer.error
        try:
            self._dead_letter(chunk, reason, detail)
        except Exception as exc:  # the dead-letter store failed: keep the points, try again later
            log.exception("mirror: the dead-letter callback failed; %d refused points stay queued", len(chunk))
            self._count_callback_error()
            return self._retry_later(Answer(answer.status, error=f"dead-letter callback failed: {exc}"),
                                     policy.Action.RETRY)
        self.outbox.remove(chunk)
        self._chunks.popleft()
        with self._metrics_lock:
            self._counters["rejected_points"] += len(chunk)
            self._rejected_by_status[str(answer.status)] += len(chunk)
        return 0.0

    def _retry_later(self, answer: Answer, action: policy.Action) -> float:
        self._failures += 1
        if action is policy.Action.RETRY:
            delay = policy.backoff_s(self._failures, initial_s=self.settings.backoff_initial_s,
                                     max_s=self.settings.backoff_max_s)
        else:
            delay = self.settings.alarm_retry_s
            if action is policy.Action.AUTH_ALARM:
                self.auth_failed = True
            else:
                self.config_failed = True
            log.error("mirror: %s — %s; the points stay queued (%d) and are retried every %.0f s", answer.error,
                      policy.alarm_hint(answer.status), self.outbox.depth, delay)
        after = policy.retry_after_s(answer.retry_after, self._wall_clock())
        if after is not None:
            delay = max(delay, after)
        self._retry_at = self._clock() + delay
        if self._failures == 1 and action is policy.Action.RETRY:
            log.warning("mirror: write failed (%s); the points stay queued and are retried", answer.error)
        with self._metrics_lock:
            self._counters["retries"] += 1
            self._last_error = answer.error
            self._last_error_status = answer.status
            self._last_error_at = self._wall_clock()
        return delay

    # ------------------------------------------------------------ thread
    def start(self) -> Self:
        """Start the background thread that sends the outbox.  Returns ``self``."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="qsec-influx-mirror", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread after its current request; what is queued stays in the outbox for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("mirror: the sending thread did not stop within %.0f s", timeout)
            self._thread = None

    def close(self) -> None:
        """Stop, then close the client and the outbox."""
        self.stop()
        self._writer.close()
        self.outbox.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Send everything queued now and wait until the outbox is empty; False after ``timeout`` [s].

        With the thread running, it asks the thread; otherwise it sends in the calling thread,
        honouring back-off with real sleeps.  Either way it waits in real time.
        """
        deadline = time.monotonic() + timeout
        if self._thread is not None and self._thread.is_alive():
            self._flush_requested = True
            self._wake.set()
            while self.outbox.depth and time.monotonic() < deadline:
                time.sleep(0.01)
            return self.outbox.depth == 0
        while True:
            delay = self.pump(force=True)
            remaining = deadline - time.monotonic()
            if delay is None or remaining <= 0:
                return self.outbox.depth == 0
            if delay > 0:
                time.sleep(min(delay, remaining))

    def _run(self) -> None:
        idle = self.settings.flush_interval_s
        while not self._stopping.is_set():
            try:
                delay = self.pump()
            except Exception as exc:  # an outbox I/O error: keep the thread, report, retry
                log.exception("mirror: a step failed; retrying")
                with self._metrics_lock:
                    self._counters["internal_errors"] += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    self._last_error_at = self._wall_clock()
                delay = self.settings.backoff_max_s
                self._retry_at = self._clock() + delay  # new data must not wake a hot loop of failures
            if delay is not None and delay <= 0:
                continue
            if self._sleep is not None:
                self._sleep(idle if delay is None else delay)
            else:
                self._wake.wait(delay)
                self._wake.clear()

    # ------------------------------------------------------------ metrics
    def metrics(self) -> dict[str, object]:
        """Counters and state for ``/metrics`` and ``qsec status``."""
        with self._metrics_lock:
            c = self._counters
            out: dict[str, object] = {
                "points_enqueued": c["points_enqueued"], "points_mirrored": c["points_mirrored"],
                "requests": c["requests"], "retries": c["retries"], "split_batches": c["split_batches"],
                "rejection_splits": c["rejection_splits"], "rejected_points": c["rejected_points"],
                "rejected_by_status": dict(self._rejected_by_status), "callback_errors": c["callback_errors"],
                "internal_errors": c["internal_errors"], "unencodable_records": c["unencodable_records"],
                "last_error": self._last_error,
                "last_error_status": self._last_error_status, "last_error_at": self._last_error_at,
                "last_success_at": self._last_success_at,
            }
        out["outbox_depth"] = self.outbox.depth
        out["auth_failed"] = self.auth_failed
        out["config_failed"] = self.config_failed
        out["consecutive_failures"] = self._failures
        out["retry_in_s"] = max(0.0, self._retry_at - self._clock())
        out["running"] = self._thread is not None and self._thread.is_alive()
        return out
