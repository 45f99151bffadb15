"""What a public screen must not show, in one place: home zones and participants' opt-outs.

- Home zones (:class:`~dashboards.kiosk.zones.ZoneFilter`): positions near a
  declared place are removed, the rest of the record stays.
- Opt-outs (:class:`~dashboards.kiosk.optouts.OptOuts`): a trip or a
  session a participant keeps off public screens is removed whole.  The
  screens' store queries already leave those records out
  (:mod:`dashboards.kiosk.store`); this object filters what comes from
  elsewhere (live events, :mod:`analysis.live` answers) and gives the cache
  key that makes a new opt-out show at the next refresh.

Sources
-------
- Regulation (EU) 2016/679 (GDPR), Art. 21 (right to object):
  https://eur-lex.europa.eu/eli/reg/2016/679/oj
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dashboards.kiosk.optouts import OptOuts
from dashboards.kiosk.zones import ZoneFilter

MINUTE = pd.Timedelta(minutes=1)


class Privacy:
    """Home zones and opt-outs, applied to the shapes the screens use.

    Parameters
    ----------
    zones : ZoneFilter
    optouts : OptOuts
    """

    def __init__(self, zones: ZoneFilter, optouts: OptOuts) -> None:
        self.zones = zones
        self.optouts = optouts

    def points(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Positions (``device``, ``latitude``, ``longitude``) outside every home zone.

        The frame comes from the store's queries, which leave out opted-out records already.
        """
        return self.zones.points(frame)

    def key(self) -> tuple[bool, int]:
        """Part of the key of every cached answer: changes when zones apply or the opt-outs change."""
        return self.zones.active, self.optouts.version()

    def latest(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The long frame of :func:`analysis.live.latest` without opted-out values, home zones masked.

        A value whose record is opted out is dropped, not replaced by an
        older one: while a participant opts out, their kit shows nothing new.
        """
        return self.zones.latest(self.optouts.drop(frame))

    def minutes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame of :func:`analysis.live.minute_means` without the minutes that touch an opted-out range."""
        return self.optouts.drop(frame, time="minute", width=MINUTE)

    def event(self, event: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """A live event as a public screen may receive it: None if opted out, else home zones masked."""
        if self.optouts.event(event):
            return None
        return self.zones.event(event)
