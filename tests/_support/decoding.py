"""Checks shared by the sensor protocol tests: a table case decodes to its values, or raises its exception."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from firmware_bridge.sensors.base import Observation


def check_decode(decode: Callable[[bytes], Observation], data: bytes,
                 expected: Mapping[str, float] | type[Exception], *, sensor: str,
                 approx: Mapping[str, Any] | None = None) -> None:
    """Assert what ``decode(data)`` gives for one case of a decoder's table.

    Parameters
    ----------
    decode : the protocol module's pure decoder
    data : the frame, answer or line of the case
    expected : the values [the quantities' units] of the observation, or the exception class it raises
    sensor : the model id the observation must carry
    approx : None to compare the values exactly; else the tolerances of :func:`pytest.approx`
        (``{}`` for its defaults, ``{"abs": 0.001}``)

    A measurement is neither warming up nor stamped by the device: binary
    sensors state no time.
    """
    if not isinstance(expected, Mapping):
        with pytest.raises(expected):
            decode(data)
        return
    obs = decode(data)
    assert obs.sensor == sensor
    assert set(obs.values) == set(expected)
    assert obs.values == (dict(expected) if approx is None else pytest.approx(dict(expected), **approx))
    assert obs.time is None and not obs.warming_up


def frames_in_pieces(find_frame: Callable[[bytes], tuple[bytes | None, bytes]], data: bytes, chunk: int) -> list[bytes]:
    """Feed ``data`` to a protocol's ``find_frame`` ``chunk`` bytes at a time, as the reader does; the frames cut."""
    frames: list[bytes] = []
    buf = b""
    for i in range(0, len(data), chunk):
        buf += data[i:i + chunk]
        while (cut := find_frame(buf))[0] is not None:
            frames.append(cut[0])
            buf = cut[1]
    return frames
