"""The outputs speak of the territory they were made for: maps, report, web page and API."""

from __future__ import annotations

import html
import re
import warnings

import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.eligibility.wording import SEM, libelles
from qpv_geo.reference.territories import qpv_france, resolve_territoire
from qpv_geo.settings import Settings
from tests._geo import interieur

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

runner = CliRunner()
LYON = "200046977"  # Métropole de Lyon
_SEM_WORDS = re.compile(r"Saint-[ÉE]tienne|\bSEM\b")



@pytest.fixture(scope="module")
def lyon_csv(tmp_path_factory):
    """Six sites inside QPV of the Métropole de Lyon (coordinates), two priorities."""
    gdf, _ = qpv_france()
    lyon = gdf[gdf["siren_epci"] == LYON].head(6)
    rows = ["porteur;action;priorite;lat;lon"]
    for i, geom in enumerate(lyon.geometry):
        lat, lon = interieur(geom, 40.0)
        prio = "mobilite" if i % 2 else "sante"
        rows.append(f"Porteur {i};Action {i};{prio};{lat:.6f};{lon:.6f}")
    path = tmp_path_factory.mktemp("lyon") / "sites_lyon.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, list(lyon["lib_qp"])


def _text(page: str) -> str:
    """What a reader sees of a page: no scripts, no styles, no tags."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _decoded(page: str) -> str:
    """The page with the JSON escapes of folium's data (``\\u00e9``) and the HTML entities
    read: the words a map shows in its legend, layers and popups."""
    page = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return html.unescape(page)


def test_sem_words_are_the_historic_ones() -> None:
    from qpv_geo.eligibility.engine import STATUS_LABELS
    from qpv_geo.web._present import HEADLINES
    from qpv_geo.web.lot import STATUS_WORDS, status_words

    assert libelles(None) is SEM and libelles(resolve_territoire("244200770")) is SEM
    assert SEM.statuts == STATUS_LABELS and SEM.titres == HEADLINES
    assert status_words(SEM) == STATUS_WORDS
    assert SEM.qpv_eligibles == "QPV 2024 de SEM (éligibles)"
    assert SEM.contour == "Contour de Saint-Étienne Métropole"


def test_other_territory_and_france_words() -> None:
    lyon = libelles(resolve_territoire(LYON))
    assert lyon.statuts["hors_territoire"] == \
        "Non éligible — hors territoire de la Métropole de Lyon"
    assert lyon.titres["hors_territoire"].endswith("Métropole de Lyon")
    assert lyon.qpv == "QPV 2024 de la Métropole de Lyon"
    france = libelles(resolve_territoire("france"))
    assert france.qpv == "QPV 2024 — France" and france.titres["eligible"] == "Dans un QPV 2024"
    for words in (lyon, france):
        assert not _SEM_WORDS.search(" ".join([*words.statuts.values(), *words.titres.values(),
                                               words.qpv_eligibles, words.attestation,
                                               words.entete_verification, words.question]))


def test_map_territoire_lyon(tmp_path, lyon_csv) -> None:
    src, names = lyon_csv
    out = tmp_path / "carte.html"
    res = runner.invoke(app, ["map", str(src), "-o", str(out), "--tiles", "none",
                              "--territoire", LYON])
    assert res.exit_code == 0, res.output
    page = _decoded(out.read_text(encoding="utf-8"))
    assert "QPV 2024 de la Métropole de Lyon (éligibles)" in page
    assert "Actions de l'appel à projets — Cité de l'emploi, Métropole de Lyon" in page
    assert "Éligible — dans un QPV de la Métropole de Lyon" in page  # the popups
    assert names[0] in page
    # nothing of SEM: no SEM layer, no QVA legend, no streets of Saint-Étienne, no ODbL;
    # only the neighbouring QPV (hidden layer) name their own EPCI, SEM included
    others = re.findall(r'"_tip": "([^"]*) : non éligible"', page)
    assert others and all(" — " in t for t in others)
    shown = re.sub(r'"_tip": "[^"]*: non éligible"', "", page)
    assert not _SEM_WORDS.search(shown), _SEM_WORDS.search(shown)
    assert "QVA — non éligibles" not in page and "OpenStreetMap" not in page
    # the same map for SEM still names SEM (the default is untouched)
    sem = tmp_path / "carte_sem.html"
    res = runner.invoke(app, ["map", str(src), "-o", str(sem), "--tiles", "none"])
    assert res.exit_code == 0, res.output
    assert "QPV 2024 de SEM (éligibles)" in _decoded(sem.read_text(encoding="utf-8"))


def test_report_territoire_lyon(tmp_path, lyon_csv) -> None:
    src, names = lyon_csv
    out = tmp_path / "rapport.html"
    res = runner.invoke(app, ["report", str(src), "-o", str(out), "--territoire", LYON])
    assert res.exit_code == 0, res.output
    page = _decoded(out.read_text(encoding="utf-8"))
    text = _text(page)
    assert "couverture des QPV par les actions de l'appel à projets — Métropole de Lyon" in text
    assert "Métropole de Lyon — QPV 2024" in text
    assert "Éligible — dans un QPV de la Métropole de Lyon" in text
    assert "quartier de veille active" not in text  # no QVA row where there is no QVA list
    assert "sans rues" in text and "OpenStreetMap" not in text
    assert names[0] in text
    assert not _SEM_WORDS.search(text), _SEM_WORDS.search(text)
    shown = re.sub(r'"_tip": "[^"]*: non éligible"', "", page)  # neighbours name their EPCI
    assert not _SEM_WORDS.search(shown), _SEM_WORDS.search(shown)
    assert "QN04213M" not in page  # Montreynaud, far from Lyon: not drawn


@pytest.mark.parametrize("territoire", [LYON, "france"])
def test_web_territoire(territoire, tmp_path) -> None:
    gdf, _ = qpv_france()
    lyon = gdf[gdf["siren_epci"] == LYON].iloc[0]
    lat, lon = interieur(lyon.geometry, 40.0)
    from qpv_geo.web import create_app

    settings = Settings.from_env(territoire=territoire, dossier_serveur=str(tmp_path))
    csv = f"Structure;Latitude;Longitude\nA;{lat:.6f};{lon:.6f}\nB;45.4605;4.3871\n"
    with TestClient(create_app(settings)) as client:
        home = client.get("/")
        assert home.status_code == 200
        page = client.get("/", params={"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
        assert page.status_code == 200
        api = client.get("/api/v1/verdict", params={"lat": lat, "lon": lon}).json()
        openapi = client.get("/openapi.json").json()
        schema = openapi["info"]
        # the street layer's own description says where it stops (Saint-Étienne): a fact
        openapi["paths"].pop("/api/v1/voies")
        half = client.get("/", params={"lat": "45,7"})  # the hint's example is the territory's
        api_half = client.get("/api/v1/verdict", params={"lat": 45.7}).json()
        lot = client.post("/lot", files={"fichier": ("sites.csv", csv.encode(), "text/csv")})
        assert lot.status_code == 200, lot.text
    assert api["code_qp"] == lyon["code_qp"]
    for body in (home.text, page.text, half.text, lot.text, str(openapi), str(api_half)):
        assert not _SEM_WORDS.search(_text(body)), _SEM_WORDS.search(_text(body))
    assert "45.4605" not in half.text + str(api_half) + str(openapi)
    assert "Exemple : latitude" in half.text
    if territoire == LYON:
        assert "<title>Vérifier l'éligibilité QPV — Métropole de Lyon</title>" in home.text
        assert "QPV) de la Métropole de Lyon ?" in home.text
        assert api["statut_libelle"] == "Éligible — dans un QPV de la Métropole de Lyon"
        assert 'data-libelle-qpv="QPV de la Métropole de Lyon"' in page.text
        assert "Vérification QPV — Métropole de Lyon" in page.text  # the « copier » text
        assert "Le point et le bord du quartier" in page.text  # no streets in Lyon
        assert schema["title"] == "qpv-geo — éligibilité QPV de la Métropole de Lyon"
        assert "Non éligible — hors de la Métropole de Lyon" in lot.text  # the SEM point
    else:
        assert "Quartiers prioritaires 2024 · France" in home.text
        assert api["statut_libelle"] == api["titre"] == "Dans un QPV 2024"
        assert "appartenance à un QPV 2024 (France)" in page.text
        assert "hors territoire" not in page.text
        assert schema["title"] == "qpv-geo — appartenance aux QPV 2024, France"


CINOR = "249740119"  # CA Intercommunale du Nord de la Réunion


def _site_frame(points: list[tuple[float, float]]):
    import pandas as pd

    return pd.DataFrame({"lat": [p[0] for p in points], "lon": [p[1] for p in points],
                         "priorite": ["mobilite"] * len(points), "status": ["eligible"]
                         * len(points), "porteur": [f"P{i}" for i in range(len(points))],
                         "action": [f"A{i}" for i in range(len(points))]})


def test_france_outputs_measure_each_zone_in_its_projection() -> None:
    """All France: coverage distances overseas in the territory's UTM zone, the static maps
    framed on metropolitan France with the overseas sites listed apart."""
    from qpv_geo.eligibility.wording import reference_from_settings
    from qpv_geo.reporting import figures
    from qpv_geo.reporting.coverage import coverage_from_sites

    reference = reference_from_settings(Settings.from_env(territoire="france"))
    qpv = reference.qpv
    reunion = qpv[qpv["insee_com"].astype(str).str.startswith("974")].iloc[0]
    lyon = qpv[qpv["siren_epci"] == LYON].iloc[0]
    sites = _site_frame([interieur(reunion.geometry), interieur(lyon.geometry)])
    cov = coverage_from_sites(sites, reference, rayon_m=300)
    dans = cov.matrix[(cov.matrix["priorite"] == "mobilite") & (cov.matrix["actions_dans"] > 0)]
    assert set(dans["code_qp"]) == {reunion["code_qp"], lyon["code_qp"]}
    outside = figures.sites_outside_map(sites, reference)
    assert list(outside.index) == [0]  # La Réunion: off the metropolitan frame
    assert figures.static_sites_png(sites, reference)[:4] == b"\x89PNG"
    assert figures.static_coverage_png(cov, reference)[:4] == b"\x89PNG"


def test_report_overseas_territory(tmp_path) -> None:
    gdf, _ = qpv_france()
    cinor = gdf[gdf["siren_epci"] == CINOR]
    rows = ["porteur;action;priorite;lat;lon"]
    for i, geom in enumerate(cinor.geometry[:3]):
        lat, lon = interieur(geom)
        rows.append(f"P{i};A{i};sante;{lat:.6f};{lon:.6f}")
    src = tmp_path / "reunion.csv"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "rapport.html"
    res = runner.invoke(app, ["report", str(src), "-o", str(out), "--territoire", CINOR])
    assert res.exit_code == 0, res.output
    text = _text(_decoded(out.read_text(encoding="utf-8")))
    assert "distances en projection UTM du territoire, EPSG:2975" in text
    assert "Éligible — dans un QPV de la CA Intercommunale du Nord de la Réunion (CINOR)" in text
    assert "3 / " in text and "Lambert-93" not in text
    assert "hors du territoire" not in text  # every site is on the map


def test_batch_files_of_another_territory(tmp_path, lyon_csv) -> None:
    """The XLSX (sites, synthesis) and the summary speak of Lyon; read back, the statuses
    are codes again and the labels Lyon's; a SEM run's summary keeps its keys."""
    import json

    import openpyxl

    from qpv_geo.batch import read_validated

    src, _ = lyon_csv
    named = tmp_path / "sites.csv"  # columns not named like the outputs' lat/lon
    text = src.read_text(encoding="utf-8").splitlines()
    named.write_text("\n".join(["Structure;Intitulé;Priorité;Latitude;Longitude", *text[1:]])
                     + "\n", encoding="utf-8")
    out = tmp_path / "r.xlsx"
    res = runner.invoke(app, ["batch", str(named), "-o", str(out), "-q", "--territoire", LYON])
    assert res.exit_code == 0, res.output
    cells = [str(v) for ws in openpyxl.load_workbook(out).worksheets
             for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    assert "Éligible — dans un QPV de la Métropole de Lyon" in cells
    assert not [c for c in cells if _SEM_WORDS.search(c)]
    summary = json.loads((tmp_path / "r-xlsx-synthese.json").read_text(encoding="utf-8"))
    assert summary["territoire"] == "Métropole de Lyon"
    back = read_validated(out)
    assert set(back["status"]) == {"eligible"}
    assert set(back["statut_libelle"]) == {"Éligible — dans un QPV de la Métropole de Lyon"}
    res = runner.invoke(app, ["batch", str(named), "-o", str(tmp_path / "s.csv"), "-q"])
    assert res.exit_code == 0, res.output
    sem = json.loads((tmp_path / "s-synthese.json").read_text(encoding="utf-8"))
    assert "territoire" not in sem and "statuts_libelles" not in sem


def test_data_info_and_export_territoire(tmp_path) -> None:
    import json

    res = runner.invoke(app, ["data", "info", "--territoire", LYON])
    assert res.exit_code == 0, res.output
    n = int((qpv_france()[0]["siren_epci"] == LYON).sum())
    assert f"Territoire : Métropole de Lyon ({n} QPV)" in res.output
    assert f"{n} utilisés" in res.output
    out = tmp_path / "qpv.geojson"
    res = runner.invoke(app, ["data", "export", "--layer", "qpv", "-o", str(out),
                              "--territoire", LYON])
    assert res.exit_code == 0, res.output
    assert len(json.loads(out.read_text(encoding="utf-8"))["features"]) == n
    for command in ("serve", "map", "report"):
        assert "--territoire" in runner.invoke(app, [command, "--help"]).output


def test_registre_and_fiche_of_another_territory(tmp_path, lyon_csv) -> None:
    """The register of another territory: its sites' labels and their instruction sheet (map
    legend, caption) speak of it; no street credit where no street is drawn."""
    from qpv_geo.register import Registre
    from qpv_geo.register.fiche import fiche_html

    src, _ = lyon_csv
    rows = src.read_text(encoding="utf-8").splitlines()
    sites = tmp_path / "sites.csv"
    sites.write_text("\n".join([rows[0] + ";Dossier", *(f"{r};D{i}" for i, r in
                                                       enumerate(rows[1:3]))]) + "\n",
                     encoding="utf-8")
    settings = Settings.from_env(data_dir=tmp_path / "donnees", annee_appel=2026,
                                 territoire=LYON, annuaire_url="http://127.0.0.1:9")
    with Registre(settings=settings) as reg:
        reg.importer(sites, annuaire=False)
        states = reg.sites()
        assert states and all("Métropole de Lyon" in s.final_libelle for s in states)
        page = fiche_html(reg, states[0].site_id)
    text = _text(page)
    assert "Éligible — dans un QPV de la Métropole de Lyon" in text
    assert "sans rues ici" in text and "OpenStreetMap" not in text
    assert "Lieu de l'action dans un QPV de la Métropole de Lyon" in text  # the criterion
    assert not _SEM_WORDS.search(text), _SEM_WORDS.search(text)


def test_xlsx_with_input_lat_lon_reads_back_for_map(tmp_path, lyon_csv) -> None:
    """An input whose columns are named « lat »/« lon » like the outputs: its XLSX result
    reads back (the input's columns as « lat (source) ») and makes a map, no traceback."""
    from qpv_geo.batch import read_validated

    src, _ = lyon_csv
    out = tmp_path / "r.xlsx"
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q", "--territoire", LYON])
    assert res.exit_code == 0, res.output
    back = read_validated(out)
    assert back.columns.is_unique and {"lat", "lat (source)"} <= set(back.columns)
    assert (back["lat"].round(5) == back["lat (source)"].astype(float).round(5)).all()
    res = runner.invoke(app, ["map", str(out), "-o", str(tmp_path / "c.html"), "--tiles",
                              "none", "--territoire", LYON])
    assert res.exit_code == 0, res.output


def test_addresses_of_another_territory_are_judged_there(tmp_path) -> None:
    """« commune written outside the territory » is judged for the territory given: a Lyon
    address under --territoire Lyon is geocoded and judged (not « hors Saint-Étienne
    Métropole »), a Saint-Étienne address is « hors de la Métropole de Lyon »; SEM unchanged."""
    import json

    from qpv_geo.geocoding import _file_covers, geocoder_from_settings
    from tests.fake_ban import KNOWN, FakeBan, _add, _norm

    gdf, _ = qpv_france()
    qpv = gdf[gdf["siren_epci"] == LYON].iloc[0]
    lat, lon = interieur(qpv.geometry, 40.0)
    text = "10 rue de la République 69001 Lyon"
    _add(text, lon, lat, label="10 Rue de la République 69001 Lyon", score=0.95,
         type="housenumber", citycode="69381", postcode="69001", housenumber="10",
         street="Rue de la République", city="Lyon", name="10 Rue de la République")
    fake = FakeBan().start()
    try:
        common = {"geocoder": "ban", "ban_url": fake.url, "ban_rate_limit": 1000,
                  "cache_dir": tmp_path / "cache"}
        lyon = geocoder_from_settings(Settings.from_env(territoire=LYON, **common))
        assert lyon.territoire is not None and lyon.territoire.nom == "Métropole de Lyon"
        res = lyon.geocode(text)
        assert res.found and res.hors_territoire is None and res.citycode == "69381"
        sem_address = lyon.geocode("8 boulevard Jules Janin 42000 Saint-Etienne")
        assert sem_address.hors_territoire and "hors de la Métropole de Lyon" in \
            sem_address.hors_territoire
        sem = geocoder_from_settings(Settings.from_env(**common))
        assert "hors Saint-Étienne Métropole" in (sem.geocode(text).hors_territoire or "")
        res = runner.invoke(app, ["check", text, "--territoire", LYON, "--json"],
                            env={"QPV_GEO_GEOCODER": "ban", "QPV_GEO_BAN_URL": fake.url,
                                 "QPV_GEO_CACHE_DIR": str(tmp_path / "cache2")})
        assert res.exit_code == 0, res.output
        verdict = json.loads(res.output)
        assert verdict["status"] == "eligible" and verdict["code_qp"] == qpv["code_qp"]
    finally:
        fake.stop()
        KNOWN.pop(_norm(text), None)
    assert not _file_covers(resolve_territoire(LYON))
    assert not _file_covers(resolve_territoire("france"))
    assert _file_covers(resolve_territoire("42218")) and _file_covers(None)


def test_outputs_of_a_territory_without_qpv(tmp_path) -> None:
    """A commune with no QPV (L'Abergement-Clémenciat): the map and the report are written
    and say there is nothing to cover — no trace."""
    src = tmp_path / "sites.csv"
    src.write_text("porteur;action;priorite;lat;lon\nA;B;mobilite;46.15;4.92\n",
                   encoding="utf-8")
    for command, out in (("map", "carte.html"), ("report", "rapport.html")):
        res = runner.invoke(app, [command, str(src), "-o", str(tmp_path / out), "--tiles",
                                  "none", "--territoire", "01001"])
        assert res.exit_code == 0, res.output
    text = _text(_decoded((tmp_path / "rapport.html").read_text(encoding="utf-8")))
    assert "L'Abergement-Clémenciat" in text and "0 QPV" in text


def test_territory_geocoder_does_not_leak_into_sem() -> None:
    """The local geocoder is one shared loaded instance: a territory's geocoder must not
    change SEM's (a Saint-Étienne address became « hors de la Métropole de Lyon » for SEM)."""
    from qpv_geo.geocoding import geocoder_from_settings

    lyon = geocoder_from_settings(Settings.from_env(territoire=LYON, geocoder="demo"))
    sem = geocoder_from_settings(Settings.from_env(geocoder="demo"))
    assert lyon.territoire is not None and sem.territoire is None
    assert lyon is not sem
