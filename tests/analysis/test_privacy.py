"""Privacy: home zones never leak a position; sparse cells are suppressed and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from analysis.privacy import Masked, mask_home_zones, suppress_sparse_cells

GEOD = Geod(ellps="WGS84")
HOME = (48.8049, 2.1204)


def around(lat: float, lon: float, distances_m: list[float], azimuth: float = 90.0, who: str = "p1") -> pd.DataFrame:
    """Points at given geodesic distances from a place, along one azimuth."""
    n = len(distances_m)
    lons, lats, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), np.full(n, azimuth), np.asarray(distances_m, float))
    return pd.DataFrame({"participant": who, "latitude": lats, "longitude": lons})


def test_points_within_the_radius_are_removed_and_counted():
    points = around(*HOME, [0, 50, 199, 205, 500])
    zones = pd.DataFrame({"latitude": [HOME[0]], "longitude": [HOME[1]]})
    masked = mask_home_zones(points, zones, radius_m=200, participant="participant")
    assert isinstance(masked, Masked)
    assert masked.removed == 3 and masked.removed_by_participant == {"p1": 3}
    assert masked.points.index.tolist() == [3, 4]  # 205 m: beyond the radius and its 0.6 % margin


def test_a_zone_declared_for_one_participant_masks_only_that_participants_points():
    mine = around(*HOME, [10, 20], who="p1")
    theirs = around(*HOME, [10, 20], who="p2")
    zones = pd.DataFrame({"latitude": [HOME[0]], "longitude": [HOME[1]], "participant": ["p1"], "radius_m": [100.0]})
    masked = mask_home_zones(pd.concat([mine, theirs], ignore_index=True), zones, participant="participant")
    assert masked.points["participant"].tolist() == ["p2", "p2"]
    assert masked.removed_by_participant == {"p1": 2}


def test_each_zone_may_give_its_own_radius_and_missing_ones_use_the_default():
    points = around(*HOME, [150, 350])
    zones = pd.DataFrame({"latitude": [HOME[0], HOME[0]], "longitude": [HOME[1], HOME[1]],
                          "radius_m": [np.nan, 400.0]})
    assert mask_home_zones(points, zones, radius_m=100, participant="participant").removed == 2
    assert mask_home_zones(points, zones.iloc[:1], radius_m=100, participant="participant").removed == 0


def test_points_without_a_position_reveal_no_place_and_are_kept():
    points = pd.DataFrame({"participant": ["p1"], "latitude": [np.nan], "longitude": [np.nan]})
    zones = pd.DataFrame({"latitude": [HOME[0]], "longitude": [HOME[1]]})
    assert len(mask_home_zones(points, zones, participant="participant").points) == 1


def test_a_zone_without_a_position_is_refused():
    zones = pd.DataFrame({"latitude": [np.nan], "longitude": [HOME[1]]})
    with pytest.raises(ValueError, match="latitude and a longitude"):
        mask_home_zones(around(*HOME, [0]), zones, participant="participant")


coordinates = st.tuples(st.floats(-80, 80), st.floats(-179, 179))


@settings(max_examples=80, deadline=None)
@given(
    zones=st.lists(st.tuples(coordinates, st.floats(1, 5000), st.sampled_from([None, "p1", "p2"])), min_size=1,
                   max_size=4),
    offsets=st.lists(st.tuples(st.integers(0, 3), st.floats(0, 360), st.floats(0, 6000),
                               st.sampled_from(["p1", "p2"])), min_size=1, max_size=40),
)
def test_masking_never_leaks_a_point_inside_a_zone(zones, offsets):
    """Checked with the ellipsoidal geodesic distance (Karney), not the sphere the mask uses."""
    table = pd.DataFrame({"latitude": [z[0][0] for z in zones], "longitude": [z[0][1] for z in zones],
                          "radius_m": [z[1] for z in zones], "participant": [z[2] for z in zones]})
    rows = []
    for k, azimuth, distance, who in offsets:  # points scattered around the zones, many near their edges
        zone = table.iloc[k % len(table)]
        lon, lat, _ = GEOD.fwd(zone["longitude"], zone["latitude"], azimuth, distance)
        rows.append((who, lat, lon))
    points = pd.DataFrame(rows, columns=["participant", "latitude", "longitude"])
    kept = mask_home_zones(points, table, participant="participant").points
    for zone in table.itertuples():
        applies = kept if zone.participant is None else kept[kept["participant"] == zone.participant]
        if applies.empty:
            continue
        _, _, d = GEOD.inv(np.full(len(applies), zone.longitude), np.full(len(applies), zone.latitude),
                           applies["longitude"].to_numpy(), applies["latitude"].to_numpy())
        assert (d > zone.radius_m).all()


def cells(contributors: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"cell_x": range(len(contributors)), "cell_y": 0, "contributors": contributors,
                         "count": [10 * (k + 1) for k in range(len(contributors))]})


def test_cells_with_too_few_participants_are_suppressed_and_counted():
    result = suppress_sparse_cells(cells([1, 2, 3, 7]), min_participants=3)
    assert result.cells["contributors"].tolist() == [3, 7]
    assert result.suppressed_cells == 2 and result.suppressed_records == 10 + 20


def test_a_threshold_below_one_is_refused():
    with pytest.raises(ValueError, match="min_participants"):
        suppress_sparse_cells(cells([1]), min_participants=0)
