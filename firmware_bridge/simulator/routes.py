"""Walking and cycling loops through towns of the Yvelines, and a walker that follows them.

Coordinates are WGS84 degrees read off a map to within a few tens of metres
(Place d'Armes in Versailles is 48°48′13″N 2°07′30″E; the château de
Rambouillet 48°38.74′N 1°49.05′E); they are plausible, not surveyed.

A route is a closed polyline of waypoints.  The leg *leaving* a waypoint may
be a ``traffic`` street (more particles from exhaust, brakes and
resuspended dust) or a ``park`` path (a little cleaner).  A waypoint may be
a stop (``stop_s`` seconds), ``indoor`` for a library or café where CO2
builds up.

Distances use the equirectangular approximation (a local flat Earth), good
to 0.1 % over a town.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS = 6_371_000.0  # [m] mean radius
METRES_PER_DEGREE = EARTH_RADIUS * math.pi / 180.0  # [m/°] along a meridian
WALKING = 1.3  # [m/s]
CYCLING = 4.5  # [m/s]


@dataclass(frozen=True)
class Waypoint:
    """A point of a route; ``traffic`` and ``park`` describe the leg leaving it."""

    name: str
    latitude: float  # [°]
    longitude: float  # [°]
    traffic: bool = False
    park: bool = False
    stop_s: float = 0.0  # [s] time spent here
    indoor: bool = False  # the stop is inside a room


@dataclass(frozen=True)
class Route:
    """A closed loop: after the last waypoint the route goes back to the first."""

    name: str
    town: str
    waypoints: tuple[Waypoint, ...]
    speed: float = WALKING  # [m/s] cruising speed
    altitude: float = 100.0  # [m] above mean sea level, roughly
    geoid_separation: float = 46.0  # [m] EGM96 geoid above the WGS84 ellipsoid around Paris

    def __post_init__(self) -> None:
        if len(self.waypoints) < 2:
            raise ValueError(f"route {self.name!r} needs at least two waypoints")
        if self.speed <= 0:
            raise ValueError(f"route {self.name!r} speed must be positive, got {self.speed}")

    @property
    def legs(self) -> tuple["Leg", ...]:
        n = len(self.waypoints)
        return tuple(Leg(self.waypoints[i], self.waypoints[(i + 1) % n]) for i in range(n))

    @property
    def length(self) -> float:
        """Length of one loop [m]."""
        return sum(leg.length for leg in self.legs)


@dataclass(frozen=True)
class Leg:
    start: Waypoint
    end: Waypoint

    @property
    def offsets(self) -> tuple[float, float]:
        """(east, north) from start to end [m]."""
        mid = math.radians((self.start.latitude + self.end.latitude) / 2)
        east = (self.end.longitude - self.start.longitude) * METRES_PER_DEGREE * math.cos(mid)
        north = (self.end.latitude - self.start.latitude) * METRES_PER_DEGREE
        return east, north

    @property
    def length(self) -> float:
        return math.hypot(*self.offsets)

    @property
    def bearing(self) -> float:
        """Course from start to end [° true, 0..360)."""
        east, north = self.offsets
        return math.degrees(math.atan2(east, north)) % 360.0

    def point(self, fraction: float) -> tuple[float, float]:
        """(latitude, longitude) at ``fraction`` (0..1) of the leg."""
        return (self.start.latitude + fraction * (self.end.latitude - self.start.latitude),
                self.start.longitude + fraction * (self.end.longitude - self.start.longitude))


def offset(latitude: float, longitude: float, east: float, north: float) -> tuple[float, float]:
    """Move a point by ``east`` and ``north`` metres; returns (latitude, longitude) [°]."""
    return (latitude + north / METRES_PER_DEGREE,
            longitude + east / (METRES_PER_DEGREE * math.cos(math.radians(latitude))))


@dataclass
class Position:
    """Where a walker is: on a leg, or stopped at a waypoint."""

    latitude: float
    longitude: float
    leg: Leg
    stopped: Waypoint | None  # the stop the walker is at, if any
    visit: int  # how many stops have been reached so far

    @property
    def indoor(self) -> bool:
        return self.stopped is not None and self.stopped.indoor

    @property
    def traffic(self) -> bool:
        return self.stopped is None and self.leg.start.traffic

    @property
    def park(self) -> bool:
        return self.stopped is None and self.leg.start.park

    @property
    def place(self) -> str:
        if self.stopped is not None:
            return self.stopped.name
        return f"{self.leg.start.name} -> {self.leg.end.name}"


class RouteWalker:
    """Follows a route in a loop, stopping at the stops; deterministic, no clock.

    Parameters
    ----------
    route : the loop to follow
    start_m : where to start, as a distance along the loop from its first waypoint [m]
    """

    def __init__(self, route: Route, start_m: float = 0.0):
        self.route = route
        self._legs = route.legs
        self._lengths = [leg.length for leg in self._legs]
        self.leg_index = 0
        self.along = 0.0  # [m] along the current leg
        self.dwell = 0.0  # [s] left at the current stop
        self.visits = 0
        distance = start_m % route.length if route.length > 0 else 0.0
        while distance >= self._lengths[self.leg_index] and self._lengths[self.leg_index] > 0:
            distance -= self._lengths[self.leg_index]
            self.leg_index = (self.leg_index + 1) % len(self._legs)
        self.along = distance

    @property
    def leg(self) -> Leg:
        return self._legs[self.leg_index]

    def advance(self, dt: float, speed: float) -> None:
        """Walk for ``dt`` seconds at ``speed`` [m/s], spending stop time at stops."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        left = dt
        for _ in range(10 * len(self._legs) + 10):  # bounded: a step never spans many loops
            if left <= 0:
                return
            if self.dwell > 0:
                used = min(self.dwell, left)
                self.dwell -= used
                left -= used
                continue
            remaining = self._lengths[self.leg_index] - self.along
            if speed * left < remaining:
                self.along += speed * left
                return
            left -= remaining / speed
            self.leg_index = (self.leg_index + 1) % len(self._legs)
            self.along = 0.0
            arrived = self._legs[self.leg_index].start
            if arrived.stop_s > 0:
                self.dwell = arrived.stop_s
                self.visits += 1

    def position(self) -> Position:
        leg = self.leg
        length = self._lengths[self.leg_index]
        latitude, longitude = leg.point(self.along / length if length > 0 else 0.0)
        stopped = leg.start if self.dwell > 0 else None
        return Position(latitude, longitude, leg, stopped, self.visits)


W = Waypoint

VERSAILLES_CHATEAU = Route(
    name="versailles-chateau",
    town="Versailles",
    speed=WALKING,
    altitude=132.0,
    waypoints=(
        W("Place d'Armes", 48.80360, 2.12500, traffic=True),
        W("Avenue de Paris, Hôtel de Ville", 48.80170, 2.13250, traffic=True),
        W("Avenue de Paris, rue Carnot", 48.80010, 2.13800),
        W("Avenue de Saint-Cloud", 48.80560, 2.13520),
        W("Marché Notre-Dame, café", 48.80600, 2.13130, traffic=True, stop_s=240.0, indoor=True),
        W("Rue de la Paroisse, Notre-Dame", 48.80680, 2.12820, traffic=True),
        W("Rue de la Paroisse, rue des Réservoirs", 48.80600, 2.12300),
        W("Cour d'honneur", 48.80480, 2.12040, park=True),
        W("Parterre d'eau", 48.80530, 2.11850, park=True),
        W("Bassin de Latone", 48.80590, 2.11590, park=True),
        W("Bassin d'Apollon", 48.80790, 2.10760, park=True),
        W("Bosquet de la Colonnade", 48.80410, 2.11230, park=True),
        W("Orangerie", 48.80220, 2.11850),
        W("Bibliothèque municipale", 48.80220, 2.12350, stop_s=300.0, indoor=True),
    ),
)

VERSAILLES_VELO = Route(
    name="versailles-velo",
    town="Versailles",
    speed=CYCLING,
    altitude=135.0,
    waypoints=(
        W("Gare de Versailles-Chantiers", 48.79560, 2.13480, traffic=True),
        W("Rue des Chantiers", 48.79860, 2.13920, traffic=True),
        W("Avenue de Paris, Préfecture", 48.80040, 2.13700, traffic=True),
        W("Place d'Armes", 48.80360, 2.12500, traffic=True),
        W("Avenue de Saint-Cloud, Grande Écurie", 48.80600, 2.13000, traffic=True),
        W("Boulevard de la Reine", 48.80920, 2.12880),
        W("Rue de la Paroisse", 48.80680, 2.12820, traffic=True),
        W("Rue de Satory", 48.80080, 2.12560),
        W("Parc Balbi", 48.79820, 2.12700, park=True),
        W("Cathédrale Saint-Louis, café", 48.79880, 2.12500, stop_s=180.0, indoor=True),
        W("Potager du Roi", 48.79960, 2.12620),
    ),
)

SAINT_GERMAIN = Route(
    name="saint-germain-terrasse",
    town="Saint-Germain-en-Laye",
    speed=WALKING,
    altitude=78.0,
    waypoints=(
        W("Château, place Charles-de-Gaulle", 48.89830, 2.09560),
        W("Rue de Pologne", 48.89720, 2.09250),
        W("Médiathèque", 48.89600, 2.09150, stop_s=300.0, indoor=True),
        W("Rue au Pain", 48.89700, 2.09420, traffic=True),
        W("Rue de Paris", 48.89580, 2.09850, traffic=True),
        W("Pavillon Henri IV", 48.89620, 2.10000, park=True),
        W("Grande Terrasse, sud", 48.90100, 2.10080, park=True),
        W("Grande Terrasse, nord", 48.90600, 2.10120, park=True),
        W("Parc, allée de la Pelouse", 48.90350, 2.09650, park=True),
        W("Parterres du château", 48.89980, 2.09500),
    ),
)

RAMBOUILLET = Route(
    name="rambouillet-parc",
    town="Rambouillet",
    speed=CYCLING,
    altitude=160.0,
    waypoints=(
        W("Gare de Rambouillet", 48.64400, 1.83100, traffic=True),
        W("Rue du Général-de-Gaulle", 48.64500, 1.82700, traffic=True),
        W("Place de la Libération", 48.64620, 1.82050),
        W("Château", 48.64570, 1.81750, park=True),
        W("Jardin d'eau", 48.64300, 1.81500, park=True),
        W("Laiterie de la Reine", 48.63950, 1.81050, park=True),
        W("Bergerie nationale", 48.63650, 1.81650, park=True),
        W("Jardin anglais", 48.64100, 1.82000),
        W("Rue Chasles, café", 48.64380, 1.82700, stop_s=180.0, indoor=True),
    ),
)

ROUTES: dict[str, Route] = {r.name: r for r in (VERSAILLES_CHATEAU, SAINT_GERMAIN, RAMBOUILLET, VERSAILLES_VELO)}
