"""Vectorised decoding of readings messages: the common case in bulk, anything odd the exact way.

:func:`qsec.contract.decode_batch` checks one record at a time in pure Python
(it must run on a Raspberry Pi).  On the server, a group of messages is parsed
with orjson and screened column by column (NumPy); the result is the wide
Arrow table the store writes.  A message in which *anything* is unusual — a
bad envelope, a wrong type, an unknown quantity, a value out of range, a time
out of bounds — goes through ``decode_batch`` instead, which names the
precise reason for each refused record.  Both paths accept and refuse exactly
the same records (a Hypothesis test checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import orjson
import pyarrow as pa

from qsec import contract
from qsec.quantities import QUANTITIES

_REQUIRED = frozenset({"seq", "t", "sensor", "values"})
_ALLOWED = _REQUIRED | {"flags"}
_LO = {q.name: q.minimum for q in QUANTITIES.values()}
_HI = {q.name: q.maximum for q in QUANTITIES.values()}


@dataclass
class Message:
    """One readings message: its topic (already parsed) and raw payload."""

    campaign: str
    device: str
    payload: bytes
    topic: str


@dataclass
class FastBatch:
    """Records of the messages that passed the screen, as columns."""

    campaign: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    boot: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    # index of the message each record came from (for feedback)
    message: list[int] = field(default_factory=list)
    # the checked columns, ready for Arrow: seq, t, flags [int64], sensor [str], one float64 array per quantity
    columns: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)


def _envelope_ok(doc: Any, device: str, limits: contract.Limits) -> bool:
    if type(doc) is not dict or doc.get("v") != contract.VERSION:
        return False
    boot, records = doc.get("boot"), doc.get("records")
    if type(boot) is not str or not contract.BOOT_PATTERN.match(boot) or type(records) is not list:
        return False
    claimed = doc.get("device")
    return len(records) <= limits.max_records and (claimed is None or claimed == device)


def _shapes_ok(records: list[Any], limits: contract.Limits) -> bool:
    """Types and shapes of every record: cheap per-record tests, no allocation."""
    for r in records:
        if type(r) is not dict or not (_REQUIRED <= r.keys() <= _ALLOWED):
            return False
        if type(r["seq"]) is not int or type(r["t"]) is not int or type(r["sensor"]) is not str:
            return False
        v = r["values"]
        if type(v) is not dict or not v or len(v) > limits.max_values:
            return False
        f = r.get("flags", 0)
        if type(f) is not int or not 0 <= f < 2**16:
            return False
        for x in v.values():
            if type(x) is not float and type(x) is not int:
                return False
    return True


def _columns(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Columns of well-shaped records; raises OverflowError for an integer beyond int64 / float64."""
    values = [r["values"] for r in records]
    names: set[str] = set()
    for v in values:
        names.update(v)
    cols: dict[str, Any] = {
        "seq": np.array([r["seq"] for r in records], dtype=np.int64),
        "t": np.array([r["t"] for r in records], dtype=np.int64),
        "flags": np.array([r.get("flags", 0) for r in records], dtype=np.int64),
        "sensor": [r["sensor"] for r in records],
        "names": names,
        "values": values,
    }
    for q in names:
        if q in _LO:
            cols[q] = np.array([v.get(q, math.nan) for v in values], dtype=np.float64)
    return cols


def _bad_records(cols: dict[str, Any], not_before: np.ndarray, now_ms: int | None,
                 limits: contract.Limits) -> np.ndarray:
    """Per record: True when any check of :func:`contract.check_record` would fail."""
    seq, t = cols["seq"], cols["t"]
    bad = (seq < 0) | (seq > limits.max_seq) | (t < 0) | (t < not_before)
    if now_ms is not None:
        bad |= t > now_ms + limits.future_skew_ms
    sensors = cols["sensor"]
    wrong = {s for s in set(sensors) if not contract.SENSOR_PATTERN.match(s)}
    if wrong:
        bad |= np.array([s in wrong for s in sensors])
    if not cols["names"] <= _LO.keys():  # an unknown quantity: the exact path names it
        bad |= np.array([not v.keys() <= _LO.keys() for v in cols["values"]])
    for q in cols["names"] & _LO.keys():
        col = cols[q]
        present = ~np.isnan(col)
        with np.errstate(invalid="ignore"):
            bad |= present & ~(np.isfinite(col) & (col >= _LO[q]) & (col <= _HI[q]))
    return bad


def _bad_messages(docs: list[tuple[int, Any]], not_before: list[int], now_ms: int | None,
                  limits: contract.Limits) -> tuple[np.ndarray, dict[str, Any]]:
    """Per message of ``docs``: True when one of its records fails; and the columns of all their records."""
    counts = np.array([len(d["records"]) for _, d in docs], dtype=np.int64)
    records = [r for _, d in docs for r in d["records"]]
    try:
        cols = _columns(records)
    except (OverflowError, ValueError):  # an integer beyond int64: find its message, one by one
        if len(docs) == 1:
            return np.ones(1, dtype=bool), {}
        return np.array([_bad_messages([doc], [nb], now_ms, limits)[0][0]
                         for doc, nb in zip(docs, not_before)]), {}
    owner = np.repeat(np.arange(len(docs)), counts)
    bad = _bad_records(cols, np.repeat(np.array(not_before, dtype=np.int64), counts), now_ms, limits)
    return np.bincount(owner[bad], minlength=len(docs)) > 0, cols


def screen(messages: Sequence[Message], *, now_ms: int | None, not_before: dict[str, int | None],
           limits: contract.Limits = contract.LIMITS) -> tuple[FastBatch, list[int]]:
    """Split messages into a bulk batch and the indices of those needing the exact path.

    A message is accepted only when every one of its records passes every
    check; the checks run on the columns of all the messages at once.
    """
    out, slow = FastBatch(), []
    docs: list[tuple[int, Any]] = []
    for i, m in enumerate(messages):
        if len(m.payload) > limits.max_payload_bytes:
            slow.append(i)
            continue
        try:
            doc = orjson.loads(m.payload)
        except orjson.JSONDecodeError:
            slow.append(i)
            continue
        if _envelope_ok(doc, m.device, limits) and _shapes_ok(doc["records"], limits):
            docs.append((i, doc))
        else:
            slow.append(i)
    if not docs:
        return out, sorted(slow)
    floor = -(2**63)
    starts = [not_before.get(messages[i].campaign) for i, _ in docs]
    bad, cols = _bad_messages(docs, [floor if s is None else s for s in starts], now_ms, limits)
    if bad.any():
        slow.extend(i for (i, _), b in zip(docs, bad) if b)
        keep = np.repeat(~bad, [len(d["records"]) for _, d in docs])
        docs = [doc for doc, b in zip(docs, bad) if not b]
        if cols:
            cols = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in cols.items()}
            cols["sensor"] = [s for s, k in zip(cols["sensor"], keep) if k]
            cols["values"] = [v for v, k in zip(cols["values"], keep) if k]
        else:  # the columns could not be built: build them for the accepted messages
            cols = _columns([r for _, d in docs for r in d["records"]]) if docs else {}
    for i, doc in docs:
        m, n = messages[i], len(doc["records"])
        out.records.extend(doc["records"])
        out.campaign.extend([m.campaign] * n)
        out.device.extend([m.device] * n)
        out.boot.extend([doc["boot"]] * n)
        out.message.extend([i] * n)
    out.columns = cols
    return out, sorted(slow)


def to_arrow(batch: FastBatch, quantity_columns: Sequence[str], received_ms: int) -> pa.Table:
    """The store's wide table for a screened batch: the key columns and the quantities present."""
    cols, n = batch.columns, len(batch.records)
    arrays: dict[str, pa.Array] = {
        "campaign": pa.array(batch.campaign, pa.string()), "device": pa.array(batch.device, pa.string()),
        "boot": pa.array(batch.boot, pa.string()),
        "seq": pa.array(cols["seq"]),
        "time": pa.array(cols["t"]).cast(pa.timestamp("ms")),
        "sensor": pa.array(cols["sensor"], pa.string()),
        "flags": pa.array(cols["flags"].astype(np.int32)),
        "received": pa.array(np.full(n, received_ms, np.int64)).cast(pa.timestamp("ms")),
    }
    for q in quantity_columns:  # only the quantities present: the store fills the others with NULL
        if q in cols:
            col = cols[q]
            arrays[q] = pa.array(col, mask=np.isnan(col))
    return pa.table(arrays)
