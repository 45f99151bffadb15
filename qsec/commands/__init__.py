"""The ``qsec`` subcommands, one module per group, registered by :func:`qsec.cli.main`.

Each module defines ``COMMANDS``, a list of click commands or groups, and
imports at its top only the standard library and click: what a command needs
(pandas, duckdb, paho…) is imported when it runs, so that ``qsec bridge`` works
on a Raspberry Pi with only ``qsec[bridge]`` installed.  A module that fails to
import is reported as a warning, and the other commands still work.
"""

from __future__ import annotations

import click

from qsec.config import parse_hostport

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def hostport(value: str, param_hint: str = "--broker") -> tuple[str, int]:
    """``HOST:PORT`` for a command-line option, with a usage error that shows the expected form."""
    try:
        return parse_hostport(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def time_zone(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Option callback: a known IANA time zone name, or a usage error that says what to give."""
    if value is None:
        return None
    from ingest.adapters._common import zone  # server side only: imported when the option is given

    try:
        zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value
