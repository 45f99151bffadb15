"""Sensor protocols: one module per protocol, registered here by name.

Each protocol module exposes the same small surface (:class:`SensorProtocol`):

``SENSOR``
    the sensor model id written into records, e.g. ``"plantower-pms5003"``
``KIND``
    how the reader talks to it: ``"stream"`` (the sensor pushes binary frames),
    ``"polled"`` (the reader sends ``READ_COMMAND`` every interval and cuts
    the answers with ``find_frame``) or ``"line"`` (CR/LF-terminated text)
``BAUDRATE``, ``BYTESIZE``, ``PARITY``, ``STOPBITS``
    serial settings, with pyserial's values (8, ``"N"``, 1)
``INIT_COMMANDS`` (optional)
    bytes written once after each opening of the port (wake up, set the
    mode, start measuring, self-calibration off)
``WARMUP_S`` (optional)
    the warm-up time the datasheet gives after power-on or start [s]
``COMMAND_GAP_S`` (optional)
    the silence a sensor needs after each start-up command [s]: Modbus RTU
    between two requests, the SPS30 to execute a command
``REBOOT_COMMANDS`` (optional)
    bytes written again when the sensor is seen restarting while the port
    stays open (warm-up answers after good readings): the MH-Z19 switches its
    self-calibration back on when it boots
``WAKE_BYTES``, ``WAKE_GAP_S`` (optional)
    bytes written before every command, and the pause after them [s] (the
    0x00 byte some Senseair S8 units need before a request)
``decode(data) -> Observation``
    pure and total: an :class:`~firmware_bridge.sensors.base.Observation` or a
    :class:`~firmware_bridge.sensors.base.SensorError`
``find_frame(buffer) -> (frame | None, rest)``
    cut the next frame out of a byte buffer, resynchronising past garbage

A :class:`Variant` registers a module a second time: the same frames under
another model id (PMS7003), kind (SDS011 in query mode) or start-up (MH-Z19
with self-calibration on).

===============  ====================  ======  ===============  ================================
name             sensor                kind    serial           opening the port sends
===============  ====================  ======  ===============  ================================
pms5003          plantower-pms5003     stream  9600 8N1         wake up, active mode
pms7003          plantower-pms7003     stream  9600 8N1         wake up, active mode
pmsa003          plantower-pmsa003     stream  9600 8N1         wake up, active mode
pms5003-passive  plantower-pms5003     polled  9600 8N1         wake up, passive mode
pms5003t         plantower-pms5003t    stream  9600 8N1         wake up, active mode
pms5003s         plantower-pms5003s    stream  9600 8N1         wake up, active mode
pms5003st        plantower-pms5003st   stream  9600 8N1         wake up, active mode
pms3003          plantower-pms3003     stream  9600 8N1         nothing (it takes no commands)
sds011           novafitness-sds011    stream  9600 8N1         work, active reporting
sds011-query     novafitness-sds011    polled  9600 8N1         work, query reporting
sds021           novafitness-sds021    stream  9600 8N1         work, active reporting
sps30            sensirion-sps30       polled  115200 8N1       wake up, stop, start (floats)
mhz19            winsen-mhz19          polled  9600 8N1         self-calibration (ABC) off;
                                                                again after the sensor restarts
mhz19-abc        winsen-mhz19          polled  9600 8N1         self-calibration (ABC) on
senseair-s8      senseair-s8           polled  9600 8N1         nothing; a 0x00 wake-up byte
                                                                before each read
sensirion-scd30  sensirion-scd30       polled  19200 8N1        start continuous measurement
nmea             nmea-gps              line    9600 8N1         nothing
kitline          (named in each line)  line    115200 8N1       nothing
===============  ====================  ======  ===============  ================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Protocol

from firmware_bridge.sensors.base import (
    FrameError, NoFix, Observation, SensorError, Unsupported, WarmingUp,
)
from firmware_bridge.sensors.line import kitline
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.novafitness import sds011
from firmware_bridge.sensors.plantower import pms3003, pms5003, pms5003s, pms5003st, pms5003t
from firmware_bridge.sensors.senseair import s8
from firmware_bridge.sensors.sensirion import scd30, sps30
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


@dataclass
class Variant:
    """A protocol module registered under a second name, with another model id, kind or start-up."""

    SENSOR: str
    KIND: str
    BAUDRATE: int
    BYTESIZE: int
    PARITY: str
    STOPBITS: int
    decode: Callable[[bytes], Observation]
    find_frame: Callable[[bytes], tuple[bytes | None, bytes]]
    READ_COMMAND: bytes = b""
    INIT_COMMANDS: tuple[bytes, ...] = ()
    REBOOT_COMMANDS: tuple[bytes, ...] = ()
    WARMUP_S: float = 0.0
    COMMAND_GAP_S: float = 0.0
    WAKE_BYTES: bytes = b""
    WAKE_GAP_S: float = 0.0


def variant(module: ModuleType, *, sensor: str | None = None, kind: str | None = None,
            read_command: bytes | None = None, init_commands: tuple[bytes, ...] | None = None,
            reboot_commands: tuple[bytes, ...] | None = None) -> Variant:
    """Register ``module`` again; what is not given is the module's own.

    ``sensor`` needs a ``decode(frame, *, sensor=…)`` in the module; ``kind="polled"`` needs a ``read_command``.
    """
    if kind == "polled" and read_command is None and not hasattr(module, "READ_COMMAND"):
        raise ValueError(f"a polled variant of {module.__name__} needs a read command")
    return Variant(
        SENSOR=sensor or module.SENSOR, KIND=kind or module.KIND, BAUDRATE=module.BAUDRATE,
        BYTESIZE=module.BYTESIZE, PARITY=module.PARITY, STOPBITS=module.STOPBITS,
        decode=module.decode if sensor is None else functools.partial(module.decode, sensor=sensor),
        find_frame=module.find_frame,
        READ_COMMAND=getattr(module, "READ_COMMAND", b"") if read_command is None else read_command,
        INIT_COMMANDS=getattr(module, "INIT_COMMANDS", ()) if init_commands is None else init_commands,
        REBOOT_COMMANDS=getattr(module, "REBOOT_COMMANDS", ()) if reboot_commands is None else reboot_commands,
        WARMUP_S=getattr(module, "WARMUP_S", 0.0), COMMAND_GAP_S=getattr(module, "COMMAND_GAP_S", 0.0),
        WAKE_BYTES=getattr(module, "WAKE_BYTES", b""), WAKE_GAP_S=getattr(module, "WAKE_GAP_S", 0.0),
    )


PROTOCOLS: dict[str, SensorProtocol] = {
    "pms5003": pms5003,
    "pms7003": variant(pms5003, sensor="plantower-pms7003"),
    "pmsa003": variant(pms5003, sensor="plantower-pmsa003"),
    "pms5003-passive": variant(pms5003, kind="polled", read_command=pms5003.PASSIVE_READ,
                               init_commands=pms5003.PASSIVE_INIT_COMMANDS),
    "pms5003t": pms5003t,
    "pms5003s": pms5003s,
    "pms5003st": pms5003st,
    "pms3003": pms3003,
    "sds011": sds011,
    "sds011-query": variant(sds011, kind="polled", read_command=sds011.QUERY_DATA,
                            init_commands=sds011.QUERY_INIT_COMMANDS),
    "sds021": variant(sds011, sensor="novafitness-sds021"),
    "sps30": sps30,
    "mhz19": mhz19,
    # Its sensor boots with ABC on already: nothing to send again after a restart.
    "mhz19-abc": variant(mhz19, init_commands=mhz19.ABC_INIT_COMMANDS, reboot_commands=()),
    "senseair-s8": s8,
    "sensirion-scd30": scd30,
    "nmea": nmea0183,
    "kitline": kitline,
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
    "PROTOCOLS", "SensorProtocol", "Variant", "variant", "get", "serial_settings",
    "Observation", "SensorError", "FrameError", "WarmingUp", "NoFix", "Unsupported",
]
