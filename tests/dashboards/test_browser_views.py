"""Every screen view in headless Chromium with the network cut: complete, bilingual, rotating, replaying."""

from __future__ import annotations

import re
import time

import duckdb
import pandas as pd
import pytest
from harness import wait_until
from kiosk_data import CAMPAIGN, MANY_KITS, PMS, all_kits, lent_kit_day, positions_in
from readings_table import insert_readings
from screen_checks import layout_problems, problems_at_every_size

from dashboards.app import create_app
from dashboards.i18n import LABELS
from dashboards.kiosk.config import VIEWS
from dashboards.live import LiveHub
from qsec import quantities as qty

pytestmark = pytest.mark.browser

READY = {  # what each view shows once its data are in
    "live": '.kit[data-device="kit-balade"] .hero .num >> text=/\\d/',
    "map": ".map-panel .track",
    "chart": "svg.big-chart polyline.series",
    "who": '.who-verdict[data-verdict="above"], .who-verdict[data-verdict="below"]',
    "trips": ".trip .trip-map .track",
    "summary": '.figure[data-key="distance"]',
    "walk": ".walk-detail:not([hidden]) .walk-title",
}
SKIP = {"language_name", "decimal_locale", "walk_code_placeholder"}  # the switch names the other language
# boxes whose parts must stay inside them (SVG drawings are clipped by their own box)
BOXES = {".view:not([hidden])": "view", ".top": "header", ".bottom": "footer", ".trip": "trip", ".figure": "figure",
         ".map-panel": "map panel", ".walk-item": "walk", ".walk-side": "walk detail", ".who-row": "WHO row"}
UNITS = r"(?:µg/m³|km/h|km|min|h|s|ppm)"


def view_problems(page) -> list[str]:
    """Parts of the screen outside their box, or text cut off."""
    parts = "*:not(svg *):not(.who-mark)"  # the guideline's tick stands out of its bar on purpose
    return [problem for box, name in BOXES.items() for problem in layout_problems(page, box, parts, name)]


def typography_problems(page, lang: str) -> list[str]:
    """A number parted from its unit, a French colon without its narrow no-break space, a decimal point in French."""
    text = re.sub(r"https?://\S+", "", page.locator("body").inner_text())  # the walk's address
    found = re.findall(rf"\d[ \t]{UNITS}\b", text)
    if lang == "fr":
        found += re.findall(r"\S*[ \t\u00a0][:;]", text) + re.findall(r"\d\.\d", text)
    return found


def french_only() -> list[str]:
    """Pieces of French text (labels, quantity names, band names) that no English label contains."""
    english = " ".join(LABELS["en"].values())
    pieces = []
    for key, text in LABELS["fr"].items():
        if key in SKIP or text == LABELS["en"][key]:
            continue
        pieces += [part.strip(" :;,.()—·") for part in re.split(r"\{[a-z]+\}", text)]
    pieces += [q.long_name_fr for q in qty.QUANTITIES.values() if q.long_name_fr != q.long_name]
    pieces += ["Extrêmement mauvais", "Très mauvais", "Dégradé", "Moyen"]
    return sorted({p for p in pieces if len(p) >= 6 and p not in english})


@pytest.fixture
def exhibition(db: duckdb.DuckDBPyConnection, hub: LiveHub, serve, day: pd.DataFrame) -> str:
    """A server over a day of lent kits and a kit walking now."""
    insert_readings(db, day)
    return serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_is_complete_offline_and_switches_every_label_to_english(view, exhibition, open_page, shots):
    from playwright.sync_api import expect

    kiosk = open_page(f"{exhibition}/screen/{view}")
    page = kiosk.page
    page.locator(READY[view]).first.wait_for(timeout=10_000)
    if view == "walk":
        expect(page.locator(".walk-qr")).to_have_js_property("complete", True)
        kiosk.wait(lambda: page.locator(".walk-map").evaluate("img => img.naturalWidth") > 0, timeout=5,
                   what="the walk's map")
    page.wait_for_timeout(500)  # let late requests finish, so a failure would be seen
    page.screenshot(path=str(shots / f"screen-{view}.png"))
    assert typography_problems(page, "fr") == []
    assert problems_at_every_size(page, lambda: view_problems(page)) == {}
    kiosk.assert_clean()

    page.locator("#lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#heading")).to_have_text(LABELS["en"][f"view_{view}"])
    page.wait_for_timeout(300)  # views that reload their data in the new language
    english = page.locator("body").inner_text()
    left = [piece for piece in french_only() if piece in english]
    assert left == [], f"French left on the English {view} view"
    assert typography_problems(page, "en") == []
    assert problems_at_every_size(page, lambda: view_problems(page)) == {}
    if view in ("map", "walk", "who"):
        page.wait_for_timeout(300)  # back at 1920×1080
        page.screenshot(path=str(shots / f"screen-{view}-en.png"))
    kiosk.assert_clean()


@pytest.mark.parametrize("view", ["who", "chart", "map"])
def test_twelve_kits_stay_on_every_screen_in_both_languages(view, db, hub, serve, open_page):
    from playwright.sync_api import expect

    insert_readings(db, all_kits(pd.Timestamp.now(tz="UTC"), kits=MANY_KITS))
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, title="qsec"))
    kiosk = open_page(f"{base}/screen/{view}?replay_after=0")
    page = kiosk.page
    n = len(MANY_KITS)  # the WHO view adds all kits together and the guideline's legend
    ready = {"who": (".who-row", n + 2), "chart": ("svg.big-chart polyline.series", n), "map": (".map-panel .head", n)}
    expect(page.locator(ready[view][0])).to_have_count(ready[view][1], timeout=10_000)
    assert problems_at_every_size(page, lambda: view_problems(page)) == {}
    page.locator("#lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert problems_at_every_size(page, lambda: view_problems(page)) == {}
    if view == "chart":  # drawn in the box's proportions: a glyph is as wide in portrait as in landscape
        page.set_viewport_size({"width": 1080, "height": 1920})
        kiosk.wait(lambda: abs(page.evaluate("""() => { const svg = document.querySelector('svg.big-chart');
            const [,, w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
            return (w / h) / (svg.clientWidth / svg.clientHeight) - 1; }""")) < 0.02, timeout=3,
                   what="the chart to take its box's proportions")
    kiosk.assert_clean()


@pytest.mark.parametrize("view, message", [("trips", ".trips-empty"), ("map", ".map-empty"),
                                           ("chart", ".chart-none"), ("summary", ".summary-since"),
                                           ("who", ".who-verdict"), ("walk", ".walk-none")])
def test_an_empty_view_says_so_in_the_middle_of_the_screen(view, message, db, hub, serve, open_page):
    from playwright.sync_api import expect

    # a campaign of its own: the screens' answers are cached process-wide by campaign and day
    base = serve(create_app(lambda: db.cursor(), hub, campaign="salon-vide-2026", title="qsec"))
    kiosk = open_page(f"{base}/screen/{view}?replay_after=0")
    page = kiosk.page
    note = page.locator(f"#view-{view} {message}")
    note.filter(has_text=re.compile(r"\w")).wait_for(timeout=10_000)
    page.wait_for_timeout(300)  # a failing request would be seen
    kiosk.assert_clean()
    if view == "summary":
        expect(page.locator(".figure")).to_have_count(0)  # no six zeros
    for width, height in () if view == "walk" else ((1920, 1080), (1080, 1920)):  # the walk's list is on the left
        page.set_viewport_size({"width": width, "height": height})
        box = page.locator(f"#view-{view}").bounding_box()
        kiosk.wait(lambda: (note.bounding_box() or {"height": 0})["height"] > 0, timeout=3, what="the message")
        said = note.bounding_box()
        middle = said["y"] + said["height"] / 2
        assert box["y"] + box["height"] / 4 < middle < box["y"] + 3 * box["height"] / 4, f"{width}×{height}"
    kiosk.assert_clean()


def test_a_rotating_screen_changes_view_and_language_by_itself(exhibition, open_page):
    from playwright.sync_api import expect

    kiosk = open_page(f"{exhibition}/screen?views=live,map,who&rotate=20&alternate=30", clock=True)
    page = kiosk.page
    body = page.locator("body")
    expect(body).to_have_attribute("data-view", "live")
    expect(page.locator(".dots li")).to_have_count(3)
    page.clock.fast_forward("00:21")
    expect(body).to_have_attribute("data-view", "map")
    expect(page.locator("#view-live")).to_be_hidden()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.clock.fast_forward("00:10")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.clock.fast_forward("00:10")
    expect(body).to_have_attribute("data-view", "who")
    expect(page.locator("#heading")).to_have_text("Compared with the WHO")
    kiosk.assert_clean()


def test_a_screen_with_a_wrong_setting_says_which_values_are_allowed(exhibition, open_page):
    kiosk = open_page(f"{exhibition}/screen?views=live,maps")
    text = kiosk.page.locator("body").inner_text()
    assert "unknown views ['maps']; allowed: live, map, chart, who, trips, summary, walk" in text


def test_replay_starts_when_data_are_thin_and_stops_when_a_live_reading_comes(db, hub, serve, open_page):
    from playwright.sync_api import expect

    yesterday = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)
    insert_readings(db, lent_kit_day(yesterday))
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN))
    kiosk = open_page(f"{base}/screen?views=live,map&replay_after=3&rotate=0")
    page = kiosk.page
    status = page.locator("#status")
    expect(status).to_have_attribute("data-status", "replay", timeout=10_000)
    banner = page.locator("#replay-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Rediffusion : enregistrement du")
    expect(page.locator('.kit[data-device="kit-pret-1"] .hero .num')).to_have_text(re.compile(r"\d"))
    kiosk.wait(lambda: hub.subscribers >= 1, timeout=15, what="the page's event stream")

    now_ms = time.time_ns() // 1_000_000
    hub.publish({"campaign": CAMPAIGN, "device": "kit-direct", "sensor": PMS, "t": now_ms, "values": {"pm2_5": 12.0}})
    expect(status).to_have_attribute("data-status", "live", timeout=3000)
    expect(banner).to_be_hidden()
    expect(page.locator('.kit[data-device="kit-direct"] [data-q="pm2_5"] .num')).to_have_text("12,0")
    expect(page.locator('.kit[data-device="kit-pret-1"]')).to_have_count(0)  # the replayed kits are gone
    kiosk.assert_clean()


def test_an_empty_store_replays_the_bundled_recording(db, hub, serve, open_page):
    from playwright.sync_api import expect

    base = serve(create_app(lambda: db.cursor(), hub))
    kiosk = open_page(f"{base}/screen/map?replay_after=2")
    expect(kiosk.page.locator("#status")).to_have_attribute("data-status", "replay", timeout=10_000)
    expect(kiosk.page.locator("#replay-banner")).to_contain_text("exemple enregistré")
    kiosk.page.locator(".map-panel .track").first.wait_for(timeout=5000)
    kiosk.assert_clean()


def test_a_visitor_finds_a_walk_by_its_code_and_opens_its_summary(exhibition, open_page, shots):
    from playwright.sync_api import expect

    kiosk = open_page(f"{exhibition}/screen/walk")
    page = kiosk.page
    items = page.locator(".walk-item")
    items.first.wait_for(timeout=10_000)
    last = items.last
    code = last.get_attribute("data-code")
    page.locator(".walk-code input").fill(code.lower())
    page.locator(".walk-code button").click()
    expect(page.locator(".walk-title")).to_contain_text(f"code {code}")
    expect(last).to_have_class(re.compile(r"\bon\b"))
    url = page.locator(".walk-url").inner_text()
    assert url.endswith(f"/walk/{code}?lang=fr&day={pd.Timestamp.now(tz='Europe/Paris').date()}")
    page.locator(".walk-code input").fill("ZZZZ")
    page.locator(".walk-code button").click()
    expect(page.locator(".walk-error")).to_have_text("Pas de balade avec le code ZZZZ aujourd'hui")
    kiosk.assert_clean()

    summary = open_page(url)
    expect(summary.page.locator("h1")).to_have_text("Ma balade qualité de l'air")
    expect(summary.page.locator(".mean .v")).to_have_text(re.compile(r"^\d+,\d µg/m³$"))
    assert summary.page.locator("svg.walk-map polyline").count() > 3  # the base layer under the trace
    summary.page.screenshot(path=str(shots / "walk-summary.png"), full_page=True)
    summary.assert_clean()


def test_the_badge_says_sensors_disconnected_when_ingest_loses_the_broker(tmp_path, own_broker, hub, serve,
                                                                           open_page, unique):
    from playwright.sync_api import expect

    from ingest.store import Store
    from ingest.worker import IngestSettings, IngestWorker
    from qsec.up import live_event_forwarder

    store = Store(tmp_path / "ingest.duckdb")
    worker = IngestWorker(store, IngestSettings(port=own_broker.port, client_id=f"screens-{unique}", share_group=None))
    worker.listeners.append(live_event_forwarder(hub))  # as qsec up wires it
    worker.start()
    try:
        wait_until(lambda: worker.connected, timeout=10, what="ingest to connect")
        app = create_app(store.new_cursor, hub)
        app.state.ingest = worker
        kiosk = open_page(f"{serve(app)}/screen/live?replay_after=0")
        kiosk.wait(lambda: hub.subscribers >= 1, timeout=15, what="the page's event stream")
        hub.publish({"campaign": CAMPAIGN, "device": "kit-1", "sensor": PMS, "t": time.time_ns() // 1_000_000,
                     "values": {"pm2_5": 7.0}})
        status = kiosk.page.locator("#status")
        expect(status).to_have_attribute("data-status", "live", timeout=3000)
        own_broker.stop()
        expect(status).to_have_attribute("data-status", "ingest_down", timeout=10_000)
        expect(status).to_have_text("Données en pause — capteurs déconnectés")
        expect(kiosk.number("kit-1", "pm2_5")).to_have_text("7,0")  # the last value stays, with its age
        kiosk.assert_clean()
    finally:
        worker.stop()
        store.close()


def test_no_position_inside_a_home_zone_reaches_the_page(db, hub, serve, open_page, day):
    from analysis.trips import haversine_m
    from dashboards.kiosk.config import screens_from_mapping

    insert_readings(db, day)
    zone = {"latitude": 48.80360, "longitude": 2.12500, "radius_m": 250.0}  # the desk, Place d'Armes
    config = screens_from_mapping({"privacy": {"zones": [zone]}})
    base = serve(create_app(lambda: db.cursor(), hub, campaign=CAMPAIGN, screens_config=config))
    seen: list[tuple[float, float]] = []
    for view in ("map", "walk"):  # the live positions, the day's tracks and a walk's route
        kiosk = open_page(f"{base}/screen/{view}", keep_json=True)
        kiosk.page.locator(READY[view]).first.wait_for(timeout=10_000)
        kiosk.page.wait_for_timeout(500)
        kiosk.assert_clean()
        seen += [point for _, answer in kiosk.answers for point in positions_in(answer)]
    assert len(seen) > 100
    lat, lon = zip(*seen, strict=True)
    distance = haversine_m(lat, lon, zone["latitude"], zone["longitude"])
    assert distance.min() > zone["radius_m"], "a position inside the home zone was sent to the page"
