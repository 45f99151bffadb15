"""Pages cut from resident blocks are the store's pages, byte for byte, and stay exact as the data changes.

A real DuckDB store holds three devices over three days with the awkward
cases: records of two boots and of two devices at the same instant, rows
inserted out of order, NULL and NaN values, flag bits, a device with records
in two campaigns, a participant's assignments (one ended, one open) and
opted-out ranges.  Hypothesis draws selections, cursors and page sizes; each
page from :class:`dashboards.research.blocks.BlockCache` must give the same
JSON as the store's query (:func:`analysis.export.plan`), and so must every
page after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from readings_table import create_readings, insert_readings

from analysis.export import plan
from analysis.export.selection import Selection, StoreShape, store_shape
from dashboards.research.blocks import MAX_DAYS, BlockCache, block_of, eligible_days
from dashboards.research.pagecache import DataVersions
from dashboards.research.routes_data import encode_cursor, page_json, page_rows
from ingest import registry as reg

DAY0 = datetime(2026, 5, 1)
DEVICES = ("kit-a", "kit-b", "kit-c")
TODAY = (DAY0 - datetime(1970, 1, 1)).days + 30  # the records are well in the past
QUANTITIES = ("pm2_5", "pm10", "co2")


def _records() -> pd.DataFrame:
    """Three devices × three days, every few minutes, with the awkward cases (module docstring)."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for device in DEVICES:
        for boot in ("b1", "a2"):  # 'a2' sorts first: order is by boot name, not by arrival
            times = DAY0 + pd.to_timedelta(np.sort(rng.choice(3 * 1440, 400, replace=False)) * 60, unit="s")
            for seq, when in enumerate(times):
                row: dict[str, Any] = {"campaign": "walk", "device": device, "boot": boot, "seq": seq,
                                       "time": when.to_pydatetime(), "sensor": "plantower-pms5003",
                                       "flags": int(rng.choice([0, 0, 0, 1, 2, 4, 5]))}
                kind = rng.integers(0, 4)
                if kind == 0:
                    row["sensor"] = "winsen-mhz19"
                    row["co2"] = float(rng.integers(400, 900))
                elif kind == 1:
                    row["pm2_5"] = float("nan")  # a stored NaN is a value, not NULL
                    row["pm10"] = float(rng.integers(0, 80))
                else:
                    row["pm2_5"] = float(rng.integers(0, 60))
                    row["pm10"] = float(rng.integers(0, 80)) if kind == 2 else None
                rows.append(row)
    # kit-a and kit-b at exactly the same instants, on both boots
    for device in ("kit-a", "kit-b"):
        for boot in ("b1", "a2"):
            for k in range(5):
                rows.append({"campaign": "walk", "device": device, "boot": boot, "seq": 1000 + k,
                             "time": DAY0 + timedelta(hours=12), "sensor": "plantower-pms5003", "flags": 0,
                             "pm2_5": float(k)})
    # records at the very bounds of an assignment (6 h, 30 h) and of an opted-out range (8 h, 9 h)
    for k, hours in enumerate((6, 8, 9, 30)):
        rows.append({"campaign": "walk", "device": "kit-a", "boot": "b1", "seq": 2000 + k,
                     "time": DAY0 + timedelta(hours=hours), "sensor": "plantower-pms5003", "flags": 0,
                     "pm10": 1.0})
    rows.append({"campaign": "other", "device": "kit-c", "boot": "z9", "seq": 0, "time": DAY0 + timedelta(hours=3),
                 "sensor": "plantower-pms5003", "flags": 0, "pm2_5": 99.0})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=3)  # inserted out of order


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(Path(tmp_path_factory.mktemp("blocks")) / "qsec.duckdb"))
    create_readings(con)
    reg.ensure_registry_schema(con)
    insert_readings(con, _records())
    reg.create_campaign(con, "walk", public=True)
    reg.create_campaign(con, "other", public=False)
    reg.register_kit(con, "walk", "kit-1", {"kit-a": ["plantower-pms5003"]})
    reg.register_kit(con, "walk", "kit-2", {"kit-b": ["plantower-pms5003"]})
    p1, p2 = reg.add_participant(con, "walk"), reg.add_participant(con, "walk")
    reg.assign_kit(con, p1, "kit-1", DAY0 + timedelta(hours=6), DAY0 + timedelta(hours=30))
    reg.assign_kit(con, p2, "kit-1", DAY0 + timedelta(hours=40))
    reg.assign_kit(con, p2, "kit-2", DAY0 + timedelta(hours=12))  # from the very instant of the ties
    reg.add_opt_out(con, p1, DAY0 + timedelta(hours=8), DAY0 + timedelta(hours=9))
    reg.add_opt_out(con, p2, DAY0 + timedelta(hours=11, minutes=30), DAY0 + timedelta(hours=12, seconds=1))
    yield con
    con.close()


def _store_page(con: duckdb.DuckDBPyConnection, sel: Selection, shape: StoreShape,
                after: tuple[object, ...] | None, limit: int) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    p = plan(con, sel, after=after, limit=limit, shape=shape)
    return page_rows(con, p), p.quantities


def _json(cut: tuple[list[dict[str, Any]], tuple[str, ...]], limit: int) -> bytes:
    rows, quantities = cut
    nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return page_json(rows[:limit], quantities, False, nxt)


def _key(row: dict[str, Any]) -> tuple[object, ...]:
    return (row["time"].replace(tzinfo=None), row["device"], row["boot"], row["seq"])


selections = st.builds(
    lambda devices, quantities, first, hours, flags_none, flags_all, public, hide: Selection(
        campaign="walk", devices=tuple(devices), quantities=tuple(quantities),
        start=DAY0 + timedelta(minutes=first), end=DAY0 + timedelta(minutes=first + hours * 60),
        flags_none=flags_none, flags_all=flags_all, public=public, hide_opted_out=hide),
    st.lists(st.sampled_from(DEVICES), min_size=1, max_size=3),
    st.lists(st.sampled_from(QUANTITIES), max_size=2),
    st.integers(-60, 3 * 1440), st.integers(1, 72),
    st.sampled_from([0, 0, 1, 4]), st.sampled_from([0, 0, 1, 2]), st.booleans(), st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sel=selections, limit=st.integers(1, 40), depth=st.integers(0, 3))
def test_every_page_cut_from_blocks_is_the_stores_page(store: duckdb.DuckDBPyConnection, sel: Selection,
                                                       limit: int, depth: int) -> None:
    cur = store.cursor()
    shape = store_shape(cur)
    cache = BlockCache(DataVersions(), 64 * 2**20, clock=lambda: TODAY * 86_400.0)
    after = None
    for _ in range(depth + 1):
        want = _store_page(cur, sel, shape, after, limit + 1)
        got = cache.page(cur, sel, shape, after, limit + 1)
        assert got is not None, "a bounded selection of past days is cut from blocks"
        assert _json(got, limit) == _json(want, limit)
        assert got[1] == want[1]
        if len(want[0]) <= limit:
            break
        after = _key(want[0][limit - 1])


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_a_device_s_three_days_in_one_page_are_the_stores_rows(store: duckdb.DuckDBPyConnection, device: str,
                                                               public: bool) -> None:
    cur = store.cursor()
    shape = store_shape(cur)
    cache = BlockCache(DataVersions(), 64 * 2**20, clock=lambda: TODAY * 86_400.0)
    sel = Selection(campaign="walk", devices=(device,), start=DAY0, end=DAY0 + timedelta(days=3), public=public)
    got = cache.page(cur, sel, shape, None, 5000)
    assert got is not None and len(got[0]) > 700
    assert _json(got, 4999) == _json(_store_page(cur, sel, shape, None, 5000), 4999)


def test_ties_of_devices_and_boots_come_in_the_stores_order_across_page_boundaries(
        store: duckdb.DuckDBPyConnection) -> None:
    cur = store.cursor()
    shape = store_shape(cur)
    cache = BlockCache(DataVersions(), 64 * 2**20, clock=lambda: TODAY * 86_400.0)
    noon = DAY0 + timedelta(hours=12)
    sel = Selection(campaign="walk", devices=("kit-b", "kit-a"), start=noon, end=noon + timedelta(seconds=1))
    seen: list[tuple[object, ...]] = []
    after = None
    while True:  # three at a time through the 20 records at noon: cursors fall between ties
        got = cache.page(cur, sel, shape, after, 4)
        want = _store_page(cur, sel, shape, after, 4)
        assert got is not None and _json(got, 3) == _json(want, 3)
        seen += [_key(r) for r in got[0][:3]]
        if len(got[0]) <= 3:
            break
        after = _key(got[0][2])
    assert len(seen) == 20 and seen == sorted(seen)
    assert [k[1:3] for k in seen[:6]] == [("kit-a", "a2")] * 5 + [("kit-a", "b1")]


def test_participants_follow_assignments_and_the_public_view_hides_them_and_opted_out_ranges(
        store: duckdb.DuckDBPyConnection) -> None:
    cur = store.cursor()
    shape = store_shape(cur)
    cache = BlockCache(DataVersions(), 64 * 2**20, clock=lambda: TODAY * 86_400.0)
    day = Selection(campaign="walk", devices=("kit-a",), start=DAY0, end=DAY0 + timedelta(days=3))
    rows, _ = cache.page(cur, day, shape, None, 10_000) or ([], ())
    carried = {r["participant"] for r in rows}
    assert len(carried) == 3 and None in carried  # p1, p2 and nobody (before, between and after)
    public, _ = cache.page(cur, Selection(**{**day.__dict__, "public": True}), shape, None, 10_000) or ([], ())
    assert all("participant" not in r for r in public)
    hidden = [r for r in rows if DAY0 + timedelta(hours=8) <= _key(r)[0] < DAY0 + timedelta(hours=9)]
    assert hidden and len(public) == len(rows) - len(hidden)


def test_a_commit_of_the_blocks_device_and_day_is_seen_by_the_next_page_and_other_days_stay_resident(
        tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "qsec.duckdb"))
    create_readings(con)
    reg.ensure_registry_schema(con)
    insert_readings(con, pd.DataFrame({"campaign": "walk", "device": "kit-a", "boot": "b1", "seq": [0, 1],
                                       "time": [DAY0 + timedelta(hours=1), DAY0 + timedelta(days=1, hours=1)],
                                       "sensor": "s", "pm2_5": [1.0, 2.0]}))
    versions = DataVersions()
    cache = BlockCache(versions, 64 * 2**20, clock=lambda: TODAY * 86_400.0)
    shape = store_shape(con)
    two_days = Selection(campaign="walk", devices=("kit-a",), start=DAY0, end=DAY0 + timedelta(days=2))

    def values() -> list[float]:
        rows, _ = cache.page(con, two_days, shape, None, 100) or ([], ())
        return [r["pm2_5"] for r in rows]

    assert values() == [1.0, 2.0] and cache.reads == 2
    assert values() == [1.0, 2.0] and cache.reads == 2  # both days resident
    insert_readings(con, pd.DataFrame({"campaign": "walk", "device": "kit-a", "boot": "b1", "seq": [2],
                                       "time": [DAY0 + timedelta(hours=2)], "sensor": "s", "pm2_5": [3.0]}))
    day0 = (DAY0 - datetime(1970, 1, 1)).days
    versions.bump_days({("kit-a", day0)})  # what ingest's commit listener does after the commit
    assert values() == [1.0, 3.0, 2.0] and cache.reads == 3  # the first day read again, the second kept
    reg.create_campaign(con, "walk", public=True)
    versions.bump_all()  # a registry change: every block and the registry facts are read again
    public = Selection(**{**two_days.__dict__, "public": True})
    assert len((cache.page(con, public, shape, None, 100) or ([], ()))[0]) == 3 and cache.reads == 5


def test_today_and_unbounded_or_positional_selections_are_left_to_the_store() -> None:
    day = (DAY0 - datetime(1970, 1, 1)).days
    sel = Selection(campaign="walk", devices=("kit-a",), start=DAY0, end=DAY0 + timedelta(days=1))
    assert eligible_days(sel, day + 1) == [day]
    assert eligible_days(sel, day) is None  # today changes with every commit of a live campaign
    for other in (Selection(**{**sel.__dict__, "end": None}), Selection(**{**sel.__dict__, "devices": ()}),
                  Selection(**{**sel.__dict__, "positions": True}),
                  Selection(**{**sel.__dict__, "participant": "p-1"}),
                  Selection(**{**sel.__dict__, "end": DAY0 + timedelta(days=MAX_DAYS + 1)}),
                  Selection(**{**sel.__dict__, "devices": tuple(f"k{i}" for i in range(9))})):
        assert eligible_days(other, day + 100) is None


def test_blocks_keep_within_their_budget_and_one_thread_reads_a_block_the_others_wait_for(
        store: duckdb.DuckDBPyConnection) -> None:
    shape = store_shape(store)
    day0 = (DAY0 - datetime(1970, 1, 1)).days
    sizes = {d: BlockCache(DataVersions(), 1 << 30).block(store.cursor(), "walk", d, day0, (), shape).nbytes
             for d in DEVICES}
    cache = BlockCache(DataVersions(), sizes["kit-b"] + sizes["kit-c"])
    for device in DEVICES:
        cache.block(store.cursor(), "walk", device, day0, (), shape)
    assert len(cache) == 2 and cache.used <= cache.budget  # kit-a, the least recently used, evicted
    barrier = threading.Barrier(8)

    def read() -> None:
        cur = store.cursor()
        barrier.wait()
        cache.block(cur, "walk", "kit-a", day0 + 1, (), shape)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.reads == 4  # three days of the loop above, then one read for eight threads


def test_a_block_puts_rows_in_time_boot_seq_order_whatever_order_they_came_in() -> None:
    import pyarrow as pa

    table = pa.table({"t": [5, 5, 1, 5], "boot": ["b", "a", "z", "a"], "seq": [0, 9, 3, 2],
                      "sensor": ["s", "s", "s", "s"], "flags": pa.array([0, 1, 2, 3], pa.int32()),
                      "pm2_5": [1.0, None, 3.0, 4.0]})
    block = block_of(table, ["pm2_5"])
    assert block.times.tolist() == [1, 5, 5, 5]
    assert [block.boot_names[b] for b in block.boots] == ["z", "a", "a", "b"]
    assert block.seqs.tolist() == [3, 2, 9, 0] and block.flags.tolist() == [2, 3, 1, 0]
    assert block.valid["pm2_5"].tolist() == [True, True, False, True]
