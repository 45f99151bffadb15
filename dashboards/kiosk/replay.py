"""A recorded stretch of a campaign, replayed by a screen when live data is thin.

When no fresh reading has arrived for a while (``replay_after`` seconds),
the page asks for a recording and plays it in real time under a visible
*Rediffusion / Replay* label, until a live reading comes back.  The
recording is the busiest ``minutes`` of the last day the store holds for
the campaign, bucketed to ``step_s``; a store with nothing gives the
recording bundled with qsec (simulated kits walking in Versailles,
``static/replay/demo-versailles.json``).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from analysis.daily import DEFAULT_TZ
from dashboards.kiosk import store
from dashboards.kiosk.models import ReplayKit, ReplayResponse

BUNDLED = Path(__file__).resolve().parents[1] / "static" / "replay" / "demo-versailles.json"
REPLAY_MINUTES = 20  # [min] length of a recording
STEP_S = 2.0  # [s] one value per kit and quantity per step


def bundled() -> ReplayResponse:
    """The recording shipped with qsec."""
    return ReplayResponse.model_validate_json(BUNDLED.read_text(encoding="utf-8"))


def busiest_start(con: duckdb.DuckDBPyConnection, campaign: str | None, since: datetime, until: datetime,
                  minutes: int) -> datetime:
    """Start [aware UTC, whole minute] of the ``minutes`` window with the most kit-minutes of data."""
    where, params = store.public_where(con, campaign, since, until)
    frame = con.execute(
        f"""SELECT date_trunc('minute', time) AS minute, count(DISTINCT device) AS kits FROM readings r
            WHERE {where} GROUP BY ALL ORDER BY minute""",
        params,
    ).df()
    series = frame.set_index(pd.to_datetime(frame["minute"]).dt.tz_localize("UTC"))["kits"].astype("float64")
    full = series.resample("1min").sum()
    score = full[::-1].rolling(minutes, min_periods=1).sum()[::-1]  # window starting at each minute
    best = pd.Timestamp(str(score.idxmax()))
    start: datetime = best.to_pydatetime()
    return start


def to_response(frame: pd.DataFrame, start: datetime, step_s: float, day: date,
                source: Literal["store", "bundled"], quantities: tuple[str, ...]) -> ReplayResponse:
    """Parallel arrays per kit from bucketed rows (``campaign``, ``device``, ``time``, quantities)."""
    offsets = ((pd.to_datetime(frame["time"], utc=True) - pd.Timestamp(start)).dt.total_seconds() // step_s)
    steps = int(offsets.max()) + 1 if len(frame) else 0
    kits = []
    for (campaign, device), group in frame.assign(step=offsets.astype("int64")).groupby(["campaign", "device"]):
        values: dict[str, list[float | None]] = {}
        for name in quantities:
            if name not in group or group[name].isna().all():
                continue
            column = pd.Series(math.nan, index=range(steps))
            column[group["step"].to_numpy()] = group[name].to_numpy(dtype="float64")
            decimals = 6 if name in ("latitude", "longitude") else 1
            values[name] = [None if math.isnan(v) else round(v, decimals) for v in column.tolist()]
        kits.append(ReplayKit(device=str(device), campaign=str(campaign), values=values))
    return ReplayResponse(source=source, day=day, start=start, step_s=step_s, steps=steps, kits=kits)


def from_store(con: duckdb.DuckDBPyConnection, campaign: str | None, now: datetime, quantities: tuple[str, ...],
               *, tz: str = DEFAULT_TZ, minutes: int = REPLAY_MINUTES, step_s: float = STEP_S) -> ReplayResponse | None:
    """The busiest ``minutes`` of the last day with data, or None when the store has none."""
    day = store.last_day(con, campaign, now, tz)
    if day is None:
        return None
    since, until = store.day_bounds(day, tz)
    start = busiest_start(con, campaign, since, min(until, now), minutes)
    shown = (*quantities, "latitude", "longitude")
    frame = store.recording(con, campaign, start, start + timedelta(minutes=minutes), shown, step_s)
    return to_response(frame, start, step_s, day, "store", shown)


def replay(con: duckdb.DuckDBPyConnection, campaign: str | None, now: datetime, quantities: tuple[str, ...],
           tz: str = DEFAULT_TZ) -> ReplayResponse:
    """A recording from the store, else the bundled one."""
    recorded = from_store(con, campaign, now, quantities, tz=tz)
    if recorded is not None and recorded.kits:
        return recorded
    return bundled()


def write_bundled(frame: pd.DataFrame, path: Path = BUNDLED) -> ReplayResponse:
    """Write a recording made from records (``campaign``, ``device``, ``time``, quantities) to ``path``."""
    start = pd.to_datetime(frame["time"], utc=True).min().floor("min").to_pydatetime()
    names = tuple(name for name in frame.columns if name not in ("campaign", "device", "time"))
    bucketed = frame.assign(time=pd.to_datetime(frame["time"], utc=True).dt.floor(f"{int(STEP_S)}s"))
    means = bucketed.groupby(["campaign", "device", "time"], as_index=False)[list(names)].mean()
    response = to_response(means, start, STEP_S, start.date(), "bundled", names)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(response.model_dump(mode="json"), separators=(",", ":")), encoding="utf-8")
    return response
