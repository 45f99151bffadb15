"""What a kit's sensors would measure along its route, one simulated second at a time.

The world is deterministic: the same route, start point and seed give the
same series, whatever the clock.  Each call of :meth:`World.step` advances
it by one second and returns the :class:`WorldState` every sensor of the kit
reports for that second, already at the sensors' resolution (whole µg/m³,
whole particles, whole ppm and °C; GPS noise included).

Model (plain, to look right on a dashboard, not to be a dispersion model)
-------------------------------------------------------------------------
- PM2.5 background: a slow random walk around a mean drawn in 6-12 µg/m³
  (an ordinary day in the Yvelines).  On ``traffic`` legs it is multiplied
  by 2-4 (drawn per leg) and exhaust plumes (a bus, a scooter) add
  10-40 µg/m³ decaying over ~8 s; park paths are 15 % cleaner, rooms 20 %.
  Changes are smoothed over ~15 s (the sensor's averaging and the walk).
- PM1 ≈ 0.68 x PM2.5 and PM10 ≈ 1.45 x PM2.5 (x 1.15 more on traffic
  streets: resuspended dust); after rounding PM1 < PM2.5 < PM10 strictly.
- CF=1 values: equal to the atmospheric ones up to 30 µg/m³, then growing
  1.5 times faster (the Plantower relation seen in co-location studies).
- Counts [#/0.1 L] follow the masses: about 160 particles > 0.3 µm per
  µg/m³ of PM1, with cumulative counts kept non-increasing with diameter.
- CO2: 420-450 ppm outdoors (+15 ppm on traffic legs).  In a room (a stop
  marked ``indoor``) the air is at 1000-1500 ppm (drawn per visit) and the
  reading climbs toward it with a 60 s time constant (MH-Z19B T90 < 120 s).
- Temperature: a day temperature drawn in 12-22 °C, rooms at 21.5 °C,
  approached over 3 min; the MH-Z19 reads its cell, 2 °C warmer.
- GPS: position error is a correlated random walk of ~1.5 m outdoors,
  ~6 m indoors, with fewer satellites and a higher HDOP indoors.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from firmware_bridge.simulator.routes import Route, RouteWalker, offset

PM_FIELDS = ("pm1_cf1", "pm2_5_cf1", "pm10_cf1", "pm1", "pm2_5", "pm10",
             "pn0_3", "pn0_5", "pn1", "pn2_5", "pn5", "pn10")


@dataclass(frozen=True)
class WorldState:
    """Everything the kit's sensors report for one simulated second.

    pm : PMS5003 values, canonical names -> whole numbers [µg/m³ or #/0.1 L]
    co2 : [ppm], whole; temperature : MH-Z19 cell temperature [°C], whole
    latitude, longitude : GPS position with its error [°]; altitude [m]
    speed : [m/s]; course : [° true] or ``None`` when stopped
    """

    tick: int
    pm: dict[str, float]
    co2: float
    temperature: float
    latitude: float
    longitude: float
    altitude: float
    speed: float
    course: float | None
    hdop: float
    satellites: int
    indoor: bool
    traffic: bool
    place: str
    true_latitude: float = field(repr=False, default=0.0)
    true_longitude: float = field(repr=False, default=0.0)


def cf1_from_atmospheric(value: float) -> float:
    """Plantower CF=1 value for an atmospheric value [µg/m³] (equal up to 30 µg/m³)."""
    return value if value <= 30.0 else value + 0.5 * (value - 30.0)


def particle_counts(pm1: float, pm2_5: float, pm10: float, noise: float = 1.0) -> dict[str, float]:
    """Cumulative counts [#/0.1 L] consistent with the masses [µg/m³], non-increasing with size."""
    fine = 160.0 * pm1 + 40.0 * (pm2_5 - pm1)
    raw = [
        fine * noise,
        0.30 * fine * noise,
        0.06 * fine + 3.0 * (pm2_5 - pm1),
        1.2 * (pm10 - pm2_5) + 0.5,
        0.3 * (1.2 * (pm10 - pm2_5) + 0.5),
        0.1 * (1.2 * (pm10 - pm2_5) + 0.5),
    ]
    counts: list[float] = []
    for value in raw:
        value = float(max(0, round(value)))
        counts.append(min(value, counts[-1]) if counts else max(1.0, value))
    return dict(zip(("pn0_3", "pn0_5", "pn1", "pn2_5", "pn5", "pn10"), counts))


class World:
    """The environment around one kit, advanced one second per :meth:`step`.

    Parameters
    ----------
    route : the loop the kit follows
    seed : any int; the same seed gives the same series
    start_m : starting point, as a distance along the loop [m]
    """

    def __init__(self, route: Route, seed: int, start_m: float = 0.0):
        self.route = route
        self.seed = seed
        self.rng = random.Random(f"qsec-world:{route.name}:{seed}:{start_m:.1f}")
        rng = self.rng
        self.walker = RouteWalker(route, start_m)
        self.tick = -1
        self.pm_mean = rng.uniform(6.0, 12.0)  # [µg/m³]
        self.background = self.pm_mean * rng.uniform(0.8, 1.2)
        self.factor = 1.0
        self.plume = 0.0
        self.leg_factors = [rng.uniform(2.0, 4.0) for _ in route.waypoints]
        self.co2_outdoor = rng.uniform(420.0, 435.0)  # [ppm]
        self.co2 = self.co2_outdoor
        self.day_temperature = rng.uniform(12.0, 22.0)  # [°C]
        self.temperature = self.day_temperature
        self.speed_factor = 1.0
        self.gps_error = [0.0, 0.0]  # [m] east, north
        self.room_levels: dict[int, float] = {}

    def step(self) -> WorldState:
        """Advance one second and return what the sensors report."""
        rng = self.rng
        dt = 1.0
        self.tick += 1
        self.speed_factor += 0.1 * (1.0 - self.speed_factor) + rng.gauss(0.0, 0.02)
        self.speed_factor = min(1.3, max(0.7, self.speed_factor))
        self.walker.advance(dt, self.route.speed * self.speed_factor)
        pos = self.walker.position()

        # --- particles
        self.background += 0.01 * (self.pm_mean - self.background) + rng.gauss(0.0, 0.15)
        self.background = max(2.0, self.background)
        if pos.traffic:
            target = self.leg_factors[self.walker.leg_index]
            if rng.random() < 0.03:
                self.plume += rng.uniform(10.0, 40.0)
        elif pos.indoor:
            target = 0.8
        elif pos.park:
            target = 0.85
        else:
            target = 1.0
        self.factor += (target - self.factor) * (1.0 - math.exp(-dt / 15.0))
        self.plume *= math.exp(-dt / 8.0)
        pm2_5_true = self.background * self.factor + self.plume
        measured = pm2_5_true * rng.gauss(1.0, 0.05) + rng.gauss(0.0, 0.4)
        pm2_5 = max(2, round(measured))
        pm1 = min(max(1, round(pm2_5 * rng.gauss(0.68, 0.02))), pm2_5 - 1)
        coarse = 1.45 * (1.15 if pos.traffic else 1.0) * rng.gauss(1.0, 0.04)
        pm10 = max(round(pm2_5 * coarse), pm2_5 + 1)
        atm = {"pm1": float(pm1), "pm2_5": float(pm2_5), "pm10": float(pm10)}
        pm = {f"{name}_cf1": float(round(cf1_from_atmospheric(value))) for name, value in atm.items()}
        pm.update(atm)
        pm.update(particle_counts(pm1, pm2_5, pm10, noise=rng.gauss(1.0, 0.04)))
        pm = {name: pm[name] for name in PM_FIELDS}

        # --- CO2 and temperature
        if pos.indoor:
            level = self.room_levels.setdefault(pos.visit, rng.uniform(1000.0, 1500.0))
            self.co2 += (level - self.co2) * (1.0 - math.exp(-dt / 60.0))
            room_temperature = 21.5
        else:
            self.room_levels.pop(pos.visit, None)
            outdoor = self.co2_outdoor + (15.0 if pos.traffic else 0.0)
            self.co2 += (outdoor - self.co2) * (1.0 - math.exp(-dt / 30.0))
            room_temperature = self.day_temperature
        self.temperature += (room_temperature - self.temperature) * (1.0 - math.exp(-dt / 180.0))
        co2 = float(round(self.co2 + rng.gauss(0.0, 3.0)))
        temperature = float(round(self.temperature + 2.0 + rng.gauss(0.0, 0.2)))

        # --- GPS
        sigma = 6.0 if pos.indoor else 1.5
        for axis in (0, 1):
            self.gps_error[axis] = 0.95 * self.gps_error[axis] + rng.gauss(0.0, sigma * math.sqrt(1 - 0.95 ** 2))
        latitude, longitude = offset(pos.latitude, pos.longitude, *self.gps_error)
        moving = pos.stopped is None
        speed = self.route.speed * self.speed_factor if moving else abs(rng.gauss(0.0, 0.05))
        course = (pos.leg.bearing + rng.gauss(0.0, 2.0)) % 360.0 if moving else None
        return WorldState(
            tick=self.tick,
            pm=pm,
            co2=co2,
            temperature=temperature,
            latitude=latitude,
            longitude=longitude,
            altitude=self.route.altitude + rng.gauss(0.0, 1.5 if not pos.indoor else 4.0),
            speed=speed,
            course=course,
            hdop=round(rng.uniform(2.5, 4.0) if pos.indoor else rng.uniform(0.7, 1.3), 1),
            satellites=rng.randint(4, 6) if pos.indoor else rng.randint(8, 12),
            indoor=pos.indoor,
            traffic=pos.traffic,
            place=pos.place,
            true_latitude=pos.latitude,
            true_longitude=pos.longitude,
        )
