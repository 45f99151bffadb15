"""The screens' pages and data against a real uvicorn server and a real DuckDB file."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from harness import wait_until
from kiosk_data import CAMPAIGN, DESK, GPS, PMS, positions_in
from readings_table import insert_readings

from analysis.trips import haversine_m
from dashboards.app import create_app
from dashboards.kiosk.config import VIEWS, screens_from_mapping
from dashboards.kiosk.models import ReplayResponse
from dashboards.kiosk.replay import bundled
from dashboards.live import LiveHub

NOW = datetime(2026, 5, 17, 14, 30, 20, tzinfo=UTC)
SCREENS = {"screens": {"hall-a": {"views": ["live", "map", "who"], "rotate": 20}}}


@pytest.fixture
def base(db: duckdb.DuckDBPyConnection, hub: LiveHub, serve, day: pd.DataFrame) -> str:
    insert_readings(db, day)
    return serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, screens_config=screens_from_mapping(SCREENS)))


def test_every_view_and_named_screen_is_a_page_whose_assets_are_all_local(base):
    pages = [f"/screen/{view}" for view in VIEWS] + ["/screen/hall-a", "/screen?views=who,trips&rotate=10", "/"]
    assets: set[str] = set()
    for path in pages:
        response = httpx.get(f"{base}{path}")
        assert response.status_code == 200, path
        prefix = "../" if path.count("/") == 2 else ""
        found = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert found and all(a.startswith(prefix + "static/") for a in found), path
        assets |= {a[len(prefix):] for a in found}
        config = json.loads(re.search(r'id="qsec-config" type="application/json">(.*?)</script>', response.text)[1])
        assets.add(config["basemap"])
    css = httpx.get(f"{base}/{next(a for a in assets if a.endswith('.css') or '.css?' in a)}").text
    assets |= {f"static/{url}" for url in re.findall(r'url\("([^"]+)"\)', css)}
    assert any("fonts/DejaVuSans-Bold.woff" in a for a in assets) and any("yvelines.geojson" in a for a in assets)
    for asset in assets:
        response = httpx.get(f"{base}/{asset}")
        assert response.status_code == 200, asset
        if response.headers["content-type"].startswith(("text/", "application/javascript", "application/json")):
            text = response.text.replace("http://www.w3.org/2000/svg", "")
            assert "http://" not in text and "https://" not in text and "@import" not in text, asset


def test_a_named_screen_carries_its_views_and_rotation(base):
    page = httpx.get(f"{base}/screen/hall-a").text
    config = json.loads(re.search(r'id="qsec-config" type="application/json">(.*?)</script>', page)[1])
    assert (config["views"], config["rotate"], config["campaign"]) == (["live", "map", "who"], 20.0, CAMPAIGN)
    assert config["index"]["bands"]["pm2_5"][0] == {"key": "good", "upper": 10.0, "label_fr": "Bon", "label_en": "Good",
                                                    "colour": "#50f0e6", "ink": "#000000"}


def test_wrong_screen_urls_say_what_exists(base):
    unknown = httpx.get(f"{base}/screen/hall-b")
    assert unknown.status_code == 404
    assert "views: live, map, chart, who, trips, summary, walk; screens: hall-a" in unknown.text
    wrong = httpx.get(f"{base}/screen/live", params={"index": "aqi", "lang": "en"})
    assert wrong.status_code == 422 and "unknown index [&#x27;aqi&#x27;]; allowed: eaqi, atmo" in wrong.text
    other = httpx.get(f"{base}/api/screen/who", params={"campaign": "autre"})
    assert other.status_code == 422 and "shows only campaign" in other.json()["detail"]


def test_the_track_gives_each_kits_recent_positions_with_pm(base):
    body = httpx.get(f"{base}/api/screen/track", params={"minutes": 30}).raise_for_status().json()
    kits = {k["device"]: k["route"] for k in body["kits"]}
    assert set(kits) == {"kit-pret-1", "kit-pret-2", "kit-balade"}
    walk = kits["kit-balade"]
    assert 300 <= len(walk["t"]) <= 361  # 30 min in 5-s buckets
    assert walk["t"] == sorted(walk["t"]) and body["masked"] == 0
    assert sum(v is not None for v in walk["pm2_5"]) > 0.9 * len(walk["t"])


def test_trips_finds_walks_and_the_bike_ride_with_their_speeds(base):
    trips = httpx.get(f"{base}/api/screen/trips").raise_for_status().json()["trips"]
    modes = {(t["device"], t["mode"]) for t in trips}
    assert ("kit-pret-2", "bike") in modes and ("kit-pret-1", "walk") in modes
    ride = next(t for t in trips if t["mode"] == "bike")
    assert 3.0 <= ride["speed_median_ms"] <= 6.0 and ride["distance_m"] > 2000
    assert all(t["pm2_5"] > 0 for t in trips) and all(len(t["route"]["t"]) > 5 for t in trips)
    assert [t["start"] for t in trips] == sorted((t["start"] for t in trips), reverse=True)


def test_the_summary_counts_kits_hours_distance_walks(base):
    body = httpx.get(f"{base}/api/screen/summary").raise_for_status().json()
    assert body["kits"] == 3 and body["days"] in (1, 2)
    assert 3.0 < body["hours"] < 4.0  # two kits for 100 min and one for 30 min
    assert body["distance_km"] > 5 and body["walks"] >= 4 and body["participants"] == body["walks"]


def test_walks_have_stable_codes_a_rank_and_a_summary_behind_a_qr_code(base):
    listing = httpx.get(f"{base}/api/screen/walks").raise_for_status().json()
    assert listing == httpx.get(f"{base}/api/screen/walks").json() | {"server_time": listing["server_time"]}
    codes = [w["code"] for w in listing["walks"]]
    assert len(codes) >= 4 and len(set(codes)) == len(codes)
    code = codes[-1]
    detail = httpx.get(f"{base}/api/screen/walks/{code.lower()}", params={"lang": "en"}).raise_for_status().json()
    assert detail["walk"]["code"] == code and 1 <= detail["rank"] <= detail["of"] == len(codes)
    assert detail["summary_url"] == f"{base}/walk/{code}?lang=en&day={listing['day']}"
    page = httpx.get(detail["summary_url"])
    assert page.status_code == 200 and "My air-quality walk" in page.text and "<svg" in page.text
    for part in ("map.svg", "profile.svg", "qr.svg"):
        svg = httpx.get(f"{base}/walk/{code}/{part}")
        assert svg.headers["content-type"].startswith("image/svg+xml") and svg.text.lstrip().startswith("<svg")
    assert httpx.get(f"{base}/api/screen/walks/ZZZZ").status_code == 404


def test_who_compares_the_mean_of_hourly_means_with_the_guideline(db, hub, serve):
    hours = [datetime(2026, 5, 17, 10, tzinfo=UTC), datetime(2026, 5, 17, 11, tzinfo=UTC)]
    rows = [("kit-a", h + timedelta(seconds=s), v) for h, v in zip(hours, (10.0, 30.0), strict=True) for s in (0, 60)]
    rows += [("kit-a", hours[1] + timedelta(seconds=s), 30.0) for s in range(120, 600, 60)]  # more records, same hour
    rows += [("kit-b", hours[0], 6.0)]
    insert_readings(db, pd.DataFrame([{"campaign": CAMPAIGN, "device": d, "time": t, "sensor": PMS, "pm2_5": v}
                                      for d, t, v in rows]))
    insert_readings(db, pd.DataFrame([{"campaign": CAMPAIGN, "device": "kit-a", "time": NOW - timedelta(days=1),
                                       "sensor": PMS, "pm2_5": 500.0, "boot": "old"}]))  # yesterday: not counted
    base = serve(create_app(lambda: db.cursor(), hub, clock=lambda: NOW))
    body = httpx.get(f"{base}/api/screen/who").raise_for_status().json()
    assert body["day"] == "2026-05-17" and body["guideline"] == {"pm2_5": 15.0, "pm10": 45.0}
    kits = {k["device"]: k for k in body["kits"]}
    assert kits["kit-a"]["pm2_5"] == 20.0 and kits["kit-a"]["hours"] == 2 and kits["kit-b"]["pm2_5"] == 6.0
    assert body["overall"]["pm2_5"] == 13.0 and body["verdict"] == {"pm2_5": "below", "pm10": None}
    assert httpx.get(f"{base}/api/screen/who", params={"day": "2026-05-16"}).json()["verdict"]["pm2_5"] == "above"


def test_replay_plays_the_busiest_stretch_of_the_last_day_or_the_bundled_recording(db, hub, serve, day):
    base = serve(create_app(lambda: db.cursor(), hub))
    empty = ReplayResponse.model_validate(httpx.get(f"{base}/api/screen/replay").raise_for_status().json())
    assert empty == bundled() and empty.source == "bundled" and len(empty.kits) == 2
    insert_readings(db, day.assign(time=day["time"] - pd.Timedelta(days=2)))
    recorded = httpx.get(f"{base}/api/screen/replay", params={"q": "pm2_5,co2"}).raise_for_status().json()
    assert recorded["source"] == "store" and recorded["steps"] == 600 and recorded["step_s"] == 2.0
    assert {k["device"] for k in recorded["kits"]} == {"kit-pret-1", "kit-pret-2", "kit-balade"}  # all three busy
    assert set(recorded["kits"][0]["values"]) == {"pm2_5", "co2", "latitude", "longitude"}


def test_health_says_whether_ingest_is_connected_only_when_ingest_runs_here(base):
    assert httpx.get(f"{base}/api/health").json()["connected"] is None


def test_no_position_inside_a_home_zone_leaves_the_server(db, hub, serve, day):
    zone = {"latitude": DESK[0], "longitude": DESK[1], "radius_m": 250.0}
    insert_readings(db, day)
    config = screens_from_mapping({"privacy": {"zones": [zone]}})
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, screens_config=config))

    answers = [httpx.get(f"{base}/api/screen/{path}").raise_for_status().json() for path in ("track", "trips")]
    walks = httpx.get(f"{base}/api/screen/walks").json()["walks"]
    answers += [httpx.get(f"{base}/api/screen/walks/{w['code']}").json() for w in walks]
    points = [p for answer in answers for p in positions_in(answer)]
    assert len(points) > 500
    lat, lon = np.array(points).T
    assert haversine_m(lat, lon, *DESK).min() > zone["radius_m"]
    assert httpx.get(f"{base}/api/screen/track").json()["masked"] > 0

    latest = {d["device"]: d["values"] for d in httpx.get(f"{base}/api/latest").json()["devices"]}
    assert "latitude" not in latest["kit-pret-1"]  # resting at the desk: its position is withheld
    assert "latitude" in latest["kit-balade"] and "pm2_5" in latest["kit-pret-1"]

    inside = {"campaign": CAMPAIGN, "device": "kit-pret-1", "sensor": GPS, "t": 1,
              "values": {"latitude": DESK[0] + 0.0005, "longitude": DESK[1], "speed": 1.2}}
    outside = {**inside, "t": 2, "values": {"latitude": DESK[0] + 0.01, "longitude": DESK[1]}}
    with httpx.stream("GET", f"{base}/api/live", timeout=5) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: hub.subscribers == 1, timeout=5, what="the subscriber")
        threading.Thread(target=lambda: (hub.publish(inside), hub.publish(outside))).start()
        events = []
        for line in lines:
            if line.startswith("data: ") and '"t":' in line:
                events.append(json.loads(line[len("data: "):]))
                if len(events) == 2:
                    break
    assert events[0]["values"] == {}  # position, and the speed that goes with it, withheld
    assert events[1]["values"] == outside["values"]
