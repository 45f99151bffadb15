"""The bulk screen accepts a message only when the exact, record-by-record path accepts all of it."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import fastpath
from qsec import contract

NOW = 1_795_000_000_000
good_value = st.one_of(st.integers(0, 500), st.floats(0, 500, allow_nan=False))
odd_value = st.one_of(st.just(-1), st.just(True), st.just("12"), st.just(None), st.just(1e300), st.just(10**400))
record = st.fixed_dictionaries(
    {"seq": st.one_of(st.integers(0, 10**6), st.sampled_from([-1, True, 1.5, 2**60])),
     "t": st.one_of(st.integers(NOW - 10**9, NOW), st.sampled_from([NOW + 10**7, -5, "now"])),
     "sensor": st.sampled_from(["plantower-pms5003", "winsen-mhz19", "Bad Sensor", ""]),
     "values": st.dictionaries(st.sampled_from(["pm2_5", "pm10", "co2", "pm3", "voc_index"]),
                               st.one_of(good_value, odd_value), max_size=3)},
    optional={"flags": st.sampled_from([0, 4, 70000, -1]), "extra": st.just(1)})
envelope = st.fixed_dictionaries({"v": st.sampled_from([1, 1, 1, 2]), "boot": st.sampled_from(["b1", "b 2"]),
                                  "records": st.lists(record, max_size=6)},
                                 optional={"device": st.sampled_from(["kit-01", "kit-02"])})


@given(st.lists(envelope, min_size=1, max_size=5))
@settings(max_examples=300, deadline=None)
def test_the_bulk_screen_never_accepts_what_the_exact_path_refuses(docs: list[dict]) -> None:
    msgs = [fastpath.Message("c1", "kit-01", json.dumps(d).encode(), "qsec/v1/c1/kit-01/readings") for d in docs]
    fast, slow = fastpath.screen(msgs, now_ms=NOW, not_before={"c1": NOW - 2 * 10**9})
    fast_msgs = sorted(set(range(len(msgs))) - set(slow))
    assert sorted(set(fast.message)) == [i for i in fast_msgs if docs[i]["records"]]
    for i in fast_msgs:
        dec = contract.decode_batch(msgs[i].payload, device="kit-01", now_ms=NOW, not_before_ms=NOW - 2 * 10**9)
        assert dec.refused == []
        mine = [r for r, m in zip(fast.records, fast.message) if m == i]
        assert [contract.check_record(r) for r in mine] == dec.records


def test_the_arrow_table_carries_the_values_and_nulls_where_absent() -> None:
    payload = contract.encode_batch(contract.Batch("kit-01", "b1", (
        contract.Record(0, NOW, "plantower-pms5003", {"pm2_5": 7.0, "pm10": 9.0}),
        contract.Record(1, NOW + 1, "winsen-mhz19", {"co2": 455}, flags=contract.FLAG_WARMING_UP))))
    fast, slow = fastpath.screen([fastpath.Message("c1", "kit-01", payload, "t")], now_ms=NOW, not_before={})
    table = fastpath.to_arrow(fast, ["pm2_5", "pm10", "co2", "temperature"], received_ms=NOW).to_pydict()
    assert slow == [] and table["seq"] == [0, 1] and table["flags"] == [0, 2]
    assert table["pm2_5"] == [7.0, None] and table["co2"] == [None, 455.0] and "temperature" not in table
