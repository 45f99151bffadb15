"""A simulated sensor kit: a PMS5003, an MH-Z19 and a GPS on three pseudo-terminals.

A kit follows a route (:mod:`firmware_bridge.simulator.routes`) through a
deterministic :class:`~firmware_bridge.simulator.world.World` and exposes
one stable path per sensor, ``<device_dir>/<kit>-pms5003``, ``…-mhz19`` and
``…-nmea``, for a bridge to open with pyserial at 9600 baud.

Two threads per kit:

- the *ticker* runs at ``rate_hz`` on the injected ``clock`` and ``sleep``:
  each tick advances the world by one simulated second, writes a PMS5003
  frame (active mode) and a GGA and an RMC sentence;
- the *responder* waits (``select``) for bytes the bridge writes: MH-Z19
  commands (each "read" gets an answer) and PMS5003 commands.

Notes
-----
- One tick is one second of the kit's world whatever ``rate_hz`` is: at
  10 Hz a walk goes ten times faster (what tests want), while the GPS time
  stamps follow ``clock``.
- :attr:`Kit.counts` is the ground truth: frames written *whole* to each
  pty, per kind (``pms5003`` data frames, ``pms5003_warming_up`` all-zero
  frames, ``mhz19`` answers, ``mhz19_requests`` read commands received,
  ``nmea`` sentences with a fix, ``nmea_no_fix`` without).  Frames lost to
  an unplugged port or a full buffer are not counted.  :attr:`Kit.emissions`
  keeps the values sent, most recent last.
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from qsec.contract import ID_PATTERN

from firmware_bridge.simulator.devices import Frame, GpsDevice, Mhz19Device, Pms5003Device
from firmware_bridge.simulator.pty import PtyPort
from firmware_bridge.simulator.routes import ROUTES, Route
from firmware_bridge.simulator.world import World, WorldState

log = logging.getLogger("qsec.simulator")

SENSORS = ("pms5003", "mhz19", "nmea")
COUNTERS = ("pms5003", "pms5003_warming_up", "pms5003_ack", "mhz19", "mhz19_requests", "nmea", "nmea_no_fix")


@dataclass(frozen=True)
class Emission:
    """One frame a kit wrote: which sensor, which kind, the world tick, and the values it carries."""

    sensor: str
    kind: str
    tick: int
    time: float  # clock() when written [s since epoch]
    values: dict[str, float]


class Kit:
    """Three simulated sensors following one route.

    Parameters
    ----------
    name : kit id (lower-case letters, digits, ``_`` and ``-``), used in the device paths
    route : a :class:`Route` or the name of one in :data:`ROUTES`
    seed : seed of the world; the same seed gives the same values
    device_dir : directory for the symlinks (created if missing)
    rate_hz : ticks per second of ``clock`` [Hz]
    start_m : starting point, as a distance along the loop [m]
    clock, sleep : time source [s since epoch] and sleep function of the ticker
    pms_warmup_frames : all-zero PMS5003 frames sent after power-on and wake-up
    gps_fix_after : ticks of "no fix" sentences before the GPS gets a position
    gps_talker : NMEA talker id of the GPS ("GN" for a multi-constellation receiver)
    log_size : emissions kept in :attr:`emissions`
    """

    def __init__(self, name: str, route: Route | str, seed: int, device_dir: str | os.PathLike[str], *,
                 rate_hz: float = 1.0, start_m: float = 0.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 pms_warmup_frames: int = 0, gps_fix_after: int = 0, gps_talker: str = "GN",
                 log_size: int = 10_000):
        if not ID_PATTERN.match(name):
            raise ValueError(f"kit name {name!r} must match {ID_PATTERN.pattern}")
        if isinstance(route, str):
            if route not in ROUTES:
                raise ValueError(f"unknown route {route!r}; choose one of: {', '.join(ROUTES)}")
            route = ROUTES[route]
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.name = name
        self.route = route
        self.seed = seed
        self.device_dir = Path(device_dir)
        self.rate_hz = float(rate_hz)
        self.clock = clock
        self.sleep = sleep
        self.world = World(route, seed, start_m)
        self.pms = Pms5003Device(pms_warmup_frames)
        self.mhz19 = Mhz19Device()
        self.gps = GpsDevice(gps_fix_after, gps_talker, route.geoid_separation)
        self.emissions: deque[Emission] = deque(maxlen=log_size)
        self._counts: Counter[str] = Counter({key: 0 for key in COUNTERS})
        self._ports: dict[str, PtyPort] = {}
        self._state: WorldState | None = None
        self._lock = threading.Lock()  # devices, counters, log
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"Kit({self.name!r}, route={self.route.name!r}, seed={self.seed}, rate_hz={self.rate_hz})"

    # ------------------------------------------------------------ paths and state
    @property
    def paths(self) -> dict[str, str]:
        """Sensor -> the stable path a bridge opens: ``{"pms5003": …, "mhz19": …, "nmea": …}``."""
        return {sensor: str(self.device_dir / f"{self.name}-{sensor}") for sensor in SENSORS}

    @property
    def counts(self) -> dict[str, int]:
        """Frames written whole, per kind (see the module Notes)."""
        with self._lock:
            counts = dict(self._counts)
            counts["mhz19_requests"] = self.mhz19.requests
            return counts

    @property
    def state(self) -> WorldState | None:
        """What the sensors reported at the latest tick."""
        return self._state

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    # ------------------------------------------------------------ life cycle
    def start(self, *, paused: bool = False) -> "Kit":
        """Open the three pseudo-terminals, send the first tick and start the threads.

        With ``paused=True`` the ports exist but nothing is sent until :meth:`resume`
        (pyserial empties a port's input buffer when it opens it, so a test that must
        account for every frame starts the kit paused and resumes it once the bridge
        has opened its ports).
        """
        if self._threads:
            raise RuntimeError(f"kit {self.name} is already started")
        self.device_dir.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        try:
            for sensor, path in self.paths.items():
                self._ports[sensor] = PtyPort(path)
        except OSError:
            self._close_ports()
            raise
        first = self.clock()
        if paused:
            self._paused.set()
        else:
            self._tick(first)
        self._threads = [
            threading.Thread(target=self._run_ticker, args=(first,), name=f"{self.name}-ticker", daemon=True),
            threading.Thread(target=self._run_responder, name=f"{self.name}-responder", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def pause(self) -> None:
        """Stop sending and answering; the ports stay open (a bridge can read what was sent)."""
        self._paused.set()

    def resume(self) -> None:
        """Send and answer again after :meth:`pause`, from the next tick on (no burst of missed ticks)."""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def stop(self) -> None:
        """Stop the threads, close the pseudo-terminals and remove the links."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._close_ports()

    def _close_ports(self) -> None:
        for port in self._ports.values():
            port.close()
        self._ports = {}

    def __enter__(self) -> "Kit":
        return self if self._threads else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ unplug and replug
    def _port(self, sensor: str) -> PtyPort:
        if sensor not in SENSORS:
            raise ValueError(f"unknown sensor {sensor!r}; choose one of: {', '.join(SENSORS)}")
        if sensor not in self._ports:
            raise RuntimeError(f"kit {self.name} is not started")
        return self._ports[sensor]

    def unplug(self, sensor: str) -> None:
        """Pull a sensor out: close its pty (the bridge's read fails) and remove its link."""
        self._port(sensor).unplug()

    def plug(self, sensor: str) -> str:
        """Plug an unplugged sensor back in on a new pty; returns the new ``/dev/pts/N``."""
        path = self._port(sensor).plug()
        if sensor == "pms5003":
            with self._lock:
                self.pms = Pms5003Device(self.pms.warmup_frames)  # power cycle: active mode, warming up
        return path

    def replug(self, sensor: str) -> str:
        """Unplug and plug again at once; the link is re-pointed atomically."""
        self._port(sensor).unplug(remove_link=False)
        return self.plug(sensor)

    # ------------------------------------------------------------ threads
    def _send(self, sensor: str, frames: list[Frame], tick: int) -> None:
        port = self._ports.get(sensor)
        for frame in frames:
            if port is None or not port.write(frame.data):
                continue
            with self._lock:
                self._counts[frame.kind] += 1
                if frame.values:
                    self.emissions.append(Emission(sensor, frame.kind, tick, self.clock(), frame.values))

    def _tick(self, now: float) -> None:
        state = self.world.step()
        self._state = state
        with self._lock:
            pms_frames = self.pms.on_tick(state)
        self._send("pms5003", pms_frames, state.tick)
        self._send("nmea", self.gps.on_tick(state, datetime.fromtimestamp(now, timezone.utc)), state.tick)

    def _run_ticker(self, first: float) -> None:
        period = 1.0 / self.rate_hz
        next_at = first + period
        while not self._stop.is_set():
            now = self.clock()
            if self._paused.is_set():
                next_at = now + period
                self.sleep(0.02)
                continue
            if now < next_at:
                self.sleep(min(next_at - now, 0.05))
                continue
            try:
                self._tick(now)
            except Exception:  # a simulator bug must not pass silently, nor kill the kit
                log.exception("kit %s: tick failed", self.name)
            next_at += period
            if next_at < now:  # fell behind (a suspended test, a slow machine): do not burst
                next_at = now + period

    def _run_responder(self) -> None:
        devices = {"pms5003": self.pms_input, "mhz19": self.mhz19_input}
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.02)
                continue
            fds = {fd: sensor for sensor in devices
                   if (port := self._ports.get(sensor)) is not None and (fd := port.fileno()) is not None}
            if not fds:
                self._stop.wait(0.05)
                continue
            try:
                ready, _, _ = select.select(list(fds), [], [], 0.05)
            except (OSError, ValueError):  # a port was unplugged under our feet
                self._stop.wait(0.01)
                continue
            for fd in ready:
                sensor = fds[fd]
                port = self._ports.get(sensor)
                data = port.read() if port is not None else b""
                if data:
                    devices[sensor](data)

    def pms_input(self, data: bytes) -> None:
        """Feed bytes to the PMS5003 as if the bridge had written them, and send its answers."""
        state = self._state
        if state is None:
            return
        with self._lock:
            frames = self.pms.on_input(data, state)
        self._send("pms5003", frames, state.tick)

    def mhz19_input(self, data: bytes) -> None:
        """Feed bytes to the MH-Z19 as if the bridge had written them, and send its answers."""
        state = self._state
        if state is None:
            return
        with self._lock:
            frames = self.mhz19.on_input(data, state)
        self._send("mhz19", frames, state.tick)


def start_kits(n: int, device_dir: str | os.PathLike[str], seed: int = 0, rate_hz: float = 1.0, *,
               prefix: str = "kit", paused: bool = False, **options: Any) -> list[Kit]:
    """Start ``n`` kits named ``kit01``, ``kit02``…, on different routes or starting points.

    Kits take the routes of :data:`ROUTES` in turn; kits sharing a route start
    at different points along it.  ``options`` go to :class:`Kit`.
    """
    routes = list(ROUTES.values())
    rng = random.Random(f"qsec-kits:{seed}")
    kits: list[Kit] = []
    try:
        for i in range(n):
            route = routes[i % len(routes)]
            lap = i // len(routes)
            fraction = (lap * 0.381966 + 0.1 * rng.random()) % 1.0
            kit = Kit(f"{prefix}{i + 1:02d}", route, seed * 1000 + i, device_dir, rate_hz=rate_hz,
                      start_m=fraction * route.length, **options)
            kits.append(kit.start(paused=paused))
    except BaseException:
        for kit in kits:
            kit.stop()
        raise
    return kits
