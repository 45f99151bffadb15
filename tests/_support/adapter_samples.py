"""Sample payloads of the edge adapters, each with a comment header citing the upstream code it follows.

A sample file starts with lines beginning with ``#``: free text naming the
upstream file and function, and ``# topic: …``, ``# header: Name: value`` or
``# expect: <reason>`` lines the tests read.  The payload is the rest of the
file, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "ingest" / "samples"


@dataclass(frozen=True)
class Sample:
    """One sample: its payload and what its comment header declares."""

    name: str
    payload: bytes
    topic: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: str | None = None

    def header(self, name: str) -> str | None:
        """A declared HTTP header, by case-insensitive name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def load(name: str) -> Sample:
    """The sample file ``tests/ingest/samples/<name>``."""
    data = (SAMPLES / name).read_bytes()
    topic, expect, headers = None, None, {}
    while data.startswith(b"#"):
        line, _, data = data.partition(b"\n")
        text = line.decode("utf-8")[1:].strip()
        key, sep, value = text.partition(": ")
        if sep and key == "topic":
            topic = value.strip()
        elif sep and key == "expect":
            expect = value.strip()
        elif sep and key == "header":
            h_name, _, h_value = value.partition(": ")
            headers[h_name.strip()] = h_value.strip()
    return Sample(name, data, topic, headers, expect)


def names(prefix: str) -> list[str]:
    """The sample files whose name starts with ``prefix``, sorted."""
    return sorted(p.name for p in SAMPLES.glob(f"{prefix}*"))


def stored_dead_letters(folder: Path, result: object, columns: str = "topic, device, reason, raw") -> list[tuple]:
    """Write an adapter's result (rows and refusals) through a real store in ``folder``; its dead letters, in order."""
    from ingest.store import Store

    store = Store(folder / "qsec.duckdb")
    try:
        store.write(result.rows, result.refused)  # type: ignore[attr-defined]
        return [tuple(r) for r in store.cursor().execute(f"SELECT {columns} FROM deadletter ORDER BY id").fetchall()]
    finally:
        store.close()
