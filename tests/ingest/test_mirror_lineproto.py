"""The mirror's line-protocol encoder, checked byte for byte against influxdb-client's ``Point``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from ingest.mirror.lineproto import RecordEncoder, encode_point, format_float
from qsec import contract
from qsec.quantities import QUANTITIES

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)
integers = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(measurement=names.filter(lambda s: not s.startswith("#")),
       tags=st.dictionaries(names, st.one_of(names, st.just("")), max_size=5),
       fl=st.dictionaries(names, floats, min_size=1, max_size=5), it=st.dictionaries(names, integers, max_size=3),
       t=st.integers(min_value=0, max_value=2**53))
def test_a_point_is_encoded_exactly_as_influxdb_client_encodes_it(measurement, tags, fl, it, t) -> None:
    it = {k: v for k, v in it.items() if k not in fl}
    p = Point(measurement).time(t, WritePrecision.MS)
    for k, v in tags.items():
        p.tag(k, v)
    for k, v in {**fl, **it}.items():
        p.field(k, v)
    assert encode_point(measurement, tags, fl, it, t) == p.to_line_protocol()


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(QUANTITIES)), floats, min_size=1, max_size=8),
       seq=st.integers(0, 2**53 - 1), flags=st.integers(0, 2**16 - 1), t=st.integers(0, 2**53),
       boot=st.one_of(st.none(), st.from_regex(contract.BOOT_PATTERN, fullmatch=True)))
def test_a_record_line_equals_the_point_influxdb_client_would_build(values, seq, flags, t, boot) -> None:
    rec = contract.Record(seq=seq, t=t, sensor="sensirion-sps30", values=values, flags=flags)
    p = Point("readings").tag("campaign", "c-1").tag("device", "kit-9").tag("sensor", rec.sensor).tag("boot", boot)
    for q, v in values.items():
        p.field(q, float(v))
    p.field("seq", seq).field("flags", flags).time(t, WritePrecision.MS)
    assert RecordEncoder().line("c-1", "kit-9", boot, rec) == p.to_line_protocol()


def test_a_record_becomes_one_point_with_sorted_tags_float_quantities_and_integer_seq_and_flags() -> None:
    rec = contract.Record(seq=42, t=1_700_000_000_123, sensor="plantower-pms5003",
                          values={"pm2_5": 12.5, "pm10": 20, "pm1": 7.25}, flags=contract.FLAG_WARMING_UP)
    line = RecordEncoder().line("velo-2026", "kit-01", "b7f3", rec)
    assert line == ("readings,boot=b7f3,campaign=velo-2026,device=kit-01,sensor=plantower-pms5003 "
                    "flags=2i,pm1=7.25,pm10=20,pm2_5=12.5,seq=42i 1700000000123")


def test_a_record_without_a_boot_id_leaves_the_boot_tag_out() -> None:
    rec = contract.Record(seq=0, t=5, sensor="winsen-mhz19", values={"co2": 415})
    line = RecordEncoder("air").line("c", "d", None, rec)
    assert line == "air,campaign=c,device=d,sensor=winsen-mhz19 co2=415,flags=0i,seq=0i 5"


def test_an_integer_valued_quantity_is_written_as_a_float_so_the_field_type_never_changes() -> None:
    enc = RecordEncoder()
    as_int = enc.line("c", "d", "b", contract.Record(0, 1, "s", {"co2": 415}))
    as_float = enc.line("c", "d", "b", contract.Record(1, 2, "s", {"co2": 415.5}))
    assert "co2=415," in as_int and "co2=415.5," in as_float  # both floats in line protocol (no 'i')


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_refused_with_a_reason(value: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        format_float(value)


def test_an_empty_measurement_name_is_refused() -> None:
    with pytest.raises(ValueError, match="measurement"):
        RecordEncoder("")
