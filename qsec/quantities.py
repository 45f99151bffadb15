"""The one table of quantities and units shared by every qsec package.

Each quantity has a canonical name (used on the wire, in the store and in
exports), a fixed unit, a kind, and a physically plausible range.  Nothing
else in qsec converts units: adapters convert *into* these units at the edge.

Kinds matter: a ``concentration`` can be averaged with another concentration
of the same quantity; an ``index`` (for example Sensirion's VOC index, a
relative 1..500 scale) is never converted to, nor averaged with, a
concentration (see :func:`check_compatible`).

Sources
-------
- Units and CF standard names: CF Standard Name Table v84
  (https://cfconventions.org/Data/cf-standard-names/84/build/cf-standard-name-table.html).
- Plantower PMS5003 data manual v2.3 (2016): PM [µg/m³] "CF=1" and
  "atmospheric environment" values, particle counts [#/0.1 L] above
  0.3/0.5/1.0/2.5/5.0/10 µm.
- Sensirion SGP40 datasheet v1.2 (2021) and "SGP40 VOC Index for
  Experts": VOC index 1..500, 100 = the sensor's recent average.
- Winsen MH-Z19B manual v1.0: CO2 0..5000 ppm (range variants up to 10000).
- NMEA 0183 v4.11: positions [° WGS84], HDOP, satellites in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """What a number means, which decides what may be combined with it."""

    CONCENTRATION = "concentration"  # mass or mole fraction: can be averaged with itself
    COUNT = "count"  # particle number per volume
    INDEX = "index"  # relative scale (VOC index): never a concentration
    METEO = "meteo"  # temperature, humidity, pressure
    POSITION = "position"  # GPS coordinates and quality
    DEVICE = "device"  # battery, fan, sensor state


@dataclass(frozen=True)
class Quantity:
    """One canonical quantity.

    Attributes
    ----------
    name : canonical name, ``[a-z0-9_]+``
    unit : UCUM-like unit string, the only unit qsec stores it in
    kind : what may be combined with it
    long_name : English description (CF ``long_name``)
    long_name_fr : French description, for public screens
    minimum, maximum : physically plausible range [unit]; outside it a value is refused
    standard_name : CF standard name where one exists
    """

    name: str
    unit: str
    kind: Kind
    long_name: str
    long_name_fr: str
    minimum: float
    maximum: float
    standard_name: str | None = None
    decimals: int = 1


_PM_MAX = 2000.0  # [µg/m³] above every low-cost optical sensor's range
_CF = "mass_concentration_of_pm{}_ambient_aerosol_particles_in_air"

_TABLE: tuple[Quantity, ...] = (
    # --- particulate matter, "atmospheric environment" values (the ones to show)
    Quantity("pm1", "µg/m³", Kind.CONCENTRATION, "PM1 mass concentration", "Particules PM1", 0, _PM_MAX, _CF.format("1")),
    Quantity("pm2_5", "µg/m³", Kind.CONCENTRATION, "PM2.5 mass concentration", "Particules fines PM2,5", 0, _PM_MAX, _CF.format("2p5")),
    Quantity("pm4", "µg/m³", Kind.CONCENTRATION, "PM4 mass concentration", "Particules PM4", 0, _PM_MAX),
    Quantity("pm10", "µg/m³", Kind.CONCENTRATION, "PM10 mass concentration", "Particules PM10", 0, _PM_MAX, _CF.format("10")),
    # --- Plantower "CF=1" (standard particle, factory calibration) values, kept apart
    Quantity("pm1_cf1", "µg/m³", Kind.CONCENTRATION, "PM1 mass concentration, CF=1", "PM1 (CF=1)", 0, _PM_MAX),
    Quantity("pm2_5_cf1", "µg/m³", Kind.CONCENTRATION, "PM2.5 mass concentration, CF=1", "PM2,5 (CF=1)", 0, _PM_MAX),
    Quantity("pm10_cf1", "µg/m³", Kind.CONCENTRATION, "PM10 mass concentration, CF=1", "PM10 (CF=1)", 0, _PM_MAX),
    # --- particle counts above a diameter [#/0.1 L] (Plantower) or number concentrations [#/cm³] (SPS30)
    Quantity("pn0_3", "#/0.1L", Kind.COUNT, "particles > 0.3 µm per 0.1 L", "particules > 0,3 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("pn0_5", "#/0.1L", Kind.COUNT, "particles > 0.5 µm per 0.1 L", "particules > 0,5 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("pn1", "#/0.1L", Kind.COUNT, "particles > 1.0 µm per 0.1 L", "particules > 1 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("pn2_5", "#/0.1L", Kind.COUNT, "particles > 2.5 µm per 0.1 L", "particules > 2,5 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("pn5", "#/0.1L", Kind.COUNT, "particles > 5.0 µm per 0.1 L", "particules > 5 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("pn10", "#/0.1L", Kind.COUNT, "particles > 10 µm per 0.1 L", "particules > 10 µm par 0,1 L", 0, 1e6, decimals=0),
    Quantity("nc0_5", "#/cm³", Kind.COUNT, "number concentration PM0.5", "concentration en nombre PM0,5", 0, 1e5),
    Quantity("nc1", "#/cm³", Kind.COUNT, "number concentration PM1", "concentration en nombre PM1", 0, 1e5),
    Quantity("nc2_5", "#/cm³", Kind.COUNT, "number concentration PM2.5", "concentration en nombre PM2,5", 0, 1e5),
    Quantity("nc4", "#/cm³", Kind.COUNT, "number concentration PM4", "concentration en nombre PM4", 0, 1e5),
    Quantity("nc10", "#/cm³", Kind.COUNT, "number concentration PM10", "concentration en nombre PM10", 0, 1e5),
    Quantity("typical_particle_size", "µm", Kind.DEVICE, "typical particle size", "taille typique des particules", 0, 10, decimals=2),
    # --- gases
    Quantity("co2", "ppm", Kind.CONCENTRATION, "CO2 mole fraction", "Dioxyde de carbone (CO2)", 0, 40000, "mole_fraction_of_carbon_dioxide_in_air", 0),
    Quantity("tvoc", "ppb", Kind.CONCENTRATION, "total VOC", "COV totaux", 0, 60000, decimals=0),
    Quantity("voc_index", "1", Kind.INDEX, "VOC index (Sensirion, relative, 100 = recent average)", "Indice COV (relatif, 100 = moyenne récente)", 0, 500, decimals=0),
    Quantity("nox_index", "1", Kind.INDEX, "NOx index (Sensirion, relative, 1 = recent average)", "Indice NOx (relatif)", 0, 500, decimals=0),
    Quantity("hcho", "mg/m³", Kind.CONCENTRATION, "formaldehyde mass concentration", "Formaldéhyde", 0, 10, "mass_concentration_of_formaldehyde_in_air", 3),
    # --- meteorology
    Quantity("temperature", "°C", Kind.METEO, "air temperature", "Température", -40, 85, "air_temperature"),
    Quantity("relative_humidity", "%", Kind.METEO, "relative humidity", "Humidité relative", 0, 100, "relative_humidity", 0),
    Quantity("pressure", "hPa", Kind.METEO, "air pressure", "Pression", 300, 1100, "air_pressure"),
    # --- position (GPS)
    Quantity("latitude", "°", Kind.POSITION, "latitude (WGS84)", "latitude", -90, 90, "latitude", 6),
    Quantity("longitude", "°", Kind.POSITION, "longitude (WGS84)", "longitude", -180, 180, "longitude", 6),
    Quantity("altitude", "m", Kind.POSITION, "altitude above mean sea level", "altitude", -500, 9000, "altitude"),
    Quantity("speed", "m/s", Kind.POSITION, "speed over ground", "vitesse", 0, 150, decimals=2),
    Quantity("course", "°", Kind.POSITION, "course over ground (true)", "cap", 0, 360),
    Quantity("hdop", "1", Kind.POSITION, "horizontal dilution of precision", "précision horizontale (HDOP)", 0, 100),
    Quantity("satellites", "1", Kind.POSITION, "satellites in use", "satellites utilisés", 0, 99, decimals=0),
    Quantity("fix_quality", "1", Kind.POSITION, "GPS fix quality (NMEA GGA field 6)", "qualité du point GPS", 0, 9, decimals=0),
    Quantity("fix_type", "1", Kind.POSITION, "GNSS fix type (NMEA GSA: 1 none, 2 2D, 3 3D)", "type de point GNSS", 1, 3, decimals=0),
    Quantity("pdop", "1", Kind.POSITION, "position dilution of precision", "précision de position (PDOP)", 0, 100),
    Quantity("vdop", "1", Kind.POSITION, "vertical dilution of precision", "précision verticale (VDOP)", 0, 100),
    Quantity("satellites_in_view", "1", Kind.POSITION, "satellites in view (NMEA GSV)", "satellites visibles", 0, 255, decimals=0),
    # --- device
    Quantity("battery", "V", Kind.DEVICE, "battery voltage", "batterie", 0, 30, decimals=2),
)

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _TABLE}


class IncompatibleQuantities(TypeError):
    """Two quantities that must not be combined (an index with a concentration)."""


def get(name: str) -> Quantity:
    """Return the quantity called ``name``, or raise ``KeyError`` naming the known ones."""
    try:
        return QUANTITIES[name]
    except KeyError:
        raise KeyError(f"unknown quantity {name!r}; known: {', '.join(QUANTITIES)}") from None


def check_compatible(a: str, b: str) -> None:
    """Refuse to combine (average, convert, compare) two quantities of different meaning.

    The same quantity is always compatible with itself.  A relative index
    (``voc_index``) is never compatible with a concentration (``tvoc``).
    """
    qa, qb = get(a), get(b)
    if a == b:
        return
    if qa.kind is Kind.INDEX or qb.kind is Kind.INDEX or qa.unit != qb.unit:
        raise IncompatibleQuantities(
            f"{a} [{qa.unit}, {qa.kind.value}] cannot be combined with {b} [{qb.unit}, {qb.kind.value}]"
        )
