"""The researcher API's per-request machinery on a real uvicorn server: pooled cursors, caches, pages, ETags."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest
from campaign import START, campaign_store
from fastapi import FastAPI

from dashboards.research import ResearchSettings, research_router
from dashboards.research.auth import create_token
from ingest import registry as reg

PEPPER = secrets.token_urlsafe(32)


class CountingCursors:
    """``store.new_cursor`` that counts the cursors it makes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.made = con, 0

    def __call__(self) -> duckdb.DuckDBPyConnection:
        self.made += 1
        cur = self.con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Six minutes of three kits; kit-01 carried by a participant from two minutes in."""
    con = campaign_store(tmp_path_factory.mktemp("research-context") / "qsec.duckdb", hours=0.1, public=True)
    reg.register_kit(con, "versailles", "k1", {"kit-01": ["plantower-pms5003t", "nmea-gps"]})
    who = reg.add_participant(con, "versailles")
    reg.assign_kit(con, who, "k1", START + pd.Timedelta(minutes=2))
    yield con
    con.close()


@pytest.fixture(scope="module")
def admin(store: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(store.cursor(), PEPPER, name='a', role='admin')[1]}"}


def _serve(serve: Callable[[FastAPI], str], store: duckdb.DuckDBPyConnection) -> tuple[str, CountingCursors]:
    cursors = CountingCursors(store)
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(cursors, ResearchSettings(token_pepper=PEPPER, address_rate=1000,
                                                                 address_burst=1000)))
    return serve(app), cursors


def test_cursors_are_reused_across_requests_and_one_that_failed_is_replaced(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str]) -> None:
    url, cursors = _serve(serve, store)
    params = {"campaign": "versailles", "device": "kit-02", "quantity": "pm2_5", "limit": 5}
    for _ in range(10):
        assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 200
    made = cursors.made
    assert made <= 2  # the router's start-up cursor, then one reused by every sequential request
    bad = params | {"start": "2026-05-02T00:00:00Z", "end": "2026-05-01T00:00:00Z"}
    assert httpx.get(f"{url}/research/v1/readings", params=bad).status_code == 422
    assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 200
    assert cursors.made == made + 1


def test_a_campaign_made_private_through_the_api_is_private_at_once(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], admin: dict[str, str]) -> None:
    url, _ = _serve(serve, store)
    params = {"campaign": "versailles", "device": "kit-02", "limit": 1}
    assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 200  # cached as public
    body = {"campaign": "versailles", "public": False}
    try:
        assert httpx.post(f"{url}/research/v1/campaigns", json=body, headers=admin).status_code == 201
        assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 401
    finally:
        assert httpx.post(f"{url}/research/v1/campaigns", json=body | {"public": True},
                          headers=admin).status_code == 201
    assert httpx.get(f"{url}/research/v1/readings", params=params).status_code == 200


def test_a_page_names_the_participant_only_from_their_assignment_on(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str], admin: dict[str, str]) -> None:
    url, _ = _serve(serve, store)
    params = {"campaign": "versailles", "device": "kit-01", "quantity": "pm2_5", "limit": 1000}
    rows = httpx.get(f"{url}/research/v1/readings", params=params, headers=admin).json()["readings"]
    assigned = (START + pd.Timedelta(minutes=2)).isoformat()[:19]
    before = [r for r in rows if r["time"][:19] < assigned]
    after = [r for r in rows if r["time"][:19] >= assigned]
    assert before and after
    assert all(r["participant"] is None for r in before)
    assert len({r["participant"] for r in after}) == 1 and after[0]["participant"].startswith("p-")
    page = httpx.get(f"{url}/research/v1/readings", params=params | {"limit": 7}, headers=admin).json()
    assert page["readings"] == rows[:7] and page["next_cursor"]


def test_a_page_names_the_same_participants_as_the_export_query(
        tmp_path: Path, serve: Callable[[FastAPI], str]) -> None:
    """Assignments that end, follow one another and leave gaps: the page's lookup agrees with the export's join."""
    from analysis.export import Selection, plan

    con = campaign_store(tmp_path / "qsec.duckdb", hours=0.1)
    reg.register_kit(con, "versailles", "k1", {"kit-01": ["plantower-pms5003t"]})
    reg.register_kit(con, "versailles", "k2", {"kit-02": ["plantower-pms5003t"]})
    times = [t for (t,) in con.execute("SELECT DISTINCT time FROM readings WHERE device IN ('kit-01', 'kit-02') "
                                       "ORDER BY time").fetchall()]
    at = [pd.Timestamp(times[i], tz="UTC") for i in (60, 180, 240, 120, 150)]  # on records: the bounds are tested
    reg.assign_kit(con, reg.add_participant(con, "versailles"), "k1", at[0], at[1])
    reg.assign_kit(con, reg.add_participant(con, "versailles"), "k1", at[2])
    reg.assign_kit(con, reg.add_participant(con, "versailles"), "k2", at[3], at[4])
    token = create_token(con.cursor(), PEPPER, name="r", role="researcher")[1]
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(con.cursor, ResearchSettings(token_pepper=PEPPER)))
    url = serve(app)
    params = {"campaign": "versailles", "device": ["kit-01", "kit-02", "kit-03"], "limit": 1000}
    named: dict[tuple[str, str, int], str | None] = {}
    cursor = None
    while True:  # every page, through the cursors
        page = httpx.get(f"{url}/research/v1/readings", params=params | ({"cursor": cursor} if cursor else {}),
                         headers={"Authorization": f"Bearer {token}"}).json()
        named |= {(r["device"], r["boot"], r["seq"]): r["participant"] for r in page["readings"]}
        if not (cursor := page["next_cursor"]):
            break
    p = plan(con, Selection(campaign="versailles", devices=("kit-01", "kit-02", "kit-03")))
    expected = {(d, b, s): who for d, who, b, s in con.execute(
        f"SELECT device, participant, boot, seq FROM ({p.sql})", list(p.params)).fetchall()}
    assert len(named) == len(expected) > 0 and named == expected
    assert len({who for who in named.values() if who}) == 3 and None in named.values()
    con.close()


def test_without_a_change_feed_a_write_is_seen_at_once_and_etags_still_give_304(
        store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str]) -> None:
    url, _ = _serve(serve, store)
    params = {"campaign": "versailles", "device": "kit-03", "quantity": "pm2_5", "limit": 1000}
    readings = f"{url}/research/v1/readings"
    first = httpx.get(readings, params=params)
    etag = first.headers["etag"]
    assert httpx.get(readings, params=params, headers={"If-None-Match": f'W/"x", {etag}'}).status_code == 304
    store.execute("DELETE FROM readings WHERE device = 'kit-03' AND time < ?",
                  [(START + pd.Timedelta(minutes=1)).tz_localize(None).to_pydatetime()])
    second = httpx.get(readings, params=params, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.json()["count"] < first.json()["count"]


def test_the_participant_lookup_is_left_out_only_where_it_would_find_nobody(store: duckdb.DuckDBPyConnection) -> None:
    """Devices nobody was assigned: no ``ASOF`` join, and the very rows the join gives (participant NULL)."""
    from analysis.export import Selection, plan
    from analysis.export.selection import assigned_devices

    cur = store.cursor()
    assert assigned_devices(cur) == {"kit-01"}
    every = frozenset({"kit-01", "kit-02", "kit-03"})  # as if each had been assigned: the lookup always runs
    for devices, joined in ((("kit-02",), False), (("kit-02", "kit-03"), False), (("kit-01", "kit-02"), True),
                            ((), True)):
        for positions in (False, True):
            selection = Selection(campaign="versailles", devices=devices, positions=positions)
            skipped, lookup = plan(cur, selection), plan(cur, selection, assigned=every)
            assert ("asg" in skipped.sql) is joined and "asg" in lookup.sql
            assert skipped.columns == lookup.columns
            rows = cur.sql(skipped.sql, params=list(skipped.params)).to_arrow_table()
            assert rows.num_rows and rows.equals(cur.sql(lookup.sql, params=list(lookup.params)).to_arrow_table())
            if not joined:
                assert set(rows.column("participant").to_pylist()) == {None}
    cur.close()
