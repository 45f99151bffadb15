"""Capture raw serial traffic to a file, and replay it through the same reader code.

A capture is a JSON-lines file (UTF-8, one object a line)::

    {"qsec_capture": 1, "protocol": "pms5003", "port": "/dev/ttyUSB0",
     "serial": {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}, "started": 1767225600000}
    {"t": 0.0, "d": "open"}
    {"t": 0.000412, "d": "out", "hex": "ff0186000000000079"}
    {"t": 0.013107, "d": "in", "hex": "ff86019c4a00000093"}
    {"t": 7.5, "d": "close", "error": "device reports readiness to read but returned no data"}

- ``t`` is the monotonic offset from the start of the capture [s];
- ``d`` is the direction: ``in`` (sensor -> bridge), ``out`` (bridge ->
  sensor), or an event: ``open`` (the port was opened) and ``close`` (it was
  closed; ``error`` says why when it was lost);
- ``hex`` holds the bytes of one read or one write, in lower-case hexadecimal;
- ``started`` in the header is the wall-clock time of ``t = 0`` [ms since epoch, UTC].

:class:`RecordingPort` wraps a live port and writes what passes through it;
:class:`ReplaySource` is an opener (see :mod:`firmware_bridge.reader`) whose
ports give back the ``in`` bytes of one ``open`` … ``close`` segment each, at
the recorded pace divided by ``speed`` (``speed=0``: as fast as the reader
takes them).  The end of a segment that was lost looks like an unplugged
adapter (``SerialException``), so a replay exercises the reopen path too; the
end of the file raises :class:`~firmware_bridge.reader.EndOfReplay`.  Bytes the
reader writes during a replay are accepted and counted, not checked.

Source of the serial semantics mimicked: pyserial 3.5 API (``read`` returns
at most ``size`` bytes, fewer on timeout; ``in_waiting`` counts what can be read now),
https://pyserial.readthedocs.io/en/latest/pyserial_api.html
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import serial

from firmware_bridge.reader import READ_TIMEOUT_S, EndOfReplay, Opener, SerialLike, SerialReader, serial_opener
from firmware_bridge.sensors import PROTOCOLS, serial_settings
from firmware_bridge.sensors.base import Observation

FORMAT_VERSION = 1
DIRECTIONS = ("in", "out", "open", "close")


class CaptureError(ValueError):
    """A capture file that cannot be replayed; the message names the line."""


# ---------------------------------------------------------------- recording
class CaptureWriter:
    """Appends traffic to a capture file (thread-safe; one line per read or write)."""

    def __init__(self, path: Path, protocol: str, port: str, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._t0 = clock()
        self._f: IO[str] = self.path.open("w", encoding="utf-8")
        self.bytes = {"in": 0, "out": 0}
        header = {"qsec_capture": FORMAT_VERSION, "protocol": protocol, "port": port,
                  "serial": serial_settings(protocol), "started": int(wall() * 1000)}
        self._line(header)

    def _line(self, doc: Mapping[str, Any]) -> None:
        with self._lock:
            self._f.write(json.dumps(doc, separators=(",", ":")) + "\n")

    def record(self, direction: str, data: bytes = b"", error: str | None = None) -> None:
        doc: dict[str, Any] = {"t": round(self.clock() - self._t0, 6), "d": direction}
        if data:
            doc["hex"] = data.hex()
            self.bytes[direction] += len(data)
        if error:
            doc["error"] = error
        self._line(doc)

    def close(self) -> None:
        with self._lock:
            self._f.close()


class RecordingPort:
    """A serial-like port that writes every read and write to a :class:`CaptureWriter`."""

    def __init__(self, inner: SerialLike, writer: CaptureWriter):
        self.inner = inner
        self.writer = writer
        writer.record("open")

    @property
    def in_waiting(self) -> int:
        return self.inner.in_waiting

    def _in(self, call: Callable[[], bytes]) -> bytes:
        try:
            data = call()
        except (serial.SerialException, OSError) as exc:
            self.writer.record("close", error=str(exc))
            raise
        if data:
            self.writer.record("in", data)
        return data

    def read(self, size: int = 1) -> bytes:
        return self._in(lambda: self.inner.read(size))

    def write(self, data: bytes) -> int | None:
        n = self.inner.write(data)
        self.writer.record("out", bytes(data))
        return n

    def close(self) -> None:
        self.inner.close()


def recording_opener(writer: CaptureWriter, opener: Opener = serial_opener) -> Opener:
    """An opener that records the traffic of the ports ``opener`` opens."""
    def open_recording(port: str, settings: Mapping[str, Any]) -> SerialLike:
        return RecordingPort(opener(port, settings), writer)
    return open_recording


@dataclass
class CaptureSummary:
    observations: int
    bytes_in: int
    bytes_out: int
    seconds: float


def capture(protocol: str, port: str, out: Path, *, seconds: float | None = None, interval_s: float = 1.0,
            stop: threading.Event | None = None, opener: Opener = serial_opener,
            on_observation: Callable[[Observation], None] | None = None) -> CaptureSummary:
    """Record ``port`` for ``seconds`` (or until ``stop`` is set) into ``out``, polling as the bridge would."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown sensor protocol {protocol!r}; choose one of: {', '.join(sorted(PROTOCOLS))}")
    stop = stop or threading.Event()
    count = [0]

    def sink(obs: Observation) -> None:
        count[0] += 1
        if on_observation:
            on_observation(obs)

    writer = CaptureWriter(out, protocol, port)
    reader = SerialReader(protocol, port, sink, interval_s=interval_s, opener=recording_opener(writer, opener))
    t0 = time.monotonic()
    reader.start()
    try:
        stop.wait(seconds)
    finally:
        reader.stop()
        writer.close()
    return CaptureSummary(count[0], writer.bytes["in"], writer.bytes["out"], time.monotonic() - t0)


# ---------------------------------------------------------------- replay
@dataclass
class Capture:
    """A capture file read back: its header and its segments of ``(t, bytes)`` reads, one per open."""

    protocol: str
    port: str
    started_ms: int
    segments: list[list[tuple[float, bytes]]] = field(default_factory=list)
    lost: list[str | None] = field(default_factory=list)  # per segment: the error that ended it, or None


def read_capture(path: Path) -> Capture:
    """Parse a capture file; :class:`CaptureError` names the first bad line."""
    with Path(path).open(encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise CaptureError(f"{path}: empty file; record one with `qsec bridge capture`")
    try:
        head = json.loads(lines[0])
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("qsec_capture") != FORMAT_VERSION:
        raise CaptureError(f"{path}:1: not a qsec capture (version {FORMAT_VERSION}) header")
    if head.get("protocol") not in PROTOCOLS:
        raise CaptureError(f"{path}:1: protocol {head.get('protocol')!r}; known: {', '.join(sorted(PROTOCOLS))}")
    cap = Capture(head["protocol"], str(head.get("port", "")), int(head.get("started", 0)))
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
            t, d = float(ev["t"]), ev["d"]
            data = bytes.fromhex(ev.get("hex", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise CaptureError(f"{path}:{n}: unreadable event ({exc}); each line is "
                               '{"t": seconds, "d": "in"|"out"|"open"|"close", "hex": "…"}') from None
        if d not in DIRECTIONS:
            raise CaptureError(f"{path}:{n}: direction {d!r}; use one of {', '.join(DIRECTIONS)}")
        if d == "open" or not cap.segments:
            cap.segments.append([])
            cap.lost.append(None)
        if d == "in" and data:
            cap.segments[-1].append((t, data))
        elif d == "close":
            cap.lost[-1] = str(ev.get("error") or "closed")
    return cap


class ReplayPort:
    """One segment of a capture, served like a serial port at the recorded pace (``speed=0``: at once).

    ``lost`` is why the segment ended when captured: at its end the port then
    raises ``SerialException`` (the reader reopens); ``None`` ends the replay.
    """

    def __init__(self, events: list[tuple[float, bytes]], lost: str | None = None, *, speed: float = 1.0,
                 timeout: float = READ_TIMEOUT_S, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._events = events
        self._next = 0
        self._buf = bytearray()
        self.lost = lost
        self.speed = speed
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.written = 0
        self._t0 = events[0][0] if events else 0.0
        self._start = clock()

    def _due_at(self, i: int) -> float:
        if self.speed <= 0:
            return float("-inf")
        return self._start + (self._events[i][0] - self._t0) / self.speed

    def _pump(self) -> None:
        now = self.clock()
        while self._next < len(self._events) and self._due_at(self._next) <= now:
            self._buf += self._events[self._next][1]
            self._next += 1

    def _exhausted(self) -> None:
        if self.lost is not None:
            raise serial.SerialException(f"replay: the port was lost here when captured ({self.lost})")
        raise EndOfReplay("the capture has no more traffic")

    def _wait(self, done: Callable[[], bool]) -> None:
        """Pump events until ``done()``, the timeout, or the end of the segment."""
        deadline = self.clock() + self.timeout
        self._pump()
        while not done() and self._next < len(self._events):
            wait = min(self._due_at(self._next), deadline) - self.clock()
            if wait > 0:
                self.sleep(wait)
            self._pump()
            if self.clock() >= deadline:
                break
        if not self._buf and self._next >= len(self._events):
            self._exhausted()

    @property
    def in_waiting(self) -> int:
        self._pump()
        return len(self._buf)

    def read(self, size: int = 1) -> bytes:
        self._wait(lambda: len(self._buf) >= size)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)

    def close(self) -> None:
        self._events = []
        self._next = 0


class ReplaySource:
    """An opener that hands out a capture's segments in order, then ends the replay.

    Parameters
    ----------
    capture : a :class:`Capture` (or the path of a capture file)
    speed : 1 replays at the recorded pace, 10 ten times faster, 0 as fast as possible
    """

    def __init__(self, capture: Capture | Path | str, *, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.capture = capture if isinstance(capture, Capture) else read_capture(Path(capture))
        if speed < 0:
            raise ValueError(f"speed={speed}: use 0 (as fast as possible) or a positive factor")
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self._segment = 0

    @property
    def protocol(self) -> str:
        return self.capture.protocol

    def __call__(self, port: str, settings: Mapping[str, Any]) -> SerialLike:
        if self._segment >= len(self.capture.segments):
            raise EndOfReplay("the capture has no more traffic")
        i = self._segment
        self._segment += 1
        lost = self.capture.lost[i]
        timeout = float(settings.get("timeout", READ_TIMEOUT_S))
        if lost is None and i + 1 < len(self.capture.segments):
            lost = "closed"  # reopened while capturing: the reader reopens the replay too
        return ReplayPort(self.capture.segments[i], lost, speed=self.speed, timeout=timeout, clock=self.clock,
                          sleep=self.sleep)
