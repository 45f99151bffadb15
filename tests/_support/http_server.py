"""Tests serve apps on a real uvicorn server through :mod:`dashboards.serve_thread` (one implementation)."""

from dashboards.serve_thread import Server, serving, start_server

__all__ = ["Server", "serving", "start_server"]
