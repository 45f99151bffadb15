"""The server side of one process: the store, an ingest worker, and the optional InfluxDB mirror.

``qsec up``, ``qsec serve`` and ``qsec ingest`` all build it here, so that they
wire the same parts the same way: the mirror listens to ingest's commits and
sends what it refuses to the store's dead-letter table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class MirrorOptions:
    """Where to mirror the stored readings (InfluxDB 2.x/3.x line-protocol API); off without a URL."""

    url: str | None = None
    token: str = field(default_factory=lambda: os.environ.get("QSEC_INFLUX_TOKEN", ""))
    org: str = "qsec"
    bucket: str = "qsec"


@dataclass
class Pipeline:
    store: Any
    worker: Any
    mirror: Any = None
    hand_over: Any = None
    caught_up: int = 0

    def start(self, wait: float = 10.0) -> "Pipeline":
        if self.mirror is not None:
            from ingest.mirror.catchup import catch_up

            # records committed by an earlier run but never handed to the mirror (a kill in between)
            self.caught_up = catch_up(self.store, self.mirror, self.hand_over.mark())
            self.mirror.start()
        self.worker.start(wait=wait)
        return self

    def stop(self) -> None:
        self.worker.stop()
        if self.mirror is not None:
            self.mirror.close()
        self.store.close()


def build(data_dir: Path, *, host: str, port: int, client_id: str, share_group: str | None = "qsec-ingest",
          mirror: MirrorOptions | None = None, username: str | None = None, password: str | None = None,
          external_campaign: str | None = None, external_timezone: str | None = None,
          decode_processes: int = 0) -> Pipeline:
    """Open the store in ``data_dir`` and make (not start) the worker and the mirror."""
    from ingest.store import Store
    from ingest.worker import IngestSettings, IngestWorker

    store = Store(Path(data_dir) / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(host=host, port=port, client_id=client_id, share_group=share_group,
                                                username=username, password=password,
                                                external_campaign=external_campaign,
                                                external_timezone=external_timezone,
                                                decode_processes=decode_processes))
    influx = None
    if mirror is not None and mirror.url:
        from ingest.mirror import InfluxMirror, MirrorSettings, store_dead_letters

        influx = InfluxMirror(MirrorSettings(url=mirror.url, outbox_path=Path(data_dir) / "influx-outbox.sqlite",
                                             token=mirror.token, org=mirror.org, bucket=mirror.bucket),
                              on_rejected=store_dead_letters(store))
        from ingest.mirror.catchup import HandOver

        hand_over = HandOver(influx, worker, Path(data_dir) / "influx-outbox.mark")
        worker.listeners.append(hand_over)
        return Pipeline(store, worker, influx, hand_over)
    return Pipeline(store, worker)
