"""`qsec import` and `qsec deadletter …`: files into the store, and what the store refused."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qsec.commands import CONTEXT, hostport, time_zone
from qsec.config import default_data_dir

_FORMATS = ("auto", "spool", "sensor-community", "smartcitizen", "qsec-csv")
_DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                         help="Folder of the store (qsec.duckdb) [default: ./data or $QSEC_DATA].")


def _store(data_dir: Path | None):
    from ingest.importer import StoreLocked, open_store

    try:
        return open_store(data_dir or default_data_dir())
    except StoreLocked as exc:
        raise click.ClickException(str(exc)) from None


# ---------------------------------------------------------------- import
@click.command("import", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="auto", show_default=True,
              help="File format; auto tells it from the first lines.")
@click.option("--campaign", default=None,
              help="Campaign id of the records (required for CSV archives; overrides a spool export's).")
@click.option("--device", default=None, help="Device id, for formats that name no device (Smart Citizen SD card).")
@_DATA_DIR
@click.option("--via-broker", default=None, metavar="HOST:PORT",
              help="Publish spool exports to this MQTT broker for the running ingest, instead of opening the store.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="With --via-broker: seconds to wait for ingest to confirm the records.")
def import_cmd(files: tuple[Path, ...], fmt: str, campaign: str | None, device: str | None, data_dir: Path | None,
               via_broker: str | None, timeout: float) -> None:
    """Import files into the store: each record once, refusals to the dead-letter table.

    \b
    Formats: a kit's spool export (USB stick), Sensor.Community archive CSVs,
    Smart Citizen SD-card CSVs, qsec's own CSV export. Importing a file twice,
    or a spool export whose records the kit also uploads later, stores
    nothing twice.

    \b
    Examples:
        qsec import kit-07-export.jsonl
        qsec import 2026-03-01_sds011_sensor_12345.csv --campaign lyon-2026
        qsec import 26-03-01.CSV --format smartcitizen --device sck-kit-3 --campaign lyon-2026
        qsec import kit-07-export.jsonl --via-broker 127.0.0.1:1883
    """
    if via_broker:
        _publish(files, fmt, campaign, hostport(via_broker, "--via-broker"), timeout)
        return
    from ingest.importer import import_file

    store = _store(data_dir)
    failed = 0
    totals: dict[str, int] = {"stored": 0, "duplicates": 0, "dead": 0}
    try:
        for path in files:
            try:
                with click.progressbar(length=max(path.stat().st_size, 1), label=path.name, file=sys.stderr) as bar:
                    counts = import_file(store, path, fmt=fmt, campaign=campaign, device=device, progress=bar.update)
            except ValueError as exc:
                failed += 1
                click.echo(f"{path}: not imported: {exc}", err=True)
                continue
            click.echo(counts.summary())
            totals["stored"] += counts.stored
            totals["duplicates"] += counts.duplicates
            totals["dead"] += counts.dead_total
    finally:
        store.close()
    if len(files) > 1:
        click.echo(f"total: {totals['stored']} stored, {totals['duplicates']} duplicates, "
                   f"{totals['dead']} dead-lettered" + (f", {failed} files not imported" if failed else ""))
    if totals["dead"]:
        click.echo("see what was refused and why: qsec deadletter list")
    if failed:
        sys.exit(1)


def _publish(files: tuple[Path, ...], fmt: str, campaign: str | None, broker: tuple[str, int], timeout: float) -> None:
    from ingest.importer import detect_format, publish_spool

    incomplete = 0
    for path in files:
        kind = detect_format(path) if fmt == "auto" else fmt
        if kind != "spool":
            raise click.UsageError(f"{path} is a {kind} file: only spool exports go through the broker; stop the "
                                   "process holding the store and import it without --via-broker")
        with click.progressbar(length=max(path.stat().st_size, 1), label=path.name, file=sys.stderr) as bar:
            try:
                counts = publish_spool(path, *broker, campaign=campaign, timeout=timeout, progress=bar.update)
            except ConnectionError as exc:
                raise click.ClickException(str(exc)) from None
        refused = ", ".join(f"{r} {n}" for r, n in counts.refused.most_common())
        click.echo(f"{path} (spool, via {broker[0]}:{broker[1]}): {counts.records} records in {counts.messages} "
                   f"messages; ingest confirmed {counts.settled}: {counts.accepted} stored, {counts.duplicates} "
                   f"duplicates" + (f", refused {refused}" if refused else ""))
        if not counts.complete:
            incomplete += 1
            click.echo(f"{path}: ingest did not confirm {counts.records - counts.settled} records within "
                       f"{timeout:.0f} s; is `qsec serve` or `qsec ingest` running on that broker?", err=True)
    if incomplete:
        sys.exit(1)


# ---------------------------------------------------------------- deadletter
@click.group(context_settings=CONTEXT)
def deadletter() -> None:
    """What the store refused (the dead-letter table): list, explain, reprocess after a fix."""


@deadletter.command("list", context_settings=CONTEXT)
@_DATA_DIR
@click.option("--reason", "reasons", multiple=True, help="Only this reason (repeatable).")
@click.option("--status", type=click.Choice(["open", "reprocessed", "all"]), default="open", show_default=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 10_000), help="Rows to show.")
def dl_list(data_dir: Path | None, reasons: tuple[str, ...], status: str, limit: int) -> None:
    """Counts by reason, then the latest dead letters.

    \b
    Example:
        qsec deadletter list --reason out_of_range --limit 50
    """
    from ingest import deadletter as dl

    store = _store(data_dir)
    try:
        counts = dl.counts_by_reason(store, status)
        rows = dl.list_dead_letters(store, status=status, reasons=reasons, limit=limit)
    finally:
        store.close()
    if not counts:
        click.echo(f"no {status if status != 'all' else ''} dead letters".replace("  ", " "))
        return
    click.echo(f"{sum(counts.values())} {status} dead letters by reason:")
    for reason, n in counts.items():
        click.echo(f"  {reason:<18} {n}")
    if rows:
        click.echo(f"\n{'id':>8}  {'received (UTC)':<19}  {'reason':<17} {'device':<22} detail")
        import time

        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.received_ms / 1000))
            click.echo(f"{r.id:>8}  {when:<19}  {r.reason:<17} {(r.device or '-'):<22} {(r.detail or '')[:80]}")
        click.echo("\nexplain one: qsec deadletter explain ID")


@deadletter.command("explain", context_settings=CONTEXT)
@click.argument("dead_letter_id", metavar="ID", type=int)
@_DATA_DIR
def dl_explain(dead_letter_id: int, data_dir: Path | None) -> None:
    """Show a dead letter's raw payload, why it was refused and what to fix.

    \b
    Example:
        qsec deadletter explain 42
    """
    from ingest import deadletter as dl

    store = _store(data_dir)
    try:
        row = dl.get(store, dead_letter_id)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    finally:
        store.close()
    click.echo(dl.explain(row))


@deadletter.command("reprocess", context_settings=CONTEXT)
@_DATA_DIR
@click.option("--reason", "reasons", multiple=True, help="Only dead letters of this reason (repeatable).")
@click.option("--id", "ids", multiple=True, type=int, help="Only this dead letter (repeatable).")
@click.option("--timezone", default=None, callback=time_zone,
              help="Time zone of Tasmota devices' clocks, for dead letters that do not carry the one ingest used "
                   "(stored by older versions) [default: Europe/Paris].")
def dl_reprocess(data_dir: Path | None, reasons: tuple[str, ...], ids: tuple[int, ...], timezone: str | None) -> None:
    """Check the open dead letters again with the current qsec, and store those that now pass.

    \b
    Those that pass are stored (once) and marked reprocessed; the others
    stay open with their new reason.

    \b
    Examples:
        qsec deadletter reprocess --reason unknown_quantity
        qsec deadletter reprocess --id 42 --id 43
    """
    from ingest import deadletter as dl

    store = _store(data_dir)
    try:
        report = dl.reprocess(store, reasons=reasons, ids=ids, context={"timezone": timezone} if timezone else None)
    finally:
        store.close()
    left = ", ".join(f"{r} {n}" for r, n in report.still_open.most_common())
    click.echo(f"{report.examined} examined: {report.reprocessed} reprocessed ({report.stored} records stored, "
               f"{report.duplicates} already stored), {sum(report.still_open.values())} still open"
               + (f" ({left})" if left else ""))


COMMANDS = [import_cmd, deadletter]
