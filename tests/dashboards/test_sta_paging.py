"""SensorThings Observations paging on a real uvicorn server: keyset next links, $skip kept, each value once."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from readings_table import create_readings, insert_readings

from dashboards.research import ResearchSettings, research_router
from ingest import registry as reg

START = pd.Timestamp("2026-06-01 10:00:00")  # naive UTC
OPTED = (START + pd.Timedelta(seconds=20), START + pd.Timedelta(seconds=35))  # a-1's trip kept off public outputs
QUANTITIES = ("pm2_5", "pm10", "co2", "temperature")


def _records(campaign: str, device: str, seconds: range, seed: int) -> pd.DataFrame:
    """A PM sensor (pm2_5, pm10) and a CO2 sensor (co2, temperature) both stamped on the whole second.

    Devices share time stamps, so the sort key's ties (same time, other device or sensor) are exercised.
    """
    rng = np.random.default_rng(seed)
    t = START + pd.to_timedelta(list(seconds), unit="s")
    n = len(t)
    pm = pd.DataFrame({"time": t, "sensor": "plantower-pms5003", "pm2_5": rng.integers(3, 40, n).astype(float),
                       "pm10": rng.integers(5, 60, n).astype(float)})
    co2 = pd.DataFrame({"time": t, "sensor": "winsen-mhz19", "co2": rng.integers(400, 900, n).astype(float),
                        "temperature": np.round(rng.normal(21, 1, n), 1)})
    frame = pd.concat([pm, co2], ignore_index=True).sort_values(["time", "sensor"], kind="stable")
    frame["campaign"], frame["device"], frame["boot"] = campaign, device, f"boot-{device}"
    frame["seq"] = np.arange(len(frame), dtype="int64") + 1000 * seconds.start
    return frame.reset_index(drop=True)


def _observations(frame: pd.DataFrame) -> set[str]:
    """``device:boot:seq:quantity`` of every value a public client may see in ``frame``."""
    hidden = (frame["device"] == "a-1") & (frame["time"] >= OPTED[0]) & (frame["time"] < OPTED[1])
    long = frame[~hidden].melt(id_vars=["device", "boot", "seq"], value_vars=list(QUANTITIES),
                               var_name="quantity").dropna(subset=["value"])
    return {f"{r.device}:{r.boot}:{r.seq}:{r.quantity}" for r in long.itertuples()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Two public campaigns, three devices, one minute; a-1's participant opted a trip out."""
    con = duckdb.connect(str(tmp_path / "qsec.duckdb"))
    create_readings(con)
    insert_readings(con, pd.concat([_records("alpha", "a-1", range(60), 1), _records("alpha", "a-2", range(60), 2),
                                    _records("beta", "b-1", range(60), 3)], ignore_index=True))
    reg.ensure_registry_schema(con)
    for campaign in ("alpha", "beta"):
        reg.create_campaign(con, campaign, title=campaign.title(), public=True)
    reg.register_kit(con, "alpha", "k1", {"a-1": ["plantower-pms5003", "winsen-mhz19"]})
    who = reg.add_participant(con, "alpha")
    reg.assign_kit(con, who, "k1", START - pd.Timedelta(hours=1))
    reg.add_opt_out(con, who, OPTED[0], OPTED[1], "trip")
    yield con
    con.close()


@pytest.fixture
def url(store: duckdb.DuckDBPyConnection, serve: Callable[[FastAPI], str]) -> str:
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(store.cursor, ResearchSettings(token_pepper=secrets.token_urlsafe(32))))
    return serve(app)


def walk(first: str, params: dict[str, object] | None = None,
         between: Callable[[int], None] | None = None) -> tuple[list[str], list[str]]:
    """Follow ``@iot.nextLink`` from ``first`` to the end: the ids in order, and every next link."""
    ids: list[str] = []
    links: list[str] = []
    page = httpx.get(first, params=params).raise_for_status().json()
    while True:
        ids += [o["@iot.id"] for o in page["value"]]
        if "@iot.nextLink" not in page:
            return ids, links
        links.append(page["@iot.nextLink"])
        if between is not None:
            between(len(links))
        page = httpx.get(links[-1]).raise_for_status().json()


def test_following_next_links_returns_every_public_observation_exactly_once_in_order(store, url):
    expected = _observations(store.execute("SELECT * FROM readings").df())
    ids, links = walk(f"{url}/sta/v1.1/Observations", {"$top": 13})
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert len(links) == -(-len(expected) // 13) - 1
    assert all("$skiptoken=" in link and "$skip=" not in link for link in links)
    whole = httpx.get(f"{url}/sta/v1.1/Observations", params={"$top": 1000}).json()["value"]
    assert [o["@iot.id"] for o in whole] == ids  # the same order as one page: (time, device, boot, seq, quantity)
    times = [o["phenomenonTime"] for o in whole]
    assert times == sorted(times)


def test_skip_still_counts_from_the_start_as_the_standard_says(url):
    whole = httpx.get(f"{url}/sta/v1.1/Observations", params={"$top": 1000, "$count": "true"}).json()
    page = httpx.get(f"{url}/sta/v1.1/Observations", params={"$top": 25, "$skip": 130, "$count": "true"}).json()
    assert [o["@iot.id"] for o in page["value"]] == [o["@iot.id"] for o in whole["value"][130:155]]
    assert page["@iot.count"] == whole["@iot.count"] == len(whole["value"])
    rest, _ = walk(page["@iot.nextLink"])
    assert rest == [o["@iot.id"] for o in whole["value"][155:]]


def test_records_stored_while_a_client_pages_are_neither_skipped_nor_sent_twice(store, url):
    late = _records("beta", "b-1", range(60, 75), 4)

    def store_more(pages: int) -> None:
        if pages == 3:
            insert_readings(store.cursor(), late)

    ids, _ = walk(f"{url}/sta/v1.1/Observations", {"$top": 50}, store_more)
    assert len(ids) == len(set(ids))
    assert set(ids) == _observations(store.execute("SELECT * FROM readings").df())


def test_a_datastream_pages_only_its_own_sensor_even_when_another_measures_the_same_quantity(store, url):
    store.execute("UPDATE readings SET temperature = 30.5 WHERE device = 'a-2' AND sensor = 'plantower-pms5003'")
    stream = "a-2:winsen-mhz19:temperature"
    ids, _ = walk(f"{url}/sta/v1.1/Datastreams('{stream}')/Observations", {"$top": 4})
    mine = store.execute("SELECT boot, seq FROM readings WHERE device = 'a-2' AND sensor = 'winsen-mhz19'").fetchall()
    assert sorted(ids) == sorted(f"a-2:{boot}:{seq}:temperature" for boot, seq in mine)
    one = httpx.get(f"{url}/sta/v1.1/Observations('{ids[-1]}')").json()
    assert one["Datastream@iot.navigationLink"].endswith(f"Datastreams('{stream}')")


def test_a_token_that_this_server_did_not_write_is_refused(url):
    for token in ("bm90LWpzb24", "WzEsMl0", "!!"):
        answer = httpx.get(f"{url}/sta/v1.1/Observations", params={"$skiptoken": token})
        assert answer.status_code in (400, 422), token
    token = httpx.get(f"{url}/sta/v1.1/Observations", params={"$top": 2}).json()["@iot.nextLink"].split("=")[-1]
    assert httpx.get(f"{url}/sta/v1.1/Observations", params={"$skiptoken": token}).status_code == 200
    things = httpx.get(f"{url}/sta/v1.1/Things", params={"$skiptoken": token})
    assert things.status_code == 400 and "Observations only" in things.json()["detail"]
