"""`qsec campaign`, `qsec kit`, `qsec participant`, `qsec token`: running a campaign from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from qsec.commands import CONTEXT
from qsec.commands.export import DATA_DIR, open_store, when
from qsec.config import default_data_dir


@contextmanager
def registry(data_dir: Path | None) -> Iterator[Any]:
    """A cursor on the store with the registry; registry errors become clean command-line errors."""
    from ingest.registry import NotFound, RegistryError

    store = open_store(data_dir)
    try:
        yield store.cursor()
    except (RegistryError, NotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _t(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}Z"


# ---------------------------------------------------------------- campaign
@click.group(context_settings=CONTEXT)
def campaign() -> None:
    """Campaigns: create, list, open (data accepted from then), close."""


@campaign.command("create", context_settings=CONTEXT)
@click.argument("campaign_id")
@click.option("--title", default=None, help="Title shown on screens and in exports.")
@click.option("--description", default=None)
@click.option("--starts", default=None, help="First measurement time accepted (ISO 8601; no zone = UTC).")
@click.option("--ends", default=None, help="Last measurement time accepted.")
@click.option("--licence", default="ODbL-1.0", show_default=True, help="SPDX id of the data licence of exports.")
@click.option("--public/--private", default=False, help="Public data (without positions) for anyone, or researchers only.")
@click.option("--min-participants", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Distinct participants a published map cell needs.")
@DATA_DIR
def create(campaign_id: str, title: str | None, description: str | None, starts: str | None, ends: str | None,
           licence: str, public: bool, min_participants: int, data_dir: Path | None) -> None:
    """Create a campaign (status draft), or change its settings.

    \b
    Example:
        qsec campaign create lyon-2026 --title "Lyon, printemps 2026" --public --licence ODbL-1.0
    """
    from ingest.registry import create_campaign

    with registry(data_dir) as con:
        info = create_campaign(con, campaign_id, title=title, starts=when(starts), ends=when(ends), licence=licence,
                               public=public, description=description, min_participants=min_participants)
    click.echo(f"campaign {info.campaign}: {info.status}, {'public' if info.public else 'private'}, "
               f"licence {info.licence}, at least {info.min_participants} participants per map cell")


@campaign.command("list", context_settings=CONTEXT)
@DATA_DIR
def list_(data_dir: Path | None) -> None:
    """List campaigns with their status.

    \b
    Example:
        qsec campaign list --data-dir /srv/qsec
    """
    from ingest.registry import list_campaigns

    with registry(data_dir) as con:
        for c in list_campaigns(con):
            click.echo(f"{c.campaign:<24} {c.status:<7} {'public ' if c.public else 'private'} {c.licence:<10} "
                       f"{_t(c.starts)} .. {_t(c.ends)}  {c.title}")


def _status(status: str) -> click.Command:
    @click.command(status if status == "close" else "open", context_settings=CONTEXT)
    @click.argument("campaign_id")
    @DATA_DIR
    def command(campaign_id: str, data_dir: Path | None) -> None:
        from ingest.registry import set_status

        with registry(data_dir) as con:
            info = set_status(con, campaign_id, "closed" if status == "close" else "open")
        click.echo(f"campaign {info.campaign}: {info.status} (data from {_t(info.starts)} to {_t(info.ends)})")

    command.help = (("Close a campaign: no data measured after now is accepted." if status == "close"
                     else "Open a campaign: data measured from now on (or its start) is accepted.")
                    + f"\n\n\b\nExample:\n    qsec campaign {status} versailles-2026")
    return command


campaign.add_command(_status("open"))
campaign.add_command(_status("close"))


# ---------------------------------------------------------------- kit
@click.group(context_settings=CONTEXT)
def kit() -> None:
    """Kits: what a participant carries; each device of a kit gets MQTT credentials."""


@kit.command("register", context_settings=CONTEXT)
@click.argument("kit_id")
@click.option("--campaign", required=True)
@click.option("--device", "devices", multiple=True, required=True, metavar="DEVICE[=SENSOR,SENSOR]",
              help="A device of the kit and its sensor models (repeat).")
@click.option("--label", default=None)
@click.option("--password-file", type=click.Path(path_type=Path), default=None,
              help="Mosquitto password file [default: <data>/broker/passwords].")
@DATA_DIR
def register(kit_id: str, campaign: str, devices: tuple[str, ...], label: str | None, password_file: Path | None,
             data_dir: Path | None) -> None:
    """Register a kit and issue each device's MQTT password (shown once, stored hashed).

    \b
    Example:
        qsec kit register kit-07 --campaign lyon-2026 --device kit-07=plantower-pms5003,winsen-mhz19,nmea-gps
    """
    from ingest.registry import mark_credentials_issued, register_kit
    from qsec.access import Credentials

    parsed = {d.partition("=")[0]: [s for s in d.partition("=")[2].split(",") if s] for d in devices}
    credentials = Credentials(password_file or (data_dir or default_data_dir()) / "broker" / "passwords")
    with registry(data_dir) as con:
        registered = register_kit(con, campaign, kit_id, parsed, label=label)
        passwords = {d: credentials.issue(d) for d in registered.devices}
        for device in passwords:
            mark_credentials_issued(con, device)
    click.echo(f"kit {registered.kit} in {campaign}; MQTT passwords (shown once, write them on the kit's bridge "
               f"configuration; reload the broker):")
    for device, password in passwords.items():
        click.echo(f"  {device}  {password}")


# ---------------------------------------------------------------- participant
@click.group(context_settings=CONTEXT)
def participant() -> None:
    """Participants: pseudonymous ids, their kits, home zones, opt-outs, export and deletion."""


@participant.command("add", context_settings=CONTEXT)
@click.option("--campaign", required=True)
@DATA_DIR
def add(campaign: str, data_dir: Path | None) -> None:
    """Create a pseudonymous participant; keep the link to the person outside qsec.

    \b
    Example:
        qsec participant add versailles-2026
    """
    from ingest.registry import add_participant

    with registry(data_dir) as con:
        click.echo(add_participant(con, campaign))


@participant.command("list", context_settings=CONTEXT)
@click.option("--campaign", required=True)
@DATA_DIR
def list_participants(campaign: str, data_dir: Path | None) -> None:
    """List a campaign's participants and their kits.

    \b
    Example:
        qsec participant list versailles-2026
    """
    from ingest.registry import list_participants as rows

    with registry(data_dir) as con:
        for r in rows(con, campaign):
            click.echo(f"{r['participant']}  kits {r['kits'] or '-'}" + (f"  deleted {_t(r['deleted'])}"
                                                                         if r["deleted"] else ""))


@participant.command("assign", context_settings=CONTEXT)
@click.argument("participant_id")
@click.argument("kit_id")
@click.option("--from", "starts", default=None, help="From this time (default: now).")
@click.option("--to", "ends", default=None, help="Until this time (default: open).")
@DATA_DIR
def assign(participant_id: str, kit_id: str, starts: str | None, ends: str | None, data_dir: Path | None) -> None:
    """Give a kit to a participant from a time on.

    \b
    Example:
        qsec participant assign p-3f9a1c2b7e kit07 --from 2026-05-17T09:00
    """
    from ingest.registry import assign_kit

    with registry(data_dir) as con:
        assign_kit(con, participant_id, kit_id, when(starts) or datetime.now(UTC), when(ends))
    click.echo(f"{kit_id} -> {participant_id}")


@participant.command("home-zone", context_settings=CONTEXT)
@click.argument("participant_id")
@click.option("--lat", type=click.FloatRange(-90, 90), required=True)
@click.option("--lon", type=click.FloatRange(-180, 180), required=True)
@click.option("--radius", default=200.0, show_default=True, type=click.FloatRange(1, 5000), help="[m]")
@DATA_DIR
def home_zone(participant_id: str, lat: float, lon: float, radius: float, data_dir: Path | None) -> None:
    """Declare a place whose surroundings are never published (home, work…).

    \b
    Example:
        qsec participant home-zone p-3f9a1c2b7e --lat 48.8049 --lon 2.1204 --radius 300
    """
    from ingest.registry import add_home_zone

    with registry(data_dir) as con:
        add_home_zone(con, participant_id, lat, lon, radius)
    click.echo(f"home zone of {participant_id}: {radius:.0f} m")


@participant.command("opt-out", context_settings=CONTEXT)
@click.argument("participant_id")
@click.option("--from", "starts", required=True)
@click.option("--to", "ends", required=True)
@click.option("--trip", is_flag=True, help="The range is one trip.")
@DATA_DIR
def opt_out(participant_id: str, starts: str, ends: str, trip: bool, data_dir: Path | None) -> None:
    """Keep a trip or a time range off public screens, maps and exports.

    \b
    Example:
        qsec participant opt-out p-3f9a1c2b7e --from 2026-05-17T18:00 --to 2026-05-17T19:30
    """
    from ingest.registry import add_opt_out

    with registry(data_dir) as con:
        add_opt_out(con, participant_id, when(starts), when(ends), "trip" if trip else "range")  # type: ignore[arg-type]
    click.echo(f"not published: {participant_id} {starts} .. {ends}")


@participant.command("export", context_settings=CONTEXT)
@click.argument("participant_id")
@click.option("--format", "fmt", type=click.Choice(("csv", "parquet", "netcdf", "geojson")), default="csv")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@DATA_DIR
def export_participant(participant_id: str, fmt: str, output: Path, data_dir: Path | None) -> None:
    """Everything the participant's kits recorded while they carried them (GDPR Art. 20).

    \b
    Example:
        qsec participant export p-3f9a1c2b7e --format csv -o p-3f9a1c2b7e.zip
    """
    from analysis.export import Selection, log_export, write_bundle
    from ingest.registry import participant_campaign

    with registry(data_dir) as con:
        selection = Selection(campaign=participant_campaign(con, participant_id), participant=participant_id,
                              positions=True)
        result = write_bundle(con, selection, fmt, output)
        log_export(con, route="cli", fmt=fmt, selection=selection, result=result)
    click.echo(f"{output}: {result.rows} records of {participant_id}")


@participant.command("delete", context_settings=CONTEXT)
@click.argument("participant_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@DATA_DIR
def delete(participant_id: str, yes: bool, data_dir: Path | None) -> None:
    """Delete a participant's data on request (GDPR Art. 17); the deletion is logged, never the data.

    \b
    Example:
        qsec participant delete p-3f9a1c2b7e --yes
    """
    from ingest.registry import delete_participant

    if not yes:
        click.confirm(f"Delete every reading {participant_id} carried, their home zones and opt-outs?", abort=True)
    with registry(data_dir) as con:
        d = delete_participant(con, participant_id)
    click.echo(f"deleted {d.readings} readings and {d.registry_rows} registry rows of {d.participant}: {d.what}")


# ---------------------------------------------------------------- token
@click.group(context_settings=CONTEXT)
def token() -> None:
    """API tokens for the researcher API (shown once, stored as a keyed hash)."""


@token.command("create", context_settings=CONTEXT)
@click.option("--name", required=True, help="Who or what it is for.")
@click.option("--role", type=click.Choice(("admin", "researcher", "participant")), default="researcher", show_default=True)
@click.option("--campaign", default=None, help="Only this campaign (default: all).")
@click.option("--participant", default=None, help="For a participant token: their id.")
@DATA_DIR
def create_token(name: str, role: str, campaign: str | None, participant: str | None, data_dir: Path | None) -> None:
    """Create a token and print it once.

    \b
    Example:
        qsec token create --name "LSCE team" --role researcher --campaign versailles-2026
    """
    from dashboards.research.auth import create_token as make
    from dashboards.research.settings import PEPPER_ENV, load_pepper

    import os

    pepper = os.environ.get(PEPPER_ENV) or load_pepper(data_dir or default_data_dir())
    with registry(data_dir) as con:
        ident, secret = make(con, pepper, name=name, role=role, campaign=campaign, participant=participant)
    click.echo(f"token {ident} ({role}{', ' + campaign if campaign else ''}); shown once:\n{secret}")


@token.command("list", context_settings=CONTEXT)
@DATA_DIR
def list_tokens(data_dir: Path | None) -> None:
    """List tokens (never the tokens themselves).

    \b
    Example:
        qsec token list
    """
    from dashboards.research.auth import list_tokens as rows

    with registry(data_dir) as con:
        for r in rows(con):
            state = "revoked" if r["revoked"] else "active"
            click.echo(f"{r['id']}  {r['role']:<11} {r['campaign'] or '*':<16} {state:<7} {r['name']}")


@token.command("revoke", context_settings=CONTEXT)
@click.argument("token_id")
@DATA_DIR
def revoke(token_id: str, data_dir: Path | None) -> None:
    """Revoke a token by id.

    \b
    Example:
        qsec token revoke 3
    """
    from dashboards.research.auth import revoke_token

    with registry(data_dir) as con:
        if not revoke_token(con, token_id):
            raise click.ClickException(f"no active token {token_id!r}; see `qsec token list`")
    click.echo(f"revoked {token_id}")


COMMANDS = [campaign, kit, participant, token]
