"""Smart Citizen Kit payloads over MQTT: the raw form, JSON forms, sensor ids, the device token."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ingest.adapters import smartcitizen

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000
T0 = 1_772_366_405_000  # 2026-03-01T12:00:05Z


def _decode(payload: bytes, topic: str = "device/sck/a1b2c3/readings/raw", **context):
    return smartcitizen.decode(payload, source=topic, received_ms=RECEIVED, campaign="lyon-2026", **context)


def test_the_raw_payload_becomes_one_record_per_sensor_with_pressure_in_hpa() -> None:
    result = _decode((SAMPLES / "smartcitizen_raw.txt").read_bytes())
    rows = {b: r for _, _, b, r in result.rows}
    assert rows["smartcitizen-sht31"].values == {"temperature": 18.3, "relative_humidity": 61.2}
    assert rows["smartcitizen-mpl3115a2"].values == {"pressure": pytest.approx(1012.0)}  # kPa -> hPa
    assert rows["smartcitizen-pms5003"].values == {"pm1": 6, "pm2_5": 9, "pm10": 12}
    assert rows["smartcitizen-ccs811"].values == {"tvoc": 23}
    assert {r.t for r in rows.values()} == {T0}
    assert not result.refused  # battery %, light, noise: no qsec quantity, documented as not stored


def test_the_device_id_never_shows_the_token() -> None:
    result = _decode((SAMPLES / "smartcitizen_raw.txt").read_bytes())
    expected = "sck-" + hashlib.sha256(b"a1b2c3").hexdigest()[:12]
    assert {d for _, d, _, _ in result.rows} == {expected}
    named = _decode((SAMPLES / "smartcitizen_raw.txt").read_bytes(), devices={"a1b2c3": "SCK Mairie"})
    assert {d for _, d, _, _ in named.rows} == {"sck-mairie"}


def test_the_platform_json_and_the_json_of_ids_are_read_too() -> None:
    result = _decode((SAMPLES / "smartcitizen_platform.json").read_bytes(), "device/sck/a1b2c3/readings")
    rows = {(b, r.t): r.values for _, _, b, r in result.rows}
    assert rows[("smartcitizen-scd30", T0 + 60_000)] == {"co2": 612, "temperature": 19.1, "relative_humidity": 58.0}
    assert rows[("smartcitizen-sht31", T0 + 120_000)] == {"temperature": 18.5, "relative_humidity": 60.8}
    (dead,) = result.refused  # sensor id 199 is in no table
    assert (dead.reason, dead.boot, dead.seq) == ("unknown_quantity", "smartcitizen-id-199", T0 + 120_000)
    as_json = _decode(json.dumps({"t": "2026-03-01T12:00:05Z", "55": 18.3, "56": 61.2}).encode())
    assert [r.values for *_, r in as_json.rows] == [{"temperature": 18.3, "relative_humidity": 61.2}]


@pytest.mark.parametrize(("payload", "topic", "reason"), [
    (b"hello", "device/sck/a1b2c3/readings/raw", "bad_json"),
    (b"{t:2026-03-01T12:00:05Z,55}", "device/sck/a1b2c3/readings/raw", "bad_schema"),
    (b"{55:18.3}", "device/sck/a1b2c3/readings/raw", "bad_time"),
    (b"{t:2026-03-01T12:00:05Z,55:18.3}", "sck/a1b2c3", "bad_topic"),
], ids=["not-a-payload", "pair-without-value", "no-time", "foreign-topic"])
def test_a_message_that_cannot_be_read_is_refused_whole(payload: bytes, topic: str, reason: str) -> None:
    result = _decode(payload, topic)
    assert not result.rows and [(d.reason, d.seq) for d in result.refused] == [(reason, None)]


def test_a_value_that_is_not_a_number_refuses_its_sensor_only() -> None:
    result = _decode(b"{t:2026-03-01T12:00:05Z,55:18.3,56:err,87:9,88:12,89:6}")
    assert [b for _, _, b, _ in result.rows] == ["smartcitizen-pms5003"]
    assert [(d.boot, d.reason) for d in result.refused] == [("smartcitizen-sht31", "bad_schema")]
