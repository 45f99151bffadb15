"""``qsec up``: the whole pipeline on one machine, with simulated kits.

What runs (each stopped cleanly on Ctrl-C, in reverse order):

1. an MQTT broker: the one on 127.0.0.1:1883 if it answers, else a private
   ``mosquitto`` on a free port with qsec's configuration (``<data>/broker``);
2. N simulated kits (PMS5003 + MH-Z19 + NMEA GPS each) on pseudo-terminals,
   with stable links in ``<data>/devices``;
3. one bridge process per kit (``qsec bridge run``), spooling under
   ``<data>/spool/<kit>``;
4. ingest, storing into ``<data>/qsec.duckdb``;
5. the dashboard (FastAPI + uvicorn) in this process, fed live by ingest.

A second ``qsec up`` with the same data folder carries on with the same
store and spools.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qsec import contract
from qsec.broker import MosquittoProcess, mqtt_answers
from qsec.pipeline import MirrorOptions, Pipeline, build

log = logging.getLogger("qsec.up")


@dataclass
class UpOptions:
    kits: int = 3
    port: int = 8000
    host: str = "127.0.0.1"
    data_dir: Path = Path("data")
    broker: tuple[str, int] | None = None
    own_broker: bool = False
    campaign: str = "demo-versailles"
    rate: float = 1.0
    seed: int = 2026
    duration: float | None = None
    open_browser: bool = False
    influx: dict | None = None  # --influx-url/--influx-token/--influx-org/--influx-bucket
    external_campaign: str | None = None
    external_timezone: str | None = None


def _say(msg: str) -> None:
    print(msg, flush=True)


def live_event_forwarder(hub):  # noqa: ANN001, ANN201
    """An ingest commit listener that pushes each new record to the dashboard hub."""

    def forward(committed: list[tuple[str, str, str, contract.Record]]) -> None:
        for campaign, device, _boot, rec in committed:
            hub.publish({"campaign": campaign, "device": device, "sensor": rec.sensor, "t": rec.t,
                         "values": dict(rec.values)})

    return forward


def make_server(pipeline: Pipeline, *, host: str, port: int, campaign: str | None):  # noqa: ANN201
    """The dashboard app wired to the store and to ingest's commits, as a uvicorn server."""
    store, worker, mirror = pipeline.store, pipeline.worker, pipeline.mirror
    import uvicorn

    from dashboards.app import create_app
    from dashboards.heap import freeze_startup
    from dashboards.live import LiveHub

    from fastapi.responses import JSONResponse, Response

    from ingest.metrics import QsecCollector, render, status

    hub = LiveHub()
    worker.listeners.append(live_event_forwarder(hub))
    app = create_app(store.new_cursor, hub, campaign=campaign, title="qsec")
    from dashboards.research import DataVersions, ResearchSettings, research_router

    versions = DataVersions()  # the researcher API's page cache: every writer below bumps it after its commits
    worker.listeners.insert(0, versions.listener)  # before the live events: a page asked for then is fresh
    app.include_router(research_router(store.new_cursor, ResearchSettings.from_data_dir(store.path.parent),
                                       versions=versions))
    if worker.settings.external_campaign:  # Sensor.Community / airrohr firmware pushing to "own API"
        from ingest.adapters import airrohr_http
        from ingest.importer import write_batches

        def write_pushed(result):  # noqa: ANN001, ANN202
            try:
                return write_batches(store, result, received_ms=int(time.time() * 1000))
            finally:  # the pushed records' devices and days (a push adds records, and no registry change)
                versions.listener(result.rows)

        app.include_router(airrohr_http.router(write_pushed, campaign=worker.settings.external_campaign))
    mirror_metrics = mirror.metrics if mirror is not None else None
    collector = QsecCollector(worker, hub=hub, mirror_metrics=mirror_metrics)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(render(collector), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/api/status", summary="Counters of ingest, kits and screens (as `qsec status` shows them)")
    def api_status() -> JSONResponse:
        return JSONResponse(status(worker, hub, mirror_metrics))

    app.state.ingest = worker
    app.state.store = store
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    server.hub = hub  # type: ignore[attr-defined]  # closed on shutdown: open event streams end at once
    freeze_startup()  # the app is built: full collections skip it from now on (dashboards.heap)
    return server


def request_exit(server) -> None:  # noqa: ANN001
    """Ask uvicorn to stop, ending the live event streams first (they never end by themselves)."""
    server.hub.close()
    server.should_exit = True


def serve_forever(pipeline: Pipeline, *, host: str, port: int, campaign: str | None) -> None:
    server = make_server(pipeline, host=host, port=port, campaign=campaign)
    print(f"dashboard: http://{host}:{port}", flush=True)
    server.run()


def _status_line(worker, bridges: dict[str, subprocess.Popen]) -> str:  # noqa: ANN001
    m = worker.metrics
    alive = sum(p.poll() is None for p in bridges.values())
    lag = worker.last_commit_lag_ms
    return (f"\r[qsec] bridges {alive}/{len(bridges)}  stored {m['records_stored']}  duplicates "
            f"{m['records_duplicate']}  dead-letter {m['deadletter']}  lag {'-' if lag is None else f'{lag / 1000:.1f} s'}"
            f"  broker {'up' if worker.connected else 'DOWN'}   ")


def run_up(o: UpOptions) -> int:
    from firmware_bridge.simulator import start_kits

    data = Path(o.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    _say(f"qsec up — data folder: {data}")
    broker_proc: MosquittoProcess | None = None
    kits: list = []
    bridges: dict[str, subprocess.Popen] = {}
    pipeline: Pipeline | None = None
    try:
        # 1. broker
        if o.broker:
            host, port = o.broker
            if not mqtt_answers(host, port):
                _say(f"error: no MQTT broker answers on {host}:{port}; drop --broker to let qsec start one")
                return 2
        elif not o.own_broker and mqtt_answers("127.0.0.1", 1883):
            host, port = "127.0.0.1", 1883
        else:
            broker_proc = MosquittoProcess(data / "broker").start()
            host, port = "127.0.0.1", broker_proc.port
        _say(f"  broker      mqtt://{host}:{port}" + (f"  (private mosquitto, log {broker_proc.log_path})" if broker_proc else ""))

        # 2. store + ingest first, so that nothing waits on it
        mirror = MirrorOptions(**{k.removeprefix("influx_"): v for k, v in (o.influx or {}).items()})
        pipeline = build(data, host=host, port=port, client_id=f"qsec-ingest-{o.campaign}", mirror=mirror,
                         external_campaign=o.external_campaign, external_timezone=o.external_timezone)
        pipeline.store.ensure_campaign(o.campaign, "Démo — Versailles (kits simulés)")
        pipeline.start()
        worker = pipeline.worker
        _say(f"  store       {pipeline.store.path}" + (f"  (mirrored to {mirror.url})" if mirror.url else ""))

        # 3. kits and 4. bridges
        if o.kits:
            kits = start_kits(o.kits, data / "devices", seed=o.seed, rate_hz=o.rate)
        for kit in kits:
            name = kit.name
            cmd = [sys.executable, "-m", "qsec", "bridge", "run", "--device", name, "--campaign", o.campaign,
                   "--broker", f"{host}:{port}", "--spool-dir", str(data / "spool" / name),
                   "--poll-interval", str(1 / o.rate)]
            for proto, path in kit.paths.items():
                cmd += ["--sensor", f"{proto}={path}"]
            logf = open(data / f"bridge-{name}.log", "ab")  # noqa: SIM115 (closed with the process)
            bridges[name] = subprocess.Popen(cmd, stdout=logf, stderr=logf, start_new_session=True)
            _say(f"  {name:<11s} bridge pid {bridges[name].pid}, sensors {', '.join(kit.paths)}, log {logf.name}")

        # 5. dashboard
        server = make_server(pipeline, host=o.host, port=o.port, campaign=o.campaign)
        _say(f"  dashboard   http://{o.host}:{o.port}   (Ctrl-C to stop)")
        if o.open_browser:
            import webbrowser

            webbrowser.open(f"http://{o.host}:{o.port}")

        stop = threading.Event()

        def status() -> None:
            t0 = time.monotonic()
            while not stop.wait(1.0):
                if sys.stdout.isatty():
                    sys.stdout.write(_status_line(worker, bridges))
                    sys.stdout.flush()
                if o.duration and time.monotonic() - t0 >= o.duration:
                    request_exit(server)

        threading.Thread(target=status, daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: request_exit(server))
        try:
            server.run()
        finally:
            stop.set()
        _say("\n" + _status_line(worker, bridges).strip())
        return 0
    except KeyboardInterrupt:  # Ctrl-C is how a person stops it: a clean stop, not an error
        return 0
    finally:
        _say("stopping…")
        for name, p in bridges.items():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in bridges.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if pipeline:
            time.sleep(0.3)  # let the last messages land
            pipeline.stop()
        for kit in kits:
            kit.stop()
        if broker_proc:
            broker_proc.stop()
        _say("stopped.")
