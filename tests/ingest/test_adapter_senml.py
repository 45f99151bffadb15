"""SenML (RFC 8428) packs: base fields, relative times, names, units, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.adapters import senml
from qsec import contract

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000
TOPIC = "senml/lyon-2026/kit-42"


def _decode(pack: object, received_ms: int = RECEIVED, **context):
    payload = pack if isinstance(pack, bytes) else json.dumps(pack).encode()
    return senml.decode(payload, source=TOPIC, received_ms=received_ms, **context)


def test_the_rfc_example_of_multiple_datapoints_resolves_base_name_time_and_unit() -> None:
    result = _decode((SAMPLES / "senml_rfc8428_multiple_datapoints.json").read_bytes())
    t0 = 1_320_067_464_000
    by_t = {r.t: dict(r.values) for *_, r in result.rows}
    assert by_t[t0] == {"relative_humidity": 20, "longitude": 24.30621, "latitude": 60.07965}
    assert by_t[t0 + 60_000] == {"relative_humidity": 20.3, "longitude": 24.30622, "latitude": 60.07965}
    assert sorted(by_t) == [t0, t0 + 60_000, t0 + 120_000, t0 + 180_000]
    assert {(c, d, b) for c, d, b, _ in result.rows} == {("lyon-2026", "kit-42", "senml")}
    assert all(r.seq == r.t and r.sensor == "senml" for *_, r in result.rows)
    # "%EL" (battery remaining) names no qsec quantity: its record is refused, not dropped
    (dead,) = result.refused
    assert (dead.reason, dead.boot, dead.seq, dead.device) == ("unknown_quantity", "senml", t0 + 150_000, "kit-42")
    assert dead.topic == f"senml:lyon-2026:{TOPIC}" and json.loads(dead.raw)[0]["bn"].startswith("urn:dev:ow")


def test_names_and_units_map_to_qsec_quantities_in_qsec_units() -> None:
    result = _decode((SAMPLES / "senml_kit_air_quality.json").read_bytes())
    first, second = (r for *_, r in sorted(result.rows, key=lambda row: row[3].t))
    assert first.t == 1_772_366_400_000
    assert first.values == {"pm2_5": 7.5, "pm10": 12.1, "temperature": 18.2, "relative_humidity": 61.4,
                            "pressure": pytest.approx(1013.25), "co2": 612}
    assert second.t == 1_772_366_460_000 and second.values == {"pm2_5": 7.9, "temperature": pytest.approx(18.3)}
    assert not result.refused


def test_a_time_below_2_to_the_28_is_relative_to_the_time_of_receipt() -> None:
    result = _decode([{"bn": "kit/", "n": "co2", "u": "ppm", "v": 500}, {"n": "co2", "u": "ppm", "t": -30, "v": 480}])
    assert sorted(r.t for *_, r in result.rows) == [RECEIVED - 30_000, RECEIVED]


def test_base_value_is_added_and_base_unit_applies_until_changed() -> None:
    result = _decode([{"bn": "k:", "bt": 1_772_366_400, "bu": "Pa", "bv": 100_000, "n": "pressure", "v": 1325},
                      {"n": "pressure", "t": 1, "v": 0, "u": "hPa", "bv": 1000}])
    assert sorted(r.values["pressure"] for *_, r in result.rows) == [pytest.approx(1000), pytest.approx(1013.25)]


@pytest.mark.parametrize(("time_offset", "name", "reason", "detail"), [
    (10, "door", "bad_schema", "carries 'vb'"),
    (20, "label", "bad_schema", "carries 'vs'"),
    (30, "noise", "unknown_quantity", "'noise' is not a known quantity"),
    (40, "temp", "bad_schema", "unit 'Far' for temperature: accepted units are Cel, K"),
], ids=["boolean", "string", "unknown-name", "unknown-unit"])
def test_records_qsec_cannot_store_are_refused_with_their_reason(time_offset: int, name: str, reason: str,
                                                                 detail: str) -> None:
    result = _decode((SAMPLES / "senml_refused_values.json").read_bytes())
    assert [r.values for *_, r in result.rows] == [{"pm2_5": 7.5}]
    by_seq = {d.seq: d for d in result.refused}
    dead = by_seq[1_772_366_400_000 + time_offset * 1000]
    assert dead.reason == reason and detail in dead.detail


def test_an_entry_refused_refuses_its_whole_record_so_a_reprocessing_stores_it_complete() -> None:
    result = _decode([{"bn": "k:", "bt": 1_772_366_400, "n": "pm10", "u": "ug/m3", "v": 9},
                      {"n": "pm2.5", "u": "ug/m3", "v": 5000}])
    assert not result.rows
    (dead,) = result.refused
    assert dead.reason == "out_of_range" and "pm2_5=5000.0" in dead.detail


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "bad_json"),
    (b"{}", "bad_schema"),
    (b"[]", "bad_schema"),
    (json.dumps([{"bver": 11, "n": "temp", "v": 1}]).encode(), "wrong_version"),
    (json.dumps([{"n": "temp", "v": 1, "crit_": 1}]).encode(), "bad_schema"),
    (json.dumps([{"n": "temp", "v": 1, "t": "yesterday"}]).encode(), "bad_time"),
    (b"[" + b'{"n":"temp","v":1},' * 30_000 + b'{"n":"temp","v":1}]', "payload_too_large"),
], ids=["not-json", "object", "empty", "version-11", "must-understand", "text-time", "too-large"])
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
