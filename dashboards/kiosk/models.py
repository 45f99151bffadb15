"""Public models of the screen API: what leaves the server, every field bounded.

Tracks and recordings are sent as parallel arrays (times, latitudes, …)
rather than one object per point: a day's track is a third the size and
the page draws straight from the arrays.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dashboards.models import Count, Name, Number, QuantityName

MAX_POINTS = 20_000  # per track or recording series
MAX_ITEMS = 500
Millis = Annotated[int, Field(ge=0, le=2**53)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Maybe = Number | None
Code = Annotated[str, Field(pattern=r"^[A-Z0-9]{4}$")]
Mode = Literal["walk", "bike", "motorised"] | None
Verdict = Literal["above", "below"] | None


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(_Public):
    """An answer of the screen API, stamped with the server's time (freshness is shown against it)."""

    server_time: AwareDatetime


class _DayAnswer(_Answer):
    """An answer about one local calendar day."""

    day: date


class Route(_Public):
    """A route as parallel arrays, oldest first; ``pm2_5`` [µg/m³] is null where unknown."""

    t: list[Millis] = Field(max_length=MAX_POINTS, description="times [ms since the Unix epoch, UTC]")
    lat: list[Lat] = Field(max_length=MAX_POINTS)
    lon: list[Lon] = Field(max_length=MAX_POINTS)
    pm2_5: list[Maybe] = Field(max_length=MAX_POINTS)


class KitTrack(_Public):
    """The recent track of one kit."""

    device: Name
    route: Route


class TrackResponse(_Answer):
    """Answer of ``GET /api/screen/track``."""

    since: AwareDatetime
    masked: Count = Field(description="positions withheld because they are in a home zone")
    kits: list[KitTrack] = Field(max_length=MAX_ITEMS)


class KitMean(_Public):
    """Means of one kit over the index's averaging period."""

    device: Name
    values: dict[QuantityName, Number] = Field(max_length=16)
    hours: dict[QuantityName, Count] = Field(max_length=16)


class MeansResponse(_Answer):
    """Answer of ``GET /api/screen/means``: the period the index classifies, per kit."""

    averaging: Annotated[str, Field(max_length=40)]
    since: AwareDatetime
    until: AwareDatetime
    kits: list[KitMean] = Field(max_length=MAX_ITEMS)


class WhoKit(_Public):
    """One kit's mean of the day, compared with the WHO 24-hour guideline levels."""

    device: Name
    pm2_5: Maybe
    pm10: Maybe
    hours: Count


class WhoResponse(_DayAnswer):
    """Answer of ``GET /api/screen/who``."""

    tz: Annotated[str, Field(max_length=64)]
    guideline: dict[QuantityName, Number] = Field(description="WHO 2021 24-hour guideline levels [µg/m³]")
    overall: dict[QuantityName, Maybe] = Field(description="mean of the kits' day means [µg/m³]")
    verdict: dict[QuantityName, Verdict]
    hours: Count = Field(description="hours of the day with data (longest of the kits)")
    kits: list[WhoKit] = Field(max_length=MAX_ITEMS)


class Move(_Public):
    """A move of one kit: when, how far, the mode guessed, the time-weighted mean PM2.5 [µg/m³] breathed."""

    device: Name
    start: AwareDatetime
    end: AwareDatetime
    duration_s: Annotated[float, Field(ge=0, le=1e7)]
    distance_m: Annotated[float, Field(ge=0, le=1e8)]
    mode: Mode
    pm2_5: Maybe


class Trip(Move):
    """One trip of the day, with its median speed [m/s] and its route."""

    speed_median_ms: Maybe
    route: Route


class TripsResponse(_DayAnswer):
    """Answer of ``GET /api/screen/trips``: the day's moves, newest first."""

    masked: Count
    trips: list[Trip] = Field(max_length=MAX_ITEMS)


class SummaryResponse(_Answer):
    """Answer of ``GET /api/screen/summary``: the campaign in a few numbers."""

    campaign: Name | None
    kits: Count
    records: Count
    hours: Annotated[float, Field(ge=0, le=1e9)] = Field(description="hours with data, summed over kits")
    distance_km: Annotated[float, Field(ge=0, le=1e9)] = Field(description="distance of all moves")
    walks: Count
    participants: Count
    days: Count
    first: AwareDatetime | None
    last: AwareDatetime | None


class Walk(Move):
    """A visitor's walk, found in the day's track of a lent kit, with its short code."""

    code: Code


class WalksResponse(_DayAnswer):
    """Answer of ``GET /api/screen/walks``: the day's walks, newest first."""

    day_mean_pm2_5: Maybe = Field(description="mean of the walks' means [µg/m³]")
    walks: list[Walk] = Field(max_length=MAX_ITEMS)


class WalkDetail(_Public):
    """Answer of ``GET /api/screen/walks/{code}``: one walk, its route and its place among the day's."""

    walk: Walk
    route: Route
    rank: Count = Field(description="1 = the cleanest walk of the day (lowest mean PM2.5)")
    of: Count
    day_mean_pm2_5: Maybe
    summary_url: Annotated[str, Field(max_length=300)] = Field(description="the one-page summary, for the QR code")


class ReplayKit(_Public):
    """One kit of a recording: values per time step, null where none."""

    device: Name
    campaign: Name
    values: dict[QuantityName, list[Maybe]] = Field(max_length=16)


class ReplayResponse(_Public):
    """Answer of ``GET /api/screen/replay``: a recorded stretch to play when live data is thin."""

    source: Literal["store", "bundled"]
    day: date
    start: AwareDatetime
    step_s: Annotated[float, Field(gt=0, le=600)]
    steps: Count
    kits: list[ReplayKit] = Field(max_length=64)
