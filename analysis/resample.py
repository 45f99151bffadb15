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
(``benchmarks/bench_aggregate.py`` compares it with DuckDB SQL).

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
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd
import xarray as xr
from pandas.tseries.frequencies import to_offset

from qsec import quantities as qty

Label = Literal["start", "end"]
ALL_STATS = ("mean", "median", "min", "max", "quantiles")
DEFAULT_QUANTILES = (0.05, 0.25, 0.75, 0.95)
DEFAULT_RATE_HZ = 1.0  # [Hz]
NOMINAL_RATES_HZ: dict[str, float] = {"plantower-pms5003": 1.0, "plantower-pms5003t": 1.0, "winsen-mhz19": 1.0,
                                      "nmea-gps": 1.0}
"""Records per second each sensor model sends through a qsec bridge [Hz]; others get 1 Hz."""
REASON_NO_VALID = "no_valid_value"
REASON_LOW_COVERAGE = "low_coverage"
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass
class Series:
    """Values of several (device, quantity) series, sorted by series then time.

    ``pair = quantity_index * len(devices) + device_index``; ``t`` is in
    ``unit`` since the epoch (UTC).  ``rate`` gives each record's nominal
    rate [Hz] through ``sensor`` codes, or each pair's through ``pair_rate``.
    """

    pair: np.ndarray
    t: np.ndarray
    v: np.ndarray
    flags: np.ndarray | None
    sensor: np.ndarray | None
    sensor_rate: np.ndarray
    pair_rate: np.ndarray | None
    unit: str
    devices: np.ndarray
    quantities: list[str]


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


# --------------------------------------------------------------------------- inputs


def series_from_frame(frame: pd.DataFrame, rates: tuple[float, dict[str, float]],
                      quantities: Iterable[str] | None = None,
                      combine: Mapping[str, Sequence[str]] | None = None) -> Series:
    """Long, sorted arrays of the finite values of a wide or long frame."""
    missing = {"device", "time"} - set(frame.columns)
    if missing:
        raise ValueError(f"the frame needs columns 'device' and 'time' (missing: {sorted(missing)})")
    long = {"quantity", "value"} <= set(frame.columns)
    present = (pd.unique(frame["quantity"]) if long else [c for c in frame.columns if c in qty.QUANTITIES])
    wanted = set(quantities) if quantities is not None else None
    sources = [str(name) for name in present if wanted is None or name in wanted]
    output_of, outputs = _outputs(sources, combine)
    dev_codes, devices = _codes(frame["device"])
    sen_codes, sensors = _codes(frame["sensor"]) if "sensor" in frame else (None, np.array([], dtype=object))
    default, table = rates
    sensor_rate = np.array([table.get(str(s), default) for s in sensors], dtype="float64")
    t_all, unit = time_ints(frame["time"])
    flags_all = frame["flags"].to_numpy(dtype="int64") if "flags" in frame else None
    n_dev = len(devices)
    if long:
        out_index = pd.Series({src: outputs.index(output_of[src]) for src in sources}, dtype="int64")
        q_codes = frame["quantity"].map(out_index).to_numpy(dtype="float64")
        values = frame["value"].to_numpy(dtype="float64")
        keep = np.isfinite(q_codes) & np.isfinite(values)
        parts = [(keep, q_codes[keep].astype("int64") * n_dev + dev_codes[keep], values)]
    else:
        parts = []
        for src in sources:
            values = frame[src].to_numpy(dtype="float64")
            keep = np.isfinite(values)
            pair = dev_codes.astype("int64") if keep.all() else dev_codes[keep].astype("int64")
            pair += outputs.index(output_of[src]) * n_dev
            parts.append((keep, pair, values))
    keeps = [None if keep.all() else keep for keep, _, _ in parts]
    series = Series(
        pair=_joined([pair for _, pair, _ in parts], [None] * len(parts), "int64"),
        t=_joined([t_all] * len(parts), keeps, "int64"),
        v=_joined([values for _, _, values in parts], keeps, "float64"),
        flags=None if flags_all is None else _joined([flags_all] * len(parts), keeps, "int64"),
        sensor=None if sen_codes is None else _joined([sen_codes] * len(parts), keeps, "int64"),
        sensor_rate=sensor_rate, pair_rate=None if sen_codes is not None else np.full(len(outputs) * n_dev, default),
        unit=unit, devices=devices, quantities=outputs)
    return sort_series(series)


def _joined(columns: list[np.ndarray], keeps: list[np.ndarray | None], dtype: str) -> np.ndarray:
    """Concatenate the kept rows of each column (a view when one column is kept whole)."""
    pieces = [column if keep is None else column[keep] for column, keep in zip(columns, keeps, strict=True)]
    if not pieces:
        return np.zeros(0, dtype=dtype)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def sort_series(series: Series) -> Series:
    """Sort by (pair, time) unless already sorted (as the store and the cube give them)."""
    p, t = series.pair, series.t
    if len(p) < 2 or ((p[1:] >= p[:-1]).all() and ((t[1:] >= t[:-1]) | (p[1:] != p[:-1])).all()):
        return series
    order = np.lexsort((t, p))
    for name in ("pair", "t", "v", "flags", "sensor"):
        column = getattr(series, name)
        if column is not None:
            setattr(series, name, column[order])
    return series


def time_ints(times: pd.Series | np.ndarray) -> tuple[np.ndarray, str]:
    """Integer times since the epoch (UTC) and their unit, without a copy where possible."""
    values = pd.Series(times) if not isinstance(times, pd.Series) else times
    if not isinstance(values.dtype, pd.DatetimeTZDtype) and getattr(values.dtype, "kind", "") != "M":
        values = pd.to_datetime(values, utc=True)
    array = cast(pd.arrays.DatetimeArray, values.array)  # aware: asi8 is UTC; naive: taken as UTC
    return np.asarray(array.asi8), str(array.unit)  # type: ignore[attr-defined]  # asi8: the int64 view


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), np.asarray(column.cat.categories, dtype=object)
    codes, uniques = pd.factorize(column, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _outputs(sources: list[str], combine: Mapping[str, Sequence[str]] | None) -> tuple[dict[str, str], list[str]]:
    """Map each source quantity to its output name, checking that pooled ones are compatible."""
    output_of = {name: qty.get(name).name for name in sources}
    for out, members in (combine or {}).items():
        first = qty.get(members[0]).name
        for other in members[1:]:
            qty.check_compatible(first, other)
        for member in members:
            if member in output_of:
                output_of[member] = out
    order = {name: i for i, name in enumerate(qty.QUANTITIES)}
    outputs = sorted(set(output_of.values()), key=lambda name: (order.get(name, len(order)), name))
    return output_of, outputs


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


def quantile_name(p: float) -> str:
    """Column name of quantile ``p``: ``q05`` for 0.05, ``q2.5`` for 0.025."""
    return f"q{100 * p:02g}"


# --------------------------------------------------------------------------- numerics


def aggregate(series: Series, step_ns: int, stats: Sequence[str], quantiles: Sequence[float], exclude: int,
              min_coverage: float | None) -> dict[str, np.ndarray]:
    """Statistics of every non-empty window of every series (see :func:`resample`).

    Returns arrays over windows: ``pair``, ``window`` (number since the
    epoch), the value statistics, ``count``, ``excluded``, ``expected``,
    ``coverage`` and ``reason`` (0 complete, 1 no valid value, 2 low coverage).
    """
    factor = _UNIT_NS.get(series.unit)
    if factor is None or step_ns % factor:
        raise ValueError(f"freq must be a whole number of {series.unit} for times stored in {series.unit}")
    starts, pair_of, window = _windows(series.pair, series.t, step_ns // factor)
    size = np.diff(np.append(starts, len(series.v)))
    v, n = series.v, size
    if exclude:
        if series.flags is None:
            raise ValueError("exclude needs a 'flags' column (run analysis.qc.flag first)")
        valid = (series.flags & exclude) == 0
        n = np.add.reduceat(valid.astype("int64"), starts) if len(starts) else size
        v = v[valid]
    if series.pair_rate is not None:
        rate = series.pair_rate[pair_of]
    else:
        assert series.sensor is not None, "a Series has per-pair rates or per-record sensors"
        rate = series.sensor_rate[series.sensor[starts]]
    expected = rate * (step_ns / 1e9)
    coverage = np.minimum(n / expected, 1.0)
    reason = np.zeros(len(n), dtype="int8")
    if min_coverage is not None:
        reason[coverage < min_coverage] = 2
    reason[n == 0] = 1
    values = _value_statistics(v, n, stats, quantiles)
    out = {"pair": pair_of, "window": window}
    out.update({name: np.where(reason > 0, np.nan, column) for name, column in values.items()})
    out.update(count=n, excluded=size - n, expected=expected, coverage=coverage, reason=reason)
    return out


def _value_statistics(v: np.ndarray, n: np.ndarray, stats: Sequence[str],
                      quantiles: Sequence[float]) -> dict[str, np.ndarray]:
    """Mean and order statistics of consecutive windows of ``n`` values each."""
    vstarts = np.cumsum(n) - n
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        if "mean" in stats:
            sums = np.zeros(len(n))
            nz = n > 0
            if nz.any():
                sums[nz] = np.add.reduceat(v, vstarts[nz])
            out["mean"] = sums / n
    wanted = [(name, p) for name, p in (("median", 0.5), ("min", 0.0), ("max", 1.0)) if name in stats]
    if "quantiles" in stats:
        wanted += [(quantile_name(p), p) for p in quantiles]
    if wanted:
        columns = _order_statistics(v, vstarts, n, [p for _, p in wanted])
        out.update({name: column for (name, _), column in zip(wanted, columns, strict=True)})
    return out


def _windows(pair: np.ndarray, t: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start row, pair and window number (since the epoch) of each non-empty window."""
    if len(pair) == 0:
        empty = np.zeros(0, dtype="int64")
        return empty, empty, empty
    bounds = np.concatenate([[0], np.flatnonzero(pair[1:] != pair[:-1]) + 1, [len(pair)]])
    starts, pairs, windows = [], [], []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):  # one pass per series, not per row
        first, last = int(t[a]) // step, int(t[b - 1]) // step
        numbers = np.arange(first, last + 1, dtype="int64")
        cut = a + np.searchsorted(t[a:b], numbers[1:] * step, side="left")
        begin = np.concatenate([[a], cut])
        keep = np.append(begin[1:], b) > begin
        starts.append(begin[keep])
        windows.append(numbers[keep])
        pairs.append(np.full(int(keep.sum()), pair[a], dtype="int64"))
    return np.concatenate(starts), np.concatenate(pairs), np.concatenate(windows)


def _order_statistics(v: np.ndarray, vstarts: np.ndarray, n: np.ndarray,
                      probabilities: Sequence[float]) -> list[np.ndarray]:
    """Quantile ``p`` of each window for each ``p`` (Hyndman & Fan type 7, linear interpolation).

    Windows of equal size are gathered into one ``(windows, size)`` array
    and sorted row by row; there are few distinct sizes (a window holds
    about rate × length values), so this is a handful of numpy calls that
    never hold more than one size's values at a time.
    """
    out = [np.full(len(n), np.nan) for _ in probabilities]
    by_size = np.argsort(n, kind="stable")
    sizes = n[by_size]
    cuts = np.concatenate([[0], np.flatnonzero(sizes[1:] != sizes[:-1]) + 1, [len(sizes)]])
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        size = int(sizes[a]) if b > a else 0
        if size == 0:
            continue
        windows = by_size[a:b]
        block = v[vstarts[windows, None] + np.arange(size)]
        block.sort(axis=1)
        for column, p in zip(out, probabilities, strict=True):
            position = p * (size - 1)
            lo = int(np.floor(position))
            hi = min(lo + 1, size - 1)
            column[windows] = block[:, lo] + (position - lo) * (block[:, hi] - block[:, lo])
    return out


def to_frame(result: Mapping[str, np.ndarray], series: Series, step_ns: int, label: Label) -> pd.DataFrame:
    """The long output frame of :func:`resample`."""
    n_dev = len(series.devices)
    device, quantity = result["pair"] % max(n_dev, 1), result["pair"] // max(n_dev, 1)
    order = np.lexsort((result["window"], quantity, device))
    window = result["window"][order] + (1 if label == "end" else 0)
    frame = pd.DataFrame({
        "device": series.devices[device[order]].astype(str) if n_dev else np.array([], dtype=str),
        "quantity": np.asarray(series.quantities, dtype=object)[quantity[order]].astype(str)
        if series.quantities else np.array([], dtype=str),
        "time": pd.to_datetime(window * step_ns, unit="ns", utc=True),
    })
    skip = {"pair", "window", "reason", "count", "excluded", "expected", "coverage"}
    for name, column in result.items():
        if name not in skip:
            frame[name] = column[order]
    frame["count"] = result["count"][order].astype("int64")
    frame["expected"] = result["expected"][order]
    frame["coverage"] = result["coverage"][order]
    frame["excluded"] = result["excluded"][order].astype("int64")
    frame["reason"] = np.array(["", REASON_NO_VALID, REASON_LOW_COVERAGE])[result["reason"][order]]
    return frame
