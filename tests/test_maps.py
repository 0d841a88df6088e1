"""Maps: the folium object and the rendered HTML (layers, escaping, legend, notes, offline)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from qpv_geo.batch.priorities import PRIORITES
from qpv_geo.reference.layers import NOTE_DEMO, NOTE_EXTRAIT
from qpv_geo.reporting import maps
from qpv_geo.reporting.coverage import coverage_from_sites
from tests.conftest import coverage_reference

DATA = Path(__file__).parent / "data" / "coverage"
EVIL = "<script>alert(1)</script>"





@pytest.fixture(scope="module")
def site_map(ref, sites):
    return maps.map_from_sites(sites, ref, tiles=None)


@pytest.fixture(scope="module")
def page(site_map) -> str:
    return maps.map_html(site_map)


def js_text(text: str) -> str:
    """How jinja's tojson writes a string inside the page (ASCII, HTML-safe escapes)."""
    return json.dumps(text)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026").replace("'", "\\u0027")


def visible(page: str) -> str:
    """The page with JSON \\uXXXX escapes and HTML entities decoded (text as displayed)."""
    return html.unescape(re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)),
                                page))


def sites_layers(m):
    return [c for c in m._children.values() if type(c).__name__ == "SitesLayer"]


def test_import_stays_light():
    code = ("import sys, qpv_geo, qpv_geo.reporting.maps, qpv_geo.reporting.coverage, "
            "qpv_geo.reporting.report; "
            "print(sorted(m for m in ('folium', 'matplotlib', 'branca', 'weasyprint') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_one_layer_per_priority_with_its_colour_and_icon(site_map, sites):
    layers = {layer.priorite: layer for layer in sites_layers(site_map)}
    assert list(layers) == ["mobilite", "linguistique", "garde_enfants", "sante", "entreprises",
                            "autre"]
    # S9 has no coordinates, S13 is outside SEM (the report lists it, « non dessiné »):
    # 4 mobility rows on the map out of 6.
    assert len(layers["mobilite"].rows) == 4
    assert sum(len(v.rows) for v in layers.values()) == sites["lon"].notna().sum() - 1
    for key, layer in layers.items():
        if key in PRIORITES:
            # A round marker in the priority's colour-blind-safe colour, with its icon.
            assert f"background:{PRIORITES[key].hex}" in layer.icon_options["html"]
            assert f"fa-{PRIORITES[key].icon}" in layer.icon_options["html"]
            assert PRIORITES[key].hex in layer.layer_name
        assert layer.overlay and layer.control and not layer.cluster


def test_cluster_above_threshold(ref, sites):
    m = maps.map_from_sites(sites, ref, tiles=None, seuil_cluster=2)
    flags = {layer.priorite: layer.cluster for layer in sites_layers(m)}
    assert flags["mobilite"] is True and flags["sante"] is False
    page = maps.map_html(m)
    assert "L.markerClusterGroup(" in page
    assert "leaflet.markercluster-1.5.3/leaflet.markercluster.js" in page


def test_user_text_is_escaped(page, sites):
    assert EVIL not in page
    assert "${alert(2)}" not in page
    assert "<b>gras</b>" not in page
    assert js_text("&lt;script&gt;alert(1)&lt;/script&gt;") in page
    row = next(r for r in maps._site_rows(sites) if "alert(1)" in r[2])
    popup = maps.popup_html(row)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in popup
    assert "&#96;&#36;&#123;alert(2)}&#96;" in popup and "&lt;b&gt;gras&lt;/b&gt;" in popup


def test_esc():
    assert maps.esc(None) == "" and maps.esc(float("nan")) == ""
    assert maps.esc("a<b & `${x}` \\") == "a&lt;b &amp; &#96;&#36;&#123;x}&#96; &#92;"
    assert maps.esc("{{ x }} {% y %}") == "&#123;&#123; x }} &#123;% y %}"  # not jinja syntax


def test_perimeters_legend_controls(page, site_map):
    names = [getattr(c, "layer_name", "") for c in site_map._children.values()]
    for name in ("Communes de SEM", "Contour de Saint-Étienne Métropole",
                 "QPV 2024 de SEM (éligibles)", "QVA — veille active (non éligibles)"):
        assert name in names
    assert "url(#qpvgeo-hachures)" in page and 'id="qpvgeo-hachures"' in page
    text = visible(page)
    assert "QVA « Veille Test » — non éligible" in text  # QVA label
    assert "qpvgeo-legende" in page and "Garde d'enfants : 1 site sur la carte" in text
    assert "Mobilité : 4 sites sur la carte <i>(+ 1 non localisé)</i>" in text
    assert "L.control.fullscreen" in page
    # a metric scale bar (no feet, no miles), like on every web and printed map
    assert "L.control.scale({metric: true, imperial: false" in page
    assert "L.control.layers" in page
    assert "QN04201M" in page and "Alpha" in page  # QPV tooltips


def test_offline_page_has_no_remote_asset(page):
    assert not re.search(r'<script[^>]+src="https?:', page)
    assert not re.search(r'<link[^>]+href="https?:', page)
    assert "tile.openstreetmap" not in page
    assert "bootstrap.min" not in page and "glyphicons" not in page
    assert "data:font/woff2;base64," in page  # Font Awesome glyphs inlined


def test_tiles_osm_and_cdn_mode(ref, sites):
    m = maps.map_from_sites(sites, ref, tiles="osm")
    online = maps.map_html(m, offline=False)
    assert "tile.openstreetmap.org" in online
    assert re.search(r'<script[^>]+src="https://cdn', online)


def test_inline_assets_refuses_unknown_cdn():
    page = '<head><script src="https://example.org/x.js"></script></head>'
    with pytest.raises(ValueError, match=r"example\.org"):
        maps.inline_assets(page)
    assert maps.inline_assets(page, strict=False) == page


def test_notes_on_the_map(reference, sites):
    # The shipped data: exact extract, checksum of the official file not verifiable.
    m = maps.map_from_sites(sites, reference, tiles=None)
    assert NOTE_EXTRAIT in visible(maps.map_html(m))
    demo_ref = coverage_reference(demo=True)
    assert NOTE_DEMO in visible(maps.map_html(maps.map_from_sites(sites, demo_ref, tiles=None)))


def test_demo_addresses_are_marked(ref, sites):
    assert not maps.is_demo(sites, ref)
    demo_sites = sites.assign(geocodage_source="démo (adresses fictives)")
    assert maps.is_demo(demo_sites, ref)
    page = maps.map_html(maps.map_from_sites(demo_sites, ref, tiles=None))
    assert "DÉMONSTRATION — adresses fictives" in visible(page)
    assert "qpvgeo-notes demo" in page


def test_coverage_map(ref, sites):
    cov = coverage_from_sites(sites, ref)
    m = maps.coverage_map(cov, ref)
    groups = [c for c in m._children.values() if type(c).__name__ == "FeatureGroup"]
    assert len(groups) == len(PRIORITES)
    assert all(not g.overlay for g in groups)  # radio buttons: one priority at a time
    assert [g.show for g in groups] == [True] + [False] * (len(PRIORITES) - 1)
    mob = groups[0]
    gj = next(iter(mob._children.values()))
    flags = {re.search(r"QN\d{5}M", f["properties"]["_tip"]).group(0): f["properties"]["lacune"]
             for f in gj.data["features"]}
    assert flags == {"QN04201M": False, "QN04202M": True, "QN04203M": False}
    fills = {re.search(r"QN\d{5}M", f["properties"]["_tip"]).group(0): f["properties"]["fill"]
             for f in gj.data["features"]}
    assert fills["QN04202M"] == "#ffffff" and fills["QN04201M"] != "#ffffff"
    # Inside and nearby said apart in the layer's name, never one rate.
    assert "2/3 dans le QPV, 0 à ≤ 300 m" in mob.layer_name and "%" not in mob.layer_name
    ent = next(iter(groups[4]._children.values()))
    ent_fill = {re.search(r"QN\d{5}M", f["properties"]["_tip"]).group(0): f["properties"]["fill"]
                for f in ent.data["features"]}
    assert ent_fill["QN04201M"] == maps.COULEUR_VECU_CLAIR  # served only within 300 m
    assert maps.COULEUR_LACUNE in maps.map_html(m)
    with pytest.raises(ValueError):
        maps.coverage_map(cov, ref, priorites=["nope"])


def test_empty_sites_map(ref):
    m = maps.map_from_sites(pd.DataFrame({"lon": [], "lat": []}), ref, tiles=None)
    assert sites_layers(m) == []
    text = visible(maps.map_html(m))
    for p in PRIORITES.values():  # every priority of the call is still in the legend
        assert f"{p.label} : aucun site sur la carte" in text
    assert "Autre / non renseignée" not in text and "Non dessinés" not in text


def test_static_pngs(ref, sites):
    png = maps.static_sites_png(sites, ref, dpi=60)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cov = coverage_from_sites(sites, ref)
    png = maps.static_coverage_png(cov, ref, dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_save_map(tmp_path, site_map):
    path = maps.save_map(site_map, tmp_path / "sub" / "carte.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "leaflet-1.9.4/leaflet.js" in text


def test_map_page_is_for_everyone(ref, sites, page):
    """The saved map is a page axe-core accepts (checked in Chromium in test_a11y_browser):
    French, titled with the map and its territory, a heading, the map in <main>, zoomable; the
    report, which takes the maps' parts into its own page, gets none of it twice."""
    from qpv_geo.reporting import report

    titre = "Carte — Actions de l'appel à projets — Cité de l'emploi — Saint-Étienne Métropole"
    assert page.startswith('<!DOCTYPE html>\n<html lang="fr">')
    assert f"<title>{html.escape(titre, quote=False)}</title>" in page
    assert re.search(r'<body>\s*<main class="qpvgeo-page"><h1 class="qpvgeo-masque">'
                     r"[^<]+</h1>.*</main>\s*</body>", page, re.S)
    assert "user-scalable" not in page and page.count('name="viewport"') == 1
    cov = maps.coverage_map(coverage_from_sites(sites, ref), ref, tiles=None)
    assert "<title>Carte — Couverture des QPV par priorité — Saint-Étienne Métropole</title>" \
        in maps.map_html(cov, offline=False)
    frame = maps.iframe_html(cov)
    assert frame.startswith('<div class="qpvgeo-carte"><iframe title="Carte — Couverture des')
    full = report.report_from_sites(sites, ref)
    assert full.count("<title>") == 1 and full.count("<h1") == 1 and full.count("<main") <= 1


def _roads_layers(m):
    return [c for c in m._children.values() if type(c).__name__ == "RoadsLayer"]


def test_streets_only_without_tiles_on_shipped_data(reference):
    from qpv_geo.reporting import osm

    qpv = reference.qpv
    p = qpv[qpv["lib_com"] == "Saint-Étienne"].geometry.values[0].representative_point()
    sites = pd.DataFrame({"lon": [p.x], "lat": [p.y], "priorite": ["sante"], "porteur": ["P"],
                          "action": ["A"], "status": ["eligible"]})
    offline = maps.map_from_sites(sites, reference, tiles=None, rayon_m=300)
    layers = _roads_layers(offline)
    assert len(layers) == 1 and len(layers[0].data["features"]) > 500
    page = maps.map_html(offline)
    assert "rues : Saint-Étienne seulement" in page and "ODbL" in page
    # Near the QPV only: a fraction of the city's 5,837 ways, compact in the page.
    assert len(layers[0].data["features"]) < len(osm.load_roads())
    assert len(layers[0].data_json) < 700_000
    assert _roads_layers(maps.map_from_sites(sites, reference, tiles="osm")) == []
    assert _roads_layers(maps.map_from_sites(sites, reference, tiles=None, rues=False)) == []
    cov = coverage_from_sites(sites, reference)
    assert len(_roads_layers(maps.coverage_map(cov, reference))) == 1
    assert _roads_layers(maps.coverage_map(cov, reference, rues=False)) == []


def test_site_markers_colour_blind_palette():
    """Okabe-Ito: eight distinct colours, none of them the QPV outline's."""
    from qpv_geo.batch.priorities import PRIORITES

    colours = [p.hex.lower() for p in PRIORITES.values()]
    assert len(set(colours)) == 8
    assert set(colours) == {"#0072b2", "#cc79a7", "#e69f00", "#d55e00", "#009e73", "#f0e442",
                            "#56b4e9", "#000000"}
    assert maps.COULEUR_QPV.lower() not in colours
    # Light colours get a black icon, dark ones a white icon.
    assert maps.ink_for("#F0E442") == "#000000" and maps.ink_for("#0072B2") == "#ffffff"


def test_charts_per_priority_and_per_qpv(ref, sites):
    from qpv_geo.reporting import figures

    cov = coverage_from_sites(sites, ref)
    fig = figures.coverage_by_priority_figure(cov)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Lever les freins au retour à l'emploi"  # the axis heads its four
    assert [lbl.strip() for lbl in labels[1:5]] == ["Mobilité", "Linguistique",
                                                     "Garde d'enfants", "Santé"]
    # Three stacked series per priority: inside, nearby only, gaps, adding up to the QPV.
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == 3 * 8 and sum(widths) == 8 * cov.qpv_total
    texts = [t.get_text() for t in ax.texts]
    assert "67 % dans le QPV" in texts  # mobilité: 2 of the 3 QPV
    fig_q = figures.coverage_by_qpv_figure(cov)
    assert len(fig_q.axes[0].get_yticklabels()) == cov.qpv_total
    assert figures.figure_png(fig_q, dpi=40)[:8] == b"\x89PNG\r\n\x1a\n"


def _legend(m) -> str:
    """The legend's HTML of a folium map (escaped user text decoded)."""
    legend = next(c for c in m._children.values() if type(c).__name__ == "Legend")
    return html.unescape(legend.content)


def mobility_not_located(sites: pd.DataFrame) -> pd.DataFrame:
    """The fixture's sites with every « mobilité » row not located (a file whose mobility
    addresses were not found)."""
    out = sites.copy()
    out.loc[out["priorite"] == "mobilite", ["lon", "lat"]] = None
    return out


def test_sites_map_legend_counts_what_is_drawn_and_the_rest_apart(ref, sites):
    m = maps.map_from_sites(sites, ref, tiles=None)
    drawn = {layer.priorite: len(layer.rows) for layer in sites_layers(m)}
    legend = _legend(m)
    for key, p in PRIORITES.items():
        n = drawn.get(key, 0)
        said = f"{n} site{'s' if n > 1 else ''}" if n else "aucun site"
        assert f"{p.label} : {said} sur la carte" in legend
    # S9 (mobility, no coordinates) and S13 (mobility, outside SEM): counted apart, not drawn
    assert "Mobilité : 4 sites sur la carte <i>(+ 1 non localisé)</i>" in legend
    assert ("Non dessinés : 1 non localisé, 1 hors du territoire de SEM (liste dans le "
            "rapport)") in legend
    assert not any(r[1] > 4.6 for la in sites_layers(m) for r in la.rows)  # S13: lon 4.666


def test_a_priority_with_no_located_site_stays_on_the_maps(ref, sites):
    lost = mobility_not_located(sites)
    m = maps.map_from_sites(lost, ref, tiles=None)
    assert "mobilite" not in {layer.priorite for layer in sites_layers(m)}
    assert "Mobilité : aucun site sur la carte <i>(+ 6 non localisés)</i>" in _legend(m)
    cov = coverage_from_sites(lost, ref)
    cm = maps.coverage_map(cov, ref, sites=lost)
    names = [getattr(c, "layer_name", "") for c in cm._children.values()]
    mob = next(n for n in names if n.startswith("Mobilité"))
    # all gaps, and why: its sites are not located
    assert mob == "Mobilité — 0/3 dans le QPV, 0 à ≤ 300 m · 6 sites non localisés"
    page = visible(maps.map_html(cm))
    assert page.count("Lacune : aucune action") >= 3
    radios = [n for n in names if " — " in n]
    assert [n.split(" — ")[0] for n in radios] == [html.escape(p.label)
                                                   for p in PRIORITES.values()]


def test_maps_legend_every_drawn_thing(ref, sites, reference):
    m = maps.map_from_sites(sites, ref, tiles=None)
    legend = _legend(m)
    assert "Communes de SEM" in legend and "Contour de Saint-Étienne Métropole" in legend
    # the SEM maps draw the Saint-Étienne streets and the dashed limit of their layer
    sem = maps.coverage_map(coverage_from_sites(sites.iloc[0:0], reference), reference)
    assert "Limite de la couche des rues" in _legend(sem) and "Rues OpenStreetMap" in \
        _legend(sem)
    assert "dashArray" in maps.map_html(sem) and "qpvgeoRues(" in maps.map_html(sem)
    bare = maps.map_from_sites(sites, ref, tiles=None, rues=False)
    assert "Limite de la couche des rues" not in _legend(bare)  # only what is drawn


def test_report_counts_a_priority_s_unlocated_sites(ref, sites):
    from qpv_geo.reporting.report import report_from_sites as report_html

    lost = mobility_not_located(sites)
    page = visible(report_html(lost, ref, static=True))
    row = page.split("par-priorite")[1].split("</tr>")[2]
    assert "Mobilité" in row and "dont 6 non localisés, hors cartes et couverture" in row
    # the left-off sites of the maps are the report's « non dessinés »
    from qpv_geo.reporting.figures import sites_on_map

    drawn, off = sites_on_map(sites, ref)
    assert list(off["site"]) == ["S13"] and len(drawn) == sites["lon"].notna().sum() - 1


def test_coverage_legend_names_the_priority_shown_at_opening(ref, sites):
    m = maps.coverage_map(coverage_from_sites(sites, ref), ref)
    legend = next(c for c in m._children.values() if type(c).__name__ == "Legend")
    # the first radio button (Mobilité), not the first title in alphabetical order
    assert legend.first.startswith("Mobilité") and legend.first == next(iter(legend.titles))
    assert '"Mobilit' in maps.map_html(m).split("var first = ")[1][:12]


def test_static_maps_scale_bar_is_metric_and_round():
    from matplotlib.figure import Figure

    from qpv_geo.reporting.figures import draw_scale_bar

    for width, label in ((60_000, "10 km"), (3_000, "500 m"), (800, "100 m")):
        ax = Figure().add_subplot(1, 1, 1)
        draw_scale_bar(ax, (0.0, 0.0, float(width), width / 2))
        assert [t.get_text() for t in ax.texts] == [label]
