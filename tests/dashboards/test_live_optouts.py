"""Participants' opt-outs on the exhibition screens: a real store, a real uvicorn server, the live feed.

``kit-balade``'s participant keeps their current trip (the last 20 minutes) off public outputs;
``kit-pret-2``'s participant keeps their whole session off; ``kit-pret-1`` is public.  No public
answer, page or live event may carry an opted-out record; a researcher with a token still sees them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import httpx
import pandas as pd
import pytest
from harness import wait_until
from kiosk_data import CAMPAIGN, PMS
from readings_table import insert_readings
from sse_client import read_event

from dashboards.app import create_app
from dashboards.kiosk.optouts import TTL_S
from dashboards.live import LiveHub
from dashboards.research import ResearchSettings, research_router
from dashboards.research.auth import create_token
from ingest import registry as reg
from qsec.contract import Record
from qsec.up import live_event_forwarder

PEPPER = secrets.token_urlsafe(32)
Shown = tuple[str, datetime | None, timedelta | None]  # device, time and width of what an answer shows
SCREENS = ("track?minutes=120", "means", "who", "trips", "walks", "summary", "replay")


class Setup:
    """The store with its registry, the server, and the opted-out ranges [aware UTC]."""

    def __init__(self, db: duckdb.DuckDBPyConnection, day: pd.DataFrame, end: datetime) -> None:
        self.db, self.end = db, end
        insert_readings(db, day)
        reg.ensure_registry_schema(db)
        reg.create_campaign(db, CAMPAIGN, title="Fête de la science", public=True)
        self.people: dict[str, str] = {}
        for kit, device in (("k-balade", "kit-balade"), ("k-pret-1", "kit-pret-1"), ("k-pret-2", "kit-pret-2")):
            reg.register_kit(db, CAMPAIGN, kit, {device: [PMS, "nmea-gps", "winsen-mhz19"]})
            self.people[device] = reg.add_participant(db, CAMPAIGN)
        session = (end - timedelta(hours=3), end + timedelta(hours=1))
        reg.assign_kit(db, self.people["kit-balade"], "k-balade", end - timedelta(hours=2))
        reg.assign_kit(db, self.people["kit-pret-1"], "k-pret-1", session[0])
        reg.assign_kit(db, self.people["kit-pret-2"], "k-pret-2", *session)
        trip = minute(end - timedelta(minutes=20))  # whole minutes: no screen bucket (2, 5, 10 s) straddles them
        self.hidden = {"kit-balade": [(trip, end + timedelta(hours=1))],
                       "kit-pret-2": [session]}
        reg.add_opt_out(db, self.people["kit-balade"], *self.hidden["kit-balade"][0], "trip")
        reg.add_opt_out(db, self.people["kit-pret-2"], *session, "range")

    def opt_out(self, device: str, starts: datetime, ends: datetime) -> None:
        reg.add_opt_out(self.db.cursor(), self.people[device], starts, ends, "trip")
        self.hidden.setdefault(device, []).append((starts, ends))

    def is_hidden(self, device: str, when: datetime | None, width: timedelta | None = timedelta(0)) -> bool:
        """Whether ``[when, when + width)`` meets an opted-out range of ``device`` (None: an untimed aggregate)."""
        if when is None or width is None:
            return False
        width = max(width, timedelta(microseconds=1))
        return any(when < e and when + width > s for s, e in self.hidden.get(device, []))

    def opted_out_records(self) -> int:
        return sum(self.db.execute("SELECT count(*) FROM readings WHERE device = ? AND time >= ? AND time < ?",
                                   [device, s.replace(tzinfo=None), e.replace(tzinfo=None)]).fetchone()[0]
                   for device, spans in self.hidden.items() for s, e in spans)


def minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


@pytest.fixture
def setup(db: duckdb.DuckDBPyConnection, day: pd.DataFrame) -> Setup:
    return Setup(db, day, pd.Timestamp(day["time"].max()).to_pydatetime() + timedelta(seconds=1))


@pytest.fixture
def base(setup: Setup, hub: LiveHub, serve) -> str:
    app = create_app(lambda: setup.db.cursor(), hub, campaign=CAMPAIGN)
    app.include_router(research_router(setup.db.cursor, ResearchSettings(token_pepper=PEPPER)))
    return serve(app)


def ms(value: Any) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def listed(answer: dict[str, Any], key: str) -> list[Any]:
    """``answer[key]`` when it is a list of items (the summary's ``kits`` and ``walks`` are counts)."""
    value = answer.get(key)
    return value if isinstance(value, list) else []


def shown(base: str) -> dict[str, list[Shown]]:
    """Every (device, time, width) a public screen answer carries, by route."""
    out: dict[str, list[Shown]] = {}
    latest = httpx.get(f"{base}/api/latest").raise_for_status().json()
    out["latest"] = [(d["device"], iso(v["time"]), timedelta(0)) for d in latest["devices"]
                     for v in d["values"].values()]
    minutes = httpx.get(f"{base}/api/minute-means", params={"minutes": 180, "q": ["pm2_5", "latitude"]}).json()
    out["minute-means"] = [(s["device"], iso(p["minute"]), timedelta(minutes=1))
                           for s in minutes["series"] for p in s["points"]]
    for name in SCREENS:
        answer = httpx.get(f"{base}/api/screen/{name}").raise_for_status().json()
        found: list[Shown] = []
        for kit in listed(answer, "kits"):
            if "route" in kit:
                found += [(kit["device"], ms(t), timedelta(0)) for t in kit["route"]["t"]]
            elif name == "replay":
                step, start = timedelta(seconds=answer["step_s"]), iso(answer["start"])
                found += [(kit["device"], start + i * step, step) for values in kit["values"].values()
                          for i, v in enumerate(values) if v is not None]
            else:
                found.append((kit["device"], None, None))  # a kit's mean over the period: shown or not
        for item in listed(answer, "trips") + listed(answer, "walks"):
            found += [(item["device"], iso(item["start"]), iso(item["end"]) - iso(item["start"]))]
            found += [(item["device"], ms(t), timedelta(0)) for t in item.get("route", {}).get("t", [])]
        out[name.split("?")[0]] = found
    return out


def test_no_public_screen_answer_carries_an_opted_out_record(setup: Setup, base: str) -> None:
    answers = shown(base)
    for route, items in answers.items():
        devices = {device for device, _, _ in items}
        assert "kit-pret-2" not in devices, route
        leaks = [(d, t) for d, t, w in items if setup.is_hidden(d, t, w)]
        assert leaks == [], route
    for route in ("latest", "minute-means", "track", "means", "who", "trips", "walks"):
        assert "kit-pret-1" in {device for device, _, _ in answers[route]}, route
    assert {d for d, _, _ in answers["track"]} == {"kit-pret-1", "kit-balade"}  # kit-balade's older 10 minutes
    summary = httpx.get(f"{base}/api/screen/summary").json()
    total = setup.db.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert (summary["kits"], summary["records"]) == (2, total - setup.opted_out_records())


def test_the_walk_pages_of_an_opted_out_session_do_not_exist(setup: Setup, base: str) -> None:
    walks = httpx.get(f"{base}/api/screen/walks").json()["walks"]
    assert "kit-pret-1" in {w["device"] for w in walks} and "kit-pret-2" not in {w["device"] for w in walks}
    page = httpx.get(f"{base}/walk/{walks[0]['code']}")
    assert page.status_code == 200
    researcher = create_token(setup.db.cursor(), PEPPER, name="r", role="researcher", campaign=CAMPAIGN)[1]
    private = httpx.get(f"{base}/research/v1/readings", headers={"Authorization": f"Bearer {researcher}"},
                        params={"campaign": CAMPAIGN, "device": "kit-pret-2", "positions": True, "limit": 50})
    assert private.status_code == 200 and private.json()["count"] == 50  # the researcher still sees the session
    assert all(r["participant"] == setup.people["kit-pret-2"] for r in private.json()["readings"])
    public = httpx.get(f"{base}/research/v1/readings", params={"campaign": CAMPAIGN, "device": "kit-pret-2"}).json()
    assert public["count"] == 0


def _forward(hub: LiveHub, device: str, when: datetime, seq: int, pm2_5: float) -> None:
    forward = live_event_forwarder(hub)
    forward([(CAMPAIGN, device, "boot-live", Record(seq, int(when.timestamp() * 1000), PMS, {"pm2_5": pm2_5}))])


def test_the_live_feed_never_sends_an_opted_out_record(setup: Setup, base: str, hub: LiveHub) -> None:
    now = setup.end
    with httpx.stream("GET", f"{base}/api/live", timeout=10) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: hub.subscribers == 1, timeout=3, what="the subscriber")
        for seq, value in enumerate((21.0, 22.0)):
            _forward(hub, "kit-balade", now, seq, 99.0)  # in the trip kept off public screens
            _forward(hub, "kit-pret-2", now - timedelta(minutes=30), seq, 98.0)  # in the session kept off
            _forward(hub, "kit-pret-1", now, seq, value)
            event = read_event(lines, "reading")
            assert (event["device"], event["values"]) == ("kit-pret-1", {"pm2_5": value})
        _forward(hub, "kit-balade", now - timedelta(minutes=25), 9, 13.0)  # before the trip: public
        assert read_event(lines, "reading")["device"] == "kit-balade"


def test_an_opt_out_recorded_while_the_screens_run_shows_at_the_next_refresh(setup: Setup, base: str,
                                                                              hub: LiveHub) -> None:
    before = shown(base)
    assert any(d == "kit-pret-1" for d, _, _ in before["trips"])
    first = min(t for d, t, _ in before["trips"] if d == "kit-pret-1")
    setup.opt_out("kit-pret-1", minute(first - timedelta(minutes=15)), setup.end + timedelta(hours=1))
    asked = time.monotonic()

    def clean() -> bool:
        return not any(d == "kit-pret-1" for items in shown(base).values() for d, _, _ in items)

    wait_until(clean, timeout=TTL_S + 15, what="kit-pret-1's opted-out data to leave every screen")
    assert time.monotonic() - asked < TTL_S + 15  # well within the 20 s and 600 s answer caches
    with httpx.stream("GET", f"{base}/api/live", timeout=10) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: hub.subscribers == 1, timeout=3, what="the subscriber")
        _forward(hub, "kit-pret-1", setup.end, 1, 50.0)
        _forward(hub, "kit-balade", setup.end - timedelta(minutes=25), 2, 14.0)
        assert read_event(lines, "reading")["device"] == "kit-balade"

