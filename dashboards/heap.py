"""Keep the server's start-up objects out of the garbage collector's full passes.

A full (generation 2) collection walks every container object the process
holds: after start-up that is FastAPI's and pydantic's models, the routes,
the imported modules — hundreds of thousands of objects that live as long
as the server.  Measured with 50 clients on the researcher API, each such
pass stopped the event loop for ~75 ms, and with it every request in
flight: most of the p99 (``docs/performance.md``).  :func:`freeze_startup`
collects once, then moves what survives to the permanent generation
(``gc.freeze``), which later passes skip: they take ~3-5 ms instead.
Objects made afterwards are collected as usual, and the frozen ones are
given back to the collector at exit.

Sources
-------
- Python ``gc.freeze``: https://docs.python.org/3/library/gc.html#gc.freeze
- Instagram Engineering, "Dismissing Python Garbage Collection at Instagram" (2017), and
  CPython issue 31558 (``gc.freeze`` added in 3.7): https://github.com/python/cpython/issues/75739
"""

from __future__ import annotations

import atexit
import gc


def freeze_startup() -> int:
    """Collect, then exempt every surviving object from later collections; returns how many were frozen.

    Call once, when the app is built and before it serves.  At exit the
    objects are handed back to the collector (:func:`thaw`), so that
    extension modules see their objects freed at shutdown (DuckDB's
    bindings report the ones still alive as leaks).
    """
    gc.collect()
    gc.freeze()
    atexit.unregister(thaw)
    atexit.register(thaw)
    return gc.get_freeze_count()


def thaw() -> None:
    """Give the frozen objects back to the collector and collect them (at exit, or when the server stops)."""
    gc.unfreeze()
    gc.collect()
