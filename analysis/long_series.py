"""Long, sorted arrays of (device, quantity) series, built from record frames without a loop over records.

The form :mod:`analysis.resample` and :mod:`analysis.accessor` aggregate:
one ``pair`` code per (device, quantity), integer times since the epoch
(UTC) in the frame's own unit, values and, when present, flags and sensor
codes, sorted by pair then time.

Sources
-------
- pandas ``DatetimeArray.asi8`` and ``unit`` (the int64 view of datetimes
  and its resolution), https://pandas.pydata.org/docs/reference/api/pandas.arrays.DatetimeArray.html
- Quantity names and compatibility: :mod:`qsec.quantities`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from qsec import quantities as qty


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
