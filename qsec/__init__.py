"""qsec — citizen-science air-quality and mobility pipeline (shared contract, quantities, configuration, CLI)."""
__version__ = "0.1.0"
