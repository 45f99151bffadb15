"""A short soak of the live screen (benchmarks/soak_screen.py): page heap and server memory stay bounded."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from harness import require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_soak():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("soak_screen", BENCHMARKS / "soak_screen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_minute_of_live_events_grows_neither_the_pages_heap_nor_the_servers_memory(tmp_path):
    require_chromium()
    soak = load_soak()
    errors: list[str] = []
    samples = soak.soak(60.0, 5.0, tmp_path / "soak.csv", rate_hz=2.0, errors=errors)
    assert errors == []
    assert len(samples) >= 10 and samples[-1].events > 600
    heap = [s.js_heap_used_bytes for s in samples]
    rss = [s.server_rss_bytes for s in samples]
    assert soak.growth(heap) < 1.25, f"the page's heap grew: {heap}"
    assert max(heap) < 20e6
    assert soak.growth(rss) < 1.10, f"the server's memory grew: {rss}"
    assert len({s.dom_nodes for s in samples[1:]}) <= 3  # the page reuses its nodes
    assert (tmp_path / "soak.csv").read_text().startswith("t_s,js_heap_used_bytes")
