"""API tokens: random, shown once, stored as a keyed hash; who may do what.

A token is ``qsec_`` followed by 43 URL-safe characters (32 random bytes
from :mod:`secrets`, 256 bits).  The store keeps only
``HMAC-SHA256(pepper, token)``: the token is already high-entropy, so a
slow password hash (scrypt, PBKDF2) would add nothing against guessing
while costing every request; the server-side pepper (``settings.py``)
means a stolen database alone cannot confirm a token.  Lookup is by hash,
then compared in constant time.

Roles
-----
``admin``        manage campaigns, kits, participants, deletions (of one campaign, or all)
``researcher``   read everything of one campaign (or all): positions, participants' pseudonyms
``participant``  one participant: their own data export, opt-outs, home zones, deletion
(no token)       the public view of public campaigns (no positions, no participant ids)

Sources
-------
- RFC 2104 (HMAC), RFC 6750 (Bearer tokens in ``Authorization``):
  https://www.rfc-editor.org/rfc/rfc2104, https://www.rfc-editor.org/rfc/rfc6750
- OWASP Secrets Management Cheat Sheet (peppering):
  https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#peppering
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

ROLES = ("admin", "researcher", "participant")
PREFIX = "qsec_"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a token's id, role and scope, or nobody (public), and from where."""

    address: str
    token_id: str | None = None
    role: str | None = None
    campaign: str | None = None
    participant: str | None = None

    @property
    def public(self) -> bool:
        return self.token_id is None

    def reads(self, campaign: str) -> bool:
        """May see a campaign's non-public data (positions, pseudonyms)."""
        return self.role in ("admin", "researcher") and self.campaign in (None, campaign)

    def administers(self, campaign: str | None) -> bool:
        """May change a campaign (``None``: create campaigns, so an admin of all)."""
        return self.role == "admin" and (self.campaign is None or self.campaign == campaign)

    def acts_for(self, participant: str, campaign: str) -> bool:
        """May act for a participant: their campaign's admin, or the participant themself."""
        return self.administers(campaign) or (self.role == "participant" and self.participant == participant)


def token_hash(pepper: str, token: str) -> str:
    """``HMAC-SHA256(pepper, token)`` in hex: what the store keeps."""
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_token(con: duckdb.DuckDBPyConnection, pepper: str, *, name: str, role: str, campaign: str | None = None,
                 participant: str | None = None, expires: datetime | None = None) -> tuple[str, str]:
    """Create a token; returns ``(id, token)``.  The token is not stored: show it once.

    Raises
    ------
    ValueError
        For an unknown role, or a participant token without its participant.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "participant") != (participant is not None):
        raise ValueError("a participant token needs --participant, and only a participant token takes one")
    token = PREFIX + secrets.token_urlsafe(32)
    ident = secrets.token_hex(4)
    if expires is not None and expires.tzinfo is not None:
        expires = expires.astimezone(UTC).replace(tzinfo=None)
    con.execute("INSERT INTO api_tokens (id, hash, name, role, campaign, participant, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [ident, token_hash(pepper, token), name[:200], role, campaign,
                                                    participant, datetime.now(UTC).replace(tzinfo=None), expires])
    return ident, token


def find_token(con: duckdb.DuckDBPyConnection, pepper: str, token: str) -> dict[str, Any] | None:
    """The token's row (id, role, campaign, participant) when valid, not revoked and not expired; else None."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    digest = token_hash(pepper, token)
    rows = con.execute("SELECT id, hash, role, campaign, participant FROM api_tokens WHERE hash = ? "
                       "AND revoked IS NULL AND (expires IS NULL OR expires > ?)",
                       [digest, datetime.now(UTC).replace(tzinfo=None)]).fetchall()
    if not rows or not hmac.compare_digest(rows[0][1], digest):
        return None
    ident, _, role, campaign, participant = rows[0]
    return {"id": ident, "role": role, "campaign": campaign, "participant": participant}


def list_tokens(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every token's id, name, role, scope and dates (never the token, nor its hash)."""
    cursor = con.execute("SELECT id, name, role, campaign, participant, created, expires, revoked FROM api_tokens "
                         "ORDER BY created")
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def revoke_token(con: duckdb.DuckDBPyConnection, ident: str) -> bool:
    """Revoke a token by id; False when no such active token."""
    rows = con.execute("UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL RETURNING id",
                       [datetime.now(UTC).replace(tzinfo=None), ident]).fetchall()
    return bool(rows)
