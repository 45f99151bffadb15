"""Fixtures for dashboard tests: a real DuckDB file, a live hub, a real uvicorn server, headless Chromium."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import pandas as pd
import pytest
from fastapi import FastAPI
from harness import CHROMIUM, CHROMIUM_ARGS, require_chromium
from dashboards.serve_thread import Server, start_server
from kiosk_data import exhibition_day
from readings_table import create_readings

from dashboards.live import LiveHub


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB store file with table ``readings``, as ingest would own it."""
    con = duckdb.connect(str(tmp_path / "qsec.duckdb"))
    create_readings(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    """A day of lent kits and a kit walking now, made once per module (the simulator takes a second)."""
    return exhibition_day(pd.Timestamp.now(tz="UTC"))


@pytest.fixture
def hub() -> Iterator[LiveHub]:
    """The live hub; closed at the end so open event streams end."""
    live = LiveHub()
    yield live
    live.close()


@pytest.fixture
def serve(hub: LiveHub) -> Iterator[Callable[[FastAPI], str]]:
    """Start apps on real servers; returns their base URL.  Streams are ended before shutdown."""
    servers: list[Server] = []

    def _serve(app: FastAPI) -> str:
        servers.append(start_server(app))
        return servers[-1].url

    yield _serve
    hub.close()
    for server in servers:
        server.stop()


SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """docs/screenshots when QSEC_UPDATE_SCREENSHOTS=1 (so a test run leaves the tree clean), else tmp_path."""
    folder = SHOTS if os.environ.get("QSEC_UPDATE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Kiosk:
    """An open screen page and what went wrong while it ran."""

    page: Any
    url: str
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: list[tuple[str, Any]] = field(default_factory=list)

    def number(self, device: str, quantity: str) -> Any:
        return self.page.locator(f'[data-device="{device}"] [data-q="{quantity}"] .num')

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Poll ``predicate`` while Playwright keeps serving the page (a plain sleep would stall its requests)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            self.page.wait_for_timeout(50)

    def assert_clean(self) -> None:
        assert self.blocked == [], "the page asked for something outside 127.0.0.1"
        assert self.failed == [], "a request failed"
        assert self.errors == [], "the console reported errors"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, one per test module.

    Not one per session: Playwright's synchronous API keeps an event loop running in the main
    thread, which would break the tests that call ``asyncio.run`` after it.
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Kiosk]]:
    """Open pages at 1920×1080 with every request not for 127.0.0.1 aborted; JSON answers are kept."""
    contexts: list[Any] = []

    def _open(url: str, *, clock: bool = False, keep_json: bool = False) -> Kiosk:
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        kiosk = Kiosk(page, url)

        def guard(route: Any) -> None:
            if urlparse(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                kiosk.blocked.append(route.request.url)
                route.abort()

        def answer(response: Any) -> None:
            if keep_json and "application/json" in (response.headers.get("content-type") or ""):
                kiosk.answers.append((response.url, response.json()))

        page.route("**/*", guard)
        page.on("requestfailed", lambda request: kiosk.failed.append(f"{request.url}: {request.failure}"))
        page.on("console", lambda msg: kiosk.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda error: kiosk.errors.append(str(error)))
        page.on("response", answer)
        if clock:
            page.clock.install()
        page.goto(url)
        return kiosk

    yield _open
    for context in contexts:
        context.close()
