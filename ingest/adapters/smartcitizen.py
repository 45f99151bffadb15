"""Smart Citizen Kit (SCK 2.1, 2.2, 2.3) readings over MQTT.

Sources
-------
- Firmware ``fablabbcn/smartcitizen-kit-2x``: the sensor table
  ``lib/Sensors/Sensors.h`` (``AllSensors::list``: short title, title,
  platform id, unit of every measurement); ``sam/src/SckList.cpp``
  ``SckList::_formatNET`` (the raw payload: ``{t:<time>`` then ``,<id>:<value>``
  for every reading with a platform id, ``null`` readings left out, ``}``);
  ``sam/src/SckBase.cpp`` ``SckBase::epoch2iso`` (times
  ``YYYY-MM-DDTHH:MM:SSZ``, UTC) and ``SckBase::updateSensors`` (no reading
  is taken while the clock is before 1514764800 = 2018-01-01);
  ``esp/src/SckESP.cpp`` ``SckESP::mqttPublishRaw`` (topic
  ``device/sck/<token>/readings/raw``); ``sam/src/SckUrban.cpp``
  ``Sck_PM::processBuffer`` (PM words 1-3 of the PMS5003 frame: the
  "CF=1, standard particle" values), ``Sck_SPS30::update`` and
  ``Sck_SEN5X::sen_readPmValues`` (number concentrations multiplied by 100,
  #/cm³ -> #/0.1 L; the SEN5x typical particle size too).
- PM board firmware ``fablabbcn/smartcitizen-kit-pm-board``
  ``firmware/src/PM_driver.cpp`` ``PMsensor::update`` (the two external
  PMS5003 also give the CF=1 words).
- Platform ``fablabbcn/smartcitizen-api``: ``app/lib/mqtt_messages_handler.rb``
  (``…/readings/raw`` is read as the raw form, ``…/readings`` as JSON
  ``{"data": [{"recorded_at": …, "sensors": [{"id": …, "value": …}]}]}``),
  ``app/grammars/raw_message.tt`` (the raw grammar), ``docs/mqtt.md``
  (both forms, ``recorded_at`` written ``2016-06-08 10:30:00``),
  ``app/models/concerns/data_parser/storer.rb`` (``Float(value)``, ids as
  integers).
- Platform ids and units cross-checked with ``fablabbcn/smartcitizen-data``
  ``blueprints/sck_21.json``, ``sck_21_co2.json``, ``sck_21_sen5x.json``.

The kit publishes one reading group per message::

    device/sck/<token>/readings/raw   {t:2026-03-01T12:00:05Z,10:97,14:120,55:18.30,56:61.20,58:101.21,89:6,87:9,88:12}
    device/sck/<token>/readings       {"data":[{"recorded_at":"2026-03-01T12:00:05Z","sensors":[{"id":55,"value":18.3}]}]}

Each platform sensor id maps through :data:`SENSOR_IDS` (shared with the SD-card
CSV adapter) to a qsec quantity of one sensor model; the values of one model
at one time form a record: boot ``smartcitizen-<model>``, seq the time [ms].
Ids the firmware publishes that have no qsec quantity (light, noise, battery
%, …) are listed in :data:`IGNORED` and counted in ``AdapterResult.ignored``;
any other id refuses its record with ``unknown_quantity``.

The device token authenticates the kit on the platform and must not leak:
the device id is ``context["devices"][token]`` when given, else
``sck-`` + the first 12 hex digits of the token's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters._common import Collector, normalise_device, number, text_of
from qsec import contract

NAME = "smartcitizen"
DOC = "docs/adapters.md"
TOPICS = ("device/sck/+/readings/raw", "device/sck/+/readings")


class Channel(NamedTuple):
    """Where one platform sensor id goes: the record's model and sensor, the quantity, the factor into its unit."""

    model: str
    sensor: str
    quantity: str
    factor: float = 1.0

    def convert(self, value: Any) -> Any:
        """A value (or an array of them) in the qsec unit; the float noise of the product is rounded off."""
        return value if self.factor == 1 else np.round(value * self.factor, 10)


def _ids(model: str, sensor: str, pairs: dict[int, str], factor: float = 1.0) -> dict[int, Channel]:
    return {sid: Channel(model, sensor, q, factor) for sid, q in pairs.items()}


_PN_PLANTOWER = ("pn0_3", "pn0_5", "pn1", "pn2_5", "pn5", "pn10")
_NC_SENSIRION = ("nc0_5", "nc1", "nc2_5", "nc4", "nc10")

# platform sensor id -> channel (lib/Sensors/Sensors.h, AllSensors::list)
SENSOR_IDS: dict[int, Channel] = {
    **_ids("sht31", "sensirion-sht31", {55: "temperature", 56: "relative_humidity"}),  # TEMP, HUM (urban board)
    **_ids("mpl3115a2", "nxp-mpl3115a2", {58: "pressure"}, 10),  # PRESS [kPa] -> hPa
    **_ids("lps33", "st-lps33hw", {227: "pressure"}, 10),  # PRESS_LPS [kPa] -> hPa
    **_ids("ccs811", "ams-ccs811", {113: "tvoc"}),  # CCS811_VOCS [ppb]
    # PMS5003 on the urban board: PMS_PM_1/25/10 are the CF=1 words, PMS_PN_* the counts [#/0.1 L]
    **_ids("pms5003", "plantower-pms5003", {89: "pm1_cf1", 87: "pm2_5_cf1", 88: "pm10_cf1"}),
    **_ids("pms5003", "plantower-pms5003", dict(zip(range(165, 171), _PN_PLANTOWER))),
    # the PM board's two PMS5003 (EXT_PM_A_*, EXT_PN_A_*, EXT_PM_B_*, EXT_PN_B_*)
    **_ids("pms5003-a", "plantower-pms5003", {71: "pm1_cf1", 72: "pm2_5_cf1", 73: "pm10_cf1"}),
    **_ids("pms5003-a", "plantower-pms5003", dict(zip(range(99, 105), _PN_PLANTOWER))),
    **_ids("pms5003-b", "plantower-pms5003", {75: "pm1_cf1", 76: "pm2_5_cf1", 77: "pm10_cf1"}),
    **_ids("pms5003-b", "plantower-pms5003", dict(zip(range(105, 111), _PN_PLANTOWER))),
    # SPS30: mass [µg/m³]; number concentrations sent in #/0.1 L (x100), stored in #/cm³
    **_ids("sps30", "sensirion-sps30", {182: "pm1", 183: "pm2_5", 184: "pm4", 185: "pm10",
                                        191: "typical_particle_size"}),
    **_ids("sps30", "sensirion-sps30", dict(zip(range(186, 191), _NC_SENSIRION)), 0.01),
    # SEN5x: as the SPS30, plus its humidity, temperature and the relative VOC and NOx indices;
    # the firmware multiplies its typical particle size by 100 too (Sck_SEN5X::sen_readPmValues)
    **_ids("sen5x", "sensirion-sen5x", {193: "pm1", 194: "pm2_5", 195: "pm4", 196: "pm10",
                                        203: "relative_humidity", 204: "temperature", 205: "voc_index",
                                        206: "nox_index"}),
    **_ids("sen5x", "sensirion-sen5x", {**dict(zip(range(197, 202), _NC_SENSIRION)), 202: "typical_particle_size"},
           0.01),
    **_ids("scd30", "sensirion-scd30", {158: "co2", 160: "temperature", 161: "relative_humidity"}),
    **_ids("sfa30", "sensirion-sfa30", {211: "temperature", 210: "relative_humidity"}),
    # external SHT31 (EXT_TEMP/EXT_HUM, also the Gases Board's GB_TEMP/GB_HUM) and SHT35
    **_ids("sht31-ext", "sensirion-sht31", {79: "temperature", 80: "relative_humidity"}),
    **_ids("sht35-ext", "sensirion-sht35", {224: "temperature", 225: "relative_humidity"}),
    **_ids("gps", "gps", {125: "latitude", 126: "longitude", 127: "altitude", 128: "fix_quality", 129: "speed",
                          130: "satellites", 131: "hdop"}),
    **_ids("battery", "sck-battery", {222: "battery"}),  # BATT_VOLT [V]
}

_SENSOR_OF = {ch.model: ch.sensor for ch in SENSOR_IDS.values()}

_ADC = "ADC voltage [V], not a measurement qsec knows"
_WATER = "water quality probe (Atlas Scientific), no qsec quantity"
# platform ids the firmware publishes that have no qsec quantity: "SHORT_TITLE: why" (lib/Sensors/Sensors.h)
IGNORED: dict[int, str] = {
    10: "BATT: battery charge [%]; qsec stores the battery voltage (BATT_VOLT, id 222)",
    220: "RSSI: Wi-Fi signal [dBm], no qsec quantity",
    221: "SDCARD: SD card present flag, not a measurement",
    14: "LIGHT: ambient light [lux], no qsec quantity",
    53: "NOISE_A: sound level [dBA], no qsec quantity",
    217: "NOISE_B: sound level [dBC], no qsec quantity",
    218: "NOISE_Z: sound level [dBZ], no qsec quantity",
    219: "ALT: altitude estimated from the pressure, not a position fix",
    112: "CCS811_ECO2: eCO2 [ppm] is the CCS811's estimate from its VOC signal, not a CO2 measurement",
    207: "SEN5X_VOCS_RAW: raw signal of the SEN5x VOC sensor, not the index",
    208: "SEN5X_NOX_RAW: raw signal of the SEN5x NOx sensor, not the index",
    214: "AS7331_UVA: UV irradiance [µW/cm²], no qsec quantity",
    215: "AS7331_UVB: UV irradiance [µW/cm²], no qsec quantity",
    216: "AS7331_UVC: UV irradiance [µW/cm²], no qsec quantity",
    212: "SFA30_HCHO: formaldehyde [ppb]; qsec stores mg/m³ and the conversion needs the air temperature",
    65: "GB_1A: electrochemical cell voltage [mV], not a concentration",
    64: "GB_1W: electrochemical cell voltage [mV], not a concentration",
    62: "GB_2A: electrochemical cell voltage [mV], not a concentration",
    61: "GB_2W: electrochemical cell voltage [mV], not a concentration",
    68: "GB_3A: electrochemical cell voltage [mV], not a concentration",
    67: "GB_3W: electrochemical cell voltage [mV], not a concentration",
    25: f"GR_ADC: {_ADC}",
    **{sid: f"ADC_{addr}_{ch}: {_ADC}" for addr, base in (("48", 133), ("49", 138), ("4A", 143), ("4B", 148))
       for ch, sid in enumerate(range(base, base + 4))},
    42: "DS_WAT_TEMP: water temperature, not the air's",
    96: "DALLAS_TEMP: DS18B20 probe temperature, wherever the probe is, not the air's",
    98: "EXT_RANGE_DIST: distance [mm], no qsec quantity",
    50: "CHRP_MOIS: soil moisture [%], no qsec quantity",
    **{sid: f"{short}: {_WATER}" for sid, short in ((51, "AS_TEMP"), (43, "AS_PH"), (45, "AS_COND"),
                                                    (122, "AS_TDS"), (123, "AS_SAL"), (46, "AS_SG"), (48, "AS_DO"),
                                                    (49, "AS_DO_SAT"), (164, "AS_ORP"))},
}

# the firmware takes no reading while its clock is before 2018-01-01 (SckBase::updateSensors)
MIN_TIME_MS = 1_514_764_800_000
TIME_PATTERN = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_TIME = re.compile(TIME_PATTERN)
_PAIR = re.compile(r"(t|-?\d+)\s*:\s*(.*)", re.DOTALL)
NO_VALUE = ("null", "nan", "NaN")  # how the firmware writes a reading it does not have (String(NAN) is "nan")
_NULL = object()  # a reading the kit marks as missing
_ABSENT = object()  # a sensors entry without "value"


def device_id(token: str, devices: dict[str, str] | None = None) -> str:
    """The qsec device id of a kit's token (the token itself is never used as an id)."""
    if devices and token in devices:
        return normalise_device(devices[token])
    return "sck-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def ignored_name(sid: int) -> str:
    """The ``AdapterResult.ignored`` key of an ignored sensor id: ``"LIGHT (id 14): ambient light …"``."""
    short, why = IGNORED[sid].split(": ", 1)
    return f"{short} (id {sid}): {why}"


def reading_time_ms(when: Any) -> int:
    """A reading's time [ms since epoch, UTC]; an ISO 8601 date-time, UTC when it has no offset.

    Raises
    ------
    contract.BadTime
        Not a date and time of day, or before 2018-01-01 (the kit's clock was not set).
    """
    if not isinstance(when, str) or not _TIME.fullmatch(when.strip()):
        raise contract.BadTime(f"reading time {when!r} is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        dt = datetime.fromisoformat(when.strip())
    except ValueError:
        raise contract.BadTime(f"reading time {when!r} is not a valid date and time") from None
    t_ms = round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
    if t_ms < MIN_TIME_MS:
        raise contract.BadTime(f"reading time {when!r} is before 2018-01-01: the kit's clock was not set "
                               "(its firmware takes no reading before then)")
    return t_ms


def sensor_id(raw: Any) -> int:
    """A platform sensor id: an integer, or a string of digits.

    Raises
    ------
    contract.BadSchema
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise contract.BadSchema(f"sensor id {raw!r} is not a platform sensor id (an integer)")


Reading = tuple[Any, list[tuple[Any, Any]]]  # (time, [(sensor id, value), …])


def parse_raw(text: str) -> Reading:
    """The raw form ``{t:<time>,<id>:<value>,…}`` (``app/grammars/raw_message.tt``); raises on a malformed one.

    Whitespace, line breaks and a trailing comma are allowed (as in the
    platform's ``docs/mqtt.md``); ``null`` or ``nan`` mark a missing reading.
    """
    body = text.strip()
    if body.startswith('{"'):
        raise contract.BadSchema("JSON, but the platform reads only the raw form {t:<time>,<id>:<value>,…} on "
                                 "…/readings/raw; the JSON form belongs on …/readings")
    if not (body.startswith("{") and body.endswith("}")):
        raise contract.BadJson("not the raw form {t:<time>,<id>:<value>,…} the platform reads on …/readings/raw")
    when: list[str] = []
    pairs: list[tuple[Any, Any]] = []
    for item in filter(None, (p.strip() for p in body[1:-1].split(","))):
        m = _PAIR.fullmatch(item)
        if not m:
            raise contract.BadSchema(f"raw pair {item!r} is not <sensor id>:<value> nor t:<time>")
        key, value = m.group(1), m.group(2).strip()
        if key == "t":
            when.append(value)
        else:
            pairs.append((key, _NULL if value in NO_VALUE else value))
    if len(when) > 1:
        raise contract.BadSchema(f"the raw payload has {len(when)} times t:, one is expected")
    if not when:
        raise contract.BadTime("the raw payload has no time (t:<YYYY-MM-DDTHH:MM:SSZ>)")
    return when[0], pairs


def parse_json(text: str) -> list[Any]:
    """The ``data`` list of the platform's JSON form; raises when there is none."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise contract.BadJson(f"not JSON, which the platform reads on …/readings: {exc}; the raw "
                               "{t:…,<id>:<value>} form belongs on …/readings/raw") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise contract.BadSchema('the JSON needs a "data" list of readings: {"data": [{"recorded_at": …, '
                                 '"sensors": [{"id": …, "value": …}]}]}')
    if not doc["data"]:
        raise contract.BadSchema('the "data" list holds no reading')
    return doc["data"]


def json_reading(entry: Any) -> Reading:
    """One ``data`` entry as ``(recorded_at, [(id, value), …])``; raises when it is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("sensors"), list):
        raise contract.BadSchema('each "data" entry needs "recorded_at" and a "sensors" list')
    pairs = []
    for s in entry["sensors"]:
        if not isinstance(s, dict) or "id" not in s:
            raise contract.BadSchema(f'sensors entry {s!r} is not {{"id": …, "value": …}}')
        value = s.get("value", _ABSENT)
        missing = value is None or value in NO_VALUE or (isinstance(value, float) and math.isnan(value))
        pairs.append((s["id"], _NULL if missing else value))
    return entry.get("recorded_at"), pairs


class Group(NamedTuple):
    """The records of one reading: values by model, each model's first fault, ignored ids and their counts."""

    values: dict[str, dict[str, float]]
    faults: dict[str, tuple[str, str]]  # model -> (reason, detail)
    ignored: dict[str, int]


def group(pairs: list[tuple[Any, Any]]) -> Group:
    """Sort one reading's ``(sensor id, value)`` pairs into records by model."""
    out = Group({}, {}, {})
    seen: set[int] = set()
    for raw_id, raw_value in pairs:
        try:
            sid = sensor_id(raw_id)
        except contract.BadSchema as exc:
            out.faults.setdefault(f"id-{raw_id}", (exc.reason, str(exc)))
            continue
        if sid in IGNORED:
            if raw_value is not _NULL:
                out.ignored[ignored_name(sid)] = out.ignored.get(ignored_name(sid), 0) + 1
            continue
        if sid not in SENSOR_IDS:
            detail = f"Smart Citizen sensor id {sid} is in neither table of the adapter ({DOC})"
            out.faults.setdefault(f"id-{sid}", ("unknown_quantity", detail))
            continue
        ch = SENSOR_IDS[sid]
        values = out.values.setdefault(ch.model, {})
        if sid in seen:
            out.faults.setdefault(ch.model, ("bad_schema", f"sensor id {sid} appears twice in one reading"))
            continue
        seen.add(sid)
        if raw_value is _NULL:
            continue
        value = number(raw_value)
        if value is None:
            out.faults.setdefault(ch.model, ("bad_schema", f"sensor id {sid} value {raw_value!r} is not a number"
                                             if raw_value is not _ABSENT else f"sensor id {sid} has no value"))
        else:
            values[ch.quantity] = float(ch.convert(value))
    return out


def _form(source: str, text: str) -> str:
    """``raw`` or ``json``: the topic says which (as the platform's handler); else the payload."""
    parts = source.split("/")
    if len(parts) >= 4 and parts[:2] == ["device", "sck"]:
        return "raw" if parts[4:5] == ["raw"] else "json"
    return "json" if text.lstrip().startswith('{"') else "raw"


def _device(source: str, context: dict[str, Any]) -> str:
    if context.get("device"):
        return normalise_device(str(context["device"]))
    parts = source.split("/")
    if len(parts) in (4, 5) and parts[:2] == ["device", "sck"] and parts[2] and parts[3] == "readings" \
            and parts[4:] in ([], ["raw"]):
        return device_id(parts[2], context.get("devices"))
    raise contract.BadTopic(f"topic {source!r} is not device/sck/<token>/readings[/raw]")


def _record(out: Collector, device: str, t_ms: int, found: Group) -> None:
    """Keep the records of one reading, refuse its faulty ones, count what it ignores."""
    for name, n in found.ignored.items():
        out.ignore(name, n)
    for model, (reason, detail) in found.faults.items():
        out.refuse_record(device, model, t_ms, reason, detail)
    for model, values in found.values.items():
        if model not in found.faults and values:
            out.record(device, model, t_ms, _SENSOR_OF[model], values)


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode one kit message published on ``device/sck/<token>/readings[/raw]``.

    Context: ``campaign``; ``devices`` (token -> device id); ``device``
    (overrides the id from the token); ``not_before_ms``.
    """
    text = text_of(payload)
    out = Collector(NAME, source, received_ms, context, text)
    try:
        device = _device(source, context)
    except contract.ContractError as exc:
        out.refuse_error(exc)
        return out.result
    try:
        if len(payload) > out.limits.max_payload_bytes:
            raise contract.PayloadTooLarge(f"payload of {len(payload)} bytes; the limit is {out.limits.max_payload_bytes}")
        raw_form = _form(source, text) == "raw"
        entries: list[Any] = [text] if raw_form else parse_json(text)
    except contract.ContractError as exc:
        out.refuse_error(exc, device=device)
        return out.result
    for entry in entries:
        try:
            when, pairs = parse_raw(entry) if raw_form else json_reading(entry)
            t_ms = reading_time_ms(when)
        except contract.ContractError as exc:
            out.refuse_error(exc, device=device)
            continue
        _record(out, device, t_ms, group(pairs))
    return out.result


ADAPTER = Adapter(NAME, decode, "Smart Citizen Kit 2.x over MQTT, topic device/sck/<token>/readings[/raw]", TOPICS)
