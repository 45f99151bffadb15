"""Wire contract v1: round trips, limits with their named errors, topics, feedback."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsec import contract, quantities

SCHEMA = json.loads((Path(__file__).parents[2] / "qsec" / "schema" / "readings-v1.json").read_text())
NOW = 1_795_000_000_000

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
boots = st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True)


@st.composite
def records(draw, seq: int | None = None) -> contract.Record:
    names = draw(st.lists(st.sampled_from(sorted(quantities.QUANTITIES)), min_size=1, max_size=6, unique=True))
    values = {}
    for n in names:
        q = quantities.QUANTITIES[n]
        values[n] = draw(st.floats(q.minimum, q.maximum, allow_nan=False))
    return contract.Record(seq=draw(st.integers(0, 2**53 - 1)) if seq is None else seq,
                           t=draw(st.integers(0, NOW)), sensor=draw(st.sampled_from(["plantower-pms5003", "winsen-mhz19", "nmea-gps"])),
                           values=values, flags=draw(st.integers(0, 2**16 - 1)))


@given(device=ids, boot=boots, recs=st.lists(records(), max_size=20))
@settings(max_examples=150, deadline=None)
def test_decode_of_encode_gives_back_the_same_batch(device: str, boot: str, recs: list[contract.Record]) -> None:
    batch = contract.Batch(device=device, boot=boot, records=tuple(recs), sent=NOW)
    payload = contract.encode_batch(batch)
    jsonschema.validate(json.loads(payload), SCHEMA)
    dec = contract.decode_batch(payload, device=device, now_ms=NOW)
    assert dec.refused == []
    assert tuple(dec.records) == batch.records
    assert (dec.device, dec.boot, dec.sent) == (device, boot, NOW)


def _payload(records: list[dict], **envelope: object) -> bytes:
    doc = {"v": 1, "device": "kit-01", "boot": "b1", "records": records, **envelope}
    return json.dumps(doc).encode()


GOOD = {"seq": 1, "t": NOW - 1000, "sensor": "plantower-pms5003", "values": {"pm2_5": 12.0}}


@pytest.mark.parametrize(
    "payload, reason",
    [
        pytest.param(b"{not json", "bad_json", id="bad-json"),
        pytest.param(b"\xff\xfe", "bad_json", id="not-utf8"),
        pytest.param(_payload([GOOD], v=2), "wrong_version", id="wrong-version"),
        pytest.param(_payload([GOOD], boot="has space"), "bad_schema", id="bad-boot-id"),
        pytest.param(_payload([GOOD], device="kit-02"), "device_mismatch", id="device-differs-from-topic"),
        pytest.param(_payload([GOOD] * (contract.LIMITS.max_records + 1)), "too_many_records", id="too-many-records"),
        pytest.param(b" " * (contract.LIMITS.max_payload_bytes + 1), "payload_too_large", id="oversized"),
        pytest.param(b"[1, 2]", "bad_schema", id="not-an-object"),
    ],
)
def test_a_broken_envelope_refuses_the_whole_message_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(contract.ContractError) as err:
        contract.decode_batch(payload, device="kit-01", now_ms=NOW)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "record, reason",
    [
        pytest.param({**GOOD, "values": {"pm3": 1.0}}, "unknown_quantity", id="unknown-quantity"),
        pytest.param({**GOOD, "values": {"pm2_5": -5.0}}, "out_of_range", id="negative-pm"),
        pytest.param({**GOOD, "values": {"co2": 90000}}, "out_of_range", id="co2-beyond-physical"),
        pytest.param({**GOOD, "t": NOW + 10 * 60_000}, "future_time", id="ten-minutes-in-the-future"),
        pytest.param({**GOOD, "t": "2026-01-01"}, "bad_time", id="time-as-text"),
        pytest.param({**GOOD, "seq": -1}, "bad_schema", id="negative-seq"),
        pytest.param({**GOOD, "seq": True}, "bad_schema", id="boolean-seq"),
        pytest.param({**GOOD, "values": {}}, "bad_schema", id="no-values"),
        pytest.param({**GOOD, "values": {"pm2_5": "12"}}, "bad_schema", id="value-as-text"),
        pytest.param({**GOOD, "extra": 1}, "bad_schema", id="unknown-field"),
        pytest.param({**GOOD, "sensor": "Bad Sensor"}, "bad_schema", id="bad-sensor-id"),
    ],
)
def test_a_bad_record_is_refused_with_its_reason_and_its_neighbours_are_kept(record: dict, reason: str) -> None:
    neighbour = {**GOOD, "seq": 2}
    dec = contract.decode_batch(_payload([record, neighbour]), device="kit-01", now_ms=NOW)
    assert [r.seq for r in dec.records] == [2]
    [(raw, err)] = dec.refused
    assert raw == record and err.reason == reason


def test_a_record_before_the_campaign_is_refused() -> None:
    dec = contract.decode_batch(_payload([GOOD]), device="kit-01", now_ms=NOW, not_before_ms=NOW)
    assert dec.refused[0][1].reason == "before_campaign"


def test_encoding_refuses_a_batch_over_the_limits() -> None:
    rec = contract.Record(0, NOW, "plantower-pms5003", {"pm2_5": 1.0})
    with pytest.raises(contract.TooManyRecords):
        contract.encode_batch(contract.Batch("kit-01", "b", (rec,) * 2), contract.Limits(max_records=1))
    with pytest.raises(contract.PayloadTooLarge):
        contract.encode_batch(contract.Batch("kit-01", "b", (rec,) * 50), contract.Limits(max_payload_bytes=200))


def test_topics_round_trip_and_refuse_bad_ids() -> None:
    t = contract.topic("versailles-2026", "kit-01", "readings")
    assert t == "qsec/v1/versailles-2026/kit-01/readings"
    assert contract.parse_topic(t) == contract.Topic("versailles-2026", "kit-01", "readings")
    for bad in ("qsec/v1/a/b", "qsec/v2/a/b/readings", "qsec/v1/A/b/readings", "qsec/v1/a/b/other"):
        with pytest.raises(contract.BadTopic):
            contract.parse_topic(bad)
    with pytest.raises(contract.BadTopic, match="lower-case"):
        contract.topic("Campaign", "kit")
    assert contract.subscription(share_group="g") == "$share/g/qsec/v1/+/+/readings"


@given(st.sets(st.integers(0, 500)))
def test_ranges_compress_sequence_numbers_without_loss(seqs: set[int]) -> None:
    rng = contract.ranges(seqs)
    assert contract.expand(rng) == seqs
    assert all(lo <= hi for lo, hi in rng)
    assert all(a[1] + 1 < b[0] for a, b in zip(rng, rng[1:]))


def test_feedback_round_trips() -> None:
    fb = contract.Feedback("kit-01", {"b1": [[0, 49]]}, {"b1": 49}, accepted=48, duplicates=2,
                           refused=[{"seq": 7, "reason": "out_of_range", "detail": "x"}], t=NOW)
    assert contract.Feedback.decode(fb.encode()) == fb
    with pytest.raises(contract.ContractError):
        contract.Feedback.decode(b'{"v": 1}')


def test_a_relative_voc_index_cannot_be_combined_with_a_concentration() -> None:
    with pytest.raises(quantities.IncompatibleQuantities):
        quantities.check_compatible("voc_index", "tvoc")
    quantities.check_compatible("pm2_5", "pm2_5")


def test_the_json_schema_file_is_the_one_the_contract_makes() -> None:
    from qsec.schema import readings_schema

    assert SCHEMA == readings_schema(), "run `python -m qsec.schema` to rewrite qsec/schema/readings-v1.json"


def test_the_contract_doc_shows_the_quantity_table() -> None:
    from qsec.schema import quantity_table_markdown

    doc = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()
    assert quantity_table_markdown() in doc
