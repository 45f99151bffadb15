"""Air-quality indices from versioned data files, computed with each index's own averaging.

The bands, averaging rules, colours, labels (French and English) and
sources of each index live in ``analysis/data/indices/<id>-<version>.json``,
not in code, so a revised index is a new file and an old result can be
recomputed with the version it used.  Every file names its sources (URLs)
and every scale in it the table row it was typed from (``source``).
Shipped:

=========  =======  ==========================================================
id         version  what
=========  =======  ==========================================================
``eaqi``   2024     EEA European Air Quality Index, revised bands (WHO
                    2021-aligned), ETC HE Report 2024/17 published
                    3 July 2025; every pollutant, PM included, on its 1-hour
                    mean
``eaqi``   2021     the six-level EAQI before that revision; PM on the 24-hour
                    running mean, gases on the 1-hour mean
``atmo``   2021     French ATMO index (arrêté du 10 juillet 2020, in force
                    1 January 2021): PM on the daily mean, NO2/O3/SO2 on the
                    day's highest hourly mean
``who``    2021     WHO 2021 guideline levels and interim targets for PM2.5 and
                    PM10, 24-hour and annual
=========  =======  ==========================================================

Bands include their upper bound and values are compared unrounded: the
ATMO arrêté writes its classes "c ≤ 10", "10 < c ≤ 20" …; the pre-revision
EAQI table uses the same limits as touching ranges; the revised EAQI is
printed as integer ranges ("0-5", "6-15" …) with no rounding rule, so a
value between two printed ranges (5 < c < 6) takes the poorer band.  No
US EPA AQI is shipped (no interpolated 0-500 sub-index, no truncation rule).

Every index computed from a low-cost sensor is **indicative**: these
indices are defined on reference-grade measurements (and for ATMO on a
zone, not a point).  Results carry an ``indicative`` column, True unless
the caller states the data come from a reference instrument.

Sources
-------
- ETC HE Report 2024/17, "EEA's revision of the European air quality index
  bands", v1, 3 July 2025, DOI 10.5281/zenodo.15781195,
  https://www.eionet.europa.eu/etcs/etc-he/products/etc-he-products/etc-he-reports/etc-he-report-2024-17-eeas-revision-of-the-european-air-quality-index-bands
  (revised band table; "hourly concentrations of all five pollutants are
  used"), and the EEA viewer, "About the index",
  https://airindex.eea.europa.eu/AQI/index.html (band tables before and
  after the revision; colours).
- Arrêté du 10 juillet 2020 relatif à l'indice de la qualité de l'air
  ambiant (NOR TRER2017892A), annexe I (sub-index tables per pollutant) and
  its table of qualificatifs and colour names,
  https://www.legifrance.gouv.fr/loda/id/JORFTEXT000042164835/ ; RGB codes
  from the Atmo France technical notice (14 December 2020),
  https://atmo-france.org/lindice-atmo/
- WHO global air quality guidelines 2021, Executive summary Table 0.1,
  https://www.who.int/publications/i/item/9789240034228
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.daily import (
    DEFAULT_RATE_HZ,
    DEFAULT_TZ,
    MIN_VALID_HOURS,
    daily_statistics,
    hourly_means,
)

AVERAGINGS = ("hourly_mean", "running_24h_mean", "daily_mean", "daily_max_hourly_mean", "annual_mean")
MIN_ANNUAL_DAY_SHARE = 0.75  # [1] share of a year's days with a complete daily mean for a valid annual mean
EAQI_PM2_5_VERSION = "2021"  # the version behind EAQI_PM2_5, shown on the live screens
RESULT_COLUMNS = [
    "period_start", "period_end", "value", "valid", "category", "label_en", "label_fr", "colour",
    "index", "version", "pollutant", "averaging", "indicative",
]
_DATA = "data/indices"


@dataclass(frozen=True)
class Band:
    """One band of an index: values up to ``upper`` (inclusive) [unit of the index]."""

    key: str
    upper: float
    label_en: str
    label_fr: str
    colour: str | None  # background colour, CSS hex; None where the index defines none (WHO)
    ink: str | None  # text colour readable on ``colour``


@dataclass(frozen=True)
class Scale:
    """The thresholds of one pollutant under one averaging rule."""

    pollutant: str
    unit: str
    averaging: str
    uppers: tuple[float, ...]  # inclusive upper bound of each category; the last is inf
    source: str = ""  # the published table row the bounds were typed from


@dataclass(frozen=True)
class IndexTable:
    """One version of an index, as read from its data file."""

    id: str
    version: str
    date: str
    name: dict[str, str]
    publisher: str
    description: str
    sources: tuple[dict[str, str], ...]
    categories: tuple[dict[str, Any], ...]
    scales: tuple[Scale, ...]
    source: str = ""  # the published table(s) the file was typed from

    def scale(self, pollutant: str, averaging: str | None = None) -> Scale:
        """Return the scale of ``pollutant`` (the first listed, unless ``averaging`` is given).

        Raises
        ------
        KeyError
            If the index has no such scale (the message lists those it has).
        """
        for scale in self.scales:
            if scale.pollutant == pollutant and averaging in (None, scale.averaging):
                return scale
        have = ", ".join(f"{s.pollutant}/{s.averaging}" for s in self.scales)
        raise KeyError(f"{self.id} {self.version} has no scale for {pollutant}/{averaging or 'any'}; it has {have}")

    def bands(self, pollutant: str, averaging: str | None = None) -> tuple[Band, ...]:
        """Return the bands of one scale, lowest first, with labels and colours."""
        scale = self.scale(pollutant, averaging)
        return tuple(
            Band(c["key"], upper, c["label"]["en"], c["label"]["fr"], c["colour"], c["ink"])
            for c, upper in zip(self.categories, scale.uppers, strict=True)
        )


def available() -> dict[str, tuple[str, ...]]:
    """Return the shipped indices and their versions: ``{"eaqi": ("2021", "2024"), …}``."""
    found: dict[str, list[str]] = {}
    for entry in resources.files("analysis").joinpath(_DATA).iterdir():
        if entry.name.endswith(".json"):
            index_id, _, version = entry.name[: -len(".json")].partition("-")
            found.setdefault(index_id, []).append(version)
    return {key: tuple(sorted(versions)) for key, versions in sorted(found.items())}


@lru_cache(maxsize=32)
def load_index(index_id: str, version: str | None = None) -> IndexTable:
    """Read an index's data file.

    Parameters
    ----------
    index_id : str
        ``"eaqi"``, ``"atmo"`` or ``"who"`` (see :func:`available`).
    version : str, optional
        The newest version by default.

    Returns
    -------
    IndexTable

    Raises
    ------
    KeyError
        If there is no such index or version (the message lists them).
    ValueError
        If the data file is inconsistent (see :func:`parse_index`).
    """
    versions = available().get(index_id)
    if not versions or (version is not None and version not in versions):
        raise KeyError(f"no index {index_id!r} version {version or 'latest'}; available: {available()}")
    chosen = version or versions[-1]
    name = f"{index_id}-{chosen}.json"
    return parse_index(json.loads(resources.files("analysis").joinpath(_DATA, name).read_text(encoding="utf-8")), name)


def parse_index(raw: dict[str, Any], name: str = "index file") -> IndexTable:
    """Check and convert the content of an index data file.

    Raises
    ------
    ValueError
        If a scale has not one bound per category, bounds that do not
        increase or a closed last band, an averaging not in
        :data:`AVERAGINGS`, or names no ``source``; or if the file names
        no ``source`` or no ``sources`` (the message says which, in ``name``).
    """
    scales = tuple(
        Scale(s["pollutant"], s["unit"], s["averaging"], tuple(np.inf if u is None else float(u) for u in s["upper"]),
              source=s.get("source", ""))
        for s in raw["scales"]
    )
    for scale in scales:
        what = f"{name}: scale {scale.pollutant}/{scale.averaging}"
        if len(scale.uppers) != len(raw["categories"]) or scale.averaging not in AVERAGINGS:
            raise ValueError(f"{what} is inconsistent: {len(scale.uppers)} bounds for {len(raw['categories'])} "
                             f"categories; the averaging must be one of {AVERAGINGS}")
        if any(b <= a for a, b in zip(scale.uppers, scale.uppers[1:], strict=False)) or scale.uppers[-1] != np.inf:
            raise ValueError(f"{what}: bounds must increase and the last must be open (null), got {scale.uppers}")
        if not scale.source:
            raise ValueError(f"{what} names no source (the published table row it was typed from)")
    if not raw.get("source") or not raw.get("sources"):
        raise ValueError(f"{name} names no 'source' (the published table) or no 'sources' (documents with URLs)")
    return IndexTable(
        id=raw["id"], version=raw["version"], date=raw["date"], name=raw["name"], publisher=raw["publisher"],
        description=raw["description"], sources=tuple(raw["sources"]), categories=tuple(raw["categories"]),
        scales=scales, source=raw["source"],
    )


def categorise(values: npt.ArrayLike | pd.Series, scale: Scale, keys: npt.ArrayLike) -> pd.Series:
    """Return the category key of each (already averaged) value.

    Parameters
    ----------
    values : array-like or Series [unit of the scale]
        NaN where missing.
    scale : Scale
        Thresholds, inclusive upper bounds.
    keys : array-like of str
        Category keys, one per threshold.

    Returns
    -------
    pandas.Series of str
        A key, or missing where the value is missing or negative.  A Series
        input keeps its index.
    """
    series = values.astype("float64") if isinstance(values, pd.Series) else pd.Series(values, dtype="float64")
    data = series.to_numpy()
    position = np.searchsorted(np.asarray(scale.uppers), data, side="left").clip(0, len(scale.uppers) - 1)
    result = np.where(np.isfinite(data) & (data >= 0), np.asarray(keys, dtype=object)[position], None)
    return pd.Series(result, index=series.index, dtype="str")


def compute_index(
    values: pd.Series,
    times: pd.Series | None = None,
    *,
    index: str = "eaqi",
    pollutant: str = "pm2_5",
    version: str | None = None,
    averaging: str | None = None,
    tz: str = DEFAULT_TZ,
    nominal_rate_hz: float = DEFAULT_RATE_HZ,
    indicative: bool = True,
) -> pd.DataFrame:
    """Compute an index for a series, with the index's own averaging.

    Parameters
    ----------
    values : Series [µg/m³]
        Concentrations of ``pollutant`` from one device or site; NaN where
        missing.  Indexed by time unless ``times`` is given.
    times : Series of datetimes, optional
        Measurement times aligned with ``values``; naive times are UTC.
    index : str, default ``"eaqi"``
        Index id (see :func:`available`).
    pollutant : str, default ``"pm2_5"``
    version : str, optional
        Index version; the newest by default.
    averaging : str, optional
        One of :data:`AVERAGINGS` the index defines for the pollutant;
        the first it lists by default (WHO: ``daily_mean``).
    tz : str, default ``"Europe/Paris"``
        Time zone of the days (daily and annual averaging).
    nominal_rate_hz : float, default 1
        Records the sensor sends per second [Hz], for completeness.
    indicative : bool, default True
        Keep True for low-cost sensors; False only for data from a
        reference instrument.

    Returns
    -------
    pandas.DataFrame
        One row per averaging period with data (:data:`RESULT_COLUMNS`):
        ``period_start``/``period_end`` [UTC] bound the averaged interval,
        ``value`` [µg/m³] the average, ``valid`` whether the period meets
        the completeness rule, ``category`` and its labels and colour
        (missing when not valid), then the index, version, pollutant,
        averaging and ``indicative``.

    Notes
    -----
    Completeness: an hourly mean needs 75 % of the expected records; a
    daily statistic (mean, or highest hourly mean) and a 24-hour running
    mean need 18 valid hourly means; an annual mean needs complete daily
    means on 75 % of the year's days.  Daily and annual periods are local
    calendar days and years in ``tz`` (23- to 25-hour days around DST
    changes).  The 24-hour running mean is labelled by its last hour:
    ``period_end`` is the end of that hour.  Bands include their upper
    bound, as in the published tables ("≤ 10", "10 < c ≤ 20" …); values
    are not rounded before comparison.
    """
    table = load_index(index, version)
    scale = table.scale(pollutant, averaging)
    frame = _averaged(values, times, scale.averaging, tz, nominal_rate_hz)
    keys = [c["key"] for c in table.categories]
    category = categorise(frame["value"], scale, keys).where(frame["valid"].to_numpy())
    frame["category"] = category.to_numpy()
    for column, pick in (("label_en", lambda c: c["label"]["en"]), ("label_fr", lambda c: c["label"]["fr"]),
                         ("colour", lambda c: c["colour"])):
        frame[column] = category.map({c["key"]: pick(c) for c in table.categories}).to_numpy()
    frame["index"], frame["version"], frame["pollutant"] = table.id, table.version, pollutant
    frame["averaging"], frame["indicative"] = scale.averaging, indicative
    return frame[RESULT_COLUMNS]


def _averaged(values: pd.Series, times: pd.Series | None, averaging: str, tz: str, rate: float) -> pd.DataFrame:
    """Columns period_start, period_end, value, valid for one averaging rule."""
    hour = pd.Timedelta(hours=1)
    if averaging in ("hourly_mean", "running_24h_mean"):
        hours = hourly_means(values, times, tz=tz, nominal_rate_hz=rate)
        start = pd.DatetimeIndex(hours["hour"])
        if averaging == "hourly_mean":
            return pd.DataFrame({"period_start": start, "period_end": start + hour,
                                 "value": hours["mean"].to_numpy(), "valid": hours["valid"].to_numpy()})
        valid_means = pd.Series(hours["mean"].where(hours["valid"]).to_numpy(), index=start)
        window = valid_means.rolling("24h")
        count = window.count().to_numpy()
        return pd.DataFrame({"period_start": start - 23 * hour, "period_end": start + hour,
                             "value": window.mean().to_numpy(), "valid": count >= MIN_VALID_HOURS})
    days = daily_statistics(values, times, tz=tz, nominal_rate_hz=rate)
    midnight = pd.to_datetime(days["date"])
    if averaging in ("daily_mean", "daily_max_hourly_mean"):
        column = "mean" if averaging == "daily_mean" else "max_hourly"
        return pd.DataFrame({"period_start": _instants(midnight, tz),
                             "period_end": _instants(midnight + pd.Timedelta(days=1), tz),
                             "value": days[column].to_numpy(), "valid": days["complete"].to_numpy()})
    complete = days[days["complete"]]
    years = pd.to_datetime(complete["date"]).dt.year
    annual = complete.groupby(years)["mean"].agg(["mean", "count"])
    first = pd.to_datetime(annual.index.astype(str) + "-01-01")
    after = pd.to_datetime((annual.index + 1).astype(str) + "-01-01")
    days_in_year = (after - first).days.to_numpy()
    return pd.DataFrame({"period_start": _instants(pd.Series(first), tz),
                         "period_end": _instants(pd.Series(after), tz),
                         "value": annual["mean"].to_numpy(),
                         "valid": annual["count"].to_numpy() >= MIN_ANNUAL_DAY_SHARE * days_in_year})


def _instants(local_midnights: pd.Series, tz: str) -> np.ndarray:
    """UTC instants of local midnights (a midnight skipped by DST moves forward)."""
    aware = pd.Series(local_midnights).dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC").array


EAQI_PM2_5: tuple[Band, ...] = load_index("eaqi", EAQI_PM2_5_VERSION).bands("pm2_5")
"""EAQI bands for PM2.5 [µg/m³], lowest first (version :data:`EAQI_PM2_5_VERSION`)."""


def eaqi_pm2_5_band(pm2_5: npt.ArrayLike | pd.Series) -> pd.Series:
    """Return the EAQI band key of each PM2.5 concentration.

    Parameters
    ----------
    pm2_5 : array-like or Series [µg/m³]
        Mass concentrations; NaN where missing.

    Returns
    -------
    pandas.Series of str
        A key of :data:`EAQI_PM2_5` (``"good"`` … ``"extremely_poor"``), or
        NaN where the input is missing or negative.  A Series input keeps
        its index.

    Notes
    -----
    A band includes its upper bound: 10.0 µg/m³ is ``good``, 10.1 ``fair``.
    The EAQI is defined on hourly (and, for PM in this version, running
    24 h) means; applied to an instantaneous value, as on live screens, it
    is indicative only.  Use :func:`compute_index` for averaged values.
    """
    scale = load_index("eaqi", EAQI_PM2_5_VERSION).scale("pm2_5")
    return categorise(pm2_5, scale, [band.key for band in EAQI_PM2_5])
