"""``qsec import``: files into the store, idempotently, in batches.

Formats (docs/import.md): a kit's spool export (``qsec_spool_export`` header
then contract v1 batches, written by ``firmware_bridge.spool.Spool.export``),
Sensor.Community archive CSVs, Smart Citizen SD-card CSVs and qsec's own CSV.
A spool export keeps its records' own ``(device, boot, seq)``: the same records
uploaded later over MQTT are recognised as repeats and stored once.  External
formats follow the adapters' identity rule (docs/adapters.md).

Writes go through :meth:`ingest.store.Store.write` in batches of about
:data:`BATCH_ROWS` records; refused records go to the dead-letter table with
their reason, as ingest does for MQTT.  DuckDB lets one process write a file:
:func:`open_store` refuses with :class:`StoreLocked` while ``qsec serve``,
``qsec up`` or ``qsec ingest`` hold it; :func:`publish_spool` then sends a
spool export through the broker to the running ingest instead.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingest import adapters
from ingest.adapters import AdapterResult
from ingest.adapters._frame import open_text
from ingest.store import DeadLetter, Store
from qsec import contract

BATCH_ROWS = 10_000
SPOOL_LINES_PER_CHUNK = 20  # ≤ 500 records a line (firmware_bridge/spool/_export.py)
FORMATS = {"spool": None, "sensor-community": "sensor-community", "smartcitizen": "smartcitizen-csv",
           "qsec-csv": "qsec-csv"}  # format name on the command line -> adapter


class StoreLocked(RuntimeError):
    """The store file is held by another process (DuckDB allows one writer)."""


@dataclass
class ImportCounts:
    """What one import did."""

    path: str
    format: str
    stored: int = 0
    duplicates: int = 0
    dead: Counter[str] = field(default_factory=Counter)  # reason -> dead letters added
    dead_known: int = 0  # refusals already in the dead-letter table (a file imported again)
    ignored: Counter[str] = field(default_factory=Counter)  # field -> values the adapter set aside on purpose

    @property
    def dead_total(self) -> int:
        return sum(self.dead.values())

    def summary(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in self.dead.most_common())
        return (f"{self.path} ({self.format}): {self.stored} stored, {self.duplicates} duplicates, "
                f"{self.dead_total} dead-lettered" + (f" ({reasons})" if reasons else "")
                + (f", {self.dead_known} already dead-lettered" if self.dead_known else "")
                + (f", {sum(self.ignored.values())} values set aside on purpose ("
                   + ", ".join(f"{k} {n}" for k, n in self.ignored.most_common()) + ")" if self.ignored else ""))


def open_store(data_dir: Path) -> Store:
    """Open ``<data_dir>/qsec.duckdb`` for writing, or raise :class:`StoreLocked` with what to do."""
    import duckdb

    path = Path(data_dir) / "qsec.duckdb"
    try:
        return Store(path)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise StoreLocked(
            f"the store {path} is in use by another process (DuckDB allows one writer per file): stop "
            "`qsec serve`, `qsec up` or `qsec ingest` first, or send a spool export through the running ingest "
            "with --via-broker HOST:PORT") from None


def detect_format(path: Path) -> str:
    """The format of ``path`` from its first bytes; a :class:`ValueError` says what to pass instead."""
    with open_text(path) as handle:
        head = handle.read(8192).encode()
    if head.lstrip().startswith(b'{"qsec_spool_export"'):
        return "spool"
    for fmt, name in FORMATS.items():
        adapter = adapters.adapters().get(name) if name else None
        if adapter is not None and adapter.sniff is not None and adapter.sniff(head):
            return fmt
    raise ValueError(f"cannot tell the format of {path}: pass --format ({', '.join(FORMATS)})")


# ---------------------------------------------------------------- spool exports
def read_spool_header(line: bytes, path: Path) -> tuple[str, str]:
    """``(device, campaign)`` of a spool export's first line; a :class:`ValueError` otherwise."""
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("qsec_spool_export") != 1:
        raise ValueError(f"{path} is not a qsec spool export version 1 (its first line should be "
                         '{"qsec_spool_export":1,…}); export it again with the bridge of this qsec')
    device, campaign = header.get("device"), header.get("campaign")
    for what, value in (("device", device), ("campaign", campaign)):
        if not isinstance(value, str) or not contract.ID_PATTERN.match(value):
            raise ValueError(f"{path}: its header has an invalid {what} id {value!r}")
    return device, campaign  # type: ignore[return-value]


def read_spool(path: Path, *, received_ms: int, campaign: str | None = None,
               not_before: Callable[[str], int | None] = lambda c: None) -> Iterator[tuple[AdapterResult, int]]:
    """Decode a spool export: ``(result, bytes read so far)`` every few batches.

    Each line is checked as ingest checks an MQTT message (:func:`contract.decode_batch`);
    refusals are dead letters under the device's readings topic, so that
    ``qsec deadletter reprocess`` treats them as ingest's own.
    """
    with open(path, "rb") as f:
        device, header_campaign = read_spool_header(f.readline(), path)
        camp = campaign or header_campaign
        topic = contract.topic(camp, device)
        nb = not_before(camp)
        out, lines = AdapterResult(), 0
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                dec = contract.decode_batch(line, device=device, now_ms=received_ms, not_before_ms=nb)
            except contract.ContractError as exc:
                out.refused.append(DeadLetter(topic, exc.reason, str(exc), line.decode("utf-8", "replace"), device))
            else:
                out.rows.extend((camp, device, dec.boot, r) for r in dec.records)
                out.refused.extend(DeadLetter(topic, exc.reason, str(exc), json.dumps(raw, ensure_ascii=False),
                                              device, dec.boot, exc.seq) for raw, exc in dec.refused)
            lines += 1
            if lines % SPOOL_LINES_PER_CHUNK == 0:
                yield out, f.tell()
                out = AdapterResult()
        yield out, f.tell()


# ---------------------------------------------------------------- the import
def import_file(store: Store, path: Path, *, fmt: str = "auto", campaign: str | None = None,
                device: str | None = None, received_ms: int | None = None, batch_rows: int = BATCH_ROWS,
                progress: Callable[[int], None] | None = None) -> ImportCounts:
    """Import one file into ``store``; ``progress(bytes)`` is called as the file is read.

    Raises
    ------
    ValueError
        When the format cannot be told or read, or a needed option (campaign,
        device) is missing; the message names the option.
    """
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
    received_ms = received_ms if received_ms is not None else int(time.time() * 1000)
    counts = ImportCounts(str(path), fmt)

    def not_before(c: str) -> int | None:
        return store.campaign_start_ms(c)

    if fmt == "spool":
        chunks = read_spool(path, received_ms=received_ms, campaign=campaign, not_before=not_before)
    else:
        adapter = adapters.get(FORMATS[fmt])  # type: ignore[arg-type]
        if fmt != "qsec-csv" and not campaign:
            raise ValueError(f"{path} ({fmt}) names no campaign: pass --campaign ID")
        assert adapter.read_file is not None, f"file adapter {adapter.name} has no read_file"
        context = {"campaign": campaign, "device": device,
                   "not_before_ms": not_before(campaign) if campaign else None}
        chunks = adapter.read_file(path, received_ms=received_ms, **context)

    pending = AdapterResult()
    registered: set[tuple[str, str]] = set()
    last = 0
    for result, position in chunks:
        pending.extend(result)
        if len(pending.rows) + len(pending.refused) >= batch_rows:
            _flush(store, pending, counts, registered, received_ms, batch_rows)
            pending = AdapterResult()
        if progress is not None and position > last:
            progress(position - last)
            last = position
    _flush(store, pending, counts, registered, received_ms, batch_rows)
    return counts


def _flush(store: Store, pending: AdapterResult, counts: ImportCounts, registered: set[tuple[str, str]],
           received_ms: int, batch_rows: int) -> None:
    fresh = new_dead_letters(store, pending.refused)
    inserted, duplicates = write_batches(store, AdapterResult(pending.rows, fresh), received_ms=received_ms,
                                         registered=registered, batch_rows=batch_rows)
    counts.stored += inserted
    counts.duplicates += duplicates
    counts.dead.update(d.reason for d in fresh)
    counts.dead_known += len(pending.refused) - len(fresh)
    counts.ignored.update(pending.ignored)


def new_dead_letters(store: Store, dead: list[DeadLetter]) -> list[DeadLetter]:
    """The dead letters not already in the table (same topic, boot, seq and raw), so a re-import adds none."""
    if not dead:
        return []
    cand = pa.table({"i": pa.array(range(len(dead)), pa.int64()), "topic": [d.topic for d in dead],  # noqa: F841
                     "boot": [d.boot for d in dead], "seq": pa.array([d.seq for d in dead], pa.int64()),
                     "raw": [d.raw for d in dead]})
    known = {i for (i,) in store.cursor().execute(
        "SELECT c.i FROM cand c JOIN deadletter d ON d.topic = c.topic AND d.raw = c.raw "
        "AND d.boot IS NOT DISTINCT FROM c.boot AND d.seq IS NOT DISTINCT FROM c.seq").fetchall()}
    return [d for i, d in enumerate(dead) if i not in known]


def write_batches(store: Store, result: AdapterResult, *, received_ms: int,
                  registered: set[tuple[str, str]] | None = None, batch_rows: int = BATCH_ROWS) -> tuple[int, int]:
    """Write records and dead letters in transactions of ``batch_rows`` records; ``(inserted, duplicates)``.

    New ``(campaign, device)`` pairs are registered first (``registered``
    remembers those already done).
    """
    registered = set() if registered is None else registered
    inserted = duplicates = 0
    for start in range(0, max(len(result.rows), 1), batch_rows):
        rows = result.rows[start:start + batch_rows]
        dead = result.refused if start == 0 else []
        if not rows and not dead:
            break
        for campaign, device in {(c, d) for c, d, _, _ in rows} - registered:
            store.ensure_campaign(campaign)
            store.ensure_device(device, campaign)
            registered.add((campaign, device))
        written, _ = store.write(rows, dead, received_ms=received_ms)
        inserted += written.inserted
        duplicates += written.duplicates
    return inserted, duplicates


# ---------------------------------------------------------------- through the broker
@dataclass
class PublishCounts:
    """What :func:`publish_spool` sent and what ingest answered."""

    messages: int = 0
    records: int = 0
    settled: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        return self.settled >= self.records


def publish_spool(path: Path, host: str, port: int, *, campaign: str | None = None, timeout: float = 60.0,
                  progress: Callable[[int], None] | None = None) -> PublishCounts:
    """Publish a spool export's batches to ``qsec/v1/<campaign>/<device>/readings`` (QoS 1) and wait for ingest.

    Returns when ingest's feedback has settled every record, or after
    ``timeout`` seconds without all of them (``complete`` is then false).

    Raises
    ------
    ConnectionError
        When the broker cannot be reached.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    path = Path(path)
    with open(path, "rb") as f:
        device, header_campaign = read_spool_header(f.readline(), path)
        lines = [ln.strip() for ln in f if ln.strip()]
    camp = campaign or header_campaign
    expected: dict[str, set[int]] = {}
    for line in lines:
        doc = json.loads(line)
        expected.setdefault(str(doc.get("boot")), set()).update(
            r["seq"] for r in doc.get("records", []) if isinstance(r, dict) and isinstance(r.get("seq"), int))
    counts = PublishCounts(records=sum(len(s) for s in expected.values()))
    settled: dict[str, set[int]] = {b: set() for b in expected}
    done, connected = threading.Event(), threading.Event()
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        try:
            fb = contract.Feedback.decode(msg.payload)
        except contract.ContractError:
            return
        with lock:
            counts.accepted += fb.accepted
            counts.duplicates += fb.duplicates
            counts.refused.update(r.get("reason", "?") for r in fb.refused)
            for boot, rngs in fb.settled.items():
                if boot in settled:
                    settled[boot] |= contract.expand(rngs) & expected[boot]
            counts.settled = sum(len(s) for s in settled.values())
            if counts.complete:
                done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"qsec-import-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(contract.topic(camp, device, "ingest"), qos=1)
        connected.set()

    client.on_message = on_message  # before connect: feedback may come at once
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the MQTT broker at {host}:{port} ({exc}); is it running?") from None
    client.loop_start()
    try:
        if not connected.wait(10):
            raise ConnectionError(f"the MQTT broker at {host}:{port} did not accept the connection within 10 s")
        topic = contract.topic(camp, device)
        for line in lines:
            info = client.publish(topic, line, qos=1)
            info.wait_for_publish(timeout)
            counts.messages += 1
            if progress is not None:
                progress(len(line) + 1)
        if counts.records:
            done.wait(timeout)
        else:
            done.set()
    finally:
        client.disconnect()
        client.loop_stop()
    return counts
