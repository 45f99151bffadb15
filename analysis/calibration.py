"""Co-location calibration: versioned models fitted against a reference, applied as a derived layer.

A low-cost sensor placed next to a reference instrument for a while gives
pairs (sensor, reference) from which a correction is fitted: linear, or
linear with relative humidity (optical PM sensors over-read in humid air).
The published US EPA correction for PurpleAir sensors (two Plantower
PMS5003) is built in.  A model is a small record (id, version, kind,
coefficients, fitting window, n, R², RMSE, MAE) stored in a DuckDB table
``calibrations`` or as JSON; applying it adds new columns and never
changes the raw values, so it can be recomputed at any time.

Sources
-------
- K. K. Barkjohn, B. Gantt, A. L. Clements, "Development and application
  of a United States-wide correction for PM2.5 data collected with the
  PurpleAir sensor", Atmos. Meas. Tech. 14, 4617-4637, 2021,
  https://doi.org/10.5194/amt-14-4617-2021 — equation (US-wide, 24-h
  averages, PA CF=1 mean of channels A and B, RH from the sensor):
  PM2.5 = 0.524 × PA_cf1 - 0.0862 × RH + 5.75.
- K. K. Barkjohn, A. L. Holder, S. G. Frederick, A. L. Clements,
  "Correction and Accuracy of PurpleAir PM2.5 Measurements for Extreme
  Wildfire Smoke", Sensors 22(24), 9669, 2022,
  https://doi.org/10.3390/s22249669 — the extended correction used on
  the AirNow Fire and Smoke Map since 2021 (https://fire.airnow.gov),
  piecewise in PA_cf1 with breakpoints 30, 50, 210 and 260 µg/m³ and a
  quadratic term above 260 µg/m³.

The model record and the EPA correction live in
:mod:`analysis.calibration_model`, the DuckDB table in
:mod:`analysis.calibration_store`; both are re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.calibration_model import KINDS, CalibrationModel, Kind, epa_purpleair_2021
from analysis.calibration_store import TABLE, create_table, load, save
from analysis.daily import as_utc

__all__ = ["KINDS", "TABLE", "CalibrationModel", "Kind", "apply", "colocate", "create_table", "epa_purpleair_2021",
           "fit", "load", "predict", "save"]


def colocate(
    sensor: pd.DataFrame, reference: pd.Series, *, freq: str = "1h", min_count: int = 1
) -> pd.DataFrame:
    """Average a co-located sensor and a reference onto the same periods.

    Parameters
    ----------
    sensor : DataFrame
        Sensor records indexed by time (naive = UTC); the columns to
        average (the model's ``source`` and, if needed,
        ``relative_humidity``).
    reference : Series
        Reference concentrations indexed by the **start** of their
        averaging period (naive = UTC), already at ``freq``.
    freq : str, default ``"1h"``
        Averaging period, a pandas offset alias.
    min_count : int, default 1
        Sensor records a period needs to be kept.

    Returns
    -------
    pandas.DataFrame
        Indexed by period start [UTC]: the sensor's column means and
        ``reference``, only where all are finite.
    """
    means = sensor.set_axis(as_utc(sensor.index)).resample(freq, label="left", closed="left")
    frame = means.mean(numeric_only=True)
    counts = means.size()
    frame = frame[counts >= min_count]
    frame["reference"] = reference.set_axis(as_utc(reference.index)).reindex(frame.index)
    return frame.dropna()


def fit(
    pairs: pd.DataFrame,
    *,
    model_id: str,
    kind: Kind = "linear",
    source: str = "pm2_5",
    quantity: str = "pm2_5",
    reference: str = "reference",
    rh: str = "relative_humidity",
    device: str | None = None,
    reference_name: str = "",
    version: int = 1,
) -> CalibrationModel:
    """Fit a calibration by ordinary least squares.

    Parameters
    ----------
    pairs : DataFrame
        Co-located pairs, indexed by time (for the fitting window): the
        sensor column ``source``, the ``reference`` column and, for
        ``linear_rh``, the ``rh`` column [%].
    model_id : str
        Name of the model.
    kind : {"linear", "linear_rh"}, default "linear"
        ``reference ≈ slope × sensor + intercept`` or
        ``reference ≈ slope × sensor + rh × RH + intercept``.
    source, quantity, reference, rh : str
        Column names (see :class:`CalibrationModel`).
    device : str, optional
        Device the model is for.
    reference_name : str, optional
        Description of the reference instrument, stored with the model.
    version : int, default 1
        Version number; :func:`save` assigns the next free one.

    Returns
    -------
    CalibrationModel
        With coefficients and fit quality (R², RMSE, MAE on the pairs).

    Raises
    ------
    ValueError
        If the kind cannot be fitted, or fewer finite pairs than
        coefficients + 1 remain.
    """
    if kind not in ("linear", "linear_rh"):
        raise ValueError(f"fit() fits 'linear' or 'linear_rh', not {kind!r}; use epa_purpleair_2021() for the EPA model")
    names = [source, rh] if kind == "linear_rh" else [source]
    data = pairs[[*names, reference]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(data) < len(names) + 2:
        raise ValueError(f"need at least {len(names) + 2} finite co-located pairs to fit {kind}, got {len(data)}")
    design = np.column_stack([data[names].to_numpy(), np.ones(len(data))])
    target = data[reference].to_numpy()
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    coefficients = {"slope": float(solution[0]), "intercept": float(solution[-1])}
    if kind == "linear_rh":
        coefficients["rh"] = float(solution[1])
    residual = target - design @ solution
    total = float(np.sum((target - target.mean()) ** 2))
    times = as_utc(data.index) if isinstance(data.index, pd.DatetimeIndex) else None
    return CalibrationModel(
        model_id=model_id, version=version, kind=kind, quantity=quantity, source=source,
        coefficients=coefficients, device=device,
        window_start=None if times is None else times.min().isoformat(),
        window_end=None if times is None else times.max().isoformat(),
        n=len(data), r2=1.0 - float(np.sum(residual**2)) / total if total > 0 else None,
        rmse=float(np.sqrt(np.mean(residual**2))), mae=float(np.mean(np.abs(residual))),
        reference=reference_name,
    )


def predict(model: CalibrationModel, x: Any, rh: Any = None) -> np.ndarray:
    """Evaluate a model.

    Parameters
    ----------
    model : CalibrationModel
    x : array-like [unit of ``model.source``]
        Sensor values.
    rh : array-like [%], optional
        Relative humidity; required by every kind but ``linear``.

    Returns
    -------
    numpy.ndarray of float [unit of ``model.quantity``]
        NaN where an input is NaN.

    Notes
    -----
    Extended EPA correction, with x = PA_cf1 and w the blending weight:

    - x < 30: 0.524 x - 0.0862 RH + 5.75
    - 30 ≤ x < 50: w = x/20 - 3/2, [0.786 w + 0.524 (1 - w)] x - 0.0862 RH + 5.75
    - 50 ≤ x < 210: 0.786 x - 0.0862 RH + 5.75
    - 210 ≤ x < 260: w = x/50 - 21/5, [0.69 w + 0.786 (1 - w)] x
      - 0.0862 RH (1 - w) + 2.966 w + 5.75 (1 - w) + 8.84e-4 x² w
    - x ≥ 260: 2.966 + 0.69 x + 8.84e-4 x²
    """
    c = model.coefficients
    xv = np.asarray(x, dtype="float64")
    if model.kind == "linear":
        return c["slope"] * xv + c["intercept"]
    if rh is None:
        raise ValueError(f"model {model.label} ({model.kind}) needs relative humidity [%]")
    h = np.asarray(rh, dtype="float64")
    base = c["rh"] * h + c["intercept"]
    if model.kind in ("linear_rh", "epa_purpleair_2021"):
        return c["slope"] * xv + base
    if model.kind != "epa_purpleair_2021_extended":
        raise ValueError(f"unknown calibration kind {model.kind!r}; known: {', '.join(KINDS)}")
    low, mid, high = c["slope"], c["slope_mid"], c["slope_high"]
    w1 = xv / 20 - 3 / 2
    w2 = xv / 50 - 21 / 5
    top = c["intercept_high"] + high * xv + c["quadratic"] * xv**2
    return np.select(
        [xv < 30, xv < 50, xv < 210, xv < 260, xv >= 260],
        [
            low * xv + base,
            (mid * w1 + low * (1 - w1)) * xv + base,
            mid * xv + base,
            (high * w2 + mid * (1 - w2)) * xv + base * (1 - w2) + (c["intercept_high"] + c["quadratic"] * xv**2) * w2,
            top,
        ],
        np.nan,
    )


def apply(
    frame: pd.DataFrame,
    models: CalibrationModel | dict[str, CalibrationModel],
    *,
    rh: str = "relative_humidity",
    suffix: str = "_calibrated",
) -> pd.DataFrame:
    """Add calibrated values as new columns; the raw columns are left as they are.

    Parameters
    ----------
    frame : DataFrame
        Records with the models' ``source`` column (and ``rh`` where
        needed); with a mapping of models, a ``device`` column too.
    models : CalibrationModel or dict of str to CalibrationModel
        One model for every row, or one per device (rows of other devices
        get NaN).
    rh : str, default ``"relative_humidity"``
        Column of relative humidity [%].
    suffix : str, default ``"_calibrated"``
        The new value column is ``<quantity><suffix>``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``<quantity><suffix>`` [unit of the
        quantity] and ``calibration`` (the model label used, or missing).

    Raises
    ------
    ValueError
        If models of one call produce different quantities.
    """
    table = models if isinstance(models, dict) else {"*": models}
    quantities = {m.quantity for m in table.values()}
    if len(quantities) != 1:
        raise ValueError(f"apply() calibrates one quantity at a time; got models for {sorted(quantities)}")
    target = f"{quantities.pop()}{suffix}"
    out = frame.copy()
    out[target] = np.nan
    out["calibration"] = pd.Series(pd.NA, index=out.index, dtype="string")
    for device, model in table.items():
        rows = np.ones(len(out), dtype=bool) if device == "*" else (out["device"] == device).to_numpy()
        needs_rh = model.kind != "linear"
        humidity = out.loc[rows, rh] if needs_rh else None
        out.loc[rows, target] = predict(model, out.loc[rows, model.source], humidity)
        out.loc[rows, "calibration"] = model.label
    return out
