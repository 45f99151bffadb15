"""Record times: GPS discipline, clock steps, the unsynced flag, the GPS week rollover; injected clocks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import wait_until
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.clock import (
    BUILD_DATE, GPS_WEEK_ROLLOVER, ClockSample, TimeKeeper, clock_step, gps_offset_sample, kernel_clock_synchronized,
    unroll_gps_week,
)
from firmware_bridge.reader import SerialReader
from firmware_bridge.sensors.base import Observation
from firmware_bridge.simulator.emulators import EmulatorPort, NmeaEmulator
from firmware_bridge.simulator.pty import PtyPort
from qsec.contract import FLAG_CLOCK_JUMP, FLAG_TIME_FROM_GPS, FLAG_TIME_UNSYNCED

T0 = 1_780_000_000.0  # [s since epoch]


class Clocks:
    """A wall clock and a monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.wall_s = T0
        self.mono_s = 500.0

    def wall(self) -> float:
        return self.wall_s

    def mono(self) -> float:
        return self.mono_s

    def tick(self, seconds: float) -> None:
        self.wall_s += seconds
        self.mono_s += seconds

    def step_wall(self, seconds: float) -> None:
        self.wall_s += seconds


def _keeper(c: Clocks, synced: bool | None = False, **kw: object) -> TimeKeeper:
    return TimeKeeper(wall=c.wall, mono=c.mono, sync_probe=lambda: synced, **kw)  # type: ignore[arg-type]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_a_step_is_the_wall_clock_moving_more_than_the_monotonic_clock() -> None:
    assert clock_step(ClockSample(100.0, 5.0), ClockSample(101.0, 6.0)) == 0.0
    assert clock_step(ClockSample(100.0, 5.0), ClockSample(3700.0, 6.0)) == 3599.0
    assert clock_step(ClockSample(100.0, 5.0), ClockSample(90.0, 6.0)) == -11.0


@given(st.lists(st.floats(0.0, 100.0), max_size=30))
def test_clocks_that_advance_together_never_flag_a_jump(ticks: list[float]) -> None:
    c = Clocks()
    k = _keeper(c, synced=True)
    for dt in ticks:
        c.tick(dt)
        _, flags = k.stamp()
        assert not flags & FLAG_CLOCK_JUMP
    assert k.jumps == 0


def test_an_ntp_step_is_flagged_once_and_records_keep_the_new_time() -> None:
    c = Clocks()
    k = _keeper(c, synced=True)
    assert k.stamp() == (int(T0 * 1000), 0)
    c.tick(1.0)
    c.step_wall(-3600.0)  # a Pi booted with a clock one hour ahead; NTP sets it back
    t, flags = k.stamp()
    assert flags == FLAG_CLOCK_JUMP and t == int((T0 + 1 - 3600) * 1000)
    c.tick(1.0)
    assert k.stamp()[1] == 0
    assert k.jumps == 1 and k.last_jump_s == pytest.approx(-3600.0)


def test_the_system_clock_is_flagged_unsynced_until_the_kernel_says_it_is_synchronised() -> None:
    c = Clocks()
    state = {"synced": False}
    k = TimeKeeper(wall=c.wall, mono=c.mono, sync_probe=lambda: state["synced"], probe_every_s=10.0)
    assert k.stamp()[1] == FLAG_TIME_UNSYNCED
    state["synced"] = True
    c.tick(5.0)
    assert k.stamp()[1] == FLAG_TIME_UNSYNCED, "asked again only every probe_every_s"
    c.tick(5.0)
    assert k.stamp()[1] == 0


@pytest.mark.parametrize("probe, assume, flagged", [(None, False, False), (False, True, False), (False, False, True)],
                         ids=["cannot-tell-trusts", "assume-synced", "unsynced"])
def test_what_unsynced_means_when_the_kernel_cannot_tell_or_an_rtc_is_assumed(probe: bool | None, assume: bool,
                                                                             flagged: bool) -> None:
    c = Clocks()
    k = _keeper(c, synced=probe, assume_synced=assume)
    assert bool(k.stamp()[1] & FLAG_TIME_UNSYNCED) is flagged


def test_gps_time_is_used_once_there_is_a_fix_and_a_later_ntp_step_does_not_move_it() -> None:
    c = Clocks()
    c.step_wall(-1000.0)  # the system clock is 1000 s slow
    k = _keeper(c)
    k.gps_fix(_utc(T0 + 0.3))  # GPS time, while the system clock says T0 - 1000
    c.tick(2.0)
    t, flags = k.stamp()
    assert flags == FLAG_TIME_FROM_GPS and t == int((T0 + 2.3) * 1000)
    c.step_wall(1000.0)  # NTP fixes the system clock
    c.tick(1.0)
    t, flags = k.stamp()
    assert flags == FLAG_TIME_FROM_GPS | FLAG_CLOCK_JUMP and t == int((T0 + 3.3) * 1000)
    assert k.status()["source"] == "gps" and k.status()["gps_minus_system_s"] == pytest.approx(0.3)


def test_the_device_time_of_an_rmc_is_the_records_time() -> None:
    c = Clocks()
    k = _keeper(c)
    when = _utc(T0 - 0.25)
    assert k.stamp(when) == (int((T0 - 0.25) * 1000), FLAG_TIME_FROM_GPS)
    assert _keeper(c, prefer_gps=False).stamp(when) == (int(T0 * 1000), FLAG_TIME_UNSYNCED)


def test_the_median_of_recent_gps_samples_ignores_an_outlier() -> None:
    c = Clocks()
    k = _keeper(c, gps_window=5)
    for i in range(4):
        k.gps_fix(_utc(c.wall_s + 0.2))
        c.tick(1.0)
    k.gps_fix(_utc(c.wall_s + 18.2))  # a receiver still without its leap-second correction
    assert k.gps_offset(c.mono_s) == pytest.approx(c.wall_s + 0.2 - c.mono_s)


def test_a_stale_gps_offset_falls_back_to_the_system_clock() -> None:
    c = Clocks()
    k = _keeper(c, synced=True, gps_stale_s=60.0)
    k.gps_fix(_utc(T0 + 5.0))
    c.tick(59.0)
    assert k.stamp()[1] == FLAG_TIME_FROM_GPS
    c.tick(2.0)
    assert k.stamp() == (int((T0 + 61.0) * 1000), 0)
    assert k.status()["source"] == "system"


def test_a_gps_time_must_say_it_is_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        gps_offset_sample(datetime(2026, 1, 1), 0.0)
    assert gps_offset_sample(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1), 10.0) == \
        datetime(2026, 1, 1, tzinfo=UTC).timestamp() - 9.0


def test_the_kernel_is_asked_without_changing_anything() -> None:
    assert kernel_clock_synchronized() in (True, False, None)


# ---------------------------------------------------------------- GPS week-number rollover
WEEKS_1024 = timedelta(weeks=1024)


def test_a_receiver_1024_weeks_behind_is_moved_forward_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    c = Clocks()
    c.step_wall(-1000.0)  # the system clock is a little slow: still a good enough reference
    k = _keeper(c)
    true = _utc(T0 + 0.3)
    with caplog.at_level("WARNING", logger="qsec.bridge.clock"):
        for i in range(3):
            assert k.gps_fix(true - WEEKS_1024 + timedelta(seconds=i)) == true + timedelta(seconds=i)
            c.tick(1.0)
    assert k.gps_week_rollovers == 3 and k.status()["gps_week_rollovers"] == 3
    t, flags = k.stamp()
    assert flags == FLAG_TIME_FROM_GPS and t == int((T0 + 3.3) * 1000), "records get the corrected time"
    warnings = [r.getMessage() for r in caplog.records if "rollover" in r.getMessage()]
    assert len(warnings) == 1 and "1 x 1024 weeks" in warnings[0]


@pytest.mark.parametrize(("wall", "gps", "expected"), [
    pytest.param(T0, _utc(T0), _utc(T0), id="a correct date is left alone"),
    pytest.param(0.0, _utc(T0), _utc(T0), id="a correct date is left alone with a clock at 1970"),
    pytest.param(0.0, _utc(T0) - WEEKS_1024, _utc(T0), id="with a clock at 1970 the build date is the reference"),
    pytest.param(T0, _utc(T0) - 2 * WEEKS_1024, _utc(T0), id="two rollovers behind"),
    pytest.param(T0, _utc(T0) - timedelta(days=18 * 365), _utc(T0) - timedelta(days=18 * 365),
                 id="18 years behind is not a rollover"),
])
def test_the_reference_is_the_later_of_the_system_clock_and_the_build_date(wall: float, gps: datetime,
                                                                           expected: datetime) -> None:
    c = Clocks()
    c.wall_s = wall
    assert _keeper(c).gps_fix(gps) == expected


def test_unroll_gps_week_says_how_many_periods_it_added() -> None:
    reference = datetime(2026, 11, 23, tzinfo=UTC)
    assert unroll_gps_week(datetime(2007, 4, 8, 12, tzinfo=UTC), reference) == \
        (datetime(2026, 11, 22, 12, tzinfo=UTC), 1)
    assert unroll_gps_week(reference, reference) == (reference, 0)
    assert BUILD_DATE < datetime.now(UTC) and GPS_WEEK_ROLLOVER.days == 7168


def test_a_receiver_with_the_rollover_bug_read_through_a_pseudo_terminal_gets_todays_time(tmp_path: Path) -> None:
    true_start = time.time()
    emulator = NmeaEmulator(48.8, 2.1, start=(datetime.fromtimestamp(true_start, UTC) - WEEKS_1024).timestamp())
    port = PtyPort(tmp_path / "gps")
    device = EmulatorPort(port, emulator, tick_s=0.05).start()
    keeper = TimeKeeper(sync_probe=lambda: True)
    stamped: list[tuple[datetime, int]] = []

    def sink(obs: Observation) -> None:  # what the bridge does with each observation
        if obs.time is not None:
            stamped.append((obs.time, keeper.stamp(keeper.gps_fix(obs.time))[0]))

    reader = SerialReader("nmea", str(port.link), sink).start()
    try:
        wait_until(lambda: len(stamped) >= 3, what="RMC sentences")
    finally:
        reader.stop()
        device.stop()
        port.close()
    for reported, t_ms in stamped:
        assert reported.year < 2008, "the emulated receiver reports its rolled-over date"
        assert abs(t_ms / 1000 - true_start) < 60, "the record carries today's time"
    assert keeper.gps_week_rollovers == len(stamped)
