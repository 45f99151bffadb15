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


@pytest.fixture
def unique() -> str:
    """A short id unique to this test run, for campaign/device/client ids on a shared broker."""
    return uuid.uuid4().hex[:8]
