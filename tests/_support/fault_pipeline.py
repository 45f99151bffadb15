"""Bridge -> broker -> ingest under faults, and the accounting against the generators' ground truth.

Used by ``tests/test_faults_pipeline.py`` (one kit, ~30 s) and
``benchmarks/soak_faults.py`` (several kits, minutes).  Every part is real:
one :mod:`fault_bridge` process per kit (the real bridge, its own device id,
spool and ground-truth log), ``qsec ingest`` as a subprocess with its pool of
decoding processes, and a private Mosquitto (:class:`qsec.broker.MosquittoProcess`).

A fault plan is a list of :class:`Fault` steps:

- ``bridge``: kill -9 one kit's bridge, start it again (new boot, same spool);
- ``ingest``: kill -9 the ingest process, start it again;
- ``decoder``: kill -9 one decoding process of the running ingest (a child
  whose command line holds ``spawn_main``, the start-up of a process of the
  ``spawn`` context: https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods);
- ``broker``: kill -9 Mosquitto (it loses its unsaved queue), start it again;
- ``network``: stop the broker cleanly for ``down_s`` seconds — every
  client's connection is cut — then start it again.

A part that exits by itself (not killed by the plan) is a *crash*: it is
counted, its last error line kept, and it is started again, as a supervisor
(systemd) would.

The accounting reads the store once everything is stopped: a record the
generator logged and the store lacks is *lost*; a ``(device, boot, seq)``
stored twice is *doubled*; every stored value must be the generator's.
Processes are found with psutil (https://psutil.readthedocs.io/).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from fault_bridge import value
from harness import wait_until
from qsec import contract
from qsec.broker import BrokerConfig, MosquittoProcess, free_port

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
FAULTS = ("bridge", "ingest", "decoder", "broker", "network")
MARKER = "QSEC_FAULT_RUN"  # environment variable that tags the processes of one run (decoders inherit it)


@dataclass(frozen=True)
class Fault:
    """One step of a fault plan: wait ``wait_s``, then do ``kind`` (to kit ``kit``; broker down ``down_s``)."""

    kind: str
    wait_s: float = 2.0
    kit: int = 0
    down_s: float = 3.0

    def __post_init__(self) -> None:
        assert self.kind in FAULTS, f"fault {self.kind!r} is not one of {FAULTS}"


def decoders_of(pid: int) -> list[psutil.Process]:
    """The decoding processes (``spawn_main`` children) of the process ``pid``."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if _is_decoder(c)]


def _is_decoder(p: psutil.Process) -> bool:
    try:
        return any("spawn_main" in part for part in p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


class StatusWatch:
    """Each kit's retained status, as any MQTT client sees it, with the time [monotonic s] it arrived."""

    def __init__(self, port: int, campaign: str):
        self.last: dict[str, tuple[float, dict]] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(contract.subscription(campaign, kind="status"))
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        self.last[contract.parse_topic(msg.topic).device] = (time.monotonic(), json.loads(msg.payload))

    def drained(self, device: str, since: float) -> bool:
        """The kit reported, after ``since``, that it is online with nothing pending in its spool."""
        at, doc = self.last.get(device, (0.0, {}))
        return at > since and doc.get("state") == "online" and (doc.get("spool") or {}).get("pending") == 0

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Pipeline:
    """A private broker, ``qsec ingest`` and one generating bridge per kit, each startable and killable."""

    def __init__(self, tmp: Path, *, kits: int = 1, rate: float = 100, generate_s: float = 24.0,
                 decode_processes: int = 1, campaign: str = "faults", say=lambda line: None):  # noqa: ANN001
        self.tmp, self.rate, self.generate_s, self.campaign = tmp, rate, generate_s, campaign
        self.devices = ["kit-f"] if kits == 1 else [f"kit-{i}" for i in range(kits)]
        self.decode_processes = decode_processes
        self.port = free_port()
        self.broker = MosquittoProcess(tmp / "broker", BrokerConfig(port=self.port, autosave_interval_s=1))
        self.bridges: list[subprocess.Popen | None] = [None] * kits
        self.ingest: subprocess.Popen | None = None
        self.run_id = uuid.uuid4().hex
        self.env = {**os.environ, MARKER: self.run_id,
                    "PYTHONPATH": os.pathsep.join([str(SUPPORT), str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.faults: Counter[str] = Counter()
        self.bridge_kills: Counter[str] = Counter()
        self.crashes: list[str] = []  # parts that exited by themselves: "<part> exited (code N): <last error line>"
        self.say = say
        self.killed_decoders: list[psutil.Process] = []  # decoders of killed ingest processes, and killed decoders
        self.t0 = time.monotonic()
        self.started = time.time()  # [s since the epoch]: processes created before belong to other runs
        self.generation_ends = self.t0
        self.watch: StatusWatch | None = None

    # ------------------------------------------------------------ parts
    def kit_dir(self, kit: int) -> Path:
        return self.tmp / self.devices[kit]

    @property
    def store_path(self) -> Path:
        return self.tmp / "data" / "qsec.duckdb"

    def start(self) -> "Pipeline":
        """Broker, ingest, then every kit's bridge; generation runs ``generate_s`` from now."""
        self.broker.start()
        self.start_ingest()
        self.t0 = time.monotonic()
        for kit in range(len(self.devices)):
            self.start_bridge(kit)
        self.watch = StatusWatch(self.port, self.campaign)
        return self

    def start_broker(self) -> None:
        self.broker = MosquittoProcess(self.tmp / "broker", self.broker.config).start()

    def start_bridge(self, kit: int) -> None:
        seconds = max(1.0, self.generate_s - (time.monotonic() - self.t0))
        self.generation_ends = max(self.generation_ends, time.monotonic() + seconds)
        d = self.kit_dir(kit)
        d.mkdir(parents=True, exist_ok=True)
        self.bridges[kit] = subprocess.Popen(
            [sys.executable, str(SUPPORT / "fault_bridge.py"), self.devices[kit], self.campaign, "127.0.0.1",
             str(self.port), str(d / "spool"), str(d / "truth.log"), str(self.rate), str(seconds)],
            env=self.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(d / "bridge.err", "ab"))

    def start_ingest(self) -> None:
        self.ingest = subprocess.Popen(
            [sys.executable, "-m", "qsec", "ingest", "--data-dir", str(self.tmp / "data"), "--broker",
             f"127.0.0.1:{self.port}", "--client-id", "fault-ingest",
             "--decode-processes", str(self.decode_processes)],
            env=self.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "ingest.err", "ab"))

    def revive(self) -> None:
        """Start again any part that exited by itself, recording it in :attr:`crashes`."""
        if self.ingest.poll() is not None:
            self._crashed("ingest", self.ingest.returncode, self.tmp / "ingest.err")
            self.start_ingest()
        for kit, proc in enumerate(self.bridges):
            if proc.poll() is not None:
                self._crashed(f"bridge of {self.devices[kit]}", proc.returncode, self.kit_dir(kit) / "bridge.err")
                self.start_bridge(kit)

    def _crashed(self, part: str, code: int, err: Path) -> None:
        lines = [line for line in err.read_text(errors="replace").splitlines() if line.strip()]
        self.crashes.append(f"{part} exited by itself (code {code}): {lines[-1] if lines else 'no error output'}")
        self.say(f"[{time.monotonic() - self.t0:7.1f} s] CRASH {self.crashes[-1]}; started again")

    def _live_decoders(self) -> list[psutil.Process]:
        self.revive()
        return decoders_of(self.ingest.pid)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # ------------------------------------------------------------ faults
    def apply(self, fault: Fault) -> str:
        """Do one fault now (and the restart after it); returns what was done, for a progress line."""
        self.faults[fault.kind] += 1
        if fault.kind == "bridge":
            device = self.devices[fault.kit]
            self.bridge_kills[device] += 1
            self._kill(self.bridges[fault.kit])
            time.sleep(0.3)
            self.start_bridge(fault.kit)
            return f"bridge of {device} killed and restarted"
        if fault.kind == "ingest":
            self.killed_decoders += decoders_of(self.ingest.pid)
            self._kill(self.ingest)
            time.sleep(0.3)
            self.start_ingest()
            return "ingest killed and restarted"
        if fault.kind == "decoder":
            victim = wait_until(self._live_decoders, timeout=60, interval=0.1,
                                what="a decoding process of ingest")[0]
            self.killed_decoders.append(victim)
            victim.send_signal(signal.SIGKILL)
            return f"decoding process {victim.pid} of ingest {self.ingest.pid} killed"
        if fault.kind == "broker":
            self.broker.kill()
            time.sleep(0.5)
            self.start_broker()
            return "broker killed and restarted"
        self.broker.stop()  # network: a clean stop cuts every client's connection
        time.sleep(fault.down_s)
        self.start_broker()
        return f"broker down {fault.down_s:.1f} s (network cut)"

    def run(self, plan: list[Fault], progress=None) -> None:  # noqa: ANN001
        """Apply the plan's steps in order; ``progress(i, fault, what)`` after each."""
        for i, fault in enumerate(plan, start=1):
            time.sleep(fault.wait_s)
            self.revive()
            what = self.apply(fault)
            if progress:
                progress(i, fault, what)

    def settle(self, timeout: float = 90.0) -> None:
        """Wait for generation to end, then for every kit's spool to be settled by ingest."""
        wait_until(lambda: self.revive() or time.monotonic() > self.generation_ends + 0.5,
                   timeout=self.generate_s + 60, interval=0.5, what="generation to end")
        for device in self.devices:
            wait_until(lambda: self.revive() or self.watch.drained(device, self.generation_ends), timeout=timeout,
                       interval=0.5, what=f"the spool of {device} to be settled by ingest")

    def stop(self) -> None:
        """Stop everything cleanly (SIGTERM), whatever state it is in."""
        if self.watch:
            self.watch.close()
        for proc in (*self.bridges, self.ingest):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        self.broker.stop()

    # ------------------------------------------------------------ orphans
    def leftover_decoders(self) -> list[psutil.Process]:
        """Decoding processes of this run still alive though their ingest is gone.

        Those recorded when their ingest (or they) were killed, and any process of this run (tagged by
        :data:`MARKER` in its environment) whose command line holds ``spawn_main`` and whose parent is pid 1,
        gone, or not the running ingest.
        """
        live_ingest = self.ingest.pid if self.ingest and self.ingest.poll() is None else None
        out = [p for p in self.killed_decoders if _alive(p)]
        for p in psutil.process_iter(["cmdline", "ppid", "create_time"]):
            try:
                if (p.info["create_time"] >= self.started - 1 and p.info["ppid"] != live_ingest
                        and any("spawn_main" in a for a in p.info["cmdline"] or [])
                        and p.environ().get(MARKER) == self.run_id):
                    out.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return [p for p in {p.pid: p for p in out}.values() if _alive(p)]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ---------------------------------------------------------------- accounting
def read_truth(path: Path) -> dict[str, int]:
    """boot -> last seq the generator logged (a boot that logged nothing is absent)."""
    last: dict[str, int] = {}
    if not path.exists():
        return last
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            boot, seq = line.split()
            last[boot] = max(last.get(boot, -1), int(seq))
    return last


@dataclass
class KitCount:
    """What one kit generated and what the store holds of it."""

    device: str
    generated: int = 0  # records in the ground-truth log
    stored: int = 0  # rows in the store (may exceed generated by one per kill: appended, not yet logged)
    lost: int = 0
    doubled: int = 0
    dead: int = 0
    boots: int = 0
    problems: list[str] = field(default_factory=list)  # wrong values, holes, unknown boots, records beyond the log

    def line(self) -> str:
        return (f"generated {self.generated}, stored {self.stored}, lost {self.lost}, doubled {self.doubled}, "
                f"dead letters {self.dead}, boots {self.boots}")


def account_kit(device: str, truth: dict[str, int], rows: list[tuple[str, int, float]], dead: int) -> KitCount:
    """Compare a kit's stored ``(boot, seq, pm2_5)`` rows with its generator's log: a pure function."""
    c = KitCount(device, generated=sum(last + 1 for last in truth.values()), stored=len(rows), dead=dead,
                 boots=len(truth))
    stored: dict[str, set[int]] = defaultdict(set)
    for boot, seq, pm in rows:
        if pm != value(boot, seq):
            c.problems.append(f"record {boot}/{seq} stored with a value the generator did not produce")
        stored[boot].add(seq)
    c.doubled = len(rows) - sum(len(s) for s in stored.values())
    for boot, last in truth.items():
        # The log is written just after the durable append: a kill -9 between the two leaves one record
        # in the spool (and so in the store) that the log lacks.  Every logged record must be there.
        c.lost += len(set(range(last + 1)) - stored[boot])
        top = max(stored[boot], default=-1)
        if top not in (last, last + 1):
            c.problems.append(f"boot {boot}: stored up to {top}, logged {last}")
        if stored[boot] != set(range(top + 1)):
            c.problems.append(f"boot {boot}: a hole in the stored seqs")
    if set(stored) != set(truth):
        c.problems.append(f"boots stored {sorted(stored)} differ from boots logged {sorted(truth)}")
    return c


def account(p: Pipeline) -> tuple[list[KitCount], int, int]:
    """Each kit's count, and the store's dead letters and doubled rows in all (read once everything has stopped)."""
    con = duckdb.connect(str(p.store_path), read_only=True)
    try:
        counts = []
        for kit, device in enumerate(p.devices):
            rows = con.execute("SELECT boot, seq, pm2_5 FROM readings WHERE device = ?", [device]).fetchall()
            (dead,) = con.execute("SELECT count(*) FROM deadletter WHERE device = ?", [device]).fetchone()
            counts.append(account_kit(device, read_truth(p.kit_dir(kit) / "truth.log"), rows, dead))
        (dead_all,) = con.execute("SELECT count(*) FROM deadletter").fetchone()
        (doubled_all,) = con.execute("SELECT count(*) - count(DISTINCT (device, boot, seq)) FROM readings").fetchone()
    finally:
        con.close()
    return counts, dead_all, doubled_all
