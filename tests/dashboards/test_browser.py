"""The kiosk page in headless Chromium, offline: live updates, language switch, screenshot."""

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
from harness import CHROMIUM, CHROMIUM_ARGS, require_chromium, wait_until
from kiosk_data import CAMPAIGN, KITS, PMS, all_kits
from readings_table import insert_readings

from dashboards.app import create_app
from dashboards.live import LiveHub

pytestmark = pytest.mark.browser

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Kiosk:
    """An open kiosk page and what went wrong while it ran."""

    page: Any
    url: str
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def number(self, device: str, quantity: str) -> Any:
        return self.page.locator(f'[data-device="{device}"] [data-q="{quantity}"] .num')

    def assert_clean(self) -> None:
        assert self.blocked == [], "the page asked for something outside 127.0.0.1"
        assert self.failed == [], "a request failed"
        assert self.errors == [], "the console reported errors"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_kiosk(browser: Any, db: duckdb.DuckDBPyConnection, hub: LiveHub, serve) -> Iterator[Callable[..., Kiosk]]:
    """Open the page of a server over three realistic kits; every outside request is aborted."""
    insert_readings(db, all_kits(pd.Timestamp.now(tz="UTC")))
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))
    contexts: list[Any] = []

    def _open(query: str = "", clock: bool = False) -> Kiosk:
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        kiosk = Kiosk(page, f"{base}/{query}")

        def guard(route: Any) -> None:
            if urlparse(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                kiosk.blocked.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.on("requestfailed", lambda request: kiosk.failed.append(f"{request.url}: {request.failure}"))
        page.on("console", lambda msg: kiosk.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda error: kiosk.errors.append(str(error)))
        if clock:
            page.clock.install()
        page.goto(kiosk.url)
        kiosk.number(KITS[0].device, "pm2_5").filter(has_not_text="—").wait_for(timeout=5000)
        wait_until(lambda: hub.subscribers >= len(contexts), timeout=5, what="the page's event stream")
        return kiosk

    yield _open
    for context in contexts:
        context.close()


def reading(device: str, values: dict[str, float], sensor: str = PMS) -> dict[str, Any]:
    now_ms = time.time_ns() // 1_000_000
    return {"campaign": CAMPAIGN, "device": device, "sensor": sensor, "t": now_ms, "values": values}


def test_a_published_reading_replaces_the_number_on_screen_within_two_seconds(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    device = KITS[1].device
    expect(kiosk.page.locator("#status")).to_have_attribute("data-status", "live", timeout=3000)
    hub.publish(reading(device, {"pm2_5": 87.0, "pm10": 120.0}))
    expect(kiosk.number(device, "pm2_5")).to_have_text("87,0", timeout=2000)
    expect(kiosk.number(device, "pm10")).to_have_text("120,0", timeout=2000)
    hero = kiosk.page.locator(f'[data-device="{device}"] .hero')
    expect(hero.locator(".band")).to_have_text("Extrêmement mauvais")
    expect(hero.locator(".age")).to_have_text("il y a 0 s", timeout=2000)
    kiosk.assert_clean()


def test_a_reading_from_a_new_kit_adds_its_card(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    hub.publish(reading("kit-nouveau", {"pm2_5": 4.0}))
    expect(kiosk.number("kit-nouveau", "pm2_5")).to_have_text("4,0", timeout=2000)
    expect(kiosk.page.locator(".kit")).to_have_count(4)
    kiosk.assert_clean()


def test_the_language_switch_changes_every_label(open_kiosk):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    page = kiosk.page
    device = KITS[0].device
    french = page.locator("body").inner_text()
    for text in ("Qualité de l'air en direct", "Capteurs citoyens à bas coût — valeurs indicatives",
                 "Particules fines PM2,5", "Position GPS", "moy. 1 min", "il y a", "English"):
        assert text in french

    page.locator("#lang-switch").click()

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".note")).to_have_text("Low-cost citizen sensors — indicative values")
    expect(page.locator("#status")).to_have_text("Live")
    card = page.locator(f'[data-device="{device}"]')
    expect(card.locator('[data-q="pm2_5"] .label')).to_have_text("PM2.5 mass concentration")
    expect(card.locator('[data-q="co2"] .label')).to_have_text("CO2 mole fraction")
    expect(card.locator('[data-q="position"] .label')).to_have_text("GPS position")
    expect(card.locator('[data-q="pm2_5"] .age')).to_contain_text(" ago")
    expect(card.locator('[data-q="pm2_5"] .mean')).to_contain_text("1-min mean: ")
    english = page.locator("body").inner_text()
    for text in ("Capteurs", "Particules", "il y a", "moy.", "En direct", "Position GPS", "maintenant", "Bon "):
        assert text not in english, text
    assert "lang=en" in page.url

    page.locator("#lang-switch").click()
    expect(page.locator(".note")).to_have_text("Capteurs citoyens à bas coût — valeurs indicatives")
    kiosk.assert_clean()


def test_the_badge_says_paused_when_no_reading_came_for_ten_seconds(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk(clock=True)
    status = kiosk.page.locator("#status")
    expect(status).to_have_attribute("data-status", "live")
    kiosk.page.clock.fast_forward("00:12")
    expect(status).to_have_attribute("data-status", "stale", timeout=3000)
    expect(status).to_have_text("Données en pause")
    hub.publish(reading(KITS[0].device, {"pm2_5": 9.0}))
    expect(status).to_have_attribute("data-status", "live", timeout=3000)
    kiosk.assert_clean()


def test_the_badge_says_paused_when_the_event_stream_is_cut(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    hub.close()  # ends every stream: the page loses its link and keeps trying
    status = kiosk.page.locator("#status")
    expect(status).to_have_attribute("data-status", "offline", timeout=3000)
    expect(status).to_have_text("Données en pause — connexion perdue")
    kiosk.assert_clean()


def test_screenshot_of_three_live_kits(open_kiosk, hub, tmp_path):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    page = kiosk.page
    expect(page.locator(".chart .trace")).to_have_count(3, timeout=5000)
    for kit in KITS:
        hub.publish(reading(kit.device, {"pm2_5": round(kit.pm2_5 * 1.1), "pm1": round(kit.pm2_5 * 0.75),
                                         "pm10": round(kit.pm2_5 * 1.6)}))
    expect(kiosk.number(KITS[2].device, "pm2_5")).to_have_text(f"{round(KITS[2].pm2_5 * 1.1)},0", timeout=2000)
    expect(page.locator("#status")).to_have_attribute("data-status", "live")
    page.wait_for_timeout(1100)  # one tick of the freshness counters
    # Screenshots go to docs/ only when asked (QSEC_UPDATE_SCREENSHOTS=1), so a test run leaves the tree clean.
    shots = DOCS_SHOTS if os.environ.get("QSEC_UPDATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    SCREENSHOT = shots / "dashboard.png"
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000
    page.locator("#lang-switch").click()
    expect(page.locator("#status")).to_have_text("Live")
    page.screenshot(path=str(SCREENSHOT.with_name("dashboard-en.png")))
    kiosk.assert_clean()
