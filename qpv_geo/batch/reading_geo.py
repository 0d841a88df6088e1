"""Reading a GeoJSON / GeoPackage layer of sites: attributes, and points as lon/lat columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qpv_geo.batch.source import Source, cell_text, header_names, named_lines
from qpv_geo.exceptions import InputFileError

GEOM_LON = "longitude (géométrie)"
GEOM_LAT = "latitude (géométrie)"


def open_geo(path: Path, *, layer: str | int | None = None,
              cell_max: int = 1_000_000) -> Source:
    """A GeoJSON / GeoPackage layer: attributes, and points as lon/lat columns. A feature
    whose geometry cannot be read (an unclosed ring…) is kept, its row says why; a table
    without geometry is read as a table; several layers need ``layer``."""
    import warnings

    import pyogrio
    import pyogrio.raw
    import shapely

    hint = "Formats acceptés : GeoJSON, GeoPackage (points)."
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"Impossible de lire {path.name} comme couche géographique "
                             "(fichier abîmé ou d'un autre format).", hint=hint) from exc
    chosen: str | None = None
    if layer not in (None, ""):
        if str(layer) in layers:
            chosen = str(layer)
        elif str(layer).isdigit() and 1 <= int(layer) <= len(layers):
            chosen = layers[int(layer) - 1]
        else:
            raise InputFileError(f"Couche « {layer} » absente de {path.name} ; couches : "
                                 f"{', '.join(layers)}.", hint="Indiquez --couche NOM.")
    elif len(layers) > 1:
        raise InputFileError(f"{path.name} contient {len(layers)} couches "
                             f"({', '.join(layers)}) : laquelle lire ?",
                             hint=f"Indiquez-la : --couche {layers[0]} (nom ou rang).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # « Non closed ring detected »: handled per row
            meta, _, wkb, field_data = pyogrio.raw.read(path, layer=chosen)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"Impossible de lire {path.name} comme couche géographique "
                             "(fichier abîmé ou d'un autre format).", hint=hint) from exc
    attrs = [str(f) for f in meta["fields"]]
    n = len(field_data[0]) if field_data else (0 if wkb is None else len(wkb))
    if n == 0:
        raise InputFileError(f"{path.name} ne contient aucun objet.",
                             hint="Exportez la couche avec ses entités depuis QGIS.")
    problems: dict[int, str] = {}
    if wkb is None:  # a table without geometry: its attributes only
        columns = header_names(attrs)
        xs = ys = np.full(n, np.nan)
    else:
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
        broken = np.flatnonzero(np.array([b is not None for b in wkb]) & shapely.is_missing(geoms))
        for i in broken:
            problems[int(i) + 2] = ("géométrie illisible dans le fichier (anneau non fermé ou "
                                    "coordonnées invalides) : point ignoré")
        crs = meta.get("crs")
        if crs and str(crs).upper() not in ("EPSG:4326", "OGC:CRS84"):
            import geopandas as gpd

            try:
                geoms = gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values
            except Exception as exc:  # pyproj errors: unknown or unusable CRS
                raise InputFileError(f"{path.name} : système de coordonnées {crs} "
                                     "inutilisable.", hint="Exportez la couche en WGS84 "
                                     "(EPSG:4326) depuis QGIS.") from exc
        is_point = np.asarray(shapely.get_type_id(geoms) == 0)
        xs = np.where(is_point, shapely.get_x(geoms), np.nan)
        ys = np.where(is_point, shapely.get_y(geoms), np.nan)
        columns = header_names([*attrs, GEOM_LON, GEOM_LAT])

    def records() -> Iterator[tuple[int, list[str]]]:
        for i in range(n):
            cells = [cell_text(col[i]) for col in field_data]
            if wkb is not None:
                lon = "" if np.isnan(xs[i]) else repr(round(float(xs[i]), 7))
                lat = "" if np.isnan(ys[i]) else repr(round(float(ys[i]), 7))
                cells += [lon, lat]
            yield i + 2, cells

    source = Source(name=path.name, columns=columns, rows=records(), skipped_above=[],
                     estimated_rows=n, fmt="geo" if wkb is not None else "geo-table",
                     problems=problems, cell_max=cell_max)
    if path.suffix.lower() in (".geojson", ".json") and _has_escaped_nul(path):
        source.warnings.append("Caractères NUL (\\u0000) dans le fichier : le texte de ces "
                               "cellules est coupé à cet endroit. Vérifiez le fichier source.")
    if problems:
        source.warnings.append(f"{len(problems)} objet(s) à la géométrie illisible (lignes "
                               f"{named_lines(sorted(problems))}) : gardés sans point, "
                               "avec le motif.")
    return source


def _has_escaped_nul(path: Path) -> bool:
    """True when a GeoJSON holds ``\\u0000`` (GDAL cuts the text there)."""
    with open(path, "rb") as fh:
        tail = b""
        for block in iter(lambda: fh.read(1 << 20), b""):
            if b"\\u0000" in tail + block:
                return True
            tail = block[-6:]
    return False
