"""Export of pending records to a JSON-lines file for ``qsec import``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Iterable

from qsec import contract

from ._files import discard
from .errors import io_error

EXPORT_VERSION = 1
BATCH_RECORDS = 500


def _batch_lines(device: str, boot: str, records: list[contract.Record]) -> list[bytes]:
    """Encode records of one boot as Batch lines, halving a batch that passes the payload limit."""
    try:
        return [contract.encode_batch(contract.Batch(device=device, boot=boot, records=tuple(records)))]
    except contract.PayloadTooLarge:
        if len(records) == 1:
            raise
        half = len(records) // 2
        return _batch_lines(device, boot, records[:half]) + _batch_lines(device, boot, records[half:])


def write_export(out_path: Path, device: str, campaign: str,
                 chunks: Iterable[list[tuple[str, contract.Record]]]) -> int:
    """Write the export file (see :meth:`Spool.export`); return how many records it holds.

    Raises
    ------
    ValueError
        When ``device`` or ``campaign`` breaks the contract's id pattern.
    SpoolIOError
        When the file cannot be written (full or read-only stick, permissions).
    """
    for what, value in (("device", device), ("campaign", campaign)):
        if not isinstance(value, str) or not contract.ID_PATTERN.match(value):
            raise ValueError(f"{what} id {value!r} must match {contract.ID_PATTERN.pattern}")
    tmp = out_path.with_name(out_path.name + ".tmp")
    header = {"qsec_spool_export": EXPORT_VERSION, "device": device, "campaign": campaign,
              "exported": time.time_ns() // 1_000_000}
    count = 0
    try:
        with open(tmp, "wb") as f:
            f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            boot: str | None = None
            batch: list[contract.Record] = []
            for chunk in chunks:
                for rec_boot, record in chunk:
                    if batch and (rec_boot != boot or len(batch) >= BATCH_RECORDS):
                        count += _emit(f, device, boot, batch)  # type: ignore[arg-type]
                        batch = []
                    boot = rec_boot
                    batch.append(record)
            if batch:
                count += _emit(f, device, boot, batch)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
        _sync_parent(out_path)
    except OSError as exc:
        discard(tmp)
        raise io_error(exc, "exporting to", out_path) from exc
    return count


def _emit(f: IO[bytes], device: str, boot: str, batch: list[contract.Record]) -> int:
    for line in _batch_lines(device, boot, batch):
        f.write(line + b"\n")
    return len(batch)


def _sync_parent(path: Path) -> None:
    """Sync the directory holding ``path`` so the rename lasts; best effort.

    Some file systems of USB sticks refuse to sync a directory; the file
    itself is already synced then, so that refusal is not an error.
    """
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
