"""qsec analysis: vectorised functions over the store (DuckDB), pandas and xarray.

Modules are imported explicitly (``from analysis.cube import load``); this
package imports none of them, so that importing one stays cheap.

Modules
-------
live
    What the live screens need: the latest value of every quantity per
    device, and 1-minute means with coverage.
cube
    The store as an xarray cube: dims ``(device, time)``, one variable per
    quantity with CF attributes, in memory or lazily with Dask.
resample
    Fixed windows with mean, median, quantiles, min, max, count and
    coverage; hourly and daily means with completeness rules.
qc
    Quality-control flags as a bit-field per record.
accessor
    ``ds.qsec`` and ``df.qsec`` (registered when :mod:`analysis.cube` is imported).
indices
    Air-quality index bands (EU EAQI for PM2.5).
columns
    Which quantity columns the ``readings`` table actually has.
times
    UTC conversions shared by the modules above.
"""
