"""Metric work of the outputs (maps, figures, coverage) zone by zone.

A layer of one territory lies in one zone of :data:`qpv_geo.eligibility.projections.ZONES`
(Lambert-93 in metropolitan France, a UTM zone overseas):
:func:`~qpv_geo.eligibility.projections.epsg_metrique` gives its projection. The layer of all France
spans several: its geometries are grouped by the zone of their representative point and each group
is measured in its own projection; a static map of France is framed on the metropolitan part
(:func:`couche_cadre`). For SEM everything stays Lambert-93 (EPSG:2154), bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from qpv_geo.eligibility.projections import METROPOLE, ZONES, epsg_metrique, indice_zone


def zones_de(gdf: Any) -> np.ndarray:
    """Index in :data:`ZONES` of the zone holding each geometry's representative point (WGS84
    or any CRS), -1 for none."""
    import shapely

    if len(gdf) == 0:
        return np.zeros(0, dtype=np.int8)
    geo = gdf if gdf.crs is None or gdf.crs.to_epsg() == 4326 else gdf.to_crs(4326)
    pts = shapely.point_on_surface(np.asarray(geo.geometry.values))
    return indice_zone(shapely.get_x(pts), shapely.get_y(pts))


def par_zone(gdf: Any) -> Iterator[tuple[int, np.ndarray]]:
    """(EPSG, boolean mask) of each zone holding some of ``gdf``'s geometries; one group in
    Lambert-93 for a layer of metropolitan France (geometries in no zone join it)."""
    k = zones_de(gdf)
    if len(k) == 0:
        return
    k = np.where(k < 0, 0, k)
    for i in np.unique(k):
        yield ZONES[int(i)].epsg, k == i


def couche_cadre(gdf: Any) -> Any:
    """The part of ``gdf`` a map is framed on: all of it when it lies in one zone, else the
    zone holding most of it (metropolitan France for the layer of all France)."""
    k = zones_de(gdf)
    if len(k) == 0 or (k == k[0]).all():
        return gdf
    values, counts = np.unique(k[k >= 0], return_counts=True)
    if not len(values):
        return gdf
    return gdf[k == values[np.argmax(counts)]]


def epsg_cadre(gdf: Any) -> int:
    """Metric EPSG of a map framed on ``gdf`` (2154 for SEM and metropolitan France)."""
    cadre = couche_cadre(gdf)
    return epsg_metrique(cadre) if len(cadre) else METROPOLE.epsg


def aires_m2(gdf: Any) -> np.ndarray:
    """Area (m²) of each geometry, each in its zone's projection."""
    out = np.zeros(len(gdf))
    for epsg, mask in par_zone(gdf):
        out[mask] = gdf[mask].to_crs(epsg).area.to_numpy()
    return out


def tampon_wgs84(gdf: Any, metres: float) -> Any:
    """The union of the geometries widened by ``metres`` (each zone in its projection), WGS84."""
    import geopandas as gpd
    import shapely

    parts = []
    for epsg, mask in par_zone(gdf):
        metric = gdf[mask].to_crs(epsg)
        zone = shapely.union_all(shapely.buffer(metric.geometry.values, float(metres)))
        parts.append(gpd.GeoSeries([zone], crs=epsg).to_crs(4326).iloc[0])
    if len(parts) == 1:
        return parts[0]
    return shapely.union_all(parts) if parts else shapely.Polygon()


__all__ = ["aires_m2", "couche_cadre", "epsg_cadre", "par_zone", "tampon_wgs84", "zones_de"]
