"""Store reads behind the screens: positions with PM, hourly means, local days, campaign counts.

Every query aggregates in DuckDB (time buckets, hourly means) so a screen
never pulls a day of 1 Hz records into Python.  Positions are joined to PM
records with :func:`analysis.fusion.attach_positions` (sensor response lag
from its table, tolerance one bucket) after both are bucketed.

Every query leaves out the records a participant opted out of (the
public view's rule, :func:`analysis.export.selection.conditions`), in SQL
before anything is aggregated, so no screen shows them and none is counted.

Times: the store is naive UTC; every frame returned here is aware UTC.
Days are calendar days in the screen's time zone (Europe/Paris), as in
:mod:`analysis.daily`.

Sources
-------
- DuckDB ``time_bucket``, https://duckdb.org/docs/sql/functions/date#time_bucketbucket_width-date-offset
- IANA time zones through :mod:`zoneinfo`, https://www.iana.org/time-zones
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from analysis.columns import READINGS, quantity_columns, quote
from analysis.daily import DEFAULT_TZ
from analysis.export.selection import Selection, conditions, registry_present
from analysis.fusion import attach_positions
from analysis.times import localize_utc

PM = ("pm2_5", "pm10")
POSITIONS_COLUMNS = ["device", "time", "latitude", "longitude", *PM]


def local_day(now: datetime, tz: str = DEFAULT_TZ) -> date:
    """The calendar day of ``now`` (aware) in ``tz``."""
    return now.astimezone(ZoneInfo(tz)).date()


def day_bounds(day: date, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """Aware UTC start and end of a local calendar day (23 to 25 hours around DST changes)."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    after = day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def public_where(con: duckdb.DuckDBPyConnection, campaign: str | None, since: datetime | None,
           until: datetime | None) -> tuple[str, list[object]]:
    """Conditions on ``readings r``: the campaign, the period, and no record a participant opted out of."""
    selection = Selection(campaign=campaign, start=since, end=until, hide_opted_out=True)
    clauses, params = conditions(selection, registry_present(con))
    return " AND ".join(clauses) or "true", params


def positions(
    con: duckdb.DuckDBPyConnection,
    campaign: str | None,
    since: datetime,
    until: datetime | None = None,
    *,
    step_s: float = 5.0,
) -> pd.DataFrame:
    """Positions with the PM measured there, one per device and ``step_s`` bucket.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    campaign : str or None
        Keep only this campaign.
    since, until : datetime
        Period [aware UTC]; ``until`` open by default.
    step_s : float, default 5
        Bucket [s]: fixes and PM records are averaged per bucket, then each
        PM bucket takes the position of the nearest fix bucket within
        ``step_s`` after its sensor's response lag.

    Returns
    -------
    pandas.DataFrame
        :data:`POSITIONS_COLUMNS`: ``time`` [UTC, bucket middle],
        ``latitude``/``longitude`` [°], ``pm2_5``/``pm10`` [µg/m³] (NaN
        when the kit has no PM at that time).  Sorted by device and time.
        Fix buckets without a PM record keep their position with NaN PM,
        so a kit without a PM sensor still draws its track.
    """
    present = quantity_columns(con, ("latitude", "longitude", *PM))
    if not {"latitude", "longitude"} <= set(present):
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in POSITIONS_COLUMNS})
    pm = [name for name in PM if name in present]
    where, params = public_where(con, campaign, since, until)
    step = f"INTERVAL '{int(step_s * 1000)} milliseconds'"
    middle = f"time_bucket({step}, time) + {step} / 2"
    fixes = con.execute(
        f"""SELECT device, {middle} AS time, avg(latitude) AS latitude, avg(longitude) AS longitude
            FROM {READINGS} r WHERE {where} AND isfinite(latitude) AND isfinite(longitude)
            GROUP BY ALL ORDER BY device, time""",
        params,
    ).df()
    fixes["time"] = localize_utc(fixes["time"])
    if pm:
        averages = ", ".join(f"avg({quote(name)}) AS {name}" for name in pm)
        present_pm = " OR ".join(f"isfinite({quote(name)})" for name in pm)
        records = con.execute(
            f"""SELECT device, sensor, {middle} AS time, {averages}
                FROM {READINGS} r WHERE {where} AND ({present_pm}) GROUP BY ALL ORDER BY device, time""",
            params,
        ).df()
        records["time"] = localize_utc(records["time"])
    else:
        records = pd.DataFrame()
    parts = [fixes.reindex(columns=POSITIONS_COLUMNS)]
    if len(records) and len(fixes):
        joined = attach_positions(records, fixes, tolerance_s=step_s, method="nearest")
        located = joined[joined["latitude"].notna()].reindex(columns=POSITIONS_COLUMNS)
        taken = pd.MultiIndex.from_frame(located[["device", "time"]])
        bare = ~pd.MultiIndex.from_frame(fixes[["device", "time"]]).isin(taken)
        parts = [located, parts[0][bare]]
    out = pd.concat([part for part in parts if len(part)] or parts, ignore_index=True)
    out = out.sort_values(["device", "time"], kind="stable").drop_duplicates(["device", "time"])
    return out.reset_index(drop=True)


def period_means(
    con: duckdb.DuckDBPyConnection,
    campaign: str | None,
    since: datetime,
    until: datetime,
    quantities: tuple[str, ...] = PM,
) -> pd.DataFrame:
    """Mean of hourly means per device and quantity over a period.

    Returns
    -------
    pandas.DataFrame
        ``device``, ``quantity``, ``mean`` [unit of the quantity], ``hours``
        (hours with at least one value), ``count`` (values).  Averaging the
        hourly means first keeps a burst of fast records from weighing more
        than a quiet hour.
    """
    columns = quantity_columns(con, quantities)
    if not columns:
        return pd.DataFrame(columns=["device", "quantity", "mean", "hours", "count"])
    where, params = public_where(con, campaign, since, until)
    keep = ", ".join(quote(name) for name in columns)
    frame = con.execute(
        f"""WITH long AS (
                SELECT * FROM (UNPIVOT (SELECT device, time, {keep} FROM {READINGS} r WHERE {where})
                               ON {keep} INTO NAME quantity VALUE value)
                WHERE isfinite(value)),
            hourly AS (
                SELECT device, quantity, date_trunc('hour', time) AS hour, avg(value) AS mean, count(*) AS n
                FROM long GROUP BY ALL)
            SELECT device, quantity, avg(mean) AS mean, count(*) AS hours, sum(n) AS count
            FROM hourly GROUP BY ALL ORDER BY device, quantity""",
        params,
    ).df()
    return frame.astype({"mean": "float64", "hours": "int64", "count": "int64"})


def last_day(con: duckdb.DuckDBPyConnection, campaign: str | None, before: datetime,
             tz: str = DEFAULT_TZ) -> date | None:
    """The local day of the newest record before ``before`` (aware), or None for an empty store."""
    where, params = public_where(con, campaign, None, before)
    row = con.execute(f"SELECT max(time) FROM {READINGS} r WHERE {where}", params).fetchone()
    if row is None or row[0] is None:
        return None
    return local_day(row[0].replace(tzinfo=UTC), tz)


@dataclass(frozen=True)
class Counts:
    """A campaign's size: kits, records, minutes with data (summed over kits), first and last time [UTC]."""

    kits: int
    records: int
    minutes: int
    first: datetime | None
    last: datetime | None


def campaign_counts(con: duckdb.DuckDBPyConnection, campaign: str | None) -> Counts:
    """Kits, records, minutes with data (summed over kits), first and last measurement time."""
    where, params = public_where(con, campaign, None, None)
    row = con.execute(
        f"""SELECT count(DISTINCT device), count(*), count(DISTINCT (device, date_trunc('minute', time))),
                   min(time), max(time)
            FROM {READINGS} r WHERE {where}""",
        params,
    ).fetchone()
    assert row is not None  # an aggregate always returns one row
    kits, records, minutes, first, last = row
    return Counts(int(kits), int(records), int(minutes), None if first is None else first.replace(tzinfo=UTC),
                  None if last is None else last.replace(tzinfo=UTC))


def recording(
    con: duckdb.DuckDBPyConnection,
    campaign: str | None,
    since: datetime,
    until: datetime,
    quantities: tuple[str, ...],
    step_s: float = 2.0,
) -> pd.DataFrame:
    """Bucketed means of ``quantities`` and positions per device, for a replay.

    Returns
    -------
    pandas.DataFrame
        ``campaign``, ``device``, ``time`` [UTC, bucket start], then one
        column per quantity present in the store (NaN where none).
    """
    columns = quantity_columns(con, (*quantities, "latitude", "longitude"))
    where, params = public_where(con, campaign, since, until)
    if not columns:
        return pd.DataFrame(columns=["campaign", "device", "time"])
    means = ", ".join(f"avg({quote(name)}) FILTER (WHERE isfinite({quote(name)})) AS {name}" for name in columns)
    frame = con.execute(
        f"""SELECT campaign, device, time_bucket(INTERVAL '{int(step_s * 1000)} milliseconds', time) AS time, {means}
            FROM {READINGS} r WHERE {where} GROUP BY ALL ORDER BY time, device""",
        params,
    ).df()
    frame["time"] = localize_utc(frame["time"])
    return frame
