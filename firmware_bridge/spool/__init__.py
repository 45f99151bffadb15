"""The bridge's on-disk spool: every record is kept until ingest confirms its commit.

Example::

    from firmware_bridge.spool import Spool

    with Spool(directory) as spool:
        spool.append_many(boot, records)            # on disk (per fsync policy) before publishing
        spool.settle(boot, feedback.settled[boot])  # released once ingest committed them
        spool.tick()                                # from the main loop: the group-commit timer

See ``docs/spool.md`` for the design, the on-disk format and recovery.
"""

from .core import FSYNC_POLICIES, Spool, SpoolStats, segment_name
from .errors import SpoolClosed, SpoolError, SpoolIOError, SpoolLocked

__all__ = ["FSYNC_POLICIES", "Spool", "SpoolClosed", "SpoolError", "SpoolIOError", "SpoolLocked", "SpoolStats",
           "segment_name"]
