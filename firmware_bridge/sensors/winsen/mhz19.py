"""Winsen MH-Z19B / MH-Z19C NDIR CO2 sensor, UART protocol.

Source: Winsen "Intelligent Infrared CO2 Module (Model: MH-Z19B) User's
Manual" v1.0, section "Communication protocol" (commands 0x86 read, 0x87
zero point, 0x88 span point, 0x79 self-calibration, 0x99 detection range);
the MH-Z19C manual v1.0 gives the same commands.  Serial: 9600 baud, 8 data
bits, no parity, 1 stop bit.  The sensor only speaks when asked (a *polled*
protocol).

Checked against open-source drivers and their captures: esphome
``esphome/components/mhz19/mhz19.cpp`` (checksum, read command, ABC and zero
commands, temperature = byte 4 - 40, status = byte 5), arendst/Tasmota
``tasmota/tasmota_xsns_sensor/xsns_15_mhz19.ino`` and letscontrolit/ESPEasy
``src/src/PluginStructs/P049_data_struct.cpp`` (the boot answers below,
range commands in bytes 6-7, answers to the other commands),
WifWaf/MH-Z19 ``src/MHZ19.cpp`` (every command is answered ``FF cmd ...``),
avaldebe/PyPMS ``tests/captured_data/MHZ19B.hexdump`` (answers captured
from a sensor, used as test vectors).

Every packet is 9 bytes: start byte 0xFF, then 7 bytes, then a checksum::

    checksum = (0xFF - (byte1 + ... + byte7) + 1) & 0xFF     (byte0 excluded)

Commands (host to sensor)::

    FF 01 86 00 00 00 00 00 79     read CO2 concentration
    FF 01 79 A0 00 00 00 00 E6     self-calibration (ABC) on
    FF 01 79 00 00 00 00 00 86     self-calibration (ABC) off
    FF 01 87 00 00 00 00 00 78     zero point calibration (in 400 ppm air, after 20 minutes there)
    FF 01 88 07 D0 00 00 00 A0     span point calibration at 2000 ppm (bytes 3-4: span [ppm])
    FF 01 99 00 00 00 07 D0 8F     detection range 0-2000 ppm (bytes 6-7: range [ppm])
    FF 01 99 00 00 00 13 88 CB     detection range 0-5000 ppm

Answer to "read"::

    FF 86 HH LL TT SS U1 U2 CS     CO2 = HH x 256 + LL [ppm]

Notes
-----
- Temperature: the manual documents only HH and LL.  Byte TT is, in every
  firmware seen in the field, the sensor's internal temperature + 40 [°C]
  (1 °C steps; WifWaf/MH-Z19 subtracts 38 instead, by its own observation).
  It is undocumented, runs a few degrees above ambient air (the lamp heats
  the cell), and is reported here as ``temperature`` because it is widely
  used; treat it as a device temperature, not a weather value.
- SS is 0 on the B and C models; on the original MH-Z19 it rates the
  stability of the reading (64 stable) and is 1 while the sensor boots.
  U1U2 is undocumented, except that the sensor reports 15000 there while it
  boots.  Both boot marks are :class:`WarmingUp` (Tasmota and ESPEasy drop
  those answers); otherwise SS and U1U2 are ignored.
- Preheat: the manual gives 3 minutes (:data:`PREHEAT_S`).  Readings in that
  time are unreliable, but nothing in the answer says so; the decoder is
  pure and cannot know the uptime, so the reader passes ``preheating=True``
  and gets ``Observation.warming_up``.  Some units answer 0 ppm while they
  start (PyPMS's MH-Z19B tests carry such an answer): :class:`WarmingUp`.
  Right after power-up a unit may also answer, with a valid checksum, values
  far beyond its range (60548 ppm, WifWaf/MH-Z19 issue 2): anything above
  the largest range, 10000 ppm, is a :class:`FrameError`.
- ABC (automatic baseline correction, on by default) assumes the sensor sees
  ~400 ppm fresh air once a day; switch it off for sensors kept indoors.
  Registered names: ``mhz19`` writes :data:`ABC_OFF` each time the port
  opens (a citizen kit is carried indoors and out, and an indoor baseline
  drags the readings down), and ``mhz19-abc`` writes :data:`ABC_ON`
  instead, for a sensor that stays outdoors or in a room aired every day.
  The sensor switches ABC back on when it reboots (Tasmota
  ``xsns_15_mhz19.ino``: "After bootup of the sensor the ABC will be
  enabled"), for instance when its power is cut while the USB adapter keeps
  the port open.  Its boot answers (U1U2 = 15000, SS = 1, 0 ppm) after good
  readings tell the reader so, and ``mhz19`` writes :data:`ABC_OFF` again
  (:data:`REBOOT_COMMANDS`) once the first good reading after the boot has
  arrived, which is when Tasmota sends it; ``mhz19-abc`` has nothing to
  resend.
- Commands are answered ``FF cmd ...`` with a valid checksum (WifWaf/MH-Z19
  reads such an answer after every command; ESPEasy counts them as
  acknowledgements).  :func:`find_frame` cuts them out and :func:`decode`
  calls them :class:`Unsupported`, so a reader counts them as ignored.
- Range: 0-2000, 0-5000 or 0-10000 ppm (:func:`set_range`); the factory
  setting is 0-5000 ppm on most units.  A narrower range gives a finer
  resolution; readings above the range are clipped.
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
CMD_ZERO = 0x87
CMD_SPAN = 0x88
CMD_RANGE = 0x99
RANGES: tuple[int, ...] = (2000, 5000, 10000)  # [ppm]
MAX_PPM = max(RANGES)  # [ppm] no range reads higher
TEMPERATURE_OFFSET = 40  # [°C] TT = temperature + 40 (undocumented)
BOOTING_U = 15000  # U1U2 while the sensor boots (Tasmota, ESPEasy)
BOOTING_SS = 1  # SS while an original MH-Z19 boots (Tasmota, ESPEasy)
PREHEAT_S = 180.0  # [s] preheat time in the manual
WARMUP_S = PREHEAT_S

COMMANDS: dict[int, str] = {CMD_READ: "read", CMD_ABC: "abc", CMD_ZERO: "zero point calibration",
                            CMD_SPAN: "span point calibration", CMD_RANGE: "range"}


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
ZERO_CALIBRATION = command(CMD_ZERO)
INIT_COMMANDS: tuple[bytes, ...] = (ABC_OFF,)
REBOOT_COMMANDS: tuple[bytes, ...] = (ABC_OFF,)  # the sensor boots with ABC on
ABC_INIT_COMMANDS: tuple[bytes, ...] = (ABC_ON,)


def span_calibration(ppm: int) -> bytes:
    """The command that calibrates the span point at ``ppm`` (after a zero point calibration; 2000 suggested).

    Raises
    ------
    ValueError : a span outside 1..10000 ppm
    """
    if not 1 <= ppm <= MAX_PPM:
        raise ValueError(f"MH-Z19 span {ppm} ppm; choose 1..{MAX_PPM}")
    return command(CMD_SPAN, ppm.to_bytes(2, "big"))


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
    FrameError : wrong size, start byte, command byte or checksum; CO2 above 10000 ppm
    WarmingUp : 0 ppm, or a boot mark (U1U2 = 15000, SS = 1): the sensor is still starting
    Unsupported : the answer to another command (ABC, calibration, range)
    """
    resp = as_bytes(resp)
    if len(resp) != PACKET_SIZE:
        raise FrameError(f"MH-Z19 answer of {len(resp)} bytes; expected {PACKET_SIZE}")
    if resp[0] != START:
        raise FrameError(f"MH-Z19 answer starts with {resp[0]:02x}; expected ff")
    if resp[8] != checksum(resp):
        raise FrameError(f"MH-Z19 checksum {resp[8]:02x}; expected {checksum(resp):02x}")
    if resp[1] != CMD_READ:
        if resp[1] in COMMANDS:
            raise Unsupported(f"MH-Z19 answer to the {COMMANDS[resp[1]]} command 0x{resp[1]:02X}")
        raise FrameError(f"MH-Z19 answer to command {resp[1]:02x}; expected the read answer 86")
    co2 = resp[2] * 256 + resp[3]
    if int.from_bytes(resp[6:8], "big") == BOOTING_U or resp[5] == BOOTING_SS:
        raise WarmingUp("MH-Z19 answers with its boot mark: it is still starting")
    if co2 == 0:
        raise WarmingUp("MH-Z19 reads 0 ppm: it is still starting")
    if co2 > MAX_PPM:
        raise FrameError(f"MH-Z19 reads {co2} ppm, above its largest range ({MAX_PPM} ppm): not a measurement")
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


def _find(buffer: bytes, seconds: bytes) -> tuple[bytes | None, bytes]:
    """The first checksum-valid packet ``FF x ...`` with ``x`` in ``seconds``, and what follows it."""
    buf = as_bytes(buffer)
    start = 0
    while True:
        i = buf.find(START, start)
        if i < 0:
            return None, b""
        if i + 1 < len(buf) and buf[i + 1] in seconds:
            if len(buf) - i < PACKET_SIZE:
                return None, buf[i:]
            packet = buf[i:i + PACKET_SIZE]
            if packet[8] == checksum(packet):
                return packet, buf[i + PACKET_SIZE:]
        elif i + 1 == len(buf):
            return None, buf[i:]  # a start byte at the very end may begin a packet
        start = i + 1


_ANSWERS = bytes(COMMANDS)  # FF 86 (read) and the answers to the other commands


def find_frame(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first checksum-valid answer (``FF 86 …``, or ``FF 79/87/88/99 …``) in ``buffer``.

    Returns ``(frame, rest)`` like the Plantower ``find_frame``: ``frame`` is
    ``None`` when no complete answer is there yet, and ``rest`` keeps a tail
    that may begin one.
    """
    return _find(buffer, _ANSWERS)


def find_command(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Find the first checksum-valid command (``FF 01 …``) in ``buffer`` (simulators use it)."""
    return _find(buffer, bytes([SENSOR_NUMBER]))
