"""Sensor.Community/airrohr "send to own API" pushes, decoded and through a real HTTP server into DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from dashboards.serve_thread import serving

from ingest.adapters import airrohr
from ingest.adapters.airrohr_http import PATH, router
from ingest.store import Store

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_123


def _decode(sample: str, **context):
    return airrohr.decode((SAMPLES / sample).read_bytes(), source=PATH, received_ms=RECEIVED,
                          campaign="lyon-2026", **context)


def test_a_push_becomes_one_record_per_sensor_in_qsec_units() -> None:
    result = _decode("airrohr_push_sds011_bme280.json", x_sensor="esp8266-1234567")
    rows = {b: r for _, d, b, r in result.rows}
    assert {d for _, d, _, _ in result.rows} == {"esp8266-1234567"}
    assert rows["airrohr-sds011"].values == {"pm10": 12.3, "pm2_5": 7.1}
    assert rows["airrohr-sds011"].sensor == "nova-sds011"
    assert rows["airrohr-bme280"].values == {"temperature": 18.42, "relative_humidity": 61.35,
                                             "pressure": pytest.approx(1001.6305)}  # Pa -> hPa
    # the push has no measurement time: the time of receipt, to the second, is the identity
    assert {r.t for r in rows.values()} == {r.seq for r in rows.values()} == {RECEIVED - 123}
    assert not result.refused  # samples, min_micro, max_micro, interval, signal: metadata, ignored


def test_unprefixed_temperature_is_the_dht22_of_the_firmware_or_the_sensor_named_by_x_pin() -> None:
    plain = _decode("airrohr_push_dht22_pms.json", x_sensor="esp8266-7654321")
    assert {b: r.values for _, _, b, r in plain.rows} == {
        "airrohr-pms": {"pm1": 4.0, "pm10": 9.0, "pm2_5": 6.0},
        "airrohr-dht22": {"temperature": 21.1, "relative_humidity": 48.3}}
    body = json.dumps({"sensordatavalues": [{"value_type": "temperature", "value": "6.9"},
                                            {"value_type": "pressure", "value": "98920.23"}]}).encode()
    pinned = airrohr.decode(body, source=PATH, received_ms=RECEIVED, campaign="c1", x_sensor="esp8266-1", x_pin="11")
    assert [(b, r.sensor) for _, _, b, r in pinned.rows] == [("airrohr-bme280", "bosch-bme280")]


@pytest.mark.parametrize(("body", "headers", "reason"), [
    (b"<html>", {"x_sensor": "esp8266-1"}, "bad_json"),
    (b'{"sensordatavalues": 3}', {"x_sensor": "esp8266-1"}, "bad_schema"),
    (b'{"sensordatavalues": []}', {}, "bad_schema"),
    (b'{"esp8266id": "999", "sensordatavalues": []}', {"x_sensor": "esp8266-1"}, "device_mismatch"),
], ids=["not-json", "no-list", "no-x-sensor", "other-chip"])
def test_a_push_that_cannot_be_read_is_refused_whole(body: bytes, headers: dict, reason: str) -> None:
    result = airrohr.decode(body, source=PATH, received_ms=RECEIVED, campaign="c1", **headers)
    assert not result.rows and [(d.reason, d.seq) for d in result.refused] == [(reason, None)]


def test_an_unknown_value_type_refuses_its_sensor_and_a_bad_number_its_record() -> None:
    body = json.dumps({"esp8266id": "1", "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "12"}, {"value_type": "SDS_P2", "value": "n/a"},
        {"value_type": "noise_LAeq", "value": "51.2"}, {"value_type": "BME280_temperature", "value": "7.1"}]}).encode()
    result = airrohr.decode(body, source=PATH, received_ms=RECEIVED, campaign="c1", x_sensor="esp8266-1")
    assert [b for _, _, b, _ in result.rows] == ["airrohr-bme280"]
    assert sorted((d.boot, d.reason) for d in result.refused) == [("airrohr-noise", "unknown_quantity"),
                                                                  ("airrohr-sds011", "bad_schema")]


# ---------------------------------------------------------------- over HTTP
@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """``POST /api/push/airrohr`` on a real uvicorn server writing into a real DuckDB store."""
    store = Store(tmp_path / "qsec.duckdb")
    app = FastAPI()
    clock = iter(x / 1000 for x in range(RECEIVED, RECEIVED + 10_000_000, 250))  # 250 ms between pushes
    app.include_router(router(lambda r: store.write(r.rows, r.refused), "lyon-2026", clock=lambda: next(clock)))
    with serving(app) as url:
        yield url, store
    store.close()


def test_pushes_over_http_are_stored_and_the_same_push_twice_is_stored_once(served: tuple[str, Store]) -> None:
    url, store = served
    body = (SAMPLES / "airrohr_push_sds011_bme280.json").read_bytes()
    headers = {"X-Sensor": "esp8266-1234567", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.post(PATH, content=body, headers=headers)
        again = client.post(PATH, content=body, headers=headers)  # the same push, within the same second
    assert first.status_code == again.status_code == 200
    assert first.json() == {"device": "esp8266-1234567", "accepted": 2, "refused": []}
    rows = store.cursor().execute(
        "SELECT campaign, device, boot, sensor, pm10, pressure FROM readings ORDER BY boot").fetchall()
    assert rows == [("lyon-2026", "esp8266-1234567", "airrohr-bme280", "bosch-bme280", None, pytest.approx(1001.6305)),
                    ("lyon-2026", "esp8266-1234567", "airrohr-sds011", "nova-sds011", 12.3, None)]


def test_a_refused_push_answers_400_and_is_kept_in_the_dead_letter_table(served: tuple[str, Store]) -> None:
    url, store = served
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post(PATH, content=b'{"sensordatavalues": "oops"}', headers={"X-Sensor": "esp8266-42"})
    assert answer.status_code == 400 and answer.json()["refused"][0]["reason"] == "bad_schema"
    dead = store.cursor().execute("SELECT topic, device, reason, raw FROM deadletter").fetchall()
    assert dead == [(f"airrohr:lyon-2026:{PATH}", "esp8266-42", "bad_schema", '{"sensordatavalues": "oops"}')]
