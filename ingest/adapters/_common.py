"""What every adapter shares: device ids from the transport, the identity rule, refusals.

Identity rule (docs/adapters.md): ``boot = "<adapter>-<sensor model>"`` and
``seq = t`` (the measurement time [ms]), so that decoding the same payload
twice yields the same ``(device, boot, seq)`` keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.adapters import AdapterResult, dead_topic
from ingest.store import DeadLetter
from qsec import contract

_NOT_ID = re.compile(r"[^a-z0-9_-]+")


def normalise_device(value: str) -> str:
    """A transport's device name as a qsec device id (``^[a-z0-9][a-z0-9_-]{0,63}$``).

    Lower-cased; every run of other characters becomes ``-``; leading ``-``
    and ``_`` are stripped; cut at 64 characters.  ``"esp8266-1234567"``
    stays as it is, ``"Tasmota_AB12CD"`` becomes ``"tasmota_ab12cd"``.

    Raises
    ------
    contract.BadTopic
        When nothing usable is left (an empty or all-punctuation name).
    """
    dev = _NOT_ID.sub("-", value.strip().lower()).lstrip("-_")[:64].rstrip("-")
    if not dev or not contract.ID_PATTERN.match(dev):
        raise contract.BadTopic(f"device name {value!r} gives no usable device id (letters or digits needed)")
    return dev


def slug(value: str) -> str:
    """A sensor or model name as the lower-case tail of a boot id or sensor name."""
    return re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-_") or "unknown"


def campaign_of(context: Mapping[str, Any]) -> str:
    """The ``campaign`` context value, checked."""
    campaign = context.get("campaign")
    if not isinstance(campaign, str) or not contract.ID_PATTERN.match(campaign):
        raise ValueError(f"an adapter needs campaign=<id matching {contract.ID_PATTERN.pattern}>, got {campaign!r}")
    return campaign


def zone(name: str) -> ZoneInfo:
    """An IANA time zone, with an error that says what is expected."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris or UTC") from None


def iso_to_ms(text: str, default_zone: ZoneInfo | timezone = UTC) -> int:
    """An ISO 8601 date-time as ms since epoch; a time without offset is read in ``default_zone``.

    Raises
    ------
    contract.BadTime
        When ``text`` is not an ISO 8601 date-time.
    """
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except (ValueError, AttributeError):
        raise contract.BadTime(f"time {text!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_zone)
    return round(dt.timestamp() * 1000)


def fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


class Collector:
    """Builds an :class:`AdapterResult` for one payload, checking each record with the contract.

    ``raw`` is what a dead letter keeps (the whole payload for a message,
    the header and the line for a CSV row).
    """

    def __init__(self, adapter: str, source: str, received_ms: int, context: Mapping[str, Any], raw: str):
        self.adapter = adapter
        self.campaign = campaign_of(context)
        self.topic = dead_topic(adapter, self.campaign, source)
        self.received_ms = received_ms
        self.not_before_ms: int | None = context.get("not_before_ms")
        self.limits: contract.Limits = context.get("limits", contract.LIMITS)
        self.raw = raw
        self.result = AdapterResult()

    def refuse(self, reason: str, detail: str, *, device: str | None = None, boot: str | None = None,
               seq: int | None = None) -> None:
        self.result.refused.append(DeadLetter(self.topic, reason, detail, self.raw, device, boot, seq))

    def ignore(self, name: str, count: int = 1) -> None:
        """Count ``name`` as set aside on purpose (metadata or a computed value, see docs/adapters.md)."""
        self.result.ignored[name] += count

    def refuse_error(self, exc: contract.ContractError, *, device: str | None = None, boot: str | None = None,
                     seq: int | None = None) -> None:
        self.refuse(exc.reason, str(exc), device=device, boot=boot, seq=seq)

    def boot(self, model: str) -> str:
        """``<adapter>-<model>``, or ``<adapter>`` alone when the format names no model."""
        return f"{self.adapter}-{slug(model)}"[:64] if model else self.adapter

    def record(self, device: str, model: str, t_ms: int, sensor: str, values: Mapping[str, float]) -> None:
        """Check and keep one record of ``model`` at ``t_ms``, or refuse it with the contract's reason."""
        boot = self.boot(model)
        raw = {"seq": t_ms, "t": t_ms, "sensor": sensor, "values": dict(values)}
        try:
            rec = contract.check_record(raw, now_ms=self.received_ms, not_before_ms=self.not_before_ms,
                                        limits=self.limits)
        except contract.ContractError as exc:
            self.refuse_error(exc, device=device, boot=boot, seq=t_ms if isinstance(t_ms, int) and t_ms >= 0 else None)
            return
        self.result.rows.append((self.campaign, device, boot, rec))

    def refuse_record(self, device: str, model: str, t_ms: int, reason: str, detail: str) -> None:
        self.refuse(reason, detail, device=device, boot=self.boot(model), seq=t_ms)


def load_json(payload: bytes, limits: contract.Limits = contract.LIMITS) -> Any:
    """Parse a JSON payload within the contract's size limit.

    Raises
    ------
    contract.PayloadTooLarge, contract.BadJson
    """
    if len(payload) > limits.max_payload_bytes:
        raise contract.PayloadTooLarge(f"payload of {len(payload)} bytes; the limit is {limits.max_payload_bytes}")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise contract.BadJson(f"payload is not UTF-8 JSON: {exc}") from None


def number(value: Any) -> float | None:
    """A JSON number, or a number written as a string (airrohr sends ``"12.30"``); ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def text_of(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")
