"""What one exhibition screen shows, from URL parameters or a ``screens.toml`` file.

A screen is a :class:`ScreenConfig`: views (rotated every ``rotate`` seconds
when there are several), quantities, languages (alternated every
``alternate`` seconds on an unattended screen), the air-quality index used
for colours, and when to fall back to replay.  Named screens come from a
TOML file::

    [defaults]              # applies to every screen, and to /screen?… URLs
    index = "atmo"
    public_url = "http://192.168.1.20:8000"   # what QR codes point to

    [screens.hall-a]        # served at /screen/hall-a
    views = ["live", "map", "who"]
    rotate = 20
    alternate = 30

    [privacy]
    radius_m = 200
    zones = [{latitude = 48.8041, longitude = 2.1340, participant = "kit01"}]

URL parameters override the file for one page: ``/screen/hall-a?lang=en``.
Every value is checked once, with a message naming the allowed values
(lesson 4 of the project's design notes; xarray's ``set_options`` does the
same).

Sources
-------
- TOML 1.0.0, https://toml.io/en/v1.0.0 (read with :mod:`tomllib`, PEP 680).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.indices import EAQI_PM2_5_VERSION, available
from dashboards.i18n import LANGS, Lang, pick_lang
from qsec import quantities as qty

VIEWS = ("live", "map", "chart", "who", "trips", "summary", "walk")
INDEX_PAIRS = ("pm2_5", "pm10")  # quantities an index colours
DEFAULT_QUANTITIES = ("pm2_5", "pm10", "pm1", "co2", "temperature")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ROTATE_RANGE = (5.0, 3600.0)  # [s] a view change faster than 5 s cannot be read
REPLAY_RANGE = (2.0, 86400.0)  # [s]
TRACK_RANGE = (5, 24 * 60)  # [min]


class ScreenConfigError(ValueError):
    """A screen setting is invalid; the message names the setting and the allowed values."""


def index_choices() -> tuple[str, ...]:
    """Index names a screen accepts: ``eaqi``, ``atmo`` and each ``<id>-<version>``."""
    shipped = available()
    names: list[str] = [name for name in ("eaqi", "atmo") if name in shipped]
    names += [f"{name}-{version}" for name in names for version in shipped[name]]
    return tuple(names)


def index_version(name: str) -> tuple[str, str]:
    """``(id, version)`` of an index name; bare ``eaqi`` is the version live screens use."""
    index_id, _, version = name.partition("-")
    if version:
        return index_id, version
    if index_id == "eaqi":
        return index_id, EAQI_PM2_5_VERSION
    return index_id, available()[index_id][-1]


@dataclass(frozen=True)
class ScreenConfig:
    """Everything one screen needs; validated by :func:`screen_from_mapping`."""

    name: str = "screen"
    title: str = "qsec"
    campaign: str | None = None
    views: tuple[str, ...] = ("live",)
    rotate: float = 0.0  # [s] time on each view; 0: no rotation
    quantities: tuple[str, ...] = DEFAULT_QUANTITIES  # the first is the large number
    lang: Lang = "fr"
    languages: tuple[Lang, ...] = LANGS
    alternate: float = 0.0  # [s] switch language this often; 0: never
    index: str = "eaqi"
    replay_after: float = 60.0  # [s] without a fresh reading before the replay starts; 0: never
    stale_after: float = 10.0  # [s] without a reading before the badge says "paused"
    track_minutes: int = 60  # [min] of track on the map


@dataclass(frozen=True)
class Screens:
    """A whole ``screens.toml``: defaults, named screens, privacy zones and site settings."""

    defaults: ScreenConfig = field(default_factory=ScreenConfig)
    named: Mapping[str, ScreenConfig] = field(default_factory=dict)
    zones: pd.DataFrame | None = None
    zone_radius_m: float = 200.0
    public_url: str | None = None
    participants: int | None = None

    def screen(self, name: str) -> ScreenConfig:
        """The named screen; :class:`KeyError` lists the names there are."""
        if name not in self.named:
            have = ", ".join(sorted(self.named)) or "none (no screens.toml, or no [screens.*] table)"
            raise KeyError(f"no screen named {name!r}; configured screens: {have}")
        return self.named[name]


_SCREEN_KEYS = {
    "title", "campaign", "views", "rotate", "quantities", "lang", "languages", "alternate", "index",
    "replay_after", "stale_after", "track_minutes",
}
_QUERY_KEYS = {"views", "rotate", "q", "lang", "alternate", "index", "replay_after", "track_minutes", "campaign"}


def _words(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(part).strip() for part in value]
    else:
        raise ScreenConfigError(f"{what} must be a list or a comma-separated string, not {value!r}")
    items = [item for item in items if item]
    if not items:
        raise ScreenConfigError(f"{what} must name at least one value")
    if len(items) != len(set(items)):
        raise ScreenConfigError(f"{what} names a value twice: {items}")
    return tuple(items)


def _choices(value: Any, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = _words(value, what)
    wrong = [item for item in items if item not in allowed]
    if wrong:
        raise ScreenConfigError(f"unknown {what} {wrong}; allowed: {', '.join(allowed)}")
    return items


def _seconds(value: Any, what: str, bounds: tuple[float, float]) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScreenConfigError(f"{what} must be a number of seconds, not {value!r}") from None
    low, high = bounds
    if number == 0:
        return 0.0
    if not math.isfinite(number) or not low <= number <= high:
        raise ScreenConfigError(f"{what} must be 0 (off) or between {low:g} and {high:g} seconds, not {value!r}")
    return number


def _set(config: ScreenConfig, key: str, value: Any) -> ScreenConfig:
    """Return ``config`` with one validated setting changed."""
    if key == "views":
        return replace(config, views=_choices(value, VIEWS, "views"))
    if key in ("quantities", "q"):
        shown = tuple(name for name, q in qty.QUANTITIES.items() if q.kind is not qty.Kind.POSITION)
        names = _choices(value, shown, key)
        if len(names) > 8:
            raise ScreenConfigError(f"{key} may name at most 8 quantities (a screen read from 3 m), not {len(names)}")
        return replace(config, quantities=names)
    if key == "lang":
        return replace(config, lang=pick_lang(_choices(value, LANGS, "lang")[0]))
    if key == "languages":
        return replace(config, languages=_choices(value, LANGS, "languages"))  # type: ignore[arg-type]
    if key == "index":
        return replace(config, index=_choices(value, index_choices(), "index")[0])
    if key == "rotate":
        return replace(config, rotate=_seconds(value, key, ROTATE_RANGE))
    if key == "alternate":
        return replace(config, alternate=_seconds(value, key, ROTATE_RANGE))
    if key == "replay_after":
        return replace(config, replay_after=_seconds(value, key, REPLAY_RANGE))
    if key == "stale_after":
        return replace(config, stale_after=_seconds(value, key, REPLAY_RANGE))
    if key == "track_minutes":
        minutes = _seconds(value, key, (float(TRACK_RANGE[0]), float(TRACK_RANGE[1])))
        return replace(config, track_minutes=int(minutes) or TRACK_RANGE[1])
    if key in ("title", "campaign"):
        text = str(value).strip()
        if not 0 < len(text) <= 64:
            raise ScreenConfigError(f"{key} must be 1 to 64 characters, not {value!r}")
        return replace(config, title=text) if key == "title" else replace(config, campaign=text)
    raise ScreenConfigError(f"unknown setting {key!r}; allowed: {', '.join(sorted(_SCREEN_KEYS))}")


def _checked(config: ScreenConfig) -> ScreenConfig:
    if config.lang not in config.languages:
        config = replace(config, languages=(config.lang, *config.languages))
    if len(config.languages) < 2 and config.alternate:
        raise ScreenConfigError(f"alternate needs two languages; languages is {list(config.languages)}")
    return config


def screen_from_mapping(raw: Mapping[str, Any], base: ScreenConfig, where: str = "screen") -> ScreenConfig:
    """Apply a table of settings (from TOML) to ``base``.

    Raises
    ------
    ScreenConfigError
        Naming ``where``, the setting and the allowed values.
    """
    config = base
    for key, value in raw.items():
        if key not in _SCREEN_KEYS:
            raise ScreenConfigError(f"{where}: unknown setting {key!r}; allowed: {', '.join(sorted(_SCREEN_KEYS))}")
        try:
            config = _set(config, key, value)
        except ScreenConfigError as error:
            raise ScreenConfigError(f"{where}: {error}") from None
    try:
        return _checked(config)
    except ScreenConfigError as error:
        raise ScreenConfigError(f"{where}: {error}") from None


def screen_from_query(params: Mapping[str, str], base: ScreenConfig) -> ScreenConfig:
    """Apply URL parameters (``views``, ``rotate``, ``q``, ``lang``, ``alternate``, ``index``, …) to ``base``.

    Unknown parameters are ignored (a kiosk URL may carry the browser's own);
    a known one with a wrong value raises :class:`ScreenConfigError`.
    """
    config = base
    for key in sorted(_QUERY_KEYS & set(params)):
        if key == "lang":  # a wrong language is not worth an error page: the default it is
            config = replace(config, lang=pick_lang(params[key]))
        else:
            config = _set(config, key, params[key])
    return _checked(config)


def _zones(raw: Mapping[str, Any], folder: Path) -> tuple[pd.DataFrame | None, float]:
    allowed = {"zones", "zones_file", "radius_m"}
    extra = set(raw) - allowed
    if extra:
        raise ScreenConfigError(f"[privacy]: unknown setting {sorted(extra)}; allowed: {', '.join(sorted(allowed))}")
    radius = _seconds(raw.get("radius_m", 200.0), "[privacy] radius_m", (1.0, 10_000.0)) or 200.0
    frames = []
    if "zones" in raw:
        frames.append(pd.DataFrame(list(raw["zones"])))
    if "zones_file" in raw:
        path = folder / str(raw["zones_file"])
        if not path.is_file():
            raise ScreenConfigError(f"[privacy] zones_file {str(path)!r} does not exist")
        frames.append(pd.read_csv(path))
    if not frames:
        return None, radius
    zones = pd.concat(frames, ignore_index=True)
    unknown = set(zones.columns) - {"latitude", "longitude", "radius_m", "participant"}
    missing = {"latitude", "longitude"} - set(zones.columns)
    if unknown or missing:
        raise ScreenConfigError(
            f"[privacy] zones need latitude and longitude, optional radius_m and participant; "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    return zones, radius


def load_screens(path: str | Path) -> Screens:
    """Read and validate a ``screens.toml``.

    Raises
    ------
    ScreenConfigError
        On any invalid value, naming the table, the setting and what is allowed.
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ScreenConfigError(f"{path}: not valid TOML: {error}") from error
    return screens_from_mapping(raw, path.parent, str(path))


def screens_from_mapping(raw: Mapping[str, Any], folder: Path = Path("."), where: str = "screens") -> Screens:
    """Build :class:`Screens` from the parsed TOML document (see the module docstring)."""
    extra = set(raw) - {"defaults", "screens", "privacy"}
    if extra:
        raise ScreenConfigError(f"{where}: unknown table {sorted(extra)}; allowed: defaults, screens, privacy")
    site = dict(raw.get("defaults", {}))
    public_url = site.pop("public_url", None)
    if public_url is not None and not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", str(public_url)):
        raise ScreenConfigError(f"{where}: [defaults] public_url must look like http://HOST:PORT, not {public_url!r}")
    participants = site.pop("participants", None)
    if participants is not None and (not isinstance(participants, int) or not 0 <= participants <= 10**7):
        raise ScreenConfigError(f"{where}: [defaults] participants must be a whole number >= 0, not {participants!r}")
    defaults = screen_from_mapping(site, ScreenConfig(), f"{where} [defaults]")
    named: dict[str, ScreenConfig] = {}
    for name, table in dict(raw.get("screens", {})).items():
        if not NAME.match(name) or name in VIEWS:
            raise ScreenConfigError(
                f"{where}: screen name {name!r} must be lower-case letters, digits, '-' or '_' "
                f"(up to 40) and not a view name ({', '.join(VIEWS)})"
            )
        if not isinstance(table, Mapping):
            raise ScreenConfigError(f"{where}: [screens.{name}] must be a table of settings")
        named[name] = screen_from_mapping(table, replace(defaults, name=name), f"{where} [screens.{name}]")
    zones, radius = _zones(dict(raw.get("privacy", {})), folder)
    return Screens(defaults, named, zones, radius, None if public_url is None else str(public_url).rstrip("/"),
                   participants)
