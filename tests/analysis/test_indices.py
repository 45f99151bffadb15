"""EAQI bands for PM2.5."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.indices import EAQI_PM2_5, eaqi_pm2_5_band


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
