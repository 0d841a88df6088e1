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


__all__ = ["Grille", "build_grid", "grid_candidates"]
