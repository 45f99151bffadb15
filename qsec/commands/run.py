"""`qsec up`, `qsec serve`, `qsec ingest`, `qsec simulate`: running the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qsec.commands import CONTEXT, hostport, time_zone
from qsec.config import default_data_dir


def mirror_options(f):  # noqa: ANN001, ANN201
    """The InfluxDB mirror's options, shared by the commands that run ingest."""
    for opt in reversed([
        click.option("--influx-url", default=None, metavar="URL",
                     help="Also mirror every stored record to InfluxDB 2.x/3.x (or a compatible server) at URL."),
        click.option("--influx-token", envvar="QSEC_INFLUX_TOKEN", default="", show_envvar=True,
                     help="InfluxDB API token."),
        click.option("--influx-org", default="qsec", show_default=True),
        click.option("--influx-bucket", default="qsec", show_default=True),
        click.option("--external-campaign", default=None, metavar="CAMPAIGN",
                     help="Also take external formats (SenML, Tasmota, Smart Citizen over MQTT; airrohr pushes to "
                          "/api/push/airrohr) into this campaign. See docs/adapters.md."),
        click.option("--external-timezone", default=None, metavar="ZONE", callback=time_zone,
                     help="Time zone of external formats that send local times without a zone (Tasmota's Time), "
                          "as an IANA name such as America/Montreal [default: Europe/Paris]."),
    ]):
        f = opt(f)
    return f


# ---------------------------------------------------------------- up
@click.command(context_settings=CONTEXT)
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
@mirror_options
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
    o["influx"] = {k: o.pop(k) for k in ("influx_url", "influx_token", "influx_org", "influx_bucket")}
    o["data_dir"] = o["data_dir"] or default_data_dir()
    o["broker"] = hostport(o["broker"]) if o["broker"] else None
    sys.exit(run_up(UpOptions(**o)))  # type: ignore[arg-type]


# ---------------------------------------------------------------- serve / ingest
def mqtt_auth_options(f):  # noqa: ANN001, ANN201
    """Ingest's MQTT credentials, for a broker with access control (`qsec broker config`)."""
    f = click.option("--mqtt-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="File holding that user's password (see `qsec broker config`).")(f)
    return click.option("--mqtt-username", default=None,
                        help="MQTT user of ingest when the broker has access control (qsec-ingest).")(f)


def _decode_processes(asked: int | None) -> int:
    from ingest.decode import default_processes

    return default_processes() if asked is None else int(asked)


def _pipeline(data_dir: Path, broker: str, client_id: str, share_group: str, influx: dict):  # noqa: ANN202
    from qsec.pipeline import MirrorOptions, build

    host, port = hostport(broker)
    mirror = MirrorOptions(url=influx["influx_url"], token=influx["influx_token"], org=influx["influx_org"],
                           bucket=influx["influx_bucket"])
    pw_file = influx.get("mqtt_password_file")
    return build(data_dir, host=host, port=port, client_id=client_id, share_group=share_group, mirror=mirror,
                 external_campaign=influx.get("external_campaign"), username=influx.get("mqtt_username"),
                 external_timezone=influx.get("external_timezone"),
                 password=pw_file.read_text().strip() if pw_file else None,
                 decode_processes=_decode_processes(influx.get("decode_processes")))


@click.command(context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT")
@click.option("--client-id", default="qsec-ingest-1", show_default=True,
              help="Stable MQTT client id: the persistent session that holds unacknowledged messages.")
@click.option("--share-group", default="qsec-ingest", show_default=True, help="MQTT 5 shared-subscription group.")
@click.option("--decode-processes", default=None, type=click.IntRange(0, 64),
              help="Processes that decode and check messages while this one receives and commits "
                   "(0: decode in a thread of this process) [default: 0 on 1 core, else half the cores, 1 to 4].")
@mirror_options
@mqtt_auth_options
def ingest(data_dir: Path | None, broker: str, client_id: str, share_group: str, **influx: str) -> None:
    """Store readings from the broker, exactly once, without a dashboard.

    \b
    Example:
        qsec ingest --broker 127.0.0.1:1883 --data-dir /srv/qsec --decode-processes 2
    """
    import signal
    import threading

    p = _pipeline(data_dir or default_data_dir(), broker, client_id, share_group, influx)
    try:
        p.start()
    except ConnectionError as exc:
        p.stop()
        raise click.ClickException(str(exc)) from None
    click.echo(f"ingest: storing into {p.store.path} from {broker}"
               + (f", mirroring to {influx['influx_url']}" if influx["influx_url"] else "") + "; Ctrl-C to stop")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        p.stop()


@click.command(context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--campaign", default=None, help="Show only this campaign.")
@mirror_options
@mqtt_auth_options
def serve(data_dir: Path | None, broker: str, port: int, host: str, campaign: str | None, **influx: str) -> None:
    """Serve the dashboard and API, with ingest in the same process (it owns the DuckDB file).

    \b
    Example:
        qsec serve --broker 127.0.0.1:1883 --port 8000
    """
    from qsec.up import serve_forever

    p = _pipeline(data_dir or default_data_dir(), broker, "qsec-ingest-1", "qsec-ingest", influx)
    try:
        p.start()
    except ConnectionError as exc:
        p.stop()
        raise click.ClickException(str(exc)) from None
    try:
        serve_forever(p, host=host, port=port, campaign=campaign)
    finally:
        p.stop()


# ---------------------------------------------------------------- simulate
@click.command(context_settings=CONTEXT)
@click.option("--kits", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--device-dir", type=click.Path(path_type=Path), default=Path("data/devices"), show_default=True,
              help="Where the stable serial-port links of the simulated sensors are made.")
@click.option("--rate", default=1.0, show_default=True, type=click.FloatRange(0.1, 50), help="Frames per second.")
@click.option("--seed", default=2026, show_default=True)
def simulate(kits: int, device_dir: Path, rate: float, seed: int) -> None:
    """Simulated sensor kits on pseudo-terminals, for a bridge to read.

    \b
    Example (then point `qsec bridge run --sensor pms5003=data/devices/kit01-pms5003 …` at them):
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



COMMANDS = [up, serve, ingest, simulate]
