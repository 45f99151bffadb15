"""CSV archives and exports: Sensor.Community, Smart Citizen SD cards, qsec's own CSV (vectorised checks)."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from adapter_samples import load, stored_dead_letters
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


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def _archive(name: str):
    return sensor_community_csv.decode(load(name).payload, source=name, received_ms=RECEIVED, campaign="c1")


ARCHIVES = {  # sample -> (sensor, [(time, values)] of the sensor records, positions, ignored column cells)
    "sensor_community_sds011_zoned_timestamps.csv": ("nova-sds011", [
        ("2019-01-01T00:00:53.391+00:00", {"pm10": 31.63, "pm2_5": 22.40}),  # microseconds cut to the ms
        ("2019-01-01T00:03:20+00:00", {"pm10": 29.87, "pm2_5": 21.20}),
        ("2019-01-01T00:05:46.012+00:00", {"pm2_5": 19.93})],  # an empty P1: no pm10 in that record
        [("2019-01-01T00:05:46.012+00:00", {"latitude": 48.806, "longitude": 2.121})], {"column location": 3}),
    "sensor_community_pms7003.csv": ("plantower-pms7003", [
        ("2026-03-01T00:00:41+00:00", {"pm10": 9.0, "pm2_5": 6.0, "pm1": 4.0}),
        ("2026-03-01T00:03:07+00:00", {"pm10": 11.33, "pm2_5": 7.67, "pm1": 5.0})],
        [("2026-03-01T00:00:41+00:00", {"latitude": 45.764, "longitude": 4.836})], {"column location": 2}),
    "sensor_community_sps30.csv": ("sensirion-sps30", [
        ("2026-03-01T00:01:12+00:00", {"pm10": 7.40, "pm2_5": 7.02, "pm1": 6.11, "pm4": 7.31, "nc0_5": 40.12,
                                       "nc1": 47.80, "nc2_5": 48.21, "nc4": 48.27, "nc10": 48.29,
                                       "typical_particle_size": 0.56}),
        ("2026-03-01T00:03:38+00:00", {"pm10": 8.01, "pm2_5": 7.60, "pm1": 6.50, "pm4": 7.88, "nc0_5": 43.70,
                                       "nc1": 51.90, "nc2_5": 52.35, "nc4": 52.41, "nc10": 52.43,
                                       "typical_particle_size": 0.55})],
        [("2026-03-01T00:01:12+00:00", {"latitude": 50.938, "longitude": 6.960})], {"column location": 2}),
    "sensor_community_bme280.csv": ("bosch-bme280", [
        ("2026-03-01T00:01:02+00:00", {"pressure": pytest.approx(998.5344), "temperature": 8.12,
                                       "relative_humidity": 83.05}),
        ("2026-03-01T00:03:29+00:00", {"pressure": pytest.approx(998.512), "temperature": 8.09,
                                       "relative_humidity": 83.40})],
        [("2026-03-01T00:01:02+00:00", {"latitude": 48.805, "longitude": 2.121})],
        {"column location": 2, "column altitude": 1, "column pressure_sealevel": 1}),
    "sensor_community_bmp180.csv": ("bosch-bmp180", [
        ("2026-03-01T00:02:02+00:00", {"pressure": pytest.approx(989.21), "temperature": 6.90})],
        [], {"column location": 1}),  # no lat/lon: no position record
    "sensor_community_sht31.csv": ("sensirion-sht31", [
        ("2026-03-01T00:02:15+00:00", {"temperature": 11.55, "relative_humidity": 71.12})],
        [("2026-03-01T00:02:15+00:00", {"latitude": 43.297, "longitude": 5.370})], {"column location": 1}),
    "sensor_community_scd30.csv": ("sensirion-scd30", [
        ("2026-03-01T00:02:15+00:00", {"temperature": 19.83, "relative_humidity": 41.21, "co2": 612.0})],
        [("2026-03-01T00:02:15+00:00", {"latitude": 43.297, "longitude": 5.370})], {"column location": 1}),
}


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_each_archive_column_set_maps_by_name_to_qsec_quantities(name: str) -> None:
    sensor, records, positions, ignored = ARCHIVES[name]
    result = _archive(name)
    got = [(r.t, dict(r.values)) for _, _, b, r in result.rows if b != "sensor-community-location"]
    assert got == [(_ms(t), v) for t, v in records]
    assert {r.sensor for _, _, b, r in result.rows if b != "sensor-community-location"} == {sensor}
    assert [(r.t, dict(r.values)) for _, _, b, r in result.rows if b == "sensor-community-location"] == [
        (_ms(t), v) for t, v in positions]
    assert dict(result.ignored) == ignored and not result.refused


def test_a_value_left_empty_keeps_the_others_and_a_row_left_empty_is_refused() -> None:
    result = _archive("sensor_community_dht22_partial.csv")
    assert [dict(r.values) for _, _, b, r in result.rows if b == "sensor-community-dht22"] == [
        {"temperature": 8.40, "relative_humidity": 81.30}, {"temperature": 8.30}]
    assert [(d.reason, d.topic.rsplit("#", 1)[1]) for d in result.refused] == [("bad_schema", "row3")]


def test_a_type_written_without_value_columns_has_every_row_refused_not_dropped() -> None:
    result = _archive("sensor_community_bmp280_no_value_columns.csv")
    assert [b for _, _, b, _ in result.rows] == ["sensor-community-location"]
    assert [(d.reason, d.boot) for d in result.refused] == [("bad_schema", "sensor-community-bmp280")] * 2
    assert "no value" in result.refused[0].detail


def test_each_bad_row_is_dead_lettered_with_its_own_reason_and_line(tmp_path: Path) -> None:
    sample = load("sensor_community_bad_rows.csv")
    result = _archive(sample.name)
    assert [dict(r.values) for _, _, b, r in result.rows if b == "sensor-community-dht22"] == [
        {"temperature": 8.40, "relative_humidity": 81.30}]
    by_row = {d.topic.rsplit("#", 1)[1]: d for d in result.refused}
    assert {row: d.reason for row, d in by_row.items()} == {
        "row2": "bad_schema", "row3": "bad_schema", "row4": "bad_time", "row5": "bad_schema",
        "row6": "unknown_quantity"}
    assert "not a finite number" in by_row["row2"].detail and "more fields" in by_row["row3"].detail
    assert "'brightness'" in by_row["row6"].detail
    lines = sample.payload.decode().splitlines()
    dead = stored_dead_letters(tmp_path, result, "reason, raw")
    assert [raw.splitlines() for _, raw in dead] == [[lines[0], lines[i]] for i in (2, 3, 4, 5, 6)]


def test_a_file_that_is_not_an_archive_is_refused_whole_naming_the_missing_column() -> None:
    result = _archive("sensor_community_bad_header.csv")
    assert not result.rows and [(d.reason, d.boot) for d in result.refused] == [("bad_schema", None)]
    assert "lacks timestamp" in result.refused[0].detail


def test_an_archive_with_zoned_timestamps_read_in_chunks_gives_what_decoding_it_whole_gives(tmp_path: Path) -> None:
    name = "sensor_community_sds011_zoned_timestamps.csv"
    whole = _archive(name)
    path = tmp_path / "2019-01-01_sds011_sensor_12401.csv.gz"
    path.write_bytes(gzip.compress(load(name).payload))
    parts = list(sensor_community_csv.read_file(path, received_ms=RECEIVED, rows=1, campaign="c1"))
    assert sorted(k for res, _ in parts for k in _keys(res)) == _keys(whole)
    assert sum((res.ignored for res, _ in parts), Counter()) == whole.ignored


# ---------------------------------------------------------------- Smart Citizen SD card
def test_an_sd_card_file_gives_the_records_the_kit_publishes_over_mqtt(tmp_path: Path) -> None:
    path = SAMPLES / "smartcitizen_sd_card.csv"
    card = smartcitizen_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1",
                                   device="kit-3")
    by = {(b, r.t): r.values for _, _, b, r in card.rows}
    assert by[("smartcitizen-sht31", 1_772_366_405_000)] == {"temperature": 18.3, "relative_humidity": 61.2}
    assert by[("smartcitizen-pms5003", 1_772_366_405_000)] == {"pm1_cf1": 6, "pm2_5_cf1": 9, "pm10_cf1": 12}
    assert ("smartcitizen-pms5003", 1_772_366_465_000) not in by  # null PM in that row: no PM reading
    assert ("smartcitizen-scd30", 1_772_366_405_000) not in by
    assert by[("smartcitizen-scd30", 1_772_366_465_000)] == {"co2": 612, "temperature": 19.1, "relative_humidity": 58}
    assert not card.refused and sum(card.ignored.values()) == 3 * 4  # battery %, light, noise, eCO2 in 3 rows
    mqtt = smartcitizen.decode((SAMPLES / "smartcitizen_raw.txt").read_bytes(), source="device/sck/a1b2c3/readings/raw",
                               received_ms=RECEIVED, campaign="c1", devices={"a1b2c3": "kit-3"})
    store = Store(tmp_path / "qsec.duckdb")
    try:
        store.write(mqtt.rows)
        from_card, _ = store.write(card.rows)
    finally:
        store.close()
    overlap = set(_keys(mqtt)) & set(_keys(card))
    assert len(overlap) == 4 and from_card.duplicates == 4  # sht31, pressure, VOC and PM of 12:00:05 already stored


def test_an_sd_card_file_needs_the_device_id() -> None:
    path = SAMPLES / "smartcitizen_sd_card.csv"
    with pytest.raises(ValueError, match="--device"):
        smartcitizen_csv.decode(path.read_bytes(), source=path.name, received_ms=RECEIVED, campaign="c1")


def _card(name: str, **context):
    return smartcitizen_csv.decode(load(name).payload, source=name, received_ms=RECEIVED, campaign="c1",
                                   device="kit-3", **context)


def test_the_current_firmware_card_file_with_a_repeated_short_title_is_read_by_its_ids() -> None:
    card = _card("smartcitizen_sd_card_sck22.csv")  # AS7331_UVA heads two columns (ids 214 and 216)
    by = {(b, r.t): r.values for _, _, b, r in card.rows}
    assert by[("smartcitizen-lps33", 1_772_366_405_000)] == {"pressure": pytest.approx(1014.3)}
    assert by[("smartcitizen-pms5003", 1_772_366_405_000)] == {
        "pm1_cf1": 4, "pm2_5_cf1": 6, "pm10_cf1": 7, "pn0_3": 903, "pn0_5": 262, "pn1": 41, "pn2_5": 4, "pn5": 1,
        "pn10": 0}
    assert sorted(b for b, _ in by) == ["smartcitizen-lps33"] * 3 + ["smartcitizen-pms5003"] + ["smartcitizen-sht31"] * 3
    assert not card.refused
    assert sorted(card.ignored.values()) == [1, 3, 3, 3, 3]  # RSSI once; battery, SD card, light, noise; UV all null


def test_a_card_file_joined_by_scdata_with_empty_cells_and_sorted_columns_is_read() -> None:
    card = _card("smartcitizen_concat.csv")
    by = {(b, r.t): r.values for _, _, b, r in card.rows}
    assert by[("smartcitizen-scd30", 1_772_440_205_000)] == {"co2": 640, "relative_humidity": 60.2,
                                                             "temperature": 17.9}  # 2026-03-02T08:30:05Z
    assert ("smartcitizen-pms5003", 1_772_366_465_000) not in by and len(card.rows) == 13 and not card.refused
    whole = _card("smartcitizen_sd_card.csv")
    first_day = {k for k in by if k[1] < 1_772_400_000_000}
    assert first_day <= {(b, r.t) for _, _, b, r in whole.rows}


def test_a_card_row_broken_as_a_whole_is_refused_once_and_a_bad_cell_refuses_its_sensor_only() -> None:
    card = _card("smartcitizen_sd_card_bad.csv")
    refused = [(d.topic.rsplit("#", 1)[1], d.reason, d.boot) for d in card.refused]
    assert sorted(refused) == [
        ("row2", "bad_time", None),  # 20-30-01T…: epoch2iso of a clock before 2000
        ("row3", "bad_time", None),  # 2000-01-01: the clock was never set
        ("row4", "bad_schema", None),  # a field too many
        ("row5", "bad_schema", "smartcitizen-sht31"),  # "err": pressure and PM of that row are kept
        ("row6", "out_of_range", "smartcitizen-sht31"),  # 140 %
        ("row7", "bad_schema", None)]  # the line cut short
    assert "cut short" in next(d for d in card.refused if d.topic.endswith("#row7")).detail
    kept = sorted((b, r.t) for _, _, b, r in card.rows)
    assert ("smartcitizen-mpl3115a2", 1_772_366_645_000) in kept and len(kept) == 7
    line7 = card_lines("smartcitizen_sd_card_bad.csv")[10]
    dead = next(d for d in card.refused if d.topic.endswith("#row7"))
    assert dead.raw.splitlines()[-1] == line7 and dead.raw.splitlines()[3] == ",55,56,10,58,89,87,88"


def test_a_refused_card_row_decodes_again_from_its_dead_letter() -> None:
    card = _card("smartcitizen_sd_card_bad.csv")
    dead = next(d for d in card.refused if d.reason == "bad_schema" and d.boot == "smartcitizen-sht31")
    again = smartcitizen_csv.decode(dead.raw.encode(), source=dead.topic.split(":", 2)[2], received_ms=RECEIVED,
                                    campaign="c1", device="kit-3")
    assert [(d.reason, d.boot, d.seq) for d in again.refused] == [(dead.reason, dead.boot, dead.seq)]
    assert sorted(b for *_, b, _ in again.rows) == ["smartcitizen-mpl3115a2", "smartcitizen-pms5003"]


def card_lines(name: str) -> list[str]:
    return load(name).payload.decode().splitlines()


def test_a_card_file_read_in_chunks_gives_what_decoding_it_whole_gives(tmp_path: Path) -> None:
    for name in ("smartcitizen_sd_card_sck22.csv", "smartcitizen_sd_card_bad.csv"):
        whole = _card(name)
        plain, packed = tmp_path / name, tmp_path / (name + ".gz")
        plain.write_bytes(load(name).payload)
        packed.write_bytes(gzip.compress(load(name).payload))
        for path in (plain, packed):
            parts = list(smartcitizen_csv.read_file(path, received_ms=RECEIVED, rows=2, campaign="c1", device="kit-3"))
            assert sorted(k for res, _ in parts for k in _keys(res)) == _keys(whole) and parts[-1][1] > 0
            rows = sorted((d.topic.rsplit("#")[1], d.reason) for res, _ in parts for d in res.refused)
            assert rows == sorted((d.topic.rsplit("#")[1], d.reason) for d in whole.refused)
            assert sum((res.ignored for res, _ in parts), Counter()) == whole.ignored


@pytest.mark.parametrize(("ids", "reason"), [
    (",55,56,55", "bad_schema"),  # one sensor id heads two columns
    ("", "bad_schema"),  # no id row
], ids=["id-twice", "no-ids"])
def test_a_card_header_that_cannot_be_read_refuses_the_file(ids: str, reason: str) -> None:
    payload = f"TIME,TEMP,HUM,TEMP\nISO 8601,C,%,C\nTime,Temperature,Humidity,Temperature\n{ids}\n" \
              "2026-03-01T12:00:05Z,18.3,61.2,18.4\n"
    result = smartcitizen_csv.decode(payload.encode(), source="sd.csv", received_ms=RECEIVED, campaign="c1",
                                     device="kit-3")
    assert not result.rows and [d.reason for d in result.refused] == [reason]


def test_a_column_without_platform_id_is_counted_and_an_unknown_id_refuses_its_rows() -> None:
    payload = ("TIME,TEMP,PRESS_TEMP,XX\nISO 8601,C,C,\nTime,Temperature,Pressure internal temperature,X\n,55,0,251\n"
               "2026-03-01T12:00:05Z,18.3,21.0,null\n2026-03-01T12:01:05Z,18.4,21.1,7\n")
    result = smartcitizen_csv.decode(payload.encode(), source="sd.csv", received_ms=RECEIVED, campaign="c1",
                                     device="kit-3")
    assert [r.values for *_, r in result.rows] == [{"temperature": 18.3}, {"temperature": 18.4}]
    assert dict(result.ignored) == {"PRESS_TEMP (id 0): the platform has no sensor id for it": 2}
    assert [(d.reason, d.topic.rsplit("#", 1)[1]) for d in result.refused] == [("unknown_quantity", "row2")]


@pytest.mark.parametrize("name", ["smartcitizen_sd_card.csv", "smartcitizen_sd_card_sck22.csv",
                                  "smartcitizen_concat.csv"])
def test_every_smart_citizen_card_layout_is_recognised(name: str) -> None:
    assert smartcitizen_csv.sniff(load(name).payload[:8192])
    assert not smartcitizen_csv.sniff(SDS.read_bytes())


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
