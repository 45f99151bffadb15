"""Optional InfluxDB mirror of committed records, with its own durable outbox (docs/mirror.md).

Wiring, in the process that runs ingest::

    mirror = InfluxMirror(MirrorSettings(url=..., outbox_path=data / "influx-outbox.sqlite", token=..., org=...,
                                         bucket=...), on_rejected=store_dead_letters(store)).start()
    worker.listeners.append(mirror.on_commit)
    ...
    mirror.close()
"""

from ingest.mirror.deadletter import store_dead_letters
from ingest.mirror.lineproto import RecordEncoder
from ingest.mirror.mirror import (
    Answer,
    CommittedRow,
    InfluxMirror,
    InfluxWriter,
    RejectedCallback,
)
from ingest.mirror.outbox import Outbox, OutboxEntry, OutboxError, OutboxLocked
from ingest.mirror.settings import MirrorSettings

__all__ = [
    "Answer", "CommittedRow", "InfluxMirror", "InfluxWriter", "MirrorSettings", "Outbox", "OutboxEntry",
    "OutboxError", "OutboxLocked", "RecordEncoder", "RejectedCallback", "store_dead_letters",
]
