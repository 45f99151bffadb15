"""The single ``qsec`` command.

Each subcommand imports what it needs when it runs, so that ``qsec bridge``
works on a Raspberry Pi that has only ``qsec[bridge]`` (pyserial and
paho-mqtt) installed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from qsec import __version__
from qsec.config import default_data_dir, parse_hostport

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="qsec")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """qsec — citizen-science air quality and mobility: sensors -> MQTT -> store -> analysis -> screens.

    \b
    Start everything with simulated kits and the live dashboard:
        qsec up
    Then open http://127.0.0.1:8000
    """
    _logging(verbose)


# ---------------------------------------------------------------- up
@main.command(context_settings=CONTEXT)
@click.option("--kits", default=3, show_default=True, type=click.IntRange(0, 50), help="Simulated sensor kits.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Dashboard HTTP port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dashboard address (0.0.0.0 for the LAN).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the store, spools and broker files live [default: ./data or $QSEC_DATA].")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="Use this MQTT broker [default: 127.0.0.1:1883 if it answers, else a private mosquitto].")
@click.option("--own-broker", is_flag=True, help="Always start a private mosquitto on a free port.")
@click.option("--campaign", default="demo-versailles", show_default=True, help="Campaign id of the simulated kits.")
@click.option("--rate", default=1.0, show_default=True, type=click.FloatRange(0.1, 50), help="Sensor rate [Hz].")
@click.option("--seed", default=2026, show_default=True, help="Seed of the simulated routes and values.")
@click.option("--duration", default=None, type=click.FloatRange(1), help="Stop by itself after this many seconds.")
@click.option("--open-browser/--no-open-browser", default=False, help="Open the dashboard in a browser.")
def up(**opts: object) -> None:
    """Run the whole pipeline: broker, simulated kits, bridges, ingest, live dashboard.

    \b
    Each kit is a Plantower PMS5003, a Winsen MH-Z19 and an NMEA GPS on
    pseudo-terminals, walking or cycling through Versailles. One bridge per
    kit reads them with pyserial, spools and publishes over MQTT; ingest
    stores into one DuckDB file; the dashboard shows it live.
    Ctrl-C stops everything; run it again to carry on with the same store.

    \b
    Examples:
        qsec up
        qsec up --kits 5 --port 8080 --data-dir /srv/qsec
    """
    from qsec.up import UpOptions, run_up

    o = dict(opts)
    o["data_dir"] = o["data_dir"] or default_data_dir()
    o["broker"] = parse_hostport(o["broker"]) if o["broker"] else None
    sys.exit(run_up(UpOptions(**o)))  # type: ignore[arg-type]


# ---------------------------------------------------------------- serve / ingest
def _store_and_worker(data_dir: Path, broker: str, client_id: str, share_group: str):
    from ingest.store import Store
    from ingest.worker import IngestSettings, IngestWorker

    host, port = parse_hostport(broker)
    store = Store(Path(data_dir) / "qsec.duckdb")
    worker = IngestWorker(store, IngestSettings(host=host, port=port, client_id=client_id, share_group=share_group))
    return store, worker


@main.command(context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT")
@click.option("--client-id", default="qsec-ingest-1", show_default=True,
              help="Stable MQTT client id: the persistent session that holds unacknowledged messages.")
@click.option("--share-group", default="qsec-ingest", show_default=True, help="MQTT 5 shared-subscription group.")
def ingest(data_dir: Path | None, broker: str, client_id: str, share_group: str) -> None:
    """Store readings from the broker, exactly once, without a dashboard.

    \b
    Example:
        qsec ingest --broker 127.0.0.1:1883 --data-dir /srv/qsec
    """
    import signal
    import threading

    store, worker = _store_and_worker(data_dir or default_data_dir(), broker, client_id, share_group)
    try:
        worker.start()
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ingest: storing into {store.path} from {broker}; Ctrl-C to stop")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        store.close()


@main.command(context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--campaign", default=None, help="Show only this campaign.")
def serve(data_dir: Path | None, broker: str, port: int, host: str, campaign: str | None) -> None:
    """Serve the dashboard and API, with ingest in the same process (it owns the DuckDB file).

    \b
    Example:
        qsec serve --broker 127.0.0.1:1883 --port 8000
    """
    from qsec.up import serve_forever

    store, worker = _store_and_worker(data_dir or default_data_dir(), broker, "qsec-ingest-1", "qsec-ingest")
    try:
        worker.start()
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        serve_forever(store, worker, host=host, port=port, campaign=campaign)
    finally:
        worker.stop()
        store.close()


# ---------------------------------------------------------------- bridge
@main.group(context_settings=CONTEXT)
def bridge() -> None:
    """The sensor bridge that runs on a kit's Raspberry Pi or laptop."""


@bridge.command("run", context_settings=CONTEXT)
@click.option("--device", required=True, help="Device id of this kit (lower-case letters, digits, _ -).")
@click.option("--campaign", required=True, help="Campaign id.")
@click.option("--sensor", "sensors", multiple=True, metavar="PROTOCOL=PORT", required=True,
              help="A sensor and its serial port, e.g. pms5003=/dev/ttyUSB0 (repeat for each sensor).")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT")
@click.option("--spool-dir", type=click.Path(path_type=Path), required=True, help="Folder of the durable spool.")
@click.option("--username", default=None, help="MQTT user name (the device id when access control is on).")
@click.option("--password", default=None, envvar="QSEC_MQTT_PASSWORD", help="MQTT password [env QSEC_MQTT_PASSWORD].")
@click.option("--fsync", type=click.Choice(["always", "group", "never"]), default="group", show_default=True,
              help="When the spool reaches the disk: every record, within 100 ms, or when the OS decides.")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 3600),
              help="Seconds between reads of polled sensors (MH-Z19).")
def bridge_run(device: str, campaign: str, sensors: tuple[str, ...], broker: str, spool_dir: Path,
               username: str | None, password: str | None, fsync: str, poll_interval: float) -> None:
    """Read sensors, spool every record on disk, publish over MQTT until ingest confirms.

    \b
    Example:
        qsec bridge run --device kit-01 --campaign versailles-2026 \\
            --sensor pms5003=/dev/ttyUSB0 --sensor mhz19=/dev/ttyAMA0 --sensor nmea=/dev/ttyACM0 \\
            --spool-dir /var/lib/qsec/spool
    """
    import signal
    import threading

    from firmware_bridge.bridge import Bridge, BridgeSettings
    from firmware_bridge.sensors import PROTOCOLS

    ports: dict[str, str] = {}
    for item in sensors:
        proto, sep, port = item.partition("=")
        if not sep or proto not in PROTOCOLS:
            raise click.BadParameter(f"{item!r}: write PROTOCOL=PORT with PROTOCOL one of {', '.join(sorted(PROTOCOLS))}",
                                     param_hint="--sensor")
        ports[proto] = port
    host, port_n = parse_hostport(broker)
    try:
        settings = BridgeSettings(device=device, campaign=campaign, spool_dir=spool_dir, sensors=ports, host=host,
                                  port=port_n, username=username, password=password, fsync=fsync,
                                  poll_interval_s=poll_interval)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    b = Bridge(settings).start()
    click.echo(f"bridge {device}: boot {b.boot}, spool {spool_dir}, broker {broker}", err=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@bridge.command("decode", context_settings=CONTEXT)
@click.option("--protocol", required=True, help="Sensor protocol (pms5003, mhz19, nmea, …).")
@click.option("--hex", "as_hex", is_flag=True, help="Standard input is hexadecimal text, one frame per line.")
def bridge_decode(protocol: str, as_hex: bool) -> None:
    """Decode raw sensor bytes from standard input; print one JSON observation (or error) per line.

    \b
    Examples:
        echo 424d001c0005000a000f0005000a000f03e801f4006400140005000297000408 | qsec bridge decode --protocol pms5003 --hex
        cat capture.nmea | qsec bridge decode --protocol nmea
    """
    from firmware_bridge.sensors import PROTOCOLS
    from firmware_bridge.sensors.base import SensorError

    if protocol not in PROTOCOLS:
        raise click.BadParameter(f"{protocol!r}; choose one of {', '.join(sorted(PROTOCOLS))}", param_hint="--protocol")
    proto = PROTOCOLS[protocol]
    data = sys.stdin.buffer.read()
    if as_hex:
        frames = [bytes.fromhex(line.strip().replace(" ", "")) for line in data.decode().splitlines() if line.strip()]
    elif getattr(proto, "KIND", "stream") == "line":
        frames = [line for line in data.splitlines(keepends=True) if line.strip()]
    elif hasattr(proto, "find_frame"):
        frames, buf = [], data
        while True:
            frame, buf = proto.find_frame(buf)
            if frame is None:
                break
            frames.append(frame)
    else:
        frames = [data]
    for frame in frames:
        try:
            obs = proto.decode(frame)
            out = {"sensor": obs.sensor, "values": obs.values, "warming_up": obs.warming_up}
            if obs.time is not None:
                out["time"] = obs.time.isoformat()
        except SensorError as exc:
            out = {"error": type(exc).__name__, "reason": str(exc), "frame": frame.hex()}
        click.echo(json.dumps(out, ensure_ascii=False))


# ---------------------------------------------------------------- simulate
@main.command(context_settings=CONTEXT)
@click.option("--kits", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--device-dir", type=click.Path(path_type=Path), default=Path("data/devices"), show_default=True,
              help="Where the stable serial-port links of the simulated sensors are made.")
@click.option("--rate", default=1.0, show_default=True, type=click.FloatRange(0.1, 50), help="Frames per second.")
@click.option("--seed", default=2026, show_default=True)
def simulate(kits: int, device_dir: Path, rate: float, seed: int) -> None:
    """Simulated sensor kits on pseudo-terminals, for a bridge to read.

    \b
    Example (then point `qsec bridge run --sensor pms5003=data/devices/kit-01-pms5003 …` at them):
        qsec simulate --kits 2
    """
    import signal
    import threading

    from firmware_bridge.simulator import start_kits

    running = start_kits(kits, device_dir, seed=seed, rate_hz=rate)
    for kit in running:
        for proto, path in kit.paths.items():
            click.echo(f"{kit.name}  {proto:8s} {path}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for kit in running:
            kit.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
