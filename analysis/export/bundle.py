"""Export bundles: the data file, ``manifest.json``, ``LICENCE.txt`` and ``SHA256SUMS``, in a zip or a folder.

:func:`stream_bundle` yields the bytes of a zip as it is written — DuckDB →
Arrow record batches → format writer → zip entry → caller (an HTTP
response, a file) — so memory stays bounded whatever the size: the zip is
written to a non-seekable sink, each entry with a data descriptor and
ZIP64 sizes (APPNOTE 6.3.x §4.3.9), and emptied after every batch.
:func:`write_bundle` does the same into a ``.zip`` file or a folder.

``SHA256SUMS`` is in ``sha256sum`` format: ``sha256sum -c SHA256SUMS``
checks a bundle unpacked into a folder.

Sources
-------
- PKWARE APPNOTE.TXT 6.3.10 (ZIP: data descriptors, ZIP64):
  https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT
- Python ``zipfile`` (writing to unseekable streams):
  https://docs.python.org/3/library/zipfile.html
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from analysis.export import manifest as mf
from analysis.export.selection import Selection, SelectionError, batches, plan, registry_present
from analysis.export.writers import EXTENSIONS, FORMATS, MEDIA_TYPES, NEEDS_POSITIONS, open_writer

Progress = Callable[[int], object]
_STORED = ("parquet", "netcdf")  # already compressed, or binary that deflates little


@dataclass
class ExportResult:
    """What an export wrote; filled in as the bundle is produced."""

    rows: int = 0
    bytes: int = 0
    sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)


class _Sink:
    """A write-only, non-seekable byte buffer that the producer empties after each step."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _Hashing:
    """Counts and hashes what goes through to ``target``."""

    closed = False

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self._target.write(view)  # type: ignore[arg-type]
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None


class _ZipTarget:
    def __init__(self, fmt: str, out: BinaryIO | None = None) -> None:
        self._sink = _Sink()
        self._out = out
        method = zipfile.ZIP_STORED if fmt in _STORED else zipfile.ZIP_DEFLATED
        self._zip = zipfile.ZipFile(self._sink, "w", compression=method, compresslevel=1 if fmt not in _STORED else None)  # type: ignore[arg-type]

    def open(self, name: str) -> BinaryIO:
        return self._zip.open(name, "w", force_zip64=True)  # type: ignore[return-value]

    def chunk(self) -> bytes:
        return self._sink.take()

    def close(self) -> None:
        self._zip.close()


class _FolderTarget:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def open(self, name: str) -> BinaryIO:
        return (self._folder / name).open("wb")

    def chunk(self) -> bytes:
        return b""

    def close(self) -> None:
        return None


def campaign_terms(con: duckdb.DuckDBPyConnection, campaign: str | None) -> tuple[str, str]:
    """``(licence, title)`` of a campaign from the registry; ODbL-1.0 and a generic title otherwise."""
    if campaign and registry_present(con):
        row = con.execute("SELECT coalesce(s.licence, 'ODbL-1.0'), coalesce(c.title, c.campaign) FROM campaigns c "
                          "LEFT JOIN campaign_settings s USING (campaign) WHERE c.campaign = ?", [campaign]).fetchall()
        if row:
            return str(row[0][0]), str(row[0][1])
    return "ODbL-1.0", f"qsec export{' — ' + campaign if campaign else ''}"


def data_name(fmt: str) -> str:
    return f"data.{EXTENSIONS[fmt]}"


def prepare(selection: Selection, fmt: str) -> Selection:
    """The selection a bundle in ``fmt`` reads: validated, with positions where the format needs them.

    Raises
    ------
    ValueError
        For an unknown format; :class:`SelectionError` for a selection that cannot be answered.
    """
    if fmt not in FORMATS:
        raise SelectionError(f"unknown export format {fmt!r}; choose among {', '.join(FORMATS)}")
    if fmt in NEEDS_POSITIONS and not selection.positions:
        selection = replace(selection, positions=True)
    return selection.checked()


def _produce(con: duckdb.DuckDBPyConnection, selection: Selection, fmt: str, target: _ZipTarget | _FolderTarget,
             result: ExportResult, progress: Progress | None, batch_rows: int) -> Iterator[bytes]:
    selection = prepare(selection, fmt)
    p = plan(con, selection)
    licence, title = campaign_terms(con, selection.campaign)
    head = mf.base(selection, fmt, licence=licence, title=title)
    stats = mf.DeviceStats()
    entry = target.open(data_name(fmt))
    hashing = _Hashing(entry)
    writer = open_writer(fmt, hashing, p.schema, head)  # type: ignore[arg-type]
    for batch in batches(con, p, batch_rows):
        writer.write(batch)
        stats.add(batch)
        if progress is not None:
            progress(batch.num_rows)
        yield target.chunk()
    writer.close()
    entry.close()
    files = [{"name": data_name(fmt), "media_type": MEDIA_TYPES[fmt], "bytes": hashing.size,
              "sha256": hashing.sha.hexdigest()}]
    extra = {"LICENCE.txt": mf.licence_text(licence, title).encode()}
    for name, content in extra.items():
        files.append({"name": name, "media_type": "text/plain", "bytes": len(content),
                      "sha256": hashlib.sha256(content).hexdigest()})
    devices = [d for d, _ in stats.seen]
    document = mf.complete(head, p, files, stats, mf.calibrations(con, sorted(set(devices))), selection.public)
    extra["manifest.json"] = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode()
    sums = [(f["sha256"], f["name"]) for f in files]
    sums.append((hashlib.sha256(extra["manifest.json"]).hexdigest(), "manifest.json"))
    extra["SHA256SUMS"] = "".join(f"{digest}  {name}\n" for digest, name in sums).encode()
    for name in ("LICENCE.txt", "manifest.json", "SHA256SUMS"):
        with target.open(name) as handle:
            handle.write(extra[name])
    target.close()
    result.rows, result.bytes, result.sha256, result.manifest = stats.rows, hashing.size, files[0]["sha256"], document
    yield target.chunk()


def stream_bundle(con: duckdb.DuckDBPyConnection, selection: Selection, fmt: str, *,
                  result: ExportResult | None = None, progress: Progress | None = None,
                  batch_rows: int = 65_536) -> Iterator[bytes]:
    """Yield the bytes of a zip bundle of ``selection`` in ``fmt`` as they are produced.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Cursor on the store, used by this generator only until it ends.
    selection : Selection
    fmt : {"csv", "parquet", "netcdf", "geojson"}
    result : ExportResult, optional
        Filled in when the generator is exhausted (rows, data size and checksum, manifest).
    progress : callable, optional
        Called with the number of rows of each batch written.
    batch_rows : int
        Rows per Arrow batch (and Parquet row group).

    Raises
    ------
    analysis.export.selection.SelectionError
        On the first ``next()``, for a selection that cannot be answered.
    """
    target = _ZipTarget(fmt)
    for chunk in _produce(con, selection, fmt, target, result or ExportResult(), progress, batch_rows):
        if chunk:
            yield chunk


def write_bundle(con: duckdb.DuckDBPyConnection, selection: Selection, fmt: str, out: Path, *,
                 progress: Progress | None = None, batch_rows: int = 65_536) -> ExportResult:
    """Write a bundle to ``out``: a zip file when it ends in ``.zip``, else a folder of files."""
    result = ExportResult()
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with partial.open("wb") as handle:
            for chunk in stream_bundle(con, selection, fmt, result=result, progress=progress, batch_rows=batch_rows):
                handle.write(chunk)
        partial.replace(out)
    else:
        for _ in _produce(con, selection, fmt, _FolderTarget(out), result, progress, batch_rows):
            pass
    return result


def log_export(con: duckdb.DuckDBPyConnection, *, route: str, fmt: str, selection: Selection,
               result: ExportResult, token_id: str | None = None, address: str | None = None) -> None:
    """Record an export in ``export_log`` (what was asked, by whom, how much; never the data)."""
    con.execute("INSERT INTO export_log (exported, route, token_id, address, campaign, format, query, rows, bytes, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [datetime.now(UTC).replace(tzinfo=None), route, token_id, address, selection.campaign, fmt,
                 json.dumps(selection.describe(), default=str), result.rows, result.bytes, result.sha256 or None])
