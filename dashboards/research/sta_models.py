"""OGC SensorThings API 1.1 (OGC 18-088) entity models, read-only, every field bounded.

Property names follow the standard's JSON encoding (§8.2, ``@iot.id``,
``@iot.selfLink``, ``<Entity>@iot.navigationLink``), produced through
pydantic aliases; collections are ``{"value": […], "@iot.count",
"@iot.nextLink"}`` (§9.3.3).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

Link = Annotated[str, Field(max_length=600)]
Ident = Annotated[str, Field(max_length=200)]
Name = Annotated[str, Field(max_length=200)]


class _Entity(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    iot_id: Ident = Field(alias="@iot.id")
    self_link: Link = Field(alias="@iot.selfLink")


class Thing(_Entity):
    name: Name
    description: Name
    properties: dict[Annotated[str, Field(max_length=40)], Name] = Field(max_length=10)
    locations_link: Link = Field(alias="Locations@iot.navigationLink")
    datastreams_link: Link = Field(alias="Datastreams@iot.navigationLink")


class Location(_Entity):
    name: Name
    description: Name
    encodingType: Name
    location: dict[str, Any] = Field(max_length=4, description="GeoJSON Polygon: the campaign's area, ~1 km rounded")
    things_link: Link = Field(alias="Things@iot.navigationLink")


class Sensor(_Entity):
    name: Name
    description: Name
    encodingType: Name
    metadata: Name
    datastreams_link: Link = Field(alias="Datastreams@iot.navigationLink")


class ObservedProperty(_Entity):
    name: Name
    definition: Link
    description: Name
    datastreams_link: Link = Field(alias="Datastreams@iot.navigationLink")


class Unit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    symbol: Annotated[str, Field(max_length=16)]
    definition: Link


class Datastream(_Entity):
    name: Name
    description: Name
    unitOfMeasurement: Unit
    observationType: Link
    phenomenonTime: Annotated[str, Field(max_length=80)] | None
    thing_link: Link = Field(alias="Thing@iot.navigationLink")
    sensor_link: Link = Field(alias="Sensor@iot.navigationLink")
    property_link: Link = Field(alias="ObservedProperty@iot.navigationLink")
    observations_link: Link = Field(alias="Observations@iot.navigationLink")


class Observation(_Entity):
    phenomenonTime: Annotated[str, Field(max_length=40)]
    resultTime: Annotated[str, Field(max_length=40)]
    result: Annotated[float, Field(allow_inf_nan=False)]
    datastream_link: Link = Field(alias="Datastream@iot.navigationLink")


def _collection(item: type[BaseModel]) -> type[BaseModel]:
    """``{"@iot.count", "@iot.nextLink", "value"}`` of ``item`` entities."""
    return create_model(
        f"{item.__name__}Collection", __config__=ConfigDict(populate_by_name=True, frozen=True),
        count=(int | None, Field(None, alias="@iot.count", ge=0, le=2**53)),
        next_link=(str | None, Field(None, alias="@iot.nextLink", max_length=600)),
        value=(list[item], Field(max_length=1000)),  # type: ignore[valid-type]
    )


ThingCollection = _collection(Thing)
LocationCollection = _collection(Location)
SensorCollection = _collection(Sensor)
ObservedPropertyCollection = _collection(ObservedProperty)
DatastreamCollection = _collection(Datastream)
ObservationCollection = _collection(Observation)


class ResourceLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(max_length=40)]
    url: Link


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conformance: list[Link] = Field(max_length=20)


class ServiceRoot(BaseModel):
    """The service root document (18-088 §9.2.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: list[ResourceLink] = Field(max_length=20)
    serverSettings: ServerSettings
