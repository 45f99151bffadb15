"""`qsec bridge …`: the commands of a kit's bridge (they need only qsec[bridge])."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qsec.commands import CONTEXT, hostport
from qsec.config import default_data_dir


# ---------------------------------------------------------------- bridge
@click.group(context_settings=CONTEXT)
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
    host, port_n = hostport(broker)
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



COMMANDS = [bridge]
