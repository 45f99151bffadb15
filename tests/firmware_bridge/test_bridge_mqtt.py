"""The bridge against a real Mosquitto: MQTT 5 and 3.1.1, access control, TLS, status with reasons, replay, export."""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from harness import require, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.bridge import Bridge, BridgeSettings
from firmware_bridge.capture import capture
from firmware_bridge.sensors.base import Observation
from firmware_bridge.sensors.plantower import pms5003st
from firmware_bridge.simulator import ROUTES, Kit
from firmware_bridge.simulator.emulators import EmulatorPort, PlantowerEmulator
from firmware_bridge.simulator.pty import PtyPort
from firmware_bridge.spool import Spool
from ingest import metrics
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract
from qsec.broker import BrokerConfig, MosquittoProcess, find_mosquitto, free_port, port_open
from qsec.cli import main

pytestmark = [pytest.mark.broker]
ROOT = Path(__file__).resolve().parents[2]
PM = Observation("plantower-pms5003", {"pm1": 3.0, "pm2_5": 5.0, "pm10": 8.0})


class Subscriber:
    """A plain paho subscriber collecting (topic, payload, retain) of what it receives."""

    def __init__(self, port: int, topic: str, *, ca_file: Path | None = None):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "qsec.duckdb")
    yield s
    s.close()


def _key(sensor: str, values: dict) -> tuple:
    return (sensor, tuple(sorted((k, round(float(v), 6)) for k, v in values.items())))


@pytest.mark.slow
@pytest.mark.parametrize("version", [5, 4], ids=["mqtt5", "mqtt3.1.1"])
def test_every_frame_is_stored_once_over_either_mqtt_version(tmp_path: Path, broker: tuple[str, int], store: Store,
                                                             unique: str, version: int) -> None:
    campaign = f"mqtt{unique}"
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"bm-ingest-{unique}",
                                                share_group=None, campaign_filter=campaign, batch_ms=50)).start()
    kit = Kit("kit01", next(iter(ROUTES)), 1, tmp_path / "dev", rate_hz=5.0).start(paused=True)
    bridge = Bridge(BridgeSettings(device=f"kit01-{unique}", campaign=campaign, spool_dir=tmp_path / "spool",
                                   sensors=kit.paths, host=broker[0], port=broker[1], mqtt_version=version,
                                   poll_interval_s=0.2, batch_ms=100, resend_after_s=3.0)).start()
    status = Subscriber(broker[1], contract.topic(campaign, bridge.s.device, "status"))
    try:
        wait_until(lambda: all(r.opened.is_set() for r in bridge.readers), what="the readers to open their ports")
        kit.resume()
        wait_until(lambda: len(kit.emissions) >= 25, what="the kit to send frames")
        kit.pause()
        wait_until(lambda: bridge.counters["observations"] >= len(kit.emissions), what="the bridge to read them all")
        wait_until(lambda: bridge.spool.stats().pending_records == 0, timeout=20, what="ingest to settle the spool")
        cols = store.quantity_columns
        rows = store.cursor().execute(f"SELECT seq, flags, sensor, {', '.join(cols)} FROM readings WHERE device = ? "
                                      "ORDER BY seq", [bridge.s.device]).fetchall()
        stored = Counter(_key(r[2], {c: v for c, v in zip(cols, r[3:]) if v is not None}) for r in rows)
        sent = Counter(_key({"pms5003": "plantower-pms5003", "mhz19": "winsen-mhz19", "nmea": "nmea-gps"}[e.sensor],
                            e.values) for e in kit.emissions)
        assert stored == sent and [r[0] for r in rows] == list(range(len(rows)))
        first_rmc = next(i for i, r in enumerate(rows) if r[2] == "nmea-gps" and r[3 + cols.index("speed")] is not None)
        assert all(r[1] & contract.FLAG_TIME_FROM_GPS for r in rows[first_rmc:]), "GPS time once there is a fix"
    finally:
        bridge.stop()
        kit.stop()
        worker.stop()
    wait_until(lambda: any(json.loads(p)["state"] == "offline" for _, p, _ in status.messages), what="offline status")
    status.close()
    docs = [json.loads(p) for _, p, _ in status.messages]
    online = [d for d in docs if d["state"] == "online"]
    assert online and online[-1]["spool"]["dropped_full"] == 0 and online[-1]["boot"] == bridge.boot
    assert docs[-1]["state"] == "offline" and docs[-1]["counters"]["observations"] == len(kit.emissions)


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A private mosquitto with passwords and the ACL qsec documents: a device writes only under its own id."""
    require(find_mosquitto() is not None and shutil.which("mosquitto_passwd") is not None,
            "mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
    data = tmp_path / "acl-broker"
    data.mkdir()
    passwd, acl = data / "passwd", data / "acl"
    passwd.touch()
    for user in ("kit-a", "kit-b"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, f"pw-{user}"], check=True, capture_output=True)
    acl.write_text("pattern readwrite qsec/v1/+/%u/#\n")
    m = MosquittoProcess(data, BrokerConfig(port=free_port(), password_file=passwd, acl_file=acl)).start()
    yield m
    m.stop()


def _offline_bridge(tmp_path: Path, port: int, device: str, user: str, password: str, **kw: object) -> Bridge:
    secret = tmp_path / f"{user}.password"
    secret.write_text(password + "\n")
    return Bridge(BridgeSettings(device=device, campaign="acl", spool_dir=tmp_path / f"spool-{device}", port=port,
                                 username=user, password_file=secret, batch_ms=20, **kw)).start()  # type: ignore[arg-type]


def test_a_publish_refused_by_the_broker_acl_is_counted_by_its_reason_code(tmp_path: Path,
                                                                          acl_broker: MosquittoProcess) -> None:
    bridge = _offline_bridge(tmp_path, acl_broker.port, "kit-a", "kit-b", "pw-kit-b")  # the wrong kit's account
    try:
        wait_until(lambda: bridge.connected, what="the bridge to connect")
        for _ in range(3):
            bridge.on_observation(PM)
        wait_until(lambda: bridge.publish_refused_codes["135"] >= 1, what="PUBACK 135 Not authorized")
        doc = bridge.status_doc()
        assert doc["counters"]["publish_refused"] >= 1 and doc["publish_refused_codes"]["135"] >= 1
        assert bridge.spool.stats().pending_records == 3, "refused records stay in the spool"
    finally:
        bridge.stop()


def test_a_wrong_password_is_counted_as_a_refused_connection(tmp_path: Path, acl_broker: MosquittoProcess) -> None:
    bridge = _offline_bridge(tmp_path, acl_broker.port, "kit-a", "kit-a", "not-the-password")
    try:
        wait_until(lambda: bridge.counters["connect_refused"] >= 1, what="CONNACK not authorised")
        assert not bridge.connected
    finally:
        bridge.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A mosquitto with a TLS listener and a throw-away CA; yields (port, CA file)."""
    require(find_mosquitto() is not None and shutil.which("openssl") is not None, "mosquitto and openssl are needed")
    d = tmp_path / "tls"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=qsec test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    port = free_port()
    (d / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n"
        f"keyfile {d}/server.key\n" + ("user root\n" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(d / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), what="the TLS listener")
        yield port, d / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_bridge_publishes_over_tls_to_a_broker_signed_by_its_ca(tmp_path: Path,
                                                                   tls_broker: tuple[int, Path]) -> None:
    port, ca = tls_broker
    sub = Subscriber(port, contract.topic("tls", "kit-t", "readings"), ca_file=ca)
    bridge = Bridge(BridgeSettings(device="kit-t", campaign="tls", spool_dir=tmp_path / "spool", port=port, tls=True,
                                   ca_file=ca, batch_ms=20)).start()
    try:
        wait_until(lambda: bridge.connected, what="the TLS connection")
        bridge.on_observation(PM)
        wait_until(lambda: sub.messages, what="the batch to arrive over TLS")
        batch = contract.decode_batch(sub.messages[0][1], device="kit-t")
        assert batch.boot == bridge.boot and batch.records[0].values["pm2_5"] == 5.0
    finally:
        bridge.stop()
        sub.close()


@pytest.mark.slow
def test_a_replayed_capture_reaches_the_store_flagged_replayed(tmp_path: Path, broker: tuple[str, int], store: Store,
                                                               unique: str) -> None:
    kit = Kit("rep", next(iter(ROUTES)), 6, tmp_path / "dev", rate_hz=10.0).start()
    try:
        summary = capture("pms5003", kit.paths["pms5003"], tmp_path / "pms.jsonl", seconds=1.0)
    finally:
        kit.stop()
    campaign, device = f"rep{unique}", f"rep-{unique}"
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"rep-ingest-{unique}",
                                                share_group=None, campaign_filter=campaign, batch_ms=50)).start()
    try:
        cmd = [sys.executable, "-m", "qsec", "bridge", "run", "--device", device, "--campaign", campaign,
               "--spool-dir", str(tmp_path / "spool"), "--broker", f"{broker[0]}:{broker[1]}",
               "--replay", str(tmp_path / "pms.jsonl"), "--speed", "0"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        assert "replay finished" in done.stderr
        rows = store.cursor().execute("SELECT flags FROM readings WHERE device = ?", [device]).fetchall()
        flags = [f for (f,) in rows]
        assert len(flags) == summary.observations >= 5
        assert all(f & contract.FLAG_REPLAYED for f in flags)
    finally:
        worker.stop()


def test_export_spool_writes_what_is_waiting_for_qsec_import(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        spool.append_many("b1", [contract.Record(seq=i, t=1_780_000_000_000 + i, sensor="winsen-mhz19",
                                                 values={"co2": 400.0 + i}) for i in range(7)])
        spool.settle("b1", [[0, 1]])
    out = tmp_path / "usb" / "kit-07.jsonl"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["bridge", "export-spool", "--spool-dir", str(tmp_path / "spool"), "--device",
                                       "kit-07", "--campaign", "lyon-2026", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 5 records" in result.output
    head, *lines = out.read_text().splitlines()
    assert json.loads(head)["device"] == "kit-07"
    seqs = [r.seq for line in lines for r in contract.decode_batch(line.encode(), device="kit-07").records]
    assert seqs == [2, 3, 4, 5, 6]


def test_export_spool_refuses_a_spool_a_running_bridge_holds(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool"):
        result = CliRunner().invoke(main, ["bridge", "export-spool", "--spool-dir", str(tmp_path / "spool"),
                                           "--device", "kit-07", "--campaign", "c", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "in use" in result.output


class _StatusRoute(http.server.BaseHTTPRequestHandler):
    """``GET /api/status``: what ``qsec up`` serves there (``ingest.metrics.status`` of its worker)."""

    worker: IngestWorker

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(metrics.status(self.worker)).encode()
        self.send_response(200 if self.path == "/api/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_sensor_on_the_wrong_protocol_says_why_in_the_status_message_and_in_qsec_status(
        tmp_path: Path, broker: tuple[str, int], store: Store, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qsec.bridge.reader")
    campaign, device = f"why{unique}", f"why-{unique}"
    values = {**dict.fromkeys(pms5003st.PARTICLES, 7.0), "hcho": 0.02, "temperature": 20.0, "relative_humidity": 40.0}
    port = PtyPort(tmp_path / "pms")  # a PMS5003ST, configured as a PMS5003
    sensor = EmulatorPort(port, PlantowerEmulator(lambda: pms5003st.encode(values), b""), tick_s=0.02).start()
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"why-ingest-{unique}",
                                                share_group=None, campaign_filter=campaign, batch_ms=50)).start()
    bridge = Bridge(BridgeSettings(device=device, campaign=campaign, spool_dir=tmp_path / "spool",
                                   sensors={"pms5003": str(port.link)}, host=broker[0], port=broker[1],
                                   status_every_s=0.2)).start()
    route = type("Route", (_StatusRoute,), {"worker": worker})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), route)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        doc = wait_until(lambda: ((worker.bridges.get(device) or {}).get("sensors") or {}).get("pms5003", {})
                         .get("frame_errors", 0) >= 20 and worker.bridges[device]["sensors"]["pms5003"],
                         what="the retained status to count the frame errors")
        result = CliRunner().invoke(main, ["status", "--url", f"http://127.0.0.1:{server.server_address[1]}"])
    finally:
        server.shutdown()
        bridge.stop()
        worker.stop()
        sensor.stop()
        port.close()
    (cls, n), = doc["set_aside"]["frame_error"].items()
    assert n == doc["frame_errors"] and "(pms5003st)" in cls
    assert doc["set_aside"]["ignored"] == {"PMS5003 acknowledgement of active mode, not a measurement": 1}
    assert doc["last_reason"]["frame_error"].endswith("choose the protocol of the sensor's model (pms5003st)")
    assert doc["observations"] == 0 and store.cursor().execute("SELECT count(*) FROM readings").fetchone() == (0,)
    assert len([r for r in caplog.records if "set aside (frame error)" in r.getMessage()]) == 1, "logged once"
    assert result.exit_code == 0, result.output
    kit_line = next(i for i, line in enumerate(result.output.splitlines()) if device in line)
    pms_line = result.output.splitlines()[kit_line + 1]
    assert "pms5003" in pms_line and "frame errors" in pms_line and "(pms5003st)" in pms_line, result.output
