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


def _records_ok(records: list[Any], now_ms: int | None, not_before_ms: int | None, limits: contract.Limits) -> bool:
    """True when every record passes every check of :func:`contract.check_record`."""
    if not records:
        return True
    for r in records:  # shape and types: cheap per-record tests, no allocation
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
    seq = np.fromiter((r["seq"] for r in records), dtype=np.float64, count=len(records))
    t = np.fromiter((r["t"] for r in records), dtype=np.float64, count=len(records))
    if seq.min() < 0 or seq.max() > limits.max_seq or t.min() < 0:
        return False
    if now_ms is not None and t.max() > now_ms + limits.future_skew_ms:
        return False
    if not_before_ms is not None and t.min() < not_before_ms:
        return False
    if not all(contract.SENSOR_PATTERN.match(s) for s in {r["sensor"] for r in records}):
        return False
    names: set[str] = set()
    for r in records:
        names.update(r["values"])
    for name in names:
        if name not in _LO:
            return False
        col = np.fromiter((r["values"].get(name, _LO[name]) for r in records), dtype=np.float64, count=len(records))
        if not (np.isfinite(col).all() and col.min() >= _LO[name] and col.max() <= _HI[name]):
            return False
    return True


def screen(messages: Sequence[Message], *, now_ms: int | None, not_before: dict[str, int | None],
           limits: contract.Limits = contract.LIMITS) -> tuple[FastBatch, list[int]]:
    """Split messages into a bulk batch and the indices of those needing the exact path."""
    out, slow = FastBatch(), []
    for i, m in enumerate(messages):
        if len(m.payload) > limits.max_payload_bytes:
            slow.append(i)
            continue
        try:
            doc = orjson.loads(m.payload)
        except orjson.JSONDecodeError:
            slow.append(i)
            continue
        try:
            ok = _envelope_ok(doc, m.device, limits) and _records_ok(doc["records"], now_ms,
                                                                     not_before.get(m.campaign), limits)
        except (OverflowError, ValueError):  # an integer beyond float range, and the like
            ok = False
        if not ok:
            slow.append(i)
            continue
        n = len(doc["records"])
        out.records.extend(doc["records"])
        out.campaign.extend([m.campaign] * n)
        out.device.extend([m.device] * n)
        out.boot.extend([doc["boot"]] * n)
        out.message.extend([i] * n)
    return out, slow


def to_arrow(batch: FastBatch, quantity_columns: Sequence[str], received_ms: int) -> pa.Table:
    """The store's wide table for a screened batch: the key columns and the quantities present."""
    recs, n = batch.records, len(batch.records)
    names: set[str] = set()
    for r in recs:
        names.update(r["values"])
    arrays: dict[str, pa.Array] = {
        "campaign": pa.array(batch.campaign, pa.string()), "device": pa.array(batch.device, pa.string()),
        "boot": pa.array(batch.boot, pa.string()),
        "seq": pa.array(np.fromiter((r["seq"] for r in recs), np.int64, n)),
        "time": pa.array(np.fromiter((r["t"] for r in recs), np.int64, n)).cast(pa.timestamp("ms")),
        "sensor": pa.array([r["sensor"] for r in recs], pa.string()),
        "flags": pa.array(np.fromiter((r.get("flags", 0) for r in recs), np.int32, n)),
        "received": pa.array(np.full(n, received_ms, np.int64)).cast(pa.timestamp("ms")),
    }
    for q in quantity_columns:  # only the quantities present: the store fills the others with NULL
        if q in names:
            col = np.fromiter((r["values"].get(q, math.nan) for r in recs), np.float64, n)
            arrays[q] = pa.array(col, mask=np.isnan(col))
    return pa.table(arrays)
