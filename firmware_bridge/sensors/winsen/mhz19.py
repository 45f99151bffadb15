"""Winsen MH-Z19B / MH-Z19C NDIR CO2 sensor, UART protocol.

Source: Winsen "Intelligent Infrared CO2 Module (Model: MH-Z19B) User's
Manual" v1.0, section "Communication protocol"; the MH-Z19C manual v1.0
gives the same commands.  Serial: 9600 baud, 8 data bits, no parity,
1 stop bit.  The sensor only speaks when asked (a *polled* protocol).

Every packet is 9 bytes: start byte 0xFF, then 7 bytes, then a checksum::

    checksum = (0xFF - (byte1 + ... + byte7) + 1) & 0xFF     (byte0 excluded)

Commands (host to sensor)::

    FF 01 86 00 00 00 00 00 79     read CO2 concentration
    FF 01 79 A0 00 00 00 00 E6     self-calibration (ABC) on
    FF 01 79 00 00 00 00 00 86     self-calibration (ABC) off
    FF 01 99 00 00 00 07 D0 8F     detection range 0-2000 ppm (bytes 6-7: range [ppm])
    FF 01 99 00 00 00 13 88 CB     detection range 0-5000 ppm

Answer to "read"::

    FF 86 HH LL TT SS U1 U2 CS     CO2 = HH x 256 + LL [ppm]

Notes
-----
- Temperature: the manual documents only HH and LL.  Byte TT is, in every
  firmware seen in the field, the sensor's internal temperature + 40 [°C]
  (1 °C steps).  It is undocumented, runs a few degrees above ambient air
  (the lamp heats the cell), and is reported here as ``temperature`` because
  it is widely used; treat it as a device temperature, not a weather value.
- SS, U1 and U2 are undocumented and ignored.
- Preheat: the manual gives 3 minutes (:data:`PREHEAT_S`).  Readings in that
  time are unreliable, but nothing in the answer says so; the decoder is
  pure and cannot know the uptime, so the reader passes ``preheating=True``
  and gets ``Observation.warming_up``.
- ABC (automatic baseline correction, on by default) assumes the sensor sees
  ~400 ppm fresh air once a day; switch it off for sensors kept indoors.
  The sensor does not answer the ABC commands.  Registered names: ``mhz19``
  writes :data:`ABC_OFF` each time the port opens (a citizen kit is carried
  indoors and out, and an indoor baseline drags the readings down), and
  ``mhz19-abc`` writes :data:`ABC_ON` instead, for a sensor that stays
  outdoors or in a room aired every day.
- Range: 0-2000, 0-5000 or 0-10000 ppm (:func:`set_range`); the factory
  setting is 0-5000 ppm on most units.  A narrower range gives a finer
  resolution; readings above the range are clipped.
- Preheat: 3 minutes after power-on (:data:`PREHEAT_S`).  Some units
  answer with six zero data bytes while they start (0 ppm at -40 °C):
  :class:`WarmingUp` (PyPMS's MH-Z19B tests carry such an answer).
"""

from __future__ import annotations

from firmware_bridge.sensors.base import (
    FrameError, Observation, Unsupported, WarmingUp, as_bytes, known_command, scaled_int,
)

SENSOR = "winsen-mhz19"
KIND = "polled"  # the reader writes READ_COMMAND and reads RESPONSE_SIZE bytes
BAUDRATE = 9600
BYTESIZE = 8
PARITY = "N"
STOPBITS = 1

PACKET_SIZE = 9
RESPONSE_SIZE = PACKET_SIZE
START = 0xFF
SENSOR_NUMBER = 0x01  # byte 1 of every command
CMD_READ = 0x86
CMD_ABC = 0x79
CMD_RANGE = 0x99
RANGES: tuple[int, ...] = (2000, 5000, 10000)  # [ppm]
TEMPERATURE_OFFSET = 40  # [°C] TT = temperature + 40 (undocumented)
PREHEAT_S = 180.0  # [s] preheat time in the manual
WARMUP_S = PREHEAT_S

COMMANDS: dict[int, str] = {CMD_READ: "read", CMD_ABC: "abc", CMD_RANGE: "range"}


def checksum(packet: bytes) -> int:
    """Winsen checksum of a packet: ``(0xFF - sum(packet[1:8]) + 1) & 0xFF``.

    ``packet`` is 8 bytes (without checksum) or 9 (the last one is ignored).
    """
    return (0xFF - sum(packet[1:8]) + 1) & 0xFF


def command(cmd: int, data: bytes = b"") -> bytes:
    """Build a 9-byte command ``FF 01 CMD d1..d5 CS``; ``data`` is padded with zeros to 5 bytes."""
    known_command(cmd, COMMANDS, "MH-Z19")
    if len(data) > 5:
        raise ValueError(f"MH-Z19 command data is at most 5 bytes, got {len(data)}")
    body = bytes([START, SENSOR_NUMBER, cmd]) + data.ljust(5, b"\x00")
    return body + bytes([checksum(body)])


READ_COMMAND = command(CMD_READ)
ABC_ON = command(CMD_ABC, b"\xa0")
ABC_OFF = command(CMD_ABC, b"\x00")
INIT_COMMANDS: tuple[bytes, ...] = (ABC_OFF,)
ABC_INIT_COMMANDS: tuple[bytes, ...] = (ABC_ON,)


def set_range(ppm: int) -> bytes:
    """The command that sets the detection range to 0..``ppm`` (2000, 5000 or 10000).

    Raises
    ------
    ValueError : another range
    """
    if ppm not in RANGES:
        raise ValueError(f"MH-Z19 range {ppm} ppm; choose one of {', '.join(map(str, RANGES))}")
    return command(CMD_RANGE, b"\x00\x00\x00" + ppm.to_bytes(2, "big"))


def is_read_command(data: bytes) -> bool:
    """True if ``data`` is exactly the 9-byte "read CO2" command with a valid checksum."""
    try:
        return as_bytes(data) == READ_COMMAND
    except FrameError:
        return False


def parse_command(packet: bytes) -> tuple[int, bytes]:
    """Split a 9-byte command into ``(cmd, data)`` (simulators use it).

    Raises
    ------
    FrameError : wrong size, start byte, sensor number or checksum
    Unsupported : a command byte this module does not know
    """
    packet = as_bytes(packet)
    if len(packet) != PACKET_SIZE:
        raise FrameError(f"MH-Z19 command of {len(packet)} bytes; expected {PACKET_SIZE}")
    if packet[0] != START or packet[1] != SENSOR_NUMBER:
        raise FrameError(f"MH-Z19 command starts with {packet[:2].hex()}; expected ff01")
    if packet[8] != checksum(packet):
        raise FrameError(f"MH-Z19 command checksum {packet[8]:02x}; expected {checksum(packet):02x}")
    if packet[2] not in COMMANDS:
        raise Unsupported(f"MH-Z19 command 0x{packet[2]:02X} is not supported")
    return packet[2], packet[3:8]


def decode(resp: bytes, *, preheating: bool = False) -> Observation:
    """Decode the 9-byte answer to :data:`READ_COMMAND`.

    Parameters
    ----------
    resp : the 9 bytes the sensor sent back
    preheating : the caller knows the sensor is within :data:`PREHEAT_S` of power-on

    Returns
    -------
    Observation with ``co2`` [ppm] and ``temperature`` [°C] (see Notes in the module).

    Raises
    ------
    FrameError : wrong size, start byte, command byte or checksum
    WarmingUp : the six data bytes are all zero (0 ppm at -40 °C is no reading; sensors send it while starting)
    """
    resp = as_bytes(resp)
    if len(resp) != PACKET_SIZE:
        raise FrameError(f"MH-Z19 answer of {len(resp)} bytes; expected {PACKET_SIZE}")
    if resp[0] != START:
        raise FrameError(f"MH-Z19 answer starts with {resp[0]:02x}; expected ff")
    if resp[1] != CMD_READ:
        raise FrameError(f"MH-Z19 answer to command {resp[1]:02x}; expected the read answer 86")
    if resp[8] != checksum(resp):
        raise FrameError(f"MH-Z19 checksum {resp[8]:02x}; expected {checksum(resp):02x}")
    if not any(resp[2:8]):
        raise WarmingUp("MH-Z19 answers with zeros: it is still starting")
    co2 = resp[2] * 256 + resp[3]
    temperature = resp[4] - TEMPERATURE_OFFSET
    return Observation(sensor=SENSOR, values={"co2": float(co2), "temperature": float(temperature)},
                       warming_up=preheating)


def encode_response(co2: float, temperature: float, *, status: int = 0, extra: int = 0) -> bytes:
    """Build the answer a sensor sends to :data:`READ_COMMAND`.

    Parameters
    ----------
    co2 : [ppm], rounded to 1 ppm, 0..65535
    temperature : [°C], rounded to 1 °C, -40..215
    status, extra : the undocumented SS byte and U1U2 word

    Raises
    ------
    ValueError : a value outside what the packet can carry
    """
    ppm = scaled_int("co2", co2, 0, 0xFFFF, what="an MH-Z19 answer")
    tt = scaled_int("temperature", temperature, -TEMPERATURE_OFFSET, 0xFF - TEMPERATURE_OFFSET,
                    what="an MH-Z19 answer") + TEMPERATURE_OFFSET
    if not 0 <= status <= 0xFF or not 0 <= extra <= 0xFFFF:
        raise ValueError("MH-Z19 status must fit in a byte and extra in 16 bits")
    body = bytes([START, CMD_READ]) + ppm.to_bytes(2, "big") + bytes([tt, status]) + extra.to_bytes(2, "big")
    return body + bytes([checksum(body)])


def _find(buffer: bytes, second: int) -> tuple[bytes | None, bytes]:
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(bytes([START, second]), start)
        if i < 0:
            keep = 1 if buf.endswith(bytes([START])) else 0
            return None, buf[len(buf) - keep:]
        if len(buf) - i < PACKET_SIZE:
            return None, buf[i:]
        packet = buf[i:i + PACKET_SIZE]
        if packet[8] == checksum(packet):
            return packet, buf[i + PACKET_SIZE:]
        start = i + 1


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first checksum-valid read answer (``FF 86 …``) in ``buffer``.

    Returns ``(frame, rest)`` like the Plantower ``find_frame``: ``frame`` is
    ``None`` when no complete answer is there yet, and ``rest`` keeps a tail
    that may begin one.
    """
    return _find(buffer, CMD_READ)


def find_command(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first checksum-valid command (``FF 01 …``) in ``buffer`` (simulators use it)."""
    return _find(buffer, SENSOR_NUMBER)
