"""Shared test harness: real services or a clear skip (a failure under CI=true)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from qsec.broker import MosquittoProcess, find_mosquitto, mqtt_answers

from harness import require


@pytest.fixture(scope="session")
def broker() -> Iterator[tuple[str, int]]:
    """The machine's Mosquitto on 127.0.0.1:1883, or a private one when that does not answer."""
    if mqtt_answers("127.0.0.1", 1883):
        yield ("127.0.0.1", 1883)
        return
    require(find_mosquitto() is not None, "no MQTT broker on 127.0.0.1:1883 and no mosquitto binary "
                                          "(apt-get install mosquitto)")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qsec-broker-") as d, MosquittoProcess(Path(d)) as m:
        yield ("127.0.0.1", m.port)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A mosquitto process of the test's own, on a free port, that the test may stop, kill or restart."""
    require(find_mosquitto() is not None, "no mosquitto binary (apt-get install mosquitto)")
    m = MosquittoProcess(tmp_path / "broker").start()
    try:
        yield m
    finally:
        m.stop()


_UNIQUES: set[str] = set()


@pytest.fixture
def unique() -> str:
    """A short id unique to this test run, for campaign/device/client ids on a shared broker."""
    u = uuid.uuid4().hex[:8]
    _UNIQUES.add(u)
    return u


@pytest.fixture(scope="session", autouse=True)
def _clear_retained_messages_of_the_session() -> Iterator[None]:
    """After the session, clear the retained messages its tests left on the machine's broker.

    Bridges publish a retained ``…/status``; on the shared broker of 127.0.0.1:1883 those of test kits
    (ids holding a ``unique``) would otherwise stay for ever and show in every ``qsec status``.  An empty
    retained message removes one (MQTT 5.0 §3.3.1.3).
    """
    yield
    if not _UNIQUES or not mqtt_answers("127.0.0.1", 1883):
        return
    from retained import clear_retained

    clear_retained("127.0.0.1", 1883, lambda topic: any(u in topic for u in _UNIQUES))
