"""A campaign's secured broker as an operator sets it up: config, kit passwords, ingest with its own user."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness import require, wait_until
from qsec import contract
from qsec.broker import find_mosquitto, free_port, mqtt_answers

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def qsec(*args: str, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run([sys.executable, "-m", "qsec", *args], capture_output=True, text=True, timeout=60, **kw)


def test_a_registered_kit_is_stored_and_an_anonymous_client_is_refused(tmp_path: Path) -> None:
    require(find_mosquitto() is not None, "no mosquitto binary (apt-get install mosquitto)")
    data, port = tmp_path / "data", free_port()
    assert qsec("campaign", "create", "versailles-2026", "--data-dir", str(data)).returncode == 0
    out = qsec("kit", "register", "kit-07", "--campaign", "versailles-2026", "--device",
               "kit-07=plantower-pms5003", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    password = re.search(r"^\s+kit-07\s+(\S+)$", out.stdout, re.M).group(1)
    assert password not in (data / "broker" / "passwords").read_text()  # only its hash is kept
    broker = subprocess.Popen([sys.executable, "-m", "qsec", "broker", "run", "--data-dir", str(data), "--port",
                               str(port), "--listen", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ingest = None
    try:
        wait_until(lambda: mqtt_answers("127.0.0.1", port, refusal_counts=True), timeout=20, what="the broker")
        assert not mqtt_answers("127.0.0.1", port)  # anonymous: refused
        ingest = subprocess.Popen([sys.executable, "-m", "qsec", "ingest", "--data-dir", str(data), "--broker",
                                   f"127.0.0.1:{port}", "--mqtt-username", "qsec-ingest", "--mqtt-password-file",
                                   str(data / "broker" / "ingest-password")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        acks: list = []
        kit = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="kit-07", protocol=mqtt.MQTTv5)
        kit.username_pw_set("kit-07", password)
        kit.on_message = lambda c, u, m: acks.append(contract.Feedback.decode(m.payload))
        kit.connect("127.0.0.1", port)
        kit.loop_start()
        kit.subscribe(contract.topic("versailles-2026", "kit-07", "ingest"), qos=1)
        t = int(time.time() * 1000) - 1000
        batch = contract.encode_batch(contract.Batch("kit-07", "b1", (
            contract.Record(0, t, "plantower-pms5003", {"pm2_5": 8.0}),)))

        def settled() -> bool:  # publish until ingest (starting meanwhile) settles it: repeats are harmless
            kit.publish(contract.topic("versailles-2026", "kit-07"), batch, qos=1)
            return any(a.settled.get("b1") == [[0, 0]] for a in acks)

        wait_until(settled, timeout=30, interval=0.5, what="ingest's feedback to the kit")
        kit.loop_stop()
    finally:
        if ingest:
            ingest.send_signal(signal.SIGTERM)
            ingest.wait(20)
        broker.send_signal(signal.SIGTERM)
        broker.wait(20)
    con = duckdb.connect(str(data / "qsec.duckdb"), read_only=True)
    assert con.execute("SELECT device, boot, seq, pm2_5 FROM readings").fetchall() == [("kit-07", "b1", 0, 8.0)]
    con.close()
