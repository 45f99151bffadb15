"""Find a Mosquitto broker, or run one of our own with a deliberate configuration.

Facts this relies on (checked with Mosquitto 2.0.11, see docs/broker.md):

- started as root, mosquitto drops to the user ``mosquitto``, which cannot
  reach a folder inside a private directory: run as root, our config says
  ``user root``;
- persistence is a snapshot every ``autosave_interval`` seconds: a kill -9
  loses what was queued since — the bridge's spool, not the broker, keeps
  readings safe;
- ``max_queued_messages`` (default 1000) silently drops a QoS 1 backlog for
  an offline subscriber: qsec sets it (and ``max_queued_bytes``)
  deliberately; what it still drops is re-sent from the bridges' spools.

Mosquitto configuration reference: https://mosquitto.org/man/mosquitto-conf-5.html
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mqtt_answers(host: str, port: int, timeout: float = 2.0, *, refusal_counts: bool = False) -> bool:
    """True when an MQTT broker accepts an anonymous MQTT 3.1.1 CONNECT (CONNACK code 0).

    With ``refusal_counts``, any CONNACK will do (a broker with access control answers "not authorised").
    """
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 0])  # clean session, keepalive 10, empty id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(connect)
            ack = s.recv(4)
            s.sendall(bytes([0xE0, 0]))  # DISCONNECT
            return len(ack) == 4 and ack[0] == 0x20 and (refusal_counts or ack[3] == 0)
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or (str(Path("/usr/sbin/mosquitto")) if Path("/usr/sbin/mosquitto").exists() else None)


@dataclass
class BrokerConfig:
    """What qsec writes into mosquitto.conf.  Every limit is deliberate; docs/broker.md explains each."""

    port: int
    host: str = "127.0.0.1"
    autosave_interval_s: int = 30
    max_queued_messages: int = 100_000  # per client; beyond it the bridges' spools re-send
    max_queued_bytes: int = 512 * 2**20
    max_inflight_messages: int = 100
    max_packet_size: int = 1 * 2**20  # above the contract's 256 KiB payload limit
    password_file: Path | None = None
    acl_file: Path | None = None

    def render(self, data_dir: Path) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.password_file else 'true'}",
            "persistence true",
            f"persistence_location {data_dir}/",
            f"autosave_interval {self.autosave_interval_s}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            f"max_inflight_messages {self.max_inflight_messages}",
            f"max_packet_size {self.max_packet_size}",
            "persistent_client_expiration 14d",
            f"log_dest file {data_dir}/mosquitto.log",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            # As root, stay root: mosquitto would otherwise drop to its own user, which cannot
            # reach a data folder inside a private (0700) directory such as a test's tmp_path.
            *(["user root"] if os.geteuid() == 0 else []),
        ]
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        return "\n".join(lines) + "\n"


class MosquittoProcess:
    """A mosquitto process of our own, in the foreground so that we own its PID."""

    def __init__(self, data_dir: Path, config: BrokerConfig | None = None):
        self.data_dir = Path(data_dir)
        self.config = config or BrokerConfig(port=free_port())
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config.render(self.data_dir.resolve()))
        self.log_path.touch()

    def start(self, timeout: float = 10.0) -> "MosquittoProcess":
        exe = find_mosquitto()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed: run `sudo apt-get install -y mosquitto` "
                                    "(./run.sh does it for you when run as root)")
        self._prepare()
        self.proc = subprocess.Popen([exe, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited at start (code {self.proc.returncode}): {err.strip()} "
                                   f"— see {self.log_path}")
            if mqtt_answers(self.config.host, self.port, refusal_counts=True):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not answer on {self.config.host}:{self.port} within {timeout:.0f} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop it: SIGTERM saves the persistence file; SIGKILL (``kill()``) loses the unsaved queue."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password and ACL files (new kits can connect)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def __enter__(self) -> "MosquittoProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
