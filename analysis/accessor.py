"""``ds.qsec`` and ``df.qsec``: resampling, QC flags and coverage on a cube or a record frame.

Importing :mod:`analysis.cube` registers both accessors.  On a cube (from
:func:`analysis.cube.load`) each device's series is independent, so a
Dask-backed cube is processed block by block over devices with
:func:`xarray.map_blocks` (each block holds whole time series), and an
in-memory cube in one call: the same functions either way.

Sources
-------
- xarray, "Extending xarray using accessors":
  https://docs.xarray.dev/en/stable/internals/extending-xarray.html
- xarray ``map_blocks``: https://docs.xarray.dev/en/stable/generated/xarray.map_blocks.html
- pandas, "Registering custom accessors":
  https://pandas.pydata.org/docs/development/extending.html
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from analysis import qc
from analysis.resample import Label, Series, aggregate, resample, sort_series
from qsec import quantities as qty

_REASONS = "complete no_valid_value low_coverage"


def quantity_names(ds: xr.Dataset, wanted: Iterable[str] | None = None) -> list[str]:
    """The data variables of ``ds`` that are quantities (in ``wanted`` when given)."""
    chosen = set(wanted) if wanted is not None else None
    return [str(name) for name in ds.data_vars if name in qty.QUANTITIES and (chosen is None or name in chosen)]


def records_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The cube's cells that hold a record, as a wide record frame (``device``, ``time``, …).

    ``sensor`` is the one model that the cell's first quantity and its device
    share (variable attribute ``sensor``, coordinate ``sensors``), empty when
    that is ambiguous; ``boot`` is the boot id.
    """
    has = ds["boot"].values >= 0 if "boot" in ds else np.isfinite(ds[quantity_names(ds)].to_array().values).any(0)
    dev, col = np.nonzero(has)
    frame = pd.DataFrame({"device": ds["device"].values[dev].astype(str), "time": ds["time"].values[col]})
    sensor = np.full(len(dev), "", dtype=object)
    used = [set(str(m).split()) for m in ds["sensors"].values] if "sensors" in ds.coords else None
    for name in quantity_names(ds):
        values = ds[name].values[dev, col]
        frame[name] = values
        models = {m.strip() for m in str(ds[name].attrs.get("sensor", "")).split(",") if m.strip()}
        for d in range(ds.sizes["device"]):  # one pass per device and quantity, not per record
            candidates = models & used[d] if used is not None else models
            if len(candidates) == 1:
                sensor[(dev == d) & (sensor == "") & np.isfinite(values)] = candidates.pop()
    frame["sensor"] = sensor
    if "boot" in ds:
        boots = np.array(str(ds.attrs.get("boots", "")).split() or [""], dtype=object)
        frame["boot"] = boots[ds["boot"].values[dev, col]]
    for name in ("seq", "flags"):
        if name in ds:
            frame[name] = ds[name].values[dev, col]
    return frame


def _by_device(ds: xr.Dataset, func: Callable[[xr.Dataset], xr.Dataset], time: xr.DataArray) -> xr.Dataset:
    """Apply ``func`` to the whole cube, or to each block of devices when it is Dask-backed.

    ``func`` maps a cube of some devices to a ``(device, time)`` Dataset on
    the ``time`` coordinate given.  Lazily, each block of devices becomes one
    delayed call (its input blocks computed first), and each output variable
    a Dask array stitched from them.
    """
    if not ds.chunks:
        return func(ds)
    import dask
    import dask.array as da

    sample = func(ds.isel(device=slice(0, 1), time=slice(0, 0)).compute())  # names, dtypes, attributes
    edges = np.cumsum((0, *ds.chunks["device"]))
    blocks = [(int(a), int(b), dask.delayed(func)(ds.isel(device=slice(int(a), int(b)))))
              for a, b in itertools.pairwise(edges)]
    variables = {}
    for name, var in sample.data_vars.items():
        pieces = [da.from_delayed(dask.delayed(_values)(block, name), shape=(b - a, time.size), dtype=var.dtype)
                  for a, b, block in blocks]
        variables[name] = xr.Variable(var.dims, da.concatenate(pieces, axis=0), var.attrs)
    return xr.Dataset(variables, coords={"device": ds["device"], "time": time})


def _values(block: xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(block[name].values)


def flag_dataset(ds: xr.Dataset, **kwargs: Any) -> xr.Dataset:
    """A copy of the cube whose ``flags`` carry the QC bits of :func:`analysis.qc.flag`."""
    if "flags" not in ds:
        raise ValueError("the cube has no 'flags' variable; load it with analysis.cube.load")

    def one(block: xr.Dataset) -> xr.Dataset:
        frame = records_frame(block)
        flags = block["flags"].values.copy()
        if len(frame):
            dev, col = np.nonzero(block["boot"].values >= 0)
            flags[dev, col] = qc.flag(frame, **kwargs).to_numpy()
        return xr.Dataset({"flags": block["flags"].copy(data=flags)})

    flags = _by_device(ds, one, ds["time"])["flags"]
    out = ds.copy()
    out["flags"] = flags
    out["flags"].attrs.update(flag_masks=np.array(list(qc.FLAG_NAMES), dtype="int64"),
                              flag_meanings=" ".join(qc.FLAG_NAMES.values()))
    return out


def series_from_dataset(ds: xr.Dataset, rates: tuple[float, dict[str, float]],
                        quantities: Iterable[str] | None = None) -> Series:
    """Long sorted arrays of a cube's finite values (device-major, time-sorted per device)."""
    names = quantity_names(ds, quantities)
    n_dev, n_t = ds.sizes["device"], ds.sizes["time"]
    times = pd.DatetimeIndex(ds["time"].values).as_unit("ns").asi8
    rows = np.broadcast_to(np.arange(n_dev, dtype="int64")[:, None], (n_dev, n_t))
    flags = ds["flags"].values if "flags" in ds else None
    default, table = rates
    pair_rate = np.full(len(names) * n_dev, default)
    parts: dict[str, list[np.ndarray]] = {"pair": [], "t": [], "v": [], "flags": []}
    for i, name in enumerate(names):
        values = ds[name].values
        finite = np.isfinite(values)
        parts["pair"].append(rows[finite] + i * n_dev)
        parts["t"].append(np.broadcast_to(times, (n_dev, n_t))[finite])
        parts["v"].append(values[finite])
        if flags is not None:
            parts["flags"].append(flags[finite])
        models = [m.strip() for m in str(ds[name].attrs.get("sensor", "")).split(",") if m.strip()]
        pair_rate[i * n_dev:(i + 1) * n_dev] = max((table.get(m, default) for m in models), default=default)

    def joined(key: str, dtype: str) -> np.ndarray:
        return np.concatenate(parts[key]) if parts[key] else np.zeros(0, dtype=dtype)

    series = Series(pair=joined("pair", "int64"), t=joined("t", "int64"), v=joined("v", "float64"),
                    flags=joined("flags", "int64") if flags is not None else None, sensor=None,
                    sensor_rate=np.zeros(0), pair_rate=pair_rate, unit="ns",
                    devices=np.asarray(ds["device"].values, dtype=object), quantities=names)
    return sort_series(series)


def resample_dataset(ds: xr.Dataset, step_ns: int, *, names: Sequence[str], quantiles: Sequence[float],
                     label: Label, exclude: int, rates: tuple[float, dict[str, float]],
                     min_coverage: float | None, quantities: Iterable[str] | None) -> xr.Dataset:
    """:func:`analysis.resample.resample` on a cube: a dense ``(device, window)`` Dataset."""
    times = pd.DatetimeIndex(ds["time"].values).as_unit("ns").asi8
    first = int(times.min()) // step_ns if len(times) else 0
    count = int(times.max()) // step_ns - first + 1 if len(times) else 0
    wanted = quantity_names(ds, quantities)
    labels = (first + np.arange(count) + (1 if label == "end" else 0)) * step_ns
    time = xr.DataArray(pd.to_datetime(labels, unit="ns").values, dims="time", name="time",
                        attrs={"standard_name": "time", "long_name": f"window {label} (UTC)"})

    def one(block: xr.Dataset) -> xr.Dataset:
        series = series_from_dataset(block, rates, wanted)
        result = aggregate(series, step_ns, names, quantiles, exclude, min_coverage)
        assert series.pair_rate is not None, "a cube's series have per-pair rates"
        return _dense(result, block, wanted, first, time, step_ns, series.pair_rate)

    return _by_device(ds, one, time)


def _dense(result: Mapping[str, np.ndarray], block: xr.Dataset, names: list[str], first: int, time: xr.DataArray,
           step_ns: int, pair_rate: np.ndarray) -> xr.Dataset:
    """Scatter the non-empty windows of :func:`analysis.resample.aggregate` onto the full window grid.

    An empty window has count, excluded and coverage 0, its expected count,
    reason 1 (no valid value) and NaN statistics.
    """
    n_dev, count = block.sizes["device"], time.size
    dev, q, col = result["pair"] % max(n_dev, 1), result["pair"] // max(n_dev, 1), result["window"] - first
    period = pd.Timedelta(step_ns, unit="ns")
    variables = {}
    for i, name in enumerate(names):
        mine = q == i
        attrs = {k: v for k, v in block[name].attrs.items() if k in ("units", "long_name", "standard_name", "kind")}
        for stat, column in result.items():
            if stat in ("pair", "window"):
                continue
            fill = {"count": 0, "excluded": 0, "coverage": 0.0, "reason": 1}.get(stat, np.nan)
            dtype = {"count": "int64", "excluded": "int64", "reason": "int8"}.get(stat, "float64")
            grid = np.full((n_dev, count), fill, dtype=dtype)
            if stat == "expected":
                grid[:] = pair_rate[i * n_dev:(i + 1) * n_dev, None] * (step_ns / 1e9)
            grid[dev[mine], col[mine]] = column[mine]
            variables[f"{name}_{stat}"] = (("device", "time"), grid, _stat_attrs(stat, attrs, period))
    return xr.Dataset(variables, coords={"device": block["device"], "time": time})


def _stat_attrs(stat: str, attrs: Mapping[str, Any], period: pd.Timedelta) -> dict[str, Any]:
    if stat in ("count", "excluded", "expected"):
        return {"units": "1", "long_name": f"{attrs.get('long_name', '')}: values {stat}"}
    if stat == "coverage":
        return {"units": "1", "long_name": f"{attrs.get('long_name', '')}: values used / values expected"}
    if stat == "reason":
        return {"long_name": "why the window has no value", "flag_values": np.array([0, 1, 2], dtype="int8"),
                "flag_meanings": _REASONS}
    method = {"mean": "mean", "median": "median", "min": "minimum", "max": "maximum"}.get(stat, "point")
    return {**attrs, "cell_methods": f"time: {method} (interval: {period.isoformat()})", "statistic": stat}


def coverage(ds: xr.Dataset, freq: str | pd.Timedelta, **kwargs: Any) -> xr.Dataset:
    """Coverage [1] per device, window and quantity: one variable per quantity."""
    out = resample(ds, freq, stats=(), **kwargs)
    assert isinstance(out, xr.Dataset)
    names = [str(n)[: -len("_coverage")] for n in out.data_vars if str(n).endswith("_coverage")]
    return xr.Dataset({name: out[f"{name}_coverage"] for name in names})


@xr.register_dataset_accessor("qsec")
class DatasetAccessor:
    """``ds.qsec``: :meth:`resample`, :meth:`flag`, :meth:`coverage`, :meth:`records`."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def resample(self, freq: str | pd.Timedelta, **kwargs: Any) -> xr.Dataset:
        """:func:`analysis.resample.resample` of this cube."""
        out = resample(self._ds, freq, **kwargs)
        assert isinstance(out, xr.Dataset)
        return out

    def flag(self, **kwargs: Any) -> xr.Dataset:
        """This cube with QC bits in ``flags`` (arguments of :func:`analysis.qc.flag`)."""
        return flag_dataset(self._ds, **kwargs)

    def coverage(self, freq: str | pd.Timedelta, **kwargs: Any) -> xr.Dataset:
        """Coverage per window and quantity (arguments of :func:`analysis.resample.resample`)."""
        return coverage(self._ds, freq, **kwargs)

    def records(self) -> pd.DataFrame:
        """The cells that hold a record, as a wide record frame."""
        return records_frame(self._ds)


@pd.api.extensions.register_dataframe_accessor("qsec")
class FrameAccessor:
    """``df.qsec`` on records: :meth:`resample` and :meth:`flag`."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def resample(self, freq: str | pd.Timedelta, **kwargs: Any) -> pd.DataFrame:
        """:func:`analysis.resample.resample` of these records."""
        out = resample(self._frame, freq, **kwargs)
        assert isinstance(out, pd.DataFrame)
        return out

    def flag(self, **kwargs: Any) -> pd.DataFrame:
        """A copy of the records with QC bits in ``flags`` (arguments of :func:`analysis.qc.flag`)."""
        return self._frame.assign(flags=qc.flag(self._frame, **kwargs))


__all__ = ["DatasetAccessor", "FrameAccessor", "coverage", "flag_dataset", "quantity_names", "records_frame",
           "resample_dataset", "series_from_dataset"]
