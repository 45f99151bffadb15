"""The exhibition screens: a FastAPI application over the store and the live hub.

Routes
------
``GET /``                  the default screen (French; ``?lang=en`` for English; see :mod:`dashboards.screens`)
``GET /screen…``, ``/walk…``, ``/api/screen/…``  the screens' pages and data (:mod:`dashboards.screens`)
``GET /api/latest``        newest value of every quantity per device
``GET /api/minute-means``  1-minute means of the last ``minutes`` whole minutes
``GET /api/live``          Server-Sent Events: one ``reading`` per committed record
``GET /api/quantities``    units and FR/EN names of every quantity
``GET /api/health``        store reachable, ingest connected to the broker, live-hub counters
``/static/…``              scripts, styles, fonts, base map, bundled recording (nothing external)

Positions inside declared home zones are removed from every answer and
every live event, and records a participant opted out of from all of them
(:class:`dashboards.kiosk.privacy.Privacy`).

The store is read through ``con_factory()``, called inside each request's
worker thread; the cursor is closed when the request ends.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from analysis.live import latest, minute_means
from dashboards import page, screens, sse
from dashboards.kiosk.config import ScreenConfig, Screens, load_screens
from dashboards.kiosk.optouts import OptOuts
from dashboards.live import LiveHub
from dashboards.models import (
    DeviceLatest,
    HealthResponse,
    LatestResponse,
    LatestValue,
    MinuteMeansResponse,
    MinutePoint,
    MinuteSeries,
    QuantitiesResponse,
    QuantityInfo,
)
from dashboards.reader import ConFactory, StoreReader
from qsec import quantities as qty

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.hub
    return hub


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


Reader = screens.ReaderDep
Hub = Annotated[LiveHub, Depends(_hub)]
Now = Annotated[Clock, Depends(_clock)]
QuantityList = Annotated[
    list[Annotated[str, Query(pattern=r"^[a-z0-9_]{1,40}$")]] | None,
    Query(alias="q", max_length=16, description="quantities; default: those the page shows"),
]


def create_app(
    con_factory: ConFactory,
    hub: LiveHub,
    *,
    campaign: str | None = None,
    title: str = "qsec",
    clock: Clock = _utc_now,
    heartbeat_s: float = sse.HEARTBEAT_S,
    screens_config: Screens | str | Path | None = None,
) -> FastAPI:
    """Build the live dashboard application.

    Parameters
    ----------
    con_factory : callable returning duckdb.DuckDBPyConnection
        Returns a fresh cursor on the store usable in the calling thread,
        e.g. ``lambda: db.cursor()``.  Table ``readings`` is read, and the
        registry's opt-outs (``opt_outs``, ``assignments``, ``kit_devices``)
        when the store has them.
    hub : LiveHub
        Where ingest publishes each committed record.
    campaign : str, optional
        Show only this campaign (API answers and live events); all by default.
    title : str, optional
        Name shown in the page title and header.
    clock : callable returning an aware datetime, optional
        Server clock (UTC); injected by tests.
    heartbeat_s : float, optional
        Longest silence on the live stream before a heartbeat [s].
    screens_config : Screens, or path of a ``screens.toml``, optional
        Named screens, defaults and home zones; by default the file named by
        the environment variable ``QSEC_SCREENS``, else built-in defaults.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    dashboards.kiosk.config.ScreenConfigError
        If the screens configuration is invalid (the message names the
        setting and the allowed values).

    Notes
    -----
    ``/api/health`` reports ``connected`` from ``app.state.ingest.connected``
    when the caller attaches its ingest worker there (``qsec up`` does).
    """
    if not math.isfinite(heartbeat_s) or heartbeat_s <= 0:
        raise ValueError(f"heartbeat_s must be a finite number of seconds > 0, not {heartbeat_s!r}")
    if screens_config is None:
        screens_config = os.environ.get("QSEC_SCREENS") or Screens(defaults=ScreenConfig(title=title))
    site_screens = screens_config if isinstance(screens_config, Screens) else load_screens(screens_config)
    app = FastAPI(title=f"{title} — exhibition screens", version="1")
    app.state.reader = StoreReader(con_factory)
    app.state.hub = hub
    app.state.clock = clock
    app.state.site = site = screens.Site(site_screens, campaign, clock, OptOuts(con_factory))
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    app.include_router(screens.router)

    @app.get("/", response_class=HTMLResponse, summary="The default screen")
    def home(request: Request) -> HTMLResponse:
        return screens.screen_page(request, site.screens.defaults, "")

    @app.get("/api/latest", response_model=LatestResponse, summary="Newest value of every quantity per device")
    def api_latest(
        reader: Reader,
        now: Now,
        max_age_s: Annotated[float | None, Query(gt=0, le=10 * 365 * 86400)] = None,
        campaign: screens.CampaignQ = None,
    ) -> LatestResponse:
        server_time = now()
        with reader.cursor() as con:
            frame = latest(con, campaign=screens.campaign_or_422(site, campaign), max_age_s=max_age_s,
                           now=server_time)
        return LatestResponse(server_time=server_time, devices=_devices(site.privacy.latest(frame)))

    @app.get(
        "/api/minute-means",
        response_model=MinuteMeansResponse,
        summary="1-minute means of the last whole minutes",
    )
    def api_minute_means(
        reader: Reader,
        now: Now,
        minutes: Annotated[int, Query(ge=1, le=24 * 60)] = page.CHART_MINUTES,
        quantities: QuantityList = None,
        campaign: screens.CampaignQ = None,
    ) -> MinuteMeansResponse:
        names = list(quantities) if quantities else list(page.MEANS)
        unknown = [name for name in names if name not in qty.QUANTITIES]
        if unknown:
            raise HTTPException(422, f"unknown quantities {unknown}; known: {', '.join(qty.QUANTITIES)}")
        server_time = now()
        until = pd.Timestamp(server_time).floor("min").to_pydatetime()
        since = until - timedelta(minutes=minutes)
        with reader.cursor() as con:
            frame = minute_means(con, since=since, until=until, campaign=screens.campaign_or_422(site, campaign),
                                 quantities=names)
        return MinuteMeansResponse(server_time=server_time, since=since, until=until,
                                   series=_series(site.privacy.minutes(frame)))

    @app.get("/api/live", summary="Server-Sent Events of committed records", response_class=StreamingResponse)
    async def api_live(hub: Hub, campaign: screens.CampaignQ = None) -> StreamingResponse:
        return StreamingResponse(
            sse.stream(hub, campaign=screens.campaign_or_422(site, campaign), heartbeat_s=heartbeat_s,
                       transform=site.privacy.event),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/quantities", response_model=QuantitiesResponse, summary="Units and names of the quantities")
    def api_quantities() -> QuantitiesResponse:
        return QuantitiesResponse(
            quantities=[
                QuantityInfo(
                    name=q.name,
                    unit=q.unit,
                    kind=q.kind.value,
                    long_name=q.long_name,
                    long_name_fr=q.long_name_fr,
                    decimals=q.decimals,
                )
                for q in qty.QUANTITIES.values()
            ]
        )

    @app.get("/api/health", response_model=HealthResponse, summary="Store and live-hub state")
    def api_health(reader: Reader, hub: Hub, now: Now) -> HealthResponse:
        last: datetime | None = None
        store_ok = True
        try:
            with reader.cursor() as con:
                row = con.execute("SELECT max(received) FROM readings").fetchone()
        except HTTPException:
            store_ok = False
        else:
            if row is not None and row[0] is not None:
                last = row[0].replace(tzinfo=UTC)
        ingest = getattr(app.state, "ingest", None)
        return HealthResponse(
            status="ok" if store_ok else "degraded",
            connected=None if ingest is None else bool(ingest.connected),
            server_time=now(),
            store="ok" if store_ok else "unavailable",
            last_received=last,
            subscribers=hub.subscribers,
            published=hub.published,
            dropped=hub.dropped,
        )

    return app


def _devices(frame: pd.DataFrame) -> list[DeviceLatest]:
    """Group the long frame of :func:`analysis.live.latest` into one entry per device."""
    devices: dict[tuple[str, str], dict[str, LatestValue]] = {}
    for row in frame.to_dict("records"):
        values = devices.setdefault((str(row["campaign"]), str(row["device"])), {})
        quantity = str(row["quantity"])
        values[quantity] = LatestValue(
            value=row["value"], unit=qty.get(quantity).unit, time=row["time"], sensor=row["sensor"]
        )
    return [
        DeviceLatest(device=device, campaign=campaign_, values=values)
        for (campaign_, device), values in devices.items()
    ]


def _series(frame: pd.DataFrame) -> list[MinuteSeries]:
    """Group the long frame of :func:`analysis.live.minute_means` into one series per device and quantity."""
    series: list[MinuteSeries] = []
    for (campaign_, device, quantity), group in frame.groupby(
        ["campaign", "device", "quantity"], sort=False
    ):
        points = group[["minute", "mean", "count", "coverage"]].to_dict("records")
        series.append(
            MinuteSeries(
                device=str(device),
                campaign=str(campaign_),
                quantity=str(quantity),
                unit=qty.get(str(quantity)).unit,
                expected=float(group["expected"].iloc[0]),
                points=[MinutePoint(**{str(k): v for k, v in point.items()}) for point in points],
            )
        )
    return series
