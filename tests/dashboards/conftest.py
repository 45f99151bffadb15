"""Fixtures for dashboard tests: a real DuckDB file, a live hub and a real uvicorn server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import uvicorn
from fastapi import FastAPI

from harness import wait_until
from readings_table import create_readings

from dashboards.live import LiveHub


@dataclass
class Server:
    """A uvicorn server running an app in a thread on 127.0.0.1."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def start_server(app: FastAPI) -> Server:
    """Serve ``app`` on a free port of 127.0.0.1 and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    wait_until(lambda: server.started, timeout=5, what="uvicorn to start")
    return Server(f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB store file with table ``readings``, as ingest would own it."""
    con = duckdb.connect(str(tmp_path / "qsec.duckdb"))
    create_readings(con)
    yield con
    con.close()


@pytest.fixture
def hub() -> Iterator[LiveHub]:
    """The live hub; closed at the end so open event streams end."""
    live = LiveHub()
    yield live
    live.close()


@pytest.fixture
def serve(hub: LiveHub) -> Iterator[Callable[[FastAPI], str]]:
    """Start apps on real servers; returns their base URL.  Streams are ended before shutdown."""
    servers: list[Server] = []

    def _serve(app: FastAPI) -> str:
        servers.append(start_server(app))
        return servers[-1].url

    yield _serve
    hub.close()
    for server in servers:
        server.stop()
