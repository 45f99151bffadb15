"""Screen settings from URL parameters and screens.toml: checked once, with messages naming what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.kiosk.config import (
    VIEWS,
    ScreenConfig,
    ScreenConfigError,
    index_choices,
    index_version,
    load_screens,
    screen_from_query,
    screens_from_mapping,
)

TOML = """
[defaults]
index = "atmo"
public_url = "http://192.168.1.20:8000/"
participants = 42

[screens.hall-a]
title = "Hall A"
views = ["live", "map", "who"]
rotate = 20
alternate = 30

[screens.accueil]
views = "walk"
lang = "en"
quantities = ["pm2_5", "co2"]

[privacy]
radius_m = 150
zones = [{latitude = 48.8041, longitude = 2.1340, participant = "kit01"}]
zones_file = "zones.csv"
"""


def test_a_screens_file_gives_named_screens_over_the_defaults(tmp_path: Path):
    (tmp_path / "zones.csv").write_text("latitude,longitude,radius_m\n48.80,2.13,300\n", encoding="utf-8")
    (tmp_path / "screens.toml").write_text(TOML, encoding="utf-8")
    screens = load_screens(tmp_path / "screens.toml")
    hall = screens.screen("hall-a")
    assert (hall.title, hall.views, hall.rotate, hall.alternate, hall.index) == (
        "Hall A", ("live", "map", "who"), 20.0, 30.0, "atmo")
    desk = screens.screen("accueil")
    assert (desk.views, desk.lang, desk.quantities, desk.languages) == (("walk",), "en", ("pm2_5", "co2"), ("fr", "en"))
    assert screens.public_url == "http://192.168.1.20:8000" and screens.participants == 42
    assert screens.zone_radius_m == 150.0
    assert screens.zones is not None and len(screens.zones) == 2
    assert screens.zones["participant"].tolist()[0] == "kit01"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"screens": {"a": {"views": ["live", "mapp"]}}},
         "unknown views ['mapp']; allowed: live, map, chart, who, trips, summary, walk"),
        ({"screens": {"a": {"index": "aqi"}}}, "unknown index ['aqi']; allowed: eaqi, atmo, eaqi-2021, eaqi-2024"),
        ({"screens": {"a": {"rotate": 2}}}, "rotate must be 0 (off) or between 5 and 3600 seconds"),
        ({"screens": {"a": {"colour": "red"}}}, "unknown setting 'colour'; allowed: alternate, campaign"),
        ({"screens": {"map": {"views": ["map"]}}}, "must be lower-case letters"),
        ({"screens": {"a": {"quantities": ["pm25"]}}}, "unknown quantities ['pm25']; allowed: pm1, pm2_5"),
        ({"screens": {"a": {"quantities": ["latitude"]}}}, "unknown quantities ['latitude']"),
        ({"screens": {"a": {"languages": ["fr"], "alternate": 10}}}, "alternate needs two languages"),
        ({"defaults": {"public_url": "192.168.1.20"}}, "public_url must look like http://HOST:PORT"),
        ({"privacy": {"zones": [{"lat": 48.8, "longitude": 2.1}]}}, "missing ['latitude'], unknown ['lat']"),
        ({"display": {}}, "unknown table ['display']; allowed: defaults, screens, privacy"),
    ],
)
def test_a_wrong_setting_is_refused_with_the_allowed_values(table, message):
    with pytest.raises(ScreenConfigError, match=None) as caught:
        screens_from_mapping(table)
    assert message in str(caught.value)


def test_url_parameters_override_a_screen_and_an_unknown_language_falls_back_to_french():
    config = screen_from_query({"views": "map,who", "rotate": "15", "q": "co2,pm2_5", "lang": "xx", "alternate": "30",
                                "replay_after": "0", "utm_source": "ignored"}, ScreenConfig())
    assert (config.views, config.rotate, config.quantities, config.lang, config.alternate, config.replay_after) == (
        ("map", "who"), 15.0, ("co2", "pm2_5"), "fr", 30.0, 0.0)
    assert screen_from_query({"lang": "EN"}, ScreenConfig()).lang == "en"


def test_bare_eaqi_is_the_version_the_live_screens_use_and_versions_can_be_named():
    assert index_version("eaqi") == ("eaqi", "2021")
    assert index_version("eaqi-2024") == ("eaqi", "2024")
    assert index_version("atmo") == ("atmo", "2021")
    assert set(index_choices()) >= {"eaqi", "atmo", "eaqi-2024"}


@given(st.text(max_size=40))
def test_any_views_parameter_gives_known_views_or_an_error_naming_them(text):
    try:
        config = screen_from_query({"views": text}, ScreenConfig())
    except ScreenConfigError as error:
        assert "views" in str(error)
    else:
        assert config.views and set(config.views) <= set(VIEWS)
