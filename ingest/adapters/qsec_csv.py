"""qsec's own CSV: one row per record, the columns of the store's ``readings`` table.

Source: docs/store.md (the ``readings`` table) and docs/contract.md (ids,
quantities, units).  A header row names the columns, in any order::

    campaign,device,boot,seq,time,sensor,flags,received,pm1,pm2_5,pm10,…
    versailles-2026,kit-01,019ab3c4d5e6f1a2b3c4d5e6,120,2026-03-01 12:00:00.000,plantower-pms5003,0,…

Required: ``device``, ``boot``, ``seq``, ``time``, ``sensor``.  ``campaign``
(else the ``campaign`` context value) and ``flags`` (else 0) are optional;
``received`` is ignored (the store sets its own); every other column must be
a quantity of docs/contract.md in its unit, an empty cell meaning "not
measured".  Times are ISO 8601, UTC when they carry no offset.  Rows keep
their own ``(device, boot, seq)``: re-importing an export stores nothing twice.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ingest.adapters import Adapter, AdapterResult
from ingest.adapters import _frame as tab
from ingest.adapters._frame import Frame
from qsec import contract
from qsec.quantities import QUANTITIES

NAME = "qsec-csv"
SEP = ","
REQUIRED = ("device", "boot", "seq", "time", "sensor")
META = ("campaign", "flags", "received")


def sniff(head: bytes) -> bool:
    first = head.decode("utf-8", "replace").lstrip("\ufeff").split("\n", 1)[0].strip()
    names = {c.strip() for c in first.split(SEP)}
    return set(REQUIRED) <= names


def _names(line: str) -> list[str]:
    return tab.header_names(line, SEP, REQUIRED, "qsec CSV")


def _frame(full: pd.DataFrame, *, header: str, name: str, first_row: int, campaign: str | None) -> Frame:
    full = full.reset_index(drop=True)
    text, too_many = tab.split_extra(full)
    n = len(text)
    qcols = [c for c in text.columns if c in QUANTITIES]
    others = [c for c in text.columns if c not in QUANTITIES and c not in REQUIRED and c not in META]
    values, not_num = tab.numeric(text[qcols])
    camp = text["campaign"].str.strip() if "campaign" in text else pd.Series([campaign or ""] * n)
    camp = camp.where(camp != "", campaign or "")
    dev, boot, sensor = (text[c].str.strip() for c in ("device", "boot", "sensor"))
    bad = np.where(~camp.str.match(contract.ID_PATTERN.pattern), "campaign id is missing or breaks "
                   f"{contract.ID_PATTERN.pattern} (give --campaign for rows without one)", too_many)
    bad = np.where(~dev.str.match(contract.ID_PATTERN.pattern), f"device id breaks {contract.ID_PATTERN.pattern}", bad)
    bad = np.where(~boot.str.match(contract.BOOT_PATTERN.pattern), f"boot id breaks {contract.BOOT_PATTERN.pattern}",
                   bad)
    seq = pd.to_numeric(text["seq"], errors="coerce").to_numpy(dtype=float)
    flags_f = pd.to_numeric(text["flags"], errors="coerce") if "flags" in text else pd.Series(np.zeros(n))
    flags_f = flags_f.where(text["flags"].str.strip() != "", 0) if "flags" in text else flags_f
    flags_ok = flags_f.between(0, 2**16 - 1) & (flags_f == flags_f.round())
    bad = np.where(~flags_ok.to_numpy(), "flags must be an integer from 0 to 65535", bad)
    present = ~text[others].isin(("", "null", "nan")).to_numpy() if others else np.zeros((n, 0), bool)
    unknown = tab.first_label(present, [f"column {c!r}" for c in others])

    return Frame(campaign=camp.to_numpy(dtype=object), device=dev.to_numpy(dtype=object),
                 boot=boot.to_numpy(dtype=object), sensor=sensor.to_numpy(dtype=object), t_ms=tab.iso_ms(text["time"]),
                 values=values, not_numeric=not_num, unknown=unknown,
                 raw=lambda i: header + "\n" + tab.joined(full, SEP, i), source=lambda i: f"{name}#row{first_row + i + 1}",
                 seq=seq, flags=flags_f.fillna(0).astype(np.int64).to_numpy(), bad_row=bad)


def _decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode a qsec CSV (or its header and one line, as a dead letter keeps it).

    Context: ``campaign`` (for rows without one; optional), ``not_before_ms``.
    """
    buf = io.StringIO(payload.decode("utf-8", "replace").lstrip("\ufeff"))
    header = buf.readline().rstrip("\r\n")
    text = tab.read_csv_text(buf, _names(header), SEP)
    frame = _frame(text, header=header, name=source.split("#", 1)[0], first_row=0, campaign=context.get("campaign"))
    return tab.check_all([frame], NAME, received_ms, context)


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """See :func:`_decode`; an unreadable CSV becomes one dead letter."""
    return tab.guarded(NAME, source, payload, context,
                       lambda: _decode(payload, source=source, received_ms=received_ms, **context))


def read_file(path: Path, *, received_ms: int, rows: int = tab.CHUNK_ROWS,
              **context: Any) -> Iterator[tuple[AdapterResult, int]]:
    """Decode a (possibly ``.gz``) qsec CSV chunk by chunk: ``(result, bytes read so far)``."""
    with tab.open_text(path) as handle:
        header = _header(handle)
        done = 0
        for text in tab.read_csv_text(handle, _names(header), SEP, rows):
            frame = _frame(text, header=header, name=path.name, first_row=done, campaign=context.get("campaign"))
            done += len(text)
            yield tab.check_all([frame], NAME, received_ms, context), tab.tell(handle)


def _header(handle: IO[str]) -> str:
    return handle.readline().lstrip("\ufeff").rstrip("\r\n")


ADAPTER = Adapter(NAME, decode, "qsec's own CSV export: the store's readings columns", sniff=sniff, read_file=read_file)
