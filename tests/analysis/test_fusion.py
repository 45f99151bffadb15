"""GPS fusion: a tolerance-bounded as-of join of sensor records onto a tracker's fixes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from campaign import GPS, make_campaign
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.fusion import SENSOR_LAG_S, attach_positions, split_fixes

T0 = pd.Timestamp("2026-05-17 12:00:00")  # naive UTC


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


@pytest.fixture
def fixes() -> pd.DataFrame:
    """Tracker gps-a fixes every 10 s moving north-east; kit-b has its own receiver."""
    return pd.DataFrame(
        {
            "device": ["gps-a", "gps-a", "gps-a", "kit-b"],
            "time": [at(0), at(10), at(20), at(0)],
            "latitude": [48.000, 48.001, 48.002, 49.0],
            "longitude": [2.000, 2.001, 2.002, 3.0],
            "hdop": [0.9, 1.5, 1.0, 2.0],
        }
    )


def records(*pairs: tuple[str, float], sensor: str = "plantower-pms5003") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device": [d for d, _ in pairs],
            "time": [at(s) for _, s in pairs],
            "sensor": sensor,
            "pm2_5": np.arange(len(pairs), dtype=float),
        }
    )


TRACKERS = {"kit-a": "gps-a"}


def test_nearest_takes_the_closest_fix_within_tolerance_and_keeps_the_join_quality(fixes):
    got = attach_positions(records(("kit-a", 4), ("kit-a", 6), ("kit-a", 12)), fixes, trackers=TRACKERS, lag_s=0)
    assert got["latitude"].tolist() == [48.000, 48.001, 48.001]
    assert got["fix_offset_s"].tolist() == [-4.0, 4.0, -2.0]
    assert got["hdop"].tolist() == [0.9, 1.5, 1.5]
    assert got["fix_time"].tolist() == [pd.Timestamp(at(t), tz="UTC") for t in (0, 10, 10)]
    assert got["tracker"].tolist() == ["gps-a"] * 3
    assert not got["interpolated"].any()


def test_backward_only_takes_a_fix_at_or_before_the_record(fixes):
    got = attach_positions(records(("kit-a", 4), ("kit-a", 6), ("kit-a", 10)), fixes, trackers=TRACKERS,
                           lag_s=0, method="backward")
    assert got["latitude"].tolist()[0] == 48.000
    assert np.isnan(got["latitude"].iloc[1])  # the fix 6 s before is beyond 5 s; the one after is not allowed
    assert got["fix_offset_s"].tolist()[2] == 0.0


def test_a_record_without_a_fix_within_tolerance_gets_no_position(fixes):
    got = attach_positions(records(("kit-a", 40), ("kit-c", 0)), fixes, trackers=TRACKERS, lag_s=0)
    assert got[["latitude", "longitude", "hdop", "fix_offset_s"]].isna().all(axis=None)
    assert got["fix_time"].isna().all()


def test_interpolation_lies_between_the_two_fixes_around_the_record(fixes):
    got = attach_positions(records(("kit-a", 2.5), ("kit-a", 10), ("kit-a", 23)), fixes, trackers=TRACKERS,
                           lag_s=0, method="interpolate", tolerance_s=8)
    assert got["latitude"].iloc[0] == pytest.approx(48.00025)
    assert got["longitude"].iloc[0] == pytest.approx(2.00025)
    assert got["interpolated"].tolist() == [True, False, False]  # on a fix; after the last fix
    assert got["hdop"].iloc[0] == 1.5  # the worse of the two fixes
    assert got["fix_offset_s"].iloc[0] == pytest.approx(7.5)  # to the farther fix
    assert got["latitude"].iloc[2] == 48.002  # only one fix within tolerance: that fix


def test_the_sensor_lag_is_subtracted_before_the_join(fixes):
    pms = records(("kit-a", 14))  # minus 4.3 s: 9.7 s, nearest fix at 10 s
    got = attach_positions(pms, fixes, trackers=TRACKERS)
    assert got["lag_s"].iloc[0] == SENSOR_LAG_S["plantower-pms5003"] == 4.3
    assert got["latitude"].iloc[0] == 48.001
    assert got["fix_offset_s"].iloc[0] == pytest.approx(0.3)
    slow = attach_positions(pms, fixes, trackers=TRACKERS, lag_s={"plantower-pms5003": 14.0})
    assert slow["latitude"].iloc[0] == 48.000
    assert attach_positions(pms, fixes, trackers=TRACKERS, lag_s=0.0)["fix_offset_s"].iloc[0] == -4.0


def test_a_sensor_model_missing_from_the_lag_table_gets_no_lag(fixes):
    got = attach_positions(records(("kit-a", 10), sensor="acme-unknown"), fixes, trackers=TRACKERS)
    assert got["lag_s"].iloc[0] == 0.0


def test_devices_not_in_the_tracker_mapping_use_their_own_fixes(fixes):
    got = attach_positions(records(("kit-a", 0), ("kit-b", 1)), fixes, trackers=TRACKERS, lag_s=0)
    assert got["tracker"].tolist() == ["gps-a", "kit-b"]
    assert got["latitude"].tolist() == [48.000, 49.0]


def test_fixes_without_a_position_or_without_a_fix_are_ignored(fixes):
    fixes = pd.concat(
        [fixes, pd.DataFrame({"device": ["gps-a", "gps-a"], "time": [at(30), at(31)],
                              "latitude": [np.nan, 50.0], "longitude": [2.0, 2.0], "fix_quality": [1, 0]})],
        ignore_index=True,
    )
    got = attach_positions(records(("kit-a", 30)), fixes, trackers=TRACKERS, lag_s=0)
    assert np.isnan(got["latitude"].iloc[0])


def test_records_are_left_untouched_and_come_back_in_their_order_with_their_index(fixes):
    recs = records(("kit-a", 12), ("kit-b", 0), ("kit-a", 1)).set_axis([30, 10, 20])
    before = recs.copy()
    got = attach_positions(recs, fixes, trackers=TRACKERS, lag_s=0)
    pd.testing.assert_frame_equal(recs, before)
    assert got.index.tolist() == [30, 10, 20]
    assert got["latitude"].tolist() == [48.001, 49.0, 48.000]


def test_aware_and_naive_times_are_the_same_instants(fixes):
    recs = records(("kit-a", 12))
    aware = recs.assign(time=recs["time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"))
    a = attach_positions(recs, fixes, trackers=TRACKERS, lag_s=0)
    b = attach_positions(aware, fixes, trackers=TRACKERS, lag_s=0)
    assert a["latitude"].tolist() == b["latitude"].tolist()


def test_a_record_or_fix_without_a_time_takes_or_gives_no_position(fixes):
    recs = records(("kit-a", 0), ("kit-a", 10))
    recs.loc[0, "time"] = pd.NaT
    fixes.loc[1, "time"] = pd.NaT  # the 10 s fix
    got = attach_positions(recs, fixes, trackers=TRACKERS, lag_s=0)
    assert np.isnan(got["latitude"].iloc[0]) and np.isnan(got["latitude"].iloc[1])


def test_no_fixes_at_all_gives_no_positions(fixes):
    got = attach_positions(records(("kit-a", 0)), fixes.iloc[:0], trackers=TRACKERS)
    assert got["latitude"].isna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tolerance_s": -1.0}, "tolerance_s"), ({"tolerance_s": float("nan")}, "tolerance_s"),
     ({"method": "forward"}, "method"), ({"lag_s": -2.0}, "lag_s")],
)
def test_bad_arguments_are_refused_with_a_message_naming_them(fixes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attach_positions(records(("kit-a", 0)), fixes, **kwargs)


def test_missing_columns_are_named(fixes):
    with pytest.raises(KeyError, match="latitude"):
        attach_positions(records(("kit-a", 0)), fixes.drop(columns=["latitude"]))


@pytest.mark.parametrize("direction", ["nearest", "backward"])
def test_the_join_agrees_with_pandas_merge_asof(direction):
    rng = np.random.default_rng(7)
    n_fix, n_rec = 400, 2000
    fixes = pd.DataFrame({"device": rng.choice(["g1", "g2", "g3"], n_fix),
                          "time": T0 + pd.to_timedelta(np.sort(rng.uniform(0, 3600, n_fix)).round(3), unit="s"),
                          "latitude": rng.uniform(48, 49, n_fix), "longitude": rng.uniform(2, 3, n_fix)})
    fixes = fixes.drop_duplicates(["device", "time"])
    recs = pd.DataFrame({"device": rng.choice(["g1", "g2", "g3", "g4"], n_rec),
                         "time": T0 + pd.to_timedelta(rng.uniform(-60, 3660, n_rec).round(3), unit="s")})
    ours = attach_positions(recs, fixes, method=direction, lag_s=0.0, tolerance_s=5)
    left = recs.reset_index().sort_values("time")
    theirs = pd.merge_asof(left, fixes.sort_values("time"), on="time", by="device", direction=direction,
                           tolerance=pd.Timedelta(seconds=5)).set_index("index").loc[recs.index]
    found = theirs["latitude"].notna().to_numpy()
    np.testing.assert_array_equal(ours["latitude"].notna().to_numpy(), found)
    # merge_asof breaks exact distance ties towards the earlier fix, as we do
    np.testing.assert_allclose(ours["latitude"].to_numpy()[found], theirs["latitude"].to_numpy()[found])


tracks = st.lists(st.floats(0, 600, allow_nan=False).map(lambda s: round(s, 3)), min_size=0, max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    fix_times=st.tuples(tracks, tracks),
    record_times=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(-20, 620, allow_nan=False)),
                          max_size=40),
    tolerance=st.floats(0, 30),
    method=st.sampled_from(["nearest", "backward", "interpolate"]),
)
def test_a_join_never_invents_a_position(fix_times, record_times, tolerance, method):
    """Every position comes from fixes of the record's own tracker within the tolerance, or is NaN."""
    rows = [("a", t) for t in sorted(set(fix_times[0]))] + [("b", t) for t in sorted(set(fix_times[1]))]
    fixes = pd.DataFrame({"device": [d for d, _ in rows],
                          "time": pd.Series([at(t) for _, t in rows], dtype="datetime64[us]")})
    fixes["latitude"] = np.arange(len(fixes), dtype=float)  # a fix's latitude is its own id
    fixes["longitude"] = 0.0
    recs = pd.DataFrame({"device": [d for d, _ in record_times],
                         "time": pd.Series([at(t) for _, t in record_times], dtype="datetime64[us]")})
    got = attach_positions(recs, fixes, tolerance_s=tolerance, method=method, lag_s=0.0)
    for device, t, lat in zip(recs["device"], recs["time"], got["latitude"], strict=True):
        mine = fixes[fixes["device"] == device]
        # times are whole microseconds and the tolerance counts to the microsecond (round(tolerance_s * 1e6)):
        # compare in integer microseconds, so a fix 1 µs outside a zero tolerance is outside
        gap_us = (mine["time"] - t) // pd.Timedelta(1, "us")
        near = mine[(gap_us.abs() <= round(tolerance * 1e6)) & ((gap_us <= 0) | (method != "backward"))]
        if np.isnan(lat):
            assert near.empty, "a fix within tolerance was there but no position was given"
        else:
            assert near["latitude"].min() - 1e-9 <= lat <= near["latitude"].max() + 1e-9


def test_on_a_campaign_every_pm_record_gets_its_kits_position_from_the_same_second():
    readings = make_campaign(hours=0.25).records
    sensors, fixes = split_fixes(readings)
    assert set(fixes["sensor"]) == {GPS}
    got = attach_positions(sensors, fixes, lag_s=0.0, tolerance_s=1.0)
    assert got["latitude"].notna().mean() > 0.99
    assert got["fix_offset_s"].abs().max() <= 1.0
    assert (got["tracker"] == got["device"]).all()
    assert got["hdop"].dropna().between(0.7, 1.4).all()
