"""UTC conversions between callers (aware datetimes) and the store (naive UTC).

The store keeps ``TIMESTAMP`` columns without a time zone, always UTC (see
``docs/store.md``).  Functions in :mod:`analysis` accept aware or naive
datetimes, compare against the store in naive UTC, and return aware UTC
timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

import pandas as pd

TimeLike: TypeAlias = datetime | pd.Timestamp | str


def to_store_time(when: TimeLike) -> datetime:
    """Convert a time to the store's representation: a naive UTC datetime.

    Parameters
    ----------
    when : datetime, pandas.Timestamp or ISO 8601 str
        An aware time (any zone) is converted to UTC; a naive one is taken
        to be UTC already.

    Returns
    -------
    datetime
        Naive datetime in UTC, microsecond precision.
    """
    ts = pd.Timestamp(when)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    result: datetime = ts.to_pydatetime()
    return result


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def localize_utc(values: pd.Series) -> pd.Series:
    """Mark a column of naive UTC timestamps from the store as UTC-aware.

    Parameters
    ----------
    values : Series of datetime64 (naive, UTC)

    Returns
    -------
    Series of datetime64 [UTC]
    """
    return pd.to_datetime(values).dt.tz_localize("UTC")
