"""What every researcher-API route depends on: a store cursor, the caller, rate limits, error mapping.

Dependencies are typed aliases (``Con``, ``Who``) bound to one
:class:`Context` per router, so two apps in one process never share state.
Errors become HTTP answers in one place: a selection or registry request
that cannot be done → 422 with the reason, an unknown campaign or
participant → 404, a store that cannot answer → 503.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import duckdb
from fastapi import Depends, Header, HTTPException, Request

from analysis.export.selection import SelectionError
from dashboards.research.auth import Caller, find_token
from dashboards.research.ratelimit import TokenBuckets
from dashboards.research.settings import ResearchSettings
from ingest.registry import NotFound, RegistryError, ensure_registry_schema

ConFactory = Callable[[], duckdb.DuckDBPyConnection]
TOKEN_CACHE_S = 5.0  # [s] how long a checked token is trusted without asking the store again


class Context:
    """The state shared by the routes of one researcher router."""

    def __init__(self, con_factory: ConFactory, settings: ResearchSettings,
                 clock: Callable[[], float] | None = None) -> None:
        self.con_factory = con_factory
        self.settings = settings
        self.pepper = settings.token_pepper.get_secret_value()
        kwargs = {"clock": clock} if clock else {}
        self.by_token = TokenBuckets(settings.token_rate, settings.token_burst, **kwargs)
        self.by_address = TokenBuckets(settings.address_rate, settings.address_burst, **kwargs)
        self._known: dict[str, tuple[float, dict[str, Any] | None]] = {}  # token -> (checked at, row)
        self._known_lock = threading.Lock()
        with self.cursor() as con:
            ensure_registry_schema(con)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor, closed on exit; errors mapped to HTTP answers."""
        try:
            con = self.con_factory()
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error
        try:
            yield con
        except (SelectionError, RegistryError) as error:
            raise HTTPException(422, str(error)) from error
        except NotFound as error:
            raise HTTPException(404, str(error)) from error
        except duckdb.TransactionException as error:
            raise HTTPException(409, f"the store was busy with a conflicting write; retry: {error}") from error
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error
        finally:
            con.close()

    def con(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Dependency: a cursor for the request."""
        with self.cursor() as con:
            yield con

    def address(self, request: Request) -> str:
        if self.settings.trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[0].strip()[:64]
        return request.client.host if request.client else "unknown"

    def caller(self, request: Request,
               authorization: Annotated[str | None, Header(max_length=200, description="Bearer <token>")] = None
               ) -> Caller:
        """Dependency: who is asking, after the rate limit of their token or address."""
        address = self.address(request)
        if authorization is None:
            self._limit(self.by_address, address)
            return Caller(address)
        scheme, _, token = authorization.partition(" ")
        found = self._token(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            self._limit(self.by_address, address)
            raise HTTPException(401, "unknown, revoked or expired token; send `Authorization: Bearer qsec_…`",
                                headers={"WWW-Authenticate": 'Bearer realm="qsec"'})
        caller = Caller(address, found["id"], found["role"], found["campaign"], found["participant"])
        self._limit(self.by_token, caller.token_id or address)
        return caller

    def _token(self, token: str) -> dict[str, Any] | None:
        """The token's row, from a cache of :data:`TOKEN_CACHE_S` (a revoked token stops working within it)."""
        now = time.monotonic()
        with self._known_lock:
            hit = self._known.get(token)
        if hit is not None and now - hit[0] < TOKEN_CACHE_S:
            return hit[1]
        with self.cursor() as con:
            found = find_token(con, self.pepper, token)
        with self._known_lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[token] = (now, found)
        return found

    def charge(self, caller: Caller, cost: int) -> None:
        """Take ``cost`` more from the caller's bucket (exports cost more than a page)."""
        buckets = self.by_address if caller.public else self.by_token
        self._limit(buckets, caller.token_id or caller.address, cost)

    @staticmethod
    def _limit(buckets: TokenBuckets, key: str, cost: float = 1.0) -> None:
        wait = buckets.take(key, cost)
        if wait > 0:
            raise HTTPException(429, f"too many requests; retry in {math.ceil(wait)} s",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})


def forbid(caller: Caller, what: str) -> HTTPException:
    """401 for the public (a token would help), 403 for a token without the right."""
    if caller.public:
        return HTTPException(401, f"{what} needs an API token (Authorization: Bearer …)",
                             headers={"WWW-Authenticate": 'Bearer realm="qsec"'})
    return HTTPException(403, f"this token may not {what}")


def aliases(ctx: Context) -> tuple[object, object]:
    """The typed dependency aliases ``Con`` and ``Who`` bound to ``ctx``."""
    con = Annotated[duckdb.DuckDBPyConnection, Depends(ctx.con)]
    who = Annotated[Caller, Depends(ctx.caller)]
    return con, who
