"""Every label of the live page, in French (default) and English.

The page receives this dictionary inline and switches language without a
reload; the server uses it to render the first paint in the asked
language.  Quantity names come from :mod:`qsec.quantities`
(``long_name_fr`` / ``long_name``), not from here.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")
DEFAULT_LANG: Lang = "fr"

LABELS: dict[Lang, dict[str, str]] = {
    "fr": {
        "heading": "Qualité de l'air en direct",
        "campaign": "Campagne",
        "note": "Capteurs citoyens à bas coût — valeurs indicatives",
        "live": "En direct",
        "stale": "Données en pause",
        "offline": "Données en pause — connexion perdue",
        "connecting": "Connexion…",
        "ago": "il y a {n}",
        "no_data": "pas de donnée",
        "mean_1min": "moy. 1 min\u00a0: {v}",
        "chart": "PM2,5 — moyennes sur 1 min, 60 dernières minutes",
        "minus_60": "−60 min",
        "now": "maintenant",
        "position": "Position GPS",
        "lat": "lat.",
        "lon": "long.",
        "index_title": "Indice européen (EAQI) des PM2,5 en µg/m³ — instantané, indicatif",
        "day": "j",
        "waiting": "En attente des capteurs…",
        "kit": "Kit",
        "switch_to": "English",
        "switch_label": "Changer de langue",
        "decimal_locale": "fr-FR",
    },
    "en": {
        "heading": "Live air quality",
        "campaign": "Campaign",
        "note": "Low-cost citizen sensors — indicative values",
        "live": "Live",
        "stale": "Data paused — stale",
        "offline": "Data paused — connection lost",
        "connecting": "Connecting…",
        "ago": "{n} ago",
        "no_data": "no data",
        "mean_1min": "1-min mean: {v}",
        "chart": "PM2.5 — 1-minute means, last 60 minutes",
        "minus_60": "−60 min",
        "now": "now",
        "position": "GPS position",
        "lat": "lat",
        "lon": "lon",
        "index_title": "European index (EAQI) for PM2.5 in µg/m³ — instantaneous, indicative",
        "day": "d",
        "waiting": "Waiting for sensors…",
        "kit": "Kit",
        "switch_to": "Français",
        "switch_label": "Switch language",
        "decimal_locale": "en-GB",
    },
}


def pick_lang(value: str | None) -> Lang:
    """Return a supported language for a ``?lang=`` value; French when unknown or absent."""
    if value is not None:
        wanted = value.strip().lower()[:2]
        for lang in LANGS:
            if wanted == lang:
                return lang
    return DEFAULT_LANG
