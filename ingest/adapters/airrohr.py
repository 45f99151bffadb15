"""Sensor.Community / airrohr firmware: the "send to own API" HTTP push.

Sources: the airrohr firmware (github.com/opendata-stuttgart/sensors-software,
``airrohr-firmware/airrohr-firmware.ino`` ``sendData``/``sendCustom`` and
``ext_def.h`` for the ``*_API_PIN`` values), and the Sensor.Community data
format description (github.com/opendata-stuttgart/meta/wiki/EN-data-format-description).

The firmware POSTs one JSON body per measuring cycle (default every 145 s)::

    {"esp8266id": "1234567", "software_version": "NRZ-2020-133",
     "sensordatavalues": [{"value_type": "SDS_P1", "value": "12.30"}, …]}

with headers ``X-Sensor: esp8266-<chip id>`` (``esp32-…`` on an ESP32) and,
for the Sensor.Community API only, ``X-Pin`` (1 PM sensors, 3 BMP180/BMP280,
5 PPD42NS, 7 DHT22/HTU21D/SHT3x, 9 GPS, 11 BME280, 13 DS18B20, 17 SCD30).
The own-API push carries every sensor in one body and no ``X-Pin``.

Values are strings in the sensor's unit; pressure is in Pa and becomes hPa
here.  The body carries **no measurement time**: the record time is the
time of receipt, truncated to the second (see docs/adapters.md, limits).
Each sensor's values form one record: boot ``airrohr-<model>``, seq the time
[ms].  Unprefixed ``temperature``/``humidity``/``pressure`` belong to the
sensor named by ``X-Pin`` (DHT22 when there is none, as the firmware
sends them); unprefixed ``P0``/``P1``/``P2`` to a PM sensor (``pm``).
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

# value_type -> (model, sensor name, quantity, factor into the qsec unit)
_PM = {"P0": "pm1", "P1": "pm10", "P2": "pm2_5", "P4": "pm4",
       "N05": "nc0_5", "N1": "nc1", "N25": "nc2_5", "N4": "nc4", "N10": "nc10", "TS": "typical_particle_size"}
_MODELS = {  # value_type prefix -> (model, sensor name, allowed suffixes)
    "SDS": ("sds011", "nova-sds011", ("P1", "P2")),
    "PMS": ("pms", "plantower-pms", ("P0", "P1", "P2")),
    "HPM": ("hpm", "honeywell-hpm", ("P1", "P2")),
    "SPS30": ("sps30", "sensirion-sps30", ("P0", "P1", "P2", "P4", "N05", "N1", "N25", "N4", "N10", "TS")),
    "NPM": ("nextpm", "tera-nextpm", ("P0", "P1", "P2", "N1", "N10", "N25")),
    "BME280": ("bme280", "bosch-bme280", ("temperature", "humidity", "pressure")),
    "BMP280": ("bmp280", "bosch-bmp280", ("temperature", "pressure")),
    "BMP": ("bmp180", "bosch-bmp180", ("temperature", "pressure")),
    "HTU21D": ("htu21d", "te-htu21d", ("temperature", "humidity")),
    "SHT3X": ("sht3x", "sensirion-sht3x", ("temperature", "humidity")),
    "DS18B20": ("ds18b20", "maxim-ds18b20", ("temperature",)),
    "SCD30": ("scd30", "sensirion-scd30", ("co2", "temperature", "humidity")),
    "GPS": ("gps", "gps", ("lat", "lon", "height")),
}
_METEO = {"temperature": ("temperature", 1.0), "humidity": ("relative_humidity", 1.0), "pressure": ("pressure", 0.01),
          "co2": ("co2", 1.0), "lat": ("latitude", 1.0), "lon": ("longitude", 1.0), "height": ("altitude", 1.0)}
# unprefixed meteo value types: X-Pin -> model (the firmware's own push has no X-Pin: DHT22)
PIN_MODELS = {7: ("dht22", "aosong-dht22"), 11: ("bme280", "bosch-bme280"), 3: ("bmp280", "bosch-bmp280"),
              13: ("ds18b20", "maxim-ds18b20"), None: ("dht22", "aosong-dht22")}
# metadata of the firmware's cycle, not measurements: ignored (docs/adapters.md)
IGNORED = frozenset({"samples", "min_micro", "max_micro", "interval", "signal", "GPS_timestamp", "GPS_date",
                     "GPS_time", "durP1", "durP2", "ratioP1", "ratioP2", "BME280_pressure_sealevel",
                     "BMP_pressure_sealevel", "BMP280_pressure_sealevel"})


def value_type(vt: str, pin: int | None) -> tuple[str, str, str, float]:
    """``(model, sensor, quantity, factor)`` for a value_type; raises :class:`contract.UnknownQuantity`."""
    prefix, sep, suffix = vt.partition("_")
    if sep and prefix in _MODELS:
        model, sensor, allowed = _MODELS[prefix]
        if suffix in allowed:
            if suffix in _PM:
                return model, sensor, _PM[suffix], 1.0
            return (model, sensor, *_METEO[suffix])
    if vt in ("P0", "P1", "P2"):
        return "pm", "airrohr-pm", _PM[vt], 1.0
    if vt in ("temperature", "humidity", "pressure") and pin in PIN_MODELS:
        return (*PIN_MODELS[pin], *_METEO[vt])
    raise contract.UnknownQuantity(f"airrohr value_type {vt!r} is not in the adapter's table (docs/adapters.md)")


def _pin(value: Any, source: str) -> int | None:
    if value is None and "x-pin=" in source:
        value = source.rsplit("x-pin=", 1)[1].split("&", 1)[0]
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one airrohr push.

    Context: ``campaign``; ``x_sensor`` (the ``X-Sensor`` header) or ``device``
    (an already normalised id); ``x_pin`` (the ``X-Pin`` header, also read
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
        if not isinstance(doc, dict) or not isinstance(doc.get("sensordatavalues"), list):
            raise contract.BadSchema("an airrohr push is a JSON object with a sensordatavalues list")
        chip = doc.get("esp8266id")
        if chip is not None and context.get("x_sensor") and not device.endswith(f"-{str(chip).lower()}"):
            raise contract.DeviceMismatch(f"body says esp8266id {chip!r} but the X-Sensor header says {name!r}")
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    pin = _pin(context.get("x_pin"), source)
    records: dict[str, tuple[str, dict[str, float]]] = {}
    faults: dict[str, contract.ContractError] = {}
    for item in doc["sensordatavalues"]:
        vt = item.get("value_type") if isinstance(item, dict) else None
        if not isinstance(vt, str):
            out.refuse("bad_schema", f"sensordatavalues entry {item!r} has no value_type", device=device)
            continue
        if vt in IGNORED:
            continue
        try:
            model, sensor, quantity, factor = value_type(vt, pin)
        except contract.UnknownQuantity as exc:
            model, sensor = vt.partition("_")[0].lower() if "_" in vt else vt.lower(), ""
            faults.setdefault(model, exc)
            records.setdefault(model, (sensor, {}))
            continue
        value = number(item.get("value"))
        records.setdefault(model, (sensor, {}))
        if value is None:
            faults.setdefault(model, contract.BadSchema(f"{vt} value {item.get('value')!r} is not a number"))
            continue
        records[model][1][quantity] = value * factor
    for model, (sensor, values) in records.items():
        if model in faults:
            out.refuse_record(device, model, t_ms, faults[model].reason, str(faults[model]))
        else:
            out.record(device, model, t_ms, sensor, values)
    return out.result


ADAPTER = Adapter(NAME, decode, "Sensor.Community/airrohr firmware push to an own API (HTTP POST /api/push/airrohr)")
