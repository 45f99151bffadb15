"""Researcher API models, split by direction: what comes in, what is stored, what goes out.

*In* models (``…In``) validate request bodies; *public* models are what
leaves the server; the stored shapes are :mod:`ingest.registry`'s
dataclasses, never sent as they are.  Every field is bounded (length,
range, list size), following fastapi/full-stack-fastapi-template.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qsec.contract import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN.pattern, max_length=64)]
ParticipantId = Annotated[str, Field(pattern=r"^p-[a-z0-9]{10}$")]
Text = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=2000)]
Licence = Annotated[str, Field(pattern=r"^[A-Za-z0-9.+-]{1,40}$")]
QuantityName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
SensorModel = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Number = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**53)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
MAX_ITEMS = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- campaigns
class CampaignIn(_Model):
    """Body of ``POST /campaigns``."""

    campaign: Id
    title: Text | None = None
    description: LongText | None = None
    starts: AwareDatetime | None = None
    ends: AwareDatetime | None = None
    licence: Licence = "ODbL-1.0"
    public: bool = False
    min_participants: Annotated[int, Field(ge=1, le=1000)] = 3


class Campaign(_Model):
    """A campaign as the API shows it."""

    campaign: Id
    title: Text
    description: LongText | None
    status: Literal["draft", "open", "closed"]
    licence: Licence
    public: bool
    min_participants: Annotated[int, Field(ge=1, le=1000)]
    starts: AwareDatetime | None
    ends: AwareDatetime | None


class CampaignList(_Model):
    campaigns: list[Campaign] = Field(max_length=MAX_ITEMS)


# ---------------------------------------------------------------- kits
class KitIn(_Model):
    """Body of ``POST /campaigns/{campaign}/kits``: device id -> sensor models."""

    kit: Id
    label: Text | None = None
    devices: dict[Id, list[SensorModel]] = Field(min_length=1, max_length=16)


class Kit(_Model):
    kit: Id
    campaign: Id
    label: Text | None
    devices: dict[Id, list[SensorModel]] = Field(max_length=16)


class KitList(_Model):
    kits: list[Kit] = Field(max_length=MAX_ITEMS)


class KitRegistered(_Model):
    """A registered kit and, once only, each device's MQTT password (not stored anywhere in clear)."""

    kit: Kit
    passwords: dict[Id, Annotated[str, Field(max_length=100)]] = Field(max_length=16)
    note: Text


# ---------------------------------------------------------------- participants
class Participant(_Model):
    participant: ParticipantId
    created: AwareDatetime
    deleted: AwareDatetime | None
    kits: list[Id] = Field(max_length=100)


class ParticipantList(_Model):
    participants: list[Participant] = Field(max_length=MAX_ITEMS)


class ParticipantCreated(_Model):
    participant: ParticipantId
    campaign: Id


class AssignmentIn(_Model):
    kit: Id
    starts: AwareDatetime
    ends: AwareDatetime | None = None


class HomeZoneIn(_Model):
    latitude: Latitude
    longitude: Longitude
    radius_m: Annotated[float, Field(gt=0, le=5000)] = 200.0


class OptOutIn(_Model):
    """A trip or a time range a participant does not want published."""

    starts: AwareDatetime
    ends: AwareDatetime
    reason: Literal["trip", "range"] = "range"


class OptOut(_Model):
    id: Count
    starts: AwareDatetime
    ends: AwareDatetime
    reason: Literal["trip", "range"]
    created: AwareDatetime


class OptOutList(_Model):
    opt_outs: list[OptOut] = Field(max_length=MAX_ITEMS)


class Created(_Model):
    id: Count


class Deletion(_Model):
    """What a deletion removed: counts and time ranges, never the data."""

    participant: ParticipantId
    campaign: Id
    requested: AwareDatetime
    done: AwareDatetime
    what: Annotated[str, Field(max_length=20_000)]
    readings: Count
    registry_rows: Count


class DeletionList(_Model):
    deletions: list[Deletion] = Field(max_length=MAX_ITEMS)


# ---------------------------------------------------------------- readings
class Reading(_Model):
    """One record: its key, its time, and the values it carries [each quantity's unit]."""

    campaign: Id
    device: Id
    participant: ParticipantId | None = None
    boot: Annotated[str, Field(max_length=64)]
    seq: Count
    time: AwareDatetime
    sensor: SensorModel
    flags: Annotated[int, Field(ge=0, le=2**31 - 1)]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    position_age_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    values: dict[QuantityName, Number] = Field(max_length=64)


class ReadingsPage(_Model):
    """A page of records ordered by (time, device, boot, seq); pass ``next_cursor`` as ``cursor`` for the next."""

    count: Count
    next_cursor: Annotated[str, Field(max_length=400)] | None
    units: dict[QuantityName, Annotated[str, Field(max_length=16)]] = Field(max_length=64)
    readings: list[Reading] = Field(max_length=MAX_ITEMS)


class Aggregate(_Model):
    """One window of one quantity on one device [the quantity's unit]."""

    device: Id
    quantity: QuantityName
    time: AwareDatetime = Field(description="window start (or end, with label=end), UTC")
    values: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,12}$")], Number | None] = Field(max_length=16)
    count: Count
    expected: Annotated[float, Field(ge=0, le=1e9)]
    coverage: Annotated[float, Field(ge=0, le=1)]
    excluded: Count
    reason: Literal["", "no_valid_value", "low_coverage"]


class AggregatePage(_Model):
    window: Annotated[str, Field(max_length=16)]
    exclude_flags: Annotated[int, Field(ge=0, le=2**31 - 1)]
    rows: list[Aggregate] = Field(max_length=100_000)


class Trip(_Model):
    """A stop or a move of a device, with its mean exposure."""

    device: Id
    segment: Count
    kind: Literal["stop", "move"]
    start: AwareDatetime
    end: AwareDatetime
    duration_s: Annotated[float, Field(ge=0, le=1e9)]
    points: Count
    distance_m: Annotated[float, Field(ge=0, le=1e8)] | None
    speed_median_ms: Annotated[float, Field(ge=0, le=1e3)] | None
    speed_p85_ms: Annotated[float, Field(ge=0, le=1e3)] | None
    speed_max_ms: Annotated[float, Field(ge=0, le=1e3)] | None
    mode: Literal["walk", "bike", "motorised"] | None
    exposure: Number | None = Field(description="time-weighted mean of the quantity over the segment")


class TripList(_Model):
    quantity: QuantityName
    trips: list[Trip] = Field(max_length=MAX_ITEMS)


class CellProperties(_Model):
    cell_x: int
    cell_y: int
    count: Count
    contributors: Count
    exposure_s: Annotated[float, Field(ge=0, le=1e12)]
    coverage: Annotated[float, Field(ge=0, le=1)]
    mean: Number | None
    median: Number | None


class PolygonGeometry(_Model):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[list[Number]]] = Field(max_length=1)


class CellFeature(_Model):
    type: Literal["Feature"] = "Feature"
    geometry: PolygonGeometry
    properties: CellProperties


class Grid(_Model):
    """A GeoJSON FeatureCollection of grid cells (RFC 7946), with what privacy held back."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    quantity: QuantityName
    unit: Annotated[str, Field(max_length=16)]
    cell_m: Annotated[float, Field(gt=0, le=10_000)]
    min_participants: Annotated[int, Field(ge=1, le=1000)]
    masked_positions: Count
    suppressed_cells: Count
    suppressed_records: Count
    features: list[CellFeature] = Field(max_length=50_000)


class IndexPeriod(_Model):
    device: Id
    period_start: AwareDatetime
    period_end: AwareDatetime
    value: Number | None
    valid: bool
    category: Annotated[str, Field(max_length=40)] | None
    label_fr: Annotated[str, Field(max_length=80)] | None
    label_en: Annotated[str, Field(max_length=80)] | None
    colour: Annotated[str, Field(max_length=16)] | None


class IndexPage(_Model):
    index: Annotated[str, Field(max_length=16)]
    version: Annotated[str, Field(max_length=16)]
    pollutant: QuantityName
    averaging: Annotated[str, Field(max_length=40)]
    indicative: bool
    periods: list[IndexPeriod] = Field(max_length=100_000)


class FlagInfo(_Model):
    bit: Annotated[int, Field(ge=0, le=31)]
    value: Annotated[int, Field(ge=1, le=2**31)]
    name: Annotated[str, Field(max_length=40)]
    source: Literal["bridge", "qc"]
    meaning: Text


class FlagLegend(_Model):
    flags: list[FlagInfo] = Field(max_length=32)


# ---------------------------------------------------------------- tokens
class TokenCreated(_Model):
    """A new API token: ``token`` is shown this once; the server keeps only a keyed hash."""

    id: Annotated[str, Field(max_length=16)]
    token: Annotated[str, Field(max_length=100)]
    role: Literal["admin", "researcher", "participant"]
    campaign: Id | None
    participant: ParticipantId | None
