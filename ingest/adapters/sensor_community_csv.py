"""Sensor.Community archive CSV files (https://archive.sensor.community/).

Sources: the archive export of the Sensor.Community server
(github.com/opendata-stuttgart/feinstaub-api, ``feinstaub/sensors/management/
commands/export_as_csv.py`` ``Command._write_file``): one file per sensor and
day, named ``<date>_<sensor type>_sensor_<sensor id>.csv`` (``_indoor`` before
``.csv`` for indoor sensors), semicolon-separated; the header is
``sensor_id;sensor_type;location;lat;lon;timestamp;`` then the sensor type's
value types; ``lat``/``lon`` are the location's, rounded to 3 decimals, empty
when unknown; ``timestamp`` is the Django ``isoformat()`` of the UTC time
(``2026-03-01T00:01:00``, in older files ``2019-01-01T00:01:00.123456+00:00``);
a value the sensor did not send is an empty field::

    sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2   (SDS011, PPD42NS)
    sensor_id;sensor_type;location;lat;lon;timestamp;P1;P2;P0                            (PMS1003…PMS7003)
    sensor_id;sensor_type;location;lat;lon;timestamp;pressure;altitude;pressure_sealevel;temperature;humidity
                                                                        (BME280; BMP180: without humidity)
    sensor_id;sensor_type;location;lat;lon;timestamp;temperature;humidity                (DHT22, HTU21D, SHT1x…)
    sensor_id;sensor_type;location;lat;lon;timestamp;temperature                         (DS18B20)

Other types (SPS30, SHT3x, NextPM…) carry the value types the API received,
which are the firmware's names without prefix (:mod:`ingest.adapters.airrohr`,
``sendSensorCommunity``): columns are therefore mapped **by name**, through
the same table as the push (:data:`ingest.adapters.airrohr.VALUE_TYPES`), and
:data:`TYPES` lists which a sensor type may carry.  A type with no value
columns (the script's ``key_list = []``, e.g. ``bmp280``, misspelt ``bpm280``
there) gives a header ending in ``;`` and rows without values, refused.

Ignored columns, counted in ``AdapterResult.ignored``: ``location`` (the
location record id), ``dur*``/``ratio*`` (PPD42NS timings), ``altitude`` and
``pressure_sealevel`` (computed from pressure).  PPD42NS ``P1``/``P2`` are
particle counts per 283 mL, not mass concentrations: no qsec quantity, refused.

Device: ``sensor-community-<sensor_id>``; boot ``sensor-community-<type>``;
seq the time [ms].  The declared position becomes a ``latitude``/``longitude``
record of sensor ``sensor-community-location`` at the first row and whenever
it changes.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters import _frame as tab
from ingest.adapters._common import campaign_of
from ingest.adapters._frame import Frame
from ingest.adapters.airrohr import NEXTPM, SPS30, TH, UNSTORABLE, VALUE_TYPES
from qsec import contract

NAME = "sensor-community"
SEP = ";"
FIXED = ["sensor_id", "sensor_type", "location", "lat", "lon", "timestamp"]
# sensor_type (upper-case) -> (sensor name, the value-type columns it carries)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "SDS011": ("nova-sds011", ("P1", "P2")),
    "SDS021": ("nova-sds021", ("P1", "P2")),
    **{f"PMS{m}": (f"plantower-pms{m}", ("P0", "P1", "P2")) for m in ("1003", "3003", "5003", "6003", "7003")},
    "HPM": ("honeywell-hpm", ("P1", "P2")),
    "SPS30": ("sensirion-sps30", SPS30),
    "NEXTPM": ("tera-nextpm", NEXTPM),
    "BME280": ("bosch-bme280", (*TH, "pressure")),
    "BMP180": ("bosch-bmp180", ("temperature", "pressure")),
    "BMP280": ("bosch-bmp280", ("temperature", "pressure")),
    **{t: (f"{vendor}-{t.lower()}", TH)
       for t, vendor in (("DHT22", "aosong"), ("DHT11", "aosong"), ("HTU21D", "te"), ("SHT10", "sensirion"),
                         ("SHT11", "sensirion"), ("SHT15", "sensirion"), ("SHT30", "sensirion"),
                         ("SHT31", "sensirion"), ("SHT35", "sensirion"), ("SHT85", "sensirion"))},
    "DS18B20": ("maxim-ds18b20", ("temperature",)),
    "SCD30": ("sensirion-scd30", (*TH, "co2_ppm")),
}
IGNORED = frozenset({"location", "altitude", "pressure_sealevel", ""})
IGNORED_PREFIXES = ("dur", "ratio")
LOCATION_SENSOR = "sensor-community-location"


def is_ignored(column: str) -> bool:
    return column in IGNORED or column.startswith(IGNORED_PREFIXES)


def sniff(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf").startswith(b"sensor_id;sensor_type;")


def _type_frame(text: pd.DataFrame, stype: str, common: dict[str, Any]) -> Frame:
    """The records of the rows of one sensor type: column operations only."""
    n = len(text)
    sensor, columns = TYPES.get(stype, (f"sensor-community-{slug_type(stype)}", ()))
    mapping = {c: VALUE_TYPES[c] for c in columns}
    measure = [c for c in text.columns if c not in FIXED and not is_ignored(c)]
    nums, not_num = tab.numeric(text[measure])
    values = pd.DataFrame(index=text.index)
    for col, (quantity, factor) in mapping.items():
        if col in nums:
            values[quantity] = nums[col] * factor
    present = (~text[measure].isin(("", "null", "nan"))).to_numpy(dtype=bool)
    known = np.array([c in mapping for c in measure], bool)
    stray = present & ~known
    if stype not in TYPES:
        why = UNSTORABLE.get(stype.lower())
        unknown = np.full(n, f"sensor type {stype!r}" + (f" ({why})" if why else ""), dtype=object)
    else:
        unknown = tab.first_label(stray, [f"column {c!r}" for c in measure])
    not_numeric = pd.DataFrame({q: not_num[c].to_numpy() for c, (q, _) in mapping.items() if c in not_num},
                               index=text.index)
    return Frame(campaign=np.full(n, common["campaign"], dtype=object), device=common["device"],
                 boot=np.full(n, f"sensor-community-{slug_type(stype)}"[:64], dtype=object),
                 sensor=np.full(n, sensor, dtype=object), t_ms=common["t"], values=values,
                 not_numeric=not_numeric.reindex(columns=values.columns, fill_value=False),
                 unknown=unknown, raw=common["raw"], source=common["source"], bad_row=common["bad"])


def ignored_cells(text: pd.DataFrame) -> Counter[str]:
    """How many non-empty cells each ignored column has (``location``, ``durP1``…), for ``AdapterResult.ignored``."""
    cols = [c for c in text.columns if is_ignored(c) and not c.startswith("__extra")]
    filled = (text[cols].fillna("").apply(lambda col: col.str.strip()) != "").sum()
    return Counter({f"column {c}": int(k) for c, k in filled.items() if k})


def slug_type(stype: str) -> str:
    return "".join(ch for ch in stype.lower() if ch.isalnum() or ch in "_-") or "unknown"


def _frames(text: pd.DataFrame, *, header: str, name: str, first_row: int, campaign: str,
            last_position: dict[str, tuple[str, str]]) -> list[Frame]:
    """The sensor records of a chunk, and the position records where the declared position changes."""
    full = text.reset_index(drop=True)
    text, too_many = tab.split_extra(full)
    sid = text["sensor_id"].str.strip()
    device = ("sensor-community-" + sid).to_numpy(dtype=object)
    ok = sid.ne("") & pd.Series(device).str.match(contract.ID_PATTERN.pattern)
    bad = np.where(ok.to_numpy(), too_many, "sensor_id is missing or not usable as a device id")
    t = tab.iso_ms(text["timestamp"])

    def raw(i: int) -> str:
        return header + "\n" + tab.joined(full, SEP, i)

    def source(i: int) -> str:
        return f"{name}#row{first_row + i + 1}"

    frames = []
    stype = text["sensor_type"].str.strip().str.upper()
    for st, members in stype.groupby(stype, sort=False).groups.items():  # one group per sensor type (usually one)
        rows = np.asarray(members)
        common = {"campaign": campaign, "device": device[rows], "t": t[rows], "bad": bad[rows],
                  "raw": lambda j, rows=rows: raw(int(rows[j])), "source": lambda j, rows=rows: source(int(rows[j]))}
        frames.append(_type_frame(text.iloc[rows].reset_index(drop=True), str(st), common))
    # declared position: a record where (lat, lon) differs from the sensor's previous row
    pos = pd.DataFrame({"sid": sid, "lat": text["lat"].str.strip(), "lon": text["lon"].str.strip()})
    prev_lat = pos.groupby("sid")["lat"].shift()
    prev_lon = pos.groupby("sid")["lon"].shift()
    first = prev_lat.isna()
    carried = pos.loc[first, "sid"].map(lambda s: last_position.get(s, (None, None)))  # once per sensor and chunk
    prev_lat[first] = carried.str[0]
    prev_lon[first] = carried.str[1]
    keep = ((pos["lat"] != prev_lat) | (pos["lon"] != prev_lon)) & ((pos["lat"] != "") | (pos["lon"] != ""))
    keep &= ~np.isnan(t) & pd.isna(bad)  # a malformed line is refused once, with its sensor record
    for s_id, row in pos.groupby("sid").last().iterrows():  # once per sensor and chunk
        last_position[str(s_id)] = (row["lat"], row["lon"])
    idx = np.flatnonzero(keep.to_numpy())
    if len(idx):
        pos_vals, pos_bad = tab.numeric(pos.iloc[idx][["lat", "lon"]].set_axis(["latitude", "longitude"], axis=1)
                                    .reset_index(drop=True))
        k = len(idx)
        frames.append(Frame(
            campaign=np.full(k, campaign, dtype=object), device=device[idx],
            boot=np.full(k, LOCATION_SENSOR, dtype=object), sensor=np.full(k, LOCATION_SENSOR, dtype=object),
            t_ms=t[idx], values=pos_vals, not_numeric=pos_bad, unknown=np.full(k, None, dtype=object),
            raw=lambda j: raw(int(idx[j])), source=lambda j: source(int(idx[j])), bad_row=bad[idx]))
    return frames


def _decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode a whole archive CSV (or a header and one line, as a dead letter keeps it)."""
    campaign = campaign_of(context)
    buf = io.StringIO(payload.decode("utf-8", "replace").lstrip("\ufeff"))
    header = buf.readline().rstrip("\r\n")
    names = tab.header_names(header, SEP, FIXED, "Sensor.Community archive CSV")
    text = tab.read_csv_text(buf, names, SEP)
    frames = _frames(text, header=header, name=source.split("#", 1)[0], first_row=0, campaign=campaign,
                     last_position={})
    result = tab.check_all(frames, NAME, received_ms, context)
    result.ignored.update(ignored_cells(text))
    return result


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """See :func:`_decode`; an unreadable CSV becomes one dead letter."""
    return tab.guarded(NAME, source, payload, context,
                       lambda: _decode(payload, source=source, received_ms=received_ms, **context))


def read_file(path: Path, *, received_ms: int, rows: int = tab.CHUNK_ROWS,
              **context: Any) -> Iterator[tuple[AdapterResult, int]]:
    """Decode a (possibly ``.gz``) archive CSV chunk by chunk: ``(result, bytes read so far)``."""
    campaign = campaign_of(context)
    with tab.open_text(path) as handle:
        header = handle.readline().lstrip("\ufeff").rstrip("\r\n")
        names = tab.header_names(header, SEP, FIXED, "Sensor.Community archive CSV")
        last: dict[str, tuple[str, str]] = {}
        done = 0
        for text in tab.read_csv_text(handle, names, SEP, rows):
            frames = _frames(text, header=header, name=path.name, first_row=done, campaign=campaign,
                             last_position=last)
            done += len(text)
            result = tab.check_all(frames, NAME, received_ms, context)
            result.ignored.update(ignored_cells(text))
            yield result, tab.tell(handle)


ADAPTER = Adapter(NAME, decode, "Sensor.Community archive CSV (archive.sensor.community), one sensor per file",
                  sniff=sniff, read_file=read_file)
