"""Time stamps for records: UTC milliseconds, GPS time when there is a fix, clock steps flagged.

A Raspberry Pi has no real-time clock: it boots at the time it last saved and
steps its clock when NTP (or ``fake-hwclock``) sets it, often minutes after the
bridge started.  This module decides what time a record carries and which
time flags (:data:`qsec.contract.FLAG_TIME_FROM_GPS`, ``FLAG_CLOCK_JUMP``,
``FLAG_TIME_UNSYNCED``) it gets.  The functions are pure; :class:`TimeKeeper`
holds the little state there is and takes its clocks as arguments.

Rules
-----
- **GPS time first.**  An RMC sentence with a fix carries the UTC date and
  time (``Observation.time``).  Each one gives a sample of the offset between
  GPS time and ``time.monotonic()``; the median of the last
  ``gps_window`` samples is the offset used.  Because it is anchored to the
  monotonic clock, a later step of the system clock does not move it.  Records
  are then stamped ``monotonic + offset`` and flagged ``time_from_gps``.  The
  offset is used for ``gps_stale_s`` after the last sample (the monotonic
  clock drifts by a few tens of ppm, well under a second an hour).
- **Clock steps.**  Between two stamps the wall clock (``time.time``) and the
  monotonic clock should advance by the same amount.  When they differ by more
  than ``jump_threshold_s`` the system clock was stepped (NTP setting the time
  of a Pi without RTC, an operator with ``date -s``): the record is flagged
  ``clock_jump`` and a warning is logged.  Records keep their ``seq`` order in
  any case; only ``t`` may go backwards.
- **Unsynchronised clock.**  Without a GPS offset, a record is flagged
  ``time_unsynced`` while the kernel says its clock is not synchronised:
  ``adjtimex(2)`` returns ``TIME_ERROR`` as long as no NTP client
  (systemd-timesyncd, chrony, ntpd) has disciplined it (the kernel's
  ``STA_UNSYNC`` status bit, the same source as ``timedatectl``'s "System
  clock synchronized").  Where ``adjtimex`` cannot be called (not Linux), the
  clock is trusted.  ``assume_synced=True`` trusts it always (a kit with a
  battery-backed RTC).
- **GPS week-number rollover.**  GPS counts weeks in a 10-bit field that
  wraps every 1024 weeks (19.6 years: 1999-08-22, 2019-04-07, 2038-11-21);
  a receiver whose firmware resolves it wrongly reports dates exactly 1024
  weeks in the past, with a good fix.  A GPS date more than
  :data:`ROLLOVER_SUSPECT` (19 years) before the reference — the later of
  the system clock and :data:`BUILD_DATE`, a date no correct GPS time of
  this version can precede — is moved forward by 1024 weeks (as many times
  as needed), counted (``gps_week_rollovers`` in the status) and logged
  (once, then at most once an hour).  As in gpsd, which uses the daemon's
  start time the same way, the correction needs a reference within about
  0.6 years of the truth: a receiver 19.6 years behind a system clock that
  is itself years behind and a version years old is not caught.

Notes
-----
- Serial latency: an RMC sentence reaches the bridge some tens to hundreds of
  milliseconds after the second it names (receiver processing plus ~70 ms to
  send 70 characters at 9600 baud), so GPS stamps are late by that much: fine
  for 1 Hz readings.
- Just after a cold start some receivers report GPS time without the
  leap-second correction (18 s in 2017-2026) until they have received the UTC
  parameters (up to 12.5 min).  The median over the window absorbs a few
  outliers, not a long run of them.

Sources
-------
- GPS week rollover: gpsd(8), "There are exactly two circumstances under which
  gpsd relies on the host-system clock" (the week number rolls over after 2^10
  or 2^13 weeks, about 19.6 or 157 years; gpsd uses its start time to detect
  and compensate the rollover), https://gpsd.gitlab.io/gpsd/gpsd.html, and
  gpsd's hacking guide, "Time" (the 10-bit week counter rollover every
  1024 weeks, roughly 19.6 years), https://gpsd.gitlab.io/gpsd/hacking.html;
  NTPsec adjusts Trimble receivers' week numbers from its build date the same
  way (ntpcal_get_build_date, gitlab.com/NTPsec/ntpsec merge request 461)
- adjtimex(2), Linux man-pages 6.x, https://man7.org/linux/man-pages/man2/adjtimex.2.html
  (return value ``TIME_ERROR`` = 5; ``modes = 0`` reads without changing anything)
- NMEA 0183 Interface Standard v4.11, RMC sentence (UTC time and date of the fix)
- Python ``time.monotonic``: https://docs.python.org/3/library/time.html#time.monotonic
"""

from __future__ import annotations

import ctypes
import logging
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone

from qsec.contract import FLAG_CLOCK_JUMP, FLAG_TIME_FROM_GPS, FLAG_TIME_UNSYNCED

log = logging.getLogger("qsec.bridge.clock")

TIME_ERROR = 5  # adjtimex(2): "the clock is not synchronized"
_TIMEX_BUFFER = 512  # bytes; larger than struct timex on every Linux ABI (208 on 64-bit)
GPS_WEEK_ROLLOVER = timedelta(weeks=1024)  # the 10-bit GPS week number wraps after 1024 weeks (19.6 years)
ROLLOVER_SUSPECT = timedelta(days=round(19 * 365.2425))  # a GPS date this far behind the reference has wrapped
BUILD_DATE = datetime(2026, 11, 1, tzinfo=timezone.utc)  # when this version was written: no correct GPS date is earlier
ROLLOVER_LOG_EVERY_S = 3600.0  # [s] between two log lines about a receiver with the rollover bug


@dataclass(frozen=True)
class ClockSample:
    """The two clocks read at (nearly) the same moment.

    Attributes
    ----------
    wall : time.time() [s since epoch, UTC]
    mono : time.monotonic() [s, arbitrary origin]
    """

    wall: float
    mono: float


def clock_step(prev: ClockSample, cur: ClockSample) -> float:
    """How far the wall clock moved beyond the monotonic clock between two samples [s].

    Positive when the system clock was stepped forward, negative when back, ~0 otherwise.
    """
    return (cur.wall - prev.wall) - (cur.mono - prev.mono)


def gps_offset_sample(gps_time: datetime, mono: float) -> float:
    """GPS time minus the monotonic clock when the sentence arrived [s].

    Parameters
    ----------
    gps_time : time stated by the receiver (timezone-aware, UTC)
    mono : time.monotonic() when the sentence was read [s]
    """
    if gps_time.tzinfo is None:
        raise ValueError("gps_time must be timezone-aware (UTC); the NMEA decoder returns aware datetimes")
    return gps_time.timestamp() - mono


def unroll_gps_week(gps_time: datetime, reference: datetime) -> tuple[datetime, int]:
    """Undo GPS week-number rollovers: ``gps_time`` plus 1024 weeks until it is within 19 years of ``reference``.

    Parameters
    ----------
    gps_time : time stated by the receiver (timezone-aware, UTC)
    reference : a time no correct GPS time is 19 years before (the later of the system clock and
        :data:`BUILD_DATE`)

    Returns
    -------
    (time, rollovers) : the corrected time and how many 1024-week periods were added (0: left as it was)
    """
    n = 0
    while reference - gps_time > ROLLOVER_SUSPECT:
        gps_time += GPS_WEEK_ROLLOVER
        n += 1
    return gps_time, n


def to_ms(seconds: float) -> int:
    """Seconds since epoch -> integer milliseconds (floor) [ms]."""
    return int(seconds * 1000.0 // 1)


def kernel_clock_synchronized() -> bool | None:
    """Whether the Linux kernel says its clock is synchronised (adjtimex(2), read only).

    Returns None where the call is not available (not Linux, no libc).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(_TIMEX_BUFFER)  # modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


@dataclass(eq=False, kw_only=True)
class TimeKeeper:
    """Stamps records: GPS-disciplined when it can, flagged when it cannot be sure.

    Parameters
    ----------
    wall, mono : the system clock [s since epoch] and the monotonic clock [s]
    sync_probe : returns whether the system clock is synchronised (None: cannot tell)
    prefer_gps : use GPS time once there is a fix
    jump_threshold_s : a wall-vs-monotonic difference above this is a clock step [s]
    gps_window : GPS offset samples kept for the median
    gps_stale_s : a GPS offset older than this is no longer used [s]
    probe_every_s : how often ``sync_probe`` is asked again [s]
    assume_synced : trust the system clock without asking (a kit with an RTC)
    build_date : no correct GPS time precedes it (the reference for the week-number rollover, with the
        system clock)

    Not thread-safe: the bridge calls it under its own lock.
    """

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    sync_probe: Callable[[], bool | None] = kernel_clock_synchronized
    prefer_gps: bool = True
    jump_threshold_s: float = 2.0
    gps_window: InitVar[int] = 15
    gps_stale_s: float = 3600.0
    probe_every_s: float = 10.0
    assume_synced: bool = False
    build_date: datetime = BUILD_DATE
    jumps: int = field(default=0, init=False)
    last_jump_s: float | None = field(default=None, init=False)
    gps_samples: int = field(default=0, init=False)
    gps_week_rollovers: int = field(default=0, init=False)  # GPS times moved forward by 1024 weeks
    _rollover_logged: float | None = field(default=None, init=False)
    _offsets: deque[float] = field(init=False)
    _median: float | None = field(default=None, init=False)
    _last_gps_mono: float | None = field(default=None, init=False)
    _last: ClockSample | None = field(default=None, init=False)
    _synced: bool | None = field(default=None, init=False)
    _probed_at: float | None = field(default=None, init=False)

    def __post_init__(self, gps_window: int) -> None:
        if not self.jump_threshold_s > 0:
            raise ValueError(f"jump_threshold_s={self.jump_threshold_s}: must be > 0 s")
        if gps_window < 1:
            raise ValueError(f"gps_window={gps_window}: must be at least 1")
        self._offsets = deque(maxlen=gps_window)

    # ------------------------------------------------------------ inputs
    def gps_fix(self, gps_time: datetime, mono: float | None = None) -> datetime:
        """Take one GPS time (an RMC with a fix) read at ``mono`` (default: now); return it, unrolled.

        A time 1024 weeks in the past (a receiver with the week-number rollover bug) is corrected
        first (:func:`unroll_gps_week`), counted and logged: stamp the record with what this returns.
        """
        at = self.mono() if mono is None else mono
        gps_time = self._unrolled(gps_time, at)
        self._offsets.append(gps_offset_sample(gps_time, at))
        self._median = statistics.median(self._offsets)
        self._last_gps_mono = at
        self.gps_samples += 1
        return gps_time

    def _unrolled(self, gps_time: datetime, mono: float) -> datetime:
        if gps_time.tzinfo is None:
            raise ValueError("gps_time must be timezone-aware (UTC); the NMEA decoder returns aware datetimes")
        reference = max(datetime.fromtimestamp(self.wall(), timezone.utc), self.build_date)
        fixed, n = unroll_gps_week(gps_time, reference)
        if n:
            self.gps_week_rollovers += 1
            if self._rollover_logged is None or mono - self._rollover_logged >= ROLLOVER_LOG_EVERY_S:
                self._rollover_logged = mono
                log.warning("the GPS receiver reports %s, %d x 1024 weeks before %s: its firmware has the GPS "
                            "week-number rollover bug; using %s (%d such times corrected so far; update the "
                            "receiver's firmware)", gps_time.isoformat(), n, reference.date().isoformat(),
                            fixed.isoformat(), self.gps_week_rollovers)
        return fixed

    def gps_offset(self, mono: float) -> float | None:
        """The GPS-minus-monotonic offset in use at ``mono`` [s], or None (no fix, stale, not wanted)."""
        if not self.prefer_gps or self._median is None or self._last_gps_mono is None:
            return None
        if mono - self._last_gps_mono > self.gps_stale_s:
            return None
        return self._median

    def system_synced(self, mono: float) -> bool:
        """Whether the system clock can be trusted (asked again every ``probe_every_s``)."""
        if self.assume_synced:
            return True
        if self._probed_at is None or mono - self._probed_at >= self.probe_every_s:
            self._synced = self.sync_probe()
            self._probed_at = mono
        return self._synced is not False

    # ------------------------------------------------------------ the stamp
    def stamp(self, device_time: datetime | None = None) -> tuple[int, int]:
        """Time [ms since epoch, UTC] and time flags for a record observed now.

        ``device_time`` is the time the device itself states (an RMC
        sentence): it becomes the record's time as it is.
        """
        cur = ClockSample(self.wall(), self.mono())
        flags = 0
        if self._last is not None:
            step = clock_step(self._last, cur)
            if abs(step) > self.jump_threshold_s:
                flags |= FLAG_CLOCK_JUMP
                self.jumps += 1
                self.last_jump_s = step
                self._probed_at = None  # NTP probably just set it: ask again
                log.warning("the system clock stepped by %+.1f s (NTP setting the time of a Pi without RTC?); "
                            "records around it are flagged clock_jump", step)
        self._last = cur
        if device_time is not None and self.prefer_gps:
            return to_ms(device_time.timestamp()), flags | FLAG_TIME_FROM_GPS
        offset = self.gps_offset(cur.mono)
        if offset is not None:
            return to_ms(cur.mono + offset), flags | FLAG_TIME_FROM_GPS
        if not self.system_synced(cur.mono):
            flags |= FLAG_TIME_UNSYNCED
        return to_ms(cur.wall), flags

    def status(self) -> dict[str, object]:
        """What the retained status message says about time."""
        mono = self.mono()
        offset = self.gps_offset(mono)
        return {"source": "gps" if offset is not None else "system",
                "gps_minus_system_s": None if offset is None else round(mono + offset - self.wall(), 3),
                "system_synced": self.system_synced(mono), "clock_jumps": self.jumps,
                "last_jump_s": self.last_jump_s, "gps_samples": self.gps_samples,
                "gps_week_rollovers": self.gps_week_rollovers}
