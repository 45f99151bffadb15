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


def all_kits(end: pd.Timestamp, minutes: int = 62) -> pd.DataFrame:
    """Records of the three :data:`KITS` up to ``end``."""
    return pd.concat([kit_records(k, end, minutes, seed=i) for i, k in enumerate(KITS)], ignore_index=True)
