"""NetCDF-4 with CF-1.8 metadata, written batch by batch along an unlimited ``obs`` dimension.

Layout (CF 1.8 Appendix H.4.4, "indexed ragged array representation of
trajectories"), so rows can arrive in any order and memory stays constant:

::

    dimensions: obs = UNLIMITED ; device = UNLIMITED ;
    variables:
      string device(device) ;          cf_role = "trajectory_id"
      int device_index(obs) ;          instance_dimension = "device"
      int64 time(obs) ;                units = "microseconds since 1970-01-01 00:00:00", standard_name = "time"
      double latitude(obs), longitude(obs) ;  degrees_north / degrees_east
      double pm2_5(obs) ;              units = "ug m-3", standard_name = …, coordinates = "time latitude longitude"
      int flags(obs) ;                 flag_masks / flag_meanings (CF 1.8 §3.5)
    :featureType = "trajectory" ; :Conventions = "CF-1.8, ACDD-1.3" ;

``featureType: trajectory`` is set when the export carries positions
(mobile kits); a public export has none, so it is a plain collection of
observations per device without a feature type.  Units are written in
UDUNITS form (``µg/m³`` → ``ug m-3``); the qsec unit stays in
``qsec_unit``.

The file is built in a temporary file (the netCDF-C library needs a path)
and copied to the sink in 1 MiB pieces when closed.

Package: ``netCDF4`` (Unidata's Python interface to netCDF-C/HDF5).

Sources
-------
- CF Conventions 1.8, §2.2 (string type), §3.1 (units), §3.3 (standard
  names), §3.5 (flags), §4.4 (time), §9 and Appendix H.4 (discrete sampling
  geometries, trajectories): https://cfconventions.org/Data/cf-conventions/cf-conventions-1.8/cf-conventions.html
- Attribute Convention for Data Discovery 1.3 (``title``, ``summary``,
  ``license``, ``date_created``): https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3
- netCDF4-python: https://unidata.github.io/netcdf4-python/
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, BinaryIO

import netCDF4
import numpy as np
import pyarrow as pa

from qsec import quantities as qty

CF_UNITS = {"µg/m³": "ug m-3", "mg/m³": "mg m-3", "ppm": "1e-6", "ppb": "1e-9", "°C": "degC", "%": "percent",
            "hPa": "hPa", "°": "degree", "m": "m", "m/s": "m s-1", "1": "1", "V": "V", "#/cm³": "cm-3",
            "#/0.1L": "dL-1", "µm": "um"}
_TIME_UNITS = "microseconds since 1970-01-01 00:00:00"
_STRINGS = ("campaign", "participant", "boot", "sensor")


class NetcdfWriter:
    """Append record batches to a CF-1.8 NetCDF-4 file; the finished file goes to ``sink`` on close."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, metadata: dict[str, Any]) -> None:
        self._sink = sink
        fd, self._path = tempfile.mkstemp(suffix=".nc", prefix="qsec-export-")
        os.close(fd)
        self._nc = netCDF4.Dataset(self._path, "w", format="NETCDF4")
        self._schema = schema
        self._n = 0
        self._devices: dict[str, int] = {}
        self._trajectory = "latitude" in schema.names
        self._define(metadata)

    # ------------------------------------------------------------ layout
    def _define(self, metadata: dict[str, Any]) -> None:
        nc = self._nc
        nc.createDimension("obs", None)
        nc.createDimension("device", None)
        attrs: dict[str, Any] = {
            "Conventions": "CF-1.8, ACDD-1.3",
            "title": str(metadata.get("title", "qsec export")),
            "summary": "Low-cost sensor records (particulate matter, gases, meteorology, GPS) from qsec.",
            "license": str(metadata.get("licence", {}).get("id", "")) if isinstance(metadata.get("licence"), dict)
            else str(metadata.get("licence", "")),
            "source": f"qsec {metadata.get('qsec_version', '')}".strip(),
            "date_created": str(metadata.get("created", "")),
            "history": f"{metadata.get('created', '')} exported by qsec from its store",
            "qsec_query": json.dumps(metadata.get("query", {}), default=str),
        }
        if self._trajectory:
            attrs["featureType"] = "trajectory"
        nc.setncatts(attrs)
        dev = nc.createVariable("device", str, ("device",))
        dev.setncatts({"long_name": "device id", **({"cf_role": "trajectory_id"} if self._trajectory else {})})
        idx = nc.createVariable("device_index", "i4", ("obs",))
        idx.setncatts({"long_name": "index of the device this observation belongs to", "instance_dimension": "device"})
        coords = "time latitude longitude" if self._trajectory else "time"
        for field in self._schema:
            name = field.name
            if name == "device":
                continue
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            if name == "time":
                var = nc.createVariable("time", "i8", ("obs",))
                var.setncatts({"standard_name": "time", "long_name": meta.get("long_name", "time"),
                               "units": _TIME_UNITS, "calendar": "standard", "axis": "T"})
            elif name in _STRINGS:
                var = nc.createVariable(name, str, ("obs",))
                var.long_name = meta.get("long_name", name)
            elif name == "seq":
                var = nc.createVariable(name, "i8", ("obs",))
                var.long_name = meta.get("long_name", name)
            elif name == "flags":
                self._flags(nc.createVariable(name, "i4", ("obs",)), metadata)
            else:
                self._number(nc.createVariable(name, "f8", ("obs",), fill_value=np.nan), name, meta, coords)

    @staticmethod
    def _flags(var: Any, metadata: dict[str, Any]) -> None:
        legend = metadata.get("flags", [])
        var.long_name = "bridge and QC flags (bit-field)"
        if legend:
            var.flag_masks = np.array([f["value"] for f in legend], dtype="i4")
            var.flag_meanings = " ".join(f["name"] for f in legend)

    @staticmethod
    def _number(var: Any, name: str, meta: dict[str, str], coords: str) -> None:
        if name == "latitude":
            var.setncatts({"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude (WGS84)"})
        elif name == "longitude":
            var.setncatts({"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude (WGS84)"})
        elif name == "position_age_s":
            var.setncatts({"units": "s", "long_name": meta.get("long_name", name)})
        else:
            q = qty.get(name)
            var.setncatts({"units": CF_UNITS.get(q.unit, q.unit), "qsec_unit": q.unit, "long_name": q.long_name,
                           "coordinates": coords})
            if q.standard_name:
                var.standard_name = q.standard_name

    # ------------------------------------------------------------ data
    def write(self, batch: pa.RecordBatch) -> None:
        k = batch.num_rows
        if not k:
            return
        nc, a, b = self._nc, self._n, self._n + batch.num_rows
        devices = batch.column("device").to_numpy(zero_copy_only=False)
        names, inverse = np.unique(devices.astype(str), return_inverse=True)
        for name in names:
            if name not in self._devices:
                self._devices[name] = len(self._devices)
                nc["device"][self._devices[name]] = name
        codes = np.array([self._devices[n] for n in names], dtype="i4")
        nc["device_index"][a:b] = codes[inverse]
        for field, column in zip(self._schema, batch.columns, strict=True):
            name = field.name
            if name == "device":
                continue
            if name == "time":
                values = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
            elif name in _STRINGS:
                values = column.fill_null("").to_numpy(zero_copy_only=False).astype(object)
            elif name in ("seq", "flags"):
                values = column.to_numpy(zero_copy_only=False)
            else:
                values = column.to_numpy(zero_copy_only=False).astype("f8")
            nc[name][a:b] = values
        self._n = b

    def close(self) -> None:
        self._nc.close()
        try:
            with open(self._path, "rb") as source:
                shutil.copyfileobj(source, self._sink, 1 << 20)  # type: ignore[misc]
        finally:
            os.unlink(self._path)
