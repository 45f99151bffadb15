"""Tasmota tele/<topic>/SENSOR telemetry: sensors, units, the device's local time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.adapters import tasmota

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000
TOPIC = "tele/Tasmota_A1B2C3/SENSOR"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def _decode(payload: object, **context):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return tasmota.decode(data, source=TOPIC, received_ms=RECEIVED, campaign="lyon-2026", **context)


def test_each_sensor_object_becomes_one_record_of_the_topic_device() -> None:
    result = _decode((SAMPLES / "tasmota_sds011_bme280.json").read_bytes())
    rows = {b: (d, r) for _, d, b, r in result.rows}
    assert set(rows) == {"tasmota-sds011", "tasmota-bme280"}
    assert {d for d, _ in rows.values()} == {"tasmota_a1b2c3"}
    assert rows["tasmota-sds011"][1].values == {"pm2_5": 7.3, "pm10": 12.1}
    assert rows["tasmota-sds011"][1].sensor == "nova-sds011"
    assert rows["tasmota-bme280"][1].values == {"temperature": 18.4, "relative_humidity": 52.1, "pressure": 1011.2}
    assert not result.refused  # DewPoint is computed from the others: ignored


def test_time_is_the_device_local_time_read_in_europe_paris_by_default() -> None:
    winter = _decode((SAMPLES / "tasmota_sds011_bme280.json").read_bytes())
    assert {r.t for *_, r in winter.rows} == {_ms("2026-03-01T14:03:02+01:00")}
    summer = _decode((SAMPLES / "tasmota_pms5003_mhz19b_sgp30_fahrenheit.json").read_bytes())
    assert {r.t for *_, r in summer.rows} == {_ms("2026-07-14T09:30:00+02:00")}
    elsewhere = _decode((SAMPLES / "tasmota_sds011_bme280.json").read_bytes(), timezone="America/Montreal")
    assert {r.t for *_, r in elsewhere.rows} == {_ms("2026-03-01T14:03:02-05:00")}


def test_a_time_with_its_utc_offset_setoption52_is_taken_as_it_says() -> None:
    result = _decode({"Time": "2026-03-01T14:03:02+03:00", "SDS0X1": {"PM2.5": 1, "PM10": 2}})
    assert [r.t for *_, r in result.rows] == [_ms("2026-03-01T14:03:02+03:00")]


def test_fahrenheit_and_mmhg_are_converted_and_pms5003_keys_map_to_cf1_and_counts() -> None:
    result = _decode((SAMPLES / "tasmota_pms5003_mhz19b_sgp30_fahrenheit.json").read_bytes())
    rows = {b: r for _, _, b, r in result.rows}
    assert rows["tasmota-pms5003"].values == {
        "pm1_cf1": 5, "pm2_5_cf1": 8, "pm10_cf1": 9, "pm1": 5, "pm2_5": 8, "pm10": 9,
        "pn0_3": 1032, "pn0_5": 301, "pn1": 52, "pn2_5": 6, "pn5": 1, "pn10": 0}
    assert rows["tasmota-mhz19b"].values == {"co2": 612, "temperature": pytest.approx(22.0)}
    assert rows["tasmota-sgp30"].values == {"tvoc": 38}  # eCO2 is an estimate from the VOC signal: not CO2
    bme = rows["tasmota-bme280-77"]  # the driver's index suffix keeps two BME280 apart
    assert bme.values == {"temperature": pytest.approx(20.0), "relative_humidity": 55.0,
                          "pressure": pytest.approx(1013.38, abs=0.01)}
    assert not result.refused


def test_an_unknown_key_refuses_its_sensor_and_the_other_sensors_are_kept() -> None:
    result = _decode({"Time": "2026-03-01T14:03:02", "BME680": {"Temperature": 19.0, "Gas": 120.3},
                      "SDS0X1": {"PM2.5": 3.1, "PM10": 4.2}, "Switch1": "ON"})
    assert [b for _, _, b, _ in result.rows] == ["tasmota-sds011"]
    refused = {d.boot: d for d in result.refused}
    assert refused["tasmota-bme680"].reason == "unknown_quantity" and "BME680.Gas" in refused["tasmota-bme680"].detail
    assert refused["tasmota-switch1"].reason == "unknown_quantity"
    assert {d.seq for d in result.refused} == {_ms("2026-03-01T14:03:02+01:00")}


@pytest.mark.parametrize(("payload", "reason"), [
    (b"ON", "bad_json"),
    (json.dumps({"SDS0X1": {"PM2.5": 1}}).encode(), "bad_time"),
    (json.dumps({"Time": "soon", "SDS0X1": {"PM2.5": 1}}).encode(), "bad_time"),
    (json.dumps({"Time": "2026-03-01T14:03:02", "PressureUnit": "psi"}).encode(), "bad_schema"),
], ids=["not-json", "no-time", "bad-time", "unknown-pressure-unit"])
def test_a_message_that_cannot_be_read_is_refused_whole(payload: bytes, reason: str) -> None:
    result = _decode(payload)
    assert not result.rows and [(d.reason, d.seq, d.device) for d in result.refused] == [(reason, None,
                                                                                           "tasmota_a1b2c3")]


def test_an_impossible_value_is_refused_out_of_range() -> None:
    result = _decode({"Time": "2026-03-01T14:03:02", "MHZ19B": {"CarbonDioxide": 70000}})
    assert [d.reason for d in result.refused] == ["out_of_range"]
