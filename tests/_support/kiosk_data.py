"""Realistic records for the kiosk: three kits with PM, CO2/temperature and GPS sensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CAMPAIGN = "fete-science-2026"
PMS, MHZ, GPS = "plantower-pms5003", "winsen-mhz19", "nmea-gps"


@dataclass(frozen=True)
class Kit:
    device: str
    pm2_5: float  # [µg/m³] typical level around the kit
    co2: float  # [ppm]
    temperature: float  # [°C]
    latitude: float  # [°]
    longitude: float  # [°]


KITS = (
    Kit("kit-montsouris", 7.5, 430.0, 19.2, 48.822033, 2.338211),
    Kit("kit-bastille", 16.0, 520.0, 21.4, 48.853180, 2.369117),
    Kit("kit-periph-est", 34.0, 690.0, 22.8, 48.846702, 2.413790),
)


def kit_records(kit: Kit, end: pd.Timestamp, minutes: int = 62, seed: int = 0) -> pd.DataFrame:
    """Records of one kit for ``minutes`` before ``end`` [UTC]: PMS5003 and GPS at 1 Hz, MH-Z19 every 5 s."""
    rng = np.random.default_rng(seed)
    n = minutes * 60
    t = end - pd.to_timedelta(np.arange(n, 0, -1), unit="s")
    phase = np.linspace(0, 3 * np.pi, n) + seed
    pm2_5 = np.clip(kit.pm2_5 * (1 + 0.35 * np.sin(phase) + 0.12 * rng.standard_normal(n)), 0.5, None).round()
    pms = pd.DataFrame(
        {
            "time": t,
            "sensor": PMS,
            "pm2_5": pm2_5,
            "pm1": (pm2_5 * 0.68).round(),
            "pm10": (pm2_5 * 1.45 + rng.integers(0, 4, n)).round(),
        }
    )
    walk = np.cumsum(rng.standard_normal((n, 2)) * 2e-6, axis=0)
    gps = pd.DataFrame(
        {
            "time": t,
            "sensor": GPS,
            "latitude": kit.latitude + walk[:, 0],
            "longitude": kit.longitude + walk[:, 1],
            "satellites": 9.0,
        }
    )
    slow = t[::5]
    m = len(slow)
    co2 = pd.DataFrame(
        {
            "time": slow,
            "sensor": MHZ,
            "co2": (kit.co2 + 40 * np.sin(np.linspace(0, 2 * np.pi, m)) + rng.normal(0, 6, m)).round(),
            "temperature": (kit.temperature + 0.3 * np.sin(np.linspace(0, np.pi, m))).round(1),
        }
    )
    frame = pd.concat([pms, gps, co2], ignore_index=True)
    frame["campaign"] = CAMPAIGN
    frame["device"] = kit.device
    frame["seq"] = np.arange(len(frame), dtype="int64")
    return frame


def all_kits(end: pd.Timestamp, minutes: int = 62, kits: tuple[Kit, ...] = KITS) -> pd.DataFrame:
    """Records of ``kits`` (the three :data:`KITS`) up to ``end``."""
    return pd.concat([kit_records(k, end, minutes, seed=i) for i, k in enumerate(kits)], ignore_index=True)


# Twelve kits as a large exhibition lends them: long names, PM2.5 in every EAQI band from good to
# extremely poor, a few hundred metres apart.
MANY_KITS = tuple(
    Kit(name, pm, 420.0 + 35 * i, 18.5 + 0.4 * i, 48.80 + 0.004 * i, 2.12 + 0.004 * i)
    for i, (name, pm) in enumerate([
        ("kit-montsouris", 6.0), ("kit-bastille", 16.0), ("kit-periph-est", 34.0), ("kit-porte-de-la-chapelle", 60.0),
        ("kit-gare-saint-lazare", 130.0), ("kit-belleville", 4.0), ("kit-parc-andre-citroen", 22.0),
        ("kit-10", 9.0), ("kit-canal-saint-martin", 45.0), ("kit-ecole-jules-ferry", 300.0), ("kit-12", 12.0),
        ("kit-bibliotheque-municipale", 80.0),
    ])
)


DESK = (48.80360, 2.12500)  # Place d'Armes, Versailles: where kits are lent


def walk_records(device: str, route: str, start: pd.Timestamp, seconds: int, *, seed: int = 0,
                 campaign: str = CAMPAIGN, start_m: float = 0.0) -> pd.DataFrame:
    """Records of a kit following a simulator route for ``seconds`` from ``start`` [UTC].

    The simulator's deterministic world (``firmware_bridge.simulator.world``) gives PMS5003 and GPS
    records every second and MH-Z19 records every 5 s, as a real kit would send them.
    """
    from firmware_bridge.simulator.routes import ROUTES
    from firmware_bridge.simulator.world import World

    world = World(ROUTES[route], seed, start_m)
    states = [world.step() for _ in range(seconds)]
    t = start + pd.to_timedelta(np.arange(seconds), unit="s")
    pms = pd.DataFrame({"time": t, "sensor": PMS, "pm1": [s.pm["pm1"] for s in states],
                        "pm2_5": [s.pm["pm2_5"] for s in states], "pm10": [s.pm["pm10"] for s in states]})
    gps = pd.DataFrame({"time": t, "sensor": GPS, "latitude": [s.latitude for s in states],
                        "longitude": [s.longitude for s in states], "speed": [s.speed for s in states],
                        "satellites": [float(s.satellites) for s in states]})
    co2 = pd.DataFrame({"time": t[::5], "sensor": MHZ, "co2": [s.co2 for s in states[::5]],
                        "temperature": [s.temperature for s in states[::5]]})
    frame = pd.concat([pms, gps, co2], ignore_index=True)
    frame["campaign"], frame["device"] = campaign, device
    return frame


def resting_records(device: str, start: pd.Timestamp, seconds: int, *, where: tuple[float, float] = DESK,
                    pm2_5: float = 9.0, seed: int = 0, campaign: str = CAMPAIGN) -> pd.DataFrame:
    """Records of a kit lying still (at the desk), every 5 s: PM and a GPS fix with a few metres of noise."""
    rng = np.random.default_rng(seed)
    n = seconds // 5
    t = start + pd.to_timedelta(np.arange(n) * 5, unit="s")
    noise = rng.normal(0, 2e-5, (n, 2))
    pms = pd.DataFrame({"time": t, "sensor": PMS, "pm2_5": np.round(pm2_5 + rng.normal(0, 0.8, n)),
                        "pm10": np.round(pm2_5 * 1.4 + rng.normal(0, 1, n))})
    gps = pd.DataFrame({"time": t, "sensor": GPS, "latitude": where[0] + noise[:, 0],
                        "longitude": where[1] + noise[:, 1]})
    frame = pd.concat([pms, gps], ignore_index=True)
    frame["campaign"], frame["device"] = campaign, device
    return frame


def lent_kit_day(end: pd.Timestamp) -> pd.DataFrame:
    """A day of two lent kits ending at ``end``: rest at the desk, a walk or a ride, rest, another walk.

    ``kit-pret-1`` walks the château loop twice (20 and 15 min), ``kit-pret-2`` rides the bike loop
    once (12 min) and walks once; every walk starts and ends at the desk after 10 min of rest.
    """
    parts = []
    plans = {"kit-pret-1": [("versailles-chateau", 1200, 0.0), ("versailles-chateau", 900, 1500.0)],
             "kit-pret-2": [("versailles-velo", 720, 0.0), ("versailles-chateau", 1000, 600.0)]}
    for k, (device, walks) in enumerate(plans.items()):
        clock = end - pd.Timedelta(minutes=100) + pd.Timedelta(minutes=3 * k)
        for i, (route, seconds, start_m) in enumerate(walks):
            parts.append(resting_records(device, clock, 600, seed=10 * k + i))
            clock += pd.Timedelta(seconds=600)
            parts.append(walk_records(device, route, clock, seconds, seed=10 * k + i, start_m=start_m))
            clock += pd.Timedelta(seconds=seconds)
        parts.append(resting_records(device, clock, max(5, int((end - clock).total_seconds())), seed=99 + k))
    frame = pd.concat(parts, ignore_index=True)
    return frame[frame["time"] < end].reset_index(drop=True)


def exhibition_day(end: pd.Timestamp) -> pd.DataFrame:
    """:func:`lent_kit_day` plus ``kit-balade`` half-way through a château walk at ``end``."""
    walking = walk_records("kit-balade", "versailles-chateau", end - pd.Timedelta(minutes=30), 1800, seed=5,
                           start_m=2600.0)
    return pd.concat([lent_kit_day(end), walking], ignore_index=True)


def positions_in(answer: object) -> list[tuple[float, float]]:
    """Every (latitude, longitude) in a JSON answer of the screens: routes (``lat``/``lon`` arrays) and values."""
    found: list[tuple[float, float]] = []
    if isinstance(answer, dict):
        if isinstance(answer.get("lat"), list):
            found += list(zip(answer["lat"], answer["lon"], strict=True))
        values = answer.get("values")
        if isinstance(values, dict) and "latitude" in values:
            lat, lon = values["latitude"], values["longitude"]
            found.append((lat["value"], lon["value"]) if isinstance(lat, dict) else (lat, lon))
        for value in answer.values():
            found += positions_in(value)
    elif isinstance(answer, list):
        for value in answer:
            found += positions_in(value)
    return found
