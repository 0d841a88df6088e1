"""The national QPV layer installed from the official ANCT file, served to every territory
other than SEM in place of the shipped simplified copy.

``data update`` (and ``data import`` of the national file downloaded by hand) install, beside
SEM's layer and in the same version folder (one pointer switch,
:mod:`qpv_geo.reference.store`), the
whole file as the layer ``qpv_france``: all its QPV, overseas included, geometry untouched but
for the repairs every layer gets (``make_valid``), the official attributes, ``lib_epci`` taken
from the shipped copy by ``siren_epci`` (the ANCT file has no EPCI name). It is stored as a
gzip-compressed FlatGeobuf (binary coordinates: full precision kept bit for bit, ≈ 3 MB, read in
a few hundredths of a second).

A file is installed as the national layer only when it is complete: every QPV code of the
shipped national layer, each with an area. A departmental extract, or a simplified copy whose
simplification reduced QPV to a point, would answer « hors QPV » where a QPV is, with
confidence: it is not installed (SEM's layer still is), and the reason is said.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from qpv_geo.reference.layers import read_manifest, shipped_dir

#: Name of the layer in the manifests (shipped and installed).
LAYER = "qpv_france"
#: File of the installed layer.
FILE = "qpv_france.fgb.gz"
#: Attributes kept (those of the official file, and the EPCI name).
FIELDS = ("code_qp", "lib_qp", "insee_reg", "lib_reg", "insee_dep", "lib_dep", "insee_com",
          "lib_com", "siren_epci", "lib_epci")


def _shipped_properties() -> list[dict[str, object]]:
    """Properties of the shipped national layer's features (codes and EPCI names)."""
    entry = read_manifest(shipped_dir())["layers"][LAYER]
    with gzip.open(shipped_dir() / entry["file"], "rt", encoding="utf-8") as fh:
        return [f["properties"] for f in json.load(fh)["features"]]


def missing_codes(gdf: gpd.GeoDataFrame) -> list[str]:
    """Codes of the shipped national layer that ``gdf`` (cleaned: polygons with an area) lacks."""
    have = set(gdf["code_qp"].dropna().astype(str)) if "code_qp" in gdf.columns else set()
    return sorted({str(p["code_qp"]) for p in _shipped_properties()} - have)


def national_frame(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The national layer to install from a cleaned national file: its attributes (``FIELDS``,
    None where absent), ``lib_epci`` from the shipped copy where the file has none, its own
    ``precision_m`` per feature when it states one."""
    noms = {str(p["siren_epci"]): str(p["lib_epci"]) for p in _shipped_properties()
            if p.get("siren_epci") and p.get("lib_epci")}
    out = gpd.GeoDataFrame(geometry=gdf.geometry.values, crs=gdf.crs)
    for f in FIELDS:
        values = gdf[f] if f in gdf.columns else pd.Series([None] * len(gdf), index=gdf.index)
        out[f] = [None if pd.isna(v) or str(v) == "" else str(v) for v in values]
    out["lib_epci"] = [lib if lib else noms.get(str(s)) for s, lib in
                       zip(out["siren_epci"], out["lib_epci"], strict=True)]
    if "precision_m" in gdf.columns:
        out["precision_m"] = pd.to_numeric(gdf["precision_m"], errors="coerce").to_numpy(float)
    return out[[*FIELDS, *(["precision_m"] if "precision_m" in out.columns else []),
                "geometry"]]


def write(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write the layer as gzip FlatGeobuf (fixed gzip header: same layer, same bytes)."""
    with tempfile.TemporaryDirectory(prefix=".qpv_france.", dir=path.parent) as tmp:
        fgb = Path(tmp) / "qpv_france.fgb"
        gdf.to_file(fgb, driver="FlatGeobuf", SPATIAL_INDEX="NO")
        with open(fgb, "rb") as src, open(path, "wb") as raw, gzip.GzipFile(
                fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            shutil.copyfileobj(src, gz)


def read(path: Path) -> gpd.GeoDataFrame:
    """Read the installed layer (attributes as Python strings or None)."""
    gdf = gpd.read_file(f"/vsigzip/{path}")
    for f in FIELDS:
        if f not in gdf.columns:
            gdf[f] = None
        gdf[f] = [None if pd.isna(v) else str(v) for v in gdf[f]]
    return gdf


__all__ = ["FIELDS", "FILE", "LAYER", "missing_codes", "national_frame", "read", "write"]
