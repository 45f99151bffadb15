"""Soak a screen: a Chromium page left on a view while live events flow, its memory recorded.

Every ``--every`` seconds, the page's JavaScript heap (DevTools protocol
``Runtime.getHeapUsage``, after ``HeapProfiler.collectGarbage`` so only
retained memory counts), its DOM node count and the server process's
resident memory (``VmRSS``) go to a CSV; at the end an SVG plot is drawn
from it and the growth (median of the last quarter of samples over the
median of the first quarter, the first sample left out as warm-up) is
printed.

    python benchmarks/soak_screen.py --minutes 60            # the figure in docs/performance.md
    python benchmarks/soak_screen.py --quick                 # 90 s

Events: three kits walking (PM, then a GPS fix, each kit once a second by
default), published from a thread through the live hub as ingest does.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_screens import store_app

from dashboards.live import LiveHub
from dashboards.serve_thread import start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
FIELDS = ["t_s", "js_heap_used_bytes", "js_heap_total_bytes", "dom_nodes", "server_rss_bytes", "events"]


@dataclass
class Sample:
    t_s: float
    js_heap_used_bytes: int
    js_heap_total_bytes: int
    dom_nodes: int
    server_rss_bytes: int
    events: int


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it) [bytes], from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status: this needs Linux")


def walkers(hub: LiveHub, stop: threading.Event, rate_hz: float, count: list[int]) -> None:
    """Three kits circling in Versailles: a PM record then a GPS record per kit per tick."""
    tick = 0
    while not stop.wait(1.0 / rate_hz):
        now = time.time_ns() // 1_000_000
        for k in range(3):
            angle = tick / 300 + k * 2.1
            pm = 8 + 6 * k + 5 * math.sin(tick / 40 + k)
            hub.publish({"campaign": "soak", "device": f"kit{k + 1:02d}", "sensor": "plantower-pms5003", "t": now,
                         "values": {"pm2_5": round(pm, 1), "pm10": round(1.5 * pm, 1), "pm1": round(0.7 * pm, 1)}})
            hub.publish({"campaign": "soak", "device": f"kit{k + 1:02d}", "sensor": "nmea-gps", "t": now,
                         "values": {"latitude": 48.8036 + 0.004 * math.sin(angle), "longitude": 2.125 +
                                    0.006 * math.cos(angle)}})
            count[0] += 2
        tick += 1


def soak(seconds: float, every_s: float, csv_path: Path, *, view: str = "live", rate_hz: float = 1.0,
         errors: list[str] | None = None) -> list[Sample]:
    """Run the soak and write the CSV; returns the samples.  Console errors go to ``errors``."""
    from playwright.sync_api import sync_playwright

    hub = LiveHub()
    samples: list[Sample] = []
    stop = threading.Event()
    count = [0]
    with tempfile.TemporaryDirectory(prefix="qsec-soak-") as folder:
        served = start_server(store_app(hub, Path(folder), campaign="soak"))
        feeder = threading.Thread(target=walkers, args=(hub, stop, rate_hz, count), daemon=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                if errors is not None:
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.on("pageerror", lambda e: errors.append(str(e)))
                cdp = page.context.new_cdp_session(page)
                page.goto(f"{served.url}/screen/{view}?replay_after=0")
                feeder.start()
                page.locator(".kit, .map-panel").first.wait_for(timeout=15_000)
                begin = time.monotonic()
                while True:
                    cdp.send("HeapProfiler.collectGarbage")
                    heap = cdp.send("Runtime.getHeapUsage")
                    nodes = page.evaluate("document.getElementsByTagName('*').length")
                    samples.append(Sample(round(time.monotonic() - begin, 1), int(heap["usedSize"]),
                                          int(heap["totalSize"]), int(nodes), rss_bytes(), count[0]))
                    if time.monotonic() - begin >= seconds:
                        break
                    page.wait_for_timeout(every_s * 1000)  # keeps Playwright serving the page meanwhile
                browser.close()
        finally:
            stop.set()
            hub.close()
            served.stop()
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        writer.writerows([[getattr(s, name) for name in FIELDS] for s in samples])
    return samples


def growth(values: list[float]) -> float:
    """Median of the last quarter over the median of the first quarter (first sample = warm-up, left out)."""
    body = values[1:] if len(values) > 4 else values
    quarter = max(1, len(body) // 4)
    return statistics.median(body[-quarter:]) / statistics.median(body[:quarter])


def plot_svg(samples: list[Sample], path: Path, title: str) -> None:
    """Two panels (JS heap, server RSS) [MB] against time [min], written by hand: no plotting library needed."""
    width, height, pad = 900, 520, 60
    panels = [("JS heap used (after GC) [MB]", [s.js_heap_used_bytes / 1e6 for s in samples], "#2563eb"),
              ("server RSS [MB]", [s.server_rss_bytes / 1e6 for s in samples], "#dc2626")]
    minutes = [s.t_s / 60 for s in samples]
    span = max(minutes[-1], 1e-9)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, '
              f'sans-serif" font-size="14"><rect width="{width}" height="{height}" fill="#fff"/>'
              f'<text x="{pad}" y="24" font-size="17" font-weight="bold">{title}</text>')]
    panel_h = (height - 2 * pad) / 2
    for i, (label, values, colour) in enumerate(panels):
        top = pad + i * (panel_h + 20)
        high = max(values) * 1.1 or 1.0

        def y(v: float, top: float = top, high: float = high) -> float:
            return top + panel_h - v / high * (panel_h - 20)

        def x(m: float) -> float:
            return pad + m / span * (width - 2 * pad)

        points = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in zip(minutes, values, strict=True))
        parts.append(f'<path d="M{pad},{top}V{top + panel_h}H{width - pad}" fill="none" stroke="#333"/>'
                     f'<text x="{pad + 8}" y="{top + 14}">{label}</text>'
                     f'<text x="{pad - 6}" y="{y(high / 1.1) + 5:.1f}" text-anchor="end">{high / 1.1:.1f}</text>'
                     f'<text x="{pad - 6}" y="{top + panel_h + 5:.1f}" text-anchor="end">0</text>'
                     f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append(f'<text x="{pad}" y="{height - 14}">0 min</text>'
                 f'<text x="{width - pad}" y="{height - 14}" text-anchor="end">{span:.1f} min</text></svg>')
    path.write_text("".join(parts), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=1.0, help="ticks per second (each: 3 kits × PM + GPS)")
    parser.add_argument("--view", default="live")
    parser.add_argument("--quick", action="store_true", help="90 s, a sample every 5 s")
    parser.add_argument("--out", type=Path, default=DOCS / "soak-screen", help="CSV and SVG path without suffix")
    args = parser.parse_args()
    minutes, every = (1.5, 5.0) if args.quick else (args.minutes, args.every)
    errors: list[str] = []
    samples = soak(minutes * 60, every, args.out.with_suffix(".csv"), view=args.view, rate_hz=args.rate,
                   errors=errors)
    plot_svg(samples, args.out.with_suffix(".svg"), f"Screen soak: /screen/{args.view}, {minutes:g} min, "
             f"{samples[-1].events} events")
    heap = growth([s.js_heap_used_bytes for s in samples])
    rss = growth([s.server_rss_bytes for s in samples])
    first, last = samples[1 if len(samples) > 1 else 0], samples[-1]
    print(f"{len(samples)} samples over {last.t_s / 60:.1f} min, {last.events} events, console errors: {len(errors)}")
    print(f"  JS heap  {first.js_heap_used_bytes / 1e6:6.2f} -> {last.js_heap_used_bytes / 1e6:6.2f} MB   "
          f"growth last/first quarter: {heap:.2f}x")
    print(f"  DOM      {first.dom_nodes:6d} -> {last.dom_nodes:6d} nodes")
    print(f"  RSS      {first.server_rss_bytes / 1e6:6.1f} -> {last.server_rss_bytes / 1e6:6.1f} MB   "
          f"growth last/first quarter: {rss:.2f}x")
    print(f"  CSV {args.out.with_suffix('.csv')}, plot {args.out.with_suffix('.svg')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
