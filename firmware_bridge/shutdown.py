"""Waiting for the end of a foreground program: SIGTERM (``kill``, systemd stopping a unit) or Ctrl-C.

Both handlers only set an event or end a wait, so whatever the program
started is stopped by its own ``finally`` block, in order.  Call these
from the main thread: Python runs signal handlers there only, and
``signal.signal`` refuses to be called from another thread.

Sources
-------
- Python ``signal`` module, "Signals and threads" and ``signal.signal``:
  https://docs.python.org/3/library/signal.html
- systemd.kill(5): ``KillSignal=`` is SIGTERM unless a unit says otherwise.
"""

from __future__ import annotations

import signal
import threading


def stop_requested() -> threading.Event:
    """An event that SIGTERM sets (main thread only)."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    return done


def wait_for_stop() -> None:
    """Block until SIGTERM or Ctrl-C (the ``KeyboardInterrupt`` ends the wait and goes no further)."""
    done = stop_requested()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
