"""The kiosk page: one HTML template, its inline configuration, and asset versions.

Everything the page needs is served by this application (``/static``): no
CDN, no web fonts, so it works on an exhibition network with no Internet.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from analysis.indices import EAQI_PM2_5
from dashboards.i18n import LABELS, Lang
from qsec import quantities as qty

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE = HERE / "templates" / "index.html"

HERO = "pm2_5"
TILES = ("pm10", "pm1", "co2", "temperature")
POSITION = ("latitude", "longitude")
SHOWN = (HERO, *TILES, *POSITION)
MEANS = (HERO, *TILES)  # quantities whose 1-minute mean is shown
STALE_AFTER_S = 10.0  # [s] no reading for this long: the badge says the data are paused
OLD_AFTER_S = 60.0  # [s] a number older than this is dimmed
CHART_MINUTES = 60
MEANS_REFRESH_S = 20.0  # [s]


def quantity_meta(names: tuple[str, ...] = SHOWN) -> dict[str, dict[str, Any]]:
    """Units, decimals and FR/EN names of the quantities shown, from :mod:`qsec.quantities`."""
    return {
        name: {
            "unit": q.unit,
            "decimals": q.decimals,
            "long_name": q.long_name,
            "long_name_fr": q.long_name_fr,
        }
        for name in names
        for q in [qty.get(name)]
    }


def bands() -> list[dict[str, Any]]:
    """EAQI PM2.5 bands for the page; the open last band has ``upper: null``."""
    return [
        {
            "key": b.key,
            "upper": b.upper if math.isfinite(b.upper) else None,
            "label_fr": b.label_fr,
            "label_en": b.label_en,
            "colour": b.colour,
            "ink": b.ink,
        }
        for b in EAQI_PM2_5
    ]


def page_config(lang: Lang, title: str, campaign: str | None) -> dict[str, Any]:
    """The JSON the page script starts from."""
    return {
        "lang": lang,
        "title": title,
        "campaign": campaign,
        "labels": LABELS,
        "quantities": quantity_meta(),
        "hero": HERO,
        "tiles": list(TILES),
        "position": list(POSITION),
        "bands": bands(),
        "stale_after_s": STALE_AFTER_S,
        "old_after_s": OLD_AFTER_S,
        "chart_minutes": CHART_MINUTES,
        "means_refresh_s": MEANS_REFRESH_S,
        "api": {"latest": "api/latest", "means": "api/minute-means", "live": "api/live"},
    }


def _script_json(data: dict[str, Any]) -> str:
    """JSON safe to embed in a ``<script>`` element (no ``</script>`` can appear)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def asset_version(name: str) -> str:
    """A short content hash of a static file, so browsers never keep a stale copy."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def render(lang: Lang, title: str, campaign: str | None) -> str:
    """Render the kiosk page in ``lang``."""
    labels = LABELS[lang]
    heading = labels["heading"]
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        lang=lang,
        title=html.escape(title),
        heading=html.escape(heading),
        campaign=html.escape(f"{labels['campaign']} {campaign}" if campaign else ""),
        note=html.escape(labels["note"]),
        index_title=html.escape(labels["index_title"]),
        waiting=html.escape(labels["waiting"]),
        connecting=html.escape(labels["connecting"]),
        switch_to=html.escape(labels["switch_to"]),
        switch_label=html.escape(labels["switch_label"]),
        config=_script_json(page_config(lang, title, campaign)),
        css_version=asset_version("kiosk.css"),
        js_version=asset_version("kiosk.js"),
    )
