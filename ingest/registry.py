"""The campaign registry: campaigns, kits and their devices, participants, home zones, opt-outs, deletions.

Everything a campaign team records about *who measures with what, when*,
next to the raw readings in the same DuckDB file (``docs/campaigns.md``):

- ``campaign_settings``: status (``draft`` → ``open`` → ``closed``), data
  licence, public or not, minimum participants per published map cell;
  the store's own ``campaigns`` table keeps title, start and end (ingest
  refuses records measured before the start);
- ``kits`` and ``kit_devices``: a kit is what a participant carries; each of
  its devices is one MQTT identity (``qsec.access``) writing readings;
- ``participants``: pseudonymous ids only (``p-`` and 10 random characters):
  no name, address or e-mail is ever stored here;
- ``assignments``: which participant carried which kit, from when to when —
  this is what ties readings to a person;
- ``home_zones``: places whose positions never leave the research team;
- ``opt_outs``: time ranges (a trip, an afternoon) a participant does not
  want published; researchers with a token still see them;
- ``deletion_log``: what a deletion removed (participant, time ranges, row
  counts, when) — never the deleted data;
- ``api_tokens`` and ``export_log``: used by the researcher API
  (``dashboards/research``) and ``qsec export``.

All tables are created by :func:`ensure_registry_schema` with
``CREATE TABLE IF NOT EXISTS`` (idempotent, run at every start).  Times are
naive UTC ``TIMESTAMP`` as everywhere in the store (``docs/store.md``).

Sources
-------
- Regulation (EU) 2016/679 (GDPR), Art. 4(5) pseudonymisation, Art. 17 right
  to erasure, Art. 20 right to data portability:
  https://eur-lex.europa.eu/eli/reg/2016/679/oj
- DuckDB ``CREATE TABLE IF NOT EXISTS``, ``DELETE … RETURNING``:
  https://duckdb.org/docs/sql/statements/create_table, https://duckdb.org/docs/sql/statements/delete
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from qsec.contract import ID_PATTERN

STATUSES = ("draft", "open", "closed")
DEFAULT_LICENCE = "ODbL-1.0"
DEFAULT_MIN_PARTICIPANTS = 3
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: ids are read aloud and copied by hand
_FOREVER = "TIMESTAMP '9999-12-31'"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS campaigns (
        campaign VARCHAR PRIMARY KEY, title VARCHAR, starts TIMESTAMP, ends TIMESTAMP, created TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS devices (
        device VARCHAR PRIMARY KEY, campaign VARCHAR NOT NULL, kind VARCHAR, created TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS campaign_settings (
        campaign VARCHAR PRIMARY KEY, status VARCHAR NOT NULL DEFAULT 'draft', licence VARCHAR NOT NULL,
        public BOOLEAN NOT NULL DEFAULT false, description VARCHAR, min_participants INTEGER NOT NULL,
        opened TIMESTAMP, closed TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS kits (
        kit VARCHAR PRIMARY KEY, campaign VARCHAR NOT NULL, label VARCHAR, created TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS kit_devices (
        device VARCHAR PRIMARY KEY, kit VARCHAR NOT NULL, sensors VARCHAR, credentials_issued TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS participants (
        participant VARCHAR PRIMARY KEY, campaign VARCHAR NOT NULL, created TIMESTAMP NOT NULL,
        deleted TIMESTAMP)""",
    "CREATE SEQUENCE IF NOT EXISTS registry_id",
    """CREATE TABLE IF NOT EXISTS assignments (
        id BIGINT PRIMARY KEY DEFAULT nextval('registry_id'), participant VARCHAR NOT NULL, kit VARCHAR NOT NULL,
        starts TIMESTAMP NOT NULL, ends TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS home_zones (
        id BIGINT PRIMARY KEY DEFAULT nextval('registry_id'), participant VARCHAR NOT NULL,
        latitude DOUBLE NOT NULL, longitude DOUBLE NOT NULL, radius_m DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS opt_outs (
        id BIGINT PRIMARY KEY DEFAULT nextval('registry_id'), participant VARCHAR NOT NULL,
        starts TIMESTAMP NOT NULL, ends TIMESTAMP NOT NULL, reason VARCHAR NOT NULL, created TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deletion_log (
        id BIGINT PRIMARY KEY DEFAULT nextval('registry_id'), participant VARCHAR NOT NULL,
        campaign VARCHAR NOT NULL, requested TIMESTAMP NOT NULL, done TIMESTAMP NOT NULL,
        what VARCHAR NOT NULL, readings BIGINT NOT NULL, registry_rows BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        id VARCHAR PRIMARY KEY, hash VARCHAR NOT NULL UNIQUE, name VARCHAR NOT NULL, role VARCHAR NOT NULL,
        campaign VARCHAR, participant VARCHAR, created TIMESTAMP NOT NULL, expires TIMESTAMP, revoked TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS export_log (
        id BIGINT PRIMARY KEY DEFAULT nextval('registry_id'), exported TIMESTAMP NOT NULL, route VARCHAR NOT NULL,
        token_id VARCHAR, address VARCHAR, campaign VARCHAR, format VARCHAR NOT NULL, query VARCHAR NOT NULL,
        rows BIGINT NOT NULL, bytes BIGINT NOT NULL, sha256 VARCHAR)""",
)


class RegistryError(ValueError):
    """A registry request that cannot be done as asked; the message says what to change."""


class NotFound(LookupError):
    """No such campaign, kit or participant; the message names it."""


def ensure_registry_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the registry tables on ``con`` if they are missing (idempotent, no data touched)."""
    for statement in _SCHEMA:
        con.execute(statement)


def store_time(when: datetime | None) -> datetime | None:
    """An aware or naive (= UTC) datetime as the store's naive UTC; None stays None."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check_id(kind: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise RegistryError(f"{kind} id {value!r} must match {ID_PATTERN.pattern} (lower case, digits, - and _)")
    return value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# ---------------------------------------------------------------- campaigns
@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as the registry knows it (times naive UTC)."""

    campaign: str
    title: str
    status: str
    licence: str
    public: bool
    min_participants: int
    description: str | None = None
    starts: datetime | None = None
    ends: datetime | None = None
    opened: datetime | None = None
    closed: datetime | None = None


_CAMPAIGN_SQL = """
    SELECT c.campaign, coalesce(c.title, c.campaign) AS title, coalesce(s.status, 'draft') AS status,
           coalesce(s.licence, ?) AS licence, coalesce(s.public, false) AS public,
           coalesce(s.min_participants, ?) AS min_participants, s.description, c.starts, c.ends, s.opened, s.closed
    FROM campaigns c LEFT JOIN campaign_settings s USING (campaign)"""


def create_campaign(con: duckdb.DuckDBPyConnection, campaign: str, *, title: str | None = None,
                    starts: datetime | None = None, ends: datetime | None = None, licence: str = DEFAULT_LICENCE,
                    public: bool = False, description: str | None = None,
                    min_participants: int = DEFAULT_MIN_PARTICIPANTS) -> CampaignInfo:
    """Create a campaign (status ``draft``), or update the settings of one ingest already saw.

    ``starts``/``ends`` bound the measurement times ingest accepts.  Raises
    :class:`RegistryError` for a bad id, ``ends`` not after ``starts`` or
    ``min_participants`` below 1.
    """
    _check_id("campaign", campaign)
    starts, ends = store_time(starts), store_time(ends)
    if starts and ends and ends <= starts:
        raise RegistryError(f"campaign {campaign}: the end {ends} must come after the start {starts}")
    if min_participants < 1:
        raise RegistryError("min_participants must be at least 1 (3 or more is advised for public maps)")
    con.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign) DO UPDATE SET "
                "title = excluded.title, starts = coalesce(excluded.starts, campaigns.starts), "
                "ends = coalesce(excluded.ends, campaigns.ends)", [campaign, title or campaign, starts, ends, _now()])
    con.execute("INSERT INTO campaign_settings (campaign, licence, public, description, min_participants) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign) DO UPDATE SET licence = excluded.licence, "
                "public = excluded.public, description = excluded.description, "
                "min_participants = excluded.min_participants",
                [campaign, licence, public, description, min_participants])
    return get_campaign(con, campaign)


def get_campaign(con: duckdb.DuckDBPyConnection, campaign: str) -> CampaignInfo:
    """The campaign ``campaign``, or :class:`NotFound`."""
    found = _rows(con, _CAMPAIGN_SQL + " WHERE c.campaign = ?", [DEFAULT_LICENCE, DEFAULT_MIN_PARTICIPANTS, campaign])
    if not found:
        raise NotFound(f"no campaign {campaign!r}; create it with `qsec campaign create {campaign}`")
    return CampaignInfo(**found[0])


def list_campaigns(con: duckdb.DuckDBPyConnection, *, public_only: bool = False) -> list[CampaignInfo]:
    """Every campaign (or only the public ones), by id."""
    where = " WHERE coalesce(s.public, false)" if public_only else ""
    return [CampaignInfo(**row) for row in _rows(
        con, _CAMPAIGN_SQL + where + " ORDER BY c.campaign", [DEFAULT_LICENCE, DEFAULT_MIN_PARTICIPANTS])]


def set_status(con: duckdb.DuckDBPyConnection, campaign: str, status: str,
               when: datetime | None = None) -> CampaignInfo:
    """Open or close a campaign.

    Opening sets the campaign's start (when it had none) so ingest refuses
    older records; closing sets its end.  A closed campaign cannot be
    reopened: create a new one (its data stays as it was published).
    """
    if status not in ("open", "closed"):
        raise RegistryError(f"status must be 'open' or 'closed', not {status!r}")
    info = get_campaign(con, campaign)
    when = store_time(when) or _now()
    if info.status == "closed":
        raise RegistryError(f"campaign {campaign} is closed; a closed campaign stays closed, create a new one")
    if status == "open":
        con.execute("UPDATE campaigns SET starts = coalesce(starts, ?) WHERE campaign = ?", [when, campaign])
        con.execute("UPDATE campaign_settings SET status = 'open', opened = ? WHERE campaign = ?", [when, campaign])
    else:
        con.execute("UPDATE campaigns SET ends = coalesce(ends, ?) WHERE campaign = ?", [when, campaign])
        con.execute("UPDATE campaign_settings SET status = 'closed', closed = ? WHERE campaign = ?", [when, campaign])
    return get_campaign(con, campaign)


# ---------------------------------------------------------------- kits
@dataclass(frozen=True)
class Kit:
    """A kit and its devices (device id -> sensor models)."""

    kit: str
    campaign: str
    label: str | None
    devices: dict[str, tuple[str, ...]]


def register_kit(con: duckdb.DuckDBPyConnection, campaign: str, kit: str,
                 devices: Mapping[str, Sequence[str]], *, label: str | None = None) -> Kit:
    """Register a kit and its devices in a campaign (again: adds devices, keeps the others).

    Device ids are MQTT user names too (``qsec.access``): issue their
    credentials after this succeeds.  A device already in another kit is
    refused.
    """
    get_campaign(con, campaign)
    _check_id("kit", kit)
    if not devices:
        raise RegistryError(f"kit {kit}: give at least one device id (each bridge of the kit is a device)")
    for device in devices:
        _check_id("device", device)
        other = con.execute("SELECT kit FROM kit_devices WHERE device = ? AND kit <> ?", [device, kit]).fetchall()
        if other:
            raise RegistryError(f"device {device} already belongs to kit {other[0][0]}; a device is in one kit")
    existing = con.execute("SELECT campaign FROM kits WHERE kit = ?", [kit]).fetchall()
    if existing and existing[0][0] != campaign:
        raise RegistryError(f"kit {kit} belongs to campaign {existing[0][0]}; register it under a new kit id")
    con.execute("INSERT INTO kits VALUES (?, ?, ?, ?) ON CONFLICT (kit) DO UPDATE SET label = "
                "coalesce(excluded.label, kits.label)", [kit, campaign, label, _now()])
    for device, sensors in devices.items():
        con.execute("INSERT INTO kit_devices (device, kit, sensors) VALUES (?, ?, ?) ON CONFLICT (device) "
                    "DO UPDATE SET sensors = excluded.sensors", [device, kit, ",".join(sensors)])
        con.execute("INSERT INTO devices VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                    "campaign = excluded.campaign, kind = excluded.kind", [device, campaign, f"kit:{kit}", _now()])
    return get_kit(con, kit)


def mark_credentials_issued(con: duckdb.DuckDBPyConnection, device: str) -> None:
    con.execute("UPDATE kit_devices SET credentials_issued = ? WHERE device = ?", [_now(), device])


def get_kit(con: duckdb.DuckDBPyConnection, kit: str) -> Kit:
    """The kit ``kit``, or :class:`NotFound`."""
    rows = con.execute("SELECT campaign, label FROM kits WHERE kit = ?", [kit]).fetchall()
    if not rows:
        raise NotFound(f"no kit {kit!r}; register it with `qsec kit register {kit} --campaign … --device …`")
    devices = con.execute("SELECT device, sensors FROM kit_devices WHERE kit = ? ORDER BY device", [kit]).fetchall()
    return Kit(kit, rows[0][0], rows[0][1], {d: tuple(s for s in (sensors or "").split(",") if s) for d, sensors in devices})


def list_kits(con: duckdb.DuckDBPyConnection, campaign: str) -> list[Kit]:
    return [get_kit(con, k) for (k,) in con.execute(
        "SELECT kit FROM kits WHERE campaign = ? ORDER BY kit", [campaign]).fetchall()]


# ---------------------------------------------------------------- participants
def add_participant(con: duckdb.DuckDBPyConnection, campaign: str) -> str:
    """Create a pseudonymous participant in ``campaign``; returns the id (``p-`` + 10 characters)."""
    get_campaign(con, campaign)
    participant = "p-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))
    con.execute("INSERT INTO participants VALUES (?, ?, ?, NULL)", [participant, campaign, _now()])
    return participant


def participant_campaign(con: duckdb.DuckDBPyConnection, participant: str) -> str:
    """The campaign of a participant who was not deleted, or :class:`NotFound`."""
    rows = con.execute("SELECT campaign, deleted FROM participants WHERE participant = ?", [participant]).fetchall()
    if not rows:
        raise NotFound(f"no participant {participant!r}; list them with `qsec participant list --campaign …`")
    if rows[0][1] is not None:
        raise NotFound(f"participant {participant} was deleted on {rows[0][1]:%Y-%m-%d %H:%M} UTC")
    return str(rows[0][0])


def list_participants(con: duckdb.DuckDBPyConnection, campaign: str) -> list[dict[str, Any]]:
    """Participants of a campaign with their kits, deleted ones included (marked)."""
    return _rows(con, """
        SELECT p.participant, p.created, p.deleted, string_agg(DISTINCT a.kit, ',' ORDER BY a.kit) AS kits
        FROM participants p LEFT JOIN assignments a USING (participant)
        WHERE p.campaign = ? GROUP BY ALL ORDER BY p.created, p.participant""", [campaign])


def assign_kit(con: duckdb.DuckDBPyConnection, participant: str, kit: str, starts: datetime,
               ends: datetime | None = None) -> int:
    """Give ``kit`` to ``participant`` from ``starts`` (to ``ends``, open-ended by default).

    Refused when the kit is already assigned to someone over an overlapping time.
    """
    campaign = participant_campaign(con, participant)
    if get_kit(con, kit).campaign != campaign:
        raise RegistryError(f"kit {kit} is not in campaign {campaign} of participant {participant}")
    starts, ends = store_time(starts), store_time(ends)
    if ends is not None and ends <= starts:  # type: ignore[operator]
        raise RegistryError(f"the assignment must end after it starts ({starts} .. {ends})")
    clash = con.execute(
        f"SELECT participant, starts FROM assignments WHERE kit = ? AND starts < coalesce(?, {_FOREVER}) "
        f"AND coalesce(ends, {_FOREVER}) > ?", [kit, ends, starts]).fetchall()
    if clash:
        raise RegistryError(f"kit {kit} is already assigned to {clash[0][0]} from {clash[0][1]}: end that first")
    (ident,) = con.execute("INSERT INTO assignments (participant, kit, starts, ends) VALUES (?, ?, ?, ?) "
                           "RETURNING id", [participant, kit, starts, ends]).fetchall()[0]
    return int(ident)


def end_assignment(con: duckdb.DuckDBPyConnection, kit: str, ends: datetime) -> int:
    """End the open assignment of ``kit`` at ``ends``; returns how many were ended (0 or 1)."""
    rows = con.execute("UPDATE assignments SET ends = ? WHERE kit = ? AND ends IS NULL AND starts < ? RETURNING id",
                       [store_time(ends), kit, store_time(ends)]).fetchall()
    return len(rows)


def add_home_zone(con: duckdb.DuckDBPyConnection, participant: str, latitude: float, longitude: float,
                  radius_m: float = 200.0) -> int:
    """Declare a place of ``participant`` whose surroundings are never published [° WGS84, m]."""
    participant_campaign(con, participant)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise RegistryError(f"a home zone needs a WGS84 position, not ({latitude}, {longitude})")
    if not 0 < radius_m <= 5000:
        raise RegistryError(f"a home zone radius is in metres, 0 < radius <= 5000, not {radius_m}")
    (ident,) = con.execute("INSERT INTO home_zones (participant, latitude, longitude, radius_m) VALUES (?, ?, ?, ?) "
                           "RETURNING id", [participant, latitude, longitude, radius_m]).fetchall()[0]
    return int(ident)


def home_zones(con: duckdb.DuckDBPyConnection, campaign: str) -> list[dict[str, Any]]:
    """Home zones of a campaign's participants: participant, latitude, longitude, radius_m."""
    return _rows(con, "SELECT z.participant, z.latitude, z.longitude, z.radius_m FROM home_zones z "
                      "JOIN participants p USING (participant) WHERE p.campaign = ? ORDER BY z.id", [campaign])


def add_opt_out(con: duckdb.DuckDBPyConnection, participant: str, starts: datetime, ends: datetime,
                reason: str = "range") -> int:
    """Mark ``[starts, ends)`` of a participant's data as not to be published (a trip, a time range)."""
    participant_campaign(con, participant)
    starts, ends = store_time(starts), store_time(ends)
    if ends <= starts:  # type: ignore[operator]
        raise RegistryError(f"an opt-out must end after it starts ({starts} .. {ends})")
    if reason not in ("trip", "range"):
        raise RegistryError(f"reason must be 'trip' or 'range', not {reason!r}")
    (ident,) = con.execute("INSERT INTO opt_outs (participant, starts, ends, reason, created) VALUES (?, ?, ?, ?, ?) "
                           "RETURNING id", [participant, starts, ends, reason, _now()]).fetchall()[0]
    return int(ident)


def list_opt_outs(con: duckdb.DuckDBPyConnection, participant: str) -> list[dict[str, Any]]:
    return _rows(con, "SELECT id, starts, ends, reason, created FROM opt_outs WHERE participant = ? ORDER BY starts",
                 [participant])


def participant_ranges(con: duckdb.DuckDBPyConnection, participant: str) -> list[tuple[str, datetime, datetime]]:
    """``(device, starts, ends)`` of every device the participant carried (``ends`` far future when open)."""
    return [tuple(r) for r in con.execute(f"""
        SELECT k.device, a.starts, coalesce(a.ends, {_FOREVER}) FROM assignments a JOIN kit_devices k USING (kit)
        WHERE a.participant = ? ORDER BY a.starts, k.device""", [participant]).fetchall()]  # type: ignore[misc]


# ---------------------------------------------------------------- erasure (GDPR Art. 17)
@dataclass(frozen=True)
class Deletion:
    """What a deletion removed: counts and time ranges, never the data itself."""

    participant: str
    campaign: str
    requested: datetime
    done: datetime
    what: str
    readings: int
    registry_rows: int


def delete_participant(con: duckdb.DuckDBPyConnection, participant: str,
                       requested: datetime | None = None) -> Deletion:
    """Delete a participant's readings, home zones, opt-outs and assignments, and log it.

    Readings are those of the devices of the kits they carried, measured
    within each assignment.  The participant row is kept with its deletion
    time (the id was random and now points at nothing) so that a repeated
    request is answered, and ``deletion_log`` records the ranges and counts.
    One transaction: all or nothing.
    """
    campaign = participant_campaign(con, participant)
    ranges = participant_ranges(con, participant)
    requested = store_time(requested) or _now()
    con.execute("BEGIN")
    try:
        readings = 0
        for device, starts, ends in ranges:
            readings += len(con.execute("DELETE FROM readings WHERE device = ? AND time >= ? AND time < ? "
                                        "RETURNING seq", [device, starts, ends]).fetchall())
        registry_rows = 0
        for table in ("home_zones", "opt_outs", "assignments"):
            registry_rows += len(con.execute(f"DELETE FROM {table} WHERE participant = ? RETURNING id",
                                             [participant]).fetchall())
        done = _now()
        con.execute("UPDATE participants SET deleted = ? WHERE participant = ?", [done, participant])
        what = "; ".join(f"readings of {d} from {s:%Y-%m-%dT%H:%M:%S}Z to "
                         f"{'open end' if e.year == 9999 else format(e, '%Y-%m-%dT%H:%M:%SZ')}"
                         for d, s, e in ranges) or "no readings (no kit was assigned)"
        what += "; home zones, opt-outs and kit assignments"
        con.execute("INSERT INTO deletion_log (participant, campaign, requested, done, what, readings, registry_rows) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", [participant, campaign, requested, done, what, readings,
                                                     registry_rows])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return Deletion(participant, campaign, requested, done, what, readings, registry_rows)


def deletions(con: duckdb.DuckDBPyConnection, campaign: str) -> list[Deletion]:
    """The deletion log of a campaign, oldest first."""
    return [Deletion(**row) for row in _rows(
        con, "SELECT participant, campaign, requested, done, what, readings, registry_rows FROM deletion_log "
             "WHERE campaign = ? ORDER BY done", [campaign])]
