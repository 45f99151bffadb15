"""A simulated serial device: one pseudo-terminal pair behind a stable symlink.

The simulator holds the master end; the bridge opens the symlink, which
points at the slave end (``/dev/pts/N``), with pyserial, as it would open
``/dev/serial/by-id/…`` for a USB adapter.

Notes
-----
- The slave is set raw (``tty.setraw``) as soon as it exists: bytes written
  before pyserial opens the port would otherwise go through cooked mode
  (CR/LF translation, echo) and binary frames would be altered.
- The simulator keeps the slave open itself, so that the master does not
  see EIO whenever the bridge closes the port.
- Unplugging closes both ends: the bridge's ``read()`` raises
  ``SerialException`` and buffered bytes are lost, as with a USB adapter
  pulled out.  :meth:`PtyPort.unplug` also removes the symlink (udev removes
  ``/dev/serial/by-id`` links); :meth:`PtyPort.replug` opens a new pair and
  re-points the link atomically (``os.replace``), so the link never dangles.
- pyserial's ``open()`` flushes the input buffer (``tcflush``): frames
  written before the bridge opened the port are counted as sent by the kit
  but never read.
- The master is non-blocking.  When nobody reads the slave, the kernel's
  buffer (tens of KiB) fills up and further frames are dropped: a frame that
  cannot be written whole within :attr:`PtyPort.write_timeout_s` is counted
  as not sent (the bytes already written make a torn frame, as on a real line).
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from pathlib import Path


class PtyPort:
    """One pseudo-terminal pair, its master end, and a symlink to its slave end.

    Parameters
    ----------
    link : the stable path the bridge opens (created, replaced or removed here)
    """

    write_timeout_s = 0.05

    def __init__(self, link: str | os.PathLike[str]):
        self.link = Path(link)
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_name: str | None = None
        self.plug()

    # ------------------------------------------------------------ plugging
    @property
    def plugged(self) -> bool:
        return self._master is not None

    def fileno(self) -> int | None:
        """The master's file descriptor, or ``None`` while unplugged."""
        return self._master

    def plug(self) -> str:
        """Open a new pty pair (if unplugged) and point the link at it; returns the slave's name."""
        with self._lock:
            if self._master is None:
                master, slave = os.openpty()
                tty.setraw(slave)
                os.set_blocking(master, False)
                self._master, self._slave = master, slave
                self.slave_name = os.ttyname(slave)
            assert self.slave_name is not None
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link)
            return self.slave_name

    def unplug(self, *, remove_link: bool = True) -> None:
        """Close both ends (the bridge sees the device vanish) and remove the link."""
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None
            self.slave_name = None
            if remove_link:
                self.link.unlink(missing_ok=True)

    def replug(self) -> str:
        """Unplug, then plug a new pty pair; the link is re-pointed atomically."""
        with self._lock:
            self.unplug(remove_link=False)
            return self.plug()

    def close(self) -> None:
        self.unplug(remove_link=True)

    # ------------------------------------------------------------ traffic
    def write(self, data: bytes) -> bool:
        """Write ``data`` whole to the master; False if unplugged or the buffer stays full."""
        with self._lock:
            fd = self._master
            if fd is None:
                return False
            view = memoryview(data)
            deadline = time.monotonic() + self.write_timeout_s
            while view:
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                select.select([], [fd], [], left)
            return True

    def read(self, size: int = 4096) -> bytes:
        """What the bridge wrote to the device since the last call (non-blocking)."""
        with self._lock:
            fd = self._master
            if fd is None:
                return b""
            try:
                return os.read(fd, size)
            except BlockingIOError:
                return b""
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return b""
                raise
