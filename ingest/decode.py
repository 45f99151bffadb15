"""Decoding a group of MQTT messages into the store's table: a pure function, run in a thread or a process.

The ingest worker receives messages and acknowledges them after commit; in
between, each group of messages is decoded here into the wide Arrow table the
store writes, the dead letters of what was refused, and what each device is
told afterwards.  Nothing here touches the broker or the store, so the same
function runs inline (``decode_processes = 0``) or in a pool of processes
that takes the CPU-bound part (JSON parsing and checks, which hold the GIL)
away from the process that owns the MQTT connection and the DuckDB file.

- ``qsec/v1/…/readings`` messages go through the bulk screen
  (:mod:`ingest.fastpath`); a message in which anything is odd goes through
  the exact per-record path (:func:`qsec.contract.decode_batch`), which names
  each refused record's reason.
- Other topics go through their adapter (:mod:`ingest.adapters`: SenML
  RFC 8428, Tasmota, Smart Citizen).

Process pools: https://docs.python.org/3/library/concurrent.futures.html#processpoolexecutor
(arguments and results are pickled; an Arrow table pickles through its IPC
buffers: https://arrow.apache.org/docs/python/ipc.html).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa

from ingest import adapters, fastpath
from ingest.store import ROW_KEY_COLUMNS, DeadLetter, records_table
from qsec import contract

# device -> (campaign, boot -> arrays of settled seqs, refused records): what each device is told after a commit
Answer = dict[str, tuple[str, dict[str, list[np.ndarray]], list[dict]]]
Row = tuple[str, str, str, contract.Record]  # (campaign, device, boot, record)


@dataclass
class Decoded:
    """A decoded group of messages: what to write, what to set aside, what to answer."""

    table: pa.Table | None
    dead: list[DeadLetter] = field(default_factory=list)
    answer: Answer = field(default_factory=dict)
    devices: set[tuple[str, str]] = field(default_factory=set)  # (campaign, device) pairs seen: to register
    received: int = 0  # records received, stored or refused (a message refused whole counts none)
    ignored: Counter[tuple[str, str]] = field(default_factory=Counter)  # (adapter, field) set aside on purpose


def contract_topic(topic: str) -> contract.Topic | None:
    """``topic`` parsed by :func:`qsec.contract.parse_topic`, else None (an external format's, or a bad one).

    The one place that tells a wire-contract topic from the others: only
    ``qsec/v1/<campaign>/<device>/status`` is a bridge's status, whatever an
    adapter's topic ends with (a SenML device named ``status`` publishes on
    ``senml/<campaign>/status``).
    """
    try:
        return contract.parse_topic(topic)
    except contract.ContractError:
        return None


def campaign_of(topic: str) -> str | None:
    """The campaign of a valid ``qsec/v1/<campaign>/…`` topic, else None (an external format's, or a bad one)."""
    tp = contract_topic(topic)
    return None if tp is None else tp.campaign


def decode(messages: Sequence[tuple[str, bytes]], *, now_ms: int, not_before: dict[str, int | None],
           limits: contract.Limits, quantity_columns: Sequence[str],
           external_campaign: str | None = None, external_timezone: str | None = None) -> Decoded:
    """Decode ``(topic, payload)`` messages; ``not_before`` holds each campaign's start [ms] (or None).

    ``external_campaign`` and ``external_timezone`` are the adapters' ``campaign`` and ``timezone`` context
    (:mod:`ingest.adapters`); None leaves each adapter its default.
    """
    dead: list[DeadLetter] = []
    msgs: list[fastpath.Message] = []
    external: list[Row] = []
    out = Decoded(table=None, dead=dead)
    context = {"timezone": external_timezone} if external_timezone else {}
    for topic, payload in messages:
        if not topic.startswith(contract.TOPIC_ROOT + "/"):
            _decode_external(topic, payload, now_ms, external_campaign or "external", not_before, external, out,
                             context)
            continue
        try:
            tp = contract.parse_topic(topic)
        except contract.ContractError as exc:
            dead.append(DeadLetter(topic, exc.reason, str(exc), payload.decode("utf-8", "replace")))
            continue
        out.devices.add((tp.campaign, tp.device))
        msgs.append(fastpath.Message(tp.campaign, tp.device, payload, topic))
    fast, slow = fastpath.screen(msgs, now_ms=now_ms, limits=limits,
                                 not_before={m.campaign: not_before.get(m.campaign) for m in msgs})
    out.answer = {m.device: (m.campaign, defaultdict(list), []) for m in msgs}
    slow_rows = _decode_exactly([msgs[i] for i in slow], now_ms, not_before, limits, out) + external
    out.received += len(fast) + len(slow_rows)
    table = fastpath.to_arrow(fast, quantity_columns, now_ms) if len(fast) else None
    if slow_rows:
        extra = records_table(slow_rows, quantity_columns, now_ms)
        table = extra if table is None else pa.concat_tables([table, extra], promote_options="default")
    out.table = table
    return out


def _decode_external(topic: str, payload: bytes, now_ms: int, campaign: str, not_before: dict[str, int | None],
                     rows: list[Row], out: Decoded, context: dict[str, str]) -> None:
    """A message of an external format (SenML, Tasmota, Smart Citizen), through its adapter."""
    adapter = adapters.adapter_for_topic(topic)
    if adapter is None:
        out.dead.append(DeadLetter(topic, contract.BadTopic.reason, "no adapter reads this topic",
                                   payload.decode("utf-8", "replace")))
        return
    result = adapter.decode(payload, source=topic, received_ms=now_ms, campaign=campaign,
                            not_before_ms=not_before.get(campaign), **context)
    out.devices.update((c, d) for c, d, _, _ in result.rows)
    out.received += len(result.refused)  # rows are counted with the others
    rows.extend(result.rows)
    out.dead.extend(result.refused)
    out.ignored.update({(adapter.name, name): n for name, n in result.ignored.items()})


def _decode_exactly(msgs: list[fastpath.Message], now_ms: int, not_before: dict[str, int | None],
                    limits: contract.Limits, out: Decoded) -> list[Row]:
    """The record-by-record path, for messages the bulk screen sent back: precise reasons, nothing lost."""
    rows: list[Row] = []
    for m in msgs:
        _, settled, refused = out.answer[m.device]
        try:
            dec = contract.decode_batch(m.payload, device=m.device, now_ms=now_ms,
                                        not_before_ms=not_before.get(m.campaign), limits=limits)
        except contract.ContractError as exc:
            out.dead.append(DeadLetter(m.topic, exc.reason, str(exc), m.payload.decode("utf-8", "replace"),
                                       m.device))
            refused.append({"seq": None, "reason": exc.reason, "detail": str(exc)})
            continue
        out.received += len(dec.refused)
        rows.extend((m.campaign, m.device, dec.boot, rec) for rec in dec.records)
        for raw, exc in dec.refused:
            out.dead.append(DeadLetter(m.topic, exc.reason, str(exc), json.dumps(raw, ensure_ascii=False),
                                       m.device, dec.boot, exc.seq))
            refused.append({"seq": exc.seq, "reason": exc.reason, "detail": str(exc)})
            if exc.seq is not None:
                settled[dec.boot].append(np.array([exc.seq], dtype=np.int64))
    return rows


def records_of(table: pa.Table, rows: np.ndarray) -> list[Row]:
    """The ``(campaign, device, boot, Record)`` of some rows of a store table (for commit listeners)."""
    if not len(rows):
        return []
    part = table.take(pa.array(rows, pa.int64()))
    quantities = [c for c in part.column_names if c not in ROW_KEY_COLUMNS]
    t = part.column("time").cast(pa.int64()).to_pylist()
    cols = {q: part.column(q).to_pylist() for q in quantities}
    out: list[Row] = []
    for i, (c, d, b, s, sensor, flags) in enumerate(zip(
            part.column("campaign").to_pylist(), part.column("device").to_pylist(), part.column("boot").to_pylist(),
            part.column("seq").to_pylist(), part.column("sensor").to_pylist(), part.column("flags").to_pylist())):
        values = {q: v[i] for q, v in cols.items() if v[i] is not None}
        out.append((c, d, b, contract.Record(s, t[i], sensor, values, flags)))
    return out


def default_processes(cpus: int | None = None) -> int:
    """Decoding processes for ``qsec ingest`` when none are asked for: none on 1 core, else half the cores (1–4).

    On the 2-core reference machine one decoding process stored more records per second in sustained runs
    (300,000 records) than decoding in a thread, at the same CPU per record (docs/performance.md, "Ingest");
    on one core a pool only adds pickling and process switches.
    """
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return 0 if cpus <= 1 else min(4, cpus // 2)


def warm_up() -> bool:
    """Run once in each new decoding process: its imports are done before the first message arrives."""
    return True


def watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    """Pool initializer: end this decoding process as soon as the ingest process that started it is gone.

    A pool's processes hold both ends of their task queue, so a parent killed
    with SIGKILL would otherwise leave them waiting forever.  Polling
    ``os.getppid()`` works on every POSIX system (the orphan is re-parented).
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(0)

    threading.Thread(target=watch, name="qsec-decode-watch-parent", daemon=True).start()
