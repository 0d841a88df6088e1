"""The report and the coverage map of a large territory (Métropole du Grand Paris, 174 QPV):
condensed to stay readable and small, nothing dropped (the full per-QPV table in a CSV)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from qpv_geo.batch.priorities import PRIORITES
from qpv_geo.eligibility.wording import reference_from_settings
from qpv_geo.reporting import maps, report
from qpv_geo.reporting._carto import SEUIL_GRAND_TERRITOIRE, formes_compactes, polyline
from qpv_geo.reporting.coverage import coverage_from_sites
from qpv_geo.settings import Settings
from tests._geo import interieur

GRAND_PARIS = "200054781"


@pytest.fixture(scope="module")
def grand_paris(tmp_path_factory):
    """(reference, validated sites, codes of the QPV with a site inside): one QPV in three
    gets a site, one porteur's name looks like template syntax."""
    from qpv_geo.cli import load_sites_for_outputs

    settings = Settings.from_env(territoire=GRAND_PARIS)
    ref = reference_from_settings(settings)
    assert len(ref.qpv) > SEUIL_GRAND_TERRITOIRE
    chosen = ref.qpv.iloc[::3]
    keys = list(PRIORITES)
    rows = ["porteur;action;priorite;lat;lon"]
    for i, geom in enumerate(chosen.geometry):
        lat, lon = interieur(geom)
        porteur = "{{ porteur }} {% x %}" if i == 0 else f"Porteur {i % 20}"
        rows.append(f"{porteur};Action {i};{keys[i % len(keys)]};{lat:.6f};{lon:.6f}")
    src = tmp_path_factory.mktemp("grand_paris") / "sites.csv"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sites = load_sites_for_outputs(src, settings)
    return ref, sites, set(chosen["code_qp"])


def _section(page: str, ident: str) -> str:
    m = re.search(rf'<section id="{ident}"[^>]*>(.*?)</section>', page, re.S)
    assert m, ident
    return m.group(1)


def test_report_of_a_large_territory_is_condensed(grand_paris, tmp_path) -> None:
    ref, sites, with_site = grand_paris
    out = report.write_report(sites, tmp_path / "rapport.html", reference=ref)
    assert set(out) == {"html", "par_qpv"}
    assert out["par_qpv"] == tmp_path / "rapport-par-qpv.csv"
    page = out["html"].read_text(encoding="utf-8")
    assert len(page.encode()) < 5_000_000  # 4.6 MB before, with the polygons 9 times
    matrice = _section(page, "matrice")
    for code in with_site:  # every QPV with a site is in the matrix…
        assert code in matrice, code
    shown = set(re.findall(r"QN\d{3}\d*[A-Z]", matrice))
    reached = set(coverage_from_sites(sites, ref).par_qpv.query("priorites_atteintes > 0")
                  ["code_qp"])
    assert shown == reached  # …and only those some action reaches
    lacunes = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", _section(page, "lacunes")))
    n = len(ref.qpv)
    assert f"Ce territoire compte {n} QPV" in lacunes
    assert f"{len(reached)} QPV qu'au moins une action atteint" in lacunes
    assert f"{n - len(reached)} autres n'ont aucune action" in lacunes
    assert "rapport-par-qpv.csv" in lacunes and "93 Seine-Saint-Denis" in lacunes
    # Nothing dropped: the CSV has every QPV of the territory, each priority's coverage.
    table = pd.read_csv(out["par_qpv"], sep=";", encoding="utf-8-sig")
    assert sorted(table["code_qp"]) == sorted(ref.qpv["code_qp"])
    assert set(table["Mobilité"]) <= {"action dans le QPV", "seulement quartier vécu", "lacune"}
    assert (table["sites_dans"] > 0).sum() == len(with_site)


def test_coverage_map_holds_each_polygon_once(grand_paris, tmp_path) -> None:
    from jinja2.utils import htmlsafe_json_dumps

    ref, sites, _ = grand_paris
    cov = coverage_from_sites(sites, ref)
    page = maps.map_html(maps.coverage_map(cov, ref, sites=sites))
    ring = formes_compactes(ref.qpv.geometry.values[:1], {})[0][1][0][0]
    assert page.count(str(htmlsafe_json_dumps(ring))[1:-1]) == 1  # not once per priority
    assert page.count("L.geoJson(qpvgeoGeoJson(") == 1  # one layer, restyled per priority
    # a porteur named like template syntax is text in the tooltip (HTML entity, JSON-escaped)
    assert "{{ porteur }}" not in page
    assert "\\u0026#123;\\u0026#123; porteur }}" in page


def test_pdf_of_a_large_territory_stays_short(grand_paris) -> None:
    import weasyprint

    ref, sites, with_site = grand_paris
    static = report.report_from_sites(sites, ref, static=True, export_qpv="r-par-qpv.csv")
    pages = weasyprint.HTML(string=static, base_url=str(report.TEMPLATES)).render().pages
    assert len(pages) <= 40  # 32 before
    assert all(code in static for code in with_site)


def test_polyline_round_trip_without_template_syntax() -> None:
    def decode(s: str) -> list[tuple[float, float]]:
        values, i = [], 0
        while i < len(s):
            shift = result = 0
            while True:
                b = (123 if s[i] == "!" else ord(s[i])) - 63
                i += 1
                result |= (b & 31) << shift
                shift += 5
                if b < 32:
                    break
            values.append(~(result >> 1) if result & 1 else result >> 1)
        pts, x, y = [], 0, 0
        for dx, dy in zip(values[::2], values[1::2], strict=True):
            x, y = x + dx, y + dy
            pts.append((x / 1e5, y / 1e5))
        return pts

    coords = [(2.35222, 48.85661), (-61.53401, 16.24125), (55.45038, -20.88231),
              (2.35222 + 0.00956, 48.85661)]  # a step of 956 encodes with a '{'
    text = polyline(coords)
    assert "{" not in text and "!" in text
    flat = [v for p in decode(text) for v in p]
    assert flat == pytest.approx([v for p in coords for v in p], abs=1e-9)


@pytest.mark.browser
def test_coverage_map_switches_priority_in_browser(grand_paris, page, tmp_path) -> None:
    ref, sites, _ = grand_paris
    cov = coverage_from_sites(sites, ref)
    path = maps.save_map(maps.coverage_map(cov, ref, sites=sites), tmp_path / "couv.html")
    page.goto(path.as_uri())
    page.wait_for_selector("path.leaflet-interactive")
    red = "path[stroke='#d7191c']"
    assert page.locator("path.leaflet-interactive").count() == len(ref.qpv)
    gaps = cov.par_priorite.set_index("priorite")["qpv_lacunes"]
    assert page.locator(red).count() == gaps["mobilite"]
    page.locator(".leaflet-control-layers").hover()
    page.locator(".leaflet-control-layers-base label", has_text="Santé").locator("input").check()
    assert page.locator(red).count() == gaps["sante"]
    assert page.locator(".qpvgeo-legende summary").inner_text().startswith("Couverture : Santé")
    # the tooltip of a QPV with a Santé action inside is written from its numbers
    page.mouse.move(5, 5)  # (an event on the path: its centre may lie under a label)
    page.locator("path.leaflet-interactive[fill='#c6dbef']").first.dispatch_event("mouseover")
    tip = page.locator(".leaflet-tooltip").first.inner_text()
    assert "action dans le QPV\n1 action (1 site(s) dans le QPV" in tip and "Porteurs : " in tip
    assert page.console_errors == []


def test_overseas_sites_off_the_printed_maps_are_counted_per_territory() -> None:
    """All France: the printed maps are framed on the metropole; the overseas sites they leave
    out are counted per part of France (not one row each), a site hors territoire stays listed."""
    from qpv_geo.reporting.condensed_report import hors_cadre_par_zone

    ref = reference_from_settings(Settings.from_env(territoire="france"))
    sites = pd.DataFrame({"lat": [-20.88, -20.90, 45.76, -17.55], "lon": [55.45, 55.47, 4.84,
                                                                          -149.57],
                          "status": ["eligible", "hors_qpv", "eligible", "hors_territoire"]})
    regroupes, zones = hors_cadre_par_zone(sites, ref)
    assert list(regroupes) == [0, 1]
    assert zones == [{"nom": "La Réunion", "n": 2}]
    rows = report._outside_rows(sites, ref, regroupes)
    assert [r["ligne"] for r in rows] == ["3"]
