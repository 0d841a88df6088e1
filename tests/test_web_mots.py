"""What the web says to a person on a web page (issue 23.3, 23.4, 23.6): what to do on the
page and what to ask the administrator, never a command or an option; « Données » as a page;
words, not codes; suggestions from the first letters of the words."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from qpv_geo.geocoding.messages import CONSEILS, names_a_command, pour_le_web
from qpv_geo.settings import Settings
from qpv_geo.web import create_app

#: A command-line option or a qpv-geo command in a text a person reads.
COMMANDE = re.compile(r"qpv-geo (?:check|demo|serve|map|report|geocode|batch|data|registre)\b"
                      r"|(^|[\s(«])--[a-z]")


def _text(html: str) -> str:
    from html import unescape

    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _client(**kw) -> TestClient:
    return TestClient(create_app(Settings.from_env(**kw)))


# ------------------------------------------------------------------ one table, two wordings
def test_every_hint_has_a_web_wording_without_a_command() -> None:
    for key, conseil in CONSEILS.items():
        assert not names_a_command(conseil.web), key
        assert pour_le_web(conseil.cli) == conseil.web, key
    # the CLI keeps its words: the commands that fix the problem on the server
    from qpv_geo.geocoding.files import INSTALL_HINT

    assert "qpv-geo data update --adresses" in str(INSTALL_HINT)
    assert "--geocoder demo" in INSTALL_HINT.cli
    # a hint nobody rewrote still never reaches a page with its command
    assert not names_a_command(pour_le_web("Lancez qpv-geo data update."))


def test_no_address_service_says_what_to_do_on_the_page() -> None:
    """No address file installed and the online service unreachable (tests: a closed port):
    the page and the API said « --geocoder demo » (which ``serve`` does not take)."""
    with _client(geocoder="auto") as c:
        page = c.get("/", params={"adresse": "12 rue de la République 42000 Saint-Étienne"})
        api = c.get("/api/v1/verdict",
                    params={"adresse": "12 rue de la République 42000 Saint-Étienne"})
        verdicts = c.post("/api/v1/verdicts", json={"lieux": [{"adresse": "3 rue X 42000"}]})
    assert page.status_code == api.status_code == verdicts.status_code == 503
    text = _text(page.text)
    assert "coordonnées GPS" in text and "administrateur de qpv-geo" in text
    assert "fichier d'adresses BAN de la Loire" in text
    for body in (text, api.text, verdicts.text):
        assert not COMMANDE.search(body), COMMANDE.search(body)
    assert "administrateur" in api.json()["conseil"]


def test_lyon_address_outside_the_address_file_says_what_to_do_on_the_page() -> None:
    """Lyon with the address file of SEM: « utilisez le géocodeur en ligne (--geocoder ban) »."""
    adresse = "12 rue de la République 69002 Lyon"
    with _client(geocoder="demo", territoire="200046977") as c:
        page = c.get("/", params={"adresse": adresse})
        api = c.get("/api/v1/verdict", params={"adresse": adresse})
        many = c.post("/api/v1/verdicts", json={"lieux": [{"adresse": adresse}]}).json()
    text = _text(page.text)
    assert "Non localisé" in text and "hors du fichier d'adresses installé" in text
    assert "administrateur" in text and "coordonnées GPS" in text
    assert api.status_code == 404 and "administrateur" in api.json()["erreur"]
    for body in (text, api.text, str(many)):
        assert not COMMANDE.search(body), COMMANDE.search(body)
    # the command line keeps its option
    from qpv_geo.geocoding import geocoder_from_settings

    settings = Settings.from_env(geocoder="demo", territoire="200046977")
    motif = geocoder_from_settings(settings).geocode(adresse).motif
    assert "--geocoder ban" in motif


# ------------------------------------------------------------------ « Données »
def test_donnees_is_a_page_with_the_json_one_link_away() -> None:
    with _client() as c:
        home = c.get("/")
        page = c.get("/donnees")
        data = c.get("/api/v1/donnees").json()
    assert 'href="/donnees"' in home.text and 'href="/api/v1/donnees">Données' not in home.text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = _text(page.text)
    assert "<title>Données utilisées — Saint-Étienne Métropole</title>" in page.text
    assert 'href="/api/v1/donnees"' in page.text
    for name, layer in data["couches"].items():
        if layer["sha256"]:
            assert layer["sha256"] in page.text, name  # the whole checksum, to compare
        if layer["source"]:
            assert " ".join(layer["source"].split())[:60] in text, name
    assert data["couches"]["qpv"]["millesime"] in text
    # which geocoder answers, and that it is the demonstration file (tests: demo)
    assert "fichier d'adresses de DÉMONSTRATION" in text and "adresses sont fictives" in text
    assert not COMMANDE.search(text) and not COMMANDE.search(str(data)), COMMANDE.search(text)
    assert "à faire par l'administrateur de qpv-geo" in str(data["couches"]["qva_liste"])


# ------------------------------------------------------------------ words, not codes
def test_labels_table() -> None:
    from qpv_geo.eligibility.wording import pluriel, precision_libelle, source_libelle

    assert precision_libelle("housenumber") == "au numéro"
    assert precision_libelle("street") == "à la rue"
    assert precision_libelle("municipality") == "à la commune"
    assert source_libelle("local-demo") == "fichier de démonstration"
    assert source_libelle("local") == "fichier BAN installé"
    assert source_libelle("ban") == "service en ligne"
    assert source_libelle(None) == precision_libelle(float("nan")) == "—"
    assert [pluriel(n, "périmètre") for n in (0, 1, 2)] == [
        "0 périmètre", "1 périmètre", "2 périmètres"]


def test_street_precision_says_what_to_do_in_french() -> None:
    from qpv_geo.reporting.next_steps import next_steps

    class Ref:  # no perimeter near: only the geocoding's advice
        qpv = qva = qpv_hors_sem = ()

    steps = next_steps({"status": "a_verifier", "geocodage": {
        "trouve": True, "label": "Rue X", "precision": "street",
        "precision_libelle": "à la rue"}}, Ref())
    assert steps[0].startswith("L'adresse n'a été trouvée qu'à la rue, sans le numéro : demandez")


def test_xlsx_shows_words_and_the_csv_keeps_the_codes(tmp_path, engine) -> None:
    import openpyxl
    import pandas as pd

    from qpv_geo.batch import validate_file, write_result

    from .test_web import demo_address_in_qpv

    text, _, _ = demo_address_in_qpv(engine)
    src = tmp_path / "sites.csv"
    src.write_text(f"Porteur;Adresse\nAsso;{text}\nAsso;45.4605, 4.3871\n", encoding="utf-8")
    result = validate_file(src, tmp_path / "out.csv",
                           settings=Settings.from_env(geocoder="demo"))
    xlsx = write_result(result, tmp_path / "out.xlsx")[0]
    csv = pd.read_csv(tmp_path / "out.csv", sep=";", dtype=str)
    assert csv.loc[0, "geocodage_precision"] == "housenumber"
    assert csv.loc[0, "geocodage_source"] == "local-demo"
    ws = openpyxl.load_workbook(xlsx)["Sites"]
    headers = [c.value for c in ws[1]]
    row = [c.value for c in ws[2]]
    values = dict(zip(headers, row, strict=True))
    assert values["Précision du géocodage"] == "au numéro"
    assert values["Source du point"] == "fichier de démonstration"
    cells = " ".join(str(c.value) for r in ws.iter_rows() for c in r if c.value is not None)
    assert "housenumber" not in cells and "local-demo" not in cells
    synthese = openpyxl.load_workbook(xlsx)["Données"]
    facts = {r[0].value: r[1].value for r in synthese.iter_rows() if len(r) > 1}
    assert facts["Géocodeur"] == "fichier de démonstration"


# ------------------------------------------------------------------ suggestions
def test_suggestions_from_the_first_letters_of_the_words() -> None:
    with _client(geocoder="demo") as c:
        for q in ("rue de la répu", "rue de la republ", "Rue de la Rép"):
            got = c.get("/api/v1/suggestions", params={"q": q}).json()["suggestions"]
            labels = [s["label"] for s in got]
            assert "Rue de la République 42000 Saint-Étienne" in labels, (q, labels)
        # the number typed goes with the street when the street has it
        got = c.get("/api/v1/suggestions", params={"q": "17 bis rue de la répu"}).json()
        assert "17 bis Rue de la République 42000 Saint-Étienne" in [
            s["label"] for s in got["suggestions"]]
        # abbreviations and the commune's words count too
        got = c.get("/api/v1/suggestions", params={"q": "av jean jau"}).json()
        assert any(s["label"].startswith(("Avenue Jean Jaurès", "Rue Jean Jaurès"))
                   for s in got["suggestions"])
        assert c.get("/api/v1/suggestions", params={"q": "zzqx wwqy"}).json()[
            "suggestions"] == []


def test_suggestions_find_a_lieu_dit_by_its_start(tmp_path) -> None:
    """« Montreynaud » is a lieu-dit of the BAN (``nom_ld``), not a street of it."""
    import gzip

    from qpv_geo.geocoding import LocalGeocoder, demo_adresses_path

    with gzip.open(demo_adresses_path(), "rt", encoding="utf-8") as fh:
        header = fh.readline()
        lines = [fh.readline() for _ in range(3)]
    cols = header.rstrip("\n").split(";")
    rows = []
    for k, line in enumerate(lines):
        values = dict(zip(cols, line.rstrip("\n").split(";"), strict=True))
        values.update(id=f"42218_Y001_{k:05d}", numero=str(k + 1), nom_voie="Rue Louis Soulié",
                      code_postal="42000", code_insee="42218", nom_commune="Saint-Étienne",
                      nom_ld="Montreynaud", lon="4.4135", lat="45.4640")
        rows.append(";".join(values[c] for c in cols))
    path = tmp_path / "adresses.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    geocoder = LocalGeocoder(path, cache_dir=tmp_path / "cache")
    for q in ("Montreynaud", "montrey", "Montreynaud Saint-Étienne"):
        labels = [r.label for r in geocoder.suggest(q, limit=5)]
        assert "Montreynaud 42000 Saint-Étienne" in labels, (q, labels)
    assert geocoder.suggest("rue louis sou", limit=5)[0].label == \
        "Rue Louis Soulié 42000 Saint-Étienne"


def test_error_pages_and_api_errors_name_no_command() -> None:
    """The errors a person meets on the pages and the API: what to do, never an option."""
    with _client(geocoder="demo") as c:
        answers = [
            c.get("/", params={"lat": "abc", "lon": "4"}),
            c.get("/", params={"adresse": "zzzz qqqq wwww"}),
            c.get("/api/v1/verdict"),
            c.get("/api/v1/verdict", params={"adresse": "zzzz qqqq wwww"}),
            c.get("/page-absente"),
            c.post("/lot", files={"fichier": ("sites.xlsx", b"PK\x03\x04 pas un classeur",
                                              "application/vnd.ms-excel")}),
            c.post("/lot", files={"fichier": ("sites.csv", b"a;b\n1;2\n", "text/csv")}),
            c.get("/registre"),  # the test client is not this computer: refused
            c.post("/api/v1/verdicts", json={"lieux": [{"adresse": "x"}] * 2000}),
        ]
    for r in answers:
        assert r.status_code >= 400 or "Non localisé" in r.text, (r.url, r.status_code)
        text = _text(r.text)
        assert not COMMANDE.search(text), (r.url, COMMANDE.search(text), text[:300])


def test_lyon_without_the_online_service_is_not_told_to_install_the_loire_file() -> None:
    """The installable address file covers SEM only: Lyon's way out is the online service."""
    adresse = "12 rue de la République 69002 Lyon"
    with _client(geocoder="auto", territoire="200046977") as c:
        page = c.get("/", params={"adresse": adresse})
        api = c.get("/api/v1/verdict", params={"adresse": adresse})
    assert page.status_code == api.status_code == 503
    text = _text(page.text)
    assert "Loire" not in text and "Loire" not in api.text
    assert "service d'adresses en ligne (Géoplateforme)" in text and "coordonnées GPS" in text
    assert not COMMANDE.search(text) and not COMMANDE.search(api.text)
    from qpv_geo.geocoding import geocoder_from_settings

    hint = geocoder_from_settings(Settings.from_env(geocoder="auto", territoire="200046977")
                                  ).unavailable_hint
    assert "QPV_GEO_BAN_URL" in hint.cli  # the command line's own words


def test_the_brand_line_and_the_attestation_are_the_territory_s_words() -> None:
    """The brand line and the attestation's heading come from the territory's profile (SEM is
    one row of it, not a text of the template), with the apostrophe as typed."""
    with _client(territoire="200046977") as c:
        lyon = c.get("/", params={"lat": "45.76", "lon": "4.83"}).text
    with _client() as c:
        sem = c.get("/", params={"lat": "45.4561", "lon": "4.4067"}).text
    assert '<p class="marque">Cité de l\'emploi · Métropole de Lyon</p>' in lyon
    assert "Saint-Étienne" not in lyon
    assert "éligibilité QPV (Métropole de Lyon)</p>" in lyon
    assert '<p class="marque">Cité de l\'emploi · Saint-Étienne Métropole</p>' in sem
    assert ("Attestation de vérification — éligibilité QPV (Cité de l'emploi, "
            "Saint-Étienne Métropole)</p>") in sem
    template = (Path(create_app.__code__.co_filename).parent / "templates" / "base.html")
    assert "Saint-Étienne" not in template.read_text(encoding="utf-8")
