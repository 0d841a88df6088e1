"""Static maps and charts (matplotlib) for print, PDF and the notebook.

WeasyPrint runs no JavaScript: the PDF shows these images in place of the interactive maps.

* :func:`static_sites_png`: the sites by priority, SEM on the left, a zoom on the QPV of
  Saint-Étienne with its streets (OpenStreetMap) and the QPV names on the right; sites outside
  SEM are not drawn (the report lists them apart);
* :func:`static_coverage_png`: one panel per priority, the QPV with an action inside (blue),
  served only within the radius (yellow), gaps outlined in red;
* :func:`coverage_by_priority_figure` / :func:`coverage_by_qpv_figure`: bar charts of the
  QPV × priority cells (inside / quartier vécu only / no action, never added into one rate);
  :func:`figure_png` turns any of them into PNG bytes.

matplotlib is imported inside the functions: ``import qpv_geo`` stays light.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo.batch.priorities import AUTRE, PRIORITES, label_of
from qpv_geo.eligibility.wording import libelles
from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.reporting import osm
from qpv_geo.reporting._carto import (
    COULEUR_DANS,
    COULEUR_LACUNE,
    COULEUR_LACUNE_CLAIR,
    COULEUR_QPV,
    COULEUR_QVA,
    COULEUR_SEM,
    COULEUR_VECU,
    COULEUR_VECU_CLAIR,
    LIBELLE_FOND_COMMUNES,
    PALIER_COUVERTURE,
    fond_communes,
    grand_territoire,
    located_sites,
    notes_for,
    palier,
    priority_column,
    priority_icon,
)
from qpv_geo.reporting._zones import couche_cadre, epsg_cadre, par_zone
from qpv_geo.reporting.coverage import axes_of_call

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference
    from qpv_geo.reporting.coverage import Coverage


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


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure of this module."""
    return _png(fig, dpi)


def _epsg(reference: Reference) -> int:
    """Metric EPSG of the territory's static maps: 2154 (Lambert-93) for SEM and metropolitan
    France, the territory's UTM zone overseas."""
    return epsg_cadre(reference.communes if len(reference.communes) else reference.qpv)


def _dans_cadre(gdf: Any, epsg: int) -> Any:
    """The geometries of ``gdf`` in the zone of ``epsg`` (all France: the metropolitan ones
    on a Lambert-93 map); ``gdf`` itself when they all are."""
    for zone_epsg, mask in par_zone(gdf):
        if zone_epsg == epsg:
            return gdf if mask.all() else gdf[mask]
    return gdf.iloc[0:0]


def _draw_perimeters(ax: Any, reference: Reference, *, qpv: bool = True,
                     strong: bool = False, epsg: int = 2154) -> None:
    import shapely

    if len(reference.communes):
        com = reference.communes.to_crs(epsg)
        com.boundary.plot(ax=ax, color="#bdbdbd", linewidth=0.4)
        outline = shapely.union_all(shapely.make_valid(com.geometry.values))
        import geopandas as gpd

        gpd.GeoSeries([outline], crs=epsg).boundary.plot(ax=ax, color=COULEUR_SEM,
                                                          linewidth=1.2)
    fond = fond_communes(reference)
    if fond is not None:  # a territory other than SEM: its installed (simplified) outlines
        fond.to_crs(epsg).boundary.plot(ax=ax, color="#bdbdbd", linewidth=0.4)
    if len(reference.qva):
        reference.qva.to_crs(epsg).plot(ax=ax, facecolor="#d9d9d9", edgecolor=COULEUR_QVA,
                                        hatch="////", linewidth=0.6)
    zones = _dans_cadre(reference.qpv, epsg) if qpv and len(reference.qpv) else ()
    if len(zones):
        # On the overview the QPV are small: a stronger fill keeps them visible.
        zones.to_crs(epsg).plot(ax=ax, facecolor=COULEUR_QPV + ("80" if strong else "30"),
                                edgecolor=COULEUR_QPV, linewidth=1.0 if strong else 1.2,
                                zorder=3)
    ax.set_axis_off()
    ax.set_aspect("equal")


#: Pad (m) around SEM on the overview map.
_PAD_SEM_M = 1500.0
#: Metropolitan France in Lambert-93: the frame of a territory with no QPV and no outline.
_FRANCE_L93 = (99_000.0, 6_046_000.0, 1_243_000.0, 7_111_000.0)


def _sem_extent(reference: Reference) -> tuple[float, float, float, float]:
    """Bounds (metric, :func:`_epsg`) of the territory (SEM by default), padded: the frame of
    every overview map (all France: the metropolitan part)."""
    layer = reference.communes if len(reference.communes) else reference.qpv
    if not len(layer):
        return _FRANCE_L93
    minx, miny, maxx, maxy = couche_cadre(layer).to_crs(_epsg(reference)).total_bounds
    return minx - _PAD_SEM_M, miny - _PAD_SEM_M, maxx + _PAD_SEM_M, maxy + _PAD_SEM_M


def _site_points(sites: pd.DataFrame, epsg: int = 2154) -> Any:
    import geopandas as gpd

    located = located_sites(sites)
    pts = gpd.GeoSeries(gpd.points_from_xy(pd.to_numeric(located["lon"]),
                                           pd.to_numeric(located["lat"])),
                        index=located.index, crs=4326).to_crs(epsg)
    return located, pts


def sites_outside_map(sites: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Located sites that the maps framed on the territory do not show (outside it and its
    margin)."""
    located, pts = _site_points(sites, _epsg(reference))
    minx, miny, maxx, maxy = _sem_extent(reference)
    inside = (pts.x >= minx) & (pts.x <= maxx) & (pts.y >= miny) & (pts.y <= maxy)
    return located[~inside.to_numpy()]


def sites_on_map(sites: pd.DataFrame, reference: Reference, *,
                 interactive: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(drawn, left off): the located sites a map of the territory draws, and those it leaves
    off — the report's « non dessinés sur les cartes »
    (:func:`qpv_geo.reporting.report._outside_rows`): judged outside the territory, or outside the
    frame of the maps. An interactive map of a large territory (all France) keeps the sites outside
    the printed frame (overseas: one zoom out away)."""
    located = located_sites(sites)
    off = np.zeros(len(located), dtype=bool)
    if "status" in located.columns:
        off |= (located["status"] == "hors_territoire").to_numpy()
    if len(located) and not (interactive and grand_territoire(reference)):
        off |= located.index.isin(sites_outside_map(sites, reference).index)
    return located[~off], located[off]


def zoom_extent(reference: Reference) -> tuple[float, float, float, float] | None:
    """Frame (Lambert-93, as the street layer: Saint-Étienne) of the QPV it covers, or None
    (also for all of France: a zoom on one city would say nothing of the country)."""
    import shapely

    if libelles(reference).france:
        return None
    try:
        box = shapely.box(*osm.roads_bbox())
    except ReferenceDataError:  # no street layer: no zoom panel
        return None
    qpv = reference.qpv
    if not len(qpv):
        return None
    sel = qpv[shapely.within(qpv.geometry.values, box)]
    if not len(sel):
        return None
    minx, miny, maxx, maxy = sel.to_crs(2154).total_bounds
    pad = 400.0
    return minx - pad, miny - pad, maxx + pad, maxy + pad


def draw_scale_bar(ax: Any, extent: tuple[float, float, float, float], *,
                   fontsize: float = 7.0) -> None:
    """A metric scale bar (« 500 m », « 2 km ») bottom right of a map in metres (where a
    territory's outline leaves room): about a fifth of its width, rounded to 1, 2 or 5 × a
    power of ten."""
    width = extent[2] - extent[0]
    target = width / 5
    step = 10 ** math.floor(math.log10(target))
    length = max(m * step for m in (1, 2, 5) if m * step <= target)
    x0 = extent[2] - width * 0.04 - length
    y0 = extent[1] + (extent[3] - extent[1]) * 0.04
    ax.plot([x0, x0 + length], [y0, y0], color="#222222", linewidth=2.2,
            solid_capstyle="butt", zorder=9)
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    import matplotlib.patheffects as pe

    ax.text(x0 + length / 2, y0 + (extent[3] - extent[1]) * 0.015, text, ha="center",
            va="bottom", fontsize=fontsize, zorder=9,
            path_effects=[pe.withStroke(linewidth=2, foreground="white")])


def _draw_roads(ax: Any, extent: tuple[float, float, float, float]) -> bool:
    import geopandas as gpd

    lon_lat = gpd.GeoSeries.from_xy([extent[0], extent[2]], [extent[1], extent[3]],
                                    crs=2154).to_crs(4326)
    bbox = (float(lon_lat.x.min()), float(lon_lat.y.min()), float(lon_lat.x.max()),
            float(lon_lat.y.max()))
    try:
        roads = osm.roads_in_bbox(bbox) if osm.covers(bbox) else None
    except ReferenceDataError:  # the map stays readable without streets
        return False
    if roads is None or not len(roads):
        return False
    roads = roads.to_crs(2154)
    for classe, width in ((2, 0.35), (1, 0.7), (0, 1.0)):
        sel = roads[roads["classe"] == classe]
        if len(sel):
            sel.plot(ax=ax, color="#b5b5b5", linewidth=width, zorder=1)
    return True


def _label_qpv(ax: Any, reference: Reference, extent: tuple[float, float, float, float]) -> None:
    import matplotlib.patheffects as pe
    import shapely

    qpv = reference.qpv.to_crs(2154)
    frame = shapely.box(*extent)
    for lib, geom in zip(qpv["lib_qp"], qpv.geometry.values, strict=True):
        if not shapely.intersects(geom, frame):
            continue
        p = geom.representative_point()
        ax.annotate(str(lib), (p.x, p.y), fontsize=6.5, ha="center", va="center",
                    color="#2d1b4e", zorder=7,
                    path_effects=[pe.withStroke(linewidth=2.2, foreground="white")])


def static_sites_png(sites: pd.DataFrame, reference: Reference, *, dpi: int = 130,
                     demo: bool | None = None) -> bytes:
    """PNG map of the sites by priority over the perimeters (Lambert-93), with the notes.

    Framed on the territory (SEM by default); when some of its QPV are in Saint-Étienne, a
    second panel zooms on them with the streets and the QPV names. Sites outside the frame are
    not drawn (:func:`sites_outside_map` lists them).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    mots = libelles(reference)
    epsg = _epsg(reference)
    zoom = zoom_extent(reference) if epsg == 2154 else None  # the streets are in Lambert-93
    extents = [_sem_extent(reference)] + ([zoom] if zoom else [])
    fig = _figure(13.0 if zoom else 8.5, 5.6 if zoom else 6.6)
    drawn, outside = sites_on_map(sites, reference)
    located, pts = _site_points(drawn, epsg)
    prio = priority_column(located)
    unlocated = priority_column(sites[~sites.index.isin(located_sites(sites).index)])
    streets = False
    # Panels as wide as their frames are: SEM is wide, the Saint-Étienne zoom tall.
    ratios = [(e[2] - e[0]) / (e[3] - e[1]) for e in extents]
    grid = fig.add_gridspec(1, len(extents), width_ratios=ratios, wspace=0.04)
    for i, extent in enumerate(extents):
        ax = fig.add_subplot(grid[0, i])
        if i == 1:
            streets = _draw_roads(ax, extent)
        _draw_perimeters(ax, reference, strong=(i == 0), epsg=epsg)
        if i == 1:
            _label_qpv(ax, reference, extent)
        for key in [*PRIORITES, AUTRE]:
            mask = (prio == key).to_numpy()
            if not mask.any():
                continue
            _, _, hexa = priority_icon(key)
            ax.scatter(pts[mask].x, pts[mask].y, s=26 if i else 18, color=hexa,
                       edgecolor="#222222", linewidth=0.5, zorder=6)
        ax.set_xlim(extent[0], extent[2])
        ax.set_ylim(extent[1], extent[3])
        draw_scale_bar(ax, extent)
        if i == 0:
            ax.set_title(mots.titre_carte, fontsize=10)
            if zoom:
                ax.add_patch(Rectangle((zoom[0], zoom[1]), zoom[2] - zoom[0], zoom[3] - zoom[1],
                                       fill=False, edgecolor="#555555", linewidth=0.8,
                                       linestyle="--", zorder=8))
        else:
            ax.set_title("Zoom : QPV de Saint-Étienne (cadre pointillé)", fontsize=10)
    handles = [Patch(facecolor=COULEUR_QPV + "40", edgecolor=COULEUR_QPV, label=mots.qpv)]
    if mots.a_des_qva or len(reference.qva):  # no QVA anywhere else: the notes say so, once
        handles.append(Patch(facecolor="#d9d9d9", edgecolor=COULEUR_QVA, hatch="////",
                             label="QVA (non éligibles)"))
    if len(reference.communes):  # every drawn thing: outlines, streets, the zoom's frame
        handles.append(Line2D([], [], color="#bdbdbd", linewidth=0.8, label=mots.communes))
        handles.append(Line2D([], [], color=COULEUR_SEM, linewidth=1.2, label=mots.contour))
    elif fond_communes(reference) is not None:
        handles.append(Line2D([], [], color="#bdbdbd", linewidth=0.8,
                              label=LIBELLE_FOND_COMMUNES))
    if streets:
        handles.append(Line2D([], [], color="#b5b5b5", linewidth=1.0,
                              label="rues OpenStreetMap (zoom)"))
    if zoom:
        handles.append(Patch(facecolor="none", edgecolor="#555555", linestyle="--",
                             label="cadre du zoom"))
    # every priority of the call, even with no site drawn (the count is what is drawn)
    for key in [*PRIORITES, AUTRE]:
        n = int((prio == key).sum())
        if key == AUTRE and not n:
            continue
        _, _, hexa = priority_icon(key)
        handles.append(Line2D([], [], marker="o", linestyle="", color=hexa if n else "#ffffff",
                              markeredgecolor="#222222", label=f"{label_of(key)} ({n})"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    lines = []
    if len(outside):
        lines.append(f"{_sites(len(outside))} {mots.hors_territoire}, non dessiné"
                     f"{'s' if len(outside) > 1 else ''} ({_by_priority(outside)}) : "
                     + ("comptés dans le rapport" if grand_territoire(reference)
                        else "voir la liste dans le rapport"))
    if len(unlocated):
        lines.append(f"{_sites(len(unlocated))} non localisé{'s' if len(unlocated) > 1 else ''}"
                     f", non dessiné{'s' if len(unlocated) > 1 else ''} "
                     f"({_by_priority(unlocated)})")
    if streets:
        lines.append(f"Rues : {osm.ROADS_ATTRIBUTION}, {osm.ROADS_COVERAGE_TEXT}")
    notes = notes_for(reference, sites, demo=demo)
    lines += ["⚠ " + n for n in notes]
    if grand_territoire(reference):  # long notes (all France) set the picture's width: the
        import textwrap  # map shrank to a third of it; wrapped, the map keeps its size

        lines = [textwrap.fill(line, 150) for line in lines]
    if lines:
        fig.text(0.01, -0.03, "\n".join(lines), fontsize=7.5, color="#5a4a00", va="top")
    return _png(fig, dpi)


def _sites(n: int) -> str:
    return f"{n} site{'s' if n > 1 else ''}"


def _by_priority(rows: pd.DataFrame | pd.Series) -> str:
    """« Mobilité 2, Santé 1 »: how many of ``rows`` (sites, or their priority keys) per
    priority, in the call's order."""
    keys = rows if isinstance(rows, pd.Series) else priority_column(rows)
    counts = keys.value_counts()
    return ", ".join(f"{label_of(k)} {int(counts[k])}" for k in [*PRIORITES, AUTRE]
                     if k in counts.index)


#: Above this many QPV, the coverage panels mark each QPV with a small disc.
_QPV_GROS_POINTS = 150


def static_coverage_png(coverage: Coverage, reference: Reference, *, dpi: int = 110,
                        demo: bool | None = None, sites: pd.DataFrame | None = None) -> bytes:
    """PNG small multiples: one panel per priority; QPV with an action inside in blue (darker
    with more actions), served only within the radius in yellow, gaps outlined in red."""
    from matplotlib.patches import Patch

    keys = list(PRIORITES)
    cols = 4
    rows = math.ceil(len(keys) / cols)
    fig = _figure(3.3 * cols, 3.2 * rows + 0.6)
    epsg = _epsg(reference)
    qpv = _dans_cadre(reference.qpv, epsg)
    hors_cadre = len(reference.qpv) - len(qpv)  # all France: the overseas QPV
    qpv = qpv.to_crs(epsg)
    if not len(qpv):  # a territory without QPV (a small commune): say so, draw nothing
        fig.text(0.5, 0.5, "Aucun QPV 2024 dans ce territoire : rien à couvrir.",
                 ha="center", va="center", fontsize=12)
        notes = notes_for(reference, sites, demo=demo)
        if notes:
            fig.text(0.5, 0.4, " ; ".join(notes), ha="center", va="center", fontsize=8,
                     color="#8a5a00", wrap=True)
        return _png(fig, dpi)
    matrix = coverage.matrix.set_index(["code_qp", "priorite"])
    rates = coverage.par_priorite.set_index("priorite")
    minx, miny, maxx, maxy = qpv.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.06 + 500
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        _draw_perimeters(ax, reference, qpv=False, epsg=epsg)

        def val(code: str, col: str, key: str = key) -> int:
            return int(matrix.loc[(code, key), col]) if (code, key) in matrix.index else 0

        dans = np.array([val(c, "actions_dans") for c in qpv["code_qp"]])
        tous = np.array([val(c, "actions") for c in qpv["code_qp"]])
        fills = [palier(int(d), proximite=int(t - d)) for d, t in zip(dans, tous, strict=True)]
        qpv.plot(ax=ax, color=fills, edgecolor="#333333", linewidth=0.9, zorder=3)
        if (tous == 0).any():
            qpv[tous == 0].boundary.plot(ax=ax, color=COULEUR_LACUNE, linewidth=1.4, zorder=4)
        # At this scale a QPV is a few pixels: a disc in its colour marks each one (small
        # discs, those with an action on top, when there are hundreds: all France).
        spots = qpv.geometry.representative_point()
        edges = [COULEUR_LACUNE if t == 0 else "#333333" for t in tous]
        if len(qpv) <= _QPV_GROS_POINTS:
            ax.scatter(spots.x, spots.y, s=34, c=fills, zorder=5, linewidths=1.3,
                       edgecolors=edges)
        else:
            order = np.argsort(tous > 0, kind="stable")
            ax.scatter(spots.x.to_numpy()[order], spots.y.to_numpy()[order],
                       s=np.where(tous[order] > 0, 40, 5),
                       c=np.asarray(fills, dtype=object)[order].tolist(), zorder=5,
                       linewidths=0.4, edgecolors=np.asarray(edges, dtype=object)[order].tolist())
        ax.set_xlim(minx - pad, maxx + pad)
        ax.set_ylim(miny - pad, maxy + pad)
        draw_scale_bar(ax, (minx - pad, miny - pad, maxx + pad, maxy + pad), fontsize=6.5)
        r = rates.loc[key] if key in rates.index else None
        detail = ("" if r is None else
                  f"{int(r['qpv_dans'])}/{int(r['qpv_total'])} dans le QPV · "
                  f"{int(r['qpv_proximite'])} à ≤ {coverage.rayon_m:.0f} m"
                  + (" · " if len(qpv) <= _QPV_GROS_POINTS else "\n")  # long numbers
                  + f"{int(r['qpv_lacunes'])} lacunes")
        axe = PRIORITES[key].axe
        prefix = "Lever les freins : " if axe == "Lever les freins" else ""
        perdus = non_localises(coverage, key)
        if perdus:  # a priority whose sites are not located: all gaps, and it says why
            detail += f"\n+ {_sites(perdus)} non localisé{'s' if perdus > 1 else ''}"
        ax.set_title(f"{prefix}{label_of(key)}\n{detail}", fontsize=8.5)
    handles = [Patch(facecolor=c, edgecolor="#555555", label=f"{lbl} action(s) dans le QPV")
               for _, c, lbl in PALIER_COUVERTURE]
    handles.append(Patch(facecolor=COULEUR_VECU_CLAIR, edgecolor="#555555",
                         label=f"seulement à ≤ {coverage.rayon_m:.0f} m (quartier vécu)"))
    handles.append(Patch(facecolor="#ffffff", edgecolor=COULEUR_LACUNE, linewidth=1.4,
                         label="lacune : aucune action"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
    notes = notes_for(reference, sites, demo=demo)
    if hors_cadre:
        notes.append(f"{hors_cadre} QPV d'outre-mer hors de ces cartes (voir la matrice)")
    if notes:
        text = " ; ".join(notes)
        if len(text) > 240:  # long notes (all France): wrapped, not cut at the page edge
            import textwrap

            text = textwrap.fill(text, 200)
            fig.suptitle(text, fontsize=8, color="#8a5a00", y=1.0 + 0.03 * text.count("\n"))
        else:
            fig.suptitle(text, fontsize=8, color="#8a5a00")
    return _png(fig, dpi)


def non_localises(coverage: Coverage, key: str) -> int:
    """Sites of priority ``key`` in the file that are not located (not drawn, not counted in
    the coverage)."""
    rates = coverage.par_priorite.set_index("priorite")
    if key not in rates.index:
        return 0
    return max(0, int(rates.loc[key, "sites"]) - int(rates.loc[key, "sites_localises"]))


def _stacked(ax: Any, y: np.ndarray, parts: list[tuple[np.ndarray, str, str, str | None]],
             total: int) -> None:
    import matplotlib.patheffects as pe

    halo = [pe.withStroke(linewidth=2.5, foreground="white")]
    left = np.zeros(len(y))
    for values, color, edge, hatch in parts:
        ax.barh(y, values, left=left, height=0.68, color=color, edgecolor=edge,
                linewidth=0.6, hatch=hatch)
        for yy, v, lft in zip(y, values, left, strict=True):
            if v > 0:
                dark = color == COULEUR_DANS
                ax.text(lft + v / 2, yy, str(int(v)), ha="center", va="center", fontsize=7.5,
                        color="white" if dark else "#222222",
                        path_effects=None if dark else halo)
        left = left + values
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0, total)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)


def _legend_parts(rayon_m: float) -> list[tuple[str, str, str | None, str]]:
    return [(COULEUR_DANS, COULEUR_DANS, None, "action dans le QPV"),
            (COULEUR_VECU, "#8a6d00", "///", f"seulement quartier vécu (≤ {rayon_m:.0f} m)"),
            (COULEUR_LACUNE_CLAIR, COULEUR_LACUNE, None, "lacune : aucune action")]


def coverage_by_priority_figure(coverage: Coverage,
                                reference: Reference | None = None) -> Any:
    """Bar chart: per priority (grouped by the call's axes), the number of QPV with an action
    inside, served only within the radius, with no action (QPV of the ``reference``'s
    territory, SEM by default)."""

    rates = coverage.par_priorite.set_index("priorite")
    labels: list[str] = []
    rows: list[str | None] = []
    for axe, keys in axes_of_call():
        if len(keys) > 1:
            labels.append(axe)
            rows.append(None)
            labels += ["    " + label_of(k) for k in keys]
        else:
            labels.append(label_of(keys[0]))
        rows += keys if len(keys) > 1 else [keys[0]]
    total = int(coverage.qpv_total) or 1
    fig = _figure(8.2, 0.42 * len(rows) + 1.3)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1].astype(float)
    keep = np.array([r is not None for r in rows])

    def col(name: str) -> np.ndarray:
        return np.array([int(rates.loc[r, name]) if r is not None else 0 for r in rows])

    parts = [(col("qpv_dans")[keep], c, e, h) for c, e, h, _ in _legend_parts(0)[:1]]
    parts.append((col("qpv_proximite")[keep], COULEUR_VECU, "#8a6d00", "///"))
    parts.append((col("qpv_lacunes")[keep], COULEUR_LACUNE_CLAIR, COULEUR_LACUNE, None))
    _stacked(ax, y[keep], parts, total)
    ax.set_yticks(y, labels, fontsize=8.5)
    for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
        if r is None:
            tick.set_fontweight("bold")
    dans = col("qpv_dans")
    for yy, r, d in zip(y, rows, dans, strict=True):
        if r is not None:
            ax.text(total * 1.01, yy, f"{d / total:.0%}".replace("%", " %") + " dans le QPV",
                    va="center", fontsize=7.5, color=COULEUR_DANS)
    ax.set_xlabel(f"Nombre de {libelles(reference).qpv_court} (sur {total})", fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("Couverture des QPV par priorité de l'appel", fontsize=10, loc="left")
    _coverage_legend(fig, coverage.rayon_m, -0.04)
    return fig


def _coverage_legend(fig: Any, rayon_m: float, y: float) -> None:
    """The legend of both coverage charts (inside / quartier vécu only / gap), under the axes."""
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(facecolor=c, edgecolor=e, hatch=h, label=lbl)
                        for c, e, h, lbl in _legend_parts(rayon_m)],
               loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, y))


#: Above this many QPV (a large territory, France), the per-QPV chart keeps those reached.
MAX_BARRES_QPV = 80


def coverage_by_qpv_figure(coverage: Coverage) -> Any:
    """Bar chart: per QPV, the number of the call's priorities with an action inside, served
    only within the radius, with no action (QPV with the fewest priorities inside first).

    Above :data:`MAX_BARRES_QPV` QPV, only the QPV some action reaches are drawn (at most that
    many) and the title says how many are left out."""
    q = coverage.par_qpv.sort_values(["priorites_dans", "priorites_proximite", "lib_qp"],
                                     ascending=[True, True, True], kind="stable")
    omis = ""
    if len(q) > MAX_BARRES_QPV:
        reached = q[q["priorites_atteintes"] > 0]
        kept = reached.iloc[max(0, len(reached) - MAX_BARRES_QPV):]
        omis = (f" — {len(q) - len(kept)} QPV sans aucune action non représentés"
                if len(kept) == len(reached) else f" — {len(q) - len(kept)} QPV non "
                "représentés (sans action, ou parmi les moins couverts)")
        q = kept
    n = len(q)
    total = len(PRIORITES)
    height = 0.3 * n + 1.4
    fig = _figure(8.2, height)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(n)[::-1].astype(float)
    parts = [(q["priorites_dans"].to_numpy(), COULEUR_DANS, COULEUR_DANS, None),
             (q["priorites_proximite"].to_numpy(), COULEUR_VECU, "#8a6d00", "///"),
             (q["priorites_lacunes"].to_numpy(), COULEUR_LACUNE_CLAIR, COULEUR_LACUNE, None)]
    _stacked(ax, y, parts, total)
    ax.set_yticks(y, [f"{lib} ({code})" for lib, code in zip(q["lib_qp"], q["code_qp"],
                                                              strict=True)], fontsize=7.5)
    ax.set_xlabel(f"Nombre de priorités de l'appel (sur {total})", fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"Priorités de l'appel couvertes, par QPV{omis}", fontsize=10, loc="left")
    # the legend ≈ 0.2 in under the axis title, however few the QPV (a short chart: a
    # territory with a handful of QPV, all France's reached ones)
    _coverage_legend(fig, coverage.rayon_m, -0.03 if height >= 6 else -0.22 / height)
    return fig


__all__ = [
    "coverage_by_priority_figure",
    "coverage_by_qpv_figure",
    "draw_scale_bar",
    "figure_png",
    "non_localises",
    "sites_on_map",
    "sites_outside_map",
    "static_coverage_png",
    "static_sites_png",
]
