"""Trips: stops and moves from positions, with distance, speed, a mode guess and exposure.

Input is one row per position (a tracker fix, or a sensor record with a
fused position from :func:`analysis.fusion.attach_positions`) with columns
``device``, ``time``, ``latitude``, ``longitude`` and any quantities.

A **stop** is a stretch where the device stays within ``radius_m`` for at
least ``min_duration_s``; everything between stops is a **move**.  A gap in
time longer than ``max_gap_s`` always starts a new segment.  Each segment
is summarised with its distance, duration, speed percentiles, a guess of
the mode of transport, and the time-weighted mean exposure.

Sources
-------
- Stay-point detection: Q. Li, Y. Zheng et al., "Mining user similarity
  based on location history", ACM SIGSPATIAL GIS 2008
  (https://doi.org/10.1145/1463434.1463477): a stay point is a region of
  a given distance threshold where a user stays longer than a time
  threshold.
- Haversine distance on a sphere of the IUGG mean Earth radius
  R1 = 6 371 008.8 m (H. Moritz, "Geodetic Reference System 1980",
  Journal of Geodesy 74, 2000).
- Walking speeds: R. W. Bohannon, "Comfortable and maximum walking speed
  of adults aged 20-79 years", Age and Ageing 26(1), 1997, 15-19
  (comfortable 1.27-1.46 m/s, maximum 1.75-2.53 m/s).  Urban cycling
  speeds are typically 4-6 m/s (about 15-20 km/h).

The geometry (distance, tangent plane, steps) is in :mod:`analysis.positions`;
:func:`haversine_m` and :data:`EARTH_RADIUS_M` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.indexers import BaseIndexer

from analysis.daily import as_utc
from analysis.fusion import group_time_keys
from analysis.positions import (
    EARTH_RADIUS_M, MAX_PLAUSIBLE_MS, haversine_m, sorted_positions, tangent_plane, thinned_steps,
)

__all__ = ["BIKE_MAX_MS", "EARTH_RADIUS_M", "MAX_PLAUSIBLE_MS", "MODE_PERCENTILE", "SEGMENT_COLUMNS", "STEP_S",
           "WALK_MAX_MS", "exposure_weights", "guess_mode", "haversine_m", "segment", "streams", "summarise"]

WALK_MAX_MS = 2.0  # [m/s] above a brisk walk (Bohannon 1997: maximum gait 1.75-2.53 m/s)
BIKE_MAX_MS = 7.0  # [m/s] about 25 km/h, above most urban cycling
MODE_PERCENTILE = 85  # [%] speed percentile the mode guess is based on
STEP_S = 10.0  # [s] time base of distance and speed steps

SEGMENT_COLUMNS = [
    "device", "segment", "kind", "start", "end", "duration_s", "points", "distance_m",
    "speed_median_ms", "speed_p85_ms", "speed_max_ms", "mode",
]


def exposure_weights(
    times: pd.Series, groups: pd.Series | pd.DataFrame | None = None, *, cap_s: float | None = None
) -> np.ndarray:
    """Time each record stands for: the time to the next record, capped [s].

    Parameters
    ----------
    times : Series of datetimes
        Measurement times (naive = UTC), in any order.
    groups : Series or DataFrame, optional
        Stream of each record, aligned with ``times``: a device, or columns
        such as ``device`` and ``sensor`` (see :func:`streams`); the next
        record is searched in the same stream.  One stream by default.
    cap_s : float, optional
        Longest time a record may stand for [s].  By default three times
        the median interval of its stream, so a record before an outage
        does not stand for the whole outage.

    Returns
    -------
    numpy.ndarray of float [s]
        Aligned with ``times``.  The last record of a stream gets the
        stream's median interval (capped); a stream of one record gets 0.

    Raises
    ------
    ValueError
        If ``cap_s`` is negative or not finite.
    """
    if cap_s is not None and (not np.isfinite(cap_s) or cap_s < 0):
        raise ValueError(f"cap_s must be a finite number of seconds >= 0, not {cap_s!r}")
    stamps = as_utc(times).reset_index(drop=True)
    if groups is None:
        frame = pd.DataFrame({"g0": 0, "t": stamps})
    else:
        keys = groups if isinstance(groups, pd.DataFrame) else pd.DataFrame({"g": groups})
        frame = pd.DataFrame({f"g{k}": keys.iloc[:, k].to_numpy() for k in range(keys.shape[1])} | {"t": stamps})
    by = [c for c in frame.columns if c != "t"]
    frame = frame.sort_values([*by, "t"], kind="stable")
    step = frame.groupby(by, sort=False, dropna=False)["t"].diff(-1).dt.total_seconds().abs()
    median = step.groupby([frame[c] for c in by], dropna=False).transform("median")
    cap = 3.0 * median if cap_s is None else pd.Series(cap_s, index=frame.index)
    weight = step.fillna(median).fillna(0.0)
    weight = np.minimum(weight, cap.fillna(0.0))
    return weight.reindex(stamps.index).to_numpy(dtype="float64")


def streams(records: pd.DataFrame) -> pd.DataFrame:
    """The columns that name each record's stream: ``device``, and ``sensor`` when present.

    A kit's sensors report on their own schedules (a PMS5003 and an
    MH-Z19 a few ms apart every second); weights follow each sensor's own
    sequence of records.
    """
    return records[[c for c in ("device", "sensor") if c in records.columns]]


def segment(
    points: pd.DataFrame,
    *,
    radius_m: float = 50.0,
    min_duration_s: float = 300.0,
    max_gap_s: float = 300.0,
) -> pd.DataFrame:
    """Label each position as part of a stop or a move.

    Parameters
    ----------
    points : DataFrame
        Columns ``device``, ``time`` (naive = UTC), ``latitude``,
        ``longitude`` [° WGS84]; rows without a position or a time are
        dropped.
    radius_m : float, default 50
        A stop's radius [m].
    min_duration_s : float, default 300
        Shortest stop [s].
    max_gap_s : float, default 300
        A gap between two positions longer than this starts a new segment [s].

    Returns
    -------
    pandas.DataFrame
        The rows with a position, sorted by device and time (original index
        kept), with two more columns: ``segment`` (int, numbered from 0 in
        that order) and ``kind`` (``"stop"`` or ``"move"``).

    Raises
    ------
    ValueError
        If a threshold is negative or not finite.

    Notes
    -----
    For each position, the window reaching back to the last position at
    least ``min_duration_s`` earlier is a stop if all its positions fit in
    a circle of ``radius_m`` around the centre of their bounding box (half
    its diagonal is at most ``radius_m``).  Every position in such a window
    belongs to a stop.  Window extremes come from pandas' rolling min/max
    with variable bounds, so there is no Python loop over positions.
    Coordinates are projected on a plane tangent at each device's median
    position, which is exact to well under 1 % over a stop's extent.
    """
    for name, value in (("radius_m", radius_m), ("min_duration_s", min_duration_s), ("max_gap_s", max_gap_s)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    frame = sorted_positions(points)
    device = pd.factorize(frame["device"])[0]
    t = as_utc(frame["time"]).array.asi8  # [µs]
    x, y = tangent_plane(frame, device)
    start, valid = _window_starts(device, t, round(min_duration_s * 1e6))
    bounds = _Bounds(start, np.arange(1, len(frame) + 1, dtype="int64"))
    extent = [
        pd.Series(v).rolling(bounds, min_periods=1).agg(how).to_numpy()
        for v in (x, y) for how in ("max", "min")
    ]
    half_diagonal = 0.5 * np.hypot(extent[0] - extent[1], extent[2] - extent[3])
    qualifies = valid & (half_diagonal <= radius_m)
    stop = _cover(start[qualifies], np.flatnonzero(qualifies), len(frame))
    kind = np.where(stop, "stop", "move")
    new_device = np.r_[True, device[1:] != device[:-1]]
    gap = np.r_[True, np.diff(t) > max_gap_s * 1e6]
    changed = np.r_[True, kind[1:] != kind[:-1]]
    frame["segment"] = np.cumsum(new_device | gap | changed) - 1
    frame["kind"] = kind
    return frame


def summarise(
    segmented: pd.DataFrame,
    quantities: Sequence[str] = ("pm2_5",),
    *,
    records: pd.DataFrame | None = None,
    step_s: float = STEP_S,
    cap_s: float | None = None,
) -> pd.DataFrame:
    """Summarise each segment: distance, duration, speeds, mode, exposure.

    Parameters
    ----------
    segmented : DataFrame
        Output of :func:`segment`, usually on the tracker's fixes.
    quantities : sequence of str, default ``("pm2_5",)``
        Columns to average over each segment, weighted by time; a name
        absent from the records is ignored.
    records : DataFrame, optional
        Sensor records carrying a ``segment`` column, typically
        ``attach_positions(records, segmented, columns=("latitude",
        "longitude", "segment"))`` (nearest or backward, not interpolate);
        records without a segment are left out.  By default the exposure is
        taken from ``segmented`` itself.
    step_s : float, default 10
        Time base of distance and speed steps [s] (see Notes).
    cap_s : float, optional
        Cap of a record's time weight [s]; see :func:`exposure_weights`.

    Returns
    -------
    pandas.DataFrame
        One row per segment, with :data:`SEGMENT_COLUMNS` then, per
        quantity, its time-weighted mean ``<quantity>`` [its unit] and the
        time its valid records cover ``<quantity>_s`` [s]:

        - ``start``, ``end`` : datetime64 [UTC]; ``duration_s`` : float [s]
        - ``points`` : int, positions; ``distance_m`` : float [m]
        - ``speed_median_ms``, ``speed_p85_ms``, ``speed_max_ms`` : float [m/s]
        - ``mode`` : ``"walk"``, ``"bike"``, ``"motorised"`` for moves with
          at least 3 steps, else missing (stops, short moves)

    Notes
    -----
    Distance and speed are measured on the track thinned to its first
    position in each ``step_s`` interval: at 1 Hz, a few metres of GPS
    noise per fix would otherwise add several metres per second of false
    speed and inflate distances.  Only steps between two positions of the
    same segment count, so a segment's distance misses at most one step at
    its start, and nothing is counted across a gap.  Steps faster than
    70 m/s are GPS jumps: they add no distance and no speed.

    The mode guess compares the 85th percentile of step speeds with 2 m/s
    (walk) and 7 m/s (bike); the percentile ignores stops at lights and
    short GPS spikes.  It is a guess: a bus in traffic can look like a
    bike, a runner like a cyclist.

    Segment on one position stream (the fixes), not on sensor records of
    several models: each model's lag puts its positions at a different
    time, and a track mixing them zigzags.  Exposure weights are the time
    to the next record of the same device and sensor, capped (see
    :func:`exposure_weights`); a quantity's mean uses only the records
    where it is finite.
    """
    if not np.isfinite(step_s) or step_s <= 0:
        raise ValueError(f"step_s must be a positive number of seconds, not {step_s!r}")
    frame = segmented.copy()
    frame["_t"] = as_utc(frame["time"])
    frame["_step"], frame["_speed"] = thinned_steps(frame, step_s)
    grouped = frame.groupby("segment", sort=True)
    out = grouped.agg(
        device=("device", "first"), kind=("kind", "first"), start=("_t", "min"), end=("_t", "max"),
        points=("_t", "size"), distance_m=("_step", "sum"), speed_median_ms=("_speed", "median"),
        speed_max_ms=("_speed", "max"), speeds=("_speed", "count"),
    )
    out["speed_p85_ms"] = grouped["_speed"].quantile(MODE_PERCENTILE / 100)
    out["duration_s"] = (out["end"] - out["start"]).dt.total_seconds()
    moving = (out["kind"] == "move") & (out["speeds"] >= 3)
    out["mode"] = pd.Series(guess_mode(out["speed_p85_ms"]), index=out.index).where(moving)
    exposed = _exposed(frame if records is None else records, cap_s)
    added = []
    for name in quantities:
        if name in exposed:
            mean, covered = _weighted_mean(exposed, name)
            out[name], out[f"{name}_s"] = mean.reindex(out.index), covered.reindex(out.index, fill_value=0.0)
            added += [name, f"{name}_s"]
    return out.reset_index()[SEGMENT_COLUMNS + added]


def _exposed(records: pd.DataFrame, cap_s: float | None) -> pd.DataFrame:
    """Records with an integer ``segment`` and their time weight ``_w``."""
    if "segment" not in records:
        raise KeyError("records need a 'segment' column: attach_positions(records, segmented, "
                       "columns=('latitude', 'longitude', 'segment'))")
    frame = records.assign(_w=exposure_weights(records["time"], streams(records), cap_s=cap_s))
    frame = frame[frame["segment"].notna()]
    return frame.assign(segment=frame["segment"].astype("int64"))


def guess_mode(speed_p85_ms: npt.ArrayLike) -> np.ndarray:
    """Guess the mode of transport from a robust speed [m/s].

    Parameters
    ----------
    speed_p85_ms : array-like [m/s]
        85th percentile of a move's step speeds.

    Returns
    -------
    numpy.ndarray of object
        ``"walk"`` below 2 m/s, ``"bike"`` from 2 to 7 m/s, ``"motorised"``
        above, None where the speed is NaN.
    """
    speed = np.asarray(speed_p85_ms, dtype="float64")
    mode = np.select([speed < WALK_MAX_MS, speed <= BIKE_MAX_MS], ["walk", "bike"], "motorised").astype(object)
    mode[~np.isfinite(speed)] = None
    return mode


class _Bounds(BaseIndexer):
    """Rolling windows with explicit [start, end) bounds, one per row."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self._start, self._end = start, end

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._start, self._end


def _window_starts(device: np.ndarray, t: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last position at least ``span`` µs before each one, in the same device.

    Rows without such a position get their device's first row and
    ``valid=False``; starts stay non-decreasing, as rolling windows need.
    """
    n = len(t)
    if n == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype=bool)
    (key,) = group_time_keys([device], [t], margin=span)
    start = np.searchsorted(key, key - span, side="right") - 1
    first = np.r_[0, np.flatnonzero(device[1:] != device[:-1]) + 1]
    device_first = first[np.searchsorted(first, np.arange(n), side="right") - 1]
    valid = start >= device_first
    return np.where(valid, start, device_first).astype("int64"), valid


def _cover(starts: np.ndarray, ends: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of positions inside any of the inclusive ranges [start, end]."""
    delta = np.bincount(starts, minlength=n + 1) - np.bincount(ends + 1, minlength=n + 1)
    return np.cumsum(delta[:n]) > 0


def _weighted_mean(frame: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series]:
    """Per segment: time-weighted mean of the finite values of ``name``, and the weight they cover [s]."""
    value = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    weight = frame["_w"].where(value.notna(), 0.0)
    total = weight.groupby(frame["segment"]).sum()
    weighted = (value.fillna(0.0) * weight).groupby(frame["segment"]).sum()
    return (weighted / total).where(total > 0), total
