"""CPU cost of the whole bridge: serial reader -> spool -> MQTT publish -> settlement, against a real broker.

The bridge runs as it does on a kit, ``python -m qsec bridge run --config …``
in a process of its own, reading a simulated kit's pseudo-terminals (PMS5003,
MH-Z19, NMEA GPS).  This script plays ingest's part without a store: it
subscribes to the readings and answers each message with the feedback that
settles it, so the bridge's spool is released as in production.  The
bridge's CPU time is read from ``/proc/<pid>/task/*/schedstat`` (nanoseconds,
all threads) over measurement windows after a warm-up.

Two figures, each the median of the windows:

1. **per 1,000 records**: the kit at a high rate, CPU seconds the bridge
   process spends per 1,000 records settled; the reference, measured in the
   same run, is a bare paho loop publishing the same records (QoS 1, batches
   of 50, ``contract.encode_batch``) and waiting for each PUBACK, its CPU time
   from ``time.process_time``;
   it also times the bridge's per-record steps each alone (stamp and spool
   append, NMEA decode, a pyserial read), to show where the rest goes;
2. **a kit at 1 Hz**: 4 records/s (a PMS5003 frame, an MH-Z19 answer, a GGA
   and an RMC sentence every second), the bridge's CPU as a percentage of one
   core (goal: under 2 % here; a Raspberry Pi Zero is roughly 10-20x slower
   per core), and the same with the sensors silent (the bridge idling).

    python benchmarks/bench_bridge.py            # about 1.5 minutes
    python benchmarks/bench_bridge.py --quick    # about 25 s

Linux only (``/proc``).  Uses the broker on 127.0.0.1:1883 when it answers,
else starts a private ``mosquitto``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from firmware_bridge.simulator import ROUTES, Kit  # noqa: E402
from qsec import contract  # noqa: E402
from qsec.broker import MosquittoProcess, mqtt_answers  # noqa: E402

DEVICE, CAMPAIGN = "bench-kit", "bench-bridge"


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` [MiB], from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_cpu_s(pid: int) -> float:
    """CPU time of every thread of ``pid`` [s], from schedstat (ns resolution)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            continue
    return total / 1e9


class Settler:
    """Ingest without a store: every readings message is answered with the feedback that settles it."""

    def __init__(self, port: int):
        self.records = 0
        self.seen: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-settler", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(contract.topic(CAMPAIGN, DEVICE, "readings"), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        batch = contract.decode_batch(msg.payload, device=DEVICE)
        seqs = [r.seq for r in batch.records]
        with self._lock:
            for s in seqs:
                if (batch.boot, s) not in self.seen:
                    self.seen.add((batch.boot, s))
                    self.records += 1
        fb = contract.Feedback(device=DEVICE, settled={batch.boot: contract.ranges(seqs)},
                               highest={batch.boot: max(seqs)}, accepted=len(seqs))
        client.publish(contract.topic(CAMPAIGN, DEVICE, "ingest"), fb.encode(), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, kit: Kit, port: int, spool: Path, poll_s: float) -> None:
    sensors = "".join(f'\n[[sensors]]\nprotocol = "{p}"\nport = "{link}"\ninterval = {poll_s}\n'
                      for p, link in kit.paths.items())
    path.write_text(f'device = "{DEVICE}"\ncampaign = "{CAMPAIGN}"\n[broker]\nport = {port}\n'
                    f'[spool]\ndir = "{spool}"\n{sensors}')


def run_bridge(tmp: Path, port: int, rate_hz: float, windows: int, window_s: float, warmup_s: float,
               idle: bool = False) -> tuple[list[float], list[float], list[float], float]:
    """Per window: (records settled, bridge CPU seconds, wall seconds), then the bridge's memory [MiB].

    With ``idle`` the kit is paused.
    """
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    kit = Kit("bench", next(iter(ROUTES)), 1, run_dir / "dev", rate_hz=rate_hz).start(paused=True)
    write_config(run_dir / "kit.toml", kit, port, run_dir / "spool", poll_s=max(0.05, 1.0 / rate_hz))
    settler = Settler(port)
    log = open(run_dir / "bridge.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "qsec", "bridge", "run", "--config", str(run_dir / "kit.toml")],
                            stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)})
    records: list[float] = []
    cpu: list[float] = []
    wall: list[float] = []
    try:
        time.sleep(1.5)  # imports, connection, ports opened (pyserial empties input on open)
        if not idle:
            kit.resume()
        time.sleep(warmup_s)
        for _ in range(windows):
            r0, c0, w0 = settler.records, process_cpu_s(proc.pid), time.monotonic()
            time.sleep(window_s)
            records.append(settler.records - r0)
            cpu.append(process_cpu_s(proc.pid) - c0)
            wall.append(time.monotonic() - w0)
        if proc.poll() is not None:
            raise RuntimeError("the bridge exited early:\n" + (run_dir / "bridge.log").read_text(errors="replace"))
        memory = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        settler.close()
        kit.stop()
    return records, cpu, wall, memory


def reference_cpu_per_1000(port: int, n: int, repeats: int) -> float:
    """CPU seconds per 1,000 records of a bare paho QoS 1 publish loop, batches of 50 (median)."""
    recs = [contract.Record(seq=i, t=1_767_225_600_000 + i * 250, sensor="plantower-pms5003",
                            values={"pm1": 3.0 + i % 7, "pm2_5": 5.0 + i % 11, "pm10": 8.0 + i % 13})
            for i in range(n)]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-reference", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    out = []
    try:
        for _ in range(repeats):
            t0 = time.process_time()
            infos = []
            for i in range(0, n, 50):
                payload = contract.encode_batch(contract.Batch(DEVICE, "reference", tuple(recs[i:i + 50])))
                infos.append(c.publish("qsec/v1/bench-reference/ref/readings", payload, qos=1))
            for info in infos:
                info.wait_for_publish(10)
            out.append((time.process_time() - t0) / n * 1000)
    finally:
        c.disconnect()
        c.loop_stop()
    return statistics.median(out)


def per_record_parts(tmp: Path, n: int) -> dict[str, float]:
    """CPU µs per call of the bridge's per-record steps, each alone (median of 3)."""
    import pty
    import tty
    from datetime import datetime, timezone

    import serial

    from firmware_bridge.bridge import Bridge, BridgeSettings
    from firmware_bridge.sensors.base import Observation
    from firmware_bridge.sensors.nmea import nmea0183

    bridge = Bridge(BridgeSettings(device="parts", campaign="parts", spool_dir=tmp / "parts-spool"))
    obs = Observation("plantower-pms5003", {"pm1": 3.0, "pm2_5": 5.0, "pm10": 8.0, "pm1_cf1": 3.0, "pm2_5_cf1": 5.0,
                                            "pm10_cf1": 8.0})
    gga = nmea0183.encode_gga(datetime.now(timezone.utc), 48.8, 2.1)
    master, slave = pty.openpty()
    tty.setraw(slave)
    port = serial.Serial(os.ttyname(slave), 9600, timeout=0.5)

    def read_one() -> None:
        os.write(master, gga)
        port.read(port.in_waiting or 1)

    parts = {"stamp, spool append, queue (Bridge.on_observation)": lambda: bridge.on_observation(obs),
             "decode an NMEA GGA sentence": lambda: nmea0183.decode(gga),
             "pyserial read of one sentence from a pty": read_one}
    out = {}
    try:
        for name, call in parts.items():
            runs = []
            for _ in range(3):
                t0 = time.process_time()
                for _ in range(n):
                    call()
                runs.append((time.process_time() - t0) / n * 1e6)
            out[name] = statistics.median(runs)
    finally:
        port.close()
        os.close(master)
        os.close(slave)
        bridge.spool.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter windows, fewer repeats")
    args = ap.parse_args()
    windows, fast_s, slow_s, warm = (2, 3.0, 5.0, 1.0) if args.quick else (3, 5.0, 15.0, 2.0)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-bridge-")))
        if mqtt_answers("127.0.0.1", 1883):
            port = 1883
        else:
            port = stack.enter_context(MosquittoProcess(tmp / "broker")).port
        print(f"bridge benchmark: broker 127.0.0.1:{port}, {os.cpu_count()} cores, medians of {windows} windows")

        rec, cpu, wall, _ = run_bridge(tmp, port, rate_hz=100.0, windows=windows, window_s=fast_s, warmup_s=warm)
        per_1000 = statistics.median(c / r * 1000 for c, r in zip(cpu, rec) if r)
        rate = statistics.median(r / w for r, w in zip(rec, wall))
        ref = reference_cpu_per_1000(port, 20_000 if not args.quick else 5_000, repeats=3)
        print(f"\n1. kit at 100 Hz: {rate:,.0f} records/s settled")
        print(f"   bridge process       {per_1000 * 1000:8.1f} CPU-ms per 1,000 records")
        print(f"   reference paho loop  {ref * 1000:8.1f} CPU-ms per 1,000 records (QoS 1, batches of 50)")
        print(f"   ratio bridge / reference: {per_1000 / ref:.1f}x")
        print("   the bridge's Python work per record, each step alone [CPU-µs]:")
        for name, us in per_record_parts(tmp, 2_000 if args.quick else 10_000).items():
            print(f"     {us:6.1f}  {name}")

        rec, cpu, wall, memory = run_bridge(tmp, port, rate_hz=1.0, windows=windows, window_s=slow_s, warmup_s=warm)
        busy = statistics.median(c / w * 100 for c, w in zip(cpu, wall))
        rate1 = statistics.median(r / w for r, w in zip(rec, wall))
        _, cpu_i, wall_i, _ = run_bridge(tmp, port, rate_hz=1.0, windows=windows, window_s=slow_s, warmup_s=warm,
                                      idle=True)
        idle = statistics.median(c / w * 100 for c, w in zip(cpu_i, wall_i))
        print(f"\n2. kit at 1 Hz ({rate1:.1f} records/s: PMS5003, MH-Z19, GGA, RMC)")
        print(f"   bridge process       {busy:6.2f} % of one core (goal < 2 %)")
        print(f"   same, sensors silent {idle:6.2f} % of one core (the bridge idling)")
        print(f"   ratio 1 Hz / idle: {busy / idle:.1f}x" if idle > 0 else "   idle below the clock's resolution")
        print(f"   bridge resident memory: {memory:.0f} MiB (Python, pyserial, paho-mqtt, 3 readers)")


if __name__ == "__main__":
    main()
