"""On-disk framing of spool entries and the scanner that recovers them.

Every file the spool appends to (segments and ``acks.log``) is a sequence of
entries::

    +---------+-----------+-------------+----------------------+
    | magic   | length    | crc32       | payload              |
    | 4 bytes | u32 LE    | u32 LE      | `length` bytes       |
    +---------+-----------+-------------+----------------------+

``crc32`` is :func:`zlib.crc32` of the payload.  The magic names the entry
type and the format version (see :data:`RECORD`, :data:`ACK`, :data:`HEAD`).
Payloads are compact UTF-8 JSON.  ``docs/spool.md`` describes the payloads.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from qsec import contract

RECORD = b"QSR1"  # a spooled record: {"b": boot, "r": record}
ACK = b"QSA1"  # a settlement: {"b": boot, "r": [[lo, hi], ...], "n": newly settled}
HEAD = b"QSH1"  # acks.log header: {"qsec_spool_acks": 1, "settled_total": n, "created": ms}
MAGICS = (RECORD, ACK, HEAD)

HEADER = struct.Struct("<4sII")
HEADER_SIZE = HEADER.size  # 12
MAX_PAYLOAD = 16 * 2**20  # a length above this is corruption, not data

ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _fast_encoder() -> Callable[[Any], str]:
    """``ENCODER.encode`` without its per-call set-up: the C encoder built once.

    ``JSONEncoder.encode`` builds a new C encoder object on every call, which
    is half the cost of encoding a small record.  The C constructor is not a
    public API, so the shortcut is used only when it exists, takes the
    arguments expected here and gives the same bytes as ``ENCODER.encode``;
    otherwise ``ENCODER.encode`` is used.
    """
    try:
        from json import encoder as json_encoder

        c_make_encoder = getattr(json_encoder, "c_make_encoder", None)
        if c_make_encoder is None:
            raise ImportError("no C JSON encoder")
        encode_basestring = json_encoder.encode_basestring
        c_encode = c_make_encoder(None, ENCODER.default, encode_basestring, None, ":", ",", False, False, False)

        def encode(doc: Any) -> str:
            return "".join(c_encode(doc, 0))

        sample = {"seq": 1, "t": 2, "sensor": "s-é", "values": {"pm2_5": 1.5, "x": -0.0, "y": 10**20}, "flags": 3}
        if encode(sample) != ENCODER.encode(sample):
            raise ValueError("different output")
        try:
            encode({"v": float("nan")})
        except ValueError:
            return encode
        raise ValueError("NaN accepted")
    except (ImportError, TypeError, ValueError):
        return ENCODER.encode


encode_json = _fast_encoder()

# The fast path of recovery: the spool writes record payloads in this exact
# layout (Record.to_json puts "seq" first), so boot and seq are read without
# parsing the whole JSON document.  Anything else falls back to json.loads.
_RECORD_PREFIX = re.compile(rb'\{"b":"([A-Za-z0-9_-]{1,64})","r":\{"seq":(\d{1,16})[,}]')


def frame(magic: bytes, payload: bytes) -> bytes:
    """Return one framed entry: header followed by ``payload``."""
    return HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


def json_bytes(doc: Any) -> bytes:
    """Compact UTF-8 JSON of ``doc`` (NaN and infinities refused)."""
    return encode_json(doc).encode()


def boot_prefix(boot: str) -> bytes:
    """The constant start of every record payload of ``boot``: ``{"b":"<boot>","r":``."""
    return b'{"b":' + json_bytes(boot) + b',"r":'


def record_frame(prefix: bytes, record: contract.Record) -> bytes:
    """Frame ``record`` as a :data:`RECORD` entry, ``prefix`` coming from :func:`boot_prefix`."""
    payload = prefix + encode_json(record.to_json()).encode() + b"}"
    return HEADER.pack(RECORD, len(payload), zlib.crc32(payload)) + payload


def record_key(payload: bytes) -> tuple[str, int] | None:
    """``(boot, seq)`` of a record payload, or None when it is not a valid record payload."""
    m = _RECORD_PREFIX.match(payload)
    if m is not None:
        return m.group(1).decode("ascii"), int(m.group(2))
    try:
        doc = json.loads(payload)
        boot, seq = doc["b"], doc["r"]["seq"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(boot, str) or not contract.BOOT_PATTERN.match(boot) or type(seq) is not int or seq < 0:
        return None
    return boot, seq


def decode_record(payload: bytes) -> tuple[str, contract.Record]:
    """Decode a record payload into ``(boot, Record)``.

    Raises
    ------
    ValueError
        When the payload is not a record the spool wrote.
    """
    try:
        doc = json.loads(payload)
        raw = doc["r"]
        record = contract.Record(seq=raw["seq"], t=raw["t"], sensor=raw["sensor"], values=raw["values"],
                                 flags=raw.get("flags", 0))
        return doc["b"], record
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a spool record payload: {exc}") from None


def decode_json(payload: bytes) -> dict[str, Any] | None:
    """Parse a JSON object payload; None when it is not one."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def entry_at(buf: bytes | memoryview, pos: int) -> tuple[bytes, int] | None:
    """Check the entry starting at ``pos``: ``(magic, end)`` when it is whole and its CRC matches."""
    if pos + HEADER_SIZE > len(buf):
        return None
    magic, length, crc = HEADER.unpack_from(buf, pos)
    if magic not in MAGICS or length > MAX_PAYLOAD:
        return None
    end = pos + HEADER_SIZE + length
    if end > len(buf) or zlib.crc32(buf[pos + HEADER_SIZE:end]) != crc:
        return None
    return magic, end


@dataclass(frozen=True)
class Entry:
    """One good entry found by :func:`scan`: ``buf[start:end]`` with payload at ``start + 12``."""

    magic: bytes
    start: int
    end: int


@dataclass(frozen=True)
class Bad:
    """Bytes ``buf[start:end]`` that hold no good entry (torn or corrupt)."""

    start: int
    end: int


def _resync(buf: bytes, pos: int) -> int:
    """First position after ``pos`` where a good entry starts, or ``len(buf)``."""
    best = len(buf)
    candidates = []
    for magic in MAGICS:
        found = buf.find(magic, pos + 1)
        if found != -1:
            candidates.append((found, magic))
    while candidates:
        candidates.sort()
        found, magic = candidates[0]
        if found >= best:
            break
        if entry_at(buf, found) is not None:
            return found
        nxt = buf.find(magic, found + 1)
        if nxt == -1:
            candidates.pop(0)
        else:
            candidates[0] = (nxt, magic)
    return best


def scan(buf: bytes, known_bad: dict[int, int] | None = None) -> Iterator[Entry | Bad]:
    """Walk the entries of a file's contents, yielding good entries and bad regions in order.

    A bad region runs from the first byte that does not start a good entry
    to the next byte that does (found by looking for a magic whose entry
    passes its length and CRC checks), or to the end of ``buf``.  Regions
    listed in ``known_bad`` (start -> end, found and counted earlier) are
    stepped over silently.
    """
    pos, size = 0, len(buf)
    known = known_bad or {}
    while pos < size:
        if pos in known and known[pos] > pos:
            pos = min(known[pos], size)
            continue
        found = entry_at(buf, pos)
        if found is not None:
            yield Entry(found[0], pos, found[1])
            pos = found[1]
            continue
        end = _resync(buf, pos)
        yield Bad(pos, end)
        pos = end
