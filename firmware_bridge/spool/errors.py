"""Exceptions raised by the spool, each saying what to do about it."""

from __future__ import annotations

import errno
from pathlib import Path


class SpoolError(Exception):
    """Base class of every error the spool raises on purpose."""


class SpoolLocked(SpoolError):
    """Another process (or another :class:`Spool` object) holds the spool directory."""


class SpoolClosed(SpoolError):
    """The spool was used after :meth:`Spool.close`."""


class SpoolIOError(SpoolError, OSError):
    """A real input/output problem (permissions, full disk, failing card).

    Corrupt *content* never raises: it is skipped and counted.  This error is
    for the operating system refusing to read or write; the message names
    the file and what to do.  ``errno`` and ``filename`` are those of the
    underlying :class:`OSError`, which is chained as ``__cause__``.
    """


_ADVICE = {
    errno.ENOSPC: "the file system is full: free space on it, or lower the spool's max_bytes so it fits",
    errno.EDQUOT: "the disk quota is exhausted: free space, raise the quota, or lower the spool's max_bytes",
    errno.EACCES: "permission denied: run the bridge as the owner of the spool directory "
                  "(or fix it with chown/chmod)",
    errno.EPERM: "operation not permitted: run the bridge as the owner of the spool directory "
                 "(or fix it with chown/chmod)",
    errno.EROFS: "the file system is read-only (an SD card that failed or was remounted read-only): "
                 "check `dmesg`, remount it read-write or replace the card",
    errno.EIO: "low-level I/O error: the SD card or USB stick is probably failing; check `dmesg` and replace it",
    errno.ENOTDIR: "a path component is not a directory: point the spool at a directory",
    errno.EISDIR: "a directory is in the way of a spool file: remove it",
    errno.EMFILE: "too many open files in this process: raise `ulimit -n` or look for a descriptor leak",
    errno.ENFILE: "too many open files on this system: raise fs.file-max or look for a descriptor leak",
}


def io_error(exc: OSError, action: str, path: Path | str) -> SpoolIOError:
    """Wrap ``exc`` in a :class:`SpoolIOError` whose message says what failed and what to do.

    Parameters
    ----------
    exc : OSError
        The error the operating system raised.
    action : str
        What the spool was doing, e.g. ``"appending to"``.
    path : Path or str
        The file or directory concerned.
    """
    advice = _ADVICE.get(exc.errno or 0, "check the device holding the spool directory (`dmesg`, `df -h`)")
    err = SpoolIOError(exc.errno or 0, f"spool: error {action} {path}: {exc.strerror or exc}; {advice}")
    err.filename = str(path)
    return err
