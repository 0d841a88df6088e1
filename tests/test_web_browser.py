"""End to end in headless Chromium: the page served by uvicorn on loopback, a person's path
through it (type, pick a suggestion, submit, read the verdict, see the map, print)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

pytest.importorskip("uvicorn")

from qpv_geo.reference.layers import NOTE_EXTRAIT
from tests._serveur import served

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """uvicorn serving create_app() on 127.0.0.1, a free port, in a thread."""
    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app

    with served(create_app(Settings.from_env()), timeout_s=20) as url:
        yield url



def offsite_requests(page, base_url: str) -> list[str]:
    """Every request the page made that did not go to the app itself."""
    return [u for u in page.requests_seen if not (u.startswith(base_url) or u.startswith("data:"))]


@pytest.fixture()
def tracked(page):
    page.requests_seen = []
    page.on("request", lambda r: page.requests_seen.append(r.url))
    return page


def test_point_verdict_with_map_and_print(tracked, base_url, inside, artifacts) -> None:
    page = tracked
    lat, lon = inside
    page.goto(base_url + "/")
    page.get_by_label("Latitude").fill(f"{lat:.6f}")
    page.get_by_label("Longitude").fill(f"{lon:.6f}")
    page.get_by_role("button", name="Vérifier le point").click()
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict-statut").inner_text() == "Éligible"
    details = page.locator("#verdict .details").inner_text()
    assert "QN04213M — Montreynaud" in details and "à l'intérieur du périmètre" in details
    assert NOTE_EXTRAIT in page.locator("#verdict .notes").inner_text()
    # The map: Leaflet container, the QPV polygon and the point drawn as SVG paths.
    page.wait_for_selector('#carte[data-pret="1"]', timeout=10_000)
    assert page.locator("#carte.leaflet-container").count() == 1
    assert page.locator("#carte path.leaflet-interactive").count() >= 2
    page.screenshot(path=str(artifacts / "web-verdict-point.png"), full_page=True)
    # Print: the attestation header shows, the forms do not.
    page.emulate_media(media="print")
    assert page.locator(".attestation-entete").is_visible()
    assert not page.locator("#form-adresse").is_visible()
    page.emulate_media(media="screen")
    assert page.locator("#copier").is_visible() and page.locator("#imprimer").is_visible()
    assert page.console_errors == []
    assert offsite_requests(page, base_url) == []


def test_address_typed_suggestion_picked_verdict_and_map(tracked, base_url, engine,
                                                        artifacts) -> None:
    from .test_web import demo_address_in_qpv

    page = tracked
    text, _, _ = demo_address_in_qpv(engine)
    page.goto(base_url + "/")
    field = page.get_by_role("combobox", name="Adresse de l'action")
    field.press_sequentially(text[:-6], delay=15)  # not quite all of it: let suggestions help
    options = page.locator("#suggestions [role=option]")
    options.first.wait_for(timeout=10_000)
    assert field.get_attribute("aria-expanded") == "true"
    labels = options.all_inner_texts()
    assert text in labels, labels
    for _ in range(labels.index(text) + 1):  # keyboard only
        field.press("ArrowDown")
    assert page.locator("#suggestions [aria-selected=true]").inner_text() == text
    field.press("Enter")  # picks the suggestion, does not submit yet
    assert field.input_value() == text
    assert page.locator("#suggestions").is_hidden()
    page.get_by_role("button", name="Vérifier l'adresse").click()
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict-statut").inner_text() in ("Éligible", "À vérifier")
    details = page.locator("#verdict .details").inner_text()
    assert "QN04213M — Montreynaud" in details and text in details and "au numéro" in details
    assert "DÉMONSTRATION" in page.locator("#verdict .demo").inner_text()
    page.wait_for_selector('#carte[data-pret="1"]', timeout=10_000)
    assert page.locator("#carte path.leaflet-interactive").count() >= 2
    page.screenshot(path=str(artifacts / "web-verdict-adresse.png"), full_page=True)
    assert page.console_errors == []
    assert offsite_requests(page, base_url) == []


def test_phone_width_has_no_horizontal_scroll(browser, base_url) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(base_url + "/?lat=45.4561&lon=4.4067")
        page.wait_for_selector('#carte[data-pret="1"]', timeout=10_000)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, width
        assert "Non éligible" in page.locator("#verdict-statut").inner_text()
    finally:
        context.close()


def test_lot_page_tables_picker_and_rerun(tracked, base_url, engine, tmp_path,
                                          artifacts) -> None:
    from .test_web import demo_address_in_qpv

    page = tracked
    text, _, _ = demo_address_in_qpv(engine)
    sites = tmp_path / "Appel à projets.csv"
    sites.write_text("Porteur;Action;Lieu de réalisation;Priorité\n"
                     f"Asso A;Atelier CV;{text};Mobilité\n"
                     "Asso B;Job dating;zzzz qqqq wwww;Emploi\n", encoding="utf-8")
    page.goto(base_url + "/lot")
    page.get_by_label("Fichier des actions").set_input_files(str(sites))
    page.get_by_role("button", name="Vérifier le fichier").click()
    page.wait_for_selector("#resultat-lot #colonnes")
    # The picker shows what was detected (folded under the results); the person opens it,
    # changes a column and re-runs.
    summary = page.locator("#colonnes summary").inner_text()
    assert "Adresse : « Lieu de réalisation »" in summary and "Porteur : « Porteur »" in summary
    page.locator("#colonnes summary").click()
    page.get_by_label("Priorité", exact=True).select_option("")
    adresse = page.get_by_label("Adresse", exact=True)
    if adresse.input_value() != "Lieu de réalisation":
        adresse.select_option("Lieu de réalisation")
    assert page.get_by_label("Porteur", exact=True).input_value() == "Porteur"
    page.get_by_role("button", name="Relancer avec ces colonnes").click()
    page.wait_for_selector("#resultat-lot")
    heading = page.locator("#resultat-titre").inner_text()
    assert heading == "Appel à projets.csv vérifié : 2 lignes"
    body = page.locator("#resultat-lot").inner_text()
    assert "{'" not in body and "None" not in body
    eligible = page.locator("#resultat-lot .statut-eligible").first
    assert eligible.inner_text() == "Éligible"
    color = eligible.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(15, 107, 47)", color  # coloured, and the word says it too
    assert page.locator("#t-revoir").inner_text() == "Lignes à revoir (1)"
    assert page.locator("#t-prio").count() == 0  # the priority column was unselected
    page.screenshot(path=str(artifacts / "web-lot.png"), full_page=True)
    assert page.console_errors == []
    assert offsite_requests(page, base_url) == []


def test_verdict_maps_draw_streets_offline_and_print_an_attestation(tracked, base_url, inside,
                                                                    artifacts) -> None:
    page = tracked
    page.set_viewport_size({"width": 1280, "height": 900})
    lat, lon = inside
    page.goto(f"{base_url}/?lat={lat:.6f}&lon={lon:.6f}")
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    # Streets of OpenStreetMap, offline, under the perimeters, with their names at close zoom.
    assert int(page.locator("#carte").get_attribute("data-rues")) > 20
    page.wait_for_selector("#carte .qpvgeo-rue", timeout=5_000)
    names = page.locator("#carte .qpvgeo-rue").all_inner_texts()
    assert len(names) >= 2 and all(n.strip() for n in names), names
    attribution = page.locator("#carte .leaflet-control-attribution").inner_text()
    assert "OpenStreetMap" in attribution and "ODbL" in attribution
    assert "Saint-Étienne seulement" in page.locator(".legende").inner_text()
    # The whole-quartier map: the point at its centre, the QPV not cut.
    box = page.locator("#carte-quartier").bounding_box()
    marker = page.locator("#carte-quartier path.leaflet-interactive[fill='#d00000']")
    mbox = marker.bounding_box()
    cx, cy = mbox["x"] + mbox["width"] / 2, mbox["y"] + mbox["height"] / 2
    assert abs(cx - (box["x"] + box["width"] / 2)) < 6
    assert abs(cy - (box["y"] + box["height"] / 2)) < 6
    qpv = page.locator("#carte-quartier path[stroke='#0f6b2f']").first.bounding_box()
    assert qpv["x"] >= box["x"] and qpv["y"] >= box["y"]
    assert qpv["x"] + qpv["width"] <= box["x"] + box["width"] + 1
    assert qpv["y"] + qpv["height"] <= box["y"] + box["height"] + 1
    # Attestation fields, then print: no zoom buttons, the fields and the header shown.
    page.get_by_label("Porteur", exact=True).fill("Association Exemple")
    page.get_by_label("Action", exact=True).fill("Atelier CV")
    page.get_by_label("N° de dossier").fill("CE-2025-042")
    assert "N° de dossier : CE-2025-042" in page.locator("#texte-verdict").text_content()
    page.screenshot(path=str(artifacts / "web-verdict-rues.png"), full_page=True)
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("#carte-quartier").bounding_box()["width"] == box["width"]  # no resize
    mbox = marker.bounding_box()
    pbox = page.locator("#carte-quartier").bounding_box()
    assert abs(mbox["x"] + mbox["width"] / 2 - (pbox["x"] + pbox["width"] / 2)) < 6
    assert page.locator(".attestation-entete").is_visible()
    assert not page.locator(".leaflet-control-zoom").first.is_visible()
    # on paper the fields are text that wraps (an input would cut a long name)
    printed = page.locator('.valeur-imprimee[data-champ="att-dossier"]')
    assert printed.is_visible() and printed.inner_text() == "CE-2025-042"
    assert page.locator(".legende").is_visible()
    pdf = page.pdf(path=str(artifacts / "web-attestation.pdf"), format="A4",
                   print_background=True)
    import re

    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # the attestation fits one page
    page.emulate_media(media="screen")
    assert page.console_errors == []
    assert offsite_requests(page, base_url) == []


def test_no_attestation_for_an_address_not_found(tracked, base_url) -> None:
    page = tracked
    page.goto(base_url + "/?adresse=zzzz%20qqqq%20wwww")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict-statut").inner_text() == "Non localisé"
    assert page.locator("#imprimer").count() == 0
    assert page.locator("#att-dossier").count() == 0
    page.emulate_media(media="print")
    assert "n'est pas une attestation" in page.locator(".attestation-entete").inner_text()
    page.emulate_media(media="screen")


def test_no_streets_outside_saint_etienne_says_so(tracked, base_url) -> None:
    page = tracked
    page.goto(base_url + "/?lat=45.3870&lon=4.2880")  # Firminy: in SEM, beyond the layer
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    note = page.locator("#rues-note").inner_text()
    assert "pas de rues" in note and "Saint-Étienne seulement" in note
    assert page.locator("#carte").get_attribute("data-rues") is None
    assert page.locator("#carte .qpvgeo-rue").count() == 0


def test_a_verifier_page_highlights_the_street_it_names(tracked, base_url, engine) -> None:
    from .test_web import near_edge_in_saint_etienne

    page = tracked
    lat, lon, code, name = near_edge_in_saint_etienne(engine)
    page.goto(f"{base_url}/?lat={lat:.7f}&lon={lon:.7f}")
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    steps = page.locator(".que-faire").inner_text()
    assert f"{code} — {name}" in steps
    rue = page.locator("#verdict").get_attribute("data-rue")
    assert rue and f"« {rue} »" in steps
    assert page.locator("#carte .rue-citee").inner_text() == rue
    assert rue in page.locator(".legende").inner_text()
    # Its attestation (advice, two maps, fields, signature) still fits one A4 page.
    import re

    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)
    page.emulate_media(media="screen")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    assert page.console_errors == []


def test_readme_picture_of_the_verdict_page_is_made_from_the_real_page(browser,
                                                                      tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "img" / "make_verdict_png.py"
    spec = importlib.util.spec_from_file_location("make_verdict_png", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    png = module.write_png(tmp_path / "verdict.png", browser=browser)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/img/verdict.png)" in readme


def streets_crossing_qpv_edges(engine, count: int = 4) -> list[tuple[float, float, str]]:
    """(lat, lon, street) of points 5 m north of a vertex of a named street of the
    OpenStreetMap layer where it crosses the edge of a Saint-Étienne QPV: « à vérifier », the
    street named in « Que faire ? » just under the point — where its label, drawn above the
    street's vertex nearest the point, sat on the point."""
    import shapely

    from qpv_geo.reporting import osm
    from qpv_geo.reporting.next_steps import edge_near

    ref = engine.reference
    roads = osm.load_roads().to_crs(2154)
    named = roads[roads["name"].notna()]
    g = ref.qpv[ref.qpv.insee_com == "42218"].to_crs(2154)
    found = []
    for code, poly in zip(g.code_qp, g.geometry, strict=True):
        for i in named.sindex.query(poly.boundary, predicate="intersects")[:40]:
            road = named.iloc[i]
            cut = road.geometry.intersection(poly.boundary)
            p = next(iter(getattr(cut, "geoms", [cut])))
            if p.geom_type != "Point":
                continue
            vertices = shapely.points(shapely.get_coordinates(road.geometry))
            near = vertices[shapely.distance(vertices, p).argmin()]
            v = engine.judge_point(x=near.x, y=near.y + 5)
            if v.status == "a_verifier" and edge_near(ref, code, v.lon, v.lat)["rue"] == \
                    road["name"]:
                found.append((float(v.lat), float(v.lon), str(road["name"])))
                break
        if len(found) == count:
            return found
    raise AssertionError("too few streets crossing a QPV edge")


def _overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_point_is_never_under_a_street_label_at_zoom_17_and_18(tracked, base_url, engine,
                                                               artifacts) -> None:
    page = tracked
    for n, (lat, lon, street) in enumerate(streets_crossing_qpv_edges(engine)):
        page.goto(f"{base_url}/?lat={lat:.7f}&lon={lon:.7f}")
        page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
        assert page.locator("#verdict").get_attribute("data-rue") == street
        carte = page.locator("#carte")
        carte.scroll_into_view_if_needed()
        for zoom in (17, 18):
            if zoom == 18:
                carte.locator(".leaflet-control-zoom-in").click()
                page.wait_for_timeout(400)
            point = carte.locator("path.qpvgeo-point").bounding_box()
            assert point is not None
            labels = carte.locator(".qpvgeo-rue, .rue-citee")
            assert labels.count() >= 1 and carte.locator(".rue-citee").inner_text() == street
            covering = [labels.nth(i).inner_text() for i in range(labels.count())
                        if _overlaps(labels.nth(i).bounding_box(), point)]
            assert covering == [], (street, zoom, covering)
            # the point's pane is above the labels' panes
            z = page.evaluate("""() => ['qpvgeoPoint', 'qpvgeoRuesNoms', 'qpvgeoRueCitee',
                'tooltip'].map(p => +getComputedStyle(document.querySelector(
                '#carte .leaflet-' + p + '-pane')).zIndex)""")
            assert z[0] > max(z[1:]), z
        if n == 0:
            page.locator(".cartes").screenshot(path=str(artifacts / "web-point-rue-z18.png"))
    assert page.console_errors == []


def test_every_verdict_map_has_a_metric_scale_and_legends_the_street_limit(tracked,
                                                                          base_url,
                                                                          inside) -> None:
    page = tracked
    lat, lon = inside
    page.goto(f"{base_url}/?lat={lat:.6f}&lon={lon:.6f}")
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    for sel in ("#carte", "#carte-quartier"):
        scale = page.locator(f"{sel} .leaflet-control-scale-line")
        assert scale.count() == 1  # metric only: no feet nor miles
        assert re.fullmatch(r"\d+ k?m", scale.inner_text().strip())
    # the dashed rectangle of the street layer's extent is in the legend
    assert "limite de la couche des rues" in page.locator("#verdict .legende").inner_text()
    assert page.locator("#verdict .legende .cle-limite-rues").count() == 1


def test_outside_the_streets_the_legend_offers_the_official_tool(tracked, base_url) -> None:
    page = tracked
    page.goto(base_url + "/?lat=45.3870&lon=4.2880")  # Firminy: in SEM, beyond the layer
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    note = page.locator("#rues-note")
    assert "pas de rues" in note.inner_text() and "outil officiel" in note.inner_text()
    assert note.locator("a").get_attribute("href") == "https://sig.ville.gouv.fr/"
    assert page.locator("#carte .leaflet-control-scale-line").count() == 1
