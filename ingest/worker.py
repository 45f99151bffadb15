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
- A bridge's retained status is a topic the contract's parser reads as
  ``qsec/v1/<campaign>/<device>/status`` (:func:`ingest.decode.contract_topic`);
  every other message, an adapter's topic ending in ``/status`` included,
  is data for its decoder.

paho-mqtt 2.x API: https://eclipse.dev/paho/files/paho.mqtt.python/html/client.html
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import multiprocessing
import os
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import pyarrow as pa

from ingest import adapters, decode, keys
from ingest.adapters._common import zone
from ingest.store import Store
from qsec import contract

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
    # MQTT 5 Receive Maximum (CONNECT property): how many unacknowledged QoS 1 messages the broker may send this
    # worker.  Messages are acknowledged after their commit, so the window must hold several commits' worth for
    # receiving, decoding and committing to overlap; without the property Mosquitto uses max_inflight_messages.
    receive_maximum: int = 1000
    # Processes that decode and screen messages (0: a thread of this process).  Decoding holds the GIL; a pool
    # leaves this process the MQTT loop and the DuckDB commit.
    decode_processes: int = 0
    username: str | None = None
    password: str | None = None
    register_unknown: bool = True  # open registry: a new device/campaign is registered on first sight
    # Campaign of the records that external formats bring over MQTT (SenML, Tasmota, Smart Citizen: see
    # ingest/adapters); None: ingest does not subscribe to their topics.
    external_campaign: str | None = None
    # IANA zone of the external devices' clocks that send local time without an offset (Tasmota's Time);
    # None: the adapter's default (Europe/Paris).  Tasmota's dead letters keep it (docs/adapters.md).
    external_timezone: str | None = None
    limits: contract.Limits = field(default_factory=lambda: contract.LIMITS)

    def __post_init__(self) -> None:
        if self.external_timezone is not None:
            try:
                zone(self.external_timezone)
            except ValueError as exc:
                raise ValueError(f"ingest option external_timezone: {exc}") from None


@dataclass
class _Pending:
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass
class _Prepared:
    """A group of messages on its way to the store: decoded already, or being decoded in the pool."""

    work: list[_Pending]
    now_ms: int
    decoded: decode.Decoded | Future
    pool: ProcessPoolExecutor | None = None  # the pool decoding it: replaced if it breaks


class IngestWorker:
    """One ingest worker: an MQTT client plus a committing thread."""

    def __init__(self, store: Store, settings: IngestSettings | None = None, *,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings or IngestSettings()
        self.clock = clock
        self.metrics: Counter[str] = Counter()
        self.deadletter_reasons: Counter[str] = Counter()
        self.ignored: Counter[tuple[str, str]] = Counter()  # (adapter, field) an adapter set aside on purpose
        self.listeners: list[CommitListener] = []
        self._inbox: list[_Pending] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        # decoded (or being decoded), waiting for the writer
        self._ready: queue.Queue[_Prepared | None] = queue.Queue(maxsize=1 + self.settings.decode_processes)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._backoff = 0.0  # [s] after a failed commit
        self.tracker = store.seq_tracker()  # one per store: workers sharing a subscription see whole sequences
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
        tp = decode.contract_topic(msg.topic)
        if tp is not None and tp.kind == "status":  # a bridge's; an adapter's topic ending in /status is data
            self._on_status(tp.device, msg.payload)
            client.ack(msg.mid, msg.qos)
            return
        with self._cond:
            self._inbox.append(_Pending(msg.mid, msg.qos, msg.topic, bytes(msg.payload)))
            self.metrics["messages_received"] += 1
            if len(self._inbox) >= self._group_messages:
                self._cond.notify()

    def _on_status(self, device: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self.metrics["status_unreadable"] += 1
            return
        self.bridges[device] = doc

    # ------------------------------------------------------------ life cycle
    def start(self, wait: float = 10.0) -> "IngestWorker":
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        if s.decode_processes > 0:
            self._pool = self._new_pool()
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
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _replace_pool(self, broken: ProcessPoolExecutor | None) -> None:
        """Start new decoding processes in place of a broken pool (once, whichever thread sees it first)."""
        with self._pool_lock:
            if self._pool is broken and broken is not None:
                log.error("ingest: a decoding process died; starting new ones (unacknowledged messages are retried)")
                self.metrics["decoder_restarts"] += 1
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def _new_pool(self, attempts: int = 5) -> ProcessPoolExecutor:
        """Decoding processes, started (spawn: this process has threads) and warmed up before the first message.

        A process that dies while the pool warms up (killed, out of memory) breaks it: the pool is started
        again, ``attempts`` times at most before giving up with the cause.
        """
        for attempt in range(1, attempts + 1):
            pool = ProcessPoolExecutor(self.settings.decode_processes, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=decode.watch_parent, initargs=(os.getpid(),))
            try:
                for f in [pool.submit(decode.warm_up) for _ in range(self.settings.decode_processes)]:
                    f.result(timeout=60)
                return pool
            except BrokenProcessPool as exc:
                pool.shutdown(wait=False, cancel_futures=True)
                log.error("ingest: a decoding process died while starting (attempt %d of %d)", attempt, attempts)
                self.metrics["decoder_restarts"] += 1
                if attempt == attempts:
                    raise RuntimeError(f"ingest: decoding processes keep dying at start ({exc}); check memory and "
                                       "the log above, or run with --decode-processes 0") from exc
        raise AssertionError("unreachable")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _run(self) -> None:
        """Decoding thread: takes the inbox and hands each group, decoded or being decoded, to the writing thread.

        Decoding is Python (it holds the GIL); DuckDB's insert and commit release it, so the two overlap.  Inline,
        the hand-over queue holds one group: decoding runs at most one commit ahead of the store.  With a pool of
        decoding processes it holds one group per process plus one, in order, so that the processes work while
        the store commits.
        """
        s = self.settings
        cap = self._group_messages
        writer = threading.Thread(target=self._write_loop, name=f"ingest-write-{s.client_id}", daemon=True)
        writer.start()
        while not self._stop.is_set():
            with self._cond:
                if len(self._inbox) < cap:  # a full group waiting: no wait
                    self._cond.wait(timeout=max(s.batch_ms / 1000, self._backoff))
            if work := self._take(cap):
                self._hand_over(work)
        while work := self._take(cap):
            self._hand_over(work)
        self._ready.put(None)
        writer.join()

    def _take(self, cap: int) -> list[_Pending]:
        """At most one group's worth from the inbox: a backlog becomes several groups, decoded while earlier ones
        commit, rather than one group as large as the receive window, which would leave nothing to overlap."""
        with self._cond:
            work, self._inbox = self._inbox[:cap], self._inbox[cap:]
        return work

    @property
    def _group_messages(self) -> int:
        """Messages in one group at most: ``batch_records`` in messages of 50 records (the bridges' batch)."""
        return max(1, self.settings.batch_records // 50)

    def _hand_over(self, work: list[_Pending]) -> None:
        try:
            try:
                prepared = self._prepare(work, pool=self._pool)
            except BrokenProcessPool:  # a decoding process died while the pool was idle
                self._replace_pool(self._pool)
                prepared = self._prepare(work, pool=self._pool)
            self._ready.put(prepared)
        except Exception:  # e.g. the registry read failed: nothing was acknowledged; retry the same messages
            self._failed(work)

    def _write_loop(self) -> None:
        """Writing thread: commit, acknowledge, answer; a failed commit puts its messages back, unacknowledged."""
        while (prepared := self._ready.get()) is not None:
            try:
                decoded = prepared.decoded
                if isinstance(decoded, Future):
                    decoded = decoded.result()
                self._commit(prepared.work, prepared.now_ms, decoded)
                self._backoff = 0.0
            except BrokenProcessPool:  # a decoding process died: a new pool, the same messages again
                self._replace_pool(prepared.pool)
                self._failed(prepared.work)
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
        """Validate, commit, acknowledge and answer a group of messages (inline)."""
        p = self._prepare(work, pool=None)
        self._commit(p.work, p.now_ms, p.decoded)

    def _prepare(self, work: list[_Pending], pool: ProcessPoolExecutor | None) -> _Prepared:
        """Decode a group of messages here, or submit it to the pool (no acknowledgement yet)."""
        s = self.settings
        now_ms = int(self.clock() * 1000)
        messages = [(m.topic, m.payload) for m in work]
        campaigns = {c for t, _ in messages if (c := decode.campaign_of(t)) is not None}
        if s.external_campaign:
            campaigns.add(s.external_campaign)
        kwargs = dict(now_ms=now_ms, not_before={c: self._not_before(c) for c in campaigns}, limits=s.limits,
                      quantity_columns=self.store.quantity_columns, external_campaign=s.external_campaign,
                      external_timezone=s.external_timezone)
        if pool is None:
            return _Prepared(work, now_ms, decode.decode(messages, **kwargs))
        return _Prepared(work, now_ms, pool.submit(decode.decode, messages, **kwargs), pool)

    def _commit(self, work: list[_Pending], now_ms: int, d: decode.Decoded) -> None:
        """Write a decoded group in one transaction, then acknowledge it, answer the devices, call the listeners."""
        for campaign, device in d.devices:
            self._register(campaign, device)
        table, dead, answer = d.table, d.dead, d.answer
        result, new = self.store.write_arrow(table, dead, received_ms=now_ms)
        self.last_commit_received_ms = now_ms  # the commit whose listeners are called below
        # Listeners first (screens, the API's page cache, the mirror): once a device hears that its records are
        # settled, every reader already sees them.
        if self.listeners and table is not None:
            committed = decode.records_of(table, np.flatnonzero(new))
            for listener in self.listeners:
                try:
                    listener(committed)
                except Exception:  # a broken screen must not stop ingest
                    log.exception("ingest: a commit listener failed")
                    self.metrics["listener_errors"] += 1
        # Committed: now, and only now, acknowledge to the broker.
        for m in work:
            self.client.ack(m.mid, m.qos)

        self.metrics["records_received"] += d.received
        self.metrics["records_stored"] += result.inserted
        self.metrics["records_duplicate"] += result.duplicates
        self.metrics["deadletter"] += len(dead)
        for dl in dead:
            self.deadletter_reasons[dl.reason] += 1
        self.ignored.update(d.ignored)
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

    def _account(self, table: pa.Table, new: np.ndarray, now_ms: int,
                 answer: decode.Answer,
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

    def snapshot(self) -> dict[str, object]:
        """Counters for ``qsec status`` and ``/metrics``."""
        out: dict[str, object] = dict(self.metrics)
        out["deadletter_by_reason"] = dict(self.deadletter_reasons)
        out["ignored_by_field"] = {f"{adapter}:{name}": n for (adapter, name), n in sorted(self.ignored.items())}
        out["connected"] = self.connected
        out["last_commit_lag_ms"] = self.last_commit_lag_ms
        out["missing_by_device"] = self.tracker.missing_by_device()
        out["broker_dropped"] = self.broker_dropped
        return out
