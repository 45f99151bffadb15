"""The bridge: serial sensors in, spooled records out over MQTT, released on ingest's word.

One bridge is one device (a kit): it reads its sensors (one
:class:`~firmware_bridge.reader.SerialReader` each), stamps every
observation (:mod:`firmware_bridge.clock`: UTC milliseconds, GPS time once
there is a fix, time flags), numbers it with a per-boot ``seq`` that never
goes backwards, appends it to the on-disk :class:`~firmware_bridge.spool.Spool`
*before* anything else, and publishes it in batches (QoS 1) on
``qsec/v1/<campaign>/<device>/readings``; :class:`~firmware_bridge.outbox.Outbox`
decides when.

A record leaves the spool only when ingest's feedback on
``…/<device>/ingest`` names it as settled.  The broker's PUBACK only ends the
in-flight state; a PUBACK with a failure reason code (≥ 0x80, e.g. 135 "Not
authorized" from an ACL) is counted per code.  What is not settled
``resend_after_s`` after it was sent, or after a reconnect, is sent again —
``(device, boot, seq)`` absorbs the repeats at ingest.  A retained ``…/status``
message says online/offline (last will) and carries the spool's counters
(records dropped because the spool was full among them), the publish
counters, the time source, and per sensor the reader's counters with the
reasons frames were set aside (frame errors, acknowledgements, warm-up: by
reason class, and the last reason of each kind).

Only the standard library, pyserial and paho-mqtt: this runs on a Raspberry Pi.
paho-mqtt 2.x client API: https://eclipse.dev/paho/files/paho.mqtt.python/html/client.html;
MQTT 5 reason codes: OASIS MQTT Version 5.0, section 2.4.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_bridge.clock import TimeKeeper, kernel_clock_synchronized
from firmware_bridge.config import BridgeSettings, SensorConfig
from firmware_bridge.outbox import Outbox
from firmware_bridge.reader import Opener, SerialReader, serial_opener
from firmware_bridge.sensors.base import Observation
from firmware_bridge.spool import Spool
from qsec import contract

log = logging.getLogger("qsec.bridge")

__all__ = ["Bridge", "BridgeSettings", "SensorConfig", "new_boot_id"]

SESSION_EXPIRY_S = 24 * 3600
GROUP_TICK_S = 0.1  # the spool's group-commit interval [s]


def new_boot_id(clock: Callable[[], float] = time.time) -> str:
    """A boot id: sortable by start time, unique (48 bits of time in ms + 48 random bits), 24 hex chars."""
    return f"{int(clock() * 1000):012x}{secrets.token_hex(6)}"


class Bridge:
    """Runs the readers, the spool and the MQTT publisher of one kit.

    Parameters
    ----------
    settings : the kit's :class:`BridgeSettings`
    openers : per protocol, where its bytes come from instead of the serial port
        (a :class:`~firmware_bridge.capture.ReplaySource` to replay a capture)
    replay : flag every record ``replayed`` and stamp it with the system clock (no GPS time)
    clock, mono : wall clock [s since epoch] and monotonic clock [s]
    sync_probe : whether the system clock is synchronised (see :mod:`firmware_bridge.clock`)
    """

    def __init__(self, settings: BridgeSettings, *, openers: Mapping[str, Opener] | None = None, replay: bool = False,
                 clock: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic,
                 sync_probe: Callable[[], bool | None] | None = None):
        s = self.s = settings
        self.clock = clock
        self.mono = mono
        self.replay = replay
        self.boot = new_boot_id(clock)
        segment = min(2**20, s.spool_max_bytes // 4)
        self.spool = Spool(s.spool_dir, max_bytes=s.spool_max_bytes, fsync=s.fsync, segment_bytes=segment,
                           group_interval_s=GROUP_TICK_S)
        self.time = TimeKeeper(wall=clock, mono=mono, prefer_gps=s.prefer_gps_time and not replay,
                               jump_threshold_s=s.clock_jump_s, assume_synced=s.assume_clock_synced,
                               sync_probe=sync_probe or kernel_clock_synchronized)
        self._seq = 0
        self._last_append = float("-inf")  # [monotonic s]
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.outbox = Outbox(batch_records=s.batch_records, batch_s=s.batch_ms / 1000, resend_after_s=s.resend_after_s,
                             window=s.batch_records * s.max_in_flight,
                             backlog=self.spool.stats().pending_records > 0)
        self.counters: Counter[str] = Counter({k: 0 for k in (
            "observations", "published_records", "published_messages", "resent_records", "settled", "refused",
            "publish_refused", "connects", "connect_refused", "disconnects")})
        self.publish_refused_codes: Counter[str] = Counter()
        self.last_feedback: contract.Feedback | None = None
        openers = dict(openers or {})
        self.readers = [self._reader(sc, openers.get(sc.protocol, serial_opener)) for sc in s.sensor_configs]
        try:
            self.client = self._make_client()
        except BaseException:  # e.g. an unreadable password file: release the spool's lock
            self.spool.close()
            raise
        self._thread: threading.Thread | None = None

    def _reader(self, sc: SensorConfig, opener: Opener) -> SerialReader:
        return SerialReader(sc.protocol, sc.port, self.on_observation, interval_s=sc.interval_s, opener=opener,
                            max_backoff_s=self.s.reopen_max_s, silence_s=self.s.silence_s)

    # ------------------------------------------------------------ observations -> spool
    def on_observation(self, obs: Observation) -> None:
        """Stamp, number and spool one observation (called from reader threads)."""
        flags = contract.FLAG_WARMING_UP if obs.warming_up else 0
        if self.replay:
            flags |= contract.FLAG_REPLAYED
        with self._lock:
            device_time = None
            if obs.time is not None and not self.replay:
                device_time = self.time.gps_fix(obs.time)  # corrected if the receiver has the rollover bug
            t_ms, time_flags = self.time.stamp(device_time)
            rec = contract.Record(seq=self._seq, t=t_ms, sensor=obs.sensor, values=dict(obs.values),
                                  flags=flags | time_flags)
            self.spool.append(self.boot, rec)
            self._seq += 1
            self.counters["observations"] += 1
            self._last_append = self.mono()
            ready = self.outbox.added(self.boot, rec, self._last_append)
        if ready:
            self._wake.set()

    # ------------------------------------------------------------ MQTT
    def _make_client(self) -> mqtt.Client:
        s = self.s
        proto = mqtt.MQTTv5 if s.mqtt_version == 5 else mqtt.MQTTv311
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"qsec-bridge-{s.device}", protocol=proto,
                        clean_session=None if s.mqtt_version == 5 else False)  # MQTT 5: clean_start at connect
        if s.username:
            c.username_pw_set(s.username, s.resolved_password())
        if s.tls or s.ca_file:
            c.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None,
                      certfile=str(s.cert_file) if s.cert_file else None,
                      keyfile=str(s.key_file) if s.key_file else None)
        c.will_set(self._topic("status"), json.dumps({"v": 1, "state": "offline", "boot": self.boot}),
                   qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_feedback
        c.on_publish = self._on_publish
        c.reconnect_delay_set(min_delay=s.reconnect_min_s, max_delay=s.reconnect_max_s)
        c.max_inflight_messages_set(s.max_in_flight + 2)  # + status messages
        return c

    def _topic(self, kind: str) -> str:
        return contract.topic(self.s.campaign, self.s.device, kind)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            self.counters["connect_refused"] += 1
            log.error("bridge %s: the broker refused the connection: %s (check broker.username and "
                      "broker.password_file)", self.s.device, reason_code)
            return
        self.counters["connects"] += 1
        client.subscribe(self._topic("ingest"), qos=1)
        with self._lock:
            self.outbox.reconnected()  # everything unsettled goes again on this connection
        self._connected.set()
        self.publish_status()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if self._connected.is_set():
            self.counters["disconnects"] += 1
            log.warning("bridge %s: lost the broker (%s); reconnecting", self.s.device, reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:  # e.g. 135 Not authorized: the ACL refused our topic
            code = str(reason_code.value)
            self.counters["publish_refused"] += 1
            if not self.publish_refused_codes[code]:
                log.error("bridge %s: the broker refused a publish: %s (code %s); check that broker.username "
                          "is allowed to publish under device %r", self.s.device, reason_code, code, self.s.device)
            self.publish_refused_codes[code] += 1

    def _on_feedback(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        try:
            fb = contract.Feedback.decode(bytes(msg.payload))
        except contract.ContractError as exc:
            log.warning("bridge %s: unreadable feedback from ingest: %s", self.s.device, exc)
            return
        self.last_feedback = fb
        n = 0
        with self._lock:
            for boot, rngs in fb.settled.items():
                n += self.spool.settle(boot, rngs)
                for lo, hi in rngs:
                    self.outbox.settled(boot, range(lo, hi + 1))
        self.counters["settled"] += n
        self.counters["refused"] += len(fb.refused)
        for r in fb.refused:
            log.warning("bridge %s: ingest refused seq %s: %s", self.s.device, r.get("seq"), r.get("detail"))
        self._wake.set()

    def status_doc(self, state: str = "online") -> dict[str, Any]:
        """The retained status message: state, spool and publish counters, readers, time source."""
        st = self.spool.stats()
        with self._lock:
            window = {"in_flight": self.outbox.in_flight, "fresh": self.outbox.fresh, "backlog": self.outbox.backlog}
            time_status = self.time.status()
        self.counters["resent_records"] = self.outbox.resent
        return {"v": 1, "state": state, "boot": self.boot, "t": int(self.clock() * 1000), "replay": self.replay,
                "spool": {"pending": st.pending_records, "pending_bytes": st.pending_bytes,
                          "appended_total": st.appended_total, "settled_total": st.settled_total,
                          "dropped_full": st.dropped_full, "torn_skipped": st.torn_skipped,
                          "oldest_pending_t": st.oldest_pending_t},
                "counters": dict(self.counters), "publish_refused_codes": dict(self.publish_refused_codes),
                "window": window, "time": time_status,
                "sensors": {r.protocol: self._reader_status(r) for r in self.readers}}

    @staticmethod
    def _reader_status(r: SerialReader) -> dict[str, Any]:
        """One reader's counters, and why it set frames aside (by reason class; the last reason of each kind)."""
        return {"observations": r.stats.observations, "frame_errors": r.stats.frame_errors, "waits": r.stats.waits,
                "ignored": r.stats.ignored, "reopens": r.stats.reopens, "silences": r.stats.silences,
                "unanswered": r.stats.unanswered, "reboots": r.stats.reboots, "open": r.opened.is_set(),
                "error": r.last_error, "set_aside": r.set_aside.counts(), "last_reason": r.set_aside.last()}

    def publish_status(self, state: str = "online") -> None:
        self.client.publish(self._topic("status"), json.dumps(self.status_doc(state)), qos=1, retain=True)

    # ------------------------------------------------------------ publishing loop
    def publish_due(self, *, flush: bool = False) -> int:
        """Publish what is due, in batches per boot; returns records published."""
        if not self._connected.is_set():
            return 0
        now = self.mono()
        with self._lock:
            due = self.outbox.take(now, lambda limit: self.spool.pending(limit=limit), flush=flush)
        by_boot: dict[str, list[contract.Record]] = {}
        for boot, rec in due:
            by_boot.setdefault(boot, []).append(rec)
        topic = self._topic("readings")
        sent_ms = int(self.clock() * 1000)
        n = 0
        for boot, recs in by_boot.items():
            for i in range(0, len(recs), self.s.batch_records):
                chunk = tuple(recs[i:i + self.s.batch_records])
                payload = contract.encode_batch(contract.Batch(self.s.device, boot, chunk, sent=sent_ms))
                info = self.client.publish(topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    return n  # not connected any more: the outbox sends them again after the reconnect
                n += len(chunk)
                self.counters["published_messages"] += 1
                self.counters["published_records"] += len(chunk)
        return n

    def run(self) -> None:
        next_status = 0.0
        while not self._stop.is_set():
            now = self.mono()
            # Right after appends, the spool's group commit needs tick() within its interval; else once a second.
            longest = GROUP_TICK_S if self.s.fsync == "group" and now - self._last_append < 2 * GROUP_TICK_S else 1.0
            timeout = longest
            if self._connected.is_set():
                with self._lock:
                    timeout = min(max(self.outbox.next_due(now) - now, 0.0), longest)
            if timeout > 0:
                self._wake.wait(timeout)
            self._wake.clear()
            self.spool.tick()
            try:
                self.publish_due()
            except contract.ContractError as exc:  # our own encoding broke a limit: a bug, say it loudly
                log.error("bridge %s: cannot encode a batch: %s", self.s.device, exc)
            now = self.mono()
            if self._connected.is_set() and now >= next_status:
                self.publish_status()
                next_status = now + self.s.status_every_s

    # ------------------------------------------------------------ life cycle
    def start(self) -> Bridge:
        s = self.s
        if s.mqtt_version == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props)
        else:
            self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()
        for r in self.readers:
            r.start()
        self._thread = threading.Thread(target=self.run, name=f"bridge-{s.device}", daemon=True)
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        for r in self.readers:
            r.stop(wait=False)
        for r in self.readers:
            r.stop()
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._connected.is_set():
            self.publish_due(flush=True)
            info = self.client.publish(self._topic("status"), json.dumps(self.status_doc("offline")), qos=1,
                                       retain=True)
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()
        self.spool.close()
