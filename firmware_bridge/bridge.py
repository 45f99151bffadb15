"""The bridge: serial sensors in, spooled records out over MQTT, released on ingest's word.

One bridge is one device (a kit): it reads its sensors (one
:class:`~firmware_bridge.reader.SerialReader` each), stamps every
observation (UTC milliseconds, a per-boot ``seq`` that never goes backwards),
appends it to the on-disk :class:`~firmware_bridge.spool.Spool` *before*
anything else, and publishes the spool's pending records in batches
(QoS 1) on ``qsec/v1/<campaign>/<device>/readings``.

A record leaves the spool only when ingest's feedback on
``…/<device>/ingest`` names it as settled.  The broker's PUBACK only ends the
in-flight state; what is not settled ``resend_after_s`` after it was sent, or
after a reconnect, is sent again — ``(device, boot, seq)`` absorbs the repeats
at ingest.  A retained ``…/status`` message says online/offline (last will)
and carries the spool's counters, including records dropped because the
spool was full.

Only the standard library, pyserial and paho-mqtt: this runs on a Raspberry Pi.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qsec import contract
from firmware_bridge.reader import SerialReader
from firmware_bridge.sensors.base import Observation
from firmware_bridge.spool import Spool

log = logging.getLogger("qsec.bridge")


def new_boot_id(clock: Callable[[], float] = time.time) -> str:
    """A boot id: sortable by start time, unique (48 bits of time in ms + 48 random bits), 24 hex chars."""
    return f"{int(clock() * 1000):012x}{secrets.token_hex(6)}"


@dataclass
class BridgeSettings:
    device: str
    campaign: str
    spool_dir: Path
    sensors: dict[str, str] = field(default_factory=dict)  # protocol -> serial port path
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    mqtt_version: int = 5  # 5 or 4 (3.1.1)
    batch_records: int = 50
    batch_ms: int = 500
    resend_after_s: float = 10.0
    status_every_s: float = 10.0
    fsync: str = "group"
    spool_max_bytes: int = 64 * 2**20
    poll_interval_s: float = 1.0
    max_in_flight: int = 20  # messages

    def __post_init__(self) -> None:
        contract.topic(self.campaign, self.device)  # validates both ids with a clear message
        if self.mqtt_version not in (4, 5):
            raise ValueError(f"mqtt_version={self.mqtt_version}: use 5 (MQTT 5) or 4 (MQTT 3.1.1)")
        if self.fsync not in ("always", "group", "never"):
            raise ValueError(f"fsync={self.fsync!r}: use always, group or never")


class Bridge:
    """Runs readers, the spool and the MQTT publisher of one kit."""

    def __init__(self, settings: BridgeSettings, *, clock: Callable[[], float] = time.time):
        self.s = settings
        self.clock = clock
        self.boot = new_boot_id(clock)
        self.spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes, fsync=settings.fsync)
        self._seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._in_flight: dict[tuple[str, int], float] = {}  # (boot, seq) -> sent at
        self.counters: dict[str, int] = {"observations": 0, "published_records": 0, "published_messages": 0,
                                         "resent_records": 0, "settled": 0, "refused": 0, "publish_errors": 0}
        self.last_feedback: contract.Feedback | None = None
        self.readers = [SerialReader(proto, port, self.on_observation, interval_s=settings.poll_interval_s)
                        for proto, port in settings.sensors.items()]
        self.client = self._make_client()
        self._thread: threading.Thread | None = None
        self._last_time_ms = 0

    # ------------------------------------------------------------ observations -> spool
    def on_observation(self, obs: Observation) -> None:
        """Stamp, number and spool one observation (called from reader threads)."""
        now_ms = int(self.clock() * 1000)
        flags = contract.FLAG_WARMING_UP if obs.warming_up else 0
        with self._lock:
            if now_ms < self._last_time_ms - 2000:
                flags |= contract.FLAG_CLOCK_JUMP  # the clock stepped back (NTP on a Pi with no RTC)
            self._last_time_ms = max(self._last_time_ms, now_ms)
            rec = contract.Record(seq=self._seq, t=now_ms, sensor=obs.sensor, values=dict(obs.values), flags=flags)
            self.spool.append(self.boot, rec)
            self._seq += 1
            self.counters["observations"] += 1
        self._wake.set()

    # ------------------------------------------------------------ MQTT
    def _make_client(self) -> mqtt.Client:
        s = self.s
        proto = mqtt.MQTTv5 if s.mqtt_version == 5 else mqtt.MQTTv311
        kwargs = {} if s.mqtt_version == 5 else {"clean_session": False}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"qsec-bridge-{s.device}", protocol=proto, **kwargs)
        if s.username:
            c.username_pw_set(s.username, s.password)
        if s.tls:
            c.tls_set(ca_certs=s.ca_file)
        c.will_set(contract.topic(s.campaign, s.device, "status"),
                   json.dumps({"v": 1, "state": "offline", "boot": self.boot}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_feedback
        c.on_publish = self._on_publish
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        return c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("bridge %s: broker refused the connection: %s (check username/password)", self.s.device, reason_code)
            return
        client.subscribe(contract.topic(self.s.campaign, self.s.device, "ingest"), qos=1)
        with self._lock:
            self._in_flight.clear()  # everything unsettled goes again on this connection
        self._connected.set()
        self.publish_status()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:  # e.g. 135 Not authorized: the ACL refused our topic
            self.counters["publish_errors"] += 1
            log.error("bridge %s: broker refused a publish: %s", self.s.device, reason_code)

    def _on_feedback(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        try:
            fb = contract.Feedback.decode(msg.payload)
        except contract.ContractError as exc:
            log.warning("bridge %s: unreadable feedback from ingest: %s", self.s.device, exc)
            return
        self.last_feedback = fb
        n = 0
        with self._lock:
            for boot, rngs in fb.settled.items():
                n += self.spool.settle(boot, rngs)
                for seq in contract.expand(rngs):
                    self._in_flight.pop((boot, seq), None)
        self.counters["settled"] += n
        self.counters["refused"] += len(fb.refused)
        for r in fb.refused:
            log.warning("bridge %s: ingest refused seq %s: %s", self.s.device, r.get("seq"), r.get("detail"))
        self._wake.set()

    def publish_status(self, state: str = "online") -> None:
        st = self.spool.stats()
        doc = {"v": 1, "state": state, "boot": self.boot, "t": int(self.clock() * 1000),
               "spool": {"pending": st.pending_records, "pending_bytes": st.pending_bytes,
                         "dropped_full": st.dropped_full, "torn_skipped": st.torn_skipped},
               "counters": dict(self.counters),
               "sensors": {r.protocol: {"observations": r.stats.observations, "frame_errors": r.stats.frame_errors,
                                        "reopens": r.stats.reopens, "error": r.last_error} for r in self.readers}}
        self.client.publish(contract.topic(self.s.campaign, self.s.device, "status"), json.dumps(doc), qos=1, retain=True)

    # ------------------------------------------------------------ publishing loop
    def _due(self, now: float) -> list[tuple[str, contract.Record]]:
        """Pending records not in flight, or in flight for longer than resend_after_s."""
        out = []
        limit = self.s.batch_records * self.s.max_in_flight
        with self._lock:
            for boot, rec in self.spool.pending(limit=limit * 4):
                sent = self._in_flight.get((boot, rec.seq))
                if sent is None or now - sent >= self.s.resend_after_s:
                    if sent is not None:
                        self.counters["resent_records"] += 1
                    out.append((boot, rec))
                    if len(out) >= limit:
                        break
        return out

    def publish_due(self) -> int:
        """Publish what is due, in batches per boot; returns records published."""
        if not self._connected.is_set():
            return 0
        now = self.clock()
        due = self._due(now)
        n = 0
        by_boot: dict[str, list[contract.Record]] = {}
        for boot, rec in due:
            by_boot.setdefault(boot, []).append(rec)
        topic = contract.topic(self.s.campaign, self.s.device, "readings")
        for boot, recs in by_boot.items():
            for i in range(0, len(recs), self.s.batch_records):
                chunk = tuple(recs[i:i + self.s.batch_records])
                payload = contract.encode_batch(contract.Batch(self.s.device, boot, chunk, sent=int(now * 1000)))
                info = self.client.publish(topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    return n  # not connected any more: try again later
                with self._lock:
                    for r in chunk:
                        self._in_flight[(boot, r.seq)] = now
                n += len(chunk)
                self.counters["published_messages"] += 1
        self.counters["published_records"] += n
        return n

    def run(self) -> None:
        next_status = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.s.batch_ms / 1000)
            self._wake.clear()
            self.spool.tick()
            try:
                self.publish_due()
            except contract.ContractError as exc:  # our own encoding broke a limit: a bug, say it loudly
                log.error("bridge %s: cannot encode a batch: %s", self.s.device, exc)
            now = self.clock()
            if self._connected.is_set() and now >= next_status:
                self.publish_status()
                next_status = now + self.s.status_every_s

    # ------------------------------------------------------------ life cycle
    def start(self) -> "Bridge":
        s = self.s
        if s.mqtt_version == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 24 * 3600
            self.client.connect_async(s.host, s.port, keepalive=30, clean_start=False, properties=props)
        else:
            self.client.connect_async(s.host, s.port, keepalive=30)
        self.client.loop_start()
        for r in self.readers:
            r.start()
        self._thread = threading.Thread(target=self.run, name=f"bridge-{s.device}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for r in self.readers:
            r.stop()
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._connected.is_set():
            info = self.client.publish(contract.topic(self.s.campaign, self.s.device, "status"),
                                       json.dumps({"v": 1, "state": "offline", "boot": self.boot}), qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()
        self.spool.close()
