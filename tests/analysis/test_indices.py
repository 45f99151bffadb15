"""EAQI bands for PM2.5 on live screens, and indices computed with their own averaging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.indices import EAQI_PM2_5, RESULT_COLUMNS, compute_index, eaqi_pm2_5_band, load_index


def test_eaqi_bands_include_their_upper_bound():
    values = [0.0, 10.0, 10.1, 20.0, 20.5, 25.0, 25.1, 50.0, 50.1, 75.0, 75.1, 900.0]
    assert eaqi_pm2_5_band(values).tolist() == [
        "good", "good", "fair", "fair", "moderate", "moderate",
        "poor", "poor", "very_poor", "very_poor", "extremely_poor", "extremely_poor",
    ]


def test_eaqi_band_is_missing_for_missing_or_negative_values_and_keeps_the_index():
    got = eaqi_pm2_5_band(pd.Series([np.nan, -1.0, 3.0], index=[10, 11, 12]))
    assert got.isna().tolist() == [True, True, False]
    assert got.index.tolist() == [10, 11, 12]


def test_eaqi_thresholds_are_the_eea_ones_in_increasing_order():
    assert [band.upper for band in EAQI_PM2_5] == [10, 20, 25, 50, 75, float("inf")]
    assert [band.label_fr for band in EAQI_PM2_5][0] == "Bon"


# --- indices computed with their own averaging (analysis.indices.compute_index) ---------------

PARIS = "Europe/Paris"


def per_minute(start: str, end: str, values: np.ndarray | float) -> pd.Series:
    """One value a minute over [start, end) in Paris time."""
    times = pd.date_range(start, end, freq="1min", tz=PARIS, inclusive="left")
    return pd.Series(values, index=times, dtype="float64")


def test_the_revised_eaqi_classifies_each_hourly_mean_and_marks_it_indicative():
    values = per_minute("2026-05-17 10:00", "2026-05-17 13:00", np.r_[np.full(60, 5.0), np.full(60, 5.5),
                                                                      np.full(60, 140.5)])
    got = compute_index(values, index="eaqi", version="2024", nominal_rate_hz=1 / 60)
    assert list(got.columns) == RESULT_COLUMNS
    assert got["category"].tolist() == ["good", "fair", "extremely_poor"]
    assert got["label_fr"].tolist() == ["Bon", "Moyen", "Extrêmement mauvais"]
    assert got["indicative"].all() and got["averaging"].eq("hourly_mean").all()
    assert (got["period_end"] - got["period_start"]).eq(pd.Timedelta(hours=1)).all()


def test_an_hour_without_enough_records_gets_no_category():
    values = per_minute("2026-05-17 10:00", "2026-05-17 11:00", 3.0).iloc[:30]
    got = compute_index(values, index="eaqi", version="2024", nominal_rate_hz=1 / 60)
    assert not got["valid"].iloc[0] and pd.isna(got["category"].iloc[0]) and got["value"].iloc[0] == 3.0


def test_atmo_uses_the_daily_mean_for_pm_over_a_25_hour_day():
    values = per_minute("2026-10-25", "2026-10-26", 20.0)  # the day summer time ends: 25 hours
    values.iloc[-60:] = 20.6  # the last hour lifts the mean above 20
    got = compute_index(values, index="atmo", pollutant="pm2_5", nominal_rate_hz=1 / 60)
    assert len(got) == 1 and got["valid"].iloc[0]
    assert got["value"].iloc[0] == pytest.approx((24 * 20 + 20.6) / 25)
    assert got["category"].iloc[0] == "degrade"
    assert got["period_end"].iloc[0] - got["period_start"].iloc[0] == pd.Timedelta(hours=25)
    assert got["period_start"].iloc[0] == pd.Timestamp("2026-10-24 22:00", tz="UTC")


def test_atmo_uses_the_highest_hourly_mean_of_the_day_for_no2():
    values = per_minute("2026-05-17", "2026-05-18", 30.0)
    values.iloc[8 * 60:9 * 60] = 95.0  # one hour at 95 µg/m³
    got = compute_index(values, index="atmo", pollutant="no2", nominal_rate_hz=1 / 60)
    assert got["value"].tolist() == [95.0] and got["category"].tolist() == ["degrade"]
    assert got["averaging"].iloc[0] == "daily_max_hourly_mean"


def test_an_averaged_value_exactly_at_a_breakpoint_keeps_the_better_class():
    # arrêté du 10 juillet 2020, annexe I: PM2.5 "c ≤ 10: Bon", NO2 "c ≤ 40: Bon", "40 < c ≤ 90: Moyen"
    pm = per_minute("2026-05-17", "2026-05-20", np.r_[np.full(1440, 10.0), np.full(1440, 10.01), np.full(1440, 9.99)])
    got = compute_index(pm, index="atmo", pollutant="pm2_5", nominal_rate_hz=1 / 60)
    assert got["category"].tolist() == ["bon", "moyen", "bon"]
    no2 = per_minute("2026-05-17", "2026-05-19", 20.0)
    no2.iloc[8 * 60:9 * 60] = 40.0  # the highest hourly mean of day 1 is exactly 40
    no2.iloc[1440 + 8 * 60:1440 + 9 * 60] = 40.1
    got = compute_index(no2, index="atmo", pollutant="no2", nominal_rate_hz=1 / 60)
    assert got["value"].tolist() == pytest.approx([40.0, 40.1]) and got["category"].tolist() == ["bon", "moyen"]


def test_a_day_with_fewer_than_18_valid_hours_gets_no_atmo_category():
    values = per_minute("2026-05-17 00:00", "2026-05-17 17:00", 5.0)
    got = compute_index(values, index="atmo", nominal_rate_hz=1 / 60)
    assert not got["valid"].iloc[0] and pd.isna(got["category"].iloc[0])


def test_the_previous_eaqi_uses_a_24_hour_running_mean_for_pm_valid_from_18_hours():
    values = per_minute("2026-05-17 00:00", "2026-05-18 06:00", 12.0)
    got = compute_index(values, index="eaqi", version="2021", nominal_rate_hz=1 / 60)
    assert got["averaging"].eq("running_24h_mean").all()
    assert got["valid"].tolist() == [False] * 17 + [True] * 13
    assert set(got.loc[got["valid"], "category"]) == {"fair"}
    last = got.iloc[-1]
    assert last["period_end"] - last["period_start"] == pd.Timedelta(hours=24)


def test_who_daily_levels_and_annual_mean():
    values = per_minute("2026-05-17", "2026-05-19", np.r_[np.full(1440, 15.0), np.full(1440, 37.6)])
    daily = compute_index(values, index="who", nominal_rate_hz=1 / 60)
    assert daily["category"].tolist() == ["aqg", "it2"]
    annual = compute_index(values, index="who", averaging="annual_mean", nominal_rate_hz=1 / 60)
    assert annual["value"].iloc[0] == pytest.approx((15 + 37.6) / 2)
    assert not annual["valid"].iloc[0]  # two days are not a year
    assert annual["period_start"].iloc[0] == pd.Timestamp("2025-12-31 23:00", tz="UTC")


def test_data_from_a_reference_instrument_may_be_marked_not_indicative():
    values = per_minute("2026-05-17 10:00", "2026-05-17 11:00", 3.0)
    assert not compute_index(values, nominal_rate_hz=1 / 60, indicative=False)["indicative"].any()


def test_unknown_indices_versions_and_scales_are_refused_with_what_exists():
    with pytest.raises(KeyError, match="available"):
        load_index("aqi-us")
    with pytest.raises(KeyError, match="2021"):
        load_index("eaqi", "1999")
    with pytest.raises(KeyError, match="pm2_5/daily_mean"):
        load_index("who").scale("o3")


def test_the_live_screen_bands_stay_on_the_version_they_were_drawn_with():
    assert EAQI_PM2_5 == load_index("eaqi", "2021").bands("pm2_5")
