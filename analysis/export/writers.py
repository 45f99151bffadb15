"""Incremental writers: Arrow record batches in, one file format out, in constant memory.

Each writer takes batches one at a time and writes them to a binary sink
(any object with ``write``); nothing holds more than one batch.

=========  =====================================================  ==========================
format     library                                                how it streams
=========  =====================================================  ==========================
csv        ``pyarrow.csv.CSVWriter`` (RFC 4180, header once)       one write per batch
parquet    ``pyarrow.parquet.ParquetWriter`` (zstd)                one row group per batch
geojson    DuckDB ``json_object`` per row, text joined             one chunk of features per batch
netcdf     ``netCDF4`` (see :mod:`analysis.export.netcdf`)         appends along ``obs``
=========  =====================================================  ==========================

GeoJSON features are built by DuckDB in SQL over the batch (vectorised
C++), not by a Python loop over rows.

Sources
-------
- RFC 4180 (CSV), RFC 7946 (GeoJSON: §3.2 a Feature's geometry may be
  null, §3.3 FeatureCollection, §4 longitude then latitude):
  https://www.rfc-editor.org/rfc/rfc4180, https://www.rfc-editor.org/rfc/rfc7946
- Apache Arrow, "Reading and writing CSV files" and "Reading and Writing
  the Apache Parquet Format": https://arrow.apache.org/docs/python/csv.html,
  https://arrow.apache.org/docs/python/parquet.html
- DuckDB JSON functions: https://duckdb.org/docs/data/json/json_functions
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Protocol

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("csv", "parquet", "netcdf", "geojson")
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "netcdf": "nc", "geojson": "geojson"}
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "netcdf": "application/x-netcdf",
               "geojson": "application/geo+json"}
NEEDS_POSITIONS = ("geojson",)


class Writer(Protocol):
    """Takes record batches of one schema and writes one file to a sink."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """CSV with a header line; times as ISO 8601 UTC (``2026-05-17 08:00:00.000000Z``)."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, metadata: dict[str, Any]) -> None:
        self._writer = pacsv.CSVWriter(sink, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


class ParquetWriter:
    """Parquet (zstd), one row group per batch; the manifest's key facts in the file's metadata."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, metadata: dict[str, Any]) -> None:
        meta = {b"qsec": json.dumps(metadata, ensure_ascii=False, default=str).encode()}
        self._writer = pq.ParquetWriter(sink, schema.with_metadata(meta), compression="zstd")
        self._schema = schema.with_metadata(meta)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch.replace_schema_metadata(self._schema.metadata))

    def close(self) -> None:
        self._writer.close()


class GeoJsonWriter:
    """A FeatureCollection, streamed: one Point feature per record (null geometry without a position)."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, metadata: dict[str, Any]) -> None:
        if "latitude" not in schema.names:
            raise ValueError("GeoJSON needs positions: select them (positions=True)")
        self._sink = sink
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        props = []
        for name in schema.names:
            if name in ("latitude", "longitude"):
                continue
            value = "strftime(time, '%Y-%m-%dT%H:%M:%S.%fZ')" if name == "time" else f'"{name}"'
            props.append(f"'{name}', {value}")
        self._sql = (
            "SELECT string_agg(json_object('type', 'Feature', 'geometry', CASE WHEN latitude IS NULL OR longitude "
            "IS NULL THEN NULL ELSE json_object('type', 'Point', 'coordinates', json_array(longitude, latitude)) "
            f"END, 'properties', json_object({', '.join(props)}))::VARCHAR, ',\n') FROM batch")
        head = {"type": "FeatureCollection", "qsec": metadata}
        self._sink.write(json.dumps(head, ensure_ascii=False, default=str)[:-1].encode() + b', "features": [\n')
        self._first = True

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._con.register("batch", batch)
        (text,) = self._con.execute(self._sql).fetchall()[0]
        self._con.unregister("batch")
        self._sink.write((b"" if self._first else b",\n") + text.encode())
        self._first = False

    def close(self) -> None:
        self._sink.write(b"\n]}\n")
        self._con.close()


def open_writer(fmt: str, sink: BinaryIO, schema: pa.Schema, metadata: dict[str, Any]) -> Writer:
    """A writer for ``fmt`` (one of :data:`FORMATS`) on ``sink``.

    ``metadata`` (licence, query, flag legend…) is embedded where the format
    has room for it: Parquet key-value metadata, NetCDF global attributes,
    a ``qsec`` member of the GeoJSON FeatureCollection; CSV has none (the
    bundle's manifest carries it).
    """
    if fmt == "netcdf":
        from analysis.export.netcdf import NetcdfWriter

        return NetcdfWriter(sink, schema, metadata)
    writers = {"csv": CsvWriter, "parquet": ParquetWriter, "geojson": GeoJsonWriter}
    try:
        return writers[fmt](sink, schema, metadata)  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(f"unknown export format {fmt!r}; choose among {', '.join(FORMATS)}") from None
