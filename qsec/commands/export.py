"""`qsec export`: selected records as a self-describing bundle (CSV, Parquet, NetCDF, GeoJSON)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from qsec.commands import CONTEXT
from qsec.config import default_data_dir

FORMATS = ("csv", "parquet", "netcdf", "geojson")
DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                        help="Folder of the store (qsec.duckdb) [default: ./data or $QSEC_DATA].")


def when(value: str | None) -> datetime | None:
    """An ISO 8601 time from the command line (``2026-05-17T08:00Z``; without zone: UTC)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-05-17T08:00:00Z") from None


def open_store(data_dir: Path | None):  # noqa: ANN201 (ingest.store.Store, imported lazily)
    """The store, for writing (the registry and the export log live in it), with the registry tables."""
    from ingest.importer import StoreLocked
    from ingest.importer import open_store as _open
    from ingest.registry import ensure_registry_schema

    try:
        store = _open(data_dir or default_data_dir())
    except StoreLocked as exc:
        raise click.ClickException(f"{exc}\nWhile the server runs, export through its API: "
                                   "curl -H 'Authorization: Bearer …' 'http://HOST:8000/research/v1/exports?…'") from None
    ensure_registry_schema(store.cursor())
    return store


@click.command("export", context_settings=CONTEXT)
@click.option("--campaign", required=True, help="Campaign id.")
@click.option("--device", "devices", multiple=True, help="Only this device (repeat for several).")
@click.option("--quantity", "quantities", multiple=True, help="Only this quantity column (repeat); default: all with data.")
@click.option("--start", default=None, help="From this measurement time (ISO 8601; no zone = UTC).")
@click.option("--end", default=None, help="Up to this time, excluded.")
@click.option("--bbox", default=None, metavar="W,S,E,N", help="Only positions in this box [° WGS84] (adds positions).")
@click.option("--flags-none", default=0, type=click.IntRange(0, 2**31 - 1), help="Leave out records with any of these flag bits.")
@click.option("--flags-all", default=0, type=click.IntRange(0, 2**31 - 1), help="Keep records with all these flag bits.")
@click.option("--positions/--no-positions", default=False, help="Add latitude/longitude from each device's GPS.")
@click.option("--public", is_flag=True, help="The public view: no positions, no participant ids, opt-outs left out.")
@click.option("--participant", default=None, help="Only what this participant carried (their GDPR export).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="A .zip file, or a folder for the unpacked bundle.")
@DATA_DIR
@click.option("--memory-limit", default="1GB", show_default=True, help="DuckDB memory limit while exporting.")
def export(campaign: str, devices: tuple[str, ...], quantities: tuple[str, ...], start: str | None, end: str | None,
           bbox: str | None, flags_none: int, flags_all: int, positions: bool, public: bool, participant: str | None,
           fmt: str, output: Path, data_dir: Path | None, memory_limit: str) -> None:
    """Export records as a bundle: data file, manifest.json, LICENCE.txt, SHA256SUMS.

    \b
    The same columns as the API's /research/v1/exports for the same
    selection; memory stays bounded whatever the size.

    \b
    Examples:
        qsec export --campaign versailles --format parquet -o versailles.zip
        qsec export --campaign versailles --format netcdf --positions --start 2026-05-17 -o day.zip
        qsec export --campaign versailles --public --format csv -o open-data/
    """
    from analysis.export import Selection, SelectionError, count_rows, log_export, plan, write_bundle
    from analysis.export.bundle import prepare

    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            raise click.BadParameter("write W,S,E,N in degrees, e.g. 2.10,48.79,2.14,48.82", param_hint="--bbox") from None
    selection = Selection(campaign=campaign, devices=devices, quantities=quantities, start=when(start), end=when(end),
                          bbox=box, flags_none=flags_none, flags_all=flags_all, positions=positions, public=public,  # type: ignore[arg-type]
                          participant=participant)
    store = open_store(data_dir)
    try:
        con = store.cursor()
        con.execute(f"SET memory_limit = '{memory_limit}'")
        try:
            rows = count_rows(con, plan(con, prepare(selection, fmt)))
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from None
        with click.progressbar(length=max(rows, 1), label=f"{fmt} {output.name}", file=sys.stderr) as bar:
            result = write_bundle(con, selection, fmt, output, progress=bar.update)
        log_export(con, route="cli", fmt=fmt, selection=selection, result=result)
    finally:
        store.close()
    click.echo(f"{output}: {result.rows} records, data {result.bytes} bytes, sha256 {result.sha256}")


COMMANDS = [export]
