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

What line protocol allows, and what the encoder does with it
------------------------------------------------------------
- Escaping: measurement ``,`` and space; tag keys, tag values and field keys
  ``,`` ``=`` and space.  A newline cannot be carried in a name or value; like
  ``Point``, the encoder writes ``\\n`` (and ``\\t``, ``\\r``) as two characters,
  so a line never breaks.  Tag values follow the contract's id patterns, so
  in practice none of this is needed; a tag with an empty value is left out
  (line protocol forbids empty tag values).  No string fields are written, so
  the string escapes (``"`` and ``\\``) never apply.
- Floats: IEEE-754 doubles, written by ``repr`` (shortest round-trip form,
  scientific notation such as ``1e+16`` included, which the parser accepts).
  NaN and infinities have no line-protocol form: :func:`format_float` refuses
  them with :class:`ValueError`, and the mirror dead-letters such a record
  (``mirror_unencodable``) instead of queueing it.
- Integers: signed 64-bit with the ``i`` suffix (``seq``, ``flags``); values
  outside int64 are refused.  The unsigned ``u`` form is not used: InfluxDB
  1.x refuses it.  Booleans are not used.
- Timestamps: milliseconds, sent with ``precision=ms``.  InfluxDB stores
  nanoseconds in an int64 and refuses times outside
  [``MinNanoTime``, ``MaxNanoTime``] = [``-2**63 + 2``, ``2**63 - 2``] ns,
  i.e. [:data:`MIN_TIME_MS`, :data:`MAX_TIME_MS`] (1677-09-21 to 2262-04-11);
  :func:`check_time_ms` refuses the others before they are queued.
- Names: a line starting with ``#`` is a comment (the server skips it with a
  204), and names starting with ``_`` are reserved: :func:`check_measurement`
  refuses both for the measurement.
- Duplicate points (same measurement, tag set and timestamp): the server keeps
  the union of the field sets, the newer value winning, so a point written
  twice is one point.

Sources
-------
- InfluxDB v2 "Line protocol" reference (sections Data types and format,
  Special characters, Comments, Naming restrictions, Duplicate points):
  https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
- influxdata/influxdb ``models/time.go`` (``MinNanoTime``, ``MaxNanoTime``,
  ``ErrTimeOutOfRange``) and ``models/points.go`` (``scanNumber``: exponents,
  ``i``/``u`` suffixes).
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
MAX_TIME_MS = (2**63 - 2) // 1_000_000  # InfluxDB's MaxNanoTime / 1e6 [ms]: 2262-04-11T23:47:16.854Z
MIN_TIME_MS = -MAX_TIME_MS  # MinNanoTime = -(2**63 - 2) ns, truncated towards zero as Go divides [ms]
_INT64 = (-(2**63), 2**63 - 1)


def check_measurement(name: str) -> str:
    """Return ``name`` if it can be a measurement name, else raise :class:`ValueError` saying why."""
    if not name:
        raise ValueError("the measurement name must not be empty (the default is 'readings')")
    if name.startswith("#"):
        raise ValueError(f"the measurement name {name!r} must not start with '#': such a line is a comment, "
                         "which the server skips without an error")
    if name.startswith("_"):
        raise ValueError(f"the measurement name {name!r} must not start with '_': InfluxDB reserves those names")
    return name


def check_time_ms(t_ms: int) -> int:
    """Return ``t_ms`` [ms since epoch] if InfluxDB can store it, else raise :class:`ValueError` saying why."""
    if not MIN_TIME_MS <= t_ms <= MAX_TIME_MS:
        raise ValueError(f"timestamp {t_ms} ms is outside the range InfluxDB can store, [{MIN_TIME_MS}, "
                         f"{MAX_TIME_MS}] ms (1677-09-21 to 2262-04-11 UTC)")
    return t_ms


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
        raise ValueError(f"line protocol cannot carry the non-finite value {value!r}")
    s = str(float(value))
    return s.removesuffix(".0")


def format_int(value: int) -> str:
    """A signed 64-bit integer field value, ``42i``.

    Raises
    ------
    ValueError
        Outside the int64 range, which line protocol cannot carry.
    """
    v = int(value)
    if not _INT64[0] <= v <= _INT64[1]:
        raise ValueError(f"line protocol integers are signed 64-bit; {v} is out of range")
    return f"{v}i"


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
    """The field set, sorted by key: floats as :func:`format_float`, integers as :func:`format_int`."""
    items = [(k, format_float(v)) for k, v in floats.items()]
    items += [(k, format_int(v)) for k, v in integers.items()]
    items.sort()
    return ",".join(f"{escape_key(k)}={v}" for k, v in items)


def encode_point(measurement: str, tags: Mapping[str, str | None], floats: Mapping[str, float],
                 integers: Mapping[str, int], t_ms: int) -> str:
    """One line of line protocol with a timestamp in milliseconds (checked by :func:`check_time_ms`)."""
    return f"{series_key(measurement, tags)} {encode_fields(floats, integers)} {check_time_ms(int(t_ms))}"


class RecordEncoder:
    """Encode qsec records as points of one measurement, caching series keys.

    Parameters
    ----------
    measurement : name of the measurement holding every record, ``readings`` by default
        (checked by :func:`check_measurement`)
    """

    def __init__(self, measurement: str = "readings"):
        self.measurement = check_measurement(measurement)
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

        Raises
        ------
        ValueError
            A value line protocol cannot carry (NaN, an infinity, an integer beyond int64) or a
            timestamp InfluxDB cannot store; the message says which.
        """
        values = record.values
        parts = []
        for name, prefix in self._layout(tuple(values)):
            if name == "seq":
                parts.append(prefix + format_int(record.seq))
            elif name == "flags":
                parts.append(prefix + format_int(record.flags))
            else:
                try:
                    parts.append(prefix + format_float(values[name]))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        t = check_time_ms(int(record.t))
        return f"{self.key(campaign, device, record.sensor, boot)} {','.join(parts)} {t}"
