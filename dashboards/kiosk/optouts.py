"""Participants' opt-outs on the live screens: what a screen must not show, read from the registry.

A participant may keep a trip or a whole session off public screens, maps
and exports (``qsec participant opt-out``; ``docs/campaigns.md``).  The
screens' store queries leave those records out in SQL
(:func:`analysis.export.selection.conditions` with ``hide_opted_out``); the
answers that do not come from those queries — live events pushed as ingest
commits them, ``/api/latest`` and ``/api/minute-means`` of
:mod:`analysis.live` — are filtered here against the same ranges
(:data:`analysis.export.selection.OPTED_OUT_RANGES`).

The ranges are read again when older than ``ttl_s`` (2 s by default), so an
opt-out recorded while the screens run hides its data from the next refresh
on, and the live stream within a few seconds.  The read is a join of three
small registry tables; a store without the registry hides nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analysis.export.selection import OPTED_OUT_RANGES, registry_present

TTL_S = 2.0  # [s] how old the ranges may be before they are read again
Ranges = dict[str, np.ndarray]  # device -> (n, 2) int64 [µs since the Unix epoch, UTC]: [starts, ends)


def load_ranges(con: duckdb.DuckDBPyConnection) -> Ranges:
    """The opted-out ranges of every device, from the registry (empty without one)."""
    if not registry_present(con):
        return {}
    frame = con.execute(f"SELECT device, epoch_us(starts) AS s, epoch_us(ends) AS e FROM ({OPTED_OUT_RANGES}) "
                        "WHERE starts < ends ORDER BY device, s").df()
    return {str(device): group[["s", "e"]].to_numpy(dtype="int64")
            for device, group in frame.groupby("device", sort=False)}


def hidden(ranges: Ranges, devices: pd.Series, starts_us: np.ndarray, width_us: int = 0) -> np.ndarray:
    """Which rows touch an opted-out range of their device.

    Parameters
    ----------
    ranges : dict
        From :func:`load_ranges`.
    devices : Series of str
    starts_us : array of int64
        Each row's time [µs since the Unix epoch, UTC].
    width_us : int
        Each row stands for ``[start, start + width)`` [µs] (an aggregate
        over a minute, say); 0 for a single record at ``start``.

    Returns
    -------
    numpy.ndarray of bool
        True where the row (or any part of its interval) is opted out.
    """
    out = np.zeros(len(devices), dtype=bool)
    if not ranges or not len(devices):
        return out
    names = devices.to_numpy()
    for device, spans in ranges.items():
        rows = np.flatnonzero(names == device)
        if len(rows):
            out[rows] = _touches(spans, starts_us[rows], width_us)
    return out


def _touches(spans: np.ndarray, starts_us: np.ndarray, width_us: int) -> np.ndarray:
    """``[t, t + width)`` meets some ``[starts, ends)`` of ``spans`` (a record at ``t`` when width is 0)."""
    t = starts_us[:, None]
    meets: np.ndarray = ((t < spans[None, :, 1]) & (t + max(width_us, 1) > spans[None, :, 0])).any(axis=1)
    return meets


class OptOuts:
    """The registry's opted-out ranges, read again when older than ``ttl_s``.

    Parameters
    ----------
    con_factory : callable returning duckdb.DuckDBPyConnection
        A fresh cursor on the store (closed after each read).
    ttl_s : float
        Longest time [s] a read is used.
    clock : callable
        Monotonic clock [s]; injected by tests.
    """

    def __init__(self, con_factory: Callable[[], duckdb.DuckDBPyConnection], ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = con_factory
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._ranges: Ranges = {}
        self._version: int = 0
        self._read_at = -float("inf")

    def ranges(self) -> Ranges:
        """The ranges now (read from the store when stale; the last ones kept if the store cannot answer)."""
        with self._lock:
            if self._clock() - self._read_at >= self.ttl_s:
                try:
                    con = self._factory()
                    try:
                        self._ranges = load_ranges(con)
                    finally:
                        con.close()
                except duckdb.Error:
                    pass  # the store is busy or not there yet: keep the last ranges, ask again next time
                else:
                    self._read_at = self._clock()
                    self._version = hash(tuple((d, spans.tobytes()) for d, spans in sorted(self._ranges.items())))
            return self._ranges

    def version(self) -> int:
        """Changes whenever the ranges change: part of the key of every cached screen answer."""
        self.ranges()
        return self._version

    def event(self, event: Mapping[str, Any]) -> bool:
        """Whether a live event (``device``, ``t`` [ms UTC]) falls in an opted-out range."""
        spans = self.ranges().get(str(event.get("device", "")))
        if spans is None:
            return False
        return bool(_touches(spans, np.array([int(event.get("t", 0)) * 1000], dtype="int64"), 0)[0])

    def drop(self, frame: pd.DataFrame, time: str = "time", width: pd.Timedelta | None = None) -> pd.DataFrame:
        """``frame`` (``device`` and an aware UTC ``time`` column) without its opted-out rows.

        With ``width``, each row stands for ``[time, time + width)`` and goes
        if any part of that interval is opted out.
        """
        ranges = self.ranges()
        if not ranges or frame.empty:
            return frame
        stamps = pd.to_datetime(frame[time], utc=True).dt.as_unit("us").astype("int64").to_numpy()
        width_us = 0 if width is None else int(width / pd.Timedelta(microseconds=1))
        return frame[~hidden(ranges, frame["device"].astype(str), stamps, width_us)]
