"""analysis.cube.load on a hand-made store and on the generated campaign, eagerly and with Dask."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from campaign import MHZ, PMS, store_campaign
from readings_table import create_readings, insert_readings

from analysis.cube import load
from qsec.contract import FLAG_CLOCK_JUMP, FLAG_WARMING_UP

T0 = pd.Timestamp("2026-05-17 12:00:00")


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


@pytest.fixture
def small(store: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """kit-a: PM at 0 s and 1 s, CO2 at 0 s (same instant as PM) and 1.5 s; kit-b: PM at 1 s, other campaign."""
    rows = pd.DataFrame(
        [
            ("expo", "kit-a", "b1", 0, at(0), PMS, 0, 10.0, None),
            ("expo", "kit-a", "b1", 1, at(0), MHZ, FLAG_WARMING_UP, None, 500.0),
            ("expo", "kit-a", "b1", 2, at(1), PMS, FLAG_CLOCK_JUMP, 12.0, None),
            ("expo", "kit-a", "b1", 3, at(1.5), MHZ, 0, None, 510.0),
            ("other", "kit-b", "b9", 0, at(1), PMS, 0, 30.0, None),
        ],
        columns=["campaign", "device", "boot", "seq", "time", "sensor", "flags", "pm2_5", "co2"],
    )
    insert_readings(store, rows)
    return store


@pytest.fixture(scope="module")
def campaign_store() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    create_readings(con)
    store_campaign(con, hours=0.5)
    yield con
    con.close()


def test_the_cube_has_a_device_and_a_time_axis_and_one_variable_per_quantity_with_values(small):
    ds = load(small)
    assert ds.sizes == {"device": 2, "time": 3}
    assert list(ds["device"].values) == ["kit-a", "kit-b"]
    assert list(ds["time"].values) == [np.datetime64(at(s)) for s in (0, 1, 1.5)]
    np.testing.assert_array_equal(ds["pm2_5"].values, [[10.0, 12.0, np.nan], [np.nan, 30.0, np.nan]])
    np.testing.assert_array_equal(ds["co2"].values, [[500.0, np.nan, 510.0], [np.nan, np.nan, np.nan]])


def test_records_sharing_a_cell_have_their_flags_ored_and_their_highest_seq(small):
    ds = load(small)
    assert ds["flags"].sel(device="kit-a").values.tolist() == [FLAG_WARMING_UP, FLAG_CLOCK_JUMP, 0]
    assert ds["seq"].sel(device="kit-a").values.tolist() == [1, 2, 3]
    assert ds["seq"].sel(device="kit-b").values.tolist() == [-1, 0, -1]
    boots = ds.attrs["boots"].split()
    assert [boots[i] if i >= 0 else None for i in ds["boot"].sel(device="kit-b").values] == [None, "b9", None]


def test_every_quantity_variable_carries_cf_units_names_and_the_sensors_that_produced_it(small):
    ds = load(small)
    pm = ds["pm2_5"].attrs
    assert pm["units"] == "µg/m³"
    assert pm["standard_name"] == "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
    assert pm["kind"] == "concentration" and pm["sensor"] == PMS
    assert ds["co2"].attrs["standard_name"] == "mole_fraction_of_carbon_dioxide_in_air"
    assert ds["time"].attrs["standard_name"] == "time"
    assert ds["sensors"].sel(device="kit-a").item() == f"{PMS} {MHZ}"
    assert "flag_masks" in ds["flags"].attrs and ds["flags"].attrs["flag_meanings"].startswith("clock_jump")


def test_only_quantities_with_values_are_loaded_unless_asked_for(small):
    assert {str(n) for n in load(small).data_vars} == {"pm2_5", "co2", "flags", "boot", "seq"}
    asked = load(small, quantities=["pm2_5", "tvoc"])
    assert {"pm2_5", "tvoc"} <= set(asked.data_vars) and "co2" not in asked
    assert asked["tvoc"].isnull().all()
    with pytest.raises(KeyError, match="unknown quantity"):
        load(small, quantities=["pm25"])


def test_filters_select_campaign_devices_and_a_half_open_time_range(small):
    assert list(load(small, campaign="other")["device"].values) == ["kit-b"]
    chosen = load(small, devices=["kit-b", "kit-z"])
    assert list(chosen["device"].values) == ["kit-b", "kit-z"]
    assert chosen["pm2_5"].sel(device="kit-z").isnull().all()
    window = load(small, start=at(1), end=at(1.5))
    assert list(window["time"].values) == [np.datetime64(at(1))]
    aware = load(small, start=pd.Timestamp(at(1)).tz_localize("UTC").tz_convert("Europe/Paris"))
    assert aware["time"].values[0] == np.datetime64(at(1))
    with pytest.raises(ValueError, match="must be after"):
        load(small, start=at(2), end=at(1))


def test_a_resolution_snaps_times_down_and_averages_records_in_the_same_bin(small):
    ds = load(small, resolution="1s")
    assert list(ds["time"].values) == [np.datetime64(at(0)), np.datetime64(at(1))]
    assert ds["co2"].sel(device="kit-a").values.tolist() == [500.0, 510.0]
    assert ds.attrs["resolution_us"] == 1_000_000
    with pytest.raises(ValueError, match="resolution"):
        load(small, resolution="0s")


def test_an_empty_selection_gives_an_empty_cube(small):
    ds = load(small, campaign="nobody")
    assert ds.sizes == {"device": 0, "time": 0}


def test_a_lazy_cube_computes_to_the_same_values_as_the_eager_one(campaign_store):
    eager = load(campaign_store, resolution="1s")
    lazy = load(campaign_store, resolution="1s", chunks={"time": 400})
    assert lazy["pm2_5"].chunks is not None and len(lazy["pm2_5"].chunks[1]) == 5
    xr.testing.assert_identical(lazy.compute(), eager)
    with pytest.raises(ValueError, match="chunks"):
        load(campaign_store, chunks=0)


def test_a_lazy_cube_is_loaded_and_resampled_on_a_dask_distributed_local_cluster(campaign_store):
    distributed = pytest.importorskip("distributed")
    eager = load(campaign_store).qsec.resample("5min", stats=("mean", "median"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        lazy = load(campaign_store, chunks=3000).qsec.resample("5min", stats=("mean", "median"))
        assert lazy["pm2_5_mean"].chunks is not None
        result = client.compute(lazy).result()
    xr.testing.assert_identical(result, eager)
