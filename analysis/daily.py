"""Hourly means and daily statistics in local time, correct across DST changes.

A day is a calendar day in a time zone (Europe/Paris by default), so it
lasts 23, 24 or 25 hours.  Values are first averaged per *real* hour (an
hour of elapsed time, not a wall-clock label: the two 02:00-03:00 hours of
the last Sunday of October are two hours), then hours are grouped by the
local date on which they start.  Expected counts follow the real length of
each day.

Sources
-------
- Directive 2008/50/EC on ambient air quality, Annex XI (criteria for
  aggregating data): a daily mean is valid with 75 % of hourly values,
  i.e. 18 hours (https://eur-lex.europa.eu/eli/dir/2008/50/oj).  The same
  75 % rule is used here for an hour (45 of 60 minutes' worth of records).
- IANA time zone database through :mod:`zoneinfo` / pandas, for the
  offsets and DST rules (https://www.iana.org/time-zones).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_TZ = "Europe/Paris"
MIN_VALID_HOURS = 18  # [h] Directive 2008/50/EC Annex XI: 75 % of 24 hourly values
MIN_HOUR_COVERAGE = 0.75  # [1] fraction of an hour's expected records for a valid hourly mean
DEFAULT_RATE_HZ = 1.0  # [Hz] records per second a sensor is expected to send
_HOUR_US = 3_600_000_000

HOURLY_COLUMNS = ["hour", "date", "count", "expected", "coverage", "valid", "mean"]
DAILY_COLUMNS = [
    "date", "day_hours", "count", "expected", "coverage", "valid_hours", "complete",
    "mean", "median", "min_hourly", "max_hourly",
]


def as_utc(values: pd.Series | pd.Index | Sequence[object]) -> pd.Series:
    """Return times as an aware UTC Series, microsecond resolution.

    Parameters
    ----------
    values : Series, Index or sequence of datetimes
        Aware times in any zone, or naive times taken to be UTC (the
        store's convention).

    Returns
    -------
    pandas.Series of datetime64[us, UTC]
        Same length and, for a Series input, same index.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, (np.dtypes.DateTime64DType, pd.DatetimeTZDtype)):
        aware = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return aware.dt.as_unit("us")  # the common case, without parsing
    index = values.index if isinstance(values, pd.Series) else None
    converted = pd.Series(pd.to_datetime(pd.Index(values), utc=True), index=index)
    return converted.dt.as_unit("us")


def hourly_means(
    values: pd.Series,
    times: pd.Series | None = None,
    *,
    tz: str = DEFAULT_TZ,
    nominal_rate_hz: float = DEFAULT_RATE_HZ,
    min_hour_coverage: float = MIN_HOUR_COVERAGE,
) -> pd.DataFrame:
    """Average values per real hour and label each hour with its local date.

    Parameters
    ----------
    values : Series [any unit]
        Measurements; NaN where missing.  Indexed by time unless ``times``
        is given.
    times : Series of datetimes, optional
        Measurement time of each value, aligned with ``values``.  Naive
        times are UTC.
    tz : str, default ``"Europe/Paris"``
        IANA time zone of the local dates.
    nominal_rate_hz : float, default 1
        Records expected per second [Hz]; 1/3600 for data that is already
        hourly.
    min_hour_coverage : float, default 0.75
        Fraction [1] of the expected records an hour needs to be valid.

    Returns
    -------
    pandas.DataFrame
        One row per hour holding at least one finite value, sorted by time:

        - ``hour`` : datetime64 [UTC], start of the hour
        - ``date`` : datetime.date, local date on which the hour starts
        - ``count`` : int, finite values in the hour
        - ``expected`` : float, values expected in one hour
        - ``coverage`` : float [1], ``count / expected`` clipped to [0, 1]
        - ``valid`` : bool, ``coverage >= min_hour_coverage``
        - ``mean`` : float [unit of ``values``]

    Raises
    ------
    ValueError
        If the rate or the coverage threshold is out of range.

    Notes
    -----
    An hour is the interval ``[hour, hour + 1 h)`` starting on a whole
    local hour.  For zones whose offset from UTC is a whole number of hours
    (Europe/Paris) that is also a whole UTC hour.  Hours are identified by
    their UTC start, so the repeated local hour at the end of summer time
    gives two rows with the same wall-clock label but different ``hour``.
    """
    _check_rate(nominal_rate_hz)
    if not 0.0 <= min_hour_coverage <= 1.0:
        raise ValueError(f"min_hour_coverage must be within [0, 1], not {min_hour_coverage!r}")
    stamps = as_utc(values.index if times is None else times)
    data = pd.to_numeric(pd.Series(np.asarray(values, dtype="float64")), errors="coerce")
    finite = np.isfinite(data.to_numpy())
    hour, date = _local_hours(stamps[finite].reset_index(drop=True), tz)
    frame = pd.DataFrame({"hour": hour, "date": date, "value": data[finite].to_numpy()})
    grouped = frame.groupby(["hour", "date"], sort=True)["value"].agg(["count", "mean"]).reset_index()
    grouped["expected"] = nominal_rate_hz * 3600.0
    grouped["coverage"] = (grouped["count"] / grouped["expected"]).clip(0.0, 1.0)
    grouped["valid"] = grouped["coverage"] >= min_hour_coverage
    grouped["count"] = grouped["count"].astype("int64")
    return grouped[HOURLY_COLUMNS]


def daily_statistics(
    values: pd.Series,
    times: pd.Series | None = None,
    *,
    tz: str = DEFAULT_TZ,
    nominal_rate_hz: float = DEFAULT_RATE_HZ,
    min_valid_hours: int = MIN_VALID_HOURS,
    min_hour_coverage: float = MIN_HOUR_COVERAGE,
) -> pd.DataFrame:
    """Daily statistics per local calendar day, with completeness.

    Parameters
    ----------
    values, times, tz, nominal_rate_hz, min_hour_coverage
        As for :func:`hourly_means`; ``tz`` defines the days.
    min_valid_hours : int, default 18
        Valid hours a day needs to be ``complete`` [h].

    Returns
    -------
    pandas.DataFrame
        One row per local date with at least one value, sorted by date:

        - ``date`` : datetime.date
        - ``day_hours`` : int [h], real length of that day (23, 24 or 25)
        - ``count`` : int, finite values in the day
        - ``expected`` : float, values expected in that day at the nominal rate
        - ``coverage`` : float [1], ``count / expected`` clipped to [0, 1]
        - ``valid_hours`` : int [h], hours with a valid hourly mean
        - ``complete`` : bool, ``valid_hours >= min_valid_hours``
        - ``mean`` : float, mean of the valid hourly means
        - ``median`` : float, median of the valid hourly means
        - ``min_hourly``, ``max_hourly`` : float, extremes of the valid hourly means

    Notes
    -----
    The daily mean is the mean of valid hourly means (as for regulatory
    daily means), so a burst of records in one hour does not outweigh the
    rest of the day.  Statistics are reported for incomplete days too;
    filter on ``complete`` before comparing them with a daily limit.  Days
    without any value are absent, not rows of NaN.
    """
    if min_valid_hours < 0:
        raise ValueError(f"min_valid_hours must be >= 0, not {min_valid_hours!r}")
    hours = hourly_means(
        values, times, tz=tz, nominal_rate_hz=nominal_rate_hz, min_hour_coverage=min_hour_coverage
    )
    counts = hours.groupby("date", sort=True)["count"].sum()
    valid = hours[hours["valid"]].groupby("date")["mean"]
    days = pd.DataFrame({"count": counts.astype("int64")})
    days["day_hours"] = day_lengths_h(pd.Series(days.index), tz).to_numpy()
    days["expected"] = days["day_hours"] * 3600.0 * nominal_rate_hz
    days["coverage"] = (days["count"] / days["expected"]).clip(0.0, 1.0)
    days["valid_hours"] = valid.count().reindex(days.index, fill_value=0).astype("int64")
    days["complete"] = days["valid_hours"] >= min_valid_hours
    days["mean"] = valid.mean().reindex(days.index)
    days["median"] = valid.median().reindex(days.index)
    days["min_hourly"] = valid.min().reindex(days.index)
    days["max_hourly"] = valid.max().reindex(days.index)
    days.index.name = "date"
    return days.reset_index()[DAILY_COLUMNS]


def day_lengths_h(dates: pd.Series, tz: str = DEFAULT_TZ) -> pd.Series:
    """Return the real length of each local calendar day [h].

    Parameters
    ----------
    dates : Series of datetime.date or datetimes
        Local dates (a datetime's time of day is ignored).
    tz : str
        IANA time zone.

    Returns
    -------
    pandas.Series of int
        23 on the day summer time starts, 25 on the day it ends, else 24
        (for zones with a one-hour DST shift), aligned with ``dates``.
    """
    midnight = pd.to_datetime(pd.Series(dates)).dt.normalize()
    start = _local_midnight(midnight, tz)
    end = _local_midnight(midnight + pd.Timedelta(days=1), tz)
    return ((end - start).dt.total_seconds() / 3600).round().astype("int64")


def _local_midnight(naive_midnights: pd.Series, tz: str) -> pd.Series:
    """The instant each local day starts; a midnight skipped by DST starts later."""
    return naive_midnights.dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


def _local_hours(stamps: pd.Series, tz: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Start (aware UTC) and local date of the real hour holding each time."""
    local = stamps.dt.tz_convert(tz).dt.tz_localize(None).dt.as_unit("us")
    offset = local.array.asi8 - stamps.array.asi8  # [µs] local minus UTC, per record
    local_hour = local.array.asi8 // _HOUR_US * _HOUR_US
    hour_utc = pd.to_datetime(local_hour - offset, unit="us", utc=True)
    date = pd.to_datetime(local_hour, unit="us").date
    return hour_utc, date


def _check_rate(rate: float) -> None:
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"nominal_rate_hz must be a finite number > 0, not {rate!r}")
