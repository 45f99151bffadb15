"""The mirror's answer table: status classes, Retry-After, back-off and how a refused batch is cut.

Expected values come from Telegraf's ``plugins/outputs/influxdb_v2/http.go`` (``getRetryDuration``) and
from the error bodies InfluxDB 1.x, 2.x and 3 document.
"""

from __future__ import annotations

import email.utils
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.mirror.policy import (
    Action,
    Rejection,
    alarm_hint,
    backoff_s,
    classify,
    parse_rejection,
    retry_after_s,
    split_after_rejection,
)

A = Action


@pytest.mark.parametrize("status, action", [
    (200, A.DELIVERED), (204, A.DELIVERED), (207, A.DELIVERED),
    (413, A.SPLIT), (400, A.ISOLATE), (422, A.ISOLATE),
    (401, A.AUTH_ALARM), (403, A.AUTH_ALARM), (404, A.CONFIG_ALARM),
    (405, A.REJECT), (406, A.REJECT), (415, A.REJECT), (410, A.REJECT),
    (408, A.RETRY), (429, A.RETRY), (500, A.RETRY), (502, A.RETRY), (503, A.RETRY), (504, A.RETRY), (None, A.RETRY),
], ids=lambda v: str(v))
def test_each_status_maps_to_its_action(status: int | None, action: Action) -> None:
    assert classify(status) is action


NOW = 1_800_000_000.0


@pytest.mark.parametrize("header, seconds", [
    (None, None), ("", None), ("30", 30.0), ("1.5", 1.5), ("-4", 0.0), ("100000", 600.0),
    (email.utils.formatdate(NOW + 20, usegmt=True), 20.0), ("soon", 10.0), ("nan", 10.0),
], ids=["absent", "empty", "seconds", "fraction", "negative", "capped", "http-date", "garbage", "nan"])
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(header: str | None, seconds: float | None) -> None:
    got = retry_after_s(header, NOW)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


def telegraf_retry_duration(count: int) -> float:
    """Telegraf's getRetryDuration without a Retry-After header: min(count**2 / 40, 60) [s]."""
    return min(count**2 / 40, 60.0)


def test_back_off_follows_telegraf_s_curve_up_to_its_60_s_ceiling() -> None:
    got = [backoff_s(n, initial_s=0.001) for n in range(1, 60)]
    assert got == pytest.approx([telegraf_retry_duration(n) for n in range(1, 60)])
    assert (backoff_s(10, initial_s=0.001), backoff_s(20, initial_s=0.001)) == (2.5, 10.0)
    assert backoff_s(48, initial_s=0.001) == 57.6 and backoff_s(49, initial_s=0.001) == 60.0
    assert backoff_s(10**9, initial_s=0.001) == 60.0 and backoff_s(0, initial_s=1.0) == 0.0


def test_back_off_never_waits_less_than_the_floor_nor_more_than_the_ceiling() -> None:
    assert [backoff_s(n, initial_s=1.0) for n in (1, 6, 7, 10)] == [1.0, 1.0, 1.225, 2.5]
    assert [backoff_s(n, initial_s=0.05, max_s=0.2) for n in (1, 2, 3, 100)] == [0.05, 0.1, 0.2, 0.2]


@pytest.mark.parametrize("status, words", [(401, "token"), (403, "token"), (404, "bucket"),
                                           (413, "body size limit"), (None, "url")])
def test_each_alarm_says_what_to_check(status: int | None, words: str) -> None:
    assert words in alarm_hint(status)


# The InfluxDB v2 troubleshooting page's example of a 422 partial write (shortened), and InfluxDB 1.x's
# field type conflict as tsdb/shard.go words it.
RETENTION_422 = ("failure writing points to database: partial write: dropped 4 points outside retention policy of "
                 "duration 24h0m0s dropped=4 for database: 9f282d63c7d3a5c0 for retention policy: autogen")
TYPE_CONFLICT_1X = ('partial write: field type conflict: input field "co2" on measurement "readings" is type '
                    'integer, already exists as type float dropped=1')


@pytest.mark.parametrize("body, first_line, dropped, message", [
    (json.dumps({"code": "invalid", "message": "unable to parse 'x': missing fields", "line": 3}), 3, None,
     "unable to parse 'x': missing fields"),
    (json.dumps({"error": "partial write of line protocol occurred",
                 "data": [{"original_line": "a", "line_number": 5, "error_message": "e"},
                          {"original_line": "b", "line_number": 2, "error_message": "e"}]}), 2, None,
     "partial write of line protocol occurred"),
    (json.dumps({"code": "unprocessable entity", "message": "partial write: points beyond retention policy dropped=4"}),
     None, 4, "partial write: points beyond retention policy dropped=4"),
    (json.dumps({"code": "unprocessable entity", "message": RETENTION_422}), None, 4, RETENTION_422),
    (json.dumps({"error": TYPE_CONFLICT_1X}), None, 1, TYPE_CONFLICT_1X),
    ("plain text body", None, None, "plain text body"),
    (b"", None, None, ""),
], ids=["influxdb2-line", "influxdb3-data", "retention-dropped", "influxdb2-422-retention",
        "influxdb1-type-conflict", "text", "empty"])
def test_a_rejection_body_is_read_for_the_first_line_and_the_dropped_count(body, first_line, dropped, message) -> None:
    assert parse_rejection(body) == Rejection(first_line, dropped, message)


def test_a_lone_point_or_a_batch_dropped_whole_is_rejected_without_cutting() -> None:
    assert split_after_rejection(1, Rejection(None, None, "")) is None
    assert split_after_rejection(4, Rejection(None, 4, "")) is None


def test_a_named_first_line_isolates_that_point_between_the_two_other_pieces() -> None:
    assert split_after_rejection(10, Rejection(4, None, "")) == [3, 1, 6]
    assert split_after_rejection(10, Rejection(1, None, "")) == [1, 9]
    assert split_after_rejection(10, Rejection(10, None, "")) == [9, 1]
    assert split_after_rejection(10, Rejection(11, None, "")) == [5, 5]  # a line beyond the batch is ignored


@given(size=st.integers(min_value=2, max_value=100_000), line=st.one_of(st.none(), st.integers(-5, 100_005)),
       dropped=st.one_of(st.none(), st.integers(0, 100_005)))
def test_every_cut_covers_the_batch_with_strictly_smaller_pieces(size: int, line: int | None,
                                                                  dropped: int | None) -> None:
    pieces = split_after_rejection(size, Rejection(line, dropped, ""))
    if dropped == size:
        assert pieces is None
    else:
        assert pieces is not None and sum(pieces) == size and all(0 < p < size for p in pieces)
