"""SenML (RFC 8428, RFC 8798, RFC 9100) packs, JSON and CBOR: the RFC's examples, base fields, units, refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
import pytest
from harness import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from ingest import deadletter as dl
from ingest import decode as ingest_decode
from ingest.adapters import senml
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract
from qsec.quantities import QUANTITIES

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000
TOPIC = "senml/lyon-2026/kit-42"
URN_OW = "senml-urn-dev-ow-10e2073a01080063"  # boot of the 1-wire sensor of the RFC's examples
LABELS = {name: key for key, name in senml.CBOR_LABELS.items()}


def _sample(name: str) -> bytes:
    """A sample payload: a JSON pack without its ``//`` comment lines, or a ``.hex`` dump (``#`` comments)."""
    lines = (SAMPLES / name).read_text().splitlines()
    if name.endswith(".hex"):
        return bytes.fromhex("".join("".join(line.split()[1:]) for line in lines if not line.startswith("#")))
    return "\n".join(line for line in lines if not line.startswith("//")).encode()


def _decode(pack: object, received_ms: int = RECEIVED, **context):
    payload = pack if isinstance(pack, bytes) else json.dumps(pack).encode()
    return senml.decode(payload, source=TOPIC, received_ms=received_ms, **context)


def _cbor(pack: list[dict]) -> bytes:
    return cbor2.dumps([{LABELS.get(k, k): v for k, v in rec.items()} for rec in pack])


def _rows(result) -> dict[tuple[str, int], dict[str, float]]:
    return {(b, r.t): dict(r.values) for _, _, b, r in result.rows}


def _refused(result) -> list[tuple[str, str | None, int | None]]:
    return [(d.reason, d.boot, d.seq) for d in result.refused]


# ---------------------------------------------------------------- the RFC's own examples (RFC 8428 §5.1, §6)
def test_rfc_5_1_1_a_single_data_point_is_a_temperature_taken_now() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.1_single_data_point.json"))
    assert _rows(result) == {(URN_OW, RECEIVED): {"temperature": 23.1}}
    assert not result.refused
    assert {(c, d) for c, d, _, _ in result.rows} == {("lyon-2026", "kit-42")}


def test_rfc_5_1_2_voltage_and_current_are_no_qsec_quantity_and_are_refused_as_one_record() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.2_multiple_data_points.json"))
    assert not result.rows
    (dead,) = result.refused
    assert _refused(result) == [("unknown_quantity", URN_OW, RECEIVED)]
    assert "'voltage' is not a known quantity" in dead.detail
    assert json.loads(dead.raw)[1] == {"n": "current", "u": "A", "v": 1.2}


def test_rfc_5_1_2_a_version_5_pack_with_relative_offsets_from_an_absolute_base_time() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.2_multiple_data_points_timed.json"))
    t0 = 1_276_020_076_001
    boot = "senml-urn-dev-ow-10e2073a0108006"
    assert not result.rows
    assert _refused(result) == [("unknown_quantity", boot, t0 + dt * 1000) for dt in (0, -5, -4, -3, -2, -1)]


def test_rfc_5_1_2_a_sensml_stream_of_humidity_named_by_its_sensor_and_unit() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.2_sensml_stream.json"))
    t0 = 1_320_067_464_000
    assert _rows(result) == {
        (URN_OW, t0 + s * 1000): {"relative_humidity": v}
        for s, v in [(0, 21.2), (10, 21.3), (20, 21.4), (30, 21.4), (40, 21.5), (50, 21.5), (60, 21.5),
                     (70, 21.6), (80, 21.7)]}
    assert not result.refused


def test_rfc_5_1_3_humidity_and_position_share_records_and_the_battery_level_is_refused_not_dropped() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.3_multiple_measurements.json"))
    t0 = 1_320_067_464_000
    rows = _rows(result)
    assert sorted(t for _, t in rows) == [t0, t0 + 60_000, t0 + 120_000, t0 + 180_000]
    assert rows[(URN_OW, t0)] == {"relative_humidity": 20, "longitude": 24.30621, "latitude": 60.07965}
    assert rows[(URN_OW, t0 + 180_000)] == {"relative_humidity": 21.2, "longitude": 24.30628, "latitude": 60.07967}
    assert all(r.seq == r.t and r.sensor == "senml" for *_, r in result.rows)
    # "%EL" (remaining battery energy) names no qsec quantity: its record is refused, not dropped
    (dead,) = result.refused
    assert _refused(result) == [("unknown_quantity", URN_OW, t0 + 150_000)]
    assert dead.topic == f"senml:lyon-2026:{TOPIC}" and "'%EL'" in dead.detail


def test_rfc_5_1_4_the_resolved_form_gives_the_same_records_as_the_pack_it_resolves() -> None:
    packed = _decode(_sample("senml_rfc8428_5.1.3_multiple_measurements.json"))
    resolved = _decode(_sample("senml_rfc8428_5.1.4_resolved_data.json"))
    assert resolved.rows == packed.rows
    assert _refused(resolved) == _refused(packed)


def test_rfc_5_1_5_string_boolean_and_data_values_are_set_aside_and_the_number_is_stored() -> None:
    result = _decode(_sample("senml_rfc8428_5.1.5_multiple_data_types.json"))
    boot = "senml-urn-dev-ow-10e2073a01080063"
    assert _rows(result) == {(boot, RECEIVED): {"temperature": 23.1}}
    (dead,) = result.refused
    assert (dead.reason, dead.boot, dead.seq) == ("bad_schema", boot, None)
    for what in ("'urn:dev:ow:10e2073a01080063:label'", "string value (vs)", "boolean value (vb)",
                 "data value (vd)", "nfv-reader"):
        assert what in dead.detail
    assert dead.detail.startswith("3 SenML record(s) set aside")


def test_rfc_5_1_6_a_collection_of_two_devices_gives_one_record_per_device(tmp_path: Path) -> None:
    payload = _sample("senml_rfc8428_5.1.6_collection_of_resources.json")
    result = _decode(payload)
    t = 1_320_078_429_000
    assert _rows(result) == {("senml-2001-db8-2", t): {"temperature": 25.2, "relative_humidity": 30},
                             ("senml-2001-db8-1", t): {"temperature": 12.3, "relative_humidity": 67}}
    assert not result.refused
    again = _decode(payload, received_ms=RECEIVED + 5_000)  # delivered twice: the same keys, stored once
    store = Store(tmp_path / "qsec.duckdb")
    try:
        first, _ = store.write(result.rows)
        repeat, _ = store.write(again.rows)
    finally:
        store.close()
    assert (first.inserted, repeat.inserted) == (2, 0)


def test_rfc_6_the_cbor_dump_decodes_as_its_json_twin_and_is_set_aside_in_json() -> None:
    cbor = _decode(_sample("senml_rfc8428_6_cbor.hex"))
    twin = _decode(_sample("senml_rfc8428_5.1.2_multiple_data_points_timed.json"))
    assert _refused(cbor) == _refused(twin) and not cbor.rows
    # the dead letter keeps the pack in its JSON form (RFC 8428 §6: labels of Table 4), equal to the RFC's JSON
    # but for the last record's time: the CBOR dump writes t 0 where the JSON leaves it out (both mean 0, §4.5.3)
    expected = json.loads(_sample("senml_rfc8428_5.1.2_multiple_data_points_timed.json"))
    expected[-1]["t"] = 0
    assert json.loads(cbor.refused[0].raw) == expected


# ---------------------------------------------------------------- base fields and resolution (RFC 8428 §4.1-4.6)
def test_the_kit_sample_maps_names_and_units_to_qsec_quantities_in_qsec_units() -> None:
    result = _decode((SAMPLES / "senml_kit_air_quality.json").read_bytes())
    boot = "senml-urn-dev-mac-0024befffe804ff1"
    assert _rows(result) == {
        (boot, 1_772_366_400_000): {"pm2_5": 7.5, "pm10": 12.1, "temperature": 18.2, "relative_humidity": 61.4,
                                    "pressure": pytest.approx(1013.25), "co2": 612},
        (boot, 1_772_366_460_000): {"pm2_5": 7.9, "temperature": pytest.approx(18.3)}}
    assert not result.refused


def test_base_fields_carry_over_until_given_again_and_are_added_to_the_record_fields() -> None:
    result = _decode([
        {"bn": "kit/", "bt": 1_772_366_400, "bu": "Pa", "bv": 100_000, "n": "pressure", "v": 1325},
        {"n": "pressure", "t": 10, "v": 0},  # bn, bt, bu and bv all still apply
        {"n": "pressure", "t": 20, "u": "hPa", "bv": 1000, "v": 5},  # a new bv; u overrides bu here only
        {"n": "pressure", "t": 30, "v": 100_000},  # back to bu Pa, with the new bv: 101000 Pa
        {"bn": "kit-b/", "n": "temp", "u": "Cel", "t": 30, "bv": 0, "v": 19.5},  # a new base name and value
    ])
    t0 = 1_772_366_400_000
    assert _rows(result) == {("senml-kit", t0): {"pressure": pytest.approx(1013.25)},
                             ("senml-kit", t0 + 10_000): {"pressure": pytest.approx(1000)},
                             ("senml-kit", t0 + 20_000): {"pressure": pytest.approx(1005)},
                             ("senml-kit", t0 + 30_000): {"pressure": pytest.approx(1010)},
                             ("senml-kit-b", t0 + 30_000): {"temperature": 19.5}}
    assert not result.refused


def test_a_time_below_2_to_the_28_is_relative_to_receipt_and_a_missing_time_is_now() -> None:
    result = _decode([{"bn": "kit/", "n": "co2", "u": "ppm", "v": 500},
                      {"n": "co2", "u": "ppm", "t": -30, "v": 480},
                      {"bt": -60, "n": "co2", "u": "ppm", "t": 15, "v": 470}])
    assert sorted(r.t for *_, r in result.rows) == [RECEIVED - 45_000, RECEIVED - 30_000, RECEIVED]


def test_base_time_and_time_add_up_before_the_2_to_the_28_rule_is_applied() -> None:
    # bt + t = 2**28 is an absolute time (1978); one second less is relative: 8.5 years after receipt
    result = _decode([{"bt": 2**28 - 10, "n": "co2", "u": "ppm", "t": 10, "v": 480},
                      {"n": "co2", "u": "ppm", "t": 9, "v": 470}])
    assert [r.t for *_, r in result.rows] == [2**28 * 1000]
    assert [(d.reason, d.seq) for d in result.refused] == [("future_time", RECEIVED + (2**28 - 1) * 1000)]


def test_a_record_of_base_fields_only_sets_bases_and_is_neither_stored_nor_refused() -> None:
    result = _decode([{"bn": "urn:dev:ow:10e2073a01080063:", "bt": 1_772_366_400, "bver": 10},  # RFC 8428 §5.1.7
                      {"n": "temp", "u": "Cel", "v": 23.1}])
    assert _rows(result) == {(URN_OW, 1_772_366_400_000): {"temperature": 23.1}} and not result.refused


def test_labels_it_does_not_know_and_update_times_and_sums_beside_a_value_are_ignored() -> None:
    result = _decode([{"bn": "kit:", "bct": "60", "n": "temp", "u": "Cel", "v": 20.5, "ut": 60, "s": 1234.5,
                       "ct": "text/plain", "bs": 10}])
    assert [r.values for *_, r in result.rows] == [{"temperature": 20.5}] and not result.refused


def test_a_source_named_like_the_topic_device_keeps_the_plain_senml_boot() -> None:
    result = _decode([{"bn": "Kit-42/", "n": "pm2_5", "u": "ug/m3", "v": 4}, {"n": "pm10", "u": "ug/m3", "v": 6}])
    assert [(b, r.values) for _, _, b, r in result.rows] == [("senml", {"pm2_5": 4, "pm10": 6})]


def test_a_long_source_name_gives_a_bounded_boot_that_stays_distinct() -> None:
    long = "urn:dev:ops:32473-Refrigerator-Compressor-Model-Number-5002-Serial-000000000"
    result = _decode([{"bn": f"{long}1:", "n": "temp", "u": "Cel", "v": 4}, {"bn": f"{long}2:", "n": "temp",
                                                                            "u": "Cel", "v": 5}])
    boots = [b for _, _, b, _ in result.rows]
    assert len(set(boots)) == 2 and all(contract.BOOT_PATTERN.match(b) and len(b) <= 64 for b in boots)


# ---------------------------------------------------------------- units (RFC 8428 §12.1, RFC 8798)
@pytest.mark.parametrize(("name", "unit", "value", "quantity", "expected"), [
    ("temp", "Cel", 21.5, "temperature", 21.5),
    ("temp", "K", 294.65, "temperature", 21.5),
    ("humidity", "%RH", 55.0, "relative_humidity", 55.0),
    ("humidity", "/100", 55.0, "relative_humidity", 55.0),  # RFC 8798 percent
    ("humidity", "/", 0.55, "relative_humidity", 55.0),  # ratio
    ("humidity", "%", 0.55, "relative_humidity", 55.0),  # RFC 8428 §12.1 note 2: "%" is a ratio too
    ("co2", "ppm", 612, "co2", 612),
    ("co2", "/", 0.000612, "co2", 612),
    ("tvoc", "ppb", 250, "tvoc", 250),
    ("tvoc", "ppm", 0.25, "tvoc", 250),
    ("pm2.5", "ug/m3", 7.5, "pm2_5", 7.5),
    ("pm10", "kg/m3", 1.21e-8, "pm10", 12.1),
    ("hcho", "ug/m3", 30, "hcho", 0.03),
    ("pressure", "Pa", 101325, "pressure", 1013.25),
    ("pressure", "hPa", 1013.25, "pressure", 1013.25),
    ("lat", "lat", 45.75, "latitude", 45.75),
    ("lon", "lon", 4.85, "longitude", 4.85),
    ("course", "deg", 270, "course", 270),
    ("altitude", "m", 170, "altitude", 170),
    ("altitude", "km", 0.17, "altitude", 170),
    ("altitude", "cm", 17000, "altitude", 170),
    ("speed", "m/s", 4.5, "speed", 4.5),
    ("speed", "km/h", 16.2, "speed", 4.5),
    ("battery", "V", 3.7, "battery", 3.7),
    ("battery", "mV", 3700, "battery", 3.7),
    ("satellites", "count", 9, "satellites", 9),
    ("pm2_5", None, 7.5, "pm2_5", 7.5),  # no unit: read in qsec's unit
], ids=lambda x: str(x))
def test_each_senml_unit_a_quantity_accepts_is_converted_into_qsec_units(name: str, unit: str | None, value: float,
                                                                          quantity: str, expected: float) -> None:
    rec = {"bn": "kit:", "n": name, "v": value, **({"u": unit} if unit else {})}
    result = _decode([rec])
    assert not result.refused, result.refused
    assert result.rows[0][3].values == {quantity: pytest.approx(expected, rel=1e-12)}


def test_a_pack_by_unit_only_takes_the_quantity_from_the_unit_of_each_registry() -> None:
    result = _decode([{"bn": "urn:dev:ow:10e2073a01080063", "u": "K", "v": 293.15},
                      {"u": "hPa", "v": 1000}, {"u": "lat", "v": 45.7}, {"u": "lon", "v": 4.8}])
    assert _rows(result) == {(URN_OW, RECEIVED): {"temperature": pytest.approx(20), "pressure": 1000,
                                                  "latitude": 45.7, "longitude": 4.8}}


def test_every_unit_named_as_accepted_is_a_registered_senml_unit() -> None:
    for quantity, units in senml.ACCEPTED_UNITS.items():
        for unit in units:
            assert unit in senml.PRIMARY_UNITS or unit in senml.SECONDARY_UNITS, (quantity, unit)
    assert senml.ACCEPTED_UNITS["pressure"] == ("Pa", "hPa")
    assert senml.ACCEPTED_UNITS["voc_index"] == ()  # a relative index takes no unit


# ---------------------------------------------------------------- versions (RFC 8428 §4.4, RFC 9100)
@pytest.mark.parametrize("bver", [5, 10, 26], ids=["older", "base", "secondary-units"])
def test_versions_up_to_10_and_the_secondary_units_feature_are_read(bver: int) -> None:
    result = _decode([{"bver": bver, "bn": "kit:", "n": "co2", "u": "ppm", "v": 612}])
    assert [r.values for *_, r in result.rows] == [{"co2": 612}]


@pytest.mark.parametrize(("bver", "reason"), [(11, "wrong_version"), (42, "wrong_version"), (27, "wrong_version"),
                                              (-1, "bad_schema"), ("10", "bad_schema"), (10.5, "bad_schema")])
def test_a_version_it_does_not_read_refuses_the_whole_pack(bver: object, reason: str) -> None:
    result = _decode([{"bver": bver, "bn": "kit:", "n": "co2", "u": "ppm", "v": 612}])
    assert not result.rows and _refused(result) == [(reason, None, None)]


# ---------------------------------------------------------------- bad samples, each dead-lettered with its reason
BAD_SAMPLES = [
    # (sample, reason, detail fragment, whole pack refused)
    ("senml_bad_version_11.json", "wrong_version", "bver=11", True),
    ("senml_bad_versions_mixed.json", "bad_schema", "mixes [5, 10]", True),
    ("senml_bad_must_understand.json", "bad_schema", "['calib_'] must be understood", True),
    ("senml_bad_text_time.json", "bad_time", "field t must be a number", True),
    ("senml_bad_not_a_pack.json", "bad_schema", "non-empty array", True),
    ("senml_bad_cbor_truncated.hex", "bad_json", "not a valid SenML CBOR pack", True),
    ("senml_bad_name.json", "bad_schema", "'urn:dev:mac:0024befffe804ff1:pm 2.5' breaks RFC 8428 §4.5.1", False),
    ("senml_bad_unit.json", "bad_schema", "unit 'Far' for temperature (it is not in the SenML units registries", False),
    ("senml_bad_percent_ratio.json", "out_of_range", "'%' is a ratio from 0 to 1, not a percentage", False),
    ("senml_bad_two_values.json", "bad_schema", "carries ['v', 'vs']: exactly one value", False),
    ("senml_bad_no_value.json", "bad_schema", "has no value (v, vs, vb, vd or s", False),
    ("senml_refused_values.json", "unknown_quantity", "'noise' is not a known quantity", False),
]


@pytest.mark.parametrize(("sample", "reason", "detail", "whole"), BAD_SAMPLES, ids=[s[0] for s in BAD_SAMPLES])
def test_each_bad_sample_is_dead_lettered_with_its_reason(tmp_path: Path, sample: str, reason: str, detail: str,
                                                          whole: bool) -> None:
    result = _decode(_sample(sample))
    matching = [d for d in result.refused if d.reason == reason and detail in d.detail]
    assert matching, [(d.reason, d.detail) for d in result.refused]
    if whole:
        assert not result.rows and [(d.boot, d.seq) for d in result.refused] == [(None, None)]
    store = Store(tmp_path / "qsec.duckdb")
    try:
        store.write(result.rows, result.refused, received_ms=RECEIVED)
        listed = dl.list_dead_letters(store)
    finally:
        store.close()
    assert {(d.reason, d.detail) for d in listed} == {(d.reason, d.detail) for d in result.refused}


def test_a_bad_name_or_no_value_is_set_aside_alone_and_the_rest_of_its_record_is_stored() -> None:
    for sample, kept in (("senml_bad_name.json", {"temperature": 18.2}),
                         ("senml_bad_no_value.json", {"temperature": 18.2})):
        result = _decode(_sample(sample))
        assert [r.values for *_, r in result.rows] == [kept]
        assert [(d.reason, d.seq) for d in result.refused] == [("bad_schema", None)]


def test_records_qsec_cannot_store_are_refused_with_their_reason() -> None:
    result = _decode(_sample("senml_refused_values.json"))
    t0 = 1_772_366_400_000
    boot = "senml-urn-dev-mac-0024befffe804ff1"
    assert _rows(result) == {(boot, t0): {"pm2_5": 7.5}}
    by_seq = {d.seq: d for d in result.refused}
    assert by_seq[t0 + 30_000].reason == "unknown_quantity"
    assert by_seq[t0 + 40_000].reason == "bad_schema" and "unit 'Far' for temperature" in by_seq[t0 + 40_000].detail
    aside = by_seq[None]  # the boolean and the string value, set aside together
    assert aside.reason == "bad_schema" and "boolean value (vb)" in aside.detail and "string value (vs)" in aside.detail


def test_an_entry_refused_refuses_its_whole_record_so_a_reprocessing_stores_it_complete() -> None:
    result = _decode([{"bn": "k:", "bt": 1_772_366_400, "n": "pm10", "u": "ug/m3", "v": 9},
                      {"n": "pm2.5", "u": "ug/m3", "v": 5000}])
    assert not result.rows
    (dead,) = result.refused
    assert dead.reason == "out_of_range" and "pm2_5=5000.0" in dead.detail


@pytest.mark.parametrize(("pack", "reason", "detail"), [
    ([{"n": "temp", "u": "Cel", "v": "21.5"}], "bad_schema", "v must be a number"),
    ([{"n": "temp", "u": "Cel", "v": 21.5, "ut": "soon"}], "bad_schema", "ut must be a number"),
    ([{"n": "pm2_5", "u": "Cel", "v": 5}], "bad_schema", "unit 'Cel' for pm2_5: accepted units are kg/m3, ug/m3"),
    ([{"n": "temp", "u": "degC", "v": 5}], "bad_schema", "not in the SenML units registries"),
    ([{"n": "pressure", "u": "mbar", "v": 1013}], "bad_schema", "accepted units are Pa, hPa"),
    ([{"n": "temp", "u": "Cel", "v": 5}, {"n": "temp", "u": "Cel", "v": 6}], "bad_schema", "temperature twice"),
    ([{"n": "soil_temp", "u": "Cel", "v": 5}], "unknown_quantity", "'soil_temp' is not a known quantity"),
    ([{"bn": "sensor-7", "u": "%EL", "v": 98}], "unknown_quantity", "names a sensor, and its unit '%EL'"),
], ids=["text-value", "text-update-time", "unit-of-another-quantity", "unregistered-unit", "unregistered-mbar",
        "one-quantity-twice", "unknown-name", "unit-tells-nothing"])
def test_a_measurement_it_cannot_store_refuses_its_record_with_a_reason(pack: list, reason: str, detail: str) -> None:
    result = _decode(pack)
    assert not result.rows
    (dead,) = result.refused
    assert (dead.reason, dead.seq) == (reason, RECEIVED) and detail in dead.detail


@pytest.mark.parametrize(("pack", "why"), [
    ([{"n": "temp", "u": "Cel", "s": 1000}], "a sum (s) alone"),
    ([{"u": "Cel", "v": 21}], "breaks RFC 8428 §4.5.1"),  # no name at all
    ([{"n": "-temp", "u": "Cel", "v": 21}], "breaks RFC 8428 §4.5.1"),
    ([{}], "has no value"),
], ids=["sum-only", "no-name", "bad-first-character", "empty-record"])
def test_a_record_that_can_never_be_a_number_is_set_aside_with_a_reason(pack: list, why: str) -> None:
    result = _decode(pack)
    assert not result.rows
    (dead,) = result.refused
    assert (dead.reason, dead.seq) == ("bad_schema", None) and why in dead.detail


def test_many_records_set_aside_make_one_dead_letter_per_source() -> None:
    result = _decode([{"bn": "kit:", "n": f"label{i}", "vs": "x"} for i in range(40)])
    (dead,) = result.refused
    assert dead.detail.startswith("40 SenML record(s) set aside") and dead.detail.endswith("and 35 more")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "bad_json"),
    (b"{}", "bad_schema"),
    (b"[]", "bad_schema"),
    (b"\x80", "bad_schema"),  # an empty CBOR array
    (b"[1]", "bad_schema"),
    ("[{\"n\":\"temp\",\"v\":1}]".encode("utf-16"), "bad_json"),
    (b'[{"n":"temp","v":1,"v":2}]', "bad_json"),  # a label given twice
    (json.dumps([{"n": "temp", "v": 1, "bt": 1e300}]).encode(), "bad_time"),
    (json.dumps([{"n": "temp", "v": 1, "bs": "x"}]).encode(), "bad_schema"),
    (json.dumps([{"n": 5, "v": 1}]).encode(), "bad_schema"),
    (b"[" + b'{"n":"temp","v":1},' * 30_000 + b'{"n":"temp","v":1}]', "payload_too_large"),
], ids=["not-json", "object", "empty", "empty-cbor", "not-a-record", "utf-16", "duplicate-label", "far-future-base",
        "text-base-sum", "number-name", "too-large"])
def test_a_pack_that_cannot_be_read_is_refused_whole(payload: bytes, reason: str) -> None:
    result = _decode(payload)
    assert not result.rows
    (dead,) = result.refused
    assert dead.reason == reason and dead.seq is None and dead.boot is None and dead.device == "kit-42"


def test_a_time_ahead_of_the_receiver_is_refused_as_future_time() -> None:
    result = _decode([{"n": "co2", "u": "ppm", "v": 500, "t": RECEIVED / 1000 + 3600}])
    assert [d.reason for d in result.refused] == ["future_time"]


def test_the_sensor_model_comes_from_the_context() -> None:
    result = _decode([{"n": "co2", "u": "ppm", "v": 500}], sensor="sensirion-scd30")
    assert [r.sensor for *_, r in result.rows] == ["sensirion-scd30"]
    assert contract.check_record(result.rows[0][3].to_json()) == result.rows[0][3]


# ---------------------------------------------------------------- CBOR (RFC 8428 §6)
def test_a_cbor_pack_gives_exactly_the_records_of_its_json_twin() -> None:
    cbor = _decode(_sample("senml_kit_air_quality_cbor.hex"))
    twin = _decode((SAMPLES / "senml_kit_air_quality.json").read_bytes())
    assert cbor.rows == twin.rows and not cbor.refused


def test_cbor_decimal_fractions_half_floats_and_the_self_described_tag_are_read() -> None:
    # [{0: "temp", 1: "Cel", 2: 4([-1, 215])}]: 21.5 as a decimal fraction (CBOR tag 4)
    decfrac = bytes.fromhex("81a3006474656d70016343656c02c4822018d7")
    assert [r.values for *_, r in _decode(decfrac).rows] == [{"temperature": 21.5}]
    assert [r.values for *_, r in _decode(b"\xd9\xd9\xf7" + decfrac).rows] == [{"temperature": 21.5}]
    half = bytes.fromhex("81a3006474656d70016343656c02f94d60")  # 21.5 as a half float
    assert [r.values for *_, r in _decode(half).rows] == [{"temperature": 21.5}]


def test_cbor_data_values_are_kept_in_base64url_in_the_dead_letter() -> None:
    result = _decode(_cbor([{"bn": "kit:", "n": "blob", "vd": b"hi\n"}, {"n": "temp", "u": "Cel", "v": 20}]))
    (dead,) = result.refused
    assert json.loads(dead.raw)[0] == {"bn": "kit:", "n": "blob", "vd": "aGkK"}


@pytest.mark.parametrize(("payload", "reason"), [
    (_sample("senml_rfc8428_6_cbor.hex") + b"\x00", "bad_json"),  # bytes after the pack
    (bytes.fromhex("81a2026161a10102"), "bad_json"),  # a map as a map key: not valid for a dict
    (bytes.fromhex("81a20201617602"), "bad_schema"),  # label 2 and "v": the value twice
    (bytes.fromhex("81a1f501"), "bad_schema"),  # a label that is neither text nor an integer
    (bytes.fromhex("81a1c1001a69a42a40"), "bad_schema"),  # a date-time tag as a label
], ids=["trailing-bytes", "unhashable-key", "label-twice", "boolean-label", "tagged-label"])
def test_a_cbor_payload_that_is_no_senml_pack_is_refused_whole(payload: bytes, reason: str) -> None:
    result = _decode(payload)
    assert not result.rows
    (dead,) = result.refused
    assert dead.reason == reason and dead.boot is None


def test_an_undecodable_cbor_payload_keeps_its_bytes_in_hex() -> None:
    payload = _sample("senml_bad_cbor_truncated.hex")
    (dead,) = _decode(payload).refused
    assert bytes.fromhex(dead.raw) == payload


def test_a_cbor_pack_refused_for_an_unknown_name_is_stored_by_a_reprocessing(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    try:
        pack = [{"bn": "kit-42/", "bt": RECEIVED / 1000 - 60, "n": "pm2_5", "u": "ug/m3", "v": 6.5},
                {"n": "pm25_raw", "u": "ug/m3", "v": 7.1}]
        result = _decode(_cbor(pack))
        store.write(result.rows, result.refused, received_ms=RECEIVED)
        assert dl.counts_by_reason(store) == {"unknown_quantity": 1}
        monkeypatch.setitem(senml.NAMES, "pm25_raw", "pm2_5_cf1")  # a new qsec release maps the name
        report = dl.reprocess(store, reasons=["unknown_quantity"])
        assert (report.reprocessed, report.stored) == (1, 1)
        row = store.cursor().execute("SELECT boot, pm2_5, pm2_5_cf1 FROM readings").fetchall()
    finally:
        store.close()
    assert row == [("senml", 6.5, 7.1)]


def test_ingest_takes_a_binary_cbor_message_on_a_senml_topic() -> None:
    payload = _sample("senml_kit_air_quality_cbor.hex")
    out = ingest_decode.decode([("senml/c1/kit-9", payload), ("senml/c1/kit-9", b"\x9f\xff\x00")], now_ms=RECEIVED,
                               not_before={}, limits=contract.LIMITS, quantity_columns=list(QUANTITIES),
                               external_campaign="c1")
    assert out.table is not None and out.table.num_rows == 2
    assert set(out.table.column("device").to_pylist()) == {"kit-9"}
    assert [d.reason for d in out.dead] == ["bad_json"]


@pytest.mark.broker
def test_cbor_and_json_packs_over_a_real_broker_are_stored_once_each(tmp_path: Path, own_broker, unique: str) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(port=own_broker.port, client_id=f"senml-{unique}", batch_ms=50,
                                                external_campaign=f"ext{unique}")).start()
    bt = int(time.time()) - 60
    pack = [{"bn": "2001:db8::2/", "bt": bt, "n": "temperature", "u": "Cel", "v": 25.2},
            {"n": "humidity", "u": "%RH", "v": 30},
            {"bn": "2001:db8::1/", "n": "temperature", "u": "Cel", "v": 12.3}, {"n": "humidity", "u": "%RH", "v": 67}]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        pub.connect("127.0.0.1", own_broker.port)
        pub.loop_start()
        topic = f"senml/c{unique}/gateway-1"
        for payload in (_cbor(pack), _cbor(pack), json.dumps(pack).encode(), b"\x9f\x00"):  # the last is no CBOR
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        cur = store.cursor()
        wait_until(lambda: worker.metrics["records_duplicate"] == 4, what="the repeats counted as duplicates")
        rows = cur.execute("SELECT campaign, device, boot, epoch_ms(time), temperature, relative_humidity "
                           "FROM readings ORDER BY boot").fetchall()
        assert rows == [(f"c{unique}", "gateway-1", "senml-2001-db8-1", bt * 1000, 12.3, 67.0),
                        (f"c{unique}", "gateway-1", "senml-2001-db8-2", bt * 1000, 25.2, 30.0)]
        wait_until(lambda: dl.counts_by_reason(store) == {"bad_json": 1}, what="the broken CBOR dead-lettered")
    finally:
        pub.loop_stop()
        worker.stop()
        store.close()


# ---------------------------------------------------------------- fuzzing: any pack gives records or reasons
_FIELD = st.sampled_from(["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut",
                          "x_", "ct"])
_VALUE = st.one_of(st.text(alphabet="pmtempco2:/._- %RHCelugkK0123456789", max_size=12),
                   st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**40, 2**40), st.booleans(),
                   st.sampled_from(["Cel", "%RH", "ug/m3", "ppm", "Pa", "hPa", "%", "/", "lat", "kit:", "pm2.5"]),
                   st.sampled_from([1_772_366_400, 2**28, 10, 26, 5]))
_PACKS = st.lists(st.dictionaries(_FIELD, _VALUE, max_size=6), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=_PACKS, as_cbor=st.booleans())
def test_any_pack_decodes_to_contract_records_and_named_refusals(pack: list[dict], as_cbor: bool) -> None:
    try:
        payload = _cbor(pack) if as_cbor else json.dumps(pack).encode()
    except (ValueError, TypeError):  # a float JSON cannot write
        return
    result = _decode(payload)
    for _, device, boot, rec in result.rows:
        assert contract.check_record(rec.to_json(), now_ms=RECEIVED) == rec
        assert contract.BOOT_PATTERN.match(boot) and device == "kit-42"
    for dead in result.refused:
        assert dead.reason in contract.REASONS and dead.detail
        assert json.loads(dead.raw) is not None


_CBOR_SAMPLES = [_sample("senml_rfc8428_6_cbor.hex"), _sample("senml_kit_air_quality_cbor.hex")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(_CBOR_SAMPLES), at=st.integers(0, 230), junk=st.binary(min_size=1, max_size=6))
def test_any_damaged_cbor_pack_gives_records_or_named_refusals(sample: bytes, at: int, junk: bytes) -> None:
    result = _decode(sample[:at] + junk + sample[at + len(junk):])
    for _, _, _, rec in result.rows:
        assert contract.check_record(rec.to_json(), now_ms=RECEIVED) == rec
    assert all(dead.reason in contract.REASONS for dead in result.refused)
