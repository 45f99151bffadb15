"""Group commit: when the spool's files and directory are synced, per the ``fsync`` policy.

See ``docs/spool.md`` ("Durability") for what each policy may lose on a power cut.
"""

from __future__ import annotations

import os

from ._base import ACKS_NAME, SpoolBase
from ._files import datasync, sync_dir


class Committing(SpoolBase):
    """Syncs what was written: at once (``always``), by the group-commit timer (``group``) or on request."""

    def _after_write(self) -> None:
        if self.fsync == "always":
            self._sync_files()
        elif self.fsync == "group" and self._clock() - self._last_flush >= self.group_interval_s:
            self._sync_files()

    def _dirty(self) -> bool:
        return bool(self._seg_dirty or self._acks_dirty or self._closing or self._dir_dirty or self._doomed
                    or self._unsynced)

    def _sync_files(self) -> None:
        """One commit: sync every written file and the directory, then unlink settled segments."""
        if self._seg_dirty and self._active_fd is not None and self._active is not None:
            datasync(self._active_fd, self._active.path)
        self._seg_dirty = False
        while self._closing:
            path, fd = self._closing[-1]
            try:
                datasync(fd, path)
            finally:
                self._closing.pop()
                os.close(fd)
        if self._dir_dirty:
            sync_dir(self._dir_fd, self.directory)
            self._dir_dirty = False
        if self._acks_dirty and self._acks_fd is not None:
            datasync(self._acks_fd, self.directory / ACKS_NAME)
        self._acks_dirty = False
        self._unlink_doomed()
        while self._unsynced:
            seg = self._segments.get(self._unsynced.pop())
            if seg is not None:
                datasync(self._reader(seg), seg.path)
        self._last_flush = self._clock()

    def _unlink_doomed(self) -> None:
        """Unlink settled segments, once the settlements are synced.

        Syncing acks.log first keeps ``settled_total`` (rebuilt from it after
        a power cut) counting the records of the removed files.
        """
        if self._acks_dirty and self._acks_fd is not None and self._sync:
            datasync(self._acks_fd, self.directory / ACKS_NAME)
            self._acks_dirty = False
        while self._doomed:
            self._unlink_quietly(self._doomed.pop())
