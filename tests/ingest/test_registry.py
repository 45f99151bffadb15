"""The campaign registry: campaigns, kits, participants, opt-outs and the deletion log, on a real DuckDB store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from campaign import START, make_campaign
from readings_table import create_readings, insert_readings

from ingest import registry as reg


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    db = duckdb.connect(":memory:")
    create_readings(db)
    reg.ensure_registry_schema(db)
    reg.ensure_registry_schema(db)  # idempotent
    yield db
    db.close()


def test_a_campaign_opens_then_closes_and_stays_closed(con: duckdb.DuckDBPyConnection) -> None:
    info = reg.create_campaign(con, "lyon-2026", title="Lyon", public=True)
    assert (info.status, info.licence, info.min_participants) == ("draft", "ODbL-1.0", 3)
    opened = reg.set_status(con, "lyon-2026", "open", datetime(2026, 3, 1, tzinfo=UTC))
    assert opened.status == "open" and opened.starts == datetime(2026, 3, 1)
    closed = reg.set_status(con, "lyon-2026", "closed", datetime(2026, 6, 1, tzinfo=UTC))
    assert closed.ends == datetime(2026, 6, 1)
    with pytest.raises(reg.RegistryError, match="stays closed"):
        reg.set_status(con, "lyon-2026", "open")
    with pytest.raises(reg.RegistryError, match="must match"):
        reg.create_campaign(con, "Lyon 2026")


def test_a_device_belongs_to_one_kit_and_a_kit_to_one_participant_at_a_time(con: duckdb.DuckDBPyConnection) -> None:
    reg.create_campaign(con, "c")
    kit = reg.register_kit(con, "c", "k1", {"kit-01": ["plantower-pms5003", "nmea-gps"]})
    assert kit.devices == {"kit-01": ("plantower-pms5003", "nmea-gps")}
    with pytest.raises(reg.RegistryError, match="already belongs to kit k1"):
        reg.register_kit(con, "c", "k2", {"kit-01": []})
    a, b = reg.add_participant(con, "c"), reg.add_participant(con, "c")
    assert a != b and a.startswith("p-") and len(a) == 12
    reg.assign_kit(con, a, "k1", datetime(2026, 5, 1), datetime(2026, 5, 10))
    with pytest.raises(reg.RegistryError, match=f"already assigned to {a}"):
        reg.assign_kit(con, b, "k1", datetime(2026, 5, 5))
    reg.assign_kit(con, b, "k1", datetime(2026, 5, 10))
    assert [r[0] for r in reg.participant_ranges(con, b)] == ["kit-01"]


def test_deleting_a_participant_removes_what_they_carried_and_logs_counts_only(con: duckdb.DuckDBPyConnection) -> None:
    insert_readings(con, make_campaign(hours=0.1).records)
    reg.create_campaign(con, "versailles")
    reg.register_kit(con, "versailles", "k2", {"kit-02": ["plantower-pms5003"]})
    who = reg.add_participant(con, "versailles")
    middle = START + pd.Timedelta(minutes=3)
    reg.assign_kit(con, who, "k2", middle)
    reg.add_home_zone(con, who, 48.8, 2.1, 150)
    reg.add_opt_out(con, who, middle, middle + pd.Timedelta(minutes=1), "trip")
    (carried,) = con.execute("SELECT count(*) FROM readings WHERE device = 'kit-02' AND time >= ?",
                             [middle]).fetchall()[0]
    (total,) = con.execute("SELECT count(*) FROM readings").fetchall()[0]
    done = reg.delete_participant(con, who)
    assert done.readings == carried > 0 and done.registry_rows == 3
    assert con.execute("SELECT count(*) FROM readings").fetchall()[0][0] == total - carried
    assert con.execute("SELECT count(*) FROM readings WHERE device = 'kit-02'").fetchall()[0][0] > 0  # before
    (log,) = reg.deletions(con, "versailles")
    assert log.readings == carried and "kit-02" in log.what and "48.8" not in log.what
    with pytest.raises(reg.NotFound, match="was deleted"):
        reg.add_opt_out(con, who, middle, middle + pd.Timedelta(minutes=1))


def test_opt_outs_and_home_zones_are_checked(con: duckdb.DuckDBPyConnection) -> None:
    reg.create_campaign(con, "c")
    who = reg.add_participant(con, "c")
    with pytest.raises(reg.RegistryError, match="must end after"):
        reg.add_opt_out(con, who, datetime(2026, 5, 2), datetime(2026, 5, 1))
    with pytest.raises(reg.RegistryError, match="WGS84"):
        reg.add_home_zone(con, who, 123.0, 2.0)
    with pytest.raises(reg.NotFound, match="no participant"):
        reg.add_home_zone(con, "p-unknown000", 48.8, 2.1)
