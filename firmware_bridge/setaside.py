"""Why a reader set frames aside: counts by reason class, the last reason per kind, a rate-limited log.

A reader passes over frames for three kinds of reasons, named after what the
decoder raised (:mod:`firmware_bridge.sensors.base`):

==============  =================  ==============================================================
kind            decoder raised     e.g.
==============  =================  ==============================================================
``frame_error`` ``FrameError``     a checksum, a frame of another model ("… as a PMS5003ST sends …:
                                   choose the protocol of the sensor's model (pms5003st)"), a status bit
``ignored``     ``Unsupported``    a command acknowledgement, a sentence the decoder does not use
``waiting``     ``WarmingUp``,     fan spinning up, preheat, no new measurement, no GPS fix
                ``NoFix``
==============  =================  ==============================================================

The *reason class* of a set-aside frame is its decoder's message with the
figures taken out (numbers and hexadecimal values become ``#``, quoted text
``'…'``), so that "checksum 1a2b does not match 1a2c" and "checksum 0f00 does
not match 0e00" count together while a frame of another model counts apart.
At most :data:`MAX_CLASSES` classes are kept per reader; further ones count
under ``other``.  The full text of the last reason of each kind is kept too.

Each class is logged the first time it is seen and then at most once per
``log_every_s`` (300 s by default), with the number seen since: a sensor
wired to the wrong protocol writes one line every five minutes, not one a
second.  Frame errors are warnings; the other kinds, which are normal at
start-up, are logged at INFO.

Thread-safe: the reader's thread adds, the bridge's status thread reads.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

log = logging.getLogger("qsec.bridge.reader")

KINDS = ("frame_error", "ignored", "waiting")
_LABELS = {"frame_error": "frame error", "ignored": "not a measurement", "waiting": "sensor not ready"}
MAX_CLASSES = 32  # per reader; more count under "other"
MAX_TEXT = 200  # characters of a reason kept
LOG_EVERY_S = 300.0  # [s] between two log lines of one reason class

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_FIGURE = re.compile(r"\b(?:0x)?[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*\b")


def reason_class(text: str) -> str:
    """The reason class of a decoder's message: the message without its figures and quoted text.

    >>> reason_class("PMS5003 checksum 1a2b does not match 1a2c")
    'PMS5003 checksum # does not match #'
    """
    return _FIGURE.sub("#", _QUOTED.sub("'…'", text))[:MAX_TEXT]


class SetAside:
    """Counts of one reader's set-aside frames by kind and reason class, and their log.

    Parameters
    ----------
    name : who is speaking in the log, e.g. ``"pms5003 on /dev/serial0"``
    clock : monotonic clock [s]
    log_every_s : shortest time between two log lines of one reason class [s]
    """

    def __init__(self, name: str, clock: Callable[[], float], *, log_every_s: float = LOG_EVERY_S):
        self.name = name
        self.clock = clock
        self.log_every_s = log_every_s
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._last: dict[str, str] = {}
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (kind, class) -> (logged at, count then)

    def add(self, kind: str, reason: str) -> None:
        """Count one frame set aside for ``reason`` (the decoder's message); log it if it is due."""
        assert kind in KINDS, kind
        cls = reason_class(reason)
        now = self.clock()
        with self._lock:
            counts = self._counts[kind]
            if cls not in counts and sum(map(len, self._counts.values())) >= MAX_CLASSES:
                cls = "other"
            n = counts[cls] = counts.get(cls, 0) + 1
            self._last[kind] = reason[:MAX_TEXT]
            at, then = self._logged.get((kind, cls), (None, 0))
            due = at is None or now - at >= self.log_every_s
            if due:
                self._logged[(kind, cls)] = (now, n)
        if due:
            level = logging.WARNING if kind == "frame_error" else logging.INFO
            since = "" if at is None else f" ({n - then} such frames in the last {now - at:.0f} s, {n} in all)"
            log.log(level, "%s: frame set aside (%s): %s%s", self.name, _LABELS[kind], reason[:MAX_TEXT], since)

    def counts(self) -> dict[str, dict[str, int]]:
        """Kind -> reason class -> frames set aside (a copy; kinds without any are left out)."""
        with self._lock:
            return {kind: dict(c) for kind, c in self._counts.items() if c}

    def last(self) -> dict[str, str]:
        """Kind -> the full text of its last reason (a copy)."""
        with self._lock:
            return dict(self._last)
