"""The dashboard's HTTP API against a real uvicorn server and a real DuckDB file."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb
import httpx
import pandas as pd
import pytest
from harness import wait_until
from readings_table import insert_readings
from sse_client import read_event

from dashboards.app import create_app
from dashboards.live import LiveHub

NOW = datetime(2026, 5, 17, 14, 30, 20, tzinfo=UTC)
PMS, GPS = "plantower-pms5003", "nmea-gps"


def fixed_clock() -> datetime:
    return NOW


def records(*rows: tuple[str, str, datetime, str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"campaign": c, "device": d, "time": t, "sensor": s, **values} for c, d, t, s, values in rows]
    )


@pytest.fixture
def base(db: duckdb.DuckDBPyConnection, hub: LiveHub, serve) -> str:
    """A server over a store holding two kits of campaign expo and one of campaign other."""
    insert_readings(
        db,
        records(
            ("expo", "kit-1", NOW - timedelta(seconds=9), PMS, {"pm2_5": 11.0, "pm10": 16.0}),
            ("expo", "kit-1", NOW - timedelta(seconds=4), PMS, {"pm2_5": 12.0, "pm10": 18.0}),
            ("expo", "kit-1", NOW - timedelta(seconds=3), GPS, {"latitude": 48.8566, "longitude": 2.3522}),
            ("expo", "kit-2", NOW - timedelta(seconds=2), PMS, {"pm2_5": 30.0}),
            ("other", "kit-9", NOW - timedelta(seconds=1), PMS, {"pm2_5": 99.0}),
        ),
    )
    return serve(create_app(lambda: db.cursor(), hub, campaign="expo", clock=fixed_clock))


def test_latest_returns_the_newest_inserted_values_with_units_and_utc_times(base):
    body = httpx.get(f"{base}/api/latest").raise_for_status().json()
    assert body["server_time"] == "2026-05-17T14:30:20Z"
    devices = {d["device"]: d for d in body["devices"]}
    assert set(devices) == {"kit-1", "kit-2"}  # kit-9 belongs to another campaign
    kit1 = devices["kit-1"]
    assert kit1["campaign"] == "expo"
    assert kit1["values"]["pm2_5"] == {"value": 12.0, "unit": "µg/m³", "time": "2026-05-17T14:30:16Z", "sensor": PMS}
    assert kit1["values"]["pm10"]["value"] == 18.0
    assert kit1["values"]["latitude"] == {"value": 48.8566, "unit": "°", "time": "2026-05-17T14:30:17Z", "sensor": GPS}
    assert set(devices["kit-2"]["values"]) == {"pm2_5"}


def test_latest_with_max_age_leaves_out_older_values(base):
    body = httpx.get(f"{base}/api/latest", params={"max_age_s": 3.5}).json()
    assert {d["device"]: sorted(d["values"]) for d in body["devices"]} == {
        "kit-1": ["latitude", "longitude"],
        "kit-2": ["pm2_5"],
    }


def test_latest_sees_records_committed_after_the_server_started(base, db):
    insert_readings(db, records(("expo", "kit-3", NOW, PMS, {"pm2_5": 5.0})))
    body = httpx.get(f"{base}/api/latest").json()
    assert "kit-3" in {d["device"] for d in body["devices"]}


def test_minute_means_gives_whole_minutes_labelled_by_their_start(db, hub, serve):
    start = NOW.replace(second=0) - timedelta(minutes=3)  # 14:27:00
    times = [start + timedelta(seconds=s) for s in (0, 30, 60, 61, 150)]
    values = [10.0, 20.0, 6.0, 8.0, 50.0]
    insert_readings(db, records(*[("expo", "kit-1", t, PMS, {"pm2_5": v}) for t, v in zip(times, values, strict=True)]))
    insert_readings(db, records(("expo", "kit-1", NOW, PMS, {"pm2_5": 999.0})))  # current minute: not whole yet
    base = serve(create_app(lambda: db.cursor(), hub, clock=fixed_clock))
    body = httpx.get(f"{base}/api/minute-means", params={"minutes": 5, "q": ["pm2_5", "co2"]}).raise_for_status().json()
    assert (body["since"], body["until"]) == ("2026-05-17T14:25:00Z", "2026-05-17T14:30:00Z")
    [series] = body["series"]
    assert (series["device"], series["quantity"], series["unit"]) == ("kit-1", "pm2_5", "µg/m³")
    assert series["expected"] == 60.0
    assert series["points"] == [
        {"minute": "2026-05-17T14:27:00Z", "mean": 15.0, "count": 2, "coverage": 2 / 60},
        {"minute": "2026-05-17T14:28:00Z", "mean": 7.0, "count": 2, "coverage": 2 / 60},
        {"minute": "2026-05-17T14:29:00Z", "mean": 50.0, "count": 1, "coverage": 1 / 60},
    ]


def test_minute_means_refuses_unknown_quantities_and_out_of_range_windows(base):
    assert httpx.get(f"{base}/api/minute-means", params={"q": "pm3"}).status_code == 422
    assert httpx.get(f"{base}/api/minute-means", params={"q": "DROP TABLE"}).status_code == 422
    assert httpx.get(f"{base}/api/minute-means", params={"minutes": 0}).status_code == 422
    assert httpx.get(f"{base}/api/minute-means", params={"minutes": 100_000}).status_code == 422


def test_live_stream_delivers_a_published_event_within_a_second(base, hub):
    event = {"campaign": "expo", "device": "kit-1", "sensor": PMS, "t": 1779028220000, "values": {"pm2_5": 42.0}}
    with httpx.stream("GET", f"{base}/api/live", timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"  # sent once the client is subscribed
        wait_until(lambda: hub.subscribers == 1, timeout=2, what="the subscriber")
        sent = time.monotonic()
        threading.Thread(target=hub.publish, args=(event,)).start()  # as ingest does, from another thread
        received = read_event(lines, "reading")
        delay = time.monotonic() - sent
    assert received == event
    assert delay < 1.0


def test_a_client_that_leaves_the_stream_leaves_the_hub(base, hub):
    with httpx.stream("GET", f"{base}/api/live", timeout=5) as response:
        lines = response.iter_lines()  # keep it: a dropped line iterator closes the response
        next(lines)
        assert hub.subscribers == 1
    wait_until(lambda: hub.subscribers == 0, timeout=3, what="the subscription to end")


def test_live_stream_forwards_only_the_dashboards_campaign(base, hub):
    with httpx.stream("GET", f"{base}/api/live", timeout=5) as response:
        lines = response.iter_lines()
        next(lines)
        wait_until(lambda: hub.subscribers == 1, timeout=2, what="the subscriber")
        hub.publish({"campaign": "other", "device": "kit-9", "sensor": PMS, "t": 1, "values": {"pm2_5": 1.0}})
        hub.publish({"campaign": "expo", "device": "kit-2", "sensor": PMS, "t": 2, "values": {"pm2_5": 2.0}})
        assert read_event(lines, "reading")["device"] == "kit-2"


def test_live_stream_sends_a_comment_heartbeat_and_server_time_when_idle(db, hub, serve):
    base = serve(create_app(lambda: db.cursor(), hub, clock=fixed_clock, heartbeat_s=0.2))
    with httpx.stream("GET", f"{base}/api/live", timeout=5) as response:
        lines = response.iter_lines()
        seen = [next(lines) for _ in range(8)]
    assert seen.count(": heartbeat") >= 2
    pings = [json.loads(line[len("data: "):]) for line in seen if line.startswith("data: ")]
    assert all(isinstance(p["server_time"], int) for p in pings)


def test_health_reports_the_store_and_live_counters(base, hub):
    hub.publish({"campaign": "expo", "device": "kit-1", "sensor": PMS, "t": 1, "values": {}})
    body = httpx.get(f"{base}/api/health").raise_for_status().json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["last_received"] == "2026-05-17T14:30:19Z"
    assert (body["published"], body["dropped"], body["subscribers"]) == (1, 0, 0)


def test_api_answers_503_until_the_store_has_a_readings_table(tmp_path, hub, serve):
    empty = duckdb.connect(str(tmp_path / "empty.duckdb"))
    base = serve(create_app(lambda: empty.cursor(), hub))
    response = httpx.get(f"{base}/api/latest")
    assert response.status_code == 503 and "no readings table" in response.json()["detail"]
    assert httpx.get(f"{base}/api/health").json()["status"] == "degraded"
    empty.close()


def test_quantities_lists_every_quantity_with_unit_and_both_names(base):
    body = httpx.get(f"{base}/api/quantities").json()
    by_name = {q["name"]: q for q in body["quantities"]}
    assert by_name["pm2_5"]["unit"] == "µg/m³"
    assert by_name["pm2_5"]["long_name_fr"] == "Particules fines PM2,5"
    assert by_name["co2"]["decimals"] == 0


def test_page_is_french_by_default_and_english_on_request(base):
    fr = httpx.get(f"{base}/").text
    en = httpx.get(f"{base}/", params={"lang": "en"}).text
    odd = httpx.get(f"{base}/", params={"lang": "xx"}).text
    assert '<html lang="fr">' in fr and "Capteurs citoyens à bas coût — valeurs indicatives" in fr
    assert '<html lang="en">' in en and "Low-cost citizen sensors — indicative values" in en
    assert '<html lang="fr">' in odd


def test_page_and_its_assets_reference_nothing_outside_the_server(base):
    page = httpx.get(f"{base}/").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(not a.startswith(("http:", "https:", "//")) for a in assets)
    for asset in assets:
        response = httpx.get(f"{base}/{asset}")
        assert response.status_code == 200, asset
        text = response.text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "@import" not in text, asset
