"""Public API models of the live dashboard: what leaves the server, every field bounded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=64)]
QuantityName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
Unit = Annotated[str, Field(max_length=16)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**53)]
MAX_DEVICES = 10_000


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatestValue(_Public):
    """The newest value of one quantity on one device."""

    value: Number
    unit: Unit
    time: AwareDatetime = Field(description="measurement time, UTC")
    sensor: Name


class DeviceLatest(_Public):
    """A device and the newest value of each quantity it reports."""

    device: Name
    campaign: Name
    values: dict[QuantityName, LatestValue] = Field(max_length=64)


class LatestResponse(_Public):
    """Answer of ``GET /api/latest``."""

    server_time: AwareDatetime
    devices: list[DeviceLatest] = Field(max_length=MAX_DEVICES)


class MinutePoint(_Public):
    """The mean of one quantity over one minute; ``minute`` is the interval start."""

    minute: AwareDatetime = Field(description="start of the 1-minute interval, UTC")
    mean: Number
    count: Count
    coverage: Annotated[float, Field(ge=0.0, le=1.0)] = Field(description="count / expected, clipped to [0, 1]")


class MinuteSeries(_Public):
    """1-minute means of one quantity on one device, oldest first."""

    device: Name
    campaign: Name
    quantity: QuantityName
    unit: Unit
    expected: Annotated[float, Field(gt=0, le=1e6)] = Field(description="values expected per minute")
    points: list[MinutePoint] = Field(max_length=24 * 60)


class MinuteMeansResponse(_Public):
    """Answer of ``GET /api/minute-means``: only whole minutes in ``[since, until)``."""

    server_time: AwareDatetime
    since: AwareDatetime
    until: AwareDatetime
    series: list[MinuteSeries] = Field(max_length=MAX_DEVICES)


class QuantityInfo(_Public):
    """One quantity of :mod:`qsec.quantities`, as screens need it."""

    name: QuantityName
    unit: Unit
    kind: Annotated[str, Field(max_length=20)]
    long_name: Annotated[str, Field(max_length=100)]
    long_name_fr: Annotated[str, Field(max_length=100)]
    decimals: Annotated[int, Field(ge=0, le=9)]


class QuantitiesResponse(_Public):
    """Answer of ``GET /api/quantities``."""

    quantities: list[QuantityInfo] = Field(max_length=200)


class HealthResponse(_Public):
    """Answer of ``GET /api/health``."""

    status: Literal["ok", "degraded"]
    connected: bool | None = Field(description="ingest connected to the broker; null when no ingest runs here")
    server_time: AwareDatetime
    store: Literal["ok", "unavailable"]
    last_received: AwareDatetime | None = Field(description="when ingest last committed a record, UTC")
    subscribers: Count
    published: Count
    dropped: Count = Field(description="live events lost by slow clients")
