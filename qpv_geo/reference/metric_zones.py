"""The metric zones of France: where each official projection applies (Lambert-93 in
metropolitan France and Corsica, a UTM zone per overseas territory holding QPV), with a generous
lon/lat box each, and the Lambert-93 conversions.

Reference data shared by the geocoding (is a pasted point in France? Lambert-93 figures typed
as such) and the engine's metric planes (:mod:`qpv_geo.eligibility.projections`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj


@dataclass(frozen=True)
class ZoneMetrique:
    """A part of France and its metric projection, with a generous lon/lat box."""

    nom: str
    epsg: int
    lon: tuple[float, float]
    lat: tuple[float, float]
    #: INSEE codes of the départements / collectivités it serves (empty: metropolitan France).
    departements: tuple[str, ...]

    def contient(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """True for each lon/lat inside the zone's box."""
        return (lon >= self.lon[0]) & (lon <= self.lon[1]) & (lat >= self.lat[0]) \
            & (lat <= self.lat[1])


METROPOLE = ZoneMetrique("France métropolitaine et Corse", 2154, (-5.6, 9.9), (41.2, 51.2), ())
#: Every zone holding QPV 2024, metropolitan France first.
ZONES: tuple[ZoneMetrique, ...] = (
    METROPOLE,
    ZoneMetrique("Guadeloupe, Martinique, Saint-Martin, Saint-Barthélemy", 5490,
                 (-63.3, -60.7), (14.2, 18.2), ("971", "972", "977", "978")),
    ZoneMetrique("Guyane", 2972, (-54.7, -51.4), (1.9, 6.0), ("973",)),
    ZoneMetrique("La Réunion", 2975, (55.1, 56.0), (-21.5, -20.7), ("974",)),
    ZoneMetrique("Mayotte", 4471, (44.9, 45.4), (-13.1, -12.5), ("976",)),
    # RGPF / UTM 6S is Tahiti's zone, where every QPV of Polynésie lies; farther islands are
    # kilometres from any QPV, so the zone's scale error there (< 1 %) changes no verdict.
    ZoneMetrique("Polynésie française", 3297, (-155.0, -134.0), (-28.0, -7.0), ("987",)),
)


def zone_du_departement(departement: str) -> ZoneMetrique:
    """The zone of an INSEE département / collectivité code (metropolitan France otherwise)."""
    dep = str(departement or "").strip().upper()
    for zone in ZONES[1:]:
        if dep in zone.departements:
            return zone
    return METROPOLE


def indice_zone(lon: Any, lat: Any, zones: Sequence[ZoneMetrique] = ZONES) -> np.ndarray:
    """Index (in ``zones``) of the first zone whose box holds each lon/lat, -1 for none."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    out = np.full(lon.shape, -1, dtype=np.int8)
    for k, zone in enumerate(zones):
        out[(out < 0) & zone.contient(lon, lat)] = k
    return out


def zone_du_point(lon: float, lat: float) -> ZoneMetrique | None:
    """The zone whose box holds a lon/lat point, or None."""
    k = int(indice_zone([float(lon)], [float(lat)])[0])
    return ZONES[k] if k >= 0 else None


_TO_L93 = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
_TO_WGS = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)


def lonlat_to_l93(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat → Lambert-93 x/y (arrays)."""
    return _transform(_TO_L93, np.asarray(lon, float), np.asarray(lat, float))


def l93_to_lonlat(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lambert-93 x/y → WGS84 lon/lat (arrays)."""
    return _transform(_TO_WGS, np.asarray(x, float), np.asarray(y, float))


def _transform(transformer: pyproj.Transformer, a: np.ndarray, b: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    if a.shape == (1,) and b.shape == (1,):  # one point: pyproj's point call is ~8× cheaper
        u, v = transformer.transform(float(a[0]), float(b[0]))
        return np.array([u]), np.array([v])
    return transformer.transform(a, b)
