"""Positions for sensor records from a GPS tracker's fixes: a tolerance-bounded as-of join.

A PM or CO2 record carries no position; a GPS tracker (the kit's own
receiver, or a separate logger or phone of the same participant) records
fixes.  :func:`attach_positions` gives each sensor record the position of
the tracker at the time the sampled air entered the sensor: the record's
time minus the sensor's response lag, matched to the nearest fix (or the
last fix before, or interpolated between the two around it) no further
than a tolerance away.  Join quality is kept on every row: the offset to
the fix [s], the fix's HDOP, the lag used.

A join never invents a position: each one comes from fixes of the
record's own tracker within the tolerance, or is NaN.

Response lag table
------------------
A sensor reports, at time t, air it sampled somewhat earlier: the inlet
and fan transport it and the firmware smooths it.  Seen as a first-order
system with time constant τ, a slowly varying concentration c is reported
as c(t - τ) (the mean delay of the impulse response is τ).  Datasheets
give a response time to 90 % of a step, T90 = τ · ln 10, so τ = T90 / 2.303.
Datasheet times are upper bounds ("≤ 10 s"), so these are upper estimates:
measure your own kit's lag (cross-correlate with a fast reference while
moving) and pass it as ``lag_s``.

==========================================  ==================================  =====
sensor                                      datasheet response time             τ [s]
==========================================  ==================================  =====
``plantower-pms5003`` (also ``-pms5003t``,  total response time ≤ 10 s, as T90   4.3
``-pms5003st``, ``-pms7003``, ``-pmsa003``)
``winsen-mhz19``, ``winsen-mhz19b``         T90 < 120 s                         52.1
``sensirion-scd30``                         τ63 = 20 s                          20.0
``sensirion-scd40``, ``sensirion-scd41``    τ63 = 60 s                          60.0
``nmea-gps``                                a fix is the position itself         0.0
==========================================  ==================================  =====

A model missing from the table gets no lag (0 s); the ``lag_s`` column of
the result shows what was used.

Sources
-------
- Plantower PMS5003 series data manual v2.3 (2016), "Response time:
  single ≤ 1 s, total ≤ 10 s"; the PMS7003 and PMSA003 manuals state the
  same.
- Winsen MH-Z19B infrared CO2 sensor manual v1.0 (2016), "Response time
  T90 < 120 s".
- Sensirion SCD30 datasheet v1.0 (2020), "Response time τ63 % 20 s";
  SCD4x datasheet v1.1 (2021), "Response time τ63 % 60 s".
- pandas ``merge_asof`` semantics (direction, tolerance), which this join
  reproduces per tracker with a vectorised binary search:
  https://pandas.pydata.org/docs/reference/api/pandas.merge_asof.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd

from analysis.daily import as_utc
from analysis.qc import PLANTOWER_MODELS

_PLANTOWER_S = 4.3  # [s] 10 s / ln 10: total response time ≤ 10 s taken as T90
_MHZ19_S = 52.1  # [s] 120 s / ln 10: T90 < 120 s
SENSOR_LAG_S: Mapping[str, float] = MappingProxyType(
    {
        **dict.fromkeys(PLANTOWER_MODELS, _PLANTOWER_S),
        "winsen-mhz19": _MHZ19_S,
        "winsen-mhz19b": _MHZ19_S,
        "sensirion-scd30": 20.0,
        "sensirion-scd40": 60.0,
        "sensirion-scd41": 60.0,
        "nmea-gps": 0.0,
    }
)
"""Response lag per sensor model [s]: see the module docstring for each estimate."""

POSITION_COLUMNS = ("latitude", "longitude")
QUALITY_COLUMNS = ["tracker", "lag_s", "fix_time", "fix_offset_s", "hdop", "interpolated"]
Method = Literal["nearest", "backward", "interpolate"]
_US = 1_000_000
_KEY_LIMIT = 2**62
_NAT = np.iinfo("int64").min  # NaT as int64


def attach_positions(
    records: pd.DataFrame,
    fixes: pd.DataFrame,
    *,
    tolerance_s: float = 5.0,
    method: Method = "nearest",
    trackers: Mapping[str, str] | None = None,
    lag_s: float | Mapping[str, float] | None = None,
    columns: Sequence[str] = POSITION_COLUMNS,
) -> pd.DataFrame:
    """Give each sensor record the position of its tracker, within a tolerance.

    Parameters
    ----------
    records : DataFrame
        Sensor records: columns ``device``, ``time`` (naive = UTC) and,
        for the lag table, ``sensor``; any other columns are kept.
    fixes : DataFrame
        Tracker fixes: ``device``, ``time``, the ``columns`` to carry
        (``latitude``, ``longitude`` [° WGS84]) and optionally ``hdop`` and
        ``fix_quality``.  Fixes without a position, or with
        ``fix_quality == 0`` (NMEA: no fix), are ignored.
    tolerance_s : float, default 5
        Largest time between a record (after lag) and a fix it takes a
        position from [s].
    method : {"nearest", "backward", "interpolate"}, default "nearest"
        ``nearest``: the closest fix before or after.  ``backward``: the
        last fix at or before.  ``interpolate``: linear interpolation
        between the fixes just before and just after when both are within
        the tolerance, else the one that is.
    trackers : mapping of str to str, optional
        Sensor device -> tracker device.  A device not in the mapping is
        its own tracker (a kit with its own GPS).
    lag_s : float or mapping of str to float, optional
        Sensor response lag [s] subtracted from each record's time before
        the join.  A number applies to every record; a mapping
        ``sensor model -> lag`` overrides :data:`SENSOR_LAG_S`.  By default
        the table is used, and 0 for a model it lacks.
    columns : sequence of str, default ``("latitude", "longitude")``
        Fix columns to carry onto the records (all numeric).

    Returns
    -------
    pandas.DataFrame
        A copy of ``records`` (same index and order) with, replaced if
        present:

        - each of ``columns`` : float, NaN when no fix is within tolerance
        - ``tracker`` : category, the tracker device used
        - ``lag_s`` : float [s], lag subtracted from the record's time
        - ``fix_time`` : datetime64 [UTC], time of the fix used (for
          interpolation, the farther of the two)
        - ``fix_offset_s`` : float [s], ``fix_time`` minus (record time -
          lag); negative when the fix is earlier
        - ``hdop`` : float, HDOP of the fix (interpolation: the larger)
        - ``interpolated`` : bool

    Raises
    ------
    KeyError
        If a required column is missing.
    ValueError
        If the tolerance or a lag is negative or not finite, or the method
        is unknown.

    Notes
    -----
    ``records`` is not modified: positions are a derived layer.  Fixes are
    sorted once by (tracker, time) and every record is located with one
    vectorised binary search (:func:`numpy.searchsorted`) on a combined
    (tracker, time) key; records need not be sorted.  Duplicate fixes at
    the same time keep the last one.  Times are compared to the
    microsecond.  Interpolating longitudes across ±180° is not handled.
    """
    if not np.isfinite(tolerance_s) or tolerance_s < 0:
        raise ValueError(f"tolerance_s must be a finite number of seconds >= 0, not {tolerance_s!r}")
    if method not in ("nearest", "backward", "interpolate"):
        raise ValueError(f"method must be 'nearest', 'backward' or 'interpolate', not {method!r}")
    _require(records, ("device", "time"), "records")
    _require(fixes, ("device", "time", *columns), "fixes")

    lag = _lags(records, lag_s)
    stamps = as_utc(records["time"])
    t_rec = stamps.array.asi8 - np.round(lag * _US).astype("int64")
    fix = _usable_fixes(fixes, columns)
    f_code, r_code, tracker = _codes(fix["device"], records["device"], trackers or {})
    r_code[stamps.isna().to_numpy()] = -1  # a record without a time matches nothing
    t_fix = as_utc(fix["time"]).array.asi8
    tol = round(tolerance_s * _US)
    f_key, r_key = group_time_keys([f_code, r_code], [t_fix, t_rec], margin=tol + 1)
    order = _sorted_unique(f_key)
    # Fix arrays padded with a sentinel at each end (code -2 matches no record; NaN values, NaT time),
    # so that "no fix on this side" and "no fix found" index the sentinel instead of needing masks.
    f_code, t_fix = _padded(f_code, order, -2), _padded(t_fix, order, _NAT)
    carried = {name: _padded(fix[name].to_numpy(dtype="float64"), order, np.nan) for name in columns}
    hdop = fix["hdop"].to_numpy(dtype="float64") if "hdop" in fix else np.full(len(fix), np.nan)
    hdop = _padded(hdop, order, np.nan)
    p = np.searchsorted(f_key[order], r_key, side="right")  # padded index of the last fix key <= record key
    n = p + 1  # the first fix key > record key (keys are unique)
    d_prev, d_next = t_rec - t_fix[p], t_fix[n] - t_rec
    ok_prev = (f_code[p] == r_code) & (d_prev <= tol)
    ok_next = (f_code[n] == r_code) & (d_next <= tol) if method != "backward" else np.zeros(len(p), dtype=bool)
    found = ok_prev | ok_next
    chosen = np.where(ok_next & ~(ok_prev & (d_prev <= d_next)), n, p)
    chosen[~found] = 0
    both = ok_prev & ok_next & (d_prev > 0) if method == "interpolate" else np.zeros(len(p), dtype=bool)

    out = records.copy(deep=False)  # new columns only: the caller's frame is never written to
    for name, column in carried.items():
        out[name] = _blend(column, p, n, chosen, both, d_prev, d_next)
    used = np.where(both, np.where(d_next > d_prev, n, p), chosen) if both.any() else chosen
    fix_us = t_fix[used]
    out["tracker"] = tracker
    out["lag_s"] = lag
    out["fix_time"] = pd.Series(fix_us.view("datetime64[us]"), index=out.index).dt.tz_localize("UTC")
    out["fix_offset_s"] = np.where(found, (fix_us - t_rec) / _US, np.nan)
    out["hdop"] = np.where(both, np.fmax(hdop[p], hdop[n]), hdop[chosen]) if both.any() else hdop[chosen]
    out["interpolated"] = both
    return out


def _padded(values: np.ndarray, order: np.ndarray, fill: float) -> np.ndarray:
    """``values`` in ``order``, with ``fill`` added at both ends."""
    return np.r_[fill, values[order], fill]


def _blend(
    column: np.ndarray, p: np.ndarray, n: np.ndarray, chosen: np.ndarray, both: np.ndarray,
    d_prev: np.ndarray, d_next: np.ndarray,
) -> np.ndarray:
    """The chosen fix's value, or where ``both``, the linear interpolation between fixes p and n."""
    value = column[chosen]
    if both.any():
        w = d_prev[both] / (d_prev[both] + d_next[both])
        value[both] = column[p[both]] + w * (column[n[both]] - column[p[both]])
    return value


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Positions that sort ``keys``, keeping only the last of equal keys (a repeated fix)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    return order[np.r_[ordered[1:] != ordered[:-1], True]] if len(order) else order


def split_fixes(readings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split store rows into sensor records and GPS fixes.

    Parameters
    ----------
    readings : DataFrame
        Rows of the ``readings`` table (wide: one column per quantity).

    Returns
    -------
    records, fixes : DataFrame, DataFrame
        ``fixes`` are the rows with both ``latitude`` and ``longitude``;
        ``records`` the others, without position columns.
    """
    _require(readings, POSITION_COLUMNS, "readings")
    located = readings["latitude"].notna() & readings["longitude"].notna()
    return readings[~located].drop(columns=list(POSITION_COLUMNS)), readings[located]


def group_time_keys(
    groups: Sequence[np.ndarray], times: Sequence[np.ndarray], *, margin: int = 1
) -> list[np.ndarray]:
    """Combine group codes and integer times into one sortable int64 key.

    Parameters
    ----------
    groups : sequence of int arrays
        Group codes >= 0 (a code < 0 is kept as is and sorts first).
    times : sequence of int64 arrays
        Times [µs], aligned with ``groups``; only those of codes >= 0 set
        the key range.
    margin : int, default 1
        Extra room between groups [µs]: keys of two groups are more than
        ``margin`` apart, so a search within ``margin`` never crosses groups.

    Returns
    -------
    list of numpy.ndarray of int64
        ``code * stride + (time - t0)``, one array per input pair.

    Raises
    ------
    ValueError
        If the keys would overflow int64 (too many groups over too long a
        time span): split the data by period.
    """
    live = [t[g >= 0] for g, t in zip(groups, times, strict=True)]
    live = [t for t in live if len(t)]
    if not live:
        return [np.full(len(t), -1, dtype="int64") for t in times]
    t0 = min(int(t.min()) for t in live)
    t1 = max(int(t.max()) for t in live)
    stride = t1 - t0 + 2 * margin + 1
    top = max((int(g.max()) for g in groups if len(g)), default=0) + 1
    if top * stride >= _KEY_LIMIT:
        raise ValueError(
            f"{top} groups over {(t1 - t0) / _US / 86400:.0f} days do not fit one 64-bit key; "
            "split the data by period (a month at a time) and concatenate the results"
        )
    return [np.where(g >= 0, g.astype("int64") * stride + (t - t0), -1) for g, t in zip(groups, times, strict=True)]


def _codes(
    fix_devices: pd.Series, record_devices: pd.Series, trackers: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray, pd.Categorical]:
    """Integer tracker codes shared by fixes and records (-1: no fixes), and each record's tracker.

    Strings are factorised once per column and only the distinct values are
    looked up, so the cost does not grow with string comparisons per row.
    """
    f_code, f_names = pd.factorize(fix_devices.astype("str"))
    d_code, d_names = pd.factorize(record_devices.astype("str"))
    names = [trackers.get(name, name) for name in d_names]  # one per distinct device
    t_code, t_names = pd.factorize(pd.Index(names, dtype="str"))
    lookup = pd.Index(f_names).get_indexer(t_names)
    known = d_code >= 0
    r_tracker = np.where(known, t_code[np.where(known, d_code, 0)], -1)
    r_code = np.where(r_tracker >= 0, lookup[np.where(r_tracker >= 0, r_tracker, 0)], -1)
    return f_code, r_code, pd.Categorical.from_codes(r_tracker, categories=t_names)


def _lags(records: pd.DataFrame, lag_s: float | Mapping[str, float] | None) -> np.ndarray:
    if isinstance(lag_s, (int, float)):
        lag = np.full(len(records), float(lag_s))
    else:
        table = {**SENSOR_LAG_S, **(dict(lag_s) if lag_s else {})}
        if "sensor" in records:
            lag = records["sensor"].map(table).astype("float64").fillna(0.0).to_numpy()
        else:
            lag = np.zeros(len(records))
    bad = ~np.isfinite(lag) | (lag < 0)
    if bad.any():
        raise ValueError(f"lag_s must be finite numbers of seconds >= 0, got {lag[bad][0]!r}")
    return lag


def _usable_fixes(fixes: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    usable = fixes[list(columns)].notna().all(axis=1) & fixes["time"].notna()
    if "fix_quality" in fixes:
        usable &= fixes["fix_quality"].fillna(1) != 0
    return fixes[usable]


def _require(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise KeyError(f"{what} lack column(s) {missing}; they need {list(names)}")
