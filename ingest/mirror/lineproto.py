"""InfluxDB line protocol for qsec records: a pure, cached encoder.

One record becomes one point (one line, wrapped here) of the measurement ``readings`` (configurable)::

    readings,boot=<boot>,campaign=<campaign>,device=<device>,sensor=<sensor> \\
        <quantity>=<float>,…,flags=<n>i,seq=<n>i <t_ms>

Tags and fields are sorted by key and escaped exactly as influxdb-client's
``Point.to_line_protocol`` does (floats without a trailing ``.0``, integers
with an ``i`` suffix); the tests check byte equality against ``Point``.
Why not ``Point`` itself: the encoder runs inside ingest's commit path, and
``Point`` builds and sorts an object per record, whereas here the series key
of each ``(campaign, device, sensor, boot)`` and the field layout of each
sensor are built once and cached.

Sources
-------
- Line protocol reference (InfluxDB v2):
  https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
  (escaping: measurement ``, space``; tag keys, tag values and field keys
  ``, = space``; timestamps in the write precision, here ms).
- influxdb-client-python 1.50, ``influxdb_client/client/write/point.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from qsec import contract

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_CACHE_LIMIT = 10_000  # series keys kept; a campaign has far fewer (devices x sensors x boots)
_INTEGER_FIELDS = ("seq", "flags")


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas, spaces, control whitespace)."""
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces, control whitespace)."""
    return name.translate(_ESCAPE_KEY)


def format_float(value: float) -> str:
    """A float field value as influxdb-client writes it (``2.5``, ``415``, ``1e+16``).

    Raises
    ------
    ValueError
        For NaN and infinities, which line protocol cannot carry (the contract refuses them upstream).
    """
    if not math.isfinite(value):
        raise ValueError(f"line protocol cannot carry the non-finite value {value!r}; the contract refuses it")
    s = str(float(value))
    return s.removesuffix(".0")


def escape_tag_value(value: str) -> str:
    """Escape a tag value; one ending in a backslash gets a space so that it cannot escape the separator."""
    out = value.translate(_ESCAPE_KEY)
    return out + " " if out.endswith("\\") else out


def series_key(measurement: str, tags: Mapping[str, str | None]) -> str:
    """``measurement,k=v,…`` with tags sorted by key; tags with an empty or missing value are left out."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if key and value:
            parts.append(f"{escape_key(key)}={escape_tag_value(value)}")
    return ",".join(parts)


def encode_fields(floats: Mapping[str, float], integers: Mapping[str, int]) -> str:
    """The field set, sorted by key: floats as :func:`format_float`, integers with the ``i`` suffix."""
    items = [(k, format_float(v)) for k, v in floats.items()]
    items += [(k, f"{int(v)}i") for k, v in integers.items()]
    items.sort()
    return ",".join(f"{escape_key(k)}={v}" for k, v in items)


def encode_point(measurement: str, tags: Mapping[str, str | None], floats: Mapping[str, float],
                 integers: Mapping[str, int], t_ms: int) -> str:
    """One line of line protocol with a timestamp in milliseconds."""
    return f"{series_key(measurement, tags)} {encode_fields(floats, integers)} {int(t_ms)}"


class RecordEncoder:
    """Encode qsec records as points of one measurement, caching series keys.

    Parameters
    ----------
    measurement : name of the measurement holding every record, ``readings`` by default
    """

    def __init__(self, measurement: str = "readings"):
        if not measurement:
            raise ValueError("the measurement name must not be empty (the default is 'readings')")
        self.measurement = measurement
        self._keys: dict[tuple[str, str, str, str | None], str] = {}
        self._layouts: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def key(self, campaign: str, device: str, sensor: str, boot: str | None) -> str:
        """The series key of a ``(campaign, device, sensor, boot)``; ``boot=None`` leaves the tag out."""
        k = (campaign, device, sensor, boot)
        cached = self._keys.get(k)
        if cached is None:
            if len(self._keys) >= _CACHE_LIMIT:
                self._keys.clear()
            cached = series_key(self.measurement,
                                {"campaign": campaign, "device": device, "sensor": sensor, "boot": boot})
            self._keys[k] = cached
        return cached

    def _layout(self, quantities: tuple[str, ...]) -> list[tuple[str, str]]:
        """``(field, escaped "field=")`` in line order for a record carrying ``quantities``, cached."""
        layout = self._layouts.get(quantities)
        if layout is None:
            if len(self._layouts) >= _CACHE_LIMIT:
                self._layouts.clear()
            clash = set(quantities) & set(_INTEGER_FIELDS)
            if clash:
                raise ValueError(f"a quantity named {sorted(clash)} would collide with the mirror's integer fields "
                                 f"{_INTEGER_FIELDS}; rename it in qsec.quantities")
            layout = [(k, f"{escape_key(k)}=") for k in sorted({*quantities, *_INTEGER_FIELDS})]
            self._layouts[quantities] = layout
        return layout

    def line(self, campaign: str, device: str, boot: str | None, record: contract.Record) -> str:
        """One record as one line: quantities as float fields, ``seq`` and ``flags`` as integer fields [t in ms].

        Equal to ``encode_point(measurement, tags, record.values, {"seq": …, "flags": …}, record.t)``.
        """
        values = record.values
        parts = []
        for name, prefix in self._layout(tuple(values)):
            if name == "seq":
                parts.append(f"{prefix}{int(record.seq)}i")
            elif name == "flags":
                parts.append(f"{prefix}{int(record.flags)}i")
            else:
                parts.append(prefix + format_float(values[name]))
        return f"{self.key(campaign, device, record.sensor, boot)} {','.join(parts)} {int(record.t)}"
