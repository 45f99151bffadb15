"""analysis.live on a small hand-made store, plus a conservation property."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from readings_table import create_readings, insert_readings, utc

from analysis.live import LATEST_COLUMNS, MINUTE_COLUMNS, latest, minute_means

T0 = utc(2026, 5, 17, 12, 0, 0)
PMS, GPS, MHZ = "plantower-pms5003", "nmea-gps", "winsen-mhz19"


def at(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(T0) + pd.Timedelta(seconds=seconds)


@pytest.fixture
def filled(store: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Kit a (campaign expo): PM, GPS and CO2 records over two minutes; kit b in campaign other."""
    rows = pd.DataFrame(
        [
            # campaign, device, time, sensor, pm2_5, pm10, latitude, longitude, co2, temperature
            ("expo", "kit-a", at(0), PMS, 10.0, 15.0, None, None, None, None),
            ("expo", "kit-a", at(30), PMS, 20.0, 25.0, None, None, None, None),
            ("expo", "kit-a", at(59.999), PMS, 30.0, None, None, None, None, None),
            ("expo", "kit-a", at(60), PMS, 40.0, None, None, None, None, None),
            ("expo", "kit-a", at(10), GPS, None, None, 48.8566, 2.3522, None, None),
            ("expo", "kit-a", at(40), GPS, None, None, None, None, None, None),
            ("expo", "kit-a", at(20), MHZ, None, None, None, None, 415.0, 21.5),
            ("other", "kit-b", at(5), PMS, 5.0, 7.0, None, None, None, None),
        ],
        columns=[
            "campaign", "device", "time", "sensor", "pm2_5", "pm10", "latitude", "longitude", "co2", "temperature",
        ],
    )
    insert_readings(store, rows)
    return store


def as_table(frame: pd.DataFrame, index: list[str], column: str) -> dict[tuple[str, ...], float]:
    return {tuple(key): value for key, value in zip(frame[index].itertuples(index=False), frame[column], strict=True)}


# --- latest -----------------------------------------------------------------------------


def test_latest_gives_the_newest_value_of_each_quantity_with_its_own_time_and_sensor(filled):
    frame = latest(filled, campaign="expo")
    got = {row.quantity: (row.value, row.time, row.sensor) for row in frame.itertuples()}
    assert got == {
        "pm2_5": (40.0, at(60), PMS),
        "pm10": (25.0, at(30), PMS),
        "co2": (415.0, at(20), MHZ),
        "temperature": (21.5, at(20), MHZ),
        "latitude": (48.8566, at(10), GPS),
        "longitude": (2.3522, at(10), GPS),
    }


def test_latest_ignores_nulls_instead_of_reporting_them_as_newest(filled):
    frame = latest(filled, campaign="expo")
    assert frame["value"].notna().all()
    # pm10 was NULL in the two newest PMS records and latitude NULL in the newest GPS record
    assert frame.set_index("quantity").loc["pm10", "value"] == 25.0
    assert frame.set_index("quantity").loc["latitude", "time"] == at(10)


def test_latest_is_long_format_with_utc_aware_times_in_quantity_table_order(filled):
    frame = latest(filled)
    assert list(frame.columns) == LATEST_COLUMNS
    assert str(frame["time"].dt.tz) == "UTC"
    assert list(frame["device"].unique()) == ["kit-a", "kit-b"]
    assert list(frame.loc[frame["device"] == "kit-a", "quantity"]) == [
        "pm2_5", "pm10", "co2", "temperature", "latitude", "longitude",
    ]


def test_latest_keeps_only_the_requested_campaign(filled):
    frame = latest(filled, campaign="other")
    assert as_table(frame, ["device", "quantity"], "value") == {("kit-b", "pm2_5"): 5.0, ("kit-b", "pm10"): 7.0}


def test_latest_with_max_age_drops_values_measured_too_long_ago(filled):
    frame = latest(filled, campaign="expo", max_age_s=15, now=at(70))
    assert as_table(frame, ["quantity"], "value") == {("pm2_5",): 40.0}
    assert latest(filled, max_age_s=0, now=at(3600)).empty


def test_latest_between_records_of_the_same_time_prefers_the_one_committed_last(store):
    rows = pd.DataFrame(
        {
            "campaign": "expo",
            "device": "kit-a",
            "time": [at(0), at(0)],
            "received": [at(2), at(1)],
            "sensor": ["sensirion-scd41", MHZ],
            "temperature": [22.0, 21.0],
        }
    )
    insert_readings(store, rows)
    frame = latest(store)
    assert (frame["value"].item(), frame["sensor"].item()) == (22.0, "sensirion-scd41")


def test_latest_on_an_empty_store_is_an_empty_frame_with_the_columns(store):
    frame = latest(store)
    assert frame.empty and list(frame.columns) == LATEST_COLUMNS


def test_latest_refuses_a_negative_max_age(filled):
    with pytest.raises(ValueError, match="max_age_s"):
        latest(filled, max_age_s=-1)


def test_latest_without_a_readings_table_raises_a_catalog_error():
    with pytest.raises(duckdb.CatalogException):
        latest(duckdb.connect(":memory:"))


# --- minute_means -----------------------------------------------------------------------


def test_minute_means_gives_exact_means_counts_and_coverage(filled):
    frame = minute_means(filled, since=T0, until=at(120), campaign="expo")
    assert list(frame.columns) == MINUTE_COLUMNS
    rows = {
        (row.minute, row.quantity): (row.mean, row.count, row.expected, row.coverage)
        for row in frame.itertuples()
    }
    m0, m1 = at(0), at(60)
    assert rows == {
        (m0, "pm2_5"): (20.0, 3, 60.0, 3 / 60),
        (m0, "pm10"): (20.0, 2, 60.0, 2 / 60),
        (m0, "co2"): (415.0, 1, 60.0, 1 / 60),
        (m0, "temperature"): (21.5, 1, 60.0, 1 / 60),
        (m0, "latitude"): (48.8566, 1, 60.0, 1 / 60),
        (m0, "longitude"): (2.3522, 1, 60.0, 1 / 60),
        (m1, "pm2_5"): (40.0, 1, 60.0, 1 / 60),
    }
    assert frame["count"].dtype == "int64"
    assert str(frame["minute"].dt.tz) == "UTC"


def test_minute_labels_are_the_start_of_the_interval(filled):
    frame = minute_means(filled, since=T0, campaign="expo", quantities=["pm2_5"])
    # 12:00:00, 12:00:30 and 12:00:59.999 -> 12:00; 12:01:00 -> 12:01
    assert list(frame["minute"]) == [at(0), at(60)]
    assert list(frame["count"]) == [3, 1]


def test_minute_means_rounds_the_period_out_to_whole_minutes(filled):
    frame = minute_means(filled, since=at(45), until=at(61), campaign="expo", quantities=["pm2_5"])
    assert list(frame["minute"]) == [at(0), at(60)]
    assert list(frame["count"]) == [3, 1]
    assert minute_means(filled, since=at(60), until=at(60.5), quantities=["pm2_5"])["count"].sum() == 1


def test_minute_means_accepts_naive_times_as_utc_and_aware_times_in_any_zone(filled):
    paris = pd.Timestamp(T0).tz_convert("Europe/Paris")
    naive = pd.Timestamp(T0).tz_localize(None)
    a = minute_means(filled, since=paris, quantities=["pm2_5"])
    b = minute_means(filled, since=naive, quantities=["pm2_5"])
    pd.testing.assert_frame_equal(a, b)
    assert a["count"].sum() == 5


def test_coverage_is_clipped_to_one_when_a_device_sends_faster_than_nominal(store):
    times = [at(i * 0.5) for i in range(120)]  # 2 Hz for one minute
    insert_readings(
        store, pd.DataFrame({"campaign": "expo", "device": "fast", "time": times, "sensor": PMS, "pm1": 1.0})
    )
    frame = minute_means(store, since=T0, quantities=["pm1"])
    assert (frame["count"].item(), frame["coverage"].item()) == (120, 1.0)


def test_nominal_rate_can_be_given_per_device(filled):
    frame = minute_means(filled, since=T0, until=at(60), quantities=["pm2_5"], nominal_rate_hz={"kit-a": 0.1})
    table = as_table(frame, ["device"], "expected")
    assert table == {("kit-a",): 6.0, ("kit-b",): 60.0}
    assert as_table(frame, ["device"], "coverage") == {("kit-a",): 0.5, ("kit-b",): 1 / 60}


def test_minute_means_ignores_non_finite_values(store):
    insert_readings(
        store,
        pd.DataFrame({"campaign": "expo", "device": "k", "time": [at(1), at(2), at(3)], "sensor": PMS,
                      "pm2_5": [4.0, np.nan, np.inf]}),
    )
    frame = minute_means(store, since=T0, quantities=["pm2_5"])
    assert (frame["mean"].item(), frame["count"].item()) == (4.0, 1)
    assert latest(store)["value"].tolist() == [4.0]


def test_minute_means_of_a_quantity_the_store_lacks_is_empty(store):
    store.execute('ALTER TABLE readings DROP COLUMN "battery"')
    frame = minute_means(store, since=T0, quantities=["battery"])
    assert frame.empty and list(frame.columns) == MINUTE_COLUMNS


def test_minute_means_refuses_unknown_quantities_bad_rates_and_empty_periods(filled):
    with pytest.raises(KeyError, match="unknown quantity 'pm3'"):
        minute_means(filled, since=T0, quantities=["pm3"])
    with pytest.raises(ValueError, match="nominal_rate_hz"):
        minute_means(filled, since=T0, nominal_rate_hz=0)
    with pytest.raises(ValueError, match="until"):
        minute_means(filled, since=at(60), until=at(0))


# --- property ---------------------------------------------------------------------------

records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=300_000),  # [ms] after T0
        st.one_of(st.none(), st.floats(min_value=0, max_value=2000, allow_nan=False)),
        st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=records, since_ms=st.integers(0, 300_000), length_ms=st.one_of(st.none(), st.integers(1, 300_000)))
def test_minute_means_conserves_every_value_in_the_period(rows, since_ms, length_ms):
    con = duckdb.connect(":memory:")
    create_readings(con)
    frame = pd.DataFrame(rows, columns=["device", "ms", "pm2_5", "co2"])
    frame["campaign"] = "expo"
    frame["sensor"] = PMS
    frame["time"] = pd.Timestamp(T0) + pd.to_timedelta(frame["ms"], unit="ms")
    frame = frame.drop(columns="ms")
    insert_readings(con, frame)

    since = pd.Timestamp(T0) + pd.Timedelta(milliseconds=since_ms)
    until = None if length_ms is None else since + pd.Timedelta(milliseconds=length_ms)
    means = minute_means(con, since=since, until=until, quantities=["pm2_5", "co2"])

    start = since.floor("min")
    end = None if until is None else until.ceil("min")
    inside = (frame["time"] >= start) & (True if end is None else frame["time"] < end)
    for quantity in ("pm2_5", "co2"):
        mine = means[means["quantity"] == quantity]
        assert mine["count"].sum() == frame.loc[inside, quantity].notna().sum()
        total = (mine["mean"] * mine["count"]).sum()
        assert total == pytest.approx(frame.loc[inside, quantity].sum(), rel=1e-9, abs=1e-6)
    assert (means["minute"] == means["minute"].dt.floor("min")).all()
    assert ((means["coverage"] > 0) & (means["coverage"] <= 1)).all()
    con.close()
