"""Modbus RTU frames, as far as sensors need them: functions 03, 04 and 06.

Sources: Modbus Organization, "MODBUS Application Protocol Specification"
V1.1b3 (2012), sections 6.3 (03 Read Holding Registers), 6.4 (04 Read Input
Registers), 6.6 (06 Write Single Register) and 7 (exception responses);
"MODBUS over Serial Line Specification and Implementation Guide" V1.02
(2006), section 2.5.1 (RTU framing) and 6.2.2 (CRC generation).

Pure functions of bytes, shared by the Senseair S8 and Sensirion SCD30
modules (a library such as pymodbus or minimalmodbus would own the serial
port, which the bridge's reader must own; the framing is 40 lines).

Frames (every field big-endian except the CRC, which is sent low byte first)::

    request  03/04:  SLAVE FN  ADDR_HI ADDR_LO COUNT_HI COUNT_LO  CRC_LO CRC_HI    8 bytes
    response 03/04:  SLAVE FN  BYTES   REG1_HI REG1_LO …          CRC_LO CRC_HI    5 + 2 x count
    request  06:     SLAVE 06  ADDR_HI ADDR_LO VALUE_HI VALUE_LO  CRC_LO CRC_HI    8 bytes
    response 06:     the request, echoed
    exception:       SLAVE FN|0x80 CODE                           CRC_LO CRC_HI    5 bytes

CRC-16/MODBUS: polynomial 0x8005 reflected (0xA001), initial value 0xFFFF,
no final xor; the CRC of a frame including its own CRC is 0.

Notes
-----
- RTU separates frames by 3.5 character times of silence, which a byte
  stream read through an OS buffer cannot see; :func:`find_frame` cuts
  frames by their expected shape and CRC instead, passing over garbage one
  byte at a time.
- A master must wait for each answer before the next request: requests sent
  back to back can reach a slave as one frame, with a bad CRC, and be ignored.
- Address 0 is the broadcast address: slaves act on a broadcast write but
  never answer, so a read sent to it is refused (Serial Line V1.02, 2.2).
- Registers are 16-bit words; what they mean (unsigned, signed, half of a
  float) is the device's business.  :func:`int16` reads a word as two's
  complement, as the Senseair S8 documents its measurement registers.

Checked against captured frames and open-source masters: esphome
``esphome/components/senseair/senseair.cpp`` (the S8 requests, byte for
byte), jcomas/S8_UART ``src/s8_uart.h`` (an S8 answer ``FE 04 02 01 90 AC D8``)
and arendst/Tasmota ``tasmota/tasmota_xsns_sensor/xsns_17_senseair.ino``
(S8 answers and the exception ``FE 84 02 F2 F1``); the test file holds them.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from firmware_bridge.sensors.base import FrameError, as_bytes

READ_HOLDING = 0x03
READ_INPUT = 0x04
WRITE_SINGLE = 0x06
FUNCTIONS: dict[int, str] = {READ_HOLDING: "read holding registers", READ_INPUT: "read input registers",
                             WRITE_SINGLE: "write single register"}
EXCEPTIONS: dict[int, str] = {
    0x01: "illegal function", 0x02: "illegal data address", 0x03: "illegal data value",
    0x04: "server device failure", 0x05: "acknowledge", 0x06: "server device busy",
    0x08: "memory parity error", 0x0A: "gateway path unavailable", 0x0B: "gateway target device failed to respond",
}
REQUEST_SIZE = 8
_REGISTERS = tuple(struct.Struct(f">{n}H") for n in range(128))  # by register count


def _table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (check value: ``crc16(b"123456789") == 0x4B37``)."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def int16(word: int) -> int:
    """A 16-bit register read as a two's-complement signed integer (``0xFFF0`` -> -16)."""
    return word - 0x10000 if word & 0x8000 else word


def seal(body: bytes) -> bytes:
    """``body`` followed by its CRC, low byte first."""
    return body + crc16(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    """True if the last two bytes of ``frame`` are the CRC of the others."""
    return len(frame) >= 4 and crc16(frame) == 0


# ------------------------------------------------------------------ requests (master side)
class Request(NamedTuple):
    """A decoded request: ``value`` is the register count (03/04) or the value written (06)."""

    slave: int
    function: int
    address: int
    value: int


def request(slave: int, function: int, address: int, value: int) -> bytes:
    """Build an 8-byte request: read ``value`` registers from ``address`` (03/04), or write ``value`` (06).

    Raises
    ------
    ValueError : an unknown function, a slave outside 0..247 or 0xFE, a read sent to the broadcast
        address 0, a field beyond 16 bits, a read of 0 or more than 125 registers
    """
    if function not in FUNCTIONS:
        raise ValueError(f"Modbus function 0x{function:02X} is not supported; choose one of "
                         + ", ".join(f"0x{f:02X} ({n})" for f, n in FUNCTIONS.items()))
    if not (0 <= slave <= 247 or slave == 0xFE):
        raise ValueError(f"Modbus slave address {slave} must be 0..247 (or 0xFE, 'any address')")
    if slave == 0 and function != WRITE_SINGLE:
        raise ValueError("Modbus address 0 is the broadcast address: nobody answers a read sent to it")
    if not (0 <= address <= 0xFFFF and 0 <= value <= 0xFFFF):
        raise ValueError("Modbus register address and value are 16-bit")
    if function != WRITE_SINGLE and not 1 <= value <= 125:
        raise ValueError(f"a Modbus read takes 1..125 registers, not {value}")
    return seal(bytes([slave, function]) + address.to_bytes(2, "big") + value.to_bytes(2, "big"))


def parse_request(frame: bytes) -> Request:
    """Split an 8-byte request (emulators use it).

    Raises
    ------
    FrameError : wrong size or CRC, or a function other than 03, 04 and 06
    """
    frame = as_bytes(frame)
    if len(frame) != REQUEST_SIZE or not crc_ok(frame):
        raise FrameError(f"Modbus request {frame.hex()} is not 8 bytes with a valid CRC")
    if frame[1] not in FUNCTIONS:
        raise FrameError(f"Modbus function 0x{frame[1]:02X} is not supported")
    return Request(frame[0], frame[1], int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big"))


def find_request(buffer: bytes, slave: int) -> tuple[bytes | None, bytes]:
    """Cut the next valid request to ``slave`` out of ``buffer`` (emulators use it)."""
    buf = as_bytes(buffer)
    for i in range(len(buf)):
        if buf[i] != slave:
            continue
        if len(buf) - i < REQUEST_SIZE:
            return None, buf[i:]
        candidate = buf[i:i + REQUEST_SIZE]
        if candidate[1] in FUNCTIONS and crc_ok(candidate):
            return candidate, buf[i + REQUEST_SIZE:]
    return None, b""


# ------------------------------------------------------------------ responses (slave side)
def read_response(slave: int, function: int, registers: list[int] | tuple[int, ...]) -> bytes:
    """Build the response to a 03/04 request carrying ``registers`` (16-bit each)."""
    if function not in (READ_HOLDING, READ_INPUT) or not 1 <= len(registers) <= 125:
        raise ValueError("a Modbus read response is for function 03 or 04 and carries 1..125 registers")
    data = b"".join(int(r).to_bytes(2, "big") for r in registers)
    return seal(bytes([slave, function, len(data)]) + data)


def exception_response(slave: int, function: int, code: int) -> bytes:
    """Build the 5-byte exception response ``SLAVE FN|0x80 CODE CRC``."""
    return seal(bytes([slave, function | 0x80, code]))


def exception_text(code: int) -> str:
    """The exception code in words, as the application protocol names it."""
    return f"Modbus exception 0x{code:02X} ({EXCEPTIONS.get(code, 'not defined by the specification')})"


class Response(NamedTuple):
    """A checksum-valid response: ``registers`` for 03/04, ``(address, value)`` for 06."""

    slave: int
    function: int
    registers: tuple[int, ...]


def parse_response(frame: bytes, slave: int) -> Response:
    """Check and split one response from ``slave``.

    Raises
    ------
    FrameError : bad size, CRC or byte count; another slave; an exception response (its code named)
    """
    frame = as_bytes(frame)
    if len(frame) < 5:
        raise FrameError(f"Modbus response of {len(frame)} bytes; a response has at least 5")
    if not crc_ok(frame):
        expected = crc16(frame[:-2]).to_bytes(2, "little").hex()
        raise FrameError(f"Modbus CRC {frame[-2:].hex()} does not match {expected}")
    if frame[0] != slave:
        raise FrameError(f"Modbus response from slave 0x{frame[0]:02X}; expected 0x{slave:02X}")
    function = frame[1]
    if function & 0x80:
        name = FUNCTIONS.get(function & 0x7F, f"function 0x{function & 0x7F:02X}")
        raise FrameError(f"{exception_text(frame[2])} to {name}" if len(frame) == 5
                         else f"Modbus exception response of {len(frame)} bytes; expected 5")
    if function == WRITE_SINGLE:
        if len(frame) != REQUEST_SIZE:
            raise FrameError(f"Modbus write response of {len(frame)} bytes; expected 8")
        return Response(slave, function, (int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")))
    if function not in FUNCTIONS:
        raise FrameError(f"Modbus function 0x{function:02X} is not supported")
    count = frame[2]
    if count % 2 or len(frame) != count + 5:
        raise FrameError(f"Modbus byte count {count} does not fit a {len(frame)}-byte response")
    return Response(slave, function, _REGISTERS[count // 2].unpack_from(frame, 3))


def find_frame(buffer: bytes, slave: int, reads: dict[int, tuple[int, ...]]) -> tuple[bytes | None, bytes]:
    """Cut the next response from ``slave`` out of ``buffer``, by its expected shape and CRC.

    Parameters
    ----------
    slave : the slave address that answers
    reads : read function -> register counts it may answer with; write (06)
        echoes and exception responses to these functions are cut too

    Returns
    -------
    (frame, rest) : ``frame`` is ``None`` when no complete response is there
        yet; ``rest`` keeps a tail that may begin one.
    """
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(slave, start)
        if i < 0:
            return None, b""
        if len(buf) - i < 3:
            return None, buf[i:]
        size = _size(buf[i + 1], buf[i + 2], reads)
        if size:
            if len(buf) - i < size:
                return None, buf[i:]
            if crc_ok(buf[i:i + size]):
                return buf[i:i + size], buf[i + size:]
        start = i + 1


def _size(function: int, third: int, reads: dict[int, tuple[int, ...]]) -> int:
    """The size of a response starting ``SLAVE function third``, or 0 if it is not an expected one."""
    if function in reads and third in (2 * n for n in reads[function]):
        return third + 5
    if function == WRITE_SINGLE:
        return REQUEST_SIZE
    if function & 0x80 and (function & 0x7F in reads or function & 0x7F == WRITE_SINGLE):
        return 5
    return 0
