"""Data routes: readings (paged), aggregates, trips, grids, indices, exports, the flag legend.

Every route takes a campaign.  A token that reads the campaign gets the
researcher view; anyone else gets the public view of a public campaign
(no positions, no participant ids, opted-out ranges left out) or 401/404.
Maps for the public are grids with home zones masked and cells of too
few participants suppressed (``analysis.privacy``).

Pagination of ``/readings`` is by keyset on ``(time, device, boot, seq)``:
``next_cursor`` is an opaque string to pass back as ``cursor``; pages stay
consistent while new records arrive.

``/readings`` and ``/flags`` are ``async`` and return their JSON bytes
directly (orjson), the declared ``response_model`` documenting them: a
cached page costs no worker thread, no model and no serialiser (see
:meth:`dashboards.research.context.Context.answer`).  A page's rows are not
validated again on the way out: the store holds only records that passed
the contract (:mod:`qsec.contract`), and non-finite values are left out.

Sources
-------
- FastAPI, return a Response directly: https://fastapi.tiangolo.com/advanced/response-directly/
- orjson, ``OPT_UTC_Z``: https://github.com/ijl/orjson#opt_utc_z
"""

import base64
import binascii
import json
import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import duckdb
import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from analysis.export import Plan, Selection, count_rows, plan
from analysis.export.manifest import flag_legend
from analysis.export.selection import KEY_COLUMNS, POSITION_COLUMNS
from analysis.export.writers import FORMATS
from dashboards.research import models as m
from dashboards.research.analyses import grid_model, index_rows, trip_rows
from dashboards.research.auth import Caller
from dashboards.research.context import Context, forbid, view_of
from dashboards.research.pagecache import EPOCH, day_span
from dashboards.research.routes_registry import ZIP, bundle_response
from ingest import registry as reg
from qsec import quantities as qty

# Every column but ``participant``, for analyses that do not need it (its lookup is a join per row).
NO_PARTICIPANT = tuple(c for c in (*KEY_COLUMNS, *POSITION_COLUMNS, *qty.QUANTITIES) if c != "participant")
RESIDENT_MAX = 500  # most records of a page cut from resident blocks in the event loop (larger: a worker thread)
Window = Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}(s|min|h|D)$", description="e.g. 1min, 15min, 1h, 1D")]
IfNoneMatch = Annotated[str | None, Header(max_length=2000, description="ETags of pages you hold: 304 if unchanged")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the page is still the one whose ETag was sent in If-None-Match"}}


class Filters(BaseModel):
    """Query parameters shared by readings, aggregates, trips, grids, indices and exports."""

    campaign: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    device: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]] = Field([], max_length=100)
    quantity: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]] = Field([], max_length=64)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    bbox: str | None = Field(None, pattern=r"^-?[0-9.]{1,12},-?[0-9.]{1,12},-?[0-9.]{1,12},-?[0-9.]{1,12}$",
                             description="min_lon,min_lat,max_lon,max_lat [° WGS84]")
    flags_none: int = Field(0, ge=0, le=2**31 - 1, description="leave out records with any of these flag bits")
    flags_all: int = Field(0, ge=0, le=2**31 - 1, description="keep records with all of these flag bits")
    positions: bool = Field(False, description="add latitude/longitude from the device's GPS (researchers only)")


def public_view(ctx: Context, con: duckdb.DuckDBPyConnection, caller: Caller, campaign: str) -> bool:
    """:func:`~dashboards.research.context.view_of` the campaign, read through ``con`` when not cached."""
    return view_of(ctx.campaign(con, campaign), caller, campaign)


def query_key(f: Filters) -> tuple[object, ...]:
    """The filters in a canonical form: two requests with the same key select the same records.

    Devices and quantities are sets (``IN``); times are instants (aware
    datetimes compare and hash in UTC); the bbox is numbers.
    """
    return (f.campaign, tuple(sorted(set(f.device))), tuple(sorted(set(f.quantity))), f.start, f.end, bbox_of(f),
            f.flags_none, f.flags_all, f.positions)


def bbox_of(f: Filters) -> tuple[float, ...] | None:
    return tuple(float(v) for v in f.bbox.split(",")) if f.bbox else None


def selection_of(f: Filters, public: bool, **extra: Any) -> Selection:
    bbox = bbox_of(f)
    options: dict[str, Any] = {
        "campaign": f.campaign, "devices": tuple(f.device), "quantities": tuple(f.quantity), "start": f.start,
        "end": f.end, "bbox": bbox, "flags_none": f.flags_none, "flags_all": f.flags_all,
        "positions": f.positions, "public": public}
    return Selection(**(options | extra))


def days_read(selection: Selection) -> tuple[int | None, int | None]:
    """The UTC days (:func:`~dashboards.research.pagecache.day_span`) whose records the selection's answer reads.

    With positions, a record may take a fix up to ``tolerance_s`` before the
    start (:func:`analysis.export.plan`): the range reaches back as far.
    """
    start = selection.start
    if start is not None and (selection.positions or selection.bbox is not None):
        start -= timedelta(seconds=selection.tolerance_s)
    return day_span(start, selection.end)


def encode_cursor(row: dict[str, Any]) -> str:
    t = row["time"]
    key = [int(pd.Timestamp(t).value // 1000), row["device"], row["boot"], int(row["seq"])]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[object, ...]:
    try:
        micros, device, boot, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(micros, int) and isinstance(device, str) and isinstance(boot, str)
                and isinstance(seq, int)):
            raise ValueError("wrong types")
    except (ValueError, TypeError, binascii.Error) as error:
        raise HTTPException(400, "cursor is not one this API gave; start again without it") from error
    when = pd.Timestamp(micros, unit="us").to_pydatetime()
    return (when, device, boot, seq)


def page_rows(con: duckdb.DuckDBPyConnection, p: Plan) -> list[dict[str, Any]]:
    """The plan's rows as dicts, ``time`` an aware UTC datetime.

    A plain DB-API fetch (one parse and bind, where a relation takes two;
    the time as epoch microseconds, so no ``pytz``): the cheapest way
    out for a page.
    """
    names = p.columns
    cursor = con.execute(f'SELECT * REPLACE (epoch_us("time") AS "time") FROM ({p.sql})', list(p.params))
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["time"] = EPOCH + timedelta(microseconds=row["time"])
    return rows


def page_json(rows: list[dict[str, Any]], quantities: tuple[str, ...], positions: bool,
              next_cursor: str | None) -> bytes:
    """A page of records as :class:`~dashboards.research.models.ReadingsPage` JSON, without a model.

    Times come out as pydantic writes an aware UTC datetime (``…Z``); NaN
    and infinite values are left out of ``values``.
    """
    value_names = [q for q in quantities if not (positions and q in ("latitude", "longitude"))]
    readings = [{"campaign": r["campaign"], "device": r["device"], "participant": r.get("participant"),
                 "boot": r["boot"], "seq": r["seq"], "time": r["time"], "sensor": r["sensor"], "flags": r["flags"],
                 "latitude": r.get("latitude"), "longitude": r.get("longitude"),
                 "position_age_s": r.get("position_age_s"),
                 "values": {q: v for q in value_names if (v := r.get(q)) is not None and math.isfinite(v)}}
                for r in rows]
    units = {q: qty.get(q).unit for q in quantities}
    return orjson.dumps({"count": len(readings), "next_cursor": next_cursor, "units": units, "readings": readings},
                        option=orjson.OPT_UTC_Z)


def frame_of(ctx: Context, con: duckdb.DuckDBPyConnection, selection: Selection,
             columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The selection (``columns`` of it, see :func:`analysis.export.plan`) as a pandas frame.

    Refused with 413 beyond ``settings.max_rows``.
    """
    p = plan(con, selection, columns=columns, shape=ctx.shape(con), assigned=ctx.assigned(con))
    n = count_rows(con, p)
    if n > ctx.settings.max_rows:
        raise HTTPException(413, f"{n} records selected, more than {ctx.settings.max_rows}: narrow the time range "
                                 "or the devices, or use /exports")
    return con.sql(p.sql, params=list(p.params)).to_arrow_table().to_pandas()  # the frame of .df(), in half the time


def aggregate_page(frame: pd.DataFrame, quantities: list[str], *, window: str, stat: list[str],
                   quantile: list[float], qc: bool, exclude_flags: int | None, min_coverage: float | None,
                   label: str) -> m.AggregatePage:
    """Fixed-window statistics of ``frame`` (:func:`analysis.resample.resample`) as the aggregate route's page."""
    from analysis.qc import SUSPECT, flag
    from analysis.resample import quantile_name, resample

    exclude = exclude_flags if exclude_flags is not None else (SUSPECT if qc else 0)
    if qc and len(frame):
        frame["flags"] = flag(frame)
    names = [q for q in quantities if q in frame.columns]
    if not len(frame) or not names:
        return m.AggregatePage(window=window, exclude_flags=exclude, rows=[])
    out = resample(frame, window, stats=stat, quantiles=quantile, exclude=exclude, min_coverage=min_coverage,
                   quantities=names, label=label)
    stats = [s for s in ("mean", "median", "min", "max") if s in stat]
    stats += [quantile_name(p) for p in quantile] if "quantiles" in stat else []
    records = out.replace({np.nan: None}).to_dict("records")
    rows = [m.Aggregate(device=r["device"], quantity=r["quantity"], time=r["time"],
                        values={s: r.get(s) for s in stats}, count=r["count"], expected=r["expected"],
                        coverage=min(1.0, r["coverage"] or 0.0), excluded=r["excluded"], reason=r["reason"])
            for r in records]
    return m.AggregatePage(window=window, exclude_flags=exclude, rows=rows)


def first_quantity(f: Filters) -> str:
    """The one quantity a trips or grid request is about (``pm2_5`` by default)."""
    if len(f.quantity) > 1:
        raise HTTPException(422, "give one quantity for trips and grids")
    name = f.quantity[0] if f.quantity else "pm2_5"
    if name not in qty.QUANTITIES or name in ("latitude", "longitude"):
        raise HTTPException(422, f"unknown or positional quantity {name!r}; e.g. pm2_5, co2")
    return name


def add_data_routes(router: APIRouter, ctx: Context) -> None:
    """Add the data routes to ``router``."""
    Con = Annotated[duckdb.DuckDBPyConnection, Depends(ctx.con)]
    Who = Annotated[Caller, Depends(ctx.caller)]

    legend = m.FlagLegend(flags=[m.FlagInfo(**f) for f in flag_legend()]).model_dump_json().encode()

    @router.get("/flags", response_model=m.FlagLegend, summary="What each bit of a record's flags means")
    async def flags(caller: Who) -> Response:
        return Response(legend, media_type="application/json")

    @router.get("/readings", response_model=m.ReadingsPage, responses=NOT_MODIFIED,
                summary="Records, a page at a time (ETag: send If-None-Match to get 304 for an unchanged page)")
    async def readings(f: Annotated[Filters, Query()], caller: Who,
                       limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                       cursor: Annotated[str | None, Query(max_length=400)] = None,
                       if_none_match: IfNoneMatch = None) -> Response:
        limit = min(limit, ctx.settings.page_max)
        after = decode_cursor(cursor) if cursor else None
        public = await ctx.public_view(caller, f.campaign)
        selection = selection_of(f, public)

        def body(cut: tuple[list[dict[str, Any]], tuple[str, ...]]) -> bytes:
            rows, quantities = cut
            nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
            return page_json(rows[:limit], quantities, selection.checked().positions, nxt)

        def compute() -> bytes:
            with ctx.cursor() as con:
                shape = ctx.shape(con)
                cut = ctx.blocks.page(con, selection, shape, after, limit + 1) if ctx.blocks is not None else None
                if cut is None:
                    p = plan(con, selection, after=after, limit=limit + 1, shape=shape, assigned=ctx.assigned(con))
                    cut = page_rows(con, p), p.quantities
            return body(cut)

        def resident() -> bytes | None:
            """The page from resident blocks, in the event loop (a small page costs less than a thread hop)."""
            shape = ctx.known_shape()
            if ctx.blocks is None or shape is None or limit > RESIDENT_MAX:
                return None
            with ctx.mapped():
                cut = ctx.blocks.page(None, selection, shape, after, limit + 1)
            return None if cut is None else body(cut)

        key = ("readings", query_key(f), public, limit, after)
        return await ctx.answer(key, key[1][1], if_none_match, compute, days_read(selection), resident)

    @router.get("/readings/aggregate", response_model=m.AggregatePage, responses=NOT_MODIFIED,
                summary="Fixed windows: statistics, count, expected count and coverage "
                        "(ETag: send If-None-Match to get 304 for an unchanged answer)")
    async def aggregate(f: Annotated[Filters, Query()], caller: Who, window: Window = "1h",
                        stat: Annotated[list[Literal["mean", "median", "min", "max", "quantiles"]],
                                        Query(max_length=5)] = ["mean"],  # noqa: B006 (FastAPI copies defaults)
                        quantile: Annotated[list[Annotated[float, Field(ge=0, le=1)]],
                                            Query(max_length=9)] = [0.05, 0.95],  # noqa: B006
                        qc: Annotated[bool, Query(description="compute QC flags (analysis.qc) before aggregating")] = False,
                        exclude_flags: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
                        min_coverage: Annotated[float | None, Query(ge=0, le=1)] = None,
                        label: Literal["start", "end"] = "start",
                        if_none_match: IfNoneMatch = None) -> Response:
        if not f.quantity:
            raise HTTPException(422, "give at least one quantity (quantity=pm2_5)")
        public = await ctx.public_view(caller, f.campaign)
        selection = selection_of(f, public, quantities=() if qc else tuple(f.quantity))

        def compute() -> bytes:
            with ctx.cursor() as con:
                frame = frame_of(ctx, con, selection, NO_PARTICIPANT)
            return aggregate_page(frame, list(f.quantity), window=window, stat=stat, quantile=quantile, qc=qc,
                                  exclude_flags=exclude_flags, min_coverage=min_coverage,
                                  label=label).model_dump_json().encode()

        # The answer is a pure function of the records read (QC flags and windows included): the page cache keys
        # it by the same data versions as a page of records, so a commit elsewhere leaves it cached.
        key = ("aggregate", query_key(f), public, window, tuple(stat), tuple(quantile), qc, exclude_flags,
               min_coverage, label)
        return await ctx.answer(key, key[1][1], if_none_match, compute, days_read(selection))

    @router.get("/trips", response_model=m.TripList,
                summary="Stops and moves of each device, with mean exposure (researchers)")
    def trips(f: Annotated[Filters, Query()], con: Con, caller: Who) -> m.TripList:
        if not caller.reads(f.campaign):
            raise forbid(caller, "see trips (they are tracks)")
        quantity = first_quantity(f)
        frame = frame_of(ctx, con, selection_of(f, False, positions=True, quantities=(quantity,)))
        return m.TripList(quantity=quantity, trips=trip_rows(frame, quantity))

    @router.get("/grid", response_model=m.Grid,
                summary="Gridded map, weighted by exposure time; public: home zones masked, sparse cells held back")
    def grid(f: Annotated[Filters, Query()], con: Con, caller: Who,
             cell_m: Annotated[float, Query(ge=10, le=5000)] = 100.0,
             raw: Annotated[bool, Query(description="researchers: no masking nor suppression")] = False) -> m.Grid:
        public = public_view(ctx, con, caller, f.campaign)
        private = raw and not public
        quantity = first_quantity(f)
        info = reg.get_campaign(con, f.campaign)
        selection = selection_of(f, False, positions=True, quantities=(quantity,), hide_opted_out=not private)
        frame = frame_of(ctx, con, selection)
        zones = pd.DataFrame(reg.home_zones(con, f.campaign), columns=["participant", "latitude", "longitude",
                                                                       "radius_m"])
        return grid_model(frame, quantity, cell_m, zones, info.min_participants, private)

    @router.get("/indices", response_model=m.IndexPage,
                summary="Air-quality index per device (indicative: low-cost sensors)")
    def indices(f: Annotated[Filters, Query()], con: Con, caller: Who,
                index: Literal["eaqi", "atmo", "who"] = "eaqi",
                pollutant: Literal["pm2_5", "pm10"] = "pm2_5",
                version: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
                averaging: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,40}$")] = None) -> m.IndexPage:
        public = public_view(ctx, con, caller, f.campaign)
        frame = frame_of(ctx, con, selection_of(f, public, quantities=(pollutant,)), NO_PARTICIPANT)
        try:
            return index_rows(frame, index=index, pollutant=pollutant, version=version, averaging=averaging)
        except (KeyError, ValueError) as error:
            raise HTTPException(422, str(error).strip('"')) from error

    @router.get("/exports", response_class=StreamingResponse, responses=ZIP,
                summary="A self-describing bundle (zip): data, manifest.json, LICENCE.txt, SHA256SUMS")
    def export(f: Annotated[Filters, Query()], con: Con, caller: Who,
               format: Annotated[str, Query(pattern="^(" + "|".join(FORMATS) + ")$")] = "csv") -> StreamingResponse:
        public = public_view(ctx, con, caller, f.campaign)
        ctx.charge(caller, ctx.settings.export_cost)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        return bundle_response(ctx, caller, selection_of(f, public), format, f"{f.campaign}-{stamp}-{format}.zip")
