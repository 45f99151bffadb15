"""The live view in headless Chromium, offline: live updates, language switch, freshness badge, screenshot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pandas as pd
import pytest
from kiosk_data import CAMPAIGN, KITS, PMS, all_kits
from readings_table import insert_readings

from dashboards.app import create_app
from dashboards.live import LiveHub

pytestmark = pytest.mark.browser


@pytest.fixture
def open_kiosk(open_page, db: duckdb.DuckDBPyConnection, hub: LiveHub, serve) -> Iterator[Callable[..., Any]]:
    """Open the live page of a server over three realistic kits; every outside request is aborted."""
    insert_readings(db, all_kits(pd.Timestamp.now(tz="UTC")))
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))
    opened = 0

    def _open(query: str = "", clock: bool = False) -> Any:
        nonlocal opened
        kiosk = open_page(f"{base}/{query}", clock=clock)
        opened += 1
        kiosk.number(KITS[0].device, "pm2_5").filter(has_not_text="—").wait_for(timeout=5000)
        kiosk.wait(lambda: hub.subscribers >= opened, timeout=15, what="the page's event stream")
        return kiosk

    yield _open


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
    expect(hero).to_have_attribute("data-band", "extremely_poor")
    expect(hero.locator(".age")).to_have_text("instantané · il y a 0 s", timeout=2000)
    pm10 = kiosk.page.locator(f'[data-device="{device}"] [data-q="pm10"] .now-chip')
    expect(pm10).to_have_text("Très mauvais")  # 120 µg/m³ of PM10: EAQI 2021 band 100–150
    kiosk.assert_clean()


def test_a_reading_from_a_new_kit_adds_its_card(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    hub.publish(reading("kit-nouveau", {"pm2_5": 4.0, "co2": 420.0}))
    expect(kiosk.number("kit-nouveau", "pm2_5")).to_have_text("4,0", timeout=2000)
    expect(kiosk.page.locator(".kit")).to_have_count(4)
    # the new card narrowed the others: their labels were fitted again (fit, or shrunk as far as allowed)
    overflowing = kiosk.page.evaluate("""() => [...document.querySelectorAll('.kit .block-head .label')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1 && !el.style.fontSize)
        .map((el) => el.closest('.kit').dataset.device + ': ' + el.textContent)""")
    assert overflowing == [], f"labels cut off and never fitted: {overflowing}"
    kiosk.assert_clean()


def test_the_language_switch_changes_every_label(open_kiosk):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    page = kiosk.page
    device = KITS[0].device
    french = page.locator("body").inner_text()
    for text in ("Qualité de l'air en direct", "Capteurs citoyens à bas coût — valeurs indicatives",
                 "Particules fines PM2,5", "Position GPS", "moy. 24 h", "il y a", "English", "instantané"):
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
    expect(card.locator('[data-q="pm2_5"] .mean')).to_contain_text("24-h mean: ")
    english = page.locator("body").inner_text()
    for text in ("Capteurs", "Particules", "il y a", "moy.", "En direct", "Position GPS", "maintenant", "Bon ",
                 "instantané", "glissantes"):
        assert text not in english, text
    assert "lang=en" in page.url

    page.locator("#lang-switch").click()
    expect(page.locator(".note")).to_have_text("Capteurs citoyens à bas coût — valeurs indicatives")
    kiosk.assert_clean()


def test_the_badge_says_paused_when_no_reading_came_for_ten_seconds(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk("?replay_after=0", clock=True)
    status = kiosk.page.locator("#status")
    expect(status).to_have_attribute("data-status", "live")
    kiosk.page.clock.fast_forward("00:12")
    expect(status).to_have_attribute("data-status", "stale", timeout=3000)
    expect(status).to_have_text("Données en pause")
    age = kiosk.page.locator(f'[data-device="{KITS[0].device}"] [data-q="pm2_5"] .age')
    expect(age).to_have_text(re.compile(r"il y a \d+ (s|min)"))  # the last values stay, with their age
    expect(kiosk.number(KITS[0].device, "pm2_5")).not_to_have_text("—")
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
    expect(kiosk.number(KITS[0].device, "pm2_5")).not_to_have_text("—")  # the last values stay on screen
    kiosk.assert_clean()


def test_screenshot_of_three_live_kits(open_kiosk, hub, shots):
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
    page.screenshot(path=str(shots / "dashboard.png"))
    assert (shots / "dashboard.png").stat().st_size > 20_000
    page.locator("#lang-switch").click()
    expect(page.locator("#status")).to_have_text("Live")
    page.screenshot(path=str(shots / "dashboard-en.png"))
    kiosk.assert_clean()
