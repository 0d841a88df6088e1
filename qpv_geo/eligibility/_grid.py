"""The grid over the study area: per cell, the candidate parts and the commune.

:meth:`Engine.classify_xy <qpv_geo.eligibility.engine.Engine.classify_xy>` judges many points of a
territory with commune outlines through a regular grid (cells of 250 m): each cell stores the
parts that can matter to a point of the cell (lower/upper distance bounds from the cell centre)
and the commune wholly containing it; cells on a commune edge are split into sub-cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Engine

_FINE = 4  # cells on a commune edge are split into _FINE × _FINE sub-cells


@dataclass
class Grille:
    """Regular grid over the study area: per cell, the candidate parts and the commune."""

    x0: float
    y0: float
    size: float
    nx: int
    ny: int
    cand_start: np.ndarray  # (ncells+1,) offsets
    cand: np.ndarray  # part indices
    commune: np.ndarray  # (ncells,) int32: commune index, -1 unknown, -2 clearly outside
    fine_of: np.ndarray  # (ncells,) int32: row in ``fine`` for unknown cells, -1
    fine: np.ndarray  # (nfine, _FINE, _FINE) int32: the same codes on 1/_FINE sub-cells


def build_grid(engine: Engine) -> Grille:
    """The grid over the study area (the territory and its surroundings, see Engine)."""
    xmin, ymin, xmax, ymax = engine._grid_area
    size = 250.0
    nx = math.ceil((xmax - xmin) / size)
    ny = math.ceil((ymax - ymin) / size)
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="xy")
    cx = xmin + (ix.ravel() + 0.5) * size
    cy = ymin + (iy.ravel() + 0.5) * size
    h = size * math.sqrt(0.5)
    cand_cells, cand_parts = engine._candidates(cx, cy, slack=h, marge=engine._marge_grille)
    order = np.lexsort((cand_parts, cand_cells))
    cand_cells, cand_parts = cand_cells[order], cand_parts[order]
    ncells = nx * ny
    start = np.zeros(ncells + 1, dtype=np.int64)
    np.add.at(start, cand_cells + 1, 1)
    start = np.cumsum(start)
    commune = _commune_codes(engine, cx, cy, size)
    unknown = np.flatnonzero(commune == -1)
    fine_of = np.full(ncells, -1, dtype=np.int32)
    fine_of[unknown] = np.arange(len(unknown), dtype=np.int32)
    sub = size / _FINE
    off = (np.arange(_FINE) + 0.5) * sub - size / 2
    fx = (cx[unknown, None, None] + off[None, None, :]).repeat(_FINE, axis=1)
    fy = (cy[unknown, None, None] + off[None, :, None]).repeat(_FINE, axis=2)
    fine = _commune_codes(engine, fx.ravel(), fy.ravel(), sub).reshape(-1, _FINE, _FINE)
    return Grille(x0=xmin, y0=ymin, size=size, nx=nx, ny=ny, cand_start=start,
                 cand=cand_parts.astype(np.int32), commune=commune, fine_of=fine_of,
                 fine=fine)


def _commune_codes(engine: Engine, cx: np.ndarray, cy: np.ndarray, size: float) -> np.ndarray:
    """Per square cell: the commune wholly containing it, -2 if clearly outside SEM
    (farther than the tolerance from every commune), else -1 (decided point by point)."""
    boxes = shapely.box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    commune = np.full(len(cx), -2, dtype=np.int32)
    # Cells not touching SEM grown by the tolerance (+2 m for the buffer's chords).
    near = np.flatnonzero(shapely.intersects(engine._sem_grown, boxes))
    commune[near] = -1
    cells, which = engine._commune_tree.query(boxes[near], predicate="within")
    commune[near[cells]] = which
    return commune


def grid_candidates(engine: Engine, x: np.ndarray, y: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, part) candidate pairs and the commune code of points inside the grid (built on
    first use)."""
    if engine._grid is None:
        engine._grid = engine._build_grid()
    g = engine._grid
    ix = np.floor((x - g.x0) / g.size).astype(np.int64)
    iy = np.floor((y - g.y0) / g.size).astype(np.int64)
    inside = (ix >= 0) & (ix < g.nx) & (iy >= 0) & (iy < g.ny)
    cell = np.where(inside, iy * g.nx + ix, -1)
    ok = np.flatnonzero(inside)
    c = cell[ok]
    counts = g.cand_start[c + 1] - g.cand_start[c]
    pi = np.repeat(ok, counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pj = g.cand[np.repeat(g.cand_start[c], counts) + offs].astype(np.int64)
    commune = np.full(len(x), -2, dtype=np.int32)
    commune[ok] = g.commune[c]
    # Cells on a commune edge: look at the sub-cell.
    edge = ok[g.fine_of[c] >= 0]
    if len(edge):
        ce = cell[edge]
        fx = np.clip(((x[edge] - g.x0) / g.size - ce % g.nx) * _FINE, 0, _FINE - 1)
        fy = np.clip(((y[edge] - g.y0) / g.size - ce // g.nx) * _FINE, 0, _FINE - 1)
        commune[edge] = g.fine[g.fine_of[ce], fy.astype(np.int64), fx.astype(np.int64)]
    return pi, pj, commune


#: Cell side (m) of the sparse grid: a part is listed in ~(box + 2 reach) / side cells a side.
_SPARSE_SIZE = 1000.0
#: Cell key = column * _KEY + row (plane coordinates stay far below 2**31 cells a side).
_KEY = 1 << 31


@dataclass
class GrilleCreuse:
    """Sparse grid over a plane of far-apart zones (all of France, overseas included): for each
    cell within reach of some part, the parts whose bounding box is within reach of it."""

    size: float
    keys: np.ndarray  # (ncells,) int64, sorted cell keys
    cand_start: np.ndarray  # (ncells+1,) offsets
    cand: np.ndarray  # part indices


def build_sparse_grid(bounds: np.ndarray, reach: float) -> GrilleCreuse:
    """Every cell that meets a part's box grown by ``reach`` (+1 m against rounding) lists
    that part: a superset of the parts whose box is within ``reach`` of any point of the cell
    (a point within ``reach`` of a box is in the box grown by ``reach`` on every side)."""
    size = _SPARSE_SIZE
    grow = reach + 1.0
    ix0 = np.floor((bounds[:, 0] - grow) / size).astype(np.int64)
    iy0 = np.floor((bounds[:, 1] - grow) / size).astype(np.int64)
    nx = np.floor((bounds[:, 2] + grow) / size).astype(np.int64) - ix0 + 1
    ny = np.floor((bounds[:, 3] + grow) / size).astype(np.int64) - iy0 + 1
    count = nx * ny
    part = np.repeat(np.arange(len(bounds), dtype=np.int32), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    rx = np.repeat(nx, count)
    key = (np.repeat(ix0, count) + k % rx) * _KEY + np.repeat(iy0, count) + k // rx
    order = np.lexsort((part, key))
    key, part = key[order], part[order]
    keys, first = np.unique(key, return_index=True)
    return GrilleCreuse(size=size, keys=keys, cand_start=np.append(first, len(key)),
                        cand=part)


def sparse_candidates(g: GrilleCreuse, x: np.ndarray, y: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(point, part) pairs of the points' cells (finite x/y of the plane): a superset of the
    parts whose box is within the grid's reach of each point."""
    key = np.floor(x / g.size).astype(np.int64) * _KEY + np.floor(y / g.size).astype(np.int64)
    pos = np.minimum(np.searchsorted(g.keys, key), max(len(g.keys) - 1, 0))
    ok = np.flatnonzero(g.keys[pos] == key) if len(g.keys) else np.zeros(0, np.int64)
    c = pos[ok]
    counts = g.cand_start[c + 1] - g.cand_start[c]
    pi = np.repeat(ok, counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pj = g.cand[np.repeat(g.cand_start[c], counts) + offs].astype(np.int64)
    return pi, pj


__all__ = ["Grille", "GrilleCreuse", "build_grid", "build_sparse_grid", "grid_candidates",
           "sparse_candidates"]
