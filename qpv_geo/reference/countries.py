"""Is a point in France? Approximate country outlines, and the overseas collectivity of a point.

A territory without commune outlines (``--territoire france``, another EPCI, a commune) places
bare coordinates in a zone of :mod:`qpv_geo.eligibility.projections` — lon/lat rectangles that also
hold Barcelona, Geneva, Brussels or Roseau (Dominica). :func:`etat_des_points` reads the shipped
outlines of the countries around France (Natural Earth 1:10m, **approximate, not official**:
``data/reference/PROVENANCE-pays.md``) and says, for each point, whether it is surely in
France, surely abroad (and where), or in doubt — within :data:`BANDE_FRONTIERE_M` of a border,
or far from any known land. :func:`collectivite_du_point` names the overseas collectivity of a
point of the Antilles zone (Guadeloupe, Martinique, Saint-Martin, Saint-Barthélemy share it).
"""

from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from qpv_geo._files import sha256_file
from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.reference.layers import read_manifest, shipped_dir

#: Doubt band around a land border (m): the outlines are generalised for 1:10 000 000 maps and
#: quantized (land borders measured 0.8–3.7 km from known border towns, see the provenance).
BANDE_FRONTIERE_M = 1_000.0
#: A point this close to French land (m) and far from any foreign outline is in France: the
#: coasts of the outlines are coarse (up to 4 km off on small islands).
BANDE_COTE_M = 5_000.0
#: Metres per degree at the highest latitude of the zones (51.2° N): a band in degrees from it
#: is at least as wide as asked everywhere.
_M_PAR_DEGRE_MIN = 111_320.0 * float(np.cos(np.radians(51.2)))

FRANCE, ETRANGER, DOUTE = 0, 1, 2
LAYER = "pays"
FILE = "pays_natural_earth.geojson.gz"

#: Overseas collectivities of one zone: islands tens of kilometres apart, so a box each is
#: enough to tell them apart (the country outlines tell Saint-Martin from Sint Maarten).
COLLECTIVITES: dict[str, tuple[str, tuple[float, float], tuple[float, float]]] = {
    "971": ("en Guadeloupe", (-61.9, -60.95), (15.8, 16.55)),
    "972": ("en Martinique", (-61.3, -60.75), (14.35, 14.9)),
    "977": ("à Saint-Barthélemy", (-62.95, -62.75), (17.85, 17.98)),
    "978": ("à Saint-Martin", (-63.2, -62.95), (18.0, 18.13)),
}

SOURCE_COURTE = "contours des pays approchés, Natural Earth 1:10 m, pas des limites officielles"


@dataclass(frozen=True)
class _Pays:
    france: Any            # prepared union of the French outlines
    france_bande: Any      # grown by BANDE_FRONTIERE_M
    france_cote: Any       # grown by BANDE_COTE_M
    etranger_bande: Any    # foreign outlines grown by BANDE_FRONTIERE_M
    noms: tuple[str, ...]  # the foreign countries
    pays: tuple[Any, ...]  # their outlines (prepared)
    bandes: tuple[Any, ...]  # grown by BANDE_FRONTIERE_M (prepared)


def _deg(metres: float) -> float:
    return metres / _M_PAR_DEGRE_MIN


@functools.lru_cache(maxsize=1)
def _pays() -> _Pays:
    directory = shipped_dir()
    entry = read_manifest(directory)["layers"].get(LAYER)
    path = directory / (entry or {}).get("file", FILE)
    if entry is None or not path.is_file():
        raise ReferenceDataError("Contours des pays introuvables (couche « pays »).",
                                 hint="Réinstallez qpv-geo ou restaurez le dépôt.")
    if sha256_file(path) != entry.get("sha256"):
        raise ReferenceDataError(f"Contours des pays {path.name} : somme de contrôle "
                                 "inattendue.", hint="Ne modifiez pas les fichiers de référence "
                                 "à la main ; restaurez le dépôt.")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    french = np.array([bool(f["properties"]["france"]) for f in features])
    names = np.array([str(f["properties"]["nom"]) for f in features], dtype=object)
    france = shapely.union_all(geoms[french])
    foreign = geoms[~french]
    bandes = shapely.buffer(foreign, _deg(BANDE_FRONTIERE_M))
    out = _Pays(france=france, france_bande=shapely.buffer(france, _deg(BANDE_FRONTIERE_M)),
                france_cote=shapely.buffer(france, _deg(BANDE_COTE_M)),
                etranger_bande=shapely.union_all(bandes), noms=tuple(names[~french]),
                pays=tuple(foreign), bandes=tuple(bandes))
    for g in (out.france, out.france_bande, out.france_cote, out.etranger_bande, *out.pays,
              *out.bandes):
        shapely.prepare(g)
    return out


#: Side (degrees) of the cells of :func:`_etats_des_cellules`.
_CELLULE_DEG = 0.1
#: A cell whose points are all in France, all far from any land, all in the foreign country
#: of index state - _CELLULE_PAYS; 0: point by point.
_CELLULE_FRANCE, _CELLULE_LOIN, _CELLULE_PAYS = 1, 2, 3


class _Cellules:
    """The cells already classified in this process: sorted keys and their states."""

    def __init__(self) -> None:
        self.etats: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0, np.int8))


@functools.lru_cache(maxsize=1)
def _cellules() -> _Cellules:
    return _Cellules()


def _etats_des_cellules(p: _Pays, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """For each finite lon/lat, the state of its cell of :data:`_CELLULE_DEG`:
    :data:`_CELLULE_FRANCE` when the cell (grown by a hair against rounding) lies in the
    interior of the French coast band and meets no foreign band — every point of it is « in
    France » by :func:`etat_des_points`' rule —, :data:`_CELLULE_LOIN` when it meets neither
    (every point is in doubt, near no country), :data:`_CELLULE_PAYS` + k when it lies in the
    interior of country k's outline, meets no outline of a country before k and not the
    French band (every point is abroad, in k), else 0 (point by point). Each cell is
    classified once per process, the first time a point falls in it."""
    ix = np.floor(lon / _CELLULE_DEG).astype(np.int64)
    iy = np.floor(lat / _CELLULE_DEG).astype(np.int64)
    key = ix * (1 << 32) + iy
    cache = _cellules()
    keys, etats = cache.etats
    uniq, first = np.unique(key, return_index=True)
    new = ~np.isin(uniq, keys, assume_unique=True)
    if new.any():
        cx, cy = ix[first[new]], iy[first[new]]
        eps = 1e-9  # degrees: a point rounded to a neighbouring cell is still in the box
        boxes = shapely.box(cx * _CELLULE_DEG - eps, cy * _CELLULE_DEG - eps,
                            (cx + 1) * _CELLULE_DEG + eps, (cy + 1) * _CELLULE_DEG + eps)
        sans_etranger = ~shapely.intersects(p.etranger_bande, boxes)
        etat = np.zeros(len(boxes), dtype=np.int8)
        etat[sans_etranger & shapely.contains_properly(p.france_cote, boxes)] = \
            _CELLULE_FRANCE
        etat[sans_etranger & ~shapely.intersects(p.france_cote, boxes)] = _CELLULE_LOIN
        todo = np.flatnonzero(~sans_etranger & ~shapely.intersects(p.france_bande, boxes))
        for k, geom in enumerate(p.pays):  # the first outline met must hold the whole cell
            if not len(todo):
                break
            met = shapely.intersects(geom, boxes[todo])
            held = met & shapely.contains_properly(geom, boxes[todo])
            etat[todo[held]] = _CELLULE_PAYS + k
            todo = todo[~met]
        keys = np.concatenate([keys, uniq[new]])
        etats = np.concatenate([etats, etat])
        order = np.argsort(keys, kind="stable")
        keys, etats = keys[order], etats[order]
        cache.etats = (keys, etats)
    return etats[np.searchsorted(keys, key)]


def etat_des_points(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """For each lon/lat: :data:`FRANCE`, :data:`ETRANGER` or :data:`DOUTE`, and the foreign
    country it is in or near (None elsewhere).

    Abroad: inside a foreign outline and more than :data:`BANDE_FRONTIERE_M` from the French
    one. In France: within :data:`BANDE_COTE_M` of French land and more than
    :data:`BANDE_FRONTIERE_M` from any foreign outline. Anything else is in doubt.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    p = _pays()
    n = len(lon)
    etat = np.full(n, DOUTE, dtype=np.int8)
    pays = np.full(n, None, dtype=object)
    ok = np.isfinite(lon) & np.isfinite(lat)
    # Cells whose points all get the same answer (most of them): no outline per point.
    cellule = np.zeros(n, dtype=np.int8)
    cellule[ok] = _etats_des_cellules(p, lon[ok], lat[ok])
    etat[cellule == _CELLULE_FRANCE] = FRANCE
    abroad = np.flatnonzero(cellule >= _CELLULE_PAYS)
    etat[abroad] = ETRANGER
    pays[abroad] = np.array(p.noms, dtype=object)[cellule[abroad] - _CELLULE_PAYS]
    ok &= cellule == 0
    pres_etranger = ok.copy()
    pres_etranger[ok] = shapely.contains_xy(p.etranger_bande, lon[ok], lat[ok])
    cote = ok & ~pres_etranger
    cote[cote] = shapely.contains_xy(p.france_cote, lon[cote], lat[cote])
    etat[cote] = FRANCE
    near = np.flatnonzero(pres_etranger)
    if len(near):
        x, y = lon[near], lat[near]
        holds = np.zeros(len(near), dtype=bool)
        named = np.full(len(near), None, dtype=object)
        for nom, geom, bande in zip(p.noms, p.pays, p.bandes, strict=True):
            # the foreign country holding the point, else one whose band holds it
            todo = ~holds
            inside = np.zeros(len(near), dtype=bool)
            inside[todo] = shapely.contains_xy(geom, x[todo], y[todo])
            named[inside] = nom
            holds |= inside
            free = ~holds & (named == None)  # noqa: E711 (element-wise)
            if free.any():
                in_band = np.zeros(len(near), dtype=bool)
                in_band[free] = shapely.contains_xy(bande, x[free], y[free])
                named[in_band] = nom
        pays[near] = named
        in_fr_band = shapely.contains_xy(p.france_bande, x, y)
        etat[near[holds & ~in_fr_band]] = ETRANGER
    return etat, pays


def motif_pays(etat: int, pays: str | None) -> str:
    """The reason of a point abroad or in doubt (French)."""
    if etat == ETRANGER:
        return f"hors de France : {_en(pays)} ({SOURCE_COURTE})"
    if pays:
        km = f"{BANDE_FRONTIERE_M / 1000:.0f}".replace(".", ",")
        return (f"à moins d'environ {km} km de la frontière avec {_le(pays)} : en France ou "
                f"non, les contours installés ne le disent pas ({SOURCE_COURTE}) — vérifiez "
                "que le lieu est en France")
    return (f"loin de toute terre française connue ({SOURCE_COURTE}) — vérifiez que le lieu "
            "est en France")


def collectivite_du_point(lon: Any, lat: Any) -> np.ndarray:
    """The code of the overseas collectivity (:data:`COLLECTIVITES`) whose box holds each
    lon/lat, None elsewhere."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    out = np.full(lon.shape, None, dtype=object)
    for code, (_nom, (x0, x1), (y0, y1)) in COLLECTIVITES.items():
        out[(lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)] = code
    return out


_FEMININ = {"Espagne", "Andorre", "Italie", "Suisse", "Allemagne", "Belgique", "Dominique",
            "Sainte-Lucie", "Irlande", "Autriche", "Polynésie française"}
_SANS_ARTICLE = {"Monaco", "Saint-Martin", "Saint-Barthélemy", "Guernesey",
                 "Jersey", "Anguilla (Royaume-Uni)", "Montserrat (Royaume-Uni)", "Maurice",
                 "Antigua-et-Barbuda", "Saint-Christophe-et-Niévès", "Sint Maarten (Pays-Bas)",
                 "Madagascar", "Fidji", "Kiribati", "Porto Rico", "Liechtenstein"}
_PLURIEL = {"Pays-Bas", "Comores", "Îles Vierges britanniques", "Saint-Vincent-et-les-Grenadines"}


def _en(pays: str | None) -> str:
    """« en Suisse », « au Luxembourg », « aux Pays-Bas », « à Monaco »."""
    if not pays:
        return "à l'étranger"
    if pays in _SANS_ARTICLE:
        return f"à {pays}"
    if pays in _PLURIEL:
        return f"aux {pays}"
    if pays in _FEMININ or pays[0] in "AEIOUÉÎ":
        return f"en {pays}"
    return f"au {pays}"


def _le(pays: str) -> str:
    """« la Suisse », « le Luxembourg », « les Pays-Bas », « Monaco »."""
    if pays in _SANS_ARTICLE:
        return pays
    if pays in _PLURIEL:
        return f"les {pays}"
    if pays[0] in "AEIOUÉÎ":
        return f"l'{pays}"
    return f"la {pays}" if pays in _FEMININ else f"le {pays}"


__all__ = ["BANDE_COTE_M", "BANDE_FRONTIERE_M", "COLLECTIVITES", "DOUTE", "ETRANGER", "FRANCE",
           "collectivite_du_point", "etat_des_points", "motif_pays"]
