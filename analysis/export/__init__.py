"""Exports: selected records from the store as self-describing bundles (CSV, Parquet, NetCDF, GeoJSON).

DuckDB → Arrow record batches → a format writer → a zip (or a folder) with
``manifest.json`` (licence, provenance, flag legend, column schema,
checksums), ``LICENCE.txt`` and ``SHA256SUMS``; memory stays bounded
whatever the size.  The researcher API and ``qsec export`` both go
through here, so a bundle has the same columns whichever way it was
asked for (``docs/exports.md``).

Modules
-------
selection
    :class:`Selection` (filters, public or researcher view) → SQL, Arrow schema.
writers
    CSV, Parquet and GeoJSON writers taking one record batch at a time.
netcdf
    CF-1.8 NetCDF-4 writer (``featureType: trajectory`` for positioned data).
manifest
    The manifest's parts: licence, provenance, flag legend, columns.
bundle
    :func:`stream_bundle` (zip bytes as produced), :func:`write_bundle`, :func:`log_export`.
"""

from analysis.export.bundle import ExportResult, log_export, stream_bundle, write_bundle
from analysis.export.selection import Plan, Selection, SelectionError, batches, count_rows, plan
from analysis.export.writers import FORMATS

__all__ = ["FORMATS", "ExportResult", "Plan", "Selection", "SelectionError", "batches", "count_rows", "log_export",
           "plan", "stream_bundle", "write_bundle"]
