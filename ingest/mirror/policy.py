"""What the mirror does with each answer of an InfluxDB write: pure functions, no I/O.

The classes follow Telegraf's ``influxdb_v2`` output (``plugins/outputs/
influxdb_v2/http.go``, ``writeBatch`` and ``getRetryDuration``), with two
deliberate differences, both because qsec's outbox can hold data that Telegraf
would drop:

- 400 and 422 do not drop the whole batch: the batch is cut until the offending
  points stand alone (:func:`split_after_rejection`), those go to the dead-letter
  callback, and the others are written.  Writing a point again is harmless:
  InfluxDB keeps one value per series, field and timestamp (the last written).
- 404 (unknown bucket or organisation) is a configuration alarm, like 401/403:
  the data is kept and retried slowly, not dropped.

=============================  ==============================================
status                         action
=============================  ==============================================
2xx                            delivered: removed from the outbox
413                            split in halves, each retried at once; a single
                               point still too large is dead-lettered
400, 422                       offending points dead-lettered, the rest written
401, 403                       alarm ``auth_failed``; kept, retried slowly
404                            alarm ``config_failed``; kept, retried slowly
other 4xx                      the batch is dead-lettered (as Telegraf drops it)
429, 5xx, no answer            kept; retried with exponential back-off, never
                               sooner than ``Retry-After``
=============================  ==============================================

Sources
-------
- influxdata/telegraf, ``plugins/outputs/influxdb_v2/http.go`` (status classes;
  ``Retry-After`` parsed as seconds, 10 s when unparsable, capped at 600 s).
- InfluxDB v2 API, ``POST /api/v2/write`` responses:
  https://docs.influxdata.com/influxdb/v2/api/#operation/PostWrite
  (400 body ``{"code", "message", "line"}``: ``line`` is the first rejected line;
  InfluxDB 1.x/2.x partial writes say ``dropped=N`` in the message).
- InfluxDB 3 Core partial writes (``data[].line_number``):
  https://docs.influxdata.com/influxdb3/core/write-data/http-api/v3-write-lp/#partial-writes
- RFC 9110 section 10.2.3 (``Retry-After``: delay-seconds or an HTTP-date).
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

RETRY_AFTER_CAP_S = 600.0  # Telegraf's defaultMaxWaitRetryAfterSeconds
RETRY_AFTER_UNPARSABLE_S = 10.0  # Telegraf's guess for a header it cannot read
_DROPPED = re.compile(r"dropped=(\d+)")


class Action(str, Enum):
    """What to do with a batch after the server's answer."""

    DELIVERED = "delivered"
    SPLIT = "split"  # 413: too large
    ISOLATE = "isolate"  # 400/422: find the offending points, write the rest
    REJECT = "reject"  # other 4xx: the batch is refused as a whole
    RETRY = "retry"  # 429, 5xx, connection problems
    AUTH_ALARM = "auth_alarm"  # 401/403
    CONFIG_ALARM = "config_alarm"  # 404


def classify(status: int | None) -> Action:
    """The action for an HTTP status; ``None`` stands for no answer at all (connection refused, reset, timeout)."""
    if status is None:
        return Action.RETRY
    if 200 <= status < 300:
        return Action.DELIVERED
    if status == 413:
        return Action.SPLIT
    if status in (400, 422):
        return Action.ISOLATE
    if status in (401, 403):
        return Action.AUTH_ALARM
    if status == 404:
        return Action.CONFIG_ALARM
    if status == 429:
        return Action.RETRY
    if 400 <= status < 500:
        return Action.REJECT
    return Action.RETRY  # 5xx and anything unexpected: the server's problem, keep the data


def retry_after_s(value: str | None, now_wall_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header [s], capped at 600 s; ``None`` without a header.

    Parameters
    ----------
    value : the header, delay-seconds (``"30"``, ``"1.5"``) or an HTTP-date
    now_wall_s : the wall clock [s since epoch], to turn an HTTP-date into a delay
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return RETRY_AFTER_UNPARSABLE_S
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse is a malformed header
            return RETRY_AFTER_UNPARSABLE_S
        seconds = when.timestamp() - now_wall_s
    if math.isnan(seconds):
        return RETRY_AFTER_UNPARSABLE_S
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def backoff_s(failures: int, *, initial_s: float, max_s: float) -> float:
    """Exponential back-off after ``failures`` consecutive failures: initial, 2x, 4x, … up to ``max_s`` [s]."""
    if failures <= 0:
        return 0.0
    return min(max_s, initial_s * 2.0 ** min(failures - 1, 60))


@dataclass(frozen=True)
class Rejection:
    """What a 400/422 body says about the points it refused.

    first_line : 1-based line number of the first refused line, when the server names it
    dropped : how many points the server dropped, when it says (``dropped=N``)
    message : the server's message, for the dead-letter detail
    """

    first_line: int | None
    dropped: int | None
    message: str


def _first_line(doc: dict[str, Any]) -> int | None:
    line = doc.get("line")
    if isinstance(line, int) and not isinstance(line, bool):
        return line
    data = doc.get("data")
    if isinstance(data, list):
        found = [d.get("line_number") for d in data if isinstance(d, dict)]
        numbers: list[int] = [n for n in found if isinstance(n, int) and not isinstance(n, bool)]
        if numbers:
            return min(numbers)
    return None


def parse_rejection(body: str | bytes | None) -> Rejection:
    """Read a write error body: InfluxDB 2 (``message``, ``line``), InfluxDB 3 (``error``, ``data``), or text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = (body or "").strip()
    doc: Any = None
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    first_line: int | None = None
    message = text
    if isinstance(doc, dict):
        first_line = _first_line(doc)
        for key in ("message", "error"):
            if isinstance(doc.get(key), str):
                message = doc[key]
                break
    m = _DROPPED.search(message)
    return Rejection(first_line=first_line, dropped=int(m.group(1)) if m else None, message=message[:2000])


def split_after_rejection(size: int, rejection: Rejection) -> list[int] | None:
    """How to cut a refused batch of ``size`` points so that the offending ones end up alone.

    Returns the sizes of the pieces to send in order, or ``None`` when the whole
    batch is to be dead-lettered: a single point, or a server that says it dropped
    all of them.  A named first line ``k`` gives ``[k-1, 1, size-k]`` (the lone
    point is sent again to confirm it, so a wrong hint never condemns a good
    point); otherwise the batch is halved.  Every piece is smaller than the batch,
    so repeated cuts end.
    """
    if size <= 1 or rejection.dropped == size:
        return None
    k = rejection.first_line
    if k is not None and 1 <= k <= size:
        return [n for n in (k - 1, 1, size - k) if n > 0]
    return [size // 2, size - size // 2]
