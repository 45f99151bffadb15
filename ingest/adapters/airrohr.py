"""Sensor.Community / airrohr firmware: the "send to own API" HTTP push.

Sources: the airrohr firmware (github.com/opendata-stuttgart/sensors-software,
``airrohr-firmware/airrohr-firmware.ino``, version NRZ-2021-134):

- ``sendDataToOptionalApis``: the own-API body is ``{"esp8266id": "<chip id>", ``
  followed by ``data_first_part`` (``"software_version": …, "sensordatavalues":[``)
  and every sensor's values, with their prefixes, then ``samples``,
  ``min_micro``, ``max_micro``, ``interval`` and ``signal`` (``loop``);
- ``sendData``: headers ``X-Sensor: <SENSOR_BASENAME><chip id>``
  (``esp8266-1234567``; ``esp32-<hex>`` on an ESP32), ``X-MAC-ID``, and
  ``X-PIN`` only when a pin is given — the own API gets none;
- ``sendSensorCommunity``: the Sensor.Community API gets one request per
  sensor, with ``X-PIN: <…_API_PIN>`` (``ext_def.h``: 1 PM sensors, 3 BMP180 and
  BMP280, 5 PPD42NS, 7 DHT22/HTU21D/SHT3x, 9 GPS, 11 BME280, 13 DS18B20, 15 DNMS,
  17 SCD30) and the prefix (``SDS_``, ``BME280_``…) removed from the names;
- the ``fetchSensor*`` functions, for the value types: ``SDS_P1 SDS_P2``,
  ``PMS_P0 PMS_P1 PMS_P2``, ``HPM_P1 HPM_P2``, ``NPM_P0 P1 P2 N1 N10 N25``
  (number concentrations: pcs/L ÷ 1000 = #/cm³), ``SPS30_P0 P2 P4 P1 N05 N1
  N25 N4 N10 TS``, ``temperature humidity`` (DHT22, no prefix), ``HTU21D_…``,
  ``BMP_pressure BMP_temperature`` (BMP180), ``BMP280_…``, ``BME280_…``
  (pressure in **Pa**), ``SHT3X_…``, ``SCD30_temperature SCD30_humidity
  SCD30_co2_ppm``, ``DS18B20_temperature``, ``durP1 ratioP1 P1 durP2 ratioP2 P2``
  (PPD42NS, no prefix), ``DNMS_noise_LAeq …``, ``GPS_lat GPS_lon`` (-200 when
  invalid), ``GPS_height`` (-1000 when invalid), ``GPS_timestamp`` (older
  firmware: ``GPS_date``, ``GPS_time``).

Example (own API, no X-PIN)::

    {"esp8266id": "1234567", "software_version": "NRZ-2021-134",
     "sensordatavalues": [{"value_type": "SDS_P1", "value": "12.30"}, …]}

Values are strings in the sensor's unit; pressure in Pa becomes hPa here.  The
body carries **no measurement time**: the record time is the time of receipt,
truncated to the second (docs/adapters.md, limits).  Each sensor's values form
one record: boot ``airrohr-<model>``, seq the time [ms].  A name without
prefix belongs to the sensor its ``X-PIN`` names, or, with no ``X-PIN``, to
the DHT22 (``temperature``, ``humidity``) or the PPD42NS (``P1``, ``P2``).  The
PPD42NS values are particle counts per 283 mL, not µg/m³, and DNMS noise has
no qsec quantity: both are refused (``unknown_quantity``).  What is
metadata is counted in ``AdapterResult.ignored``.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import (
    Collector,
    load_json,
    normalise_device,
    number,
    text_of,
)
from qsec import contract

NAME = "airrohr"

# value type without prefix (as the Sensor.Community API and its archive name it) -> (quantity, factor)
VALUE_TYPES: dict[str, tuple[str, float]] = {
    "P0": ("pm1", 1.0), "P1": ("pm10", 1.0), "P2": ("pm2_5", 1.0), "P4": ("pm4", 1.0),
    "N05": ("nc0_5", 1.0), "N1": ("nc1", 1.0), "N25": ("nc2_5", 1.0), "N4": ("nc4", 1.0), "N10": ("nc10", 1.0),
    "TS": ("typical_particle_size", 1.0),
    "temperature": ("temperature", 1.0), "humidity": ("relative_humidity", 1.0), "pressure": ("pressure", 0.01),
    "co2_ppm": ("co2", 1.0), "lat": ("latitude", 1.0), "lon": ("longitude", 1.0), "height": ("altitude", 1.0),
}
PM = ("P0", "P1", "P2")
SPS30 = (*PM, "P4", "N05", "N1", "N25", "N4", "N10", "TS")
NEXTPM = (*PM, "N1", "N10", "N25")
TH = ("temperature", "humidity")
GPS = ("lat", "lon", "height")
# prefix -> (model, sensor name, value types it sends)
PREFIXES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "SDS": ("sds011", "nova-sds011", ("P1", "P2")),
    "PMS": ("pms", "plantower-pms", PM),
    "HPM": ("hpm", "honeywell-hpm", ("P1", "P2")),
    "NPM": ("nextpm", "tera-nextpm", NEXTPM),
    "SPS30": ("sps30", "sensirion-sps30", SPS30),
    "BMP": ("bmp180", "bosch-bmp180", ("pressure", "temperature")),
    "BMP280": ("bmp280", "bosch-bmp280", ("pressure", "temperature")),
    "BME280": ("bme280", "bosch-bme280", (*TH, "pressure")),
    "HTU21D": ("htu21d", "te-htu21d", TH),
    "SHT3X": ("sht3x", "sensirion-sht3x", TH),
    "SCD30": ("scd30", "sensirion-scd30", (*TH, "co2_ppm")),
    "DS18B20": ("ds18b20", "maxim-ds18b20", ("temperature",)),
    "GPS": ("gps", "gps", GPS),
}
# X-PIN -> (model, sensor name, value types) for names without prefix; pins 1, 3 and 7 serve several sensors
PINS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    1: ("x-pin-1", "airrohr-x-pin-1", tuple(dict.fromkeys((*SPS30, *NEXTPM)))),
    3: ("x-pin-3", "airrohr-x-pin-3", ("pressure", "temperature")),
    7: ("x-pin-7", "airrohr-x-pin-7", TH),
    9: PREFIXES["GPS"], 11: PREFIXES["BME280"], 13: PREFIXES["DS18B20"], 17: PREFIXES["SCD30"],
}
NO_PIN = ("dht22", "aosong-dht22", TH)  # fetchSensorDHT: the only unprefixed meteo values of the own-API body
# sensors whose values qsec cannot store: model -> why (their records are refused, unknown_quantity)
UNSTORABLE = {
    "ppd42ns": "PPD42NS P1/P2 are particle counts per 283 mL, not mass concentrations",  # fetchSensorPPD
    "dnms": "DNMS values are noise levels [dB(A)]",  # fetchSensorDNMS
}
# metadata of the firmware's cycle, not measurements: counted in AdapterResult.ignored (docs/adapters.md)
IGNORED = frozenset({"samples", "min_micro", "max_micro", "interval", "signal", "durP1", "ratioP1", "durP2", "ratioP2",
                     "GPS_timestamp", "GPS_date", "GPS_time"})
IGNORED_AT_PIN = {9: frozenset({"timestamp", "date", "time"})}  # the GPS names once the prefix is stripped
# fetchSensorGPS writes these when the fix (or the altitude) is invalid
NO_FIX = {"latitude": -200.0, "longitude": -200.0, "altitude": -1000.0}


def _unstorable(vt: str, pin: int | None) -> str | None:
    prefix, sep, _ = vt.partition("_")
    if (sep and prefix == "DNMS") or pin == 15:
        return "dnms"
    if vt in ("P1", "P2") and pin in (None, 5):
        return "ppd42ns"
    return None


def value_type(vt: str, pin: int | None) -> tuple[str, str, str, float]:
    """``(model, sensor, quantity, factor)`` of a value type (``pin``: the X-PIN header or ``None``).

    Raises
    ------
    contract.UnknownQuantity
        For a type the adapter does not know or qsec cannot store; the
        detail names it and, for the PPD42NS and the DNMS, why.
    """
    prefix, sep, rest = vt.partition("_")
    if sep and prefix in PREFIXES:
        model, sensor, allowed = PREFIXES[prefix]
    elif pin is not None and pin in PINS:
        (model, sensor, allowed), rest = PINS[pin], vt
    elif pin is None and vt in NO_PIN[2]:
        (model, sensor, allowed), rest = NO_PIN, vt
    else:
        why = UNSTORABLE.get(_unstorable(vt, pin) or "")
        if why:
            raise contract.UnknownQuantity(f"{vt}: {why}; qsec has no quantity for them")
        where = "" if pin is None else f" with X-PIN {pin}"
        raise contract.UnknownQuantity(f"airrohr value_type {vt!r}{where} is not in the adapter's table "
                                       "(docs/adapters.md)")
    if rest not in allowed:
        raise contract.UnknownQuantity(f"airrohr value_type {vt!r} is not one {sensor} sends (docs/adapters.md)")
    return (model, sensor, *VALUE_TYPES[rest])


def model_of(vt: str, pin: int | None) -> str:
    """The model a value type belongs to, also when :func:`value_type` refuses it (it names the dead letter)."""
    prefix, sep, _ = vt.partition("_")
    if sep and prefix in PREFIXES:
        return PREFIXES[prefix][0]
    if pin is not None and pin in PINS:
        return PINS[pin][0]
    return _unstorable(vt, pin) or (prefix.lower() if sep else f"x-pin-{pin}" if pin is not None else vt.lower())


def pin_of(value: Any, source: str) -> int | None:
    """The ``X-PIN`` header (or ``x-pin=N`` kept in ``source``), ``None`` when there is none.

    Raises
    ------
    contract.BadSchema
        When the header is there but is not a number.
    """
    if value is None and "x-pin=" in source:
        value = source.rsplit("x-pin=", 1)[1].split("&", 1)[0]
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise contract.BadSchema(f"X-PIN {value!r} is not a number (the firmware sends 1 to 17)") from None


def _check_body(doc: Any, device: str, x_sensor: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("sensordatavalues"), list):
        raise contract.BadSchema("an airrohr push is a JSON object with a sensordatavalues list")
    chip = doc.get("esp8266id")
    if chip is not None and x_sensor and not device.endswith(f"-{str(chip).strip().lower()}"):
        raise contract.DeviceMismatch(f"body says esp8266id {chip!r} but the X-Sensor header says {x_sensor!r}")


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one airrohr push.

    Context: ``campaign``; ``x_sensor`` (the ``X-Sensor`` header) or ``device``
    (an already normalised id); ``x_pin`` (the ``X-PIN`` header, also read
    from ``x-pin=N`` in ``source``); ``not_before_ms``.
    """
    out = Collector(NAME, source, received_ms, context, text_of(payload))
    t_ms = received_ms - received_ms % 1000
    device: str | None = None
    try:
        name = context.get("x_sensor") or context.get("device")
        if not name:
            raise contract.BadSchema("no X-Sensor header: the firmware sends X-Sensor: esp8266-<chip id>")
        device = normalise_device(str(name))
        doc = load_json(payload, out.limits)
        _check_body(doc, device, context.get("x_sensor"))
        pin = pin_of(context.get("x_pin"), source)
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    ignored = IGNORED | IGNORED_AT_PIN.get(pin or 0, frozenset())
    records: dict[str, tuple[str, dict[str, float]]] = {}
    faults: dict[str, contract.ContractError] = {}
    for item in doc["sensordatavalues"]:
        vt = item.get("value_type") if isinstance(item, dict) else None
        if not isinstance(vt, str):
            out.refuse("bad_schema", f"sensordatavalues entry {item!r} has no value_type", device=device)
            continue
        if vt in ignored:
            out.ignore(vt)
            continue
        try:
            model, sensor, quantity, factor = value_type(vt, pin)
        except contract.UnknownQuantity as exc:
            model = model_of(vt, pin)
            faults.setdefault(model, exc)
            records.setdefault(model, ("", {}))
            continue
        records.setdefault(model, (sensor, {}))
        value = number(item.get("value"))
        if value is None:
            faults.setdefault(model, contract.BadSchema(f"{vt} value {item.get('value')!r} is not a number"))
        elif NO_FIX.get(quantity) == value:
            out.ignore(f"{vt} (no GPS fix)")
        else:
            records[model][1][quantity] = value * factor
    for model, (sensor, values) in records.items():
        if model in faults:
            out.refuse_record(device, model, t_ms, faults[model].reason, str(faults[model]))
        elif values:
            out.record(device, model, t_ms, sensor, values)
    return out.result


ADAPTER = Adapter(NAME, decode, "Sensor.Community/airrohr firmware push to an own API (HTTP POST /api/push/airrohr)")
