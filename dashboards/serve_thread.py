"""A real uvicorn server for an ASGI app, on a free port of 127.0.0.1, in a thread of the calling process.

For tests, benchmarks and notebooks that need the dashboard or the API on a
real socket without a second process: ``with serving(app) as url:`` for one
block; :func:`start_server` and :meth:`Server.stop` where several servers
are held.  The port is bound before uvicorn starts (no race for it), and the
call returns once uvicorn says it has started.

Source: uvicorn's ``Config`` and ``Server`` (``Server.run(sockets=...)``,
``started``, ``should_exit``), https://www.uvicorn.org/deployment/#running-programmatically
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class Server:
    """A uvicorn server running an app in a thread on 127.0.0.1."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 10 s")


def start_server(app: Any, *, timeout: float = 10.0) -> Server:
    """Serve ``app`` on a free port of 127.0.0.1 and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start within {timeout:.0f} s")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", server, thread)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` for the block; yields its base URL (``http://127.0.0.1:<port>``)."""
    running = start_server(app)
    try:
        yield running.url
    finally:
        running.stop()
