"""Simulated sensor kits on real pseudo-terminals, for tests and demonstrations.

>>> kits = start_kits(2, "/tmp/qsec-dev", seed=1, rate_hz=1.0)   # doctest: +SKIP
>>> kits[0].paths["pms5003"]                                       # doctest: +SKIP
'/tmp/qsec-dev/kit01-pms5003'

See :mod:`firmware_bridge.simulator.kit` for the kit, ``routes`` for the
towns walked through and ``world`` for the values model.
"""

from firmware_bridge.simulator.kit import COUNTERS, SENSORS, Emission, Kit, start_kits
from firmware_bridge.simulator.pty import PtyPort
from firmware_bridge.simulator.routes import ROUTES, Route, RouteWalker, Waypoint
from firmware_bridge.simulator.world import World, WorldState

__all__ = [
    "Kit", "start_kits", "Emission", "SENSORS", "COUNTERS", "PtyPort",
    "ROUTES", "Route", "RouteWalker", "Waypoint", "World", "WorldState",
]
