"""Ingest worker: MQTT readings in, committed records out, exactly once.

Delivery rules (see DESIGN.md "Delivery semantics" and docs/ingest.md):

- Persistent MQTT 5 session (stable client id, ``clean_start=False``, a
  session expiry), subscribed with QoS 1 through a shared subscription
  ``$share/<group>/qsec/v1/+/+/readings`` so that several workers split the
  load.
- paho's ``manual_ack``: a message is acknowledged to the broker only after
  the transaction holding its records (and its dead letters) is committed.
  A worker killed before that gets the message again (``dup``) on
  reconnect, or the broker gives it to another worker of the group.
- Writes are idempotent on ``(device, boot, seq)``: repeats are counted as
  duplicates, never stored twice.
- After each commit the worker publishes, per device, a :class:`Feedback` on
  ``qsec/v1/<campaign>/<device>/ingest`` naming every seq now settled (stored,
  already stored, or dead-lettered): the bridge's end-to-end acknowledgement.
- A refused record goes to the dead-letter table with its reason; the rest of
  its batch is stored.  A message refused whole (bad JSON, wrong version…) is
  dead-lettered with its raw payload.  Nothing is dropped silently.
- The device identity is the topic's (and, with access control, the
  connection's user name enforced by the broker ACL), never the payload's.

paho-mqtt 2.x API: https://eclipse.dev/paho/files/paho.mqtt.python/html/client.html
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qsec import contract
import pyarrow as pa

from ingest import adapters, fastpath, keys
from ingest.store import DeadLetter, Store
from ingest.tracking import SeqTracker

log = logging.getLogger("qsec.ingest")

SYS_DROPPED = "$SYS/broker/publish/messages/dropped"  # Mosquitto: QoS 1/2 messages dropped (queue limits)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, float("inf"))


class LagHistogram:
    """Measurement-to-commit lag [s] in fixed buckets (cumulative, Prometheus style)."""

    def __init__(self, buckets: tuple[float, ...] = LAG_BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.n = 0

    def observe_many(self, values: np.ndarray) -> None:
        """Count an array of lags [s]."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        per_bucket = np.bincount(np.searchsorted(self.buckets, values, side="left"), minlength=len(self.buckets))
        self.counts = [c + int(k) for c, k in zip(self.counts, per_bucket)]
        self.total += float(values.sum())
        self.n += int(values.size)

    def cumulative(self) -> list[tuple[float, int]]:
        out, acc = [], 0
        for b, c in zip(self.buckets, self.counts):
            acc += c
            out.append((b, acc))
        return out


# A commit listener gets the newly stored records as (campaign, device, boot, record).
CommitListener = Callable[[list[tuple[str, str, str, contract.Record]]], None]


@dataclass
class IngestSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "qsec-ingest-1"
    share_group: str | None = "qsec-ingest"
    campaign_filter: str = "+"
    batch_records: int = 5000
    batch_ms: int = 200
    session_expiry_s: int = 7 * 24 * 3600
    username: str | None = None
    password: str | None = None
    register_unknown: bool = True  # open registry: a new device/campaign is registered on first sight
    # Campaign of the records that external formats bring over MQTT (SenML, Tasmota, Smart Citizen: see
    # ingest/adapters); None: ingest does not subscribe to their topics.
    external_campaign: str | None = None
    limits: contract.Limits = field(default_factory=lambda: contract.LIMITS)


@dataclass
class _Pending:
    mid: int
    qos: int
    topic: str
    payload: bytes


# device -> (campaign, boot -> arrays of settled seqs, refused records): what each device is told after a commit
Answer = dict[str, tuple[str, dict[str, list[np.ndarray]], list[dict]]]


@dataclass
class _Prepared:
    """A decoded group of messages, ready to commit."""

    work: list[_Pending]
    now_ms: int
    fast: fastpath.FastBatch
    slow_rows: list[tuple[str, str, str, contract.Record]]  # exact and external paths; they follow the bulk rows
    table: pa.Table | None
    dead: list[DeadLetter]
    answer: Answer


class IngestWorker:
    """One ingest worker: an MQTT client plus a committing thread."""

    def __init__(self, store: Store, settings: IngestSettings | None = None, *,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings or IngestSettings()
        self.clock = clock
        self.metrics: Counter[str] = Counter()
        self.deadletter_reasons: Counter[str] = Counter()
        self.listeners: list[CommitListener] = []
        self._inbox: list[_Pending] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: queue.Queue[_Prepared | None] = queue.Queue(maxsize=1)  # decoded, waiting for the writer
        self._backoff = 0.0  # [s] after a failed commit
        self.tracker = SeqTracker()
        self.tracker.seed(store.seq_tallies())
        self.lag = LagHistogram()
        self.bridges: dict[str, dict] = {}  # device -> its last retained status message
        self.broker_dropped: int | None = None  # Mosquitto's $SYS count of dropped messages
        self._known_devices: set[str] = set()
        self._campaign_start: dict[str, int | None] = {}
        self.last_commit_lag_ms: float | None = None
        self.last_commit_received_ms: int | None = None
        self.client = self._make_client()

    # ------------------------------------------------------------ MQTT
    def _make_client(self) -> mqtt.Client:
        s = self.settings
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        if s.username:
            c.username_pw_set(s.username, s.password)
        # Callbacks before connect(): queued messages arrive right after CONNACK.
        c.on_message = self._on_message
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        c.max_queued_messages_set(0)
        return c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("ingest: broker refused the connection: %s", reason_code)
            self.metrics["connect_refused"] += 1
            return
        self.metrics["connects"] += 1
        s = self.settings
        topics = [
            (contract.subscription(s.campaign_filter, share_group=s.share_group), 1),
            (contract.subscription(s.campaign_filter, kind="status"), 1),  # every worker sees every kit
            (SYS_DROPPED, 0),
        ]
        if s.external_campaign:
            for filters in adapters.mqtt_topics().values():
                topics += [(f"$share/{s.share_group}/{f}" if s.share_group else f, 1) for f in filters]
        client.subscribe(topics)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("ingest: the broker refused subscriptions: %s (check the ACL for the ingest user)", refused)
            self.metrics["subscribe_refused"] += len(refused)
        # Only now is a message published after start() sure to reach us.
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self._connected.clear()
        if not self._stop.is_set():
            self.metrics["disconnects"] += 1
            log.warning("ingest: lost the broker (%s); paho reconnects", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        if msg.topic == SYS_DROPPED:
            self.broker_dropped = int(msg.payload or 0)
            return
        if msg.topic.endswith("/status"):
            self._on_status(msg)
            client.ack(msg.mid, msg.qos)
            return
        with self._cond:
            self._inbox.append(_Pending(msg.mid, msg.qos, msg.topic, bytes(msg.payload)))
            self.metrics["messages_received"] += 1
            if len(self._inbox) * 50 >= self.settings.batch_records:
                self._cond.notify()

    def _on_status(self, msg: mqtt.MQTTMessage) -> None:
        try:
            device = contract.parse_topic(msg.topic).device
            doc = json.loads(msg.payload)
        except (contract.ContractError, ValueError):
            self.metrics["status_unreadable"] += 1
            return
        if isinstance(doc, dict):
            self.bridges[device] = doc

    # ------------------------------------------------------------ life cycle
    def start(self, wait: float = 10.0) -> "IngestWorker":
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        self.client.connect_async(s.host, s.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"ingest-{s.client_id}", daemon=True)
        self._thread.start()
        if wait and not self._connected.wait(wait):
            raise ConnectionError(f"ingest could not reach the MQTT broker at {s.host}:{s.port} within {wait:.0f} s; "
                                  "is mosquitto running? (`qsec up` starts one)")
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _run(self) -> None:
        """Decoding thread: takes the inbox, screens it, and hands each prepared commit to the writing thread.

        Decoding is Python (it holds the GIL); DuckDB's insert and commit release it, so the two overlap.  The
        hand-over queue holds one commit: decoding runs at most one commit ahead of the store.
        """
        s = self.settings
        writer = threading.Thread(target=self._write_loop, name=f"ingest-write-{s.client_id}", daemon=True)
        writer.start()
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait(timeout=max(s.batch_ms / 1000, self._backoff))
                work, self._inbox = self._inbox, []
            if work:
                self._hand_over(work)
        with self._cond:
            work, self._inbox = self._inbox, []
        if work:
            self._hand_over(work)
        self._ready.put(None)
        writer.join()

    def _hand_over(self, work: list[_Pending]) -> None:
        try:
            self._ready.put(self._prepare(work))
        except Exception:  # e.g. the registry write failed: nothing was acknowledged; retry the same messages
            self._failed(work)

    def _write_loop(self) -> None:
        """Writing thread: commit, acknowledge, answer; a failed commit puts its messages back, unacknowledged."""
        while (prepared := self._ready.get()) is not None:
            try:
                self._commit(prepared)
                self._backoff = 0.0
            except Exception:
                self._failed(prepared.work)

    def _failed(self, work: list[_Pending]) -> None:
        log.exception("ingest: commit failed; %d messages stay unacknowledged and are retried", len(work))
        self.metrics["commit_errors"] += 1
        self._backoff = min(5.0, self._backoff * 2 or 0.2)
        with self._cond:
            self._inbox[:0] = work

    # ------------------------------------------------------------ the core
    def _not_before(self, campaign: str) -> int | None:
        if campaign not in self._campaign_start:
            self._campaign_start[campaign] = self.store.campaign_start_ms(campaign)
        return self._campaign_start[campaign]

    def _register(self, campaign: str, device: str) -> None:
        if device in self._known_devices:
            return
        if self.settings.register_unknown:
            self.store.ensure_campaign(campaign)
            self.store.ensure_device(device, campaign)
        self._known_devices.add(device)

    def process(self, work: list[_Pending]) -> None:
        """Validate, commit, acknowledge and answer a group of messages."""
        self._commit(self._prepare(work))

    def _prepare(self, work: list[_Pending]) -> "_Prepared":
        """Decode and screen a group of messages into the table to write (no acknowledgement yet)."""
        now_ms = int(self.clock() * 1000)
        dead: list[DeadLetter] = []
        msgs: list[fastpath.Message] = []
        external: list[tuple[str, str, str, contract.Record]] = []
        for m in work:
            if not m.topic.startswith(contract.TOPIC_ROOT + "/"):
                self._decode_external(m, now_ms, external, dead)
                continue
            try:
                tp = contract.parse_topic(m.topic)
            except contract.ContractError as exc:
                dead.append(DeadLetter(m.topic, exc.reason, str(exc), m.payload.decode("utf-8", "replace")))
                continue
            self._register(tp.campaign, tp.device)
            msgs.append(fastpath.Message(tp.campaign, tp.device, m.payload, m.topic))
        fast, slow = fastpath.screen(msgs, now_ms=now_ms, limits=self.settings.limits,
                                     not_before={c: self._not_before(c) for c in {m.campaign for m in msgs}})
        # device -> (campaign, boot -> seq arrays settled, refused records): the feedback of each device
        answer: Answer = {
            m.device: (m.campaign, defaultdict(list), []) for m in msgs}
        # (campaign, device, boot, Record) of the records of the exact and external paths; they follow the bulk rows
        slow_rows = self._decode_exactly([msgs[i] for i in slow], now_ms, dead, answer) + external
        self.metrics["records_received"] += len(fast) + len(slow_rows)

        table = fastpath.to_arrow(fast, self.store.quantity_columns, now_ms) if len(fast) else None
        if slow_rows:
            extra = self.store.to_arrow(slow_rows, now_ms)
            table = extra if table is None else pa.concat_tables([table, extra], promote_options="default")
        return _Prepared(work, now_ms, fast, slow_rows, table, dead, answer)

    def _commit(self, p: "_Prepared") -> None:
        """Write a prepared group in one transaction, then acknowledge it, answer the devices, call the listeners."""
        work, now_ms, fast, slow_rows, table, dead, answer = (p.work, p.now_ms, p.fast, p.slow_rows, p.table,
                                                              p.dead, p.answer)
        result, new = self.store.write_arrow(table, dead, received_ms=now_ms)
        self.last_commit_received_ms = now_ms  # the commit whose listeners are called below
        # Committed: now, and only now, acknowledge to the broker.
        for m in work:
            self.client.ack(m.mid, m.qos)

        self.metrics["records_stored"] += result.inserted
        self.metrics["records_duplicate"] += result.duplicates
        self.metrics["deadletter"] += len(dead)
        for d in dead:
            self.deadletter_reasons[d.reason] += 1
        per_device_new: Counter[str] = Counter()
        per_device_all: Counter[str] = Counter()
        if table is not None:
            self._account(table, new, now_ms, answer, per_device_new, per_device_all)
        for device, (campaign, settled, refused) in answer.items():
            fb = contract.Feedback(
                device=device, settled={b: keys.ranges(np.concatenate(s)) for b, s in settled.items()},
                highest=self.tracker.highest(device), accepted=per_device_new[device],
                duplicates=per_device_all[device] - per_device_new[device], refused=refused[:50], t=now_ms)
            self.client.publish(contract.topic(campaign, device, "ingest"), fb.encode(), qos=1)
        if self.listeners:
            committed = self._committed(fast, slow_rows, new)
            for listener in self.listeners:
                try:
                    listener(committed)
                except Exception:  # a broken screen must not stop ingest
                    log.exception("ingest: a commit listener failed")
                    self.metrics["listener_errors"] += 1

    def _account(self, table: pa.Table, new: np.ndarray, now_ms: int,
                 answer: Answer,
                 per_device_new: Counter[str], per_device_all: Counter[str]) -> None:
        """Gap tally, settled seqs, per-device counts and lag of a commit, per ``(device, boot)`` group."""
        for g in keys.groups(table):
            fresh = new[g.rows]
            k = int(fresh.sum())
            if k:
                self.tracker.add_group(g.device, g.boot, k, int(g.seq[fresh].max()))
            per_device_new[g.device] += k
            per_device_all[g.device] += len(g.rows)
            if g.device in answer:  # external formats get no feedback
                answer[g.device][1][g.boot].append(g.seq)
        if new.any():
            t_new = table.column("time").cast(pa.int64()).to_numpy()[new]
            self.lag.observe_many((now_ms - t_new) / 1000)
            self.last_commit_lag_ms = now_ms - int(t_new.min())

    @staticmethod
    def _committed(fast: fastpath.FastBatch, slow_rows: list[tuple[str, str, str, contract.Record]],
                   new: np.ndarray) -> list[tuple[str, str, str, contract.Record]]:
        """The newly stored records as listeners take them; built only when a listener is registered."""
        out: list[tuple[str, str, str, contract.Record]] = []
        nfast = len(fast)
        for i in np.flatnonzero(new).tolist():
            if i < nfast:
                r = fast.records[i]
                out.append((fast.campaign[i], fast.device[i], fast.boot[i],
                            contract.Record(r["seq"], r["t"], r["sensor"], r["values"], r.get("flags", 0))))
            else:
                out.append(slow_rows[i - nfast])
        return out

    def _decode_external(self, m: _Pending, now_ms: int, rows: list[tuple[str, str, str, contract.Record]],
                         dead: list[DeadLetter]) -> None:
        """A message of an external format (SenML, Tasmota, Smart Citizen), through its adapter."""
        campaign = self.settings.external_campaign or "external"
        result = adapters.decode_mqtt(m.topic, m.payload, received_ms=now_ms, campaign=campaign,
                                      not_before_ms=self._not_before(campaign))
        if result is None:
            dead.append(DeadLetter(m.topic, contract.BadTopic.reason, "no adapter reads this topic",
                                   m.payload.decode("utf-8", "replace")))
            return
        for c, d, _, _ in result.rows:
            self._register(c, d)
        self.metrics["records_received"] += len(result.refused)  # rows are counted with the others
        rows.extend(result.rows)
        dead.extend(result.refused)

    def _decode_exactly(self, msgs: list[fastpath.Message], now_ms: int, dead: list[DeadLetter],
                        answer: Answer
                        ) -> list[tuple[str, str, str, contract.Record]]:
        """The record-by-record path, for messages the bulk screen sent back: precise reasons, nothing lost."""
        rows: list[tuple[str, str, str, contract.Record]] = []
        for m in msgs:
            _, settled, refused = answer[m.device]
            try:
                dec = contract.decode_batch(m.payload, device=m.device, now_ms=now_ms,
                                            not_before_ms=self._not_before(m.campaign), limits=self.settings.limits)
            except contract.ContractError as exc:
                dead.append(DeadLetter(m.topic, exc.reason, str(exc), m.payload.decode("utf-8", "replace"), m.device))
                refused.append({"seq": None, "reason": exc.reason, "detail": str(exc)})
                continue
            self.metrics["records_received"] += len(dec.refused)
            rows.extend((m.campaign, m.device, dec.boot, rec) for rec in dec.records)
            for raw, exc in dec.refused:
                dead.append(DeadLetter(m.topic, exc.reason, str(exc), json.dumps(raw, ensure_ascii=False),
                                       m.device, dec.boot, exc.seq))
                refused.append({"seq": exc.seq, "reason": exc.reason, "detail": str(exc)})
                if exc.seq is not None:
                    settled[dec.boot].append(np.array([exc.seq], dtype=np.int64))
        return rows

    def snapshot(self) -> dict[str, object]:
        """Counters for ``qsec status`` and ``/metrics``."""
        out: dict[str, object] = dict(self.metrics)
        out["deadletter_by_reason"] = dict(self.deadletter_reasons)
        out["connected"] = self.connected
        out["last_commit_lag_ms"] = self.last_commit_lag_ms
        out["missing_by_device"] = self.tracker.missing_by_device()
        out["broker_dropped"] = self.broker_dropped
        return out
