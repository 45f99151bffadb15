"""Bridge settings, and the TOML file (one per kit) they are read from.

Every option is checked once, at start, with a message that names the option
and the values it accepts (``ConfigError``).  ``docs/bridge.md`` shows a full
example; the test suite loads that example, so it cannot rot.

Sources: TOML v1.0.0, https://toml.io/en/v1.0.0; Python ``tomllib``,
https://docs.python.org/3/library/tomllib.html; MQTT protocol levels 4
(3.1.1, OASIS 2014) and 5 (OASIS 2019).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_bridge.sensors import PROTOCOLS
from qsec import contract

MQTT_VERSIONS = {"5": 5, "3.1.1": 4}
FSYNC_POLICIES = ("always", "group", "never")


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the option and what it accepts."""


@dataclass(frozen=True)
class SensorConfig:
    """One sensor: its protocol (``pms5003``, ``mhz19``, ``nmea``…), its serial port and poll interval [s]."""

    protocol: str
    port: str
    interval_s: float = 1.0


@dataclass
class BridgeSettings:
    """Everything one bridge (one kit) needs.  ``sensors`` may also be a ``{protocol: port}`` mapping."""

    device: str
    campaign: str
    spool_dir: Path
    sensors: Sequence[SensorConfig] | Mapping[str, str] = field(default_factory=tuple)
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None  # read at start; keeps the secret out of the TOML file
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    mqtt_version: int = 5  # 5 or 4 (3.1.1)
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    batch_records: int = 50
    batch_ms: int = 500
    resend_after_s: float = 10.0
    status_every_s: float = 10.0
    max_in_flight: int = 20  # messages
    fsync: str = "group"
    spool_max_bytes: int = 64 * 2**20
    poll_interval_s: float = 1.0  # default interval of polled sensors given as a mapping
    reopen_max_s: float = 10.0  # longest wait between two attempts to reopen a vanished port
    silence_s: float = 30.0  # a port that yields no frame for this long is reopened
    prefer_gps_time: bool = True
    clock_jump_s: float = 2.0
    assume_clock_synced: bool = False

    def __post_init__(self) -> None:
        contract.topic(self.campaign, self.device)  # validates both ids with a clear message
        self.spool_dir = Path(self.spool_dir)
        if isinstance(self.sensors, Mapping):
            self.sensors = tuple(SensorConfig(p, port, self.poll_interval_s) for p, port in self.sensors.items())
        self.sensors = tuple(self.sensors)
        seen: set[str] = set()
        for i, s in enumerate(self.sensors):
            where = f"sensors[{i}]"
            if s.protocol not in PROTOCOLS:
                raise ConfigError(f"{where}.protocol = {s.protocol!r}: use one of {', '.join(sorted(PROTOCOLS))}")
            model = PROTOCOLS[s.protocol].SENSOR
            if s.protocol in seen or model in seen:
                raise ConfigError(f"{where}.protocol = {s.protocol!r}: a second {model} sensor; records name the "
                                  "sensor model only, so a kit has at most one sensor of each model")
            seen.update((s.protocol, model))
            if not s.port:
                raise ConfigError(f"{where}.port is empty: give the serial port, e.g. /dev/serial/by-id/usb-…")
            _positive(f"{where}.interval", s.interval_s, 0.05)
        if self.mqtt_version not in (4, 5):
            raise ConfigError(f"broker.mqtt_version = {self.mqtt_version}: use 5 (MQTT 5) or 4 (MQTT 3.1.1)")
        if self.fsync not in FSYNC_POLICIES:
            raise ConfigError(f"spool.fsync = {self.fsync!r}: use one of {', '.join(FSYNC_POLICIES)}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"broker.port = {self.port}: use a port from 1 to 65535")
        if not 1 <= self.batch_records <= contract.LIMITS.max_records:
            raise ConfigError(f"publish.batch_records = {self.batch_records}: use 1 to {contract.LIMITS.max_records}")
        for name, value, low in (("publish.batch_ms", self.batch_ms, 1),
                                 ("publish.resend_after_s", self.resend_after_s, 0.1),
                                 ("publish.status_every_s", self.status_every_s, 0.1),
                                 ("publish.max_in_flight", self.max_in_flight, 1),
                                 ("broker.keepalive_s", self.keepalive_s, 5),
                                 ("broker.reconnect_min_s", self.reconnect_min_s, 1),
                                 ("broker.reconnect_max_s", self.reconnect_max_s, self.reconnect_min_s),
                                 ("spool.max_bytes", self.spool_max_bytes, 4096),
                                 ("reader.reopen_max_s", self.reopen_max_s, 0.1),
                                 ("reader.silence_s", self.silence_s, 1),
                                 ("time.clock_jump_s", self.clock_jump_s, 0.1)):
            _positive(name, value, low)
        if self.password is not None and self.password_file is not None:
            raise ConfigError("broker.password and broker.password_file are both set: keep one (the file is safer)")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ConfigError("broker.password_file is set without broker.username: set the user name too")

    @property
    def sensor_configs(self) -> tuple[SensorConfig, ...]:
        return tuple(self.sensors)  # type: ignore[arg-type]  # normalised in __post_init__

    def resolved_password(self) -> str | None:
        """The MQTT password: given directly, or read from ``password_file`` (first line)."""
        if self.password_file is None:
            return self.password
        try:
            text = Path(self.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"broker.password_file = {str(self.password_file)!r}: cannot read it ({exc.strerror}); "
                              "create it (chmod 600, owned by the bridge's user) or fix the path") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"broker.password_file = {str(self.password_file)!r} is empty: put the password "
                              "on its first line")
        return lines[0]

    def check_files(self) -> None:
        """Refuse to start when a TLS file named in the settings is missing."""
        for name, path in (("broker.ca_file", self.ca_file), ("broker.cert_file", self.cert_file),
                           ("broker.key_file", self.key_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} = {str(path)!r}: no such file; copy it there or fix the path")
        self.resolved_password()


def _positive(name: str, value: Any, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
        raise ConfigError(f"{name} = {value!r}: use a number >= {low}")


# ---------------------------------------------------------------- the TOML file
# section -> {key in the file: (attribute of BridgeSettings, accepted types)}
_NUM = (int, float)
SCHEMA: dict[str, dict[str, tuple[str, tuple[type, ...]]]] = {
    "": {"device": ("device", (str,)), "campaign": ("campaign", (str,))},
    "broker": {"host": ("host", (str,)), "port": ("port", (int,)), "username": ("username", (str,)),
               "password_file": ("password_file", (str,)), "tls": ("tls", (bool,)), "ca_file": ("ca_file", (str,)),
               "cert_file": ("cert_file", (str,)), "key_file": ("key_file", (str,)),
               "mqtt_version": ("mqtt_version", (str, int)), "keepalive_s": ("keepalive_s", (int,)),
               "reconnect_min_s": ("reconnect_min_s", (int,)), "reconnect_max_s": ("reconnect_max_s", (int,))},
    "spool": {"dir": ("spool_dir", (str,)), "max_bytes": ("spool_max_bytes", (int,)), "fsync": ("fsync", (str,))},
    "publish": {"batch_records": ("batch_records", (int,)), "batch_ms": ("batch_ms", (int,)),
                "resend_after_s": ("resend_after_s", _NUM), "status_every_s": ("status_every_s", _NUM),
                "max_in_flight": ("max_in_flight", (int,))},
    "time": {"prefer_gps": ("prefer_gps_time", (bool,)), "clock_jump_s": ("clock_jump_s", _NUM),
             "assume_synced": ("assume_clock_synced", (bool,))},
    "reader": {"reopen_max_s": ("reopen_max_s", _NUM), "silence_s": ("silence_s", _NUM)},
}
SENSOR_KEYS = {"protocol": (str,), "port": (str,), "interval": _NUM}
PATH_OPTIONS = {"spool_dir", "password_file", "ca_file", "cert_file", "key_file"}
REQUIRED = (("", "device"), ("", "campaign"), ("spool", "dir"))


def _typed(where: str, value: Any, types: tuple[type, ...]) -> Any:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true or false"}[t]
                            for t in types)
        raise ConfigError(f"{where} = {value!r}: must be {names}")
    return value


def _mqtt_version(value: str | int) -> int:
    key = str(value)
    if key not in MQTT_VERSIONS:
        raise ConfigError(f"broker.mqtt_version = {value!r}: use 5 or \"3.1.1\"")
    return MQTT_VERSIONS[key]


def parse_config(doc: Mapping[str, Any], base_dir: Path = Path(".")) -> BridgeSettings:
    """Turn a parsed TOML document into :class:`BridgeSettings`.

    Relative paths (spool dir, password and TLS files) are taken relative to
    ``base_dir``, the folder of the configuration file.
    """
    kwargs: dict[str, Any] = {}
    allowed_sections = sorted(k for k in SCHEMA if k) + ["sensors"]
    for key, value in doc.items():
        if key == "sensors" or isinstance(value, dict):
            if key not in SCHEMA and key != "sensors":
                raise ConfigError(f"[{key}]: unknown section; use {', '.join(f'[{s}]' for s in allowed_sections)}")
            continue
        if key not in SCHEMA[""]:
            raise ConfigError(f"{key}: unknown option; top-level options are device, campaign, and the sections "
                              f"{', '.join(allowed_sections)}")
        attr, types = SCHEMA[""][key]
        kwargs[attr] = _typed(key, value, types)
    for section, keys in SCHEMA.items():
        if not section:
            continue
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section} must be a table ([{section}])")
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(f"{section}.{key}: unknown option; [{section}] takes {', '.join(keys)}")
            attr, types = keys[key]
            value = _typed(f"{section}.{key}", value, types)
            if attr in PATH_OPTIONS:
                value = (base_dir / Path(value).expanduser()) if not Path(value).expanduser().is_absolute() \
                    else Path(value).expanduser()
            elif attr == "mqtt_version":
                value = _mqtt_version(value)
            kwargs[attr] = value
    for section, key in REQUIRED:
        attr = (SCHEMA[section][key])[0]
        if attr not in kwargs:
            raise ConfigError(f"{(section + '.') if section else ''}{key} is missing: it is required")
    kwargs["sensors"] = _sensors(doc.get("sensors", []))
    try:
        return BridgeSettings(**kwargs)
    except contract.ContractError as exc:
        raise ConfigError(str(exc)) from None


def _sensors(items: Any) -> tuple[SensorConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError("sensors must be an array of tables: one [[sensors]] block per sensor")
    out = []
    for i, item in enumerate(items):
        where = f"sensors[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table with protocol, port and optionally interval")
        for key in item:
            if key not in SENSOR_KEYS:
                raise ConfigError(f"{where}.{key}: unknown option; a sensor takes {', '.join(SENSOR_KEYS)}")
        for key in ("protocol", "port"):
            if key not in item:
                raise ConfigError(f"{where}.{key} is missing: it is required")
        values = {k: _typed(f"{where}.{k}", v, SENSOR_KEYS[k]) for k, v in item.items()}
        out.append(SensorConfig(values["protocol"], values["port"], float(values.get("interval", 1.0))))
    return tuple(out)


def load_config(path: Path | str) -> BridgeSettings:
    """Read and check a kit's TOML configuration file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {str(p)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return parse_config(doc, p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
