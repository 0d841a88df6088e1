"""The geometric core of the engine: dissolved perimeters as parts, exact signed distances.

Metric work in Lambert-93 (EPSG:2154). The perimeters of each kind (QPV of SEM, QVA, QPV of
other EPCI) are dissolved and cut into *parts* (connected pieces); every part's boundary is a set
of segments, and :func:`signed_distance` gives, for (point, part) pairs, the exact distance to the
part's edge with the inside/outside parity (crossing number) in one vectorised pass.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

# Zone kinds.
K_QPV, K_QVA, K_AUTRE = 0, 1, 2

_PAIR_CHUNK = 1 << 21  # point×segment elements computed at once (~16 MB per float64 array)
CHUNK = 6  # consecutive boundary segments per chunk (one bounding box each)
_MANY_GROUPS = 64  # from this many parts, with few pairs each, the flat path (no loop by part)
_FLAT_PER_GROUP = 256  # ... "few": fewer pairs per part on average than this
_FLAT_PAIRS = 1 << 16  # pairs evaluated at once on the flat path
#: A point at least this far (m) from a part's bounding box is outside the part whatever the
#: rounding of the crossing test (see signed_distance's ``outside``).
OUTSIDE_BOX_M = 1.0


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
    # Chunks of CHUNK consecutive segments of one part, with their bounding boxes.
    chunk_start: np.ndarray  # (P+1,) offsets into the chunk arrays
    c_seg0: np.ndarray  # first segment (global index) of each chunk
    c_len: np.ndarray  # segments in the chunk (≤ CHUNK)
    c_bounds: np.ndarray  # (K, 4) xmin, ymin, xmax, ymax


def segments_of(geom: Any) -> np.ndarray:
    """(n, 4) array of the boundary segments (x1, y1, x2, y2) of a polygonal geometry."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[1:] == idx[:-1]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


def parts_from_zones(zones: pd.DataFrame, kinds: np.ndarray, *,
                     cache_dir: Path | None = None) -> Parts:
    """:func:`build_parts`, kept on disk in ``cache_dir`` (None: no cache): dissolving the
    1,600 national QPV is most of an engine's build, paid again by every process (each Dask
    worker). The file is named by a digest of everything the parts come from — every
    perimeter's exact coordinates (WKB) and kind, the code that builds them, the GEOS
    version — so a new layer, a new release or another GEOS builds and keeps other parts;
    it is written under a temporary name then renamed, and a file that cannot be read is
    built again."""
    if cache_dir is None:
        return build_parts(zones, kinds)
    try:
        code = inspect.getsource(build_parts) + inspect.getsource(segments_of)
    except (OSError, TypeError):  # no source to name the code by (a frozen install)
        return build_parts(zones, kinds)
    digest = hashlib.sha256()
    for text in (_PARTS_FORMAT, shapely.geos_version_string, code):
        digest.update(text.encode())
    digest.update(np.ascontiguousarray(kinds, dtype=np.int8).tobytes())
    for wkb in shapely.to_wkb(np.asarray(zones.geometry.values, dtype=object)):
        digest.update(len(wkb).to_bytes(8, "little"))
        digest.update(wkb)
    path = Path(cache_dir) / f"parts-{digest.hexdigest()[:32]}.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            return _parts_from_arrays(saved)
    except (OSError, ValueError, KeyError, shapely.errors.GEOSException):
        pass  # none yet, or unreadable: build it
    parts = build_parts(zones, kinds)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}-{os.getpid()}.npz")
        np.savez(tmp, **_arrays_of_parts(parts))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: build it each time
    return parts


#: Bumped when the layout of the saved parts changes.
_PARTS_FORMAT = "parts-1"


def _arrays_of_parts(parts: Parts) -> dict[str, np.ndarray]:
    """The parts as plain arrays (no pickle): members and WKB geometries flattened."""
    out = {f.name: getattr(parts, f.name) for f in fields(Parts)
           if f.name not in ("members", "geoms")}
    out["members_start"] = np.cumsum([0] + [len(m) for m in parts.members]).astype(np.int64)
    out["members_flat"] = np.concatenate(parts.members).astype(np.int64) if parts.members \
        else np.zeros(0, np.int64)
    wkb = shapely.to_wkb(parts.geoms) if len(parts.geoms) else []
    out["wkb_start"] = np.cumsum([0] + [len(w) for w in wkb]).astype(np.int64)
    out["wkb_flat"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
    return out


def _parts_from_arrays(saved: Any) -> Parts:
    ms, mf = saved["members_start"], saved["members_flat"]
    ws, wf = saved["wkb_start"], saved["wkb_flat"].tobytes()
    geoms = shapely.from_wkb([wf[a:b] for a, b in itertools.pairwise(ws)])
    values = {f.name: saved[f.name] for f in fields(Parts) if f.name not in ("members", "geoms")}
    return Parts(members=[mf[a:b] for a, b in itertools.pairwise(ms)],
                 geoms=np.asarray(geoms, dtype=object), **values)


def build_parts(zones: pd.DataFrame, kinds: np.ndarray) -> Parts:
    kind_list, members, geoms, segs = [], [], [], []
    for k in (K_QPV, K_QVA, K_AUTRE):
        sel = np.flatnonzero(kinds == k)
        if len(sel) == 0:
            continue
        originals = zones.geometry.values[sel]
        union = shapely.union_all(originals)
        # only the originals whose box meets the part's can share area with it (the others'
        # intersection is empty): same members, without intersecting every pair (1,600² in
        # all of France)
        tree = shapely.STRtree(originals)
        for part in shapely.get_parts(union):
            if part.is_empty or part.area <= 0:
                continue
            near = np.sort(tree.query(part))
            if len(near) == 1:  # the part lies in that original alone: it shares all its area
                who = sel[near] if part.area > 0.01 else sel[:0]
            else:
                inter = shapely.intersection(originals[near], part)
                who = sel[near[shapely.area(inter) > 0.01]]  # m²: ignore mere contact
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
    nchunk = -(-counts // CHUNK)
    chunk_start = np.concatenate([[0], np.cumsum(nchunk)]).astype(np.int64)
    c_seg0 = np.concatenate([start[p] + np.arange(nchunk[p]) * CHUNK
                             for p in range(len(counts))]).astype(np.int64) \
        if len(counts) else np.zeros(0, np.int64)
    c_len = np.minimum(CHUNK, np.repeat(start[1:], nchunk) - c_seg0)
    bx_, by_ = ax + dx, ay + dy
    c_bounds = np.zeros((len(c_seg0), 4))
    if len(c_seg0):
        g = np.minimum(c_seg0[:, None] + np.arange(CHUNK), (c_seg0 + c_len - 1)[:, None])
        c_bounds = np.column_stack([
            np.minimum(ax[g], bx_[g]).min(axis=1), np.minimum(ay[g], by_[g]).min(axis=1),
            np.maximum(ax[g], bx_[g]).max(axis=1), np.maximum(ay[g], by_[g]).max(axis=1)])
    return Parts(
        kind=np.array(kind_list, dtype=np.int8), members=members, bounds=bounds,
        seg_start=start, ax=ax, ay=ay, dx=dx, dy=dy, inv_l2=inv_l2, slope=slope,
        geoms=np.array(geoms, dtype=object), chunk_start=chunk_start, c_seg0=c_seg0,
        c_len=c_len, c_bounds=c_bounds,
    )


def signed_distance(parts: Parts, px: np.ndarray, py: np.ndarray, part: np.ndarray, *,
                    outside: bool = False) -> np.ndarray:
    """Exact signed distance (inside > 0) of each point to the boundary of its paired part.

    Only the chunks of segments that can hold the nearest edge (box distance within the
    distance to the nearest chunk's edges) and those the horizontal ray from the point can
    cross are evaluated: the same floating-point values as :func:`signed_distance_all`, which
    evaluates every segment.

    ``outside=True``: every point is known to lie clearly outside its part's bounding box (by
    :data:`OUTSIDE_BOX_M` at least), so the ray crosses the boundary an even number of times
    (each ring's segments spanning the point's y are all crossed, or none): the crossings are
    not counted, the distance is the same and negative.
    """
    out = np.empty(len(px), dtype=np.float64)
    if len(px) == 0:
        return out
    order = np.argsort(part, kind="stable")
    cuts = np.flatnonzero(np.diff(part[order])) + 1
    if len(cuts) >= _MANY_GROUPS and len(px) < _FLAT_PER_GROUP * (len(cuts) + 1):
        # Many parts, few pairs each (the national layer): no loop by part.
        for c in range(0, len(px), _FLAT_PAIRS):
            out[c:c + _FLAT_PAIRS] = _signed_distance_flat(
                parts, px[c:c + _FLAT_PAIRS], py[c:c + _FLAT_PAIRS], part[c:c + _FLAT_PAIRS],
                outside=outside)
        return out
    for group in np.split(order, cuts):
        p = part[group[0]]
        c0, c1 = parts.chunk_start[p], parts.chunk_start[p + 1]
        cb, seg0, clen = parts.c_bounds[c0:c1], parts.c_seg0[c0:c1], parts.c_len[c0:c1]
        step = max(1, _PAIR_CHUNK // max(1, 4 * (c1 - c0)))
        for c in range(0, len(group), step):
            idx = group[c:c + step]
            x, y = px[idx], py[idx]
            gx = np.maximum(np.maximum(cb[:, 0] - x[:, None], x[:, None] - cb[:, 2]), 0.0)
            gy = np.maximum(np.maximum(cb[:, 1] - y[:, None], y[:, None] - cb[:, 3]), 0.0)
            lb = gx * gx + gy * gy  # squared distance to each chunk's box: a lower bound
            k0 = np.argmin(lb, axis=1)
            d0 = _chunk_d2(parts, x, y, seg0[k0], clen[k0])
            ci, ck = np.nonzero(lb <= (d0 * (1 + 1e-9) + 1e-9)[:, None])
            best = d0.copy()
            np.minimum.at(best, ci, _chunk_d2(parts, x[ci], y[ci], seg0[ck], clen[ck]))
            if outside:
                out[idx] = -np.sqrt(best)
                continue
            # Crossings of the ray towards +x: only chunks spanning y and reaching past x.
            ri, rk = np.nonzero((cb[:, 1] <= y[:, None]) & (y[:, None] <= cb[:, 3])
                                & (cb[:, 2] >= x[:, None]))
            count = np.zeros(len(idx), dtype=np.int64)
            np.add.at(count, ri, _chunk_crossings(parts, x[ri], y[ri], seg0[rk], clen[rk]))
            d = np.sqrt(best)
            out[idx] = np.where(count & 1, d, -d)
    return out


def _signed_distance_flat(parts: Parts, x: np.ndarray, y: np.ndarray, part: np.ndarray, *,
                          outside: bool = False) -> np.ndarray:
    """:func:`signed_distance` over (pair, chunk) rows of every pair at once: the same chunk
    boxes, the same chunks kept, the same segment arithmetic, hence the same values, without
    the per-part loop that costs when each part has a handful of pairs."""
    c0 = parts.chunk_start[part]
    cn = parts.chunk_start[part + 1] - c0
    pair = np.repeat(np.arange(len(x)), cn)
    first = np.cumsum(cn) - cn
    ck = np.arange(cn.sum()) - np.repeat(first, cn) + np.repeat(c0, cn)
    cb = parts.c_bounds[ck]
    xr, yr = x[pair], y[pair]
    gx = np.maximum(np.maximum(cb[:, 0] - xr, xr - cb[:, 2]), 0.0)
    gy = np.maximum(np.maximum(cb[:, 1] - yr, yr - cb[:, 3]), 0.0)
    lb = gx * gx + gy * gy
    low = np.minimum.reduceat(lb, first)
    at_low = np.flatnonzero(lb == low[pair])  # first chunk of least box distance (argmin)
    k0 = ck[at_low[np.r_[True, pair[at_low][1:] != pair[at_low][:-1]]]]
    d0 = _chunk_d2(parts, x, y, parts.c_seg0[k0], parts.c_len[k0])
    sel = np.flatnonzero(lb <= (d0 * (1 + 1e-9) + 1e-9)[pair])
    best = d0.copy()
    np.minimum.at(best, pair[sel], _chunk_d2(parts, xr[sel], yr[sel], parts.c_seg0[ck[sel]],
                                             parts.c_len[ck[sel]]))
    if outside:
        return -np.sqrt(best)
    ray = np.flatnonzero((cb[:, 1] <= yr) & (yr <= cb[:, 3]) & (cb[:, 2] >= xr))
    count = np.zeros(len(x), dtype=np.int64)
    np.add.at(count, pair[ray], _chunk_crossings(parts, xr[ray], yr[ray],
                                                 parts.c_seg0[ck[ray]], parts.c_len[ck[ray]]))
    d = np.sqrt(best)
    return np.where(count & 1, d, -d)


def _gather(seg0: np.ndarray, clen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ar = np.arange(CHUNK)
    valid = ar < clen[:, None]
    return np.where(valid, seg0[:, None] + ar, seg0[:, None]), valid


def _chunk_d2(parts: Parts, x: np.ndarray, y: np.ndarray, seg0: np.ndarray,
              clen: np.ndarray) -> np.ndarray:
    """Squared distance from each point to the nearest segment of its chunk."""
    g, valid = _gather(seg0, clen)
    ax, ay, dx, dy = parts.ax[g], parts.ay[g], parts.dx[g], parts.dy[g]
    rx = x[:, None] - ax
    ry = y[:, None] - ay
    t = np.clip((rx * dx + ry * dy) * parts.inv_l2[g], 0.0, 1.0)
    ex = rx - t * dx
    ey = ry - t * dy
    return np.min(np.where(valid, ex * ex + ey * ey, np.inf), axis=1)


def _chunk_crossings(parts: Parts, x: np.ndarray, y: np.ndarray, seg0: np.ndarray,
                     clen: np.ndarray) -> np.ndarray:
    """Segments of each chunk crossed by the ray from the point towards +x."""
    g, valid = _gather(seg0, clen)
    ay = parts.ay[g]
    by = ay + parts.dy[g]
    yy = y[:, None]
    crosses = ((ay > yy) != (by > yy)) & ((x[:, None] - parts.ax[g])
                                          < (yy - ay) * parts.slope[g])
    return np.count_nonzero(crosses & valid, axis=1)


def signed_distance_few(parts: Parts, px: np.ndarray, py: np.ndarray, part: np.ndarray
                        ) -> np.ndarray:
    """:func:`signed_distance` for a few pairs: one pass over all their segments (no loop by
    part), the same floating-point values."""
    out = np.empty(len(px), dtype=np.float64)
    if len(px) == 0:
        return out
    lo, hi = parts.seg_start[part], parts.seg_start[part + 1]
    counts = hi - lo
    pair = np.repeat(np.arange(len(px)), counts)
    seg = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) \
        + np.repeat(lo, counts)
    ax, ay, dx, dy = parts.ax[seg], parts.ay[seg], parts.dx[seg], parts.dy[seg]
    x, y = px[pair], py[pair]
    rx = x - ax
    ry = y - ay
    t = np.clip((rx * dx + ry * dy) * parts.inv_l2[seg], 0.0, 1.0)
    ex = rx - t * dx
    ey = ry - t * dy
    starts = np.cumsum(counts) - counts
    d = np.sqrt(np.minimum.reduceat(ex * ex + ey * ey, starts))
    by = ay + dy
    crosses = ((ay > y) != (by > y)) & (rx < ry * parts.slope[seg])
    inside = np.add.reduceat(crosses.astype(np.int64), starts) & 1
    out[:] = np.where(inside, d, -d)
    return out


def signed_distance_all(parts: Parts, px: np.ndarray, py: np.ndarray, part: np.ndarray
                        ) -> np.ndarray:
    """:func:`signed_distance` evaluating every segment of the part (reference, benchmarks)."""
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
