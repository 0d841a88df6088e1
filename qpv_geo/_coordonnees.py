"""Coordinates given to the engine: Lambert-93 conversions and the reasons a point is unusable.

:func:`check_lonlat` and :func:`check_xy` give, for each point, a reason code (0 = usable; the
texts are :data:`qpv_geo._verdicts._BAD_REASONS`): missing, impossible, Lambert-93 given as
degrees, latitude and longitude swapped, outside France. :func:`hint_for` says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj

# Metropolitan France (with Corsica), generous.
_FR_LON = (-5.6, 9.9)
_FR_LAT = (41.2, 51.2)
_L93_X = (50_000.0, 1_300_000.0)
_L93_Y = (6_000_000.0, 7_200_000.0)

_TO_L93 = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
_TO_WGS = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)


def lonlat_to_l93(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat → Lambert-93 x/y (arrays)."""
    return _TO_L93.transform(np.asarray(lon, float), np.asarray(lat, float))


def l93_to_lonlat(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lambert-93 x/y → WGS84 lon/lat (arrays)."""
    return _TO_WGS.transform(np.asarray(x, float), np.asarray(y, float))


def check_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Reason code (0 = usable) for each lon/lat pair in metropolitan France."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    bad = np.zeros(lon.shape, dtype=np.int8)
    missing = np.isnan(lon) | np.isnan(lat)  # infinities are "impossible", not missing
    impossible = ~missing & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    looks_l93 = impossible & _between(lon, _L93_X) & _between(lat, _L93_Y)
    in_fr = _between(lon, _FR_LON) & _between(lat, _FR_LAT)
    swapped = ~missing & ~impossible & ~in_fr & _between(lat, _FR_LON) & _between(lon, _FR_LAT)
    outside = ~missing & ~impossible & ~in_fr & ~swapped
    bad[outside] = 5
    bad[swapped] = 4
    bad[impossible] = 2
    bad[looks_l93] = 3
    bad[missing] = 1
    return bad


def check_xy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reason code (0 = usable) for each Lambert-93 x/y pair."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    bad = np.zeros(x.shape, dtype=np.int8)
    missing = np.isnan(x) | np.isnan(y)
    degrees = ~missing & (np.abs(x) <= 180) & (np.abs(y) <= 90)
    outside = ~missing & ~degrees & ~(_between(x, _L93_X) & _between(y, _L93_Y))
    bad[outside] = 7
    bad[degrees] = 6
    bad[missing] = 1
    return bad


def hint_for(code: int) -> str:
    """What to do about unusable coordinates of reason ``code``."""
    return {
        3: "Donnez ces valeurs avec --x/--y (Lambert-93).",
        4: "Vérifiez l'ordre : à Saint-Étienne, latitude ≈ 45,4 et longitude ≈ 4,4.",
        6: "Donnez ces valeurs avec --lat/--lon (degrés WGS84).",
    }.get(code, "À Saint-Étienne, latitude ≈ 45,4 et longitude ≈ 4,4 (ou x ≈ 808 000, "
                "y ≈ 6 480 000 en Lambert-93).")


def _between(v: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (v >= bounds[0]) & (v <= bounds[1])


__all__ = ["check_lonlat", "check_xy", "hint_for", "l93_to_lonlat", "lonlat_to_l93"]
