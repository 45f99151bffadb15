"""The `qsec` command as a person meets it: help with examples, clear usage errors, decode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from firmware_bridge.sensors import pms5003
from qsec.cli import main


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):  # noqa: ANN202
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, (*prefix, name))


COMMANDS = list(_all_commands(main))


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if not isinstance(c, click.Group)], ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`qsec {' '.join(path)} --help` shows no example"


def test_the_main_help_lists_the_commands() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    for name in ("up", "serve", "ingest", "bridge", "simulate"):
        assert name in out


def test_bridge_decode_prints_a_pms5003_frame_as_json() -> None:
    frame = pms5003.encode({"pm1": 4, "pm2_5": 7, "pm10": 9, "pm1_cf1": 4, "pm2_5_cf1": 7, "pm10_cf1": 9,
                            "pn0_3": 1032, "pn0_5": 301, "pn1": 52, "pn2_5": 6, "pn5": 1, "pn10": 0})
    bad = bytearray(frame)
    bad[-1] ^= 0xFF
    result = CliRunner().invoke(main, ["bridge", "decode", "--protocol", "pms5003", "--hex"],
                                input=f"{frame.hex()}\n{bytes(bad).hex()}\n")
    assert result.exit_code == 0, result.output
    good, error = (json.loads(line) for line in result.output.splitlines())
    assert good["sensor"] == "plantower-pms5003" and good["values"]["pm2_5"] == 7
    assert error["error"] == "FrameError" and "checksum" in error["reason"].lower()


def test_an_unknown_protocol_is_a_usage_error_that_lists_the_known_ones() -> None:
    result = CliRunner().invoke(main, ["bridge", "decode", "--protocol", "pms9999"], input="")
    assert result.exit_code == 2
    assert "pms5003" in result.output and "nmea" in result.output


def test_a_malformed_broker_address_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["ingest", "--broker", "127.0.0.1:notaport"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output or "port must be a number" in result.output


@pytest.mark.parametrize("command", ["ingest", "serve", "up"])
def test_an_unknown_time_zone_for_external_formats_is_a_usage_error_naming_the_option(command: str,
                                                                                    tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [command, "--external-timezone", "Mars/Olympus", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--external-timezone" in result.output and "unknown time zone 'Mars/Olympus'" in result.output


def test_the_bridge_imports_only_the_standard_library_pyserial_and_paho() -> None:
    """firmware_bridge runs on a Raspberry Pi Zero with qsec[bridge] only."""
    code = ("import sys, firmware_bridge.bridge, firmware_bridge.reader, firmware_bridge.spool, "
            "firmware_bridge.simulator, qsec.commands.bridge\n"
            "heavy = {'pandas', 'numpy', 'xarray', 'duckdb', 'fastapi', 'influxdb_client', 'pyarrow', 'uvicorn', "
            "'orjson', 'starlette', 'pydantic'}\n"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
