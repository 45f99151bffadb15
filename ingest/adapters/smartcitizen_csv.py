"""Smart Citizen Kit SD-card CSV files (and the platform's CSV in the same layout).

Sources: ``smartcitizen-api`` ``app/lib/data_csv_parser.rb`` (the platform's
SD-card upload: four header rows, the fourth holding the platform sensor ids,
then one row per reading, ``null`` for no value) and ``smartcitizen-data``
``scdata/io/device_file.py`` (``sdcard_concat``: header rows = short names,
units, long names, ids)::

    TIME,BATT,LIGHT,NOISE_A,TEMP,HUM,PRESS,PM_1,PM_25,PM_10
    ,%,Lux,dBA,C,%,kPa,ug/m3,ug/m3,ug/m3
    Time,Battery,Light,Noise dBA,Temperature,Humidity,Barometric pressure,PM 1.0,PM 2.5,PM 10.0
    ,10,14,53,55,56,58,89,87,88
    2026-03-01T12:00:05Z,97,120,41.5,18.3,61.2,101.2,6,9,12

Columns are mapped by their id through :data:`ingest.adapters.smartcitizen.SENSOR_IDS`,
so records get the same boot (``smartcitizen-<model>``) and seq (time [ms]) as
the kit's MQTT messages: importing a card after the kit published the same
readings stores nothing twice, provided ``--device`` names the kit as its
MQTT messages do.  A model whose cells are all empty in a row has no reading
in that row (the kit reads some sensors less often) and makes no record.
Times without offset are UTC.
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
from ingest.adapters._common import campaign_of, normalise_device
from ingest.adapters._frame import Frame
from ingest.adapters.smartcitizen import NOT_STORED, SENSOR_IDS
from qsec import contract

NAME = "smartcitizen-csv"
SEP = ","
HEADER_ROWS = 4
NA = ("", "null", "nan", "NaN")


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


def _frames(full: pd.DataFrame, ids: list[str], *, header: str, name: str, first_row: int, campaign: str,
            device: str) -> list[Frame]:
    full = full.reset_index(drop=True)
    text, too_many = tab.split_extra(full)
    t = tab.iso_ms(text.iloc[:, 0])
    cols = list(text.columns[1:])
    nums, not_num = tab.numeric(text[cols], NA)
    present = ~text[cols].isin(NA).to_numpy()

    def raw(i: int) -> str:
        return header + "\n" + tab.joined(full, SEP, i)

    def source(i: int) -> str:
        return f"{name}#row{first_row + i + 1}"

    by_model: dict[str, list[tuple[str, str, float]]] = {}  # model -> [(column, quantity, factor)]
    unknown_cols: list[str] = []
    for col, sid in zip(cols, ids):
        key = int(sid) if sid.strip().isdigit() else None
        if key in NOT_STORED:
            continue
        if key in SENSOR_IDS:
            model, _sensor, quantity, factor = SENSOR_IDS[key]
            by_model.setdefault(model, []).append((col, quantity, factor))
        else:
            unknown_cols.append(col)
    frames = []
    for model, members in by_model.items():
        member_cols = [c for c, _, _ in members]
        has = present[:, [cols.index(c) for c in member_cols]].any(axis=1) | pd.notna(too_many)
        rows = np.flatnonzero(has)
        values = pd.DataFrame({q: nums[c].to_numpy()[rows] * f for c, q, f in members})
        bad_text = pd.DataFrame({q: not_num[c].to_numpy()[rows] for c, q, _ in members})
        sensor = SENSOR_IDS[next(k for k, v in SENSOR_IDS.items() if v[0] == model)][1]
        frames.append(_frame(rows, values, bad_text, None, model, sensor, t, too_many, raw, source, campaign, device))
    if unknown_cols:
        idx = [cols.index(c) for c in unknown_cols]
        stray = present[:, idx]
        rows = np.flatnonzero(stray.any(axis=1))
        labels = [f"column {c!r} (sensor id {ids[cols.index(c)] or 'none'})" for c in unknown_cols]
        unknown = tab.first_label(stray[rows], labels)
        frames.append(_frame(rows, pd.DataFrame(index=range(len(rows))), pd.DataFrame(index=range(len(rows))),
                             unknown, "unknown", "smartcitizen-unknown", t, too_many, raw, source, campaign, device))
    return frames


def _frame(rows: np.ndarray, values: pd.DataFrame, bad_text: pd.DataFrame, unknown: np.ndarray | None, model: str,
           sensor: str, t: np.ndarray, too_many: np.ndarray, raw: Any, source: Any, campaign: str, device: str) -> Frame:
    k = len(rows)
    return Frame(campaign=np.full(k, campaign, dtype=object), device=np.full(k, device, dtype=object),
                 boot=np.full(k, f"smartcitizen-{model}", dtype=object), sensor=np.full(k, sensor, dtype=object),
                 t_ms=t[rows], values=values, not_numeric=bad_text,
                 unknown=unknown if unknown is not None else np.full(k, None, dtype=object),
                 raw=lambda j: raw(int(rows[j])), source=lambda j: source(int(rows[j])), bad_row=too_many[rows])


def _header(handle: IO[str]) -> tuple[list[str], list[str], str]:
    lines = [handle.readline().lstrip("\ufeff").rstrip("\r\n") for _ in range(HEADER_ROWS)]
    if not lines[0].upper().startswith("TIME") or not lines[3]:
        raise contract.BadSchema("not a Smart Citizen CSV: it starts with four header rows (names, units, long "
                                 "names, sensor ids) and a TIME column")
    names = tab.header_names(lines[0], SEP, (), "Smart Citizen CSV")
    ids = (lines[3].split(SEP) + [""] * len(names))[1:len(names)]
    return names, ids, "\n".join(lines)


def _decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """Decode a whole SD-card CSV (or its header rows and one line, as a dead letter keeps it).

    Context: ``campaign``, ``device`` (required: the file names no kit), ``not_before_ms``.
    """
    campaign, device = campaign_of(context), _device(context)
    buf = io.StringIO(payload.decode("utf-8", "replace"))
    names, ids, header = _header(buf)
    frames = _frames(tab.read_csv_text(buf, names, SEP), ids, header=header, name=source.split("#", 1)[0], first_row=0,
                     campaign=campaign, device=device)
    return tab.check_all(frames, NAME, received_ms, context)


def decode(payload: bytes, *, source: str, received_ms: int, **context: Any) -> AdapterResult:
    """See :func:`_decode`; an unreadable CSV becomes one dead letter."""
    return tab.guarded(NAME, source, payload, context,
                       lambda: _decode(payload, source=source, received_ms=received_ms, **context))


def read_file(path: Path, *, received_ms: int, rows: int = tab.CHUNK_ROWS,
              **context: Any) -> Iterator[tuple[AdapterResult, int]]:
    """Decode a (possibly ``.gz``) SD-card CSV chunk by chunk: ``(result, bytes read so far)``."""
    campaign, device = campaign_of(context), _device(context)
    with tab.open_text(path) as handle:
        names, ids, header = _header(handle)
        done = 0
        for text in tab.read_csv_text(handle, names, SEP, rows):
            frames = _frames(text, ids, header=header, name=path.name, first_row=done, campaign=campaign, device=device)
            done += len(text)
            yield tab.check_all(frames, NAME, received_ms, context), tab.tell(handle)


ADAPTER = Adapter(NAME, decode, "Smart Citizen Kit SD-card CSV (four header rows, sensor ids in the fourth)",
                  sniff=sniff, read_file=read_file)
