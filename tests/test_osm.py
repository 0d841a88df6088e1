"""The OpenStreetMap street layer: data, compact GeoJSON per bbox, folium layer and its page."""

from __future__ import annotations

import json
import shutil

import folium
import pytest

from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.reporting import maps, osm

#: A box around Montreynaud / Tarentaize, inside the layer's area.
BOX = (4.38, 45.42, 4.40, 45.435)


def test_load_roads_is_the_documented_file():
    roads = osm.load_roads()
    info = osm.roads_info()
    assert len(roads) == info["features"] == 5837
    assert roads.crs.to_epsg() == 4326
    assert roads["name"].notna().sum() == 4726
    assert set(roads["classe"]) == {0, 1, 2}
    assert osm.load_roads() is roads  # read once
    # The Overpass box: every way meets it (ways crossing its edge are whole).
    import shapely

    assert shapely.intersects(roads.geometry.values, shapely.box(*osm.roads_bbox())).all()


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(osm.osm_dir() / "manifest.json", tmp_path / "manifest.json")
    data = (osm.osm_dir() / osm.ROADS_FILE).read_bytes()
    (tmp_path / osm.ROADS_FILE).write_bytes(data.replace(b"Rue Denis Papin", b"Rue Denis Pipin"))
    monkeypatch.setattr(osm, "osm_dir", lambda: tmp_path)
    osm.load_roads.cache_clear()
    osm.roads_info.cache_clear()
    try:
        with pytest.raises(ReferenceDataError, match="modifié"):
            osm.load_roads()
    finally:
        osm.load_roads.cache_clear()
        osm.roads_info.cache_clear()


def test_roads_geojson_is_clipped_rounded_and_labelled():
    data = osm.roads_geojson(BOX, decimals=5)
    assert data["type"] == "FeatureCollection"
    assert data["attribution"] == osm.ROADS_ATTRIBUTION_HTML
    assert "OpenStreetMap" in data["attribution"] and "ODbL" in data["attribution"]
    assert data["couverture"] == osm.ROADS_COVERAGE_TEXT == "rues : Saint-Étienne seulement"
    assert data["min_zoom_names"] == osm.MIN_ZOOM_NAMES
    names = {f["properties"]["n"] for f in data["features"]}
    assert "Rue Denis Papin" in names
    assert 100 < len(data["features"]) < 1000
    for f in data["features"]:
        assert set(f["properties"]) == {"n", "c"}
        assert f["geometry"]["type"] == "LineString"
        for lon, lat in f["geometry"]["coordinates"]:
            assert BOX[0] <= lon <= BOX[2] and BOX[1] <= lat <= BOX[3]
            assert round(lon, 5) == lon and round(lat, 5) == lat
    # Small enough to embed in a page: the whole city is ~1.3 MB, this box under 120 kB.
    assert len(json.dumps(data)) < 120_000
    assert len(json.dumps(osm.roads_geojson(BOX, simplify_m=5))) < len(json.dumps(data))


def test_roads_geojson_outside_area_and_bad_bbox():
    assert not osm.covers((5.0, 45.0, 5.1, 45.1))
    assert osm.roads_geojson((5.0, 45.0, 5.1, 45.1))["features"] == []
    with pytest.raises(ValueError, match="bbox"):
        osm.roads_in_bbox((4.40, 45.42, 4.38, 45.435))


def _map(**kw) -> folium.Map:
    m = folium.Map(location=[45.4275, 4.39], zoom_start=17, tiles=None)
    m.options["maxZoom"] = 19
    return m


def test_add_roads_layer_object_and_page():
    m = _map()
    assert osm.add_roads_layer(m, BOX) is m
    assert osm.add_roads_layer(m, (4.39, 45.425, 4.395, 45.43)) is m  # two layers, one script
    layers = [c for c in m._children.values() if type(c).__name__ == "RoadsLayer"]
    assert len(layers) == 2 and layers[0].data["features"]
    folium.LayerControl().add_to(m)
    page = maps.map_html(m)
    assert page.count("function qpvgeoRues(") == 1
    assert page.count("qpvgeoRues(map_") == 2
    assert "Rue Denis Papin" in page
    assert "rues : Saint-Étienne seulement" in page
    assert "contributeurs d" in page and "ODbL" in page
    assert "Rues (OpenStreetMap, Saint-\\u00c9tienne seulement)" in page  # layer control


def test_add_roads_layer_outside_area_adds_nothing():
    import shapely

    m = _map()
    assert osm.add_roads_layer(m, (5.0, 45.0, 5.1, 45.1)) is None
    assert osm.add_roads_layer(m, near=shapely.box(4.0, 45.0, 4.01, 45.01)) is None
    assert "qpvgeoRues" not in m.get_root().render()


def test_roads_near_a_zone_only():
    import shapely

    zone = shapely.Point(4.39, 45.4275).buffer(0.002)
    data = osm.roads_geojson(near=zone)
    assert 0 < len(data["features"]) < 200
    lines = [shapely.LineString(f["geometry"]["coordinates"]) for f in data["features"]]
    assert all(line.distance(zone) < 1e-4 for line in lines)  # whole ways meeting the zone


def test_degenerate_bbox_gives_no_roads_not_an_error() -> None:
    from qpv_geo.reporting.osm import roads_geojson

    assert roads_geojson((4.39, 45.44, 4.39, 45.45))["features"] == []
    assert roads_geojson((4.40, 45.44, 4.39, 45.45))["features"] == []
