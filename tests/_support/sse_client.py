"""Reading a Server-Sent Events stream in tests (text/event-stream, WHATWG HTML §9.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def read_event(lines: Iterator[str], name: str) -> dict[str, Any]:
    """Read SSE lines until a whole message of event type ``name``; return its JSON data."""
    kind, data = None, []
    for line in lines:
        if line == "":
            if kind == name:
                return json.loads("\n".join(data))  # type: ignore[no-any-return]
            kind, data = None, []
        elif line.startswith("event: "):
            kind = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
    raise AssertionError(f"the stream ended before an event {name!r}")
