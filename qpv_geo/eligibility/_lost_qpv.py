"""QPV whose outline the simplified national copy lost: points near them are « à vérifier ».

The simplification of the shipped national layer (``qpv_france``) reduced a few QPV to a
degenerate polygon with no area: a single point (QN09105I, QN09113I, QN09503I). The rule applies
to what :func:`~qpv_geo.reference.territories.qpv_france` reports as lost: nothing once the official
national file is installed (``data update``), every QPV of which has an area. Their outline is
unknown, so no point near them may get a confident verdict that their outline could overturn.
The rule is the margin's (docs/marges.md): a point is « à vérifier » when it could be inside
that QPV — within :data:`RAYON_QPV_PERDU_M` of the point it was reduced to, plus the point's own
position uncertainty — and being inside it would change the verdict. No outline is invented:
no disc is drawn or added to the perimeters, the nearest QPV and edge distances stay those of
real outlines, and the reason says what is known (the point, its distance) and what to do.

:func:`~qpv_geo.reference.territories.table_perdus` builds the table a
:class:`~qpv_geo.reference.layers.Reference` carries (``qpv_perdus``); :func:`perdus_proches`
applies the rule for
:func:`~qpv_geo.eligibility.verdict_table.verdict_frame`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpv_geo._french import de, hors
from qpv_geo.eligibility.margins import fmt_m
from qpv_geo.reference.territories import RAYON_QPV_PERDU_M

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Classification

#: Mean Earth radius (m, IUGG): distances of at most a few kilometres are computed on the
#: sphere from lon/lat, whatever metric plane the engine works in (sphere against ellipsoid:
#: within 0.5 %, under 10 m at 2 km — small against the 2 000 m bound, and said as « à N m »).
_RAYON_TERRE_M = 6_371_008.8

#: What to do, at the end of the reason.
_A_FAIRE = ("vérifiez ce quartier sur le fichier officiel de l'ANCT (data.gouv.fr, périmètres "
            "des QPV ; qpv-geo data update l'installe et répond alors sur son contour) ou, "
            "adresse par adresse, sur sig.ville.gouv.fr")


def distance_m(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    """Distance (m) from each point to (lon0, lat0), on the sphere (for a few kilometres)."""
    k = np.cos(np.radians((np.asarray(lat, float) + lat0) / 2))
    return _RAYON_TERRE_M * np.radians(np.hypot((np.asarray(lon, float) - lon0) * k,
                                                np.asarray(lat, float) - lat0))


def perdus_proches(table: pd.DataFrame | None, c: Classification, lon: np.ndarray,
                   lat: np.ndarray, base: np.ndarray, eligible: int, hors_qpv: int,
                   a_verifier: int) -> tuple[np.ndarray, np.ndarray]:
    """Per point (WGS84 ``lon``, ``lat``): the row of ``table`` of the nearest lost QPV that
    could change its verdict ``base`` (-1 if none), and the distance (m) to the point that QPV
    was reduced to.

    A lost QPV of the territory changes any verdict but « éligible » (the point would be in a
    QPV of the territory); one of another territory changes « hors QPV » (the point would be in
    a QPV outside it). A point already « à vérifier » is named too: the lost QPV is one more
    reason to check it.
    """
    n = len(base)
    which = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    if table is None or not len(table):
        return which, dist
    usable = c.bad == 0
    lon = np.where(usable, np.asarray(lon, float), np.nan)
    lat = np.where(usable, np.asarray(lat, float), np.nan)
    reach = RAYON_QPV_PERDU_M + np.nan_to_num(c.incertitude, nan=0.0)
    mine = table["du_territoire"].to_numpy(bool)
    for k, (lon0, lat0) in enumerate(zip(table["lon"].to_numpy(float),
                                         table["lat"].to_numpy(float), strict=True)):
        # the distance is never less than the latitudes' difference: only the points that
        # difference keeps within reach are measured
        idx = np.flatnonzero(_RAYON_TERRE_M * np.radians(np.abs(lat - lat0))
                             <= reach * (1 + 1e-9) + 1e-6)
        d = distance_m(lon[idx], lat[idx], lon0, lat0)
        b = base[idx]
        changes = (b != eligible) if mine[k] else (b == hors_qpv)
        hit = (d <= reach[idx]) & (changes | (b == a_verifier)) \
            & (np.isnan(dist[idx]) | (d < dist[idx]))
        which[idx[hit]] = k
        dist[idx[hit]] = d[hit]
    return which, dist


def motifs_perdus(table: pd.DataFrame, which: np.ndarray, dist: np.ndarray, sigle: str,
                  france: bool = False) -> np.ndarray:
    """The reason of each point near a lost QPV (row ``which`` of ``table``), in French."""
    codes = table["code_qp"].to_numpy(object)
    names = table["lib_qp"].to_numpy(object)
    communes = np.array([f" ({v})" if v else "" for v in table["lib_com"]], dtype=object)
    dedans = "dans ce QPV" if france else f"dans un QPV {de(sigle)} (éligible)"
    alt = np.where(table["du_territoire"].to_numpy(bool), dedans,
                   f"dans un QPV {hors(sigle)} (non éligible)")
    rayon = f"{RAYON_QPV_PERDU_M:,.0f}".replace(",", "\u202f")
    return ("QPV " + codes[which].astype(str) + " « " + names[which].astype(str) + " »"
            + communes[which] + " : contour inconnu dans la copie simplifiée, qui le réduit à "
            "un point situé à " + fmt_m(dist) + f". Un QPV de cette taille s'étend jusqu'à "
            f"{rayon} m : le point peut s'y trouver, il serait alors " + alt[which] + " — "
            + _A_FAIRE)


__all__ = ["distance_m", "motifs_perdus", "perdus_proches"]
