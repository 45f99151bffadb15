"""A small, real-looking campaign in the store's schema, for analysis tests.

Three kits walk around Versailles for a few hours.  Each kit sends, at 1 Hz,
one record per sensor, as the bridge does: a Plantower PMS5003 (kit-01 has
a PMS5003T, which also reports temperature and relative humidity), a Winsen
MH-Z19 (CO2 and its internal temperature) and an NMEA GPS receiver.  Values
are rounded as the sensors round them (PM and CO2 in whole units).

The campaign carries the quirks that quality control must find, each at a
known place (:attr:`Campaign.events`):

``spike``       kit-01, one PMS record with PM2.5 at 400 µg/m³
``stuck``       kit-01, CO2 frozen at 612 ppm for 10 minutes
``humid``       kit-01, relative humidity 85-95 % for 15 minutes (fog)
``gps_jump``    kit-01, one GPS fix 5 km off the track
``reboot``      kit-02, 90 s without records, then a new boot whose first
                records carry the bridge's warming-up flag (PMS 30 s, MH-Z19 180 s)
``clock_jump``  kit-03, the clock steps back 30 s within a boot (bridge
                flag ``clock_jump`` on the first record after the step)
``radio_loss``  kit-03, 40 % of records missing for 10 minutes

Rows come out sorted by device and time; ``seq`` counts per (device, boot)
in measurement order, as the bridge numbers records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from readings_table import insert_readings

from qsec.contract import FLAG_CLOCK_JUMP, FLAG_TIME_FROM_GPS, FLAG_WARMING_UP

PMS, PMST, MHZ, GPS = "plantower-pms5003", "plantower-pms5003t", "winsen-mhz19", "nmea-gps"
KITS = ("kit-01", "kit-02", "kit-03")
START = pd.Timestamp("2026-05-17 08:00:00")  # naive UTC, as the store keeps it
HOME = (48.8049, 2.1204)  # [° WGS84] Château de Versailles
_OFFSET_MS = {PMS: 0, PMST: 0, MHZ: 20, GPS: 40}  # where in each second the bridge stamps a sensor
_M_PER_DEG_LAT = 111_320.0  # [m/°]


@dataclass(frozen=True)
class Event:
    """Where a quirk is: records of ``device`` measured in ``[start, end)`` (naive UTC)."""

    device: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Campaign:
    """Records in the store's ``readings`` schema, and where each quirk was put."""

    records: pd.DataFrame
    events: dict[str, Event] = field(default_factory=dict)


def make_campaign(hours: float = 2.0, seed: int = 0, start: pd.Timestamp = START,
                  campaign: str = "versailles") -> Campaign:
    """Generate the campaign: 3 kits × ``hours`` × 3 sensors at 1 Hz (≈ 32k rows an hour)."""
    rng = np.random.default_rng(seed)
    n = round(hours * 3600)
    at = {name: start + pd.Timedelta(seconds=n * frac) for name, frac in
          [("gps_jump", 0.2), ("spike", 0.3), ("reboot", 0.4), ("stuck", 0.5), ("clock_jump", 0.6),
           ("humid", 0.7), ("radio_loss", 0.8)]}
    events = {
        "spike": Event("kit-01", at["spike"], at["spike"] + pd.Timedelta(seconds=1)),
        "stuck": Event("kit-01", at["stuck"], at["stuck"] + pd.Timedelta(minutes=10)),
        "humid": Event("kit-01", at["humid"], at["humid"] + pd.Timedelta(minutes=15)),
        "gps_jump": Event("kit-01", at["gps_jump"], at["gps_jump"] + pd.Timedelta(seconds=1)),
        "reboot": Event("kit-02", at["reboot"], at["reboot"] + pd.Timedelta(seconds=90)),
        "clock_jump": Event("kit-03", at["clock_jump"] - pd.Timedelta(seconds=30), at["clock_jump"]),
        "radio_loss": Event("kit-03", at["radio_loss"], at["radio_loss"] + pd.Timedelta(minutes=10)),
    }
    frames = [_kit(kit, k, n, start, rng, events) for k, kit in enumerate(KITS)]
    records = pd.concat(frames, ignore_index=True)
    records["campaign"] = campaign
    keys = ["campaign", "device", "boot", "seq", "time", "sensor", "flags", "received"]
    return Campaign(records[keys + [c for c in records.columns if c not in keys]], events)


def store_campaign(con: duckdb.DuckDBPyConnection, hours: float = 2.0, seed: int = 0) -> Campaign:
    """Generate the campaign and insert it into ``con``'s ``readings`` table."""
    made = make_campaign(hours, seed)
    insert_readings(con, made.records)
    return made


def _kit(device: str, k: int, n: int, start: pd.Timestamp, rng: np.random.Generator,
         events: dict[str, Event]) -> pd.DataFrame:
    second = np.arange(n, dtype="int64")
    pm_sensor = PMST if device == "kit-01" else PMS
    pm25 = _pm25(n, k, rng)
    co2 = np.round(430 + 350 * _bumps(n, rng, width=900.0) + rng.normal(0, 6, n))
    lat, lon = _track(n, k, rng)
    pms = pd.DataFrame({
        "pm2_5": pm25, "pm1": np.round(pm25 * 0.68), "pm10": np.round(pm25 * 1.32 + rng.integers(0, 3, n)),
        "pn0_3": np.round(pm25 * 160 + rng.normal(0, 30, n)).clip(0), "pn0_5": np.round(pm25 * 45).clip(0),
        "pn1": np.round(pm25 * 8).clip(0), "pn2_5": np.round(pm25 * 0.9).clip(0),
        "pn5": np.round(pm25 * 0.2), "pn10": np.round(pm25 * 0.05),
    })
    for name in ("pm1", "pm2_5", "pm10"):
        pms[f"{name}_cf1"] = np.where(pms[name] < 30, pms[name], np.round(pms[name] * 1.15))
    if pm_sensor == PMST:
        pms["temperature"] = np.round(17 + 3 * np.sin(second / n * np.pi) + rng.normal(0, 0.1, n), 1)
        pms["relative_humidity"] = np.round(55 + 5 * np.sin(second / 1800) + rng.normal(0, 0.3, n), 1)
    mhz = pd.DataFrame({"co2": co2, "temperature": np.round(24 + 2 * np.sin(second / n * np.pi))})
    gps = pd.DataFrame({
        "latitude": np.round(lat, 6), "longitude": np.round(lon, 6),
        "altitude": np.round(130 + rng.normal(0, 1.5, n), 1), "speed": np.round(np.abs(rng.normal(1.3, 0.2, n)), 2),
        "hdop": np.round(rng.uniform(0.7, 1.4, n), 1), "satellites": rng.integers(6, 12, n).astype(float),
        "fix_quality": np.ones(n),
    })
    parts = []
    for sensor, values in ((pm_sensor, pms), (MHZ, mhz), (GPS, gps)):
        offset = pd.to_timedelta(second * 1000 + _OFFSET_MS[sensor] + rng.integers(0, 5, n), unit="ms")
        values.insert(0, "time", start + offset)
        values.insert(1, "sensor", sensor)
        values.insert(2, "flags", FLAG_TIME_FROM_GPS if sensor == GPS else 0)
        parts.append(values)
    frame = pd.concat(parts, ignore_index=True)
    frame["device"] = device
    frame["boot"] = f"boot-{device}-a"
    frame = _quirks(frame, device, events, rng)
    frame = frame.sort_values(["time", "sensor"], kind="stable").reset_index(drop=True)
    frame["seq"] = frame.groupby("boot").cumcount().astype("int64")
    if device == "kit-03":  # the clock stepped back: records after the step keep their (later) seq
        frame = _clock_step(frame, events["clock_jump"])
    frame["received"] = frame["time"] + pd.Timedelta(milliseconds=300)
    return frame.sort_values(["time", "seq"], kind="stable").reset_index(drop=True)


def _pm25(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Background 6-12 µg/m³ drifting slowly, plus traffic-street bumps, in whole µg/m³."""
    t = np.arange(n)
    background = 8 + 2 * k + 3 * np.sin(t / 2400 + k)
    return np.round(background + 25 * _bumps(n, rng, width=120.0) + rng.normal(0, 1.0, n)).clip(0)


def _bumps(n: int, rng: np.random.Generator, width: float) -> np.ndarray:
    """A few smooth bumps of height ≈ 1 and ``width`` seconds, at random places."""
    t = np.arange(n, dtype=float)
    centres = rng.uniform(0, n, max(1, n // 1800))
    return np.exp(-0.5 * ((t[:, None] - centres[None, :]) / width) ** 2).sum(axis=1).clip(0, 1)


def _track(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A walk at about 1.3 m/s with a slowly turning heading, starting near the château."""
    heading = np.cumsum(rng.normal(0, 0.05, n)) + k * 2.0
    step = 1.3 + rng.normal(0, 0.1, n)
    north, east = np.cumsum(step * np.cos(heading)), np.cumsum(step * np.sin(heading))
    lat = HOME[0] + 0.001 * k + north / _M_PER_DEG_LAT
    lon = HOME[1] + east / (_M_PER_DEG_LAT * np.cos(np.radians(HOME[0])))
    return lat, lon


def _within(frame: pd.DataFrame, event: Event, sensor: str | None = None) -> pd.Series:
    hit = (frame["time"] >= event.start) & (frame["time"] < event.end)
    return hit & (frame["sensor"] == sensor) if sensor else hit


def _quirks(frame: pd.DataFrame, device: str, events: dict[str, Event], rng: np.random.Generator) -> pd.DataFrame:
    if device == "kit-01":
        frame.loc[_within(frame, events["spike"], PMST), ["pm2_5", "pm2_5_cf1"]] = [400.0, 460.0]
        frame.loc[_within(frame, events["stuck"], MHZ), "co2"] = 612.0
        humid = _within(frame, events["humid"], PMST)
        frame.loc[humid, "relative_humidity"] = np.round(rng.uniform(85, 95, int(humid.sum())), 1)
        jump = _within(frame, events["gps_jump"], GPS)
        frame.loc[jump, "latitude"] = frame.loc[jump, "latitude"] + 5000 / _M_PER_DEG_LAT
    if device == "kit-02":
        reboot = events["reboot"]
        frame = frame[~_within(frame, reboot)].copy()
        after = frame["time"] >= reboot.end
        frame.loc[after, "boot"] = f"boot-{device}-b"
        since = (frame["time"] - reboot.end).dt.total_seconds()
        warm = after & (((frame["sensor"] == PMS) & (since < 30)) | ((frame["sensor"] == MHZ) & (since < 180)))
        frame.loc[warm, "flags"] = frame.loc[warm, "flags"] | FLAG_WARMING_UP
    if device == "kit-03":
        lost = _within(frame, events["radio_loss"]) & (rng.random(len(frame)) < 0.4)
        frame = frame[~lost].copy()
    return frame


def _clock_step(frame: pd.DataFrame, event: Event) -> pd.DataFrame:
    """Shift every record from ``event.end`` on back by the event's length, flag the first."""
    step = event.end - event.start
    after = frame["time"] >= event.end
    frame.loc[after, "time"] = frame.loc[after, "time"] - step
    first = frame.index[after][:1]
    frame.loc[first, "flags"] = frame.loc[first, "flags"] | FLAG_CLOCK_JUMP
    return frame


def campaign_store(path: str | Path, hours: float, **campaign: Any) -> duckdb.DuckDBPyConnection:
    """A store file with ``hours`` of the simulated kits and the registry, their campaign ``versailles`` created.

    ``campaign`` goes to :func:`ingest.registry.create_campaign` (``public=True``, ``title=…``); kits,
    participants and opt-outs are each test's own.
    """
    from ingest import registry
    from readings_table import create_readings

    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    create_readings(con)
    store_campaign(con, hours)
    registry.ensure_registry_schema(con)
    registry.create_campaign(con, "versailles", **campaign)
    return con
