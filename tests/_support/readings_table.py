"""The store's ``readings`` table, for tests.

Tests build a real DuckDB store with ingest's schema code and insert rows from a pandas
DataFrame in one statement (``INSERT … BY NAME``), as ingest does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from ingest.store import create_schema
from qsec.quantities import QUANTITIES

def create_readings(con: duckdb.DuckDBPyConnection) -> None:
    """Create the store's tables on ``con`` with ingest's own schema code."""
    create_schema(con)


def insert_readings(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Insert a DataFrame of records in one statement; repeats are no-ops.

    ``frame`` has some of the table's columns; ``time`` and ``received``
    may be aware (converted to naive UTC) or naive UTC.  Missing ``boot``,
    ``seq``, ``flags`` and ``received`` are filled in.
    """
    frame = frame.copy()
    if "boot" not in frame:
        frame["boot"] = "b0"
    if "seq" not in frame:
        frame["seq"] = frame.groupby(["device", "boot"]).cumcount().astype("int64")
    if "flags" not in frame:
        frame["flags"] = 0
    if "received" not in frame:
        frame["received"] = frame["time"]
    for name in ("time", "received"):
        values = pd.to_datetime(frame[name])
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        frame[name] = values
    for name in QUANTITIES:
        if name in frame:
            frame[name] = frame[name].astype("float64")
    con.register("incoming_readings", frame)
    try:
        con.execute("INSERT INTO readings BY NAME SELECT * FROM incoming_readings ON CONFLICT DO NOTHING")
    finally:
        con.unregister("incoming_readings")


def utc(*args: int) -> datetime:
    """An aware UTC datetime: ``utc(2026, 5, 17, 12, 3, 30)``."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
