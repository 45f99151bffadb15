"""`qsec up`, the main job, as a user runs it: real processes, broker, HTTP and Chromium."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from harness import CHROMIUM, CHROMIUM_ARGS, require_chromium, wait_until
from qsec.broker import free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[1]


def _start_up(data: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "qsec", "up", "--own-broker", "--kits", "3", "--rate", "2",
                             "--port", str(port), "--data-dir", str(data), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _stop(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a person would; returns what it printed."""
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=40)
    return out


def _latest(url: str) -> dict:
    return httpx.get(f"{url}/api/latest", timeout=5).json()


def test_qsec_up_shows_three_live_kits_and_a_second_run_carries_on(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_up(data, port)
    try:
        def three_kits_with_pm() -> bool:
            try:
                devs = _latest(url)["devices"]
            except httpx.HTTPError:
                return False
            return len(devs) == 3 and all("pm2_5" in d["values"] and "co2" in d["values"] for d in devs)

        wait_until(three_kits_with_pm, timeout=60, interval=0.5, what="3 kits with PM2.5 and CO2 on /api/latest")

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            outside: list[str] = []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                       else (outside.append(route.request.url), route.abort()))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_selector("[data-device]", timeout=15_000)
            texts = page.locator("[data-device]").all_inner_texts()
            assert len(texts) == 3 and all(re.search(r"kit0[123]", t) for t in texts)

            first = page.locator("[data-device]").first.inner_text()
            page.wait_for_function(f"document.querySelector('[data-device]').innerText !== {first!r}", timeout=10_000)
            shot = ROOT / "docs" / "screenshots" if os.environ.get("QSEC_UPDATE_SCREENSHOTS") else tmp_path
            shot.mkdir(parents=True, exist_ok=True)
            if shot != tmp_path:  # for the README: let a few whole minutes of means fill the charts
                time.sleep(150)
                page.reload()
                page.wait_for_selector("[data-device]", timeout=15_000)
            time.sleep(2)
            page.screenshot(path=str(shot / "qsec-up.png"))
            browser.close()
        assert outside == [] and errors == []

        def kits_online() -> str | None:
            text = httpx.get(f"{url}/metrics", timeout=5).text
            return text if all(f'qsec_bridge_online{{device="kit0{i}"}} 1.0' in text for i in (1, 2, 3)) else None

        metrics = wait_until(kits_online, timeout=20, interval=0.5, what="3 kits online in /metrics")
        stored = float(re.search(r"^qsec_ingest_records_stored_total (\S+)$", metrics, re.M).group(1))
        assert stored > 0 and 'qsec_bridge_spool_dropped_total{device="kit01"} 0.0' in metrics
        shown = subprocess.run([sys.executable, "-m", "qsec", "status", "--url", url], capture_output=True, text=True,
                               timeout=30)
        assert shown.returncode == 0 and f"live from {url}" in shown.stdout and "kit02" in shown.stdout, shown.stdout
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "stopped." in out
    for pid in map(int, re.findall(r"bridge pid (\d+)", out)):
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), \
            f"bridge {pid} still runs"

    con = duckdb.connect(str(data / "qsec.duckdb"), read_only=True)
    (first_count,) = con.execute("SELECT count(*) FROM readings").fetchone()
    (boots,) = con.execute("SELECT count(DISTINCT boot) FROM readings").fetchone()
    con.close()
    assert first_count > 0 and boots == 3

    proc = _start_up(data, port, "--duration", "6")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    con = duckdb.connect(str(data / "qsec.duckdb"), read_only=True)
    (count,) = con.execute("SELECT count(*) FROM readings").fetchone()
    (boots,) = con.execute("SELECT count(DISTINCT boot) FROM readings").fetchone()
    (dups,) = con.execute("SELECT count(*) - count(DISTINCT (device, boot, seq)) FROM readings").fetchone()
    con.close()
    assert count > first_count and boots == 6 and dups == 0
