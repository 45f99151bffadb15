"""The protocol registry, and what every protocol module promises the bridge's reader."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge import sensors
from firmware_bridge.sensors import PROTOCOLS, SensorError, Unsupported
from qsec import quantities

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "pms5003": ("plantower-pms5003", "stream"),
    "mhz19": ("winsen-mhz19", "polled"),
    "nmea": ("nmea-gps", "line"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_protocol_states_its_sensor_kind_and_9600_8n1(name: str) -> None:
    proto = PROTOCOLS[name]
    assert (proto.SENSOR, proto.KIND) == EXPECTED[name]
    assert sensors.serial_settings(name) == {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}
    assert callable(proto.decode) and callable(proto.find_frame)


def test_the_polled_protocol_gives_its_read_command_and_answer_size() -> None:
    mhz19 = PROTOCOLS["mhz19"]
    assert mhz19.READ_COMMAND == bytes.fromhex("ff0186000000000079")  # type: ignore[attr-defined]
    assert mhz19.RESPONSE_SIZE == 9  # type: ignore[attr-defined]


def test_an_unknown_protocol_is_refused_with_the_known_names() -> None:
    with pytest.raises(Unsupported, match="pms5003"):
        sensors.get("sds011")


@pytest.mark.parametrize("name", sorted(EXPECTED))
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=120))
def test_every_decoder_and_framer_is_total_on_random_bytes(name: str, data: bytes) -> None:
    proto = PROTOCOLS[name]
    try:
        obs = proto.decode(data)
    except SensorError:
        pass
    else:
        assert all(q in quantities.QUANTITIES for q in obs.values)
    frame, rest = proto.find_frame(data)
    assert len(rest) + (len(frame) if frame else 0) <= len(data)


ALLOWED_THIRD_PARTY = {"serial"}
ALLOWED_QSEC = {"qsec.contract", "qsec.quantities"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "firmware_bridge" / "sensors").rglob("*.py"))
                         + sorted((ROOT / "firmware_bridge" / "simulator").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_sensor_and_simulator_modules_import_only_what_a_raspberry_pi_zero_has(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__" or top in ALLOWED_THIRD_PARTY:
            continue
        if top == "firmware_bridge" or name in ALLOWED_QSEC:
            continue
        pytest.fail(f"{path.relative_to(ROOT)} imports {name}")
