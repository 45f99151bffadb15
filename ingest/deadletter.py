"""The dead-letter table: list, explain, and reprocess after a fix (``qsec deadletter``).

A dead letter keeps what was refused (``raw``), where it came from
(``topic``: a contract topic ``qsec/v1/<campaign>/<device>/readings``, or an
adapter's ``<adapter>:<campaign>:<source>``, see :mod:`ingest.adapters`) and
why (``reason``, a stable code of :data:`qsec.contract.REASONS`).

Reprocessing decodes each open dead letter again with the *current* contract
and adapters, as of the time it was received (so a measurement time is
judged against the clock of its arrival, not today's):

- a whole message (``boot`` empty) is decoded whole: its good records are
  stored; it is ``reprocessed`` when nothing in it is refused any more, and
  otherwise stays open with the first remaining problem as its reason;
- a single record (``boot`` set) is checked alone: stored and
  ``reprocessed`` when it passes, otherwise left open with its new reason.

An adapter's dead letter is decoded with the options the adapter kept in
its source (Tasmota: ``…/SENSOR#timezone=<zone>``, the zone its local
``Time`` was read in, see :mod:`ingest.adapters.tasmota`); the ``context``
given to :func:`reprocess` only fills in what a dead letter does not keep
(the zone of those stored before it was kept).

Records are written first (idempotently on ``(device, boot, seq)``), the
statuses after: a reprocessing stopped half-way is simply run again.
Docs: docs/import.md ("Dead letters"), docs/adapters.md.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ingest import adapters
from ingest.adapters import AdapterResult, Row
from ingest.importer import write_batches
from ingest.store import Store
from qsec import contract

PAGE = 5000


@dataclass(frozen=True)
class DeadLetterRow:
    """One row of the ``deadletter`` table (``received_ms`` [ms since epoch, UTC])."""

    id: int
    received_ms: int
    topic: str | None
    device: str | None
    boot: str | None
    seq: int | None
    reason: str
    detail: str | None
    raw: str | None
    status: str


@dataclass(frozen=True)
class Explanation:
    meaning: str
    fix: str


EXPLANATIONS: dict[str, Explanation] = {
    "bad_topic": Explanation(
        "The message came on a topic that is not qsec/v1/<campaign>/<device>/readings (or an adapter's), or its "
        "campaign or device id breaks ^[a-z0-9][a-z0-9_-]{0,63}$.",
        "Configure the sender with a valid topic and ids (lower-case letters, digits, _ and -). Reprocessing "
        "cannot change where a message came from: send it again on the right topic."),
    "payload_too_large": Explanation(
        "The payload is larger than the contract's limit (256 KiB).",
        "Send smaller batches (the bridge splits them itself); for a file, use qsec import."),
    "bad_json": Explanation(
        "The payload is not UTF-8 JSON (or not the format its adapter reads).",
        "Check the sender's firmware or configuration; the raw payload below shows what arrived."),
    "wrong_version": Explanation(
        "The payload's version is not one this ingest reads (contract v=1; SenML bver up to 10, "
        "or 26: 10 with RFC 9100's secondary units).",
        "Update qsec on the ingest side, or configure the sender for version 1."),
    "bad_schema": Explanation(
        "The payload or record does not have the expected fields: a missing or malformed field, a value that is "
        "not a number, a unit an adapter does not accept, a CSV line with extra fields.",
        "The detail names the field. Fix the sender, or for a file fix the line and import it again; if qsec "
        "should accept it (a new unit, say), update qsec and run qsec deadletter reprocess."),
    "too_many_records": Explanation(
        "More records in one message than the contract allows (1000).",
        "Send smaller batches."),
    "device_mismatch": Explanation(
        "The payload names another device than the one the transport (topic, X-Sensor header) says.",
        "Fix the sender's device id so that both agree; the transport's identity is the one qsec trusts."),
    "unknown_quantity": Explanation(
        "A quantity, column, sensor id or value type is not in qsec's table (qsec/quantities.py) or in the "
        "adapter's mapping (docs/adapters.md). The whole record was kept aside so it can be stored complete.",
        "If it is a real quantity qsec should keep, add it to the table or the adapter's mapping, update qsec, "
        "then run qsec deadletter reprocess --reason unknown_quantity."),
    "out_of_range": Explanation(
        "A value is outside the quantity's physical range (docs/contract.md): a sensor fault, a unit error "
        "(Pa sent as hPa, °F as °C) or a decoding bug.",
        "Check the sensor and the unit it sends. A value that is truly impossible stays refused; after a fix "
        "of a unit conversion in qsec, run qsec deadletter reprocess --reason out_of_range."),
    "bad_time": Explanation(
        "The measurement time is missing, negative or not a date-time.",
        "Check the sender's clock and time format (ISO 8601, or ms since 1970 UTC on the wire)."),
    "future_time": Explanation(
        "The measurement time was more than 120 s ahead of ingest's clock when it arrived: the device clock is "
        "wrong (no NTP or GPS time yet, a lost RTC).",
        "Set the device's clock (NTP, GPS). The records keep the time they were sent with; reprocessing judges "
        "them against the time they arrived, so they stay refused."),
    "before_campaign": Explanation(
        "The measurement time is before the campaign's start: a device clock reset to 1970/2000, or records "
        "of another campaign.",
        "Fix the device clock, or correct the campaign's start date, then run qsec deadletter reprocess."),
}
UNKNOWN_REASON = Explanation("This reason is not one qsec knows.", "Look at the detail and the raw payload.")
MIRROR_PREFIX = "mirror_"  # the InfluxDB mirror's refusals (ingest/mirror): the record is stored, its copy is not
MIRROR_REFUSED = Explanation(
    "The record is stored in qsec; only its copy in InfluxDB was refused, by the server (HTTP status in the reason, "
    "the server's message in the detail): a field written before with another type, a retention or schema rule, "
    "a point the server cannot take. The raw line below is the line protocol that was sent.",
    "Fix the cause on the InfluxDB side (docs/mirror.md), then write these records again from qsec: qsec export "
    "of the devices and times concerned, and InfluxDB's own bulk write. qsec deadletter reprocess leaves them: "
    "there is nothing to store again.")
MIRROR_UNENCODABLE = Explanation(
    "The record is stored in qsec, but line protocol cannot carry one of its values (NaN or infinite, an integer "
    "beyond 64 bits, a time outside 1677-2262), so it was never sent to InfluxDB. The raw record below is JSON.",
    "Nothing to do for qsec's own data. If InfluxDB must hold it, correct the value there by hand; qsec "
    "deadletter reprocess leaves it.")


def explanation(reason: str) -> Explanation:
    """What a dead letter's reason means and what to do about it."""
    if reason == f"{MIRROR_PREFIX}unencodable":
        return MIRROR_UNENCODABLE
    if reason.startswith(MIRROR_PREFIX):
        return MIRROR_REFUSED
    return EXPLANATIONS.get(reason, UNKNOWN_REASON)


# ---------------------------------------------------------------- reading the table
_COLUMNS = "id, epoch_ms(received), topic, device, boot, seq, reason, detail, raw, status"


def _rows(store: Store, where: str, params: list[Any]) -> list[DeadLetterRow]:
    cur = store.cursor()
    return [DeadLetterRow(id=int(r[0]), received_ms=int(r[1]), topic=r[2], device=r[3], boot=r[4],
                          seq=None if r[5] is None else int(r[5]), reason=r[6], detail=r[7], raw=r[8], status=r[9])
            for r in cur.execute(f"SELECT {_COLUMNS} FROM deadletter {where}", params).fetchall()]


def _filter(status: str, reasons: Iterable[str], ids: Iterable[int]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if status != "all":
        clauses.append("status = ?")
        params.append(status)
    reasons, ids = list(reasons), list(ids)
    if reasons:
        clauses.append(f"reason IN ({', '.join('?' * len(reasons))})")
        params.extend(reasons)
    if ids:
        clauses.append(f"id IN ({', '.join('?' * len(ids))})")
        params.extend(int(i) for i in ids)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def counts_by_reason(store: Store, status: str = "open") -> dict[str, int]:
    """Dead letters by reason, most frequent first (``status``: open, reprocessed or all)."""
    where, params = _filter(status, (), ())
    return dict(store.cursor().execute(
        f"SELECT reason, count(*) AS n FROM deadletter {where} GROUP BY reason ORDER BY n DESC, reason",
        params).fetchall())


def list_dead_letters(store: Store, *, status: str = "open", reasons: Iterable[str] = (),
                      limit: int = 50) -> list[DeadLetterRow]:
    """The latest dead letters, newest first."""
    where, params = _filter(status, reasons, ())
    return _rows(store, f"{where} ORDER BY id DESC LIMIT {int(limit)}", params)


def get(store: Store, dead_letter_id: int) -> DeadLetterRow:
    """One dead letter; a :class:`KeyError` says how to find the ids."""
    rows = _rows(store, "WHERE id = ?", [int(dead_letter_id)])
    if not rows:
        raise KeyError(f"no dead letter with id {dead_letter_id}; `qsec deadletter list` shows the ids")
    return rows[0]


def explain(row: DeadLetterRow) -> str:
    """A person's explanation of a dead letter: what came, why it was refused, what to do."""
    what = explanation(row.reason)
    origin = adapters.parse_dead_topic(row.topic or "")
    source = (f"adapter {origin[0]} ({adapters.get(origin[0]).description}), campaign {origin[1]}, "
              f"source {origin[2]}" if origin else f"topic {row.topic}")
    received = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(row.received_ms / 1000))
    lines = [f"dead letter {row.id} ({row.status}), received {received}",
             f"  from      {source}",
             f"  device    {row.device or '-'}   boot {row.boot or '-'}   seq {'-' if row.seq is None else row.seq}",
             f"  reason    {row.reason}: {row.detail or ''}",
             "", "What it means:", f"  {what.meaning}", "", "What to do:", f"  {what.fix}", "",
             "Raw payload:" if row.boot is None else "Raw record:", _pretty(row.raw)]
    return "\n".join(lines)


def _pretty(raw: str | None) -> str:
    if raw is None:
        return "  (none)"
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


# ---------------------------------------------------------------- decoding again (pure)
@dataclass
class Outcome:
    """What a dead letter gives when decoded again: records to store, and the problem left (if any)."""

    rows: list[Row] = field(default_factory=list)
    still: tuple[str, str] | None = None  # (reason, detail) when it stays open


def redecode(row: DeadLetterRow, *, not_before: Callable[[str], int | None] = lambda c: None,
             context: Mapping[str, Any] | None = None) -> Outcome:
    """Decode a dead letter again with the current contract and adapters (no I/O).

    ``context`` holds adapter options (``timezone``…) for what the dead letter's source does not keep itself.
    """
    raw = (row.raw or "").encode()
    origin = adapters.parse_dead_topic(row.topic or "")
    if origin is not None:
        name, campaign, source = origin
        options = {"not_before_ms": not_before(campaign), **({"device": row.device} if row.device else {}),
                   **dict(context or {})}
        result = adapters.get(name).decode(raw, source=source, received_ms=row.received_ms, campaign=campaign,
                                           **options)
        return _adapter_outcome(row, result)
    try:
        tp = contract.parse_topic(row.topic or "")
    except contract.ContractError:
        return Outcome(still=(row.reason, row.detail or ""))
    nb = not_before(tp.campaign)
    if row.boot is None:  # the whole message was refused
        try:
            dec = contract.decode_batch(raw, device=tp.device, now_ms=row.received_ms, not_before_ms=nb)
        except contract.ContractError as exc:
            return Outcome(still=(exc.reason, str(exc)))
        out = Outcome(rows=[(tp.campaign, tp.device, dec.boot, r) for r in dec.records])
        if dec.refused:
            first = dec.refused[0][1]
            total = len(dec.refused) + len(dec.records)
            out.still = (first.reason, f"{len(dec.refused)} of {total} records still refused; first: {first}")
        return out
    try:
        rec = contract.check_record(json.loads(raw), now_ms=row.received_ms, not_before_ms=nb)
    except ValueError as exc:  # ContractError is a ValueError, and so is a JSON error
        reason = exc.reason if isinstance(exc, contract.ContractError) else "bad_json"
        return Outcome(still=(reason, str(exc)))
    return Outcome(rows=[(tp.campaign, tp.device, row.boot, rec)])


def _adapter_outcome(row: DeadLetterRow, result: AdapterResult) -> Outcome:
    if row.boot is None:  # the whole payload was refused
        whole = [d for d in result.refused if d.boot is None]
        out = Outcome(rows=list(result.rows))
        problem = whole[0] if whole else (result.refused[0] if result.refused else None)
        if problem is not None:
            out.still = (problem.reason, problem.detail if whole else
                         f"{len(result.refused)} records still refused; first: {problem.detail}")
        return out
    same = [d for d in result.refused if d.boot == row.boot and (row.seq is None or d.seq == row.seq)]
    if same:
        return Outcome(still=(same[0].reason, same[0].detail))
    return Outcome(rows=[r for r in result.rows if r[2] == row.boot and (row.seq is None or r[3].seq == row.seq)])


# ---------------------------------------------------------------- reprocessing (I/O)
@dataclass
class ReprocessReport:
    examined: int = 0
    reprocessed: int = 0
    stored: int = 0
    duplicates: int = 0
    still_open: Counter[str] = field(default_factory=Counter)  # new reason -> dead letters left open


def reprocess(store: Store, *, reasons: Iterable[str] = (), ids: Iterable[int] = (),
              context: Mapping[str, Any] | None = None, clock: Callable[[], float] = time.time) -> ReprocessReport:
    """Decode the open dead letters again (all, or those of ``reasons`` / ``ids``) and store what now passes.

    The mirror's dead letters (reasons ``mirror_…``) are left alone: their
    records are stored already, only their copy in InfluxDB was refused.
    ``context``: adapter options for dead letters that do not keep their own
    (``timezone`` of Tasmota dead letters stored before the zone was kept).
    """
    report = ReprocessReport()
    where, params = _filter("open", reasons, ids)
    where = f"{where} {'AND' if where else 'WHERE'} NOT starts_with(reason, '{MIRROR_PREFIX}')"
    starts: dict[str, int | None] = {}

    def not_before(campaign: str) -> int | None:
        if campaign not in starts:
            starts[campaign] = store.campaign_start_ms(campaign)
        return starts[campaign]

    registered: set[tuple[str, str]] = set()
    last_id = -1
    while True:
        page = _rows(store, f"{where} {'AND' if where else 'WHERE'} id > ? ORDER BY id LIMIT {PAGE}",
                     [*params, last_id])
        if not page:
            return report
        last_id = page[-1].id
        done: list[int] = []
        still: list[tuple[int, str, str]] = []
        result = AdapterResult()
        for row in page:
            outcome = redecode(row, not_before=not_before, context=context)
            result.rows.extend(outcome.rows)
            if outcome.still is None:
                done.append(row.id)
            else:
                still.append((row.id, *outcome.still))
                report.still_open[outcome.still[0]] += 1
        inserted, duplicates = write_batches(store, result, received_ms=int(clock() * 1000), registered=registered)
        _set_status(store, done, still)
        report.examined += len(page)
        report.reprocessed += len(done)
        report.stored += inserted
        report.duplicates += duplicates


def _set_status(store: Store, done: list[int], still: list[tuple[int, str, str]]) -> None:
    cur = store.cursor()
    cur.execute("BEGIN")
    try:
        if done:
            ids = pa.table({"id": pa.array(done, pa.int64())})  # noqa: F841  (read by DuckDB by name)
            cur.execute("UPDATE deadletter SET status = 'reprocessed' FROM ids WHERE deadletter.id = ids.id")
        if still:
            upd = pa.table({"id": pa.array([s[0] for s in still], pa.int64()),  # noqa: F841
                            "reason": [s[1] for s in still], "detail": [s[2] for s in still]})
            cur.execute("UPDATE deadletter SET reason = upd.reason, detail = upd.detail FROM upd "
                        "WHERE deadletter.id = upd.id")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
