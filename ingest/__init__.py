"""qsec: ingest."""
