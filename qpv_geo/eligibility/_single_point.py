"""The single-point path: the geometry of one point, fast, then the verdict rules of the batch.

:meth:`Engine.judge_point <qpv_geo.eligibility.engine.Engine.judge_point>` for coordinates without
geocoding (the web page, ``qpv-geo check``) goes through :func:`verdict_un_point`. Only the
geometry is its own — one pass over the segments of the parts within reach, then scalar picks of
the part the point is in, the nearest edge within the margin and the nearest QPV (the batch path's
grid and pair pruning cost more than they save for one point). The rules are the batch path's:
:func:`~qpv_geo.eligibility.verdict_table.decide` gives the status and the status across an edge,
:func:`~qpv_geo.eligibility.verdict_table.motifs_du_lieu` the French reasons and
:func:`~qpv_geo.eligibility.verdict_table.colonnes_du_verdict` the columns, on arrays of length 1.
:func:`classify_un_point` (the geometry alone) is also
:meth:`Engine.classify_xy <qpv_geo.eligibility.engine.Engine.classify_xy>`'s branch for one
usable point: a geocoded address on the web page gets the batch path's rules on it.
Whatever it does not cover (a point beyond the search area, merged parts of several perimeters,
simplified perimeters, QPV the simplified copy reduced to a point, a territory without commune
outlines) returns None and the batch path answers. ``tests/test_eligibility.py`` and
``make bench`` compare the two on many points: they check that this geometry finds what the
batch path's finds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from qpv_geo.eligibility._geometry import K_AUTRE, K_QPV, K_QVA, signed_distance_few
from qpv_geo.eligibility.verdict_table import (
    A_VERIFIER,
    STATUS_KIND,
    T_IN,
    T_LIMIT,
    T_OUT,
    Classification,
    colonnes_du_verdict,
    decide,
    distance_retenue,
    motifs_du_lieu,
    perimetre_retenu,
)

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Engine


def _best(cands: list[int], key: list[float], pj: list[int]) -> int:
    """Index (into the pairs) of the largest key; ties to the lowest part. -1 if none."""
    best, best_key, best_part = -1, -math.inf, 0
    for k in cands:
        kk, part = key[k], pj[k]
        if best < 0 or kk > best_key or (kk == best_key and part < best_part):
            best, best_key, best_part = k, kk, part
    return best


def verdict_un_point(engine: Engine, x: float, y: float, lon: float, lat: float,
                     incert: float, mot: str) -> dict[str, Any] | None:
    """The verdict columns (:data:`~qpv_geo.eligibility.engine.VERDICT_COLUMNS`, arrays of
    length 1) of one usable point (Lambert-93 ``x``, ``y``; WGS84 ``lon``, ``lat``) with position
    uncertainty ``incert`` described by ``mot``; None when the batch path must answer."""
    c = classify_un_point(engine, x, y, incert)
    if c is None:
        return None
    # The rules of the batch path, on arrays of length 1.
    lon_a, lat_a = np.array([lon]), np.array([lat])
    motifs = np.array([""], dtype=object)
    none = np.zeros(1, dtype=bool)
    unc = motifs_du_lieu(engine, c, motifs, c.status, dit_ailleurs=none, code_dans=none,
                         centre=none, lon=lon_a, lat=lat_a)
    return colonnes_du_verdict(engine, c, c.status, motifs, unc, lon_a, lat_a,
                               np.array([mot], dtype=object))


def classify_un_point(engine: Engine, x: float, y: float, incert: float
                      ) -> Classification | None:
    """What :meth:`Engine.classify_xy <qpv_geo.eligibility.engine.Engine.classify_xy>` gives
    for one usable point (Lambert-93 ``x``, ``y``, position uncertainty ``incert``), from the
    single-point geometry; None when the batch path must answer."""
    e = engine
    parts = e.parts
    perdus = e.reference.qpv_perdus
    if e.reference.simplified or len(parts.kind) == 0 or not e.plan.lambert93 or (
            perdus is not None and len(perdus)) or not e.contours:
        # QPV reduced to a point (qpv_geo.eligibility._lost_qpv): the batch path names them;
        # no commune outline: the batch path places every point in the territory
        return None
    prec = e._part_prec
    forced = e.marge_m
    reach = forced if forced is not None else incert + e._part_prec_max
    pad = e.rayon_m + reach
    cx0, cy0, cx1, cy1 = e._core
    if not (cx0 - pad <= x <= cx1 + pad and cy0 - pad <= y <= cy1 + pad):
        return None
    b = parts.bounds
    r = e.rayon_m + reach
    pj_a = np.flatnonzero((x >= b[:, 0] - r) & (x <= b[:, 2] + r) & (y >= b[:, 1] - r)
                          & (y <= b[:, 3] + r))
    npair = len(pj_a)
    # Python numbers from here: a few pairs, numpy's per-call cost would dominate.
    s = signed_distance_few(parts, np.full(npair, x), np.full(npair, y), pj_a).tolist()
    pj = pj_a.tolist()
    kind = parts.kind[pj_a].tolist()
    m = [forced] * npair if forced is not None else (incert + prec[pj_a]).tolist()

    # Territory: the lowest commune containing the point, else the tolerance around SEM.
    pt = shapely.Point(x, y)
    hits = e._commune_tree.query(pt, predicate="intersects")
    commune = int(hits.min()) if len(hits) else -1
    if commune >= 0:
        territory = T_IN
    else:
        territory = T_LIMIT if shapely.dwithin(e._sem, pt, e.tolerance_m) else T_OUT

    inside = {K_QPV: False, K_QVA: False, K_AUTRE: False}
    sure = dict(inside)
    maybe = dict(inside)
    for sk, kk, mk in zip(s, kind, m, strict=True):
        if kk in inside:
            inside[kk] = inside[kk] or sk > 0
            sure[kk] = sure[kk] or sk > mk
            maybe[kk] = maybe[kk] or sk > -mk
    edge = {k: maybe[k] and not sure[k] for k in inside}
    status_, alt_ = decide(inside[K_QPV], inside[K_QVA], inside[K_AUTRE], edge[K_QPV],
                           edge[K_QVA], edge[K_AUTRE], territory != T_OUT)
    status, alt = int(status_), int(alt_)
    uncertain = alt >= 0

    status_kind = int(STATUS_KIND[status])
    idx = range(npair)
    zone_pair = _best([k for k in idx if s[k] > 0 and kind[k] == status_kind], s, pj)
    edge_pair = _best([k for k in idx if abs(s[k]) <= m[k]], [-abs(v) for v in s], pj)
    near_pair = _best([k for k in idx if kind[k] == K_QPV and s[k] <= 0
                       and -s[k] <= e.rayon_m], s, pj)
    zone_part, edge_part, near_part = (pj[k] if k >= 0 else -1
                                       for k in (zone_pair, edge_pair, near_pair))
    zone_s, edge_s, near_s = (s[k] if k >= 0 else math.nan
                              for k in (zone_pair, edge_pair, near_pair))
    if uncertain:
        status = A_VERIFIER

    perim = float(perimetre_retenu(*(float(prec[p]) if p >= 0 else math.nan
                                     for p in (edge_part, zone_part, near_part)),
                                   e._prec_defaut))
    marge = forced if forced is not None else incert + perim

    single, first = e._part_single, e._part_first
    if any(p >= 0 and not single[p] for p in (zone_part, edge_part, near_part)):
        return None  # merged perimeters: which one is named needs the batch path
    zone, near_zone, edge_zone = (int(first[p]) if p >= 0 else -1
                                  for p in (zone_part, near_part, edge_part))
    dist = float(distance_retenue(zone, zone_s, uncertain, edge_s, near_part, near_s))
    near_dist = -near_s
    if not uncertain:
        edge_zone = -1

    return Classification(
        x=np.array([x]), y=np.array([y]), status=np.array([status], dtype=np.int8),
        zone=np.array([zone], dtype=np.int32), zone2=np.array([-1], dtype=np.int32),
        dist=np.array([dist]), near_zone=np.array([near_zone], dtype=np.int32),
        near_dist=np.array([near_dist]), edge_zone=np.array([edge_zone], dtype=np.int32),
        alt_status=np.array([alt], dtype=np.int8), commune=np.array([commune], dtype=np.int32),
        territory=np.array([territory], dtype=np.int8), bad=np.zeros(1, dtype=np.int8),
        marge=np.array([marge]), perimetre=np.array([perim]), incertitude=np.array([incert]))


__all__ = ["classify_un_point", "verdict_un_point"]
