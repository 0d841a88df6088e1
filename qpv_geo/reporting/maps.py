"""Maps of the sites and of the coverage, interactive (folium/Leaflet) and static (matplotlib).

* :func:`map_from_sites`: perimeters (QPV of SEM by name, QVA hatched grey « non éligible »,
  QPV of other EPCI, SEM outline, communes), one toggleable layer per priority of the call
  with its colour and icon (clustered above ``seuil_cluster`` sites), popups with porteur,
  action and verdict, a legend, fullscreen, a scale bar and the data notes on the map;
* :func:`coverage_map`: per priority, the QPV coloured by number of actions reaching them,
  the gaps outlined in red (one radio choice per priority);
* :func:`save_map` / :func:`map_html`: the HTML, self-contained by default
  (:func:`qpv_geo.reporting._assets.inline_assets` inlines the vendored copies of folium's CDN
  assets), so the file works offline, without tiles (``tiles=None``); a page for everyone (axe-core
  finds nothing): in French, titled with the map and its territory, a heading for screen
  readers, the map in the main landmark, zoom left to the reader, each site named;
* :func:`static_sites_png` / :func:`static_coverage_png` (:mod:`qpv_geo.reporting.figures`,
re-exported
  here): the same content as PNG images for print and PDF (WeasyPrint runs no JavaScript).

Every piece of user text (porteur, action, address, reasons) is HTML-escaped, and ``$``,
backticks and backslashes are turned into entities too, because folium places popup and
tooltip HTML inside JavaScript template literals.

folium and matplotlib are imported inside the functions: ``import qpv_geo`` stays light.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo._files import os_error_message, write_text_atomic
from qpv_geo.batch.priorities import AUTRE, PRIORITES, label_of
from qpv_geo.eligibility.engine import STATUS_LABELS
from qpv_geo.eligibility.wording import libelles
from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.reference.commune_outlines import install_command
from qpv_geo.reference.layers import get_reference
from qpv_geo.reporting import osm
from qpv_geo.reporting._assets import CDN_ASSETS, VENDOR_DIR, inline_assets
from qpv_geo.reporting._carto import (
    COULEUR_FOND_COMMUNES,
    COULEUR_LACUNE,
    COULEUR_QPV,
    COULEUR_QVA,
    COULEUR_SEM,
    COULEUR_VECU_CLAIR,
    LIBELLE_FOND_COMMUNES,
    PALIER_COUVERTURE,
    SEUIL_CLUSTER,
    TILES,
    esc,
    fond_communes,
    formes_compactes,
    geojson_from_frame,
    grand_territoire,
    is_demo,
    is_missing,
    located_sites,
    notes_for,
    palier,
    priority_column,
    priority_icon,
    tile_url,
)
from qpv_geo.reporting._leaflet import element_classes, ink_for
from qpv_geo.reporting._zones import aires_m2, couche_cadre, epsg_cadre, tampon_wgs84
from qpv_geo.reporting.figures import (
    non_localises,
    sites_on_map,
    static_coverage_png,
    static_sites_png,
)

if TYPE_CHECKING:
    import folium

    from qpv_geo.reference.layers import Reference
    from qpv_geo.reporting.coverage import Coverage


#: Page title of a map built elsewhere than :func:`map_from_sites` / :func:`coverage_map`.
TITRE_PAGE = "Carte — qpv-geo"
#: Folium's viewport forbids zooming the page (``user-scalable=no``): a reader may zoom.
_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>')
_BODY = re.compile(r"<body>(.*?)</body>", re.S)
_PAGE_CSS = ("<style>main.qpvgeo-page { display: block; height: 100%; }\n"
             ".qpvgeo-masque { position: absolute; width: 1px; height: 1px; margin: -1px; "
             "padding: 0; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); "
             "white-space: nowrap; border: 0; }</style>")


def _name_page(m: folium.Map, titre: str) -> None:
    """The title of the map's own page (read by :func:`map_html`)."""
    m._qpvgeo_titre = titre  # type: ignore[attr-defined]


def _page_title(titre: str, territoire: str) -> str:
    return titre if territoire in titre else f"{titre} — {territoire}"


def _accessible_page(page: str, titre: str) -> str:
    """Folium's page made readable by everyone: ``lang``, ``<title>``, a visually hidden
    ``<h1>``, the map in ``<main>`` (its panes inside a landmark), a zoomable viewport.

    Only the standalone page: the report takes the map's parts into its own page."""
    titre = html.escape(titre, quote=False)
    page = page.replace("<html>", '<html lang="fr">', 1)
    page = page.replace("<head>", f"<head>\n<title>{titre}</title>", 1)
    page = _VIEWPORT.sub(lambda _: '<meta name="viewport" content="width=device-width, '
                         'initial-scale=1.0" />' + _PAGE_CSS, page, count=1)
    return _BODY.sub(lambda b: f'<body>\n<main class="qpvgeo-page"><h1 class="qpvgeo-masque">'
                     f"{titre}</h1>{b.group(1)}</main>\n</body>", page, count=1)


def map_html(m: folium.Map, *, offline: bool = True) -> str:
    """The map as one HTML page; with ``offline`` every script and style is inlined."""
    page = _accessible_page(m.get_root().render(), getattr(m, "_qpvgeo_titre", TITRE_PAGE))
    return inline_assets(page) if offline else page


def iframe_html(m: folium.Map, *, height: int = 520) -> str:
    """The map as an ``<iframe srcdoc>`` holding its self-contained page (for a notebook:
    the stored output works offline, unlike folium's own display that loads CDN files)."""
    page = html.escape(map_html(m, offline=True), quote=True)
    titre = html.escape(getattr(m, "_qpvgeo_titre", TITRE_PAGE), quote=True)
    return (f'<div class="qpvgeo-carte"><iframe title="{titre}" srcdoc="{page}" style="width:100%;'
            f'height:{int(height)}px;border:1px solid #ccc" loading="lazy"></iframe></div>')


def save_map(m: folium.Map, path: str | Path, *, offline: bool = True) -> Path:
    """Write the map to ``path`` (self-contained HTML unless ``offline=False``)."""

    path = Path(path)
    page = map_html(m, offline=offline)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed when complete: a failure leaves the previous map.
        return write_text_atomic(path, page)
    except OSError as exc:
        raise os_error_message(exc, path) from exc


def _site_rows(sites: pd.DataFrame, statuts: dict[str, str] | None = None) -> list[list[Any]]:
    """Compact, escaped rows for the marker layers: what the popup and tooltip show
    (``statuts``: the territory's status labels, SEM's by default)."""

    if statuts is None:
        statuts = STATUS_LABELS
    def col(name: str) -> pd.Series:
        if name in sites.columns:
            return sites[name]
        return pd.Series([None] * len(sites), index=sites.index, dtype=object)

    adresse = col("adresse")
    if "adresse" not in sites.columns:
        adresse = col("geocodage_label")
    rows = []
    for lon, lat, porteur, action, status, code, lib, code_p, lib_p, dist_p, adr, motifs, \
            ligne in zip(col("lon"), col("lat"), col("porteur"), col("action"), col("status"),
                         col("code_qp"), col("lib_qp"), col("code_qp_proche"),
                         col("lib_qp_proche"), col("distance_qp_proche_m"), adresse,
                         col("motifs"), col("ligne"), strict=True):
        status = "" if is_missing(status) else str(status)
        if not is_missing(code):
            quartier = f"{esc(code)} « {esc(lib)} »"
        elif not is_missing(code_p):
            d = "" if is_missing(dist_p) else f" à {float(dist_p):.0f} m"
            quartier = f"QPV le plus proche : {esc(code_p)} « {esc(lib_p)} »{d}"
        else:
            quartier = ""
        motif = "" if is_missing(motifs) else str(motifs)
        if len(motif) > 300:
            motif = motif[:297] + "…"
        ligne_txt = "" if is_missing(ligne) else str(int(ligne)) if isinstance(
            ligne, (int, float, np.integer, np.floating)) else str(ligne)
        rows.append([
            round(float(lat), 6), round(float(lon), 6), esc(porteur) or "porteur non renseigné",
            esc(action), re.sub(r"[^a-z_]", "", status), esc(statuts.get(status, status)),
            quartier, esc(adr), esc(motif), esc(ligne_txt),
        ])
    return rows


def popup_html(row: Sequence[Any]) -> str:
    """The popup of one site, from a row of :func:`_site_rows` (escaped values).

    Python twin of the JavaScript ``qpvgeoPopup`` (used by tests and static outputs).
    """
    parts = [f'<div class="qpvgeo-popup"><b>{row[2]}</b>']
    if row[3]:
        parts.append(f"<br>{row[3]}")
    parts.append(f'<br><span class="qpvgeo-badge qpvgeo-s-{row[4]}">{row[5]}</span>')
    for i, tag in ((6, ""), (7, "small"), (8, "small")):
        if row[i]:
            parts.append(f"<br><{tag}>{row[i]}</{tag}>" if tag else f"<br>{row[i]}")
    if row[9]:
        parts.append(f"<br><small>ligne {row[9]}</small>")
    parts.append("</div>")
    return "".join(parts)


def _qpv_labels(m: folium.Map, reference: Reference) -> None:
    """QPV names on the map, visible at the opening zoom (decluttered in the browser)."""
    qpv = reference.qpv
    if not len(qpv):
        return
    area = aires_m2(qpv)  # each zone in its metric projection (Lambert-93 in metropole)
    items = []
    for i in np.argsort(-area):
        p = qpv.geometry.values[i].representative_point()
        items.append([round(p.y, 6), round(p.x, 6), str(qpv["lib_qp"].iloc[i])])
    m.add_child(element_classes()["QpvLabels"](items))


def _roads(m: folium.Map, reference: Reference, *, rayon_m: float = 300.0) -> bool:
    """The OpenStreetMap streets near the QPV (offline maps only; Saint-Étienne only: none on
    a map of all France, where they would be a speck). True when drawn (with the dashed
    outline of the layer's extent: :data:`LEGENDE_RUES` says what they are)."""

    if not len(reference.qpv) or libelles(reference).france:
        return False
    import geopandas as gpd

    epsg = epsg_cadre(reference.qpv)  # the streets are metropolitan: 2154
    zone = gpd.GeoSeries(reference.qpv.to_crs(epsg).buffer(rayon_m).union_all(),
                         crs=epsg).to_crs(4326).iloc[0]
    try:
        return osm.add_roads_layer(m, near=zone) is not None
    except ReferenceDataError:  # no street layer installed: the map stays as it was
        return False


#: Legend lines of the streets drawn on a map without tiles, and of the dashed rectangle where
#: their layer stops.
LEGENDE_RUES = (
    "<div class='ligne'><span class='aplat' style='border:none;border-top:3px solid #8f8f8f;"
    "height:0'></span>Rues OpenStreetMap (Saint-Étienne seulement)</div>"
    "<div class='ligne'><span class='aplat' style='border:1px dashed #777;background:none'>"
    "</span>Limite de la couche des rues : au-delà, pas de rues sur ce fond</div>")


def _legend_priorities(counts: list[tuple[str, int]], unlocated: pd.Series,
                       left_off: pd.Series, hors_territoire: str) -> list[str]:
    """Legend lines of the sites map: every priority of the call with the number of sites
    drawn (a priority with none drawn too: the largest gap is seen), then the sites left off
    counted apart — not located, or outside the territory (the report lists them)."""
    lines = []
    for key, n in counts:
        if key == AUTRE and not n and not (unlocated == AUTRE).any():
            continue
        _, icon, hexa = priority_icon(key)
        fill = (f"background:{hexa};color:{ink_for(hexa)}" if n else
                f"background:#fff;color:{hexa};box-shadow:inset 0 0 0 2px {hexa}")
        lost = int((unlocated == key).sum())
        extra = f" <i>(+ {lost} non localisé{'s' if lost > 1 else ''})</i>" if lost else ""
        lines.append(f"<div class='ligne'><span class='pastille' style='{fill};width:16px;"
                     f"height:16px;font-size:10px;text-align:center;line-height:16px'>"
                     f"<i class='fa fa-{icon}'></i></span><span>{html.escape(label_of(key))}"
                     f" : {n if n else 'aucun'} site{'s' if n > 1 else ''} sur la carte{extra}"
                     "</span></div>")
    off = []
    if len(unlocated):
        off.append(f"{len(unlocated)} non localisé{'s' if len(unlocated) > 1 else ''}")
    if len(left_off):
        off.append(f"{len(left_off)} {esc(hors_territoire)}")
    if off:
        lines.append(f"<div class='ligne'><i>Non dessinés : {', '.join(off)} (liste dans le "
                     "rapport)</i></div>")
    return lines


def _fit(m: folium.Map, reference: Reference, *, qpv_only: bool = False) -> None:
    """Fit the opening view to the territory (or to its QPV), clear of the legend and the
    notes."""
    layer = reference.communes if len(reference.communes) and not qpv_only else reference.qpv
    if not len(layer):
        return
    # all France: framed on the metropolitan QPV (the overseas ones a zoom out away)
    minx, miny, maxx, maxy = couche_cadre(layer).total_bounds
    m.add_child(element_classes()["Fit"]([[miny, minx], [maxy, maxx]]))


#: Metropolitan France (lon/lat), the frame of a territory with no QPV and no outline.
_FRANCE_BOUNDS = (-5.2, 41.3, 9.6, 51.1)


def _base_map(reference: Reference, tiles: str | None) -> folium.Map:
    import folium
    from folium.plugins import Fullscreen

    minx, miny, maxx, maxy = reference.communes.total_bounds if len(reference.communes) \
        else couche_cadre(reference.qpv).total_bounds if len(reference.qpv) else _FRANCE_BOUNDS
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11,
                   tiles=tile_url(tiles))
    m.add_child(element_classes()["Scale"]())  # metric only, bottom left
    # Without tiles Leaflet has no maxZoom, and Leaflet.markercluster refuses such a map.
    m.options["maxZoom"] = 19
    # Quarter zoom steps: SEM fills the map at its opening instead of a third of it.
    m.options["zoomSnap"] = 0.25
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    m.add_child(element_classes()["Decorations"]())
    Fullscreen(position="topleft", title="Plein écran", title_cancel="Quitter le plein écran",
               force_separate_button=True).add_to(m)
    return m


def _notes_control(m: folium.Map, notes: list[str], version: str) -> None:
    if not notes and not version:
        return
    demo = any("DÉMONSTRATION" in n for n in notes)
    items = "".join(f"<div>⚠ {esc(n)}</div>" for n in notes)
    content = f"{items}<div style='font-weight:normal;color:#555'>Données : {esc(version)}</div>"
    m.add_child(element_classes()["HtmlControl"](content, position="bottomleft",
                                           css_class="qpvgeo-notes" + (" demo" if demo else "")))


def _perimeter_layers(m: folium.Map, reference: Reference, *, qpv_style: Any = None) -> None:
    import folium
    import shapely

    mots = libelles(reference)
    communes = reference.communes
    _background_layer(m, reference)
    if len(communes):
        names = [esc(n) for n in communes["nom"]]
        gj = folium.GeoJson(
            geojson_from_frame(communes, {"_tip": names}), name=mots.communes,
            style_function=lambda f: {"color": "#8c8c8c", "weight": 1, "fill": False},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False, sticky=False),
        )
        gj.add_to(m)
        outline = shapely.union_all(shapely.make_valid(communes.geometry.values))
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": outline.__geo_interface__},
            name=mots.contour,
            style_function=lambda f: {"color": COULEUR_SEM, "weight": 3, "fill": False},
        ).add_to(m)
    others = autres_qpv_proches(reference)
    if len(others):
        tips = [f"{esc(c)} « {esc(n)} » — {esc(reference.epci_name(s))} : non éligible"
                for c, n, s in zip(others["code_qp"], others["lib_qp"], others["siren_epci"],
                                   strict=True)]
        folium.GeoJson(
            geojson_from_frame(others, {"_tip": tips}), name=mots.qpv_autres,
            show=False,
            style_function=lambda f: {"color": "#9e9ac8", "weight": 1, "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(m)
    qva = reference.qva
    if len(qva):
        tips = [f"QVA « {esc(n)} » — non éligible" for n in qva["lib_qp"]]
        folium.GeoJson(
            geojson_from_frame(qva, {"_tip": tips, "code_qp": [esc(c) for c in qva["code_qp"]]}),
            name="QVA — veille active (non éligibles)",
            style_function=lambda f: {"color": COULEUR_QVA, "weight": 1.5, "dashArray": "4 3",
                                      "fillColor": "url(#qpvgeo-hachures)", "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False, permanent=True,
                                          direction="center",
                                          class_name="qpvgeo-etiquette-qva"),
        ).add_to(m)
    if qpv_style is None and len(reference.qpv):
        qpv = reference.qpv
        tips = [f"<b>{esc(c)}</b> « {esc(n)} »<br>{esc(com)}" for c, n, com in
                zip(qpv["code_qp"], qpv["lib_qp"], qpv["lib_com"], strict=True)]
        if grand_territoire(reference):  # each perimeter encoded, a quarter of the size
            element_classes()["CompactShapes"](
                formes_compactes(qpv.geometry.values, {"_tip": tips}), name=mots.qpv_eligibles,
                style={"color": COULEUR_QPV, "weight": 2.5, "fillColor": COULEUR_QPV,
                       "fillOpacity": 0.22},
                highlight={"weight": 4, "fillOpacity": 0.35}, tooltip=True).add_to(m)
            return
        folium.GeoJson(
            geojson_from_frame(qpv, {"_tip": tips, "code_qp": [esc(c) for c in qpv["code_qp"]],
                           "lib_qp": [esc(n) for n in qpv["lib_qp"]]}),
            name=mots.qpv_eligibles,
            style_function=lambda f: {"color": COULEUR_QPV, "weight": 2.5, "fillColor": COULEUR_QPV,
                                      "fillOpacity": 0.22},
            highlight_function=lambda f: {"weight": 4, "fillOpacity": 0.35},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(m)


def _legend_perimeters(reference: Reference) -> str:
    mots = libelles(reference)
    parts = [
        f"<div class='ligne'><span class='aplat' style='background:{COULEUR_QPV}33;"
        f"border-color:{COULEUR_QPV}'></span>{esc(mots.qpv_eligibles)}</div>",
    ]
    # QVA: a list and perimeters for SEM only; elsewhere the notes say so, once.
    if mots.a_des_qva or len(reference.qva):
        parts.append(
            "<div class='ligne'><span class='aplat hachures' style='border-color:#7f7f7f'>"
            "</span>" + ("QVA — non éligibles" if len(reference.qva)
                         else "QVA — non éligibles (aucun périmètre importé)") + "</div>")
    if len(reference.communes):
        parts.append("<div class='ligne'><span class='aplat' style='border:1px solid #8c8c8c;"
                     f"background:none'></span>{esc(mots.communes)}</div>")
    parts.append(_legend_background(reference))
    if grand_territoire(reference):
        parts.append(NOTE_CONTOURS_SIMPLIFIES)
    return "".join(parts)


def _background_layer(m: folium.Map, reference: Reference) -> None:
    """The commune outlines installed for a territory other than SEM (``data update
    --communes``), thin grey under the QPV, each named in its tooltip."""
    import folium

    fond = fond_communes(reference)
    if fond is None:
        return
    folium.GeoJson(
        geojson_from_frame(fond, {"_tip": [esc(n) for n in fond["nom"]]}),
        name=LIBELLE_FOND_COMMUNES,
        style_function=lambda f: {"color": COULEUR_FOND_COMMUNES, "weight": 1, "fill": False},
        tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False, sticky=False),
    ).add_to(m)


def _legend_background(reference: Reference) -> str:
    """The territory's outline in the legend; for a territory other than SEM, its installed
    commune outlines, or a line saying the background is empty for that reason and who can
    install them (the command line that writes the map says how:
    :func:`outlines_to_install`)."""
    mots = libelles(reference)
    if len(reference.communes):
        return (f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_SEM};"
                f"background:none'></span>{esc(mots.contour)}</div>")
    if mots.france:
        return ""
    if fond_communes(reference) is not None:
        return (f"<div class='ligne'><span class='aplat' style='border:1px solid "
                f"{COULEUR_FOND_COMMUNES};background:none'></span>"
                f"{esc(LIBELLE_FOND_COMMUNES)}</div>")
    todo = "" if reference.territoire is None else (
        " ; la personne qui gère les données de qpv-geo peut les installer")
    return ("<div class='ligne'><i>Fond : contours des communes non installés pour ce "
            f"territoire (seuls les QPV sont dessinés){todo}</i></div>")


def outlines_to_install(reference: Reference) -> str | None:
    """The command that installs the commune outlines missing from a territory's maps (said
    by the command line that writes them, never on the page), or None."""
    if len(reference.communes) or libelles(reference).france or reference.territoire is None \
            or fond_communes(reference) is not None:
        return None
    return install_command(reference.territoire)


#: Outline of the « quartier vécu » of a large territory: drawn simplified to ≈ 20 m.
TOLERANCE_TAMPON_DEG = 0.0002

#: Legend line of the interactive maps of a large territory (perimeters drawn simplified).
NOTE_CONTOURS_SIMPLIFIES = ("<div class='ligne'><i>Contours dessinés simplifiés (≈ 5 m) ; "
                            "verdicts et couverture calculés sur les périmètres complets</i></div>")


def autres_qpv_proches(reference: Reference, *, marge_deg: float = 0.15) -> Any:
    """The QPV of the other layer worth drawing: all of them for SEM (its neighbours), those
    within ``marge_deg`` (≈ 12 km) of the territory's QPV elsewhere (not all of France)."""
    others = reference.qpv_hors_sem
    if libelles(reference).profil.voisins or not len(others):
        return others
    if not len(reference.qpv):
        return others.iloc[0:0]
    minx, miny, maxx, maxy = reference.qpv.total_bounds
    return others.cx[minx - marge_deg:maxx + marge_deg, miny - marge_deg:maxy + marge_deg]


#: Default title of :func:`map_from_sites` (SEM's call for projects).
TITRE_SITES = "Actions de l'appel à projets — Cité de l'emploi"


def titre_sites(reference: Reference) -> str:
    """Legend title of the sites map for the reference's territory."""
    mots = libelles(reference)
    if mots.france:
        return "Sites — QPV 2024 — France"
    return TITRE_SITES if mots.par_defaut else f"{TITRE_SITES}, {mots.nom}"


def map_from_sites(
    sites: pd.DataFrame,
    reference: Reference,
    *,
    tiles: str | None = "osm",
    seuil_cluster: int = SEUIL_CLUSTER,
    title: str | None = None,
    demo: bool | None = None,
    rayon_m: float | None = None,
    rues: bool = True,
) -> folium.Map:
    """Interactive map of validated sites over the QPV perimeters.

    Parameters
    ----------
    sites
        Validated sites (batch output): ``lon``, ``lat``, ``priorite``, ``porteur``,
        ``action``, ``status``, ``code_qp``… Rows without coordinates are counted in the
        legend, not drawn.
    reference
        Reference layers (perimeters, notes, version).
    tiles
        ``"osm"`` (OpenStreetMap, needs the network), ``None``/``"none"`` (no background: works
        offline), or any folium tiles name/URL.
    seuil_cluster
        A priority layer with more sites than this is clustered.
    title
        Legend title (default: :func:`titre_sites`, the call's sites on the territory).
    demo
        Force the demonstration mark (default: detected, see :func:`is_demo`).
    rayon_m
        When given, a layer outlines the "quartier vécu": the QPV widened by this many metres
        (a site in it serves the QPV, see :mod:`qpv_geo.reporting.coverage`).
    rues
        Without tiles, draw the OpenStreetMap streets near the QPV (Saint-Étienne only), names
        from zoom 16 (:mod:`qpv_geo.reporting.osm`).

    Returns
    -------
    folium.Map
    """
    import folium

    els = element_classes()
    mots = libelles(reference)
    if title is None:
        title = titre_sites(reference)
    m = _base_map(reference, tiles)
    if rayon_m and len(reference.qpv):
        zone = tampon_wgs84(reference.qpv, float(rayon_m))
        name = f"Quartier vécu : QPV + {float(rayon_m):.0f} m"
        style = {"color": COULEUR_QPV, "weight": 1, "dashArray": "3 4", "fill": False}
        if grand_territoire(reference):  # a dashed outline: drawn to ≈ 20 m, encoded
            els["CompactShapes"](formes_compactes([zone], {}, tolerance=TOLERANCE_TAMPON_DEG),
                                 name=name, style=style).add_to(m)
        else:
            folium.GeoJson(
                {"type": "Feature", "properties": {}, "geometry": zone.__geo_interface__},
                name=name, style_function=lambda f: style,
            ).add_to(m)
    _perimeter_layers(m, reference)
    located, left_off = sites_on_map(sites, reference, interactive=True)
    prio = priority_column(located)
    counts = []
    for key in [*PRIORITES, AUTRE]:
        sel = located[prio == key]
        counts.append((key, len(sel)))
        if len(sel) == 0:
            continue
        _, _, hexa = priority_icon(key)
        name = (f"<span style='color:{hexa}'>●</span> {html.escape(label_of(key))} "
                f"({len(sel)})")
        els["SitesLayer"](_site_rows(sel, mots.statuts), priorite=key, name=name,
                          cluster=len(sel) > seuil_cluster).add_to(m)
    _qpv_labels(m, reference)
    roads = bool(rues and not tile_url(tiles)) and _roads(m, reference,
                                                        rayon_m=float(rayon_m or 300.0))
    folium.LayerControl(collapsed=True, position="topright").add_to(m)

    unlocated = priority_column(sites[~sites.index.isin(located_sites(sites).index)])
    legend = _legend_priorities(counts, unlocated, priority_column(left_off),
                                mots.hors_territoire)
    legend.append(_legend_perimeters(reference))
    if rayon_m:
        legend.append(f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_QPV};"
                      f"border-style:dashed;background:none'></span>Quartier vécu (QPV + "
                      f"{float(rayon_m):.0f} m)</div>")
    if roads:
        legend.append(LEGENDE_RUES)
    legend.append("<div class='ligne'><i>Couches : menu en haut à droite</i></div>")
    m.add_child(els["Legend"](title, "".join(legend)))
    _notes_control(m, notes_for(reference, sites, demo=demo), reference.version)
    _fit(m, reference)
    _name_page(m, "Carte — " + _page_title(title, mots.titre_carte))
    return m


def write_map(
    sites: pd.DataFrame,
    output: str | Path,
    *,
    reference: Reference | None = None,
    settings: Any = None,
    tiles: str | None = None,
    rayon_m: float | None = None,
    offline: bool = True,
    demo: bool | None = None,
) -> Path:
    """Build :func:`map_from_sites` on the installed reference and write it (self-contained)."""
    if reference is None:
        reference = get_reference(settings)
    m = map_from_sites(sites, reference, tiles=tiles, rayon_m=rayon_m, demo=demo)
    return save_map(m, output, offline=offline)


def coverage_map(
    coverage: Coverage,
    reference: Reference,
    *,
    priorites: Sequence[str] | None = None,
    tiles: str | None = None,
    demo: bool | None = None,
    sites: pd.DataFrame | None = None,
    rues: bool = True,
) -> folium.Map:
    """Coverage map: per priority, QPV coloured by number of actions, gaps outlined in red.

    One base layer per priority (radio buttons in the layer control, the first shown). Above
    :data:`qpv_geo.reporting._carto.SEUIL_GRAND_TERRITOIRE` QPV (Grand Paris, all France) the radio
    buttons restyle one layer holding each QPV once (``CoverageLayer``), its perimeters
    simplified to ≈ 5 m and encoded (:func:`qpv_geo.reporting._carto.formes_compactes`).

    Parameters
    ----------
    coverage
        From :func:`qpv_geo.reporting.coverage.coverage_from_sites` with the same ``reference``.
    priorites
        Keys to draw (default: every priority of the call).
    tiles
        As in :func:`map_from_sites` (default: none).
    demo, sites
        Demonstration mark (forced, or detected from ``sites``).
    rues
        Draw the OpenStreetMap streets near the QPV when there are no tiles.
    """
    import folium

    els = element_classes()
    m = _base_map(reference, tiles)
    keys = list(priorites) if priorites is not None else list(PRIORITES)
    for key in keys:
        if key not in PRIORITES:
            raise ValueError(f"unknown priority {key!r}; choose among {list(PRIORITES)}")
    qpv = reference.qpv
    matrix = coverage.matrix.set_index(["code_qp", "priorite"])
    rates = coverage.par_priorite.set_index("priorite")
    titles: dict[str, str] = {}
    compact = grand_territoire(reference)
    par_priorite: dict[str, list[Any]] = {}
    for i, key in enumerate(keys):
        fills, tips, gap, cells = [], [], [], []
        for code, lib in zip(qpv["code_qp"], qpv["lib_qp"], strict=True):
            row = matrix.loc[(code, key)] if (code, key) in matrix.index else None
            n = int(row["actions"]) if row is not None else 0
            n_dans = int(row["actions_dans"]) if row is not None else 0
            fills.append(palier(n_dans, proximite=n - n_dans))
            gap.append(n == 0)
            if compact:  # numbers: the browser writes the tooltip (CoverageLayer)
                cells.append(0 if row is None or n == 0 else [
                    fills[-1], n, n_dans, int(row["sites_dans"]), int(row["sites_proximite"]),
                    esc(row["porteurs_liste"])])
                continue
            if row is None or n == 0:
                detail = LACUNE_INFOBULLE
            else:
                where = ("action dans le QPV" if n_dans else
                         f"seulement quartier vécu (≤ {coverage.rayon_m:.0f} m)")
                detail = (f"<br><b>{where}</b><br>{n} action{'s' if n > 1 else ''} "
                          f"({int(row['sites_dans'])} site(s) dans le QPV, "
                          f"{int(row['sites_proximite'])} à moins de {coverage.rayon_m:.0f} m)"
                          f"<br>Porteurs : {esc(row['porteurs_liste'])}")
            tips.append(f"<b>{esc(lib)}</b> ({esc(code)}){detail}")
        r = rates.loc[key] if key in rates.index else None
        detail = ("" if r is None else f" — {int(r['qpv_dans'])}/{int(r['qpv_total'])} dans le "
                  f"QPV, {int(r['qpv_proximite'])} à ≤ {coverage.rayon_m:.0f} m")
        perdus = non_localises(coverage, key)
        if perdus:  # its QPV all gaps because its sites are not located: said with it
            detail += f" · {perdus} site{'s' if perdus > 1 else ''} non localisé" + (
                "s" if perdus > 1 else "")
        layer_name = f"{html.escape(label_of(key))}{detail}"
        titles[layer_name] = f"Couverture : {label_of(key)}{detail}"
        group = folium.FeatureGroup(name=layer_name, overlay=False, show=(i == 0))
        if compact:  # the radio button only: the one QPV layer below follows it
            par_priorite[layer_name] = cells
            group.add_to(m)
            continue
        if not len(qpv):  # a territory without QPV (a small commune): nothing to colour
            group.add_to(m)
            continue
        data = geojson_from_frame(qpv, {"_tip": tips, "fill": fills, "lacune": gap})
        folium.GeoJson(
            data,
            style_function=lambda f: {
                "color": COULEUR_LACUNE if f["properties"]["lacune"] else "#555555",
                "weight": 3 if f["properties"]["lacune"] else 1,
                "dashArray": "5 4" if f["properties"]["lacune"] else None,
                "fillColor": f["properties"]["fill"], "fillOpacity": 0.85},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(group)
        group.add_to(m)
    if compact:
        # A large territory: every perimeter once, restyled when another priority is chosen
        # (eight copies of all France's QPV made a 30 MB page).
        shapes = formes_compactes(qpv.geometry.values, {"code": [esc(c) for c in qpv["code_qp"]],
                                                        "lib": [esc(n) for n in qpv["lib_qp"]]})
        m.add_child(els["CoverageLayer"](shapes, par_priorite, lacune=LACUNE_INFOBULLE,
                                         couleur_lacune=COULEUR_LACUNE,
                                         rayon=f"{coverage.rayon_m:.0f}"))
    _perimeter_outline_only(m, reference)
    _qpv_labels(m, reference)
    roads = bool(rues and not tile_url(tiles)) and _roads(m, reference, rayon_m=coverage.rayon_m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    steps = "".join(f"<div class='ligne'><span class='aplat' style='background:{c};"
                    f"border-color:#555'></span>{lbl} action(s) dans le QPV</div>"
                    for _, c, lbl in PALIER_COUVERTURE)
    legend = (f"{steps}<div class='ligne'><span class='aplat' style='background:"
              f"{COULEUR_VECU_CLAIR};border-color:#555'></span>seulement quartier vécu "
              f"(≤ {coverage.rayon_m:.0f} m)</div>"
              f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_LACUNE};"
              "border-style:dashed;background:#fff'></span>Lacune : aucune action</div>"
              + (LEGENDE_RUES if roads else "") + _legend_background(reference) +
              "<div class='ligne'><i>Priorité affichée : menu des couches (en haut à droite)"
              "</i></div>" + (NOTE_CONTOURS_SIMPLIFIES if compact else ""))
    mots = libelles(reference)
    titre = "Couverture des QPV par priorité" + ("" if mots.par_defaut else
                                                 f" — {mots.titre_carte}")
    m.add_child(els["Legend"](titre, legend, titles))
    _notes_control(m, notes_for(reference, sites, demo=demo), reference.version)
    _fit(m, reference, qpv_only=True)
    _name_page(m, "Carte — " + _page_title(titre, mots.titre_carte))
    return m


#: Tooltip line of a QPV × priority with no action, on the coverage map.
LACUNE_INFOBULLE = "<br><b style='color:#d7191c'>Lacune : aucune action</b>"


def _perimeter_outline_only(m: folium.Map, reference: Reference) -> None:
    import folium
    import shapely

    _background_layer(m, reference)
    if len(reference.communes):
        outline = shapely.union_all(shapely.make_valid(reference.communes.geometry.values))
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": outline.__geo_interface__},
            name=libelles(reference).contour, control=False,
            style_function=lambda f: {"color": COULEUR_SEM, "weight": 2, "fill": False},
        ).add_to(m)


__all__ = [
    "CDN_ASSETS",
    "COULEUR_LACUNE",
    "COULEUR_QPV",
    "COULEUR_QVA",
    "COULEUR_SEM",
    "COULEUR_VECU_CLAIR",
    "PALIER_COUVERTURE",
    "SEUIL_CLUSTER",
    "TILES",
    "TITRE_SITES",
    "VENDOR_DIR",
    "autres_qpv_proches",
    "coverage_map",
    "esc",
    "iframe_html",
    "inline_assets",
    "is_demo",
    "map_from_sites",
    "map_html",
    "notes_for",
    "outlines_to_install",
    "popup_html",
    "save_map",
    "static_coverage_png",
    "static_sites_png",
    "titre_sites",
    "write_map",
]
