"""Smart Citizen Kit messages over MQTT: both forms, every sensor id of the firmware, times, refusals.

Each sample cites the firmware or platform code it follows in its comment header
(``smartcitizen_raw.txt``, read as is by other tests, in ``samples/smartcitizen_samples.md``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from adapter_samples import load

from ingest.adapters import smartcitizen
from qsec import contract
from qsec.quantities import QUANTITIES

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000  # 2026-09-21 UTC
T0 = 1_772_366_405_000  # 2026-03-01T12:00:05Z
RAW = "device/sck/a1b2c3/readings/raw"
JSON = "device/sck/a1b2c3/readings"

# every non-zero platform id of the current firmware's sensor table (smartcitizen-kit-2x lib/Sensors/Sensors.h,
# AllSensors::list), with its short title (216 is titled AS7331_UVA there too; 96 is PM_DALLAS_TEMP and DALLAS_TEMP)
FIRMWARE_IDS = {
    10: "BATT", 222: "BATT_VOLT", 221: "SDCARD", 220: "RSSI", 14: "LIGHT", 55: "TEMP", 56: "HUM", 53: "NOISE_A",
    217: "NOISE_B", 218: "NOISE_Z", 219: "ALT", 58: "PRESS", 113: "CCS811_VOCS", 112: "CCS811_ECO2",
    227: "PRESS_LPS", 89: "PMS_PM_1", 87: "PMS_PM_25", 88: "PMS_PM_10", 165: "PMS_PN_03", 166: "PMS_PN_05",
    167: "PMS_PN_1", 168: "PMS_PN_25", 169: "PMS_PN_5", 170: "PMS_PN_10", 182: "SPS30_PM_1", 183: "SPS30_PM_25",
    184: "SPS30_PM_4", 185: "SPS30_PM_10", 186: "SPS30_PN_05", 187: "SPS30_PN_1", 188: "SPS30_PN_25",
    189: "SPS30_PN_4", 190: "SPS30_PN_10", 191: "SPS30_TPSIZE", 193: "SEN5X_PM_1", 194: "SEN5X_PM_25",
    195: "SEN5X_PM_4", 196: "SEN5X_PM_10", 197: "SEN5X_PN_05", 198: "SEN5X_PN_1", 199: "SEN5X_PN_25",
    200: "SEN5X_PN_4", 201: "SEN5X_PN_10", 202: "SEN5X_TPSIZE", 203: "SEN5X_HUM", 204: "SEN5X_TEMP",
    205: "SEN5X_VOCS_IDX", 206: "SEN5X_NOX_IDX", 207: "SEN5X_VOCS_RAW", 208: "SEN5X_NOX_RAW", 214: "AS7331_UVA",
    215: "AS7331_UVB", 216: "AS7331_UVC", 65: "GB_1A", 64: "GB_1W", 62: "GB_2A", 61: "GB_2W", 68: "GB_3A",
    67: "GB_3W", 79: "GB_TEMP", 80: "GB_HUM", 25: "GR_ADC", 42: "DS_WAT_TEMP", 51: "AS_TEMP", 43: "AS_PH",
    45: "AS_COND", 122: "AS_TDS", 123: "AS_SAL", 46: "AS_SG", 48: "AS_DO", 49: "AS_DO_SAT", 164: "AS_ORP",
    50: "CHRP_MOIS", 71: "EXT_PM_A_1", 72: "EXT_PM_A_25", 73: "EXT_PM_A_10", 99: "EXT_PN_A_03", 100: "EXT_PN_A_05",
    101: "EXT_PN_A_1", 102: "EXT_PN_A_25", 103: "EXT_PN_A_5", 104: "EXT_PN_A_10", 75: "EXT_PM_B_1",
    76: "EXT_PM_B_25", 77: "EXT_PM_B_10", 105: "EXT_PN_B_03", 106: "EXT_PN_B_05", 107: "EXT_PN_B_1",
    108: "EXT_PN_B_25", 109: "EXT_PN_B_5", 110: "EXT_PN_B_10", 96: "DALLAS_TEMP", 224: "EXT_TEMP_SHT35",
    225: "EXT_HUM_SHT35", 98: "EXT_RANGE_DIST", 128: "GPS_FIX", 125: "GPS_LAT", 126: "GPS_LONG", 127: "GPS_ALT",
    129: "GPS_SPEED", 131: "GPS_HDOP", 130: "GPS_SATNUM", 133: "ADC_48_0", 134: "ADC_48_1", 135: "ADC_48_2",
    136: "ADC_48_3", 138: "ADC_49_0", 139: "ADC_49_1", 140: "ADC_49_2", 141: "ADC_49_3", 143: "ADC_4A_0",
    144: "ADC_4A_1", 145: "ADC_4A_2", 146: "ADC_4A_3", 148: "ADC_4B_0", 149: "ADC_4B_1", 150: "ADC_4B_2",
    151: "ADC_4B_3", 158: "SCD30_CO2", 160: "SCD30_TEMP", 161: "SCD30_HUM", 211: "SFA30_TEMP", 210: "SFA30_HUM",
    212: "SFA30_HCHO",
}


def _decode(payload: bytes | str, topic: str = RAW, **context):
    data = payload.encode() if isinstance(payload, str) else payload
    return smartcitizen.decode(data, source=topic, received_ms=RECEIVED, campaign="lyon-2026", **context)


def _sample(name: str, **context):
    sample = load(name)
    return _decode(sample.payload, sample.topic or RAW, **context)


def _by_boot(result) -> dict[str, dict[str, float]]:
    return {b: r.values for _, _, b, r in result.rows}


def _ignored(result) -> dict[int, int]:
    """Ignored counts by sensor id (the keys read ``SHORT (id N): why``)."""
    return {int(k.split("(id ")[1].split(")")[0]): n for k, n in result.ignored.items()}


# ---------------------------------------------------------------- the sensor table
def test_every_id_of_the_firmware_is_mapped_or_ignored_and_every_mapping_names_a_qsec_quantity() -> None:
    assert not smartcitizen.SENSOR_IDS.keys() & smartcitizen.IGNORED.keys()
    assert set(FIRMWARE_IDS) <= smartcitizen.SENSOR_IDS.keys() | smartcitizen.IGNORED.keys()
    assert {ch.quantity for ch in smartcitizen.SENSOR_IDS.values()} <= QUANTITIES.keys()
    assert len({ch[::2] for ch in smartcitizen.SENSOR_IDS.values()}) == len(smartcitizen.SENSOR_IDS)  # 1 id each
    for sid, why in smartcitizen.IGNORED.items():  # an ignored id names the firmware's short title, then why
        assert why.split(": ")[0] == FIRMWARE_IDS[sid]


@pytest.mark.parametrize(("sid", "boot", "quantity", "factor"), [
    (89, "pms5003", "pm1_cf1", 1), (87, "pms5003", "pm2_5_cf1", 1), (88, "pms5003", "pm10_cf1", 1),
    (55, "sht31", "temperature", 1), (56, "sht31", "relative_humidity", 1), (58, "mpl3115a2", "pressure", 10),
    (227, "lps33", "pressure", 10), (113, "ccs811", "tvoc", 1), (158, "scd30", "co2", 1),
    (222, "battery", "battery", 1), (186, "sps30", "nc0_5", 0.01), (202, "sen5x", "typical_particle_size", 0.01),
    (205, "sen5x", "voc_index", 1),
], ids=lambda v: str(v))
def test_the_ids_qsec_maps_go_to_their_model_quantity_and_unit(sid: int, boot: str, quantity: str,
                                                                factor: float) -> None:
    assert smartcitizen.SENSOR_IDS[sid][::2] + (smartcitizen.SENSOR_IDS[sid].factor,) == (boot, quantity, factor)


@pytest.mark.parametrize("sid", [112, 53, 14, 10, 220, 221, 207, 212], ids=lambda s: FIRMWARE_IDS[s])
def test_what_is_not_a_qsec_quantity_is_ignored_with_its_reason(sid: int) -> None:
    result = _decode(f"{{t:2026-03-01T12:00:05Z,{sid}:42,{sid}:null}}")
    assert not result.rows and not result.refused
    assert _ignored(result) == {sid: 1}  # the null one is no reading at all
    (name,) = result.ignored
    assert name.startswith(f"{FIRMWARE_IDS[sid]} (id {sid}): ") and len(name) > 30


# ---------------------------------------------------------------- the raw form
def test_an_sck21_message_gives_one_record_per_sensor_pressure_in_hpa_and_the_cf1_pm_words() -> None:
    result = _sample("smartcitizen_raw.txt")
    assert _by_boot(result) == {
        "smartcitizen-sht31": {"temperature": 18.3, "relative_humidity": 61.2},
        "smartcitizen-mpl3115a2": {"pressure": 1012.1},  # 101.21 kPa
        "smartcitizen-ccs811": {"tvoc": 23},
        "smartcitizen-pms5003": {"pm1_cf1": 6, "pm2_5_cf1": 9, "pm10_cf1": 12},  # Sck_PM reads frame words 1-3
    }
    assert {r.t for *_, r in result.rows} == {T0} and not result.refused
    assert _ignored(result) == {10: 1, 14: 1, 53: 1, 112: 1}  # battery %, light, noise, eCO2


def test_the_current_firmware_message_gives_the_lps33_pressure_and_the_particle_counts() -> None:
    result = _sample("smartcitizen_raw_sck22.txt")
    rows = _by_boot(result)
    assert rows["smartcitizen-lps33"] == {"pressure": pytest.approx(1014.3)}
    assert rows["smartcitizen-pms5003"] == {"pm1_cf1": 4, "pm2_5_cf1": 6, "pm10_cf1": 7, "pn0_3": 903, "pn0_5": 262,
                                            "pn1": 41, "pn2_5": 4, "pn5": 1, "pn10": 0}
    assert set(rows) == {"smartcitizen-sht31", "smartcitizen-lps33", "smartcitizen-pms5003"} and not result.refused
    assert _ignored(result) == {10: 1, 221: 1, 220: 1, 14: 1, 53: 1}


def test_a_sen5x_kit_has_its_number_concentrations_and_particle_size_back_in_qsec_units() -> None:
    result = _sample("smartcitizen_raw_sen5x.txt")
    assert _by_boot(result)["smartcitizen-sen5x"] == {
        "pm1": 3.2, "pm2_5": 4.1, "pm4": 4.5, "pm10": 4.7,
        "nc0_5": 21.5, "nc1": 25.4, "nc2_5": 25.6, "nc4": 25.6, "nc10": 25.7,  # sent in #/0.1 L, stored in #/cm³
        "typical_particle_size": 0.61,  # the firmware multiplies it by 100 too
        "relative_humidity": 45.12, "temperature": 22.35, "voc_index": 101, "nox_index": 1}
    assert not result.refused and _ignored(result)[207] == _ignored(result)[208] == 1


def test_auxiliary_boards_give_battery_voltage_two_pm_sensors_an_external_sht31_gps_and_the_scd30() -> None:
    rows = _by_boot(_sample("smartcitizen_raw_aux.txt"))
    assert rows["smartcitizen-battery"] == {"battery": 3.92}
    assert rows["smartcitizen-pms5003-a"] == {"pm1_cf1": 5, "pm2_5_cf1": 8, "pm10_cf1": 11}
    assert rows["smartcitizen-pms5003-b"] == {"pm1_cf1": 5, "pm2_5_cf1": 9, "pm10_cf1": 12}
    assert rows["smartcitizen-sht31-ext"] == {"temperature": 17.8, "relative_humidity": 63.4}
    assert rows["smartcitizen-gps"] == {"latitude": 41.39687, "longitude": 2.19456, "altitude": 54.2,
                                        "fix_quality": 1, "speed": 0.35, "hdop": 0.9, "satellites": 9}
    assert rows["smartcitizen-scd30"] == {"co2": 612, "temperature": 19.1, "relative_humidity": 58.0}


def test_the_raw_form_as_the_platform_documents_it_one_pair_a_line_is_read() -> None:
    result = _sample("smartcitizen_raw_documented.txt")
    assert _by_boot(result) == {"smartcitizen-sht31": {"temperature": 18.3, "relative_humidity": 61.2}}


def test_a_null_or_nan_reading_is_no_reading() -> None:
    result = _decode("{t:2026-03-01T12:00:05Z,55:18.3,56:null,89:nan,87:null,88:12}")
    assert _by_boot(result) == {"smartcitizen-sht31": {"temperature": 18.3},
                                "smartcitizen-pms5003": {"pm10_cf1": 12}}
    assert not _decode("{t:2026-03-01T12:00:05Z,55:null,56:null}").rows


def test_the_device_id_never_shows_the_token() -> None:
    result = _sample("smartcitizen_raw.txt")
    expected = "sck-" + hashlib.sha256(b"a1b2c3").hexdigest()[:12]
    assert {d for _, d, _, _ in result.rows} == {expected}
    named = _sample("smartcitizen_raw.txt", devices={"a1b2c3": "SCK Mairie"})
    assert {d for _, d, _, _ in named.rows} == {"sck-mairie"}


# ---------------------------------------------------------------- the JSON form
def test_both_forms_of_one_reading_give_the_same_records() -> None:
    raw, as_json = _sample("smartcitizen_raw.txt"), _sample("smartcitizen_readings_firmware.json")
    assert not as_json.refused
    assert [(b, r) for *_, b, r in as_json.rows] == [(b, r) for *_, b, r in raw.rows if b != "smartcitizen-ccs811"]


def test_the_documented_json_form_takes_zoneless_and_offset_times_and_values_written_as_strings() -> None:
    result = _sample("smartcitizen_platform.json")
    rows = {(b, r.t): r.values for _, _, b, r in result.rows}
    assert rows == {("smartcitizen-sht31", T0 + 60_000): {"temperature": 18.4, "relative_humidity": 61.0},
                    ("smartcitizen-scd30", T0 + 60_000): {"co2": 612, "temperature": 19.1, "relative_humidity": 58.0},
                    ("smartcitizen-sht31", T0 + 120_000): {"temperature": 18.5, "relative_humidity": 60.8}}
    (dead,) = result.refused  # platform sensor 3 (a DHT22, SCK 1.x) is in neither table
    assert (dead.reason, dead.boot, dead.seq) == ("unknown_quantity", "smartcitizen-id-3", T0 + 120_000)


def test_each_broken_reading_of_a_json_message_is_refused_with_its_reason_and_the_good_ones_are_kept() -> None:
    result = _sample("smartcitizen_bad_readings.json")
    assert [(b, r.t, r.values) for _, _, b, r in result.rows] == [
        ("smartcitizen-sht31", T0, {"temperature": 18.3, "relative_humidity": 61.2}),
        ("smartcitizen-pms5003", T0 + 180_000, {"pm1_cf1": 6, "pm2_5_cf1": 9, "pm10_cf1": 12})]
    assert [(d.reason, d.boot, d.seq) for d in result.refused] == [
        ("bad_time", None, None),  # "2026-03-01": a date, no time of day
        ("bad_time", None, None),  # 2000-01-01: the kit's clock was not set
        ("bad_time", None, None),  # an epoch number
        ("bad_time", None, None),  # 30 February
        ("future_time", "smartcitizen-sht31", 1_803_902_405_000),
        ("bad_schema", "smartcitizen-sht31", T0 + 180_000),  # "err": the other sensors of that reading are kept
        ("bad_schema", "smartcitizen-mpl3115a2", T0 + 240_000),  # id 58 twice
        ("bad_schema", "smartcitizen-id-temp", T0 + 300_000),  # an SCK 1.x sensor key, not an id
        ("bad_schema", "smartcitizen-pms5003", T0 + 360_000),  # no "value"
        ("out_of_range", "smartcitizen-sht31", T0 + 420_000),  # 140 %
        ("bad_schema", None, None)]  # no "sensors" list
    assert "before 2018-01-01" in result.refused[1].detail and "clock" in result.refused[1].detail
    assert {d.raw for d in result.refused} == {load("smartcitizen_bad_readings.json").payload.decode()}


@pytest.mark.parametrize(("when", "t"), [
    ("2026-03-01T12:00:05Z", T0), ("2026-03-01T13:00:05+01:00", T0), ("2026-03-01T07:00:05-0500", T0),
    ("2026-03-01 12:00:05", T0), ("2026-03-01T12:00:05.250Z", T0 + 250), ("2026-03-01T12:00Z", T0 - 5_000),
], ids=["Z", "offset", "offset-without-colon", "no-zone-is-utc", "milliseconds", "no-seconds"])
def test_recorded_at_is_read_with_its_zone_and_as_utc_without_one(when: str, t: int) -> None:
    result = _decode(f'{{"data":[{{"recorded_at":"{when}","sensors":[{{"id":55,"value":18.3}}]}}]}}', JSON)
    assert [r.t for *_, r in result.rows] == [t]


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(("payload", "topic", "reason"), [
    ("hello", RAW, "bad_json"),
    ("{t:2026-03-01T12:00:05Z,55}", RAW, "bad_schema"),
    ("{t:2026-03-01T12:00:05Z,temp:18.3}", RAW, "bad_schema"),
    ("{55:18.3}", RAW, "bad_time"),
    ("{t:2026-03-01T12:00:05Z,t:2026-03-01T12:01:05Z,55:18.3}", RAW, "bad_schema"),
    ("{t:20-30-01T00:00:05Z,55:18.3}", RAW, "bad_time"),
    ("{t:2000-01-01T00:00:05Z,55:18.3}", RAW, "bad_time"),
    ("{t:0,55:18.3}", RAW, "bad_time"),
    ('{"data":[{"recorded_at":"2026-03-01T12:00:05Z","sensors":[{"id":55,"value":18.3}]}]}', RAW, "bad_schema"),
    ("{t:2026-03-01T12:00:05Z,55:18.3}", JSON, "bad_json"),
    ('{"t":"2026-03-01T12:00:05Z","55":18.3}', JSON, "bad_schema"),
    ('{"data":[]}', JSON, "bad_schema"),
    ("{t:2026-03-01T12:00:05Z,55:18.3}", "sck/a1b2c3", "bad_topic"),
    ("{t:2026-03-01T12:00:05Z,55:18.3}", "device/sck//readings/raw", "bad_topic"),
], ids=["not-a-payload", "pair-without-value", "sensor-key-not-id", "no-time", "two-times",
        "time-of-an-unset-clock", "before-2018", "time-zero", "json-on-the-raw-topic", "raw-on-the-json-topic",
        "json-without-data", "json-with-no-reading", "foreign-topic", "no-token"])
def test_a_message_that_cannot_be_read_is_refused_whole_with_its_reason(payload: str, topic: str,
                                                                        reason: str) -> None:
    result = _decode(payload, topic)
    assert not result.rows and [(d.reason, d.seq, d.boot) for d in result.refused] == [(reason, None, None)]
    assert result.refused[0].raw == payload


def test_a_payload_over_the_size_limit_is_refused() -> None:
    result = _sample("smartcitizen_raw.txt", limits=contract.Limits(max_payload_bytes=64))
    assert [d.reason for d in result.refused] == ["payload_too_large"] and not result.rows


def test_a_value_that_is_not_a_number_refuses_its_sensor_only() -> None:
    result = _decode("{t:2026-03-01T12:00:05Z,55:18.3,56:err,87:9,88:12,89:6}")
    assert [b for _, _, b, _ in result.rows] == ["smartcitizen-pms5003"]
    assert [(d.boot, d.reason, d.seq) for d in result.refused] == [("smartcitizen-sht31", "bad_schema", T0)]


def test_an_id_in_neither_table_refuses_its_record_and_the_rest_is_kept() -> None:
    result = _decode("{t:2026-03-01T12:00:05Z,55:18.3,56:61.2,250:3}")
    assert [b for _, _, b, _ in result.rows] == ["smartcitizen-sht31"]
    assert [(d.reason, d.boot, d.seq) for d in result.refused] == [("unknown_quantity", "smartcitizen-id-250", T0)]


def test_a_reading_before_the_campaign_or_from_the_future_is_refused_by_the_contract() -> None:
    early = _decode("{t:2026-03-01T12:00:05Z,55:18.3}", not_before_ms=T0 + 1)
    future = _decode("{t:2026-09-21T16:00:00Z,55:18.3}")  # RECEIVED is 2026-09-21T14:13:20Z
    assert [d.reason for d in early.refused] == ["before_campaign"]
    assert [d.reason for d in future.refused] == ["future_time"]
