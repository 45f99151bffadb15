"""Home-zone masking of everything a public screen receives (tracks, latest values, live events).

Participants declare home zones (``[privacy]`` in ``screens.toml``); no
position inside one may reach a public screen, whether in a JSON answer or
on the live event stream.  The geometry is :func:`analysis.privacy.mask_home_zones`
(great-circle distance with a margin for the ellipsoid); this module only
applies it to the shapes the screens use.

Sources
-------
- CNIL, "Guide pratique : anonymisation des données",
  https://www.cnil.fr/fr/technologies/lanonymisation-de-donnees-personnelles
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.privacy import mask_home_zones
from qsec import quantities as qty

POSITION_QUANTITIES = frozenset(name for name, q in qty.QUANTITIES.items() if q.kind is qty.Kind.POSITION)
_MEMO = 4096  # events remembered, so each is tested once however many screens receive it


class ZoneFilter:
    """Remove positions inside home zones.

    Parameters
    ----------
    zones : DataFrame or None
        ``latitude``, ``longitude`` [° WGS84], optional ``radius_m`` [m] and
        ``participant`` (device id; absent: the zone applies to every kit).
        ``None`` or empty: nothing is masked.
    radius_m : float
        Radius of a zone that gives none [m].
    """

    def __init__(self, zones: pd.DataFrame | None = None, radius_m: float = 200.0) -> None:
        self.zones = zones if zones is not None and len(zones) else None
        self.radius_m = radius_m
        self._memo: OrderedDict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = OrderedDict()

    @property
    def active(self) -> bool:
        """Whether any zone is declared."""
        return self.zones is not None

    def points(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``frame`` (``device``, ``latitude``, ``longitude``) outside every zone."""
        if self.zones is None or frame.empty:
            return frame
        return mask_home_zones(frame, self.zones, radius_m=self.radius_m, participant="device").points

    def latest(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drop the position rows of devices whose newest position is in a zone.

        ``frame`` is the long frame of :func:`analysis.live.latest`
        (``device``, ``quantity``, ``value`` …).
        """
        if self.zones is None or frame.empty:
            return frame
        wide = frame[frame["quantity"].isin(["latitude", "longitude"])].pivot_table(
            index="device", columns="quantity", values="value", aggfunc="first"
        )
        if not {"latitude", "longitude"} <= set(wide.columns):
            return frame
        located = wide.dropna().reset_index()
        kept = set(self.points(located)["device"])
        hidden = set(located["device"]) - kept
        drop = frame["device"].isin(hidden) & frame["quantity"].isin(POSITION_QUANTITIES)
        return frame[~drop]

    def event(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """The event, without its position values if that position is in a zone.

        Each published event is tested once and the answer kept for the
        other screens (events are shared between subscribers, never mutated).
        """
        values = event.get("values") or {}
        if self.zones is None or "latitude" not in values or "longitude" not in values:
            return event
        key = id(event)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is event:
            return hit[1]
        point = pd.DataFrame(
            {"device": [str(event.get("device", ""))], "latitude": [values["latitude"]],
             "longitude": [values["longitude"]]}
        )
        inside = self.points(point).empty
        result: Mapping[str, Any] = event
        if inside:
            result = {**event, "values": {k: v for k, v in values.items() if k not in POSITION_QUANTITIES}}
        self._memo[key] = (event, result)
        if len(self._memo) > _MEMO:
            self._memo.popitem(last=False)
        return result
