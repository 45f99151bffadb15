"""Resample readings to fixed windows: mean, median, quantiles, min, max, count and coverage.

Every aggregate says how much data it rests on: ``count`` (values used),
``expected`` (values the device should have sent in the window at its
sensor's nominal rate), ``coverage = count / expected`` and ``excluded``
(values left out because of their flags).  Regulatory-style figures apply
completeness rules and give NaN with a reason when a window falls short.

Works on the store's wide records, on long ``(device, time, quantity,
value)`` frames and on the cube of :func:`analysis.cube.load`.  The work is
numpy over contiguous windows: one sort check, one ``searchsorted`` per
(device, quantity) series, ``np.add.reduceat`` for sums and, for order
statistics, a row-wise sort of the windows of each size gathered as a
``(windows × size)`` array; nothing loops over records in Python
(``benchmarks/bench_aggregate.py`` compares it with DuckDB SQL).  The
series arrays are built in :mod:`analysis.long_series` and the window
statistics computed in :mod:`analysis.window_stats`; their names used
elsewhere (``Series``, ``aggregate``, ``quantile_name``, …) are re-exported
here.

Sources
-------
- Directive 2008/50/EC on ambient air quality, Annex XI A (criteria for
  aggregating data): a 1-hour value needs 75 % of the data (45 minutes); a
  daily value from hourly values needs 75 % of them (18 hours).
  https://eur-lex.europa.eu/eli/dir/2008/50/oj
- Quantiles: linear interpolation between order statistics, Hyndman & Fan
  (1996) definition 7, the default of numpy, pandas and DuckDB's
  ``quantile_cont``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from pandas.tseries.frequencies import to_offset

from analysis.long_series import Series, series_from_frame, sort_series, time_ints
from analysis.window_stats import (
    REASON_LOW_COVERAGE, REASON_NO_VALID, Label, aggregate, quantile_name, to_frame,
)

__all__ = [
    "ALL_STATS", "DEFAULT_QUANTILES", "DEFAULT_RATE_HZ", "NOMINAL_RATES_HZ", "REASON_LOW_COVERAGE", "REASON_NO_VALID",
    "Label", "Series", "aggregate", "daily_means", "hourly_means", "quantile_name", "resample", "series_from_frame",
    "sort_series", "time_ints", "to_frame",
]

ALL_STATS = ("mean", "median", "min", "max", "quantiles")
DEFAULT_QUANTILES = (0.05, 0.25, 0.75, 0.95)
DEFAULT_RATE_HZ = 1.0  # [Hz]
NOMINAL_RATES_HZ: dict[str, float] = {"plantower-pms5003": 1.0, "plantower-pms5003t": 1.0, "winsen-mhz19": 1.0,
                                      "nmea-gps": 1.0}
"""Records per second each sensor model sends through a qsec bridge [Hz]; others get 1 Hz."""


def resample(
    data: pd.DataFrame | xr.Dataset,
    freq: str | pd.Timedelta,
    *,
    stats: Iterable[str] = ALL_STATS,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    label: Label = "start",
    exclude: int = 0,
    rate_hz: float | Mapping[str, float] | None = None,
    min_coverage: float | None = None,
    quantities: Iterable[str] | None = None,
    combine: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame | xr.Dataset:
    """Aggregate values per device, quantity and fixed time window.

    Parameters
    ----------
    data : DataFrame or Dataset
        Wide records (``device``, ``time``, quantity columns, optional
        ``sensor`` and ``flags``), a long frame (``device``, ``time``,
        ``quantity``, ``value``, optional ``sensor``, ``flags``), or a cube
        from :func:`analysis.cube.load`.  Times are UTC (naive or aware).
    freq : str or Timedelta
        Window length, a fixed duration: ``"1min"``, ``"15min"``, ``"1h"``, ``"1D"``.
    stats : iterable of str
        Value statistics among ``mean``, ``median``, ``min``, ``max`` and
        ``quantiles``; ``count``, ``expected``, ``coverage``, ``excluded``
        and ``reason`` always come.
    quantiles : sequence of float
        Probabilities in [0, 1] for ``quantiles``; column ``q05`` is 0.05.
    label : {"start", "end"}
        Label each window by its start or its end.
    exclude : int
        Bit mask: values whose ``flags`` share a bit with it are left out
        (and counted in ``excluded``).  0 uses every value.
    rate_hz : float or mapping of sensor model to float, optional
        Nominal records per second [Hz] for ``expected``: one rate, or per
        sensor model (overriding :data:`NOMINAL_RATES_HZ`; unknown models 1 Hz).
    min_coverage : float, optional
        Completeness rule: where ``coverage`` is below it, value statistics
        are NaN and ``reason`` is ``"low_coverage"`` (0.75 for a regulatory
        hourly mean).
    quantities : iterable of str, optional
        Restrict to these quantities.
    combine : mapping of str to sequence of str, optional
        Pool several quantities into one output series, e.g.
        ``{"pm2_5": ["pm2_5", "pm2_5_cf1"]}``.  Each must be compatible with
        the first (:func:`qsec.quantities.check_compatible`).

    Returns
    -------
    DataFrame or Dataset
        For a frame: long, one row per (device, quantity, window) holding at
        least one value, sorted by device, quantity-table order and time;
        columns ``device``, ``quantity``, ``time`` (UTC-aware label), the
        statistics [the quantity's unit], ``count``, ``expected``,
        ``coverage`` [1], ``excluded`` and ``reason`` (``""``,
        ``"no_valid_value"`` or ``"low_coverage"``).  For a Dataset: dims
        ``(device, time)`` over every window of the input's time span,
        variables ``<quantity>_<statistic>``; empty windows have count 0.

    Raises
    ------
    ValueError
        For a window that is not a fixed positive duration, an unknown
        statistic or label, a quantile outside [0, 1], a rate that is not a
        positive number, ``exclude`` without a ``flags`` column.
    qsec.quantities.IncompatibleQuantities
        If ``combine`` pools quantities of different kind or unit, such as
        ``voc_index`` (a relative index) with ``tvoc`` (a concentration).

    Notes
    -----
    Windows are left-closed, ``[start, start + freq)``, aligned on
    1970-01-01 00:00 UTC: a "1D" window is a UTC day, whatever the local
    time zone and its daylight-saving changes.  A value measured at
    12:00:59.999 belongs to the 12:00 minute and one at 12:01:00.000 to the
    next; ``label="end"`` only renames the window 12:01.  ``coverage`` is
    clipped to 1 (a device faster than its nominal rate); ``count`` and
    ``expected`` keep the raw figures.  The nominal rate of a window is the
    rate of the sensor of its first value.
    """
    step_ns, names = _check(freq, stats, quantiles, label)
    rates = _rates(rate_hz)
    if isinstance(data, xr.Dataset):
        from analysis.accessor import resample_dataset

        if combine:
            raise ValueError("combine pools quantities of record frames; pass ds.qsec.records() instead of the cube")

        return resample_dataset(data, step_ns, names=names, quantiles=quantiles, label=label, exclude=exclude,
                                rates=rates, min_coverage=min_coverage, quantities=quantities)
    series = series_from_frame(data, rates, quantities, combine)
    result = aggregate(series, step_ns, names, quantiles, exclude, min_coverage)
    return to_frame(result, series, step_ns, label)


def hourly_means(data: pd.DataFrame | xr.Dataset, *, min_coverage: float = 0.75, **kwargs: object) -> pd.DataFrame:
    """Hourly means with the 75 % completeness rule (Directive 2008/50/EC, Annex XI).

    Takes the arguments of :func:`resample`; returns its frame with ``mean``.
    """
    if isinstance(data, xr.Dataset):
        from analysis.accessor import records_frame

        data = records_frame(data)
    frame = resample(data, "1h", stats=("mean",), min_coverage=min_coverage, **kwargs)  # type: ignore[arg-type]
    assert isinstance(frame, pd.DataFrame)
    return frame


def daily_means(data: pd.DataFrame | xr.Dataset, *, min_hours: int = 18, hour_coverage: float = 0.75,
                **kwargs: object) -> pd.DataFrame:
    """Daily (UTC) means from valid hourly means, NaN with a reason below ``min_hours``.

    Parameters
    ----------
    data : DataFrame or Dataset
        As for :func:`resample`.
    min_hours : int
        Valid hours a day needs (18 of 24, Directive 2008/50/EC, Annex XI).
    hour_coverage : float
        Coverage an hour needs to be valid (0.75).
    **kwargs
        ``exclude``, ``rate_hz``, ``quantities``, ``combine`` as for :func:`resample`.

    Returns
    -------
    pandas.DataFrame
        One row per (device, quantity, UTC day) with at least one value:
        ``device``, ``quantity``, ``time`` (start of the day, UTC), ``mean``
        [the quantity's unit], ``valid_hours``, ``coverage`` (valid hours /
        24) and ``reason`` (``""`` or ``"low_coverage"``).
    """
    hourly = hourly_means(data, min_coverage=hour_coverage, **kwargs)
    valid = hourly["reason"] == ""
    frame = pd.DataFrame({"device": hourly["device"], "quantity": hourly["quantity"],
                          "time": hourly["time"].dt.floor("1D"), "mean": hourly["mean"].where(valid),
                          "valid_hours": valid.astype("int64")})
    days = frame.groupby(["device", "quantity", "time"], sort=False).agg(
        mean=("mean", "mean"), valid_hours=("valid_hours", "sum")).reset_index()
    short = days["valid_hours"] < min_hours
    days["mean"] = days["mean"].mask(short)
    days["coverage"] = days["valid_hours"] / 24.0
    days["reason"] = np.where(short, REASON_LOW_COVERAGE, "")
    return days


def _rates(rate_hz: float | Mapping[str, float] | None) -> tuple[float, dict[str, float]]:
    if rate_hz is None or isinstance(rate_hz, Mapping):
        default, table = DEFAULT_RATE_HZ, {**NOMINAL_RATES_HZ, **{str(k): float(v) for k, v in (rate_hz or {}).items()}}
    else:
        default, table = float(rate_hz), {}
    for name, rate in [("default", default), *table.items()]:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate_hz for {name!r} must be a finite number of records per second > 0, not {rate!r}")
    return default, table


def _check(freq: str | pd.Timedelta, stats: Iterable[str], quantiles: Sequence[float], label: str) -> tuple[int, tuple[str, ...]]:
    try:
        step = pd.Timedelta(to_offset(freq) if isinstance(freq, str) else freq)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ValueError(f"freq must be a fixed duration such as '1min', '1h', '1D' or '7D', not {freq!r} "
                         "(months and years have no fixed length; weeks are anchored on a weekday)") from None
    if step <= pd.Timedelta(0):
        raise ValueError(f"freq must be positive, not {freq!r}")
    names = tuple(stats)
    unknown = set(names) - set(ALL_STATS)
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)}; choose among {', '.join(ALL_STATS)}")
    if label not in ("start", "end"):
        raise ValueError(f"label must be 'start' or 'end', not {label!r}")
    if any(not 0.0 <= p <= 1.0 for p in quantiles):
        raise ValueError(f"quantiles must be probabilities in [0, 1], not {list(quantiles)}")
    return int(step.value), names
