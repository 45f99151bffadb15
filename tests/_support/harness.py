"""Helpers for tests: real services, or a skip that names what is missing (a failure under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def require(condition: bool, reason: str) -> None:
    """Skip the test when a service is missing, except in CI (CI=true), where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a required service is missing: {reason}")
    pytest.skip(reason)


def require_chromium() -> None:
    """Debian's chromium and the Playwright driver, or skip/fail with the install command."""
    require(CHROMIUM.exists(), "Debian's chromium is not installed: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed: pip install playwright")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
