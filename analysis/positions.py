"""Positions on the Earth: great-circle distance, a local tangent plane, and distance and speed steps.

The geometry under :mod:`analysis.trips` (stop detection and trip
summaries); positions are WGS84 degrees, times UTC.

Sources
-------
- Haversine distance on a sphere of the IUGG mean Earth radius
  R1 = 6 371 008.8 m (H. Moritz, "Geodetic Reference System 1980",
  Journal of Geodesy 74, 2000).
- Local tangent plane: the equirectangular approximation around each
  device's median position, good to well under 1 % over a town.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.daily import as_utc

EARTH_RADIUS_M = 6_371_008.8  # [m] IUGG mean radius R1
MAX_PLAUSIBLE_MS = 70.0  # [m/s] steps faster than this are GPS jumps and are ignored


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> np.ndarray:
    """Great-circle distance between points on a sphere [m].

    Parameters
    ----------
    lat1, lon1, lat2, lon2 : array-like [° WGS84]
        Coordinates of the two ends; broadcast against each other.

    Returns
    -------
    numpy.ndarray of float [m]
        NaN where a coordinate is NaN.

    Notes
    -----
    A sphere of radius 6 371 008.8 m stands in for the WGS84 ellipsoid;
    the error is at most about 0.5 % of the distance.
    """
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dphi = p2 - p1
    dlam = np.radians(np.asarray(lon2, float) - np.asarray(lon1, float))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def sorted_positions(points: pd.DataFrame) -> pd.DataFrame:
    """Rows with a time and a position, sorted by device then time (a copy)."""
    missing = {"device", "time", "latitude", "longitude"} - set(points.columns)
    if missing:
        raise KeyError(f"points need columns device, time, latitude, longitude; missing: {sorted(missing)}")
    located = points[points["latitude"].notna() & points["longitude"].notna() & points["time"].notna()]
    order = np.lexsort((as_utc(located["time"]).array.asi8, pd.factorize(located["device"], sort=True)[0]))
    return located.iloc[order].copy()


def tangent_plane(frame: pd.DataFrame, device: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """East/north metres from each device's median position."""
    lat = frame["latitude"].to_numpy(dtype="float64")
    lon = frame["longitude"].to_numpy(dtype="float64")
    lat0 = pd.Series(lat).groupby(device).transform("median").to_numpy()
    lon0 = pd.Series(lon).groupby(device).transform("median").to_numpy()
    x = EARTH_RADIUS_M * np.cos(np.radians(lat0)) * np.radians(lon - lon0)
    y = EARTH_RADIUS_M * np.radians(lat - lat0)
    return x, y


def thinned_steps(frame: pd.DataFrame, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance [m] and speed [m/s] of the step ending at each kept position; NaN elsewhere.

    ``frame`` is sorted by device and time, so segments are contiguous.  A
    position is kept when it is the first of its segment in its ``step_s``
    interval counted from the segment's start.
    """
    seg = frame["segment"].to_numpy()
    t = frame["_t"].array.asi8
    new_segment = np.r_[True, seg[1:] != seg[:-1]]
    segment_start = t[np.maximum.accumulate(np.where(new_segment, np.arange(len(t)), 0))]
    slot = (t - segment_start) // int(step_s * 1e6)
    kept = np.flatnonzero(new_segment | np.r_[True, slot[1:] != slot[:-1]])
    lat = frame["latitude"].to_numpy(dtype="float64")[kept]
    lon = frame["longitude"].to_numpy(dtype="float64")[kept]
    first = new_segment[kept]
    dist = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    dt = np.diff(t[kept]) / 1e6
    speed = dist / np.where(dt > 0, dt, np.nan)
    good = ~first[1:] & (speed <= MAX_PLAUSIBLE_MS)
    step = np.full(len(frame), np.nan)
    rate = np.full(len(frame), np.nan)
    step[kept[1:]] = np.where(good, dist, np.nan)
    rate[kept[1:]] = np.where(good, speed, np.nan)
    return step, rate
