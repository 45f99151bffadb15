"""`qsec bridge …`: the commands of a kit's bridge (they need only qsec[bridge])."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from qsec.commands import CONTEXT, hostport


# ---------------------------------------------------------------- bridge
@click.group(context_settings=CONTEXT)
def bridge() -> None:
    """The sensor bridge that runs on a kit's Raspberry Pi or laptop."""


def _sensor_flags(sensors: tuple[str, ...], interval: float | None) -> tuple:
    from firmware_bridge.config import SensorConfig
    from firmware_bridge.sensors import PROTOCOLS

    out = []
    for item in sensors:
        proto, sep, port = item.partition("=")
        if not sep or proto not in PROTOCOLS:
            raise click.BadParameter(f"{item!r}: write PROTOCOL=PORT with PROTOCOL one of "
                                     f"{', '.join(sorted(PROTOCOLS))}", param_hint="--sensor")
        out.append(SensorConfig(proto, port, interval or 1.0))
    return tuple(out)


def _settings(config: Path | None, flags: dict[str, Any]):  # noqa: ANN202 (BridgeSettings, imported lazily)
    """Settings from the TOML file, with the flags given on the command line taking precedence."""
    import dataclasses

    from firmware_bridge.config import BridgeSettings, ConfigError, load_config

    given = {k: v for k, v in flags.items() if v not in (None, ())}
    if "password" in given:
        given["password_file"] = None  # the command line (or QSEC_MQTT_PASSWORD) wins over the file
    if "broker" in given:
        given["host"], given["port"] = hostport(given.pop("broker"))
    try:
        if config is not None:
            return dataclasses.replace(load_config(config), **given)
        missing = [f"--{k.replace('_', '-')}" for k in ("device", "campaign", "spool_dir") if k not in given]
        if missing:
            raise click.UsageError(f"give --config FILE, or {', '.join(missing)} (and --sensor …)")
        return BridgeSettings(**given)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config" if config else None) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@bridge.command("run", context_settings=CONTEXT)
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The kit's TOML configuration (docs/bridge.md); the options below override it.")
@click.option("--device", default=None, help="Device id of this kit (lower-case letters, digits, _ -).")
@click.option("--campaign", default=None, help="Campaign id.")
@click.option("--sensor", "sensors", multiple=True, metavar="PROTOCOL=PORT",
              help="A sensor and its serial port, e.g. pms5003=/dev/ttyUSB0 (repeat for each sensor).")
@click.option("--broker", default=None, metavar="HOST:PORT", help="MQTT broker [default: 127.0.0.1:1883].")
@click.option("--spool-dir", type=click.Path(path_type=Path), default=None, help="Folder of the durable spool.")
@click.option("--username", default=None, help="MQTT user name (the device id when access control is on).")
@click.option("--password", default=None, envvar="QSEC_MQTT_PASSWORD", help="MQTT password [env QSEC_MQTT_PASSWORD].")
@click.option("--fsync", type=click.Choice(["always", "group", "never"]), default=None,
              help="When the spool reaches the disk: every record, within 100 ms (default), or when the OS decides.")
@click.option("--poll-interval", default=None, type=click.FloatRange(0.05, 3600),
              help="Seconds between reads of polled sensors (MH-Z19) given with --sensor [default: 1].")
@click.option("--replay", "replays", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Feed a capture (qsec bridge capture) instead of the sensor's port; records are flagged replayed.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Replay pace: 1 as recorded, 10 ten times faster, 0 as fast as possible.")
@click.option("--check", is_flag=True, help="Check the configuration, print it and exit.")
def bridge_run(config: Path | None, sensors: tuple[str, ...], poll_interval: float | None, replays: tuple[Path, ...],
               speed: float, check: bool, **flags: Any) -> None:
    """Read sensors, spool every record on disk, publish over MQTT until ingest confirms.

    \b
    Examples:
        qsec bridge run --config /etc/qsec/kit-01.toml
        qsec bridge run --device kit-01 --campaign versailles-2026 \\
            --sensor pms5003=/dev/ttyUSB0 --sensor mhz19=/dev/ttyAMA0 --sensor nmea=/dev/ttyACM0 \\
            --spool-dir /var/lib/qsec/spool
        qsec bridge run --config kit.toml --replay pms.capture --speed 10
    """
    import dataclasses
    import signal
    import threading

    from firmware_bridge.bridge import Bridge
    from firmware_bridge.capture import CaptureError, ReplaySource
    from firmware_bridge.config import ConfigError, SensorConfig
    from firmware_bridge.spool import SpoolError

    flags["sensors"] = _sensor_flags(sensors, poll_interval)
    flags["poll_interval_s"] = poll_interval
    settings = _settings(config, flags)
    openers = {}
    if replays:
        try:
            sources = [ReplaySource(path, speed=speed) for path in replays]
        except CaptureError as exc:
            raise click.BadParameter(str(exc), param_hint="--replay") from None
        openers = {src.protocol: src for src in sources}
        try:
            settings = dataclasses.replace(settings, sensors=tuple(
                SensorConfig(src.protocol, str(path), settings.poll_interval_s) for src, path in zip(sources, replays)))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--replay") from None
    if not settings.sensor_configs:
        raise click.UsageError("no sensor: add [[sensors]] to the configuration, or --sensor PROTOCOL=PORT")
    if check:
        click.echo(json.dumps(dataclasses.asdict(settings) | {"password": "***" if settings.password else None},
                              default=str, indent=2))
        return
    try:
        settings.check_files()
        b = Bridge(settings, openers=openers, replay=bool(replays)).start()
    except (ConfigError, SpoolError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"bridge {settings.device}: boot {b.boot}, spool {settings.spool_dir}, "
               f"broker {settings.host}:{settings.port}", err=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            if replays and all(r.finished.is_set() for r in b.readers) and b.spool.stats().pending_records == 0:
                click.echo(f"replay finished: {b.counters['observations']} records, all settled by ingest", err=True)
                break
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@bridge.command("capture", context_settings=CONTEXT)
@click.option("--protocol", required=True, help="Sensor protocol (pms5003, mhz19, nmea, …).")
@click.option("--port", required=True, help="Serial port, e.g. /dev/ttyUSB0.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Capture file to write.")
@click.option("--seconds", default=None, type=click.FloatRange(min=0.1), help="Stop after this long [default: Ctrl-C].")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 3600),
              help="Seconds between read commands of a polled sensor.")
def bridge_capture(protocol: str, port: str, out: Path, seconds: float | None, interval: float) -> None:
    """Record a sensor's raw serial traffic, with timestamps, for replay and bug reports.

    \b
    The file is JSON lines (docs/bridge.md, "Captures"); replay it with
    qsec bridge run --replay FILE. Stop the bridge first: a port is opened
    by one program at a time.
    \b
    Example:
        qsec bridge capture --protocol pms5003 --port /dev/ttyUSB0 --out pms.capture --seconds 60
    """
    import signal
    import threading

    from firmware_bridge.capture import capture
    from firmware_bridge.sensors import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise click.BadParameter(f"{protocol!r}; choose one of {', '.join(sorted(PROTOCOLS))}", param_hint="--protocol")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    summary = capture(protocol, port, out, seconds=seconds, interval_s=interval, stop=stop)
    click.echo(f"captured {summary.seconds:.1f} s from {port}: {summary.bytes_in} bytes in, {summary.bytes_out} out, "
               f"{summary.observations} {protocol} observations -> {out}")


@bridge.command("export-spool", context_settings=CONTEXT)
@click.option("--spool-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The kit's spool folder.")
@click.option("--device", required=True, help="Device id of the kit.")
@click.option("--campaign", required=True, help="Campaign id.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (JSON lines).")
def bridge_export_spool(spool_dir: Path, device: str, campaign: str, out: Path) -> None:
    """Write every record still waiting in a spool to a file, for `qsec import` on the server.

    \b
    For kits without network: copy the file (a USB stick), import it on the
    server. Records stay in the spool; if they are uploaded over MQTT later
    too, ingest keeps each once. Stop the bridge first (the spool is locked).
    \b
    Example:
        qsec bridge export-spool --spool-dir /var/lib/qsec/spool --device kit-01 \\
            --campaign versailles-2026 --out /media/usb/kit-01.jsonl
    """
    from firmware_bridge.spool import Spool, SpoolError
    from qsec import contract

    try:
        contract.topic(campaign, device)
    except contract.ContractError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        with Spool(spool_dir) as spool:
            n = spool.export(out, device, campaign)
    except SpoolError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported {n} records of {device} to {out}")


@bridge.command("detect", context_settings=CONTEXT)
@click.option("--ports", "ports", multiple=True, metavar="PATH",
              help="Ports to probe (repeat) [default: /dev/ttyUSB*, /dev/ttyACM*, /dev/ttyAMA*, /dev/serial/by-id/*].")
@click.option("--seconds", default=3.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="How long to listen on each port.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per port.")
@click.argument("more_ports", nargs=-1, metavar="[PORT]...")
def bridge_detect(ports: tuple[str, ...], seconds: float, as_json: bool, more_ports: tuple[str, ...]) -> None:
    """Say which sensor answers on each serial port.

    \b
    Listens for pushed frames and sentences, and sends the read command of
    each polled sensor (MH-Z19, SDS011 in query mode, …). Stop the bridge first.
    \b
    Example:
        qsec bridge detect
        qsec bridge detect --ports /dev/ttyUSB0 /dev/ttyAMA0
    """
    from firmware_bridge.detect import default_ports, detect

    todo = [*ports, *more_ports] or default_ports()
    if not todo:
        raise click.ClickException("no serial port found (/dev/ttyUSB*, /dev/ttyACM*, /dev/ttyAMA*, "
                                   "/dev/serial/by-id/*); plug the sensors in, or name ports with --ports")
    for d in detect(todo, listen_s=seconds):
        if as_json:
            click.echo(json.dumps({"port": d.port, "protocol": d.protocol, "candidates": d.candidates,
                                   "frames": d.frames,
                                   "bytes": d.bytes_heard, "error": d.error}))
            continue
        best = max(d.frames.values(), default=0)
        others = ", ".join(f"{p} {n}" for p, n in d.frames.items() if 0 < n < best)
        heard = f"{best} frames" + (f"; also {others}" if others else "") if best else "no frame"
        what = d.protocol or ("error: " + d.error if d.error else "nothing recognised")
        if len(d.candidates) > 1:
            what += f" (same frames as {', '.join(d.candidates[1:])})"
        click.echo(f"{d.port}: {what}  ({d.bytes_heard} bytes; {heard})")


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
