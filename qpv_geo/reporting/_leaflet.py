"""The browser side of the folium maps: CSS, JavaScript helpers and folium element classes.

* ``Decorations`` (CSS, hatching pattern, popup builder, QPV label placement, opening fit —
  once per page), ``HtmlControl`` (fixed HTML in a map corner), ``SitesLayer`` (one priority's
  markers, clustered above a threshold), ``Legend`` (folding legend), ``QpvLabels`` (QPV names
  without overlap), ``Fit`` (opening view clear of the legend and notes) and ``CoverageLayer``
  (the QPV of a large territory drawn once, coloured by the chosen priority) and
  ``CompactShapes`` (a large territory's polygons as encoded polylines);
* :func:`ink_for`: black or white text on a priority colour.

folium is imported inside :func:`element_classes`: ``import qpv_geo`` stays light.
"""

from __future__ import annotations

import re
from typing import Any

from qpv_geo.reporting._carto import priority_icon

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
// A site marker is a button (keyboard focus): its name for screen readers, on each add (a
// cluster draws its markers again): porteur — action — status, the escaped row as plain text.
function qpvgeoNommer() {
  var r = this.options.qpvgeo, el = this.getElement(), t = document.createElement('textarea');
  t.innerHTML = r[2] + (r[3] ? ' — ' + r[3] : '') + (r[5] ? ' — ' + r[5] : '');
  if (el) { el.setAttribute('aria-label', t.value); }
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

#: Decoder of :func:`qpv_geo.reporting._carto.formes_compactes` (encoded polylines → GeoJSON),
#: repeated in each element that needs it: only the maps of a large territory carry it.
_FORMES_JS = """
function qpvgeoGeoJson(feats) {
  function ring(s) {
    var pts = [], i = 0, x = 0, y = 0;
    while (i < s.length) {
      for (var k = 0; k < 2; k++) {
        var shift = 0, r = 0, b;
        do {
          b = s.charCodeAt(i++);
          b = (b === 33 ? 123 : b) - 63;  // '!' stands for '{'
          r |= (b & 31) << shift; shift += 5;
        } while (b >= 32);
        var d = (r & 1) ? ~(r >> 1) : (r >> 1);
        if (k === 0) { x += d; } else { y += d; }
      }
      pts.push([x / 1e5, y / 1e5]);
    }
    return pts;
  }
  return {type: 'FeatureCollection', features: feats.map(function (f, i) {
    f[0].i = i;
    return {type: 'Feature', properties: f[0], geometry: {type: 'MultiPolygon',
      coordinates: f[1].map(function (p) { return p.map(ring); })}};
  })};
}
"""

_HATCH_SVG = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="qpvgeo-hachures" patternUnits="userSpaceOnUse" width="8" height="8" '
    'patternTransform="rotate(45)"><rect width="8" height="8" fill="#d9d9d9"/>'
    '<line x1="0" y1="0" x2="0" y2="8" stroke="#7f7f7f" stroke-width="4"/></pattern>'
    "</defs></svg>"
)


def element_classes() -> dict[str, type]:
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

    class Scale(MacroElement):
        """Leaflet's scale bar, metric only (« 500 m », « 2 km »), bottom left."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            L.control.scale({metric: true, imperial: false, position: 'bottomleft'})
              .addTo({{ this._parent.get_name() }});
            {% endmacro %}""")

        def __init__(self) -> None:
            super().__init__()
            self._name = "Scale"

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
                var m = L.marker([r[0], r[1]], {icon: icon, riseOnHover: true, qpvgeo: r});
                m.on('add', qpvgeoNommer);
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
            _, icon, hexa = priority_icon(priorite)
            ink = ink_for(hexa)
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
                {% if this.titles %}
                // The legend names the priority shown (radio choice of the layer control).
                // (jinja's tojson sorts the keys: the first choice is named apart)
                var titles = {{ this.titles|tojson }};
                var first = {{ this.first|tojson }};
                if (first) { s.textContent = titles[first]; }
                map.on('baselayerchange', function (e) {
                  if (titles[e.name]) { s.textContent = titles[e.name]; }
                });
                {% endif %}
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

        def __init__(self, title: str, content: str,
                     titles: dict[str, str] | None = None) -> None:
            super().__init__()
            self._name = "Legend"
            self.title = title
            self.content = content
            self.titles = titles or {}
            self.first = next(iter(self.titles), None)

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

    class CoverageLayer(MacroElement):
        """The QPV of a large territory drawn once, coloured by the priority chosen in the
        layer control (``baselayerchange``): ``par_priorite`` maps each radio button's name to
        one cell per feature, in order — ``0`` for a gap, else ``[fill, actions, actions
        inside, sites inside, sites nearby, porteurs (escaped)]``; the tooltip is written here
        with the words of the per-priority layers of a small territory."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            (function () {
              var map = {{ this._parent.get_name() }};
              var data = {{ this.par_priorite|tojson }};
              var current = Object.keys(data)[0];
              var lacune = {{ this.couleur_lacune|tojson }};
              var rayon = {{ this.rayon|tojson }};
              function style(f) {
                var c = data[current][f.properties.i];
                return {color: c === 0 ? lacune : '#555555', weight: c === 0 ? 3 : 1,
                        dashArray: c === 0 ? '5 4' : null,
                        fillColor: c === 0 ? '#ffffff' : c[0], fillOpacity: 0.85};
              }
              """ + _FORMES_JS + """
              var layer = L.geoJson(qpvgeoGeoJson({{ this.shapes|tojson }}), {style: style});
              layer.bindTooltip(function (l) {
                var p = l.feature.properties, c = data[current][p.i];
                var head = '<b>' + p.lib + '</b> (' + p.code + ')';
                if (c === 0) { return head + {{ this.lacune|tojson }}; }
                var where = c[2] ? 'action dans le QPV'
                                 : 'seulement quartier vécu (≤ ' + rayon + ' m)';
                return head + '<br><b>' + where + '</b><br>' + c[1] + ' action' +
                  (c[1] > 1 ? 's' : '') + ' (' + c[3] + ' site(s) dans le QPV, ' + c[4] +
                  ' à moins de ' + rayon + ' m)<br>Porteurs : ' + c[5];
              });
              layer.addTo(map);
              map.on('baselayerchange', function (e) {
                if (data[e.name]) { current = e.name; layer.setStyle(style); }
              });
            })();
            {% endmacro %}""")

        def __init__(self, shapes: list[list[Any]], par_priorite: dict[str, list[Any]],
                     *, lacune: str, couleur_lacune: str, rayon: str) -> None:
            super().__init__()
            self._name = "CoverageLayer"
            self.shapes = shapes  # formes_compactes(): properties ``code``, ``lib`` (escaped)
            self.par_priorite = par_priorite
            self.lacune = lacune
            self.couleur_lacune = couleur_lacune
            self.rayon = rayon

    class CompactShapes(Layer):
        """Polygons of a large territory, encoded
        (:func:`qpv_geo.reporting._carto.formes_compactes`), one style, an optional tooltip
        (property ``_tip``) and hover highlight: a layer of the layer control like
        ``folium.GeoJson``, a quarter of its size."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function () {
              """ + _FORMES_JS + """
              var style = {{ this.style|tojson }};
              var layer = L.geoJson(qpvgeoGeoJson({{ this.shapes|tojson }}),
                                    {style: function () { return style; }});
              {% if this.tooltip %}
              layer.bindTooltip(function (l) { return l.feature.properties._tip; });
              {% endif %}
              {% if this.highlight %}
              var hi = {{ this.highlight|tojson }};
              layer.on('mouseover', function (e) { e.layer.setStyle(hi); });
              layer.on('mouseout', function (e) { layer.resetStyle(e.layer); });
              {% endif %}
              return layer;
            })();
            {% endmacro %}""")

        def __init__(self, shapes: list[list[Any]], *, name: str, style: dict[str, Any],
                     highlight: dict[str, Any] | None = None, tooltip: bool = False,
                     show: bool = True, control: bool = True) -> None:
            super().__init__(name=name, overlay=True, control=control, show=show)
            self._name = "CompactShapes"
            self.shapes = shapes
            self.style = style
            self.highlight = highlight or {}
            self.tooltip = tooltip

    _ELEMENT_CLASSES.update(Decorations=Decorations, HtmlControl=HtmlControl, Scale=Scale,
                            SitesLayer=SitesLayer, Legend=Legend, QpvLabels=QpvLabels, Fit=Fit,
                            CoverageLayer=CoverageLayer, CompactShapes=CompactShapes)
    return _ELEMENT_CLASSES


_ELEMENT_CLASSES: dict[str, type] = {}


def ink_for(hexa: str) -> str:
    """Black or white, whichever reads best on the colour ``hexa``."""
    r, g, b = (int(hexa.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


__all__: list[str] = []
