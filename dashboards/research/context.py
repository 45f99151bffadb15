"""What every researcher-API route depends on: a store cursor, the caller, rate limits, error mapping.

Dependencies are typed aliases (``Con``, ``Who``) bound to one
:class:`Context` per router, so two apps in one process never share state.
Errors become HTTP answers in one place: a selection or registry request
that cannot be done → 422 with the reason, an unknown campaign or
participant → 404, a store that cannot answer → 503.

Per-request costs are kept off the hot path: both dependencies are
``async`` (no thread hop: the work they do is in memory), store cursors
are kept in a pool and reused (a cursor is closed instead after a request
that failed), and the token check, the store's shape (registry present,
quantity columns) and each campaign's settings are cached for
:data:`CACHE_S`; any write request through the router (not ``GET``) drops
the campaign cache at once.  With a change feed, the devices that ever had
an assignment are kept until the registry changes (:meth:`Context.assigned`):
a page of devices nobody carried skips the participant lookup.

Read routes may answer from a :class:`~dashboards.research.pagecache.PageCache`
(:meth:`Context.answer`): exact, because every entry is keyed by the
:class:`~dashboards.research.pagecache.DataVersions` snapshot taken before
the store was read, and every writer bumps those counters after its commit
(write requests through the router bump them here).  Without a change feed
(``versions=None``) nothing is cached; answers still carry a strong ETag
and ``If-None-Match`` still gets 304.

Sources
-------
- FastAPI, dependencies with yield and ``async def``:
  https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
- DuckDB Python, one cursor per thread (``DuckDBPyConnection.cursor``):
  https://duckdb.org/docs/stable/guides/python/multiple_threads
- FastAPI, return a Response directly: https://fastapi.tiangolo.com/advanced/response-directly/
- RFC 9110 §13.1.2 (If-None-Match), §15.4.5 (304): https://www.rfc-editor.org/rfc/rfc9110
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import duckdb
from fastapi import Depends, Header, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from analysis.export.selection import SelectionError, StoreShape, assigned_devices, store_shape
from dashboards.research.auth import Caller, find_token
from dashboards.research.blocks import BlockCache
from dashboards.research.pagecache import DataVersions, PageCache, etag_of, matches
from dashboards.research.ratelimit import TokenBuckets
from dashboards.research.settings import ResearchSettings
from ingest.registry import (
    CampaignInfo,
    NotFound,
    RegistryError,
    ensure_registry_schema,
    get_campaign,
)

ConFactory = Callable[[], duckdb.DuckDBPyConnection]
CACHE_S = 5.0  # [s] how long a checked token, the store's shape or a campaign's settings are trusted
TOKEN_CACHE_S = CACHE_S
POOL_MAX = 64  # idle cursors kept for reuse (more than the server's worker threads)
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
CACHE_CONTROL = "private, no-cache"  # a client may keep a page, but asks again (If-None-Match) before using it


class Context:
    """The state shared by the routes of one researcher router."""

    def __init__(self, con_factory: ConFactory, settings: ResearchSettings,
                 clock: Callable[[], float] | None = None, versions: DataVersions | None = None) -> None:
        self.con_factory = con_factory
        self.settings = settings
        self.versions = versions if versions is not None else DataVersions()
        self.fed = versions is not None  # every writer of the store bumps ``versions``: exact caches are possible
        budget = settings.page_cache_mb * 2**20
        self.pages = PageCache(budget) if self.fed and budget else None
        self.blocks = (BlockCache(self.versions, settings.block_cache_mb * 2**20)
                       if self.fed and settings.block_cache_mb else None)
        self.pepper = settings.token_pepper.get_secret_value()
        kwargs = {"clock": clock} if clock else {}
        self.by_token = TokenBuckets(settings.token_rate, settings.token_burst, **kwargs)
        self.by_address = TokenBuckets(settings.address_rate, settings.address_burst, **kwargs)
        self._known: dict[str, tuple[float, dict[str, Any] | None]] = {}  # token -> (checked at, row)
        self._known_lock = threading.Lock()
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._idle_lock = threading.Lock()
        self._shape: tuple[float, StoreShape] | None = None
        self._assigned: tuple[int, frozenset[str]] | None = None  # (registry version read before, devices)
        self._campaigns: dict[str, tuple[float, int, CampaignInfo]] = {}  # id -> (read at, generation, info)
        self._generation = 0  # bumped by every write request
        with self.cursor() as con:
            ensure_registry_schema(con)

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        try:
            return self.con_factory()
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error

    def _release(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._idle_lock:
            if len(self._idle) < POOL_MAX:
                self._idle.append(con)
                return
        con.close()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor from the pool, back to it on exit (closed after an error); errors mapped to HTTP answers."""
        con = self._acquire()
        try:
            with self.mapped():
                yield con
        except BaseException:
            con.close()
            raise
        self._release(con)

    @staticmethod
    @contextmanager
    def mapped() -> Iterator[None]:
        try:
            yield
        except (SelectionError, RegistryError) as error:
            raise HTTPException(422, str(error)) from error
        except NotFound as error:
            raise HTTPException(404, str(error)) from error
        except duckdb.TransactionException as error:
            raise HTTPException(409, f"the store was busy with a conflicting write; retry: {error}") from error
        except duckdb.Error as error:
            raise HTTPException(503, f"store unavailable: {error}") from error

    async def con(self, request: Request) -> AsyncIterator[duckdb.DuckDBPyConnection]:
        """Dependency: a cursor for the request; a write request drops the campaign cache when done."""
        try:
            with self.cursor() as con:
                yield con
        finally:
            if request.method not in _READS:
                with self._known_lock:
                    self._generation += 1
                    self._campaigns.clear()
                self.versions.bump_all()

    def shape(self, con: duckdb.DuckDBPyConnection) -> StoreShape:
        """The store's shape (:func:`analysis.export.selection.store_shape`), cached for :data:`CACHE_S`."""
        known = self.known_shape()
        if known is not None:
            return known
        shape = store_shape(con)
        self._shape = (time.monotonic(), shape)
        return shape

    def known_shape(self) -> StoreShape | None:
        """The store's cached shape, without the store; None when :meth:`shape` must read it."""
        cached = self._shape
        return cached[1] if cached is not None and time.monotonic() - cached[0] < CACHE_S else None

    def assigned(self, con: duckdb.DuckDBPyConnection) -> frozenset[str] | None:
        """Devices ever assigned (:func:`analysis.export.selection.assigned_devices`); None without a change feed.

        Kept until the change feed's registry counter moves (exact, as the
        page cache: the counter is read before the store).
        """
        if not self.fed:
            return None
        version = self.versions.registry
        cached = self._assigned
        if cached is not None and cached[0] == version:
            return cached[1]
        devices = assigned_devices(con)
        self._assigned = (version, devices)
        return devices

    def campaign(self, con: duckdb.DuckDBPyConnection, campaign: str) -> CampaignInfo:
        """The campaign's settings (:func:`ingest.registry.get_campaign`), cached for :data:`CACHE_S`.

        Raises
        ------
        ingest.registry.NotFound
            For an unknown campaign (never cached: a new campaign is seen at once).
        """
        with self._known_lock:
            generation = self._generation  # before the read: a write meanwhile keeps it out of the cache
        known = self.known_campaign(campaign)
        if known is not None:
            return known
        now = time.monotonic()
        info = get_campaign(con, campaign)
        with self._known_lock:
            if self._generation == generation:
                if len(self._campaigns) > 10_000:
                    self._campaigns.clear()
                self._campaigns[campaign] = (now, generation, info)
        return info

    def known_campaign(self, campaign: str) -> CampaignInfo | None:
        """The campaign's cached settings, without the store; None when :meth:`campaign` must read them."""
        with self._known_lock:
            hit = self._campaigns.get(campaign)
            generation = self._generation
        if hit is not None and time.monotonic() - hit[0] < CACHE_S and hit[1] == generation:
            return hit[2]
        return None

    async def public_view(self, caller: Caller, campaign: str) -> bool:
        """:func:`view_of` the campaign, reading its settings in a worker thread only when not cached."""
        info = self.known_campaign(campaign)
        if info is None:
            info = await run_in_threadpool(self._read_campaign, campaign)
        with self.mapped():
            return view_of(info, caller, campaign)

    def _read_campaign(self, campaign: str) -> CampaignInfo:
        with self.cursor() as con:
            return self.campaign(con, campaign)

    async def answer(self, key: Hashable, devices: Sequence[str], if_none_match: str | None,
                     compute: Callable[[], bytes], days: tuple[int | None, int | None] = (None, None),
                     resident: Callable[[], bytes | None] | None = None) -> Response:
        """A JSON answer: from the page cache, else ``compute()`` in a worker thread; 304 when the ETag matches.

        ``key`` is the normalised query (with the caller's view); ``devices``
        the devices it reads (none: all) and ``days`` the UTC days it reads
        (:func:`~dashboards.research.pagecache.day_span`; None: open), whose
        versions join the key.  ``resident()``, when given, is tried first in
        the event loop: the answer from memory alone (resident blocks), or
        None when the store must be read.
        """
        async def fresh() -> tuple[bytes, str]:
            body = resident() if resident is not None else None
            if body is not None:
                return body, etag_of(body)
            return await run_in_threadpool(tagged)

        def tagged() -> tuple[bytes, str]:  # hashed in the worker thread too: hashlib lets the GIL go
            body = compute()
            return body, etag_of(body)

        pages = self.pages
        if pages is None:
            body, etag = await fresh()
        else:
            full = (key, self.versions.snapshot(devices, days))  # before the store is read: see pagecache
            hit = pages.get(full)
            if hit is None:
                body, etag = await fresh()
                pages.put(full, body, etag)
            else:
                body, etag = hit
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        if matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def address(self, request: Request) -> str:
        if self.settings.trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[0].strip()[:64]
        return request.client.host if request.client else "unknown"

    async def caller(self, request: Request,
                     authorization: Annotated[str | None, Header(max_length=200, description="Bearer <token>")] = None
                     ) -> Caller:
        """Dependency: who is asking, after the rate limit of their token or address."""
        address = self.address(request)
        if authorization is None:
            self._limit(self.by_address, address)
            return Caller(address)
        scheme, _, token = authorization.partition(" ")
        found = None
        if scheme.lower() == "bearer":
            token = token.strip()
            hit = self._cached_token(token)
            found = hit[0] if hit is not None else await run_in_threadpool(self._token, token)
        if found is None:
            self._limit(self.by_address, address)
            raise HTTPException(401, "unknown, revoked or expired token; send `Authorization: Bearer qsec_…`",
                                headers={"WWW-Authenticate": 'Bearer realm="qsec"'})
        caller = Caller(address, found["id"], found["role"], found["campaign"], found["participant"])
        self._limit(self.by_token, caller.token_id or address)
        return caller

    def _cached_token(self, token: str) -> tuple[dict[str, Any] | None] | None:
        """``(row,)`` when the token was checked less than :data:`TOKEN_CACHE_S` ago, else None."""
        with self._known_lock:
            hit = self._known.get(token)
        if hit is not None and time.monotonic() - hit[0] < TOKEN_CACHE_S:
            return (hit[1],)
        return None

    def _token(self, token: str) -> dict[str, Any] | None:
        """The token's row, checked in the store and cached (a revoked token stops working within the cache)."""
        now = time.monotonic()
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


def view_of(info: CampaignInfo, caller: Caller, campaign: str) -> bool:
    """False for the researcher view, True for the public view; 401/403/404 when neither is allowed."""
    if caller.reads(campaign):
        return False
    if not info.public:
        if caller.public:
            raise forbid(caller, f"read campaign {campaign}")
        raise NotFound(f"no campaign {campaign!r} for this token")
    return True


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
