"""Daily statistics in local time (Europe/Paris), across DST changes, with completeness."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.daily import DAILY_COLUMNS, as_utc, daily_statistics, day_lengths_h, hourly_means

PARIS = "Europe/Paris"


def minutely(start: str, end: str, value: float | np.ndarray = 1.0) -> pd.Series:
    """One value a minute over [start, end) local Paris time."""
    times = pd.date_range(start, end, freq="1min", tz=PARIS, inclusive="left")
    return pd.Series(value, index=times, dtype="float64")


def test_the_day_summer_time_starts_has_23_hours_and_expects_23_hours_of_records():
    days = daily_statistics(minutely("2026-03-28", "2026-03-31"), nominal_rate_hz=1 / 60)
    spring = days.set_index("date").loc[dt.date(2026, 3, 29)]
    assert spring["day_hours"] == 23
    assert spring["expected"] == 23 * 60 and spring["count"] == 23 * 60
    assert spring["coverage"] == 1.0 and spring["valid_hours"] == 23 and spring["complete"]
    assert days["day_hours"].tolist() == [24, 23, 24]


def test_the_day_summer_time_ends_has_25_hours_and_two_distinct_hours_at_2_am():
    days = daily_statistics(minutely("2026-10-24", "2026-10-27"), nominal_rate_hz=1 / 60)
    autumn = days.set_index("date").loc[dt.date(2026, 10, 25)]
    assert (autumn["day_hours"], autumn["count"], autumn["expected"], autumn["valid_hours"]) == (25, 1500, 1500, 25)
    hours = hourly_means(minutely("2026-10-25", "2026-10-26"), nominal_rate_hz=1 / 60)
    local = pd.DatetimeIndex(hours["hour"]).tz_convert(PARIS)
    assert list(local.strftime("%H")).count("02") == 2  # 02:00 CEST and 02:00 CET
    assert hours["hour"].is_unique and len(hours) == 25


def test_a_day_with_17_valid_hours_is_incomplete_and_with_18_complete():
    values = minutely("2026-05-17 00:00", "2026-05-17 18:00")
    short = daily_statistics(values.iloc[: 17 * 60], nominal_rate_hz=1 / 60)
    full = daily_statistics(values, nominal_rate_hz=1 / 60)
    assert short["valid_hours"].tolist() == [17] and not short["complete"].iloc[0]
    assert full["valid_hours"].tolist() == [18] and full["complete"].iloc[0]
    assert full["coverage"].iloc[0] == pytest.approx(18 / 24)


def test_an_hour_needs_three_quarters_of_its_records_to_be_valid():
    values = minutely("2026-05-17 10:00", "2026-05-17 12:00")
    values = values[(values.index.hour == 10) | (values.index.minute < 44)]  # 11:00 has 44 of 60 minutes
    hours = hourly_means(values, nominal_rate_hz=1 / 60)
    assert hours["valid"].tolist() == [True, False]
    assert hours["coverage"].tolist() == [1.0, pytest.approx(44 / 60)]


def test_the_daily_mean_is_the_mean_of_hourly_means_so_a_burst_does_not_outweigh_the_day():
    values = minutely("2026-05-17", "2026-05-18", np.where(np.arange(1440) < 60, 100.0, 10.0))
    burst = pd.Series(100.0, index=pd.date_range("2026-05-17 00:00", periods=600, freq="1s", tz=PARIS))
    days = daily_statistics(pd.concat([values, burst]).sort_index(), nominal_rate_hz=1 / 60)
    assert days["mean"].iloc[0] == pytest.approx((100 + 23 * 10) / 24)
    assert days["max_hourly"].iloc[0] == 100.0 and days["min_hourly"].iloc[0] == 10.0
    assert list(days.columns) == DAILY_COLUMNS


def test_local_days_differ_from_utc_days():
    # 23:30 UTC on 16 May is 01:30 on 17 May in Paris (UTC+2)
    values = pd.Series([5.0], index=pd.DatetimeIndex([pd.Timestamp("2026-05-16 23:30")]))
    assert daily_statistics(values)["date"].tolist() == [dt.date(2026, 5, 17)]
    assert daily_statistics(values, tz="UTC")["date"].tolist() == [dt.date(2026, 5, 16)]


def test_values_may_come_with_a_separate_time_column_and_missing_values_are_not_counted():
    times = pd.Series(pd.to_datetime(["2026-05-17 10:00:00", "2026-05-17 10:00:01", "2026-05-17 10:00:02"]))
    values = pd.Series([1.0, np.nan, 3.0])
    hours = hourly_means(values, times)
    assert hours["count"].tolist() == [2] and hours["mean"].tolist() == [2.0]


def test_day_lengths_follow_the_zone():
    dates = pd.Series([dt.date(2026, 3, 29), dt.date(2026, 10, 25), dt.date(2026, 7, 1)])
    assert day_lengths_h(dates).tolist() == [23, 25, 24]
    assert day_lengths_h(dates, tz="UTC").tolist() == [24, 24, 24]
    assert day_lengths_h(pd.Series([dt.date(2026, 3, 8)]), tz="America/New_York").tolist() == [23]


def test_as_utc_reads_naive_times_as_utc_and_converts_aware_ones():
    got = as_utc(pd.Series([pd.Timestamp("2026-05-17 12:00"), pd.Timestamp("2026-05-17 14:00", tz=PARIS)]))
    assert got.tolist() == [pd.Timestamp("2026-05-17 12:00", tz="UTC")] * 2


@pytest.mark.parametrize(("kwargs", "name"), [({"nominal_rate_hz": 0}, "nominal_rate_hz"),
                                              ({"min_hour_coverage": 1.5}, "min_hour_coverage"),
                                              ({"min_valid_hours": -1}, "min_valid_hours")])
def test_bad_parameters_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        daily_statistics(minutely("2026-05-17", "2026-05-17 01:00"), **kwargs)


@settings(max_examples=40, deadline=None)
@given(seconds=st.lists(st.integers(0, 3 * 366 * 86400), min_size=1, max_size=200))
def test_every_finite_value_lands_in_exactly_one_day_and_each_day_holds_its_hours(seconds):
    times = pd.Series(pd.Timestamp("2025-01-01") + pd.to_timedelta(seconds, unit="s"))
    days = daily_statistics(pd.Series(1.0, index=range(len(times))), times)
    assert days["count"].sum() == len(seconds)
    assert days["day_hours"].isin([23, 24, 25]).all()
    hours = hourly_means(pd.Series(1.0, index=range(len(times))), times)
    per_day = hours.groupby("date").size()
    assert (per_day.to_numpy() <= days.set_index("date").loc[per_day.index, "day_hours"].to_numpy()).all()
