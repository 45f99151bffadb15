"""Small file-system helpers: durable writes, directory sync, the lock file."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import SpoolLocked, io_error

LOCK_NAME = "spool.lock"

_datasync = getattr(os, "fdatasync", os.fsync)


def datasync(fd: int, path: Path) -> None:
    """Flush ``fd``'s data (and the size needed to read it back) to the device."""
    try:
        _datasync(fd)
    except OSError as exc:
        raise io_error(exc, "syncing", path) from exc


def sync_dir(dir_fd: int, path: Path) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        raise io_error(exc, "syncing the directory", path) from exc


def write_all(fd: int, data: bytes | memoryview, path: Path, size_before: int) -> None:
    """Write every byte of ``data`` to ``fd`` (looping over short writes).

    On failure the file is cut back to ``size_before`` (its length before the
    call), so a half-written entry never sits in front of later ones, and a
    :class:`~firmware_bridge.spool.errors.SpoolIOError` is raised.
    """
    view = memoryview(data)
    done = 0
    try:
        while done < len(view):
            done += os.write(fd, view[done:])
    except OSError as exc:
        try:
            os.ftruncate(fd, size_before)
        except OSError:
            pass
        raise io_error(exc, "writing to", path) from exc


def discard(tmp: Path) -> None:
    """Remove the temporary file of a failed write; the write's error is the one to report, not this one's."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


def atomic_write(directory: Path, dir_fd: int, name: str, data: bytes, *, sync: bool) -> None:
    """Replace ``directory/name`` by ``data`` atomically (temporary file + :func:`os.replace`).

    With ``sync`` the temporary file and then the directory are synced, so
    after a power loss the file holds either its old or its new contents.
    """
    path = directory / name
    tmp = directory / (name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise io_error(exc, "writing", path) from exc
    if sync:
        sync_dir(dir_fd, directory)


def lock_directory(directory: Path) -> int:
    """Take the exclusive lock of the spool directory; return the lock file's descriptor.

    Raises
    ------
    SpoolLocked
        When another process (or another open spool in this process) holds it.
    """
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise io_error(exc, "opening the lock file", path) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        os.close(fd)
        raise SpoolLocked(
            f"spool directory {directory} is in use by another bridge process (pid {holder}); "
            "stop that process first, or give each bridge its own spool directory") from None
    except OSError as exc:
        os.close(fd)
        raise io_error(exc, "locking", path) from exc
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise io_error(exc, "writing the lock file", path) from exc
    return fd


def unlock(fd: int) -> None:
    """Release and close the lock taken by :func:`lock_directory`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
