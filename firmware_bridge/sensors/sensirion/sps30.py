"""Sensirion SPS30 particulate matter sensor over UART (SHDLC frames).

Sources
-------
- Sensirion "Datasheet SPS30" Version 1.0 – D1 (March 2020), section 5
  "Operation and Communication through the UART Interface": 5.1 physical
  layer, 5.2 SHDLC frame layer (frames, byte stuffing, checksum, MISO state
  byte), 5.3 UART commands (start measurement with its output format,
  stop, read measured values in float and integer format, sleep, wake-up,
  fan cleaning, device information, read version, device status register,
  reset; each with its example frames, used as test vectors here), 5.4
  error codes.
- Sensirion/embedded-uart-sps ``sps30-uart/sps30.c`` (command bytes, the
  ``0xFF`` byte before wake-up, the serial number as a string of at most 32
  characters) and ``embedded-uart-common/sensirion_shdlc.c`` (stuffing of
  0x11, 0x13, 0x7D, 0x7E by 0x7D and bit 5 inverted; checksum = inverted
  LSB of the sum); the Linux kernel's ``drivers/iio/chemical/sps30_serial.c``
  (torvalds/linux: empty answer = no new measurement, non-zero state refused).
- Captured frames used as test vectors: avaldebe/PyPMS
  ``tests/captured_data/SPS30.hexdump`` with ``SPS30.csv`` (ten answers to
  "read measured values", several with stuffed bytes) and the short answers
  quoted in PyPMS ``tests/sensors/test_message.py``; an answer to wake-up
  captured in https://raspberrypi.stackexchange.com/questions/137657.

Serial: 115200 baud, 8 data bits, no parity, 1 stop bit, 5 V supply,
3.3 V/5 V tolerant TTL; the SEL pin left floating or tied to VDD selects the
UART.

Registered as ``sps30`` (*polled*: opening the port sends :data:`WAKE_UP`,
:data:`STOP_MEASUREMENT` and :data:`START_MEASUREMENT`, then the reader sends
:data:`READ_COMMAND` every interval).  The three start-up commands bring a
sensor to float-format measurement from any state another program may have
left it in: asleep (the UART off until the 0xFF byte of :data:`WAKE_UP`),
idle, or measuring in the integer format (a start is refused with 0x43 while
it measures, so it is stopped first).  Each is answered (an ``Unsupported``
answer for the reader, counted as ignored, whatever its state byte: wake-up
may answer an error when the sensor was not asleep, and does on firmware
before 2.0, which has no sleep; so may stop when it was idle), and the reader
leaves :data:`COMMAND_GAP_S` after each, longer than the datasheet's execution
times (5 ms for wake-up, 20 ms for stop and start; Sensirion/embedded-uart-sps
waits for each answer before the next command).

SHDLC frames::

    host to sensor (MOSI):  7E ADR CMD L       DATA… CHK 7E
    sensor to host (MISO):  7E ADR CMD STATE L DATA… CHK 7E

    ADR   0x00 (the SPS30's only address)
    L     number of data bytes, before stuffing (0..255)
    CHK   the LSB of the sum of ADR…DATA, inverted (before stuffing)
    STATE bit 7: device error flag (read the device status register);
          bits 0-6: error code of this command (:data:`ERRORS`)

Between the two 0x7E, the bytes 0x7E 0x7D 0x11 0x13 are sent as 0x7D
followed by the byte xor 0x20 (``7D 5E``, ``7D 5D``, ``7D 31``, ``7D 33``).

Commands (MOSI frames as sent)::

    0x00 start measurement    7E 00 00 02 01 03 F9 7E   data 01 03: big-endian IEEE754 floats
                              7E 00 00 02 01 05 F7 7E   data 01 05: big-endian uint16 (firmware 2.0+)
    0x01 stop measurement     7E 00 01 00 FE 7E
    0x03 read measured values 7E 00 03 00 FC 7E         answer: 40 bytes (floats), 20 bytes
                                                        (uint16), or none (no new measurement)
    0x10 sleep                7E 00 10 00 EF 7E         (firmware 2.0+, from idle mode)
    0x11 wake-up              FF 7E 00 7D 31 00 EE 7E   0xFF wakes the UART first
    0xD0 device information   7E 00 D0 01 00 2E 7E      product type, 03: serial number;
                                                        answer: ASCII string, NUL-terminated
    0xD1 read version         7E 00 D1 00 2E 7E         answer: firmware major, minor, reserved,
                                                        hardware revision, reserved, SHDLC major, minor

The ten values, in order: mass concentration PM1.0, PM2.5, PM4.0, PM10
[µg/m³]; number concentration PM0.5, PM1.0, PM2.5, PM4.0, PM10 [#/cm³];
typical particle size [µm in float format, nm in integer format].

Notes
-----
- The sensor measures once a second; an answer with no data (``L = 0``)
  means no new measurement since the last read, e.g. just after the start:
  :class:`WarmingUp`.  The datasheet gives 8 s for the first readings to
  settle and 30 s for number concentrations to be within specification
  (:data:`WARMUP_S`).  An answer of ten zeros is taken for warm-up too.
- Both output formats are decoded: a sensor an earlier program started in
  integer format answers 20 bytes (and refuses the float start command
  with 0x43 until stopped, which the start-up commands do); its values are
  whole µg/m³ and #/cm³ and its typical size is converted from nm to µm.
- A non-zero STATE in the answer to "read measured values" raises
  :class:`FrameError` naming the error code (e.g. 0x43 "command not allowed
  in current state" when the sensor is not measuring: the next opening of the
  port sends the start-up commands again; 0x80 alone: the device status
  register reports a fan or laser fault, and the values are not trusted).
  Answers to other commands decode as :class:`Unsupported` (the reader
  counts them as ignored), whatever their state: a wake-up sent to a sensor
  awake, or a stop to a sensor idle, may answer 0x43, harmlessly.
- The number concentrations are cumulative from 0.3 µm ("PM0.5" counts
  0.3-0.5 µm), and stored in their own unit [#/cm³] (``nc*``), never mixed
  with Plantower's counts per 0.1 L (``pn*``).
"""

from __future__ import annotations

import math
import struct
from typing import Mapping, NamedTuple

from firmware_bridge.sensors.base import (
    FrameError, Observation, Unsupported, WarmingUp, as_bytes, known_command, scaled_int,
)

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
CMD_CLEANING_INTERVAL = 0x80
CMD_DEVICE_INFO = 0xD0
CMD_VERSION = 0xD1
CMD_STATUS = 0xD2
CMD_RESET = 0xD3
COMMANDS: dict[int, str] = {CMD_START: "start measurement", CMD_STOP: "stop measurement",
                            CMD_READ: "read measured values", CMD_SLEEP: "sleep", CMD_WAKE_UP: "wake-up",
                            CMD_CLEAN: "start fan cleaning", CMD_CLEANING_INTERVAL: "auto cleaning interval",
                            CMD_DEVICE_INFO: "device information", CMD_VERSION: "read version",
                            CMD_STATUS: "read device status register", CMD_RESET: "device reset"}
INFO_PRODUCT_TYPE = 0x00  # device information: "00080000" for an SPS30
INFO_SERIAL_NUMBER = 0x03
ERRORS: dict[int, str] = {
    0x00: "no error", 0x01: "wrong data length for this command", 0x02: "unknown command",
    0x03: "no access right for command", 0x04: "illegal command parameter or parameter out of range",
    0x28: "internal function argument out of range", 0x43: "command not allowed in current state",
}
FIELDS: tuple[str, ...] = ("pm1", "pm2_5", "pm4", "pm10", "nc0_5", "nc1", "nc2_5", "nc4", "nc10",
                           "typical_particle_size")
FLOAT_FORMAT = 0x03
UINT16_FORMAT = 0x05
_FLOATS = struct.Struct(">10f")
_UINT16 = struct.Struct(">10H")
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
START_MEASUREMENT_UINT16 = command(CMD_START, bytes([0x01, UINT16_FORMAT]))
STOP_MEASUREMENT = command(CMD_STOP)
READ_COMMAND = command(CMD_READ)
SLEEP = command(CMD_SLEEP)
# In sleep mode the UART is off: a single 0xFF (a low pulse on RX) wakes it, the wake-up command must
# follow within 100 ms (Sensirion/embedded-uart-sps sps30_wake_up sends the two back to back).
WAKE_UP = b"\xff" + command(CMD_WAKE_UP)
PRODUCT_TYPE = command(CMD_DEVICE_INFO, bytes([INFO_PRODUCT_TYPE]))
SERIAL_NUMBER = command(CMD_DEVICE_INFO, bytes([INFO_SERIAL_NUMBER]))
READ_VERSION = command(CMD_VERSION)
# From any state to measuring in floats: asleep -> idle, measuring (maybe integers) -> idle, idle -> measuring.
INIT_COMMANDS: tuple[bytes, ...] = (WAKE_UP, STOP_MEASUREMENT, START_MEASUREMENT)
COMMAND_GAP_S = 0.05  # [s] after each start-up command: longer than its execution time (20 ms at most)


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

    Returned values are in the float format's units whatever the format the
    measurement was started in (an integer typical size is converted from nm).

    Raises
    ------
    FrameError : a malformed frame, a non-zero state, a data length that is neither 40 (floats) nor 20
        (uint16), a value not finite
    WarmingUp : no new data yet (empty answer), or ten zeros
    Unsupported : an answer to another command (start, stop, device information…); the message says what
        it carries
    """
    answer = parse_answer(data)
    cmd, state, payload = answer
    if cmd != CMD_READ:
        raise Unsupported(f"SPS30 {describe_answer(answer)}, not a measurement")
    if state:
        raise FrameError(f"SPS30 refused to read measured values: {answer.error}")
    if not payload:
        raise WarmingUp("SPS30 has no new measurement yet")
    if len(payload) == _FLOATS.size:
        values = _FLOATS.unpack(payload)
        if not math.isfinite(sum(values)):  # ten float32 cannot overflow a double: only inf or NaN can do this
            raise FrameError("SPS30 measurement holds a value that is not a finite number")
    elif len(payload) == _UINT16.size:
        *counts, size_nm = _UINT16.unpack(payload)
        values = (*map(float, counts), size_nm / 1000)
    else:
        raise FrameError(f"SPS30 measurement of {len(payload)} bytes; expected {_FLOATS.size} (float format) "
                         f"or {_UINT16.size} (integer format)")
    if not any(values):
        raise WarmingUp("SPS30 sends zeros: the fan is still starting")
    return Observation(SENSOR, dict(zip(FIELDS, values)))


def describe_answer(answer: Answer) -> str:
    """An answer to a command other than "read measured values", in words.

    E.g. ``answer to device information: '00080000' (state 0x00: no error)``.
    """
    name = COMMANDS.get(answer.cmd, f"command 0x{answer.cmd:02X}")
    text = f"answer to {name}"
    if answer.cmd == CMD_DEVICE_INFO and answer.data:
        text += f": {device_info(answer.data)!r}"
    elif answer.cmd == CMD_VERSION and len(answer.data) == 7:
        fw_major, fw_minor, _, hw, _, shdlc_major, shdlc_minor = answer.data
        text += f": firmware {fw_major}.{fw_minor}, hardware {hw}, SHDLC {shdlc_major}.{shdlc_minor}"
    elif answer.data:
        text += f": {answer.data.hex()}"
    return f"{text} ({answer.error})"


def device_info(data: bytes) -> str:
    """The string a device information answer carries (product type, serial number): ASCII up to the first NUL."""
    return data.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def encode(values: Mapping[str, float], *, output_format: int = FLOAT_FORMAT) -> bytes:
    """Build the answer to "read measured values" for ``values`` (every name of :data:`FIELDS`).

    In :data:`FLOAT_FORMAT` values are sent as float32: they come back rounded
    to float32 precision.  In :data:`UINT16_FORMAT` they are rounded to whole
    µg/m³ and #/cm³, and the typical size to whole nm.

    Raises
    ------
    ValueError : a quantity is missing, an unknown format, a value an integer answer cannot carry
    """
    missing = [name for name in FIELDS if name not in values]
    if missing:
        raise ValueError(f"SPS30 measurement needs {', '.join(missing)}")
    if output_format == FLOAT_FORMAT:
        return response(CMD_READ, _FLOATS.pack(*(values[name] for name in FIELDS)))
    if output_format != UINT16_FORMAT:
        raise ValueError(f"SPS30 output format 0x{output_format:02X}; choose 0x03 (float) or 0x05 (uint16)")
    words = [scaled_int(name, values[name], 0, 0xFFFF, what="an SPS30 integer answer") for name in FIELDS[:-1]]
    size = scaled_int("typical_particle_size", values["typical_particle_size"], 0, 0xFFFF, scale=1000,
                      what="an SPS30 integer answer")
    return response(CMD_READ, _UINT16.pack(*words, size))


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
