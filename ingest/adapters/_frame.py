"""Vectorised checks for tabular sources (CSV archives and exports), with pandas.

A CSV adapter maps a chunk of rows to a :class:`Frame` (qsec quantity
columns, times, identities) with column operations only; :func:`to_result`
then applies the contract's record checks (the same, in the same order, as
:func:`qsec.contract.check_record`) as column operations, and builds one
:class:`~qsec.contract.Record` per good row.  Per-row Python runs only to
build those records (the store's input) and the details of refused rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pandas as pd

from ingest.adapters import AdapterResult, dead_topic
from ingest.store import DeadLetter
from qsec import contract
from qsec.quantities import QUANTITIES

CHUNK_ROWS = 50_000


@dataclass
class Frame:
    """A chunk of tabular rows mapped to qsec's columns (one row, one record).

    campaign, device, boot, sensor : object arrays of ids
    t_ms : float array, measurement time [ms since epoch, UTC], NaN where unreadable
    seq : float array (NaN where unreadable), or ``None`` for the identity rule ``seq = t``
    flags : int array or ``None``
    values : quantity columns [qsec units], NaN where absent
    not_numeric : same shape as ``values``: text present but not a number
    unknown : per row, what maps to no quantity, e.g. ``column 'P7'`` (``None`` if nothing)
    bad_row : per row, a message when the row is malformed (an id breaking its pattern, extra fields)
    raw, source : the dead letter's ``raw`` text and ``source`` for row ``i``
    """

    campaign: np.ndarray
    device: np.ndarray
    boot: np.ndarray
    sensor: np.ndarray
    t_ms: np.ndarray
    values: pd.DataFrame
    not_numeric: pd.DataFrame
    unknown: np.ndarray
    raw: Callable[[int], str]
    source: Callable[[int], str]
    seq: np.ndarray | None = None
    flags: np.ndarray | None = None
    bad_row: np.ndarray | None = None


def numeric(text: pd.DataFrame, na: tuple[str, ...] = ("", "null", "nan", "NaN")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text columns as floats, and where a cell held text that is not a number."""
    values = text.apply(pd.to_numeric, errors="coerce").astype(float)
    values = values.mask(np.isinf(values))  # "inf" is not a measurement
    present = ~text.isin(na) & text.notna()
    return values, present & values.isna()


def iso_ms(text: pd.Series) -> np.ndarray:
    """ISO 8601 date-times as ms since epoch, UTC (float, NaN where unreadable); no offset means UTC."""
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    ms = parsed.to_numpy(dtype="datetime64[ms]").astype("int64").astype(float)
    ms[parsed.isna().to_numpy()] = np.nan
    return ms


def to_result(f: Frame, *, adapter: str, received_ms: int, not_before_ms: int | None = None,
              limits: contract.Limits = contract.LIMITS, campaign: str = "unknown") -> AdapterResult:
    """Check every row as :func:`qsec.contract.check_record` would; good rows become records.

    ``campaign`` names the dead letters of rows whose own campaign id is unusable.
    """
    n = len(f.t_ms)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)

    def mark(mask: npt.ArrayLike, code: str, explain: Callable[[int], str]) -> None:
        idx = np.flatnonzero(np.asarray(mask, dtype=bool) & pd.isna(reason))
        reason[idx] = code
        for i in idx:
            detail[i] = explain(int(i))

    t = f.t_ms
    seq = t if f.seq is None else f.seq
    if f.bad_row is not None:
        bad_row = f.bad_row
        mark(pd.notna(bad_row), "bad_schema", lambda i: str(bad_row[i]))
    if f.seq is not None:
        mark(np.isnan(seq) | (seq < 0) | (seq > limits.max_seq) | (seq != np.floor(seq)), "bad_schema",
             lambda i: f"seq must be an integer from 0 to {limits.max_seq}")
    mark(np.isnan(t) | (t < 0), "bad_time", lambda i: "time is missing or not an ISO 8601 date-time")
    mark(t > received_ms + limits.future_skew_ms, "future_time",
         lambda i: f"record time is {(t[i] - received_ms) / 1000:.0f} s in the future (skew allowed: "
                   f"{limits.future_skew_ms / 1000:.0f} s); check the device clock")
    if not_before_ms is not None:
        mark(t < not_before_ms, "before_campaign",
             lambda i: f"record time {int(t[i])} is before the campaign starts ({not_before_ms})")
    sensors = pd.Series(f.sensor, dtype=object)
    valid = [s for s in sensors.unique() if isinstance(s, str) and contract.SENSOR_PATTERN.match(s)]
    sensor_ok = sensors.isin(valid).to_numpy()
    mark(~sensor_ok, "bad_schema", lambda i: f"record sensor {f.sensor[i]!r} must match {contract.SENSOR_PATTERN.pattern}")
    present = f.values.notna().to_numpy()
    count = present.sum(axis=1) if n else np.zeros(0, int)
    unknown_mask = pd.notna(f.unknown)
    mark((count == 0) & ~unknown_mask, "bad_schema", lambda i: "the row has no value (empty measurement columns)")
    mark(count > limits.max_values, "bad_schema",
         lambda i: f"{count[i]} values in one record; the limit is {limits.max_values}")
    mark(unknown_mask, "unknown_quantity", lambda i: f"{f.unknown[i]} has no qsec quantity in the adapter's table "
                                                     "(see docs/adapters.md)")
    cols = list(f.values.columns)
    bad_text = f.not_numeric.to_numpy()
    mark(bad_text.any(axis=1), "bad_schema",
         lambda i: f"{cols[int(bad_text[i].argmax())]} value is not a finite number")
    arr = f.values.to_numpy(dtype=float)
    lo = np.array([QUANTITIES[c].minimum for c in cols])
    hi = np.array([QUANTITIES[c].maximum for c in cols])
    with np.errstate(invalid="ignore"):
        outside = (arr < lo) | (arr > hi) | np.isinf(arr)

    def range_detail(i: int) -> str:
        q = QUANTITIES[cols[int(outside[i].argmax())]]
        return f"{q.name}={arr[i][int(outside[i].argmax())]} {q.unit} is outside {q.minimum}..{q.maximum} {q.unit}"

    mark(outside.any(axis=1), "out_of_range", range_detail)

    out = AdapterResult()
    good = np.flatnonzero(pd.isna(reason))
    if len(good):
        good_values = arr[good]
        if not np.isnan(good_values).any():  # every row carries every column: no per-value test
            values_list = [dict(zip(cols, row)) for row in good_values.tolist()]
        else:
            values_list = [{c: x for c, x in zip(cols, row) if not math.isnan(x)} for row in good_values.tolist()]
        flags = f.flags[good].tolist() if f.flags is not None else [0] * len(good)
        records = map(contract.Record, np.asarray(seq)[good].astype(np.int64).tolist(),
                      t[good].astype(np.int64).tolist(), f.sensor[good].tolist(), values_list, flags)
        out.rows = list(zip(f.campaign[good].tolist(), f.device[good].tolist(), f.boot[good].tolist(), records))
    camp, dev, boot = f.campaign, f.device, f.boot
    for i in np.flatnonzero(pd.notna(reason)).tolist():
        s = seq[i]
        ok_id = _is_id(dev[i])
        out.refused.append(DeadLetter(
            dead_topic(adapter, camp[i] if _is_id(camp[i]) else campaign, f.source(i)), str(reason[i]),
            str(detail[i]), f.raw(i), dev[i] if ok_id else None, boot[i] if isinstance(boot[i], str) else None,
            int(s) if not math.isnan(s) and 0 <= s <= limits.max_seq and s == int(s) else None))
    return out


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(contract.ID_PATTERN.match(value))


def check_all(frames: list[Frame], adapter: str, received_ms: int, context: dict) -> AdapterResult:
    """:func:`to_result` over several frames, with ``not_before_ms`` and ``limits`` from the adapter context."""
    out = AdapterResult()
    for f in frames:
        out.extend(to_result(f, adapter=adapter, received_ms=received_ms, not_before_ms=context.get("not_before_ms"),
                             limits=context.get("limits", contract.LIMITS),
                             campaign=context.get("campaign") or "unknown"))
    return out


def guarded(adapter: str, source: str, payload: bytes, context: dict, decode: Callable[[], AdapterResult]) -> AdapterResult:
    """Run a CSV decoder, turning an unreadable payload into one dead letter (decoders are total)."""
    try:
        return decode()
    except contract.ContractError as exc:
        reason, detail = exc.reason, str(exc)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        reason, detail = "bad_schema", f"the CSV cannot be read: {exc}"
    campaign = context.get("campaign") or "unknown"
    return AdapterResult(refused=[DeadLetter(dead_topic(adapter, campaign, source), reason, detail,
                                             payload.decode("utf-8", "replace"))])


# ---------------------------------------------------------------- reading files
def open_text(path: Path) -> IO[str]:
    """A text file, decompressed on the fly when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def header_names(line: str, sep: str, required: Iterable[str], what: str) -> list[str]:
    """The column names of a CSV header line, checked for the ``required`` ones and for repeats.

    Raises
    ------
    contract.BadSchema
        Naming what is missing, so that the message says which file format was expected.
    """
    names = [c.strip() for c in next(csv.reader([line], delimiter=sep), [])]
    missing = [c for c in required if c not in names]
    if missing:
        raise contract.BadSchema(f"not a {what}: the header lacks {', '.join(missing)} (see docs/import.md)")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise contract.BadSchema(f"the header names {', '.join(repeated)} more than once")
    return names


SPARE = 16  # extra columns read so that a line with too many fields is refused, not lost


def read_csv_text(source: IO[str], names: list[str], sep: str, rows: int | None = None):
    """String DataFrame(s) of a CSV body (after its header lines), every cell kept as text.

    ``SPARE`` extra columns catch lines with too many fields (see
    :func:`extra_fields`); a line with even more fields stops the read with
    an error naming it.  Blank lines are skipped.
    """
    return pd.read_csv(source, sep=sep, header=None, names=[*names, *(f"__extra{i}" for i in range(SPARE))],
                       dtype=str, keep_default_na=False, index_col=False, chunksize=rows, engine="c")


def split_extra(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame without the spare columns, and per row a message when it had too many fields."""
    extra = [c for c in frame.columns if c.startswith("__extra")]
    over = (frame[extra].fillna("") != "").any(axis=1).to_numpy()
    msg = np.full(len(frame), None, dtype=object)
    msg[over] = "the line has more fields than the header"
    return frame.drop(columns=extra).fillna(""), msg


def first_label(mask: np.ndarray, labels: list[str]) -> np.ndarray:
    """Per row of a boolean matrix, the label of its first true column, or ``None`` (an object array)."""
    out = np.full(mask.shape[0], None, dtype=object)
    if mask.shape[1]:
        rows = mask.any(axis=1)
        out[rows] = np.array(labels, dtype=object)[mask[rows].argmax(axis=1)]
    return out


def joined(frame: pd.DataFrame, sep: str, i: int) -> str:
    """Row ``i`` of a string frame (spare columns included) written back as a CSV line."""
    cells = ["" if pd.isna(x) else str(x) for x in frame.iloc[i].tolist()]
    names = list(frame.columns)
    while cells and names[len(cells) - 1].startswith("__extra") and cells[-1] == "":
        cells.pop()
    return sep.join(cells)


def tell(handle: IO[str]) -> int:
    """Bytes read so far from a file opened by :func:`open_text` (compressed bytes for ``.gz``)."""
    raw = getattr(handle, "buffer", handle)
    raw = getattr(raw, "fileobj", raw)  # gzip: the compressed file underneath
    try:
        return int(raw.tell())
    except (OSError, ValueError, AttributeError):
        return 0
