"""What to do next with a verdict that is not settled (« à vérifier », « non localisé »).

A verdict near an edge says which edge (the QPV by code and name), where it runs from the point
(distance, direction), along which street when the OpenStreetMap layer covers the place, what to
look at, and which official tool settles it. The CLI and the web page say the same sentences:
both interfaces take them from here.

Nothing here changes a verdict: the geometry is only read to describe it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from qpv_geo.eligibility.projections import epsg_metrique
from qpv_geo.reporting.osm import covers, load_roads

#: The official tool of the ANCT that settles whether an address is in a QPV.
OUTIL_OFFICIEL = "l'outil officiel de l'ANCT (sig.ville.gouv.fr, recherche par adresse)"

_DIRECTIONS = ("nord", "nord-est", "est", "sud-est", "sud", "sud-ouest", "ouest", "nord-ouest")


def zone_names(reference: Any) -> dict[str, str]:
    """Code → name of every perimeter (QPV of SEM, QVA, QPV of other EPCI)."""
    names: dict[str, str] = {}
    for frame in (reference.qpv_hors_sem, reference.qva, reference.qpv):
        if len(frame):
            names.update({str(c): str(n) for c, n in zip(frame["code_qp"], frame["lib_qp"],
                                                        strict=True)})
    return names


def zone_label(code: str | None, names: Mapping[str, str]) -> str | None:
    """« QN04213M — Montreynaud » (the code alone when the name is unknown)."""
    if not code:
        return None
    name = names.get(str(code))
    return f"{code} — {name}" if name else str(code)


def _zone_geometry(reference: Any, code: str) -> Any:
    for frame in (reference.qpv, reference.qva, reference.qpv_hors_sem):
        if len(frame):
            hit = frame[frame["code_qp"] == code]
            if len(hit):
                return hit.geometry.iloc[0]
    return None


def edge_near(reference: Any, code: str, lon: float, lat: float) -> dict[str, Any] | None:
    """Where the edge of the perimeter ``code`` passes closest to the point: distance (m),
    compass direction from the point, and the nearest named street to that spot (or None)."""
    geom = _zone_geometry(reference, code)
    if geom is None:
        return None
    epsg = epsg_metrique((lon, lat))  # Lambert-93 in metropolitan France, UTM overseas
    to_l93 = Transformer.from_crs(4326, epsg, always_xy=True)
    to_wgs = Transformer.from_crs(epsg, 4326, always_xy=True)
    boundary = shapely.transform(geom.boundary, lambda xy: _apply(to_l93, xy))
    x, y = to_l93.transform(lon, lat)
    point = shapely.Point(x, y)
    spot = shapely.ops.nearest_points(boundary, point)[0]
    dist = float(point.distance(spot))
    angle = math.degrees(math.atan2(spot.x - x, spot.y - y)) % 360
    direction = _DIRECTIONS[int((angle + 22.5) // 45) % 8]
    slon, slat = to_wgs.transform(spot.x, spot.y)
    return {"distance_m": dist, "direction": direction,
            "rue": nearest_street(slon, slat), "lon": slon, "lat": slat}


def _apply(transformer: Any, xy: Any) -> Any:
    xs, ys = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([xs, ys])


def nearest_street(lon: float, lat: float, max_m: float = 40.0) -> str | None:
    """Name of the nearest named OpenStreetMap street within ``max_m`` (Saint-Étienne only)."""
    try:
        if not covers((lon, lat, lon, lat)):
            return None
        roads = load_roads()
    except Exception:  # the street layer is a help, never a reason to fail a verdict page
        return None
    named = roads[roads["name"].notna()]
    if not len(named):
        return None
    deg = max_m / 111_320.0 / max(0.1, math.cos(math.radians(lat)))
    point = shapely.Point(lon, lat)
    idx = named.sindex.query(point.buffer(deg), predicate="intersects")
    if not len(idx):
        return None
    cand = named.iloc[idx]
    scale = math.cos(math.radians(lat))
    best, best_d = None, float("inf")
    for name, geom in zip(cand["name"], cand.geometry, strict=True):
        near = shapely.ops.nearest_points(geom, point)[0]
        d = math.hypot((near.x - lon) * scale, near.y - lat) * 111_320.0
        if d < best_d:
            best, best_d = str(name), d
    return best if best_d <= max_m else None


def edge_street(p: Mapping[str, Any], reference: Any) -> str | None:
    """The street named in « Que faire ? » (near the edge of an « à vérifier »), if any."""
    code = p.get("candidat_autre_cote")
    if p.get("status") != "a_verifier" or not code or p.get("lat") is None:
        return None
    edge = edge_near(reference, str(code), float(p["lon"]), float(p["lat"]))
    return edge["rue"] if edge else None


def _geocode_view(geo: Mapping[str, Any] | None) -> dict[str, Any]:
    """The web payload's geocoding keys, from either it or a Verdict's ``geocodage_*``."""
    if not geo:
        return {}
    if "trouve" in geo:
        return dict(geo)
    return {"trouve": bool(geo.get("geocodage_label")), "label": geo.get("geocodage_label"),
            "precision": geo.get("geocodage_precision")}


#: « L'adresse n'a été trouvée … » for a precision coarser than the house number.
_TROUVEE = {"street": "qu'à la rue, sans le numéro", "interpolation": "qu'à la rue, numéro "
            "estimé", "locality": "qu'au lieu-dit", "municipality": "qu'à la commune"}


def next_steps(p: Mapping[str, Any], reference: Any, *, page: bool = True) -> list[str]:
    """The sentences « Que faire ? » of an unsettled verdict (empty for a settled one);
    ``page=False`` for the command line (which has no map of its own)."""
    status = p.get("status")
    steps: list[str] = []
    if status == "non_geocode":
        return ["Vérifiez le numéro, la rue et la commune de l'adresse, puis relancez.",
                "Si l'adresse reste introuvable, saisissez les coordonnées GPS de l'entrée du "
                "lieu (dans une carte en ligne : clic droit sur l'entrée → coordonnées)."]
    if status != "a_verifier":
        return steps
    names = zone_names(reference)
    geo = _geocode_view(p.get("geocodage"))
    edge_code = p.get("candidat_autre_cote")
    street = None
    precision = geo.get("precision") if geo.get("trouve") else None
    if precision == "municipality":  # the commune's centre: no distance means anything
        commune = f" ({p['lib_com']})" if p.get("lib_com") else ""
        qpv = (f" ; cette commune compte le QPV {zone_label(str(edge_code), names)}"
               if edge_code else "")
        steps.append(f"L'adresse n'a été trouvée qu'à la commune{commune} : le point est le "
                     f"centre de la commune, pas le lieu de l'action{qpv}.")
        steps.append("Demandez au porteur l'adresse exacte du lieu où l'action a lieu (numéro "
                     "et rue), ou saisissez les coordonnées GPS de son entrée, puis relancez.")
        steps.append(f"Pour trancher, comparez avec {OUTIL_OFFICIEL}, qui fait foi, et notez sa "
                     "réponse dans le dossier.")
        return steps
    if edge_code and p.get("lat") is not None:
        edge = edge_near(reference, str(edge_code), float(p["lon"]), float(p["lat"]))
        label = zone_label(str(edge_code), names)
        if edge is not None:
            street = edge["rue"]
            along = f", près de « {street} »" if street else ""
            steps.append(f"Le bord du QPV {label} passe à {edge['distance_m']:.0f} m au "
                         f"{edge['direction']} du point{along} : trop près pour trancher avec "
                         "la précision de la position et du périmètre.")
        else:
            steps.append(f"Le point est à moins de la marge du bord du QPV {label}.")
        target = f"de quel côté de « {street} »" if street else "de quel côté du bord"
        streets = covers((p["lon"], p["lat"], p["lon"], p["lat"]))
        carte = ("la carte « Le point et ses rues »" if streets
                 else "la carte (sans rues ici : la couche des rues couvre Saint-Étienne "
                 "seulement) ou sur place")
        if not page:
            carte = ("la page web de qpv-geo (qpv-geo serve), carte « Le point et ses rues »,"
                     if streets else "une carte ou sur place")
        steps.append(f"Regardez sur {carte} {target} se trouve l'entrée du lieu où l'action "
                     "a lieu (pas le siège du porteur).")
    if "arrondi des coordonnées" in str(p.get("marge_motif") or ""):
        marge = p.get("marge_m")
        arrondi = f" (à {marge:.0f} m près)" if isinstance(marge, (int, float)) else ""
        steps.append(f"Les coordonnées données sont arrondies{arrondi} : demandez-les avec "
                     "5 décimales (au mètre près), ou l'adresse exacte du lieu.")
    elif precision and precision not in ("housenumber", "coordonnees"):
        steps.append(f"L'adresse n'a été trouvée {_TROUVEE.get(precision, 'qu’approchée')} : "
                     "demandez au porteur le numéro exact, ou saisissez les coordonnées GPS de "
                     "l'entrée du lieu.")
    elif geo.get("trouve") and geo.get("label") and precision != "coordonnees":
        steps.append(f"Vérifiez que l'adresse retenue (« {geo['label']} ») est bien celle du "
                     "lieu de l'action (numéro, bâtiment, entrée).")
    steps.append(f"Pour trancher, comparez avec {OUTIL_OFFICIEL}, qui fait foi, et notez sa "
                 "réponse dans le dossier.")
    return steps


__all__ = ["OUTIL_OFFICIEL", "edge_near", "edge_street", "nearest_street", "next_steps",
           "zone_label", "zone_names"]
