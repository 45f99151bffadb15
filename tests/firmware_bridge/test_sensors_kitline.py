"""The kit line protocol (docs/line-protocol.md): $QSEC sentences and JSON lines from Arduino and ESP32 kits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors.base import FrameError, SensorError, Unsupported, WarmingUp
from firmware_bridge.sensors.line import kitline
from firmware_bridge.sensors.nmea.nmea0183 import sentence
from qsec import quantities

# The examples of docs/line-protocol.md, as the sketch there prints them.
SGP40 = "$QSEC,1,sensirion-sgp40,voc_index=112*78"
BME280 = "$QSEC,1,bosch-bme280,temperature=21.43,relative_humidity=48.2,pressure=1009.8*33"
SCD41_JSON = '{"s":"sensirion-scd41","v":{"co2":612,"temperature":22.1,"relative_humidity":45.3}}'


def csv(body: str) -> str:
    return sentence(body).decode().strip()


def json_sum(text: str) -> str:
    return sentence(text).decode().strip()[1:]  # the same XOR, over the JSON text


DECODE_CASES = [
    pytest.param(SGP40, "sensirion-sgp40", {"voc_index": 112.0}, False, id="an SGP40 VOC index stays an index"),
    pytest.param(BME280 + "\r\n", "bosch-bme280", {"temperature": 21.43, "relative_humidity": 48.2,
                                                  "pressure": 1009.8}, False, id="a BME280 line with CR LF"),
    pytest.param(SCD41_JSON, "sensirion-scd41", {"co2": 612.0, "temperature": 22.1, "relative_humidity": 45.3},
                 False, id="an SCD41 JSON line"),
    pytest.param(json_sum(SCD41_JSON), "sensirion-scd41", {"co2": 612.0, "temperature": 22.1,
                                                           "relative_humidity": 45.3}, False,
                 id="a JSON line with its optional checksum"),
    pytest.param(csv("QSEC,1,sensirion-scd41,co2=1850,w=1"), "sensirion-scd41", {"co2": 1850.0}, True,
                 id="w=1 marks a reading taken while warming up"),
    pytest.param('{"s":"sensirion-scd41","v":{"co2":1850},"w":1}', "sensirion-scd41", {"co2": 1850.0}, True,
                 id='"w": 1 marks a JSON reading taken while warming up'),
    pytest.param(b"\x00\xfe" + SGP40.encode(), "sensirion-sgp40", {"voc_index": 112.0}, False,
                 id="bytes torn before the dollar are skipped"),
    pytest.param(csv("QSEC,1,bosch-bme280,temperature=-1.5e1"), "bosch-bme280", {"temperature": -15.0}, False,
                 id="a signed number with an exponent"),
]


@pytest.mark.parametrize(("line", "sensor", "values", "warming"), DECODE_CASES)
def test_decode(line: str | bytes, sensor: str, values: dict[str, float], warming: bool) -> None:
    obs = kitline.decode(line)
    assert (obs.sensor, obs.values, obs.warming_up) == (sensor, values, warming)


REFUSE_CASES = [
    pytest.param(csv("QSEC,1,sensirion-sgp40,voc_index=0"), WarmingUp, "45 samples",
                 id="a VOC index of 0 is the algorithm warming up"),
    pytest.param('{"s":"sensirion-sgp41","v":{"voc_index":0,"nox_index":0}}', WarmingUp, "index",
                 id="a NOx index of 0 too"),
    pytest.param(csv("QSEC,1,sensirion-sgp40,voc=112"), FrameError, "allowed: pm1, pm2_5",
                 id="an unknown quantity names the allowed ones"),
    pytest.param(csv("QSEC,1,sensirion-sgp40,tvoc_ppb=3"), FrameError, "voc_index",
                 id="a misspelt quantity is refused, never guessed"),
    pytest.param(SGP40[:-2] + "79", FrameError, "checksum", id="a wrong checksum"),
    pytest.param(SGP40[:-3], FrameError, "without checksum", id="a sentence without checksum"),
    pytest.param(json_sum(SCD41_JSON)[:-1] + "0", FrameError, "checksum", id="a wrong JSON checksum"),
    pytest.param(csv("QSEC,2,sensirion-sgp40,voc_index=1"), FrameError, "version 1", id="another format version"),
    pytest.param(csv("QSEC,1,Sensirion SGP40,voc_index=1"), FrameError, "must match", id="a sensor id with capitals"),
    pytest.param(csv("QSEC,1,sensirion-sgp40"), FrameError, "fields", id="a line without values"),
    pytest.param(csv("QSEC,1,bosch-bme280,temperature=nan"), FrameError, "finite", id="nan printed by Arduino"),
    pytest.param(csv("QSEC,1,bosch-bme280,temperature=ovf"), FrameError, "finite", id="ovf printed by Arduino"),
    pytest.param(csv("QSEC,1,bosch-bme280,pressure=1e999"), FrameError, "finite", id="a number beyond a float"),
    pytest.param(csv("QSEC,1,bosch-bme280,pressure"), FrameError, "quantity=value", id="a field without a value"),
    pytest.param(csv("QSEC,1,bosch-bme280,pressure=1,pressure=2"), FrameError, "twice", id="a repeated quantity"),
    pytest.param(csv("QSEC,1,bosch-bme280,pressure=1,w=yes"), FrameError, "0 or 1", id="a flag that is not 0 or 1"),
    pytest.param('{"s":"bosch-bme280","v":{"pressure":1,"pressure":2}}', FrameError, "twice",
                 id="a repeated JSON key"),
    pytest.param('{"s":"bosch-bme280","v":{"pressure":NaN}}', FrameError, "finite", id="NaN in JSON"),
    pytest.param('{"s":"bosch-bme280","v":{"pressure":true}}', FrameError, "finite", id="a JSON boolean"),
    pytest.param('{"s":"bosch-bme280","v":{"pressure":"1009"}}', FrameError, "finite", id="a JSON string"),
    pytest.param('{"s":"bosch-bme280","v":{}}', FrameError, "no value", id="an empty JSON object of values"),
    pytest.param('{"s":"bosch-bme280","values":{"pressure":1}}', FrameError, "allowed: s", id="an unknown JSON key"),
    pytest.param('{"s":"bosch-bme280","v":[1]}', FrameError, '"v"', id="values that are not an object"),
    pytest.param('{"s":"bosch-bme280","v":{"pressure":1}', FrameError, "JSON", id="a truncated JSON line"),
    pytest.param("[1, 2]", Unsupported, "not a kit line", id="a line of other text is ignored"),
    pytest.param("ESP-ROM:esp32s3-20210327", Unsupported, "not a kit line", id="a boot message is ignored"),
    pytest.param(b"\xff\xfe{", Unsupported, "not a kit line", id="bytes that are not text are ignored"),
    pytest.param(b'{"s":"bosch-bme280","v":{"pres\xffsure":1}}', FrameError, "unknown",
                 id="a byte torn inside a JSON line is refused"),
    pytest.param("{" + " " * 600 + "}", FrameError, "limit", id="a line beyond 512 characters"),
    pytest.param(3.5, FrameError, "bytes or str", id="a number instead of a line"),
]


@pytest.mark.parametrize(("line", "error", "match"), REFUSE_CASES)
def test_decode_refuses(line: str | bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        kitline.decode(line)


@pytest.mark.parametrize("line", [SGP40, BME280])
def test_the_documented_examples_carry_their_correct_checksum(line: str) -> None:
    assert csv(line[1:line.index("*")]) == line


@pytest.mark.parametrize(("buffer", "line", "rest"), [
    pytest.param(SGP40.encode() + b"\r\n{\"s\"", SGP40.encode() + b"\r\n", b'{"s"', id="one line at a time"),
    pytest.param(b'{"s":"x"', None, b'{"s":"x"', id="a partial line waits for the rest"),
    pytest.param(b"x" * 600, None, b"", id="a partial line beyond the limit is dropped"),
])
def test_find_frame(buffer: bytes, line: bytes | None, rest: bytes) -> None:
    assert kitline.find_frame(buffer) == (line, rest)


def test_encode_refuses_an_unknown_form_and_an_empty_reading() -> None:
    with pytest.raises(ValueError, match="csv or json"):
        kitline.encode("bosch-bme280", {"pressure": 1009.8}, form="xml")
    with pytest.raises(ValueError, match="at least one"):
        kitline.encode("bosch-bme280", {})


# ------------------------------------------------------------------ properties
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=120), st.text(max_size=120).map(lambda t: "{" + t),
                 st.text(max_size=120).map(lambda t: "$QSEC," + t)))
def test_random_lines_raise_only_sensor_errors(line: bytes | str) -> None:
    try:
        obs = kitline.decode(line)
    except SensorError:
        return
    assert all(name in quantities.QUANTITIES and math.isfinite(v) for name, v in obs.values.items())


names = st.sampled_from(sorted(set(quantities.QUANTITIES) - {"voc_index", "nox_index"}))
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
sensors = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(sensors, st.dictionaries(names, finite, min_size=1, max_size=6), st.booleans(),
       st.sampled_from(["csv", "json"]))
def test_decode_encode_round_trips(sensor: str, values: dict[str, float], warming: bool, form: str) -> None:
    obs = kitline.decode(kitline.encode(sensor, values, warming_up=warming, form=form))
    assert (obs.sensor, obs.values, obs.warming_up) == (sensor, values, warming)
