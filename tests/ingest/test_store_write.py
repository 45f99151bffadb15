"""The store's write: a plain append when nothing repeats, the exact ON CONFLICT path when something does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest import keys
from ingest.store import DeadLetter, Store
from qsec import contract

NOW = 1_795_000_000_000


def _rows(boot: str, seqs: list[int]) -> list[tuple[str, str, str, contract.Record]]:
    return [("c1", "kit-01", boot, contract.Record(s, NOW + s, "plantower-pms5003", {"pm2_5": float(s)})) for s in seqs]


def test_a_batch_with_repeats_stores_each_key_once_and_says_which_rows_were_new(tmp_path: Path) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    first, _ = store.write_arrow(store.to_arrow(_rows("b", [0, 1, 2]), NOW))
    assert first.inserted == 3 and store.exact_writes == 0  # nothing repeated: the plain append
    batch = store.to_arrow(_rows("b", [2, 3, 3, 4]), NOW)  # 2 is stored, 3 comes twice
    result, new = store.write_arrow(batch, [DeadLetter("t", "bad_json", "x", "{")], received_ms=NOW)
    assert (result.inserted, result.duplicates) == (2, 2) and new.tolist() == [False, True, False, True]
    assert store.exact_writes == 1
    cur = store.cursor()
    assert cur.execute("SELECT count(*), count(DISTINCT (device, boot, seq)) FROM readings").fetchone() == (5, 5)
    assert store.counts()["deadletter"] == 1  # the dead letter of the retried transaction is stored once
    store.close()


def test_the_keys_of_a_commit_are_grouped_by_device_and_boot(tmp_path: Path) -> None:
    store = Store(tmp_path / "qsec.duckdb")
    table = store.to_arrow(_rows("b", [5, 1]) + _rows("a", [7]) + _rows("b", [3]), NOW)
    got = {(g.device, g.boot): (g.rows.tolist(), g.seq.tolist()) for g in keys.groups(table)}
    assert got == {("kit-01", "b"): ([0, 1, 3], [5, 1, 3]), ("kit-01", "a"): ([2], [7])}
    store.close()


@given(st.lists(st.integers(0, 60), max_size=40))
def test_ranges_of_an_array_match_the_contract_s_ranges(seqs: list[int]) -> None:
    assert keys.ranges(np.array(seqs, dtype=np.int64)) == contract.ranges(seqs)
