"""A foreground program (the simulator, ``qsec`` commands) waits for SIGTERM or Ctrl-C, then stops what it started."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator

import pytest

from firmware_bridge.shutdown import stop_requested, wait_for_stop


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def waiting(thread_id: int) -> bool:
    """Whether the thread is blocked in the wait of :func:`wait_for_stop` (its innermost frame is an Event's wait)."""
    frame = sys._current_frames().get(thread_id)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return bool(names) and names[0] == "wait" and "wait_for_stop" in names


def send_while_waiting(sig: int) -> threading.Thread:
    """From another thread: send ``sig`` to the main thread once it waits in :func:`wait_for_stop`.

    Aimed at the main thread, where Python runs handlers: a signal the
    kernel hands to another thread would not interrupt the main thread's wait.
    """
    main = threading.main_thread().ident
    assert main is not None

    def send() -> None:
        for _ in range(500):  # up to 5 s
            if waiting(main):
                signal.pthread_kill(main, sig)
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_sigterm_ends_the_wait(sigterm_restored: None) -> None:
    sender = send_while_waiting(signal.SIGTERM)
    wait_for_stop()
    sender.join(timeout=5)
    assert not sender.is_alive()


def test_ctrl_c_ends_the_wait_without_raising(sigterm_restored: None) -> None:
    sender = send_while_waiting(signal.SIGINT)
    wait_for_stop()  # a KeyboardInterrupt would fail the test
    sender.join(timeout=5)
    assert not sender.is_alive()


def test_stop_requested_is_set_by_sigterm_only(sigterm_restored: None) -> None:
    done = stop_requested()
    assert not done.is_set()
    signal.raise_signal(signal.SIGTERM)  # to this (the main) thread, where the handler runs
    assert done.wait(timeout=5)
