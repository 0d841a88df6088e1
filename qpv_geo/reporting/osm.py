"""Streets on the offline maps: the OpenStreetMap roads of Saint-Étienne.

The shipped layer (``data/osm/``, see its ``PROVENANCE.md``) holds the roads of the city of
Saint-Étienne and its immediate edges only — not the 53 communes of SEM. Maps that use no
online tiles draw it under the perimeters, with the street names at close zoom, so that an
instructor can tell which side of a street a point is on. ODbL: every map that draws it shows
:data:`ROADS_ATTRIBUTION`, and says where it stops (:data:`ROADS_COVERAGE_TEXT`).

* :func:`load_roads`: the whole layer as a GeoDataFrame (WGS84), read once, checksum checked;
* :func:`roads_geojson`: a compact GeoJSON dict for a bounding box (clipped, simplified,
  coordinates rounded), for Leaflet;
* :func:`roads_js`: the browser side (``qpvgeoRues(map, data)``, ``static/rues.js``) and
  :data:`ROADS_CSS`, shared by the folium maps and the web page;
* :func:`add_roads_layer`: the layer on a folium map, with the attribution, a note and the
  outline of the area covered.

No verdict is computed from these streets: they are a background to read a map.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qpv_geo._files import sha256_file
from qpv_geo.exceptions import ReferenceDataError

if TYPE_CHECKING:
    import folium
    import geopandas as gpd

#: Attribution shown on every map that draws the streets (ODbL).
ROADS_ATTRIBUTION = "© les contributeurs d'OpenStreetMap (ODbL)"
#: The same, as HTML with links (for Leaflet's attribution control).
ROADS_ATTRIBUTION_HTML = (
    '© les contributeurs d\'<a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
    '(<a href="https://opendatacommons.org/licenses/odbl/">ODbL</a>)'
)
#: Where the layer stops, said on every map that draws it.
ROADS_COVERAGE_TEXT = "rues : Saint-Étienne seulement"
#: Zoom level from which street names are shown.
MIN_ZOOM_NAMES = 16
#: Road classes: 0 main, 1 secondary, 2 other (width on the map, label priority).
ROAD_CLASSES = {
    "motorway": 0, "trunk": 0, "primary": 0, "motorway_link": 0, "trunk_link": 0,
    "primary_link": 0, "secondary": 1, "tertiary": 1, "secondary_link": 1,
    "tertiary_link": 1,
}

ROADS_FILE = "sainte_roads_osm.geojson"
ROADS_JS_PATH = Path(__file__).resolve().parent / "static" / "rues.js"

#: CSS of the street names drawn by ``rues.js``.
ROADS_CSS = """
.qpvgeo-rue-icone { background: none; border: none; }
.qpvgeo-rue { position: absolute; left: 0; top: 0; display: inline-block; white-space: nowrap;
  font: italic 11px/1 sans-serif; color: #3a3a3a; pointer-events: none;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 3px #fff; }
.qpvgeo-rues-note { background: rgba(255,255,255,.9); padding: 2px 6px; border-radius: 3px;
  font: 11px/1.3 sans-serif; color: #333; box-shadow: 0 1px 3px rgba(0,0,0,.3); }
"""


def osm_dir() -> Path:
    """Directory of the shipped OpenStreetMap layer (``data/osm``)."""
    here = Path(__file__).resolve().parent.parent  # qpv_geo/ (this module is in reporting/)
    for candidate in (here / "_data" / "osm", here.parent / "data" / "osm"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise ReferenceDataError(
        "La couche des rues (data/osm/manifest.json) est introuvable.",
        hint="Réinstallez qpv-geo depuis le dépôt ou un paquet complet.",
    )


@lru_cache(maxsize=1)
def roads_info() -> dict[str, Any]:
    """The manifest entry of the street layer (source, licence, sha256, bbox, coverage)."""
    manifest = json.loads((osm_dir() / "manifest.json").read_text(encoding="utf-8"))
    return dict(manifest["layers"]["rues"])


def roads_bbox() -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of the area the street layer covers."""
    b = roads_info()["bbox"]
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def covers(bbox: tuple[float, float, float, float]) -> bool:
    """True when ``bbox`` (lon/lat) meets the area of the street layer."""
    minx, miny, maxx, maxy = roads_bbox()
    return not (bbox[2] < minx or bbox[0] > maxx or bbox[3] < miny or bbox[1] > maxy)


@lru_cache(maxsize=1)
def load_roads() -> gpd.GeoDataFrame:
    """The roads of Saint-Étienne (WGS84): ``osm_id``, ``name``, ``highway``, ``classe``.

    Read once per process; the file's sha256 is checked against the manifest.

    Raises
    ------
    ReferenceDataError
        The file is missing or differs from the one described in ``data/osm/PROVENANCE.md``.
    """
    import geopandas as gpd
    import shapely

    info = roads_info()
    path = osm_dir() / info["file"]
    if not path.is_file():
        raise ReferenceDataError(f"Le fichier des rues {path.name} est introuvable.",
                                 hint="Réinstallez qpv-geo depuis le dépôt.")
    if sha256_file(path) != info["sha256"]:
        raise ReferenceDataError(
            f"Le fichier des rues {path.name} a été modifié (sha256 différent du manifeste).",
            hint="Réinstallez qpv-geo depuis le dépôt, ou remettez le fichier d'origine.")
    raw = json.loads(path.read_text(encoding="utf-8"))
    feats = [f for f in raw["features"] if (f.get("geometry") or {}).get("type") == "LineString"]
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in feats])
    highway = [str(f["properties"].get("highway") or "") for f in feats]
    gdf = gpd.GeoDataFrame({
        "osm_id": [f.get("id") for f in feats],
        "name": [f["properties"].get("name") or None for f in feats],
        "highway": highway,
        "classe": [ROAD_CLASSES.get(h, 2) for h in highway],
    }, geometry=geoms, crs=4326)
    gdf.sindex  # noqa: B018 - built once here, reused by every bbox query
    return gdf


def roads_in_bbox(bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    """Roads meeting ``bbox`` (min lon, min lat, max lon, max lat), clipped to it."""
    import shapely

    roads = load_roads()
    if bbox is None:
        return roads
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if not (minx < maxx and miny < maxy):
        raise ValueError(f"bbox must be (min lon, min lat, max lon, max lat), got {bbox!r}")
    idx = roads.sindex.query(shapely.box(minx, miny, maxx, maxy), predicate="intersects")
    sel = roads.iloc[sorted(idx)].copy()
    sel["geometry"] = shapely.clip_by_rect(sel.geometry.values, minx, miny, maxx, maxy)
    return sel[~sel.geometry.is_empty]


def _lines(geom: Any) -> list[Any]:
    if geom.geom_type == "LineString":
        return [geom]
    if hasattr(geom, "geoms"):
        return [g for part in geom.geoms for g in _lines(part)]
    return []


def roads_geojson(
    bbox: tuple[float, float, float, float] | None = None,
    *,
    near: Any = None,
    min_zoom_names: int = MIN_ZOOM_NAMES,
    decimals: int = 5,
    simplify_m: float = 1.0,
) -> dict[str, Any]:
    """The roads of ``bbox`` as a compact GeoJSON FeatureCollection, for Leaflet.

    Parameters
    ----------
    bbox
        (min lon, min lat, max lon, max lat); ``None``: the whole layer. Roads are clipped to it.
    near
        A shapely geometry (WGS84), e.g. the QPV widened by 300 m: only the roads meeting it
        are kept, whole (a committee map of all SEM needs the streets near the QPV only).
    min_zoom_names
        Zoom from which ``rues.js`` shows the names (carried in the result).
    decimals
        Coordinates rounded to this many decimals (5 ≈ 1 m).
    simplify_m
        Douglas-Peucker tolerance in metres, in Lambert-93 (0: none).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "attribution", "couverture",
        "bbox", "min_zoom_names"}``; each feature's properties are ``n`` (name or ``null``) and
        ``c`` (class: 0 main, 1 secondary, 2 other). Empty ``features`` outside the area.
    """
    import shapely

    empty = bbox is not None and not (bbox[0] < bbox[2] and bbox[1] < bbox[3])
    sel = (load_roads().iloc[0:0] if empty or (bbox is not None and not covers(bbox))
           else roads_in_bbox(bbox))
    if near is not None and len(sel):
        sel = sel.iloc[sorted(set(sel.sindex.query(near, predicate="intersects")))]
    geoms = sel.geometry.values
    if simplify_m and len(sel):
        import geopandas as gpd

        metric = gpd.GeoSeries(geoms, crs=4326).to_crs(2154)
        geoms = metric.simplify(float(simplify_m), preserve_topology=False).to_crs(4326).values
    feats = []
    for name, classe, geom in zip(sel["name"], sel["classe"], geoms, strict=True):
        if geom is None or geom.is_empty:
            continue
        for line in _lines(geom):
            coords = [[round(x, decimals), round(y, decimals)] for x, y in line.coords]
            dedup = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
            if len(dedup) < 2:
                continue
            # a nameless road is NaN in the frame: null in JSON (NaN is not JSON)
            label = name if isinstance(name, str) and name else None
            feats.append({"type": "Feature", "properties": {"n": label, "c": int(classe)},
                          "geometry": {"type": "LineString", "coordinates": dedup}})
    area = roads_bbox()
    if bbox is not None and not empty:
        clipped = shapely.clip_by_rect(shapely.box(*area), *bbox)
        area = tuple(round(v, 6) for v in clipped.bounds) if not clipped.is_empty else area
    return {"type": "FeatureCollection", "features": feats,
            "attribution": ROADS_ATTRIBUTION_HTML, "couverture": ROADS_COVERAGE_TEXT,
            "bbox": list(area), "min_zoom_names": int(min_zoom_names)}


def roads_js() -> str:
    """The browser code of the street layer: ``qpvgeoRues(map, data, options)``."""
    return ROADS_JS_PATH.read_text(encoding="utf-8")


_ELEMENT: dict[str, type] = {}


def _roads_element() -> type:
    if _ELEMENT:
        return _ELEMENT["RoadsLayer"]
    from branca.element import MacroElement
    from folium.map import Layer
    from folium.template import Template

    class RoadsAssets(MacroElement):
        """``rues.js`` and its CSS, once per page (one fixed name in the page header)."""

        _template = Template(
            "{% macro header(this, kwargs) %}<style>{{ this.css }}</style>"
            "<script>{{ this.js }}</script>{% endmacro %}")

        def __init__(self) -> None:
            super().__init__()
            self._name = "RoadsAssets"
            self.css = ROADS_CSS
            self.js = roads_js().replace("</script", "<\\/script")

        def get_name(self) -> str:
            return "qpvgeo_rues_assets"

    class RoadsLayer(Layer):
        """The street layer (``rues.js``) as a folium layer, listed in the layer control."""

        _template = Template("""
            {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = qpvgeoRues({{ this._parent.get_name() }},
                {{ this.data_json }}, {minZoomNames: {{ this.min_zoom_names|tojson }},
                                       outline: {{ this.outline|tojson }}});
            {% endmacro %}""")

        def __init__(self, data: dict[str, Any], *, name: str, min_zoom_names: int,
                     outline: bool = True, show: bool = True) -> None:
            super().__init__(name=name, overlay=True, control=True, show=show)
            self._name = "RoadsLayer"
            self.data = data
            # Compact, and safe inside <script>: the streets are most of a map's weight.
            self.data_json = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
            self.min_zoom_names = min_zoom_names
            self.outline = outline
            self.add_child(RoadsAssets())

    _ELEMENT["RoadsLayer"] = RoadsLayer
    return RoadsLayer


def add_roads_layer(
    m: folium.Map,
    bbox: tuple[float, float, float, float] | None = None,
    *,
    near: Any = None,
    min_zoom_names: int = MIN_ZOOM_NAMES,
    name: str = "Rues (OpenStreetMap, Saint-Étienne seulement)",
    note: bool = True,
    outline: bool = True,
) -> folium.Map | None:
    """Draw the streets on a folium map, under the perimeters, names at close zoom.

    Meant for maps without online tiles. Adds the ODbL attribution to the map's attribution
    control, and with ``note`` a small note (bottom left) saying where the layer stops; with
    ``outline`` the dashed outline of the area covered (its limit).

    Parameters
    ----------
    m
        The map.
    bbox
        (min lon, min lat, max lon, max lat) of the roads to embed (``None``: all of them,
        about 1.2 MB). A bbox outside the area adds nothing.
    near
        Keep only the roads meeting this geometry (WGS84), see :func:`roads_geojson`.
    min_zoom_names
        Zoom from which street names are shown.

    Returns
    -------
    folium.Map or None
        ``m``, or ``None`` when no road meets ``bbox`` / ``near`` (nothing added).
    """
    if bbox is not None and not covers(bbox):
        return None
    data = roads_geojson(bbox, near=near, min_zoom_names=min_zoom_names)
    if not data["features"]:
        return None
    _roads_element()(data, name=name, min_zoom_names=min_zoom_names, outline=outline).add_to(m)
    if note:
        from branca.element import MacroElement
        from folium.template import Template

        note_el = MacroElement()
        note_el._name = "RoadsNote"
        note_el._template = Template("""
            {% macro script(this, kwargs) %}
            (function () {
              var ctl = L.control({position: 'bottomright'});
              ctl.onAdd = function () {
                var div = L.DomUtil.create('div', 'qpvgeo-rues-note');
                div.innerHTML = """ + json.dumps(
            f"Fond : {ROADS_COVERAGE_TEXT} — {ROADS_ATTRIBUTION_HTML}",
            ensure_ascii=False) + """;
                return div;
              };
              ctl.addTo({{ this._parent.get_name() }});
            })();
            {% endmacro %}""")
        m.add_child(note_el)
    return m


__all__ = [
    "MIN_ZOOM_NAMES",
    "ROADS_ATTRIBUTION",
    "ROADS_ATTRIBUTION_HTML",
    "ROADS_COVERAGE_TEXT",
    "ROADS_CSS",
    "add_roads_layer",
    "covers",
    "load_roads",
    "roads_bbox",
    "roads_geojson",
    "roads_in_bbox",
    "roads_info",
    "roads_js",
]
