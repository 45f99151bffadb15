"""The answers of the store-backed screen views: index means, WHO comparison, trips, campaign summary.

Each function reads the store through :mod:`dashboards.kiosk.store` (which
leaves out opted-out records), applies home-zone masking
(:class:`~dashboards.kiosk.privacy.Privacy`) before anything about positions
is computed, and returns a public model.

Sources
-------
- WHO global air quality guidelines 2021, Table 0.1 (24-hour AQG levels:
  PM2.5 15 µg/m³, PM10 45 µg/m³), https://www.who.int/publications/i/item/9789240034228,
  read from ``analysis/data/indices/who-2021.json``.
- Trips: :mod:`analysis.trips` (stay points after Li et al. 2008; mode guess by speed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypeVar

import duckdb
import numpy as np
import pandas as pd

from analysis.daily import DEFAULT_TZ
from analysis.indices import load_index
from analysis.trips import segment, summarise
from dashboards.kiosk import store
from dashboards.kiosk.models import (
    KitMean,
    KitTrack,
    MeansResponse,
    Route,
    SummaryResponse,
    TrackResponse,
    Trip,
    TripsResponse,
    WhoKit,
    WhoResponse,
)
from dashboards.kiosk.privacy import Privacy

TRIP_STEP_S = 10.0  # [s] position buckets for trips: the step analysis.trips measures speed on
TRIP_POINTS = 400  # points drawn per trip on a screen
MIN_TRIP_M = 100.0  # [m] shorter moves are GPS drift, not trips
CACHE_S = 60.0  # [s] campaign-wide figures are recomputed at most this often
T = TypeVar("T")
_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}


def cached(key: tuple[Any, ...], compute: Callable[[], T], ttl_s: float = CACHE_S) -> T:
    """Return ``compute()``, kept for ``ttl_s`` seconds under ``key`` (process-wide, small)."""
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        value: T = hit[1]
        return value
    value = compute()
    if len(_cache) > 64:
        _cache.clear()
    _cache[key] = (now + ttl_s, value)
    return value


def number_or_none(value: Any) -> float | None:
    """A finite float, or None for a missing or non-finite value."""
    return float(value) if value is not None and not pd.isna(value) and math.isfinite(float(value)) else None


def route(frame: pd.DataFrame, limit: int) -> Route:
    """A :class:`Route` of at most ``limit`` evenly picked points (first and last kept)."""
    if len(frame) > limit:
        frame = frame.iloc[np.unique(np.linspace(0, len(frame) - 1, limit).round().astype(int))]
    pm = frame["pm2_5"].astype("float64") if "pm2_5" in frame else pd.Series(np.nan, index=frame.index)
    return Route(
        t=(pd.to_datetime(frame["time"], utc=True).astype("int64") // 10**6).astype(int).tolist(),
        lat=frame["latitude"].round(6).tolist(),
        lon=frame["longitude"].round(6).tolist(),
        pm2_5=[None if not math.isfinite(v) else round(v, 1) for v in pm.tolist()],
    )


def track(con: duckdb.DuckDBPyConnection, campaign: str | None, privacy: Privacy, now: datetime,
          minutes: int) -> TrackResponse:
    """The last ``minutes`` of every kit's positions with PM2.5, home zones removed."""
    since = now - timedelta(minutes=minutes)
    points = store.positions(con, campaign, since, now + timedelta(minutes=1), step_s=5.0)
    kept = privacy.points(points)
    kits = [KitTrack(device=str(device), route=route(group, 2000)) for device, group in kept.groupby("device")]
    return TrackResponse(server_time=now, since=since, masked=len(points) - len(kept), kits=kits)


def averaging_period(averaging: str, now: datetime, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """The period an index's averaging rule classifies, ending now.

    ``hourly_mean``: the last hour; ``running_24h_mean``: the last 24 hours;
    ``daily_mean`` and ``daily_max_hourly_mean``: today since local midnight.
    """
    if averaging == "hourly_mean":
        return now - timedelta(hours=1), now
    if averaging == "running_24h_mean":
        return now - timedelta(hours=24), now
    return store.day_bounds(store.local_day(now, tz), tz)[0], now


def means(con: duckdb.DuckDBPyConnection, campaign: str | None, index: tuple[str, str], now: datetime,
          tz: str = DEFAULT_TZ) -> MeansResponse:
    """Each kit's PM means over the period the index classifies (see :func:`averaging_period`)."""
    averaging = load_index(*index).scale("pm2_5").averaging
    since, until = averaging_period(averaging, now, tz)
    frame = store.period_means(con, campaign, since, until + timedelta(seconds=1))
    kits = [
        KitMean(device=str(device),
                values={str(row["quantity"]): float(row["mean"]) for row in rows},
                hours={str(row["quantity"]): int(row["hours"]) for row in rows})
        for device, group in frame.groupby("device")
        for rows in [group.to_dict("records")]
    ]
    return MeansResponse(server_time=now, averaging=averaging, since=since, until=until, kits=kits)


def who_guidelines() -> dict[str, float]:
    """WHO 2021 24-hour guideline levels [µg/m³], from the index data file."""
    table = load_index("who", "2021")
    return {name: table.scale(name, "daily_mean").uppers[0] for name in store.PM}


def who(con: duckdb.DuckDBPyConnection, campaign: str | None, day: date, now: datetime,
        tz: str = DEFAULT_TZ) -> WhoResponse:
    """The day's mean per kit and over all kits, compared with the WHO 24-hour guideline levels.

    The verdict is ``above`` when the mean of the kits' day means exceeds
    the guideline level, ``below`` otherwise, and null without data.  A
    day still under way, or a kit that measured a few hours, gives an
    indicative comparison only: the page says so.
    """
    start, end = store.day_bounds(day, tz)
    frame = store.period_means(con, campaign, start, min(end, now + timedelta(seconds=1)))
    guideline = who_guidelines()
    wide = frame.pivot_table(index="device", columns="quantity", values="mean", aggfunc="first")
    hours = frame.groupby("device")["hours"].max() if len(frame) else pd.Series(dtype="int64")
    kits = [
        WhoKit(device=str(device), pm2_5=number_or_none(wide.at[device, "pm2_5"]) if "pm2_5" in wide else None,
               pm10=number_or_none(wide.at[device, "pm10"]) if "pm10" in wide else None, hours=int(hours.get(device, 0)))
        for device in wide.index
    ]
    overall = {name: number_or_none(wide[name].mean()) if name in wide else None for name in store.PM}
    verdict: dict[str, Literal["above", "below"] | None] = {}
    for name in store.PM:
        mean = overall[name]
        verdict[name] = None if mean is None else ("above" if mean > guideline[name] else "below")
    return WhoResponse(server_time=now, day=day, tz=tz, guideline=guideline, overall=overall, verdict=verdict,
                       hours=int(hours.max()) if len(hours) else 0, kits=kits)


def segments(con: duckdb.DuckDBPyConnection, campaign: str | None, since: datetime, until: datetime,
             privacy: Privacy, *, min_stop_s: float = 300.0) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Positions (home zones removed), their segments, and how many positions were withheld.

    Returns
    -------
    points, summary, masked
        ``points`` from :func:`analysis.trips.segment` (columns ``segment``
        and ``kind`` added), ``summary`` from :func:`analysis.trips.summarise`
        with the time-weighted mean PM2.5 of each segment.
    """
    raw = store.positions(con, campaign, since, until, step_s=TRIP_STEP_S)
    points = privacy.points(raw)
    if points.empty:
        return points.assign(segment=pd.Series(dtype="int64"), kind=pd.Series(dtype="str")), pd.DataFrame(), len(raw)
    segmented = segment(points, radius_m=50.0, min_duration_s=min_stop_s, max_gap_s=300.0)
    summary = summarise(segmented, ("pm2_5",), step_s=TRIP_STEP_S)
    return segmented, summary, len(raw) - len(points)


def moves(summary: pd.DataFrame, min_m: float = MIN_TRIP_M) -> pd.DataFrame:
    """The moves of a segment summary that are trips: at least ``min_m`` metres with a mode guess."""
    if summary.empty:
        return summary
    keep = (summary["kind"] == "move") & (summary["distance_m"] >= min_m) & summary["mode"].notna()
    return summary[keep]


def trips(con: duckdb.DuckDBPyConnection, campaign: str | None, day: date, privacy: Privacy, now: datetime,
          tz: str = DEFAULT_TZ, limit: int = 12) -> TripsResponse:
    """The day's trips, newest first: mode, speed, distance and PM2.5 along each route."""
    start, end = store.day_bounds(day, tz)
    points, summary, masked = segments(con, campaign, start, min(end, now + timedelta(seconds=1)), privacy)
    found = moves(summary)
    if len(found):  # no position at all today: a summary without columns
        found = found.sort_values("start", ascending=False).head(limit)
    items = [
        Trip(device=str(row["device"]), start=row["start"], end=row["end"], duration_s=float(row["duration_s"]),
             distance_m=float(row["distance_m"]), speed_median_ms=number_or_none(row["speed_median_ms"]), mode=row["mode"],
             pm2_5=number_or_none(row["pm2_5"]), route=route(points[points["segment"] == row["segment"]], TRIP_POINTS))
        for row in found.to_dict("records")
    ]
    return TripsResponse(server_time=now, day=day, masked=masked, trips=items)


def summary(con: duckdb.DuckDBPyConnection, campaign: str | None, privacy: Privacy, now: datetime,
            participants: int | None, walks: Callable[[pd.DataFrame], int]) -> SummaryResponse:
    """The campaign in numbers; distance and walks are recomputed at most every minute.

    ``walks`` counts the visitors' walks in a segment summary
    (:func:`dashboards.kiosk.walks.count_walks`); participants are the
    configured number, else one per walk.
    """
    counts = store.campaign_counts(con, campaign)
    first, last = counts.first, counts.last

    def movement() -> tuple[float, int]:
        if first is None or last is None:
            return 0.0, 0
        _, segs, _ = segments(con, campaign, first, last + timedelta(seconds=1), privacy)
        distance = float(moves(segs)["distance_m"].sum()) if len(segs) else 0.0
        return distance, walks(segs)

    distance_m, walk_count = cached(("summary", campaign, last, privacy.key()), movement)
    days = 0 if first is None or last is None else (store.local_day(last) - store.local_day(first)).days + 1
    return SummaryResponse(
        server_time=now, campaign=campaign, kits=counts.kits, records=counts.records,
        hours=round(counts.minutes / 60.0, 1), distance_km=round(distance_m / 1000.0, 2), walks=walk_count,
        participants=participants if participants is not None else walk_count, days=days, first=first, last=last,
    )
