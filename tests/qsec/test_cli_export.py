"""`qsec export` and campaign commands as a user runs them: real processes, a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import duckdb
import psutil
import pyarrow.parquet as pq

from ingest.store import create_schema

QSEC = [sys.executable, "-m", "qsec"]


def synthetic_store(data: Path, rows: int) -> None:
    """``rows`` PMS5003-like records of 20 devices at 1 Hz, written by SQL (no Python loop)."""
    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(data / "qsec.duckdb"))
    create_schema(con)
    con.execute(f"""
        INSERT INTO readings (campaign, device, boot, seq, time, sensor, flags, received, pm1, pm2_5, pm10,
                              temperature, relative_humidity)
        SELECT 'big', 'kit-' || lpad((i % 20)::VARCHAR, 2, '0'), 'b0', i // 20,
               TIMESTAMP '2026-05-01' + to_seconds(i // 20), 'plantower-pms5003', 0, TIMESTAMP '2026-05-01',
               (i % 50)::DOUBLE, (i % 70)::DOUBLE, (i % 90)::DOUBLE, 15 + (i % 10), 40 + (i % 30)
        FROM range({rows}) t(i)""")
    con.close()


def run(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QSEC, *args, "--data-dir", str(data)], capture_output=True, text=True, timeout=300,
                          env=env or os.environ.copy(), check=False)


def peak_rss_mb(args: list[str]) -> tuple[float, int]:
    """Run a command, sampling its resident memory every 20 ms; returns (peak MB, exit code)."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = psutil.Process(process.pid)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            try:
                peak[0] = max(peak[0], watched.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            threading.Event().wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = process.wait(timeout=600)
    sampler.join()
    return peak[0] / 2**20, code


def test_a_large_export_stays_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    synthetic_store(small, 1_000_000)
    synthetic_store(large, 2_000_000)
    peaks = {}
    for name, data in (("small", small), ("large", large)):
        out = tmp_path / f"{name}.zip"
        peaks[name], code = peak_rss_mb([*QSEC, "export", "--campaign", "big", "--format", "parquet", "-o", str(out),
                                         "--data-dir", str(data), "--memory-limit", "128MB"])
        assert code == 0
    with zipfile.ZipFile(tmp_path / "large.zip") as bundle:
        bundle.extract("data.parquet", tmp_path)
    assert pq.ParquetFile(tmp_path / "data.parquet").metadata.num_rows == 2_000_000
    # a million more rows (about 110 MB more as Arrow columns) must cost no more memory: DuckDB spills its
    # sort beyond --memory-limit and each batch is written and dropped (measured 2M: 400 MB, 4M: 427 MB)
    assert peaks["large"] - peaks["small"] < 100 and peaks["large"] < 700, peaks


def test_campaign_commands_register_a_kit_and_delete_a_participant_on_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    synthetic_store(data, 2_000)
    assert run("campaign", "create", "big", "--title", "Grand", "--public", data=data).returncode == 0
    kit = run("kit", "register", "k1", "--campaign", "big", "--device", "kit-01=plantower-pms5003", data=data)
    assert kit.returncode == 0, kit.stderr
    password = kit.stdout.split()[-1]
    assert password not in (data / "broker" / "passwords").read_text()
    participant = run("participant", "add", "--campaign", "big", data=data).stdout.strip()
    assert run("participant", "assign", participant, "k1", "--from", "2026-05-01T00:00:00Z", data=data).returncode == 0
    mine = run("participant", "export", participant, "-o", str(tmp_path / "mine.zip"), data=data)
    assert mine.returncode == 0 and "100 records" in mine.stdout
    gone = run("participant", "delete", participant, "--yes", data=data)
    assert gone.returncode == 0 and "deleted 100 readings" in gone.stdout
    export = run("export", "--campaign", "big", "--format", "csv", "-o", str(tmp_path / "all.zip"), data=data)
    assert export.returncode == 0 and "1900 records" in export.stdout
    manifest = json.loads(zipfile.ZipFile(tmp_path / "all.zip").read("manifest.json"))
    assert manifest["rows"] == 1900 and manifest["licence"]["id"] == "ODbL-1.0"
    con = duckdb.connect(str(data / "qsec.duckdb"), read_only=True)
    assert con.execute("SELECT readings, what FROM deletion_log").fetchall()[0][0] == 100
    assert [r[0] for r in con.execute("SELECT route FROM export_log ORDER BY exported").fetchall()] == ["cli", "cli"]
    con.close()


def test_export_refuses_a_public_view_with_positions_and_says_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    synthetic_store(data, 100)
    refused = run("export", "--campaign", "big", "--public", "--positions", "-o", str(tmp_path / "x.zip"), data=data)
    assert refused.returncode != 0 and "public data carries no positions" in refused.stderr
