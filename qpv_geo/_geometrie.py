"""The geometric core of the engine: dissolved perimeters as parts, exact signed distances.

Metric work in Lambert-93 (EPSG:2154). The perimeters of each kind (QPV of SEM, QVA, QPV of
other EPCI) are dissolved and cut into *parts* (connected pieces); every part's boundary is a set
of segments, and :func:`signed_distance` gives, for (point, part) pairs, the exact distance to the
part's edge with the inside/outside parity (crossing number) in one vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

# Zone kinds.
K_QPV, K_QVA, K_AUTRE = 0, 1, 2

_PAIR_CHUNK = 1 << 21  # point×segment elements computed at once (~16 MB per float64 array)


@dataclass
class Parts:
    """Dissolved perimeters of all kinds, as parts with boundary segments."""

    kind: np.ndarray  # (P,) int8
    members: list[np.ndarray]  # original zone indices (into the zones frame) per part
    bounds: np.ndarray  # (P, 4)
    seg_start: np.ndarray  # (P+1,) offsets into the segment arrays
    ax: np.ndarray
    ay: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    inv_l2: np.ndarray
    slope: np.ndarray  # dx/dy (for the crossing test), 0 where dy == 0
    geoms: np.ndarray  # shapely polygons (L93)


def segments_of(geom: Any) -> np.ndarray:
    """(n, 4) array of the boundary segments (x1, y1, x2, y2) of a polygonal geometry."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[1:] == idx[:-1]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


def build_parts(zones: pd.DataFrame, kinds: np.ndarray) -> Parts:
    kind_list, members, geoms, segs = [], [], [], []
    for k in (K_QPV, K_QVA, K_AUTRE):
        sel = np.flatnonzero(kinds == k)
        if len(sel) == 0:
            continue
        originals = zones.geometry.values[sel]
        union = shapely.union_all(originals)
        for part in shapely.get_parts(union):
            if part.is_empty or part.area <= 0:
                continue
            inter = shapely.intersection(originals, part)
            who = sel[shapely.area(inter) > 0.01]  # m²: ignore mere contact
            if len(who) == 0:
                continue
            kind_list.append(k)
            members.append(who)
            geoms.append(part)
            segs.append(segments_of(part))
    counts = np.array([len(s) for s in segs], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(counts)])
    allseg = np.concatenate(segs) if segs else np.zeros((0, 4))
    ax, ay, bx, by = allseg.T if len(allseg) else (np.zeros(0),) * 4
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    inv_l2 = np.where(l2 > 0, 1.0 / np.where(l2 > 0, l2, 1.0), 0.0)
    slope = np.where(dy != 0, dx / np.where(dy != 0, dy, 1.0), 0.0)
    bounds = shapely.bounds(np.array(geoms, dtype=object)) if geoms else np.zeros((0, 4))
    return Parts(
        kind=np.array(kind_list, dtype=np.int8), members=members, bounds=bounds,
        seg_start=start, ax=ax, ay=ay, dx=dx, dy=dy, inv_l2=inv_l2, slope=slope,
        geoms=np.array(geoms, dtype=object),
    )


def signed_distance(parts: Parts, px: np.ndarray, py: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Exact signed distance (inside > 0) of each point to the boundary of its paired part."""
    out = np.empty(len(px), dtype=np.float64)
    if len(px) == 0:
        return out
    order = np.argsort(part, kind="stable")
    sorted_parts = part[order]
    cuts = np.flatnonzero(np.diff(sorted_parts)) + 1
    for group in np.split(order, cuts):
        p = part[group[0]]
        s0, s1 = parts.seg_start[p], parts.seg_start[p + 1]
        ax, ay = parts.ax[s0:s1], parts.ay[s0:s1]
        dx, dy = parts.dx[s0:s1], parts.dy[s0:s1]
        inv, slope = parts.inv_l2[s0:s1], parts.slope[s0:s1]
        by = ay + dy
        step = max(1, _PAIR_CHUNK // max(1, s1 - s0))
        for c in range(0, len(group), step):
            idx = group[c:c + step]
            x = px[idx, None]
            y = py[idx, None]
            rx = x - ax
            ry = y - ay
            t = np.clip((rx * dx + ry * dy) * inv, 0.0, 1.0)
            ex = rx - t * dx
            ey = ry - t * dy
            d = np.sqrt(np.min(ex * ex + ey * ey, axis=1))
            crosses = ((ay > y) != (by > y)) & (rx < ry * slope)
            inside = (np.count_nonzero(crosses, axis=1) & 1).astype(bool)
            out[idx] = np.where(inside, d, -d)
    return out


def best(pairs: np.ndarray, pi: np.ndarray, pj: np.ndarray, key: np.ndarray, n: int
          ) -> np.ndarray:
    """Per point, the index of the pair (among ``pairs``) with the largest key, -1 if none.

    Ties go to the lowest part index, so the choice is deterministic.
    """
    best = np.full(n, -1, dtype=np.int64)
    if len(pairs) == 0:
        return best
    order = pairs[np.lexsort((pj[pairs], -key[pairs], pi[pairs]))]
    first = np.r_[True, pi[order][1:] != pi[order][:-1]]
    best[pi[order[first]]] = order[first]
    return best
