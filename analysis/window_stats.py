"""Statistics of fixed time windows over sorted series: mean, order statistics, count, coverage, reason.

numpy over contiguous windows: one ``searchsorted`` per (device, quantity)
series, ``np.add.reduceat`` for sums and, for order statistics, a row-wise
sort of the windows of each size gathered as a ``(windows × size)`` array;
nothing loops over records in Python.  :func:`analysis.resample.resample`
documents the window rules.

Sources
-------
- Directive 2008/50/EC on ambient air quality, Annex XI A (completeness of
  aggregated data), https://eur-lex.europa.eu/eli/dir/2008/50/oj
- Quantiles: linear interpolation between order statistics, Hyndman & Fan
  (1996) definition 7, the default of numpy, pandas and DuckDB's
  ``quantile_cont``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from analysis.long_series import Series

Label = Literal["start", "end"]
REASON_NO_VALID = "no_valid_value"
REASON_LOW_COVERAGE = "low_coverage"
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def aggregate(series: Series, step_ns: int, stats: Sequence[str], quantiles: Sequence[float], exclude: int,
              min_coverage: float | None) -> dict[str, np.ndarray]:
    """Statistics of every non-empty window of every series (see :func:`analysis.resample.resample`).

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
    """The long output frame of :func:`analysis.resample.resample`."""
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


def quantile_name(p: float) -> str:
    """Column name of quantile ``p``: ``q05`` for 0.05, ``q2.5`` for 0.025."""
    return f"q{100 * p:02g}"
