"""Sensor.Community/airrohr pushes, as the firmware builds them, decoded and through a real HTTP server into DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from adapter_samples import SAMPLES, load, names, stored_dead_letters
from dashboards.serve_thread import serving
from fastapi import FastAPI

from ingest.adapters import airrohr
from ingest.adapters.airrohr_http import PATH, router
from ingest.store import Store

RECEIVED = 1_790_000_000_123
T = RECEIVED - 123  # the push has no time: the time of receipt, to the second


def _decode(payload: bytes, *, x_sensor: str | None = "esp8266-13597771", x_pin: str | None = None):
    return airrohr.decode(payload, source=PATH, received_ms=RECEIVED, campaign="lyon-2026", x_sensor=x_sensor,
                          x_pin=x_pin)


def _sample(name: str):
    s = load(name)
    return _decode(s.payload, x_sensor=s.header("X-Sensor"), x_pin=s.header("X-PIN"))


def _records(result) -> dict[str, tuple[str, dict]]:
    return {b: (r.sensor, dict(r.values)) for _, _, b, r in result.rows}


def _body(*pairs: tuple[str, str]) -> bytes:
    """A body as sendSensorCommunity builds it (data_first_part, add_Value2Json entries)."""
    values = ",".join(f'{{"value_type":"{t}","value":"{v}"}}' for t, v in pairs)
    return f'{{"software_version": "NRZ-2021-134-B4", "sensordatavalues":[{values}]}}'.encode()


METADATA = {"samples": 1, "min_micro": 1, "max_micro": 1, "interval": 1, "signal": 1}
GOOD = {
    "airrohr_own_api_sds_sps30_dht_bme280_scd30_gps.txt": ("esp8266-13597771", {
        "airrohr-sds011": ("nova-sds011", {"pm10": 14.53, "pm2_5": 8.27}),
        "airrohr-sps30": ("sensirion-sps30", {"pm1": 6.11, "pm2_5": 7.02, "pm4": 7.31, "pm10": 7.40, "nc0_5": 40.12,
                                              "nc1": 47.80, "nc2_5": 48.21, "nc4": 48.27, "nc10": 48.29,
                                              "typical_particle_size": 0.56}),
        "airrohr-dht22": ("aosong-dht22", {"temperature": 8.40, "relative_humidity": 81.30}),
        "airrohr-bme280": ("bosch-bme280", {"temperature": 8.12, "pressure": pytest.approx(998.5344),
                                            "relative_humidity": 83.05}),  # Pa -> hPa
        "airrohr-scd30": ("sensirion-scd30", {"temperature": 19.83, "relative_humidity": 41.21, "co2": 612}),
        "airrohr-ds18b20": ("maxim-ds18b20", {"temperature": 7.94}),
        "airrohr-gps": ("gps", {"latitude": 48.804865, "longitude": 2.120355, "altitude": 113.40})},
        {"GPS_timestamp": 1, **METADATA}),
    "airrohr_own_api_esp32_ppd_npm_htu21d_bmp280_sht3x_dnms.txt": ("esp32-a4cf12e3b5c8", {
        "airrohr-nextpm": ("tera-nextpm", {"pm1": 4.20, "pm10": 9.80, "pm2_5": 6.30, "nc1": 21.45, "nc10": 22.10,
                                           "nc2_5": 22.04}),
        "airrohr-htu21d": ("te-htu21d", {"temperature": 9.71, "relative_humidity": 77.40}),
        "airrohr-bmp280": ("bosch-bmp280", {"pressure": pytest.approx(1004.1231), "temperature": 10.02}),
        "airrohr-sht3x": ("sensirion-sht3x", {"temperature": 9.55, "relative_humidity": 78.12})},
        {"durP1": 1, "ratioP1": 1, "durP2": 1, "ratioP2": 1, **METADATA},
        {"airrohr-ppd42ns", "airrohr-dnms"}),  # counts per 283 mL and noise levels: no qsec quantity
    "airrohr_own_api_hpm_bmp180_gps_no_fix.txt": ("esp8266-7654321", {
        "airrohr-hpm": ("honeywell-hpm", {"pm10": 18.0, "pm2_5": 11.0}),
        "airrohr-bmp180": ("bosch-bmp180", {"pressure": pytest.approx(989.21), "temperature": 6.90})},
        {"GPS_lat (no GPS fix)": 1, "GPS_lon (no GPS fix)": 1, "GPS_height (no GPS fix)": 1, "GPS_timestamp": 1,
         **METADATA}),
    "airrohr_own_api_pms_dht22.txt": ("esp8266-7654321", {
        "airrohr-pms": ("plantower-pms", {"pm1": 4.0, "pm10": 9.0, "pm2_5": 6.0}),
        "airrohr-dht22": ("aosong-dht22", {"temperature": 21.1, "relative_humidity": 48.3})},
        {"samples": 1, "min_micro": 1, "max_micro": 1, "signal": 1}),
    "airrohr_sc_api_pin1_sps30.txt": ("esp8266-13597771", {
        "airrohr-x-pin-1": ("airrohr-x-pin-1", {"pm1": 6.11, "pm2_5": 7.02, "pm4": 7.31, "pm10": 7.40, "nc0_5": 40.12,
                                                "nc1": 47.80, "nc2_5": 48.21, "nc4": 48.27, "nc10": 48.29,
                                                "typical_particle_size": 0.56})}, {}),
    "airrohr_sc_api_pin17_scd30.txt": ("esp8266-13597771", {
        "airrohr-scd30": ("sensirion-scd30", {"temperature": 19.83, "relative_humidity": 41.21, "co2": 612})}, {}),
    "airrohr_sc_api_pin9_gps.txt": ("esp8266-13597771", {
        "airrohr-gps": ("gps", {"latitude": 48.804865, "longitude": 2.120355, "altitude": 113.40})},
        {"timestamp": 1}),
}


def test_every_good_sample_has_its_expectation() -> None:
    assert sorted(GOOD) == [n for n in names("airrohr_") if n.endswith(".txt") and load(n).expect is None]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_push_becomes_one_record_per_sensor_in_qsec_units(name: str) -> None:
    device, expected, ignored, *refused = GOOD[name]
    result = _sample(name)
    assert _records(result) == expected and {d for _, d, _, _ in result.rows} == {device}
    assert {(r.t, r.seq) for *_, r in result.rows} == {(T, T)}
    assert dict(result.ignored) == ignored
    assert {(d.boot, d.reason) for d in result.refused} == {(b, "unknown_quantity") for b in (refused or [set()])[0]}


def test_the_sample_of_the_ingest_tests_gives_its_two_sensors() -> None:
    result = _decode((SAMPLES / "airrohr_push_sds011_bme280.json").read_bytes(), x_sensor="esp8266-1234567")
    assert _records(result) == {
        "airrohr-sds011": ("nova-sds011", {"pm10": 12.3, "pm2_5": 7.1}),
        "airrohr-bme280": ("bosch-bme280", {"temperature": 18.42, "relative_humidity": 61.35,
                                            "pressure": pytest.approx(1001.6305)})}


@pytest.mark.parametrize(("pin", "pairs", "expected"), [
    ("3", [("pressure", "98921.00"), ("temperature", "6.90")],
     {"airrohr-x-pin-3": ("airrohr-x-pin-3", {"pressure": pytest.approx(989.21), "temperature": 6.9})}),
    ("7", [("temperature", "8.40"), ("humidity", "81.30")],
     {"airrohr-x-pin-7": ("airrohr-x-pin-7", {"temperature": 8.4, "relative_humidity": 81.3})}),
    ("11", [("temperature", "8.12"), ("pressure", "99853.44"), ("humidity", "83.05")],
     {"airrohr-bme280": ("bosch-bme280", {"temperature": 8.12, "pressure": pytest.approx(998.5344),
                                          "relative_humidity": 83.05})}),
    ("13", [("temperature", "7.94")], {"airrohr-ds18b20": ("maxim-ds18b20", {"temperature": 7.94})}),
], ids=["bmp180-or-bmp280", "dht22-htu21d-or-sht3x", "bme280", "ds18b20"])
def test_names_without_prefix_belong_to_the_sensor_of_the_x_pin(pin: str, pairs: list, expected: dict) -> None:
    result = _decode(_body(*pairs), x_pin=pin)
    assert _records(result) == expected and not result.refused


@pytest.mark.parametrize(("pin", "pairs", "boot", "words"), [
    (None, [("P1", "2695.12"), ("P2", "541.97")], "airrohr-ppd42ns", "particle counts per 283 mL"),
    ("15", [("noise_LAeq", "52.31"), ("noise_LA_min", "44.12"), ("noise_LA_max", "71.90")], "airrohr-dnms",
     "noise levels"),
    ("42", [("temperature", "8.40")], "airrohr-x-pin-42", "X-PIN 42"),
    (None, [("IPS_P0", "4.10")], "airrohr-ips", "'IPS_P0'"),
    (None, [("SDS_P0", "4.10")], "airrohr-sds011", "not one nova-sds011 sends"),
], ids=["ppd42ns-counts", "dnms-noise", "unknown-pin", "unknown-prefix", "wrong-value-for-sensor"])
def test_what_qsec_cannot_store_refuses_its_sensor_record_saying_why(pin: str | None, pairs: list, boot: str,
                                                                      words: str) -> None:
    result = _decode(_body(*pairs, ("BME280_temperature", "8.12")), x_pin=pin)
    assert [(d.boot, d.reason, d.seq) for d in result.refused] == [(boot, "unknown_quantity", T)]
    assert words in result.refused[0].detail
    assert list(_records(result)) == ["airrohr-bme280"]  # the other sensors are kept


@pytest.mark.parametrize("name", [n for n in names("airrohr_") if n.endswith(".txt") and load(n).expect])
def test_each_bad_sample_is_dead_lettered_with_its_reason(tmp_path: Path, name: str) -> None:
    s = load(name)
    result = _sample(name)
    assert result.refused and {d.reason for d in result.refused} == {s.expect}
    dead = stored_dead_letters(tmp_path, result, "topic, reason, raw")
    assert {(t, reason, raw) for t, reason, raw in dead} == {(f"airrohr:lyon-2026:{PATH}", s.expect,
                                                              s.payload.decode())}


@pytest.mark.parametrize(("body", "headers", "reason"), [
    (b"<html>", {"x_sensor": "esp8266-1"}, "bad_json"),
    (b'{"sensordatavalues": 3}', {"x_sensor": "esp8266-1"}, "bad_schema"),
    (b'{"sensordatavalues": []}', {}, "bad_schema"),
    (b'{"esp8266id": "999", "sensordatavalues": []}', {"x_sensor": "esp8266-1"}, "device_mismatch"),
], ids=["not-json", "no-list", "no-x-sensor", "other-chip"])
def test_a_push_that_cannot_be_read_is_refused_whole(body: bytes, headers: dict, reason: str) -> None:
    result = airrohr.decode(body, source=PATH, received_ms=RECEIVED, campaign="c1", **headers)
    assert not result.rows and [(d.reason, d.seq) for d in result.refused] == [(reason, None)]


def test_a_value_that_is_not_a_number_refuses_its_record_and_an_entry_without_type_is_refused() -> None:
    body = json.dumps({"esp8266id": "1", "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "12"}, {"value_type": "SDS_P2", "value": "n/a"}, {"value": "3"},
        {"value_type": "BME280_temperature", "value": "7.1"}]}).encode()
    result = airrohr.decode(body, source=PATH, received_ms=RECEIVED, campaign="c1", x_sensor="esp8266-1")
    assert list(_records(result)) == ["airrohr-bme280"]
    assert {(d.boot, d.reason) for d in result.refused} == {(None, "bad_schema"), ("airrohr-sds011", "bad_schema")}


def test_the_x_pin_kept_in_the_source_is_read_again_when_a_dead_letter_is_decoded_again() -> None:
    body = _body(("temperature", "19.83"), ("humidity", "41.21"), ("co2_ppm", "612.00"))
    again = airrohr.decode(body, source=f"{PATH}?x-pin=17", received_ms=RECEIVED, campaign="c1",
                           device="esp8266-13597771")
    assert list(_records(again)) == ["airrohr-scd30"]


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
    assert first.json() == {"device": "esp8266-1234567", "accepted": 2, "refused": [], "ignored": METADATA}
    rows = store.cursor().execute(
        "SELECT campaign, device, boot, sensor, pm10, pressure FROM readings ORDER BY boot").fetchall()
    assert rows == [("lyon-2026", "esp8266-1234567", "airrohr-bme280", "bosch-bme280", None, pytest.approx(1001.6305)),
                    ("lyon-2026", "esp8266-1234567", "airrohr-sds011", "nova-sds011", 12.3, None)]


def test_the_firmware_s_headers_and_x_pin_are_honoured_over_http(served: tuple[str, Store]) -> None:
    url, store = served
    own = load("airrohr_own_api_esp32_ppd_npm_htu21d_bmp280_sht3x_dnms.txt")
    scd30 = load("airrohr_sc_api_pin17_scd30.txt")
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.post(PATH, content=own.payload, headers=own.headers)
        second = client.post(PATH, content=scd30.payload, headers=scd30.headers)
    assert first.status_code == second.status_code == 200
    answer = first.json()
    assert answer["accepted"] == 4 and {r["boot"] for r in answer["refused"]} == {"airrohr-ppd42ns", "airrohr-dnms"}
    assert second.json()["accepted"] == 1
    stored = store.cursor().execute("SELECT device, boot, co2 FROM readings ORDER BY boot").fetchall()
    assert [b for _, b, _ in stored] == ["airrohr-bmp280", "airrohr-htu21d", "airrohr-nextpm", "airrohr-scd30",
                                         "airrohr-sht3x"]
    assert stored[3] == ("esp8266-13597771", "airrohr-scd30", 612)
    dead = store.cursor().execute("SELECT topic, boot, reason FROM deadletter ORDER BY boot").fetchall()
    assert dead == [(f"airrohr:lyon-2026:{PATH}", "airrohr-dnms", "unknown_quantity"),
                    (f"airrohr:lyon-2026:{PATH}", "airrohr-ppd42ns", "unknown_quantity")]


def test_a_refused_push_answers_400_and_is_kept_in_the_dead_letter_table(served: tuple[str, Store]) -> None:
    url, store = served
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post(PATH, content=b'{"sensordatavalues": "oops"}', headers={"X-Sensor": "esp8266-42"})
    assert answer.status_code == 400 and answer.json()["refused"][0]["reason"] == "bad_schema"
    dead = store.cursor().execute("SELECT topic, device, reason, raw FROM deadletter").fetchall()
    assert dead == [(f"airrohr:lyon-2026:{PATH}", "esp8266-42", "bad_schema", '{"sensordatavalues": "oops"}')]
