"""Tasmota tele/<topic>/SENSOR telemetry: every driver's keys, the units, the device's local time, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from adapter_samples import SAMPLES, load, names, stored_dead_letters

from ingest.adapters import tasmota

RECEIVED = 1_800_000_000_000  # 2027-01-15: every sample is in the past
TOPIC = "tele/Tasmota_A1B2C3/SENSOR"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def _decode(payload: object, topic: str = TOPIC, **context):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return tasmota.decode(data, source=topic, received_ms=RECEIVED, campaign="lyon-2026", **context)


def _sample(name: str, **context):
    s = load(name)
    return _decode(s.payload, s.topic or TOPIC, **context)


def _records(result) -> dict[str, tuple[str, dict]]:
    return {b: (r.sensor, dict(r.values)) for _, _, b, r in result.rows}


# ---------------------------------------------------------------- every driver, as the firmware writes it
GOOD = {
    "tasmota_pms5003t_scd41_time4.txt": ("2026-03-29T01:59:58.250+01:00", {
        "tasmota-pms5003t": ("plantower-pms5003t", {
            "pm1_cf1": 6, "pm2_5_cf1": 9, "pm10_cf1": 11, "pm1": 6, "pm2_5": 9, "pm10": 11,
            "pn0_3": 1098, "pn0_5": 320, "pn1": 61, "pn2_5": 4, "temperature": 19.6, "relative_humidity": 48.2}),
        "tasmota-scd41": ("sensirion-scd41", {"co2": 734, "temperature": 21.3, "relative_humidity": 44.9})},
        {"PMS5003T.DewPoint": 1, "SCD41.DewPoint": 1}),
    "tasmota_fahrenheit_inhg_epoch.txt": ("2026-07-14T07:30:00+00:00", {
        "tasmota-pms5003": ("plantower-pms5003", {
            "pm1_cf1": 5, "pm2_5_cf1": 8, "pm10_cf1": 9, "pm1": 5, "pm2_5": 8, "pm10": 9,
            "pn0_3": 1032, "pn0_5": 301, "pn1": 52, "pn2_5": 6, "pn5": 1, "pn10": 0}),
        "tasmota-bme280": ("bosch-bme280", {"temperature": pytest.approx(20.0), "relative_humidity": 55.0,
                                            "pressure": pytest.approx(29.92 / 0.0295299)})},
        {"PMS5003.US_AQI": 1, "BME280.DewPoint": 1, "BME280.HeatIndex": 1, "BME280.SeaPressure": 1}),
    "tasmota_so52_so64_two_bme280_global.txt": ("2026-10-25T02:30:00+01:00", {
        "tasmota-sds011": ("nova-sds011", {"pm2_5": 7.3, "pm10": 12.1}),
        "tasmota-bme280-76": ("bosch-bme280", {"temperature": 12.1, "relative_humidity": 81.0, "pressure": 1002.4}),
        "tasmota-bme280-77": ("bosch-bme280", {"temperature": 12.4, "relative_humidity": 79.6, "pressure": 1002.6})},
        {"state Switch1": 1, "BME280.DewPoint": 2, "Global": 1}),
    "tasmota_sps30_sgp4x_vindriktning_time3.txt": ("2026-03-01T13:43:20+00:00", {
        "tasmota-sps30": ("sensirion-sps30", {
            "pm1": 3.41, "pm2_5": 4.02, "pm4": 4.35, "pm10": 4.51, "nc0_5": 22.84, "nc1": 26.97, "nc2_5": 27.12,
            "nc4": 27.15, "nc10": 27.16, "typical_particle_size": 0.52}),
        "tasmota-sgp4x": ("sensirion-sgp4x", {"voc_index": 112, "nox_index": 1}),  # TVOC is the VOC index here
        "tasmota-vindriktning": ("cubic-pm1006", {"pm1": 4, "pm2_5": 7, "pm10": 9})},
        {"SGP4X.VOC_Raw": 1, "SGP4X.NOX_Raw": 1}),
    "tasmota_mhz19b_sgp30_sgp40_bme680.txt": ("2026-03-01T14:03:02+01:00", {
        "tasmota-mhz19b": ("winsen-mhz19b", {"co2": 612, "temperature": 24.0}),
        "tasmota-sgp30": ("sensirion-sgp30", {"tvoc": 38}),
        "tasmota-sgp40": ("sensirion-sgp40", {"voc_index": 98}),
        "tasmota-bme680": ("bosch-bme680", {"temperature": 21.7, "relative_humidity": 42.3, "pressure": 1008.9})},
        {"MHZ19B.Model": 1, "SGP30.eCO2": 1, "SGP30.aHumidity": 1, "SGP40.Raw": 1, "SGP40.aHumidity": 1,
         "BME680.DewPoint": 1, "BME680.Gas": 1, "ESP32": 1}),
    "tasmota_sen5x_scd30_ds18b20_bmp280_bus2.txt": ("2026-03-01T14:03:02+01:00", {
        "tasmota-sen5x": ("sensirion-sen5x", {"pm1": 2.9, "pm2_5": 3.4, "pm4": 3.6, "pm10": 3.7, "nox_index": 1,
                                              "voc_index": 87, "temperature": 20.9, "relative_humidity": 45.1}),
        "tasmota-scd30": ("sensirion-scd30", {"co2": 688, "temperature": 22.1, "relative_humidity": 41.7}),
        "tasmota-ds18b20-1": ("maxim-ds18b20", {"temperature": 11.8}),
        "tasmota-ds18b20-2": ("maxim-ds18b20", {"temperature": 12.3}),
        "tasmota-bmp280-76-1": ("bosch-bmp280", {"temperature": 21.4, "pressure": 1009.1}),
        "tasmota-bmp280-77-2": ("bosch-bmp280", {"temperature": 21.6, "pressure": 1009.3})},
        {"SEN5X.DewPoint": 1, "SEN5X.aHumidity": 1, "SCD30.eCO2": 1, "SCD30.DewPoint": 1, "DS18B20.Id": 2}),
    "tasmota_gps_ublox.txt": ("2026-03-01T14:05:00+01:00", {
        "tasmota-gps": ("ublox-gps", {"latitude": 48.804865, "longitude": 2.120355})},
        {"GPS.alt": 1, "GPS.hAcc": 1, "GPS.vAcc": 1, "FLOG": 1}),
    "tasmota_gps_before_fix.txt": ("2026-03-01T14:04:30+01:00", {},
                                   {"GPS.alt": 1, "GPS.hAcc": 1, "GPS.vAcc": 1, "GPS.no-fix": 1}),
    "tasmota_pms5003_mhz19b_sgp30_fahrenheit.txt": ("2026-07-14T09:30:00+02:00", {
        "tasmota-pms5003": ("plantower-pms5003", {
            "pm1_cf1": 5, "pm2_5_cf1": 8, "pm10_cf1": 9, "pm1": 5, "pm2_5": 8, "pm10": 9,
            "pn0_3": 1032, "pn0_5": 301, "pn1": 52, "pn2_5": 6, "pn5": 1, "pn10": 0}),
        "tasmota-mhz19b": ("winsen-mhz19b", {"co2": 612, "temperature": pytest.approx(22.0)}),
        "tasmota-sgp30": ("sensirion-sgp30", {"tvoc": 38}),  # eCO2 is an estimate from the VOC signal: not CO2
        "tasmota-bme280-77": ("bosch-bme280", {"temperature": pytest.approx(20.0), "relative_humidity": 55.0,
                                               "pressure": pytest.approx(760.1 / 0.7500637)})},
        {"MHZ19B.Model": 1, "SGP30.eCO2": 1, "BME280.DewPoint": 1}),
}


def test_every_good_sample_has_its_expectation() -> None:
    good = [n for n in names("tasmota_") if n.endswith(".txt") and not n.startswith("tasmota_bad_")]
    assert sorted(GOOD) == good


@pytest.mark.parametrize("name", sorted(GOOD))
def test_each_known_sensor_object_becomes_one_record_in_qsec_units(name: str) -> None:
    when, expected, ignored = GOOD[name]
    result = _sample(name)
    assert _records(result) == expected
    assert {r.t for *_, r in result.rows} <= {_ms(when)} and {r.seq for *_, r in result.rows} <= {_ms(when)}
    assert dict(result.ignored) == ignored  # computed and descriptive keys are counted, not stored
    assert not result.refused


def test_the_sample_of_the_ingest_tests_gives_its_two_sensors() -> None:
    result = _decode((SAMPLES / "tasmota_sds011_bme280.json").read_bytes())
    assert _records(result) == {
        "tasmota-sds011": ("nova-sds011", {"pm2_5": 7.3, "pm10": 12.1}),
        "tasmota-bme280": ("bosch-bme280", {"temperature": 18.4, "relative_humidity": 52.1, "pressure": 1011.2})}
    assert {d for _, d, _, _ in result.rows} == {"tasmota_a1b2c3"}


# ---------------------------------------------------------------- time
def test_local_time_is_read_in_europe_paris_by_default_or_in_the_configured_zone() -> None:
    sample = (SAMPLES / "tasmota_sds011_bme280.json").read_bytes()
    assert {r.t for *_, r in _decode(sample).rows} == {_ms("2026-03-01T14:03:02+01:00")}
    elsewhere = _decode(sample, timezone="America/Montreal")
    assert {r.t for *_, r in elsewhere.rows} == {_ms("2026-03-01T14:03:02-05:00")}


def test_a_refusal_keeps_the_zone_its_time_was_read_in_and_is_decoded_again_in_it() -> None:
    doc = {"Time": "2026-03-01T14:03:02", "SDS0X1": {"PM2.5": 7.3, "PM10": 12.1}, "ANALOG": {"A0": 512}}
    first = _decode(doc, timezone="America/Montreal")
    (dead,) = first.refused
    assert dead.topic == f"tasmota:lyon-2026:{TOPIC}#timezone=America/Montreal" and dead.reason == "unknown_quantity"
    source = dead.topic.split(":", 2)[2]
    # decoded again from its source, with another zone (or none) in the context: the kept zone is the one used
    for context in ({}, {"timezone": "Asia/Tokyo"}):
        again = _decode(doc, source, **context)
        assert {r.t for *_, r in again.rows} == {_ms("2026-03-01T14:03:02-05:00")}
        assert {d.seq for d in again.refused} == {dead.seq} == {_ms("2026-03-01T14:03:02-05:00")}
        assert {d.topic for d in again.refused} == {dead.topic}
        assert {d for _, d, _, _ in again.rows} == {"tasmota_a1b2c3"}


def test_a_source_without_a_kept_zone_is_read_in_the_context_zone() -> None:
    """Dead letters stored before the zone was kept: ``qsec deadletter reprocess --timezone`` names it."""
    result = _decode({"Time": "2026-03-01T14:03:02", "SDS0X1": {"PM2.5": 7.3}}, TOPIC, timezone="America/Montreal")
    assert {r.t for *_, r in result.rows} == {_ms("2026-03-01T14:03:02-05:00")}


@pytest.mark.parametrize(("doc", "expected"), [
    ({"Time": "2026-03-01T14:03:02+03:00"}, "2026-03-01T14:03:02+03:00"),  # SetOption52: the offset is used
    ({"Time": "2026-03-01T14:03:02.123"}, "2026-03-01T14:03:02.123+01:00"),  # Time 4: milliseconds
    ({"Time": "2026-03-01T14:03:02", "Epoch": 1772370000}, "2026-03-01T13:00:00+00:00"),  # Time 2: Epoch wins
    ({"Time": 1772370000}, "2026-03-01T13:00:00+00:00"),  # Time 3: seconds since 1970
    ({"Time": "2026-10-25T02:30:00"}, "2026-10-25T02:30:00+02:00"),  # the autumn hour: its first occurrence
], ids=["setoption52", "time4-millis", "time2-epoch", "time3-epoch", "ambiguous-autumn-hour"])
def test_every_time_format_of_the_time_command_is_read(doc: dict, expected: str) -> None:
    result = _decode({**doc, "SDS0X1": {"PM2.5": 1.0, "PM10": 2.0}})
    assert [r.t for *_, r in result.rows] == [_ms(expected)]


# ---------------------------------------------------------------- units and names
@pytest.mark.parametrize(("unit", "per_hpa"), [("hPa", 1.0), ("mmHg", 0.7500637), ("inHg", 0.0295299)])
def test_pressure_in_each_pressure_unit_comes_back_in_hpa(unit: str, per_hpa: float) -> None:
    doc = {"Time": "2026-03-01T14:03:02", "BMP280": {"Temperature": 9.5, "Pressure": round(1013.25 * per_hpa, 4)},
           "PressureUnit": unit, "TempUnit": "C"}
    assert _records(_decode(doc))["tasmota-bmp280"][1]["pressure"] == pytest.approx(1013.25, abs=0.01)


def test_an_index_after_dash_or_underscore_setoption64_names_the_same_sensor() -> None:
    dash = _decode({"Time": "2026-03-01T14:03:02", "SHT3X-44": {"Temperature": 9.5, "Humidity": 70.1}})
    underscore = _decode({"Time": "2026-03-01T14:03:02", "SHT3X_44": {"Temperature": 9.5, "Humidity": 70.1}})
    assert _records(dash) == _records(underscore) == {
        "tasmota-sht3x-44": ("sensirion-sht3x", {"temperature": 9.5, "relative_humidity": 70.1})}


def test_a_value_the_driver_could_not_read_is_counted_and_the_rest_stored() -> None:
    result = _decode({"Time": "2026-03-01T14:03:02", "SCD30": {"CarbonDioxide": 655, "Temperature": None}})
    assert _records(result) == {"tasmota-scd30": ("sensirion-scd30", {"co2": 655})}
    assert result.ignored == {"SCD30.Temperature=null": 1}


def test_an_sps30_fan_cleaning_notice_makes_no_record() -> None:
    result = _decode({"Time": "2026-03-01T14:03:02", "SPS30": {"CFAN": "true"}})  # xsns_44_sps30.ino CmdClean
    assert not result.rows and not result.refused and result.ignored == {"SPS30.CFAN": 1}


# ---------------------------------------------------------------- refusals
def test_unknown_sensors_and_keys_refuse_their_own_record_and_the_others_are_kept() -> None:
    result = _sample("tasmota_bad_unknown_sensors.txt")
    assert _records(result) == {"tasmota-sds011": ("nova-sds011", {"pm2_5": 3.1, "pm10": 4.2})}
    refused = {d.boot: d for d in result.refused}
    assert set(refused) == {"tasmota-analog", "tasmota-max31855", "tasmota-pms5003"}
    assert {d.reason for d in result.refused} == {"unknown_quantity"}
    assert "PMS5003.HCHO" in refused["tasmota-pms5003"].detail and "'ANALOG'" in refused["tasmota-analog"].detail
    assert {d.seq for d in result.refused} == {_ms("2026-03-01T14:03:02+01:00")}


@pytest.mark.parametrize("name", names("tasmota_bad_"))
def test_each_bad_sample_is_dead_lettered_with_its_reason(tmp_path: Path, name: str) -> None:
    s = load(name)
    result = _decode(s.payload, s.topic or TOPIC)
    assert result.refused and {d.reason for d in result.refused} == {s.expect}
    dead = stored_dead_letters(tmp_path, result)
    assert {(t, dev, reason) for t, dev, reason, _ in dead} == {
        (f"tasmota:lyon-2026:{s.topic}#timezone=Europe/Paris", "aq-shed", s.expect)}  # the zone the Time was read in
    assert {raw for *_, raw in dead} == {s.payload.decode()}  # kept whole, to be decoded again after a fix


@pytest.mark.parametrize(("payload", "reason"), [
    (json.dumps({"SDS0X1": {"PM2.5": 1}}).encode(), "bad_time"),
    (json.dumps({"Time": "soon", "SDS0X1": {"PM2.5": 1}}).encode(), "bad_time"),
    (json.dumps({"Time": "2026-03-01T14:03:02", "PressureUnit": "psi"}).encode(), "bad_schema"),
    (json.dumps(["Time", "2026-03-01T14:03:02"]).encode(), "bad_schema"),
    (b'{"Time": Infinity, "SDS0X1": {"PM2.5": 1}}', "bad_time"),
], ids=["no-time", "bad-time", "unknown-pressure-unit", "not-an-object", "infinite-time"])
def test_a_message_that_cannot_be_read_is_refused_whole(payload: bytes, reason: str) -> None:
    result = _decode(payload)
    assert not result.rows and [(d.reason, d.seq, d.device) for d in result.refused] == [(reason, None,
                                                                                           "tasmota_a1b2c3")]


@pytest.mark.parametrize(("obj", "reason"), [
    ({"MHZ19B": {"CarbonDioxide": 70000}}, "out_of_range"),
    ({"SDS0X1": {"PM2.5": "n/a", "PM10": 4.0}}, "bad_schema"),
    ({"Switch1": 1}, "unknown_quantity"),
], ids=["impossible-co2", "not-a-number", "top-level-number"])
def test_a_bad_sensor_object_is_refused_with_its_reason(obj: dict, reason: str) -> None:
    result = _decode({"Time": "2026-03-01T14:03:02", **obj})
    assert not result.rows and [d.reason for d in result.refused] == [reason]


def test_a_topic_that_is_not_tele_topic_sensor_is_refused() -> None:
    result = tasmota.decode(b"{}", source="SENSOR", received_ms=RECEIVED, campaign="c1")
    assert [(d.reason, d.device) for d in result.refused] == [("bad_topic", None)]
