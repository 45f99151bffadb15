"""Routes of the exhibition screens: the pages, the visitors' walks, and the data behind each view.

Pages
-----
``GET /screen``                 the default screen; URL parameters choose views, rotation, language…
``GET /screen/{view}``          one view: live, map, chart, who, trips, summary, walk
``GET /screen/{name}``          a named screen of ``screens.toml``
``GET /walk/{code}``            a visitor's one-page walk summary (printable; what the QR code opens)
``GET /walk/{code}/map.svg``    its trace on the base layer; ``profile.svg``, ``qr.svg`` likewise

Data (JSON, every answer a bounded model; ``campaign`` and ``day`` optional)
----------------------------------------------------------------------------
``/api/screen/track``, ``/means``, ``/who``, ``/trips``, ``/summary``, ``/walks``,
``/walks/{code}``, ``/replay``.

Positions pass through the home-zone filter before any of them leaves, and no
answer shows a record its participant opted out of (:mod:`dashboards.kiosk.privacy`);
cached answers are keyed on the opt-outs, so a new one shows at the next refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from analysis.indices import load_index
from dashboards import page
from dashboards.i18n import LABELS, Lang, pick_lang
from dashboards.kiosk import render, replay, store, views, walks
from dashboards.kiosk.config import (
    VIEWS,
    ScreenConfig,
    ScreenConfigError,
    Screens,
    index_version,
    screen_from_query,
)
from dashboards.kiosk.models import (
    MeansResponse,
    ReplayResponse,
    SummaryResponse,
    TrackResponse,
    TripsResponse,
    WalkDetail,
    WalksResponse,
    WhoResponse,
)
from dashboards.kiosk.optouts import OptOuts
from dashboards.kiosk.privacy import Privacy
from dashboards.kiosk.zones import ZoneFilter
from dashboards.reader import StoreReader

ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
router = APIRouter()


class Site:
    """What every screen route needs, kept on ``app.state.site`` by :func:`dashboards.app.create_app`."""

    def __init__(self, screens: Screens, campaign: str | None, clock: Callable[[], datetime], optouts: OptOuts) -> None:
        self.screens = screens
        self.campaign = campaign
        self.clock = clock
        self.privacy = Privacy(ZoneFilter(screens.zones, screens.zone_radius_m), optouts)
        for config in (screens.defaults, *screens.named.values()):
            self.campaign_of(config.campaign, where=f"screen {config.name!r}")

    def campaign_of(self, asked: str | None, where: str = "campaign") -> str | None:
        """The campaign to show: the server's, or the one asked when the server shows every campaign."""
        if self.campaign is not None and asked not in (None, self.campaign):
            raise ScreenConfigError(f"{where}: this server shows only campaign {self.campaign!r}, not {asked!r}")
        return asked if asked is not None else self.campaign


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def _reader(request: Request) -> StoreReader:
    reader: StoreReader = request.app.state.reader
    return reader


SiteDep = Annotated[Site, Depends(_site)]
ReaderDep = Annotated[StoreReader, Depends(_reader)]
CampaignQ = Annotated[str | None, Query(pattern=ID, description="campaign; the server's by default")]
DayQ = Annotated[date | None, Query(description="local day (Europe/Paris); today by default")]
CodeP = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{4}$", description="the walk's four-character code")]
LangQ = Annotated[str | None, Query(max_length=8)]


def campaign_or_422(site: Site, asked: str | None) -> str | None:
    """The campaign an API call shows; HTTP 422 when it asks for one the server does not show."""
    try:
        return site.campaign_of(asked)
    except ScreenConfigError as error:
        raise HTTPException(422, str(error)) from error


def _day(site: Site, day: date | None) -> tuple[datetime, date]:
    now = site.clock()
    return now, day if day is not None else store.local_day(now)


def screen_page(request: Request, config: ScreenConfig, base: str) -> HTMLResponse:
    """The page of one screen, with URL parameters applied; a readable 422 page when one is wrong."""
    site = _site(request)
    lang = pick_lang(request.query_params.get("lang") or config.lang)
    try:
        screen = screen_from_query(request.query_params, config)
        campaign = site.campaign_of(screen.campaign)
    except ScreenConfigError as error:
        return HTMLResponse(page.error_page(lang, str(error), base), status_code=422)
    return HTMLResponse(page.render(screen, screen.lang, base=base, campaign=campaign),
                        headers={"Cache-Control": "no-cache"})


@router.get("/screen", response_class=HTMLResponse, summary="The default screen (URL parameters apply)")
def default_screen(request: Request, site: SiteDep) -> HTMLResponse:
    return screen_page(request, site.screens.defaults, "")


@router.get("/screen/{name}", response_class=HTMLResponse, summary="One view, or a named screen")
def named_screen(request: Request, site: SiteDep, name: Annotated[str, Path(max_length=40)]) -> HTMLResponse:
    if name in site.screens.named:
        return screen_page(request, site.screens.named[name], "../")
    if name in VIEWS:
        return screen_page(request, replace(site.screens.defaults, views=(name,), rotate=0.0), "../")
    lang = pick_lang(request.query_params.get("lang"))
    message = (f"no view or screen named {name!r}; views: {', '.join(VIEWS)}; "
               f"screens: {', '.join(sorted(site.screens.named)) or 'none configured'}")
    return HTMLResponse(page.error_page(lang, message, "../"), status_code=404)


@router.get("/api/screen/track", response_model=TrackResponse, summary="Recent track of every kit, with PM2.5")
def api_track(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None,
              minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> TrackResponse:
    with reader.cursor() as con:
        return views.track(con, campaign_or_422(site, campaign), site.privacy, site.clock(), minutes)


@router.get("/api/screen/means", response_model=MeansResponse, summary="PM means over the index's averaging period")
def api_means(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None,
              index: Annotated[str, Query(max_length=16)] = "eaqi") -> MeansResponse:
    try:
        chosen = index_version(screen_from_query({"index": index}, site.screens.defaults).index)
    except ScreenConfigError as error:
        raise HTTPException(422, str(error)) from error
    with reader.cursor() as con:
        return views.means(con, campaign_or_422(site, campaign), chosen, site.clock())


@router.get("/api/screen/who", response_model=WhoResponse, summary="The day's mean against the WHO guidelines")
def api_who(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None, day: DayQ = None) -> WhoResponse:
    now, chosen = _day(site, day)
    with reader.cursor() as con:
        return views.who(con, campaign_or_422(site, campaign), chosen, now)


@router.get("/api/screen/trips", response_model=TripsResponse, summary="The day's trips, newest first")
def api_trips(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None, day: DayQ = None) -> TripsResponse:
    now, chosen = _day(site, day)
    wanted = campaign_or_422(site, campaign)
    with reader.cursor() as con:
        return views.cached(("trips", wanted, chosen, now.replace(second=0, microsecond=0) if day is None else None,
                             site.privacy.key()), lambda: views.trips(con, wanted, chosen, site.privacy, now), 20.0)


@router.get("/api/screen/summary", response_model=SummaryResponse, summary="The campaign in numbers")
def api_summary(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None) -> SummaryResponse:
    with reader.cursor() as con:
        return views.summary(con, campaign_or_422(site, campaign), site.privacy, site.clock(), site.screens.participants,
                             walks.count_walks)


def _walks(site: Site, reader: StoreReader, campaign: str | None, day: date | None) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    now, chosen = _day(site, day)
    with reader.cursor() as con:
        points, found = walks.day_walks(con, campaign_or_422(site, campaign), chosen, site.privacy, now)
    return points, found, chosen


@router.get("/api/screen/walks", response_model=WalksResponse, summary="The day's walks, newest first")
def api_walks(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None, day: DayQ = None) -> WalksResponse:
    _, found, chosen = _walks(site, reader, campaign, day)
    return walks.walks_response(found, chosen, site.clock())


def _one_walk(site: Site, reader: StoreReader, code: str, campaign: str | None, day: date | None
              ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, date]:
    points, found, chosen = _walks(site, reader, campaign, day)
    try:
        row = walks.find(found, code)
    except KeyError as error:
        raise HTTPException(404, str(error.args[0])) from error
    return row, walks.walk_points(points, row), found, chosen


def summary_url(request: Request, site: Site, code: str, lang: Lang, day: date) -> str:
    """Where the QR code points: ``public_url`` from screens.toml, else the address the screen used."""
    root = site.screens.public_url or str(request.base_url).rstrip("/")
    return f"{root}/walk/{code}?lang={lang}&day={day.isoformat()}"


@router.get("/api/screen/walks/{code}", response_model=WalkDetail, summary="One walk, its route and its rank")
def api_walk(request: Request, site: SiteDep, reader: ReaderDep, code: CodeP, campaign: CampaignQ = None,
             day: DayQ = None, lang: LangQ = None) -> WalkDetail:
    row, points, found, chosen = _one_walk(site, reader, code, campaign, day)
    position, of = walks.rank(found, row["code"])
    return WalkDetail(walk=walks.as_walk(row), route=views.route(points, walks.WALK_POINTS), rank=position, of=of,
                      day_mean_pm2_5=walks.day_mean(found),
                      summary_url=summary_url(request, site, row["code"], pick_lang(lang), chosen))


def _bands(site: Site) -> Any:
    return load_index(*index_version(site.screens.defaults.index)).bands("pm2_5")


def _svg(text: str) -> Response:
    return Response(text, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@router.get("/walk/{code}/map.svg", summary="A walk's trace on the base layer", response_class=Response)
def walk_map(site: SiteDep, reader: ReaderDep, code: CodeP, campaign: CampaignQ = None, day: DayQ = None) -> Response:
    _, points, _, _ = _one_walk(site, reader, code, campaign, day)
    pm = [None if pd.isna(v) else float(v) for v in points["pm2_5"]]
    return _svg(render.walk_map(points["latitude"].tolist(), points["longitude"].tolist(), pm, _bands(site)))


@router.get("/walk/{code}/profile.svg", summary="PM2.5 along a walk", response_class=Response)
def walk_profile(site: SiteDep, reader: ReaderDep, code: CodeP, campaign: CampaignQ = None, day: DayQ = None,
                 lang: LangQ = None) -> Response:
    return _svg(_profile(site, reader, code, campaign, day, pick_lang(lang)))


def _profile(site: Site, reader: StoreReader, code: str, campaign: str | None, day: date | None, lang: Lang) -> str:
    row, points, _, _ = _one_walk(site, reader, code, campaign, day)
    minutes = ((pd.to_datetime(points["time"], utc=True) - row["start"]).dt.total_seconds() / 60).tolist()
    pm = [None if pd.isna(v) else float(v) for v in points["pm2_5"]]
    return render.profile(minutes, pm, _bands(site), views.who_guidelines()["pm2_5"],
                          guide_label=LABELS[lang]["who_short"], minute_label=LABELS[lang]["minutes"])


@router.get("/walk/{code}/qr.svg", summary="QR code of a walk's one-page summary", response_class=Response)
def walk_qr(request: Request, site: SiteDep, reader: ReaderDep, code: CodeP, campaign: CampaignQ = None,
            day: DayQ = None, lang: LangQ = None) -> Response:
    row, _, _, chosen = _one_walk(site, reader, code, campaign, day)
    return _svg(render.qr_svg(summary_url(request, site, row["code"], pick_lang(lang), chosen)))


@router.get("/walk/{code}", response_class=HTMLResponse, summary="A visitor's one-page walk summary")
def walk_page(request: Request, site: SiteDep, reader: ReaderDep, code: CodeP, campaign: CampaignQ = None,
              day: DayQ = None, lang: LangQ = None) -> HTMLResponse:
    chosen_lang = pick_lang(lang)
    row, points, found, _ = _one_walk(site, reader, code, campaign, day)
    position, of = walks.rank(found, row["code"])
    pm = [None if pd.isna(v) else float(v) for v in points["pm2_5"]]
    return HTMLResponse(page.walk_page(
        chosen_lang, walks.as_walk(row), position, of, walks.day_mean(found), _bands(site),
        map_svg=render.walk_map(points["latitude"].tolist(), points["longitude"].tolist(), pm, _bands(site)),
        profile_svg=_profile(site, reader, code, campaign, day, chosen_lang),
        guideline=views.who_guidelines()["pm2_5"],
        index_title=page.index_config(site.screens.defaults.index)["title"][chosen_lang],
    ))


@router.get("/api/screen/replay", response_model=ReplayResponse, summary="A recording to replay when data are thin")
def api_replay(site: SiteDep, reader: ReaderDep, campaign: CampaignQ = None,
               q: Annotated[str, Query(max_length=200)] = "pm2_5,pm10") -> ReplayResponse:
    try:
        quantities = screen_from_query({"q": q}, site.screens.defaults).quantities
    except ScreenConfigError as error:
        raise HTTPException(422, str(error)) from error
    wanted = campaign_or_422(site, campaign)
    now = site.clock()
    with reader.cursor() as con:
        return views.cached(("replay", wanted, quantities, now.replace(minute=0, second=0, microsecond=0),
                             site.privacy.key()),
                            lambda: replay.replay(con, wanted, now, quantities), 600.0)
