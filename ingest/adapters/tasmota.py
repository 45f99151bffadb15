"""Tasmota ``tele/<topic>/SENSOR`` telemetry JSON over MQTT.

Sources (github.com/arendst/Tasmota):

- ``tasmota/tasmota_support/support_tasmota.ino`` ``MqttShowSensor`` /
  ``MqttAppendSensorUnits``: the message is ``Time``, the switch states
  (``"Switch1":"ON"``), one object per sensor, then ``PressureUnit``,
  ``TempUnit``, ``SpeedUnit``; with ``SetOption2`` a ``Global`` object
  repeats the first sensor's temperature, humidity and pressure.
- ``tasmota/tasmota_support/support.ino`` ``ResponseGetTime`` and
  ``support_command.ino`` ``CmndTime``: ``Time`` is ``"2019-09-04T14:31:29"``
  (local time, ``Time 1``), the same plus ``"Epoch":1567600289`` (``Time 2``),
  ``1567600289`` (``Time 3``) or ``"2019-09-04T14:31:29.123"`` (``Time 4``);
  ``support_rtc.ino`` ``GetDateAndTime``: ``SetOption52 1`` appends the UTC
  offset (``"2017-03-07T11:08:02-07:00"``).
- ``support.ino`` ``ConvertTemp`` (``SetOption8``: °F = °C × 1.8 + 32),
  ``ConvertPressure``/``PressureUnit`` (``SetOption24``: mmHg = hPa ×
  0.7500637; with ``SetOption139``: inHg = hPa × 0.0295299), ``ResponseAppendTHD``
  (``Temperature``, ``Humidity``, ``DewPoint``, ``HeatIndex`` with
  ``USE_HEAT_INDEX``); ``tasmota/include/i18n.h`` for the JSON key names.
- Drivers in ``tasmota/tasmota_xsns_sensor/``: xsns_18_pms5003
  ``PmsShow`` (``PMS5003``/``PMS3003``/``PMS5003T``/``ZH03x``: ``CF1 CF2.5
  CF10 PM1 PM2.5 PM10``, ``PB0.3 … PB10``, ``US_AQI`` in °F mode, the T
  variant ``Temperature Humidity DewPoint`` instead of ``PB5 PB10``),
  xsns_20_novasds ``NovaSdsShow`` (``SDS0X1 {"PM2.5","PM10"}``), xsns_15_mhz19
  ``MhzShow`` (``MHZ19B {"Model","CarbonDioxide","Temperature"}``),
  xsns_42_scd30 ``Scd30Show`` (``CarbonDioxide eCO2`` + THD), xsns_92_scd40
  ``Scd40Show`` (``SCD40``…``SCD43``: ``CarbonDioxide`` + THD), xsns_44_sps30
  ``SPS30_Show`` (``PM1_0 PM2_5 PM4_0 PM10 NCPM0_5 … NCPM10 TYPSIZ``; ``CFAN``
  after a fan cleaning), xsns_91_vindriktning (``VINDRIKTNING {"PM1","PM2.5",
  "PM10"}``), xsns_93_hm330x, xsns_103_sen5x (``PM1 PM2.5 PM4 PM10 NOx VOC``
  indices + THD, ``aHumidity``), xsns_21_sgp30 (``eCO2 TVOC aHumidity``),
  xsns_98_sgp40 (``Raw AirQuality`` = VOC index), xsns_109_sgp4x (``VOC_Raw
  NOX_Raw TVOC NOx``, where ``TVOC`` is the VOC *index*), xsns_09_bmp
  ``BmpShow`` (``Temperature Humidity DewPoint HeatIndex Pressure SeaPressure
  Gas``; several sensors are named ``BME280-76``, ``BME280-77-1`` on an
  ESP32's second I²C bus), xsns_60_GPS ``UBXShow`` (``GPS {"lat","lon","alt",
  "hAcc","vAcc"}``, or ``{"fil","int"}`` before the first fix).

Several sensors of one kind carry the driver's index or I²C address after
``IndexSeparator()`` (``-``, or ``_`` with ``SetOption64``): ``BME280-76`` and
``BME280_76`` are the same sensor, boot ``tasmota-bme280-76``.

Example (topic ``tele/tasmota_A1B2C3/SENSOR``)::

    {"Time":"2026-03-01T14:03:02","SDS0X1":{"PM2.5":7.3,"PM10":12.1},
     "BME280":{"Temperature":18.4,"Humidity":52.1,"DewPoint":8.5,"Pressure":1011.2},
     "PressureUnit":"hPa","TempUnit":"C"}

``Time`` without offset is the device's **local** time: it is read in the
``timezone`` context option (default ``Europe/Paris``, the zone ``Timezone
99`` with the European DST rules gives); in the autumn hour that occurs twice
the first occurrence is taken.  ``Epoch`` (``Time 2``) is UTC and wins when
present; a numeric ``Time`` (``Time 3``) is seconds since 1970, UTC.

The zone is part of what a refusal keeps: the dead letter's source is the
topic plus ``#timezone=<zone>``, as in the topic
``tasmota:lyon-2026:tele/kit-3/SENSOR#timezone=America/Montreal``, and a
source carrying a zone is decoded in that zone whatever the context says, so
``qsec deadletter reprocess`` reads the time as ingest did.  An MQTT topic
name cannot hold ``#`` (MQTT 5.0 section 4.7, [MQTT-4.7.0-1]: wildcards only
in topic filters), so the mark is unambiguous.

Each known sensor object becomes one record: boot ``tasmota-<model>``, seq
the time [ms].  A sensor not in :data:`MODELS`, or a key not in the tables,
refuses that sensor's record (``unknown_quantity``) and the others are kept.
What docs/adapters.md lists as computed or descriptive is counted in
``AdapterResult.ignored``.  The device id is the topic's ``<topic>`` part.
"""

from __future__ import annotations

import math
import re
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
ZONE_MARK = "#timezone="  # source of a dead letter: <MQTT topic>#timezone=<IANA zone the Time was read in>

# Tasmota sensor name -> (model, sensor name of the records)
MODELS: dict[str, tuple[str, str]] = {
    # particulate matter
    "SDS0X1": ("sds011", "nova-sds011"),  # SDS011 or SDS021, one driver
    "PMS5003": ("pms5003", "plantower-pms5003"),  # the name of PMS5003, PMS7003 and PMSx003 in xsns_18
    "PMS3003": ("pms3003", "plantower-pms3003"), "PMS5003T": ("pms5003t", "plantower-pms5003t"),
    "ZH03x": ("zh03x", "winsen-zh03x"), "PMSA003I": ("pmsa003i", "plantower-pmsa003i"),
    "HM330X": ("hm330x", "seeed-hm330x"), "SPS30": ("sps30", "sensirion-sps30"), "SEN5X": ("sen5x", "sensirion-sen5x"),
    "VINDRIKTNING": ("vindriktning", "cubic-pm1006"),
    # gases
    "MHZ19B": ("mhz19b", "winsen-mhz19b"), "SCD30": ("scd30", "sensirion-scd30"),
    **{f"SCD4{n}": (f"scd4{n}", f"sensirion-scd4{n}") for n in "0123"},
    "SGP30": ("sgp30", "sensirion-sgp30"), "SGP40": ("sgp40", "sensirion-sgp40"), "SGP4X": ("sgp4x", "sensirion-sgp4x"),
    "CCS811": ("ccs811", "ams-ccs811"),
    # meteorology
    "BMP180": ("bmp180", "bosch-bmp180"), "BMP280": ("bmp280", "bosch-bmp280"), "BME280": ("bme280", "bosch-bme280"),
    "BME680": ("bme680", "bosch-bme680"), "SHT3X": ("sht3x", "sensirion-sht3x"), "SHT4X": ("sht4x", "sensirion-sht4x"),
    "SHTC3": ("shtc3", "sensirion-shtc3"), "HTU21": ("htu21", "te-htu21"), "SI7021": ("si7021", "silabs-si7021"),
    "AM2301": ("am2301", "aosong-am2301"), "DHT11": ("dht11", "aosong-dht11"), "DHT22": ("dht22", "aosong-dht22"),
    "DS18B20": ("ds18b20", "maxim-ds18b20"),
    # position
    "GPS": ("gps", "ublox-gps"),
}
# key in a sensor object -> qsec quantity (units: Tasmota's, converted below for temperature and pressure)
KEYS: dict[str, str] = {
    "Temperature": "temperature", "Humidity": "relative_humidity", "Pressure": "pressure",
    "CarbonDioxide": "co2", "TVOC": "tvoc", "NOx": "nox_index", "VOC": "voc_index",
    "PM1": "pm1", "PM2.5": "pm2_5", "PM4": "pm4", "PM10": "pm10",
    "CF1": "pm1_cf1", "CF2.5": "pm2_5_cf1", "CF10": "pm10_cf1",
    "PB0.3": "pn0_3", "PB0.5": "pn0_5", "PB1": "pn1", "PB2.5": "pn2_5", "PB5": "pn5", "PB10": "pn10",
    "PM1_0": "pm1", "PM2_5": "pm2_5", "PM4_0": "pm4", "NCPM0_5": "nc0_5", "NCPM1_0": "nc1", "NCPM2_5": "nc2_5",
    "NCPM4_0": "nc4", "NCPM10": "nc10", "TYPSIZ": "typical_particle_size",
    "lat": "latitude", "lon": "longitude",
}
# keys whose meaning depends on the driver
SENSOR_KEYS: dict[str, dict[str, str]] = {
    "SGP4X": {"TVOC": "voc_index"},  # xsns_109_sgp4x: the VOC index, not TVOC in ppb
    "SGP40": {"AirQuality": "voc_index"},  # xsns_98_sgp40
}
# in a sensor object, not measurements qsec stores (docs/adapters.md): counted in AdapterResult.ignored
NOT_STORED: dict[str, str] = {
    "DewPoint": "computed from Temperature and Humidity", "HeatIndex": "computed from Temperature and Humidity",
    "SeaPressure": "computed from Pressure and the Altitude setting", "aHumidity": "computed absolute humidity",
    "eCO2": "an estimate from a VOC signal (SGP30, CCS811) or a running average of CarbonDioxide (SCD30)",
    "US_AQI": "an index computed from PM2.5", "US_EPA_AQI": "an index computed from PM2.5",
    "Model": "a description", "Id": "a description",
    "Gas": "BME680 gas resistance [kΩ], no qsec quantity", "Raw": "raw signal", "VOC_Raw": "raw signal",
    "NOX_Raw": "raw signal", "CFAN": "SPS30 fan-cleaning notice",
    "alt": "u-blox height above the ellipsoid, not above sea level", "hAcc": "accuracy estimate",
    "vAcc": "accuracy estimate", "fil": "GPS driver setting", "int": "GPS driver setting",
}
# payload keys that are not sensors
META_KEYS = frozenset({"Time", "Epoch", "TempUnit", "PressureUnit", "SpeedUnit"})
# objects that are no sensor of the air: counted in AdapterResult.ignored
NOT_SENSORS: dict[str, str] = {
    "Global": "SetOption2 copy of another sensor's values", "ESP32": "the chip's own temperature",
    "FLOG": "GPS flash-log state",
}
TEMP_UNITS = ("C", "F")
PRESSURE_UNITS = {"hPa": 1.0, "mmHg": 1 / 0.7500637, "inHg": 1 / 0.0295299}  # support.ino ConvertPressure
_INDEXED = re.compile(r"^(?P<base>[^-_]+)[-_](?P<index>.+)$")


def _time_ms(doc: dict[str, Any], tz_name: str) -> int:
    epoch, value = doc.get("Epoch"), doc.get("Time")
    for seconds in (epoch, value):
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            if not math.isfinite(seconds):
                raise contract.BadTime(f"Tasmota time {seconds!r} is not a number of seconds")
            return round(seconds * 1000)
    if epoch is not None:
        raise contract.BadTime(f"Tasmota Epoch {epoch!r} is not a number of seconds")
    if not isinstance(value, str):
        raise contract.BadTime(f"Tasmota Time {value!r} is missing or not a date-time")
    return iso_to_ms(value, zone(tz_name))


def _units(doc: dict[str, Any]) -> tuple[bool, float]:
    temp, pressure = doc.get("TempUnit", "C"), doc.get("PressureUnit", "hPa")
    if temp not in TEMP_UNITS:
        raise contract.BadSchema(f"TempUnit {temp!r}: accepted are {', '.join(TEMP_UNITS)}")
    if pressure not in PRESSURE_UNITS:
        raise contract.BadSchema(f"PressureUnit {pressure!r}: accepted are {', '.join(PRESSURE_UNITS)}")
    return temp == "F", PRESSURE_UNITS[pressure]


def sensor_of(key: str) -> tuple[str, str, str] | None:
    """``(driver name, model, sensor name)`` of a sensor object's key, or ``None`` when unknown.

    ``BME280-76``, ``BME280_76`` (``SetOption64``) and ``BME280-76-1`` keep
    their index in the model: ``bme280-76``, ``bme280-76-1``.
    """
    base, index = key, ""
    if key not in MODELS and (m := _INDEXED.match(key)):
        base, index = m["base"], m["index"]
    if base not in MODELS:
        return None
    model, sensor = MODELS[base]
    return base, (f"{model}-{slug(index.replace('_', '-'))}" if index else model), sensor


def _sensor(out: Collector, device: str, t_ms: int, key: str, obj: dict[str, Any], fahrenheit: bool,
            to_hpa: float) -> None:
    found = sensor_of(key)
    if found is None:
        out.refuse_record(device, slug(key), t_ms, "unknown_quantity",
                          f"Tasmota sensor {key!r} is not in the adapter's table (docs/adapters.md)")
        return
    base, model, sensor = found
    own = SENSOR_KEYS.get(base, {})
    values: dict[str, float] = {}
    fault: contract.ContractError | None = None
    for k, v in obj.items():
        quantity = own.get(k) or KEYS.get(k)
        if quantity is None and k in NOT_STORED:
            out.ignore(f"{base}.{k}")
            continue
        if quantity is None:
            fault = fault or contract.UnknownQuantity(f"{key}.{k} is not in the adapter's table (docs/adapters.md)")
            continue
        if v is None:  # the driver had no reading for it
            out.ignore(f"{base}.{k}=null")
            continue
        x = number(v)
        if x is None:
            fault = fault or contract.BadSchema(f"{key}.{k}={v!r} is not a number")
        elif quantity == "temperature" and fahrenheit:
            values[quantity] = fahrenheit_to_celsius(x)
        elif quantity == "pressure":
            values[quantity] = x * to_hpa
        else:
            values[quantity] = x
    if base == "GPS" and values.get("latitude") == 0 and values.get("longitude") == 0:
        del values["latitude"], values["longitude"]  # xsns_60_GPS before its first fix
        out.ignore("GPS.no-fix")
    if fault is not None:
        out.refuse_record(device, model, t_ms, fault.reason, str(fault))
    elif values:
        out.record(device, model, t_ms, sensor, values)


def source_zone(source: str, context: dict[str, Any]) -> tuple[str, str]:
    """``(MQTT topic, zone name)`` of a message: the zone a dead letter's source keeps, else the context's."""
    topic, mark, kept = source.partition(ZONE_MARK)
    return topic, (kept if mark and kept else str(context.get("timezone") or DEFAULT_TIMEZONE))


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one ``tele/<topic>/SENSOR`` message.

    Context: ``campaign``; ``timezone`` (IANA name, default Europe/Paris; a
    ``source`` ending in ``#timezone=<zone>``, a dead letter's, wins);
    ``device`` (overrides the topic's); ``not_before_ms``.
    """
    topic, tz_name = source_zone(source, context)
    out = Collector(NAME, f"{topic}{ZONE_MARK}{tz_name}", received_ms, context, text_of(payload))
    parts = topic.split("/")
    device: str | None = None
    try:
        name = context.get("device") or (parts[1] if len(parts) == 3 else None)
        if not name:
            raise contract.BadTopic(f"topic {topic!r} is not tele/<topic>/SENSOR")
        device = normalise_device(str(name))
        doc = load_json(payload, out.limits)
        if not isinstance(doc, dict):
            raise contract.BadSchema("a Tasmota SENSOR payload is a JSON object")
        t_ms = _time_ms(doc, tz_name)
        fahrenheit, to_hpa = _units(doc)
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    for key, obj in doc.items():
        if key in META_KEYS:
            continue
        if key in NOT_SENSORS:
            out.ignore(key)
        elif isinstance(obj, dict):
            _sensor(out, device, t_ms, key, obj, fahrenheit, to_hpa)
        elif isinstance(obj, str):  # a switch state ("Switch1":"ON", or its SwitchText name)
            out.ignore(f"state {key}")
        else:
            out.refuse_record(device, slug(key), t_ms, "unknown_quantity",
                              f"top-level {key}={obj!r} is not a sensor object the adapter knows")
    return out.result


ADAPTER = Adapter(NAME, decode, "Tasmota telemetry JSON over MQTT, topic tele/<topic>/SENSOR", TOPICS)
