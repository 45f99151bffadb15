"""The index data files against the published tables, copied here by hand from each source."""

from __future__ import annotations

import math

import pytest

from analysis.indices import available, load_index

INF = math.inf

# ETC HE Report 2024/17 (revision of the European Air Quality Index), Table 5.2, 1-hour means [µg/m³]:
# upper bounds of Good, Fair, Moderate, Poor, Very poor; above: Extremely poor.
EAQI_2024 = {
    "pm2_5": [5, 15, 50, 90, 140],
    "pm10": [15, 45, 120, 195, 270],
    "no2": [10, 25, 60, 100, 150],
    "o3": [60, 100, 120, 160, 180],
    "so2": [20, 40, 125, 190, 275],
}

# EEA European Air Quality Index before the 2024 revision (six levels) [µg/m³];
# PM on 24-hour running means, gases on 1-hour means.
EAQI_2021 = {
    "pm2_5": ([10, 20, 25, 50, 75], "running_24h_mean"),
    "pm10": ([20, 40, 50, 100, 150], "running_24h_mean"),
    "no2": ([40, 90, 120, 230, 340], "hourly_mean"),
    "o3": ([50, 100, 130, 240, 380], "hourly_mean"),
    "so2": ([100, 200, 350, 500, 750], "hourly_mean"),
}

# Arrêté du 10 juillet 2020, annexe I (« concentration ≤ 10 : Bon ; 10 < concentration ≤ 20 : Moyen … »):
# PM: moyenne journalière; SO2, NO2, O3: maximum des maxima horaires journaliers [µg/m³].
ATMO_2021 = {
    "so2": ([100, 200, 350, 500, 750], "daily_max_hourly_mean"),
    "no2": ([40, 90, 120, 230, 340], "daily_max_hourly_mean"),
    "o3": ([50, 100, 130, 240, 380], "daily_max_hourly_mean"),
    "pm10": ([20, 40, 50, 100, 150], "daily_mean"),
    "pm2_5": ([10, 20, 25, 50, 75], "daily_mean"),
}
# Arrêté du 10 juillet 2020, annexe II: qualificatifs and colours (RGB)
ATMO_CLASSES = [
    ("Bon", (80, 240, 230)), ("Moyen", (80, 204, 170)), ("Dégradé", (240, 230, 65)),
    ("Mauvais", (255, 80, 80)), ("Très mauvais", (150, 0, 50)), ("Extrêmement mauvais", (135, 33, 129)),
]
# EEA palette, Good to Extremely poor
EAQI_COLOURS = ["#50f0e6", "#50ccaa", "#f0e641", "#ff5050", "#960032", "#7d2181"]

# WHO global air quality guidelines 2021, Executive summary Table 0.1 [µg/m³]:
# interim targets 1, 2, 3, 4 and the AQG level.
WHO_2021 = {
    ("pm2_5", "annual_mean"): {"it1": 35, "it2": 25, "it3": 15, "it4": 10, "aqg": 5},
    ("pm2_5", "daily_mean"): {"it1": 75, "it2": 50, "it3": 37.5, "it4": 25, "aqg": 15},
    ("pm10", "annual_mean"): {"it1": 70, "it2": 50, "it3": 30, "it4": 20, "aqg": 15},
    ("pm10", "daily_mean"): {"it1": 150, "it2": 100, "it3": 75, "it4": 50, "aqg": 45},
}


def test_the_shipped_indices_and_versions_are_listed():
    assert available() == {"atmo": ("2021",), "eaqi": ("2021", "2024"), "who": ("2021",)}
    assert load_index("eaqi").version == "2024"


@pytest.mark.parametrize("pollutant", sorted(EAQI_2024))
def test_the_revised_eaqi_bands_are_the_published_hourly_ones(pollutant):
    scale = load_index("eaqi", "2024").scale(pollutant)
    assert list(scale.uppers) == [*EAQI_2024[pollutant], INF]
    assert (scale.averaging, scale.unit) == ("hourly_mean", "µg/m³")


@pytest.mark.parametrize("pollutant", sorted(EAQI_2021))
def test_the_previous_eaqi_bands_and_averaging_are_the_published_ones(pollutant):
    uppers, averaging = EAQI_2021[pollutant]
    scale = load_index("eaqi", "2021").scale(pollutant)
    assert list(scale.uppers) == [*uppers, INF] and scale.averaging == averaging


@pytest.mark.parametrize("version", ["2021", "2024"])
def test_eaqi_labels_and_colours_are_the_eea_ones(version):
    table = load_index("eaqi", version)
    assert [c["label"]["en"] for c in table.categories] == [
        "Good", "Fair", "Moderate", "Poor", "Very poor", "Extremely poor"]
    assert [c["colour"] for c in table.categories] == EAQI_COLOURS


@pytest.mark.parametrize("pollutant", sorted(ATMO_2021))
def test_the_atmo_bands_and_averaging_are_those_of_the_arrete(pollutant):
    uppers, averaging = ATMO_2021[pollutant]
    scale = load_index("atmo", "2021").scale(pollutant)
    assert list(scale.uppers) == [*uppers, INF] and scale.averaging == averaging


def test_the_atmo_classes_and_colours_are_those_of_the_arrete():
    table = load_index("atmo", "2021")
    assert [c["label"]["fr"] for c in table.categories] == [label for label, _ in ATMO_CLASSES]
    assert [c["colour"] for c in table.categories] == ["#{:02x}{:02x}{:02x}".format(*rgb) for _, rgb in ATMO_CLASSES]
    assert table.date == "2021-01-01"
    assert any("JORFTEXT000042164835" in source["url"] for source in table.sources)


@pytest.mark.parametrize(("pollutant", "averaging"), sorted(WHO_2021))
def test_the_who_levels_are_those_of_table_0_1(pollutant, averaging):
    levels = WHO_2021[(pollutant, averaging)]
    table = load_index("who", "2021")
    bands = table.bands(pollutant, averaging)
    assert [b.key for b in bands] == ["aqg", "it4", "it3", "it2", "it1", "above_it1"]
    assert [b.upper for b in bands] == [levels[k] for k in ("aqg", "it4", "it3", "it2", "it1")] + [INF]
    assert all(b.colour is None for b in bands)  # WHO defines no colours


def test_every_index_file_names_its_sources_with_urls_and_labels_in_both_languages():
    for index_id, versions in available().items():
        for version in versions:
            table = load_index(index_id, version)
            assert table.sources and all(s["url"].startswith("https://") for s in table.sources)
            assert all(c["label"]["fr"] and c["label"]["en"] for c in table.categories)
            assert table.name["fr"] and table.name["en"]
