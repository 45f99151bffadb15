"""Export bundles: round trips equal to the query, checksums, CF metadata, the public view."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr

from campaign import START, make_campaign
from readings_table import create_readings, insert_readings

from analysis.export import Selection, plan, write_bundle
from ingest import registry as reg


@pytest.fixture(scope="module")
def store() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    create_readings(con)
    insert_readings(con, make_campaign(hours=0.25).records)
    reg.ensure_registry_schema(con)
    reg.create_campaign(con, "versailles", title="Versailles", public=True, licence="CC-BY-4.0")
    reg.register_kit(con, "versailles", "k1", {"kit-01": ["plantower-pms5003t"]})
    who = reg.add_participant(con, "versailles")
    reg.assign_kit(con, who, "k1", START)
    reg.add_opt_out(con, who, START, START + pd.Timedelta(minutes=5))
    yield con
    con.close()


def queried(con: duckdb.DuckDBPyConnection, selection: Selection) -> pd.DataFrame:
    p = plan(con, selection)
    return con.sql(p.sql, params=list(p.params)).df()


def test_a_parquet_bundle_reads_back_equal_to_the_query(store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    selection = Selection(campaign="versailles", positions=True)
    result = write_bundle(store, selection, "parquet", tmp_path / "b.zip", batch_rows=1000)
    with zipfile.ZipFile(tmp_path / "b.zip") as bundle:
        bundle.extractall(tmp_path / "b")
    back = pq.read_table(tmp_path / "b" / "data.parquet").to_pandas()
    expected = queried(store, selection)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert result.rows == len(expected) > 5000
    assert pq.ParquetFile(tmp_path / "b" / "data.parquet").metadata.num_row_groups == -(-len(expected) // 1000)


def test_a_netcdf_bundle_is_cf_trajectories_that_read_back_equal_to_the_query(
        store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    selection = Selection(campaign="versailles", positions=True, quantities=("pm2_5", "co2", "latitude", "longitude"))
    write_bundle(store, selection, "netcdf", tmp_path / "n")
    ds = xr.open_dataset(tmp_path / "n" / "data.nc")
    expected = queried(store, selection)
    assert ds.attrs["featureType"] == "trajectory" and ds.attrs["Conventions"].startswith("CF-1.8")
    assert ds["device"].attrs["cf_role"] == "trajectory_id"
    assert ds["device_index"].attrs["instance_dimension"] == "device"
    assert ds["pm2_5"].attrs["units"] == "ug m-3" and ds["latitude"].attrs["units"] == "degrees_north"
    devices = ds["device"].values[ds["device_index"].values]
    assert list(devices) == list(expected["device"])
    times = pd.to_datetime(ds["time"].values).tz_localize("UTC")
    assert (times == pd.DatetimeIndex(expected["time"])).all()
    for name in ("pm2_5", "co2", "latitude", "longitude"):
        np.testing.assert_array_equal(ds[name].values, expected[name].to_numpy(dtype="float64"))
    np.testing.assert_array_equal(ds["seq"].values, expected["seq"].to_numpy())


def test_a_bundle_carries_licence_provenance_flag_legend_schema_and_checksums(
        store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write_bundle(store, Selection(campaign="versailles"), "csv", tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["licence"]["id"] == "CC-BY-4.0" and "CC-BY-4.0" in (tmp_path / "c" / "LICENCE.txt").read_text()
    assert {d["device"] for d in manifest["provenance"]["devices"]} == {"kit-01", "kit-02", "kit-03"}
    assert "plantower-pms5003t" in manifest["provenance"]["sensor_models"]
    assert manifest["provenance"]["software"]["qsec"]
    assert {f["name"] for f in manifest["flags"]} >= {"clock_jump", "qc_spike"}
    assert [c["name"] for c in manifest["columns"]][:8] == ["campaign", "device", "participant", "boot", "seq",
                                                            "time", "sensor", "flags"]
    assert next(c for c in manifest["columns"] if c["name"] == "pm2_5")["unit"] == "µg/m³"
    for line in (tmp_path / "c" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((tmp_path / "c" / name).read_bytes()).hexdigest() == digest


def test_the_public_view_has_no_positions_nor_participants_nor_opted_out_records(
        store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write_bundle(store, Selection(campaign="versailles", public=True), "csv", tmp_path / "p")
    data = pd.read_csv(tmp_path / "p" / "data.csv")
    assert not {"participant", "latitude", "longitude", "altitude", "speed"} & set(data.columns)
    kit01 = pd.to_datetime(data.loc[data["device"] == "kit-01", "time"].str.rstrip("Z"))
    assert kit01.min() >= START + pd.Timedelta(minutes=5)
    assert (data["device"] == "kit-02").sum() == store.execute(
        "SELECT count(*) FROM readings WHERE device = 'kit-02'").fetchall()[0][0]


def test_a_geojson_bundle_is_a_feature_collection_of_points(store: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write_bundle(store, Selection(campaign="versailles", devices=("kit-02",), quantities=("pm2_5",)), "geojson",
                 tmp_path / "g")
    collection = json.loads((tmp_path / "g" / "data.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and collection["features"]
    feature = next(f for f in collection["features"] if f["geometry"])
    lon, lat = feature["geometry"]["coordinates"]
    assert 2.0 < lon < 2.3 and 48.7 < lat < 48.9 and feature["properties"]["time"].endswith("Z")
