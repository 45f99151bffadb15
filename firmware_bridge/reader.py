"""Serial readers: own pyserial, timing, resync and reopen; hand observations on.

The decoders in :mod:`firmware_bridge.sensors` are pure; this module does
the I/O around them, one reader per serial port:

- ``stream`` protocols (Plantower PMS in active mode) push frames: the
  reader accumulates bytes and lets the protocol's ``find_frame`` resync
  past garbage;
- ``polled`` protocols (Winsen MH-Z19) answer a command: the reader writes
  the read command every ``interval_s`` and cuts the replies out of the
  byte stream like pushed frames (a late reply is still read);
- ``line`` protocols (NMEA 0183) send CR/LF-terminated sentences.

A protocol may list ``INIT_COMMANDS`` (bytes written once after each open:
start measurement, switch mode, self-calibration off).  A frame its decoder
calls ``Unsupported`` (an acknowledgement) is counted as ignored.

A port that disappears (a USB serial adapter unplugged: pyserial raises
``SerialException``, see ENV-NOTES "pseudo-terminals") is reopened with
exponential backoff, by its path (use a stable ``/dev/serial/by-id/…`` or
udev symlink).  Clock and sleep are injectable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import serial

from firmware_bridge.sensors import PROTOCOLS, serial_settings
from firmware_bridge.sensors.base import NoFix, Observation, SensorError, Unsupported, WarmingUp

log = logging.getLogger("qsec.bridge.reader")

ObservationSink = Callable[[Observation], None]


@dataclass
class ReaderStats:
    observations: int = 0
    frame_errors: int = 0
    waits: int = 0  # warming up / no fix
    reopens: int = 0
    bytes_read: int = 0
    resync_bytes: int = 0
    ignored: int = 0  # frames decoded as Unsupported: acknowledgements, unused sentences


class SerialReader:
    """Reads one sensor on one serial port until stopped."""

    def __init__(self, protocol: str, port: str, sink: ObservationSink, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 max_backoff_s: float = 10.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown sensor protocol {protocol!r}; choose one of: {', '.join(sorted(PROTOCOLS))}")
        self.protocol = protocol
        self.proto = PROTOCOLS[protocol]
        self.port = port
        self.sink = sink
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep
        self.max_backoff_s = max_backoff_s
        self.stats = ReaderStats()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self.opened = threading.Event()  # set while the port is open
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life cycle
    def start(self) -> "SerialReader":
        self._thread = threading.Thread(target=self.run, name=f"reader-{self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with serial.Serial(self.port, timeout=0.2, **serial_settings(self.protocol)) as ser:
                    backoff = 0.5
                    self.last_error = None
                    self.opened.set()
                    try:
                        self._loop(ser)
                    finally:
                        self.opened.clear()
            except (serial.SerialException, OSError) as exc:
                self.last_error = f"{self.port}: {exc}"
                self.stats.reopens += 1
                log.warning("%s on %s unavailable (%s); retrying in %.1f s", self.protocol, self.port, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)

    def _emit(self, decode: Callable[[bytes], Observation], data: bytes) -> None:
        try:
            obs = decode(data)
        except (WarmingUp, NoFix):
            self.stats.waits += 1
            return
        except Unsupported:  # a command acknowledgement, a sentence we do not use
            self.stats.ignored += 1
            return
        except SensorError:
            self.stats.frame_errors += 1
            return
        self.stats.observations += 1
        self.sink(obs)

    # ------------------------------------------------------------ per kind
    def _loop(self, ser: serial.Serial) -> None:
        for command in getattr(self.proto, "INIT_COMMANDS", ()):  # e.g. start measurement, ABC off
            ser.write(command)
        if getattr(self.proto, "KIND", "stream") == "line":
            self._lines(ser)
        else:
            self._frames(ser, polled=self.proto.KIND == "polled")

    def _frames(self, ser: serial.Serial, *, polled: bool) -> None:
        """Binary frames: pushed by the sensor, or answers to the read command we send every interval.

        An answer that arrives late is still decoded: bytes are never thrown
        away unread, only passed over by ``find_frame`` while resynchronising.
        """
        buf = b""
        next_poll = self.clock()
        while not self._stop.is_set():
            if polled:
                now = self.clock()
                if now >= next_poll:
                    ser.write(self.proto.READ_COMMAND)
                    next_poll += self.interval_s
                    if next_poll < now:  # fell behind (suspend, slow port): do not burst
                        next_poll = now + self.interval_s
            chunk = ser.read(max(1, min(ser.in_waiting, 4096)))
            if not chunk:
                continue
            self.stats.bytes_read += len(chunk)
            buf += chunk
            while True:
                frame, rest = self.proto.find_frame(buf)
                skipped = len(buf) - len(rest) - (len(frame) if frame else 0)
                self.stats.resync_bytes += max(0, skipped)  # garbage passed over while resyncing
                buf = rest
                if frame is None:
                    break
                self._emit(self.proto.decode, frame)
            if len(buf) > 4096:  # never grow without bound on a stream of garbage
                self.stats.resync_bytes += len(buf) - 64
                buf = buf[-64:]

    def _lines(self, ser: serial.Serial) -> None:
        partial = b""
        while not self._stop.is_set():
            line = ser.readline()
            if not line:
                continue
            self.stats.bytes_read += len(line)
            line = partial + line
            if not line.endswith(b"\n"):  # a timeout cut the line: keep it for the next read
                partial = line if len(line) < 1024 else b""  # NMEA sentences are at most 82 characters
                continue
            partial = b""
            self._emit(self.proto.decode, line)
