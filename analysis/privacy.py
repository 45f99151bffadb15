"""Privacy before publication: home-zone masking and a minimum of participants per cell.

Two safeguards for anything that leaves the research team (maps, open
data, exhibition screens):

- **Home zones**: participants declare places (home, work, a relative's
  house); every position within a radius of such a place is removed
  before analysis or publication, for that participant or for everyone.
- **Minimum distinct participants per cell**: a grid cell visited by fewer
  participants than a threshold is suppressed, so no published cell
  describes one person's movements.  Suppressed cells are counted, never
  silently dropped.

Sources
-------
- CNIL, "Guide pratique : anonymisation des données" (k-anonymity and
  aggregation thresholds),
  https://www.cnil.fr/fr/technologies/lanonymisation-de-donnees-personnelles
- Article 29 Working Party, Opinion 05/2014 on anonymisation techniques
  (WP216): generalisation and k-anonymity, risk of singling out.
- Haversine error bound: WGS84's radii of curvature run from 6 335 439 m
  (meridian, equator) to 6 399 594 m (poles), i.e. -0.56 % to +0.45 %
  around the IUGG mean radius of :func:`analysis.trips.haversine_m`; hence
  the 0.6 % safety margin below (NIMA TR8350.2, WGS 84, 3rd ed., 2000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.trips import haversine_m

DEFAULT_RADIUS_M = 200.0  # [m] home-zone radius when a zone does not give its own
MIN_PARTICIPANTS = 3  # distinct participants a published cell needs (k in k-anonymity)
SPHERE_MARGIN = 1.006  # [1] zones grow by 0.6 % so the spherical distance never under-reaches


@dataclass(frozen=True)
class Masked:
    """Positions left after home-zone masking, and how many were removed.

    Attributes
    ----------
    points : DataFrame
        The rows of the input outside every applicable zone (index kept).
    removed : int
        Rows removed.
    removed_by_participant : dict of str to int
        Rows removed per participant, for the campaign's report.
    """

    points: pd.DataFrame
    removed: int
    removed_by_participant: dict[str, int]


@dataclass(frozen=True)
class Suppressed:
    """Cells fit for publication, and what was held back.

    Attributes
    ----------
    cells : DataFrame
        Cells with at least the required number of distinct participants.
    suppressed_cells : int
        Cells held back.
    suppressed_records : int
        Records those cells held (their ``count`` column summed).
    """

    cells: pd.DataFrame
    suppressed_cells: int
    suppressed_records: int


def mask_home_zones(
    points: pd.DataFrame,
    zones: pd.DataFrame,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    participant: str = "device",
) -> Masked:
    """Remove every position within a home zone.

    Parameters
    ----------
    points : DataFrame
        Columns ``latitude``, ``longitude`` [° WGS84] and ``participant``.
        Rows without a position are kept (they reveal no place).
    zones : DataFrame
        One row per declared place: ``latitude``, ``longitude`` [° WGS84];
        optional ``radius_m`` [m] (NaN or absent: ``radius_m`` below) and
        optional ``participant`` (NaN or absent: the zone applies to
        everyone).
    radius_m : float, default 200
        Radius of a zone that does not give its own [m].
    participant : str, default ``"device"``
        Column of ``points`` naming the participant a zone belongs to.

    Returns
    -------
    Masked
        Kept rows and counts of removed rows.

    Raises
    ------
    KeyError
        If a column is missing.
    ValueError
        If a radius is negative or not finite, or a zone has no position.

    Notes
    -----
    A position is removed when its great-circle distance to a zone's
    centre is at most the radius times 1.006: on the WGS84 ellipsoid the
    local radius of curvature is 0.56 % below to 0.45 % above the sphere's,
    so the spherical distance may be up to 0.45 % short of the true one,
    and the margin makes sure no position truly inside a zone is kept.  The work
    is one vectorised distance computation per zone, O(points × zones).
    """
    for name in ("latitude", "longitude", participant):
        if name not in points.columns:
            raise KeyError(f"points lack column {name!r}")
    for name in ("latitude", "longitude"):
        if name not in zones.columns:
            raise KeyError(f"zones lack column {name!r}")
    if zones[["latitude", "longitude"]].isna().any(axis=None):
        raise ValueError("every zone needs a latitude and a longitude; remove or complete the incomplete ones")
    radii = zones["radius_m"].fillna(radius_m) if "radius_m" in zones else pd.Series(radius_m, index=zones.index)
    radii = radii.astype("float64")
    if not np.all(np.isfinite(radii) & (radii >= 0)):
        raise ValueError(f"zone radii must be finite numbers of metres >= 0, got {radii.tolist()}")
    owners = zones["participant"] if "participant" in zones else pd.Series(None, index=zones.index, dtype=object)

    lat = points["latitude"].to_numpy(dtype="float64")
    lon = points["longitude"].to_numpy(dtype="float64")
    who = points[participant].astype("str").to_numpy()
    inside = np.zeros(len(points), dtype=bool)
    for zlat, zlon, zr, owner in zip(zones["latitude"], zones["longitude"], radii, owners, strict=True):
        applies = np.ones(len(points), dtype=bool) if pd.isna(owner) else who == str(owner)
        inside |= applies & (haversine_m(lat, lon, zlat, zlon) <= zr * SPHERE_MARGIN)
    removed = pd.Series(who[inside]).value_counts()
    return Masked(
        points=points[~inside],
        removed=int(inside.sum()),
        removed_by_participant={str(k): int(v) for k, v in removed.items()},
    )


def suppress_sparse_cells(
    cells: pd.DataFrame, *, min_participants: int = MIN_PARTICIPANTS, contributors: str = "contributors"
) -> Suppressed:
    """Hold back grid cells with too few distinct participants.

    Parameters
    ----------
    cells : DataFrame
        Output of :func:`analysis.grid.grid_cells`, gridded with
        ``contributor`` set to the participant column.
    min_participants : int, default 3
        Distinct participants a cell needs to be published.
    contributors : str, default ``"contributors"``
        Column holding the distinct participants of each cell.

    Returns
    -------
    Suppressed
        Publishable cells and the counts of suppressed cells and records.

    Raises
    ------
    ValueError
        If ``min_participants`` is below 1.

    Notes
    -----
    Grid with participants, not devices, as contributors: one person
    carrying two kits is still one person.  Suppressing a cell does not
    hide that something was measured there; publish the suppressed count
    with the map so readers know cells were held back.
    """
    if min_participants < 1:
        raise ValueError(f"min_participants must be at least 1, not {min_participants!r}")
    if contributors not in cells.columns:
        raise KeyError(f"cells lack column {contributors!r}; grid them with analysis.grid.grid_cells")
    keep = cells[contributors] >= min_participants
    held = cells.loc[~keep, "count"].sum() if "count" in cells else 0
    return Suppressed(cells=cells[keep], suppressed_cells=int((~keep).sum()), suppressed_records=int(held))
