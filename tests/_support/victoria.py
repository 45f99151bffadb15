"""A VictoriaMetrics process for tests: an InfluxDB-compatible write endpoint that a test may stop and restart.

Debian's ``victoria-metrics`` (1.79) takes influxdb-client's ``/api/v2/write``
(it ignores token, org and bucket; field ``f`` of measurement ``m`` becomes the
series ``m_f``).  Data is readable after ``GET /internal/force_flush``.

Facts that shape the helper (checked with 1.79.5):

- ``stop()`` sends SIGTERM: VictoriaMetrics then writes what it holds to disk.
  After ``kill -9`` it loses what it acknowledged in the last seconds, so a test
  that expects every acknowledged point back stops it with SIGTERM.
- It keeps every sample, duplicates included, unless ``-dedup.minScrapeInterval``
  is set; ``dedup=True`` (1 ms) makes it keep one value per series and
  millisecond, as InfluxDB does.
- Samples older than the retention (1 month by default) are dropped with a 204.
- ``/api/v1/export`` with ``match[]={__name__=~".+"}`` returns nothing; match
  everything with ``{__name__!=""}``.

Docs: https://docs.victoriametrics.com/single-server-victoriametrics/ (sections
"How to send data from InfluxDB-compatible agents", "How to export time series",
"Deduplication").
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Self

DEFAULT_BINARY = "/usr/bin/victoria-metrics"


def find_victoria() -> str | None:
    """The ``victoria-metrics`` binary, or ``None`` (install: ``apt-get install -y victoria-metrics``)."""
    return shutil.which("victoria-metrics") or (DEFAULT_BINARY if Path(DEFAULT_BINARY).exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VictoriaMetrics:
    """One ``victoria-metrics`` process on 127.0.0.1, with its storage in ``data_dir``.

    The port stays the same across :meth:`stop` / :meth:`start`, so a client keeps its URL.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, dedup: bool = True,
                 binary: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.binary = binary or find_victoria() or DEFAULT_BINARY
        self.dedup = dedup
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    def _args(self) -> list[str]:
        args = [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.data_dir}",
                "-search.latencyOffset=0s", "-retentionPeriod=100y", "-loggerLevel=ERROR"]
        if self.dedup:
            args.append("-dedup.minScrapeInterval=1ms")
        return args

    def start(self, timeout: float = 20.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self._args(), stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"victoria-metrics did not answer /health within {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait: VictoriaMetrics saves what it holds before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def force_flush(self) -> None:
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as r:
            r.read()

    def export(self, match: str = '{__name__!=""}') -> list[dict]:
        """Every series matching ``match`` as ``/api/v1/export`` gives it (one JSON object per series)."""
        self.force_flush()
        data = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=data, timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]

    def samples(self, match: str = '{__name__!=""}') -> list[tuple[str, tuple[tuple[str, str], ...], int, float]]:
        """Every sample as ``(name, sorted labels, timestamp [ms], value)``, sorted; duplicates kept."""
        out = []
        for series in self.export(match):
            metric = dict(series["metric"])
            name = metric.pop("__name__")
            labels = tuple(sorted(metric.items()))
            out += [(name, labels, int(t), float(v)) for t, v in zip(series["timestamps"], series["values"])]
        return sorted(out)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
