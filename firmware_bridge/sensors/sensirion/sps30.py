"""Sensirion SPS30 particulate matter sensor over UART (SHDLC frames).

Sources: Sensirion "Datasheet SPS30" Version 1.0 – D1 (March 2020),
section 5 "Operation and Communication through the UART Interface"
(5.1 physical layer, 5.2 SHDLC frame layer, 5.3 commands, 5.4 error codes);
captured frames in avaldebe/PyPMS ``tests/captured_data/SPS30.hexdump``
(used as test vectors here).  Serial: 115200 baud, 8 data bits, no parity,
1 stop bit, 5 V supply, 3.3 V/5 V tolerant TTL; the SEL pin left floating
or tied to VDD selects the UART.

Registered as ``sps30`` (*polled*: opening the port sends
:data:`START_MEASUREMENT`, then the reader sends :data:`READ_COMMAND`
every interval).

SHDLC frames::

    host to sensor (MOSI):  7E ADR CMD L       DATA… CHK 7E
    sensor to host (MISO):  7E ADR CMD STATE L DATA… CHK 7E

    ADR   0x00 (the SPS30's only address)
    L     number of data bytes, before stuffing (0..255)
    CHK   the LSB of the sum of ADR…DATA, inverted (before stuffing)
    STATE bit 7: device error flag; bits 0-6: error code of this command

Between the two 0x7E, the bytes 0x7E 0x7D 0x11 0x13 are sent as 0x7D
followed by the byte xor 0x20 (``7D 5E``, ``7D 5D``, ``7D 31``, ``7D 33``).

Commands used here::

    0x00 start measurement   data 01 03: measurement, big-endian IEEE754 floats
    0x01 stop measurement
    0x03 read measured values  answer: 40 bytes = 10 floats, or no data

The ten floats, in order: mass concentration PM1.0, PM2.5, PM4.0, PM10
[µg/m³]; number concentration PM0.5, PM1.0, PM2.5, PM4.0, PM10 [#/cm³];
typical particle size [µm].

Notes
-----
- The sensor measures once a second; an answer with no data (``L = 0``)
  means no new measurement since the last read, e.g. just after the start:
  :class:`WarmingUp`.  The datasheet gives 8 s for the first readings to
  settle and 30 s for number concentrations to be within specification
  (:data:`WARMUP_S`).  An answer of ten zero floats is taken for warm-up too.
- A non-zero STATE in the answer to "read measured values" raises
  :class:`FrameError` naming the error code (e.g. 0x43 "command not allowed
  in current state" when the sensor is not measuring: the next opening of the
  port sends the start command again).  Answers to other commands decode as
  :class:`Unsupported` (the reader counts them as ignored), whatever their
  state: a start sent to a sensor already measuring answers 0x43, harmlessly.
- The number concentrations are cumulative from 0.3 µm ("PM0.5" counts
  0.3-0.5 µm), and stored in their own unit [#/cm³] (``nc*``), never mixed
  with Plantower's counts per 0.1 L (``pn*``).
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

from firmware_bridge.sensors.base import FrameError, Observation, Unsupported, WarmingUp, as_bytes, known_command

SENSOR = "sensirion-sps30"
KIND = "polled"
BAUDRATE = 115200
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1
WARMUP_S = 30.0  # [s] number concentrations within specification (datasheet table 1, "start-up time")

FLAG = 0x7E
ESCAPE = 0x7D
ADDRESS = 0x00
CMD_START = 0x00
CMD_STOP = 0x01
CMD_READ = 0x03
CMD_SLEEP = 0x10
CMD_WAKE_UP = 0x11
CMD_CLEAN = 0x56
CMD_DEVICE_INFO = 0xD0
CMD_RESET = 0xD3
COMMANDS: dict[int, str] = {CMD_START: "start measurement", CMD_STOP: "stop measurement",
                            CMD_READ: "read measured values", CMD_SLEEP: "sleep", CMD_WAKE_UP: "wake-up",
                            CMD_CLEAN: "start fan cleaning", CMD_DEVICE_INFO: "device information",
                            CMD_RESET: "device reset"}
ERRORS: dict[int, str] = {
    0x00: "no error", 0x01: "wrong data length for this command", 0x02: "unknown command",
    0x03: "no access right for command", 0x04: "illegal command parameter or parameter out of range",
    0x28: "internal function argument out of range", 0x43: "command not allowed in current state",
}
FIELDS: tuple[str, ...] = ("pm1", "pm2_5", "pm4", "pm10", "nc0_5", "nc1", "nc2_5", "nc4", "nc10",
                           "typical_particle_size")
FLOAT_FORMAT = 0x03
_FLOATS = struct.Struct(">10f")
_STUFFED = {FLAG, ESCAPE, 0x11, 0x13}


def checksum(data: bytes) -> int:
    """SHDLC checksum of the unstuffed bytes between the start flag and the checksum."""
    return ~sum(data) & 0xFF


def stuff(data: bytes) -> bytes:
    """Escape 0x7E, 0x7D, 0x11 and 0x13 as 0x7D, byte xor 0x20."""
    out = bytearray()
    for b in data:
        if b in _STUFFED:
            out += bytes([ESCAPE, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    """Undo :func:`stuff`.

    Raises
    ------
    FrameError : an escape byte at the end, or followed by a byte that is not a stuffed one
    """
    if ESCAPE not in data:
        return data
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == ESCAPE:
            nxt = next(it, None)
            if nxt is None or nxt ^ 0x20 not in _STUFFED:
                raise FrameError(f"SPS30 frame with a bad escape sequence 7d{'' if nxt is None else f'{nxt:02x}'}")
            b = nxt ^ 0x20
        out.append(b)
    return bytes(out)


def frame(content: bytes) -> bytes:
    """Wrap unstuffed ``content`` (ADR…DATA) with its checksum, stuffing and flags."""
    return bytes([FLAG]) + stuff(content + bytes([checksum(content)])) + bytes([FLAG])


def command(cmd: int, data: bytes = b"") -> bytes:
    """Build a MOSI frame ``7E 00 CMD L DATA CHK 7E``."""
    known_command(cmd, COMMANDS, "SPS30")
    if len(data) > 255:
        raise ValueError(f"SPS30 command data is at most 255 bytes, got {len(data)}")
    return frame(bytes([ADDRESS, cmd, len(data)]) + data)


def response(cmd: int, data: bytes = b"", *, state: int = 0) -> bytes:
    """Build a MISO frame ``7E 00 CMD STATE L DATA CHK 7E`` (the sensor's side; emulators use it)."""
    if len(data) > 255 or not 0 <= state <= 0xFF:
        raise ValueError("SPS30 answer data is at most 255 bytes and the state one byte")
    return frame(bytes([ADDRESS, cmd, state, len(data)]) + data)


def parse_command(data: bytes) -> tuple[int, bytes]:
    """Check and split a MOSI frame into ``(cmd, data)`` (emulators use it).

    Raises
    ------
    FrameError : no flags, bad stuffing, wrong length byte or checksum, not address 0
    """
    content = _content(data, 3, "command")
    return content[1], content[3:-1]


def _content(data: bytes, header: int, what: str) -> bytes:
    """The unstuffed bytes between the flags, checked: size, checksum, address, and the length byte.

    ``header`` is the number of bytes before the data: 3 in a command (ADR CMD L), 4 in an answer
    (ADR CMD STATE L).
    """
    data = as_bytes(data)
    if len(data) < header + 3 or data[0] != FLAG or data[-1] != FLAG:
        raise FrameError(f"SPS30 {what} of {len(data)} bytes is not framed by 7e…7e")
    content = unstuff(data[1:-1])
    if len(content) < header + 1:
        raise FrameError(f"SPS30 {what} of {len(content)} bytes; expected at least {header + 1} between the flags")
    if content[-1] != checksum(content[:-1]):
        raise FrameError(f"SPS30 checksum {content[-1]:02x} does not match {checksum(content[:-1]):02x}")
    if content[0] != ADDRESS:
        raise FrameError(f"SPS30 {what} for address {content[0]:02x}; expected 00")
    if content[header - 1] != len(content) - header - 1:
        raise FrameError(f"SPS30 {what} length byte {content[header - 1]} but {len(content) - header - 1} data bytes")
    return content


START_MEASUREMENT = command(CMD_START, bytes([0x01, FLOAT_FORMAT]))
STOP_MEASUREMENT = command(CMD_STOP)
READ_COMMAND = command(CMD_READ)
INIT_COMMANDS: tuple[bytes, ...] = (START_MEASUREMENT,)


# ------------------------------------------------------------------ decoding
class Answer(NamedTuple):
    """An unstuffed, checksum-valid MISO frame."""

    cmd: int
    state: int
    data: bytes

    @property
    def error(self) -> str:
        """The state byte in words."""
        code = self.state & 0x7F
        text = ERRORS.get(code, "unknown error code")
        flag = ", device error flag set (read the device status register)" if self.state & 0x80 else ""
        return f"state 0x{self.state:02X}: {text}{flag}"


def parse_answer(data: bytes) -> Answer:
    """Check and split one MISO frame, flags included.

    Raises
    ------
    FrameError : no flags, bad stuffing, wrong length byte or checksum, not address 0
    """
    content = _content(data, 4, "answer")
    return Answer(content[1], content[2], content[4:-1])


def decode(data: bytes) -> Observation:
    """Decode the answer to "read measured values".

    Returns
    -------
    Observation with ``pm1, pm2_5, pm4, pm10`` [µg/m³], ``nc0_5, nc1, nc2_5,
    nc4, nc10`` [#/cm³] and ``typical_particle_size`` [µm].

    Raises
    ------
    FrameError : a malformed frame, a non-zero state, a data length that is not 40, a value not finite
    WarmingUp : no new data yet (empty answer), or ten zeros
    Unsupported : an answer to another command (start, stop…)
    """
    answer = parse_answer(data)
    cmd, state, payload = answer
    if cmd != CMD_READ:
        name = COMMANDS.get(cmd, f"0x{cmd:02X}")
        raise Unsupported(f"SPS30 answer to {name} ({answer.error}), not a measurement")
    if state:
        raise FrameError(f"SPS30 refused to read measured values: {answer.error}")
    if not payload:
        raise WarmingUp("SPS30 has no new measurement yet")
    if len(payload) != _FLOATS.size:
        raise FrameError(f"SPS30 measurement of {len(payload)} bytes; expected {_FLOATS.size} "
                         "(big-endian floats: was the measurement started in integer format?)")
    floats = _FLOATS.unpack(payload)
    if not math.isfinite(sum(floats)):  # ten float32 cannot overflow a double: only inf or NaN can do this
        raise FrameError("SPS30 measurement holds a value that is not a finite number")
    if not any(floats):
        raise WarmingUp("SPS30 sends zeros: the fan is still starting")
    return Observation(SENSOR, dict(zip(FIELDS, floats)))


def encode(values: dict[str, float]) -> bytes:
    """Build the answer to "read measured values" for ``values`` (every name of :data:`FIELDS`).

    Values are sent as float32: they come back rounded to float32 precision.

    Raises
    ------
    ValueError : a quantity is missing
    """
    missing = [name for name in FIELDS if name not in values]
    if missing:
        raise ValueError(f"SPS30 measurement needs {', '.join(missing)}")
    return response(CMD_READ, _FLOATS.pack(*(values[name] for name in FIELDS)))


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Cut the next frame ``7E … 7E`` out of ``buffer``.

    Returns ``(frame, rest)``.  Bytes before a flag are skipped; two flags in
    a row (the end of a torn frame and the start of the next) are taken as
    one start.  The frame is not checked here: :func:`decode` does that.
    """
    buf = as_bytes(buffer)
    start = buf.find(FLAG)
    while start >= 0:
        end = buf.find(FLAG, start + 1)
        if end < 0:
            return None, buf[start:]
        if end > start + 1:
            return buf[start:end + 1], buf[end + 1:]
        start = end
    return None, b""
