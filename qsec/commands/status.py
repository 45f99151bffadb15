"""`qsec status`: the pipeline's counters as a table."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click

from qsec.commands import CONTEXT
from qsec.config import default_data_dir


def _from_server(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/status", timeout=3) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _from_store(data_dir: Path) -> dict:
    import duckdb

    path = data_dir / "qsec.duckdb"
    if not path.exists():
        raise click.ClickException(f"no store at {path}; start the pipeline with `qsec up`, or give --data-dir")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException:
        raise click.ClickException(f"{path} is in use by a running qsec, and it does not answer on --url; "
                                   "give the address of its dashboard with --url") from None
    readings, distinct = con.execute("SELECT count(*), count(DISTINCT (device, boot, seq)) FROM readings").fetchone()
    by_reason = dict(con.execute("SELECT reason, count(*) FROM deadletter WHERE status = 'open' GROUP BY 1").fetchall())
    missing = dict(con.execute("SELECT device, sum(m) FROM (SELECT device, max(seq) + 1 - count(*) AS m FROM readings "
                               "WHERE boot NOT LIKE '%-%' GROUP BY device, boot) GROUP BY 1").fetchall())
    devices = con.execute("SELECT device, count(*), max(time) FROM readings GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    return {"store": {"readings": readings, "deadletter": sum(by_reason.values()), "doubled": readings - distinct},
            "deadletter_by_reason": by_reason,
            "missing_by_device": {k: int(v) for k, v in missing.items()},
            "devices": [{"device": d, "records": n, "last": str(t)} for d, n, t in devices]}


def _table(rows: list[tuple[str, object]]) -> str:
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _kit_rows(device: str, doc: dict) -> list[tuple[str, object]]:
    """A kit's row, then one per sensor whose reader counts frame errors, with the last reason."""
    spool = doc.get("spool") or {}
    state = f"{doc.get('state')}, spool pending {spool.get('pending')}, dropped when full {spool.get('dropped_full')}"
    rows: list[tuple[str, object]] = [(device, state)]
    for protocol, st in sorted((doc.get("sensors") or {}).items()):
        if st.get("frame_errors"):
            why = (st.get("last_reason") or {}).get("frame_error", "-")
            rows.append((f"  {protocol}", f"frame errors {st['frame_errors']}: {why}"))
    return rows


@click.command(context_settings=CONTEXT)
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="A running `qsec serve`/`qsec up`.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Read the store directly when no server answers [default: ./data].")
@click.option("--json", "as_json", is_flag=True, help="Print the raw figures as JSON.")
def status(url: str, data_dir: Path | None, as_json: bool) -> None:
    """Show what was received, stored, refused, missing and dropped — live or from the store.

    \b
    Examples:
        qsec status
        qsec status --url http://192.168.1.20:8000 --json
    """
    snap = _from_server(url)
    source = f"live from {url}"
    if snap is None:
        snap = _from_store(data_dir or default_data_dir())
        source = f"from the store in {data_dir or default_data_dir()} (no server at {url})"
    if as_json:
        click.echo(json.dumps(snap, indent=2, default=str))
        return
    click.echo(f"qsec status, {source}")
    rows: list[tuple[str, object]] = [("records stored (total)", snap["store"]["readings"]),
                                      ("dead letters (total)", snap["store"]["deadletter"])]
    if "doubled" in snap["store"]:  # read from the store: the exactly-once check, (device, boot, seq) unique
        rows.append(("records stored twice", snap["store"]["doubled"]))
    for key in ("messages_received", "records_stored", "records_duplicate", "commit_errors"):
        if key in snap:
            rows.append((key.replace("_", " ") + " (this run)", snap[key]))
    if "connected" in snap:
        rows.append(("broker", "connected" if snap["connected"] else "NOT CONNECTED"))
    if snap.get("broker_dropped") is not None:
        rows.append(("broker dropped (resent from spools)", snap["broker_dropped"]))
    if snap.get("last_commit_lag_ms") is not None:
        rows.append(("lag, measurement to commit", f"{snap['last_commit_lag_ms'] / 1000:.1f} s"))
    click.echo(_table(rows))
    if snap.get("deadletter_by_reason"):
        click.echo("dead letters by reason (see `qsec deadletter`):")
        click.echo(_table(sorted(snap["deadletter_by_reason"].items())))
    if snap.get("ignored_by_field"):
        click.echo("values set aside on purpose by the adapters (metadata, computed values; docs/adapters.md):")
        click.echo(_table(sorted(snap["ignored_by_field"].items())))
    if snap.get("missing_by_device"):
        click.echo("records missing below each kit's highest seq (in a spool, in flight, or dropped):")
        click.echo(_table(sorted(snap["missing_by_device"].items())))
    if snap.get("bridges"):
        click.echo("kits (their retained status; a sensor with frame errors, with the last reason):")
        click.echo(_table([row for d, b in snap["bridges"].items() for row in _kit_rows(d, b)]))
    if snap.get("mirror"):
        m = snap["mirror"]
        click.echo("InfluxDB mirror:")
        click.echo(_table([("points mirrored", m.get("points_mirrored")), ("waiting in the outbox", m.get("outbox_depth")),
                           ("retries", m.get("retries")), ("rejected (dead-lettered)", m.get("rejected_points")),
                           ("last error", m.get("last_error") or "-"),
                           ("ALARM", "authentication refused" if m.get("auth_failed") else
                            "bucket/org unknown" if m.get("config_failed") else "none")]))
    if snap.get("dashboard"):
        click.echo(_table([("screens connected", snap["dashboard"]["screens"]),
                           ("live events dropped (slow screens)", snap["dashboard"]["events_dropped"])]))


COMMANDS = [status]
