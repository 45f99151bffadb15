"""NMEA 0183 GGA, RMC, GLL, VTG, GSA, GSV and ZDA: sentences as receivers send them, checksums per NMEA 0183 v4.11.

The tables at the end hold sentences captured from receivers, each with its source: Knio/pynmea2 (test/test_types.py,
test/test_pynmea.py, test/test_file.py, test/test_proprietary.py), vyuke/gps_NEMA_mirror
(gps_NMEA_mirror/gps_NMEA_mirror.ino: a GPS + BeiDou receiver), elmot/rp2040-data-logger (src/data_processing.c:
a u-blox receiver) and hb9kns/gpsnmea (scratch.md: a receiver without a fix).
"""

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
    pytest.param("$GPRMC,172142.00,A,4805.30256324,N,11629.09084774,W,0.D", FrameError,
                 id="an RMC without checksum is dropped: it is compulsory there (pynmea2's corrupt message)"),
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
@given(st.sampled_from(["GPVTG", "GNGSA", "GPGSV", "QZVTG", "GNZDA"]), fields_text)
def test_random_vtg_gsa_and_gsv_fields_with_a_valid_checksum_raise_only_sensor_errors(address: str,
                                                                                      fields: str) -> None:
    try:
        obs = nmea0183.decode(nmea0183.sentence(f"{address},{fields}"))
    except SensorError:
        return
    assert obs.values and all(math.isfinite(v) and v >= 0 for v in obs.values.values())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["GPGGA", "GNRMC", "GPRMC", "GNGGA", "GPGLL", "GQGLL"]), fields_text)
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


# ------------------------------------------------------------------ sentences captured from receivers
# Knio/pynmea2 test/test_types.py and test/test_pynmea.py
PYNMEA2_GGA = "$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D"
PYNMEA2_RMC = "$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E*68"
PYNMEA2_GLL = "$GPGLL,4916.45,N,12311.12,W,225444,A,*1D"
PYNMEA2_GSA = "$GPGSA,A,3,02,,,07,,09,24,26,,,,,1.6,1.6,1.0*3D"
PYNMEA2_VTG = "$GPVTG,108.53,T,,M,0.04,N,0.07,K,A*31"
PYNMEA2_VTG_SHORT = "$GPVTG,,T,,M,0.00,N*1B"
PYNMEA2_GSV = ["$GPGSV,3,1,09,12,28,063,33,14,63,000,32,22,68,150,26,25,40,109,23*7B",
               "$GPGSV,3,2,09,31,42,227,19,32,17,313,20,01,09,316,,11,08,292,*73",
               "$GPGSV,3,3,09,24,03,046,*47"]
PYNMEA2_ZDA = "$GPZDA,010203.05,06,07,2008,-08,30"  # no checksum
# vyuke/gps_NEMA_mirror gps_NMEA_mirror/gps_NMEA_mirror.ino (GN, GP and BD talkers)
MIRROR_GGA = "$GNGGA,072353.000,3032.2149,N,10412.5192,E,1,09,1.3,509.4,M,0.0,M,,*74"
MIRROR_GLL = "$GNGLL,3032.2149,N,10412.5192,E,072353.000,A,A*42"
MIRROR_RMC = "$GNRMC,072353.000,A,3032.2149,N,10412.5192,E,7.74,50.28,290918,,,A*45"
MIRROR_VTG = "$GNVTG,50.28,T,,M,7.74,N,14.34,K,A*2A"
MIRROR_BDGSA = "$BDGSA,A,3,06,13,08,,,,,,,,,,3.2,1.3,2.9*27"
MIRROR_GPGSV = "$GPGSV,3,1,12,02,,,32,05,,,25,13,58,050,32,15,78,225,36*79"
MIRROR_BDGSV = "$BDGSV,2,2,07,13,85,133,38,19,,,26,20,,,41*51"
MIRROR_ZDA = "$GNZDA,072353.000,29,09,2018,00,00*41"
MIRROR_TXT = "$GPTXT,01,01,01,ANTENNA OK*35"
# elmot/rp2040-data-logger src/data_processing.c (u-blox, near Turku)
UBLOX_GGA = "$GPGGA,201229.00,6026.86958,N,02217.14119,E,1,08,0.96,66.1,M,18.7,M,,*6C"
UBLOX_RMC = "$GPRMC,201230.00,A,6026.86949,N,02217.14087,E,0.689,,150722,,,A*72"
CHENGDU = (30 + 32.2149 / 60, 104 + 12.5192 / 60)
VANCOUVER = (49 + 16.45 / 60, -(123 + 11.12 / 60))

CAPTURED_CASES = [
    pytest.param(PYNMEA2_GGA, {"latitude": -19.484083333333334, "longitude": 24.1751, "fix_quality": 1,
                               "satellites": 4, "hdop": 2.6, "altitude": 100.0}, None, id="pynmea2's GGA"),
    pytest.param(PYNMEA2_RMC, {"latitude": VANCOUVER[0], "longitude": VANCOUVER[1], "speed": 0.5 * KNOT,
                               "course": 54.7}, datetime(1994, 11, 19, 22, 54, 46, tzinfo=UTC), id="pynmea2's RMC"),
    pytest.param(PYNMEA2_GLL, {"latitude": VANCOUVER[0], "longitude": VANCOUVER[1]}, None,
                 id="pynmea2's GLL, with an empty mode field"),
    pytest.param(PYNMEA2_GSA, {"fix_type": 3, "pdop": 1.6, "hdop": 1.6, "vdop": 1.0}, None, id="pynmea2's GSA"),
    pytest.param(PYNMEA2_VTG, {"speed": 0.07 / 3.6, "course": 108.53}, None, id="pynmea2's VTG"),
    pytest.param(PYNMEA2_VTG_SHORT, {"speed": 0.0}, None, id="pynmea2's VTG that stops after the knots"),
    pytest.param(PYNMEA2_GSV[0], {"satellites_in_view": 9}, None, id="pynmea2's first GSV of a group"),
    pytest.param(MIRROR_GGA, {"latitude": CHENGDU[0], "longitude": CHENGDU[1], "fix_quality": 1, "satellites": 9,
                              "hdop": 1.3, "altitude": 509.4}, None, id="a GN talker GGA with milliseconds"),
    pytest.param(MIRROR_GLL, {"latitude": CHENGDU[0], "longitude": CHENGDU[1]}, None, id="a GN talker GLL, mode A"),
    pytest.param(MIRROR_RMC, {"latitude": CHENGDU[0], "longitude": CHENGDU[1], "speed": 7.74 * KNOT,
                              "course": 50.28}, datetime(2018, 9, 29, 7, 23, 53, tzinfo=UTC), id="a GN talker RMC"),
    pytest.param(MIRROR_VTG, {"speed": 14.34 / 3.6, "course": 50.28}, None, id="a GN talker VTG"),
    pytest.param(MIRROR_BDGSA, {"fix_type": 3, "pdop": 3.2, "hdop": 1.3, "vdop": 2.9}, None, id="a BeiDou GSA"),
    pytest.param(MIRROR_GPGSV, {"satellites_in_view": 12}, None,
                 id="a GSV with satellites of unknown elevation and azimuth"),
    pytest.param(UBLOX_GGA, {"latitude": 60 + 26.86958 / 60, "longitude": 22 + 17.14119 / 60, "fix_quality": 1,
                             "satellites": 8, "hdop": 0.96, "altitude": 66.1}, None, id="a u-blox GGA"),
    pytest.param(UBLOX_RMC, {"latitude": 60 + 26.86949 / 60, "longitude": 22 + 17.14087 / 60, "speed": 0.689 * KNOT},
                 datetime(2022, 7, 15, 20, 12, 30, tzinfo=UTC), id="a u-blox RMC without course"),
]


@pytest.mark.parametrize(("line", "values", "when"), CAPTURED_CASES)
def test_captured_sentences_decode(line: str, values: dict[str, float], when: datetime | None) -> None:
    obs = nmea0183.decode(line)
    assert obs.values == pytest.approx(values, abs=1e-9)
    assert set(obs.values) == set(values)
    assert obs.time == when


CAPTURED_REFUSALS = [
    # a receiver without a fix: pynmea2 test/test_file.py and test_missing_latlon, hb9kns/gpsnmea scratch.md
    pytest.param("$GPRMC,181031.576,V,3926.276,N,07739.361,W,99.7,18.30,250915,,E*79", NoFix,
                 id="an RMC with status V is no fix even with a position"),
    pytest.param("$GPGGA,181032.576,3926.276,N,07739.361,W,0,00,,,M,,M,,*5F", NoFix,
                 id="a GGA with quality 0 is no fix even with a position"),
    pytest.param("$GPGLL,3926.276,N,07739.361,W,181033.576,V*3E", NoFix, id="a GLL with status V is no fix"),
    pytest.param("$GPGGA,201716.684,,,,,0,00,,,M,0.0,M,,0000*5F", NoFix, id="pynmea2's GGA without position"),
    pytest.param("$GPGGA,210210.000,5347.5779,N,00754.1630,E,0,00,0.0,52.8,M,0.0,M,,0000*59", NoFix,
                 id="a GGA of a receiver that lost its fix"),
    pytest.param("$GPRMC,210209.000,V,5347.5779,N,00754.1630,E,000.0,000.0,300717,,,N*77", NoFix,
                 id="an RMC with status V and mode N"),
    # what a u-blox NEO-6M sends at cold start, before it knows the time
    pytest.param("$GPRMC,,V,,,,,,,,,,N*53", NoFix, id="cold start RMC"),
    pytest.param("$GPVTG,,,,,,,,,N*30", NoFix, id="cold start VTG without unit letters"),
    pytest.param("$GPGGA,,,,,,0,00,99.99,,,,,,*48", NoFix, id="cold start GGA"),
    pytest.param("$GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99*30", NoFix, id="cold start GSA"),
    pytest.param("$GPGLL,,,,,,V,N*64", NoFix, id="cold start GLL"),
    pytest.param(PYNMEA2_GSV[1], Unsupported, id="the second GSV of a group repeats the count"),
    pytest.param(PYNMEA2_GSV[2], Unsupported, id="the last GSV of a group, with an empty SNR"),
    pytest.param(MIRROR_BDGSV, Unsupported, id="the second BeiDou GSV"),
    pytest.param(PYNMEA2_ZDA, Unsupported, id="ZDA is checked and carries no quantity"),
    pytest.param(MIRROR_ZDA, Unsupported, id="a GN talker ZDA"),
    pytest.param(MIRROR_TXT, Unsupported, id="a TXT sentence is not decoded"),
    pytest.param("$GNTXT,01,01,02,ROM BASE 2.01 (75331) Oct 29 2013 13:28:17*44", Unsupported,
                 id="pynmea2's TXT"),
    pytest.param("$PUBX,00,074440.00,4703.74203,N,00736.82976,E,576.991,D3,2.0,2.0,0.091,0.00,-0.032,,0.76,1.05,"
                 "0.65,14,0,0*70", Unsupported, id="pynmea2's u-blox PUBX,00 is proprietary"),
    pytest.param("$PGRME,15.0,M,45.0,M,25.0,M*1C", Unsupported, id="pynmea2's Garmin PGRME is proprietary"),
    pytest.param("$PGRME,15.0,M,45.0,M,25.0,M*1D", FrameError, id="a proprietary sentence with a bad checksum"),
]


@pytest.mark.parametrize(("line", "error"), CAPTURED_REFUSALS)
def test_captured_sentences_without_a_fix_or_quantity(line: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        nmea0183.decode(line)


CAPTURED = [PYNMEA2_GGA, PYNMEA2_RMC, PYNMEA2_GLL, PYNMEA2_GSA, PYNMEA2_VTG, PYNMEA2_VTG_SHORT, *PYNMEA2_GSV,
            MIRROR_GGA, MIRROR_GLL, MIRROR_RMC, MIRROR_VTG, MIRROR_BDGSA, MIRROR_GPGSV, MIRROR_BDGSV, MIRROR_ZDA,
            MIRROR_TXT, UBLOX_GGA, UBLOX_RMC]
CAPTURED += [p.values[0] for p in CAPTURED_REFUSALS if "*" in p.values[0] and p.values[1] is not FrameError]


@pytest.mark.parametrize("line", CAPTURED)
def test_captured_sentences_carry_their_correct_checksum(line: str) -> None:
    body, _, tail = line[1:].partition("*")
    assert f"{nmea0183.checksum(body):02X}" == tail.upper()


def test_parse_zda_gives_the_utc_time_and_the_local_zone() -> None:
    zda = nmea0183.parse_zda(PYNMEA2_ZDA[1:].split(",")[1:])
    assert zda == nmea0183.Zda(datetime(2008, 7, 6, 1, 2, 3, 50000, tzinfo=UTC), -(8 * 60 + 30))
    assert nmea0183.parse_zda(nmea0183.fields_of(MIRROR_ZDA)[1:]).zone_minutes == 0
    with pytest.raises(NoFix):
        nmea0183.decode(nmea0183.sentence("GPZDA,,,,,,"))
    with pytest.raises(FrameError, match="not a UTC time"):
        nmea0183.decode(nmea0183.sentence("GPZDA,010203.05,30,02,2008,00,00"))
    with pytest.raises(FrameError, match="13 h 59"):
        nmea0183.decode(nmea0183.sentence("GPZDA,010203.05,06,07,2008,14,00"))


# ------------------------------------------------------------------ checksum, talkers, modes, line ends
STANDARD_CASES = [
    pytest.param(CLASSIC_GGA[:-3], {"latitude": 48.1173, "longitude": 11 + 31 / 60, "fix_quality": 1,
                                    "satellites": 8, "hdop": 0.9, "altitude": 545.4},
                 id="a GGA without checksum is read: the checksum is optional there"),
    pytest.param(CLASSIC_GGA.encode() + b"\n", {"latitude": 48.1173, "longitude": 11 + 31 / 60, "fix_quality": 1,
                                                "satellites": 8, "hdop": 0.9, "altitude": 545.4},
                 id="a line ending with a lone LF"),
    pytest.param(nmea0183.sentence("GQGLL,3541.10000,N,13945.80000,E,101530.00,A,D"),
                 {"latitude": 35 + 41.1 / 60, "longitude": 139 + 45.8 / 60}, id="the v4.11 QZSS talker GQ"),
    pytest.param(nmea0183.sentence("GIVTG,90.0,T,,M,1.0,N,1.852,K,A"), {"speed": 1.852 / 3.6, "course": 90.0},
                 id="the v4.11 NavIC talker GI"),
    pytest.param(nmea0183.sentence("GBGSA,A,2,06,13,08,,,,,,,,,,3.2,1.3,,4"), {"fix_type": 2, "pdop": 3.2, "hdop": 1.3},
                 id="a v4.11 BeiDou GSA with a 2D fix and its system ID"),
    pytest.param(nmea0183.sentence("GNRMC,101530.00,A,4848.21600,N,00207.50000,E,0.512,104.3,231126,,,E,V"),
                 {"latitude": 48.8036, "longitude": 2 + 7.5 / 60, "speed": 0.512 * KNOT, "course": 104.3},
                 id="a v4.10 RMC in dead reckoning (mode E) with its navigational status"),
]


@pytest.mark.parametrize(("line", "values"), MORE_CASES + STANDARD_CASES)
def test_decode_vtg_gsa_qzss_and_what_the_standard_allows(line: str | bytes, values: dict[str, float]) -> None:
    obs = nmea0183.decode(line)
    assert obs.values == pytest.approx(values, abs=1e-9)
    assert set(obs.values) == set(values)


STANDARD_REFUSALS = [
    pytest.param(nmea0183.sentence("GPGGA,101530.00,,,,,,,,,,,,,"), NoFix, id="a GGA without fix quality"),
    pytest.param(nmea0183.sentence("GPRMC,101530.00,,,,,,,,231126,,,"), NoFix, id="an RMC without status"),
    pytest.param(nmea0183.sentence("GPGSA,A,,,,,,,,,,,,,,,,"), NoFix, id="a GSA without fix type"),
    pytest.param(nmea0183.sentence("GPGLL,4848.21600,N,00207.50000,E,101530.00,A,N"), NoFix, id="a GLL with mode N"),
    pytest.param(nmea0183.sentence("GPRMC,101530.00,A,4848.21600,N,00207.50000,E,0.5,,231126,,,X"), FrameError,
                 id="an unknown mode indicator is dropped"),
    pytest.param(nmea0183.sentence("GPRMC,101530.00,X,4848.21600,N,00207.50000,E,0.5,,231126,,,A"), FrameError,
                 id="an unknown status is dropped"),
    pytest.param(nmea0183.sentence("GPGLL,4848.21600,N,00207.50000,E"), FrameError,
                 id="a GLL without time and status is dropped"),
    pytest.param(nmea0183.sentence("GPGLL,4848.21600,N,00207.50000,E,251530.00,A,A"), FrameError,
                 id="a GLL at 25 h is dropped"),
    pytest.param(b"\x9a\xe3$GPGGA,123519,4807.038,N,0113\xfc\x00\r\n", FrameError, id="baud-rate garbage"),
    pytest.param(CLASSIC_GGA[:40], FrameError, id="a line torn before its checksum is dropped by its field count"),
]


@pytest.mark.parametrize(("line", "error"), STANDARD_REFUSALS)
def test_decode_refuses_what_the_standard_refuses(line: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        nmea0183.decode(line)


def test_fields_of_still_requires_a_checksum() -> None:
    with pytest.raises(FrameError, match="without checksum"):
        nmea0183.fields_of(CLASSIC_GGA[:-3])


def test_a_capture_of_mixed_sentences_gives_positions_waits_and_skips() -> None:
    lines = [PYNMEA2_GSV[0], "$GPGGA,,,,,,0,00,99.99,,,,,,*48", MIRROR_TXT, UBLOX_GGA, UBLOX_RMC, PYNMEA2_GSV[1]]
    stream = b"\x00\xfe" + b"".join(line.encode() + b"\r\n" for line in lines)
    outcomes, rest = [], stream
    while True:
        frame, rest = nmea0183.find_frame(rest)
        if frame is None:
            break
        try:
            outcomes.append(sorted(nmea0183.decode(frame).values))
        except (NoFix, Unsupported) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [["satellites_in_view"], "NoFix", "Unsupported",
                        ["altitude", "fix_quality", "hdop", "latitude", "longitude", "satellites"],
                        ["latitude", "longitude", "speed"], "Unsupported"]
