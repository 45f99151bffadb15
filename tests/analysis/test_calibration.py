"""Calibration: published EPA corrections, co-location fits, versions in DuckDB, a derived layer."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from analysis.calibration import (
    CalibrationModel,
    apply,
    colocate,
    create_table,
    epa_purpleair_2021,
    fit,
    load,
    predict,
    save,
)

# Barkjohn, Gantt & Clements (2021), AMT 14, 4617-4637, US-wide correction (their equation):
#   PM2.5 = 0.524 × PA_cf1 − 0.0862 × RH + 5.75
PAPER = {"slope": 0.524, "rh": -0.0862, "intercept": 5.75}


@pytest.mark.parametrize(
    ("pa_cf1", "rh", "expected"),
    [
        (20.0, 50.0, 0.524 * 20 - 0.0862 * 50 + 5.75),  # 11.92
        (10.0, 80.0, 0.524 * 10 - 0.0862 * 80 + 5.75),  # 4.094
        (0.0, 0.0, 5.75),
    ],
)
def test_the_epa_2021_correction_has_the_papers_coefficients(pa_cf1, rh, expected):
    model = epa_purpleair_2021()
    assert model.coefficients == PAPER
    assert (model.source, model.quantity, model.kind) == ("pm2_5_cf1", "pm2_5", "epa_purpleair_2021")
    assert predict(model, [pa_cf1], [rh])[0] == pytest.approx(expected, abs=1e-9)
    assert predict(model, [20.0], [50.0])[0] == pytest.approx(11.92)


# Extended correction (Barkjohn et al. 2022, Sensors 22, 9669; AirNow Fire and Smoke Map), by hand:
@pytest.mark.parametrize(
    ("pa_cf1", "rh", "expected"),
    [
        (20.0, 50.0, 0.524 * 20 - 0.0862 * 50 + 5.75),
        (40.0, 50.0, (0.786 * 0.5 + 0.524 * 0.5) * 40 - 0.0862 * 50 + 5.75),  # w = 40/20 - 3/2 = 0.5
        (100.0, 60.0, 0.786 * 100 - 0.0862 * 60 + 5.75),
        (235.0, 40.0, (0.69 * 0.5 + 0.786 * 0.5) * 235 - 0.0862 * 40 * 0.5 + 2.966 * 0.5 + 5.75 * 0.5
         + 8.84e-4 * 235**2 * 0.5),  # w = 235/50 - 21/5 = 0.5
        (300.0, 30.0, 2.966 + 0.69 * 300 + 8.84e-4 * 300**2),  # 289.526, RH no longer used
    ],
)
def test_the_extended_epa_correction_follows_each_piece(pa_cf1, rh, expected):
    assert predict(epa_purpleair_2021(extended=True), [pa_cf1], [rh])[0] == pytest.approx(expected)


def test_the_extended_correction_is_continuous_at_its_breakpoints_and_agrees_below_30():
    model = epa_purpleair_2021(extended=True)
    for breakpoint in (30.0, 50.0, 210.0, 260.0):
        below, above = predict(model, [breakpoint - 1e-9, breakpoint + 1e-9], [55.0, 55.0])
        assert below == pytest.approx(above, abs=1e-6)
    x = np.linspace(0, 29.9, 50)
    np.testing.assert_allclose(predict(model, x, np.full(50, 45.0)), predict(epa_purpleair_2021(), x, np.full(50, 45.0)))
    assert predict(model, [300.0], [10.0])[0] == predict(model, [300.0], [90.0])[0]
    assert np.isnan(predict(model, [np.nan], [50.0])[0])


def pairs(n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(3, 80, n)
    rh = rng.uniform(30, 95, n)
    index = pd.date_range("2026-04-01", periods=n, freq="1h")
    return pd.DataFrame({"pm2_5": x, "relative_humidity": rh,
                         "reference": 0.62 * x - 0.08 * rh + 3.5 + rng.normal(0, 0.5, n)}, index=index)


def test_a_linear_rh_fit_recovers_the_coefficients_and_records_its_window_and_quality():
    model = fit(pairs(), model_id="kit-01-pm2_5", kind="linear_rh", device="kit-01", reference_name="BAM 1020")
    assert model.coefficients["slope"] == pytest.approx(0.62, abs=0.01)
    assert model.coefficients["rh"] == pytest.approx(-0.08, abs=0.01)
    assert model.coefficients["intercept"] == pytest.approx(3.5, abs=0.5)
    assert model.n == 240 and model.r2 > 0.99
    assert model.rmse == pytest.approx(0.5, rel=0.15) and 0 < model.mae < model.rmse
    assert (model.window_start, model.window_end) == ("2026-04-01T00:00:00+00:00", "2026-04-10T23:00:00+00:00")


def test_a_linear_fit_ignores_rows_with_missing_values():
    data = pairs()
    data.iloc[:10, 0] = np.nan
    model = fit(data, model_id="m", kind="linear")
    assert model.n == 230 and set(model.coefficients) == {"slope", "intercept"}


def test_too_few_pairs_or_an_unfittable_kind_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        fit(pairs().iloc[:2], model_id="m")
    with pytest.raises(ValueError, match="epa_purpleair_2021"):
        fit(pairs(), model_id="m", kind="epa_purpleair_2021")  # type: ignore[arg-type]


def test_applying_adds_a_calibrated_layer_and_leaves_the_raw_values_alone():
    records = pd.DataFrame({"device": ["kit-01", "kit-02", "kit-03"], "pm2_5_cf1": [20.0, 100.0, 30.0],
                            "relative_humidity": [50.0, 60.0, 70.0]})
    before = records.copy()
    epa = epa_purpleair_2021()
    local = CalibrationModel(model_id="kit-02-local", version=3, kind="linear", quantity="pm2_5",
                             source="pm2_5_cf1", coefficients={"slope": 0.5, "intercept": 1.0})
    out = apply(records, {"kit-01": epa, "kit-02": local})
    pd.testing.assert_frame_equal(records, before)
    assert out["pm2_5_calibrated"].iloc[0] == pytest.approx(11.92)
    assert out["pm2_5_calibrated"].iloc[1] == 51.0
    assert np.isnan(out["pm2_5_calibrated"].iloc[2])
    assert out["calibration"].tolist()[:2] == ["epa-purpleair-2021@v1", "kit-02-local@v3"]
    assert pd.isna(out["calibration"].iloc[2])
    assert apply(records, epa)["calibration"].eq("epa-purpleair-2021@v1").all()


def test_models_are_versioned_in_a_duckdb_table_and_read_back_identical(tmp_path):
    path = tmp_path / "store.duckdb"
    with duckdb.connect(str(path)) as con:
        first = save(con, fit(pairs(seed=1), model_id="kit-01-pm2_5", kind="linear_rh", device="kit-01"))
        second = save(con, fit(pairs(seed=2), model_id="kit-01-pm2_5", kind="linear_rh", device="kit-01"))
        save(con, epa_purpleair_2021(extended=True))
    assert (first.version, second.version) == (1, 2)
    with duckdb.connect(str(path), read_only=True) as con:
        assert load(con, "kit-01-pm2_5") == second
        assert load(con, "kit-01-pm2_5", version=1) == first
        assert load(con, "epa-purpleair-2021-extended") == epa_purpleair_2021(extended=True)
        columns = [row[0] for row in con.execute("DESCRIBE calibrations").fetchall()]
        with pytest.raises(LookupError, match="kit-01-pm2_5"):
            load(con, "nope")
    assert {"model_id", "version", "coefficients", "window_start", "n", "r2", "rmse", "mae"} <= set(columns)


def test_creating_the_table_twice_is_harmless():
    con = duckdb.connect()
    create_table(con)
    create_table(con)
    assert con.execute("SELECT count(*) FROM calibrations").fetchone() == (0,)


def test_models_round_trip_through_json():
    model = fit(pairs(), model_id="m", kind="linear_rh")
    assert CalibrationModel.from_json(model.to_json()) == model


def test_colocation_averages_the_sensor_onto_the_reference_hours():
    times = pd.date_range("2026-04-01 00:00", periods=7200, freq="1s")
    sensor = pd.DataFrame({"pm2_5": np.r_[np.full(3600, 10.0), np.full(3600, 20.0)],
                           "relative_humidity": 50.0}, index=times)
    reference = pd.Series([8.0, 15.0, 99.0], index=pd.date_range("2026-04-01", periods=3, freq="1h"))
    got = colocate(sensor, reference)
    assert got["pm2_5"].tolist() == [10.0, 20.0] and got["reference"].tolist() == [8.0, 15.0]
    assert str(got.index.tz) == "UTC"
