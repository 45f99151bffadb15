"""Start-up objects are frozen out of the collector's passes; later objects are still collected."""

from __future__ import annotations

import gc
import weakref

from dashboards.heap import freeze_startup


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_frozen_objects_are_skipped_and_new_cycles_still_collected() -> None:
    kept = [_Node() for _ in range(1000)]
    try:
        frozen = freeze_startup()
        walked = {id(o) for o in gc.get_objects()}  # what a full pass walks
        assert frozen >= 1000 and not any(id(n) in walked for n in kept)
        assert len(walked) < frozen
        later = _Node()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
