"""The single ``qsec`` command; its subcommands live in :mod:`qsec.commands`."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import warnings

import click

import qsec.commands
from qsec import __version__
from qsec.commands import CONTEXT


def _logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="qsec")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """qsec — citizen-science air quality and mobility: sensors -> MQTT -> store -> analysis -> screens.

    \b
    Start everything with simulated kits and the live dashboard:
        qsec up
    Then open http://127.0.0.1:8000
    """
    _logging(verbose)


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(qsec.commands.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"qsec.commands.{info.name}")
        except Exception as exc:  # a broken command module must not take the others down
            warnings.warn(f"qsec: the commands of {info.name!r} are unavailable: {exc}", stacklevel=1)
            continue
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
