"""qsec analysis: vectorised functions over the store (DuckDB) and pandas.

Modules
-------
live
    What the live screens need: the latest value of every quantity per
    device, and 1-minute means with coverage.
indices
    Air-quality index bands (EU EAQI for PM2.5).
columns
    Which quantity columns the ``readings`` table actually has.
times
    UTC conversions shared by the modules above.
"""
