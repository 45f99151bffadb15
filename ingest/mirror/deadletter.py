"""Refused points into the store's dead-letter table, like any other refused record.

``InfluxMirror(settings, on_rejected=store_dead_letters(store))``: each point the
server refuses for good becomes one row of ``deadletter`` (docs/store.md) with
the record's topic, device, boot and seq, the mirror's reason code
(``mirror_400``, ``mirror_422``, ``mirror_<status>`` for a refusal by the server;
``mirror_unencodable`` for a record line protocol cannot carry, never sent),
the server's message (or the encoder's reason) as detail, and the line of line
protocol (or the unencodable record as JSON) as ``raw``.
"""

from __future__ import annotations

from ingest.mirror.mirror import RejectedCallback
from ingest.mirror.outbox import OutboxEntry
from ingest.store import DeadLetter, Store
from qsec import contract


def store_dead_letters(store: Store) -> RejectedCallback:
    """A ``on_rejected`` callback writing to ``store``'s dead-letter table (one transaction per call)."""

    def on_rejected(points: list[OutboxEntry], reason: str, detail: str) -> None:
        store.write([], [DeadLetter(topic=f"{contract.TOPIC_ROOT}/{p.campaign}/{p.device}/readings", reason=reason,
                                    detail=detail, raw=p.line, device=p.device, boot=p.boot, seq=p.seq)
                         for p in points])

    return on_rejected
