"""The single-point path: one verdict with Python numbers, the same as the batch path.

:meth:`Engine.judge_point <qpv_geo.eligibility.engine.Engine.judge_point>` for coordinates without
geocoding (the web page, ``qpv-geo check``) goes through :func:`verdict_un_point`: the same
rules as :meth:`Engine.classify_xy <qpv_geo.eligibility.engine.Engine.classify_xy>` and
:func:`~qpv_geo.eligibility._verdicts.verdict_frame`, written for one point (one pass over the
segments of the parts within reach, then scalar logic, no DataFrame). Whatever it does not cover (a
point beyond the search area, merged parts of several perimeters, simplified perimeters, QPV the
simplified copy reduced to a point) returns None and the batch path answers.
``tests/test_eligibility.py`` and ``make bench`` compare the two on many points: any change of
the rules or the French reasons must be made in both.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import shapely

from qpv_geo.eligibility._geometrie import K_AUTRE, K_QPV, K_QVA, signed_distance_few
from qpv_geo.eligibility._verdicts import (
    A_VERIFIER,
    ALT_TEXT,
    ELIGIBLE,
    HORS_QPV,
    HORS_TERRITOIRE,
    QVA,
    STATUSES,
    T_IN,
    T_LIMIT,
    T_OUT,
)
from qpv_geo.eligibility.marges import fmt_metres, motifs_marge

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Engine, Verdict


def _status_of(q: bool, v: bool, h: bool, in_sem: bool) -> int:
    if q:
        return ELIGIBLE
    if v:
        return QVA
    if h:
        return HORS_TERRITOIRE
    return HORS_QPV if in_sem else HORS_TERRITOIRE


def _best(cands: list[int], key: np.ndarray, pj: np.ndarray) -> int:
    """Index (into the pairs) of the largest key; ties to the lowest part. -1 if none."""
    best, best_key, best_part = -1, -math.inf, 0
    for k in cands:
        kk, part = float(key[k]), int(pj[k])
        if best < 0 or kk > best_key or (kk == best_key and part < best_part):
            best, best_key, best_part = k, kk, part
    return best


def _fmt_int_m(value: float) -> str:
    """« 12 m » as ``fmt_m`` writes it (absolute value, rounded to the metre)."""
    v = abs(float(value))
    return "? m" if not math.isfinite(v) else f"{int(np.round(np.float64(v)))} m"


def verdict_un_point(engine: Engine, x: float, y: float, lon: float, lat: float,
                     incert: float, mot: str) -> Verdict | None:
    """The verdict of one usable point (Lambert-93 ``x``, ``y``; WGS84 ``lon``, ``lat``) with
    position uncertainty ``incert`` described by ``mot``; None when the batch path must
    answer."""
    from qpv_geo.eligibility.engine import Verdict

    e = engine
    parts = e.parts
    perdus = e.reference.qpv_perdus
    if e.reference.simplified or len(parts.kind) == 0 or not e.plan.lambert93 or (
            perdus is not None and len(perdus)):
        # QPV reduced to a point (qpv_geo.eligibility._perdus): the batch path names them
        return None
    prec = e._part_prec
    forced = e.marge_m
    reach = forced if forced is not None else incert + float(prec.max())
    pad = e.rayon_m + reach
    cx0, cy0, cx1, cy1 = e._core
    if not (cx0 - pad <= x <= cx1 + pad and cy0 - pad <= y <= cy1 + pad):
        return None
    b = parts.bounds
    r = e.rayon_m + reach
    pj = np.flatnonzero((x >= b[:, 0] - r) & (x <= b[:, 2] + r) & (y >= b[:, 1] - r)
                        & (y <= b[:, 3] + r))
    npair = len(pj)
    s = signed_distance_few(parts, np.full(npair, x), np.full(npair, y), pj)
    kind = parts.kind[pj]
    m = np.full(npair, forced) if forced is not None else incert + prec[pj]

    # Territory: the lowest commune containing the point, else the tolerance around SEM.
    pt = shapely.Point(x, y)
    hits = e._commune_tree.query(pt, predicate="intersects")
    commune = int(hits.min()) if len(hits) else -1
    if commune >= 0:
        territory = T_IN
    else:
        territory = T_LIMIT if shapely.dwithin(e._sem, pt, e.tolerance_m) else T_OUT
    in_sem = territory != T_OUT

    flags = {}
    for k in (K_QPV, K_QVA, K_AUTRE):
        sel = kind == k
        inside = bool((sel & (s > 0)).any())
        sure = bool((sel & (s > m)).any())
        maybe = bool((sel & (s > -m)).any())
        flags[k] = (inside, maybe and not sure)
    status = _status_of(flags[K_QPV][0], flags[K_QVA][0], flags[K_AUTRE][0], in_sem)
    alt = -1
    for combo in range(1, 8):
        q = flags[K_QPV][0] ^ (bool(combo & 1) and flags[K_QPV][1])
        v = flags[K_QVA][0] ^ (bool(combo & 2) and flags[K_QVA][1])
        h = flags[K_AUTRE][0] ^ (bool(combo & 4) and flags[K_AUTRE][1])
        other = _status_of(q, v, h, in_sem)
        if other != status:
            alt = other
            break
    uncertain = alt >= 0

    status_kind = K_QPV if status == ELIGIBLE else K_QVA if status == QVA else K_AUTRE
    idx = range(npair)
    zone_pair = _best([k for k in idx if s[k] > 0 and kind[k] == status_kind], s, pj)
    edge_pair = _best([k for k in idx if abs(s[k]) <= m[k]], -np.abs(s), pj)
    near_pair = _best([k for k in idx if kind[k] == K_QPV and s[k] <= 0
                       and -s[k] <= e.rayon_m], s, pj)
    zone_part, edge_part, near_part = (int(pj[k]) if k >= 0 else -1
                                       for k in (zone_pair, edge_pair, near_pair))
    zone_s, edge_s, near_s = (float(s[k]) if k >= 0 else math.nan
                              for k in (zone_pair, edge_pair, near_pair))
    if uncertain:
        status = A_VERIFIER

    perim = next((float(prec[p]) for p in (edge_part, zone_part, near_part) if p >= 0),
                 e._prec_defaut)
    marge = forced if forced is not None else incert + perim

    single, first = e._part_single, e._part_first
    if any(p >= 0 and not single[p] for p in (zone_part, edge_part, near_part)):
        return None  # merged perimeters: which one is named needs the batch path
    zone, near_zone, edge_zone = (int(first[p]) if p >= 0 else -1
                                  for p in (zone_part, near_part, edge_part))
    dist = zone_s if zone >= 0 else math.nan
    if uncertain and zone < 0:
        dist = edge_s
    if math.isnan(dist) and near_part >= 0:
        dist = near_s
    near_dist = -near_s
    if not uncertain:
        edge_zone = -1

    # The verdict table's row, as verdict_frame writes it.
    codes, names, sirens, zkind, com_codes, com_names = e._tables
    zk = int(zkind[zone])
    dist_r = float(np.round(np.float64(dist), 1))
    motifs: list[str] = []
    if zk == K_QPV:
        motifs.append(f"dans le QPV {codes[zone]} « {names[zone]} », à {_fmt_int_m(dist_r)} "
                      "à l'intérieur du bord")
    elif zk == K_QVA:
        motifs.append(f"dans le quartier de veille active « {names[zone]} » : les QVA ne sont "
                      "pas éligibles à l'appel")
    elif zk == K_AUTRE:
        motifs.append(f"dans le QPV {codes[zone]} « {names[zone]} » de "
                      f"{e.reference.epci_name(sirens[zone])}, hors Saint-Étienne Métropole : "
                      "non éligible à cet appel")
    if zk < 0 and territory != T_OUT and status not in (A_VERIFIER, HORS_TERRITOIRE):
        motifs.append("dans Saint-Étienne Métropole, dans aucun QPV ni QVA"
                      if len(e.reference.qva) else
                      "dans Saint-Étienne Métropole, dans aucun QPV (QVA non vérifiés : aucun "
                      "périmètre QVA installé)")
    if territory == T_LIMIT:
        motifs.append("en limite du territoire de SEM (contour communal approximatif, "
                      f"tolérance {e.tolerance_m:.0f} m)")
    if zk < 0 and territory == T_OUT:
        motifs.append("en dehors des 53 communes de Saint-Étienne Métropole")
    if near_zone >= 0 and zk != K_QPV:
        motifs.append(f"QPV le plus proche : {codes[near_zone]} « {names[near_zone]} » à "
                      f"{_fmt_int_m(np.round(np.float64(near_dist), 0))}")
    if uncertain:
        motifs.append(f"à moins de {fmt_metres(np.array([marge]))[0]} du bord de "
                      f"{codes[edge_zone]} « {names[edge_zone]} » : de l'autre côté, "
                      f"{ALT_TEXT[STATUSES[alt]]}")

    donnees = getattr(e, "_donnees", None)
    if donnees is None:
        donnees = e.reference.version
        if e.reference.notes:
            donnees = donnees + " — " + " ; ".join(e.reference.notes)
        e._donnees = donnees
    outside_q = zk != K_QPV

    def num(value: float, digits: int) -> float | None:
        v = float(np.round(np.float64(value), digits))
        return None if math.isnan(v) else v

    return Verdict(
        status=STATUSES[status], eligible=status == ELIGIBLE,
        code_qp=codes[zone] if zk >= 0 else None, lib_qp=names[zone] if zk >= 0 else None,
        insee_com=com_codes[commune], lib_com=com_names[commune],
        distance_bord_m=None if math.isnan(dist_r) else dist_r,
        code_qp_proche=codes[near_zone] if outside_q else None,
        lib_qp_proche=names[near_zone] if outside_q else None,
        distance_qp_proche_m=num(near_dist, 1) if outside_q else None,
        candidat_autre_cote=codes[edge_zone] if uncertain else None,
        motifs=motifs, donnees=donnees, lon=num(lon, 7), lat=num(lat, 7), x_l93=num(x, 2),
        y_l93=num(y, 2), notes=list(e.reference.notes), geocodage=None,
        marge_m=num(marge, 1),
        marge_motif=str(motifs_marge(np.array([marge]), np.array([perim]),
                                     np.array([incert]), np.array([mot], dtype=object),
                                     forced is not None)[0]),
    )


__all__ = ["verdict_un_point"]
