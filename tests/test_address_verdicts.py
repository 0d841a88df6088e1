"""Issue 9, end to end: the queries that gave confident wrong answers, the geocoder choice,
coordinates typed in the address field (CLI, API, batch)."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.geocoding.coordinates import parse_coordinates
from qpv_geo.settings import Settings

runner = CliRunner()


def _check(*args: str, geocoder: str = "demo") -> tuple[int, dict]:
    res = runner.invoke(app, ["check", *args, "--json", "--geocoder", geocoder])
    try:
        return res.exit_code, json.loads(res.output)
    except json.JSONDecodeError:
        return res.exit_code, {"output": res.output}


@pytest.mark.parametrize(("query", "commune"), [
    ("26 Allée des Coquelicots 69002 Lyon", "Lyon"),
    ("3 rue de la République 42300 Roanne", "Roanne"),
    ("5 place Bellecour 69002 Lyon", "Lyon"),
    ("1 rue Gambetta 42170 Saint-Just-Saint-Rambert", "Saint-Just-Saint-Rambert"),
    ("12 rue de Paris 75001 Paris", "Paris"),
])
def test_addresses_outside_sem_are_hors_territoire(query, commune):
    code, v = _check(query)
    assert code == 0, v
    assert v["status"] == "hors_territoire" and v["lib_com"] == commune
    assert v["code_qp"] is None and any(commune in m for m in v["motifs"])


@pytest.mark.parametrize("query", [
    "12 rue Balay 42000 Saint-Étienne",          # absent from the demo file
    "12 rue Jean Jaurès 42000 Saint-Étienne",    # the web form's example
    "7 rue des Licornes Bleues 42100 Saint-Étienne",
])
def test_absent_streets_are_never_confident(query):
    _code, v = _check(query)
    assert v["status"] in ("a_verifier", "non_geocode"), v


def test_pasted_gps_point_is_judged_from_its_coordinates(engine):
    expected = engine.judge_point(lon=4.39862, lat=45.46881)
    for text in ("45.46881, 4.39862", "45,46881 4,39862"):
        code, v = _check(text, geocoder="auto")  # no geocoder needed at all
        assert code in (0, 2) and v["status"] == expected.status, v
        assert v["lat"] == pytest.approx(45.46881)
    x, y = 808000, 6480000
    _code, v = _check(f"{x} {y}", geocoder="auto")
    assert v["status"] == engine.judge_point(x=x, y=y).status
    assert parse_coordinates("12 15") is None and parse_coordinates("3 rue X") is None


def test_bare_commune_gives_the_commune_not_a_street():
    res = runner.invoke(app, ["geocode", "42100 Saint-Étienne", "--json", "--geocoder", "demo"])
    data = json.loads(res.output)
    assert data["geocodage_precision"] == "municipality", data


def test_no_address_file_and_no_service_exits_2_with_instructions(monkeypatch):
    monkeypatch.setenv("QPV_GEO_GEOCODER", "auto")
    monkeypatch.setenv("QPV_GEO_TIMEOUT_S", "2")
    res = runner.invoke(app, ["check", "3 rue Victor Hugo 42000 Saint-Étienne"])
    assert res.exit_code == 2
    assert "data update --adresses" in res.output and "import-adresses" in res.output
    assert "Éligible" not in res.output and "hors QPV" not in res.output


@pytest.fixture()
def web():
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient
    from qpv_geo.web import create_app

    def make(geocoder: str):
        return TestClient(create_app(Settings.from_env(geocoder=geocoder, timeout_s=2)))
    return make


def test_api_says_which_geocoder_answers_and_503_without_one(web, engine):
    with web("demo") as c:
        d = c.get("/api/v1/donnees").json()
        assert d["demo"] is True and d["adresses_demo"] is True
        assert "DÉMONSTRATION" in d["adresses"]
        r = c.get("/api/v1/verdict", params={"adresse": "5 place Bellecour 69002 Lyon"})
        assert r.status_code == 200 and r.json()["status"] == "hors_territoire"
    with web("auto") as c:
        d = c.get("/api/v1/donnees").json()
        assert d["geocodeur"] == "ban" and d["adresses_demo"] is False
        r = c.get("/api/v1/verdict", params={"adresse": "3 rue Victor Hugo 42000 Saint-Étienne"})
        # what to do, in the web's words: the address file to ask the administrator for
        body = json.dumps(r.json(), ensure_ascii=False)
        assert r.status_code == 503 and "fichier d'adresses BAN de la Loire" in body
        assert "administrateur" in body and "data update --adresses" not in body
        r = c.get("/api/v1/verdict", params={"adresse": "45.46881, 4.39862"})
        assert r.status_code == 200
        assert r.json()["status"] == engine.judge_point(lon=4.39862, lat=45.46881).status


def test_batch_reads_coordinates_in_the_address_column(tmp_path, engine):
    from qpv_geo.batch import validate_file

    src = tmp_path / "sites.csv"
    src.write_text("nom;adresse\nA;45.46881, 4.39862\nB;808000 6480000\n", encoding="utf-8")
    settings = Settings.from_env(geocoder="auto", timeout_s=2)
    out = validate_file(src, tmp_path / "out.csv", settings=settings, progress=False).frame
    assert list(out["geocodage_source"]) == ["coordonnees", "coordonnees"]
    assert out["status"].iloc[0] == engine.judge_point(lon=4.39862, lat=45.46881).status


def test_page_says_which_address_data_answer_and_why_not(web):
    with web("demo") as c:
        html = c.get("/").text
        assert "Adresses : fichier d&#39;adresses de DÉMONSTRATION" in html or \
            "Adresses : fichier d'adresses de DÉMONSTRATION" in html
    with web("auto") as c:
        r = c.get("/", params={"adresse": "3 rue Victor Hugo 42000 Saint-Étienne"})
        assert r.status_code == 503
        assert "fichier d&#39;adresses BAN de la Loire" in r.text and "Géoplateforme" in r.text
        assert "data update --adresses" not in r.text and "--geocoder" not in r.text
        assert "verdict-titre" not in r.text


def test_batch_postcode_and_commune_columns_feed_the_rules(tmp_path):
    from qpv_geo.batch import validate_file

    src = tmp_path / "sites.csv"
    src.write_text("nom;adresse;code_postal;commune\n"
                   "A;5 place Bellecour;69002;Lyon\n"
                   "B;12 rue Balay;42000;Saint-Étienne\n"
                   "C;1 rue Gambetta;42170;\n", encoding="utf-8")
    out = validate_file(src, tmp_path / "out.csv", settings=Settings.from_env(geocoder="demo"),
                        progress=False).frame
    assert list(out["status"]) == ["hors_territoire", "a_verifier", "hors_territoire"]
    assert "Lyon" in out["motifs"].iloc[0] and "42170" in out["motifs"].iloc[2]


def test_commune_written_outside_sem_needs_no_geocoder(monkeypatch):
    # no address file, service unreachable: « … 69002 Lyon » is still hors territoire
    monkeypatch.setenv("QPV_GEO_GEOCODER", "auto")
    res = runner.invoke(app, ["check", "5 place Bellecour 69002 Lyon", "--json"])
    assert res.exit_code == 0, res.output
    v = json.loads(res.output)
    assert v["status"] == "hors_territoire" and v["lib_com"] == "Lyon"
