"""Broker access control: a user name and password per device, and an ACL that pins each to its topics.

qsec writes Mosquitto's ``password_file`` and ``acl_file``
(https://mosquitto.org/man/mosquitto-conf-5.html, "password_file", "acl_file";
https://mosquitto.org/man/mosquitto_passwd-1.html):

- the password file holds PBKDF2-HMAC-SHA512 hashes in Mosquitto 2's ``$7$``
  format (``user:$7$<iterations>$<base64 salt>$<base64 hash>``), the same
  ``mosquitto_passwd`` writes, so no plain password is ever stored;
- the ACL lets a device publish only readings and status under its *own*
  device id (``pattern write qsec/v1/+/%u/readings``), read only its own
  feedback, and lets the ingest user read every kit's readings and status and
  write feedback.  With ``allow_anonymous false``, a client without a valid
  user name and password is refused at CONNECT.

What a refused publish looks like (checked with Mosquitto 2.0.11, see
ENV-NOTES): at QoS 1 the broker answers PUBACK with reason code 135 "Not
authorized" — the bridge counts it and logs it; at QoS 0 it drops silently.
Device ids are the MQTT user names, so ingest's identity-from-topic rule and the
broker's ACL agree.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from qsec.contract import ID_PATTERN, TOPIC_ROOT

ITERATIONS = 101  # mosquitto_passwd's default for $7$ (Mosquitto 2.0)
INGEST_USER = "qsec-ingest"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """A Mosquitto 2 ``$7$`` password hash (PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte digest)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    mine = hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations))
    return secrets.compare_digest(mine, hashed)


def new_password() -> str:
    """A random password a person can still type (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def acl_text(ingest_user: str = INGEST_USER) -> str:
    """The ACL file: ingest reads everything qsec and answers; each device only its own topics."""
    r = TOPIC_ROOT
    return "\n".join([
        "# Written by qsec (qsec/access.py). Each device may write only under its own id.",
        f"user {ingest_user}",
        f"topic read {r}/+/+/readings",
        f"topic read {r}/+/+/status",
        f"topic write {r}/+/+/ingest",
        "topic read $SYS/broker/publish/messages/dropped",
        "",
        "# every other user is a device: %u is its user name, which is its device id",
        f"pattern write {r}/+/%u/readings",
        f"pattern readwrite {r}/+/%u/status",
        f"pattern read {r}/+/%u/ingest",
        "",
    ])


@dataclass
class Credentials:
    """User names and password hashes for the broker, kept in one password file."""

    path: Path

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        out = {}
        for line in self.path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                user, _, hashed = line.partition(":")
                out[user] = hashed
        return out

    def _write(self, users: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in sorted(users.items())))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def issue(self, user: str, password: str | None = None) -> str:
        """Create or reset ``user``'s password; returns the plain password (shown once, never stored)."""
        if user != INGEST_USER and not ID_PATTERN.match(user):
            raise ValueError(f"device id {user!r} must match {ID_PATTERN.pattern}: it is also the MQTT user name")
        password = password or new_password()
        users = self._read()
        users[user] = hash_password(password)
        self._write(users)
        return password

    def revoke(self, user: str) -> bool:
        users = self._read()
        if users.pop(user, None) is None:
            return False
        self._write(users)
        return True

    def users(self) -> list[str]:
        return sorted(self._read())

    def check(self, user: str, password: str) -> bool:
        hashed = self._read().get(user)
        return hashed is not None and check_password(password, hashed)


def write_acl(path: Path, ingest_user: str = INGEST_USER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(acl_text(ingest_user))
    return path
