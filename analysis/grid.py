"""Spatial gridding: fixed square cells in metres, weighted by exposure time, as GeoJSON.

Positions [° WGS84] are projected to a metric map projection, cut into
square cells of a fixed side aligned on multiples of that side (so cell
ids are stable between runs and campaigns), and each cell gets its count,
distinct contributors, exposure time, coverage, time-weighted mean and
median.  :func:`cells_geojson` turns the cells back into WGS84 polygons.

Why a projection and which one
------------------------------
Cells must have the same area everywhere in a campaign, in metres.  The
default is Lambert-93 (EPSG:2154), the official projection of
metropolitan France (RGF93): conformal, with a scale error below
1 part in 1000 over Île-de-France, so a 100 m cell is 100 m to within
10 cm.  An equirectangular approximation around a reference latitude
would drift by about 1 % per 50 km north-south (cos φ varies), and H3
hexagons do not have a fixed metric size.  Projection is done by pyproj
(PROJ), which is vectorised and exact; elsewhere, pass the UTM zone of the
campaign (:func:`utm_crs`).

Sources
-------
- IGN, "Lambert-93" (RGF93 v1 / Lambert-93, EPSG:2154),
  https://geodesie.ign.fr/contenu/fichiers/documentation/rgf93/Lambert-93.pdf
- PROJ / pyproj Transformer: https://pyproj4.github.io/pyproj/stable/api/transformer.html
- GeoJSON, RFC 7946 (§3.1.6 polygon rings, §4 WGS84 longitude-latitude order),
  https://www.rfc-editor.org/rfc/rfc7946
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from analysis.trips import exposure_weights, streams

LAMBERT_93 = "EPSG:2154"
WGS84 = "EPSG:4326"
CELL_COLUMNS = [
    "cell_x", "cell_y", "x_min", "y_min", "latitude", "longitude", "count", "valid",
    "contributors", "exposure_s", "coverage", "mean", "median",
]
_DECIMALS = 7  # [°] about 1 cm: more than GPS precision, less noise than full floats


def grid_cells(
    points: pd.DataFrame,
    quantity: str = "pm2_5",
    *,
    cell_m: float = 100.0,
    crs: str = LAMBERT_93,
    contributor: str = "device",
    cap_s: float | None = None,
) -> pd.DataFrame:
    """Aggregate positioned records into fixed square cells, weighted by exposure time.

    Parameters
    ----------
    points : DataFrame
        Columns ``device``, ``time`` (naive = UTC), ``latitude``,
        ``longitude`` [° WGS84], ``quantity`` and ``contributor``.  Rows
        without a position are ignored.
    quantity : str, default ``"pm2_5"``
        Column to average [its unit].
    cell_m : float, default 100
        Side of a cell [m], in the projection's metres.
    crs : str, default ``"EPSG:2154"`` (Lambert-93)
        Metric projected CRS the cells are drawn in.
    contributor : str, default ``"device"``
        Column naming who contributed a record (a participant id, or the
        device); distinct values are counted per cell.
    cap_s : float, optional
        Longest time a record stands for [s]; see
        :func:`analysis.trips.exposure_weights`.

    Returns
    -------
    pandas.DataFrame
        One row per cell holding at least one record, sorted by
        ``cell_y`` then ``cell_x``:

        - ``cell_x``, ``cell_y`` : int, ``floor(x / cell_m)``, ``floor(y / cell_m)``
        - ``x_min``, ``y_min`` : float [m], lower-left corner in ``crs``
        - ``latitude``, ``longitude`` : float [°], the cell's centre in WGS84
        - ``count`` : int, records in the cell
        - ``valid`` : int, records with a finite ``quantity``
        - ``contributors`` : int, distinct ``contributor`` values
        - ``exposure_s`` : float [s], time the records stand for
        - ``coverage`` : float [1], share of ``exposure_s`` with a valid value
        - ``mean`` : float, time-weighted mean of ``quantity``
        - ``median`` : float, time-weighted median of ``quantity``

    Raises
    ------
    KeyError
        If a column is missing.
    ValueError
        If ``cell_m`` is not a positive finite number, ``crs`` is not a
        projected CRS in metres, or positions fall outside its area of use.

    Notes
    -----
    Each record weighs the time to the next record of the same device and
    sensor (:func:`analysis.trips.streams`), capped, so a kit that paused in a street does not count more than its
    time there, and a 1 Hz sensor does not outweigh a slower one.  The
    weighted median is the smallest value at which the cumulative weight
    reaches half the cell's weight.  Publish cells only after
    :func:`analysis.privacy.suppress_sparse_cells`.
    """
    if not math.isfinite(cell_m) or cell_m <= 0:
        raise ValueError(f"cell_m must be a positive number of metres, not {cell_m!r}")
    missing = {"device", "time", "latitude", "longitude", quantity, contributor} - set(points.columns)
    if missing:
        raise KeyError(f"points lack column(s) {sorted(missing)}")
    located = points[points["latitude"].notna() & points["longitude"].notna()]
    weight = exposure_weights(located["time"], streams(located), cap_s=cap_s)
    x, y = project(located["latitude"].to_numpy(), located["longitude"].to_numpy(), crs)
    value = pd.to_numeric(located[quantity], errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(value)
    frame = pd.DataFrame(
        {
            "cell_x": np.floor(x / cell_m).astype("int64"),
            "cell_y": np.floor(y / cell_m).astype("int64"),
            "who": located[contributor].to_numpy(),
            "w": weight,
            "wv": np.where(ok, weight, 0.0),
            "v": value,
            "ok": ok,
        }
    )
    grouped = frame.groupby(["cell_y", "cell_x"], sort=True)
    cells = grouped.agg(
        count=("w", "size"), valid=("ok", "sum"), contributors=("who", "nunique"),
        exposure_s=("w", "sum"), wv=("wv", "sum"),
    )
    weighted_sum = (frame["v"].fillna(0.0) * frame["wv"]).groupby([frame["cell_y"], frame["cell_x"]]).sum()
    cells["mean"] = (weighted_sum / cells["wv"]).where(cells["wv"] > 0)
    cells["median"] = _weighted_median(frame[ok & (frame["wv"] > 0)])
    cells["coverage"] = (cells["wv"] / cells["exposure_s"]).where(cells["exposure_s"] > 0, 0.0)
    cells = cells.reset_index()
    cells["x_min"] = cells["cell_x"] * cell_m
    cells["y_min"] = cells["cell_y"] * cell_m
    lat, lon = unproject((cells["x_min"] + cell_m / 2).to_numpy(), (cells["y_min"] + cell_m / 2).to_numpy(), crs)
    cells["latitude"], cells["longitude"] = lat, lon
    cells[["count", "valid", "contributors"]] = cells[["count", "valid", "contributors"]].astype("int64")
    return cells[CELL_COLUMNS]


def cells_geojson(cells: pd.DataFrame, *, cell_m: float = 100.0, crs: str = LAMBERT_93) -> dict[str, Any]:
    """Return cells as a GeoJSON FeatureCollection of WGS84 polygons.

    Parameters
    ----------
    cells : DataFrame
        Output of :func:`grid_cells` (possibly filtered): needs ``x_min``
        and ``y_min``; every other column becomes a property.
    cell_m : float, default 100
        Side of the cells [m], as given to :func:`grid_cells`.
    crs : str, default ``"EPSG:2154"``
        CRS the cells were drawn in.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``, ready for
        :func:`json.dumps`.  Each feature's geometry is a Polygon whose
        ring runs counter-clockwise from the lower-left corner, in
        [longitude, latitude] order with 7 decimals (RFC 7946); NaN
        properties become ``null``.
    """
    x0 = cells["x_min"].to_numpy(dtype="float64")
    y0 = cells["y_min"].to_numpy(dtype="float64")
    corners_x = np.stack([x0, x0 + cell_m, x0 + cell_m, x0, x0], axis=1)
    corners_y = np.stack([y0, y0, y0 + cell_m, y0 + cell_m, y0], axis=1)
    lat, lon = unproject(corners_x.ravel(), corners_y.ravel(), crs)
    ring = np.stack([np.round(lon, _DECIMALS), np.round(lat, _DECIMALS)], axis=1).reshape(len(cells), 5, 2)
    props = cells.drop(columns=["x_min", "y_min"]).astype(object)
    props = props.where(props.notna(), None)
    records = props.to_dict(orient="records")
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [coords]}, "properties": _plain(prop)}
        for coords, prop in zip(ring.tolist(), records, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def project(latitude: np.ndarray, longitude: np.ndarray, crs: str = LAMBERT_93) -> tuple[np.ndarray, np.ndarray]:
    """Project WGS84 positions to ``crs`` [m].

    Parameters
    ----------
    latitude, longitude : array-like [° WGS84]
    crs : str, default ``"EPSG:2154"``
        A projected CRS whose axes are in metres.

    Returns
    -------
    x, y : numpy.ndarray [m]
        Easting and northing.

    Raises
    ------
    ValueError
        If ``crs`` is not projected in metres, or a position is outside
        its area of use (the message names a suitable UTM zone).
    """
    lat = np.asarray(latitude, dtype="float64")
    lon = np.asarray(longitude, dtype="float64")
    bounds = _metric(crs).area_of_use
    if bounds is not None and len(lat):
        outside = (lon < bounds.west) | (lon > bounds.east) | (lat < bounds.south) | (lat > bounds.north)
        if outside.any():
            where = (float(lat[outside][0]), float(lon[outside][0]))
            raise ValueError(
                f"position {where} is outside the area of use of {crs} ({bounds.name}); "
                f"pass crs={utm_crs(*where)!r} (its UTM zone) or another projection covering the campaign"
            )
    x, y = _to(crs).transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def unproject(x: np.ndarray, y: np.ndarray, crs: str = LAMBERT_93) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS84 latitude and longitude [°] of projected coordinates [m] in ``crs``."""
    lon, lat = _from(crs).transform(np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"))
    return np.asarray(lat), np.asarray(lon)


def utm_crs(latitude: float, longitude: float) -> str:
    """Return the WGS84 UTM zone CRS (``"EPSG:326zz"`` / ``"EPSG:327zz"``) holding a position."""
    found = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(longitude, latitude, longitude, latitude),
    )
    if not found:
        raise ValueError(f"no UTM zone for latitude {latitude}, longitude {longitude}")
    return f"{found[0].auth_name}:{found[0].code}"


@lru_cache(maxsize=16)
def _metric(crs: str) -> CRS:
    parsed = CRS.from_user_input(crs)
    units = {axis.unit_name for axis in parsed.axis_info}
    if not parsed.is_projected or units != {"metre"}:
        raise ValueError(f"crs must be a projected CRS in metres (such as EPSG:2154 or a UTM zone), not {crs!r}")
    return parsed


@lru_cache(maxsize=16)
def _to(crs: str) -> Transformer:
    return Transformer.from_crs(WGS84, _metric(crs), always_xy=True)


@lru_cache(maxsize=16)
def _from(crs: str) -> Transformer:
    return Transformer.from_crs(_metric(crs), WGS84, always_xy=True)


def _weighted_median(frame: pd.DataFrame) -> pd.Series:
    """Per (cell_y, cell_x): smallest value whose cumulative weight reaches half the total."""
    ordered = frame.sort_values(["cell_y", "cell_x", "v"], kind="stable")
    keys = [ordered["cell_y"], ordered["cell_x"]]
    cumulative = ordered["wv"].groupby(keys).cumsum()
    half = ordered["wv"].groupby(keys).transform("sum") / 2
    reached = ordered[cumulative >= half]
    return reached.groupby(["cell_y", "cell_x"])["v"].first()


def _plain(properties: Mapping[Hashable, Any]) -> dict[str, Any]:
    """Numpy scalars to plain Python, for json.dumps."""
    return {str(key): value.item() if isinstance(value, np.generic) else value for key, value in properties.items()}
