"""Coordinates given to the engine: Lambert-93 conversions and the reasons a point is unusable.

:func:`check_lonlat` and :func:`check_xy` give, for each point, a reason code (0 = usable; the
texts are :data:`qpv_geo.eligibility.verdict_table.BAD_REASONS`): missing, impossible,
Lambert-93 given as degrees, latitude and longitude swapped, outside France. :func:`hint_for`
says what to do.
Saint-Étienne Métropole's engine works in Lambert-93 (metropolitan France); an engine serving
the overseas QPV too works in a :class:`~qpv_geo.eligibility.projections.PlanMetrique` of several
zones, checked by :func:`check_lonlat_plan` (reason 8 for a point outside every zone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qpv_geo.reference.metric_zones import (
    METROPOLE,
    ZoneMetrique,
    indice_zone,
    l93_to_lonlat,
    lonlat_to_l93,
)

if TYPE_CHECKING:
    from qpv_geo.eligibility.projections import PlanMetrique

_L93_X = (50_000.0, 1_300_000.0)
_L93_Y = (6_000_000.0, 7_200_000.0)

def check_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Reason code (0 = usable) for each lon/lat pair in metropolitan France (5 outside)."""
    return _check_zones(lon, lat, (METROPOLE,), 5)


def check_lonlat_plan(lon: np.ndarray, lat: np.ndarray, plan: PlanMetrique) -> np.ndarray:
    """Reason code (0 = usable) for each lon/lat pair in the zones of ``plan`` (metropolitan
    France and Corsica, the overseas territories holding QPV): 8 outside every zone (5 for
    the plane of metropolitan France alone), 4 when the swapped point falls in one."""
    return _check_zones(lon, lat, plan.zones, 5 if plan.lambert93 else 8)


def _check_zones(lon: np.ndarray, lat: np.ndarray, zones: tuple[ZoneMetrique, ...],
                 code_dehors: int) -> np.ndarray:
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    bad = np.zeros(lon.shape, dtype=np.int8)
    if lon.size == 1 and lat.size == 1:  # one point: inside a zone's box, nothing to say
        lo, la = float(lon.flat[0]), float(lat.flat[0])
        if any(zone.contient(lo, la) for zone in zones):
            return bad
    missing = np.isnan(lon) | np.isnan(lat)  # infinities are "impossible", not missing
    impossible = ~missing & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    looks_l93 = impossible & _between(lon, _L93_X) & _between(lat, _L93_Y)
    usable = ~missing & ~impossible
    lo, la = np.where(usable, lon, 0.0), np.where(usable, lat, 0.0)
    in_fr = usable & (indice_zone(lo, la, zones) >= 0)
    swapped = usable & ~in_fr & (indice_zone(la, lo, zones) >= 0)
    bad[usable & ~in_fr & ~swapped] = code_dehors
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


def hint_for(code: int, sem: bool = True) -> str:
    """What to do about unusable coordinates of reason ``code`` (``sem``: examples taken at
    Saint-Étienne; else neutral ones, valid overseas too)."""
    if not sem:
        return {
            3: "Donnez ces valeurs avec --x/--y (Lambert-93, France métropolitaine seulement).",
            4: "Vérifiez que latitude et longitude ne sont pas inversées : latitude ≈ 41 à 51 "
               "en métropole, ≈ 16 en Guadeloupe, ≈ 5 en Guyane, ≈ −21 à La Réunion.",
            6: "Donnez ces valeurs avec --lat/--lon (degrés WGS84).",
            7: "Lambert-93 ne couvre que la France métropolitaine et la Corse : outre-mer, "
               "donnez la latitude et la longitude (--lat/--lon, degrés WGS84).",
        }.get(code, "Donnez la latitude et la longitude (degrés WGS84) d'un lieu en France : "
                    "métropole, Corse, ou territoire d'outre-mer où existent des QPV.")
    return {
        3: "Donnez ces valeurs avec --x/--y (Lambert-93).",
        4: "Vérifiez l'ordre : à Saint-Étienne, latitude ≈ 45,4 et longitude ≈ 4,4.",
        6: "Donnez ces valeurs avec --lat/--lon (degrés WGS84).",
    }.get(code, "À Saint-Étienne, latitude ≈ 45,4 et longitude ≈ 4,4 (ou x ≈ 808 000, "
                "y ≈ 6 480 000 en Lambert-93).")


def _between(v: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (v >= bounds[0]) & (v <= bounds[1])


__all__ = ["check_lonlat", "check_lonlat_plan", "check_xy", "hint_for", "l93_to_lonlat",
           "lonlat_to_l93"]
