"""Serial readers: own the port, timing, resync and reopen; hand observations on.

The decoders in :mod:`firmware_bridge.sensors` are pure; this module does
the I/O around them, one reader per serial port:

- ``stream`` protocols (Plantower PMS in active mode) push frames: the
  reader accumulates bytes and lets the protocol's ``find_frame`` resync
  past garbage;
- ``polled`` protocols (Winsen MH-Z19) answer a command: the reader writes
  the read command every ``interval_s`` and cuts the replies out of the
  byte stream like pushed frames (a late reply is still read; a command
  left unanswered until the next one is counted);
- ``line`` protocols (NMEA 0183) send CR/LF-terminated sentences.

A protocol may declare ``COMMAND_GAP_S`` (a silence after each command, as
Modbus RTU needs) and ``WARMUP_S`` (observations in the first seconds after the
port opens are marked ``warming_up``, which the bridge flags on the record).

A protocol may list ``INIT_COMMANDS`` (bytes written once after each open:
wake up, start measurement, switch mode, self-calibration off).

A protocol may list ``REBOOT_COMMANDS``: when its decoder reports warm-up
(``WarmingUp``) after good readings, the sensor restarted while the port stayed
open (its power was cut, not the USB adapter's), and these commands are
written again once its first good reading after the restart has arrived — as
arendst/Tasmota ``tasmota/tasmota_xsns_sensor/xsns_15_mhz19.ino`` does for an
MH-Z19, which switches its self-calibration back on when it boots.  Counted in
``ReaderStats.reboots``.

A protocol may declare ``WAKE_BYTES`` and ``WAKE_GAP_S``: bytes written before
every command (start-up and read commands alike), then a pause of
``WAKE_GAP_S`` after they have left the port (``flush()``), as esphome writes
a 0x00 byte 5 ms before each request to a Senseair S8
(``esphome/components/senseair/senseair.cpp``, ``senseair_write_command_``).

Frames the decoder sets aside are counted by kind (``frame_errors``,
``ignored`` for ``Unsupported`` such as acknowledgements, ``waits`` for
``WarmingUp`` and ``NoFix``) and by reason class, with the last reason of each
kind kept and logged at most once per class every few minutes
(:class:`firmware_bridge.setaside.SetAside`, :attr:`SerialReader.set_aside`).

Where the bytes come from is the *opener*'s business: a callable
``opener(port, settings) -> SerialLike``.  :func:`serial_opener` opens a real
port with pyserial; :class:`firmware_bridge.capture.ReplaySource` feeds a
recorded capture through exactly the same code.

Faults:

- a port that disappears (a USB serial adapter unplugged: pyserial raises
  ``SerialException``, see ENV-NOTES "pseudo-terminals") or cannot be opened
  is reopened with exponential backoff (0.5 s doubling up to
  ``max_backoff_s``), by its path: use a stable ``/dev/serial/by-id/…`` or
  udev symlink;
- a port that stays silent (no frame at all, not even a warm-up one) for
  ``silence_s`` is closed and reopened, which also resends the init
  commands (a sensor that was power-cycled behind a USB adapter that was not);
- a replayed capture that has no more traffic raises :class:`EndOfReplay`:
  the reader stops and sets :attr:`SerialReader.finished`.

Clock and sleep are injectable.  Sources: pyserial 3.5 API,
https://pyserial.readthedocs.io/en/latest/pyserial_api.html
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from firmware_bridge.sensors import PROTOCOLS, serial_settings
from firmware_bridge.sensors.base import NoFix, Observation, SensorError, Unsupported, WarmingUp
from firmware_bridge.setaside import SetAside

log = logging.getLogger("qsec.bridge.reader")

ObservationSink = Callable[[Observation], None]
READ_TIMEOUT_S = 0.5  # a read returns at least this often, so stop() and polling stay responsive
MAX_BUFFER = 4096  # bytes kept while looking for a frame
MAX_LINE = 1024  # characters of a text line at most (NMEA sentences: 82)


class SerialLike(Protocol):
    """What a reader needs from a port: the part of ``serial.Serial`` it uses."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


Opener = Callable[[str, Mapping[str, Any]], SerialLike]


class EndOfReplay(Exception):
    """A replayed capture has no more traffic: the reader stops (a live port never raises it)."""


def serial_opener(port: str, settings: Mapping[str, Any]) -> SerialLike:
    """Open a real serial port with pyserial, exclusively (a second bridge on the same port is refused)."""
    return serial.Serial(port, exclusive=True, **{"timeout": READ_TIMEOUT_S, **settings})


@dataclass
class ReaderStats:
    observations: int = 0
    frame_errors: int = 0
    waits: int = 0  # warming up / no fix
    opens: int = 0
    reopens: int = 0  # failed opens and lost ports
    silences: int = 0  # reopened because nothing came for silence_s
    unanswered: int = 0  # polled: a read command left without an answer
    bytes_read: int = 0
    resync_bytes: int = 0
    ignored: int = 0  # frames decoded as Unsupported: acknowledgements, unused sentences
    reboots: int = 0  # sensor restarts seen with the port open (REBOOT_COMMANDS written again)


class _Silent(Exception):
    """No frame for too long: close and reopen the port."""


class SerialReader:
    """Reads one sensor on one port until stopped (or until a replay ends).

    Parameters
    ----------
    protocol : a name in :data:`firmware_bridge.sensors.PROTOCOLS`
    port : the path handed to ``opener``
    sink : called with each decoded observation, from the reader's thread
    interval_s : time between read commands of a polled protocol [s]
    clock : monotonic clock [s]
    opener : returns the port (real or replayed)
    max_backoff_s : longest wait between two open attempts [s]
    silence_s : reopen the port after this long without a frame [s] (at least 3 intervals)
    """

    def __init__(self, protocol: str, port: str, sink: ObservationSink, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, opener: Opener = serial_opener,
                 max_backoff_s: float = 10.0, silence_s: float = 30.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown sensor protocol {protocol!r}; choose one of: {', '.join(sorted(PROTOCOLS))}")
        self.protocol = protocol
        self.proto = PROTOCOLS[protocol]
        self.port = port
        self.sink = sink
        self.interval_s = interval_s
        self.clock = clock
        self.opener = opener
        self.max_backoff_s = max_backoff_s
        self.silence_s = max(silence_s, 3 * interval_s)
        self.stats = ReaderStats()
        self.set_aside = SetAside(f"{protocol} on {port}", clock)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self.opened = threading.Event()  # set while the port is open
        self.finished = threading.Event()  # set when the reader ended (stopped, or a replay ran out)
        self._thread: threading.Thread | None = None
        self._last_frame = 0.0
        self._opened_at = 0.0
        self._reboot_commands: tuple[bytes, ...] = tuple(getattr(self.proto, "REBOOT_COMMANDS", ()))
        self._had_reading = False  # a good reading since the port opened or the sensor last restarted
        self._rebooted = False  # warm-up seen after good readings: the sensor restarted
        self._pending: tuple[bytes, ...] = ()  # commands to write before the next read
        # A read must return before the next poll is due: a polled sensor's timeout follows its interval.
        polled = getattr(self.proto, "KIND", "stream") == "polled"
        timeout = min(READ_TIMEOUT_S, max(0.01, interval_s / 2)) if polled else READ_TIMEOUT_S
        self.port_settings: dict[str, Any] = {**serial_settings(protocol), "timeout": timeout}

    # ------------------------------------------------------------ life cycle
    def start(self) -> SerialReader:
        self._thread = threading.Thread(target=self.run, name=f"reader-{self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Ask the reader to stop (it does within one read timeout); with ``wait``, until it has."""
        self._stop.set()
        if wait and self._thread:
            self._thread.join(timeout=5)

    @staticmethod
    def read_chunk(ser: SerialLike) -> bytes:
        """What the port has now, or wait (up to its timeout) for the first byte and take what came with it."""
        waiting = ser.in_waiting
        chunk = ser.read(min(waiting, MAX_BUFFER) if waiting else 1)
        if not waiting and chunk and (more := ser.in_waiting):  # woken by a frame's first byte: take the rest
            chunk += ser.read(min(more, MAX_BUFFER))
        return chunk

    def run(self) -> None:
        backoff = min(0.5, self.max_backoff_s)
        try:
            while not self._stop.is_set():
                try:
                    ser = self.opener(self.port, self.port_settings)
                except (serial.SerialException, OSError) as exc:
                    backoff = self._failed(f"{self.port}: {exc}", backoff)
                    continue
                self.stats.opens += 1
                backoff = min(0.5, self.max_backoff_s)
                self.last_error = None
                self.opened.set()
                try:
                    self._loop(ser)
                except _Silent:
                    self.stats.silences += 1
                    self.last_error = f"{self.port}: no frame for {self.silence_s:g} s; reopened"
                    log.warning("%s on %s: no frame for %g s; reopening the port (check the sensor's power "
                                "and wiring)", self.protocol, self.port, self.silence_s)
                except (serial.SerialException, OSError) as exc:
                    backoff = self._failed(f"{self.port}: {exc}", backoff)
                finally:
                    self.opened.clear()
                    try:
                        ser.close()
                    except (serial.SerialException, OSError):
                        pass
        except EndOfReplay:
            log.info("%s: replay finished", self.protocol)
        finally:
            self.finished.set()

    def _failed(self, error: str, backoff: float) -> float:
        self.last_error = error
        self.stats.reopens += 1
        log.warning("%s unavailable (%s); retrying in %.1f s", self.protocol, error, backoff)
        self._stop.wait(backoff)
        return min(self.max_backoff_s, backoff * 2)

    def _emit(self, data: bytes) -> None:
        self._last_frame = self.clock()
        try:
            obs = self.proto.decode(data)
        except (WarmingUp, NoFix) as exc:
            self.stats.waits += 1
            self.set_aside.add("waiting", str(exc))
            if isinstance(exc, WarmingUp) and self._had_reading and self._reboot_commands:
                self._had_reading, self._rebooted = False, True
                self._opened_at = self._last_frame  # powered again: its warm-up starts over
            return
        except Unsupported as exc:  # a command acknowledgement, a sentence we do not use
            self.stats.ignored += 1
            self.set_aside.add("ignored", str(exc))
            return
        except SensorError as exc:
            self.stats.frame_errors += 1
            self.set_aside.add("frame_error", str(exc))
            return
        self.stats.observations += 1
        self._had_reading = True
        if self._rebooted:
            self._rebooted = False
            self._pending = self._reboot_commands
            self.stats.reboots += 1
            log.warning("%s on %s restarted while the port stayed open (warm-up after good readings): "
                        "sending its start-up commands again", self.protocol, self.port)
        warmup = float(getattr(self.proto, "WARMUP_S", 0.0))
        if warmup and not obs.warming_up and self.clock() - self._opened_at < warmup:
            # powered with the port (USB): still in the datasheet's warm-up, the values may be biased
            obs = Observation(obs.sensor, obs.values, obs.time, True)
        self.sink(obs)

    def _check_silence(self) -> None:
        if self.clock() - self._last_frame > self.silence_s:
            raise _Silent()

    # ------------------------------------------------------------ per kind
    def _send(self, ser: SerialLike, command: bytes) -> None:
        """Write one command, after the protocol's wake-up bytes and their pause if it has them."""
        wake = getattr(self.proto, "WAKE_BYTES", b"")
        if wake:
            ser.write(wake)
            flush = getattr(ser, "flush", None)  # wait until they are on the wire (a replay has nothing to flush)
            if flush is not None:
                flush()
            self._stop.wait(float(getattr(self.proto, "WAKE_GAP_S", 0.0)))
        ser.write(command)

    def _send_all(self, ser: SerialLike, commands: tuple[bytes, ...]) -> None:
        gap = float(getattr(self.proto, "COMMAND_GAP_S", 0.0))  # Modbus RTU: silence ends a request
        for command in commands:
            self._send(ser, command)
            if gap:
                self._stop.wait(gap)

    def _loop(self, ser: SerialLike) -> None:
        self._last_frame = self._opened_at = self.clock()
        self._had_reading = self._rebooted = False
        self._pending = ()
        self._send_all(ser, tuple(getattr(self.proto, "INIT_COMMANDS", ())))  # e.g. wake up, start, ABC off
        if getattr(self.proto, "KIND", "stream") == "line":
            self._lines(ser)
        else:
            self._frames(ser, polled=self.proto.KIND == "polled")

    def _frames(self, ser: SerialLike, *, polled: bool) -> None:
        """Binary frames: pushed by the sensor, or answers to the read command we send every interval.

        An answer that arrives late is still decoded: bytes are never thrown
        away unread, only passed over by ``find_frame`` while resynchronising.
        """
        buf = b""
        next_poll = self.clock()
        answered = True
        while not self._stop.is_set():
            if self._pending:  # a restarted sensor's start-up commands, before the next read
                pending, self._pending = self._pending, ()
                self._send_all(ser, pending)
            if polled:
                now = self.clock()
                if now >= next_poll:
                    if not answered:
                        self.stats.unanswered += 1
                    self._send(ser, self.proto.READ_COMMAND)  # type: ignore[attr-defined]
                    answered = False
                    next_poll += self.interval_s
                    if next_poll < now:  # fell behind (suspend, slow port): do not burst
                        next_poll = now + self.interval_s
            chunk = self.read_chunk(ser)
            if not chunk:
                self._check_silence()
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
                answered = True
                self._emit(frame)
            if len(buf) > MAX_BUFFER:  # never grow without bound on a stream of garbage
                self.stats.resync_bytes += len(buf) - 64
                buf = buf[-64:]
            self._check_silence()

    def _lines(self, ser: SerialLike) -> None:
        """Text lines, read in chunks (pyserial's ``readline`` reads one byte per system call)."""
        buf = b""
        while not self._stop.is_set():
            chunk = self.read_chunk(ser)
            if not chunk:  # a timeout: keep a cut line for the next read
                self._check_silence()
                continue
            self.stats.bytes_read += len(chunk)
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                self._emit(buf[start:end + 1])
                start = end + 1
            buf = buf[start:]
            if len(buf) > MAX_LINE:  # no line end for too long: garbage, not a sentence
                self.stats.resync_bytes += len(buf)
                buf = b""
            self._check_silence()
