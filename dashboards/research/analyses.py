"""Analysis results as API models: trips, privacy-safe grids, air-quality indices.

Thin adapters over :mod:`analysis.trips`, :mod:`analysis.grid`,
:mod:`analysis.privacy` and :mod:`analysis.indices`: the numbers are
computed there; here they are only shaped into bounded response models
(NaN becomes null, times become aware UTC).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboards.research import models as m
from qsec import quantities as qty


def _plain(value: Any) -> Any:
    """NaN, NaT and pandas NA as None; numpy scalars as Python ones."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def trip_rows(frame: pd.DataFrame, quantity: str) -> list[m.Trip]:
    """Stops and moves (:func:`analysis.trips.segment`, :func:`analysis.trips.summarise`) as models."""
    from analysis.trips import segment, summarise

    points = frame[frame["latitude"].notna() & frame["longitude"].notna()] if len(frame) else frame
    if not len(points):
        return []
    summary = summarise(segment(points), quantities=(quantity,))
    out = []
    for r in summary.to_dict("records"):
        r = {k: _plain(v) for k, v in r.items()}
        out.append(m.Trip(device=r["device"], segment=int(r["segment"]), kind=r["kind"], start=_utc(r["start"]),
                          end=_utc(r["end"]), duration_s=r["duration_s"] or 0.0, points=int(r["points"]),
                          distance_m=r.get("distance_m"), speed_median_ms=r.get("speed_median_ms"),
                          speed_p85_ms=r.get("speed_p85_ms"), speed_max_ms=r.get("speed_max_ms"),
                          mode=r.get("mode"), exposure=r.get(quantity)))
    return out


def grid_model(frame: pd.DataFrame, quantity: str, cell_m: float, zones: pd.DataFrame, min_participants: int,
               private: bool) -> m.Grid:
    """Grid positioned records; unless ``private``, mask home zones and hold back sparse cells first.

    Contributors are participants (a device nobody was assigned to counts
    as its own contributor): one person with two kits is one person.
    """
    from analysis.grid import cells_geojson, grid_cells
    from analysis.privacy import mask_home_zones, suppress_sparse_cells

    unit = qty.get(quantity).unit
    empty = m.Grid(quantity=quantity, unit=unit, cell_m=cell_m, min_participants=min_participants,
                   masked_positions=0, suppressed_cells=0, suppressed_records=0, features=[])
    points = frame[frame["latitude"].notna() & frame["longitude"].notna()].copy() if len(frame) else frame
    if not len(points):
        return empty
    points["contributor"] = points["participant"].astype("object").fillna(points["device"])
    masked = 0
    if not private and len(zones):
        result = mask_home_zones(points, zones, participant="contributor")
        points, masked = result.points, result.removed
    if not len(points):
        return empty.model_copy(update={"masked_positions": masked})
    cells = grid_cells(points, quantity, cell_m=cell_m, contributor="contributor")
    held = (0, 0)
    if not private:
        kept = suppress_sparse_cells(cells, min_participants=min_participants)
        cells, held = kept.cells, (kept.suppressed_cells, kept.suppressed_records)
    collection = cells_geojson(cells, cell_m=cell_m)
    fields = set(m.CellProperties.model_fields)
    features = [m.CellFeature(geometry=m.PolygonGeometry(coordinates=f["geometry"]["coordinates"]),
                              properties=m.CellProperties(**{k: _plain(v) for k, v in f["properties"].items()
                                                             if k in fields}))
                for f in collection["features"]]
    return m.Grid(quantity=quantity, unit=unit, cell_m=cell_m, min_participants=min_participants,
                  masked_positions=masked, suppressed_cells=held[0], suppressed_records=held[1], features=features)


def index_rows(frame: pd.DataFrame, *, index: str, pollutant: str, version: str | None,
               averaging: str | None) -> m.IndexPage:
    """An index per device (:func:`analysis.indices.compute_index`) as a page of periods."""
    from analysis.indices import compute_index, load_index

    table = load_index(index, version)
    scale = table.scale(pollutant, averaging)
    periods: list[m.IndexPeriod] = []
    if len(frame) and pollutant in frame:
        values = frame[frame[pollutant].notna()]
        for device, group in values.groupby("device", sort=True):
            result = compute_index(group[pollutant].reset_index(drop=True), group["time"].reset_index(drop=True),
                                   index=index, pollutant=pollutant, version=table.version,
                                   averaging=scale.averaging)
            for r in result.to_dict("records"):
                r = {k: _plain(v) for k, v in r.items()}
                periods.append(m.IndexPeriod(device=str(device), period_start=_utc(r["period_start"]),
                                             period_end=_utc(r["period_end"]), value=r["value"],
                                             valid=bool(r["valid"]), category=r["category"],
                                             label_fr=r["label_fr"], label_en=r["label_en"], colour=r["colour"]))
    return m.IndexPage(index=table.id, version=table.version, pollutant=pollutant, averaging=scale.averaging,
                       indicative=True, periods=periods)
