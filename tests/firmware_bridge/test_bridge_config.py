"""The kit's TOML configuration: the documented example loads, and every mistake names the option."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_bridge.config import BridgeSettings, ConfigError, SensorConfig, load_config, parse_config
from qsec.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "bridge.md"


def _doc_example() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks, "docs/bridge.md has a ```toml example"
    return blocks[0]


def test_the_example_in_the_docs_loads_with_the_values_it_shows(tmp_path: Path) -> None:
    path = tmp_path / "kit.toml"
    path.write_text(_doc_example())
    s = load_config(path)
    assert (s.device, s.campaign, s.host, s.port) == ("kit-07", "lyon-2026", "mqtt.example.org", 8883)
    assert s.username == "kit-07"
    assert s.password_file == Path("/etc/qsec/kit-07.password") and s.tls and s.ca_file == Path("/etc/qsec/ca.pem")
    assert s.mqtt_version == 5 and s.spool_dir == Path("/var/lib/qsec/spool") and s.fsync == "group"
    assert [(c.protocol, c.interval_s) for c in s.sensor_configs] == [("pms5003", 1.0), ("mhz19", 5.0), ("nmea", 1.0)]
    defaults = BridgeSettings(device="d", campaign="c", spool_dir=Path("x"))
    for name in ("batch_records", "batch_ms", "resend_after_s", "max_in_flight", "status_every_s", "spool_max_bytes",
                 "keepalive_s", "reconnect_min_s", "reconnect_max_s", "prefer_gps_time", "clock_jump_s",
                 "assume_clock_synced", "reopen_max_s", "silence_s"):
        assert getattr(s, name) == getattr(defaults, name), f"the example shows {name}'s default"


def _minimal(**extra: str) -> str:
    text = 'device = "kit-01"\ncampaign = "c1"\n[spool]\ndir = "spool"\n'
    text += '[[sensors]]\nprotocol = "pms5003"\nport = "/dev/x"\n'
    return text + "".join(f"{k}\n" for k in extra.values())


def test_relative_paths_are_taken_from_the_folder_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "kit.toml"
    path.parent.mkdir()
    path.write_text(_minimal())
    assert load_config(path).spool_dir == tmp_path / "etc" / "spool"


BASE = 'device = "k"\ncampaign = "c"\n[spool]\ndir = "s"\n'
SENSOR = "\n[[sensors]]\n"
WRONG = {
    "bad-device": ('device = "Kit 1"\ncampaign = "c"\n[spool]\ndir = "s"', "device id 'Kit 1' must match"),
    "no-device": ('campaign = "c"\n[spool]\ndir = "s"', "device is missing"),
    "no-spool": ('device = "k"\ncampaign = "c"', "spool.dir is missing"),
    "fsync": (BASE + 'fsync = "sometimes"', "spool.fsync = 'sometimes': use one of always, group, never"),
    "mqtt-version": (BASE + '[broker]\nmqtt_version = "3"', 'broker.mqtt_version = \'3\': use 5 or "3.1.1"'),
    "port-type": (BASE + '[broker]\nport = "1883"', "broker.port = '1883': must be an integer"),
    "typo-option": (BASE + '[broker]\nhots = "x"', "broker.hots: unknown option; [broker] takes host, port"),
    "typo-section": (BASE + '[brokr]\nhost = "x"', "[brokr]: unknown section"),
    "batch-zero": (BASE + "[publish]\nbatch_records = 0", "publish.batch_records = 0: use 1 to 1000"),
    "resend-negative": (BASE + "[publish]\nresend_after_s = -1", "publish.resend_after_s = -1: use a number >= 0.1"),
    "unknown-protocol": (BASE + SENSOR + 'protocol = "pms9999"\nport = "/x"',
                         "sensors[0].protocol = 'pms9999': use one of"),
    "no-port": (BASE + SENSOR + 'protocol = "nmea"', "sensors[0].port is missing"),
    "sensor-typo": (BASE + SENSOR + 'protocol = "nmea"\nport = "/a"\nbaud = 4800',
                    "sensors[0].baud: unknown option; a sensor takes protocol, port, interval"),
    "same-model-twice": (BASE + SENSOR + 'protocol = "mhz19"\nport = "/a"'
                         + SENSOR + 'protocol = "mhz19-abc"\nport = "/b"',
                         "sensors[1].protocol = 'mhz19-abc': a second winsen-mhz19 sensor"),
    "password-without-user": (BASE + '[broker]\npassword_file = "p"', "password_file is set without broker.username"),
    "bool-type": (BASE + '[time]\nprefer_gps = "yes"', "time.prefer_gps = 'yes': must be true or false"),
}


@pytest.mark.parametrize("text, message", WRONG.values(), ids=WRONG.keys())
def test_a_wrong_value_is_refused_with_the_option_and_the_allowed_values(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(text), Path("/etc/qsec"))
    assert message in str(err.value)


def test_mqtt_3_1_1_is_protocol_level_4() -> None:
    doc = tomllib.loads(_minimal(v='[broker]\nmqtt_version = "3.1.1"'))
    assert parse_config(doc).mqtt_version == 4


def test_the_password_is_read_from_its_file_at_start(tmp_path: Path) -> None:
    secret = tmp_path / "kit.password"
    s = BridgeSettings(device="k", campaign="c", spool_dir=tmp_path, username="k", password_file=secret)
    with pytest.raises(ConfigError, match="broker.password_file = .*cannot read it"):
        s.check_files()
    secret.write_text("s3cret\n")
    assert s.resolved_password() == "s3cret"
    missing_ca = BridgeSettings(device="k", campaign="c", spool_dir=tmp_path, tls=True, ca_file=tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match="broker.ca_file = .*no such file"):
        missing_ca.check_files()


def test_the_older_mapping_of_sensors_still_works() -> None:
    s = BridgeSettings(device="k", campaign="c", spool_dir=Path("s"), sensors={"mhz19": "/dev/a"}, poll_interval_s=5)
    assert s.sensor_configs == (SensorConfig("mhz19", "/dev/a", 5.0),)


def test_check_prints_the_settings_with_command_line_overrides(tmp_path: Path) -> None:
    path = tmp_path / "kit.toml"
    path.write_text(_minimal())
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(path), "--broker", "10.1.2.3:1884",
                                       "--password", "pw", "--username", "kit-01", "--check"])
    assert result.exit_code == 0, result.output
    assert '"host": "10.1.2.3"' in result.output and '"port": 1884' in result.output
    assert '"password": "***"' in result.output and "pw" not in result.output.replace('"password"', "")


def test_a_bad_configuration_stops_the_command_with_the_option_named(tmp_path: Path) -> None:
    path = tmp_path / "kit.toml"
    path.write_text(_minimal().replace('dir = "spool"', 'dir = "spool"\nfsync = "maybe"'))
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(path), "--check"])
    assert result.exit_code == 2 and "fsync = 'maybe'" in result.output
    result = CliRunner().invoke(main, ["bridge", "run", "--device", "kit-01"])
    assert result.exit_code == 2 and "--campaign" in result.output and "--spool-dir" in result.output
