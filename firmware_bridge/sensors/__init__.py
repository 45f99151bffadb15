"""Sensor protocols: one module per protocol, registered here by name.

Each protocol module exposes the same small surface (:class:`SensorProtocol`):

``SENSOR``
    the sensor model id written into records, e.g. ``"plantower-pms5003"``
``KIND``
    how the reader talks to it: ``"stream"`` (the sensor pushes binary frames),
    ``"polled"`` (the reader sends ``READ_COMMAND`` and reads ``RESPONSE_SIZE``
    bytes) or ``"line"`` (CR/LF-terminated text sentences)
``BAUDRATE``, ``BYTESIZE``, ``PARITY``, ``STOPBITS``
    serial settings, with pyserial's values (8, ``"N"``, 1)
``decode(data) -> Observation``
    pure and total: an :class:`~firmware_bridge.sensors.base.Observation` or a
    :class:`~firmware_bridge.sensors.base.SensorError`
``find_frame(buffer) -> (frame | None, rest)``
    cut the next frame out of a byte buffer, resynchronising past garbage

==========  ====================  ========  ======================
name        sensor                kind      serial
==========  ====================  ========  ======================
pms5003     plantower-pms5003     stream    9600 8N1
mhz19       winsen-mhz19          polled    9600 8N1
nmea        nmea-gps              line      9600 8N1 (default)
==========  ====================  ========  ======================
"""

from __future__ import annotations

from typing import Any, Protocol

from firmware_bridge.sensors.base import (
    FrameError, NoFix, Observation, SensorError, Unsupported, WarmingUp,
)
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.winsen import mhz19


class SensorProtocol(Protocol):
    """What the bridge's reader needs from a protocol module."""

    SENSOR: str
    KIND: str
    BAUDRATE: int
    BYTESIZE: int
    PARITY: str
    STOPBITS: int

    def decode(self, data: bytes, /) -> Observation: ...

    def find_frame(self, buffer: bytes, /) -> tuple[bytes | None, bytes]: ...


PROTOCOLS: dict[str, SensorProtocol] = {
    "pms5003": pms5003,
    "mhz19": mhz19,
    "nmea": nmea0183,
}


def get(name: str) -> SensorProtocol:
    """The protocol registered as ``name``; :class:`Unsupported` names the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise Unsupported(f"unknown sensor protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None


def serial_settings(name: str) -> dict[str, Any]:
    """Keyword arguments for ``serial.Serial`` for the protocol ``name``."""
    proto = get(name)
    return {"baudrate": proto.BAUDRATE, "bytesize": proto.BYTESIZE, "parity": proto.PARITY,
            "stopbits": proto.STOPBITS}


__all__ = [
    "PROTOCOLS", "SensorProtocol", "get", "serial_settings",
    "Observation", "SensorError", "FrameError", "WarmingUp", "NoFix", "Unsupported",
]
