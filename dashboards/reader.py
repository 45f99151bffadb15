"""Store access for request handlers: a fresh DuckDB cursor per request, store errors as HTTP 503.

DuckDB connections are not shared between threads; FastAPI runs each
synchronous handler in a worker thread, so each request opens its own
cursor from ``con_factory()`` and closes it when done.

Sources
-------
- DuckDB, "Multiple Python threads", https://duckdb.org/docs/guides/python/multiple_threads
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
from fastapi import HTTPException

ConFactory = Callable[[], duckdb.DuckDBPyConnection]


class StoreReader:
    """Opens a fresh cursor per request and turns store errors into HTTP 503."""

    def __init__(self, con_factory: ConFactory) -> None:
        self._factory = con_factory

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for the current thread, closed on exit."""
        try:
            con = self._factory()
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error
        try:
            yield con
        except duckdb.CatalogException as error:
            raise HTTPException(503, "store not ready: no readings table yet") from error
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error
        finally:
            con.close()
