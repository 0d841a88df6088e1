"""Metric projections: Lambert-93 in metropolitan France, a UTM zone per overseas territory.

Distances and margins need a conformal metric projection valid where the points are. Lambert-93
(EPSG:2154) is defined for metropolitan France and Corsica only; each overseas territory holding
QPV 2024 has its official UTM projection (RGAF09, RGFG95, RGR92, RGM04, RGPF).

:class:`PlanMetrique` puts several zones in ONE plane: each zone keeps its own projection and is
shifted by ``k × 10 000 km`` in x (zone ``k`` of the plane), so that the engine's geometry (parts,
segments, trees, distances) works unchanged and no two zones can ever be within reach of each
other. Within a zone, distances are exactly those of its projection. A plane of the metropolitan
zone alone is plain Lambert-93 (no shift): Saint-Étienne Métropole's figures are unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyproj

from qpv_geo.reference.metric_zones import (
    METROPOLE,
    ZONES,
    ZoneMetrique,
    indice_zone,
    zone_du_departement,
    zone_du_point,
)

#: Shift (m) between two zones of a plane, in x.
DECALAGE_M = 10_000_000.0


@functools.lru_cache(maxsize=32)
def _transformers(epsg: int) -> tuple[Any, Any]:
    return (pyproj.Transformer.from_crs(4326, epsg, always_xy=True),
            pyproj.Transformer.from_crs(epsg, 4326, always_xy=True))


def epsg_metrique(geo: Any) -> int:
    """Metric EPSG for a GeoDataFrame/GeoSeries (any CRS) or a (lon, lat) pair, by its extent:
    2154 in metropolitan France, the territory's UTM zone overseas (2154 when empty/unknown)."""
    if isinstance(geo, tuple) and len(geo) == 2:
        zone = zone_du_point(*geo)
        return (zone or METROPOLE).epsg
    if geo is None or len(geo) == 0:
        return METROPOLE.epsg
    if geo.crs is not None and not geo.crs.equals(pyproj.CRS.from_epsg(4326)):
        geo = geo.to_crs(4326)
    xmin, ymin, xmax, ymax = geo.total_bounds
    if not np.all(np.isfinite([xmin, ymin, xmax, ymax])):
        return METROPOLE.epsg
    zone = zone_du_point((xmin + xmax) / 2, (ymin + ymax) / 2)
    return (zone or METROPOLE).epsg


class PlanMetrique:
    """Several zones in one metric plane (zone ``k`` shifted by ``k × DECALAGE_M`` in x)."""

    def __init__(self, zones: Sequence[ZoneMetrique] = (METROPOLE,)) -> None:
        if not zones:
            raise ValueError("a plane needs at least one zone")
        self.zones = tuple(zones)
        self._tr = [_transformers(z.epsg) for z in self.zones]

    @property
    def lambert93(self) -> bool:
        """True when the plane is plain Lambert-93 (metropolitan France alone)."""
        return self.zones == (METROPOLE,)

    def zone_lonlat(self, lon: Any, lat: Any) -> np.ndarray:
        """Index (in :attr:`zones`) of the zone holding each lon/lat, -1 for none."""
        return indice_zone(lon, lat, self.zones)

    def zone_xy(self, x: Any) -> np.ndarray:
        """Index of the zone of each plane x (-1 where it is not a plane coordinate)."""
        x = np.asarray(x, dtype=np.float64)
        k = np.floor((x + DECALAGE_M / 2) / DECALAGE_M)
        ok = np.isfinite(k) & (k >= 0) & (k < len(self.zones))
        return np.where(ok, k, -1).astype(np.int8)

    def vers_plan(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        """lon/lat (WGS84) → plane x/y (NaN outside every zone of the plane)."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if self.lambert93:
            return self._tr[0][0].transform(lon, lat)
        x = np.full(lon.shape, np.nan)
        y = np.full(lon.shape, np.nan)
        k = self.zone_lonlat(lon, lat)
        for i in np.unique(k[k >= 0]):
            sel = k == i
            xi, yi = self._tr[i][0].transform(lon[sel], lat[sel])
            x[sel] = np.asarray(xi) + i * DECALAGE_M
            y[sel] = yi
        return x, y

    def vers_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Plane x/y → lon/lat (WGS84), NaN where x is in no zone of the plane."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.lambert93:
            return self._tr[0][1].transform(x, y)
        lon = np.full(x.shape, np.nan)
        lat = np.full(x.shape, np.nan)
        k = self.zone_xy(x)
        for i in np.unique(k[k >= 0]):
            sel = k == i
            lo, la = self._tr[i][1].transform(x[sel] - i * DECALAGE_M, y[sel])
            lon[sel] = lo
            lat[sel] = la
        return lon, lat

    def geometries_vers_plan(self, geoms: Any, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """WGS84 shapely geometries → plane geometries, each in the zone of its (lon, lat)
        representative point (NaN-free: a geometry outside every zone raises ValueError)."""
        import shapely

        geoms = np.asarray(geoms, dtype=object)
        k = self.zone_lonlat(lon, lat)
        if (k < 0).any():
            raise ValueError("geometry outside every zone of the plane")
        out = np.empty(len(geoms), dtype=object)
        for i in np.unique(k):
            sel = k == i
            fwd = self._tr[i][0]
            shift = i * DECALAGE_M

            def proj(xy: np.ndarray, fwd: Any = fwd, shift: float = shift) -> np.ndarray:
                px, py = fwd.transform(xy[:, 0], xy[:, 1])
                return np.column_stack([np.asarray(px) + shift, py])

            out[sel] = shapely.transform(geoms[sel], proj)
        return out


def plan_des_departements(departements: Sequence[str] | None) -> PlanMetrique:
    """The plane serving the given départements (all zones when None)."""
    if departements is None:
        return PlanMetrique(ZONES)
    wanted = {zone_du_departement(d) for d in departements}
    return PlanMetrique(tuple(z for z in ZONES if z in wanted) or (METROPOLE,))


__all__ = [
    "DECALAGE_M",
    "METROPOLE",
    "ZONES",
    "PlanMetrique",
    "ZoneMetrique",
    "epsg_metrique",
    "indice_zone",
    "plan_des_departements",
    "zone_du_departement",
    "zone_du_point",
]
