"""What the mirror does with each answer of an InfluxDB write: pure functions, no I/O.

The classes follow Telegraf's ``influxdb_v2`` output (``plugins/outputs/
influxdb_v2/http.go``: ``writeBatch``, ``splitAndWrite``, ``getRetryDuration``).
Where they differ, it is because qsec's outbox can keep data that Telegraf's
memory buffer would drop, or because an HTTP status says the request may be
repeated:

=============================  ==============================================  ==================================
status                         qsec                                            Telegraf
=============================  ==============================================  ==================================
2xx                            delivered: removed from the outbox              delivered (200, 201, 202, 204,
                                                                               206, 207, 208; other 2xx retried)
413                            split in halves, each sent at once; a single    split in halves; a single point
                               point still refused raises ``config_failed``    stays in the buffer, retried
                               and is kept (no point of a few hundred bytes
                               is too large: a body limit is misconfigured)
400, 422                       offending points dead-lettered, the rest        the whole batch dropped
                               written (:func:`split_after_rejection`)
401, 403                       alarm ``auth_failed``; kept, retried every      kept, retried at the next flush
                               ``alarm_retry_s``
404                            alarm ``config_failed``; kept, retried every    the batch dropped
                               ``alarm_retry_s``
408                            kept; retried with back-off (RFC 9110: the      dropped (as any other 4xx)
                               request may be repeated)
other 4xx (405, 406, 415 …)    the batch is dead-lettered                      dropped
429, 502, 503, 504             kept; back-off, never sooner than Retry-After   the same
500, other 5xx, 1xx, 3xx       kept; back-off, never sooner than Retry-After   kept, retried at the next flush
no answer (refused, timeout)   kept; back-off                                  kept, retried at the next flush
=============================  ==============================================  ==================================

Writing a point again while isolating refused ones is harmless: InfluxDB keeps
one point per series and timestamp (the union of the field sets, the newer
value winning).

Back-off (:func:`backoff_s`) is Telegraf's ``getRetryDuration``: ``n**2 / 40``
seconds after the n-th consecutive failure, capped at 60 s
(``defaultMaxWaitSeconds``), never less than the configured floor (Telegraf's
floor is its flush interval, since it only retries on a flush); a
``Retry-After`` header waits longer if it says so.  ``Retry-After``
(:func:`retry_after_s`) is read as seconds, 10 s when it cannot be read, and
capped at 600 s (``defaultMaxWaitRetryAfterSeconds``), as Telegraf does; an
HTTP-date (RFC 9110), which Telegraf counts as unreadable, is honoured.

Error bodies (:func:`parse_rejection`): InfluxDB 2 ``{"code", "message",
"line"}`` (``line``: the first malformed line, taken as 1-based), InfluxDB 1.x
``{"error"}`` (also in the ``X-Influxdb-Error`` header), InfluxDB 3
``{"error", "data": [{"line_number", …}]}``, or text.  Partial writes say
``dropped=N`` in the message (1.x answers them with 400, 2.x with 422).

Sources
-------
- influxdata/telegraf (read at commit 01b9116e), ``plugins/outputs/influxdb_v2/http.go`` and
  ``plugins/outputs/influxdb_v2/errors.go`` (``genericRespError``: ``code``,
  ``message``, ``line``, ``maxLength``).
- InfluxDB v2 API, ``POST /api/v2/write`` responses (``LineProtocolError``,
  ``LineProtocolLengthError``; 503 with ``Retry-After``):
  https://docs.influxdata.com/influxdb/v2/api/#operation/PostWrite
- InfluxDB v2 "Troubleshoot issues writing data" (204, 400, 401, 404, 413,
  422 partial writes with ``dropped=N``, 500, 503):
  https://docs.influxdata.com/influxdb/v2/write-data/troubleshoot/
- InfluxDB 1.x ``services/httpd/handler.go`` (``httpError``: JSON ``error``
  and ``X-InfluxDB-Error``; partial writes answered 400).
- InfluxDB 3 Core partial writes (``data[].line_number``):
  https://docs.influxdata.com/influxdb3/core/write-data/http-api/v3-write-lp/#partial-writes
- RFC 9110 sections 10.2.3 (``Retry-After``: delay-seconds or an HTTP-date)
  and 15.5.9 (408 Request Timeout: the client may repeat the request).
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
BACKOFF_CAP_S = 60.0  # Telegraf's defaultMaxWaitSeconds
BACKOFF_DIVISOR = 40.0  # Telegraf: n**2 / 40 s after the n-th failure, "to widen the slope"
_DROPPED = re.compile(r"dropped=(\d+)")


class Action(str, Enum):
    """What to do with a batch after the server's answer."""

    DELIVERED = "delivered"
    SPLIT = "split"  # 413: too large (a single point: CONFIG_ALARM)
    ISOLATE = "isolate"  # 400/422: find the offending points, write the rest
    REJECT = "reject"  # other 4xx: the batch is refused as a whole
    RETRY = "retry"  # 408, 429, 5xx, connection problems
    AUTH_ALARM = "auth_alarm"  # 401/403
    CONFIG_ALARM = "config_alarm"  # 404, and 413 for a single point


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
    if status in (408, 429):
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


def backoff_s(failures: int, *, initial_s: float, max_s: float = BACKOFF_CAP_S) -> float:
    """Telegraf's back-off after ``failures`` consecutive failures: ``failures**2 / 40`` [s].

    Never less than ``initial_s`` (the first waits) nor more than ``max_s`` [s]; 0 without a failure.
    With ``initial_s=1``: 1 s for the first six, 2.5 s after 10, 10 s after 20, 60 s from the 49th on.
    """
    if failures <= 0:
        return 0.0
    return min(max_s, max(initial_s, min(failures, 10**6) ** 2 / BACKOFF_DIVISOR))


def alarm_hint(status: int | None) -> str:
    """What to check when the server keeps refusing for a configuration reason (401, 403, 404, 413 on one point)."""
    if status in (401, 403):
        return ("check the mirror's token and its write permission on the bucket (InfluxDB 1.8: token "
                "'username:password')")
    if status == 413:
        return ("the server or a proxy in front of it refuses a request of a single point: raise its body size "
                "limit (InfluxDB 1.x: [http] max-body-size)")
    return ("check the mirror's url, org and bucket (InfluxDB 1.8: bucket 'database/retention-policy'; "
            "InfluxDB 1.x before 1.8 has no /api/v2/write)")


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
