"""Air-quality index bands.

Sources
-------
- European Environment Agency, European Air Quality Index (EAQI), bands
  for PM2.5 revised in 2021 (https://airindex.eea.europa.eu/):
  0-10, 10-20, 20-25, 25-50, 50-75, 75-800 µg/m³.
- The French ATMO index (arrêté du 10 juillet 2020) uses the same PM2.5
  thresholds; its French labels are the ones shown on public screens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class Band:
    """One band of an index: values up to ``upper`` (inclusive) [unit of the index]."""

    key: str
    upper: float
    label_en: str
    label_fr: str
    colour: str  # background colour, CSS hex, from the EEA palette
    ink: str  # text colour readable on ``colour``


EAQI_PM2_5: tuple[Band, ...] = (
    Band("good", 10.0, "Good", "Bon", "#50f0e6", "#000000"),
    Band("fair", 20.0, "Fair", "Moyen", "#50ccaa", "#000000"),
    Band("moderate", 25.0, "Moderate", "Dégradé", "#f0e641", "#000000"),
    Band("poor", 50.0, "Poor", "Mauvais", "#ff5050", "#000000"),
    Band("very_poor", 75.0, "Very poor", "Très mauvais", "#960032", "#ffffff"),
    Band("extremely_poor", float("inf"), "Extremely poor", "Extrêmement mauvais", "#7d2181", "#ffffff"),
)
"""EAQI bands for PM2.5 [µg/m³], lowest first."""


def eaqi_pm2_5_band(pm2_5: npt.ArrayLike | pd.Series) -> pd.Series:
    """Return the EAQI band key of each PM2.5 concentration.

    Parameters
    ----------
    pm2_5 : array-like or Series [µg/m³]
        Mass concentrations; NaN where missing.

    Returns
    -------
    pandas.Series of str
        A key of :data:`EAQI_PM2_5` (``"good"`` … ``"extremely_poor"``), or
        NaN where the input is missing or negative.  A Series input keeps
        its index.

    Notes
    -----
    A band includes its upper bound: 10.0 µg/m³ is ``good``, 10.1 ``fair``.
    The EAQI is defined on hourly (and, for PM, running 24 h) means; applied
    to an instantaneous value, as on live screens, it is indicative only.
    """
    values = pd.Series(pm2_5, dtype="float64") if not isinstance(pm2_5, pd.Series) else pm2_5.astype("float64")
    uppers = np.array([band.upper for band in EAQI_PM2_5])
    keys = np.array([band.key for band in EAQI_PM2_5], dtype=object)
    data = values.to_numpy()
    position = np.searchsorted(uppers, data, side="left").clip(0, len(uppers) - 1)
    result = np.where(np.isfinite(data) & (data >= 0), keys[position], None)
    return pd.Series(result, index=values.index, dtype="str")
