"""The protocol registry, and what every protocol module promises the bridge's reader."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge import sensors
from firmware_bridge.sensors import PROTOCOLS, SensorError, Unsupported
from qsec import contract, quantities

ROOT = Path(__file__).resolve().parents[2]
PMS_FRAME = "424d001c0005000800" "0a0005000800" "0a03a50109003c000600020000" "97000266"

# name: (sensor model id, kind, baud rate); every one is 8 data bits, no parity, 1 stop bit.
EXPECTED = {
    "pms5003": ("plantower-pms5003", "stream", 9600),
    "pms7003": ("plantower-pms7003", "stream", 9600),
    "pmsa003": ("plantower-pmsa003", "stream", 9600),
    "pms5003-passive": ("plantower-pms5003", "polled", 9600),
    "pms5003t": ("plantower-pms5003t", "stream", 9600),
    "pms5003s": ("plantower-pms5003s", "stream", 9600),
    "pms5003st": ("plantower-pms5003st", "stream", 9600),
    "pms3003": ("plantower-pms3003", "stream", 9600),
    "sds011": ("novafitness-sds011", "stream", 9600),
    "sds011-query": ("novafitness-sds011", "polled", 9600),
    "sds021": ("novafitness-sds021", "stream", 9600),
    "sps30": ("sensirion-sps30", "polled", 115200),
    "mhz19": ("winsen-mhz19", "polled", 9600),
    "mhz19-abc": ("winsen-mhz19", "polled", 9600),
    "senseair-s8": ("senseair-s8", "polled", 9600),
    "sensirion-scd30": ("sensirion-scd30", "polled", 19200),
    "nmea": ("nmea-gps", "line", 9600),
    "kitline": ("qsec-kitline", "line", 115200),
}
# What opening the port sends, per the datasheets (hex).
INIT = {
    "pms5003": ["424de400010174", "424de100010171"],
    "pms5003-passive": ["424de400010174", "424de100000170"],
    "pms5003s": ["424de400010174", "424de100010171"],
    "pms3003": [],  # it takes no serial command
    "sds011": ["aab406010100000000000000000000ffff06ab", "aab402010000000000000000000000ffff01ab"],
    "sds011-query": ["aab406010100000000000000000000ffff06ab", "aab402010100000000000000000000ffff02ab"],
    # wake-up (a 0xFF byte, then the command), stop, start in floats: from asleep, idle or measuring
    "sps30": ["ff7e007d3100ee7e", "7e000100fe7e", "7e0000020103f97e"],
    "mhz19": ["ff0179000000000086"],
    "mhz19-abc": ["ff0179a000000000e6"],
    "senseair-s8": [],
    "sensirion-scd30": ["6106003600006064"],
    "nmea": [],
}
READ = {
    "pms5003-passive": "424de200000171",
    "sds011-query": "aab404000000000000000000000000ffff02ab",
    "sps30": "7e000300fc7e",
    "mhz19": "ff0186000000000079",
    "senseair-s8": "fe0400000004e5c6",
    "sensirion-scd30": "6103002800064c60",
}


def test_every_registered_protocol_is_in_this_table() -> None:
    assert set(PROTOCOLS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_protocol_states_its_sensor_kind_and_serial_settings(name: str) -> None:
    proto = PROTOCOLS[name]
    sensor, kind, baud = EXPECTED[name]
    assert (proto.SENSOR, proto.KIND) == (sensor, kind)
    assert sensors.serial_settings(name) == {"baudrate": baud, "bytesize": 8, "parity": "N", "stopbits": 1}
    assert callable(proto.decode) and callable(proto.find_frame)
    assert contract.SENSOR_PATTERN.match(proto.SENSOR)


@pytest.mark.parametrize("name", sorted(INIT))
def test_opening_the_port_sends_the_datasheets_start_up_commands(name: str) -> None:
    assert [c.hex() for c in getattr(PROTOCOLS[name], "INIT_COMMANDS", ())] == INIT[name]


# What is written again when the sensor restarts with the port open (MH-Z19: it boots with ABC on).
REBOOT = {"mhz19": ["ff0179000000000086"], "mhz19-abc": [], "pms5003": [], "sps30": [], "senseair-s8": []}


@pytest.mark.parametrize("name", sorted(REBOOT))
def test_only_the_mhz19_without_abc_has_commands_to_send_again_after_a_restart(name: str) -> None:
    assert [c.hex() for c in getattr(PROTOCOLS[name], "REBOOT_COMMANDS", ())] == REBOOT[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_only_the_senseair_s8_gets_a_wake_up_byte_before_each_command(name: str) -> None:
    wake = getattr(PROTOCOLS[name], "WAKE_BYTES", b"")
    assert wake == (b"\x00" if name == "senseair-s8" else b"")
    assert (getattr(PROTOCOLS[name], "WAKE_GAP_S", 0.0) > 0) == bool(wake)


@pytest.mark.parametrize("name", sorted(READ))
def test_each_polled_protocol_sends_the_datasheets_read_command(name: str) -> None:
    assert PROTOCOLS[name].READ_COMMAND.hex() == READ[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(n for n, (_, kind, _) in EXPECTED.items() if kind == "polled"))
def test_every_polled_protocol_has_a_read_command_its_framer_does_not_take_for_an_answer(name: str) -> None:
    proto = PROTOCOLS[name]
    command = proto.READ_COMMAND  # type: ignore[attr-defined]
    assert command
    assert proto.find_frame(command)[0] is None or name == "sps30"  # SHDLC frames share one flag byte


def test_an_alias_decodes_the_same_frame_under_its_own_model_id() -> None:
    frame = PROTOCOLS["pms5003"].find_frame(bytes.fromhex(PMS_FRAME))[0]
    assert frame is not None
    assert PROTOCOLS["pms7003"].decode(frame).sensor == "plantower-pms7003"
    assert PROTOCOLS["pms7003"].decode(frame).values == PROTOCOLS["pms5003"].decode(frame).values


def test_a_polled_variant_without_a_read_command_is_refused() -> None:
    from firmware_bridge.sensors.plantower import pms5003t

    with pytest.raises(ValueError, match="read command"):
        sensors.variant(pms5003t, kind="polled")


def test_an_unknown_protocol_is_refused_with_the_known_names() -> None:
    with pytest.raises(Unsupported, match="pms5003.*sds011"):
        sensors.get("sds012")


@pytest.mark.parametrize("name", sorted(EXPECTED))
@settings(max_examples=150, deadline=None)
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
