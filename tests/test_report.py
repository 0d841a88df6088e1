"""The committee report: contents, escaping, self-containment, demo mark, PDF."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from qpv_geo.batch.priorities import PRIORITES
from qpv_geo.reference.layers import NOTE_DEMO, NOTE_EXTRAIT
from qpv_geo.reporting import report
from qpv_geo.reporting.coverage import coverage_from_sites
from tests.conftest import coverage_reference

DATA = Path(__file__).parent / "data" / "coverage"





@pytest.fixture(scope="module")
def page(ref, sites) -> str:
    return report.report_from_sites(sites, ref, source="sites_valides.csv")


def section(page: str, ident: str) -> str:
    m = re.search(rf'<section id="{ident}"[^>]*>(.*?)</section>', page, re.S)
    assert m, ident
    return m.group(1)


def cells(fragment: str) -> list[str]:
    """Text of the table cells of an HTML fragment."""
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", fragment, re.S)]


def test_key_figures(page):
    text = cells(section(page, "chiffres"))
    chiffres = section(page, "chiffres")
    assert "<b>13</b>sites déclarés" in chiffres
    assert "<b>10</b>actions" in chiffres and "<b>10</b>porteurs" in chiffres
    assert "<b>6</b>sites éligibles" in chiffres
    assert "<b>2</b>lignes à revoir" in chiffres  # S9 not located, S10 unknown priority
    # 3 QPV × 8 priorities: cells inside, served only nearby, gaps — three figures, apart.
    assert "160" not in chiffres and "24 cases QPV × priorité" in chiffres

    def card(ident: str) -> str:
        m = re.search(rf'id="{ident}"><b>(.*?)</b>(.*?)</li>', chiffres, re.S)
        assert m, ident
        return re.sub(r"\s+", " ", m.group(1) + " " + re.sub(r"<[^>]+>", "", m.group(2)))

    assert card("cases-dans").startswith("4 / 24 cases avec une action dans le QPV (17 %)")
    assert card("cases-vecu").startswith("1 / 24 cases desservies seulement par le quartier")
    assert card("cases-lacunes").startswith("19 / 24 lacunes")
    assert "QPV atteints" not in chiffres  # the old figure that read as full coverage
    assert "Non éligible — hors QPV" in text and text[text.index("Non éligible — hors QPV")
                                                       + 1] == "4"


def test_matrix_grouped_by_axis(page):
    rows = re.findall(r"<tr>(.*?)</tr>", section(page, "matrice"), re.S)
    top, labels = cells(rows[0]), cells(rows[1])
    assert top[:3] == ["QPV", "Commune", "Lever les freins au retour à l'emploi"]
    assert 'colspan="4" class="axe-entete">Lever les freins' in section(page, "matrice")
    assert labels == [p.label for p in PRIORITES.values()]
    alpha = cells(next(r for r in rows if "QN04201M" in r))
    assert alpha[2] == "2 (2+1)"  # mobilité: 2 actions, 2 sites inside + 1 nearby
    assert alpha[6] == "1 (0+1)"  # entreprises: only nearby
    assert alpha[3] == "0" and alpha[-1] == "1 / 8"  # one priority with an action inside
    assert 'class="cellule aucune"' in section(page, "matrice")
    assert 'class="cellule proximite"' in section(page, "matrice")


def test_priorities_inside_and_nearby_apart(page):
    prio = section(page, "priorites")
    text = cells(prio)
    assert text.index("Lever les freins au retour à l'emploi") < text.index("Mobilité") \
        < text.index("Santé") < text.index("Rapprocher les entreprises des quartiers")
    i = text.index("Mobilité")
    # 6 sites, S9 not located: counted apart (on no map, in no coverage figure)
    assert text[i + 1] == "6dont 1 non localisé, hors cartes et couverture"
    assert text[i + 2: i + 7] == ["4", "4", "2 / 3 (67 %)", "0 / 3 (0 %)", "1 / 3 (33 %)"]
    j = text.index("Rapprocher les entreprises des quartiers")
    # Reached only within 300 m: not a QPV with an action inside, and said apart.
    assert text[j + 4: j + 7] == ["0 / 3 (0 %)", "1 / 3 (33 %)", "2 / 3 (67 %)"]
    assert "taux de couverture" not in prio.lower()
    assert prio.count("data:image/png;base64,") == 1  # the chart


def test_gaps_per_qpv(page):
    gaps = section(page, "lacunes")
    rows = re.findall(r"<tr>(.*?)</tr>", gaps, re.S)
    assert cells(rows[0]) == ["QPV", "Commune", "Lacunes", "Priorités sans action",
                              "Desservies seulement par le quartier vécu"]
    by_code = {re.search(r"QN0420\dM", r).group(0): cells(r) for r in rows[1:]}
    assert set(by_code) == {"QN04201M", "QN04202M", "QN04203M"}
    alpha = by_code["QN04201M"]
    assert alpha[0] == "Alpha\nQN04201M" or alpha[0].startswith("Alpha")
    assert alpha[2] == "6 / 8"
    assert "Lever les freins au retour à l'emploi : Linguistique, Garde d'enfants, Santé" \
        in alpha[3]
    assert "Mobilité" not in alpha[3] and "Rapprocher" not in alpha[3]
    assert alpha[4] == "Rapprocher les entreprises des quartiers"
    beta = by_code["QN04202M"]
    assert beta[2] == "7 / 8" and "Mobilité" in beta[3] and "Linguistique" not in beta[3]
    # Most gaps first.
    assert [c[2] for c in by_code.values()] == sorted((c[2] for c in by_code.values()),
                                                      reverse=True)
    assert "QN04201M, QN04202M" not in gaps  # no wall of codes


def test_sites_outside_sem_listed_apart(ref, sites):
    far = sites.copy()
    far.loc[far.index[0], ["lon", "lat", "status"]] = [4.8357, 45.7640, "hors_territoire"]
    page = report.report_from_sites(far, ref, static=True)
    cartes = section(page, "cartes")
    assert 'id="hors-carte"' in cartes
    n = int((far["status"] == "hors_territoire").sum())
    assert n >= 1
    assert f"Sites hors du territoire de SEM ({n})" in cartes and "45.76400, 4.83570" in cartes
    # Not drawn: the static map stays framed on SEM (same image as without the far site).
    from qpv_geo.reporting import figures

    before = len(figures.sites_outside_map(sites, ref))
    assert len(figures.sites_outside_map(far, ref)) == before + 1


def test_report_is_dated_in_paris_time(page):
    """The committee reads the report's date in Paris time, as the register and the verdict page
    say it (it was the machine's clock, UTC on a server)."""
    assert re.search(r"rapport du\s+\d\d/\d\d/\d{4} à \d\d:\d\d \(heure de Paris\)", page)


def test_rows_to_review(page):
    revoir = section(page, "revoir")
    assert "Lignes à revoir (2)" in revoir
    text = cells(revoir)
    assert "Garage Solidaire" in text and "Divers" in text
    assert any("priorité non reconnue" in t for t in text)


def test_user_text_escaped_everywhere(page):
    assert "<script>alert(1)</script>" not in page
    assert "${alert(2)}" not in page and "<b>gras</b>" not in page


def test_self_contained_with_maps_and_static_images(page):
    assert not re.search(r'<script[^>]+src="https?:', page)
    assert not re.search(r'<link[^>]+href="https?:', page)
    assert page.count('class="folium-map"') == 2
    assert page.count('class="carte-statique') == 2
    assert page.count('class="graphique') == 2
    assert page.count('src="data:image/png;base64,') == 4  # two static maps, two charts
    # Leaflet inlined once, not once per map.
    assert page.count("/* leaflet-1.9.4/leaflet.js */") == 1
    assert "@media print" in page and "@page" in page


def test_data_versions_and_notes(page, ref, sites, reference):
    donnees = section(page, "donnees")
    assert html.escape(ref.version) in donnees
    # The fixture's verdicts carry the fixture's version: no mismatch warning.
    assert "calculés avec d'autres données" not in donnees
    shipped = report.report_from_sites(sites, reference, static=True)
    assert html.escape(NOTE_EXTRAIT) in section(shipped, "donnees")
    assert "calculés avec d'autres données" in section(shipped, "donnees")


def test_demo_mark(sites):
    demo_page = report.report_from_sites(sites, coverage_reference(demo=True), static=True)
    assert 'id="demo"' in demo_page and NOTE_DEMO in demo_page
    assert "<title>[DÉMONSTRATION]" in demo_page
    addresses = report.report_from_sites(sites.assign(geocodage_source="demo"),
                                         coverage_reference(), static=True)
    assert 'id="demo"' in addresses
    assert 'id="demo"' not in report.report_from_sites(sites, coverage_reference(), static=True)


def test_static_variant_has_no_script(ref, sites):
    static = report.report_from_sites(sites, ref, static=True)
    assert "<script" not in static
    assert 'class="folium-map"' not in static
    assert 'class="statique"' in static


def test_write_report_html_and_pdf(tmp_path, ref, sites):
    out = report.write_report(sites, tmp_path / "rapport.html", reference=ref, pdf=True)
    assert set(out) == {"html", "pdf"}
    assert out["pdf"] == tmp_path / "rapport.pdf"
    pdf = out["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000  # text + two embedded map images
    assert "Matrice QPV × priorité" in out["html"].read_text(encoding="utf-8")
    only_pdf = report.write_report(sites, tmp_path / "seul.pdf", reference=ref)
    assert set(only_pdf) == {"pdf"} and not (tmp_path / "seul.html").exists()


def test_coverage_reused_and_radius_shown(ref, sites):
    cov = coverage_from_sites(sites, ref, rayon_m=100)
    page = report.report_from_sites(sites, ref, static=True, coverage=cov)
    assert "à moins de 100 m" in re.sub(r"\s+", " ", section(page, "chiffres"))


def test_cli_report_and_map(tmp_path):
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    runner = CliRunner()
    validated = DATA / "sites_valides.csv"
    result = runner.invoke(app, ["report", str(validated), "-o", str(tmp_path / "r.html"),
                                 "--pdf", "--rayon", "200"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.html").exists() and (tmp_path / "r.pdf").exists()
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Matrice QPV × priorité" in page and "à moins de 200 m" in page
    assert "QPV avec une action dedans" in result.output and "seulement à ≤ 200 m" in result.output
    assert "QPV atteints" not in result.output
    result = runner.invoke(app, ["map", str(validated), "-o", str(tmp_path / "c.html"),
                                 "--tiles", "none"])
    assert result.exit_code == 0, result.output
    assert "tile.openstreetmap" not in (tmp_path / "c.html").read_text(encoding="utf-8")
    bad = runner.invoke(app, ["map", str(validated), "--tiles", "satellite"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["report", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 2 and "introuvable" in missing.output


def test_readme_shows_the_report_made_from_the_real_output():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for name in ("rapport.png", "rapport-carte.png"):
        assert f"](docs/img/{name})" in readme
        png = Path(__file__).parent.parent / "docs" / "img" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    assert "make img-rapport" in readme


@pytest.mark.browser
def test_img_rapport_script_writes_the_pictures(tmp_path, browser):
    import importlib.util

    from PIL import Image

    script = Path(__file__).parent.parent / "docs" / "img" / "make_rapport_png.py"
    spec = importlib.util.spec_from_file_location("make_rapport_png", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write_pngs(tmp_path, browser=browser)
    assert [p.name for p in written] == ["rapport.png", "rapport-carte.png"]
    with Image.open(written[0]) as top:
        assert top.width == 1280 and 900 < top.height < 2500
    with Image.open(written[1]) as carte:
        assert carte.width > 800
