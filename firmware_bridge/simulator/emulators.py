"""Emulated sensors for every registered protocol, and a thread that runs one on a pseudo-terminal.

An emulator is bytes in, bytes out, with no I/O and no clock: ``on_tick()``
returns what the sensor sends by itself in one measurement period (a stream
sensor's frame, a GPS's sentences), ``on_input(data)`` what it answers to
the bytes the host wrote (polled answers, command replies).  Frames are
built with the protocol modules' own encoders, so they are byte-exact
protocol traffic, and commands are parsed with their parsers.

Each emulator starts in the state a sensor is in when a previous program
left it badly (asleep, in the other reporting mode, not measuring), so that
reading it through :class:`~firmware_bridge.reader.SerialReader` proves the
protocol's ``INIT_COMMANDS`` bring it to where the bridge needs it.

:class:`EmulatorPort` runs an emulator on a :class:`~firmware_bridge.simulator.pty.PtyPort`:
one thread ticks every ``tick_s`` and answers what arrives in between.
"""

from __future__ import annotations

import select
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Generic, Mapping, Protocol, TypeVar

from firmware_bridge.sensors import SensorError, modbus
from firmware_bridge.sensors.line import kitline
from firmware_bridge.sensors.nmea import encode as nmea
from firmware_bridge.sensors.novafitness import sds011
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.sensirion import scd30, sps30
from firmware_bridge.sensors.senseair import s8
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator.pty import PtyPort

T = TypeVar("T")


class Emulator(Protocol):
    """What :class:`EmulatorPort` needs from an emulated sensor."""

    def on_tick(self) -> list[bytes]: ...

    def on_input(self, data: bytes) -> list[bytes]: ...


class _Commands(Generic[T]):
    """Accumulates the host's bytes, cuts commands out with a protocol's finder and parses them.

    A command its parser refuses (a torn or unknown one) is dropped: the sensor stays silent.
    """

    def __init__(self, find: Callable[[bytes], tuple[bytes | None, bytes]], parse: Callable[[bytes], T]):
        self._find, self._parse = find, parse
        self._buffer = b""
        self.received: list[bytes] = []  # every command cut, in order

    def feed(self, data: bytes) -> list[T]:
        self._buffer += data
        out = []
        while True:
            frame, self._buffer = self._find(self._buffer)
            if frame is None:
                break
            self.received.append(frame)
            try:
                out.append(self._parse(frame))
            except SensorError:
                continue
        self._buffer = self._buffer[-64:]
        return out

    @property
    def pending(self) -> bool:
        """Whether bytes of a command not yet complete are waiting."""
        return bool(self._buffer)


# ------------------------------------------------------------------ particulate matter
class PlantowerEmulator:
    """A Plantower PMS sensor: active or passive mode, sleep and wake-up, ``warmup`` zero frames after waking.

    As the real sensors do (avaldebe/PyPMS ``src/pms/sensors/plantower/pmsx003.py`` ``commands``), the mode
    and sleep commands are answered by an 8-byte acknowledgement, wake-up by the data frames that follow
    (none of its own), a passive read by a data frame.

    Parameters
    ----------
    frame : builds one data frame (``pms5003.encode(values)``, ``pms5003st.encode(values)``…)
    zero_frame : the all-zero frame sent while the fan spins up
    active, asleep : the state it starts in
    commands : False for a PMS3003, which takes no serial command (it streams, awake, whatever it is sent)
    """

    def __init__(self, frame: Callable[[], bytes], zero_frame: bytes, *, active: bool = False,
                 asleep: bool = True, warmup: int = 0, commands: bool = True):
        self.frame, self.zero_frame = frame, zero_frame
        self.active, self.asleep = active, asleep
        self.warmup, self._warming = warmup, 0
        self.takes_commands = commands
        self.commands = _Commands(pms5003.find_command, pms5003.parse_command)

    def _data(self) -> bytes:
        if self._warming:
            self._warming -= 1
            return self.zero_frame
        return self.frame()

    def on_tick(self) -> list[bytes]:
        return [self._data()] if self.active and not self.asleep else []

    def on_input(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        commands = self.commands.feed(data)
        if not self.takes_commands:
            return out
        for cmd, value in commands:
            if cmd == pms5003.CMD_READ and not self.active and not self.asleep:
                out.append(self._data())
            elif cmd == pms5003.CMD_MODE:
                self.active = value == 1
                out.append(pms5003.encode_ack(cmd, value))
            elif cmd == pms5003.CMD_SLEEP and value == 0:
                self.asleep = True
                out.append(pms5003.encode_ack(cmd, value))
            elif cmd == pms5003.CMD_SLEEP and self.asleep:  # wake-up: data frames follow, no acknowledgement
                self.asleep, self._warming = False, self.warmup
        return out


class Sds011Emulator:
    """A Nova Fitness SDS011: reporting mode, sleep and work, working period, query data."""

    def __init__(self, pm2_5: float, pm10: float, *, active: bool = False, working: bool = False):
        self.pm2_5, self.pm10 = pm2_5, pm10
        self.active, self.working, self.period = active, working, 0
        self.commands = _Commands(sds011.find_command, sds011.parse_command)

    def on_tick(self) -> list[bytes]:
        return [sds011.encode(self.pm2_5, self.pm10)] if self.active and self.working else []

    def on_input(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for command in self.commands.feed(data):
            setting = command.data[1]
            if command.cmd == sds011.CMD_QUERY:
                if self.working:
                    out.append(sds011.encode(self.pm2_5, self.pm10))
                continue
            if command.cmd == sds011.CMD_MODE:
                if command.is_set:
                    self.active = setting == 0
                setting = 0 if self.active else 1
            elif command.cmd == sds011.CMD_SLEEP:
                if command.is_set:
                    self.working = setting == 1
                setting = 1 if self.working else 0
            elif command.cmd == sds011.CMD_PERIOD:
                if command.is_set:
                    self.period = setting
                setting = self.period
            out.append(sds011.encode_reply(command.cmd, bytes([command.data[0], setting, 0])))
        return out


class Sps30Emulator:
    """A Sensirion SPS30 on UART (datasheet section 5.3): idle, measuring or asleep; a new measurement per tick.

    Start is refused (0x43) while measuring, stop and sleep while not in the right mode; asleep, the UART
    is off: only a 0xFF byte, then wake-up, are heard (embedded-uart-sps ``sps30_wake_up``).

    Parameters
    ----------
    values : what every measurement carries
    measuring : start measuring in this output format (:data:`sps30.FLOAT_FORMAT` or :data:`sps30.UINT16_FORMAT`),
        as another program left it; None: idle
    asleep : start in sleep mode
    """

    def __init__(self, values: Mapping[str, float], *, measuring: int | None = None, asleep: bool = False):
        self.values = dict(values)
        self.output_format = measuring
        self.asleep, self._listening = asleep, False
        self._new = False
        self.commands = _Commands(sps30.find_frame, sps30.parse_command)

    @property
    def measuring(self) -> bool:
        return self.output_format is not None

    def on_tick(self) -> list[bytes]:
        self._new = self.measuring
        return []

    def on_input(self, data: bytes) -> list[bytes]:
        if self.asleep and not self._listening:  # the UART is off: a 0xFF (a low pulse) switches it on
            if b"\xff" not in data:
                return []
            self._listening, data = True, data[data.index(b"\xff") + 1:]
        return [answer for cmd, payload in self.commands.feed(data) if (answer := self._answer(cmd, payload))]

    def _answer(self, cmd: int, payload: bytes) -> bytes | None:
        if self.asleep:  # listening for one command after the 0xFF: only wake-up is taken
            self._listening = False
            if cmd != sps30.CMD_WAKE_UP:
                return None
            self.asleep = False
            return sps30.response(cmd)
        if cmd == sps30.CMD_START:
            if self.measuring or len(payload) != 2 or payload[1] not in (sps30.FLOAT_FORMAT, sps30.UINT16_FORMAT):
                return sps30.response(cmd, state=0x43 if self.measuring else 0x04)
            self.output_format = payload[1]
            return sps30.response(cmd)
        if cmd == sps30.CMD_WAKE_UP:  # awake already
            return sps30.response(cmd, state=0x43)
        if cmd in (sps30.CMD_STOP, sps30.CMD_SLEEP):  # stop from measuring, sleep from idle
            if self.measuring != (cmd == sps30.CMD_STOP):
                return sps30.response(cmd, state=0x43)
            self.output_format, self._new, self.asleep = None, False, cmd == sps30.CMD_SLEEP
            return sps30.response(cmd)
        if cmd == sps30.CMD_READ:
            if self.output_format is None:
                return sps30.response(cmd, state=0x43)
            if not self._new:
                return sps30.response(cmd)
            self._new = False
            return sps30.encode(self.values, output_format=self.output_format)
        return sps30.response(cmd, state=0x02)


# ------------------------------------------------------------------ CO2
class Mhz19Emulator:
    """A Winsen MH-Z19B: answers "read CO2", takes ABC on/off and range commands without answering.

    :meth:`power_cycle` is a power cut with the port left open: the sensor boots with ABC on (Tasmota
    ``xsns_15_mhz19.ino``) and answers its first reads with the boot mark U1U2 = 15000.
    """

    def __init__(self, co2: float, temperature: float):
        self.co2, self.temperature = co2, temperature
        self.abc, self.range = True, 5000
        self.boots = 0
        self._booting = 0
        self.commands = _Commands(mhz19.find_command, mhz19.parse_command)

    def power_cycle(self, boot_answers: int = 3) -> None:
        """Restart: ABC on, the next ``boot_answers`` reads answered with the boot mark."""
        self.abc, self._booting = True, boot_answers
        self.boots += 1

    def on_tick(self) -> list[bytes]:
        return []

    def on_input(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for cmd, payload in self.commands.feed(data):
            if cmd == mhz19.CMD_READ and self._booting:
                self._booting -= 1
                out.append(mhz19.encode_response(self.co2, self.temperature, extra=mhz19.BOOTING_U))
            elif cmd == mhz19.CMD_READ:
                out.append(mhz19.encode_response(self.co2, self.temperature))
            elif cmd == mhz19.CMD_ABC:
                self.abc = payload[0] == 0xA0
            elif cmd == mhz19.CMD_RANGE:
                self.range = int.from_bytes(payload[3:5], "big")
        return out


class ModbusEmulator:
    """A Modbus RTU slave: functions 03, 04 and 06 on register maps; anything else gets an exception.

    Subclasses fill :meth:`registers` (03/04) and :meth:`write` (06).
    """

    def __init__(self, slave: int):
        self.slave = slave
        self.commands = _Commands(lambda buf: modbus.find_request(buf, slave), modbus.parse_request)

    def registers(self, function: int) -> dict[int, int]:
        return {}

    def write(self, address: int, value: int) -> bool:
        return False

    def on_tick(self) -> list[bytes]:
        return []

    def on_input(self, data: bytes) -> list[bytes]:
        return [self._answer(request) for request in self.commands.feed(data)]

    def _answer(self, req: modbus.Request) -> bytes:
        if req.function == modbus.WRITE_SINGLE:
            if self.write(req.address, req.value):
                return modbus.request(self.slave, req.function, req.address, req.value)
            return modbus.exception_response(self.slave, req.function, 0x02)
        regs = self.registers(req.function)
        wanted = range(req.address, req.address + req.value)
        if not all(a in regs for a in wanted):
            return modbus.exception_response(self.slave, req.function, 0x02)
        return modbus.read_response(self.slave, req.function, [regs[a] for a in wanted])


class S8Emulator(ModbusEmulator):
    """A Senseair S8: input registers IR1-IR4; CO2 reads 0 for ``warmup`` ticks after power-on.

    With ``needs_wake``, a unit that answers only a request preceded by a 0x00 wake-up byte (esphome
    ``components/senseair/senseair.cpp``: "required by some S8 sensor models"): other requests go unanswered.
    """

    def __init__(self, co2: float, *, warmup: int = 0, meter_status: int = 0, needs_wake: bool = False):
        super().__init__(s8.SLAVE)
        self.co2, self.meter_status, self._warming = co2, meter_status, warmup
        self.needs_wake, self._awake = needs_wake, False
        self.unanswered = 0  # requests not preceded by the wake-up byte

    def on_input(self, data: bytes) -> list[bytes]:
        if not self.needs_wake:
            return super().on_input(data)
        out = []
        for byte in data:  # one at a time: the wake-up byte only counts before a request begins
            if byte == 0 and not self.commands.pending:
                self._awake = True
                continue
            for request in self.commands.feed(bytes([byte])):
                if self._awake:
                    out.append(self._answer(request))
                else:
                    self.unanswered += 1
                self._awake = False
        return out

    def on_tick(self) -> list[bytes]:
        self._warming = max(0, self._warming - 1)
        return []

    def registers(self, function: int) -> dict[int, int]:
        if function != modbus.READ_INPUT:
            return {}
        return {0: self.meter_status, 1: 0, 2: 0, 3: 0 if self._warming else round(self.co2)}


class Scd30Emulator(ModbusEmulator):
    """A Sensirion SCD30 on Modbus: registers hold zeros until started; a new measurement each tick."""

    def __init__(self, co2: float, temperature: float, relative_humidity: float):
        super().__init__(scd30.SLAVE)
        self.values = (co2, temperature, relative_humidity)
        self.measuring, self.interval = False, 2
        self._measurement = (0.0, 0.0, 0.0)
        self._ready = False

    def on_tick(self) -> list[bytes]:
        if self.measuring:
            self._measurement, self._ready = self.values, True
        return []

    def write(self, address: int, value: int) -> bool:
        if address == scd30.REG_START:
            self.measuring = True
        elif address == scd30.REG_STOP:
            self.measuring = False
        elif address == scd30.REG_MEASUREMENT_INTERVAL:
            self.interval = value
        else:
            return False
        return True

    def registers(self, function: int) -> dict[int, int]:
        if function != modbus.READ_HOLDING:
            return {}
        words = modbus.parse_response(scd30.encode(*self._measurement), scd30.SLAVE).registers
        regs = {scd30.REG_MEASUREMENT + i: w for i, w in enumerate(words)}
        regs[scd30.REG_DATA_READY] = int(self._ready)
        return regs

    def _answer(self, req: modbus.Request) -> bytes:
        answer = super()._answer(req)
        if req.function == modbus.READ_HOLDING and req.address == scd30.REG_MEASUREMENT:
            self._ready = False  # read out: data ready until the next measurement
        return answer


# ------------------------------------------------------------------ text lines
class NmeaEmulator:
    """A GNSS receiver with a fix: GGA, RMC, VTG, GSA and GSV every tick."""

    def __init__(self, latitude: float, longitude: float, *, speed: float = 1.4, course: float = 90.0,
                 hdop: float = 0.9, talker: str = "GN", start: float = 1_795_000_000.0):
        self.latitude, self.longitude = latitude, longitude
        self.speed, self.course, self.hdop, self.talker = speed, course, hdop, talker
        self.time = start

    def on_tick(self) -> list[bytes]:
        when = datetime.fromtimestamp(self.time, timezone.utc)
        self.time += 1.0
        sats = [(3, 40, 111, 42), (4, 15, 270, 35), (6, 61, 10, 44), (13, 6, 292, None), (19, 33, 150, 38)]
        return [
            nmea.encode_gga(when, self.latitude, self.longitude, satellites=len(sats), hdop=self.hdop,
                            altitude=131.5, talker=self.talker),
            nmea.encode_rmc(when, self.latitude, self.longitude, speed=self.speed, course=self.course,
                            talker=self.talker),
            nmea.encode_vtg(self.speed, self.course, talker=self.talker),
            nmea.encode_gsa(3, [s[0] for s in sats], hdop=self.hdop, talker=self.talker),
            *nmea.encode_gsv(sats, talker="GP"),
        ]

    def on_input(self, data: bytes) -> list[bytes]:
        return []


class KitlineEmulator:
    """A microcontroller kit printing kit lines: a boot message once, then ``lines`` every tick."""

    def __init__(self, readings: list[tuple[str, dict[str, float], str]], *, boot: str = "ESP-ROM:esp32s3-20210327"):
        self.lines = [kitline.encode(sensor, values, form=form) for sensor, values, form in readings]
        self._boot: list[bytes] = [boot.encode() + b"\r\n"] if boot else []

    def on_tick(self) -> list[bytes]:
        out, self._boot = self._boot + self.lines, []
        return out

    def on_input(self, data: bytes) -> list[bytes]:
        return []


# ------------------------------------------------------------------ on a pseudo-terminal
class EmulatorPort:
    """Runs ``emulator`` on ``port`` in a thread: a tick every ``tick_s``, answers in between.

    Attributes
    ----------
    written : frames written whole to the port
    received : every byte the host wrote, in order
    """

    def __init__(self, port: PtyPort, emulator: Emulator, *, tick_s: float = 0.05):
        self.port, self.emulator, self.tick_s = port, emulator, tick_s
        self.written = 0
        self.received = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)

    def start(self) -> "EmulatorPort":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _send(self, frames: list[bytes]) -> None:
        for frame in frames:
            if self.port.write(frame):
                self.written += 1

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_tick:
                with self._lock:
                    self._send(self.emulator.on_tick())
                next_tick = max(next_tick + self.tick_s, now)
            fd = self.port.fileno()
            if fd is None:
                self._stop.wait(self.tick_s)
                continue
            ready, _, _ = select.select([fd], [], [], max(0.0, next_tick - time.monotonic()))
            if ready:
                data = self.port.read()
                if data:
                    with self._lock:
                        self.received += data
                        self._send(self.emulator.on_input(data))
