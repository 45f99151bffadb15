"""The researcher API: campaigns, kits, participants, readings, aggregates, trips, grids, indices, exports.

Also a read-only OGC SensorThings API v1.1 view of the public campaigns
(``/sta/v1.1``) and locally served interactive docs (``/research/docs``).
``docs/api.md`` is the user's guide.

Mount it on an application::

    from dashboards.research import ResearchSettings, research_router
    app.include_router(research_router(store.new_cursor, ResearchSettings.from_data_dir(data_dir)))

Modules
-------
context
    Pooled store cursors, the caller (token or public), rate limits, short-lived caches, error mapping.
pagecache
    The exact page cache (data versions bumped by every writer) and ETags.
blocks
    Records of past days kept in columns: pages cut from memory, kept exact by the same data versions.
auth
    API tokens (create, check, revoke) and roles.
ratelimit
    In-memory token buckets (429 with Retry-After).
models, sta_models
    Request and response models, every field bounded.
routes_registry, routes_data, sta, docs
    The routes.
analyses
    Trips, privacy-safe grids and indices shaped as responses.
settings
    :class:`ResearchSettings`, validated at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
from fastapi import APIRouter

from dashboards.research.pagecache import DataVersions
from dashboards.research.settings import ResearchSettings

__all__ = ["DataVersions", "ResearchSettings", "research_router"]


def research_router(con_factory: Callable[[], duckdb.DuckDBPyConnection], settings: ResearchSettings,
                    *, clock: Callable[[], float] | None = None,
                    versions: DataVersions | None = None) -> APIRouter:
    """Build the researcher API, the SensorThings view and the docs page as one router.

    Parameters
    ----------
    con_factory : callable returning duckdb.DuckDBPyConnection
        A new cursor on the store (``store.new_cursor``), called when the
        router's pool of idle cursors is empty; a request takes a cursor
        from the pool and gives it back, or closes it when the request
        failed.  The registry tables are created on the first one, here.
    settings : ResearchSettings
    clock : callable returning float, optional
        Monotonic seconds for the rate limits; injected by tests.
    versions : DataVersions, optional
        The store's change feed: with it, answered pages are cached
        (``settings.page_cache_mb``), past days' records are kept in
        columns (``settings.block_cache_mb``), and both are invalidated exactly.  Every writer
        of the store must bump it after each commit: ingest through
        ``worker.listeners.insert(0, versions.listener)``; a writer that
        knows its rows (an import, a push) with ``versions.listener(rows)``,
        which invalidates only their devices and days; any other writer (a
        registry change made outside this router) with
        ``versions.bump_all()``.  Without it nothing is cached.

    Returns
    -------
    fastapi.APIRouter
        Routes under ``/research/v1``, ``/sta/v1.1`` and ``/research/docs``.
    """
    from dashboards.research.context import Context
    from dashboards.research.docs import add_docs_routes
    from dashboards.research.routes_data import add_data_routes
    from dashboards.research.routes_registry import add_registry_routes
    from dashboards.research.sta import add_sta_routes

    ctx = Context(con_factory, settings, clock, versions)
    api = APIRouter(prefix="/research/v1", tags=["research"])
    add_data_routes(api, ctx)  # first: routes are matched in order, and these are the most asked for
    add_registry_routes(api, ctx)
    router = APIRouter()
    router.include_router(api)
    add_sta_routes(router, ctx)
    add_docs_routes(router)
    return router
