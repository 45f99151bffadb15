"""Fixtures for analysis tests: an in-memory store with the real ``readings`` table."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from readings_table import create_readings


@pytest.fixture
def store() -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty in-memory DuckDB store with table ``readings``."""
    con = duckdb.connect(":memory:")
    create_readings(con)
    yield con
    con.close()
