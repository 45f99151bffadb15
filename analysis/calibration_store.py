"""Calibration models in the store: the DuckDB table ``calibrations``, one row per (model id, version).

Times are kept as naive UTC ``TIMESTAMP`` like everywhere in the store
(``docs/store.md``); coefficients as a JSON object.

Sources
-------
- DuckDB documentation (https://duckdb.org/docs/): the ``CREATE TABLE``
  statement, prepared statement parameters in the Python API, and the
  ``duckdb_tables()`` metadata function.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

import duckdb
import pandas as pd

from analysis.calibration_model import CalibrationModel
from analysis.times import to_store_time

TABLE = "calibrations"
_TIMES = ("window_start", "window_end", "created")


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``calibrations`` table on ``con`` if it is missing (idempotent).

    One row per (model_id, version); ``coefficients`` is a JSON object;
    times are naive UTC ``TIMESTAMP``, as everywhere in the store.
    """
    con.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {TABLE} (
            model_id VARCHAR NOT NULL, version INTEGER NOT NULL, kind VARCHAR NOT NULL,
            quantity VARCHAR NOT NULL, source VARCHAR NOT NULL, coefficients VARCHAR NOT NULL,
            device VARCHAR, window_start TIMESTAMP, window_end TIMESTAMP, n BIGINT NOT NULL,
            r2 DOUBLE, rmse DOUBLE, mae DOUBLE, reference VARCHAR, created TIMESTAMP NOT NULL,
            notes VARCHAR, PRIMARY KEY (model_id, version))
        """
    )


def save(con: duckdb.DuckDBPyConnection, model: CalibrationModel) -> CalibrationModel:
    """Store a model as the next version of its id; return it with that version.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection on the store; the table is created if missing.
    model : CalibrationModel

    Returns
    -------
    CalibrationModel
        ``model`` with ``version`` = 1 + the highest stored for its id.
    """
    create_table(con)
    latest = _scalar(con, f"SELECT coalesce(max(version), 0) FROM {TABLE} WHERE model_id = ?", [model.model_id])
    stored = replace(model, version=int(latest) + 1)
    row = asdict(stored)
    row["coefficients"] = json.dumps(stored.coefficients, sort_keys=True)
    for name in _TIMES:  # the store keeps naive UTC timestamps (docs/store.md)
        row[name] = None if row[name] is None else to_store_time(row[name])
    columns = list(row)
    con.execute(
        f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [row[c] for c in columns],
    )
    return stored


def load(con: duckdb.DuckDBPyConnection, model_id: str, version: int | None = None) -> CalibrationModel:
    """Read a stored model: a given version, or the latest.

    Works on a read-only connection; the table is not created here.

    Raises
    ------
    LookupError
        If no such model is stored (the message lists the stored ids).
    """
    if not _scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [TABLE]):
        raise LookupError(f"no calibration {model_id!r}: this store has no {TABLE!r} table yet; save() a model first")
    sql = f"SELECT * FROM {TABLE} WHERE model_id = ? " + ("AND version = ?" if version is not None else "")
    params: list[Any] = [model_id] + ([version] if version is not None else [])
    cursor = con.execute(sql + " ORDER BY version DESC LIMIT 1", params)
    names = [column[0] for column in cursor.description or []]
    found = cursor.fetchone()
    if found is None:
        known = [r[0] for r in con.execute(f"SELECT DISTINCT model_id FROM {TABLE} ORDER BY 1").fetchall()]
        raise LookupError(f"no calibration {model_id!r} version {version or 'latest'}; stored ids: {known}")
    row = dict(zip(names, found, strict=True))
    row["coefficients"] = json.loads(row["coefficients"])
    for name in _TIMES:
        row[name] = None if row[name] is None else pd.Timestamp(row[name]).tz_localize("UTC").isoformat()
    return CalibrationModel(**row)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Any:
    """The single value an aggregate query returns."""
    row = con.execute(sql, params).fetchone()
    return None if row is None else row[0]
