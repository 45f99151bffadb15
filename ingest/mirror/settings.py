"""Settings of the InfluxDB mirror, validated once at start-up.

Each refusal names the option and what is allowed.  Defaults follow InfluxDB's
advice of about 5,000 lines per write, and Telegraf's back-off (``n**2 / 40``
seconds after the n-th failure) and its ceiling (60 s).

Request size: 5,000 qsec points make about 1.2 MB of line protocol, far below
the usual body limits (InfluxDB 1.x ``[http] max-body-size`` = 25,000,000
bytes by default; VictoriaMetrics ``-influx.maxLineSize`` = 256 KiB per line).
A server that answers 413 gets the batch in halves (docs/mirror.md).

InfluxDB 1.8+ through its ``/api/v2/write`` compatibility endpoint: ``token``
``"username:password"`` (or empty without authentication), ``bucket``
``"database/retention-policy"``, and any non-empty ``org`` (``"-"``), which
1.8 ignores.

Sources
-------
- InfluxDB v2, "Optimize writes": https://docs.influxdata.com/influxdb/v2/write-data/best-practices/optimize-writes/
- influxdata/telegraf ``plugins/outputs/influxdb_v2/http.go`` (``getRetryDuration``,
  ``defaultMaxWaitSeconds = 60``).
- InfluxDB 1.x configuration, ``[http] max-body-size``:
  https://docs.influxdata.com/influxdb/v1/administration/config/
- influxdb-client-python ``examples/influxdb_18_example.py`` (InfluxDB 1.8 token, org and bucket).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.mirror.lineproto import check_measurement
from ingest.mirror.outbox import SYNC_MODES


@dataclass(frozen=True)
class MirrorSettings:
    """Where and how the mirror writes.

    url : base URL of the server, ``http(s)://host:port`` (the client adds ``/api/v2/write``)
    outbox_path : the outbox file (SQLite), e.g. ``<data dir>/influx-outbox.sqlite``
    token, org, bucket : InfluxDB 2/3 credentials and destination (InfluxDB 3: bucket = database;
        InfluxDB 1.8: token ``"user:password"``, bucket ``"database/retention-policy"``, org ``"-"``)
    measurement : measurement holding every record (not empty, not starting with ``#`` or ``_``)
    batch_points : points per write request [points]
    flush_interval_ms : longest wait before a partial batch is sent [ms]
    timeout_ms : one request's time limit [ms]
    backoff_initial_s, backoff_max_s : back-off after 408/429/5xx/connection errors: ``n**2 / 40`` s after
        the n-th failure in a row (Telegraf's), never less than ``backoff_initial_s`` nor more than
        ``backoff_max_s`` [s]
    alarm_retry_s : retry period while 401/403/404 (or 413 for a single point) say the configuration is wrong [s]
    gzip : compress request bodies
    outbox_sync : ``"full"`` (survives a power cut) or ``"normal"`` (survives a killed process)
    """

    url: str
    outbox_path: Path
    token: str = ""
    org: str = "qsec"
    bucket: str = "qsec"
    measurement: str = "readings"
    batch_points: int = 5000
    flush_interval_ms: int = 1000
    timeout_ms: int = 10_000
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    alarm_retry_s: float = 60.0
    gzip: bool = False
    outbox_sync: str = "full"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"mirror url={self.url!r} must start with http:// or https:// "
                             "(for example http://127.0.0.1:8086)")
        if not self.bucket:
            raise ValueError("mirror bucket must not be empty (InfluxDB 3: the database name)")
        if not self.org:
            raise ValueError("mirror org must not be empty (InfluxDB 2: organisation name or ID; "
                             "InfluxDB 3 and VictoriaMetrics ignore it)")
        try:
            check_measurement(self.measurement)
        except ValueError as exc:
            raise ValueError(f"mirror measurement={self.measurement!r}: {exc}") from None
        if not 1 <= self.batch_points <= 100_000:
            raise ValueError(f"mirror batch_points={self.batch_points} must be from 1 to 100000 (5000 is advised)")
        if not 1 <= self.flush_interval_ms <= 3_600_000:
            raise ValueError(f"mirror flush_interval_ms={self.flush_interval_ms} must be from 1 to 3600000")
        if not 100 <= self.timeout_ms <= 600_000:
            raise ValueError(f"mirror timeout_ms={self.timeout_ms} must be from 100 to 600000")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError(f"mirror backoff_initial_s={self.backoff_initial_s} must be > 0 and at most "
                             f"backoff_max_s={self.backoff_max_s}")
        if not self.alarm_retry_s > 0:
            raise ValueError(f"mirror alarm_retry_s={self.alarm_retry_s} must be > 0")
        if self.outbox_sync not in SYNC_MODES:
            raise ValueError(f"mirror outbox_sync={self.outbox_sync!r}; allowed: {', '.join(SYNC_MODES)}")

    @property
    def flush_interval_s(self) -> float:
        return self.flush_interval_ms / 1000.0
