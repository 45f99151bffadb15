"""Records and file helpers shared by the spool tests (``tests/firmware_bridge/test_spool*.py``).

The spool's file format (entries found by :func:`firmware_bridge.spool._format.scan`)
is described in ``firmware_bridge/spool/_format.py``.
"""

from __future__ import annotations

from pathlib import Path

from firmware_bridge.spool import Spool
from firmware_bridge.spool import _format as fmt
from qsec.contract import Record

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000


def rec(seq: int, **values: float) -> Record:
    return Record(seq=seq, t=T0 + 1000 * seq, sensor="plantower-pms5003",
                  values=values or {"pm2_5": 5.0 + seq % 7, "pm10": 9.5})


def recs(lo: int, hi: int) -> list[Record]:
    return [rec(s) for s in range(lo, hi)]


def seqs(pending: list[tuple[str, Record]]) -> list[tuple[str, int]]:
    return [(boot, r.seq) for boot, r in pending]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log"))


def entry_bounds(path: Path) -> list[tuple[int, int]]:
    """(start, end) of every entry in a spool file."""
    data = path.read_bytes()
    return [(e.start, e.end) for e in fmt.scan(data) if isinstance(e, fmt.Entry)]


def crash(spool: Spool) -> None:
    """What kill -9 leaves behind: every byte written so far, no sync, no state saved, the lock released."""
    spool._closed = True
    spool._close_fds()
