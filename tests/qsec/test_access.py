"""Access control against a real Mosquitto with qsec's password file and ACL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from harness import require, wait_until
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import access, contract
from qsec.broker import BrokerConfig, MosquittoProcess, find_mosquitto, free_port

pytestmark = pytest.mark.broker


def test_password_hashes_are_mosquitto_compatible_and_check() -> None:
    h = access.hash_password("s3cret", salt=b"0123456789ab")
    assert h.startswith("$7$101$") and access.check_password("s3cret", h)
    assert not access.check_password("wrong", h)
    # produced by `mosquitto_passwd -b pw kit01 s3cret` (Mosquitto 2.0.11)
    known = "$7$101$iTNBgMOBVE90nuBN$24lrggIvNpma7lO3KBucTY/PrcPb6Adh0eG831Y/nyv7DCzRScpwusa+BK7oP8IwRzcwm52Hbzy7hgbEVEwKxQ=="
    assert access.check_password("s3cret", known)


def test_a_device_id_that_breaks_the_topic_rules_cannot_get_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MQTT user name"):
        access.Credentials(tmp_path / "pw").issue("Kit 01")


@pytest.fixture
def secured_broker(tmp_path: Path):
    require(find_mosquitto() is not None, "no mosquitto binary (apt-get install mosquitto)")
    creds = access.Credentials(tmp_path / "broker" / "passwords")
    pw = {u: creds.issue(u) for u in ("kit01", "kit02", access.INGEST_USER)}
    acl = access.write_acl(tmp_path / "broker" / "acl")
    cfg = BrokerConfig(port=free_port(), password_file=creds.path, acl_file=acl)
    with MosquittoProcess(tmp_path / "broker", cfg) as m:
        yield m, pw


def _connect(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, list]:
    codes: list = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        c.username_pw_set(user, password)
    c.on_connect = lambda cl, u, f, rc, p: codes.append(("connect", rc))
    c.on_publish = lambda cl, u, mid, rc, p: codes.append(("publish", rc))
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, codes


def test_an_anonymous_client_or_a_wrong_password_is_refused(secured_broker) -> None:
    broker, pw = secured_broker
    for user, password in ((None, None), ("kit01", "not-the-password")):
        c, codes = _connect(broker.port, user, password)
        wait_until(lambda: codes, what="CONNACK")
        assert codes[0][1].is_failure and codes[0][1].value in (134, 135), codes  # bad user/password, not authorized
        c.loop_stop()


def test_a_device_cannot_write_as_another_and_nothing_is_stored(secured_broker, tmp_path: Path) -> None:
    broker, pw = secured_broker
    store = Store(tmp_path / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(port=broker.port, client_id="ingest-acl", username=access.INGEST_USER,
                                                password=pw[access.INGEST_USER], batch_ms=50)).start()
    try:
        t = int(time.time() * 1000) - 1000
        batch = lambda dev, seq: contract.encode_batch(contract.Batch(dev, "b1", (contract.Record(seq, t, "winsen-mhz19", {"co2": 500.0}),)))  # noqa: E731
        kit01, codes = _connect(broker.port, "kit01", pw["kit01"])
        wait_until(lambda: codes, what="CONNACK")
        kit01.publish(contract.topic("c1", "kit01"), batch("kit01", 0), qos=1).wait_for_publish(5)
        kit01.publish(contract.topic("c1", "kit02"), batch("kit02", 0), qos=1).wait_for_publish(5)  # impersonation
        wait_until(lambda: len([c for c in codes if c[0] == "publish"]) == 2, what="two PUBACKs")
        pubacks = [rc for kind, rc in codes if kind == "publish"]
        assert not pubacks[0].is_failure
        assert pubacks[1] == ReasonCode(mqtt.PacketTypes.PUBACK, "Not authorized")
        cur = store.cursor()
        wait_until(lambda: cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 1, what="kit01's record")
        time.sleep(0.5)
        assert cur.execute("SELECT device FROM readings").fetchall() == [("kit01",)]
        kit01.loop_stop()
    finally:
        worker.stop()
        store.close()
