"""Visitors' walks: a kit lent at the desk, found again in the store, compared with the day's others.

A **walk** is a move of :func:`analysis.trips.segment` (positions with home
zones and opted-out records already removed) at least :data:`MIN_WALK_M` long and
:data:`MIN_WALK_S` long; a kit resting :data:`REST_S` at the desk ends
one.  Each walk gets a four-character **code** derived from its kit and
start time (so it stays the same however often it is computed), made of
letters and digits that cannot be mistaken for one another when typed
(no 0/O, 1/I, 2/Z, 5/S, 6/G, 8/B).

The comparison ranks the walk's time-weighted mean PM2.5 among the day's
walks (1 = the cleanest).

Sources
-------
- :mod:`analysis.trips` for segmentation, distance, speed, mode and exposure.
- Crockford's Base32 (http://www.crockford.com/base32.html) for the idea of
  an alphabet without look-alike characters.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from analysis.daily import DEFAULT_TZ
from dashboards.kiosk import store, views
from dashboards.kiosk.models import Walk, WalksResponse
from dashboards.kiosk.privacy import Privacy

ALPHABET = "ACDEFHJKLMNPQRTUVWXY3479"
REST_S = 480.0  # [s] a kit still this long ends a walk (back at the desk; a 5-min stop in a library does not)
MIN_WALK_S = 120.0  # [s]
MIN_WALK_M = 150.0  # [m]
WALK_POINTS = 1500  # points of a walk sent to a screen
WALK_COLUMNS = ["code", "device", "segment", "start", "end", "duration_s", "distance_m", "mode", "pm2_5"]


def walk_code(device: str, start: pd.Timestamp) -> str:
    """Four characters of :data:`ALPHABET` from a hash of the kit and the walk's start [UTC]."""
    digest = hashlib.sha256(f"{device}|{pd.Timestamp(start).isoformat()}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(4):
        number, rest = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[rest])
    return "".join(chars)


def find_walks(summary: pd.DataFrame) -> pd.DataFrame:
    """The walks in a segment summary (:func:`analysis.trips.summarise`), newest first.

    Returns
    -------
    pandas.DataFrame
        :data:`WALK_COLUMNS`; ``pm2_5`` is the time-weighted mean [µg/m³].
    """
    if summary.empty:
        return pd.DataFrame(columns=WALK_COLUMNS)
    found = views.moves(summary, MIN_WALK_M)
    found = found[found["duration_s"] >= MIN_WALK_S].copy()
    if "pm2_5" not in found:
        found["pm2_5"] = float("nan")
    found["code"] = [walk_code(str(d), s) for d, s in zip(found["device"], found["start"], strict=True)]
    return found.sort_values("start", ascending=False)[WALK_COLUMNS].reset_index(drop=True)


def count_walks(summary: pd.DataFrame) -> int:
    """Number of walks in a segment summary (:func:`analysis.trips.summarise`)."""
    return len(find_walks(summary))


def day_walks(con: duckdb.DuckDBPyConnection, campaign: str | None, day: date, privacy: Privacy, now: datetime,
              tz: str = DEFAULT_TZ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segmented positions of the day and its walks, kept 20 s so a visitor's clicks stay fast."""
    start, end = store.day_bounds(day, tz)
    until = min(end, now + timedelta(seconds=1))

    def compute() -> tuple[pd.DataFrame, pd.DataFrame]:
        points, summary, _ = views.segments(con, campaign, start, until, privacy, min_stop_s=REST_S)
        return points, find_walks(summary)

    return views.cached(("walks", campaign, day, until.replace(second=0, microsecond=0), privacy.key()), compute, 20.0)


def as_walk(row: pd.Series) -> Walk:
    """The public model of one walk row."""
    return Walk(code=row["code"], device=str(row["device"]), start=row["start"], end=row["end"],
                duration_s=float(row["duration_s"]), distance_m=float(row["distance_m"]), mode=row["mode"],
                pm2_5=views.number_or_none(row["pm2_5"]))


def day_mean(walks: pd.DataFrame) -> float | None:
    """Mean of the walks' mean PM2.5 [µg/m³], None without any."""
    return views.number_or_none(walks["pm2_5"].mean()) if len(walks) else None


def walks_response(walks: pd.DataFrame, day: date, now: datetime) -> WalksResponse:
    """The list a visitor picks from."""
    return WalksResponse(server_time=now, day=day, day_mean_pm2_5=day_mean(walks),
                         walks=[as_walk(row) for _, row in walks.head(200).iterrows()])


def find(walks: pd.DataFrame, code: str) -> pd.Series:
    """The walk with ``code`` (any case).

    Raises
    ------
    KeyError
        If no walk of the day has that code (the message says where codes are).
    """
    hit = walks[walks["code"] == code.strip().upper()]
    if hit.empty:
        raise KeyError(f"no walk with code {code!r} today; codes are listed on the screen's walk view")
    return hit.iloc[0]


def rank(walks: pd.DataFrame, code: str) -> tuple[int, int]:
    """``(rank, of)``: 1 is the walk with the lowest mean PM2.5 among walks with a mean."""
    rated = walks.dropna(subset=["pm2_5"]).sort_values("pm2_5", kind="stable").reset_index(drop=True)
    where = rated.index[rated["code"] == code]
    return (int(where[0]) + 1 if len(where) else 0), len(rated)


def walk_points(points: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The positions of one walk."""
    return points[points["segment"] == row["segment"]]
