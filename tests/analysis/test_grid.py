"""Spatial gridding in Lambert-93 metres, exposure-weighted, and its GeoJSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from analysis.grid import CELL_COLUMNS, cells_geojson, grid_cells, project, unproject, utm_crs

T0 = pd.Timestamp("2026-05-17 08:00:00")
GEOD = Geod(ellps="WGS84")


def at_xy(x: float, y: float) -> tuple[float, float]:
    """Latitude and longitude of a Lambert-93 point [m]."""
    lat, lon = unproject(np.array([x]), np.array([y]))
    return float(lat[0]), float(lon[0])


def points_in(cells: list[tuple[float, float]], device: str, values: list[float], seconds: list[float]) -> pd.DataFrame:
    """Records at the centres of Lambert-93 100 m cells given by their lower-left corner."""
    coords = [at_xy(x + 50, y + 50) for x, y in cells]
    return pd.DataFrame({"device": device, "time": [T0 + pd.Timedelta(seconds=s) for s in seconds],
                         "latitude": [c[0] for c in coords], "longitude": [c[1] for c in coords],
                         "pm2_5": values})


# Paris, near the Hôtel de Ville: Lambert-93 (652 300, 6 862 100)
A, B = (652_300.0, 6_862_100.0), (652_400.0, 6_862_100.0)


def test_records_fall_in_fixed_metric_cells_with_count_contributors_and_weighted_statistics():
    kit_a = points_in([A, A, A, B], "kit-a", [10.0, 20.0, 60.0, 5.0], [0, 1, 2, 12])  # weights 1, 1, 10, 1
    kit_b = points_in([A, A], "kit-b", [30.0, np.nan], [0, 4])  # weights 4, 4
    cells = grid_cells(pd.concat([kit_a, kit_b], ignore_index=True), cap_s=10)
    assert list(cells.columns) == CELL_COLUMNS
    a = cells.set_index(["cell_x", "cell_y"]).loc[(6523, 68621)]
    assert (a["x_min"], a["y_min"]) == A
    assert a["count"] == 5 and a["valid"] == 4 and a["contributors"] == 2
    assert a["exposure_s"] == pytest.approx(1 + 1 + 10 + 4 + 4)
    assert a["coverage"] == pytest.approx(16 / 20)
    assert a["mean"] == pytest.approx((10 * 1 + 20 * 1 + 60 * 10 + 30 * 4) / 16)
    # weighted median: sorted values 10 (1), 20 (1), 30 (4), 60 (10); half of 16 is reached at 60
    assert a["median"] == 60.0
    assert cells["latitude"].between(48.85, 48.86).all()
    b = cells.set_index(["cell_x", "cell_y"]).loc[(6524, 68621)]
    assert b["count"] == 1 and b["mean"] == 5.0


def test_cells_are_100_metres_on_the_ground():
    cells = grid_cells(points_in([A], "kit-a", [1.0], [0]))
    ring = cells_geojson(cells)["features"][0]["geometry"]["coordinates"][0]
    (lon0, lat0), (lon1, lat1), (lon2, lat2) = ring[0], ring[1], ring[2]
    _, _, south_side = GEOD.inv(lon0, lat0, lon1, lat1)
    _, _, east_side = GEOD.inv(lon1, lat1, lon2, lat2)
    # Lambert-93's scale factor near Paris is within 1/1000 of 1
    assert south_side == pytest.approx(100.0, rel=1e-3)
    assert east_side == pytest.approx(100.0, rel=1e-3)


def test_geojson_is_a_feature_collection_of_closed_counter_clockwise_wgs84_rings():
    cells = grid_cells(points_in([A, B], "kit-a", [1.0, np.nan], [0, 1]))
    doc = json.loads(json.dumps(cells_geojson(cells)))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    feature = doc["features"][1]
    ring = feature["geometry"]["coordinates"][0]
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
    lon, lat = np.array(ring).T
    assert 2.3 < lon.min() < 2.4 and 48.8 < lat.min() < 48.9  # longitude first (RFC 7946)
    signed_area = 0.5 * np.sum(lon[:-1] * lat[1:] - lon[1:] * lat[:-1])
    assert signed_area > 0  # counter-clockwise exterior ring
    assert feature["properties"]["mean"] is None  # NaN becomes null
    assert feature["properties"]["count"] == 1 and "x_min" not in feature["properties"]


def test_lambert_93_refuses_positions_outside_france_and_names_a_utm_zone():
    tokyo = pd.DataFrame({"device": ["k"], "time": [T0], "latitude": [35.68], "longitude": [139.76], "pm2_5": [5.0]})
    with pytest.raises(ValueError, match="EPSG:32654"):
        grid_cells(tokyo)
    cells = grid_cells(tokyo, crs=utm_crs(35.68, 139.76))
    assert cells["count"].tolist() == [1]


def test_a_geographic_crs_is_refused_because_its_units_are_degrees():
    with pytest.raises(ValueError, match="metres"):
        project(np.array([48.85]), np.array([2.35]), crs="EPSG:4326")


def test_projection_round_trips_to_the_centimetre():
    lat, lon = np.array([48.8566, 48.8049]), np.array([2.3522, 2.1204])
    back_lat, back_lon = unproject(*project(lat, lon))
    np.testing.assert_allclose(back_lat, lat, atol=1e-7)
    np.testing.assert_allclose(back_lon, lon, atol=1e-7)


def test_utm_zone_of_paris_is_31_north():
    assert utm_crs(48.85, 2.35) == "EPSG:32631"


def test_records_without_a_position_are_ignored_and_bad_cell_sizes_refused():
    points = points_in([A], "kit-a", [1.0], [0])
    points = pd.concat([points, points.assign(latitude=np.nan)], ignore_index=True)
    assert grid_cells(points)["count"].tolist() == [1]
    with pytest.raises(ValueError, match="cell_m"):
        grid_cells(points, cell_m=0)
    with pytest.raises(KeyError, match="participant"):
        grid_cells(points, contributor="participant")
