"""Nova Fitness SDS011 (and SDS021, SDS018) particulate matter sensor frames.

Sources
-------
- Nova Fitness "Laser Dust Sensor Control Protocol" V1.3 (2015), the
  command set shared by the SDS011, SDS018 and SDS021: every frame below,
  and its worked examples (data frame, replies, commands, used as test
  vectors here); Nova Fitness "SDS011 laser PM2.5 sensor specification"
  V1.3 for the data frame, PM2.5 = ((high x 256) + low) / 10 and the
  checksum.
- Cross-checked with avaldebe/PyPMS ``src/pms/sensors/novafitness/sds01x.py``
  and its captured frames (``tests/captured_data/SDS01x.hexdump`` with
  ``SDS01x.csv``, used as test vectors), esphome/esphome
  ``esphome/components/sds011/sds011.cpp`` and arendst/Tasmota
  ``tasmota/tasmota_xsns_sensor/xsns_20_novasds.ino``.

Serial: 9600 baud, 8 data bits, no parity, 1 stop bit, 3.3 V TTL on a 5 V
supply.

Registered names: ``sds011`` and ``sds021`` (active reporting mode, a
*stream*: each opening of the port sends :data:`WORK` then
:data:`ACTIVE_MODE`), and ``sds011-query`` (query reporting mode, *polled*:
:data:`WORK` and :data:`QUERY_MODE` once, then :data:`QUERY_DATA` every
interval).  An SDS018 speaks the same protocol (read it as ``sds011``).

Frames from the sensor (10 bytes, words little-endian)::

    AA C0 P25L P25H P10L P10H ID1 ID2 CS AB    data: PM2.5, PM10 x 10 [0.1 µg/m³]
    AA C5 CMD  d1   d2   d3   ID1 ID2 CS AB    reply to a command
                                               CS = sum of bytes 2-7, as uint8

Commands from the host (19 bytes)::

    AA B4 CMD d2 .. d13 ID1 ID2 CS AB          CS = sum of bytes 2-16, as uint8;
                                               ID FF FF = every sensor on the line
    CMD 02  d2: 0 query / 1 set   d3: 0 active / 1 query       reporting mode
    CMD 04                                                     query data (answer: AA C0 …)
    CMD 05  d12 d13: the new ID                                set device ID
    CMD 06  d2: 0 query / 1 set   d3: 0 sleep  / 1 work        sleep and work
    CMD 07                                                     firmware version
    CMD 08  d2: 0 query / 1 set   d3: 0 continuous / 1-30 min   working period

Replies (``AA C5``) echo CMD, d2 and the setting in d1-d2 (``AA C5 02 01 01
00 A1 60 05 AB``: set to query mode); the firmware version reply carries
year, month and day (``AA C5 07 0F 07 0A A1 60 28 AB``: 15-07-10); the set
device ID reply carries the new ID in the ID bytes.  The device ID is
written ID1 ID2 = A1 60 for device "A160".

Notes
-----
- Reporting mode, working period and device ID are kept in the sensor's
  flash: a sensor once set to query mode stays silent after power-on.  That
  is why opening the port sets the mode the registration expects.
- With a working period of n minutes the sensor measures for 30 s and then
  sleeps for n x 60 - 30 s; the default (continuous) sends one frame a second.
- The fan needs about 30 s after power-on or work to give stable readings
  (:data:`WARMUP_S`).  A data frame of zeros, sent while the fan starts,
  raises :class:`WarmingUp` (as PyPMS and ESPHome drop it).
- Replies (``AA C5``) are cut by :func:`find_frame` like data frames and
  decode as :class:`Unsupported` naming what they report (the reader counts
  them as ignored).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.sensors.base import (
    FrameError, Observation, Unsupported, WarmingUp, as_bytes, known_command, scaled_int,
)

SENSOR = "novafitness-sds011"
KIND = "stream"
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1
WARMUP_S = 30.0  # [s]

HEAD = 0xAA
TAIL = 0xAB
DATA = 0xC0
REPLY = 0xC5
COMMAND = 0xB4
FRAME_SIZE = 10
COMMAND_SIZE = 19
ALL_SENSORS = 0xFFFF

CMD_MODE = 0x02
CMD_QUERY = 0x04
CMD_SET_ID = 0x05
CMD_SLEEP = 0x06
CMD_FIRMWARE = 0x07
CMD_PERIOD = 0x08
COMMANDS: dict[int, str] = {CMD_MODE: "reporting mode", CMD_QUERY: "query data", CMD_SET_ID: "set device ID",
                            CMD_SLEEP: "sleep and work", CMD_FIRMWARE: "firmware version",
                            CMD_PERIOD: "working period"}
# Replies that report a setting in d2: command -> (what is set, names of the settings 0 and 1).
_SETTINGS: dict[int, tuple[str, tuple[str, str]]] = {CMD_MODE: ("reporting mode", ("active", "query")),
                                                     CMD_SLEEP: ("state", ("sleep", "work"))}


def checksum(data: bytes) -> int:
    """Nova Fitness checksum: the sum of ``data``'s bytes, as uint8."""
    return sum(data) & 0xFF


# ------------------------------------------------------------------ frames from the sensor
def decode(frame: bytes, *, sensor: str = SENSOR) -> Observation:
    """Decode one 10-byte frame.

    Parameters
    ----------
    frame : exactly :data:`FRAME_SIZE` bytes, as cut by :func:`find_frame`
    sensor : the model id written into the observation (``novafitness-sds021`` for the SDS021)

    Returns
    -------
    Observation with ``pm2_5`` and ``pm10`` [µg/m³], 0.1 µg/m³ resolution.

    Raises
    ------
    FrameError : wrong size, head, tail, command byte or checksum
    WarmingUp : both values zero (fan starting)
    Unsupported : a reply to a command (``AA C5``), not a measurement; the message says what it reports
    """
    frame = as_bytes(frame)
    if len(frame) != FRAME_SIZE:
        raise FrameError(f"SDS011 frame of {len(frame)} bytes; expected {FRAME_SIZE}")
    if frame[0] != HEAD or frame[9] != TAIL:
        raise FrameError(f"SDS011 frame runs {frame[0]:02x}…{frame[9]:02x}; expected aa…ab")
    if frame[8] != sum(frame[2:8]) & 0xFF:
        raise FrameError(f"SDS011 checksum {frame[8]:02x} does not match {checksum(frame[2:8]):02x}")
    kind = frame[1]
    if kind == REPLY:
        raise Unsupported(f"SDS011 reply, not a measurement: {describe_reply(frame)} ({frame.hex()})")
    if kind != DATA:
        raise FrameError(f"SDS011 frame of kind {kind:02x}; expected c0 (data) or c5 (reply)")
    pm2_5 = frame[2] | frame[3] << 8
    pm10 = frame[4] | frame[5] << 8
    if not pm2_5 and not pm10:
        raise WarmingUp("SDS011 sends zeros: the fan is still starting")
    return Observation(sensor=sensor, values={"pm2_5": pm2_5 / 10, "pm10": pm10 / 10})


def describe_reply(frame: bytes) -> str:
    """What a checksum-valid reply frame ``AA C5 CMD d1 d2 d3 ID1 ID2 CS AB`` reports, in words.

    E.g. ``"device a160: reporting mode set to query"``, ``"device a160: firmware 15-07-10"``.
    """
    cmd, d1, d2, d3 = frame[2:6]
    device = frame[6:8].hex()
    verb = "set to" if d1 else "is"
    if cmd in _SETTINGS:
        what, names = _SETTINGS[cmd]
        return f"device {device}: {what} {verb} {names[d2] if d2 < 2 else f'0x{d2:02X}'}"
    if cmd == CMD_PERIOD:
        return f"device {device}: working period {verb} " + (f"{d2} min" if d2 else "continuous")
    if cmd == CMD_FIRMWARE:
        return f"device {device}: firmware {d1:02d}-{d2:02d}-{d3:02d}"
    if cmd == CMD_SET_ID:
        return f"device ID set to {device}"
    return f"device {device}: reply to command 0x{cmd:02X} with data {frame[3:6].hex()}"


def encode(pm2_5: float, pm10: float, *, device_id: int = 0xA160) -> bytes:
    """Build the data frame a sensor sends for ``pm2_5`` and ``pm10`` [µg/m³] (rounded to 0.1).

    Raises
    ------
    ValueError : a value outside 0..6553.5 µg/m³, or not a number
    """
    return _frame(DATA, _tenths("pm2_5", pm2_5).to_bytes(2, "little") + _tenths("pm10", pm10).to_bytes(2, "little"),
                  device_id)


def encode_reply(cmd: int, data: bytes, *, device_id: int = 0xA160) -> bytes:
    """Build the reply ``AA C5 CMD d1 d2 d3 ID1 ID2 CS AB`` to a command (``data`` is d1-d3)."""
    if len(data) != 3:
        raise ValueError(f"SDS011 reply data is 3 bytes, got {len(data)}")
    return _frame(REPLY, bytes([cmd]) + data, device_id)


def _frame(kind: int, payload: bytes, device_id: int) -> bytes:
    body = payload + device_id.to_bytes(2, "big")
    return bytes([HEAD, kind]) + body + bytes([checksum(body), TAIL])


def _tenths(name: str, value: float) -> int:
    return scaled_int(name, value, 0, 0xFFFF, scale=10, what="an SDS011 frame")


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next checksum-valid 10-byte frame (data or reply) out of ``buffer``.

    Returns ``(frame, rest)``; ``frame`` is ``None`` when no complete frame is
    there yet and ``rest`` keeps a tail that may begin one.  A head byte not
    followed by a valid frame is passed over one byte at a time, so a frame
    that begins inside a torn one is still found.
    """
    return _find(as_bytes(buffer), FRAME_SIZE, (DATA, REPLY))


def _find(buf: bytes, size: int, kinds: tuple[int, ...]) -> tuple[bytes | None, bytes]:
    start = 0
    while True:
        i = buf.find(HEAD, start)
        if i < 0:
            return None, b""
        if len(buf) - i > 1 and buf[i + 1] not in kinds:  # a head byte in garbage or in a payload
            start = i + 1
            continue
        if len(buf) - i < size:
            return None, buf[i:]
        frame = buf[i:i + size]
        if frame[1] in kinds and frame[-1] == TAIL and frame[-2] == sum(frame[2:-2]) & 0xFF:
            return frame, buf[i + size:]
        start = i + 1


# ------------------------------------------------------------------ commands from the host
@dataclass(frozen=True)
class Command:
    """A decoded 19-byte host command: ``cmd``, data bytes d2-d13 and the device ID it addresses."""

    cmd: int
    data: bytes
    device_id: int

    @property
    def is_set(self) -> bool:
        """True for "set", False for "query" (d2 of the mode, sleep and period commands)."""
        return self.data[0] == 1


def command(cmd: int, data: bytes = b"", *, device_id: int = ALL_SENSORS) -> bytes:
    """Build a 19-byte command ``AA B4 CMD d2..d13 ID1 ID2 CS AB``; ``data`` (d2…) is padded with zeros.

    Raises
    ------
    ValueError : an unknown command byte, more than 12 data bytes, an ID beyond 16 bits
    """
    known_command(cmd, COMMANDS, "SDS011")
    if len(data) > 12 or not 0 <= device_id <= 0xFFFF:
        raise ValueError("SDS011 command data is at most 12 bytes and the device ID 16 bits")
    body = bytes([cmd]) + data.ljust(12, b"\x00") + device_id.to_bytes(2, "big")
    return bytes([HEAD, COMMAND]) + body + bytes([checksum(body), TAIL])


def working_period(minutes: int, *, device_id: int = ALL_SENSORS) -> bytes:
    """The command that sets the working period: 0 = continuous, 1-30 = one measurement every n minutes."""
    if not 0 <= minutes <= 30:
        raise ValueError(f"SDS011 working period {minutes} min; choose 0 (continuous) to 30")
    return command(CMD_PERIOD, bytes([1, minutes]), device_id=device_id)


def set_device_id(new_id: int, *, device_id: int = ALL_SENSORS) -> bytes:
    """The command that gives the sensor ``device_id`` the ID ``new_id`` (0x0000-0xFFFF; it answers with the new ID)."""
    if not 0 <= new_id <= 0xFFFF:
        raise ValueError(f"SDS011 device ID {new_id} does not fit in 16 bits")
    return command(CMD_SET_ID, bytes(10) + new_id.to_bytes(2, "big"), device_id=device_id)


QUERY_DATA = command(CMD_QUERY)
FIRMWARE_VERSION = command(CMD_FIRMWARE)
ACTIVE_MODE = command(CMD_MODE, b"\x01\x00")
QUERY_MODE = command(CMD_MODE, b"\x01\x01")
SLEEP = command(CMD_SLEEP, b"\x01\x00")
WORK = command(CMD_SLEEP, b"\x01\x01")
CONTINUOUS = working_period(0)

INIT_COMMANDS: tuple[bytes, ...] = (WORK, ACTIVE_MODE)
QUERY_INIT_COMMANDS: tuple[bytes, ...] = (WORK, QUERY_MODE)


def parse_command(frame: bytes) -> Command:
    """Split a 19-byte host command (emulators use it).

    Raises
    ------
    FrameError : wrong size, head, tail, kind or checksum
    Unsupported : a well-formed command with a command byte the protocol does not list
    """
    frame = as_bytes(frame)
    if len(frame) != COMMAND_SIZE:
        raise FrameError(f"SDS011 command of {len(frame)} bytes; expected {COMMAND_SIZE}")
    if frame[0] != HEAD or frame[1] != COMMAND or frame[-1] != TAIL:
        raise FrameError(f"SDS011 command {frame[:2].hex()}…{frame[-1]:02x}; expected aab4…ab")
    if frame[-2] != checksum(frame[2:-2]):
        raise FrameError(f"SDS011 command checksum {frame[-2]:02x} does not match {checksum(frame[2:-2]):02x}")
    if frame[2] not in COMMANDS:
        raise Unsupported(f"SDS011 command 0x{frame[2]:02X} is not in the control protocol")
    return Command(frame[2], frame[3:15], int.from_bytes(frame[15:17], "big"))


def find_command(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next checksum-valid 19-byte host command out of ``buffer`` (emulators use it)."""
    return _find(as_bytes(buffer), COMMAND_SIZE, (COMMAND,))
