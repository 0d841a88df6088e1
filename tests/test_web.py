"""The web layer: JSON API, server-rendered pages, caps, escaping, headers, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from html import escape as html_escape

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    # Starlette announces a future switch of its test client to httpx2; nothing to do here.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from qpv_geo.reference.layers import NOTE_EXTRAIT
from qpv_geo.settings import Settings
from qpv_geo.web import create_app

MAX_ITEMS = 5
MAX_UPLOAD_MB = 0.05  # 50 kB: small enough to test the cap cheaply


@pytest.fixture(scope="module")
def client():
    settings = Settings.from_env(max_batch_items=MAX_ITEMS, max_upload_mb=MAX_UPLOAD_MB)
    with TestClient(create_app(settings)) as c:
        yield c



def demo_address_in_qpv(engine, code_qp: str = "QN04213M") -> tuple[str, float, float]:
    """(address, lat, lon) of a row of the shipped demonstration address file (BAN CSV
    format) lying more than 60 m inside the QPV ``code_qp``."""
    import pandas as pd

    from qpv_geo.geocoding import demo_adresses_path

    rows = pd.read_csv(demo_adresses_path(), sep=";", dtype=str)
    frame = engine.judge_lonlat(rows["lon"].astype(float).to_numpy(),
                                rows["lat"].astype(float).to_numpy())
    ok = ((frame["status"] == "eligible") & (frame["code_qp"] == code_qp)
          & (frame["distance_bord_m"] > 60)).to_numpy()
    row = rows[ok & rows["rep"].isna().to_numpy()].iloc[0]
    text = f"{row['numero']} {row['nom_voie']} {row['code_postal']} {row['nom_commune']}"
    return text, float(row["lat"]), float(row["lon"])


# A point of Saint-Étienne in no QPV (687 m from QN04214M), and one in Lyon.
HORS_QPV = (45.4561, 4.4067)
LYON = (45.7640, 4.8357)


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"erreur", "conseil"}
    for word in words:
        assert word in body["erreur"] + " " + (body["conseil"] or "")
    assert "Traceback" not in response.text
    return body


# --------------------------------------------------------------------------- single verdicts

def test_point_inside_a_qpv_is_eligible_with_its_code(client, inside) -> None:
    lat, lon = inside
    r = client.get("/api/v1/verdict", params={"lat": lat, "lon": lon})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["status"] == "eligible" and v["eligible"] is True
    assert v["code_qp"] == "QN04213M" and v["lib_qp"] == "Montreynaud"
    assert v["insee_com"] == "42218" and v["distance_bord_m"] > 25
    assert "extrait exact ANCT" in v["donnees"]
    assert any(NOTE_EXTRAIT in n for n in v["notes"])
    assert v["demo"] is False and v["geocodage"] is None and v["verifie_le"]


def test_point_in_sem_outside_every_qpv(client) -> None:
    lat, lon = HORS_QPV
    v = client.get("/api/v1/verdict", params={"lat": lat, "lon": lon}).json()
    assert v["status"] == "hors_qpv" and v["eligible"] is False and v["code_qp"] is None
    assert v["code_qp_proche"] == "QN04214M" and 600 < v["distance_qp_proche_m"] < 800
    assert v["distance_bord_m"] < 0


def test_point_outside_sem(client) -> None:
    lat, lon = LYON
    v = client.get("/api/v1/verdict", params={"lat": lat, "lon": lon}).json()
    assert v["status"] == "hors_territoire" and not v["eligible"]


@pytest.mark.parametrize(("params", "words"), [
    ({"lat": 200, "lon": 4.4}, ["impossibles"]),
    ({"lat": 4.39, "lon": 45.44}, ["inversées", "latitude ≈ 45,4"]),
    ({"lat": 6480000, "lon": 808000}, ["Lambert-93"]),
    ({"lat": 45.4}, ["lat et lon"]),
    ({}, ["adresse"]),
    ({"adresse": "1 rue X", "lat": 45.4, "lon": 4.4}, ["pas les deux"]),
])
def test_unusable_coordinates_are_400_json(client, params, words) -> None:
    assert_error(client.get("/api/v1/verdict", params=params), 400, *words)


def test_malformed_requests_are_422_in_french(client) -> None:
    assert_error(client.get("/api/v1/verdict", params={"lat": "abc", "lon": "4.4"}), 422,
                 "lat : nombre attendu")
    assert_error(client.get("/api/v1/perimetres", params={"lat": 100, "lon": 4.4}), 422,
                 "lat : valeur trop grande")
    assert_error(client.post("/api/v1/verdicts", content=b"{pas du json",
                             headers={"content-type": "application/json"}), 422, "JSON invalide")


def test_unknown_api_route_is_404_json_and_page_is_html(client) -> None:
    assert_error(client.get("/api/v1/rien"), 404, "introuvable")
    r = client.get("/rien")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "introuvable" in r.text


def test_unexpected_error_is_500_json_without_internals(inside, monkeypatch) -> None:
    app = create_app(Settings.from_env())

    def broken(*args, **kwargs):
        raise RuntimeError("détail interne secret /srv/qpv")

    monkeypatch.setattr(app.state.services, "verdict_for_point", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/verdict", params={"lat": inside[0], "lon": inside[1]})
    body = assert_error(r, 500, "Erreur interne")
    assert "secret" not in r.text and "RuntimeError" not in r.text and body["conseil"]


def test_geocoder_unavailable_is_503(client, monkeypatch) -> None:
    from qpv_geo.exceptions import GeocoderUnavailable

    def down():
        raise GeocoderUnavailable("Service de géocodage injoignable.",
                                  hint="Réessayez plus tard ou donnez lat/lon.")

    monkeypatch.setattr(client.app.state.services, "geocoder", down)
    assert_error(client.get("/api/v1/verdict", params={"adresse": "3 rue de la Paix"}), 503,
                 "injoignable", "lat/lon")
    assert_error(client.get("/api/v1/suggestions", params={"q": "3 rue de la"}), 503)
    # The page says the same words, with the status code.
    r = client.get("/", params={"adresse": "3 rue de la Paix"})
    assert r.status_code == 503 and "injoignable" in r.text and "lat/lon" in r.text


# --------------------------------------------------------------------------- batch API

def test_batch_keeps_order_ids_and_counts(client, inside) -> None:
    lieux = [
        {"id": "a", "lat": inside[0], "lon": inside[1]},
        {"id": "b", "lat": HORS_QPV[0], "lon": HORS_QPV[1]},
        {"id": "c", "lat": 4.39, "lon": 45.44},  # swapped: a row status, not an error
        {"id": "d"},
    ]
    r = client.post("/api/v1/verdicts", json={"lieux": lieux})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["resultats"]] == ["a", "b", "c", "d"]
    assert [x["status"] for x in body["resultats"]] == [
        "eligible", "hors_qpv", "non_geocode", "non_geocode"]
    assert body["resultats"][0]["code_qp"] == "QN04213M"
    assert any("inversées" in m for m in body["resultats"][2]["motifs"])
    assert any("adresse, ou lat et lon" in m for m in body["resultats"][3]["motifs"])
    assert body["resume"]["eligible"] == 1 and body["resume"]["non_geocode"] == 2
    assert sum(body["resume"].values()) == 4 and NOTE_EXTRAIT in body["notes"][0]


def test_batch_length_is_capped(client) -> None:
    lieux = [{"lat": HORS_QPV[0], "lon": HORS_QPV[1]}] * (MAX_ITEMS + 1)
    assert_error(client.post("/api/v1/verdicts", json={"lieux": lieux}), 413,
                 f"au plus {MAX_ITEMS}", "/lot")
    ok = client.post("/api/v1/verdicts", json={"lieux": lieux[:MAX_ITEMS]})
    assert ok.status_code == 200 and len(ok.json()["resultats"]) == MAX_ITEMS


def test_json_body_size_is_capped_even_without_content_length(client) -> None:
    big = json.dumps({"lieux": [{"id": "x" * 90, "adresse": "y" * 290}] * 400}).encode()
    assert_error(client.post("/api/v1/verdicts", content=big,
                             headers={"content-type": "application/json"}), 413, "volumineuse")

    def chunks():
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    assert_error(client.post("/api/v1/verdicts", content=chunks(),
                             headers={"content-type": "application/json"}), 413, "volumineuse")


def test_batch_rejects_unknown_fields(client) -> None:
    assert_error(client.post("/api/v1/verdicts", json={"lieux": [{"latitude": 45.4}]}), 422)


# --------------------------------------------------------------------------- other endpoints

def test_donnees_gives_versions_without_server_paths(client) -> None:
    r = client.get("/api/v1/donnees")
    assert r.status_code == 200
    d = r.json()
    assert d["simplifiee"] is False and "sha256:" in d["version"]
    assert any(NOTE_EXTRAIT in n for n in d["notes"])
    assert d["couches"]["qpv"]["sha256"] and d["couches"]["qpv"]["features"] > 0
    assert all("path" not in c for c in d["couches"].values())
    assert "/" not in json.dumps(d["couches"]["qpv"]["sha256"])


def test_perimetres_near_a_point(client, inside) -> None:
    r = client.get("/api/v1/perimetres", params={"lat": inside[0], "lon": inside[1],
                                                  "rayon_m": 1500})
    assert r.status_code == 200
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    kinds = {(f["properties"]["type"], f["properties"]["code"]) for f in fc["features"]}
    assert ("qpv", "QN04213M") in kinds and ("commune", "42218") in kinds
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in fc["features"])
    far = client.get("/api/v1/perimetres", params={"lat": 48.85, "lon": 2.35}).json()
    assert far["features"] == []


def test_short_suggestion_query_needs_no_geocoder(client) -> None:
    r = client.get("/api/v1/suggestions", params={"q": "ab"})
    assert r.status_code == 200 and r.json() == {"suggestions": [], "methode": "aucune"}


def test_openapi_schema_documents_models_and_errors(client) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/api/v1/verdict", "/api/v1/verdicts", "/api/v1/donnees",
                 "/api/v1/suggestions", "/api/v1/perimetres"):
        assert path in schema["paths"]
    verdict = schema["paths"]["/api/v1/verdict"]["get"]["responses"]
    assert verdict["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Erreur")
    assert verdict["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Erreur")
    assert "/" not in schema["paths"] and "/lot" not in schema["paths"]


def test_security_headers_on_pages_and_api(client) -> None:
    for url in ("/", "/api/v1/donnees", "/static/app.js", "/api/v1/rien"):
        h = client.get(url).headers
        assert "default-src 'self'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"


# --------------------------------------------------------------------------- pages

def test_page_without_javascript_renders_the_verdict(client, inside) -> None:
    lat, lon = inside
    r = client.get("/", params={"lat": f"{lat:.6f}".replace(".", ","), "lon": f"{lon:.6f}"})
    assert r.status_code == 200
    html = r.text
    assert 'lang="fr"' in html and 'id="verdict"' in html
    assert "Éligible" in html and "QN04213M — Montreynaud" in html
    assert html_escape(NOTE_EXTRAIT) in html and "sha256:" in html
    assert "Vérifié le" in html and "Attestation" in html
    assert 'data-code-qp="QN04213M"' in html
    # Everything the page loads comes from the app itself (no CDN).
    assert "http://" not in html.split("<footer")[0].replace("http://127.0.0.1", "")
    assert "https://" not in html


def test_page_shows_coordinate_errors_with_hint(client) -> None:
    r = client.get("/", params={"lat": "4.39", "lon": "45.44"})
    assert r.status_code == 400 and 'role="alert"' in r.text and "inversées" in r.text
    r = client.get("/", params={"lat": "quarante", "lon": "4.4"})
    assert r.status_code == 400 and "pas un nombre" in r.text


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_user_strings_are_escaped_in_pages(client) -> None:
    r = client.get("/", params={"lat": XSS, "lon": "4.4"})
    assert XSS not in r.text and "<script>alert" not in r.text
    assert "&lt;script&gt;" in r.text  # the echoed value, escaped
    r = client.get("/", params={"adresse": XSS})
    assert "<script>alert" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert" in r.text


def test_page_lot_form(client) -> None:
    r = client.get("/lot")
    assert r.status_code == 200 and 'enctype="multipart/form-data"' in r.text
    assert 'type="file"' in r.text and "Mo au plus" in r.text


def test_upload_over_the_cap_is_413_while_streaming(client) -> None:
    payload = b"adresse;porteur\n" + b"1 rue de la Paix 42000 Saint-Etienne;asso\n" * 3000
    assert len(payload) > MAX_UPLOAD_MB * 1_000_000 * 2
    files = {"fichier": ("gros.csv", payload, "text/csv")}
    r = client.post("/lot", files=files)
    assert r.status_code == 413 and "la limite est de 50 ko" in r.text
    # the way out, in the words of the page (never a command: issue 23.3)
    assert "administrateur de qpv-geo" in r.text and "qpv-geo batch" not in r.text
    # Same without a Content-Length: the cap is enforced on the streamed bytes.
    boundary = "qpvgeotest"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; "
            f"filename=\"gros.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + payload \
        + f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        for i in range(0, len(body), 16384):
            yield body[i:i + 16384]

    r = client.post("/lot", content=chunks(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "trop volumineux" in r.text


def test_upload_of_an_unsupported_format_says_what_to_do(client) -> None:
    r = client.post("/lot", files={"fichier": ("notes.pdf", b"%PDF-1.4", "application/pdf")})
    assert r.status_code == 400 and "non pris en charge" in r.text and "XLSX" in r.text
    r = client.post("/lot", data={"feuille": "x"})
    assert r.status_code == 400 and "Aucun fichier" in r.text


def test_stale_result_link_is_a_clear_error(client) -> None:
    r = client.get("/lot/resultat/abcdefghijklmnop/0")
    assert r.status_code == 400 and "plus disponible" in r.text
    assert client.get("/lot/resultat/..%2F..%2Fetc/0").status_code == 404


# --------------------------------------------------------------------------- packaging

def test_importing_the_package_and_cli_does_not_import_fastapi() -> None:
    code = ("import sys, qpv_geo, qpv_geo.cli, qpv_geo.web; "
            "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


# --------------------------------------------------------------------------- suggestions logic

class _Result:
    """The attributes of a GeocodeResult the suggestions endpoint reads."""

    def __init__(self, label, lon=4.39, lat=45.44, found=True):
        self.query, self.label, self.lon, self.lat, self.found = label, label, lon, lat, found
        self.score, self.precision, self.citycode, self.postcode = 0.9, "housenumber", "42218", \
            "42000"
        self.source, self.motif = "test", None


class _Suggesting:
    def __init__(self):
        self.calls = []

    def suggest(self, prefix, limit=8):
        self.calls.append((prefix, limit))
        return [_Result("1 Rue A 42000 Saint-Étienne"), _Result("1 Rue A 42000 Saint-Étienne"),
                _Result("pas trouvé", found=False), _Result("3 Rue <b>B</b> 42100 Saint-Étienne")]


class _GeocodeOnly:
    def geocode(self, query):
        return _Result(f"{query.upper()} 42000 Saint-Étienne")


def test_suggestions_use_suggest_dedupe_and_drop_misses(client, monkeypatch) -> None:
    fake = _Suggesting()
    monkeypatch.setattr(client.app.state.services, "geocoder", lambda: fake)
    r = client.get("/api/v1/suggestions", params={"q": "  1 rue a ", "limite": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["methode"] == "suggest" and fake.calls == [("1 rue a", 3)]
    assert [s["label"] for s in body["suggestions"]] == [
        "1 Rue A 42000 Saint-Étienne", "3 Rue <b>B</b> 42100 Saint-Étienne"]
    assert_error(client.get("/api/v1/suggestions", params={"q": "1 rue", "limite": 50}), 422)


def test_suggestions_fall_back_to_the_top_geocoding_result(client, monkeypatch) -> None:
    monkeypatch.setattr(client.app.state.services, "geocoder", lambda: _GeocodeOnly())
    body = client.get("/api/v1/suggestions", params={"q": "rue b"}).json()
    assert body == {"methode": "geocode", "suggestions": [{
        "label": "RUE B 42000 Saint-Étienne", "lon": 4.39, "lat": 45.44, "score": 0.9,
        "precision": "housenumber", "citycode": "42218", "postcode": "42000"}]}


# --------------------------------------------------------------------------- addresses (local)

@pytest.fixture(scope="module")
def demo_address(engine) -> tuple[str, float, float]:
    return demo_address_in_qpv(engine)


def test_address_verdict_with_the_local_demo_geocoder(client, demo_address) -> None:
    text, lat, lon = demo_address
    r = client.get("/api/v1/verdict", params={"adresse": text})
    assert r.status_code == 200, r.text
    v = r.json()
    geo = v["geocodage"]
    assert geo["trouve"] and geo["label"] == text and geo["source"] == "local-demo"
    assert geo["precision"] == "housenumber" and geo["precision_libelle"] == "au numéro"
    assert abs(v["lat"] - lat) < 1e-5 and abs(v["lon"] - lon) < 1e-5
    # The point is 60+ m inside: eligible, or « à vérifier » if the engine distrusts demo
    # addresses; either way the quartier is named and the demo is marked.
    assert v["status"] in ("eligible", "a_verifier") and v["code_qp"] == "QN04213M"
    assert v["demo"] is True and any("DÉMONSTRATION" in n for n in v["notes"])
    assert any("démonstration" in m.lower() for m in v["motifs"])


def test_address_verdict_is_the_batch_item_without_a_thread_hop(client, demo_address,
                                                               monkeypatch) -> None:
    """The local geocoder answers from memory: the address is judged on the event loop (at 32
    connections a thread-pool hop per request made the p99), with the batch's answer."""
    import qpv_geo.web.app as web_app

    def no_thread(*args, **kwargs):
        raise AssertionError("thread-pool hop for an address the local geocoder answers")

    text = demo_address[0]
    batch = client.post("/api/v1/verdicts", json={"lieux": [{"id": "a", "adresse": text}]})
    monkeypatch.setattr(web_app, "run_in_threadpool", no_thread)
    one = client.get("/api/v1/verdict", params={"adresse": text})
    assert one.status_code == 200, one.text
    item = batch.json()["resultats"][0]
    got = one.json()
    for v in (item, got):
        v.pop("verifie_le", None)
    item.pop("id")
    assert got == item


def test_unknown_address_is_404_with_the_reason(client) -> None:
    assert_error(client.get("/api/v1/verdict", params={"adresse": "zzzz qqqq wwww"}), 404,
                 "introuvable", "zzzz qqqq wwww", "lat/lon")
    assert_error(client.get("/api/v1/verdict", params={"adresse": "   "}), 400, "vide")


def test_real_suggestions_find_the_typed_address(client, demo_address) -> None:
    text = demo_address[0]
    body = client.get("/api/v1/suggestions", params={"q": text}).json()
    assert body["methode"] == "suggest"
    assert text in [s["label"] for s in body["suggestions"]]


def test_batch_mixes_addresses_and_points(client, demo_address, inside) -> None:
    lieux = [{"id": "adr", "adresse": demo_address[0]},
             {"id": "pt", "lat": inside[0], "lon": inside[1]},
             {"id": "inconnue", "adresse": "zzzz qqqq wwww"},
             {"id": "deux", "adresse": "x", "lat": 45.4, "lon": 4.4}]
    body = client.post("/api/v1/verdicts", json={"lieux": lieux}).json()
    res = {x["id"]: x for x in body["resultats"]}
    assert [x["id"] for x in body["resultats"]] == ["adr", "pt", "inconnue", "deux"]
    assert res["adr"]["code_qp"] == "QN04213M" and res["adr"]["geocodage"]["trouve"]
    assert res["pt"]["status"] == "eligible" and res["pt"]["geocodage"] is None
    assert res["inconnue"]["status"] == "non_geocode"
    assert not res["inconnue"]["geocodage"]["trouve"]
    assert res["deux"]["status"] == "non_geocode" and "pas les deux" in res["deux"]["motifs"][0]
    assert body["notes"][0].startswith("DÉMONSTRATION")


def test_address_page_shows_geocoding_and_demo_mark(client, demo_address) -> None:
    r = client.get("/", params={"adresse": demo_address[0]})
    assert r.status_code == 200
    html = r.text
    assert ("À vérifier" in html or "Éligible" in html) and "QN04213M — Montreynaud" in html
    assert "Adresse retenue" in html and "au numéro (source : fichier de démonstration)" in html
    # words, not codes (issue 23.4): no raw precision, source or unexplained score
    page_text = _text(html)
    for code in ("housenumber", "local-demo", "score 1.00", "precision_point", "coordonnees"):
        assert code not in page_text, code
    assert 'class="demo"' in html and "DÉMONSTRATION" in html


# --------------------------------------------------------------------------- /lot (batch.py)

def _lot_dirs() -> set[str]:
    import tempfile
    from pathlib import Path

    return {p.name for p in Path(tempfile.gettempdir()).glob("qpv-geo-lot-*")}


def test_lot_validates_a_csv_escapes_it_and_cleans_up(client, demo_address) -> None:
    pytest.importorskip("qpv_geo.batch")
    before = _lot_dirs()
    csv_text = ("porteur;adresse\n"
                f"{XSS};{demo_address[0]}\n"
                "Asso B;zzzz qqqq wwww\n")
    r = client.post("/lot", files={"fichier": ("../../etc/passwd.csv",
                                                csv_text.encode("utf-8"), "text/csv")})
    assert r.status_code == 200, r.text
    html = r.text
    assert "passwd.csv vérifié : 2 lignes" in html and 'class="demo"' in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html  # the porteur, shown escaped in the preview
    assert "QN04213M" in html
    link = html.split('href="/lot/resultat/')[1].split('"')[0]
    assert "passwd-verdicts.csv" in html and ".." not in link
    download = client.get("/lot/resultat/" + link)
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert [r["porteur"] for r in rows] == [XSS, "Asso B"]  # kept as typed (not HTML)
    assert rows[0]["code_qp"] == "QN04213M"
    assert _lot_dirs() == before  # the temporary directory is gone


def test_lot_unreadable_file_shows_message_and_hint(client) -> None:
    pytest.importorskip("qpv_geo.batch")
    r = client.post("/lot", files={"fichier": ("actions.xlsx", b"ceci n'est pas un xlsx",
                                               "application/octet-stream")})
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert 'class="conseil"' in r.text  # InputFileError's hint, shown


def _text(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_lot_results_are_tables_of_words_not_python_data(client, demo_address) -> None:
    pytest.importorskip("qpv_geo.batch")
    csv_text = ("Porteur;Action;Adresse;Priorité\n"
                f"Asso A;Atelier CV;{demo_address[0]};Mobilité\n"
                "Asso B;Job dating;zzzz qqqq wwww;Emploi\n")
    r = client.post("/lot", files={"fichier": ("Appel été 2025.csv", csv_text.encode("utf-8"),
                                                "text/csv")})
    assert r.status_code == 200, r.text
    text = _text(r.text)
    for raw in ("{'", "'lib_qp'", "None", "par_statut", "a_revoir", "[", "entree"):
        assert raw not in text, raw
    assert "Appel été 2025.csv vérifié : 2 lignes" in text
    for heading in ("Par statut", "Par QPV", "Par priorité", "Lignes à revoir (1)", "Aperçu"):
        assert heading in text, heading
    assert "QN04213M Montreynaud 1 1" in text  # code, quartier, sites, éligibles
    assert "Non localisé Asso B Job dating zzzz qqqq wwww" in text  # row to review, in words
    # Verdicts carry their colour class AND their words.
    assert '<span class="statut statut-eligible">Éligible</span>' in r.text
    assert '<span class="statut statut-non_geocode">Non localisé</span>' in r.text
    # Downloads named after the person's file, the same stem for all of them.
    names = [n.split("<")[0] for n in r.text.split("Télécharger ")[1:]]
    assert names[0] == "Appel_été_2025-verdicts.csv", names
    assert all(n.startswith("Appel_été_2025-verdicts") for n in names), names
    link = r.text.split('href="/lot/resultat/')[1].split('"')[0]
    disposition = client.get("/lot/resultat/" + link).headers["content-disposition"]
    assert "filename*=UTF-8''Appel_%C3%A9t%C3%A9_2025-verdicts.csv" in disposition


def test_lot_column_picker_shows_the_mapping_and_reruns_with_another(client,
                                                                    demo_address) -> None:
    pytest.importorskip("qpv_geo.batch")
    csv_text = ("Porteur;Endroit;Commentaire\n"
                f"Asso A;{demo_address[0]};à revoir\n")
    r = client.post("/lot", files={"fichier": ("sites.csv", csv_text.encode("utf-8"),
                                                "text/csv")})
    # No address column recognised: the error names the person's file and the page's
    # controls, never a command-line option, and the picker is there to fix it.
    assert r.status_code == 400
    text = _text(r.text)
    assert "sites.csv" in text and "--col" not in text and "entree" not in text
    assert "qpv-geo" not in text.split("Données :")[0]
    assert "Relancer avec ces colonnes" in text
    assert '<option value="Porteur" selected>' in r.text  # detected porteur, preselected
    source = r.text.split('name="source" value="')[1].split('"')[0]
    jeton = r.text.split('name="jeton" value="')[1].split('"')[0]
    r = client.post("/lot", data={"source": source, "jeton": jeton, "col_adresse": "Endroit",
                                  "col_porteur": "Porteur"})
    assert r.status_code == 200, _text(r.text)
    text = _text(r.text)
    assert "sites.csv vérifié : 1 ligne" in text and "QN04213M" in text
    assert '<option value="Endroit" selected>' in r.text
    # A column that is not in the file: French, about the file, picker still there.
    r = client.post("/lot", data={"source": source, "jeton": jeton, "col_adresse": "Nope"})
    assert r.status_code == 400 and "Nope" in _text(r.text) and "--col" not in r.text
    assert "Relancer avec ces colonnes" in r.text
    # A forgotten source: say so, do not crash.
    r = client.post("/lot", data={"source": "x" * 24, "jeton": jeton, "col_adresse": "A"})
    assert r.status_code == 400 and "Déposez-le à nouveau" in r.text


def test_lot_errors_speak_of_the_users_file(client) -> None:
    pytest.importorskip("qpv_geo.batch")
    r = client.post("/lot", files={"fichier": ("Mon appel.csv", b"", "text/csv")})
    assert r.status_code == 400 and "Mon appel.csv" in r.text
    r = client.post("/lot", files={"fichier": ("Mon appel.xlsx", b"pas un classeur",
                                               "application/octet-stream")})
    assert r.status_code == 400 and "Mon appel.xlsx" in r.text and "entree" not in r.text
    assert "--" not in _text(r.text).split("Données :")[0]


def test_streets_api_is_compact_geojson_with_its_attribution(client, montreynaud) -> None:
    r = client.get("/api/v1/voies", params={"lat": montreynaud["lat"],
                                            "lon": montreynaud["lon"], "rayon_m": 800})
    assert r.status_code == 200
    data = r.json()  # strict JSON: a nameless road is null, never NaN
    assert "NaN" not in r.text
    assert data["type"] == "FeatureCollection" and len(data["features"]) > 20
    assert "OpenStreetMap" in data["attribution"] and "ODbL" in data["attribution"]
    assert data["couverture"] == "rues : Saint-Étienne seulement"
    assert {f["properties"]["c"] for f in data["features"]} <= {0, 1, 2}
    far = client.get("/api/v1/voies", params={"lat": 45.764, "lon": 4.8357}).json()
    assert far["features"] == [] and far["couverture"]
    bad = client.get("/api/v1/voies", params={"lat": 45.46, "lon": 4.39, "rayon_m": 50_000})
    assert bad.status_code == 422 and "rayon_m" in bad.json()["erreur"]
    tiny = client.get("/api/v1/voies", params={"lat": -90, "lon": -180, "rayon_m": 5e-324})
    assert tiny.status_code == 422  # found by schemathesis: an empty box crashed shapely
    assert client.get("/carte/rues.js").headers["content-type"].startswith("text/javascript")


def near_edge_in_saint_etienne(engine) -> tuple[float, float, str, str]:
    """(lat, lon, code, name) of a point 3 m from the edge of a Saint-Étienne QPV, near a
    named street of the OpenStreetMap layer (an « à vérifier » verdict)."""
    from qpv_geo.reporting.next_steps import edge_near

    ref = engine.reference
    g = ref.qpv[ref.qpv.insee_com == "42218"].to_crs(2154)
    for code, name, poly in zip(g.code_qp, g.lib_qp, g.geometry, strict=True):
        for t in (0.1, 0.4, 0.7):
            p = poly.boundary.interpolate(t, normalized=True)
            v = engine.judge_point(x=p.x + 3, y=p.y + 3)
            if v.status == "a_verifier" and edge_near(ref, code, v.lon, v.lat)["rue"]:
                return v.lat, v.lon, code, name
    raise AssertionError("no point near an edge along a named street")


def test_a_verifier_says_what_to_do_next(client, engine) -> None:
    from qpv_geo.reporting.next_steps import edge_near

    lat, lon, code, name = near_edge_in_saint_etienne(engine)
    street = edge_near(engine.reference, code, lon, lat)["rue"]
    r = client.get("/", params={"lat": f"{lat:.7f}", "lon": f"{lon:.7f}"})
    text = _text(r.text)
    assert "À vérifier" in text and "Que faire ?" in text
    steps = text.split("Que faire ?")[1].split("Quartier")[0]
    assert f"Le bord du QPV {code} — {name} passe à" in steps
    assert f"près de « {street} »" in steps and f"de quel côté de « {street} »" in steps
    assert "sig.ville.gouv.fr" in steps
    # the copied text carries the same advice
    assert "Que faire :" in r.text.split('id="texte-verdict"')[1]
    # a settled verdict has none
    assert "Que faire ?" not in client.get("/", params={"lat": "45.4561",
                                                         "lon": "4.4067"}).text


def test_the_other_side_of_an_edge_is_named() -> None:
    from qpv_geo.web._present import verdict_rows

    p = {"candidat_autre_cote": "QN04213M", "code_qp": None, "code_qp_proche": "QN04211M",
         "lib_qp_proche": "Cotonne Montferré"}
    rows = dict(verdict_rows(p, noms={"QN04213M": "Montreynaud"}))
    assert rows["Bord le plus proche"] == "QN04213M — Montreynaud"


def test_far_outside_sem_no_empty_maps_nor_empty_distance(client) -> None:
    r = client.get("/", params={"lat": "45.764", "lon": "4.8357"})  # Lyon
    text = _text(r.text)
    assert "hors territoire" in text
    assert 'id="carte"' not in r.text and "Distance au bord" not in text
    r = client.get("/", params={"lat": "45.4561", "lon": "4.4067"})  # in SEM: the maps
    assert 'id="carte"' in r.text and "Distance au bord" in _text(r.text)


def test_lot_offers_the_header_row_when_the_guess_is_doubtful(client, demo_address) -> None:
    """Issue 20.1: a title above the header is skipped, and the page lets the person pick
    another header row; the subtitle named as header gives no usable column, said with the
    row picker still there."""
    pytest.importorskip("qpv_geo.batch")
    csv_text = ("Appel à projets 2026 — lieux de réalisation;;\n"
                "Tableau à retourner avant mars — une ligne par lieu;;\n"
                "Porteur;Lieu de réalisation;Commune\n"
                f"Asso A;{demo_address[0]};Saint-Étienne\n")
    r = client.post("/lot", files={"fichier": ("appel.csv", csv_text.encode("utf-8"),
                                                "text/csv")})
    assert r.status_code == 200, _text(r.text)
    text = _text(r.text)
    assert re.search(r"appel.csv vérifié : 1 ligne\b(?!s)", text) and "QN04213M" in text
    assert "Noms de colonnes lus ligne 3" in text and "Relancer avec cette ligne" in text
    assert '<option value="3" selected>' in r.text
    source = r.text.split('name="source" value="')[1].split('"')[0]
    jeton = r.text.split('name="jeton" value="')[1].split('"')[0]
    r = client.post("/lot", data={"source": source, "jeton": jeton, "ligne_entete": "2"})
    assert '<option value="2" selected>' in r.text and "--ligne" not in r.text
    assert '<option value="4" >' in r.text  # the rows below stay offered
    assert 'id="mal-lu"' in r.text and "Fichier probablement mal lu" in _text(r.text)
    r = client.post("/lot", data={"source": source, "jeton": jeton, "ligne_entete": "3"})
    assert r.status_code == 200 and "QN04213M" in _text(r.text)
    r = client.post("/lot", data={"source": source, "jeton": jeton, "ligne_entete": "abc"})
    assert r.status_code == 400 and "tête invalide : « abc »" in _text(r.text)
