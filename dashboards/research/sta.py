"""A read-only OGC SensorThings API v1.1 view of the public campaigns (``/sta/v1.1``).

============================  ==================================================
entity                        what it is here
============================  ==================================================
Thing (``'kit-01'``)          a device of a public campaign
Location (``'<campaign>'``)   the campaign's area: its bounding box rounded out
                              to 0.01° (~1 km), never a participant's position
Sensor (``'winsen-mhz19'``)   a sensor model
ObservedProperty (``'co2'``)  a quantity of :mod:`qsec.quantities` (no GPS ones)
Datastream                    one (device, sensor model, quantity):
(``'kit-01:winsen-mhz19:co2'``)
Observation                   one value: ``'<device>:<boot>:<seq>:<quantity>'``
============================  ==================================================

Query options: ``$top`` (default 100, at most 1000), ``$skip``, ``$count``
(default false, as 1.1 §9.3.3.4 says); a page that is not the last has
``@iot.nextLink``.  Observations are the public view of
:mod:`analysis.export.selection` (opted-out ranges left out), ordered by
``(time, device, boot, seq, quantity)``.  Other options (``$filter``,
``$expand``, ``$select``, ``$orderby``) are answered with 400.

Paging Observations: ``$skip`` works as the standard says (§9.3.3.5: that
many are left out, so a deep ``$skip`` costs what it skips), but the
``@iot.nextLink`` of an Observations page carries ``$skiptoken``, the
server-driven paging token of OData 4.01 (Part 2, §11.2.6.7 and §11.2.5.7):
an opaque key of the last observation sent.  The next page starts right
after that key, reading from the store only the records it needs (a keyset
cursor), so the thousandth page costs what the first does, and no
observation is sent twice while records are stored (a late upload measured
before the page's key shows on a new walk from the first page).

Sources
-------
- OGC 18-088, SensorThings API Part 1: Sensing v1.1, §8 (entities),
  §9.2 (service root, resource paths), §9.3.3 (``$top``, ``$skip``,
  ``$count``, server-driven paging and ``@iot.nextLink``):
  https://docs.ogc.org/is/18-088/18-088.html
- OData Version 4.01 Part 2 (URL conventions), §5.1.3 ``$skiptoken``;
  Part 1 (protocol), §11.2.6.7 server-driven paging:
  https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html
- NERC Vocabulary Server, CF standard names (ObservedProperty definitions):
  http://vocab.nerc.ac.uk/standard_name/
"""

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from analysis.export.selection import PRIVATE_QUANTITIES, Selection, count_rows, plan
from dashboards.research import sta_models as s
from dashboards.research.auth import Caller
from dashboards.research.context import Context
from ingest.registry import list_campaigns
from qsec import quantities as qty

PREFIX = "/sta/v1.1"
TOP, TOP_MAX = 100, 1000
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
CONFORMANCE = ["http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
               "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
               "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data"]
SETS = ("Things", "Locations", "Sensors", "ObservedProperties", "Datastreams", "Observations")
_CACHE_S = 10.0
_EPOCH = datetime(1970, 1, 1)
Key = tuple[int, str, str, int, str]  # (time [µs since the Unix epoch, UTC], device, boot, seq, quantity)


def encode_token(key: Key) -> str:
    """The ``$skiptoken`` of an observation's sort key (URL-safe base64 of JSON, no padding)."""
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> Key:
    """The sort key in a ``$skiptoken``.

    Raises
    ------
    HTTPException
        400 if the token is not one this server wrote.
    """
    try:
        t, device, boot, seq, quantity = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not (isinstance(t, int) and isinstance(seq, int) and all(isinstance(v, str)
                                                                    for v in (device, boot, quantity))):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error) as error:
        raise HTTPException(400, "$skiptoken is not valid: follow the @iot.nextLink as given") from error
    return t, device, boot, seq, quantity


@dataclass(frozen=True)
class Catalogue:
    """The small entity sets, from one scan of the public campaigns."""

    things: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    streams: list[dict[str, Any]]


def scan(con: duckdb.DuckDBPyConnection) -> Catalogue:
    """Devices, campaign areas and (device, sensor, quantity) streams of the public campaigns."""
    campaigns = {c.campaign: c for c in list_campaigns(con, public_only=True)}
    present = {r[0] for r in con.execute("SELECT name FROM pragma_table_info('readings')").fetchall()}
    names = [q for q in qty.QUANTITIES if q in present and q not in PRIVATE_QUANTITIES]
    if not campaigns or not names:
        return Catalogue([], [], [])
    marks = ", ".join("?" for _ in campaigns)
    count_sql = ", ".join(f'count("{q}")' for q in names)
    rows = con.execute(
        f"SELECT campaign, device, sensor, min(time), max(time), min(latitude), max(latitude), min(longitude), "
        f"max(longitude), {count_sql} FROM readings "
        f"WHERE campaign IN ({marks}) GROUP BY ALL ORDER BY device, sensor", list(campaigns)).fetchall()
    things: dict[str, dict[str, Any]] = {}
    areas: dict[str, list[float]] = {}
    streams = []
    for campaign, device, sensor, first, last, lat0, lat1, lon0, lon1, *counts in rows:
        things.setdefault(device, {"device": device, "campaign": campaign})
        if lat0 is not None:
            box = areas.setdefault(campaign, [lat0, lat1, lon0, lon1])
            box[:] = [min(box[0], lat0), max(box[1], lat1), min(box[2], lon0), max(box[3], lon1)]
        streams += [{"device": device, "sensor": sensor, "quantity": q, "first": first, "last": last,
                     "campaign": campaign} for q, n in zip(names, counts, strict=True) if n]
    locations = [{"campaign": c, "title": campaigns[c].title, "box": box} for c, box in sorted(areas.items())]
    return Catalogue(list(things.values()), locations, streams)


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _key(raw: str) -> str:
    """``'kit-01'`` or ``kit-01`` → ``kit-01``."""
    return raw[1:-1].replace("''", "'") if len(raw) >= 2 and raw[0] == raw[-1] == "'" else raw


def add_sta_routes(router: APIRouter, ctx: Context) -> None:
    """Add the SensorThings routes (under ``/sta/v1.1``) to ``router``."""
    Con = Annotated[duckdb.DuckDBPyConnection, Depends(ctx.con)]
    Who = Annotated[Caller, Depends(ctx.caller)]
    lock, cached = threading.Lock(), {"at": -1e9, "value": Catalogue([], [], [])}

    def catalogue(con: duckdb.DuckDBPyConnection) -> Catalogue:
        with lock:
            if time.monotonic() - cached["at"] > _CACHE_S:
                cached["value"], cached["at"] = scan(con), time.monotonic()
            return cached["value"]  # type: ignore[return-value]

    class Paging:
        def __init__(self, request: Request,
                     top: Annotated[int, Query(alias="$top", ge=0, le=TOP_MAX)] = TOP,
                     skip: Annotated[int, Query(alias="$skip", ge=0, le=10**9)] = 0,
                     count: Annotated[bool, Query(alias="$count")] = False,
                     token: Annotated[str | None, Query(alias="$skiptoken", max_length=400,
                                                        pattern=r"^[A-Za-z0-9_-]+$")] = None) -> None:
            unsupported = sorted(k for k in request.query_params if k.startswith("$")
                                 and k not in ("$top", "$skip", "$count", "$skiptoken"))
            if unsupported:
                raise HTTPException(400, f"{', '.join(unsupported)} not supported by this read-only view; "
                                         "use $top, $skip and $count")
            self.top, self.skip, self.count = top, skip, count
            self.after = None if token is None else decode_token(token)
            self.root = str(request.base_url).rstrip("/") + PREFIX
            self.path = request.url.path

        def page(self, model: type[Any], items: list[Any], total: int | None = None, more: bool | None = None,
                 last: Key | None = None) -> Any:
            """One page; ``last`` (the key of its last item) makes the next link a keyset ``$skiptoken``."""
            if more is None:
                if self.after is not None:
                    raise HTTPException(400, "$skiptoken pages Observations only; use $skip here")
                more = self.skip + self.top < len(items)
                total = len(items)
                items = items[self.skip:self.skip + self.top]
            nxt = None
            if more:
                nxt = f"{self.root}{self.path[len(PREFIX):]}?$top={self.top}"
                nxt += f"&$skiptoken={encode_token(last)}" if last is not None else f"&$skip={self.skip + self.top}"
                nxt += "&$count=true" if self.count else ""
            return model(value=items, count=total if self.count else None, next_link=nxt)

    Page = Annotated[Paging, Depends(Paging)]

    def thing(root: str, t: dict[str, Any]) -> s.Thing:
        link = f"{root}/Things('{t['device']}')"
        return s.Thing(iot_id=t["device"], self_link=link, name=t["device"], description=f"qsec device {t['device']}",
                       properties={"campaign": t["campaign"]}, locations_link=link + "/Locations",
                       datastreams_link=link + "/Datastreams")

    def location(root: str, loc: dict[str, Any]) -> s.Location:
        lat0, lat1, lon0, lon1 = (round(v, 2) for v in loc["box"])
        lat0, lon0, lat1, lon1 = lat0 - 0.01, lon0 - 0.01, lat1 + 0.01, lon1 + 0.01
        ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
        link = f"{root}/Locations('{loc['campaign']}')"
        return s.Location(iot_id=loc["campaign"], self_link=link, name=loc["title"][:200],
                          description=f"area of campaign {loc['campaign']} (rounded to ~1 km)",
                          encodingType="application/geo+json",
                          location={"type": "Polygon", "coordinates": [[[round(x, 2), round(y, 2)] for x, y in ring]]},
                          things_link=link + "/Things")

    def sensor(root: str, model: str) -> s.Sensor:
        link = f"{root}/Sensors('{model}')"
        return s.Sensor(iot_id=model, self_link=link, name=model, description=f"low-cost sensor model {model}",
                        encodingType="text/plain", metadata=f"{model}: see the manufacturer's datasheet",
                        datastreams_link=link + "/Datastreams")

    def prop(root: str, name: str) -> s.ObservedProperty:
        q = qty.get(name)
        link = f"{root}/ObservedProperties('{name}')"
        definition = (f"http://vocab.nerc.ac.uk/standard_name/{q.standard_name}/" if q.standard_name
                      else f"urn:qsec:quantity:{name}")
        return s.ObservedProperty(iot_id=name, self_link=link, name=q.long_name, definition=definition,
                                  description=q.long_name_fr, datastreams_link=link + "/Datastreams")

    def stream(root: str, d: dict[str, Any]) -> s.Datastream:
        ident = f"{d['device']}:{d['sensor']}:{d['quantity']}"
        link = f"{root}/Datastreams('{ident}')"
        q = qty.get(d["quantity"])
        return s.Datastream(
            iot_id=ident, self_link=link, name=f"{q.long_name}, {d['device']} ({d['sensor']})",
            description=f"{q.long_name_fr} mesurée par {d['device']}",
            unitOfMeasurement=s.Unit(name=q.unit, symbol=q.unit, definition="https://ucum.org/ucum"),
            observationType=OM_MEASUREMENT, phenomenonTime=f"{_iso(d['first'])}/{_iso(d['last'])}",
            thing_link=link + "/Thing", sensor_link=link + "/Sensor", property_link=link + "/ObservedProperty",
            observations_link=link + "/Observations")

    def one(items: list[Any], what: str, key: str) -> Any:
        if not items:
            raise HTTPException(404, f"no {what} ({key!r}) in the public campaigns")
        return items[0]

    def streams_where(con: duckdb.DuckDBPyConnection, **match: str) -> list[dict[str, Any]]:
        return [d for d in catalogue(con).streams if all(d[k] == v for k, v in match.items())]

    @router.get(PREFIX, response_model=s.ServiceRoot, summary="SensorThings service root", tags=["SensorThings"])
    def root(request: Request, caller: Who) -> s.ServiceRoot:
        base = str(request.base_url).rstrip("/") + PREFIX
        return s.ServiceRoot(value=[s.ResourceLink(name=n, url=f"{base}/{n}") for n in SETS],
                             serverSettings=s.ServerSettings(conformance=CONFORMANCE))

    tags = ["SensorThings"]

    @router.get(PREFIX + "/Things", response_model=s.ThingCollection, tags=tags, response_model_exclude_none=True)
    def things(p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.ThingCollection, [thing(p.root, t) for t in catalogue(con).things])

    @router.get(PREFIX + "/Things({key})", response_model=s.Thing, tags=tags, response_model_exclude_none=True)
    def get_thing(key: str, p: Page, con: Con, caller: Who) -> Any:
        return thing(p.root, one([t for t in catalogue(con).things if t["device"] == _key(key)], "Thing", key))

    @router.get(PREFIX + "/Things({key})/Datastreams", response_model=s.DatastreamCollection, tags=tags, response_model_exclude_none=True)
    def thing_streams(key: str, p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.DatastreamCollection, [stream(p.root, d) for d in streams_where(con, device=_key(key))])

    @router.get(PREFIX + "/Things({key})/Locations", response_model=s.LocationCollection, tags=tags, response_model_exclude_none=True)
    def thing_locations(key: str, p: Page, con: Con, caller: Who) -> Any:
        cat = catalogue(con)
        campaigns = {t["campaign"] for t in cat.things if t["device"] == _key(key)}
        return p.page(s.LocationCollection, [location(p.root, loc) for loc in cat.locations
                                             if loc["campaign"] in campaigns])

    @router.get(PREFIX + "/Locations", response_model=s.LocationCollection, tags=tags, response_model_exclude_none=True)
    def locations(p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.LocationCollection, [location(p.root, loc) for loc in catalogue(con).locations])

    @router.get(PREFIX + "/Locations({key})", response_model=s.Location, tags=tags, response_model_exclude_none=True)
    def get_location(key: str, p: Page, con: Con, caller: Who) -> Any:
        return location(p.root, one([loc for loc in catalogue(con).locations if loc["campaign"] == _key(key)],
                                    "Location", key))

    @router.get(PREFIX + "/Locations({key})/Things", response_model=s.ThingCollection, tags=tags, response_model_exclude_none=True)
    def location_things(key: str, p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.ThingCollection, [thing(p.root, t) for t in catalogue(con).things
                                          if t["campaign"] == _key(key)])

    @router.get(PREFIX + "/Sensors", response_model=s.SensorCollection, tags=tags, response_model_exclude_none=True)
    def sensors(p: Page, con: Con, caller: Who) -> Any:
        models = sorted({d["sensor"] for d in catalogue(con).streams})
        return p.page(s.SensorCollection, [sensor(p.root, x) for x in models])

    @router.get(PREFIX + "/Sensors({key})", response_model=s.Sensor, tags=tags, response_model_exclude_none=True)
    def get_sensor(key: str, p: Page, con: Con, caller: Who) -> Any:
        return sensor(p.root, one([d["sensor"] for d in streams_where(con, sensor=_key(key))], "Sensor", key))

    @router.get(PREFIX + "/Sensors({key})/Datastreams", response_model=s.DatastreamCollection, tags=tags, response_model_exclude_none=True)
    def sensor_streams(key: str, p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.DatastreamCollection, [stream(p.root, d) for d in streams_where(con, sensor=_key(key))])

    @router.get(PREFIX + "/ObservedProperties", response_model=s.ObservedPropertyCollection, tags=tags, response_model_exclude_none=True)
    def properties(p: Page, con: Con, caller: Who) -> Any:
        names = [q for q in qty.QUANTITIES if any(d["quantity"] == q for d in catalogue(con).streams)]
        return p.page(s.ObservedPropertyCollection, [prop(p.root, q) for q in names])

    @router.get(PREFIX + "/ObservedProperties({key})", response_model=s.ObservedProperty, tags=tags, response_model_exclude_none=True)
    def get_property(key: str, p: Page, con: Con, caller: Who) -> Any:
        return prop(p.root, one([d["quantity"] for d in streams_where(con, quantity=_key(key))],
                                "ObservedProperty", key))

    @router.get(PREFIX + "/ObservedProperties({key})/Datastreams", response_model=s.DatastreamCollection, tags=tags, response_model_exclude_none=True)
    def property_streams(key: str, p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.DatastreamCollection, [stream(p.root, d) for d in streams_where(con, quantity=_key(key))])

    @router.get(PREFIX + "/Datastreams", response_model=s.DatastreamCollection, tags=tags, response_model_exclude_none=True)
    def datastreams(p: Page, con: Con, caller: Who) -> Any:
        return p.page(s.DatastreamCollection, [stream(p.root, d) for d in catalogue(con).streams])

    def the_stream(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
        device, _, rest = _key(key).partition(":")
        model, _, quantity = rest.partition(":")
        return one(streams_where(con, device=device, sensor=model, quantity=quantity), "Datastream", key)  # type: ignore[no-any-return]

    @router.get(PREFIX + "/Datastreams({key})", response_model=s.Datastream, tags=tags, response_model_exclude_none=True)
    def get_stream(key: str, p: Page, con: Con, caller: Who) -> Any:
        return stream(p.root, the_stream(con, key))

    @router.get(PREFIX + "/Datastreams({key})/Thing", response_model=s.Thing, tags=tags, response_model_exclude_none=True)
    def stream_thing(key: str, p: Page, con: Con, caller: Who) -> Any:
        d = the_stream(con, key)
        return thing(p.root, {"device": d["device"], "campaign": d["campaign"]})

    @router.get(PREFIX + "/Datastreams({key})/Sensor", response_model=s.Sensor, tags=tags, response_model_exclude_none=True)
    def stream_sensor(key: str, p: Page, con: Con, caller: Who) -> Any:
        return sensor(p.root, the_stream(con, key)["sensor"])

    @router.get(PREFIX + "/Datastreams({key})/ObservedProperty", response_model=s.ObservedProperty, tags=tags, response_model_exclude_none=True)
    def stream_property(key: str, p: Page, con: Con, caller: Who) -> Any:
        return prop(p.root, the_stream(con, key)["quantity"])

    def observations_sql(con: duckdb.DuckDBPyConnection, streams: list[dict[str, Any]], *, limit: int | None = None,
                         after: Key | None = None, record: tuple[str, int] | None = None
                         ) -> tuple[str, list[Any], list[Any]]:
        """The observations of ``streams`` (one row per value), their parameters, and each campaign's plan.

        With ``after``, only records from the one of that key on; with
        ``limit``, at most that many records of each campaign (the plan cuts
        them from ``readings`` first, so the cost follows the page).
        """
        parts, params, plans = [], [], []
        start = None if after is None else (_EPOCH + timedelta(microseconds=after[0]), after[1], after[2], after[3] - 1)
        for campaign in sorted({d["campaign"] for d in streams}):
            mine = [d for d in streams if d["campaign"] == campaign]
            names = tuple(dict.fromkeys(d["quantity"] for d in mine))
            q = plan(con, Selection(campaign=campaign, quantities=names, public=True,  # start: zone maps skip
                                    devices=tuple(sorted({d["device"] for d in mine})), start=start and start[0]),
                     after=start, limit=limit, shape=ctx.shape(con))
            pairs = " OR ".join("(device = ? AND sensor = ? AND quantity = ?)" for _ in mine)
            columns = ", ".join(f'"{n}"' for n in names)
            parts.append(f"SELECT * FROM (UNPIVOT ({q.sql}) ON {columns} "
                         f"INTO NAME quantity VALUE result) WHERE ({pairs})" + (" AND boot = ? AND seq = ?" if record
                                                                               else ""))
            params += list(q.params) + [v for d in mine for v in (d["device"], d["sensor"], d["quantity"])]
            params += list(record or ())
            plans.append(q)
        return " UNION ALL ".join(f"({part})" for part in parts), params, plans

    def observations_page(con: duckdb.DuckDBPyConnection, p: Paging, streams: list[dict[str, Any]],
                          record: tuple[str, int] | None = None) -> Any:
        if not streams:
            return p.page(s.ObservationCollection, [])
        total = None
        if p.count:
            sql, params, _ = observations_sql(con, streams, record=record)
            total = int(con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0])
        after = [] if p.after is None else [p.after]
        # Enough records for the page when each gives at least one observation; more (×4) in the rare case
        # that records give none (a sensor new since the catalogue was read), until no campaign is cut short.
        records = None if record else p.skip + p.top + 1 + (p.after is not None)  # the cursor's record may be spent
        while True:
            sql, params, plans = observations_sql(con, streams, limit=records, after=p.after, record=record)
            rows = con.sql("SELECT device, sensor, boot, seq, quantity, time, result, epoch_us(time) AS us "
                           f"FROM ({sql}) "
                           + ("WHERE (epoch_us(time), device, boot, seq, quantity) > (?, ?, ?, ?, ?) " if after else "")
                           + "ORDER BY time, device, boot, seq, quantity LIMIT ? OFFSET ?",
                           params=params + [v for key in after for v in key] + [p.top + 1, p.skip]
                           ).to_arrow_table().to_pylist()
            if records is None or len(rows) > p.top or all(count_rows(con, q) < records for q in plans):
                break
            records *= 4
        items = []
        for row in rows[:p.top]:
            device, model, boot, seq, quantity, when, result = (row[k] for k in ("device", "sensor", "boot", "seq",
                                                                                  "quantity", "time", "result"))
            ident = f"{device}:{boot}:{seq}:{quantity}"
            link = f"{p.root}/Observations('{ident}')"
            items.append(s.Observation(iot_id=ident, self_link=link, phenomenonTime=_iso(when),
                                       resultTime=_iso(when), result=result,
                                       datastream_link=f"{p.root}/Datastreams('{device}:{model}:{quantity}')"))
        more = len(rows) > p.top > 0
        last = rows[p.top - 1] if more else None
        key = None if last is None else (int(last["us"]), last["device"], last["boot"], int(last["seq"]),
                                         last["quantity"])
        return p.page(s.ObservationCollection, items, total, more=more, last=key)

    @router.get(PREFIX + "/Datastreams({key})/Observations", response_model=s.ObservationCollection, tags=tags, response_model_exclude_none=True)
    def stream_observations(key: str, p: Page, con: Con, caller: Who) -> Any:
        return observations_page(con, p, [the_stream(con, key)])

    @router.get(PREFIX + "/Observations", response_model=s.ObservationCollection, tags=tags, response_model_exclude_none=True)
    def observations(p: Page, con: Con, caller: Who) -> Any:
        return observations_page(con, p, catalogue(con).streams)

    @router.get(PREFIX + "/Observations({key})", response_model=s.Observation, tags=tags, response_model_exclude_none=True)
    def get_observation(key: str, p: Page, con: Con, caller: Who) -> Any:
        device, boot, seq, quantity = (_key(key).split(":") + ["", "", "", ""])[:4]
        streams = streams_where(con, device=device, quantity=quantity)
        if not streams or not seq.isdigit():
            raise HTTPException(404, f"no Observation ({key!r}) in the public campaigns")
        found = observations_page(con, p, streams, (boot, int(seq))).value
        return one(found, "Observation", key)
