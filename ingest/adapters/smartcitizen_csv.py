"""Smart Citizen Kit SD-card CSV files, and files in the same four-header layout.

Sources
-------
- Firmware ``fablabbcn/smartcitizen-kit-2x``: ``sam/src/SckBase.cpp``
  ``SckBase::saveHeader`` (four header rows: ``TIME`` then the short titles;
  ``ISO 8601`` then the units; ``Time`` then the titles; an empty cell then the
  platform sensor ids, ``0`` for a sensor the platform has no id for; lines end
  in CRLF), ``SckBase::sdPublish`` (one file a day, ``YY-MM-DD.CSV``; renamed
  ``YY-MM-DD_NN.CSV`` when the set of sensors changes) and ``sam/src/SckList.cpp``
  ``SckList::_formatSD`` (one row per reading group: the time as
  ``SckBase::epoch2iso`` writes it, ``YYYY-MM-DDTHH:MM:SSZ``, then every
  enabled sensor's value, ``null`` where it has none); the sensor table
  ``lib/Sensors/Sensors.h``, whose short titles may repeat (``AS7331_UVA``
  names two sensors) while the ids do not.
- Platform ``fablabbcn/smartcitizen-api`` ``app/lib/data_csv_parser.rb``
  (the SD-card upload: the ids are the fourth row, readings from the fifth,
  ``null`` for no value).
- ``fablabbcn/smartcitizen-data`` ``scdata/io/device_file.py``
  ``sdcard_concat`` (``CONCAT.CSV``: the day files joined, the four header
  rows kept, empty cells instead of ``null``).

Example (an SCK 2.1 with its CCS811, as ``tests/ingest/samples/smartcitizen_sd_card.csv``)::

    TIME,TEMP,HUM,BATT,LIGHT,NOISE_A,PRESS,CCS811_VOCS,CCS811_ECO2,PM_1,PM_25,PM_10
    ISO 8601,C,%,%,Lux,dBA,kPa,ppb,ppm,ug/m3,ug/m3,ug/m3
    Time,Temperature,Humidity,Battery,Light,Noise dBA,Barometric pressure,VOC Gas CCS811,eCO2 Gas CCS811,PM 1.0,PM 2.5,PM 10.0
    ,55,56,10,14,53,58,113,112,89,87,88
    2026-03-01T12:00:05Z,18.30,61.20,97,120,41.50,101.21,23,412,6,9,12
    2026-03-01T12:01:05Z,18.40,61.00,97,118,40.90,101.21,25,415,null,null,null

Columns map by their id through :data:`ingest.adapters.smartcitizen.SENSOR_IDS`,
so records get the same boot (``smartcitizen-<model>``) and seq (time [ms]) as
the kit's MQTT messages: importing a card after the kit published the same
readings stores nothing twice, provided ``--device`` names the kit as its
MQTT messages do.  A model whose cells are all empty or ``null`` in a row had no
reading then (the kit reads some sensors less often) and makes no record.
Columns of :data:`~ingest.adapters.smartcitizen.IGNORED` ids and of id ``0``
are counted in ``AdapterResult.ignored``.  A row with a malformed time, a
time before 2018-01-01, or more or fewer fields than the header (a line cut
short when the kit lost power) is refused whole, once.  Times without offset
are UTC (the kit's clock keeps UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ingest.adapters import Adapter, AdapterResult, dead_topic
from ingest.adapters import _frame as tab
from ingest.adapters._common import campaign_of, normalise_device
from ingest.adapters._frame import Frame
from ingest.adapters.smartcitizen import (
    IGNORED,
    MIN_TIME_MS,
    NO_VALUE,
    SENSOR_IDS,
    TIME_PATTERN,
    Channel,
    ignored_name,
)
from ingest.store import DeadLetter
from qsec import contract

NAME = "smartcitizen-csv"
SEP = ","
HEADER_ROWS = 4
NA = ("", *NO_VALUE)


def sniff(head: bytes) -> bool:
    lines = head.decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    if len(lines) < 5 or not lines[0].upper().startswith("TIME,"):
        return False
    return all(c.strip().isdigit() or not c.strip() for c in lines[3].split(",")[1:])


def _device(context: dict[str, Any]) -> str:
    if not context.get("device"):
        raise ValueError("a Smart Citizen CSV names no kit: give the device id (qsec import --device ID), the same "
                         "as the kit's MQTT messages get, so that both land on one device")
    return normalise_device(str(context["device"]))


@dataclass
class Layout:
    """What the header says: the column names, and which column goes where."""

    names: list[str]  # as in the file (short titles may repeat)
    header: str  # the four header lines, kept with each refused row
    mapped: dict[str, list[tuple[int, Channel]]] = field(default_factory=dict)  # model -> [(column, channel)]
    ignored: dict[int, str] = field(default_factory=dict)  # column -> AdapterResult.ignored key
    unknown: dict[int, str] = field(default_factory=dict)  # column -> label for unknown_quantity

    @property
    def columns(self) -> list[str]:
        """Unique names for pandas: ``TIME``, ``c1``, ``c2``…"""
        return ["TIME", *(f"c{j}" for j in range(1, len(self.names)))]


def _layout(handle: IO[str]) -> Layout:
    lines = [handle.readline().lstrip("\ufeff").rstrip("\r\n") for _ in range(HEADER_ROWS)]
    if not lines[0].upper().startswith("TIME") or not lines[3]:
        raise contract.BadSchema("not a Smart Citizen CSV: it starts with four header rows (names, units, long "
                                 "names, sensor ids) and a TIME column")
    names = [c.strip() for c in next(csv.reader([lines[0]], delimiter=SEP))]  # short titles may repeat
    ids = ([c.strip() for c in next(csv.reader([lines[3]], delimiter=SEP), [])] + [""] * len(names))[:len(names)]
    out = Layout(names, "\n".join(lines))
    seen: dict[int, int] = {}
    for j in range(1, len(names)):
        sid = int(ids[j]) if ids[j].isdigit() else None
        if sid == 0:
            out.ignored[j] = f"{names[j]} (id 0): the platform has no sensor id for it"
        elif sid in IGNORED:
            out.ignored[j] = ignored_name(sid)
        elif sid in SENSOR_IDS:
            if sid in seen:
                raise contract.BadSchema(f"sensor id {sid} heads two columns ({names[seen[sid]]!r} and {names[j]!r})")
            seen[sid] = j
            ch = SENSOR_IDS[sid]
            out.mapped.setdefault(ch.model, []).append((j, ch))
        else:
            out.unknown[j] = f"column {names[j]!r} (sensor id {ids[j] or 'none'})"
    return out


@dataclass
class Chunk:
    """Body lines of the file, read as text cells, and how to name them."""

    lines: list[str]  # the lines as in the file (a dead letter keeps its line as it was)
    text: pd.DataFrame  # cells as text, one column per header name
    fields: np.ndarray  # number of fields of each line
    name: str  # the file name
    first_row: int  # rows of the body before this chunk

    def raw(self, layout: Layout) -> Callable[[int], str]:
        return lambda i: layout.header + "\n" + self.lines[i]

    def source(self) -> Callable[[int], str]:
        return lambda i: f"{self.name}#row{self.first_row + i + 1}"


def _chunks(handle: IO[str], layout: Layout, name: str, rows: int | None = None) -> Iterator[Chunk]:
    """The body in chunks of ``rows`` lines (all at once for ``None``); blank lines are skipped.

    The lines are kept to count their fields: pandas fills a short line's
    missing cells with empty text, as if the kit had written empty cells.
    """
    done = 0
    while True:
        lines: list[str] = []
        while rows is None or len(lines) < rows:
            line = handle.readline()
            if not line:
                break
            if line.strip("\r\n"):
                lines.append(line.rstrip("\r\n"))
        if not lines:
            return
        full = tab.read_csv_text(io.StringIO("\n".join(lines) + "\n"), layout.columns, SEP)
        if len(full) != len(lines):
            raise contract.BadSchema("a quoted field spans several lines: not a Smart Citizen CSV")
        fields = np.array([line.count(SEP) + 1 if '"' not in line else len(next(csv.reader([line], delimiter=SEP)))
                           for line in lines])
        text, _ = tab.split_extra(full.reset_index(drop=True))
        yield Chunk(lines, text, fields, name, done)
        done += len(lines)


def _row_faults(chunk: Chunk, layout: Layout) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Time [ms] of each row (NaN where unreadable), and per row the fault that refuses it whole (or ``None``)."""
    n = len(layout.names)
    time_text = chunk.text.iloc[:, 0].str.strip()
    well_formed = time_text.str.fullmatch(TIME_PATTERN).to_numpy(dtype=bool)
    t = tab.iso_ms(time_text.where(well_formed, ""))
    fault: list[str | None] = [None] * len(t)
    for i in np.flatnonzero((chunk.fields != n) | np.isnan(t) | (t < MIN_TIME_MS)).tolist():
        if chunk.fields[i] != n:
            fault[i] = (f"bad_schema|the line has {chunk.fields[i]} fields, the header {n}"
                        + (" (a line cut short, as when the kit loses power)" if chunk.fields[i] < n else ""))
        elif np.isnan(t[i]):
            fault[i] = f"bad_time|TIME {time_text.iloc[i]!r} is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SSZ)"
        else:
            fault[i] = (f"bad_time|TIME {time_text.iloc[i]!r} is before 2018-01-01: the kit's clock was not set "
                        "(its firmware takes no reading before then)")
    return t, np.array([f is None for f in fault], dtype=bool), fault


def _decode_chunk(chunk: Chunk, layout: Layout, *, campaign: str, device: str, received_ms: int,
                  context: dict[str, Any]) -> AdapterResult:
    t, good, fault = _row_faults(chunk, layout)
    raw, source = chunk.raw(layout), chunk.source()
    out = AdapterResult()
    for i, f in enumerate(fault):
        if f is not None:
            reason, detail = f.split("|", 1)  # the whole row: no boot, no seq
            out.refused.append(DeadLetter(dead_topic(NAME, campaign, source(i)), reason, detail, raw(i), device))
    text = chunk.text
    cols = layout.columns
    present = ~text.isin(NA).to_numpy() & good[:, None]
    for j, key in layout.ignored.items():
        if n := int(present[:, j].sum()):
            out.ignored[key] += n
    nums, not_num = tab.numeric(text[cols[1:]], NA)
    frames: list[Frame] = []

    def frame(rows: np.ndarray, values: pd.DataFrame, bad_text: pd.DataFrame, unknown: np.ndarray | None,
              model: str, sensor: str) -> Frame:
        k = len(rows)
        return Frame(campaign=np.full(k, campaign, dtype=object), device=np.full(k, device, dtype=object),
                     boot=np.full(k, f"smartcitizen-{model}", dtype=object), sensor=np.full(k, sensor, dtype=object),
                     t_ms=t[rows], values=values, not_numeric=bad_text,
                     unknown=unknown if unknown is not None else np.full(k, None, dtype=object),
                     raw=lambda r: raw(int(rows[r])), source=lambda r: source(int(rows[r])))

    for model, members in layout.mapped.items():
        rows = np.flatnonzero(present[:, [j for j, _ in members]].any(axis=1))
        values = pd.DataFrame({ch.quantity: ch.convert(nums[cols[j]].to_numpy()[rows]) for j, ch in members})
        bad_text = pd.DataFrame({ch.quantity: not_num[cols[j]].to_numpy()[rows] for j, ch in members})
        frames.append(frame(rows, values, bad_text, None, model, members[0][1].sensor))
    if layout.unknown:
        stray = present[:, list(layout.unknown)]
        rows = np.flatnonzero(stray.any(axis=1))
        empty = pd.DataFrame(index=range(len(rows)))
        frames.append(frame(rows, empty, empty, tab.first_label(stray[rows], list(layout.unknown.values())),
                            "unknown", "smartcitizen-unknown"))
    out.extend(tab.check_all(frames, NAME, received_ms, context))
    return out


def _decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode a whole CSV (or its header rows and one line, as a dead letter keeps it).

    Context: ``campaign``, ``device`` (required: the file names no kit), ``not_before_ms``.
    """
    campaign, device = campaign_of(context), _device(context)
    buf = io.StringIO(payload.decode("utf-8", "replace"))
    layout = _layout(buf)
    out = AdapterResult()
    for chunk in _chunks(buf, layout, source.split("#", 1)[0]):
        out.extend(_decode_chunk(chunk, layout, campaign=campaign, device=device, received_ms=received_ms,
                                 context=context))
    return out


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """See :func:`_decode`; an unreadable CSV becomes one dead letter."""
    return tab.guarded(NAME, source, payload, context,
                       lambda: _decode(payload, source=source, received_ms=received_ms, **context))


def read_file(path: Path, *, received_ms: int, rows: int = tab.CHUNK_ROWS,
              **context: Any) -> Iterator[tuple[AdapterResult, int]]:
    """Decode a (possibly ``.gz``) CSV chunk by chunk: ``(result, bytes read so far)``."""
    campaign, device = campaign_of(context), _device(context)
    with tab.open_text(path) as handle:
        layout = _layout(handle)
        for chunk in _chunks(handle, layout, path.name, rows):
            yield (_decode_chunk(chunk, layout, campaign=campaign, device=device, received_ms=received_ms,
                                 context=context), tab.tell(handle))


ADAPTER = Adapter(NAME, decode, "Smart Citizen Kit SD-card CSV (four header rows, sensor ids in the fourth)",
                  sniff=sniff, read_file=read_file)
