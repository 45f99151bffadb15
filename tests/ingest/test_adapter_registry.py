"""The adapter registry, the identity rule and the properties every decoder keeps."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import adapters
from ingest.adapters._common import normalise_device
from ingest.store import Store
from qsec import contract

SAMPLES = Path(__file__).parent / "samples"
RECEIVED = 1_790_000_000_000  # 2026-09-21 UTC: after every sample's measurement time


def test_the_registry_lists_every_built_in_adapter_by_name() -> None:
    names = set(adapters.adapters())
    assert {"senml", "airrohr", "tasmota", "smartcitizen", "sensor-community", "smartcitizen-csv",
            "qsec-csv"} <= names
    with pytest.raises(KeyError, match="available: .*senml"):
        adapters.get("no-such-format")


def test_a_broken_adapter_warns_and_the_others_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "_BUILTIN", {**adapters._BUILTIN, "broken": "ingest.adapters.no_such_module"})
    monkeypatch.setattr(adapters, "_cache", None)
    with pytest.warns(RuntimeWarning, match="'broken' is unavailable"):
        table = adapters.adapters()
    assert "broken" not in table and "senml" in table


def test_mqtt_messages_go_to_the_adapter_whose_topic_filter_matches() -> None:
    topics = adapters.mqtt_topics()
    assert topics["tasmota"] == ("tele/+/SENSOR",) and topics["senml"] == ("senml/+/+",)
    assert adapters.adapter_for_topic("tele/kitchen/SENSOR").name == "tasmota"  # type: ignore[union-attr]
    assert adapters.adapter_for_topic("device/sck/abc123/readings/raw").name == "smartcitizen"  # type: ignore[union-attr]
    assert adapters.adapter_for_topic("qsec/v1/camp/kit-01/readings") is None
    assert adapters.decode_mqtt("tele/kitchen/STATE", b"{}", received_ms=RECEIVED, campaign="c1") is None
    result = adapters.decode_mqtt("tele/kitchen/SENSOR", (SAMPLES / "tasmota_sds011_bme280.json").read_bytes(),
                                  received_ms=RECEIVED, campaign="c1")
    assert result is not None and {r[1] for r in result.rows} == {"kitchen"}


@pytest.mark.parametrize(("name", "device"), [
    ("esp8266-1234567", "esp8266-1234567"),
    ("Tasmota_A1B2C3", "tasmota_a1b2c3"),
    ("Kit 07 (rue Gambetta)", "kit-07-rue-gambetta"),
    ("  --sensor.community/12345", "sensor-community-12345"),
    ("x" * 80, "x" * 64),
], ids=["airrohr", "tasmota", "spaces", "punctuation", "too-long"])
def test_device_names_from_transports_become_valid_device_ids(name: str, device: str) -> None:
    assert normalise_device(name) == device
    assert contract.ID_PATTERN.match(device)


def test_a_name_with_no_letter_or_digit_is_refused_as_a_bad_topic() -> None:
    with pytest.raises(contract.BadTopic, match="no usable device id"):
        normalise_device("--//--")


def test_a_dead_letter_topic_names_the_adapter_the_campaign_and_the_source() -> None:
    topic = adapters.dead_topic("tasmota", "lyon-2026", "tele/kit:07/SENSOR")
    assert adapters.parse_dead_topic(topic) == ("tasmota", "lyon-2026", "tele/kit:07/SENSOR")
    assert adapters.parse_dead_topic("qsec/v1/lyon-2026/kit-07/readings") is None
    assert adapters.parse_dead_topic("nosuchadapter:lyon-2026:x") is None


MQTT_SAMPLES = [("tasmota", "tele/kit-3/SENSOR", "tasmota_sds011_bme280.json", {}),
                ("senml", "senml/c1/kit-9", "senml_kit_air_quality.json", {}),
                ("smartcitizen", "device/sck/a1b2c3/readings/raw", "smartcitizen_raw.txt", {}),
                ("airrohr", "/api/push/airrohr", "airrohr_push_sds011_bme280.json", {"x_sensor": "esp8266-1234567"}),
                ("sensor-community", "a.csv", "2026-03-01_sds011_sensor_12345.csv", {}),
                ("smartcitizen-csv", "sd.csv", "smartcitizen_sd_card.csv", {"device": "kit-3"}),
                ("qsec-csv", "export.csv", "qsec_export.csv", {})]


@pytest.mark.parametrize(("name", "source", "sample", "extra"), MQTT_SAMPLES, ids=[s[0] for s in MQTT_SAMPLES])
def test_the_same_payload_stored_twice_is_stored_once(tmp_path: Path, name: str, source: str, sample: str,
                                                       extra: dict) -> None:
    adapter = adapters.get(name)
    payload = (SAMPLES / sample).read_bytes()
    first = adapter.decode(payload, source=source, received_ms=RECEIVED, campaign="c1", **extra)
    again = adapter.decode(payload, source=source, received_ms=RECEIVED + 400, campaign="c1", **extra)
    keys = [(d, b, r.seq) for _, d, b, r in first.rows]
    assert keys and keys == [(d, b, r.seq) for _, d, b, r in again.rows]
    store = Store(tmp_path / "qsec.duckdb")
    try:
        written, _ = store.write(first.rows)
        repeat, _ = store.write(again.rows)
    finally:
        store.close()
    assert written.inserted == len(set(keys)) and repeat.inserted == 0


def _payloads() -> st.SearchStrategy[bytes]:
    samples = [(SAMPLES / s[2]).read_bytes() for s in MQTT_SAMPLES]
    mutated = st.tuples(st.sampled_from(samples), st.integers(0, 2000), st.binary(max_size=8)).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + len(t[2]):])
    return st.one_of(st.binary(max_size=300), mutated)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_payloads(), which=st.sampled_from(MQTT_SAMPLES))
def test_decoders_never_raise_and_every_record_they_return_passes_the_contract(payload: bytes, which: tuple) -> None:
    name, source, _, extra = which
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas may warn about odd CSV bytes; the result is what counts
        result = adapters.get(name).decode(payload, source=source, received_ms=RECEIVED, campaign="c1", **extra)
    for campaign, device, boot, rec in result.rows:
        assert contract.check_record(rec.to_json(), now_ms=RECEIVED) == rec
        assert contract.ID_PATTERN.match(device) and contract.BOOT_PATTERN.match(boot)
    for dead in result.refused:
        assert dead.reason in contract.REASONS
        assert adapters.parse_dead_topic(dead.topic) is not None
