"""Behaviour of the three simulated sensors, as bytes in and bytes out.

No I/O and no threads here: a device turns a :class:`WorldState` into the
frames the real sensor would send, and answers the commands it receives.
Frames are built with the protocol encoders of :mod:`firmware_bridge.sensors`,
so they are byte-exact protocol traffic.

- :class:`Pms5003Device`: active mode by default (a frame every tick); obeys
  passive mode, passive read, sleep and wake-up, and sends ``warmup_frames``
  all-zero frames after power-on and after each wake-up, as the fan spins up.
- :class:`Mhz19Device`: silent until it reads a command; answers each
  "read CO2" command with one response; takes ABC on/off without answering.
- :class:`GpsDevice`: a GGA and an RMC sentence every tick; "no fix"
  sentences (empty position, fix quality 0, status V) for the first
  ``fix_after`` ticks, as after a cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from firmware_bridge.sensors import SensorError
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.plantower import pms5003
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator.world import WorldState


@dataclass(frozen=True)
class Frame:
    """Bytes a device sends, and what they carry (for the ground-truth log)."""

    data: bytes
    kind: str  # counter name: "pms5003", "pms5003_warming_up", "mhz19", "nmea", "nmea_no_fix", "pms5003_ack"
    values: dict[str, float] = field(default_factory=dict)


class Pms5003Device:
    def __init__(self, warmup_frames: int = 0):
        self.warmup_frames = warmup_frames
        self.warmup_left = warmup_frames
        self.active = True
        self.asleep = False
        self._input = b""

    def _frame(self, state: WorldState) -> Frame:
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return Frame(pms5003.WARMING_UP_FRAME, "pms5003_warming_up")
        return Frame(pms5003.encode(state.pm), "pms5003", dict(state.pm))

    def on_tick(self, state: WorldState) -> list[Frame]:
        if self.asleep or not self.active:
            return []
        return [self._frame(state)]

    def on_input(self, data: bytes, state: WorldState) -> list[Frame]:
        self._input += data
        out: list[Frame] = []
        while True:
            cmd_frame, self._input = pms5003.find_command(self._input)
            if cmd_frame is None:
                break
            try:
                cmd, value = pms5003.parse_command(cmd_frame)
            except SensorError:
                continue
            if cmd == pms5003.CMD_READ:
                if not self.active and not self.asleep:
                    out.append(self._frame(state))
            elif cmd == pms5003.CMD_MODE:
                self.active = value == 1
                out.append(Frame(pms5003.encode_ack(cmd, value), "pms5003_ack"))
            elif cmd == pms5003.CMD_SLEEP:
                if value == 0:
                    self.asleep = True
                    out.append(Frame(pms5003.encode_ack(cmd, value), "pms5003_ack"))
                elif self.asleep:
                    self.asleep = False
                    self.warmup_left = self.warmup_frames
        if len(self._input) > 64:
            self._input = self._input[-8:]
        return out


class Mhz19Device:
    def __init__(self) -> None:
        self.abc = True
        self.requests = 0
        self._input = b""

    def on_input(self, data: bytes, state: WorldState) -> list[Frame]:
        self._input += data
        out: list[Frame] = []
        while True:
            packet, self._input = mhz19.find_command(self._input)
            if packet is None:
                break
            try:
                cmd, payload = mhz19.parse_command(packet)
            except SensorError:
                continue
            if cmd == mhz19.CMD_READ:
                self.requests += 1
                values = {"co2": state.co2, "temperature": state.temperature}
                out.append(Frame(mhz19.encode_response(state.co2, state.temperature), "mhz19", values))
            elif cmd == mhz19.CMD_ABC:
                self.abc = payload[0] == 0xA0
        if len(self._input) > 64:
            self._input = self._input[-9:]
        return out


class GpsDevice:
    def __init__(self, fix_after: int = 0, talker: str = "GN", geoid_separation: float = 46.0):
        self.fix_after = fix_after
        self.talker = talker
        self.geoid_separation = geoid_separation

    def on_tick(self, state: WorldState, now: datetime) -> list[Frame]:
        if state.tick < self.fix_after:
            return [
                Frame(nmea0183.encode_gga(now, None, None, fix_quality=0, satellites=0, hdop=None,
                                          altitude=None, geoid_separation=None, talker=self.talker),
                      "nmea_no_fix"),
                Frame(nmea0183.encode_rmc(now, None, None, speed=None, valid=False, talker=self.talker),
                      "nmea_no_fix"),
            ]
        gga = nmea0183.encode_gga(now, state.latitude, state.longitude, fix_quality=1,
                                  satellites=state.satellites, hdop=state.hdop, altitude=state.altitude,
                                  geoid_separation=self.geoid_separation, talker=self.talker)
        rmc = nmea0183.encode_rmc(now, state.latitude, state.longitude, speed=state.speed,
                                  course=state.course, talker=self.talker)
        # The log keeps what each sentence carries, at the sentence's resolution (ddmm.mmmmm, knots to 0.01).
        return [Frame(gga, "nmea", nmea0183.decode(gga).values), Frame(rmc, "nmea", nmea0183.decode(rmc).values)]
