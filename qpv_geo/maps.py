"""Maps of the sites and of the coverage, interactive (folium/Leaflet) and static (matplotlib).

* :func:`map_from_sites`: perimeters (QPV of SEM by name, QVA hatched grey « non éligible »,
  QPV of other EPCI, SEM outline, communes), one toggleable layer per priority of the call
  with its colour and icon (clustered above ``seuil_cluster`` sites), popups with porteur,
  action and verdict, a legend, fullscreen, a scale bar and the data notes on the map;
* :func:`coverage_map`: per priority, the QPV coloured by number of actions reaching them,
  the gaps outlined in red (one radio choice per priority);
* :func:`save_map` / :func:`map_html`: the HTML, self-contained by default
  (:func:`qpv_geo._assets.inline_assets` inlines the vendored copies of folium's CDN assets),
  so the file works offline, without tiles (``tiles=None``);
* :func:`static_sites_png` / :func:`static_coverage_png` (:mod:`qpv_geo.figures`, re-exported
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

from qpv_geo._assets import CDN_ASSETS, VENDOR_DIR, inline_assets
from qpv_geo._carto import (
    COULEUR_LACUNE,
    COULEUR_QPV,
    COULEUR_QVA,
    COULEUR_SEM,
    COULEUR_VECU_CLAIR,
    PALIER_COUVERTURE,
    SEUIL_CLUSTER,
    TILES,
    _geojson,
    _icon,
    _located,
    _missing,
    _palier,
    _priority_column,
    _tiles,
    esc,
    is_demo,
    notes_for,
)
from qpv_geo.figures import static_coverage_png, static_sites_png
from qpv_geo.priorites import AUTRE, PRIORITES, label_of

if TYPE_CHECKING:
    import folium

    from qpv_geo.coverage import Coverage
    from qpv_geo.reference import Reference


def map_html(m: folium.Map, *, offline: bool = True) -> str:
    """The map as one HTML page; with ``offline`` every script and style is inlined."""
    page = m.get_root().render()
    return inline_assets(page) if offline else page


def iframe_html(m: folium.Map, *, height: int = 520) -> str:
    """The map as an ``<iframe srcdoc>`` holding its self-contained page (for a notebook:
    the stored output works offline, unlike folium's own display that loads CDN files)."""
    page = html.escape(map_html(m, offline=True), quote=True)
    return (f'<div class="qpvgeo-carte"><iframe srcdoc="{page}" style="width:100%;'
            f'height:{int(height)}px;border:1px solid #ccc" loading="lazy"></iframe></div>')


def save_map(m: folium.Map, path: str | Path, *, offline: bool = True) -> Path:
    """Write the map to ``path`` (self-contained HTML unless ``offline=False``)."""
    from qpv_geo._files import os_error_message, write_text_atomic

    path = Path(path)
    page = map_html(m, offline=offline)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed when complete: a failure leaves the previous map.
        return write_text_atomic(path, page)
    except OSError as exc:
        raise os_error_message(exc, path) from exc


def _site_rows(sites: pd.DataFrame) -> list[list[Any]]:
    """Compact, escaped rows for the marker layers: what the popup and tooltip show."""
    from qpv_geo.eligibility import STATUS_LABELS

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
        status = "" if _missing(status) else str(status)
        if not _missing(code):
            quartier = f"{esc(code)} « {esc(lib)} »"
        elif not _missing(code_p):
            d = "" if _missing(dist_p) else f" à {float(dist_p):.0f} m"
            quartier = f"QPV le plus proche : {esc(code_p)} « {esc(lib_p)} »{d}"
        else:
            quartier = ""
        motif = "" if _missing(motifs) else str(motifs)
        if len(motif) > 300:
            motif = motif[:297] + "…"
        ligne_txt = "" if _missing(ligne) else str(int(ligne)) if isinstance(
            ligne, (int, float, np.integer, np.floating)) else str(ligne)
        rows.append([
            round(float(lat), 6), round(float(lon), 6), esc(porteur) or "porteur non renseigné",
            esc(action), re.sub(r"[^a-z_]", "", status), esc(STATUS_LABELS.get(status, status)),
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


_POPUP_JS = """
function qpvgeoPopup(r) {
  var h = '<div class="qpvgeo-popup"><b>' + r[2] + '</b>';
  if (r[3]) { h += '<br>' + r[3]; }
  h += '<br><span class="qpvgeo-badge qpvgeo-s-' + r[4] + '">' + r[5] + '</span>';
  if (r[6]) { h += '<br>' + r[6]; }
  if (r[7]) { h += '<br><small>' + r[7] + '</small>'; }
  if (r[8]) { h += '<br><small>' + r[8] + '</small>'; }
  if (r[9]) { h += '<br><small>ligne ' + r[9] + '</small>'; }
  return h + '</div>';
}
"""

_CSS = """
.qpvgeo-legende, .qpvgeo-notes { background: rgba(255,255,255,.94); padding: 6px 9px;
  border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.35); font: 12px/1.35 sans-serif;
  color: #222; max-width: 300px; }
.qpvgeo-legende h4 { margin: 0 0 4px; font-size: 13px; }
.qpvgeo-legende .ligne { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.qpvgeo-legende .pastille { width: 12px; height: 12px; border-radius: 50%;
  display: inline-block; flex: none; }
.qpvgeo-legende .aplat { width: 16px; height: 11px; display: inline-block; flex: none;
  border: 2px solid; }
.qpvgeo-legende .hachures { background: repeating-linear-gradient(45deg, #7f7f7f 0 2px,
  transparent 2px 5px); }
.qpvgeo-notes { background: #fff3cd; border: 1px solid #e0b84c; }
.qpvgeo-notes.demo { background: #f8d7da; border-color: #c9302c; font-weight: bold; }
.qpvgeo-popup { font: 12px/1.4 sans-serif; }
.qpvgeo-badge { display: inline-block; padding: 1px 5px; border-radius: 3px; color: #fff;
  background: #666; margin: 2px 0; }
.qpvgeo-s-eligible { background: #1a7f37; } .qpvgeo-s-a_verifier { background: #b08800; }
.qpvgeo-s-qva { background: #d46b08; } .qpvgeo-s-hors_qpv, .qpvgeo-s-hors_territoire {
  background: #c9302c; } .qpvgeo-s-non_geocode { background: #6f42c1; }
.leaflet-tooltip.qpvgeo-etiquette-qva { background: rgba(255,255,255,.8); border: 1px solid
  #7f7f7f; box-shadow: none; font: bold 11px sans-serif; color: #444; }
.leaflet-container { background: #f4f4f1; }
.qpvgeo-legende summary { cursor: pointer; font: bold 13px sans-serif; list-style: revert; }
.qpvgeo-legende details:not([open]) summary { margin: 0; }
.qpvgeo-legende details[open] summary { margin-bottom: 4px; }
.qpvgeo-site { background: none; border: none; }
.qpvgeo-site span { display: flex; align-items: center; justify-content: center; width: 22px;
  height: 22px; border-radius: 50%; border: 2px solid #fff; box-shadow: 0 0 0 1px #333,
  0 1px 3px rgba(0,0,0,.5); font-size: 12px; box-sizing: content-box; }
.qpvgeo-etiquette { background: none; border: none; }
.qpvgeo-etiquette span { position: absolute; left: 0; top: 0; transform: translate(-50%, -50%);
  white-space: nowrap; font: bold 11px/1.1 sans-serif; color: #2d1b4e; pointer-events: none;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; }
"""

#: Labels placed without overlap (bigger QPV first), redone after each zoom; a fit of the map
#: that keeps the legend and the notes from covering what it shows.
_LABELS_JS = """
function qpvgeoEtiquettes(map, items) {
  var pane = map.getPane('qpvgeoEtiquettes') || map.createPane('qpvgeoEtiquettes');
  pane.style.zIndex = 460; pane.style.pointerEvents = 'none';
  var group = L.layerGroup().addTo(map);
  function refresh() {
    group.clearLayers();
    var boxes = [];
    items.forEach(function (it) {
      var p = map.latLngToContainerPoint([it[0], it[1]]);
      var w = it[2].length * 6.6 + 6, h = 14;
      var b = [p.x - w / 2, p.y - h / 2, p.x + w / 2, p.y + h / 2];
      for (var k = 0; k < boxes.length; k++) {
        var o = boxes[k];
        if (b[0] < o[2] && b[2] > o[0] && b[1] < o[3] && b[3] > o[1]) { return; }
      }
      boxes.push(b);
      var span = document.createElement('span');
      span.textContent = it[2];
      group.addLayer(L.marker([it[0], it[1]], {pane: 'qpvgeoEtiquettes', interactive: false,
        keyboard: false, icon: L.divIcon({className: 'qpvgeo-etiquette', iconSize: null,
        html: span.outerHTML})}));
    });
  }
  map.on('zoomend', refresh);
  refresh();
  return group;
}
function qpvgeoCadrer(map, bounds) {
  var size = map.getSize();
  var legend = map.getContainer().querySelector('.qpvgeo-legende');
  var notes = map.getContainer().querySelector('.qpvgeo-notes');
  var right = legend ? legend.offsetWidth + 20 : 10;
  var bottom = notes ? notes.offsetHeight + 20 : 10;
  if (right > size.x / 2) { right = 10; }
  if (bottom > size.y / 2) { bottom = 10; }
  map.fitBounds(bounds, {paddingTopLeft: [50, 20], paddingBottomRight: [right, bottom]});
}
"""

_HATCH_SVG = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="qpvgeo-hachures" patternUnits="userSpaceOnUse" width="8" height="8" '
    'patternTransform="rotate(45)"><rect width="8" height="8" fill="#d9d9d9"/>'
    '<line x1="0" y1="0" x2="0" y2="8" stroke="#7f7f7f" stroke-width="4"/></pattern>'
    "</defs></svg>"
)


def _elements() -> dict[str, type]:
    """folium element classes of this module (built lazily: folium is imported here)."""
    global _ELEMENT_CLASSES
    if _ELEMENT_CLASSES:
        return _ELEMENT_CLASSES
    from branca.element import MacroElement
    from folium.elements import JSCSSMixin
    from folium.map import Layer
    from folium.plugins import MarkerCluster
    from folium.template import Template

    class Decorations(MacroElement):
        """CSS, the hatching pattern and the popup builder (once per page)."""

        _template = Template(
            "{% macro header(this, kwargs) %}<style>" + _CSS + "</style>"
            "<script>" + _POPUP_JS + _LABELS_JS + "</script>{% endmacro %}"
            "{% macro html(this, kwargs) %}" + _HATCH_SVG + "{% endmacro %}"
        )

        def __init__(self) -> None:
            super().__init__()
            self._name = "QpvGeoDecorations"

    class HtmlControl(MacroElement):
        """A Leaflet control holding fixed HTML (legend, notes), inside the map."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            (function () {
              var ctl = L.control({position: {{ this.position|tojson }}});
              ctl.onAdd = function () {
                var div = L.DomUtil.create('div', {{ this.css_class|tojson }});
                div.innerHTML = {{ this.content|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
              };
              ctl.addTo({{ this._parent.get_name() }});
            })();
            {% endmacro %}""")

        def __init__(self, content: str, *, position: str, css_class: str) -> None:
            super().__init__()
            self._name = "HtmlControl"
            self.content = content
            self.position = position
            self.css_class = css_class

    class SitesLayer(JSCSSMixin, Layer):
        """Markers of one priority: a feature group, or a marker cluster above the threshold.

        ``rows`` hold escaped values (see :func:`_site_rows`); the popup is built in the
        browser by ``qpvgeoPopup`` so that a 10,000-site map stays small.
        """

        _template = Template("""
            {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function () {
              var icon = L.divIcon({{ this.icon_options|tojson }});
              var rows = {{ this.rows|tojson }};
              var group = {% if this.cluster -%}
                L.markerClusterGroup({{ this.cluster_options|tojson }});
              {%- else %}L.featureGroup();{% endif %}
              for (var i = 0; i < rows.length; i++) {
                var r = rows[i];
                var m = L.marker([r[0], r[1]], {icon: icon, riseOnHover: true});
                m.bindPopup(qpvgeoPopup(r), {maxWidth: 340});
                m.bindTooltip(r[2]);
                group.addLayer(m);
              }
              return group;
            })();
            {% endmacro %}""")

        def __init__(self, rows: list[list[Any]], *, priorite: str, name: str,
                     cluster: bool, show: bool = True) -> None:
            super().__init__(name=name, overlay=True, control=True, show=show)
            self._name = "SitesLayer"
            self.rows = rows
            self.priorite = priorite
            self.cluster = cluster
            _, icon, hexa = _icon(priorite)
            ink = _ink(hexa)
            self.icon_options = {
                "className": f"qpvgeo-site qpvgeo-p-{re.sub(r'[^a-z_]', '', priorite)}",
                "iconSize": [26, 26], "iconAnchor": [13, 13], "popupAnchor": [0, -12],
                "html": f'<span style="background:{hexa};color:{ink}">'
                        f'<i class="fa fa-{icon}"></i></span>'}
            self.cluster_options = {"showCoverageOnHover": False, "chunkedLoading": True,
                                    "maxClusterRadius": 50}
            if cluster:
                self.default_js = list(MarkerCluster.default_js)
                self.default_css = list(MarkerCluster.default_css)

    class Legend(MacroElement):
        """A collapsible legend (bottom right): open on a wide map, closed on a narrow one."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            (function () {
              var map = {{ this._parent.get_name() }};
              var ctl = L.control({position: 'bottomright'});
              ctl.onAdd = function () {
                var div = L.DomUtil.create('div', 'qpvgeo-legende');
                var d = document.createElement('details');
                if (map.getSize().x >= 760) { d.open = true; }
                var s = document.createElement('summary');
                s.textContent = {{ this.title|tojson }};
                d.appendChild(s);
                var body = document.createElement('div');
                body.innerHTML = {{ this.content|tojson }};
                d.appendChild(body);
                div.appendChild(d);
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
              };
              ctl.addTo(map);
            })();
            {% endmacro %}""")

        def __init__(self, title: str, content: str) -> None:
            super().__init__()
            self._name = "Legend"
            self.title = title
            self.content = content

    class QpvLabels(MacroElement):
        """Names of the QPV, placed without overlap at every zoom (bigger QPV first)."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            qpvgeoEtiquettes({{ this._parent.get_name() }}, {{ this.items|tojson }});
            {% endmacro %}""")

        def __init__(self, items: list[list[Any]]) -> None:
            super().__init__()
            self._name = "QpvLabels"
            self.items = items

    class Fit(MacroElement):
        """Fit the map to ``bounds`` once the legend and notes are drawn (kept clear of them)."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            qpvgeoCadrer({{ this._parent.get_name() }}, {{ this.bounds|tojson }});
            {% endmacro %}""")

        def __init__(self, bounds: list[list[float]]) -> None:
            super().__init__()
            self._name = "Fit"
            self.bounds = bounds

    _ELEMENT_CLASSES.update(Decorations=Decorations, HtmlControl=HtmlControl,
                            SitesLayer=SitesLayer, Legend=Legend, QpvLabels=QpvLabels, Fit=Fit)
    return _ELEMENT_CLASSES


_ELEMENT_CLASSES: dict[str, type] = {}


def _ink(hexa: str) -> str:
    """Black or white, whichever reads best on the colour ``hexa``."""
    r, g, b = (int(hexa.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def _qpv_labels(m: folium.Map, reference: Reference) -> None:
    """QPV names on the map, visible at the opening zoom (decluttered in the browser)."""
    qpv = reference.qpv
    if not len(qpv):
        return
    area = qpv.to_crs(2154).area.to_numpy()
    items = []
    for i in np.argsort(-area):
        p = qpv.geometry.values[i].representative_point()
        items.append([round(p.y, 6), round(p.x, 6), str(qpv["lib_qp"].iloc[i])])
    m.add_child(_elements()["QpvLabels"](items))


def _roads(m: folium.Map, reference: Reference, *, rayon_m: float = 300.0) -> None:
    """The OpenStreetMap streets near the QPV (offline maps only; Saint-Étienne only)."""
    from qpv_geo import osm
    from qpv_geo.exceptions import ReferenceDataError

    if not len(reference.qpv):
        return
    import geopandas as gpd

    zone = gpd.GeoSeries(reference.qpv.to_crs(2154).buffer(rayon_m).union_all(),
                         crs=2154).to_crs(4326).iloc[0]
    try:
        osm.add_roads_layer(m, near=zone)
    except ReferenceDataError:  # no street layer installed: the map stays as it was
        return


def _fit(m: folium.Map, reference: Reference, *, qpv_only: bool = False) -> None:
    """Fit the opening view to SEM (or to its QPV), clear of the legend and the notes."""
    layer = reference.communes if len(reference.communes) and not qpv_only else reference.qpv
    if not len(layer):
        return
    minx, miny, maxx, maxy = layer.total_bounds
    m.add_child(_elements()["Fit"]([[miny, minx], [maxy, maxx]]))


def _base_map(reference: Reference, tiles: str | None) -> folium.Map:
    import folium
    from folium.plugins import Fullscreen

    minx, miny, maxx, maxy = reference.communes.total_bounds if len(reference.communes) \
        else reference.qpv.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11,
                   tiles=_tiles(tiles), control_scale=True)
    # Without tiles Leaflet has no maxZoom, and Leaflet.markercluster refuses such a map.
    m.options["maxZoom"] = 19
    # Half zoom steps: SEM fills the map at its opening instead of a third of it.
    m.options["zoomSnap"] = 0.5
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    m.add_child(_elements()["Decorations"]())
    Fullscreen(position="topleft", title="Plein écran", title_cancel="Quitter le plein écran",
               force_separate_button=True).add_to(m)
    return m


def _notes_control(m: folium.Map, notes: list[str], version: str) -> None:
    if not notes and not version:
        return
    demo = any("DÉMONSTRATION" in n for n in notes)
    items = "".join(f"<div>⚠ {esc(n)}</div>" for n in notes)
    content = f"{items}<div style='font-weight:normal;color:#555'>Données : {esc(version)}</div>"
    m.add_child(_elements()["HtmlControl"](content, position="bottomleft",
                                           css_class="qpvgeo-notes" + (" demo" if demo else "")))


def _perimeter_layers(m: folium.Map, reference: Reference, *, qpv_style: Any = None) -> None:
    import folium
    import shapely

    communes = reference.communes
    if len(communes):
        names = [esc(n) for n in communes["nom"]]
        gj = folium.GeoJson(
            _geojson(communes, {"_tip": names}), name="Communes de SEM",
            style_function=lambda f: {"color": "#8c8c8c", "weight": 1, "fill": False},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False, sticky=False),
        )
        gj.add_to(m)
        outline = shapely.union_all(shapely.make_valid(communes.geometry.values))
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": outline.__geo_interface__},
            name="Contour de Saint-Étienne Métropole",
            style_function=lambda f: {"color": COULEUR_SEM, "weight": 3, "fill": False},
        ).add_to(m)
    others = reference.qpv_hors_sem
    if len(others):
        tips = [f"{esc(c)} « {esc(n)} » — {esc(reference.epci_name(s))} : non éligible"
                for c, n, s in zip(others["code_qp"], others["lib_qp"], others["siren_epci"],
                                   strict=True)]
        folium.GeoJson(
            _geojson(others, {"_tip": tips}), name="QPV d'autres EPCI (non éligibles)",
            show=False,
            style_function=lambda f: {"color": "#9e9ac8", "weight": 1, "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(m)
    qva = reference.qva
    if len(qva):
        tips = [f"QVA « {esc(n)} » — non éligible" for n in qva["lib_qp"]]
        folium.GeoJson(
            _geojson(qva, {"_tip": tips, "code_qp": [esc(c) for c in qva["code_qp"]]}),
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
        folium.GeoJson(
            _geojson(qpv, {"_tip": tips, "code_qp": [esc(c) for c in qpv["code_qp"]],
                           "lib_qp": [esc(n) for n in qpv["lib_qp"]]}),
            name="QPV 2024 de SEM (éligibles)",
            style_function=lambda f: {"color": COULEUR_QPV, "weight": 2.5, "fillColor": COULEUR_QPV,
                                      "fillOpacity": 0.22},
            highlight_function=lambda f: {"weight": 4, "fillOpacity": 0.35},
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(m)


def _legend_perimeters(reference: Reference) -> str:
    parts = [
        f"<div class='ligne'><span class='aplat' style='background:{COULEUR_QPV}33;"
        f"border-color:{COULEUR_QPV}'></span>QPV 2024 de SEM (éligibles)</div>",
        "<div class='ligne'><span class='aplat hachures' style='border-color:#7f7f7f'></span>"
        + ("QVA — non éligibles" if len(reference.qva)
           else "QVA — non éligibles (aucun périmètre importé)") + "</div>",
        f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_SEM};"
        "background:none'></span>Contour de Saint-Étienne Métropole</div>",
    ]
    return "".join(parts)


def map_from_sites(
    sites: pd.DataFrame,
    reference: Reference,
    *,
    tiles: str | None = "osm",
    seuil_cluster: int = SEUIL_CLUSTER,
    title: str = "Actions de l'appel à projets — Cité de l'emploi",
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
        Legend title.
    demo
        Force the demonstration mark (default: detected, see :func:`is_demo`).
    rayon_m
        When given, a layer outlines the "quartier vécu": the QPV widened by this many metres
        (a site in it serves the QPV, see :mod:`qpv_geo.coverage`).
    rues
        Without tiles, draw the OpenStreetMap streets near the QPV (Saint-Étienne only), names
        from zoom 16 (:mod:`qpv_geo.osm`).

    Returns
    -------
    folium.Map
    """
    import folium

    els = _elements()
    m = _base_map(reference, tiles)
    if rayon_m and len(reference.qpv):
        import shapely

        metric = reference.qpv.to_crs(2154)
        zone = shapely.union_all(shapely.buffer(metric.geometry.values, float(rayon_m)))
        import geopandas as gpd

        zone = gpd.GeoSeries([zone], crs=2154).to_crs(4326).iloc[0]
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": zone.__geo_interface__},
            name=f"Quartier vécu : QPV + {float(rayon_m):.0f} m",
            style_function=lambda f: {"color": COULEUR_QPV, "weight": 1, "dashArray": "3 4",
                                      "fill": False},
        ).add_to(m)
    _perimeter_layers(m, reference)
    located = _located(sites)
    prio = _priority_column(located)
    counts = []
    for key in [*PRIORITES, AUTRE]:
        sel = located[prio == key]
        if len(sel) == 0:
            continue
        _, _, hexa = _icon(key)
        name = (f"<span style='color:{hexa}'>●</span> {html.escape(label_of(key))} "
                f"({len(sel)})")
        els["SitesLayer"](_site_rows(sel), priorite=key, name=name,
                          cluster=len(sel) > seuil_cluster).add_to(m)
        counts.append((key, len(sel)))
    _qpv_labels(m, reference)
    if rues and not _tiles(tiles):
        _roads(m, reference, rayon_m=float(rayon_m or 300.0))
    folium.LayerControl(collapsed=True, position="topright").add_to(m)

    legend = []
    for key, n in counts:
        _, icon, hexa = _icon(key)
        legend.append(f"<div class='ligne'><span class='pastille' style='background:{hexa};"
                      f"color:{_ink(hexa)};width:16px;height:16px;font-size:10px;text-align:"
                      f"center;line-height:16px'><i class='fa fa-{icon}'></i></span>"
                      f"{html.escape(label_of(key))} : {n} site{'s' if n > 1 else ''}</div>")
    if not counts:
        legend.append("<div class='ligne'>Aucun site localisé</div>")
    missing = len(sites) - len(located)
    if missing:
        legend.append(f"<div class='ligne'><i>{missing} site{'s' if missing > 1 else ''} non "
                      "localisé(s), absent(s) de la carte</i></div>")
    legend.append(_legend_perimeters(reference))
    if rayon_m:
        legend.append(f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_QPV};"
                      f"border-style:dashed;background:none'></span>Quartier vécu (QPV + "
                      f"{float(rayon_m):.0f} m)</div>")
    legend.append("<div class='ligne'><i>Couches : menu en haut à droite</i></div>")
    m.add_child(els["Legend"](title, "".join(legend)))
    _notes_control(m, notes_for(reference, sites, demo=demo), reference.version)
    _fit(m, reference)
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
        from qpv_geo.reference import get_reference

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

    One base layer per priority (radio buttons in the layer control, the first shown).

    Parameters
    ----------
    coverage
        From :func:`qpv_geo.coverage.coverage_from_sites` with the same ``reference``.
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

    els = _elements()
    m = _base_map(reference, tiles)
    keys = list(priorites) if priorites is not None else list(PRIORITES)
    for key in keys:
        if key not in PRIORITES:
            raise ValueError(f"unknown priority {key!r}; choose among {list(PRIORITES)}")
    qpv = reference.qpv
    matrix = coverage.matrix.set_index(["code_qp", "priorite"])
    rates = coverage.par_priorite.set_index("priorite")
    for i, key in enumerate(keys):
        fills, tips, gap = [], [], []
        for code, lib in zip(qpv["code_qp"], qpv["lib_qp"], strict=True):
            row = matrix.loc[(code, key)] if (code, key) in matrix.index else None
            n = int(row["actions"]) if row is not None else 0
            n_dans = int(row["actions_dans"]) if row is not None else 0
            fills.append(_palier(n_dans, proximite=n - n_dans))
            gap.append(n == 0)
            if row is None or n == 0:
                detail = "<br><b style='color:#d7191c'>Lacune : aucune action</b>"
            else:
                where = ("action dans le QPV" if n_dans else
                         f"seulement quartier vécu (≤ {coverage.rayon_m:.0f} m)")
                detail = (f"<br><b>{where}</b><br>{n} action{'s' if n > 1 else ''} "
                          f"({int(row['sites_dans'])} site(s) dans le QPV, "
                          f"{int(row['sites_proximite'])} à moins de {coverage.rayon_m:.0f} m)"
                          f"<br>Porteurs : {esc(row['porteurs_liste'])}")
            tips.append(f"<b>{esc(lib)}</b> ({esc(code)}){detail}")
        data = _geojson(qpv, {"_tip": tips, "fill": fills, "lacune": gap})
        r = rates.loc[key] if key in rates.index else None
        detail = ("" if r is None else f" — {int(r['qpv_dans'])}/{int(r['qpv_total'])} dans le "
                  f"QPV, {int(r['qpv_proximite'])} à ≤ {coverage.rayon_m:.0f} m")
        group = folium.FeatureGroup(
            name=f"{html.escape(label_of(key))}{detail}", overlay=False, show=(i == 0))
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
    _perimeter_outline_only(m, reference)
    _qpv_labels(m, reference)
    if rues and not _tiles(tiles):
        _roads(m, reference, rayon_m=coverage.rayon_m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    steps = "".join(f"<div class='ligne'><span class='aplat' style='background:{c};"
                    f"border-color:#555'></span>{lbl} action(s) dans le QPV</div>"
                    for _, c, lbl in PALIER_COUVERTURE)
    legend = (f"{steps}<div class='ligne'><span class='aplat' style='background:"
              f"{COULEUR_VECU_CLAIR};border-color:#555'></span>seulement quartier vécu "
              f"(≤ {coverage.rayon_m:.0f} m)</div>"
              f"<div class='ligne'><span class='aplat' style='border-color:{COULEUR_LACUNE};"
              "border-style:dashed;background:#fff'></span>Lacune : aucune action</div>"
              "<div class='ligne'><i>Priorité affichée : menu des couches (en haut à droite)"
              "</i></div>")
    m.add_child(els["Legend"]("Couverture des QPV par priorité", legend))
    _notes_control(m, notes_for(reference, sites, demo=demo), reference.version)
    _fit(m, reference, qpv_only=True)
    return m


def _perimeter_outline_only(m: folium.Map, reference: Reference) -> None:
    import folium
    import shapely

    if len(reference.communes):
        outline = shapely.union_all(shapely.make_valid(reference.communes.geometry.values))
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": outline.__geo_interface__},
            name="Contour de Saint-Étienne Métropole", control=False,
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
    "VENDOR_DIR",
    "coverage_map",
    "esc",
    "iframe_html",
    "inline_assets",
    "is_demo",
    "map_from_sites",
    "map_html",
    "notes_for",
    "popup_html",
    "save_map",
    "static_coverage_png",
    "static_sites_png",
    "write_map",
]
