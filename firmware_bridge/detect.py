"""Which sensor answers on which serial port: ``qsec bridge detect``.

Each port is opened at each distinct serial setting of the known protocols
(9600, 19200 and 115200 baud 8N1 today), listened to for ``listen_s`` seconds — pushed
frames (PMS5003 in active mode) and sentences (NMEA) arrive on their own —
while the read command of every *polled* protocol (MH-Z19, SDS011 in query
mode, …) is written once a second.  The bytes heard are then cut into frames by each protocol's own
``find_frame`` and ``decode``: a protocol that recognises complete,
checksum-valid frames (observations, warm-up frames, "no fix" sentences,
and binary acknowledgements; not text lines a decoder does not use) answers
on that port.  Variants of one protocol
(``pms5003``, ``pms7003``, ``pms5003-passive``) recognise the same frames and
tie: all are reported, the base protocol first.  Ports are probed in parallel.

A read command sent to a device that is another sensor is normally ignored
(each sensor looks for its own start bytes), but it does write to the port:
do not probe ports wired to other equipment.

Source of the default ports: the Linux kernel's naming of USB serial
(``ttyUSB``), CDC-ACM (``ttyACM``) and Raspberry Pi PL011 (``ttyAMA``) ports,
and udev's ``/dev/serial/by-id`` links
(https://www.kernel.org/doc/html/latest/admin-guide/devices.html).
"""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import serial

from firmware_bridge.reader import Opener, serial_opener
from firmware_bridge.sensors import PROTOCOLS, serial_settings
from firmware_bridge.sensors.base import NoFix, SensorError, Unsupported, WarmingUp

DEFAULT_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*", "/dev/serial/by-id/*")


@dataclass
class Detection:
    """What was heard on one port: recognised frames per protocol, and the best match."""

    port: str
    frames: dict[str, int] = field(default_factory=dict)
    bytes_heard: int = 0
    error: str | None = None

    @property
    def candidates(self) -> list[str]:
        """Protocols tied for the most recognised frames (variants share frames: pms5003 and pms7003), best first."""
        best = max(self.frames.values(), default=0)
        return [p for p, n in self.frames.items() if n == best] if best > 0 else []

    @property
    def protocol(self) -> str | None:
        """The first protocol (in registry order) with the most recognised frames, or None."""
        return next(iter(self.candidates), None)


def default_ports(patterns: Iterable[str] = DEFAULT_PATTERNS) -> list[str]:
    """Serial ports present on this machine, by the usual Linux names."""
    return sorted({p for pattern in patterns for p in glob.glob(pattern)})


def count_frames(protocol: str, data: bytes) -> int:
    """Complete, checksum-valid frames of ``protocol`` in ``data`` (pure)."""
    proto = PROTOCOLS[protocol]
    # A checksum-valid binary frame the decoder does not use (a command acknowledgement) is this protocol's;
    # an unused text line is not evidence (a kit-line reader calls every NMEA sentence "not a kit line").
    unused_counts = getattr(proto, "KIND", "stream") != "line"
    n = 0
    buf = data
    while True:
        frame, buf = proto.find_frame(buf)
        if frame is None:
            return n
        try:
            proto.decode(frame)
        except (WarmingUp, NoFix):
            n += 1  # a valid frame saying "not ready yet"
        except Unsupported:
            n += unused_counts
        except SensorError:
            continue
        else:
            n += 1


def identify(data: bytes, protocols: Iterable[str] = PROTOCOLS) -> dict[str, int]:
    """Recognised frames per protocol in bytes heard on one port (pure)."""
    return {p: count_frames(p, data) for p in protocols}


def _setting_key(settings: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(settings.items()))


def probe(port: str, *, listen_s: float = 3.0, opener: Opener = serial_opener,
          clock: Callable[[], float] = time.monotonic) -> Detection:
    """Listen on ``port`` at each protocol's settings, polling the polled ones; see the module docstring."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name in PROTOCOLS:
        groups.setdefault(_setting_key(serial_settings(name)), []).append(name)
    out = Detection(port)
    for names in groups.values():
        polls = list(dict.fromkeys(PROTOCOLS[n].READ_COMMAND for n in names  # type: ignore[attr-defined]
                                   if getattr(PROTOCOLS[n], "KIND", "") == "polled"))
        try:
            ser = opener(port, {**serial_settings(names[0]), "timeout": 0.1})
        except (serial.SerialException, OSError) as exc:
            out.error = f"cannot open: {exc}"
            return out
        data = bytearray()
        try:
            end = clock() + listen_s
            next_poll = clock()
            while clock() < end:
                if polls and clock() >= next_poll:
                    for command in polls:
                        ser.write(command)
                    next_poll += 1.0
                data += ser.read(max(1, min(ser.in_waiting, 4096)))
        except (serial.SerialException, OSError) as exc:
            out.error = f"lost while listening: {exc}"
        finally:
            ser.close()
        out.bytes_heard += len(data)
        for name, n in identify(bytes(data), names).items():
            out.frames[name] = out.frames.get(name, 0) + n
    return out


def detect(ports: Iterable[str] | None = None, *, listen_s: float = 3.0,
           opener: Opener = serial_opener) -> list[Detection]:
    """Probe ``ports`` (default: :func:`default_ports`) in parallel; one :class:`Detection` per port."""
    todo = list(ports) if ports is not None else default_ports()
    if not todo:
        return []
    lock = threading.Lock()
    results: dict[str, Detection] = {}

    def one(port: str) -> None:
        d = probe(port, listen_s=listen_s, opener=opener)
        with lock:
            results[port] = d

    with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
        list(pool.map(one, todo))
    return [results[p] for p in todo]
