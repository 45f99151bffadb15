"""A small real HTTP server for tests: answers as scripted and records every request.

No InfluxDB-compatible server produces 400, 413, 429, 5xx or 401 on demand
(docs ENV-NOTES, "InfluxDB-compatible servers"), so the mirror's error classes
are tested against this one: a ``ThreadingHTTPServer`` on 127.0.0.1 (HTTP/1.1,
keep-alive, gzip bodies decoded).  Replies come from the script queue first,
then from the responder, else 204.

    with ScriptedHTTPServer() as srv:
        srv.script(Reply(429, {"Retry-After": "2"}), Reply(204))
        ...  # point the client at srv.url
        assert [len(r.lines) for r in srv.requests] == [...]

Standard library: https://docs.python.org/3/library/http.server.html
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True)
class Request:
    """One request as received (body decompressed and decoded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.body.split("\n") if ln]


Responder = Callable[[Request], Reply]


def influx_error(status: int, message: str, **extra: object) -> Reply:
    """An InfluxDB v2-style error reply: JSON ``{"code", "message", …}``."""
    code = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not found", 413: "request too large",
            422: "unprocessable entity", 429: "too many requests"}.get(status, "internal error")
    return Reply(status, {"Content-Type": "application/json"}, json.dumps({"code": code, "message": message, **extra}))


def influx1_error(status: int, message: str) -> Reply:
    """An InfluxDB 1.x-style error reply: JSON ``{"error": …}`` and the same text in ``X-InfluxDB-Error``
    (influxdata/influxdb ``services/httpd/handler.go``, ``httpError``)."""
    return Reply(status, {"Content-Type": "application/json", "X-InfluxDB-Error": message[:1024]},
                 json.dumps({"error": message}))


def partial_writer(is_bad: Callable[[str], bool], *, name_first_line: bool,
                   stored: list[str]) -> Responder:
    """A responder acting like InfluxDB 2 on a partial write.

    The good lines of each request are appended to ``stored``; when some are bad it
    answers 400, naming the first bad line (1-based ``line``) when ``name_first_line``.
    """

    def respond(req: Request) -> Reply:
        lines = req.lines
        bad = [i for i, ln in enumerate(lines, start=1) if is_bad(ln)]
        stored.extend(ln for ln in lines if not is_bad(ln))
        if not bad:
            return Reply(204)
        extra = {"line": bad[0]} if name_first_line else {}
        return influx_error(400, f"partial write error ({len(lines) - len(bad)} written): unable to parse "
                                 f"'{lines[bad[0] - 1]}': invalid field", **extra)

    return respond


class ScriptedHTTPServer:
    """A scripted HTTP server on 127.0.0.1 (a free port unless ``port`` is given), in a thread of its own."""

    def __init__(self, responder: Responder | None = None, *, port: int = 0):
        self.responder = responder
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without this, Nagle's algorithm and the client's
                # delayed ACK add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                              {k: v for k, v in self.headers.items()}, raw.decode("utf-8", "replace"))
                reply = outer._answer(req)
                data = reply.body.encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="scripted-http",
                                        daemon=True)

    def _answer(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            if self._script:
                return self._script.popleft()
        return self.responder(req) if self.responder else Reply(204)

    def script(self, *replies: Reply) -> None:
        """Queue replies, used in order before the responder."""
        with self._lock:
            self._script.extend(replies)

    @property
    def writes(self) -> list[Request]:
        """The requests to ``/api/v2/write``."""
        with self._lock:
            return [r for r in self.requests if r.path == "/api/v2/write"]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
