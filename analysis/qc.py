"""Quality-control flags: a bit-field per record, added to the bridge's own flags.

Flags never delete data.  :func:`flag` returns the records' ``flags`` with
the QC bits below OR-ed in; :func:`analysis.resample.resample` leaves out
the values whose flags share a bit with its ``exclude`` mask, and says how
many it left out.

=====  ======  =================  ===================================================
bit    value   name               set when
=====  ======  =================  ===================================================
0      1       clock_jump         (bridge) the system clock stepped since the last record
1      2       warming_up         (bridge) the sensor said, or the reader knew, it was warming up
2      4       time_from_gps      (bridge) the time came from GPS (information, not a fault)
3      8       time_unsynced      (bridge) no NTP or GPS time yet
4      16      replayed           (bridge) replayed from a capture
8      256     qc_range           a value is outside its sensor model's documented range
9      512     qc_spike           a value is far from the rolling median (Hampel filter)
10     1024    qc_stuck           a value repeats ``stuck_n`` times or more in a row
11     2048    qc_humidity        an optical PM record with relative humidity above ``rh_max``
12     4096    qc_warmup          measured within the sensor's warm-up time after its boot
13     8192    qc_clock_jump      bridge bit 0, or the time went backwards within a boot
14     16384   qc_gps_jump        a GPS fix implying an impossible speed
=====  ======  =================  ===================================================

Sources
-------
- Plantower PMS5003 data manual v2.3 (2016): effective range 0-500 µg/m³,
  consistency ±10 µg/m³ at 0-100 µg/m³, 30 s to stable data after wake-up.
- Winsen MH-Z19B manual v1.0: detection range 0-5000 ppm (the default
  variant), accuracy ±(50 ppm + 5 %), 3 min preheat.
- Hampel filter: Pearson, R. K. (2002), "Outliers in process modeling and
  identification", IEEE Trans. Control Syst. Technol. 10(1), 55-63; the
  1.4826 factor makes the MAD a consistent estimate of a normal σ.
- Humidity: Jayaratne et al. (2018), "The influence of humidity on the
  performance of a low-cost air particle mass sensor and the effect of
  atmospheric fog", Atmos. Meas. Tech. 11, 4883-4890: optical sensors read
  high above about 75 % RH.
- Distances: :func:`analysis.positions.haversine_m`, the haversine on a
  sphere of the IUGG mean Earth radius R1 = 6 371 008.8 m (Moritz,
  "Geodetic Reference System 1980", Journal of Geodesy 74, 2000).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.positions import haversine_m
from analysis.resample import time_ints
from qsec import contract
from qsec import quantities as qty

QC_RANGE = 1 << 8
QC_SPIKE = 1 << 9
QC_STUCK = 1 << 10
QC_HUMIDITY = 1 << 11
QC_WARMUP = 1 << 12
QC_CLOCK_JUMP = 1 << 13
QC_GPS_JUMP = 1 << 14
QC_FLAGS = {QC_RANGE: "qc_range", QC_SPIKE: "qc_spike", QC_STUCK: "qc_stuck", QC_HUMIDITY: "qc_humidity",
            QC_WARMUP: "qc_warmup", QC_CLOCK_JUMP: "qc_clock_jump", QC_GPS_JUMP: "qc_gps_jump"}
FLAG_NAMES: dict[int, str] = {**contract.BRIDGE_FLAGS, **QC_FLAGS}
"""Every bit of a record's ``flags`` and its name."""
SUSPECT = (contract.FLAG_CLOCK_JUMP | contract.FLAG_WARMING_UP | QC_RANGE | QC_SPIKE | QC_STUCK | QC_WARMUP
           | QC_CLOCK_JUMP | QC_GPS_JUMP)
"""A usual ``exclude`` mask: faults, but not high humidity (a condition, often studied) nor information bits."""
ALL_CHECKS = ("range", "spike", "stuck", "humidity", "warmup", "clock", "gps")

_PM_MASS = ("pm1", "pm2_5", "pm4", "pm10", "pm1_cf1", "pm2_5_cf1", "pm10_cf1")
PLANTOWER_MODELS = ("plantower-pms5003", "plantower-pms5003t", "plantower-pms5003st", "plantower-pms5003s",
                    "plantower-pms7003", "plantower-pmsa003", "plantower-pms3003")
"""The Plantower sensor ids: one effective range (0-500 µg/m³) and one response time in their manuals."""
SENSOR_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    **{model: {name: (0.0, 500.0) for name in _PM_MASS} for model in PLANTOWER_MODELS},
    "winsen-mhz19": {"co2": (0.0, 5000.0)},
}
"""Documented measuring range per sensor model and quantity [the quantity's unit]; others: the quantity table's."""
SPIKE_FLOOR: dict[str, float] = {**{name: 10.0 for name in _PM_MASS}, "co2": 50.0}
"""Smallest deviation from the rolling median that counts as a spike [unit]: the sensors' stated accuracy."""
_BOOT_WITH_START = re.compile(r"^[0-9a-f]{24}$")


def flag(records: pd.DataFrame, *, checks: Iterable[str] = ALL_CHECKS,
         ranges: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
         spike_window: int = 31, spike_threshold: float = 3.5, spike_floor: Mapping[str, float] | None = None,
         stuck_n: int = 300, rh_max: float = 70.0, rh_tolerance: str | pd.Timedelta = "60s",
         warmup_s: Mapping[str, float] | None = None, clock_tolerance: str | pd.Timedelta = "1s",
         max_speed: float = 100.0) -> pd.Series:
    """Return the records' flags with the QC bits of the chosen checks set.

    Parameters
    ----------
    records : DataFrame
        Wide records as in the store: ``device``, ``time`` and quantity
        columns; ``sensor``, ``boot``, ``seq`` and ``flags`` where known
        (the checks that need a column it lacks find nothing).
    checks : iterable of str
        Among ``range``, ``spike``, ``stuck``, ``humidity``, ``warmup``, ``clock``, ``gps``.
    ranges : mapping, optional
        ``{sensor model: {quantity: (low, high)}}`` over :data:`SENSOR_RANGES`.
    spike_window : int
        Values in the centred rolling window, per device and quantity [samples].
    spike_threshold : float
        A spike deviates from the window's median by more than this many
        scaled MADs (1.4826 × MAD ≈ σ) [1].
    spike_floor : mapping of quantity to float, optional
        Smallest deviation that counts [unit], over :data:`SPIKE_FLOOR`.
    stuck_n : int
        Identical consecutive values that make a stuck run [samples].
    rh_max : float
        Relative humidity above which optical PM readings are flagged [%].
    rh_tolerance : str or Timedelta
        Farthest a humidity record of the same device may be from the PM record.
    warmup_s : mapping of sensor model to float, optional
        Warm-up time after a boot [s], over the bridge's sensor modules' ``WARMUP_S``.
    clock_tolerance : str or Timedelta
        A step back in time smaller than this is jitter, not a clock jump.
    max_speed : float
        Fastest plausible movement between two GPS fixes [m/s].

    Returns
    -------
    pandas.Series of int64
        ``records["flags"]`` (0 where absent) OR the QC bits, on the records' index.

    Raises
    ------
    ValueError
        For an unknown check, or a frame without ``device`` and ``time``.

    Notes
    -----
    A record is flagged when any of its values is: a PMS5003 record with a
    PM2.5 spike is flagged as a whole.  ``spike`` and ``stuck`` look at the
    concentration quantities; the rolling windows count records, not
    seconds, so a gap shortens them in time.  ``humidity`` flags records
    carrying PM (every low-cost PM sensor qsec reads is optical) using the
    nearest relative humidity of the same device, its own if it has one.
    The boot start for ``warmup`` is read from a qsec boot id (12 hex
    digits of start time in ms, then 12 random ones) when that is
    consistent with the records, otherwise it is the boot's first record
    in ``records``.  ``gps`` flags a fix whose implied speed from the fix
    before exceeds ``max_speed`` while the speed from the one before that
    does too: an isolated outlier is flagged, not the fix after it.
    """
    unknown = set(checks) - set(ALL_CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose among {', '.join(ALL_CHECKS)}")
    if not {"device", "time"} <= set(records.columns):
        raise ValueError("records need columns 'device' and 'time'")
    r = _Records(records)
    flags = r.flags.copy()
    chosen = set(checks)
    steps = [
        ("range", QC_RANGE, lambda: out_of_range(r, ranges)),
        ("spike", QC_SPIKE, lambda: spikes(r, spike_window, spike_threshold, spike_floor)),
        ("stuck", QC_STUCK, lambda: stuck(r, stuck_n)),
        ("humidity", QC_HUMIDITY, lambda: humid(r, rh_max, rh_tolerance)),
        ("warmup", QC_WARMUP, lambda: warming_up(r, warmup_s)),
        ("clock", QC_CLOCK_JUMP, lambda: clock_jumps(r, clock_tolerance)),
        ("gps", QC_GPS_JUMP, lambda: gps_jumps(r, max_speed)),
    ]
    for name, bit, check in steps:
        if name in chosen:
            flags[check()] |= bit
    return pd.Series(flags, index=records.index, name="flags")


def counts(flags: pd.Series | np.ndarray) -> pd.Series:
    """How many records carry each bit, by name (every bit of :data:`FLAG_NAMES`)."""
    values = np.asarray(flags, dtype="int64")
    return pd.Series({name: int(((values & bit) != 0).sum()) for bit, name in FLAG_NAMES.items()}, name="records")


class _Records:
    """Column arrays of a record frame, and its order by device then time."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.t, unit = time_ints(frame["time"])
        self.per_s = 1_000_000_000 // {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[unit]
        self.device = pd.factorize(frame["device"])[0]
        self.flags = frame["flags"].to_numpy(dtype="int64") if "flags" in frame else np.zeros(len(frame), "int64")
        self.sensor = frame["sensor"].astype(str).to_numpy() if "sensor" in frame else np.full(len(frame), "")
        self.order = np.lexsort((self.t, self.device))

    def values(self, name: str) -> np.ndarray | None:
        return self.frame[name].to_numpy(dtype="float64") if name in self.frame else None

    def ordered(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of the finite values of ``name`` by device and time, their values and devices."""
        values = self.values(name)
        assert values is not None
        rows = self.order[np.isfinite(values[self.order])]
        return rows, values[rows], self.device[rows]

    def present(self, kinds: Iterable[qty.Kind]) -> list[str]:
        kinds = set(kinds)
        return [name for name, q in qty.QUANTITIES.items() if q.kind in kinds and name in self.frame]


def out_of_range(r: _Records, ranges: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> np.ndarray:
    """Records with a value outside its sensor model's range (the quantity table's otherwise)."""
    table = {model: dict(limits) for model, limits in SENSOR_RANGES.items()}
    for model, limits in (ranges or {}).items():
        table.setdefault(model, {}).update(limits)
    hit = np.zeros(len(r.t), dtype=bool)
    for name in (n for n in qty.QUANTITIES if n in r.frame):
        q, values = qty.get(name), r.values(name)
        low, high = np.full(len(r.t), q.minimum), np.full(len(r.t), q.maximum)
        for model, limits in table.items():
            if name in limits:
                mine = r.sensor == model
                low[mine], high[mine] = limits[name]
        hit |= (values < low) | (values > high)
    return hit


def _segments(device: np.ndarray) -> np.ndarray:
    """Index of each value's device run (values ordered by device)."""
    run = np.zeros(len(device), dtype="int64")
    run[1:] = np.cumsum(device[1:] != device[:-1])
    return run


def _rolling_median(values: np.ndarray, device: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median per device, in one pass: devices are kept apart by NaN padding."""
    pad = window // 2 + 1
    position = np.arange(len(values)) + _segments(device) * pad
    buffer = np.full(position[-1] + 1 if len(position) else 0, np.nan)
    buffer[position] = values
    rolled = pd.Series(buffer).rolling(window, center=True, min_periods=window // 2 + 1).median()
    return rolled.to_numpy()[position]


def spikes(r: _Records, window: int = 31, threshold: float = 3.5,
           floor: Mapping[str, float] | None = None) -> np.ndarray:
    """Records whose concentration deviates from the rolling median by > threshold × 1.4826 × MAD."""
    if window < 3:
        raise ValueError(f"spike_window must be at least 3 samples, not {window}")
    floors = {**SPIKE_FLOOR, **(floor or {})}
    hit = np.zeros(len(r.t), dtype=bool)
    for name in r.present([qty.Kind.CONCENTRATION]):
        rows, values, device = r.ordered(name)
        if len(rows) == 0:
            continue
        deviation = np.abs(values - _rolling_median(values, device, window))
        mad = _rolling_median(deviation, device, window)
        limit = np.maximum(threshold * 1.4826 * mad, floors.get(name, 0.0))
        hit[rows[deviation > limit]] = True
    return hit


def stuck(r: _Records, n: int = 300) -> np.ndarray:
    """Records in a run of ``n`` or more identical consecutive concentration values of one device."""
    if n < 2:
        raise ValueError(f"stuck_n must be at least 2 samples, not {n}")
    hit = np.zeros(len(r.t), dtype=bool)
    for name in r.present([qty.Kind.CONCENTRATION]):
        rows, values, device = r.ordered(name)
        if len(rows) == 0:
            continue
        new_run = np.ones(len(values), dtype=bool)
        new_run[1:] = (values[1:] != values[:-1]) | (device[1:] != device[:-1])
        run = np.cumsum(new_run) - 1
        hit[rows[np.bincount(run)[run] >= n]] = True
    return hit


def humid(r: _Records, rh_max: float = 70.0, tolerance: str | pd.Timedelta = "60s") -> np.ndarray:
    """Records carrying PM whose device's nearest relative humidity exceeds ``rh_max``."""
    pm_names = [n for n in qty.QUANTITIES if n in r.frame and (n.startswith(("pm", "pn", "nc")))]
    rh = r.values("relative_humidity")
    hit = np.zeros(len(r.t), dtype=bool)
    if not pm_names or rh is None:
        return hit
    carries_pm = np.zeros(len(r.t), dtype=bool)
    for name in pm_names:
        carries_pm |= np.isfinite(r.values(name))  # type: ignore[arg-type]
    has_rh = np.isfinite(rh)
    left = pd.DataFrame({"t": r.t[carries_pm], "device": r.device[carries_pm], "row": np.flatnonzero(carries_pm)})
    right = pd.DataFrame({"t": r.t[has_rh], "device": r.device[has_rh], "rh": rh[has_rh]})
    limit = int(pd.Timedelta(tolerance).value // (1_000_000_000 // r.per_s))
    joined = pd.merge_asof(left.sort_values("t"), right.sort_values("t"), on="t", by="device",
                           direction="nearest", tolerance=limit)
    hit[joined["row"].to_numpy()[joined["rh"].to_numpy(dtype="float64") > rh_max]] = True
    return hit


def warmup_seconds() -> dict[str, float]:
    """Warm-up time per sensor model [s], from the bridge's sensor protocol modules."""
    from firmware_bridge.sensors import PROTOCOLS

    return {p.SENSOR: float(getattr(p, "WARMUP_S", 0.0)) for p in PROTOCOLS.values()}


def _boot_starts(r: _Records, boot: np.ndarray) -> np.ndarray:
    """Start time of each record's boot [time units]: from a qsec boot id, else its first record."""
    codes, boots = pd.factorize(boot)
    first = pd.Series(r.t).groupby(codes).min().reindex(range(len(boots))).to_numpy()
    start = first.copy()
    for i, name in enumerate(boots):
        if _BOOT_WITH_START.match(str(name)):
            stated = int(str(name)[:12], 16) * r.per_s // 1000
            if first[i] - 7 * 86_400 * r.per_s <= stated <= first[i]:  # a time, not a coincidence of hex digits
                start[i] = stated
    return start[codes]


def warming_up(r: _Records, warmup_s: Mapping[str, float] | None = None) -> np.ndarray:
    """Records measured within their sensor model's warm-up time after the start of their boot."""
    if "boot" not in r.frame:
        return np.zeros(len(r.t), dtype=bool)
    table = {**warmup_seconds(), **(warmup_s or {})}
    seconds = pd.Series(r.sensor).map(table).fillna(0.0).to_numpy(dtype="float64")
    since = (r.t - _boot_starts(r, r.frame["boot"].astype(str).to_numpy())) / r.per_s
    return since < seconds


def clock_jumps(r: _Records, tolerance: str | pd.Timedelta = "1s") -> np.ndarray:
    """Records with the bridge's clock-jump bit, or older than an earlier record of their boot."""
    hit = (r.flags & contract.FLAG_CLOCK_JUMP) != 0
    if not {"boot", "seq"} <= set(r.frame.columns):
        return hit
    boot = pd.factorize(r.frame["boot"].astype(str))[0]
    order = np.lexsort((r.frame["seq"].to_numpy(), boot, r.device))
    t, group = r.t[order], _segments(r.device[order] * (boot.max() + 1) + boot[order])
    running = pd.Series(t).groupby(group).cummax().to_numpy()
    has_earlier = np.zeros(len(t), dtype=bool)
    has_earlier[1:] = group[1:] == group[:-1]
    before = np.zeros(len(t), dtype="int64")
    before[1:] = running[:-1]
    slack = int(pd.Timedelta(tolerance).value // (1_000_000_000 // r.per_s))
    hit[order[has_earlier & (t < before - slack)]] = True
    return hit


def gps_jumps(r: _Records, max_speed: float = 100.0) -> np.ndarray:
    """GPS fixes implying a speed above ``max_speed`` [m/s] from both of the two fixes before."""
    hit = np.zeros(len(r.t), dtype=bool)
    lat, lon = r.values("latitude"), r.values("longitude")
    if lat is None or lon is None:
        return hit
    rows = r.order[np.isfinite(lat[r.order]) & np.isfinite(lon[r.order])]
    lat, lon, t, device = lat[rows], lon[rows], r.t[rows] / r.per_s, r.device[rows]

    def speed(lag: int) -> np.ndarray:
        out = np.full(len(rows), np.inf)
        if len(rows) > lag:
            a, b = slice(None, -lag), slice(lag, None)
            metres = haversine_m(lat[a], lon[a], lat[b], lon[b])
            with np.errstate(divide="ignore", invalid="ignore"):
                out[lag:] = np.where(metres > 0, metres / (t[b] - t[a]), 0.0)
            out[lag:][(t[b] <= t[a]) & (metres > 0)] = np.inf
            out[lag:][device[b] != device[a]] = np.inf
        return out

    from_previous = speed(1)
    first_of_device = np.ones(len(rows), dtype=bool)
    first_of_device[1:] = device[1:] != device[:-1]
    from_previous[first_of_device] = 0.0
    hit[rows[(from_previous > max_speed) & (speed(2) > max_speed)]] = True
    return hit
