"""The screen page: one HTML shell, a section per view, its inline configuration and local assets.

Everything the page needs is served by this application (``/static``):
scripts, styles, the fonts (DejaVu Sans, subset to Latin), the base map.
No CDN, no web font service: it works on an exhibition network with no
Internet.  Asset URLs carry a content hash so a browser never keeps a
stale copy, and are relative to the page (``base``), so the screens work
behind a reverse proxy under any prefix.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from analysis.daily import DEFAULT_TZ
from analysis.indices import Band, load_index
from dashboards.i18n import LABELS, Lang
from dashboards.kiosk.config import INDEX_PAIRS, ScreenConfig, index_version
from dashboards.kiosk.models import Walk
from dashboards.kiosk.render import band_of as render_band_of
from dashboards.kiosk.views import who_guidelines
from qsec import quantities as qty

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES = HERE / "templates"
SCRIPTS = ("core", "replay", "geo", "live", "map", "chart", "who", "trips", "summary", "walk", "start")
POSITION = ("latitude", "longitude")
STALE_AFTER_S = 10.0  # [s] default: no reading for this long and the badge says the data are paused
OLD_AFTER_S = 60.0  # [s] a number older than this is dimmed
CHART_MINUTES = 60
MEANS_REFRESH_S = 20.0  # [s]
MEANS = ("pm2_5", "pm10", "pm1", "co2", "temperature")  # default quantities of /api/minute-means
MAX_TILES = 4


def quantity_meta(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Units, decimals and FR/EN names of the quantities shown, from :mod:`qsec.quantities`."""
    return {
        name: {"unit": q.unit, "decimals": q.decimals, "long_name": q.long_name, "long_name_fr": q.long_name_fr}
        for name in names
        for q in [qty.get(name)]
    }


def index_config(name: str) -> dict[str, Any]:
    """The index a screen colours with: bands per pollutant, averaging, short FR/EN title."""
    index_id, version = index_version(name)
    table = load_index(index_id, version)
    bands = {
        pollutant: [
            {"key": b.key, "upper": b.upper if math.isfinite(b.upper) else None, "label_fr": b.label_fr,
             "label_en": b.label_en, "colour": b.colour, "ink": b.ink}
            for b in table.bands(pollutant)
        ]
        for pollutant in INDEX_PAIRS
    }
    suffix = f" {version}" if "-" in name else ""
    return {
        "name": name,
        "id": index_id,
        "version": version,
        "averaging": table.scale("pm2_5").averaging,
        "title": {lang: LABELS[lang][f"index_{index_id}"] + suffix for lang in LABELS},
        "bands": bands,
    }


def page_config(screen: ScreenConfig, lang: Lang, base: str, campaign: str | None) -> dict[str, Any]:
    """The JSON the page script starts from."""
    shown = tuple(dict.fromkeys((*screen.quantities, *INDEX_PAIRS, *POSITION)))
    return {
        "lang": lang,
        "languages": list(screen.languages),
        "alternate": screen.alternate,
        "title": screen.title,
        "campaign": campaign,
        "views": list(screen.views),
        "rotate": screen.rotate,
        "labels": {code: LABELS[code] for code in screen.languages},
        "quantities": quantity_meta(shown),
        "hero": screen.quantities[0],
        "tiles": list(screen.quantities[1 : 1 + MAX_TILES]),
        "index": index_config(screen.index),
        "who": who_guidelines(),
        "stale_after": screen.stale_after or STALE_AFTER_S,
        "replay_after": screen.replay_after,
        "old_after_s": OLD_AFTER_S,
        "chart_minutes": CHART_MINUTES,
        "track_minutes": screen.track_minutes,
        "means_refresh_s": MEANS_REFRESH_S,
        "base": base,
        "basemap": f"static/geo/yvelines.geojson?v={asset_version('geo/yvelines.geojson')}",
    }


def script_json(data: dict[str, Any]) -> str:
    """JSON safe to embed in a ``<script>`` element (no ``</script>`` can appear)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def asset_version(name: str) -> str:
    """A short content hash of a static file, so browsers never keep a stale copy."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _escaped(lang: Lang) -> dict[str, str]:
    return {key: html.escape(value) for key, value in LABELS[lang].items()}


def render(screen: ScreenConfig, lang: Lang, *, base: str = "", campaign: str | None = None) -> str:
    """Render the screen page in ``lang``; ``base`` is the relative path back to the application root."""
    labels = _escaped(lang)
    sections = "\n".join(_template(f"views/{view}.html").substitute(labels) for view in screen.views)
    scripts = "\n".join(
        f'<script src="{base}static/js/{name}.js?v={asset_version(f"js/{name}.js")}"></script>' for name in SCRIPTS
    )
    heading = LABELS[lang][f"view_{screen.views[0]}"]
    others = [code for code in screen.languages if code != lang] or [lang]
    return _template("screen.html").substitute(
        lang=lang,
        base=base,
        title=html.escape(screen.title),
        heading=html.escape(heading),
        first_view=screen.views[0],
        campaign=html.escape(LABELS[lang]["campaign"].format(name=campaign) if campaign else ""),
        connecting=labels["connecting"],
        switch_label=labels["switch_label"],
        switch_to=html.escape(LABELS[others[0]]["language_name"]),
        note=labels["note"],
        sections=sections,
        dots="".join("<li></li>" for _ in screen.views) if len(screen.views) > 1 else "",
        config=script_json(page_config(screen, lang, base, campaign)),
        scripts=scripts,
        css_version=asset_version("kiosk.css"),
    )


def error_page(lang: Lang, message: str, base: str = "") -> str:
    """A plain page naming what is wrong with a screen URL and what is allowed."""
    title = html.escape(LABELS[lang]["error_title"])
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="stylesheet" href="{base}static/kiosk.css?v={asset_version("kiosk.css")}"></head>'
        f'<body class="error-page"><h1>{title}</h1><p class="error-message">{html.escape(message)}</p></body></html>'
    )


def walk_page(lang: Lang, walk: Walk, rank: int, of: int, day_mean: float | None, bands: Sequence[Band], *,
              map_svg: str, profile_svg: str, guideline: float, index_title: str) -> str:
    """The printable one-page summary of a visitor's walk (what the QR code opens)."""
    labels = LABELS[lang]
    zone = ZoneInfo(DEFAULT_TZ)
    start, end = walk.start.astimezone(zone), walk.end.astimezone(zone)
    when = f"{start:%d/%m/%Y} · {start:%H:%M}–{end:%H:%M} · {walk.device} · {walk.code}"

    def number(value: float, decimals: int) -> str:
        text = f"{value:,.{decimals}f}"
        return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text

    band = render_band_of(walk.pm2_5, bands)
    facts = labels["walk_facts"].format(
        mode=labels[f"mode_{walk.mode}"], km=number(walk.distance_m / 1000, 1), min=number(walk.duration_s / 60, 0)
    )
    ranking = (labels["walk_rank"].format(rank=rank, of=of, mean=number(day_mean, 1))
               if rank and of > 1 and day_mean is not None else labels["walk_alone"])
    return _template("walk_page.html").substitute(
        lang=lang,
        code=walk.code,
        page_title=html.escape(labels["walk_page_title"]),
        when=html.escape(when),
        breathed=html.escape(labels["walk_breathed"]),
        mean="—" if walk.pm2_5 is None else f"{number(walk.pm2_5, 1)} µg/m³",
        band=html.escape((band.label_fr if lang == "fr" else band.label_en) if band else ""),
        colour=band.colour if band and band.colour else "#eef1f4",
        ink=band.ink if band and band.ink else "#111",
        facts=html.escape(facts),
        rank=html.escape(ranking),
        who=html.escape(labels["walk_who"].format(g=number(guideline, 0))),
        map_svg=map_svg,
        profile_caption=html.escape(labels["walk_profile"]),
        profile_svg=profile_svg,
        note=html.escape(labels["note"]),
        index_note=html.escape(labels["walk_colours"].format(index=index_title)),
    )
