"""A bridge process fed by a deterministic generator, for fault tests (run as a script).

It runs the real :class:`firmware_bridge.bridge.Bridge` (spool, MQTT, feedback)
with no serial sensor: a generator thread hands it one observation every
``1/rate`` s.  After each durable append it writes ``<boot> <seq>`` to the
ground-truth log (so the log may lack the very last record appended before a
kill -9, never the reverse).  Values are a pure function of ``(boot, seq)``.

:mod:`fault_pipeline` starts one per kit, each with its own device id, spool and log.

usage: fault_bridge.py DEVICE CAMPAIGN HOST PORT SPOOL_DIR TRUTH_LOG RATE GENERATE_SECONDS
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import zlib
from pathlib import Path

from firmware_bridge.bridge import Bridge, BridgeSettings
from firmware_bridge.sensors.base import Observation


def value(boot: str, seq: int) -> float:
    """The generator's PM2.5 for a record [µg/m³]: deterministic, 0.0–999.9."""
    return (zlib.crc32(f"{boot}:{seq}".encode()) % 10000) / 10


def main() -> None:
    device, campaign, host, port, spool, truth, rate, seconds = sys.argv[1:9]
    bridge = Bridge(BridgeSettings(device=device, campaign=campaign, spool_dir=Path(spool), host=host, port=int(port),
                                   fsync="always", batch_records=50, batch_ms=100, resend_after_s=3.0,
                                   status_every_s=0.5))
    bridge.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    period, deadline = 1 / float(rate), time.monotonic() + float(seconds)
    with open(truth, "a", buffering=1) as log:
        log.write(f"# boot {bridge.boot}\n")
        while not stop.is_set() and time.monotonic() < deadline:
            seq = bridge._seq
            bridge.on_observation(Observation("plantower-pms5003", {"pm2_5": value(bridge.boot, seq)}))
            log.write(f"{bridge.boot} {seq}\n")
            time.sleep(period)
    stop.wait()
    bridge.stop()


if __name__ == "__main__":
    main()
