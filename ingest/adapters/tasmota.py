"""Tasmota ``tele/<topic>/SENSOR`` telemetry JSON over MQTT.

Sources: Tasmota documentation, "MQTT" (https://tasmota.github.io/docs/MQTT/,
FullTopic ``%prefix%/%topic%/``, telemetry every ``TelePeriod`` seconds),
"Commands" (``SetOption8`` Fahrenheit, ``SetOption24`` pressure unit,
``SetOption52`` UTC offset in ``Time``) and the sensor drivers' JSON
(``tasmota/tasmota_xsns_sensor/``: xsns_18_pms5003 ``CF1 CF2.5 CF10 PM1 PM2.5
PM10 PB0.3 … PB10``, xsns_20_novasds ``SDS0X1 {"PM2.5","PM10"}``,
xsns_15_mhz19 ``MHZ19B {"Model","CarbonDioxide","Temperature"}``,
xsns_42_scd30, xsns_21_sgp30 ``{"eCO2","TVOC"}``, xsns_09_bmp ``BME280
{"Temperature","Humidity","DewPoint","Pressure"}``).

Example (topic ``tele/tasmota_A1B2C3/SENSOR``)::

    {"Time":"2026-03-01T14:03:02","SDS0X1":{"PM2.5":7.3,"PM10":12.1},
     "BME280":{"Temperature":18.4,"Humidity":52.1,"DewPoint":8.5,"Pressure":1011.2},
     "TempUnit":"C","PressureUnit":"hPa"}

``Time`` is the device's **local** time without zone (unless ``SetOption52
1`` adds the offset, which is then used): it is read in the ``timezone``
context option (default ``Europe/Paris``, the zone ``Timezone 99`` with the
European DST rules gives).  In the autumn hour that occurs twice, the first
occurrence is taken.  A numeric ``Time`` is read as seconds since epoch.

Each sensor object becomes one record: boot ``tasmota-<model>`` (with the
driver's index suffix, e.g. ``BME280-76`` → ``tasmota-bme280-76``), seq the
time [ms].  Temperatures in °F (``"TempUnit":"F"``) and pressures in mmHg or
inHg are converted.  The device id is the topic's ``<topic>`` part.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import (
    Collector,
    fahrenheit_to_celsius,
    iso_to_ms,
    load_json,
    normalise_device,
    number,
    slug,
    text_of,
    zone,
)
from qsec import contract

NAME = "tasmota"
TOPICS = ("tele/+/SENSOR",)
DEFAULT_TIMEZONE = "Europe/Paris"

# key in a sensor object -> qsec quantity
KEYS = {
    "Temperature": "temperature", "Humidity": "relative_humidity", "Pressure": "pressure",
    "CarbonDioxide": "co2", "TVOC": "tvoc",
    "PM1": "pm1", "PM2.5": "pm2_5", "PM10": "pm10", "CF1": "pm1_cf1", "CF2.5": "pm2_5_cf1", "CF10": "pm10_cf1",
    "PB0.3": "pn0_3", "PB0.5": "pn0_5", "PB1": "pn1", "PB2.5": "pn2_5", "PB5": "pn5", "PB10": "pn10",
}
# derived values or descriptions, not measurements (docs/adapters.md): DewPoint and SeaPressure are computed
# from the measured values; eCO2 is the SGP30's estimate from its VOC signal (not a CO2 measurement) and the
# SCD30's running average of CarbonDioxide; US_AQI is an index computed from PM2.5
IGNORED_KEYS = frozenset({"DewPoint", "SeaPressure", "eCO2", "AbsHumidity", "US_AQI", "US_EPA_AQI", "Model", "Id"})
# top-level keys that are not sensors
META_KEYS = frozenset({"Time", "TempUnit", "PressureUnit", "SpeedUnit", "Epoch"})
# Tasmota sensor name -> (model, sensor name of the records)
MODELS = {
    "SDS0X1": ("sds011", "nova-sds011"), "PMS5003": ("pms5003", "plantower-pms5003"),
    "PMS3003": ("pms3003", "plantower-pms3003"), "PMS5003T": ("pms5003t", "plantower-pms5003t"),
    "PMSA003I": ("pmsa003i", "plantower-pmsa003i"), "HM330X": ("hm330x", "seeed-hm330x"),
    "BME280": ("bme280", "bosch-bme280"), "BMP280": ("bmp280", "bosch-bmp280"), "BMP180": ("bmp180", "bosch-bmp180"),
    "MHZ19B": ("mhz19b", "winsen-mhz19b"), "SCD30": ("scd30", "sensirion-scd30"), "SCD40": ("scd40", "sensirion-scd40"),
    "SGP30": ("sgp30", "sensirion-sgp30"), "SHT3X": ("sht3x", "sensirion-sht3x"), "AM2301": ("am2301", "aosong-am2301"),
    "DHT11": ("dht11", "aosong-dht11"), "SI7021": ("si7021", "silabs-si7021"), "DS18B20": ("ds18b20", "maxim-ds18b20"),
}
_PRESSURE = {"hPa": 1.0, "mmHg": 1.33322387415, "inHg": 33.8638866667}


def _time_ms(value: Any, tz_name: str) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1000)
    if not isinstance(value, str):
        raise contract.BadTime(f"Tasmota Time {value!r} is missing or not a date-time")
    return iso_to_ms(value, zone(tz_name))


def _model(key: str) -> tuple[str, str]:
    base, sep, index = key.partition("-")
    model, sensor = MODELS.get(base, (slug(base), f"tasmota-{slug(base)}"))
    return (f"{model}-{slug(index)}" if sep else model), sensor


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one ``tele/<topic>/SENSOR`` message.

    Context: ``campaign``; ``timezone`` (IANA name, default Europe/Paris);
    ``device`` (overrides the topic's); ``not_before_ms``.
    """
    out = Collector(NAME, source, received_ms, context, text_of(payload))
    parts = source.split("/")
    device: str | None = None
    try:
        name = context.get("device") or (parts[1] if len(parts) == 3 else None)
        if not name:
            raise contract.BadTopic(f"topic {source!r} is not tele/<topic>/SENSOR")
        device = normalise_device(str(name))
        doc = load_json(payload, out.limits)
        if not isinstance(doc, dict):
            raise contract.BadSchema("a Tasmota SENSOR payload is a JSON object")
        t_ms = _time_ms(doc.get("Time"), str(context.get("timezone") or DEFAULT_TIMEZONE))
        fahrenheit = doc.get("TempUnit", "C") == "F"
        p_unit = doc.get("PressureUnit", "hPa")
        if p_unit not in _PRESSURE:
            raise contract.BadSchema(f"PressureUnit {p_unit!r}: accepted are {', '.join(_PRESSURE)}")
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    for key, obj in doc.items():
        if key in META_KEYS:
            continue
        model, sensor = _model(key)
        if not isinstance(obj, dict):
            out.refuse_record(device, model, t_ms, "unknown_quantity",
                              f"top-level {key}={obj!r} is not a sensor object the adapter knows")
            continue
        values: dict[str, float] = {}
        fault: str | None = None
        for k, v in obj.items():
            if k in IGNORED_KEYS:
                continue
            q = KEYS.get(k)
            x = number(v)
            if q is None:
                fault = fault or f"unknown_quantity|{key}.{k} is not in the adapter's table (docs/adapters.md)"
            elif x is None:
                fault = fault or f"bad_schema|{key}.{k}={v!r} is not a number"
            elif q == "temperature" and fahrenheit:
                values[q] = fahrenheit_to_celsius(x)
            elif q == "pressure":
                values[q] = x * _PRESSURE[p_unit]
            else:
                values[q] = x
        if fault:
            reason, detail = fault.split("|", 1)
            out.refuse_record(device, model, t_ms, reason, detail)
        else:
            out.record(device, model, t_ms, sensor, values)
    return out.result


ADAPTER = Adapter(NAME, decode, "Tasmota telemetry JSON over MQTT, topic tele/<topic>/SENSOR", TOPICS)
