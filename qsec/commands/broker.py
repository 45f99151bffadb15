"""`qsec broker`: write and run a Mosquitto configuration with per-device passwords and an ACL."""

from __future__ import annotations

from pathlib import Path

import click

from qsec.commands import CONTEXT
from qsec.config import default_data_dir


@click.group(context_settings=CONTEXT)
def broker() -> None:
    """The MQTT broker for a campaign: qsec's limits, a password per device, an ACL per device."""


def _secured(data_dir: Path, port: int, host: str):  # noqa: ANN202
    from qsec import access
    from qsec.broker import BrokerConfig

    folder = data_dir / "broker"
    creds = access.Credentials(folder / "passwords")
    issued = None
    if access.INGEST_USER not in creds.users():
        issued = creds.issue(access.INGEST_USER)
        secret = folder / "ingest-password"
        secret.write_text(issued + "\n")
        secret.chmod(0o600)
    acl = access.write_acl(folder / "acl")
    return BrokerConfig(port=port, host=host, password_file=creds.path, acl_file=acl), issued


@broker.command("config", context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address to listen on (the kits' network).")
def config_cmd(data_dir: Path | None, port: int, listen: str) -> None:
    """Write <data>/broker/mosquitto.conf: access control on, qsec's queue limits, persistence.

    Devices get their passwords from `qsec kit register`; ingest's user `qsec-ingest` gets one
    here (kept in <data>/broker/ingest-password, mode 0600). Then run it with `qsec broker run`,
    or include the file from the system's Mosquitto.

    \b
    Example:
        qsec broker config --data-dir /srv/qsec --port 1883
        qsec serve --data-dir /srv/qsec --mqtt-username qsec-ingest \\
            --mqtt-password-file /srv/qsec/broker/ingest-password
    """
    data = (data_dir or default_data_dir()).resolve()
    (data / "broker").mkdir(parents=True, exist_ok=True)
    cfg, issued = _secured(data, port, listen)
    conf = data / "broker" / "mosquitto.conf"
    conf.write_text(cfg.render(data / "broker"))
    click.echo(f"wrote {conf}")
    click.echo(f"  passwords {cfg.password_file}  (devices: `qsec kit register`)")
    click.echo(f"  ACL       {cfg.acl_file}  (each device writes only under its own id)")
    if issued:
        click.echo(f"  ingest's password is in {data / 'broker' / 'ingest-password'}")


@broker.command("run", context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Store folder [default: ./data].")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address to listen on (the kits' network).")
def run_cmd(data_dir: Path | None, port: int, listen: str) -> None:
    """Run Mosquitto in the foreground with access control on (writes the configuration first).

    Send it SIGHUP (`kill -HUP PID`) after `qsec kit register` so that new kits can connect.

    \b
    Example:
        qsec broker run --data-dir /srv/qsec
    """
    import signal
    import threading

    from qsec.broker import MosquittoProcess

    data = (data_dir or default_data_dir()).resolve()
    (data / "broker").mkdir(parents=True, exist_ok=True)
    cfg, _ = _secured(data, port, listen)
    try:
        proc = MosquittoProcess(data / "broker", cfg).start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"mosquitto on {listen}:{port} with access control; log {proc.log_path}; Ctrl-C to stop")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGHUP, lambda *_: proc.reload())  # after `qsec kit register`: new passwords
    try:
        while not done.wait(1.0):
            if proc.proc is None or proc.proc.poll() is not None:
                raise click.ClickException(f"mosquitto stopped; see {proc.log_path}")
    except KeyboardInterrupt:
        pass
    finally:
        proc.stop()


COMMANDS = [broker]
