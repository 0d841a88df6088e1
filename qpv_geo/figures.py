"""Static maps (matplotlib) for print and PDF: WeasyPrint runs no JavaScript.

* :func:`static_sites_png`: the sites by priority over the perimeters (Lambert-93);
* :func:`static_coverage_png`: one panel per priority, QPV by number of actions, gaps in red.

matplotlib is imported inside the functions: ``import qpv_geo`` stays light.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo._carto import (
    COULEUR_LACUNE,
    COULEUR_QPV,
    COULEUR_QVA,
    COULEUR_SEM,
    PALIER_COUVERTURE,
    _icon,
    _located,
    _palier,
    _priority_column,
    notes_for,
)
from qpv_geo.priorites import AUTRE, PRIORITES, label_of

if TYPE_CHECKING:
    from qpv_geo.coverage import Coverage
    from qpv_geo.reference import Reference


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # No Agg canvas until savefig: geopandas calls draw_idle after each layer, a no-op on the
    # base canvas but a full redraw on Agg (3 s instead of 0.5 s for the 8-panel figure).
    return Figure(figsize=(width, height), dpi=100)


def _png(fig: Any, dpi: int) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _draw_perimeters(ax: Any, reference: Reference, *, qpv: bool = True) -> None:
    import shapely

    if len(reference.communes):
        com = reference.communes.to_crs(2154)
        com.boundary.plot(ax=ax, color="#bdbdbd", linewidth=0.4)
        outline = shapely.union_all(shapely.make_valid(com.geometry.values))
        import geopandas as gpd

        gpd.GeoSeries([outline], crs=2154).boundary.plot(ax=ax, color=COULEUR_SEM,
                                                          linewidth=1.2)
    if len(reference.qva):
        reference.qva.to_crs(2154).plot(ax=ax, facecolor="#d9d9d9", edgecolor=COULEUR_QVA,
                                        hatch="////", linewidth=0.6)
    if qpv and len(reference.qpv):
        reference.qpv.to_crs(2154).plot(ax=ax, facecolor=COULEUR_QPV + "40",
                                        edgecolor=COULEUR_QPV, linewidth=0.8)
    ax.set_axis_off()
    ax.set_aspect("equal")


def static_sites_png(sites: pd.DataFrame, reference: Reference, *, dpi: int = 130,
                     demo: bool | None = None) -> bytes:
    """PNG map of the sites by priority over the perimeters (Lambert-93), with the notes."""
    import geopandas as gpd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(9, 7.5)
    ax = fig.add_subplot(1, 1, 1)
    _draw_perimeters(ax, reference)
    located = _located(sites)
    prio = _priority_column(located)
    handles = [Patch(facecolor=COULEUR_QPV + "40", edgecolor=COULEUR_QPV, label="QPV 2024 de SEM"),
               Patch(facecolor="#d9d9d9", edgecolor=COULEUR_QVA, hatch="////",
                     label="QVA (non éligibles)")]
    for key in [*PRIORITES, AUTRE]:
        sel = located[prio == key]
        if len(sel) == 0:
            continue
        _, _, hexa = _icon(key)
        pts = gpd.GeoSeries(gpd.points_from_xy(pd.to_numeric(sel["lon"]),
                                               pd.to_numeric(sel["lat"])), crs=4326).to_crs(2154)
        ax.scatter(pts.x, pts.y, s=18, color=hexa, edgecolor="white", linewidth=0.5, zorder=5)
        handles.append(Line2D([], [], marker="o", linestyle="", color=hexa,
                              label=f"{label_of(key)} ({len(sel)})"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
    notes = notes_for(reference, sites, demo=demo)
    if notes:
        fig.text(0.01, 0.01, "\n".join("⚠ " + n for n in notes), fontsize=7.5, color="#8a5a00",
                 va="bottom")
    return _png(fig, dpi)


def static_coverage_png(coverage: Coverage, reference: Reference, *, dpi: int = 110,
                        demo: bool | None = None, sites: pd.DataFrame | None = None) -> bytes:
    """PNG small multiples: one panel per priority, QPV by number of actions, gaps in red."""
    from matplotlib.patches import Patch

    keys = list(PRIORITES)
    cols = 4
    rows = math.ceil(len(keys) / cols)
    fig = _figure(3.3 * cols, 3.1 * rows + 0.6)
    qpv = reference.qpv.to_crs(2154)
    matrix = coverage.matrix.set_index(["code_qp", "priorite"])
    rates = coverage.par_priorite.set_index("priorite")
    minx, miny, maxx, maxy = qpv.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.08 + 500
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        _draw_perimeters(ax, reference, qpv=False)
        n = np.array([int(matrix.loc[(c, key), "actions"]) if (c, key) in matrix.index else 0
                      for c in qpv["code_qp"]])
        qpv.plot(ax=ax, color=[_palier(int(v)) for v in n], edgecolor="#555555", linewidth=0.5)
        if (n == 0).any():
            qpv[n == 0].boundary.plot(ax=ax, color=COULEUR_LACUNE, linewidth=1.4)
        ax.set_xlim(minx - pad, maxx + pad)
        ax.set_ylim(miny - pad, maxy + pad)
        taux = rates.loc[key, "taux_couverture"] if key in rates.index else 0.0
        ax.set_title(f"{label_of(key)}\n{taux:.0%} des QPV atteints", fontsize=9)
    handles = [Patch(facecolor=c, edgecolor="#555555", label=f"{lbl} action(s)")
               for _, c, lbl in PALIER_COUVERTURE[1:]]
    handles.append(Patch(facecolor="#ffffff", edgecolor=COULEUR_LACUNE, label="lacune"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    notes = notes_for(reference, sites, demo=demo)
    if notes:
        fig.suptitle(" ; ".join(notes), fontsize=8, color="#8a5a00")
    return _png(fig, dpi)


__all__ = ["static_coverage_png", "static_sites_png"]
