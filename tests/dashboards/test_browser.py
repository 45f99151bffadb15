"""The live view in headless Chromium, offline: live updates, language switch, freshness badge, screenshot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pandas as pd
import pytest
from kiosk_data import CAMPAIGN, KITS, MANY_KITS, PMS, all_kits
from readings_table import insert_readings
from screen_checks import SIZES, contrast_problems, layout_problems, problems_at_every_size, settled

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


CARD_PARTS = (".kit-name, .block-head, .label, .value, .num, .meta, .age-line, .mean, .chip, .chart, .tiles, .tile, "
              ".position, .coord")


def card_problems(page: Any) -> list[str]:
    """Parts of the live cards drawn outside their card, or text cut off."""
    return layout_problems(page, ".kit", CARD_PARTS, "card")


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
                 "Particules fines PM2,5", "Position GPS", "moy. 24\u202fh\u202f:", "il y a", "English", "instantané"):
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
    expect(age).to_have_text(re.compile(r"il y a \d+\s(s|min)"))  # the last values stay, with their age
    expect(kiosk.number(KITS[0].device, "pm2_5")).not_to_have_text("—")
    hub.publish(reading(KITS[0].device, {"pm2_5": 9.0}))
    expect(status).to_have_attribute("data-status", "live", timeout=3000)
    kiosk.assert_clean()


def test_the_badge_says_paused_when_the_event_stream_is_cut(open_kiosk, hub):
    from playwright.sync_api import expect

    kiosk = open_kiosk()
    kiosk.page.set_viewport_size({"width": 1280, "height": 720})  # the badge's text is no longer "large" there
    hub.close()  # ends every stream: the page loses its link and keeps trying
    status = kiosk.page.locator("#status")
    expect(status).to_have_attribute("data-status", "offline", timeout=3000)
    expect(status).to_have_text("Données en pause — connexion perdue")
    assert contrast_problems(kiosk.page, ".top *") == []
    assert problems_at_every_size(kiosk.page, lambda: layout_problems(kiosk.page, ".top", "*", "header")) == {}
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


@pytest.fixture
def open_many(open_page, db: duckdb.DuckDBPyConnection, hub: LiveHub, serve) -> Callable[..., Any]:
    """Open the live page of a server over the twelve kits of :data:`MANY_KITS`."""
    insert_readings(db, all_kits(pd.Timestamp.now(tz="UTC"), kits=MANY_KITS))
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))

    def _open(query: str = "", clock: bool = False) -> Any:
        kiosk = open_page(f"{base}/screen/live{query}", clock=clock)
        last = kiosk.page.locator(".kit").nth(len(MANY_KITS) - 1)
        last.locator(".hero .num").filter(has_not_text="—").wait_for(timeout=5000)
        kiosk.page.locator(".kit .chart .trace").nth(len(MANY_KITS) - 1).wait_for(timeout=5000)  # the means are in
        return kiosk

    return _open


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_twelve_kits_each_fit_their_card_on_every_screen(open_many, lang, shots):
    kiosk = open_many(f"?lang={lang}&replay_after=0")
    page = kiosk.page
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        assert settled(page, lambda: card_problems(page)) == [], f"{width}×{height}"
        if lang == "fr" and width in (1920, 1080):
            page.screenshot(path=str(shots / f"screen-live-12-kits{'-portrait' if width < height else ''}.png"))
        smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('.kit .hero .num')]
            .map((el) => parseFloat(getComputedStyle(el).fontSize)))""")
        assert smallest >= 0.045 * min(width, height), f"hero numbers of {smallest:.0f} px at {width}×{height}"
        inside = layout_problems(page, ".kits", ".kit", "grid")
        assert inside == [], f"cards off the screen at {width}×{height}"
    kiosk.assert_clean()


def test_kits_joining_one_by_one_over_the_stream_keep_every_card_fitted(open_page, db, hub, serve):
    from playwright.sync_api import expect

    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))
    kiosk = open_page(f"{base}/screen/live?replay_after=0")
    page = kiosk.page
    expect(page.locator("#live-waiting")).to_have_text("En attente des capteurs…")
    kiosk.wait(lambda: hub.subscribers >= 1, timeout=15, what="the page's event stream")
    for n, kit in enumerate(MANY_KITS, start=1):
        values = {"pm2_5": kit.pm2_5, "pm10": kit.pm2_5 * 1.5, "pm1": kit.pm2_5 * 0.7}
        hub.publish(reading(kit.device, values))
        hub.publish(reading(kit.device, {"co2": kit.co2, "temperature": kit.temperature}, sensor="winsen-mhz19"))
        expect(page.locator(".kit")).to_have_count(n, timeout=2000)
        expect(kiosk.number(kit.device, "temperature")).not_to_have_text("—", timeout=2000)
        expect(page.locator("#live-waiting")).to_be_hidden()
        assert settled(page, lambda: card_problems(page)) == [], f"{n} kits"
    # a sensor gone wild: values far out of every band still fit their boxes
    hub.publish(reading(MANY_KITS[0].device, {"pm2_5": 2345.6, "pm10": 4321.0, "pm1": 1999.9}))
    hub.publish(reading(MANY_KITS[0].device, {"co2": 10000.0, "temperature": -12.5}, sensor="winsen-mhz19"))
    expect(kiosk.number(MANY_KITS[0].device, "pm2_5")).to_have_text("2\u202f345,6", timeout=2000)
    assert settled(page, lambda: card_problems(page)) == [], "out of band"
    kiosk.assert_clean()


def test_numbers_keep_their_contrast_on_every_band_fresh_and_old(open_page, db, hub, serve):
    from playwright.sync_api import expect

    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))
    kiosk = open_page(f"{base}/screen/live?replay_after=0", clock=True)
    page = kiosk.page
    kiosk.wait(lambda: hub.subscribers >= 1, timeout=15, what="the page's event stream")
    levels = (5.0, 15.0, 22.0, 40.0, 60.0, 100.0)  # one per EAQI 2021 band of PM2.5
    for i, pm in enumerate(levels):
        hub.publish(reading(f"kit-{i}", {"pm2_5": pm, "pm10": pm * 1.9, "pm1": pm * 0.7}))
    expect(page.locator(".kit .hero[data-band]")).to_have_count(len(levels), timeout=3000)
    page.wait_for_timeout(500)  # the band colours fade in over 0.4 s
    fresh = contrast_problems(page, ".kit *")
    assert fresh == [], "\n".join(fresh)
    page.clock.fast_forward("01:10")  # every number is now more than 60 s old: dimmed
    expect(page.locator(".kit .hero.old")).to_have_count(len(levels), timeout=3000)
    old = contrast_problems(page, ".kit *")
    assert old == [], "\n".join(old)
    kiosk.assert_clean()
