"""What a person meets on the web pages, in headless Chromium (issue 23.2 and 23.6).

* axe-core (vendored in tests/vendor, MPL-2.0) finds no violation on the page, a verdict, /lot,
  /donnees, the register's pages and the committee's maps;
* keyboard only: a partial street name typed, a suggestion picked with the arrows, the verdict
  reached with Enter, and the tab's title says the verdict;
* 375 px wide: the verdict page does not scroll sideways and the verdict is in view;
* the attestation prints on ONE A4 page with the browser's default margins, even with very long
  porteur and action names, which are printed whole (wrapped), not cut.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

from tests._serveur import served

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
#: Chromium's « Par défaut » margins when a page sets none (about 1 cm); ours sets 12 mm.
DEFAULT_MARGINS = {"top": "1cm", "bottom": "1cm", "left": "1cm", "right": "1cm"}
LONG_PORTEUR = ("Association départementale pour l'insertion professionnelle et sociale des "
                "jeunes et des adultes éloignés de l'emploi du bassin stéphanois et du Gier")
LONG_ACTION = ("Accompagnement renforcé vers l'emploi durable : ateliers collectifs de "
               "remobilisation, levée des freins périphériques (mobilité, garde d'enfants, "
               "numérique) et mises en situation professionnelle")
assert len(LONG_PORTEUR) <= 200 and len(LONG_ACTION) <= 200  # the fields' maxlength


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app

    with served(create_app(Settings.from_env()), timeout_s=20) as url:
        yield url


@pytest.fixture()
def page(browser):
    """A page that may run axe (the app's CSP forbids injected scripts: bypassed here only)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.console_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now: « rule: element… »."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => v.id + ' (' + v.impact + '): '
            + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
    }""")
    return list(found)


def wait_maps(page) -> None:
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)


def pdf_pages(data: bytes, tmp_path: Path, name: str) -> int:
    """Pages of a PDF as poppler counts them."""
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", out.stdout, re.M).group(1))


def a_verifier_url(base_url: str, engine) -> str:
    from .test_web import near_edge_in_saint_etienne

    lat, lon, _, _ = near_edge_in_saint_etienne(engine)
    return f"{base_url}/?lat={lat:.7f}&lon={lon:.7f}"


# ------------------------------------------------------------------------------ axe-core
def test_axe_finds_nothing_on_the_pages_and_the_verdicts(page, base_url, engine) -> None:
    from .test_web import demo_address_in_qpv

    text, _, _ = demo_address_in_qpv(engine)
    for path in ("/", "/donnees", "/lot", "/?adresse=zzzz%20qqqq%20wwww", "/?lat=abc&lon=4",
                 "/page-absente"):
        page.goto(base_url + path)
        assert axe_violations(page) == [], path
    for url in (a_verifier_url(base_url, engine), base_url + "/?lat=45.4561&lon=4.4067"):
        page.goto(url)
        wait_maps(page)
        assert axe_violations(page) == [], url  # nested-interactive on both maps before
    page.goto(base_url + "/")
    page.get_by_role("combobox", name="Adresse de l'action").fill(text)
    page.keyboard.press("Enter")
    wait_maps(page)
    assert axe_violations(page) == []
    assert page.console_errors == []


def test_axe_finds_nothing_on_lot_results(page, base_url, engine, tmp_path) -> None:
    from .test_web import demo_address_in_qpv

    text, _, _ = demo_address_in_qpv(engine)
    sites = tmp_path / "sites.csv"
    sites.write_text("Porteur;Action;Lieu de réalisation;Priorité\n"
                     f"Asso A;Atelier CV;{text};Mobilité\nAsso B;Job dating;zzzz qqqq;Emploi\n",
                     encoding="utf-8")
    page.goto(base_url + "/lot")
    page.get_by_label("Fichier des actions").set_input_files(str(sites))
    page.get_by_role("button", name="Vérifier le fichier").click()
    page.wait_for_selector("#resultat-lot")
    assert axe_violations(page) == []


def test_axe_finds_nothing_on_the_register_pages(browser, tmp_path) -> None:
    from qpv_geo.register import Registre
    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app
    from tests.test_registre import MARGE, V1

    st = Settings.from_env(data_dir=tmp_path / "d", annee_appel=2026, marge_m=MARGE,
                           ecoute="127.0.0.1")
    with Registre(settings=st) as reg:
        reg.importer(V1, annuaire=False)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = ctx.new_page()
    try:
        with served(create_app(st), timeout_s=20) as base:
            for path in ("/registre", "/registre?tous=1", "/registre/dossiers",
                         "/registre/site?id=CE26-038"):
                page.goto(base + path)
                if "site" in path:
                    wait_maps(page)
                assert axe_violations(page) == [], path
    finally:
        ctx.close()


def test_axe_finds_nothing_on_the_committee_maps(page, ref, sites, tmp_path) -> None:
    """The committee's maps as files: before, axe found html-has-lang, document-title,
    meta-viewport (user-scalable=no), landmark-one-main, page-has-heading-one, region (map
    panes outside a landmark) and aria-command-name (site markers without a name)."""
    from qpv_geo.reporting import maps
    from qpv_geo.reporting.coverage import coverage_from_sites

    sites = sites.copy()
    sites.loc[0, "porteur"] = "Roue & « Libre » <b>"  # S1, a user's text with markup signs
    cov = coverage_from_sites(sites, ref)
    titles = {"carte.html": "Carte — Actions de l'appel à projets — Cité de l'emploi — "
                            "Saint-Étienne Métropole",
              "couverture.html": "Carte — Couverture des QPV par priorité — "
                                 "Saint-Étienne Métropole"}
    for name, m in (("carte.html", maps.map_from_sites(sites, ref, tiles=None)),
                    ("couverture.html", maps.coverage_map(cov, ref, tiles=None, sites=sites))):
        path = maps.save_map(m, tmp_path / name)
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        assert axe_violations(page) == [], name
        assert page.title() == titles[name]
        assert page.evaluate("document.documentElement.lang") == "fr"
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == titles[name]
        box = heading.bounding_box()  # read by screen readers, not seen
        assert box is None or (box["width"] <= 1 and box["height"] <= 1)
        # the map fills the window inside <main>, as it did in <body>
        assert page.locator("main .folium-map").bounding_box()["height"] == 900
        if name == "carte.html":  # each site is named: porteur — action — status, as text
            from qpv_geo.eligibility.wording import libelles

            names = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.qpvgeo-site[role=button]')).map(e => e.getAttribute('aria-label'))""")
            eligible = libelles(ref).statuts["eligible"]
            assert f"Roue & « Libre » <b> — Auto-école sociale — {eligible}" in names, names
            assert len(names) == len(maps.sites_on_map(sites, ref, interactive=True)[0])
            assert all(names), names


# ------------------------------------------------------------------------------ keyboard
def test_keyboard_only_partial_street_to_verdict_and_title(page, base_url) -> None:
    page.goto(base_url + "/")
    # Tab from the top of the page: the skip link, then straight to the address field.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.keyboard.press("Enter")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "adresse":
            break
    assert page.evaluate("document.activeElement.id") == "adresse"
    page.keyboard.type("rue de la répu", delay=20)  # a partial word
    options = page.locator("#suggestions [role=option]")
    options.first.wait_for(timeout=10_000)
    labels = options.all_inner_texts()
    assert any(label.startswith("Rue de la République") for label in labels), labels
    target = next(i for i, label in enumerate(labels) if "Saint-Étienne" in label)
    for _ in range(target + 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # picks the suggestion
    assert page.locator("#adresse").input_value() == labels[target]
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_selector("#verdict")
    verdict = page.locator("#verdict-statut").inner_text()
    assert page.title() == f"{verdict} — {labels[target]} — qpv-geo"
    # a point: its coordinates in the title
    page.goto(base_url + "/?lat=45.4561&lon=4.4067")
    assert re.fullmatch(r"Non éligible — hors QPV — lat 45\.45610, lon 4\.40670 — qpv-geo",
                        page.title()), page.title()


# ------------------------------------------------------------------------------ 375 px
def test_verdict_page_at_375_px(browser, base_url, engine, artifacts) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True,
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(a_verifier_url(base_url, engine))
        wait_maps(page)
        page.locator("#verdict").scroll_into_view_if_needed()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        for selector in ("#verdict-statut", ".que-faire", "#carte", "#carte-quartier"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
        page.goto(a_verifier_url(base_url, engine) + "#verdict")
        wait_maps(page)
        assert page.locator("#verdict-statut").is_visible()
        assert page.locator("#verdict-statut").inner_text() == "À vérifier"
        page.screenshot(path=str(artifacts / "web-verdict-375.png"))
    finally:
        context.close()


# ------------------------------------------------------------------------------ print
def _fill_long_names(page) -> None:
    page.get_by_label("Porteur", exact=True).fill(LONG_PORTEUR)
    page.get_by_label("Action", exact=True).fill(LONG_ACTION)
    page.get_by_label("N° de dossier").fill("CE-2026-042-COMPLEMENT-BIS")


@pytest.mark.parametrize("cas", ["a_verifier", "adresse"])
def test_attestation_is_one_a4_page_with_long_names(page, base_url, engine, tmp_path,
                                                    artifacts, cas) -> None:
    from .test_web import demo_address_in_qpv

    if cas == "a_verifier":
        page.goto(a_verifier_url(base_url, engine))
    else:
        page.goto(base_url + "/?adresse=" + demo_address_in_qpv(engine)[0])
    wait_maps(page)
    _fill_long_names(page)
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    # the names are printed whole, as wrapping text (an input would cut them)
    printed = page.locator(".attestation-champs").inner_text()
    assert LONG_PORTEUR in " ".join(printed.split()) and LONG_ACTION in " ".join(printed.split())
    assert not page.locator("#att-porteur").is_visible()
    width = page.locator(".attestation-champs").bounding_box()["width"]
    assert page.locator('.valeur-imprimee[data-champ="att-action"]').bounding_box()[
        "width"] <= width
    for margins, css_size in ((DEFAULT_MARGINS, False), (None, True)):
        pdf = page.pdf(format="A4", print_background=True, margin=margins,
                       prefer_css_page_size=css_size)
        assert pdf_pages(pdf, tmp_path, f"{cas}.pdf") == 1, (cas, margins)
    (artifacts / f"web-attestation-{cas}.pdf").write_bytes(pdf)
    # the maps are on the page, side by side
    a, b = page.locator("#carte").bounding_box(), page.locator("#carte-quartier").bounding_box()
    assert abs(a["y"] - b["y"]) < 1 and a["x"] + a["width"] <= b["x"]
    page.emulate_media(media="screen")
    assert page.console_errors == []


def test_chromium_print_to_pdf_default_margins_is_one_page(base_url, engine, tmp_path) -> None:
    """The browser's own printing (« chromium --print-to-pdf »: default margins, date, title
    and address in the margins), on an « à vérifier » verdict with its advice and maps."""
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    out = tmp_path / "attestation.pdf"
    subprocess.run([CHROMIUM, *CHROMIUM_ARGS, "--virtual-time-budget=8000",
                    f"--print-to-pdf={out}", a_verifier_url(base_url, engine)],
                   capture_output=True, timeout=90, check=False)
    assert pdf_pages(out.read_bytes(), tmp_path, "copie.pdf") == 1
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "À vérifier" in text and "Nom et signature" in text
