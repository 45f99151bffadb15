"""analysis.qc: each check on hand-made records, then every quirk of the generated campaign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from campaign import GPS, MHZ, PMS, make_campaign

from analysis import qc
from analysis.resample import resample
from qsec.contract import BRIDGE_FLAGS, FLAG_CLOCK_JUMP, FLAG_TIME_FROM_GPS

T0 = pd.Timestamp("2026-05-17 12:00:00")


def series(values: list[float], quantity: str = "pm2_5", sensor: str = PMS, device: str = "kit-a",
           step_s: float = 1.0, **columns: object) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"device": device, "time": T0 + pd.to_timedelta(np.arange(n) * step_s, unit="s"),
                         "sensor": sensor, "flags": 0, quantity: values, **columns})


def bits(frame: pd.DataFrame, bit: int, **kwargs: object) -> list[int]:
    flags = qc.flag(frame, **kwargs)  # type: ignore[arg-type]
    return [int(i) for i in np.flatnonzero((flags.to_numpy() & bit) != 0)]


def test_qc_bits_start_at_bit_8_above_the_bridge_bits_and_have_unique_names():
    assert max(BRIDGE_FLAGS) < 1 << 8 <= min(qc.QC_FLAGS)
    assert all(bit & (bit - 1) == 0 for bit in qc.FLAG_NAMES)
    assert len(set(qc.FLAG_NAMES.values())) == len(qc.FLAG_NAMES) == 12
    assert qc.SUSPECT & qc.QC_HUMIDITY == 0 and qc.SUSPECT & qc.QC_SPIKE


def test_flags_keep_the_bridge_bits_and_the_records_index_and_delete_nothing():
    frame = series([5.0] * 10).assign(flags=FLAG_TIME_FROM_GPS)
    frame.index = range(100, 110)
    flags = qc.flag(frame)
    assert flags.index.equals(frame.index) and flags.name == "flags" and flags.dtype == np.int64
    assert ((flags & FLAG_TIME_FROM_GPS) != 0).all()
    assert len(frame) == 10


def test_a_value_outside_its_sensor_models_documented_range_is_flagged():
    pm = series([10.0, 499.0, 501.0, -1.0])
    assert bits(pm, qc.QC_RANGE, checks=["range"]) == [2, 3]
    co2 = pd.concat([series([6000.0, 4000.0], "co2", MHZ), series([6000.0], "co2", "senseair-s8", device="kit-b")],
                    ignore_index=True)
    assert bits(co2, qc.QC_RANGE, checks=["range"]) == [0]  # the S8 falls back to the quantity table's range
    assert bits(co2, qc.QC_RANGE, checks=["range"], ranges={"senseair-s8": {"co2": (0, 5000)}}) == [0, 2]


def test_an_isolated_spike_is_flagged_and_its_neighbours_are_not():
    values = [10.0 + (i % 3) for i in range(61)]
    values[30] = 80.0
    assert bits(series(values), qc.QC_SPIKE, checks=["spike"]) == [30]


def test_a_deviation_smaller_than_the_sensor_accuracy_is_not_a_spike():
    values = [3.0] * 41
    values[20] = 9.0  # the MAD is 0, but 6 µg/m³ is within the PMS5003's ±10 µg/m³
    assert bits(series(values), qc.QC_SPIKE, checks=["spike"]) == []
    assert bits(series(values), qc.QC_SPIKE, checks=["spike"], spike_floor={"pm2_5": 1.0}) == [20]
    with pytest.raises(ValueError, match="spike_window"):
        qc.flag(series(values), spike_window=1)


def test_spike_windows_do_not_reach_across_devices():
    a, b = series([10.0] * 20), series([500.0] * 20, device="kit-b")
    assert bits(pd.concat([a, b], ignore_index=True), qc.QC_SPIKE, checks=["spike"]) == []


def test_a_run_of_n_identical_values_is_stuck_and_a_shorter_one_is_not():
    values = [400.0, 401.0] + [612.0] * 5 + [615.0] + [620.0] * 4
    assert bits(series(values, "co2", MHZ), qc.QC_STUCK, checks=["stuck"], stuck_n=5) == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="stuck_n"):
        qc.flag(series(values), stuck_n=1)


def test_pm_records_are_flagged_from_the_nearest_humidity_of_the_same_kit_within_tolerance():
    pm = series([10.0] * 4, step_s=60.0)
    rh = pd.DataFrame({"device": ["kit-a", "kit-a", "kit-b"], "sensor": "bosch-bme280", "flags": 0,
                       "time": [T0 + pd.Timedelta(seconds=s) for s in (5, 185, 60)],
                       "relative_humidity": [85.0, 50.0, 99.0]})
    frame = pd.concat([pm, rh], ignore_index=True)
    # PM at 0 s and 60 s: nearest RH 85 % at 5 s (60 s within tolerance); at 120 s and 180 s: 50 % at 185 s
    assert bits(frame, qc.QC_HUMIDITY, checks=["humidity"]) == [0, 1]
    assert bits(frame, qc.QC_HUMIDITY, checks=["humidity"], rh_tolerance="10s") == [0]
    assert bits(frame, qc.QC_HUMIDITY, checks=["humidity"], rh_max=90.0) == []


def test_warm_up_counts_from_the_start_written_in_a_qsec_boot_id():
    start_ms = int(T0.tz_localize("UTC").timestamp() * 1000) - 20_000  # the bridge started 20 s before
    boot = f"{start_ms:012x}a1b2c3d4e5f6"
    pm = series([5.0] * 15, boot=boot, seq=range(15))
    assert bits(pm, qc.QC_WARMUP, checks=["warmup"]) == list(range(10))  # 20 s + 10 s < 30 s
    other = series([5.0] * 40, boot="not-a-qsec-boot", seq=range(40))
    assert bits(other, qc.QC_WARMUP, checks=["warmup"]) == list(range(30))
    assert bits(other, qc.QC_WARMUP, checks=["warmup"], warmup_s={PMS: 5.0}) == list(range(5))
    assert qc.warmup_seconds()[MHZ] == 180.0


def test_a_clock_jump_comes_from_the_bridge_bit_or_from_time_going_backwards_within_a_boot():
    frame = series([1.0] * 6, boot=["b1"] * 4 + ["b2"] * 2, seq=[0, 1, 2, 3, 0, 1])
    frame["time"] = T0 + pd.to_timedelta([0, 10, 3, 11, 1, 2], unit="s")  # seq 2 of b1 went back 7 s
    frame.loc[5, "flags"] = FLAG_CLOCK_JUMP
    assert bits(frame, qc.QC_CLOCK_JUMP, checks=["clock"]) == [2, 5]
    frame.loc[2, "time"] = T0 + pd.Timedelta(seconds=9.5)  # within the 1 s tolerance
    assert bits(frame, qc.QC_CLOCK_JUMP, checks=["clock"]) == [5]


def test_an_isolated_gps_outlier_is_flagged_but_not_the_fix_after_it():
    lat = 48.80 + np.arange(8) * 1e-5  # about 1.1 m/s northwards
    lat[4] += 0.05  # 5.5 km off for one fix
    frame = series(list(lat), "latitude", GPS, longitude=2.12)
    assert bits(frame, qc.QC_GPS_JUMP, checks=["gps"]) == [4]


def test_a_gps_step_flags_the_first_fix_after_it_only():
    lat = 48.80 + np.arange(8) * 1e-5
    lat[4:] += 0.05
    frame = series(list(lat), "latitude", GPS, longitude=2.12)
    assert bits(frame, qc.QC_GPS_JUMP, checks=["gps"]) == [4]
    assert bits(frame, qc.QC_GPS_JUMP, checks=["gps"], max_speed=10_000.0) == []


def test_an_unknown_check_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="choose among range"):
        qc.flag(series([1.0]), checks=["magic"])


@pytest.fixture(scope="module")
def campaign_flags():
    made = make_campaign(hours=1.0)
    return made, qc.flag(made.records)


@pytest.mark.parametrize(("event", "bit", "sensor", "expected"), [
    ("spike", qc.QC_SPIKE, "plantower-pms5003t", 1),
    ("stuck", qc.QC_STUCK, MHZ, 600),
    ("humid", qc.QC_HUMIDITY, "plantower-pms5003t", 900),
    ("gps_jump", qc.QC_GPS_JUMP, GPS, 1),
])
def test_each_quirk_of_the_campaign_is_flagged_where_it_was_put_and_nowhere_else(campaign_flags, event, bit,
                                                                                 sensor, expected):
    made, flags = campaign_flags
    records, where = made.records, made.events[event]
    inside = (records["device"] == where.device) & (records["time"] >= where.start) & (records["time"] < where.end)
    hit = (flags & bit) != 0
    assert int((hit & inside & (records["sensor"] == sensor)).sum()) == expected
    assert not (hit & ~inside).any()


def test_the_campaigns_reboot_and_clock_step_are_flagged(campaign_flags):
    made, flags = campaign_flags
    records = made.records
    reboot = made.events["reboot"]
    second_boot = (records["device"] == reboot.device) & (records["time"] >= reboot.end)
    since = (records["time"] - reboot.end).dt.total_seconds()
    warm = ((flags & qc.QC_WARMUP) != 0) & second_boot
    assert since[warm & (records["sensor"] == PMS)].max() < 30 and since[warm & (records["sensor"] == MHZ)].max() < 180
    assert int((warm & (records["sensor"] == MHZ)).sum()) == 180
    step = made.events["clock_jump"]
    jumped = (flags & qc.QC_CLOCK_JUMP) != 0
    assert 80 <= int(jumped.sum()) <= 90
    assert ((records.loc[jumped, "time"] >= step.start) & (records.loc[jumped, "time"] < step.end)).all()


def test_aggregates_leave_out_flagged_values_on_request_and_say_how_many(campaign_flags):
    made, flags = campaign_flags
    records = made.records.assign(flags=flags)
    spike = made.events["spike"]
    minute = pd.Timestamp(spike.start.floor("1min"), tz="UTC")
    kept = resample(records, "1min", exclude=qc.SUSPECT, quantities=["pm2_5"])
    both = resample(records, "1min", quantities=["pm2_5"])
    row = (kept["device"] == spike.device) & (kept["time"] == minute)
    assert kept.loc[row, "excluded"].item() == 1 and both.loc[row, "excluded"].item() == 0
    assert kept.loc[row, "max"].item() < 100 and both.loc[row, "max"].item() == 400.0
    assert qc.counts(flags)["qc_spike"] == 1


def test_every_registered_plantower_protocol_has_its_range_and_response_time() -> None:
    """A Plantower model added to the bridge's registry is range-checked and lag-corrected like the others."""
    from analysis.fusion import SENSOR_LAG_S
    from analysis.qc import PLANTOWER_MODELS, SENSOR_RANGES
    from firmware_bridge.sensors import PROTOCOLS

    registered = {getattr(p, "SENSOR", None) for p in PROTOCOLS.values()}
    plantower = {s for s in registered if isinstance(s, str) and s.startswith("plantower-")}
    assert plantower and plantower <= set(PLANTOWER_MODELS)
    assert all(m in SENSOR_RANGES and m in SENSOR_LAG_S for m in plantower)
