"""Settings of the researcher API, validated once at start-up.

The token pepper is a server secret mixed into every token's hash (HMAC):
a copy of the database alone does not let anyone check a guessed token.
It comes from ``$QSEC_TOKEN_PEPPER`` or, by default, from
``<data>/secrets/token-pepper``, created (32 random bytes, mode 0600) on
first start.  Placeholders and short values are refused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PEPPER_ENV = "QSEC_TOKEN_PEPPER"
_PLACEHOLDERS = ("changeme", "change-me", "secret", "password", "xxxx", "pepper", "example")


class ResearchSettings(BaseModel):
    """What the researcher API needs to know; every option bounded.

    Attributes
    ----------
    token_pepper : secret str, at least 32 characters
    password_file : path, optional
        Mosquitto password file where kit registration issues device
        credentials (``qsec.access``); without it the API registers kits
        but issues no credentials (use ``qsec kit register``).
    token_rate, token_burst : float [requests/s], int
        Token bucket of each API token.
    address_rate, address_burst : float [requests/s], int
        Token bucket of each client address (requests without a token,
        and refused tokens).
    export_cost : int
        Bucket tokens an export or a participant export takes.
    page_max : int
        Most records in one page of ``/readings``.
    max_rows : int
        Most records an aggregate, trips, grid or index request may read.
    trust_forwarded : bool
        Take the client address from ``X-Forwarded-For`` (behind a reverse proxy only).
    page_cache_mb : int [MiB]
        Memory for answered pages (:mod:`dashboards.research.pagecache`), used
        only when the router is given the store's change feed; 0: none.
    block_cache_mb : int [MiB]
        Memory for records of past days kept in columns (:mod:`dashboards.research.blocks`):
        pages about them are cut from memory; used only with the change feed; 0: none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_pepper: SecretStr
    password_file: Path | None = None
    token_rate: Annotated[float, Field(gt=0, le=10_000)] = 20.0
    token_burst: Annotated[int, Field(ge=1, le=100_000)] = 100
    address_rate: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    address_burst: Annotated[int, Field(ge=1, le=100_000)] = 60
    export_cost: Annotated[int, Field(ge=1, le=100_000)] = 10
    page_max: Annotated[int, Field(ge=1, le=10_000)] = 1000
    max_rows: Annotated[int, Field(ge=1000, le=100_000_000)] = 3_000_000
    trust_forwarded: bool = False
    page_cache_mb: Annotated[int, Field(ge=0, le=4096)] = 64
    block_cache_mb: Annotated[int, Field(ge=0, le=65536)] = 256

    @field_validator("token_pepper")
    @classmethod
    def _strong(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if len(raw) < 32:
            raise ValueError(f"token_pepper must be at least 32 characters (set ${PEPPER_ENV}, or let qsec create "
                             "<data>/secrets/token-pepper)")
        if any(p in raw.lower() for p in _PLACEHOLDERS):
            raise ValueError(f"token_pepper looks like a placeholder; set ${PEPPER_ENV} to a random value, e.g. "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return value

    @classmethod
    def from_data_dir(cls, data_dir: Path, **options: object) -> ResearchSettings:
        """Settings with the pepper from ``$QSEC_TOKEN_PEPPER`` or ``<data_dir>/secrets/token-pepper``.

        The password file defaults to ``<data_dir>/broker/passwords`` (as ``qsec kit register``).
        """
        pepper = os.environ.get(PEPPER_ENV) or load_pepper(Path(data_dir))
        options.setdefault("password_file", Path(data_dir) / "broker" / "passwords")
        return cls(token_pepper=SecretStr(pepper), **options)  # type: ignore[arg-type]


def load_pepper(data_dir: Path) -> str:
    """Read ``<data_dir>/secrets/token-pepper``, creating it (mode 0600) with 32 random bytes if missing."""
    path = data_dir / "secrets" / "token-pepper"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()
