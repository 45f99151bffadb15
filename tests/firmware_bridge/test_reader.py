"""Serial readers on real pseudo-terminals, and the replay path that shares their code."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from datetime import UTC
from pathlib import Path

import pytest
import serial
from harness import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.capture import CaptureError, ReplayPort, ReplaySource, capture, read_capture
from firmware_bridge.reader import EndOfReplay, SerialReader
from firmware_bridge.sensors.base import Observation
from firmware_bridge.sensors.nmea import nmea0183
from firmware_bridge.sensors.plantower import pms5003, pms5003st
from firmware_bridge.setaside import reason_class
from firmware_bridge.sensors.winsen import mhz19
from firmware_bridge.simulator import ROUTES, Kit
from firmware_bridge.simulator.pty import PtyPort


def _frame(i: int) -> bytes:
    """A PMS5003 data frame whose every field (pm2_5 among them) is ``i``."""
    return pms5003.encode(dict.fromkeys(pms5003.FIELDS, float(i)))


class FakeClock:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def port(tmp_path: Path):  # noqa: ANN201
    p = PtyPort(tmp_path / "sensor")
    yield p
    p.close()


def _reader(protocol: str, link: Path, got: list[Observation], **kw: object) -> SerialReader:
    return SerialReader(protocol, str(link), got.append, **kw).start()  # type: ignore[arg-type]


def test_the_reader_resyncs_past_garbage_and_counts_what_it_skipped(port: PtyPort) -> None:
    got: list[Observation] = []
    r = _reader("pms5003", port.link, got)
    try:
        wait_until(r.opened.is_set, what="the reader to open the pty")
        torn = b"\x42\x4d\x00\x1c" + b"\x01" * 10  # a start and a length, then rubbish
        port.write(b"\x00\x42\x4d\xff garbage" + _frame(1) + torn + _frame(2) + _frame(3)[:20])
        port.write(_frame(3)[20:] + b"\xff" * 5000 + _frame(4))
        wait_until(lambda: len(got) == 4, what="four frames decoded")
        assert [o.values["pm2_5"] for o in got] == [1.0, 2.0, 3.0, 4.0]
        assert r.stats.resync_bytes > 5000 and r.stats.frame_errors == 0
    finally:
        r.stop()


def test_a_replugged_adapter_is_reopened_by_its_link(port: PtyPort) -> None:
    got: list[Observation] = []
    r = _reader("pms5003", port.link, got, max_backoff_s=0.2)
    try:
        wait_until(r.opened.is_set, what="the reader to open the pty")
        port.write(_frame(1))
        wait_until(lambda: len(got) == 1, what="the first frame")
        port.unplug()
        wait_until(lambda: r.stats.reopens >= 2, what="the reader to retry the vanished port")
        assert not r.opened.is_set() and "sensor" in (r.last_error or "")
        port.plug()
        wait_until(lambda: r.stats.opens == 2, timeout=5, what="the reader to reopen the new pty")
        port.write(_frame(2))
        wait_until(lambda: len(got) == 2, what="a frame from the new pty")
        assert r.last_error is None
    finally:
        r.stop()


def test_a_silent_polled_sensor_is_counted_unanswered_and_its_port_reopened(port: PtyPort) -> None:
    r = _reader("mhz19", port.link, [], interval_s=0.05, silence_s=1.2)  # a read waits up to 0.5 s: 3 polls an open
    try:
        wait_until(lambda: r.stats.silences >= 1 and r.stats.opens >= 2 and r.stats.unanswered >= 2,
                   what="the silent port to be reopened")
        sent = port.read(65536)
        assert sent.count(mhz19.READ_COMMAND) >= 4
        assert sent.count(mhz19.ABC_OFF) >= 2, "the init commands are sent again after a reopen"
    finally:
        r.stop()


def test_nmea_lines_cut_by_a_timeout_are_joined(port: PtyPort) -> None:
    got: list[Observation] = []
    r = _reader("nmea", port.link, got)
    try:
        wait_until(r.opened.is_set, what="the reader to open the pty")
        from datetime import datetime

        rmc = nmea0183.encode_rmc(datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC), 48.8, 2.1, speed=1.0)
        port.write(rmc[:30])
        wait_until(lambda: r.stats.bytes_read >= 30, what="the first half")
        threading.Event().wait(0.3)  # longer than the read timeout: the line arrives in two reads
        port.write(rmc[30:])
        wait_until(lambda: len(got) == 1, what="the joined sentence")
        assert got[0].time == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    finally:
        r.stop()


# ---------------------------------------------------------------- capture and replay
def test_a_capture_replays_into_the_same_observations(tmp_path: Path) -> None:
    kit = Kit("cap", next(iter(ROUTES)), 4, tmp_path / "dev", rate_hz=10.0).start()
    live: dict[str, list[Observation]] = {}
    try:
        for proto in ("pms5003", "mhz19", "nmea"):
            live[proto] = []
            summary = capture(proto, kit.paths[proto], tmp_path / f"{proto}.jsonl", seconds=0.8, interval_s=0.1,
                              on_observation=live[proto].append)
            assert summary.observations == len(live[proto]) >= 3 and summary.bytes_in > 0
    finally:
        kit.stop()
    for proto, observations in live.items():
        replayed: list[Observation] = []
        r = SerialReader(proto, "replay", replayed.append, opener=ReplaySource(tmp_path / f"{proto}.jsonl", speed=0))
        r.start()
        assert r.finished.wait(5), "the replay ends by itself"
        assert replayed == observations, f"{proto}: replay differs from the live reading"
    head, *events = (json.loads(line) for line in (tmp_path / "mhz19.jsonl").read_text().splitlines())
    assert head["qsec_capture"] == 1 and head["protocol"] == "mhz19" and head["serial"]["baudrate"] == 9600
    assert {e["d"] for e in events} == {"open", "in", "out"}
    assert any(bytes.fromhex(e["hex"]) == mhz19.READ_COMMAND for e in events if e["d"] == "out")
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(events))


def _write_capture(path: Path, protocol: str, events: list[dict]) -> Path:
    head = {"qsec_capture": 1, "protocol": protocol, "port": "/dev/x", "serial": {}, "started": 0}
    path.write_text("\n".join(json.dumps(e) for e in [head, *events]) + "\n")
    return path


def test_a_port_lost_during_the_capture_is_reopened_in_the_replay(tmp_path: Path) -> None:
    cap = _write_capture(tmp_path / "c.jsonl", "pms5003", [
        {"t": 0, "d": "open"}, {"t": 0.1, "d": "in", "hex": _frame(1).hex()},
        {"t": 0.2, "d": "close", "error": "device reports readiness to read but returned no data"},
        {"t": 1.0, "d": "open"}, {"t": 1.1, "d": "in", "hex": _frame(2).hex()}])
    got: list[Observation] = []
    r = SerialReader("pms5003", "replay", got.append, opener=ReplaySource(cap, speed=0), max_backoff_s=0.01)
    r.start()
    assert r.finished.wait(5)
    assert [o.values["pm2_5"] for o in got] == [1.0, 2.0]
    assert r.stats.opens == 2 and r.stats.reopens == 1


def test_a_replay_keeps_the_recorded_pace_divided_by_the_speed() -> None:
    clock = FakeClock()
    events = [(0.0, b"ab"), (1.0, b"cd\n"), (3.0, b"ef")]
    port = ReplayPort(events, None, speed=2.0, timeout=1.0, clock=clock, sleep=clock.sleep)
    assert port.read(2) == b"ab" and clock.now == 100.0
    assert port.in_waiting == 0
    assert port.read(3) == b"cd\n" and clock.now == pytest.approx(100.5)  # recorded at 1.0 s, replayed at 2x
    assert port.read(2) == b"ef" and clock.now == pytest.approx(101.5)
    assert port.write(b"\xff\x01") == 2 and port.written == 2
    with pytest.raises(EndOfReplay):
        port.read(1)


def test_a_replay_read_returns_what_it_has_at_the_timeout() -> None:
    clock = FakeClock()
    port = ReplayPort([(0.0, b"ab"), (5.0, b"cd")], None, speed=1.0, timeout=0.2, clock=clock, sleep=clock.sleep)
    assert port.read(4) == b"ab" and clock.now == pytest.approx(100.2)
    assert port.read(1) == b"" and clock.now == pytest.approx(100.4)


def test_a_lost_segment_ends_like_an_unplugged_adapter() -> None:
    port = ReplayPort([(0.0, b"x")], "gone", speed=0)
    assert port.read(5) == b"x"
    with pytest.raises(serial.SerialException, match="gone"):
        port.read(1)


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=20), st.lists(st.integers(0, 50), min_size=1, max_size=60))
@settings(max_examples=60, deadline=None)
def test_a_replay_gives_back_exactly_the_bytes_recorded(chunks: list[bytes], sizes: list[int]) -> None:
    port = ReplayPort([(i * 0.01, c) for i, c in enumerate(chunks)], None, speed=0)
    out = b""
    try:
        for i in range(10_000):
            size = sizes[i % len(sizes)]
            out += port.read(max(1, port.in_waiting) if size == 0 else size)  # 0: what is waiting, as the reader does
    except EndOfReplay:
        pass
    assert out == b"".join(chunks)


@pytest.mark.parametrize("text, where", [
    ("", "empty"),
    ('{"qsec_capture": 2}\n', ":1:"),
    ('{"qsec_capture": 1, "protocol": "pms9999"}\n', "pms9999"),
    ('{"qsec_capture": 1, "protocol": "nmea"}\n{"t": 0, "d": "in", "hex": "zz"}\n', ":2:"),
    ('{"qsec_capture": 1, "protocol": "nmea"}\n{"t": 0, "d": "sideways"}\n', "sideways"),
], ids=["empty", "wrong-version", "unknown-protocol", "bad-hex", "bad-direction"])
def test_an_unreadable_capture_is_refused_with_the_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(CaptureError, match=where):
        read_capture(path)


# ---------------------------------------------------------------- why frames were set aside
def _st_frame(i: int) -> bytes:
    """A PMS5003ST frame (40 bytes, length 36) whose particle fields are ``i``."""
    values = {**dict.fromkeys(pms5003st.PARTICLES, float(i)), "hcho": 0.01, "temperature": 20.0,
              "relative_humidity": 50.0}
    return pms5003st.encode(values)


def _logged(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "qsec.bridge.reader" and word in r.getMessage()]


def test_frames_of_another_model_are_counted_by_reason_and_logged_once(port: PtyPort,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qsec.bridge.reader")
    r = _reader("pms5003", port.link, [])
    try:
        wait_until(r.opened.is_set, what="the reader to open the pty")
        port.write(b"".join(_st_frame(i) for i in range(1, 13)) + pms5003.encode_ack(pms5003.CMD_MODE, 1))
        wait_until(lambda: r.stats.frame_errors == 12 and r.stats.ignored == 1, what="twelve frame errors")
    finally:
        r.stop()
    counts = r.set_aside.counts()
    (cls, n), = counts["frame_error"].items()  # twelve frames, one reason class
    assert n == 12 and "PMS5003ST" in cls and "(pms5003st)" in cls
    assert r.set_aside.last()["frame_error"].startswith("PMS5003 protocol got a frame of length 36 (40 bytes)")
    assert counts["ignored"] == {"PMS5003 acknowledgement of active mode, not a measurement": 1}
    errors = _logged(caplog, "set aside (frame error)")
    assert len(errors) == 1 and "choose the protocol of the sensor's model (pms5003st)" in errors[0]
    assert [rec.levelname for rec in caplog.records if "(frame error)" in rec.getMessage()] == ["WARNING"]
    assert len(_logged(caplog, "set aside (not a measurement)")) == 1


def test_a_reason_is_logged_again_after_the_interval_with_the_count_since(port: PtyPort,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qsec.bridge.reader")
    clock = FakeClock()  # moves only when told: no silence, and the log interval passes at once
    r = _reader("pms5003", port.link, [], clock=clock)
    try:
        wait_until(r.opened.is_set, what="the reader to open the pty")
        bad = _frame(3)[:-1] + bytes([_frame(3)[-1] ^ 1])  # a checksum error is passed over by the framer
        port.write(_st_frame(1) + _st_frame(2))
        wait_until(lambda: r.stats.frame_errors == 2, what="two frame errors")
        clock.now += 299.0
        port.write(_st_frame(3))
        wait_until(lambda: r.stats.frame_errors == 3, what="a third within the interval")
        clock.now += 2.0
        port.write(_st_frame(4) + bad + _frame(5))
        wait_until(lambda: r.stats.observations == 1, what="the good frame")
    finally:
        r.stop()
    errors = _logged(caplog, "set aside (frame error)")
    assert len(errors) == 2 and errors[1].endswith("(3 such frames in the last 301 s, 4 in all)")
    assert r.stats.resync_bytes == len(bad)


@pytest.mark.parametrize(("text", "cls"), [
    ("PMS5003 checksum 1a2b does not match 1a2c", "PMS5003 checksum # does not match #"),
    ("SPS30 refused to read measured values: state 0x43: command not allowed in current state",
     "SPS30 refused to read measured values: state #: command not allowed in current state"),
    ("not a kit line: 'ESP-ROM:esp32s3-20210327'", "not a kit line: '…'"),
    ("MH-Z19 reads 60548 ppm, above its largest range (10000 ppm): not a measurement",
     "MH-Z19 reads # ppm, above its largest range (# ppm): not a measurement"),
], ids=["hex", "state byte", "quoted text", "model names keep their digits"])
def test_a_reason_class_is_the_message_without_its_figures(text: str, cls: str) -> None:
    assert reason_class(text) == cls
