"""What live screens show: latest values and 1-minute means, read from the store.

Both functions run one query in DuckDB: the wide ``readings`` table (one
column per quantity) is unpivoted to one row per value, then aggregated by
device and quantity, which gives long format directly.  Nothing loops over
records in Python.

Values that are NULL or not finite (NaN, ±inf) are treated as missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from analysis.columns import READINGS, quantity_columns, quote
from analysis.times import TimeLike, localize_utc, to_store_time, utc_now
from qsec import quantities as qty

LATEST_COLUMNS = ["campaign", "device", "quantity", "value", "time", "sensor"]
MINUTE_COLUMNS = ["campaign", "device", "minute", "quantity", "mean", "count", "expected", "coverage"]
DEFAULT_RATE_HZ = 1.0  # [Hz] one record per second, the PMS5003's and a GPS's natural rate
_MINUTE = timedelta(minutes=1)


def latest(
    con: duckdb.DuckDBPyConnection,
    campaign: str | None = None,
    max_age_s: float | None = None,
    *,
    now: TimeLike | None = None,
) -> pd.DataFrame:
    """Return the latest value of every quantity for every device.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection or cursor on the store; only table ``readings`` is read.
    campaign : str, optional
        Keep only this campaign.
    max_age_s : float, optional
        Ignore records measured more than this long before ``now`` [s].
    now : datetime, optional
        Reference time for ``max_age_s``; the current time by default.  A
        naive datetime is taken as UTC.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (campaign, device, quantity) that has at
        least one value, sorted by campaign, device and the order of the
        quantity table.  Columns:

        - ``campaign``, ``device`` : str
        - ``quantity`` : str, a name from :data:`qsec.quantities.QUANTITIES`
        - ``value`` : float [the quantity's unit]
        - ``time`` : datetime64 [UTC], measurement time of that value
        - ``sensor`` : str, the sensor model of the record that carried it

    Raises
    ------
    ValueError
        If ``max_age_s`` is negative or not finite.

    Notes
    -----
    ``time`` is the measurement time stamped by the bridge, not the time
    ingest received it.  Each quantity is taken from its own newest record:
    a device whose GPS reported a second ago and whose CO2 sensor a minute
    ago gets both, each with its own time.  Among records with the same
    measurement time, the one committed last wins (then the higher
    ``seq``).  A device that moved between campaigns has one set of rows per
    campaign.
    """
    columns = quantity_columns(con)
    where, params = _filters(campaign)
    if max_age_s is not None:
        if not math.isfinite(max_age_s) or max_age_s < 0:
            raise ValueError(f"max_age_s must be a finite number of seconds >= 0, not {max_age_s!r}")
        reference = to_store_time(now if now is not None else utc_now())
        where.append("time >= ?")
        params.append(reference - timedelta(seconds=max_age_s))
    if not columns:
        return _empty(LATEST_COLUMNS)

    key = "{'t': time, 'r': received, 's': seq}"  # newest measurement, then last committed
    sql = f"""
        SELECT campaign, device, quantity,
               arg_max(value, {key}) AS value, max(time) AS time, arg_max(sensor, {key}) AS sensor
        FROM {_long(columns, ["received", "seq", "sensor"], where)}
        GROUP BY campaign, device, quantity
    """
    frame = con.execute(sql, params).df()
    frame["time"] = localize_utc(frame["time"])
    frame["value"] = frame["value"].astype("float64")
    return _sorted(frame, ["campaign", "device", "quantity"])[LATEST_COLUMNS]


def minute_means(
    con: duckdb.DuckDBPyConnection,
    since: TimeLike,
    until: TimeLike | None = None,
    campaign: str | None = None,
    quantities: Iterable[str] | None = None,
    nominal_rate_hz: float | Mapping[str, float] = DEFAULT_RATE_HZ,
) -> pd.DataFrame:
    """Return 1-minute means per device and quantity, with coverage.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection or cursor on the store; only table ``readings`` is read.
    since : datetime
        Start of the period (inclusive), rounded down to the minute.  A
        naive datetime is taken as UTC.
    until : datetime, optional
        End of the period (exclusive), rounded up to the minute; no end by
        default.
    campaign : str, optional
        Keep only this campaign.
    quantities : iterable of str, optional
        Quantity names to average; all quantity columns of the store by
        default.  A known quantity the store has no column for gives no rows.
    nominal_rate_hz : float or mapping of str to float, optional
        Records a device is expected to send per second [Hz]: one rate for
        every device, or a mapping ``device -> rate`` (devices missing from
        it get 1 Hz).  Default 1 Hz, i.e. 60 values per minute.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (campaign, device, minute, quantity) with
        at least one value, sorted by campaign, device, quantity-table order
        and minute.  Columns:

        - ``campaign``, ``device`` : str
        - ``minute`` : datetime64 [UTC], **start** of the 1-minute interval
        - ``quantity`` : str
        - ``mean`` : float [the quantity's unit], arithmetic mean
        - ``count`` : int, values averaged
        - ``expected`` : float, values expected in a minute at the nominal rate
        - ``coverage`` : float [1], ``count / expected`` clipped to [0, 1]

    Raises
    ------
    KeyError
        If ``quantities`` names an unknown quantity.
    ValueError
        If a nominal rate is not a finite number > 0, or ``until`` is not
        after ``since``.

    Notes
    -----
    Time labelling: the label ``minute`` is the **start** of the interval
    ``[minute, minute + 1 min)``, taken on the measurement time.  A value
    measured at 12:03:59.999 belongs to the minute labelled 12:03; one at
    12:04:00.000 to 12:04.  Because ``since`` is rounded down and ``until``
    up, no minute is cut by the period's bounds: a low coverage always
    means missing records, not a partial window.  Minutes without any value
    are absent (not rows of NaN); a gap in ``minute`` is a gap in the data.
    """
    columns = quantity_columns(con, quantities)
    start = _floor_minute(to_store_time(since))
    where, params = _filters(campaign)
    where.append("time >= ?")
    params.append(start)
    if until is not None:
        end = _ceil_minute(to_store_time(until))
        if end <= start:
            raise ValueError(f"until ({until}) must be after since ({since})")
        where.append("time < ?")
        params.append(end)
    rates = _rates(nominal_rate_hz)
    if not columns:
        return _typed_minutes(_empty(MINUTE_COLUMNS))

    sql = f"""
        SELECT campaign, device, date_trunc('minute', time) AS minute, quantity,
               avg(value) AS mean, count(*) AS count
        FROM {_long(columns, [], where)}
        GROUP BY campaign, device, minute, quantity
    """
    frame = con.execute(sql, params).df()
    frame["minute"] = localize_utc(frame["minute"])
    default_rate, per_device = rates
    rate = frame["device"].map(per_device).astype("float64").fillna(default_rate)
    frame["expected"] = rate * _MINUTE.total_seconds()
    frame["coverage"] = (frame["count"] / frame["expected"]).clip(0.0, 1.0)
    frame = _typed_minutes(frame)
    return _sorted(frame, ["campaign", "device", "quantity", "minute"])[MINUTE_COLUMNS]


def _long(columns: list[str], extra: list[str], where: list[str]) -> str:
    """SQL of the filtered records in long format: one row per finite value.

    ``UNPIVOT`` leaves NULLs out; the outer filter leaves out NaN and ±inf.
    Unpivoting before aggregating keeps one aggregate per output column,
    instead of several per quantity column.
    """
    keep = ", ".join(["campaign", "device", "time", *extra, *(quote(name) for name in columns)])
    on = ", ".join(quote(name) for name in columns)
    return f"""(
            SELECT * FROM (
                UNPIVOT (SELECT {keep} FROM {READINGS} {_where(where)})
                ON {on} INTO NAME quantity VALUE value
            ) WHERE isfinite(value)
        )"""


def _filters(campaign: str | None) -> tuple[list[str], list[object]]:
    if campaign is None:
        return [], []
    return ["campaign = ?"], [campaign]


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def _rates(nominal_rate_hz: float | Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """Split the rate argument into a default rate and a per-device table."""
    if isinstance(nominal_rate_hz, Mapping):
        default, table = DEFAULT_RATE_HZ, {str(k): float(v) for k, v in nominal_rate_hz.items()}
    else:
        default, table = float(nominal_rate_hz), {}
    for device, rate in [("*", default), *table.items()]:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"nominal_rate_hz for {device!r} must be a finite number > 0, not {rate!r}")
    return default, table


def _floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def _ceil_minute(when: datetime) -> datetime:
    floor = _floor_minute(when)
    return floor if floor == when else floor + _MINUTE


def _empty(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="str") for name in columns})
    for name in ("time", "minute"):
        if name in frame:
            frame[name] = pd.Series(dtype="datetime64[us, UTC]")
    for name in ("value", "mean", "expected", "coverage"):
        if name in frame:
            frame[name] = pd.Series(dtype="float64")
    return frame


def _typed_minutes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"count": "int64", "mean": "float64", "expected": "float64", "coverage": "float64"})


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sort with quantities in the order of the quantity table, not alphabetically."""
    order = {name: i for i, name in enumerate(qty.QUANTITIES)}

    def key(column: pd.Series) -> pd.Series:
        return column.map(order) if column.name == "quantity" else column

    return frame.sort_values(by, key=key, kind="stable").reset_index(drop=True)
