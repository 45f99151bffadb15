"""Load the store into an xarray cube: dims ``(device, time)``, one variable per quantity.

The store's ``readings`` table is wide and sparse: each record carries the
quantities of one sensor (see ``docs/store.md``).  :func:`load` pivots it to
an :class:`xarray.Dataset` whose variables share one time axis, each with
its own unit and CF attributes from :mod:`qsec.quantities`.  A Dataset of
variables (rather than one DataArray with a ``quantity`` dimension) keeps a
unit per quantity, which CF requires and which the VOC rule needs (an index
is never averaged with a concentration).

The same function builds the cube in memory (``chunks=None``) or lazily as
Dask arrays (``chunks=…``): in both cases each block of the time axis is read
by the same query, one per block; eagerly there is only one block.

Sources
-------
- CF Conventions 1.11, sections 3.1 (units), 3.3 (standard names), 3.5
  (flags: ``flag_masks``/``flag_meanings``), 4.4 (time), https://cfconventions.org/.
- xarray, "Parallel computing with Dask" and ``dask.array.from_delayed``:
  https://docs.xarray.dev/en/stable/user-guide/dask.html,
  https://docs.dask.org/en/stable/generated/dask.array.from_delayed.html.
- DuckDB ``time_bucket`` and ``bit_or``: https://duckdb.org/docs/sql/functions/timestamp,
  https://duckdb.org/docs/sql/functions/aggregates.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import xarray as xr

import analysis.accessor  # noqa: F401  (registers ds.qsec and df.qsec)
from analysis.columns import READINGS, quantity_columns, quote
from analysis.times import TimeLike, to_store_time
from qsec import contract
from qsec import quantities as qty

TIME_DTYPE = "datetime64[ns]"
RECORD_VARIABLES = ("flags", "boot", "seq")
"""Data variables of the cube that describe records rather than quantities."""

_SOURCES: weakref.WeakValueDictionary[str, duckdb.DuckDBPyConnection] = weakref.WeakValueDictionary()
_CURSOR_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Query:
    """What one block reads: the selection, minus its time bounds."""

    source: str
    where: tuple[str, ...]
    params: tuple[object, ...]
    devices: tuple[str, ...]
    boots: tuple[str, ...]
    columns: tuple[str, ...]
    resolution_us: int | None


def load(
    con: duckdb.DuckDBPyConnection,
    campaign: str | None = None,
    devices: Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    quantities: Iterable[str] | None = None,
    chunks: int | Mapping[str, int] | None = None,
    *,
    resolution: str | pd.Timedelta | None = None,
) -> xr.Dataset:
    """Read records from the store into a ``(device, time)`` Dataset.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection on the store; only table ``readings`` is read.
    campaign : str, optional
        Keep only this campaign.
    devices : iterable of str, optional
        Keep only these devices (they become the ``device`` coordinate, in
        this order, even those without records).  All devices by default.
    start, end : datetime or ISO 8601 str, optional
        Measurement-time bounds, ``[start, end)``; a naive time is UTC.
    quantities : iterable of str, optional
        Quantity names to load.  By default every quantity that has at least
        one value in the selection.
    chunks : int or {"time": int}, optional
        Time steps per Dask chunk.  ``None`` (default) loads into memory.
    resolution : str or Timedelta, optional
        Snap measurement times down to this grid (``"1s"``).  ``None``
        keeps every distinct measurement time (lossless).

    Returns
    -------
    xarray.Dataset
        Dims ``device`` and ``time`` (naive UTC, ``datetime64[ns]``).  One
        float64 variable per quantity [its unit], with ``units``,
        ``long_name``, ``standard_name`` (where CF has one), ``kind`` and
        ``sensor`` (the sensor models that produced it, comma-separated)
        attributes;  coordinate ``sensors`` lists each device's models; NaN where a device has no value.  Three record
        variables: ``flags`` (int64, bitwise OR of the records' flags in
        the cell, 0 where there is none), ``boot`` (int32, index into the
        space-separated ``boots`` attribute, -1 where no record) and ``seq`` (int64, the
        highest seq in the cell, -1 where no record).

    Raises
    ------
    KeyError
        If ``quantities`` names an unknown quantity.
    ValueError
        If ``end`` is not after ``start``, or ``chunks``/``resolution`` is
        not a positive size.

    Notes
    -----
    The time axis is the union of the selected records' times.  Records of
    one device that share a cell (the same time, or the same ``resolution``
    bin) are merged: each quantity is the **mean** of their values, ``flags``
    the OR, ``seq`` the maximum.  With ``resolution=None`` this happens only
    for records stamped at the very same microsecond; a 1 Hz kit with three
    sensors then has three time steps a second, and each other device adds
    its own, so a cube of many devices is sparse: give ``resolution="1s"``
    for a dense one.

    Lazily (``chunks``), the time coordinate is read at once and each
    block's values when computed.  The blocks query ``con`` through cursors
    of the calling process: compute them with the threaded scheduler or a
    ``dask.distributed`` cluster with ``processes=False``.  A cluster of
    worker processes can only read a file store opened read-only (DuckDB
    allows one writing process per file).
    """
    step_us = _resolution_us(resolution)
    columns = tuple(quantity_columns(con, quantities))
    where, params = _where(con, campaign, devices, start, end)
    sensors, device_sensors = _sensors(con, columns, where, params)
    if quantities is None:
        columns = tuple(name for name in columns if sensors.get(name))
    device_list = tuple(devices) if devices is not None else _distinct(con, "device", where, params)
    boots = _distinct(con, "boot", where, params)
    times = _times(con, where, params, step_us)
    query = _Query(_register(con), tuple(where), tuple(params), device_list, boots, columns, step_us)
    step = _chunk_size(chunks, len(times))
    bounds = [(i, min(i + step, len(times))) for i in range(0, len(times), step)] if len(times) else []
    arrays: Mapping[str, object]
    if chunks is None:
        blocks = [_block(query, times[a:b]) for a, b in bounds]
        arrays = {name: _join([blk[name] for blk in blocks], name, len(device_list)) for name in _names(query)}
    else:
        arrays = _lazy(query, times, bounds)
    return _dataset(arrays, query, times, sensors, device_sensors)


def source_of(ds: xr.Dataset) -> duckdb.DuckDBPyConnection | None:
    """The connection a Dataset from :func:`load` reads from, while it is open."""
    return _SOURCES.get(str(ds.attrs.get("qsec_source", "")))


def _where(con: duckdb.DuckDBPyConnection, campaign: str | None, devices: Iterable[str] | None,
           start: TimeLike | None, end: TimeLike | None) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []
    if campaign is not None:
        where.append("campaign = ?")
        params.append(campaign)
    if devices is not None:
        where.append("list_contains(?, device)")
        params.append(list(devices))
    lo = to_store_time(start) if start is not None else None
    hi = to_store_time(end) if end is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if lo is not None:
        where.append("time >= ?")
        params.append(lo)
    if hi is not None:
        where.append("time < ?")
        params.append(hi)
    return where, params


def _sql_where(where: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""


def _bucket(step_us: int | None) -> str:
    return "time" if step_us is None else f"time_bucket(INTERVAL {step_us} MICROSECONDS, time)"


def _resolution_us(resolution: str | pd.Timedelta | None) -> int | None:
    if resolution is None:
        return None
    step = pd.Timedelta(resolution)
    if step <= pd.Timedelta(0) or step % pd.Timedelta(microseconds=1):
        raise ValueError(f"resolution must be a positive whole number of microseconds, not {resolution!r}")
    return int(step / pd.Timedelta(microseconds=1))


def _chunk_size(chunks: int | Mapping[str, int] | None, n: int) -> int:
    if chunks is None:
        return max(n, 1)
    size = chunks.get("time", n) if isinstance(chunks, Mapping) else chunks
    if isinstance(chunks, Mapping) and set(chunks) - {"time", "device"}:
        raise ValueError(f"chunks may name 'time' (and 'device', kept whole), not {sorted(chunks)}")
    if size == -1:
        size = n
    if not isinstance(size, int | np.integer) or size <= 0:
        raise ValueError(f"chunks must be a positive number of time steps (or -1 for one chunk), not {size!r}")
    return max(int(size), 1)


def _distinct(con: duckdb.DuckDBPyConnection, column: str, where: list[str], params: list[object]) -> tuple[str, ...]:
    sql = f"SELECT DISTINCT {column} FROM {READINGS} {_sql_where(where)} ORDER BY 1"
    return tuple(str(row[0]) for row in con.execute(sql, params).fetchall())


def _times(con: duckdb.DuckDBPyConnection, where: list[str], params: list[object], step_us: int | None) -> np.ndarray:
    sql = f"SELECT DISTINCT {_bucket(step_us)} AS t FROM {READINGS} {_sql_where(where)} ORDER BY 1"
    values = con.execute(sql, params).fetchnumpy()["t"]
    return np.asarray(values).astype(TIME_DTYPE)


def _sensors(con: duckdb.DuckDBPyConnection, columns: Sequence[str], where: list[str],
             params: list[object]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Sensor models that carried each quantity, and those each device used (one scan)."""
    counts = "".join(f", count({quote(name)}) AS {quote(name)}" for name in columns)
    frame = con.execute(f"SELECT device, sensor{counts} FROM {READINGS} {_sql_where(where)} "
                        "GROUP BY device, sensor ORDER BY sensor", params).df()
    per_quantity = {name: sorted({str(s) for s in frame.loc[frame[name] > 0, "sensor"]}) for name in columns}
    per_device = {str(d): sorted(str(s) for s in group["sensor"]) for d, group in frame.groupby("device")}
    return per_quantity, per_device


def _register(con: duckdb.DuckDBPyConnection) -> str:
    for token, known in _SOURCES.items():
        if known is con:
            return token
    token = uuid.uuid4().hex
    _SOURCES[token] = con
    return token


def _cursor(source: str) -> duckdb.DuckDBPyConnection:
    con = _SOURCES.get(source)
    if con is None:
        raise RuntimeError("the store connection this cube reads from is closed or lives in another process; "
                           "load again, or compute with processes=False (see analysis.cube.load, Notes)")
    with _CURSOR_LOCK:
        return con.cursor()


def _names(query: _Query) -> tuple[str, ...]:
    return (*query.columns, *RECORD_VARIABLES)


def _block(query: _Query, times: np.ndarray) -> dict[str, np.ndarray]:
    """Read the cells of ``times`` (one block of the time axis) into (device, time) arrays."""
    n_dev, n_t = len(query.devices), len(times)
    out: dict[str, np.ndarray] = {name: np.full((n_dev, n_t), np.nan) for name in query.columns}
    out["flags"] = np.zeros((n_dev, n_t), dtype="int64")
    out["boot"] = np.full((n_dev, n_t), -1, dtype="int32")
    out["seq"] = np.full((n_dev, n_t), -1, dtype="int64")
    if n_t == 0 or n_dev == 0:
        return out
    lo = pd.Timestamp(times[0]).to_pydatetime()
    hi = pd.Timestamp(times[-1]).to_pydatetime()
    upper = "time <= ?" if query.resolution_us is None else f"time < ? + INTERVAL {query.resolution_us} MICROSECONDS"
    means = "".join(f", avg({quote(name)}) AS {quote(name)}" for name in query.columns)
    sql = f"""
        SELECT device, {_bucket(query.resolution_us)} AS t, bit_or(flags) AS flags, max(seq) AS seq,
               min(boot) AS boot{means}
        FROM {READINGS} {_sql_where([*query.where, "time >= ?", upper])}
        GROUP BY device, t
    """
    cur = _cursor(query.source)
    try:
        cells = cur.execute(sql, [*query.params, lo, hi]).fetchnumpy()
    finally:
        cur.close()
    row = pd.Categorical(cells["device"], categories=query.devices).codes
    col = np.searchsorted(times, np.asarray(cells["t"]).astype(TIME_DTYPE))
    keep = row >= 0
    row, col = row[keep], col[keep]
    for name in query.columns:
        out[name][row, col] = np.ma.filled(np.ma.asarray(cells[name], dtype="float64"), np.nan)[keep]
    out["flags"][row, col] = np.asarray(cells["flags"], dtype="int64")[keep]
    out["seq"][row, col] = np.asarray(cells["seq"], dtype="int64")[keep]
    out["boot"][row, col] = pd.Categorical(cells["boot"], categories=query.boots).codes[keep]
    return out


def _join(parts: list[np.ndarray], name: str, n_dev: int) -> np.ndarray:
    if parts:
        return np.concatenate(parts, axis=1)
    dtype = {"flags": "int64", "boot": "int32", "seq": "int64"}.get(name, "float64")
    return np.empty((n_dev, 0), dtype=dtype)


def _lazy(query: _Query, times: np.ndarray, bounds: list[tuple[int, int]]) -> dict[str, object]:
    """One delayed read per block; each variable is a Dask array stitched from them."""
    import dask
    import dask.array as da

    n_dev = len(query.devices)
    dtypes: dict[str, np.dtype[Any]] = {name: np.dtype("float64") for name in query.columns}
    dtypes.update(flags=np.dtype("int64"), boot=np.dtype("int32"), seq=np.dtype("int64"))
    reads = [dask.delayed(_block, pure=True)(query, times[a:b]) for a, b in bounds]
    arrays: dict[str, object] = {}
    for name, dtype in dtypes.items():
        pieces = [da.from_delayed(read[name], shape=(n_dev, b - a), dtype=dtype)
                  for read, (a, b) in zip(reads, bounds, strict=True)]
        arrays[name] = da.concatenate(pieces, axis=1) if pieces else da.empty((n_dev, 0), dtype=dtype)
    return arrays


def _dataset(arrays: Mapping[str, object], query: _Query, times: np.ndarray, sensors: Mapping[str, list[str]],
             device_sensors: Mapping[str, list[str]]) -> xr.Dataset:
    dims = ("device", "time")
    variables = {}
    for name in query.columns:
        q = qty.get(name)
        attrs = {"units": q.unit, "long_name": q.long_name, "kind": q.kind.value,
                 "sensor": ", ".join(sensors.get(name, []))}
        if q.standard_name:
            attrs["standard_name"] = q.standard_name
        variables[name] = xr.Variable(dims, arrays[name], attrs)
    masks = list(contract.BRIDGE_FLAGS)
    variables["flags"] = xr.Variable(dims, arrays["flags"], {
        "long_name": "record flags (bridge bits 0-4, quality-control bits 8 and up)",
        "flag_masks": np.array(masks, dtype="int64"), "flag_meanings": " ".join(contract.BRIDGE_FLAGS.values())})
    variables["boot"] = xr.Variable(dims, arrays["boot"], {
        "long_name": "boot of the bridge that produced the cell's records: index into the boots attribute, -1 none"})
    variables["seq"] = xr.Variable(dims, arrays["seq"], {"long_name": "highest record sequence number in the cell, -1 none"})
    coords = {
        "device": ("device", np.array(query.devices, dtype=object), {"long_name": "device id"}),
        "sensors": ("device", np.array([" ".join(device_sensors.get(d, [])) for d in query.devices], dtype=object),
                    {"long_name": "sensor models the device used, space-separated"}),
        "time": ("time", times, {"standard_name": "time", "long_name": "measurement time (UTC)"}),
    }
    about: dict[str, object] = {"Conventions": "CF-1.11", "source": "qsec store, table readings",
                                "boots": " ".join(query.boots), "qsec_source": query.source}
    if query.resolution_us is not None:
        about["resolution_us"] = query.resolution_us
    return xr.Dataset(variables, coords=coords, attrs=about)
