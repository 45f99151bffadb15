"""Configuration shared by every ``qsec`` command, validated once with messages that name the option."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``$QSEC_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("QSEC_DATA", "data"))


def parse_hostport(value: str, default_port: int = 1883) -> tuple[str, int]:
    """``"host:port"`` (or ``"host"``) -> ``(host, port)``, with an error that shows the expected form."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(default_port)
    if not host:
        raise ValueError(f"broker {value!r}: write HOST:PORT, e.g. 127.0.0.1:1883")
    try:
        n = int(port)
    except ValueError:
        raise ValueError(f"broker {value!r}: the port must be a number, e.g. 127.0.0.1:1883") from None
    if not 0 < n < 65536:
        raise ValueError(f"broker {value!r}: the port must be between 1 and 65535")
    return host, n
