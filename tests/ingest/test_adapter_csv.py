"""CSV archives and exports: Sensor.Community, Smart Citizen SD cards, qsec's own CSV (vectorised checks)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.adapters import (
    qsec_csv,
    sensor_community_csv,
    smartcitizen,
    smartcitizen_csv,
)
from ingest.store import Store
from qsec import contract

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000
SDS = SAMPLES / "2026-03-01_sds011_sensor_12345.csv"


def _keys(result) -> list[tuple[str, str, int]]:
    return sorted((d, b, r.seq) for _, d, b, r in result.rows)


# ---------------------------------------------------------------- Sensor.Community
def test_a_sensor_community_sds011_file_maps_p1_to_pm10_and_p2_to_pm2_5() -> None:
    result = sensor_community_csv.decode(SDS.read_bytes(), source=SDS.name, received_ms=RECEIVED, campaign="c1")
    pm = [r for _, _, b, r in result.rows if b == "sensor-community-sds011"]
    assert [(r.values["pm10"], r.values["pm2_5"]) for r in pm] == [(11.0, 8.5), (12.4, 9.0), (10.87, 8.13),
                                                                   (13.2, 9.7)]
    assert {d for _, d, _, _ in result.rows} == {"sensor-community-12345"} and pm[0].sensor == "nova-sds011"
    assert pm[0].t == 1_772_323_260_000  # 2026-03-01T00:01:00 UTC
    refused = {d.topic.rsplit("#", 1)[1]: d for d in result.refused}
    assert refused["row4"].reason == "out_of_range" and refused["row5"].reason == "bad_schema"
    assert refused["row4"].raw.splitlines() == [SDS.read_text().splitlines()[0], SDS.read_text().splitlines()[4]]


def test_the_declared_position_is_recorded_at_the_first_row_and_when_it_changes() -> None:
    result = sensor_community_csv.decode(SDS.read_bytes(), source=SDS.name, received_ms=RECEIVED, campaign="c1")
    positions = [(r.t, r.values) for _, _, b, r in result.rows if b == "sensor-community-location"]
    assert positions == [(1_772_323_260_000, {"latitude": 48.805, "longitude": 2.121}),
                         (1_772_323_993_000, {"latitude": 48.806, "longitude": 2.121})]  # 00:13:13


def test_reading_a_file_in_chunks_gives_what_decoding_it_whole_gives(tmp_path: Path) -> None:
    whole = sensor_community_csv.decode(SDS.read_bytes(), source=SDS.name, received_ms=RECEIVED, campaign="c1")
    packed = tmp_path / (SDS.name + ".gz")
    packed.write_bytes(gzip.compress(SDS.read_bytes()))
    for path in (SDS, packed):
        parts = list(sensor_community_csv.read_file(path, received_ms=RECEIVED, rows=2, campaign="c1"))
        assert len(parts) == 3 and parts[-1][1] > 0
        assert sorted(k for res, _ in parts for k in _keys(res)) == _keys(whole)
        assert sum(len(res.refused) for res, _ in parts) == len(whole.refused)


def test_bme280_pressure_in_pascal_becomes_hpa_and_computed_columns_are_ignored() -> None:
    path = SAMPLES / "2026-03-01_bme280_sensor_12346.csv"
    result = sensor_community_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1")
    first = next(r for _, _, b, r in result.rows if b == "sensor-community-bme280")
    assert first.values == {"temperature": 6.89, "relative_humidity": 78.43, "pressure": pytest.approx(1001.6305)}
    assert not result.refused


def test_ppd42ns_counts_have_no_qsec_quantity_and_are_refused_not_dropped() -> None:
    path = SAMPLES / "2026-03-01_ppd42ns_sensor_99.csv"
    result = sensor_community_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1")
    assert [b for _, _, b, _ in result.rows] == ["sensor-community-location"]
    assert [(d.reason, d.boot) for d in result.refused] == [("unknown_quantity", "sensor-community-ppd42ns")]
    assert "sensor type 'PPD42NS'" in result.refused[0].detail


# ---------------------------------------------------------------- Smart Citizen SD card
def test_an_sd_card_file_gives_the_records_the_kit_publishes_over_mqtt(tmp_path: Path) -> None:
    path = SAMPLES / "smartcitizen_sd_card.csv"
    card = smartcitizen_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1",
                                   device="kit-3")
    by = {(b, r.t): r.values for _, _, b, r in card.rows}
    assert by[("smartcitizen-sht31", 1_772_366_405_000)] == {"temperature": 18.3, "relative_humidity": 61.2}
    assert ("smartcitizen-pms5003", 1_772_366_465_000) not in by  # null PM in that row: no PM reading
    assert by[("smartcitizen-scd30", 1_772_366_465_000)] == {"co2": 612}
    assert not card.refused
    mqtt = smartcitizen.decode((SAMPLES / "smartcitizen_raw.txt").read_bytes(), source="device/sck/a1b2c3/readings/raw",
                               received_ms=RECEIVED, campaign="c1", devices={"a1b2c3": "kit-3"})
    store = Store(tmp_path / "qsec.duckdb")
    try:
        store.write(mqtt.rows)
        from_card, _ = store.write(card.rows)
    finally:
        store.close()
    overlap = set(_keys(mqtt)) & set(_keys(card))
    assert len(overlap) == 3 and from_card.duplicates == 3  # sht31, pressure and PM of 12:00:05 already stored


def test_an_sd_card_file_needs_the_device_id() -> None:
    path = SAMPLES / "smartcitizen_sd_card.csv"
    with pytest.raises(ValueError, match="--device"):
        smartcitizen_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1")


# ---------------------------------------------------------------- qsec CSV
def test_a_qsec_export_keeps_its_own_identity_and_refuses_impossible_values() -> None:
    path = SAMPLES / "qsec_export.csv"
    result = qsec_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED)
    assert _keys(result) == [("kit-01", "019ab3c4d5e6f1a2b3c4d5e6", s) for s in (120, 121, 122)]
    gps = next(r for *_, r in result.rows if r.seq == 122)
    assert (gps.flags, gps.values) == (4, {"latitude": 48.804865, "longitude": 2.120355})
    (dead,) = result.refused
    assert (dead.reason, dead.seq, dead.topic) == ("out_of_range", 123, "qsec-csv:versailles-2026:qsec_export.csv#row4")


def test_a_file_without_the_identity_columns_is_refused_whole() -> None:
    result = qsec_csv.decode(b"time,pm2_5\n2026-03-01T00:00:00,3\n", source="x.csv", received_ms=RECEIVED,
                             campaign="c1")
    assert not result.rows and [d.reason for d in result.refused] == ["bad_schema"]
    assert "lacks device, boot, seq, sensor" in result.refused[0].detail


FAULTS = ["none", "out_of_range", "not_a_number", "bad_time", "future", "negative_seq", "bad_sensor", "unknown"]


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[str, dict]]:
    rows = []
    for seq in range(draw(st.integers(1, 12))):
        fault = draw(st.sampled_from(FAULTS))
        values = {"pm2_5": draw(st.floats(0, 2000)), "co2": draw(st.floats(0, 40000))}
        raw = {"seq": seq, "t": draw(st.integers(1_700_000_000_000, RECEIVED)), "sensor": "plantower-pms5003",
               "values": values}
        text = {"seq": str(seq), "time": "", "sensor": raw["sensor"], "pm2_5": repr(values["pm2_5"]),
                "co2": repr(values["co2"]), "mystery": ""}
        if fault == "out_of_range":
            values["co2"] = draw(st.floats(40000.5, 1e9))
            text["co2"] = repr(values["co2"])
        elif fault == "not_a_number":
            values["pm2_5"] = "n/a"  # type: ignore[assignment]
            text["pm2_5"] = "n/a"
        elif fault == "bad_time":
            raw["t"] = "yesterday"
        elif fault == "future":
            raw["t"] = RECEIVED + draw(st.integers(121_000, 10**9))
        elif fault == "negative_seq":
            raw["seq"], text["seq"] = -1, "-1"
        elif fault == "bad_sensor":
            raw["sensor"] = text["sensor"] = "Bad Sensor"
        elif fault == "unknown":
            raw["values"] = {**values, "mystery": 1.0}
            text["mystery"] = "1.0"
        text["time"] = raw["t"] if isinstance(raw["t"], str) else _iso(raw["t"])
        rows.append((fault, raw, text))
    return rows


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@settings(max_examples=40, deadline=None)
@given(rows=_rows())
def test_the_vectorised_checks_decide_every_row_as_check_record_does(rows: list) -> None:
    header = "campaign,device,boot,seq,time,sensor,pm2_5,co2,mystery"
    lines = [header] + [f"c1,kit-1,b1,{t['seq']},{t['time']},{t['sensor']},{t['pm2_5']},{t['co2']},{t['mystery']}"
                        for _, _, t in rows]
    result = qsec_csv.decode("\n".join(lines).encode(), source="x.csv", received_ms=RECEIVED)
    accepted = {r.seq: r for *_, r in result.rows}
    refused = {int(d.topic.rsplit("#row", 1)[1]) - 1: d.reason for d in result.refused}
    for i, (_fault, raw, _) in enumerate(rows):
        try:
            expected = contract.check_record(raw, now_ms=RECEIVED)
        except contract.ContractError as exc:
            assert refused.get(i) == exc.reason, (raw, refused.get(i))
        else:
            got = accepted[expected.seq]
            assert (got.t, got.sensor, dict(got.values)) == (expected.t, expected.sensor, dict(expected.values))
