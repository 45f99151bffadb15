"""The mirror's line-protocol encoder, checked byte for byte against influxdb-client's ``Point``,
and against the InfluxDB v2 "Line protocol" reference (escaping, number forms, timestamp range)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from ingest.mirror.lineproto import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    RecordEncoder,
    check_measurement,
    encode_point,
    format_float,
    format_int,
)
from qsec import contract
from qsec.quantities import QUANTITIES

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)
integers = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(measurement=names.filter(lambda s: not s.startswith(("#", "_"))),
       tags=st.dictionaries(names, st.one_of(names, st.just("")), max_size=5),
       fl=st.dictionaries(names, floats, min_size=1, max_size=5), it=st.dictionaries(names, integers, max_size=3),
       t=st.integers(min_value=MIN_TIME_MS, max_value=MAX_TIME_MS))
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
       seq=st.integers(0, 2**53 - 1), flags=st.integers(0, 2**16 - 1), t=st.integers(0, MAX_TIME_MS),
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


def test_a_record_with_a_non_finite_value_is_refused_naming_the_quantity() -> None:
    rec = contract.Record(seq=1, t=5, sensor="s", values={"pm10": 3.0, "pm2_5": math.nan})
    with pytest.raises(ValueError, match=r"pm2_5: line protocol cannot carry the non-finite value nan"):
        RecordEncoder().line("c", "d", "b", rec)


@pytest.mark.parametrize("name, reason", [("", "empty"), ("#readings", "comment"), ("_readings", "reserves")],
                         ids=["empty", "comment", "underscore"])
def test_a_measurement_name_line_protocol_cannot_carry_is_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_measurement(name)
    with pytest.raises(ValueError, match=reason):
        RecordEncoder(name)


# The examples of the reference's "Special characters" section, and each escaped character alone.
@pytest.mark.parametrize("measurement, tags, fields, expected", [
    ("my Measurement", {}, {"fieldKey": 1.0}, r"my\ Measurement fieldKey=1 7"),
    ("myMeasurement", {"tag Key1": "tag Value1", "tag Key2": "tag Value2"}, {"fieldKey": 100.0},
     r"myMeasurement,tag\ Key1=tag\ Value1,tag\ Key2=tag\ Value2 fieldKey=100 7"),
    ("m,x=1", {"k,=": "v,= w"}, {"f,= g": 2.5}, r"m\,x=1,k\,\==v\,\=\ w f\,\=\ g=2.5 7"),
    ("myMeasurement", {"tagKey": "🍭"}, {"fieldKey": 1.0}, "myMeasurement,tagKey=🍭 fieldKey=1 7"),
    ("m", {"t": "a\\b"}, {"f": 1.0}, r"m,t=a\b f=1 7"),
], ids=["measurement-space", "tag-spaces", "comma-equals", "emoji", "backslash-kept"])
def test_special_characters_are_escaped_as_the_line_protocol_reference_shows(measurement, tags, fields,
                                                                              expected) -> None:
    assert encode_point(measurement, tags, fields, {}, 7) == expected


def test_a_newline_in_a_name_or_value_never_breaks_the_line() -> None:
    line = encode_point("m\nx", {"t\n": "a\nb\r"}, {"f\tg": 1.0}, {}, 7)
    assert "\n" not in line and "\r" not in line
    assert line == r"m\nx,t\n=a\nb\r f\tg=1 7"


# InfluxDB's float syntax (models/points.go scanNumber): optional sign, digits with at most one point,
# an optional exponent with an optional sign.  No NaN, no Inf.
INFLUX_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@settings(max_examples=500, deadline=None)
@given(value=floats)
def test_every_finite_float_is_written_in_influxdb_float_syntax_and_reads_back_exactly(value: float) -> None:
    text = format_float(value)
    assert INFLUX_FLOAT.fullmatch(text), text
    assert float(text) == value and math.copysign(1, float(text)) == math.copysign(1, value)


@pytest.mark.parametrize("value, text", [(415.0, "415"), (1e16, "1e+16"), (1.5e-05, "1.5e-05"), (-0.0, "-0"),
                                         (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
                                         (0.1 + 0.2, "0.30000000000000004")])
def test_floats_use_the_shortest_exact_form_with_exponents_where_python_uses_them(value: float, text: str) -> None:
    assert format_float(value) == text


def test_integers_are_signed_64_bit_with_the_i_suffix_and_others_are_refused() -> None:
    assert format_int(-(2**63)) == "-9223372036854775808i" and format_int(2**63 - 1) == "9223372036854775807i"
    for bad in (2**63, -(2**63) - 1):
        with pytest.raises(ValueError, match="signed 64-bit"):
            format_int(bad)


def test_the_timestamp_range_is_influxdb_s_nanosecond_range_in_milliseconds() -> None:
    # models/time.go: MinNanoTime = MinInt64 + 2, MaxNanoTime = MaxInt64 - 1 [ns]
    assert MAX_TIME_MS * 1_000_000 <= 2**63 - 2 < (MAX_TIME_MS + 1) * 1_000_000
    assert MIN_TIME_MS == -MAX_TIME_MS == -9_223_372_036_854
    enc = RecordEncoder()
    for t in (MIN_TIME_MS, 0, MAX_TIME_MS):
        assert enc.line("c", "d", None, contract.Record(0, t, "s", {"co2": 1.0})).endswith(f" {t}")


@pytest.mark.parametrize("t", [MAX_TIME_MS + 1, MIN_TIME_MS - 1, 2**63])
def test_a_timestamp_influxdb_cannot_store_is_refused_with_the_range(t: int) -> None:
    with pytest.raises(ValueError, match=r"outside the range InfluxDB can store.*2262-04-11"):
        RecordEncoder().line("c", "d", None, contract.Record(0, t, "s", {"co2": 1.0}))
    with pytest.raises(ValueError, match="outside the range"):
        encode_point("m", {}, {"f": 1.0}, {}, t)
