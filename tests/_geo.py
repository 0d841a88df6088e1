"""Geometry helpers shared by the tests."""

from __future__ import annotations

from typing import Any

import shapely


def interieur(geom_wgs: Any, profondeur_m: float = 30.0) -> tuple[float, float]:
    """(lat, lon) of a point ``profondeur_m`` inside a WGS84 polygon (on its surface when it is
    narrower), measured in its own zone's projection (Lambert-93 or the overseas UTM zone)."""
    import geopandas as gpd

    from qpv_geo.eligibility.projections import epsg_metrique

    g = gpd.GeoSeries([geom_wgs], crs=4326)
    epsg = epsg_metrique(g)
    m = g.to_crs(epsg).iloc[0]
    inner = m.buffer(-profondeur_m)
    p = shapely.point_on_surface(m if inner.is_empty else inner)
    lon, lat = gpd.GeoSeries([p], crs=epsg).to_crs(4326).iloc[0].coords[0]
    return lat, lon
