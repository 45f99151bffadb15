"""Trips: stops and moves, distances, speeds, mode guess and exposure per segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.fusion import attach_positions
from analysis.trips import (
    EARTH_RADIUS_M,
    exposure_weights,
    guess_mode,
    haversine_m,
    segment,
    streams,
    summarise,
)

T0 = pd.Timestamp("2026-05-17 08:00:00")
M_PER_DEG = EARTH_RADIUS_M * np.pi / 180  # [m/°] along a meridian of the sphere


def journey(legs: list[tuple[float, float, float]], device: str = "kit-a", noise_m: float = 1.0,
            seed: int = 0, start: pd.Timestamp = T0) -> pd.DataFrame:
    """1 Hz positions for legs of (duration [s], east speed [m/s], north speed [m/s]), with GPS noise."""
    rng = np.random.default_rng(seed)
    east = np.concatenate([np.full(int(d), ve) for d, ve, _ in legs]).cumsum()
    north = np.concatenate([np.full(int(d), vn) for d, _, vn in legs]).cumsum()
    n = len(east)
    lat0, lon0 = 48.85, 2.35
    lat = lat0 + (north + rng.normal(0, noise_m, n)) / M_PER_DEG
    lon = lon0 + (east + rng.normal(0, noise_m, n)) / (M_PER_DEG * np.cos(np.radians(lat0)))
    return pd.DataFrame({"device": device, "time": start + pd.to_timedelta(np.arange(n), unit="s"),
                         "latitude": lat, "longitude": lon, "pm2_5": 10.0})


WALK_STOP_BIKE = [(1200, 1.3, 0.0), (1200, 0.0, 0.0), (1200, 0.0, 5.0)]


def test_haversine_gives_the_great_circle_distance_on_the_mean_earth_sphere():
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195.08, abs=0.01)
    assert haversine_m(48.8566, 2.3522, 48.8566, 2.3522) == 0.0
    # Paris (Notre-Dame) to Versailles (château), about 17.2 km as the crow flies
    assert haversine_m(48.8530, 2.3499, 48.8049, 2.1204) == pytest.approx(17_600, rel=0.02)
    assert np.isnan(haversine_m(np.nan, 0, 0, 0))


def test_a_walk_a_stop_and_a_ride_are_two_moves_around_a_stop_with_their_modes():
    trips = summarise(segment(journey(WALK_STOP_BIKE)))
    assert trips["kind"].tolist() == ["move", "stop", "move"]
    assert trips["mode"].iloc[0] == "walk" and trips["mode"].iloc[2] == "bike"
    assert pd.isna(trips["mode"].iloc[1])
    assert trips["distance_m"].iloc[0] == pytest.approx(1200 * 1.3, rel=0.08)
    assert trips["distance_m"].iloc[2] == pytest.approx(1200 * 5.0, rel=0.05)
    assert trips["speed_median_ms"].iloc[2] == pytest.approx(5.0, rel=0.05)
    assert trips["points"].sum() == 3600
    # the stop starts when the walker enters its 50 m radius, not later than the real stop
    stop = trips.iloc[1]
    assert T0 + pd.Timedelta(seconds=1080) <= stop["start"].tz_localize(None) <= T0 + pd.Timedelta(seconds=1200)
    assert stop["duration_s"] >= 1200


def test_a_short_pause_is_not_a_stop():
    trips = summarise(segment(journey([(600, 1.3, 0), (120, 0, 0), (600, 1.3, 0)]), min_duration_s=300))
    assert trips["kind"].tolist() == ["move"]


def test_motorised_speeds_are_told_apart_from_cycling():
    trips = summarise(segment(journey([(900, 12.0, 0.0)])))
    assert trips["mode"].tolist() == ["motorised"]


def test_mode_thresholds_are_2_and_7_metres_per_second():
    assert guess_mode([0.5, 1.99, 2.0, 7.0, 7.01, np.nan]).tolist() == ["walk", "walk", "bike", "bike", "motorised", None]


def test_a_long_gap_starts_a_new_segment_and_devices_never_share_one():
    a = journey([(600, 1.3, 0)])
    b = journey([(600, 1.3, 0)], start=T0 + pd.Timedelta(hours=1))
    c = journey([(600, 1.3, 0)], device="kit-b")
    seg = segment(pd.concat([a, b, c], ignore_index=True), max_gap_s=300)
    trips = summarise(seg)
    assert len(trips) == 3
    assert trips.groupby("segment")["device"].nunique().eq(1).all()
    assert trips["device"].tolist() == ["kit-a", "kit-a", "kit-b"]
    # the step over the gap belongs to no segment
    assert trips["distance_m"].tolist() == pytest.approx([600 * 1.3] * 3, rel=0.1)


def test_gps_jumps_add_no_distance():
    points = journey([(600, 1.3, 0)])
    points.loc[300, "latitude"] += 0.1  # 11 km off for one fix
    trips = summarise(segment(points))
    assert trips["distance_m"].sum() == pytest.approx(600 * 1.3, rel=0.1)
    assert trips["speed_max_ms"].max() < 70


def test_rows_without_a_position_are_dropped_and_the_original_index_is_kept():
    points = journey([(400, 1.3, 0)]).set_axis(range(1000, 1400))
    points.loc[1005, "latitude"] = np.nan
    seg = segment(points)
    assert len(seg) == 399 and 1005 not in seg.index and seg.index[0] == 1000


def test_exposure_weights_are_the_time_to_the_next_record_capped():
    times = pd.Series(T0 + pd.to_timedelta([0, 1, 2, 3, 60, 61], unit="s"))
    w = exposure_weights(times, cap_s=10)
    assert w.tolist() == [1, 1, 1, 10, 1, 1]  # the last record stands for the median interval
    assert exposure_weights(times).tolist() == [1, 1, 1, 3, 1, 1]  # default cap: 3 × median interval


def test_exposure_weights_follow_each_device_in_any_row_order():
    times = pd.Series(T0 + pd.to_timedelta([10, 0, 0, 5, 2, 20], unit="s"))
    devices = pd.Series(["a", "a", "b", "a", "b", "b"])
    w = exposure_weights(times, devices, cap_s=100)
    # a: 0, 5, 10 -> 5, 5, (median 5); b: 0, 2, 20 -> 2, 18, (median 10)
    assert w.tolist() == [5, 5, 2, 5, 18, 10]


def test_each_sensor_of_a_kit_is_its_own_stream_so_interleaved_records_keep_their_weight():
    # a PMS5003 at whole seconds and an MH-Z19 20 ms later, every second, on one kit
    seconds = np.r_[np.arange(5), np.arange(5) + 0.02]
    records = pd.DataFrame({"device": "kit-a", "sensor": ["pms"] * 5 + ["mhz"] * 5,
                            "time": T0 + pd.to_timedelta(seconds, unit="s")})
    assert exposure_weights(records["time"], streams(records)).tolist() == pytest.approx([1.0] * 10)
    assert exposure_weights(records["time"], records["device"]).min() == pytest.approx(0.02)


def test_exposure_is_the_time_weighted_mean_so_dense_sampling_does_not_dominate():
    # 10 records at 1 Hz of 100 µg/m³, then 10 records every 10 s of 10 µg/m³ (100 s)
    seconds = np.r_[np.arange(10), 10 + 10 * np.arange(10)]
    points = pd.DataFrame({"device": "kit-a", "time": T0 + pd.to_timedelta(seconds, unit="s"),
                           "latitude": 48.85, "longitude": 2.35,
                           "pm2_5": np.r_[np.full(10, 100.0), np.full(10, 10.0)]})
    trips = summarise(segment(points, min_duration_s=60), cap_s=10)
    assert trips["kind"].tolist() == ["stop"]
    # weights: 10 × 1 s at 100, 9 × 10 s at 10, and the last record the median interval (1 s)
    assert trips["pm2_5_s"].iloc[0] == pytest.approx(101)
    assert trips["pm2_5"].iloc[0] == pytest.approx((10 * 100 + 90 * 10 + 1 * 10) / 101)


def test_missing_values_do_not_count_in_a_quantitys_mean():
    points = journey([(100, 0, 0)])
    points["pm2_5"] = np.where(np.arange(100) < 50, 20.0, np.nan)
    trips = summarise(segment(points, min_duration_s=60))
    assert trips["pm2_5"].iloc[0] == pytest.approx(20.0)
    assert trips["pm2_5_s"].iloc[0] == pytest.approx(50.0)


@pytest.mark.parametrize("bad", [{"radius_m": -1}, {"min_duration_s": float("nan")}, {"max_gap_s": float("inf")}])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        segment(journey([(60, 1, 0)]), **bad)


def test_missing_position_columns_are_named():
    with pytest.raises(KeyError, match="latitude"):
        segment(pd.DataFrame({"device": ["a"], "time": [T0], "longitude": [2.0]}))


def test_exposure_comes_from_sensor_records_placed_in_the_segments_of_the_fixes():
    fixes = journey(WALK_STOP_BIKE).drop(columns=["pm2_5"])
    segmented = segment(fixes)
    seconds = np.arange(0, 3600, 2.0)  # a sensor every 2 s: 50 µg/m³ during the stop, 10 elsewhere
    records = pd.DataFrame({"device": "kit-a", "sensor": "plantower-pms5003",
                            "time": T0 + pd.to_timedelta(seconds + 0.3, unit="s"),
                            "pm2_5": np.where((seconds >= 1300) & (seconds < 2300), 50.0, 10.0)})
    placed = attach_positions(records, segmented, columns=("latitude", "longitude", "segment"), lag_s=0.0)
    trips = summarise(segmented, records=placed)
    assert trips["kind"].tolist() == ["move", "stop", "move"]
    # the stop holds the whole 1000 s at 50 µg/m³ plus some minutes at 10 around it
    assert 35 < trips["pm2_5"].iloc[1] < 50
    assert trips["pm2_5"].iloc[0] == pytest.approx(10.0) and trips["pm2_5"].iloc[2] == pytest.approx(10.0)
    assert trips["pm2_5_s"].sum() == pytest.approx(3600, abs=2)
    assert trips["points"].sum() == 3600  # distances and speeds still come from the fixes


def test_records_without_a_segment_column_are_refused_with_how_to_get_one():
    with pytest.raises(KeyError, match="attach_positions"):
        summarise(segment(journey([(60, 1, 0)])), records=pd.DataFrame({"time": [T0], "device": ["kit-a"]}))
