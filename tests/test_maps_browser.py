"""The map and the report in headless Chromium (Debian's package, driven by Playwright).

Opened from file:// with no network: every asset must be inlined. Checks: no console error,
no request leaving the page, polygons and markers drawn, the layer control toggles a
priority, a hostile porteur name renders as text, the coverage map switches priority, print
view shows the static maps. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpv_geo.reporting import maps, report

pytestmark = pytest.mark.browser

DATA = Path(__file__).parent / "data" / "coverage"
MARKERS = ".leaflet-marker-pane .qpvgeo-site"
PATHS = "path.leaflet-interactive"




def open_page(page, path: Path, wait: str = PATHS) -> list[str]:
    """Open a local file, recording any request that is not file:// or data:."""
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url)
            if not r.url.startswith(("file:", "data:")) else None)
    page.on("dialog", lambda d: (remote.append("dialog: " + d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_selector(wait)
    page.wait_for_timeout(300)
    return remote


def test_site_map(page, ref, sites, tmp_path, artifacts):
    path = maps.save_map(maps.map_from_sites(sites, ref, tiles=None), tmp_path / "carte.html")
    remote = open_page(page, path)
    # 2 communes + SEM outline + 1 QVA + 3 QPV (the other EPCI's QPV layer starts hidden).
    assert page.locator(PATHS).count() == 7
    # 13 sites, one without coordinates, one outside SEM (listed apart by the report)
    assert page.locator(MARKERS).count() == 11
    assert page.locator("path[fill='url(#qpvgeo-hachures)']").count() == 1
    assert page.locator(".qpvgeo-legende").is_visible()
    assert page.locator(".qpvgeo-notes").is_visible()
    assert page.locator(".leaflet-control-scale").is_visible()
    assert page.locator(".leaflet-control-zoom-fullscreen").count() == 1

    # The layer control starts collapsed (it hid a third of the map): open it to toggle.
    assert page.locator(".leaflet-control-layers-overlays").is_hidden()
    page.locator(".leaflet-control-layers").hover()
    mobilite = page.locator(".leaflet-control-layers-overlays label", has_text="Mobilité")
    mobilite.locator("input").uncheck()
    assert page.locator(MARKERS).count() == 7
    mobilite.locator("input").check()
    assert page.locator(MARKERS).count() == 11

    # The porteur "<script>alert(1)</script>": shown as text in its popup, never run.
    page.evaluate("""() => {
        const map = window[Object.keys(window).find(k => k.startsWith('map_'))];
        map.eachLayer(l => { if (l.getTooltip && l.getTooltip() && l.getPopup()
            && String(l.getTooltip().getContent()).includes('alert(1)')) l.openPopup(); });
    }""")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "<script>alert(1)</script>" in popup.inner_text()
    assert "${alert(2)}" in popup.inner_text() and "<b>gras</b>" in popup.inner_text()
    assert popup.locator("script, b b").count() == 0
    page.screenshot(path=str(artifacts / "carte_sites.png"))
    assert page.console_errors == []
    assert remote == []


def test_many_sites_are_clustered(page, ref, tmp_path, artifacts):
    rng = np.random.default_rng(5)
    n = 300
    minx, miny, maxx, maxy = ref.qpv.total_bounds
    many = pd.DataFrame({"lon": rng.uniform(minx, maxx, n), "lat": rng.uniform(miny, maxy, n),
                         "priorite": "sante", "porteur": [f"P{i}" for i in range(n)],
                         "action": "A", "status": "hors_qpv"})
    path = maps.save_map(maps.map_from_sites(many, ref, tiles=None), tmp_path / "cluster.html")
    remote = open_page(page, path)
    page.wait_for_selector(".marker-cluster")
    clusters = page.locator(".marker-cluster").count()
    singles = page.locator(MARKERS).count()
    assert clusters > 0 and singles + clusters < n
    page.screenshot(path=str(artifacts / "carte_clusters.png"))
    assert page.console_errors == [] and remote == []


def test_report(page, ref, sites, tmp_path, artifacts):
    out = report.write_report(sites, tmp_path / "rapport.html", reference=ref)
    remote = open_page(page, out["html"])
    assert page.locator(".folium-map").count() == 2
    cov = page.locator("#carte-couverture")
    red = "path[stroke='#d7191c']"
    assert cov.locator(PATHS).count() >= 3
    assert cov.locator(red).count() == 1  # mobilité: only Bêta is a gap
    cov.locator(".leaflet-control-layers").hover()
    cov.locator(".leaflet-control-layers-base label", has_text="Garde d'enfants") \
        .locator("input").check()
    assert cov.locator(red).count() == 3
    # The legend names the priority shown.
    assert cov.locator(".qpvgeo-legende summary").inner_text().startswith(
        "Couverture : Garde d'enfants — 0/3 dans le QPV")
    assert page.locator("#carte-sites " + MARKERS).count() == 11
    assert page.locator(".carte-statique").first.is_hidden()
    page.screenshot(path=str(artifacts / "rapport.png"), full_page=True)
    page.emulate_media(media="print")
    assert page.locator(".carte-statique").first.is_visible()
    assert page.locator("#carte-sites").is_hidden()
    assert page.console_errors == [] and remote == []


def test_street_names_at_close_zoom_only(page, tmp_path, artifacts):
    """Offline street layer: roads drawn, names shown from zoom 16, attribution and limit said."""
    import folium

    from qpv_geo.reporting import osm

    m = folium.Map(location=[45.4275, 4.39], zoom_start=17, tiles=None)
    m.options["maxZoom"] = 19
    osm.add_roads_layer(m, (4.38, 45.42, 4.40, 45.435))
    folium.LayerControl(collapsed=False).add_to(m)
    path = maps.save_map(m, tmp_path / "rues.html")
    remote = open_page(page, path, wait=".qpvgeo-rue")
    names = page.locator(".qpvgeo-rue").all_inner_texts()
    assert len(names) >= 10
    assert "Rue Denis Papin" in names
    assert page.locator(".leaflet-qpvgeoRues-pane canvas").count() == 1
    assert page.locator("path[stroke-dasharray='6 5']").count() == 1  # where the layer stops
    attribution = page.locator(".leaflet-control-attribution").inner_text()
    assert "les contributeurs d'OpenStreetMap (ODbL)" in attribution
    assert "rues : Saint-Étienne seulement" in page.locator(".qpvgeo-rues-note").inner_text()
    page.screenshot(path=str(artifacts / "rues_zoom17.png"))
    # Labels do not overlap each other.
    boxes = page.eval_on_selector_all(".qpvgeo-rue", """els => els.map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    overlaps = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1:]
                   if a[0] < b[2] - 3 and a[2] > b[0] + 3 and a[1] < b[3] - 3 and a[3] > b[1] + 3)
    assert overlaps <= len(boxes) // 10  # rotated labels' boxes are looser than the labels
    # Zoomed out: roads stay, names go.
    zoom = "z => { window[Object.keys(window).find(k => k.startsWith('map_'))].setZoom(z); }"
    page.evaluate(zoom, 14)
    page.wait_for_timeout(500)
    assert page.locator(".qpvgeo-rue").count() == 0
    # Unticking the layer removes roads and names.
    page.evaluate(zoom, 17)
    page.wait_for_selector(".qpvgeo-rue")
    page.locator(".leaflet-control-layers-overlays label", has_text="Rues").locator(
        "input").uncheck()
    page.wait_for_timeout(300)
    assert page.locator(".qpvgeo-rue").count() == 0
    assert "OpenStreetMap" not in page.locator(".leaflet-control-attribution").inner_text()
    assert page.console_errors == []
    assert remote == []


def test_site_map_opening_view_on_shipped_data(page, reference, tmp_path, artifacts):
    """carte.html as a committee member opens it: SEM fills the map, QPV named, one distinct
    colour per priority, legend and notes clear of the markers, streets at close zoom."""
    from qpv_geo.batch.priorities import PRIORITES

    qpv = reference.qpv.sort_values("code_qp").reset_index(drop=True)
    points = [qpv.geometry.values[i % len(qpv)].representative_point() for i in range(16)]
    keys = list(PRIORITES)
    sites = pd.DataFrame({
        "lon": [p.x for p in points] + [4.8357], "lat": [p.y for p in points] + [45.7640],
        "priorite": [keys[i % len(keys)] for i in range(16)] + ["mobilite"],
        "porteur": [f"Porteur {i}" for i in range(17)], "action": "A",
        "status": ["eligible"] * 16 + ["hors_territoire"]})
    path = maps.save_map(maps.map_from_sites(sites, reference, tiles=None), tmp_path / "c.html")
    remote = open_page(page, path)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "carte_ouverture.png"))
    # QPV names shown at the opening zoom, never on top of each other.
    labels = page.locator(".qpvgeo-etiquette span")
    assert labels.count() >= 8
    boxes = page.eval_on_selector_all(".qpvgeo-etiquette span", """els => els.map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert not any(a[0] < b[2] - 1 and a[2] > b[0] + 1 and a[1] < b[3] - 1 and a[3] > b[1] + 1
                   for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # One distinct colour per priority.
    colours = page.eval_on_selector_all(".qpvgeo-site span", "els => els.map(e => "
                                        "getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == len(PRIORITES)
    # The markers inside SEM are clear of the legend and the notes at the opening view.
    def rect(sel: str) -> list[float]:
        return page.eval_on_selector(sel, """e => { const r = e.getBoundingClientRect();
            return [r.left, r.top, r.right, r.bottom]; }""")

    covers = [rect(".qpvgeo-legende"), rect(".qpvgeo-notes"), rect(".leaflet-control-layers")]
    markers = page.eval_on_selector_all(MARKERS, """els => els.map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    inside = [m for m in markers if m[0] >= 0 and m[2] <= 1280 and m[1] >= 0 and m[3] <= 900]
    assert len(inside) >= 16
    hidden = [m for m in inside for c in covers
              if m[0] < c[2] and m[2] > c[0] and m[1] < c[3] and m[3] > c[1]]
    assert hidden == []
    # The legend folds away.
    page.locator(".qpvgeo-legende summary").click()
    assert page.locator(".qpvgeo-legende .ligne").first.is_hidden()
    # Close zoom on a QPV of Saint-Étienne: the streets and their names, offline.
    se = qpv[qpv["lib_com"] == "Saint-Étienne"].geometry.values[0].representative_point()
    page.evaluate("""([lat, lon]) => { window[Object.keys(window).find(
        k => k.startsWith('map_'))].setView([lat, lon], 17); }""", [se.y, se.x])
    page.wait_for_selector(".qpvgeo-rue")
    assert page.locator(".qpvgeo-rue").count() >= 5
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
    page.screenshot(path=str(artifacts / "carte_rues.png"))
    assert page.console_errors == [] and remote == []


def test_coverage_map_keeps_a_priority_without_located_site(page, ref, sites, tmp_path,
                                                            artifacts):
    from qpv_geo.reporting.coverage import coverage_from_sites

    lost = sites.copy()
    lost.loc[lost["priorite"] == "mobilite", ["lon", "lat"]] = None
    cov = coverage_from_sites(lost, ref)
    path = maps.save_map(maps.coverage_map(cov, ref, sites=lost), tmp_path / "couverture.html")
    remote = open_page(page, path)
    # Mobilité is the first choice: all its QPV are gaps, and the reason is given
    assert "Mobilité" in page.locator(".qpvgeo-legende summary").inner_text()
    assert "6 sites non localisés" in page.locator(".qpvgeo-legende summary").inner_text()
    assert page.locator("path[stroke='#d7191c']").count() == len(ref.qpv)
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and scale.inner_text().strip().endswith("m")
    page.screenshot(path=str(artifacts / "carte_couverture_mobilite_non_localisee.png"))
    assert page.console_errors == [] and remote == []


def test_lyon_map_says_no_commune_outline_is_shipped(page, tmp_path, artifacts):
    from qpv_geo.reference.territories import reference_territoire, resolve_territoire

    lyon = reference_territoire(resolve_territoire("200046977"))
    assert len(lyon.communes) == 0 and len(lyon.qpv) > 0
    empty = pd.DataFrame({"lon": [], "lat": [], "priorite": []})
    path = maps.save_map(maps.map_from_sites(empty, lyon, tiles=None), tmp_path / "lyon.html")
    remote = open_page(page, path)
    legend = page.locator(".qpvgeo-legende").inner_text()
    assert "contours des communes non installés pour ce territoire" in legend
    assert "Mobilité : aucun site sur la carte" in legend
    assert page.locator(".leaflet-control-scale-line").count() == 1
    page.screenshot(path=str(artifacts / "carte_lyon.png"))
    assert page.console_errors == [] and remote == []
