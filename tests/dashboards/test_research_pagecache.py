"""The researcher API's page cache: exact with a real ingest worker, ETags and 304, a bounded LRU.

A served router with the store's change feed (``versions``) answers a page
it has already answered without touching the store, and the next request
after a commit (once ingest has called its listeners) gets the new records.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from fastapi import FastAPI
from harness import wait_until
from paho.mqtt.enums import CallbackAPIVersion

from dashboards.research import DataVersions, ResearchSettings, research_router
from dashboards.research.auth import create_token
from dashboards.research.models import AggregatePage, ReadingsPage
from dashboards.research.pagecache import DAY_MS, PageCache, etag_of, matches
from ingest import registry as reg
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract

PEPPER = secrets.token_urlsafe(32)
READINGS = "/research/v1/readings"
AGGREGATE = "/research/v1/readings/aggregate"


class CountingStatements:
    """``store.new_cursor`` whose cursors count the statements they run (a cached page runs none)."""

    def __init__(self, new_cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.new_cursor, self.statements = new_cursor, 0

    def __call__(self) -> Any:
        return _Counted(self.new_cursor(), self)


class _Counted:
    def __init__(self, cur: duckdb.DuckDBPyConnection, counter: CountingStatements) -> None:
        self._cur, self._counter = cur, counter

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._counter.statements += 1
        return self._cur.execute(*args, **kwargs)

    def sql(self, *args: Any, **kwargs: Any) -> Any:
        self._counter.statements += 1
        return self._cur.sql(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def _record(t: int) -> contract.Record:
    return contract.Record(0, t, "plantower-pms5003", {"pm2_5": 5.0})


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def _batch(device: str, seqs: range, t0: int) -> bytes:
    records = tuple(contract.Record(s, t0 + s * 1000, "plantower-pms5003", {"pm2_5": 5.0 + s}) for s in seqs)
    return contract.encode_batch(contract.Batch(device, "boot-a", records))


@pytest.fixture
def live(tmp_path: Path, broker: tuple[str, int], unique: str, serve: Callable[[FastAPI], str]) -> Iterator[
        dict[str, Any]]:
    """A store fed by a real ingest worker, and the researcher API over it wired as ``qsec up`` wires it."""
    store = Store(tmp_path / "qsec.duckdb")
    campaign = f"c{unique}"
    reg.ensure_registry_schema(store.cursor())
    reg.create_campaign(store.cursor(), campaign, public=True)
    token = create_token(store.cursor(), PEPPER, name="r", role="researcher")[1]
    admin = create_token(store.cursor(), PEPPER, name="a", role="admin")[1]
    worker = IngestWorker(store, IngestSettings(host=broker[0], port=broker[1], client_id=f"cache-{unique}",
                                                share_group=None, campaign_filter=campaign, batch_ms=50))
    versions = DataVersions()
    heard: list[int] = []  # after versions.listener: once it grows, the pages of the commit are invalidated
    worker.listeners.insert(0, versions.listener)
    worker.listeners.append(lambda committed: heard.append(len(committed)))
    cursors = CountingStatements(store.new_cursor)
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(cursors, ResearchSettings(token_pepper=PEPPER), versions=versions))
    url = serve(app)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(*broker)
    publisher.loop_start()
    worker.start()
    try:
        wait_until(lambda: worker.connected, timeout=10, what="ingest to connect")
        time.sleep(0.2)  # the worker's subscription reaches the broker (as tests/ingest/test_worker.py)

        def publish(device: str, seqs: range, first_ms: int | None = None) -> None:
            """Records ``seqs`` of ``device`` 1 s apart: seq s at ``t0 + s`` s, or the first at ``first_ms`` [ms]."""
            before = sum(heard)
            payload = _batch(device, seqs, t0 if first_ms is None else first_ms - seqs.start * 1000)
            publisher.publish(contract.topic(campaign, device), payload, qos=1).wait_for_publish(5)
            wait_until(lambda: sum(heard) == before + len(seqs), timeout=10, what="the commit's listeners")

        t0 = int(time.time() * 1000) - 60_000
        yield {"url": url, "campaign": campaign, "publish": publish, "cursors": cursors,
               "auth": {"Authorization": f"Bearer {token}"}, "admin": {"Authorization": f"Bearer {admin}"}}
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        worker.stop()
        store.close()


def test_a_page_is_answered_from_memory_until_a_commit_touches_its_device(live: dict[str, Any]) -> None:
    url, publish, cursors, auth = live["url"], live["publish"], live["cursors"], live["auth"]
    params = {"campaign": live["campaign"], "device": "kit-01", "quantity": "pm2_5", "limit": 1000}
    publish("kit-01", range(0, 10))
    first = httpx.get(url + READINGS, params=params, headers=auth)
    assert first.status_code == 200 and first.json()["count"] == 10
    ReadingsPage.model_validate_json(first.content)  # the bytes written without a model still follow it
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "private, no-cache"

    statements = cursors.statements
    again = httpx.get(url + READINGS, params=params | {"quantity": ["pm2_5", "pm2_5"]}, headers=auth)
    assert again.content == first.content and again.headers["etag"] == etag
    unchanged = httpx.get(url + READINGS, params=params, headers=auth | {"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    publish("kit-02", range(0, 5))  # another device: kit-01's page stays valid
    assert httpx.get(url + READINGS, params=params, headers=auth).content == first.content
    assert cursors.statements == statements, "a cached page read the store"

    publish("kit-01", range(10, 15))  # the very next request sees the new records
    fresh = httpx.get(url + READINGS, params=params, headers=auth | {"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json()["count"] == 15
    assert [r["seq"] for r in fresh.json()["readings"]] == list(range(15))
    assert fresh.headers["etag"] != etag
    assert cursors.statements > statements


def test_an_aggregate_is_answered_from_memory_until_a_commit_touches_its_device(live: dict[str, Any]) -> None:
    """Windowed statistics are cached like pages: same versions, same ETags, fresh on the next request."""
    url, publish, cursors, auth = live["url"], live["publish"], live["cursors"], live["auth"]
    params = {"campaign": live["campaign"], "device": "kit-01", "quantity": "pm2_5", "window": "1D",
              "stat": ["mean", "max"]}
    publish("kit-01", range(0, 10))  # pm2_5 = 5 + seq
    first = httpx.get(url + AGGREGATE, params=params, headers=auth)
    assert first.status_code == 200
    AggregatePage.model_validate_json(first.content)
    rows = [r for r in first.json()["rows"] if r["count"]]  # one day, or two just after midnight UTC
    assert sum(r["count"] for r in rows) == 10 and max(r["values"]["max"] for r in rows) == 14.0
    assert sum(r["values"]["mean"] * r["count"] for r in rows) == pytest.approx(95.0)
    etag = first.headers["etag"]

    statements = cursors.statements
    assert httpx.get(url + AGGREGATE, params=params, headers=auth).content == first.content
    assert httpx.get(url + AGGREGATE, params=params, headers=auth | {"If-None-Match": etag}).status_code == 304
    publish("kit-02", range(0, 5))  # another device: kit-01's aggregate stays valid
    assert httpx.get(url + AGGREGATE, params=params, headers=auth).content == first.content
    assert cursors.statements == statements, "a cached aggregate read the store"
    assert httpx.get(url + AGGREGATE, params=params | {"stat": "min"}, headers=auth).json() != first.json()

    publish("kit-01", range(10, 20))  # the very next request sees the new records
    fresh = httpx.get(url + AGGREGATE, params=params, headers=auth | {"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert sum(r["count"] for r in fresh.json()["rows"]) == 20
    assert max(r["values"]["max"] for r in fresh.json()["rows"] if r["count"]) == 24.0


def test_a_past_days_page_stays_cached_while_today_is_committed_and_a_late_record_of_it_is_seen_at_once(
        live: dict[str, Any]) -> None:
    """A live campaign commits today's records every few hundred ms; yesterday's page is not read again for them."""
    url, publish, cursors, auth = live["url"], live["publish"], live["cursors"], live["auth"]
    today = int(time.time() * 1000) // DAY_MS * DAY_MS  # 00:00 UTC today [ms]
    yesterday = today - DAY_MS
    params = {"campaign": live["campaign"], "device": "kit-01", "quantity": "pm2_5", "limit": 1000,
              "start": _iso(yesterday), "end": _iso(today)}
    publish("kit-01", range(0, 10), yesterday + 3_600_000)
    first = httpx.get(url + READINGS, params=params, headers=auth)
    assert first.status_code == 200 and first.json()["count"] == 10

    statements = cursors.statements
    now = max(today, int(time.time() * 1000) - 60_000)
    for seqs in (range(10, 15), range(15, 20), range(20, 25)):  # three commits of today's records, same device
        publish("kit-01", seqs, now + seqs.start * 1000)
        assert httpx.get(url + READINGS, params=params, headers=auth).content == first.content
    assert cursors.statements == statements, "yesterday's cached page was read again for today's records"
    since_today = {k: v for k, v in params.items() if k != "end"} | {"start": _iso(today)}
    assert httpx.get(url + READINGS, params=since_today, headers=auth).json()["count"] == 15

    publish("kit-01", range(25, 28), yesterday + 7_200_000)  # a late upload of yesterday (store and forward)
    late = httpx.get(url + READINGS, params=params, headers=auth | {"If-None-Match": first.headers["etag"]})
    assert late.status_code == 200 and late.json()["count"] == 13
    assert [r["seq"] for r in late.json()["readings"]] == [*range(0, 10), *range(25, 28)]


def test_a_page_of_a_device_nobody_carried_names_its_participant_once_assigned_through_the_api(
        live: dict[str, Any]) -> None:
    """The cached "devices ever assigned" (which lets a page skip the participant lookup) follows the registry."""
    url, publish, admin = live["url"], live["publish"], live["admin"]
    publish("kit-01", range(0, 10))
    params = {"campaign": live["campaign"], "device": "kit-01", "limit": 1000}
    assert {r["participant"] for r in httpx.get(url + READINGS, params=params, headers=admin).json()["readings"]} \
        == {None}
    base = f"{url}/research/v1"
    assert httpx.post(f"{base}/campaigns/{live['campaign']}/kits", headers=admin,
                      json={"kit": "k1", "devices": {"kit-01": ["plantower-pms5003"]}}).status_code == 201
    who = httpx.post(f"{base}/campaigns/{live['campaign']}/participants", headers=admin).json()["participant"]
    starts = pd.Timestamp(time.time() - 3600, unit="s", tz="UTC")
    assert httpx.post(f"{base}/participants/{who}/assignments", headers=admin,
                      json={"kit": "k1", "starts": starts.isoformat()}).status_code == 201
    after = httpx.get(url + READINGS, params=params, headers=admin).json()["readings"]
    assert len(after) == 10 and {r["participant"] for r in after} == {who}


def test_a_write_through_the_api_invalidates_every_cached_page(live: dict[str, Any]) -> None:
    """An opt-out (a registry change, not a commit of records) leaves its range out of the next public page."""
    url, publish, admin = live["url"], live["publish"], live["admin"]
    publish("kit-01", range(0, 20))
    params = {"campaign": live["campaign"], "device": "kit-01", "limit": 1000}
    public = httpx.get(url + READINGS, params=params).json()["readings"]
    assert len(public) == 20
    base = f"{url}/research/v1"
    assert httpx.post(f"{base}/campaigns/{live['campaign']}/kits", headers=admin,
                      json={"kit": "k1", "devices": {"kit-01": ["plantower-pms5003"]}}).status_code == 201
    who = httpx.post(f"{base}/campaigns/{live['campaign']}/participants", headers=admin).json()["participant"]
    starts = pd.Timestamp(public[0]["time"]) - pd.Timedelta(hours=1)
    assert httpx.post(f"{base}/participants/{who}/assignments", headers=admin,
                      json={"kit": "k1", "starts": starts.isoformat()}).status_code == 201
    hidden = {"starts": public[5]["time"], "ends": public[10]["time"]}
    assert httpx.post(f"{base}/participants/{who}/opt-outs", headers=admin, json=hidden).status_code == 201
    after = httpx.get(url + READINGS, params=params).json()["readings"]
    assert [r["seq"] for r in after] == [*range(0, 5), *range(10, 20)]


# ---------------------------------------------------------------- the pieces


def test_the_cache_keeps_within_its_byte_budget_and_evicts_the_least_recently_used() -> None:
    cache = PageCache(budget=3 * (1000 + 300))
    for key in "abc":
        cache.put(key, key.encode() * 1000, etag_of(key.encode()))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", b"d" * 1000, '"d"')
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("d") is not None
    assert cache.used <= cache.budget and len(cache) == 3
    cache.put("huge", b"x" * cache.budget, '"x"')  # larger than the whole budget: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 3
    assert PageCache(budget=0).get("a") is None


def test_versions_change_only_for_the_devices_a_commit_touched() -> None:
    versions = DataVersions()
    one, both, every = versions.snapshot(("kit-01",)), versions.snapshot(("kit-01", "kit-02")), versions.snapshot(())
    versions.listener([("c", "kit-02", "b", _record(int(time.time() * 1000)))])
    assert versions.snapshot(("kit-01",)) == one
    assert versions.snapshot(("kit-01", "kit-02")) != both and versions.snapshot(()) != every
    versions.listener([])  # a commit of repeats only changes nothing
    assert versions.snapshot(("kit-01", "kit-02")) == versions.snapshot(("kit-01", "kit-02"))
    versions.bump_all()
    assert versions.snapshot(("kit-01",)) != one


def test_versions_by_day_change_only_for_the_days_a_commit_touched() -> None:
    versions = DataVersions()
    day = 20_574  # 2026-05-01 UTC
    kit, both = ("kit-01",), ("kit-01", "kit-02")

    def now() -> dict[str, tuple[int, ...]]:
        return {"yesterday": versions.snapshot(kit, (day, day)), "today": versions.snapshot(kit, (day + 1, day + 1)),
                "since yesterday": versions.snapshot(kit, (day, None)),
                "until yesterday": versions.snapshot(kit, (None, day)), "all time": versions.snapshot(kit),
                "yesterday, both": versions.snapshot(both, (day, day)),
                "yesterday, all devices": versions.snapshot((), (day, day)),
                "today, all devices": versions.snapshot((), (day + 1, day + 1)),
                "all devices, all time": versions.snapshot(())}

    def changed(before: dict[str, tuple[int, ...]]) -> set[str]:
        return {name for name, snap in now().items() if snap != before[name]}

    start = now()
    versions.listener([("c", "kit-01", "b", _record((day + 1) * DAY_MS + 5))] * 3)  # today, one commit
    assert changed(start) == {"today", "since yesterday", "all time", "today, all devices", "all devices, all time"}
    start = now()
    versions.listener([("c", "kit-01", "b", _record(day * DAY_MS + 10))])  # a late record of yesterday
    assert changed(start) == {"yesterday", "since yesterday", "until yesterday", "all time", "yesterday, both",
                              "yesterday, all devices", "all devices, all time"}
    start = now()
    versions.listener([("c", "kit-02", "b", _record(day * DAY_MS - 1))])  # the day before: another device
    assert changed(start) == {"all devices, all time"}
    start = now()
    versions.bump(["kit-01"])  # a change at a time not told: every page of the device
    assert changed(start) == set(start)
    start = now()
    versions.listener([])  # a commit of repeats only
    assert changed(start) == set()


def test_day_span_is_the_utc_days_a_half_open_range_touches() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from analysis.export import Selection
    from dashboards.research.pagecache import day_span
    from dashboards.research.routes_data import days_read

    midnight = datetime(2026, 5, 1, tzinfo=UTC)
    day = 20_574
    assert day_span(midnight, midnight + timedelta(days=1)) == (day, day)  # the end is left out
    assert day_span(midnight, midnight + timedelta(days=1, microseconds=1)) == (day, day + 1)
    assert day_span(midnight.replace(tzinfo=None), None) == (day, None)  # naive: UTC
    assert day_span(None, datetime(2026, 5, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == (None, day - 1)
    one_day = Selection(start=midnight, end=midnight + timedelta(days=1))
    assert days_read(one_day) == (day, day)
    assert days_read(replace(one_day, positions=True)) == (day - 1, day)  # a fix up to tolerance_s earlier


def test_if_none_match_uses_the_weak_comparison_of_rfc_9110() -> None:
    tag = etag_of(b"page")
    assert tag == etag_of(b"page") != etag_of(b"other")
    assert matches(tag, tag) and matches(f'"a", {tag}', tag) and matches(f"W/{tag}", tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"a"', tag) and not matches("", tag)


def test_pages_of_a_past_day_after_its_first_are_cut_from_memory_and_a_late_record_is_seen_at_once(
        live: dict[str, Any]) -> None:
    """Each new page of yesterday (another cursor, fewer quantities) runs no statement once its day is resident."""
    url, publish, cursors, auth = live["url"], live["publish"], live["cursors"], live["auth"]
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    yesterday = today - DAY_MS
    params = {"campaign": live["campaign"], "device": "kit-01", "quantity": ["pm2_5", "pm10"], "limit": 10,
              "start": _iso(yesterday), "end": _iso(today)}
    publish("kit-01", range(0, 30), yesterday + 3_600_000)
    page = httpx.get(url + READINGS, params=params, headers=auth).json()
    statements = cursors.statements
    seqs = [r["seq"] for r in page["readings"]]
    while page["next_cursor"]:
        page = httpx.get(url + READINGS, params=params | {"cursor": page["next_cursor"]}, headers=auth).json()
        seqs += [r["seq"] for r in page["readings"]]
    other = httpx.get(url + READINGS, params=params | {"quantity": "pm2_5", "limit": 7}, headers=auth)
    assert seqs == list(range(30)) and other.json()["count"] == 7
    assert cursors.statements == statements, "a page of a resident past day ran a statement"

    publish("kit-01", range(30, 32), yesterday + 60_000)  # a late upload of yesterday, before the others
    late = httpx.get(url + READINGS, params=params, headers=auth).json()
    assert [r["seq"] for r in late["readings"]] == [30, 31, *range(0, 8)]
