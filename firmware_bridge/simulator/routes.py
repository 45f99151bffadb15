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

The routes themselves are data, in ``routes.json`` beside this module.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

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


SPEEDS = {"walking": WALKING, "cycling": CYCLING}
ROUTES_FILE = "routes.json"


def load_routes(text: str) -> dict[str, Route]:
    """Routes by name, from the JSON of :data:`ROUTES_FILE` (in file order).

    Each route is ``{"name", "town", "speed": "walking" | "cycling", "altitude" [m],
    "waypoints": [[name, latitude [°], longitude [°], {traffic, park, stop_s [s], indoor}?], …]}``.

    Raises
    ------
    ValueError : malformed JSON, an unknown speed name, a route of fewer than two waypoints
    """
    routes: dict[str, Route] = {}
    for doc in json.loads(text)["routes"]:
        if doc["speed"] not in SPEEDS:
            raise ValueError(f"route {doc['name']!r}: speed {doc['speed']!r}; use one of {', '.join(SPEEDS)}")
        waypoints = tuple(Waypoint(name, latitude, longitude, **(options[0] if options else {}))
                          for name, latitude, longitude, *options in doc["waypoints"])
        routes[doc["name"]] = Route(name=doc["name"], town=doc["town"], speed=SPEEDS[doc["speed"]],
                                    altitude=float(doc["altitude"]), waypoints=waypoints)
    return routes


ROUTES: dict[str, Route] = load_routes(resources.files(__package__).joinpath(ROUTES_FILE).read_text(encoding="utf-8"))
VERSAILLES_CHATEAU = ROUTES["versailles-chateau"]
SAINT_GERMAIN = ROUTES["saint-germain-terrasse"]
RAMBOUILLET = ROUTES["rambouillet-parc"]
VERSAILLES_VELO = ROUTES["versailles-velo"]
