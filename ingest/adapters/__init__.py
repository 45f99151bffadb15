"""Ingest adapters: external formats converted into contract v1 records at the edge.

An adapter is a *pure* function of a payload::

    decode(payload: bytes, *, source: str, received_ms: int, **context) -> AdapterResult

``source`` names where the payload came from (an MQTT topic, an HTTP path, a
file and line); ``received_ms`` is when it arrived [ms since epoch, UTC];
``context`` carries at least ``campaign`` and, depending on the adapter,
``device``, ``not_before_ms`` (the campaign's start [ms]), ``timezone``…

Delivery rules every adapter keeps (docs/adapters.md):

- Every record it returns passes :func:`qsec.contract.check_record`: units
  are converted into the units of :mod:`qsec.quantities` here and nowhere else.
- Nothing is dropped silently: a quantity it does not know is refused with
  reason ``unknown_quantity`` (its whole record, so that a later
  reprocessing stores the record complete); only the metadata listed in
  docs/adapters.md is ignored.
- Identity: external sources have no ``(boot, seq)``, so ``boot`` is
  ``<adapter>-<sensor model>`` and ``seq`` the measurement time [ms]; the
  same payload decoded twice gives the same keys, and the store keeps it once.
- A refusal is a :class:`ingest.store.DeadLetter` whose ``topic`` is
  ``<adapter>:<campaign>:<source>`` (see :func:`dead_topic`) and whose
  ``raw`` lets :mod:`ingest.deadletter` decode it again after a fix.

The registry works like xarray's backends (``xarray/backends/plugins.py``):
adapters are found by name, built-in ones and those of other packages
(entry-point group ``qsec.adapters``, each pointing at an :class:`Adapter`);
one that fails to import is reported with a warning and the others still work.
MQTT-borne adapters declare their topic filters (:func:`mqtt_topics`) so that
the ingest worker can subscribe to them and hand each message to
:func:`decode_mqtt`.
"""

from __future__ import annotations

import importlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol

from paho.mqtt.client import topic_matches_sub

from ingest.store import DeadLetter
from qsec import contract

Row = tuple[str, str, str, contract.Record]  # (campaign, device, boot, record)


@dataclass
class AdapterResult:
    """What an adapter makes of a payload: the good records and the refused pieces.

    ``ignored`` counts, by name, what the adapter set aside on purpose because
    docs/adapters.md lists it as metadata or a computed value (a Tasmota
    ``DewPoint``, an airrohr ``signal``…): not a refusal, but never unseen.
    """

    rows: list[Row] = field(default_factory=list)
    refused: list[DeadLetter] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)

    def extend(self, other: AdapterResult) -> None:
        self.rows.extend(other.rows)
        self.refused.extend(other.refused)
        self.ignored.update(other.ignored)


class Decoder(Protocol):
    def __call__(self, payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult: ...


FileReader = Callable[..., Iterator[tuple[AdapterResult, int]]]


@dataclass(frozen=True)
class Adapter:
    """One external format.

    name : registry name, also the prefix of its dead letters' topic
    decode : the pure decoder
    description : one line for ``--help`` and docs
    topics : MQTT topic filters it reads (empty for HTTP and files)
    sniff : for file formats, tells from a file's first bytes whether it is this format
    read_file : for file formats, ``read_file(path, *, received_ms, **context)`` yielding
        ``(result, bytes_read_so_far)`` chunk by chunk, for large files
    """

    name: str
    decode: Decoder
    description: str
    topics: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None
    read_file: FileReader | None = None


_BUILTIN = {
    "senml": "ingest.adapters.senml",
    "airrohr": "ingest.adapters.airrohr",
    "tasmota": "ingest.adapters.tasmota",
    "smartcitizen": "ingest.adapters.smartcitizen",
    "sensor-community": "ingest.adapters.sensor_community_csv",
    "smartcitizen-csv": "ingest.adapters.smartcitizen_csv",
    "qsec-csv": "ingest.adapters.qsec_csv",
}
ENTRY_POINT_GROUP = "qsec.adapters"
_cache: dict[str, Adapter] | None = None


def _load() -> dict[str, Adapter]:
    found: dict[str, Adapter] = {}
    for name, module in _BUILTIN.items():
        try:
            found[name] = importlib.import_module(module).ADAPTER
        except Exception as exc:  # a broken adapter must not take the others down
            warnings.warn(f"qsec: the ingest adapter {name!r} is unavailable: {exc}", RuntimeWarning, stacklevel=3)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            adapter = ep.load()
            if not isinstance(adapter, Adapter):
                raise TypeError(f"entry point {ep.value} is a {type(adapter).__name__}, not an ingest.adapters.Adapter")
        except Exception as exc:  # a broken plugin must not take the others down
            warnings.warn(f"qsec: the ingest adapter {ep.name!r} ({ep.value}) is unavailable: {exc}",
                          RuntimeWarning, stacklevel=3)
            continue
        found.setdefault(adapter.name, adapter)
    return found


def adapters() -> dict[str, Adapter]:
    """Every adapter that could be loaded, by name (loaded once, then cached)."""
    global _cache
    if _cache is None:
        _cache = _load()
    return dict(_cache)


def get(name: str) -> Adapter:
    """The adapter called ``name``; a :class:`KeyError` names the available ones."""
    table = adapters()
    if name not in table:
        raise KeyError(f"no ingest adapter {name!r}; available: {', '.join(sorted(table)) or 'none'}")
    return table[name]


# ---------------------------------------------------------------- MQTT-borne adapters
def mqtt_topics() -> dict[str, tuple[str, ...]]:
    """Adapter name -> the MQTT topic filters it reads, for the ingest worker to subscribe to."""
    return {a.name: a.topics for a in adapters().values() if a.topics}


def adapter_for_topic(topic: str) -> Adapter | None:
    """The adapter that reads ``topic``, or ``None``."""
    for a in adapters().values():
        if any(topic_matches_sub(f, topic) for f in a.topics):
            return a
    return None


def decode_mqtt(topic: str, payload: bytes, *, received_ms: int, campaign: str, **context: Any) -> AdapterResult | None:
    """Decode an MQTT message of an external format; ``None`` when no adapter reads ``topic``.

    The ingest worker calls this for messages outside ``qsec/v1/…``, then
    writes ``rows`` and ``refused`` in the same transaction as the rest.
    """
    adapter = adapter_for_topic(topic)
    if adapter is None:
        return None
    return adapter.decode(payload, source=topic, received_ms=received_ms, campaign=campaign, **context)


# ---------------------------------------------------------------- dead-letter topics
def dead_topic(adapter: str, campaign: str, source: str) -> str:
    """The dead-letter ``topic`` of a refusal by an adapter: ``<adapter>:<campaign>:<source>``."""
    return f"{adapter}:{campaign}:{source}"


def parse_dead_topic(topic: str) -> tuple[str, str, str] | None:
    """``(adapter, campaign, source)`` of an adapter's dead-letter topic, or ``None`` for other topics."""
    adapter, sep, rest = topic.partition(":")
    campaign, sep2, source = rest.partition(":")
    if not sep or not sep2 or adapter not in adapters() or not contract.ID_PATTERN.match(campaign):
        return None
    return adapter, campaign, source


__all__ = [
    "Adapter",
    "AdapterResult",
    "Row",
    "adapter_for_topic",
    "adapters",
    "dead_topic",
    "decode_mqtt",
    "get",
    "mqtt_topics",
    "parse_dead_topic",
]
