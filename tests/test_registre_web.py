"""The register's web pages: access (accounts with hashed passwords, loopback-only without
them), CSRF, and the whole scenario in headless Chromium (import, criteria, three decisions,
corrected file and its diff, new perimeters, re-check, decisions kept with their history)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from qpv_geo.registre import Registre
from qpv_geo.registre.comptes import compte_line, hash_password, load_comptes, verify_password
from qpv_geo.settings import Settings
from qpv_geo.web import create_app
from tests._serveur import served as serve_app
from tests.fake_annuaire import FakeAnnuaire
from tests.test_registre import DECIDED, EXPECTED_RECHECK, MARGE, QPV_CORRIGE, V1, V2

ANA = ("Ana Martin", "phrase de passe 1")


def _comptes(tmp: Path) -> Path:
    path = tmp / "comptes.txt"
    path.write_text("# comptes du registre\n" + compte_line(*ANA) + "\n", encoding="utf-8")
    return path


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_passwords_are_hashed() -> None:
    stored = hash_password("correct horse", iterations=1000)
    assert "correct horse" not in stored and stored.startswith("pbkdf2_sha256$1000$")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse", stored)
    assert not verify_password("x", "n'importe quoi")
    assert hash_password("correct horse", iterations=1000) != stored  # salted


def test_accounts_basic_auth_and_csrf(tmp_path) -> None:
    st = Settings.from_env(data_dir=tmp_path / "d", annee_appel=2026, marge_m=MARGE,
                           registre_comptes=str(_comptes(tmp_path)), ecoute="0.0.0.0")
    assert list(load_comptes(st.registre_comptes)) == ["Ana Martin"]
    with Registre(settings=st) as reg:
        reg.importer(V1, annuaire=False)
    with TestClient(create_app(st)) as c:
        assert c.get("/").status_code == 200  # the checker stays open
        r = c.get("/registre")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert "Identifiez-vous" in r.text and "Traceback" not in r.text
        assert c.get("/registre", auth=("Ana Martin", "mauvais")).status_code == 401
        assert c.get("/registre", auth=("Inconnu", ANA[1])).status_code == 401
        r = c.get("/registre", auth=ANA)
        assert r.status_code == 200 and "connecté : <strong id=\"utilisateur\">Ana Martin" in r.text
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        token = _csrf(r.text)
        form = {"site": "CE26-019", "decision": "non_eligible", "motif": "entrée hors QPV",
                "auteur": "Quelqu'un d'autre", "csrf": token}
        bad = c.post("/registre/decision", data={**form, "csrf": "faux"}, auth=ANA,
                     follow_redirects=False)
        assert bad.status_code == 403 and "Formulaire expiré" in bad.text
        c.cookies.clear()
        assert c.post("/registre/decision", data=form, auth=ANA,
                      follow_redirects=False).status_code == 403  # no cookie
        c.get("/registre", auth=ANA)
        c.cookies.set("qpv_registre_csrf", token, path="/registre")
        ok = c.post("/registre/decision", data=form, auth=ANA, follow_redirects=False)
        assert ok.status_code == 303, ok.text
        empty = c.post("/registre/decision", data={**form, "motif": " "}, auth=ANA)
        assert empty.status_code == 400 and "motif de la décision est obligatoire" in empty.text
        assert c.get("/registre/site?id=CE26-999", auth=ANA).status_code == 400
        fiche = c.get("/registre/fiche?id=CE26-019&format=html", auth=ANA)
        assert "pas une attestation officielle" in fiche.text
        assert "script-src" not in fiche.headers["content-security-policy"]
        assert c.get("/registre/fiche?id=CE26-019", auth=ANA).content.startswith(b"%PDF")
        assert c.get("/registre/export.xlsx", auth=ANA).content[:2] == b"PK"
        with Registre(settings=st) as reg:
            reg.importer(V2, annuaire=False)
        diff = c.get("/registre/diff?avant=1&apres=2", auth=ANA)
        assert diff.status_code == 200 and 'data-changement="retire"' in diff.text
        x = c.get("/registre/diff.xlsx?avant=1&apres=2", auth=ANA)
        assert x.content[:2] == b"PK" and "diff-1-2.xlsx" in x.headers["content-disposition"]
        bad = c.get("/registre/diff?avant=1", auth=ANA)
        assert bad.status_code == 400 and "Indiquez deux n° d" in bad.text
        assert c.get("/registre/diff?avant=1&apres=9", auth=ANA).status_code == 400
    with Registre(settings=st) as reg:
        d = reg.site("CE26-019").decision
        assert d["auteur"] == "Ana Martin"  # the account signs, not the form field
        assert d["decision"] == "non_eligible"


def test_without_accounts_only_loopback(tmp_path) -> None:
    exposed = Settings.from_env(data_dir=tmp_path / "d", ecoute="0.0.0.0")
    with TestClient(create_app(exposed)) as c:
        r = c.get("/registre")
        assert r.status_code == 403 and "QPV_GEO_REGISTRE_COMPTES" in r.text
        assert c.get("/").status_code == 200
    local = Settings.from_env(data_dir=tmp_path / "d", ecoute="127.0.0.1")
    with TestClient(create_app(local)) as c:  # the test client is not a loopback address
        assert c.get("/registre").status_code == 403


# ------------------------------------------------------------------ Chromium
@pytest.fixture()
def served(tmp_path) -> Iterator[tuple[str, Settings]]:
    """uvicorn on 127.0.0.1 claiming to listen on the network: accounts required."""
    fake = FakeAnnuaire().start()
    st = Settings.from_env(data_dir=tmp_path / "donnees", annee_appel=2026, marge_m=MARGE,
                           annuaire_url=fake.url, registre_comptes=str(_comptes(tmp_path)),
                           ecoute="0.0.0.0")
    try:
        with serve_app(create_app(st), timeout_s=20) as url:
            yield url, st
    finally:
        fake.stop()


@pytest.mark.browser
def test_scenario_in_chromium(browser, served, artifacts) -> None:
    from qpv_geo.reference import import_layer

    base, st = served
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000},
                              http_credentials={"username": ANA[0], "password": ANA[1]})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + "/")
        page.get_by_role("link", name="Registre").click()
        page.wait_for_selector("#utilisateur")
        assert page.locator("#utilisateur").inner_text() == "Ana Martin"
        # Import the call's file.
        page.set_input_files("#fichier-registre", str(V1))
        page.locator("#form-import button").click()
        page.wait_for_selector("#resultat-import")
        assert "Premier import du lot : 50 site(s)" in page.locator("#diff-resume").inner_text()
        assert page.locator("#nb-a-revoir").inner_text() == "10"
        # The criteria per dossier.
        page.get_by_role("link", name="Dossiers et critères").click()
        row = page.locator('tr[data-dossier="CE26-007"]')
        assert row.locator('td[data-critere="porteur"]').get_attribute("data-etat") == "bloquant"
        assert "société commerciale" in row.inner_text()
        assert page.locator('tr[data-dossier="CE26-005"] td[data-critere="periode"]'
                            ).get_attribute("data-etat") == "bloquant"
        page.screenshot(path=str(artifacts / "registre-dossiers.png"))
        # Decide three « à vérifier » sites from the list.
        page.get_by_role("link", name="Sites à revoir").click()
        for sid in DECIDED:
            form = page.locator(f'tr[data-site="{sid}"] form.decision')
            form.locator("select").select_option("eligible")
            form.locator('input[name="motif"]').fill("entrée du local côté quartier")
            form.get_by_role("button").click()
            page.wait_for_selector("#message")
            assert sid in page.locator("#message").inner_text()
            assert page.locator(f'tr[data-site="{sid}"]').count() == 0
        assert page.locator("#nb-a-revoir").inner_text() == "7"
        page.screenshot(path=str(artifacts / "registre-a-revoir.png"), full_page=True)
        # The corrected file: see the diff.
        page.set_input_files("#fichier-registre", str(V2))
        page.locator("#form-import button").click()
        page.wait_for_selector("#table-diff")
        rows = page.locator("#table-diff tbody tr")
        got = sorted((rows.nth(i).get_attribute("data-changement"),
                      rows.nth(i).locator("td").nth(1).inner_text())
                     for i in range(rows.count()))
        assert got == sorted([("nouveau", "CE26-051"), ("retire", "CE26-009"),
                              ("lieu", "CE26-014"), ("lieu", "CE26-044"),
                              ("verdict", "CE26-014"), ("verdict", "CE26-044")])
        page.screenshot(path=str(artifacts / "registre-diff.png"), full_page=True)
        # Other perimeters installed (as `qpv-geo data import` does), then re-check.
        import_layer(QPV_CORRIGE, "qpv", st, source="test : périmètres corrigés")
        page.locator("#form-reverifier button").click()
        page.wait_for_selector("#resultat-reverification")
        rows = page.locator("#table-changements tbody tr")
        assert sorted(rows.nth(i).get_attribute("data-site") for i in range(rows.count())
                      ) == sorted(EXPECTED_RECHECK)
        flagged = page.locator('#table-changements tr[data-site="CE26-038"]').inner_text()
        assert "décision à revoir" in flagged and "Ana Martin" in flagged
        page.screenshot(path=str(artifacts / "registre-reverification.png"), full_page=True)
        # The decision is kept, with its history; the sheet says what it is.
        page.goto(base + "/registre/site?id=CE26-038")
        assert "Éligible (décision)" in page.locator("#final").inner_text()
        assert "Non éligible" in page.locator("#verdict-calcule").inner_text()
        types = page.locator("#table-historique tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.type)")
        assert types.count("decision") == 1 and types.count("verdict") == 3
        page.screenshot(path=str(artifacts / "registre-site.png"), full_page=True)
        with page.expect_download() as dl:
            page.locator("#fiche-pdf").click()
        assert Path(dl.value.path()).read_bytes().startswith(b"%PDF")
        assert not errors, errors
    finally:
        ctx.close()
