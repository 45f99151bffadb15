"""Wire contract v1: MQTT topics and JSON payloads between bridges and ingest.

Pure standard library: the bridge (a Raspberry Pi with pyserial and
paho-mqtt only) and ingest both import it.  ``docs/contract.md`` explains it
with examples and ``qsec/schema/readings-v1.json`` is its JSON Schema.

Topics (``<campaign>`` and ``<device>`` match :data:`ID_PATTERN`)::

    qsec/v1/<campaign>/<device>/readings   bridge -> ingest, QoS 1, a Batch
    qsec/v1/<campaign>/<device>/status     bridge, retained, with a last-will "offline"
    qsec/v1/<campaign>/<device>/ingest     ingest -> bridge, QoS 1, a Feedback

Identity: ``(device, boot, seq)`` names a record for ever and is the
deduplication key.  ``device`` comes from the topic (and, with access
control on, the connection's user name), never from the payload alone.
``boot`` is new each time a bridge starts; ``seq`` starts at 0 for each boot
and never goes backwards within it.

Times are integers, milliseconds since the Unix epoch, UTC (like SenML's
``t``, RFC 8428 section 4.5.3, but in ms).

Delivery: a bridge keeps a record in its spool until a Feedback message names
its ``seq`` in ``settled`` (committed to the store, or set aside in the
dead-letter table with its reason).  MQTT's PUBACK only ends the in-flight
state.  See DESIGN.md "Delivery semantics".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from qsec import quantities

VERSION = 1
TOPIC_ROOT = "qsec/v1"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
BOOT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SENSOR_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Limits:
    """Limits every message must respect; a breach is refused with a named reason."""

    max_payload_bytes: int = 256 * 1024
    max_records: int = 1000
    max_values: int = 64  # values in one record
    future_skew_ms: int = 120_000  # a measurement time later than now + this is refused
    max_seq: int = 2**53 - 1  # exact in a JSON number / float64


LIMITS = Limits()

# Bridge-side record flags (bit-field, ``Record.flags``), bits 0-7: what the bridge saw.
# Analysis adds its QC bits from bit 8 up in derived layers (``analysis.qc``).
FLAG_CLOCK_JUMP = 1 << 0  # the system clock stepped (NTP on a Pi without RTC) since the last record
FLAG_WARMING_UP = 1 << 1  # the sensor is in its warm-up period
FLAG_TIME_FROM_GPS = 1 << 2  # timestamp disciplined by GPS time
FLAG_TIME_UNSYNCED = 1 << 3  # no NTP or GPS time yet: the clock may be wrong
FLAG_REPLAYED = 1 << 4  # record came from a capture replay, not a live sensor
BRIDGE_FLAGS = {
    FLAG_CLOCK_JUMP: "clock_jump",
    FLAG_WARMING_UP: "warming_up",
    FLAG_TIME_FROM_GPS: "time_from_gps",
    FLAG_TIME_UNSYNCED: "time_unsynced",
    FLAG_REPLAYED: "replayed",
}


class ContractError(ValueError):
    """A message or record breaks the contract.  ``reason`` is a stable code."""

    reason = "contract"

    def __init__(self, message: str, *, seq: int | None = None):
        super().__init__(message)
        self.seq = seq


def _error(reason: str) -> type[ContractError]:
    return type(f"{reason.title().replace('_', '')}Error", (ContractError,), {"reason": reason})


BadTopic = _error("bad_topic")
PayloadTooLarge = _error("payload_too_large")
BadJson = _error("bad_json")
WrongVersion = _error("wrong_version")
BadSchema = _error("bad_schema")
TooManyRecords = _error("too_many_records")
DeviceMismatch = _error("device_mismatch")
UnknownQuantity = _error("unknown_quantity")
OutOfRange = _error("out_of_range")
BadTime = _error("bad_time")
FutureTime = _error("future_time")
BeforeCampaign = _error("before_campaign")

REASONS = tuple(
    c.reason
    for c in (
        BadTopic, PayloadTooLarge, BadJson, WrongVersion, BadSchema, TooManyRecords, DeviceMismatch,
        UnknownQuantity, OutOfRange, BadTime, FutureTime, BeforeCampaign,
    )
)


# ---------------------------------------------------------------- topics
@dataclass(frozen=True)
class Topic:
    campaign: str
    device: str
    kind: str  # readings | status | ingest

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.campaign}/{self.device}/{self.kind}"


TOPIC_KINDS = ("readings", "status", "ingest")


def topic(campaign: str, device: str, kind: str = "readings") -> str:
    """Build a v1 topic, refusing identifiers that break :data:`ID_PATTERN`."""
    for what, value in (("campaign", campaign), ("device", device)):
        if not ID_PATTERN.match(value):
            raise BadTopic(f"{what} id {value!r} must match {ID_PATTERN.pattern} (lower-case letters, digits, _ and -)")
    if kind not in TOPIC_KINDS:
        raise BadTopic(f"topic kind {kind!r} must be one of {', '.join(TOPIC_KINDS)}")
    return str(Topic(campaign, device, kind))


def parse_topic(name: str) -> Topic:
    """Split ``qsec/v1/<campaign>/<device>/<kind>``; raise :class:`BadTopic` otherwise."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise BadTopic(f"topic {name!r} is not {TOPIC_ROOT}/<campaign>/<device>/<kind>")
    _, _, campaign, device, kind = parts
    if not ID_PATTERN.match(campaign) or not ID_PATTERN.match(device) or kind not in TOPIC_KINDS:
        raise BadTopic(f"topic {name!r} has an invalid campaign, device or kind")
    return Topic(campaign, device, kind)


def subscription(campaign: str = "+", device: str = "+", kind: str = "readings", share_group: str | None = None) -> str:
    """Topic filter for subscribers, as an MQTT 5 shared subscription when ``share_group`` is set."""
    filt = f"{TOPIC_ROOT}/{campaign}/{device}/{kind}"
    return f"$share/{share_group}/{filt}" if share_group else filt


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class Record:
    """One measurement: one sensor, one time, one or more quantities.

    seq : per-(device, boot) sequence number, from 0, never backwards
    t : measurement time [ms since epoch, UTC]
    sensor : sensor model that produced it, e.g. ``plantower-pms5003``
    values : canonical quantity name -> value in the quantity's unit
    flags : bridge flags (``FLAG_*``)
    """

    seq: int
    t: int
    sensor: str
    values: Mapping[str, float]
    flags: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "t": self.t, "sensor": self.sensor, "values": dict(self.values)}
        if self.flags:
            out["flags"] = self.flags
        return out


@dataclass(frozen=True)
class Batch:
    """One readings message: a device's records from one boot."""

    device: str
    boot: str
    records: tuple[Record, ...]
    sent: int | None = None  # bridge clock when sent [ms]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "device": self.device, "boot": self.boot,
                               "records": [r.to_json() for r in self.records]}
        if self.sent is not None:
            out["sent"] = self.sent
        return out


def encode_batch(batch: Batch, limits: Limits = LIMITS) -> bytes:
    """Serialise a batch to UTF-8 JSON, checking the size limits."""
    if len(batch.records) > limits.max_records:
        raise TooManyRecords(f"{len(batch.records)} records in one message; the limit is {limits.max_records}")
    data = json.dumps(batch.to_json(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > limits.max_payload_bytes:
        raise PayloadTooLarge(f"payload of {len(data)} bytes; the limit is {limits.max_payload_bytes}")
    return data


@dataclass
class Decoded:
    """What :func:`decode_batch` makes of a message: the good records and the refused ones."""

    device: str
    boot: str
    records: list[Record] = field(default_factory=list)
    refused: list[tuple[Any, ContractError]] = field(default_factory=list)  # (raw record, error)
    sent: int | None = None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def check_record(raw: Any, *, now_ms: int | None = None, not_before_ms: int | None = None,
                 limits: Limits = LIMITS) -> Record:
    """Validate one raw record (a parsed JSON object) and return a :class:`Record`.

    Raises the specific :class:`ContractError` subclass for the first problem
    found; ``error.seq`` carries the record's seq when it could be read.
    """
    if not isinstance(raw, dict):
        raise BadSchema("a record must be a JSON object")
    seq = raw.get("seq")
    if not _is_int(seq) or not 0 <= seq <= limits.max_seq:
        raise BadSchema(f"record seq {seq!r} must be an integer from 0 to {limits.max_seq}")
    extra = set(raw) - {"seq", "t", "sensor", "values", "flags"}
    if extra:
        raise BadSchema(f"record has unknown fields {sorted(extra)}", seq=seq)
    t = raw.get("t")
    if not _is_int(t) or t < 0:
        raise BadTime(f"record time t={t!r} must be integer milliseconds since 1970-01-01 UTC", seq=seq)
    if now_ms is not None and t > now_ms + limits.future_skew_ms:
        raise FutureTime(f"record time is {(t - now_ms) / 1000:.0f} s in the future (skew allowed: "
                         f"{limits.future_skew_ms / 1000:.0f} s); check the device clock", seq=seq)
    if not_before_ms is not None and t < not_before_ms:
        raise BeforeCampaign(f"record time {t} is before the campaign starts ({not_before_ms})", seq=seq)
    sensor = raw.get("sensor")
    if not isinstance(sensor, str) or not SENSOR_PATTERN.match(sensor):
        raise BadSchema(f"record sensor {sensor!r} must match {SENSOR_PATTERN.pattern}", seq=seq)
    flags = raw.get("flags", 0)
    if not _is_int(flags) or not 0 <= flags < 2**16:
        raise BadSchema(f"record flags {flags!r} must be an integer from 0 to 65535", seq=seq)
    values = raw.get("values")
    if not isinstance(values, dict) or not values:
        raise BadSchema("record values must be a non-empty object of quantity -> number", seq=seq)
    if len(values) > limits.max_values:
        raise BadSchema(f"{len(values)} values in one record; the limit is {limits.max_values}", seq=seq)
    for name, value in values.items():
        q = quantities.QUANTITIES.get(name)
        if q is None:
            raise UnknownQuantity(f"unknown quantity {name!r} (see docs/contract.md for the table)", seq=seq)
        if not _is_number(value):
            raise BadSchema(f"{name} value {value!r} must be a finite number", seq=seq)
        if not q.minimum <= value <= q.maximum:
            raise OutOfRange(f"{name}={value} {q.unit} is outside {q.minimum}..{q.maximum} {q.unit}", seq=seq)
    return Record(seq=seq, t=t, sensor=sensor, values=values, flags=flags)


def parse_payload(payload: bytes, limits: Limits = LIMITS) -> dict[str, Any]:
    """Parse and check the envelope of a readings message (not its records)."""
    if len(payload) > limits.max_payload_bytes:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes; the limit is {limits.max_payload_bytes}")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadJson(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadSchema("payload must be a JSON object")
    if doc.get("v") != VERSION:
        raise WrongVersion(f"payload version v={doc.get('v')!r}; this ingest speaks v={VERSION}")
    boot = doc.get("boot")
    if not isinstance(boot, str) or not BOOT_PATTERN.match(boot):
        raise BadSchema(f"boot {boot!r} must match {BOOT_PATTERN.pattern}")
    records = doc.get("records")
    if not isinstance(records, list):
        raise BadSchema("records must be a list")
    if len(records) > limits.max_records:
        raise TooManyRecords(f"{len(records)} records in one message; the limit is {limits.max_records}")
    return doc


def decode_batch(payload: bytes, *, device: str, now_ms: int | None = None, not_before_ms: int | None = None,
                 limits: Limits = LIMITS) -> Decoded:
    """Decode a readings message published under ``device``'s topic.

    Envelope problems (size, JSON, version, boot, device mismatch) raise a
    :class:`ContractError`: the whole message is refused.  Record problems are
    collected in ``Decoded.refused``: the rest of the batch is kept.
    """
    doc = parse_payload(payload, limits)
    claimed = doc.get("device")
    if claimed is not None and claimed != device:
        raise DeviceMismatch(f"payload says device {claimed!r} but was published as {device!r}")
    sent = doc.get("sent")
    out = Decoded(device=device, boot=doc["boot"], sent=sent if _is_int(sent) else None)
    for raw in doc["records"]:
        try:
            out.records.append(check_record(raw, now_ms=now_ms, not_before_ms=not_before_ms, limits=limits))
        except ContractError as exc:
            out.refused.append((raw, exc))
    return out


# ---------------------------------------------------------------- feedback (ingest -> bridge)
def ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Compress sequence numbers into sorted inclusive ``[lo, hi]`` ranges."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def expand(rngs: Iterable[Iterable[int]]) -> set[int]:
    """Inverse of :func:`ranges`."""
    out: set[int] = set()
    for lo, hi in rngs:
        out.update(range(lo, hi + 1))
    return out


@dataclass
class Feedback:
    """Ingest's answer to one readings message, published on ``…/<device>/ingest``.

    settled : boot -> inclusive seq ranges now safe (stored, already stored, or
              dead-lettered with a reason); the bridge releases them from its spool
    highest : boot -> highest seq committed so far for that boot
    accepted, duplicates : counts in this message
    refused : [{"seq": n or None, "reason": code, "detail": text}]
    """

    device: str
    settled: dict[str, list[list[int]]]
    highest: dict[str, int]
    accepted: int = 0
    duplicates: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    t: int | None = None

    def encode(self) -> bytes:
        doc = {"v": VERSION, "device": self.device, "settled": self.settled, "highest": self.highest,
               "accepted": self.accepted, "duplicates": self.duplicates, "refused": self.refused, "t": self.t}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> "Feedback":
        try:
            doc = json.loads(payload)
        except ValueError as exc:
            raise BadJson(f"feedback is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise WrongVersion("feedback is not a v1 object")
        try:
            return cls(device=doc["device"], settled={str(k): [list(map(int, r)) for r in v] for k, v in doc["settled"].items()},
                       highest={str(k): int(v) for k, v in doc.get("highest", {}).items()},
                       accepted=int(doc.get("accepted", 0)), duplicates=int(doc.get("duplicates", 0)),
                       refused=list(doc.get("refused", [])), t=doc.get("t"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadSchema(f"feedback is malformed: {exc}") from None
