"""ds.qsec and df.qsec on the generated campaign, in memory and lazily."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from campaign import Campaign, store_campaign
from readings_table import create_readings

from analysis import qc
from analysis.cube import load
from analysis.resample import daily_means, resample


@pytest.fixture(scope="module")
def stored() -> Iterator[tuple[duckdb.DuckDBPyConnection, Campaign]]:
    con = duckdb.connect(":memory:")
    create_readings(con)
    made = store_campaign(con, hours=1.0)
    yield con, made
    con.close()


def test_the_dataset_accessor_resamples_like_the_function(stored):
    cube = load(stored[0])
    via_accessor = cube.qsec.resample("10min", exclude=qc.SUSPECT)
    xr.testing.assert_identical(via_accessor, resample(cube, "10min", exclude=qc.SUSPECT))
    assert via_accessor.sizes == {"device": 3, "time": 6}


def test_flagging_the_cube_finds_what_flagging_the_records_finds(stored):
    con, made = stored
    cube = load(con).qsec.flag()
    from_cube = qc.counts(cube["flags"].values.ravel())
    from_records = qc.counts(qc.flag(made.records))
    for name in ("qc_spike", "qc_stuck", "qc_humidity", "qc_gps_jump", "qc_warmup"):
        assert from_cube[name] == from_records[name], name
    assert cube["flags"].attrs["flag_meanings"].split()[-1] == "qc_gps_jump"


def test_a_lazy_cube_is_flagged_block_by_block_over_devices_with_the_same_result(stored):
    con, made = stored
    part = {"start": made.events["reboot"].start - pd.Timedelta(minutes=2), "end": made.events["reboot"].end
            + pd.Timedelta(minutes=4)}
    eager = load(con, **part).qsec.flag()
    lazy = load(con, chunks=1000, **part).chunk({"device": 1}).qsec.flag()
    assert lazy["flags"].chunks is not None and lazy["flags"].chunks[0] == (1, 1, 1)
    np.testing.assert_array_equal(lazy["flags"].values, eager["flags"].values)


def test_coverage_is_a_fraction_per_quantity_device_and_window(stored):
    con, made = stored
    coverage = load(con).qsec.coverage("1min")
    assert set(coverage.data_vars) >= {"pm2_5", "co2", "latitude"}
    values = coverage["co2"].values
    assert ((values >= 0) & (values <= 1)).all()
    loss = made.events["radio_loss"]
    lossy = coverage["co2"].sel(device=loss.device, time=slice(loss.start, loss.end - pd.Timedelta(minutes=1)))
    assert float(lossy.mean()) == pytest.approx(0.6, abs=0.1)
    assert float(coverage["co2"].sel(device="kit-01").min()) == 1.0


def test_the_cube_gives_its_records_back_as_a_frame(stored):
    con, made = stored
    frame = load(con).qsec.records()
    assert len(frame) == len(made.records.drop_duplicates(["device", "time"]))
    assert set(frame["sensor"]) == set(made.records["sensor"])
    assert {"device", "time", "boot", "seq", "flags", "pm2_5"} <= set(frame.columns)


def test_the_frame_accessor_flags_and_resamples_records(stored):
    _, made = stored
    flagged = made.records.qsec.flag(checks=["spike"])
    assert list(flagged.columns) == list(made.records.columns)
    assert int(((flagged["flags"] & qc.QC_SPIKE) != 0).sum()) == 1
    out = flagged.qsec.resample("1h", stats=("mean",), exclude=qc.QC_SPIKE)
    assert out.loc[out["quantity"] == "pm2_5", "excluded"].sum() == 1
    assert out.loc[out["quantity"] == "pm10", "excluded"].sum() == 1  # the whole record is flagged


def test_daily_means_from_a_cube_report_too_few_hours_for_a_one_hour_campaign(stored):
    days = daily_means(load(stored[0]), quantities=["pm2_5"])
    assert days["reason"].tolist() == ["low_coverage"] * 3 and days["mean"].isna().all()
