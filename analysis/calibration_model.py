"""Calibration models: the versioned record a correction is, and the published US EPA PurpleAir correction.

A model is a small record (id, version, kind, coefficients, fitting window,
n, R², RMSE, MAE) that :mod:`analysis.calibration` fits and applies and
:mod:`analysis.calibration_store` keeps in DuckDB; it round-trips through JSON.

Sources
-------
- Barkjohn, Gantt and Clements (2021), US-wide correction for PurpleAir
  PM2.5, Atmos. Meas. Tech. 14, 4617-4637, doi:10.5194/amt-14-4617-2021.
- Barkjohn, Holder, Frederick and Clements (2022), the extended correction
  for wildfire smoke (AirNow Fire and Smoke Map), Sensors 22(24), 9669,
  doi:10.3390/s22249669.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd

Kind = Literal["linear", "linear_rh", "epa_purpleair_2021", "epa_purpleair_2021_extended"]
KINDS: tuple[str, ...] = ("linear", "linear_rh", "epa_purpleair_2021", "epa_purpleair_2021_extended")


@dataclass(frozen=True)
class CalibrationModel:
    """One version of a calibration model.

    Attributes
    ----------
    model_id : str
        Stable name, e.g. ``"kit-01-pm2_5-colocation-paris-1er"``.
    version : int
        1, 2, … — a refit under the same id is a new version.
    kind : str
        One of :data:`KINDS`; decides the formula (see :func:`predict`).
    quantity : str
        Quantity produced [its unit], e.g. ``"pm2_5"``.
    source : str
        Column the model reads, e.g. ``"pm2_5_cf1"``.
    coefficients : dict of str to float
        ``slope``, ``intercept`` and, for ``linear_rh``, ``rh`` [per %RH].
    device : str or None
        Device it was fitted for; None for a generic model (EPA).
    window_start, window_end : str or None
        ISO 8601 UTC bounds of the fitting data.
    n : int
        Pairs used in the fit (0 for a published model).
    r2, rmse, mae : float or None
        Fit quality on those pairs; RMSE and MAE [unit of ``quantity``].
    reference : str
        The reference instrument or publication.
    created : str
        ISO 8601 UTC time the model was made.
    notes : str
    """

    model_id: str
    version: int
    kind: str
    quantity: str
    source: str
    coefficients: dict[str, float]
    device: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    n: int = 0
    r2: float | None = None
    rmse: float | None = None
    mae: float | None = None
    reference: str = ""
    created: str = field(default_factory=lambda: pd.Timestamp.now(tz="UTC").isoformat())
    notes: str = ""

    @property
    def label(self) -> str:
        """``"<model_id>@v<version>"``, written next to every calibrated value."""
        return f"{self.model_id}@v{self.version}"

    def to_json(self) -> str:
        """Serialise to a JSON object (round-trips through :meth:`from_json`)."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CalibrationModel:
        """Read a model written by :meth:`to_json`."""
        return cls(**json.loads(text))


def epa_purpleair_2021(*, extended: bool = False) -> CalibrationModel:
    """Return the published US EPA correction for PurpleAir PM2.5 (Barkjohn et al.).

    Parameters
    ----------
    extended : bool, default False
        False: the 2021 US-wide equation (AMT 14, 4617-4637).  True: the
        extended version for high concentrations (Sensors 22, 9669, 2022;
        AirNow Fire and Smoke Map).

    Returns
    -------
    CalibrationModel
        Reads ``pm2_5_cf1`` [µg/m³] and ``relative_humidity`` [%], produces
        ``pm2_5`` [µg/m³].

    Notes
    -----
    Developed for PurpleAir PA-II sensors (two PMS5003, CF=1 values,
    channels averaged; RH from the sensor's own BME280, which reads drier
    than ambient) against US FRM/FEM monitors, on 24-hour means; the Fire
    and Smoke Map applies it to hourly means.  On a single PMS5003 in
    France it is a reasonable first correction, not a calibration: prefer
    a local co-location fit.  At very low concentrations and high RH the
    result can be slightly negative; it is not clipped.
    """
    coefficients = {"slope": 0.524, "rh": -0.0862, "intercept": 5.75}
    if extended:
        coefficients |= {"slope_mid": 0.786, "slope_high": 0.69, "intercept_high": 2.966, "quadratic": 8.84e-4}
    return CalibrationModel(
        model_id="epa-purpleair-2021-extended" if extended else "epa-purpleair-2021",
        version=1,
        kind="epa_purpleair_2021_extended" if extended else "epa_purpleair_2021",
        quantity="pm2_5",
        source="pm2_5_cf1",
        coefficients=coefficients,
        reference="doi:10.3390/s22249669" if extended else "doi:10.5194/amt-14-4617-2021",
        created="2021-01-01T00:00:00+00:00",
        notes="US EPA PurpleAir correction; RH is the sensor's relative humidity [%]",
    )
