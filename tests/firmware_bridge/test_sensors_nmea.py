"""NMEA 0183 GGA, RMC, VTG, GSA and GSV: sentences as receivers send them, checksums per NMEA 0183 v4.11."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from firmware_bridge.sensors.base import FrameError, NoFix, SensorError, Unsupported
from firmware_bridge.sensors.nmea import nmea0183
from qsec import quantities

UTC = timezone.utc
KNOT = 1852 / 3600

# The classic GGA of every NMEA tutorial (Munich, 1994), and its RMC.
CLASSIC_GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
CLASSIC_RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
# A multi-constellation receiver walking down the avenue de Paris in Versailles.
VERSAILLES_GGA = "$GNGGA,101530.00,4848.21600,N,00207.50000,E,1,09,0.9,131.5,M,46.0,M,,*75"
VERSAILLES_RMC = "$GNRMC,101530.00,A,4848.21600,N,00207.50000,E,0.512,104.3,231126,,,A*46"
# Southern and western hemispheres, DGPS fix, below sea level; an RMC at the last centisecond of 1999.
SYDNEY_WEST_GGA = "$GPGGA,000000.00,3352.12800,S,15112.54000,W,2,07,1.4,-12.0,M,22.0,M,,*77"
LAST_RMC_OF_1999 = "$GPRMC,235959.99,A,3352.12800,S,15112.54000,W,0.000,,311299,,,D*71"
# What a u-blox receiver sends during a cold start.
NO_FIX_GGA = "$GPGGA,101530.00,,,,,0,00,99.99,,,,,,*60"
NO_FIX_RMC = "$GPRMC,101530.00,V,,,,,,,231126,,,N*7E"

VERSAILLES = (48 + 48.216 / 60, 2 + 7.5 / 60)

DECODE_CASES = [
    pytest.param(CLASSIC_GGA, {"latitude": 48.1173, "longitude": 11 + 31 / 60, "fix_quality": 1, "satellites": 8,
                               "hdop": 0.9, "altitude": 545.4}, None, id="the classic GGA gives position and quality"),
    pytest.param(CLASSIC_RMC, {"latitude": 48.1173, "longitude": 11 + 31 / 60, "speed": 22.4 * KNOT, "course": 84.4},
                 datetime(1994, 3, 23, 12, 35, 19, tzinfo=UTC), id="the classic RMC gives speed in m/s and the time"),
    pytest.param(VERSAILLES_GGA, {"latitude": VERSAILLES[0], "longitude": VERSAILLES[1], "fix_quality": 1,
                                  "satellites": 9, "hdop": 0.9, "altitude": 131.5}, None,
                 id="a GN talker GGA in Versailles is decoded"),
    pytest.param(VERSAILLES_RMC.encode() + b"\r\n", {"latitude": VERSAILLES[0], "longitude": VERSAILLES[1],
                                                    "speed": 0.512 * KNOT, "course": 104.3},
                 datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC), id="a line of bytes with CR LF is decoded"),
    pytest.param(SYDNEY_WEST_GGA, {"latitude": -(33 + 52.128 / 60), "longitude": -(151 + 12.54 / 60),
                                   "fix_quality": 2, "satellites": 7, "hdop": 1.4, "altitude": -12.0}, None,
                 id="south and west are negative and altitude may be below sea level"),
    pytest.param(LAST_RMC_OF_1999, {"latitude": -(33 + 52.128 / 60), "longitude": -(151 + 12.54 / 60), "speed": 0.0},
                 datetime(1999, 12, 31, 23, 59, 59, 990000, tzinfo=UTC),
                 id="a standing receiver has no course and year 99 is 1999"),
    pytest.param("\x00\x17" + CLASSIC_GGA, None, None, id="bytes torn before the dollar are ignored"),
]


@pytest.mark.parametrize(("line", "values", "when"), DECODE_CASES)
def test_decode(line: str | bytes, values: dict[str, float] | None, when: datetime | None) -> None:
    obs = nmea0183.decode(line)
    assert obs.sensor == "nmea-gps"
    if values is not None:
        assert obs.values == pytest.approx(values, abs=1e-9)
        assert set(obs.values) == set(values)
    assert obs.time == when


REFUSE_CASES = [
    pytest.param(NO_FIX_GGA, NoFix, id="GGA with fix quality 0 means no fix yet"),
    pytest.param(NO_FIX_RMC, NoFix, id="RMC with status V means no fix yet"),
    pytest.param(nmea0183.sentence(VERSAILLES_RMC[1:-4] + "N"), NoFix, id="RMC with mode N means no fix yet"),
    pytest.param(CLASSIC_GGA[:-2] + "48", FrameError, id="a wrong checksum is dropped"),
    pytest.param(CLASSIC_GGA[:-3], FrameError, id="a sentence without checksum is dropped"),
    pytest.param(CLASSIC_GGA[:-2] + "G7", FrameError, id="a checksum that is not hexadecimal is dropped"),
    pytest.param(CLASSIC_GGA.replace("4807.038", "4807.039"), FrameError, id="a digit changed in transit is dropped"),
    pytest.param(CLASSIC_GGA[1:], FrameError, id="a sentence without its dollar is dropped"),
    pytest.param("", FrameError, id="an empty line is dropped"),
    pytest.param(b"$GPGGA,\xff\xfe*00\r\n", FrameError, id="non-ASCII bytes are dropped"),
    pytest.param(nmea0183.sentence("GPGSV,3,2,11,14,25,170,00,16,57,208,39,18,67,296,40,19,40,246,00"), Unsupported,
                 id="a second GSV sentence repeats the count of the first and is skipped"),
    pytest.param("$PUBX,00,101530.00*37", Unsupported, id="a proprietary u-blox sentence is not decoded"),
    pytest.param("$XXGGA,101530.00,4848.21600,N,00207.50000,E,1,09,0.9,131.5,M,46.0,M,,*7C", Unsupported,
                 id="an unknown talker is not decoded"),
    pytest.param("$GPGGA,101530.00,4860.50000,N,00207.50000,E,1,09,0.9,131.5,M,46.0,M,,*61", FrameError,
                 id="sixty minutes of latitude is dropped"),
    pytest.param("$GPRMC,101530.00,A,4848.21600,N,00207.50000,E,0.5,,310226,,,A*72", FrameError,
                 id="the 31st of February is dropped"),
    pytest.param("$GPRMC,235960.00,A,4848.21600,N,00207.50000,E,0.5,,311216,,,A*7D", FrameError,
                 id="the leap second of 2016 cannot be a datetime and is dropped"),
    pytest.param(42, FrameError, id="a number instead of a line is dropped"),
]


@pytest.mark.parametrize(("line", "error"), REFUSE_CASES)
def test_decode_refuses(line: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        nmea0183.decode(line)


@pytest.mark.parametrize("line", [CLASSIC_GGA, CLASSIC_RMC, VERSAILLES_GGA, NO_FIX_GGA, NO_FIX_RMC,
                                  SYDNEY_WEST_GGA, LAST_RMC_OF_1999])
def test_every_sentence_in_these_tables_carries_its_correct_checksum(line: str) -> None:
    body, _, tail = line[1:].partition("*")
    assert f"{nmea0183.checksum(body):02X}" == tail


def test_a_lower_case_checksum_is_accepted() -> None:
    assert nmea0183.decode(CLASSIC_RMC[:-2] + "6a").values["course"] == 84.4


@pytest.mark.parametrize(("buffer", "line", "rest"), [
    pytest.param(b"\x01\x02" + CLASSIC_GGA.encode() + b"\r\n$GP", CLASSIC_GGA.encode() + b"\r\n", b"$GP",
                 id="garbage before a sentence is skipped and the next start kept"),
    pytest.param(b"$GPGGA,1235", None, b"$GPGGA,1235", id="half a sentence waits for the rest"),
    pytest.param(b"$GPGGA,12" + CLASSIC_RMC.encode() + b"\n", CLASSIC_RMC.encode() + b"\n", b"",
                 id="a torn sentence before a whole one is skipped"),
    pytest.param(b"no dollar\r\n", None, b"", id="a line without a dollar leaves nothing"),
])
def test_find_frame(buffer: bytes, line: bytes | None, rest: bytes) -> None:
    assert nmea0183.find_frame(buffer) == (line, rest)


def test_encoders_write_no_fix_sentences_that_decode_as_no_fix() -> None:
    when = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
    with pytest.raises(NoFix):
        nmea0183.decode(nmea0183.encode_gga(when, None, None, fix_quality=0, satellites=0, hdop=None, altitude=None))
    with pytest.raises(NoFix):
        nmea0183.decode(nmea0183.encode_rmc(when, None, None, speed=None, valid=False))


def test_encoders_refuse_naive_times_and_unknown_talkers() -> None:
    with pytest.raises(ValueError):
        nmea0183.encode_rmc(datetime(2026, 1, 1), 48.8, 2.1)
    with pytest.raises(ValueError):
        nmea0183.encode_gga(datetime(2026, 1, 1, tzinfo=UTC), 48.8, 2.1, talker="XX")


def test_an_encoded_sentence_fits_the_82_character_limit() -> None:
    line = nmea0183.encode_rmc(datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC), -89.99999, -179.99999,
                               speed=45.0, course=359.9)
    assert len(line) <= 82


# ------------------------------------------------------------------ VTG, GSA, GSV, QZSS
# The classic VTG and GSA of "NMEA Revealed" (gpsd), and a u-blox receiver's sentences while standing still.
CLASSIC_VTG = "$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48"
CLASSIC_GSA = "$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39"
CLASSIC_GSV = "$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74"
NO_FIX_VTG = "$GPVTG,,T,,M,,N,,K,N*2C"
NO_FIX_GSA = "$GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99*30"

MORE_CASES = [
    pytest.param(CLASSIC_VTG, {"speed": 10.2 / 3.6, "course": 54.7}, id="the classic VTG gives km/h as m/s"),
    pytest.param(nmea0183.sentence("GNVTG,,T,,M,0.012,N,,K,A"), {"speed": 0.012 * KNOT},
                 id="a VTG without km/h falls back to knots and a standing receiver has no course"),
    pytest.param(nmea0183.sentence("GPVTG,054.7,034.4,005.5,010.2"), {"speed": 10.2 / 3.6, "course": 54.7},
                 id="the pre-2.3 VTG without unit letters is read"),
    pytest.param(nmea0183.sentence("GPGSA,A,3,04,05,,,,,,,,,,,2.5,,2.1"), {"fix_type": 3, "pdop": 2.5, "vdop": 2.1},
                 id="a GSA without HDOP still gives its fix type and the other DOPs"),
    pytest.param(CLASSIC_GSA, {"hdop": 1.3, "pdop": 2.5, "vdop": 2.1, "fix_type": 3},
                 id="the classic GSA gives its fix type and DOPs"),
    pytest.param(nmea0183.sentence("GNGSA,A,3,05,13,15,18,,,,,,,,,1.62,0.91,1.34,1"),
                 {"hdop": 0.91, "pdop": 1.62, "vdop": 1.34, "fix_type": 3},
                 id="a v4.11 GSA with a system ID gives its fix type and DOPs"),
    pytest.param(nmea0183.sentence("QZGGA,101530.00,3541.10000,N,13945.80000,E,1,06,1.1,40.0,M,36.7,M,,"),
                 {"latitude": 35 + 41.1 / 60, "longitude": 139 + 45.8 / 60, "fix_quality": 1, "satellites": 6,
                  "hdop": 1.1, "altitude": 40.0}, id="a QZSS talker is decoded"),
]


@pytest.mark.parametrize(("line", "values"), MORE_CASES)
def test_decode_vtg_gsa_and_qzss(line: str | bytes, values: dict[str, float]) -> None:
    obs = nmea0183.decode(line)
    assert obs.values == pytest.approx(values, abs=1e-9)
    assert set(obs.values) == set(values)


MORE_REFUSALS = [
    pytest.param(NO_FIX_VTG, NoFix, id="VTG with mode N means no fix yet"),
    pytest.param(nmea0183.sentence("GPVTG,,T,,M,,N,,K"), NoFix, id="VTG without any speed means no fix"),
    pytest.param(nmea0183.sentence("GPVTG,054.7,X,034.4,M,005.5,N,010.2,K,A"), FrameError,
                 id="VTG with a wrong unit letter is dropped"),
    pytest.param(nmea0183.sentence("GPVTG,361.0,T,,M,1.0,N,1.9,K,A"), FrameError,
                 id="VTG with a course above 360 is dropped"),
    pytest.param(NO_FIX_GSA, NoFix, id="GSA fix type 1 means no fix yet"),
    pytest.param(nmea0183.sentence("GPGSA,X,3,04,,,,,,,,,,,,2.5,1.3,2.1"), FrameError, id="GSA mode X is dropped"),
    pytest.param(nmea0183.sentence("GPGSA,A,4,04,,,,,,,,,,,,2.5,1.3,2.1"), FrameError, id="GSA fix type 4 is dropped"),
    pytest.param(nmea0183.sentence("GPGSA,A,3,04"), FrameError, id="a truncated GSA is dropped"),
    pytest.param(nmea0183.sentence("GPGSV,1,2,01,03,03,111,00"), FrameError,
                 id="GSV sentence 2 of a group of 1 is dropped"),
    pytest.param(nmea0183.sentence("GPGSV,1,1,01,03,95,111,00"), FrameError,
                 id="GSV elevation above 90 is dropped"),
    pytest.param(nmea0183.sentence("GPGSV,1,1,01,03,03"), FrameError, id="GSV with a torn satellite is dropped"),
]


@pytest.mark.parametrize(("line", "error"), MORE_REFUSALS)
def test_decode_refuses_more(line: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        nmea0183.decode(line)


@pytest.mark.parametrize("line", [CLASSIC_VTG, CLASSIC_GSA, CLASSIC_GSV, NO_FIX_VTG, NO_FIX_GSA])
def test_the_new_table_sentences_carry_their_correct_checksum(line: str) -> None:
    body, _, tail = line[1:].partition("*")
    assert f"{nmea0183.checksum(body):02X}" == tail


def test_parse_gsa_gives_fix_type_satellites_and_every_dop() -> None:
    gsa = nmea0183.parse_gsa(nmea0183.fields_of(CLASSIC_GSA)[1:])
    assert gsa == nmea0183.Gsa("A", 3, (4, 5, 9, 12, 24), 2.5, 1.3, 2.1, None)


def test_parse_gsv_gives_the_group_and_its_satellites() -> None:
    gsv = nmea0183.parse_gsv(nmea0183.fields_of(CLASSIC_GSV)[1:])
    assert (gsv.total, gsv.number, gsv.in_view) == (3, 1, 11)
    assert gsv.satellites == ((3, 3, 111, 0), (4, 15, 270, 0), (6, 1, 10, 0), (13, 6, 292, 0))


def test_a_gsv_with_a_signal_id_and_empty_snr_gives_the_satellites_in_view() -> None:
    line = nmea0183.sentence("GAGSV,1,1,02,07,45,120,,12,10,300,31,7")
    assert nmea0183.parse_gsv(nmea0183.fields_of(line)[1:]).satellites == ((7, 45, 120, None), (12, 10, 300, 31))
    assert nmea0183.decode(line).values == {"satellites_in_view": 2.0}
    assert nmea0183.decode(CLASSIC_GSV).values == {"satellites_in_view": 11.0}


def test_gsa_keeps_pdop_and_vdop_only_once_they_are_quantities() -> None:
    values = nmea0183.decode(CLASSIC_GSA).values
    assert ("pdop" in values) == ("pdop" in quantities.QUANTITIES)
    assert ("vdop" in values) == ("vdop" in quantities.QUANTITIES)


def test_encoded_vtg_gsa_and_gsv_decode_to_what_was_encoded() -> None:
    assert nmea0183.decode(nmea0183.encode_vtg(1.4, 90.0, talker="QZ")).values == pytest.approx(
        {"speed": 1.4, "course": 90.0}, abs=0.0005)
    with pytest.raises(NoFix):
        nmea0183.decode(nmea0183.encode_vtg(None, None, valid=False))
    assert nmea0183.decode(nmea0183.encode_gsa(3, [4, 5, 9], hdop=0.8)).values["hdop"] == 0.8
    sentences = nmea0183.encode_gsv([(n, 10 + n, 20 * n, 30) for n in range(1, 7)])
    parsed = [nmea0183.parse_gsv(nmea0183.fields_of(s)[1:]) for s in sentences]
    assert [(g.total, g.number, g.in_view, len(g.satellites)) for g in parsed] == [(2, 1, 6, 4), (2, 2, 6, 2)]
    assert nmea0183.decode(sentences[0]).values == {"satellites_in_view": 6.0}


# ------------------------------------------------------------------ properties
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_random_bytes_raise_only_documented_sensor_errors(data: bytes) -> None:
    try:
        nmea0183.decode(data)
    except SensorError:
        pass


fields_text = st.text(alphabet=st.sampled_from("0123456789.,-NSEWAVM "), max_size=90)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["GPVTG", "GNGSA", "GPGSV", "QZVTG"]), fields_text)
def test_random_vtg_gsa_and_gsv_fields_with_a_valid_checksum_raise_only_sensor_errors(address: str,
                                                                                      fields: str) -> None:
    try:
        obs = nmea0183.decode(nmea0183.sentence(f"{address},{fields}"))
    except SensorError:
        return
    assert obs.values and all(math.isfinite(v) and v >= 0 for v in obs.values.values())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["GPGGA", "GNRMC", "GPRMC", "GNGGA"]), fields_text)
def test_random_fields_with_a_valid_checksum_raise_only_documented_sensor_errors(address: str, fields: str) -> None:
    line = nmea0183.sentence(f"{address},{fields}")
    try:
        obs = nmea0183.decode(line)
    except SensorError:
        return
    assert all(math.isfinite(v) for v in obs.values.values())
    assert -90 <= obs.values["latitude"] <= 90 and -180 <= obs.values["longitude"] <= 180


times = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2079, 12, 31, 23, 59, 59),
                     timezones=st.just(UTC))
latitudes = st.floats(min_value=-90, max_value=90)
longitudes = st.floats(min_value=-180, max_value=180)
RESOLUTION = 1e-5 / 60 / 2 + 1e-12  # [°] half a unit of the fifth decimal of minutes


@settings(max_examples=200, deadline=None)
@given(times, latitudes, longitudes, st.integers(1, 8), st.integers(0, 99), st.floats(0, 99.9),
       st.floats(-400, 8000))
def test_gga_decode_encode_round_trips(when: datetime, lat: float, lon: float, quality: int, sats: int,
                                       hdop: float, altitude: float) -> None:
    obs = nmea0183.decode(nmea0183.encode_gga(when, lat, lon, fix_quality=quality, satellites=sats, hdop=hdop,
                                              altitude=altitude, talker="GN"))
    assert obs.values["latitude"] == pytest.approx(lat, abs=RESOLUTION)
    assert obs.values["longitude"] == pytest.approx(lon, abs=RESOLUTION)
    assert obs.values["fix_quality"] == quality and obs.values["satellites"] == sats
    assert obs.values["hdop"] == pytest.approx(hdop, abs=0.05 + 1e-9)
    assert obs.values["altitude"] == pytest.approx(altitude, abs=0.05 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(times, latitudes, longitudes, st.floats(0, 100), st.one_of(st.none(), st.floats(0, 359.9)))
def test_rmc_decode_encode_round_trips(when: datetime, lat: float, lon: float, speed: float,
                                       course: float | None) -> None:
    obs = nmea0183.decode(nmea0183.encode_rmc(when, lat, lon, speed=speed, course=course))
    assert obs.values["latitude"] == pytest.approx(lat, abs=RESOLUTION)
    assert obs.values["longitude"] == pytest.approx(lon, abs=RESOLUTION)
    assert obs.values["speed"] == pytest.approx(speed, abs=0.0005 * KNOT + 1e-9)
    if course is None:
        assert "course" not in obs.values
    else:
        assert obs.values["course"] == pytest.approx(course, abs=0.05 + 1e-9)
    assert obs.time is not None
    assert timedelta(0) <= when - obs.time < timedelta(milliseconds=10)
