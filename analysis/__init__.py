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
    Air-quality indices from versioned data files (``data/indices``): EU EAQI,
    French ATMO, WHO 2021 guidelines; every result from a low-cost sensor is
    labelled indicative.
fusion
    Tolerance-bounded as-of join of sensor records onto GPS fixes, with the
    sensor's response lag removed and the join quality kept.
trips
    Stops and moves, distance, speed, a mode guess, exposure per trip.
grid
    Metric grid cells (Lambert-93) weighted by exposure time, as GeoJSON.
calibration
    Co-location fits (linear, with humidity, US EPA 2021), versioned models.
daily
    Daily statistics in local time (Europe/Paris), correct across DST.
privacy
    Home-zone masking and a minimum of participants per published cell.
columns
    Which quantity columns the ``readings`` table actually has.
times
    UTC conversions shared by the modules above.
"""
