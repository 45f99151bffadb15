"""The index data files against the published tables, row by row, typed here by hand from each source.

Each table below is written the way its document prints it (ranges as text), then parsed; the data
file must give the same bounds, averaging, labels and colours, and every bound is checked at the
value itself, just below and just above.
"""

from __future__ import annotations

import copy
import json
import math
import re
from importlib import resources

import numpy as np
import pytest

from analysis.indices import available, categorise, load_index, parse_index

INF = math.inf

# --- EEA European Air Quality Index, revised bands -----------------------------------------------------
# ETC HE Report 2024/17 "EEA's revision of the European air quality index bands", v1 (3 July 2025),
# revised band table, repeated in the EEA viewer "About the index" (airindex.eea.europa.eu/AQI/index.html),
# µg/m³; "to determine the AQI level, hourly concentrations of all five pollutants are used".
# Columns: Good, Fair, Moderate, Poor, Very poor, Extremely poor.
EAQI_2024 = {
    "pm2_5": ("0-5", "6-15", "16-50", "51-90", "91-140", ">140"),
    "pm10": ("0-15", "16-45", "46-120", "121-195", "196-270", ">270"),
    "no2": ("0-10", "11-25", "26-60", "61-100", "101-150", ">150"),
    "o3": ("0-60", "61-100", "101-120", "121-160", "161-180", ">180"),
    "so2": ("0-20", "21-40", "41-125", "126-190", "191-275", ">275"),
}

# --- EEA European Air Quality Index before the revision ----------------------------------------------
# EEA viewer "About the index" band table before the revision, µg/m³ (the last range's top is a display
# cap); PM2.5 and PM10 on 24-hour running means, NO2, O3 and SO2 on hourly means.
EAQI_2021 = {
    "pm2_5": (("0-10", "10-20", "20-25", "25-50", "50-75", "75-800"), "running_24h_mean"),
    "pm10": (("0-20", "20-40", "40-50", "50-100", "100-150", "150-1200"), "running_24h_mean"),
    "no2": (("0-40", "40-90", "90-120", "120-230", "230-340", "340-1000"), "hourly_mean"),
    "o3": (("0-50", "50-100", "100-130", "130-240", "240-380", "380-800"), "hourly_mean"),
    "so2": (("0-100", "100-200", "200-350", "350-500", "500-750", "750-1250"), "hourly_mean"),
}
# EEA labels and colours (RGB), Good to Extremely poor; the same in both versions.
EEA_CLASSES = [
    ("Good", (80, 240, 230)), ("Fair", (80, 204, 170)), ("Moderate", (240, 230, 65)),
    ("Poor", (255, 80, 80)), ("Very poor", (150, 0, 50)), ("Extremely poor", (125, 33, 129)),
]

# --- Indice ATMO -------------------------------------------------------------------------------------
# Arrêté du 10 juillet 2020 relatif à l'indice de la qualité de l'air ambiant, annexe I "Méthode de calcul
# des sous-indices journaliers", one table per pollutant, µg/m³: PM10 and PM2.5 on the daily mean
# ("moyenne journalière"), SO2 (1.1), NO2 (1.2) and O3 (1.3) on the "maximum des maxima horaires
# journaliers". Rows Bon, Moyen, Dégradé, Mauvais, Très mauvais, Extrêmement mauvais.
ATMO_2021 = {
    "so2": (("c ≤ 100", "100 < c ≤ 200", "200 < c ≤ 350", "350 < c ≤ 500", "500 < c ≤ 750", "c > 750"),
            "daily_max_hourly_mean"),
    "no2": (("c ≤ 40", "40 < c ≤ 90", "90 < c ≤ 120", "120 < c ≤ 230", "230 < c ≤ 340", "c > 340"),
            "daily_max_hourly_mean"),
    "o3": (("c ≤ 50", "50 < c ≤ 100", "100 < c ≤ 130", "130 < c ≤ 240", "240 < c ≤ 380", "c > 380"),
           "daily_max_hourly_mean"),
    "pm10": (("c ≤ 20", "20 < c ≤ 40", "40 < c ≤ 50", "50 < c ≤ 100", "100 < c ≤ 150", "c > 150"), "daily_mean"),
    "pm2_5": (("c ≤ 10", "10 < c ≤ 20", "20 < c ≤ 25", "25 < c ≤ 50", "50 < c ≤ 75", "c > 75"), "daily_mean"),
}
# Arrêté du 10 juillet 2020, table of qualificatifs and colour codes (colour names); RGB from the
# Atmo France technical notice of the index (14 December 2020).
ATMO_CLASSES = [
    ("Bon", "bleu", (80, 240, 230)), ("Moyen", "vert", (80, 204, 170)), ("Dégradé", "jaune", (240, 230, 65)),
    ("Mauvais", "rouge", (255, 80, 80)), ("Très mauvais", "pourpre", (150, 0, 50)),
    ("Extrêmement mauvais", "magenta", (135, 33, 129)),
]

# --- WHO global air quality guidelines 2021 ----------------------------------------------------------
# Executive summary, Table 0.1 "Recommended AQG levels and interim targets", µg/m³; columns
# interim target 1, 2, 3, 4, AQG level. The 24-hour values are 99th percentiles (3-4 exceedance days a year).
WHO_2021 = [
    # pollutant, averaging time, IT-1, IT-2, IT-3, IT-4, AQG
    ("pm2_5", "annual_mean", 35, 25, 15, 10, 5),
    ("pm2_5", "daily_mean", 75, 50, 37.5, 25, 15),
    ("pm10", "annual_mean", 70, 50, 30, 20, 15),
    ("pm10", "daily_mean", 150, 100, 75, 50, 45),
]


def hexes(rgbs):
    return ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in rgbs]


def printed_uppers(rows: tuple[str, ...]) -> list[float]:
    """Upper limit of each printed class: "6-15" → 15, "10 < c ≤ 20" → 20, "c ≤ 10" → 10; open last class → inf."""
    uppers = []
    for row in rows[:-1]:
        match = re.fullmatch(r"(?:[\d.]+-|(?:[\d.]+ < )?c ≤ )([\d.]+)", row)
        assert match, f"unparsed table cell {row!r}"
        uppers.append(float(match.group(1)))
    return [*uppers, INF]


def boundary_cases(uppers, keys):
    """(value, expected key): each finite bound itself, the nearest float below it and the nearest above it."""
    cases = [(0.0, keys[0])]
    for i, upper in enumerate(uppers[:-1]):
        cases += [(np.nextafter(upper, -INF), keys[i]), (upper, keys[i]), (np.nextafter(upper, INF), keys[i + 1])]
    return [*cases, (1e6, keys[-1])]


def assert_boundaries(scale, keys):
    values, expected = zip(*boundary_cases(list(scale.uppers), keys), strict=True)
    assert categorise(list(values), scale, keys).tolist() == list(expected)


# --- tests ------------------------------------------------------------------------------------------


def test_the_shipped_indices_and_versions_are_listed():
    assert available() == {"atmo": ("2021",), "eaqi": ("2021", "2024"), "who": ("2021",)}
    assert load_index("eaqi").version == "2024"


def test_the_revised_eaqi_is_dated_by_its_publication_and_cites_the_report():
    table = load_index("eaqi", "2024")
    assert table.date == "2025-07-03"  # ETC HE Report 2024/17, version 1
    assert any("etc-he-report-2024-17" in s["url"] for s in table.sources)
    assert any("zenodo.15781195" in s["title"] for s in table.sources)


@pytest.mark.parametrize("pollutant", sorted(EAQI_2024))
def test_the_revised_eaqi_bands_are_the_published_rows_on_hourly_means(pollutant):
    rows = EAQI_2024[pollutant]
    scale = load_index("eaqi", "2024").scale(pollutant)
    assert list(scale.uppers) == printed_uppers(rows)
    assert rows[-1] == f">{int(scale.uppers[-2])}"
    # the printed ranges are consecutive integers: each starts one above the previous upper limit
    lowers = [int(r.split("-")[0]) for r in rows[1:-1]]
    assert lowers == [int(u) + 1 for u in scale.uppers[:len(lowers)]]
    assert (scale.averaging, scale.unit) == ("hourly_mean", "µg/m³")


@pytest.mark.parametrize(("index", "version", "pollutant"),
                         [("eaqi", "2024", p) for p in sorted(EAQI_2024)]
                         + [("eaqi", "2021", p) for p in sorted(EAQI_2021)]
                         + [("atmo", "2021", p) for p in sorted(ATMO_2021)])
def test_every_bound_holds_at_itself_just_below_and_just_above(index, version, pollutant):
    table = load_index(index, version)
    assert_boundaries(table.scale(pollutant), [c["key"] for c in table.categories])


def test_a_revised_eaqi_value_between_two_printed_ranges_takes_the_poorer_band():
    table = load_index("eaqi", "2024")
    keys = [c["key"] for c in table.categories]
    got = categorise([5.0, 5.4, 5.6, 6.0, 15.0, 15.5, 140.0, 140.4], table.scale("pm2_5"), keys).tolist()
    assert got == ["good", "fair", "fair", "fair", "fair", "moderate", "very_poor", "extremely_poor"]


@pytest.mark.parametrize("pollutant", sorted(EAQI_2021))
def test_the_previous_eaqi_bands_and_averaging_are_the_published_rows(pollutant):
    rows, averaging = EAQI_2021[pollutant]
    scale = load_index("eaqi", "2021").scale(pollutant)
    assert list(scale.uppers) == printed_uppers(rows)
    # touching ranges: each starts where the previous one ends, the last one too (its top is a display cap)
    assert [float(r.split("-")[0]) for r in rows[1:]] == list(scale.uppers[:-1])
    assert scale.averaging == averaging


@pytest.mark.parametrize("version", ["2021", "2024"])
def test_eaqi_labels_and_colours_are_the_eea_ones(version):
    table = load_index("eaqi", version)
    assert [c["label"]["en"] for c in table.categories] == [label for label, _ in EEA_CLASSES]
    assert [c["colour"] for c in table.categories] == hexes(rgb for _, rgb in EEA_CLASSES)
    # French: the ATMO qualificatifs for the same six levels
    assert [c["label"]["fr"] for c in table.categories] == [label for label, _, _ in ATMO_CLASSES]


@pytest.mark.parametrize("pollutant", sorted(ATMO_2021))
def test_the_atmo_bands_and_averaging_are_those_of_the_arrete(pollutant):
    rows, averaging = ATMO_2021[pollutant]
    scale = load_index("atmo", "2021").scale(pollutant)
    assert list(scale.uppers) == printed_uppers(rows)
    assert rows[-1] == f"c > {int(scale.uppers[-2])}"
    assert (scale.averaging, scale.unit) == (averaging, "µg/m³")


def test_the_atmo_classes_colour_names_and_colours_are_the_published_ones():
    table = load_index("atmo", "2021")
    assert [c["label"]["fr"] for c in table.categories] == [label for label, _, _ in ATMO_CLASSES]
    assert [c["colour_name"] for c in table.categories] == [name for _, name, _ in ATMO_CLASSES]
    assert [c["colour"] for c in table.categories] == hexes(rgb for _, _, rgb in ATMO_CLASSES)
    assert table.date == "2021-01-01"  # in force (article 9 of the arrêté)
    assert any("JORFTEXT000042164835" in source["url"] for source in table.sources)


@pytest.mark.parametrize(("pollutant", "averaging", *["it1", "it2", "it3", "it4", "aqg"]), WHO_2021)
def test_the_who_levels_are_the_rows_of_table_0_1(pollutant, averaging, it1, it2, it3, it4, aqg):
    table = load_index("who", "2021")
    bands = table.bands(pollutant, averaging)
    assert [b.key for b in bands] == ["aqg", "it4", "it3", "it2", "it1", "above_it1"]
    assert [b.upper for b in bands] == [aqg, it4, it3, it2, it1, INF]
    assert all(b.colour is None for b in bands)  # WHO defines no colours


@pytest.mark.parametrize(("pollutant", "averaging"), [row[:2] for row in WHO_2021])
def test_the_who_levels_hold_at_just_below_and_just_above(pollutant, averaging):
    table = load_index("who", "2021")
    assert_boundaries(table.scale(pollutant, averaging), [c["key"] for c in table.categories])


def test_every_index_file_and_scale_names_its_source():
    for index_id, versions in available().items():
        for version in versions:
            table = load_index(index_id, version)
            assert table.source and table.sources
            assert all(s["url"].startswith("https://") and s["title"] for s in table.sources)
            assert all(scale.source for scale in table.scales)
            assert all(c["label"]["fr"] and c["label"]["en"] for c in table.categories)
            assert table.name["fr"] and table.name["en"]


def shipped(name: str) -> dict:
    return json.loads(resources.files("analysis").joinpath("data/indices", name).read_text(encoding="utf-8"))


def altered(name: str, change) -> dict:
    raw = copy.deepcopy(shipped(name))
    change(raw)
    return raw


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw["scales"][0].pop("source"), "pm2_5/daily_mean names no source"),
    (lambda raw: raw["scales"][0].update(upper=[10, 20, 25, 50, 75]), "5 bounds for 6 categories"),
    (lambda raw: raw["scales"][0].update(upper=[10, 20, 20, 50, 75, None]), "bounds must increase"),
    (lambda raw: raw["scales"][0].update(upper=[10, 20, 25, 50, 75, 800]), "last must be open"),
    (lambda raw: raw["scales"][0].update(averaging="8h_mean"), "averaging must be one of"),
    (lambda raw: raw.pop("source"), "names no 'source'"),
], ids=["scale-without-source", "bound-missing", "bounds-not-increasing", "closed-last-band", "unknown-averaging",
        "file-without-source"])
def test_an_index_file_that_breaks_the_rules_is_refused_with_the_reason(change, message):
    assert parse_index(shipped("atmo-2021.json"), "atmo-2021.json") == load_index("atmo", "2021")
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        parse_index(altered("atmo-2021.json", change), "atmo-2021.json")
    assert "atmo-2021.json" in str(refused.value)
