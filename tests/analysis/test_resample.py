"""analysis.resample: exact values on hand-made data, completeness rules, labelling, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from campaign import MHZ, PMS, make_campaign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.resample import daily_means, hourly_means, resample
from qsec.quantities import IncompatibleQuantities

T0 = pd.Timestamp("2026-05-17 12:00:00", tz="UTC")


def records(seconds: list[float], values: list[float], device: str = "kit-a", sensor: str = PMS,
            flags: list[int] | None = None, quantity: str = "pm2_5") -> pd.DataFrame:
    return pd.DataFrame({"device": device, "time": [T0 + pd.Timedelta(seconds=s) for s in seconds],
                         "sensor": sensor, "flags": flags or [0] * len(seconds), quantity: values})


def row(frame: pd.DataFrame, **where: object) -> pd.Series:
    hit = frame
    for name, value in where.items():
        hit = hit[hit[name] == value]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_a_minute_of_four_values_gives_exact_statistics_count_and_coverage():
    out = resample(records([0, 15, 30, 45], [1.0, 2.0, 3.0, 4.0]), "1min")
    got = row(out, quantity="pm2_5")
    assert got["time"] == T0
    assert (got["mean"], got["median"], got["min"], got["max"]) == (2.5, 2.5, 1.0, 4.0)
    assert got["q05"] == pytest.approx(1.15) and got["q25"] == pytest.approx(1.75)
    assert got["q75"] == pytest.approx(3.25) and got["q95"] == pytest.approx(3.85)
    assert (got["count"], got["expected"], got["excluded"], got["reason"]) == (4, 60.0, 0, "")
    assert got["coverage"] == pytest.approx(4 / 60)


def test_quantiles_match_numpy_linear_interpolation_on_an_odd_sized_window():
    values = [7.0, 1.0, 4.0, 9.0, 3.0]
    out = resample(records([0, 1, 2, 3, 4], values), "1min", stats=("quantiles",), quantiles=(0.1, 0.5, 0.9))
    got = row(out, quantity="pm2_5")
    assert [got["q10"], got["q50"], got["q90"]] == pytest.approx(np.quantile(values, [0.1, 0.5, 0.9]))
    assert "mean" not in out.columns


def test_windows_are_left_closed_and_labelled_by_their_start_or_their_end():
    frame = records([59.999, 60.0], [1.0, 2.0])
    start = resample(frame, "1min", stats=("mean",))
    assert start["time"].tolist() == [T0, T0 + pd.Timedelta(minutes=1)]
    assert start["mean"].tolist() == [1.0, 2.0]
    end = resample(frame, "1min", stats=("mean",), label="end")
    assert end["time"].tolist() == [T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2)]
    with pytest.raises(ValueError, match="label"):
        resample(frame, "1min", label="middle")  # type: ignore[arg-type]


def test_daily_windows_are_utc_days_whatever_the_local_time_zone_and_its_dst_change():
    # Europe/Paris moves to summer time on 2026-03-29 at 01:00 UTC; a UTC day stays 24 h.
    times = pd.date_range("2026-03-28 22:00", "2026-03-30 02:00", freq="1h", tz="UTC")
    frame = pd.DataFrame({"device": "kit-a", "time": times, "co2": np.arange(len(times), dtype=float)})
    utc = resample(frame, "1D", stats=("mean",), rate_hz=1 / 3600)
    paris = resample(frame.assign(time=times.tz_convert("Europe/Paris")), "1D", stats=("mean",), rate_hz=1 / 3600)
    pd.testing.assert_frame_equal(utc, paris)
    assert utc["time"].tolist() == [pd.Timestamp(d, tz="UTC") for d in ("2026-03-28", "2026-03-29", "2026-03-30")]
    assert utc["count"].tolist() == [2, 24, 3]
    assert utc["coverage"].tolist() == pytest.approx([2 / 24, 1.0, 3 / 24])


def test_flagged_values_are_excluded_on_request_and_counted():
    frame = records([0, 10, 20, 30], [1.0, 100.0, 3.0, 5.0], flags=[0, 512, 4, 0])
    kept = row(resample(frame, "1min", exclude=512), quantity="pm2_5")
    assert (kept["mean"], kept["count"], kept["excluded"]) == (3.0, 3, 1)
    everything = row(resample(frame, "1min"), quantity="pm2_5")
    assert (everything["mean"], everything["count"], everything["excluded"]) == (27.25, 4, 0)
    with pytest.raises(ValueError, match="flags"):
        resample(frame.drop(columns="flags"), "1min", exclude=512)


def test_a_window_whose_values_are_all_flagged_has_no_value_and_says_why():
    got = row(resample(records([0, 10], [1.0, 2.0], flags=[256, 256]), "1min", exclude=256), quantity="pm2_5")
    assert np.isnan(got["mean"]) and np.isnan(got["q95"])
    assert (got["count"], got["excluded"], got["reason"]) == (0, 2, "no_valid_value")


def test_below_the_completeness_rule_statistics_are_nan_with_a_reason():
    frame = records(list(range(40)), [float(i) for i in range(40)])
    got = row(resample(frame, "1min", min_coverage=0.75), quantity="pm2_5")
    assert np.isnan(got["mean"]) and got["count"] == 40 and got["reason"] == "low_coverage"
    assert row(resample(frame, "1min", min_coverage=0.6), quantity="pm2_5")["mean"] == 19.5


def test_an_hourly_mean_needs_45_minutes_of_a_1_hz_sensor():
    full = records(list(range(45 * 60)), [2.0] * (45 * 60))
    short = records(list(range(45 * 60 - 1)), [2.0] * (45 * 60 - 1), device="kit-b")
    out = hourly_means(pd.concat([full, short], ignore_index=True))
    assert row(out, device="kit-a")["mean"] == 2.0
    assert np.isnan(row(out, device="kit-b")["mean"]) and row(out, device="kit-b")["reason"] == "low_coverage"


def test_a_daily_mean_needs_18_valid_hours():
    hours = pd.date_range("2026-05-17", periods=24, freq="1h", tz="UTC")
    naive = hours.tz_localize(None).to_numpy()[:, None] + np.arange(0, 3600, 60).astype("timedelta64[s]")
    stamps = pd.DatetimeIndex(naive.ravel()).tz_localize("UTC")
    frame = pd.DataFrame({"device": "kit-a", "time": stamps, "co2": 400.0 + np.repeat(np.arange(24), 60)})
    rate = {"winsen-mhz19": 1 / 60}
    frame["sensor"] = MHZ
    complete = daily_means(frame[frame["time"] < hours[18]], rate_hz=rate)
    assert complete["valid_hours"].tolist() == [18] and complete["mean"].tolist() == [408.5]
    short = daily_means(frame[frame["time"] < hours[17]], rate_hz=rate)
    assert np.isnan(short["mean"].iloc[0]) and short["reason"].tolist() == ["low_coverage"]
    assert short["coverage"].tolist() == [17 / 24]


def test_the_nominal_rate_comes_from_the_sensor_model_and_can_be_set():
    frame = pd.concat([records([0, 2], [1.0, 2.0]), records([0], [400.0], sensor=MHZ, quantity="co2")])
    default = resample(frame, "1min")
    assert row(default, quantity="co2")["expected"] == 60.0
    slow = resample(frame, "1min", rate_hz={MHZ: 0.5})
    assert row(slow, quantity="co2")["expected"] == 30.0 and row(slow, quantity="pm2_5")["expected"] == 60.0
    assert row(resample(frame, "1min", rate_hz=2.0), quantity="pm2_5")["expected"] == 120.0
    with pytest.raises(ValueError, match="rate_hz"):
        resample(frame, "1min", rate_hz=0.0)


def test_long_and_wide_frames_and_unsorted_rows_give_the_same_result():
    wide = make_campaign(hours=0.25).records
    expected = resample(wide, "1min")
    long = wide.melt(id_vars=["device", "time", "sensor", "flags"], value_vars=["pm2_5", "co2", "latitude"],
                     var_name="quantity", value_name="value")
    from_long = resample(long, "1min")
    subset = expected[expected["quantity"].isin(["pm2_5", "co2", "latitude"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_long, subset)
    shuffled = wide.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(resample(shuffled, "1min"), expected)


def test_a_cube_resamples_to_a_dense_dataset_matching_the_frame_result():
    wide = make_campaign(hours=0.25).records
    wide = wide[wide["pm2_5"].notna()].drop_duplicates(["device", "time"])
    cube = xr.Dataset(
        {"pm2_5": (("device", "time"), wide.pivot_table(index="device", columns="time", values="pm2_5").values,
                   {"units": "µg/m³", "sensor": PMS})},
        coords={"device": ["kit-01", "kit-02", "kit-03"],
                "time": np.sort(wide.loc[wide["pm2_5"].notna(), "time"].unique())})
    out = resample(cube, "1min", label="end")
    assert isinstance(out, xr.Dataset) and out["pm2_5_mean"].dims == ("device", "time")
    frame = resample(wide, "1min", label="end", quantities=["pm2_5"])
    observed = out["pm2_5_count"].values.ravel() > 0
    np.testing.assert_allclose(out["pm2_5_mean"].values.ravel()[observed], frame["mean"].to_numpy())
    assert (out["pm2_5_reason"].values.ravel()[~observed] == 1).all()
    assert out["pm2_5_mean"].attrs["units"] == "µg/m³" and "cell_methods" in out["pm2_5_mean"].attrs
    assert out["pm2_5_count"].dtype == np.int64 and out["pm2_5_coverage"].attrs["units"] == "1"


def test_pooling_quantities_requires_them_to_be_compatible():
    frame = records([0, 1], [10.0, 12.0]).assign(pm2_5_cf1=[20.0, 22.0])
    pooled = row(resample(frame, "1min", combine={"pm2_5": ["pm2_5", "pm2_5_cf1"]}), quantity="pm2_5")
    assert (pooled["count"], pooled["mean"]) == (4, 16.0)
    voc = records([0, 1], [100.0, 120.0], quantity="voc_index").assign(tvoc=[300.0, 310.0])
    with pytest.raises(IncompatibleQuantities, match="voc_index"):
        resample(voc, "1min", combine={"voc": ["voc_index", "tvoc"]})
    separate = resample(voc, "1min")
    assert separate["quantity"].tolist() == ["tvoc", "voc_index"]
    cube = xr.Dataset({"voc_index": (("device", "time"), [[100.0]]), "tvoc": (("device", "time"), [[300.0]])},
                      coords={"device": ["kit-a"], "time": [np.datetime64("2026-05-17T12:00")]})
    with pytest.raises(ValueError, match="records"):
        resample(cube, "1min", combine={"voc": ["voc_index", "tvoc"]})


def test_a_window_that_is_not_a_fixed_duration_or_an_unknown_statistic_is_refused():
    frame = records([0], [1.0])
    for freq in ("1MS", "2W", "0s"):
        with pytest.raises(ValueError, match="freq"):
            resample(frame, freq)
    with pytest.raises(ValueError, match="statistics"):
        resample(frame, "1min", stats=("mode",))
    with pytest.raises(ValueError, match="quantiles"):
        resample(frame, "1min", quantiles=(1.5,))


samples = st.lists(
    st.tuples(st.sampled_from(["kit-a", "kit-b"]), st.integers(0, 3 * 3600 * 1000),
              st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), st.sampled_from([0, 4, 256, 260])),
    min_size=1, max_size=300)


def as_frame(rows: list[tuple[str, int, float, int]]) -> pd.DataFrame:
    device, ms, value, flags = zip(*rows, strict=True)
    return pd.DataFrame({"device": list(device), "time": T0 + pd.to_timedelta(list(ms), unit="ms"),
                         "flags": list(flags), "pm2_5": list(value)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, st.sampled_from(["1s", "1min", "7min", "1h"]))
def test_resampling_conserves_counts_and_coverage_stays_between_0_and_1(rows, freq):
    frame = as_frame(rows)
    out = resample(frame, freq, exclude=256)
    finite = int(np.isfinite(frame["pm2_5"]).sum())
    assert int(out["count"].sum() + out["excluded"].sum()) == finite
    assert int(out["excluded"].sum()) == int((np.isfinite(frame["pm2_5"]) & (frame["flags"] & 256 > 0)).sum())
    assert ((out["coverage"] >= 0) & (out["coverage"] <= 1)).all()
    used = out[out["count"] > 0]
    assert (used["min"] <= used["median"]).all() and (used["median"] <= used["max"]).all()
    assert out.loc[out["count"] == 0, "mean"].isna().all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples)
def test_excluding_bits_no_record_carries_equals_including_everything(rows):
    frame = as_frame(rows)
    pd.testing.assert_frame_equal(resample(frame, "1min", exclude=1 << 14), resample(frame, "1min"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples)
def test_statistics_agree_with_a_pandas_groupby(rows):
    frame = as_frame(rows).dropna(subset=["pm2_5"])
    out = resample(frame, "1min", quantiles=(0.05, 0.95))
    grouped = frame.groupby(["device", frame["time"].dt.floor("1min")])["pm2_5"]
    reference = pd.DataFrame({"mean": grouped.mean(), "median": grouped.median(), "q05": grouped.quantile(0.05),
                              "q95": grouped.quantile(0.95), "count": grouped.count()})
    np.testing.assert_allclose(out[["mean", "median", "q05", "q95"]].to_numpy(),
                               reference[["mean", "median", "q05", "q95"]].to_numpy(), rtol=1e-9, atol=1e-6)
    assert out["count"].tolist() == reference["count"].tolist()
