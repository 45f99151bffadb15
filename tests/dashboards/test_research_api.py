"""The researcher API on a real uvicorn server: access, tokens, rate limits, paging, privacy, SensorThings."""

from __future__ import annotations

import io
import secrets
import zipfile
from datetime import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi import FastAPI

import pandas as pd
from campaign import START, campaign_store
from harness import wait_until

from dashboards.research import ResearchSettings, research_router
from dashboards.research.auth import create_token, revoke_token
from ingest import registry as reg

PEPPER = secrets.token_urlsafe(32)


class Clock:
    """A monotonic clock the test moves by hand (rate-limit refills)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Half an hour of three kits; kit-01 carried by a participant with an opt-out and a home zone."""
    con = campaign_store(tmp_path_factory.mktemp("research") / "qsec.duckdb", hours=0.5, title="Versailles",
                         public=True)
    reg.create_campaign(con, "secret", title="Private")
    reg.register_kit(con, "versailles", "k1", {"kit-01": ["plantower-pms5003t", "nmea-gps"]})
    who = reg.add_participant(con, "versailles")
    reg.assign_kit(con, who, "k1", START)
    reg.add_opt_out(con, who, START + pd.Timedelta(minutes=5), START + pd.Timedelta(minutes=10), "trip")
    yield con
    con.close()


def _app(store: duckdb.DuckDBPyConnection, **options: object) -> tuple[FastAPI, Clock]:
    clock = Clock()
    app = FastAPI(docs_url=None, redoc_url=None)
    settings = ResearchSettings(token_pepper=PEPPER, **options)  # type: ignore[arg-type]
    app.include_router(research_router(store.cursor, settings, clock=clock))
    return app, clock


@pytest.fixture(scope="module")
def tokens(store: duckdb.DuckDBPyConnection) -> dict[str, str]:
    cur = store.cursor()
    return {role: create_token(cur, PEPPER, name=role, role=role, campaign=campaign)[1]
            for role, campaign in (("admin", None), ("researcher", "versailles"))}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_public_readings_carry_no_position_nor_participant_and_skip_opted_out_ranges(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], tokens: dict[str, str]) -> None:
    url = serve(_app(store)[0])
    public = httpx.get(f"{url}/research/v1/readings", params={"campaign": "versailles", "device": "kit-01",
                                                              "limit": 1000}).json()["readings"]
    assert public and all(r["latitude"] is None and r["participant"] is None for r in public)
    assert not any("latitude" in r["values"] for r in public)
    opted = reg.list_opt_outs(store.cursor(), reg.list_participants(store.cursor(), "versailles")[0]["participant"])[0]
    stamps = [r["time"] for r in public]
    assert not any(opted["starts"].isoformat() <= t[:19] < opted["ends"].isoformat() for t in stamps)
    assert httpx.get(f"{url}/research/v1/readings", params={"campaign": "versailles", "positions": True}).status_code == 422
    mine = httpx.get(f"{url}/research/v1/readings", headers=auth(tokens["researcher"]),
                     params={"campaign": "versailles", "device": "kit-01", "positions": True, "limit": 1000}).json()
    assert any(r["participant"] and r["latitude"] is not None for r in mine["readings"])


def test_private_campaigns_need_a_token_of_their_own(store: duckdb.DuckDBPyConnection,
                                                    serve: Callable[[FastAPI], str], tokens: dict[str, str]) -> None:
    url = serve(_app(store)[0])
    params = {"campaign": "secret"}
    assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 401
    assert httpx.get(f"{url}/research/v1/readings", params=params, headers=auth(tokens["researcher"])).status_code == 404
    assert httpx.get(f"{url}/research/v1/readings", params=params, headers=auth(tokens["admin"])).status_code == 200
    assert httpx.get(f"{url}/research/v1/readings", params=params, headers=auth("qsec_wrong")).status_code == 401
    assert httpx.post(f"{url}/research/v1/campaigns", json={"campaign": "new-one"},
                      headers=auth(tokens["researcher"])).status_code == 403


def test_a_revoked_token_is_refused_and_tokens_are_stored_only_hashed(store: duckdb.DuckDBPyConnection,
                                                                      serve: Callable[[FastAPI], str]) -> None:
    url = serve(_app(store)[0])
    ident, token = create_token(store.cursor(), PEPPER, name="short-lived", role="researcher")
    assert httpx.get(f"{url}/research/v1/campaigns/secret", headers=auth(token)).status_code == 200
    stored = store.cursor().execute("SELECT hash FROM api_tokens WHERE id = ?", [ident]).fetchall()[0][0]
    assert token not in stored and len(stored) == 64
    assert revoke_token(store.cursor(), ident)
    wait_until(lambda: httpx.get(f"{url}/research/v1/campaigns/secret", headers=auth(token)).status_code == 401,
               timeout=15, interval=0.5, what="the revoked token to be refused (cached at most 5 s)")


def test_rate_limits_answer_429_with_retry_after_per_address_and_per_token(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], tokens: dict[str, str]) -> None:
    app, clock = _app(store, address_rate=1.0, address_burst=3, token_rate=2.0, token_burst=5)
    url = serve(app)
    codes = [httpx.get(f"{url}/research/v1/flags").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = httpx.get(f"{url}/research/v1/flags")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # a token has its own bucket, untouched by the anonymous requests from the same address
    assert [httpx.get(f"{url}/research/v1/flags", headers=auth(tokens["admin"])).status_code
            for _ in range(6)] == [200] * 5 + [429]
    clock.now += 2.0  # the address bucket refills at 1 token/s
    assert httpx.get(f"{url}/research/v1/flags").status_code == 200


def test_cursor_pages_walk_every_record_once_in_order(store: duckdb.DuckDBPyConnection,
                                                     serve: Callable[[FastAPI], str], tokens: dict[str, str]) -> None:
    url = serve(_app(store)[0])
    params = {"campaign": "versailles", "device": "kit-02", "quantity": "pm2_5", "limit": 700}
    seen: list[tuple[datetime, int]] = []
    cursor = None
    while True:
        page = httpx.get(f"{url}/research/v1/readings", headers=auth(tokens["researcher"]),
                         params=params | ({"cursor": cursor} if cursor else {})).json()
        seen += [(datetime.fromisoformat(r["time"]), r["seq"]) for r in page["readings"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    (expected,) = store.cursor().execute("SELECT count(*) FROM readings WHERE device = 'kit-02' "
                                         "AND pm2_5 IS NOT NULL").fetchall()[0]
    assert len(seen) == len(set(seen)) == expected
    assert seen == sorted(seen)
    assert httpx.get(f"{url}/research/v1/readings", params=params | {"cursor": "bm90LWEtY3Vyc29y"}).status_code == 400


def test_public_grid_masks_home_zones_and_holds_back_cells_of_too_few_participants(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], tokens: dict[str, str]) -> None:
    url = serve(_app(store)[0])
    public = httpx.get(f"{url}/research/v1/grid", params={"campaign": "versailles"}).json()
    assert public["features"] == [] and public["suppressed_cells"] > 0  # three kits walking apart: 1 per cell
    raw = httpx.get(f"{url}/research/v1/grid", params={"campaign": "versailles", "raw": True},
                    headers=auth(tokens["researcher"])).json()
    assert raw["features"] and raw["suppressed_cells"] == 0
    assert all(len(f["geometry"]["coordinates"][0]) == 5 for f in raw["features"])


def test_an_export_through_the_api_is_a_bundle_and_is_logged(store: duckdb.DuckDBPyConnection,
                                                             serve: Callable[[FastAPI], str]) -> None:
    url = serve(_app(store)[0])
    answer = httpx.get(f"{url}/research/v1/exports", params={"campaign": "versailles", "format": "csv",
                                                             "device": "kit-03"}, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sorted(bundle.namelist()) == ["LICENCE.txt", "SHA256SUMS", "data.csv", "manifest.json"]
    header = bundle.read("data.csv").decode().splitlines()[0]
    assert "latitude" not in header and "participant" not in header
    logged = store.cursor().execute("SELECT route, format, rows FROM export_log WHERE route = 'api'").fetchall()
    assert logged and logged[-1][:2] == ("api", "csv") and logged[-1][2] > 0
    assert httpx.get(f"{url}/research/v1/exports", params={"campaign": "versailles",
                                                           "format": "geojson"}).status_code == 422


def test_sensorthings_pages_with_top_skip_count_and_next_link(store: duckdb.DuckDBPyConnection,
                                                              serve: Callable[[FastAPI], str]) -> None:
    url = serve(_app(store)[0])
    root = httpx.get(f"{url}/sta/v1.1").json()
    assert {v["name"] for v in root["value"]} >= {"Things", "Locations", "Datastreams", "Observations",
                                                  "ObservedProperties", "Sensors"}
    things = httpx.get(f"{url}/sta/v1.1/Things", params={"$count": "true"}).json()
    assert things["@iot.count"] == 3 and "@iot.nextLink" not in things
    streams = httpx.get(f"{url}/sta/v1.1/Things('kit-02')/Datastreams").json()["value"]
    pm = next(s for s in streams if s["@iot.id"].endswith(":pm2_5"))
    first = httpx.get(pm["Observations@iot.navigationLink"], params={"$top": 3, "$count": "true"}).json()
    assert len(first["value"]) == 3 and first["@iot.count"] > 3
    second = httpx.get(first["@iot.nextLink"]).json()
    assert second["value"][0]["phenomenonTime"] >= first["value"][-1]["phenomenonTime"]
    one = httpx.get(first["value"][0]["@iot.selfLink"]).json()
    assert one["result"] == first["value"][0]["result"]
    assert not any(p["@iot.id"] in ("latitude", "longitude")
                   for p in httpx.get(f"{url}/sta/v1.1/ObservedProperties").json()["value"])
    assert httpx.get(f"{url}/sta/v1.1/Things", params={"$filter": "name eq 'x'"}).status_code == 400


def test_the_docs_page_loads_only_local_assets(store: duckdb.DuckDBPyConnection,
                                               serve: Callable[[FastAPI], str]) -> None:
    url = serve(_app(store)[0])
    page = httpx.get(f"{url}/research/docs").text
    assert "cdn" not in page.lower() and "http" not in page.replace("http-equiv", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert httpx.get(f"{url}/research/docs/assets/{asset}").status_code == 200


def test_a_participant_deletion_removes_their_readings_and_is_logged_without_data(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], tokens: dict[str, str],
        tmp_path: Path) -> None:
    url = serve(_app(store)[0])
    cur = store.cursor()
    reg.register_kit(cur, "versailles", "k3", {"kit-03": ["plantower-pms5003"]})
    who = reg.add_participant(cur, "versailles")
    reg.assign_kit(cur, who, "k3", START)
    _, mine = create_token(cur, PEPPER, name="them", role="participant", participant=who)
    (before,) = cur.execute("SELECT count(*) FROM readings WHERE device = 'kit-03'").fetchall()[0]
    export = httpx.get(f"{url}/research/v1/participants/{who}/export", headers=auth(mine), timeout=30)
    assert export.status_code == 200 and zipfile.ZipFile(io.BytesIO(export.content)).read("data.csv")
    done = httpx.delete(f"{url}/research/v1/participants/{who}", headers=auth(mine)).json()
    assert done["readings"] == before > 0
    assert cur.execute("SELECT count(*) FROM readings WHERE device = 'kit-03'").fetchall()[0][0] == 0
    log = httpx.get(f"{url}/research/v1/campaigns/versailles/deletions", headers=auth(tokens["admin"])).json()
    assert [d["readings"] for d in log["deletions"] if d["participant"] == who] == [before]
    assert httpx.delete(f"{url}/research/v1/participants/{who}", headers=auth(tokens["admin"])).status_code == 404
