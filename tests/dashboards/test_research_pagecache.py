"""The researcher API's page cache: exact with a real ingest worker, ETags and 304, a bounded LRU.

A served router with the store's change feed (``versions``) answers a page
it has already answered without touching the store, and the next request
after a commit (once ingest has called its listeners) gets the new records.
"""

from __future__ import annotations

import secrets
import time
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
from dashboards.research.models import ReadingsPage
from dashboards.research.pagecache import PageCache, etag_of, matches
from ingest import registry as reg
from ingest.store import Store
from ingest.worker import IngestSettings, IngestWorker
from qsec import contract

PEPPER = secrets.token_urlsafe(32)
READINGS = "/research/v1/readings"


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

        def publish(device: str, seqs: range) -> None:
            before = sum(heard)
            publisher.publish(contract.topic(campaign, device), _batch(device, seqs, t0), qos=1).wait_for_publish(5)
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
    versions.listener([("c", "kit-02", "b", None)])
    assert versions.snapshot(("kit-01",)) == one
    assert versions.snapshot(("kit-01", "kit-02")) != both and versions.snapshot(()) != every
    versions.listener([])  # a commit of repeats only changes nothing
    assert versions.snapshot(("kit-01", "kit-02")) == versions.snapshot(("kit-01", "kit-02"))
    versions.bump_all()
    assert versions.snapshot(("kit-01",)) != one


def test_if_none_match_uses_the_weak_comparison_of_rfc_9110() -> None:
    tag = etag_of(b"page")
    assert tag == etag_of(b"page") != etag_of(b"other")
    assert matches(tag, tag) and matches(f'"a", {tag}', tag) and matches(f"W/{tag}", tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"a"', tag) and not matches("", tag)
