"""The register's web pages: access (accounts with hashed passwords, loopback-only without
them), CSRF, and the whole scenario in headless Chromium (import, criteria, three decisions,
corrected file and its diff, new perimeters, re-check, decisions kept with their history)."""

from __future__ import annotations

import html as html_lib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from qpv_geo.register import Registre
from qpv_geo.register.accounts import compte_line, hash_password, load_comptes, verify_password
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


def _read_text(text: str) -> str:
    return html_lib.unescape(text)


def _read(r) -> str:
    """A page's text as a person reads it (« l'import », not « l&#39;import »)."""
    return _read_text(r.text)


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


# ------------------------------------------------- issue 20.6: a working instructor
LOCAL = "127.0.0.1:8765"


def _local(tmp_path) -> Settings:
    st = Settings.from_env(data_dir=tmp_path / "d", annee_appel=2026, marge_m=MARGE,
                           ecoute="127.0.0.1")
    with Registre(settings=st) as reg:
        reg.importer(V1, annuaire=False)
    return st


def _local_client(st: Settings) -> TestClient:
    """This computer's browser on a loopback server without accounts."""
    return TestClient(create_app(st), base_url=f"http://{LOCAL}", client=("127.0.0.1", 50000))


def _decide(c: TestClient, site: str, **form: str):
    token = _csrf(c.get("/registre?tous=1").text)
    data = {"site": site, "decision": "eligible", "motif": "entrée côté quartier",
            "csrf": token, **form}
    return c.post("/registre/decision", data=data, follow_redirects=False)


def test_no_decision_is_chosen_in_advance(tmp_path) -> None:
    """20.6: « Éligible » was preselected in every decision list and « oui » for the bilans:
    a hurried click recorded a decision nobody took."""
    st = _local(tmp_path)
    with _local_client(st) as c:
        html = c.get("/registre?tous=1").text
        lists = re.findall(r'<select name="decision"[^>]*>(.*?)</select>', html, re.S)
        assert len(lists) == 50
        for options in lists:
            assert re.findall(r"<option[^>]*selected", options) == ['<option value="" selected']
        site = c.get("/registre/site?id=CE26-038").text
        options = re.search(r'<select name="decision"[^>]*>(.*?)</select>', site, re.S).group(1)
        assert re.findall(r"<option[^>]*selected", options) == ['<option value="" selected']
        dossiers = c.get("/registre/dossiers").text
        bilans = re.findall(r'<select name="fourni"[^>]*>(.*?)</select>', dossiers, re.S)
        assert bilans and all(re.findall(r"<option[^>]*selected", b)
                              == ['<option value="" selected'] for b in bilans)
        # the server wants a choice too (a script, an old page)
        r = _decide(c, "CE26-038", decision="", auteur="Ana Martin")
        assert r.status_code == 400 and "Choisissez une décision" in r.text
        r = c.post("/registre/bilan", data={"dossier": "CE26-001", "fourni": "",
                                            "auteur": "Ana Martin", "csrf": _csrf(dossiers)})
        assert r.status_code == 400 and "indiquez si les bilans N-1" in r.text
    with Registre(settings=st) as reg:
        assert reg.site("CE26-038").decision is None
        assert not [e for e in reg.journal() if e["type"] in ("decision", "bilan")]


def test_the_name_is_asked_once_per_browser(tmp_path) -> None:
    """20.6: on loopback the name was retyped for each decision; now the first one keeps it
    in the browser, and the account's name signs when there are accounts."""
    st = _local(tmp_path)
    with _local_client(st) as c:
        html = c.get("/registre").text
        assert html.count('name="auteur"') > 2  # every form asks, and the banner
        r = _decide(c, "CE26-014", auteur="  Ana   Martin ")
        assert r.status_code == 303 and "qpv_registre_auteur=" in r.headers["set-cookie"]
        html = c.get("/registre").text
        assert html.count('name="auteur"') == 1  # only the « changer » form
        assert 'Vous signez vos décisions : <strong id="auteur">Ana Martin</strong>' in html
        assert _decide(c, "CE26-038").status_code == 303  # no name typed
        # forgotten: the next decision asks again
        assert c.post("/registre/nom", data={"auteur": "", "csrf": _csrf(html),
                                             "retour": "/registre/dossiers"},
                      follow_redirects=False).headers["location"] == "/registre/dossiers"
        r = _decide(c, "CE26-041")
        assert r.status_code == 400 and "personne qui décide est obligatoire" in r.text
        c.post("/registre/nom", data={"auteur": "Léa Roux", "csrf": _csrf(html),
                                      "retour": "https://evil.example/"})
        assert _decide(c, "CE26-041").status_code == 303
    with Registre(settings=st) as reg:
        assert [reg.site(s).decision["auteur"] for s in ("CE26-014", "CE26-038", "CE26-041")
                ] == ["Ana Martin", "Ana Martin", "Léa Roux"]


def test_site_page_says_what_to_do_with_the_map_in_paris_time(tmp_path) -> None:
    """20.6: the site page had no map and no « Que faire ? », and raw ISO UTC times."""
    from markupsafe import escape

    from qpv_geo._french import heure_paris as format_paris
    from qpv_geo.reference.layers import load_reference
    from qpv_geo.reporting.next_steps import next_steps
    from qpv_geo.web.registre import site_payload

    st = _local(tmp_path)
    with _local_client(st) as c:
        assert _decide(c, "CE26-038", auteur="Ana Martin").status_code == 303
        html = c.get("/registre/site?id=CE26-038").text
    with Registre(settings=st) as reg:
        site = reg.site("CE26-038")
        steps = next_steps(site_payload(site, reg.statuts), load_reference(st))
    assert site.verdict["status"] == "a_verifier" and len(steps) >= 2
    assert "Que faire ?" in html
    for step in steps:  # the verdict page's own sentences
        assert str(escape(step)) in html
    assert "Le bord du QPV" in html  # the edge it is near, named
    assert 'id="carte"' in html and f'data-lat="{site.verdict["lat"]}"' in html
    assert 'src="/carte/rues.js"' in html
    assert f"le {format_paris(site.decision['date'])}" in html
    assert "(heure de Paris)" in html and "UTC" not in html
    assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", html)
    with _local_client(st) as c:  # the instruction sheet too
        fiche = c.get("/registre/fiche?id=CE26-038&format=html").text
    assert f"le {format_paris(site.decision['date'])}" in fiche
    assert "(heure de Paris)" in fiche and "UTC" not in fiche
    # no raw codes nor command-line options on the sheet (the site gives coordinates)
    assert "aucun : coordonnées données par le fichier" in _read_text(fiche)
    assert "coordonnees" not in fiche and "--marge" not in fiche
    assert "imposée par le réglage de la marge" in fiche


def test_paris_time() -> None:
    from qpv_geo._french import heure_paris as format_paris

    assert format_paris("2026-12-07T23:30:00.123456+00:00") == "08/12/2026 à 00:30 (heure de Paris)"
    assert format_paris("2026-07-01T10:00:00") == "01/07/2026 à 12:00 (heure de Paris)"
    assert format_paris("2026-12-31T23:30:00+00:00", heure=False) == "01/01/2027"
    assert format_paris("2026-07-01T10:00:00+00:00", zone=False) == "01/07/2026 à 12:00"


# ------------------------------------------- issue 20: re-check, withdrawal, en attente
#: A site of Firminy 255 m outside its QPV; the address service will later place it 240 m
#: west, 21 m from the edge (« à vérifier » with a 25 m margin).
DEPART = "5 Rue du Départ 42700 Firminy"
DEPART_POINT = (4.2931, 45.3790)


def _fake_depart(fake_ban, lon: float) -> None:
    fake_ban._add(DEPART.lower(), lon, DEPART_POINT[1], label=DEPART, score=0.95,
                  type="housenumber", citycode="42095", postcode="42700", housenumber="5",
                  street="Rue du Départ", city="Firminy", name="5 Rue du Départ")


def _recheck(st: Settings, **form: str) -> str:
    with _local_client(st) as c:
        token = _csrf(c.get("/registre").text)
        r = c.post("/registre/reverifier", data={"csrf": token, "auteur": "Ana Martin", **form})
    assert r.status_code == 200, r.text
    return r.text


def _row(html: str, table: str, site: str) -> str:
    body = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S).group(1)
    return re.search(rf'<tr data-site="{site}">(.*?)</tr>', body, re.S).group(1)


def test_web_recheck_keeps_points_lists_outages_and_names_causes(tmp_path) -> None:
    """20.2 on the web: the re-check judges the stored points again (re-geocoding only when
    ticked), lists the sites the service could not re-check, and says why each verdict
    changed."""
    from tests import fake_ban

    src = tmp_path / "sites.csv"
    src.write_text("N° dossier;Porteur;Adresse;Code postal;Commune\n"
                   "D1;Asso Alpha;5 Rue du Départ;42700;Firminy\n"
                   "D2;Asso Beta;8 Boulevard Jules Janin;42000;Saint-Étienne\n",
                   encoding="utf-8")
    fake = fake_ban.FakeBan().start()
    key = fake_ban._norm(DEPART)
    try:
        _fake_depart(fake_ban, DEPART_POINT[0])

        def settings(n: int, **kw) -> Settings:  # a fresh geocoding cache each time
            return Settings.from_env(**{
                "data_dir": tmp_path / "d", "annee_appel": 2026, "marge_m": MARGE,
                "ecoute": "127.0.0.1", "geocoder": "ban", "ban_url": fake.url,
                "cache_dir": tmp_path / f"cache{n}", **kw})

        with Registre(settings=settings(0)) as reg:
            reg.importer(src, annuaire=False)
            before = {s.site_id: s.verdict for s in reg.sites()}
        assert before["D1"]["status"] == before["D2"]["status"] == "hors_qpv"
        asked = fake.count()
        html = _recheck(settings(1))
        assert fake.count() == asked  # not geocoded again: the stored points are judged
        assert 'id="regeocoder"' in html and not re.search(r'id="regeocoder"[^>]*checked', html)
        assert "Chaque site a gardé son point enregistré" in html
        assert "non revérifié" not in html.split('id="resultat-reverification"')[1].split(
            "</section>")[0]
        # Re-geocoding asked while the service is down: verdicts kept, sites listed.
        fake.always_fail = 503
        html = _recheck(settings(2), regeocoder="1")
        box = re.search(r'<div class="alerte" id="non-reverifies">(.*?)</div>', html, re.S)
        assert box, html
        assert "2 site(s) non revérifié(s) (service indisponible)" in box.group(1)
        assert re.findall(r'<li data-site="([^"]+)"', box.group(1)) == ["D1", "D2"]
        assert "/registre/site?id=D1&amp;lot=principal&amp;dossier=D1" in box.group(1)
        assert "Nouveau géocodage des adresses demandé" in html
        assert "Revérification n° 2 : 0 site(s) rejugé(s) sur 2, 0 verdict(s) changé(s)" in html
        assert 'id="table-changements"' not in html
        fake.always_fail = None
        # The service now places D1 240 m west, 21 m from the QPV's edge.
        _fake_depart(fake_ban, DEPART_POINT[0] - 240 / 78_120)
        html = _recheck(settings(3), regeocoder="1")
        row = _row(html, "table-changements", "D1")
        assert "Non éligible — hors QPV" in row and "À vérifier" in row
        assert "nouveau géocodage : point déplacé de 240 m" in row
        # Another margin: judged on the stored points, and said so.
        html = _recheck(settings(4, marge_m=300))
        row = _row(html, "table-changements", "D2")
        assert f"marge changée {MARGE:g} → 300 m" in row and "À vérifier" in row
    finally:
        fake_ban.KNOWN.pop(key, None)
        fake.stop()
    assert "Traceback" not in html and "--regeocoder" not in html


def test_diff_page_gives_each_change_its_lot_and_why(tmp_path) -> None:
    """20: the diff page listed « verdict changé » with no reason and no lot."""
    st = _local(tmp_path)
    with Registre(settings=st) as reg:
        reg.importer(V2, annuaire=False)
    with _local_client(st) as c:
        html = _read(c.get("/registre/diff"))
    assert "<th scope=\"col\">Lot</th>" in html and "<th scope=\"col\">Pourquoi</th>" in html
    rows = re.findall(r'<tr data-changement="verdict">(.*?)</tr>', html, re.S)
    assert len(rows) == 2
    for row in rows:
        assert "<td>principal</td>" in row
        assert '<td class="pourquoi">lieu modifié dans le fichier</td>' in row
    assert 'Lot « principal », depuis l\'import n° 1' in html
    with _local_client(st) as c:  # what cannot be shown is said inside the register
        for url, words in (("/registre/diff?avant=1", "listes de la page « Dernier diff »"),
                           ("/registre/site?id=CE26-999",
                            "Ouvrez le site depuis la liste « Tous les sites »"),
                           ("/registre/fiche?id=CE26-999&format=html", "Site inconnu")):
            r = c.get(url)
            assert r.status_code == 400 and words in _read(r), url
            assert 'href="/registre/imports"' in r.text and "qpv-geo registre" not in r.text
    # A register without a « principal » lot: its latest lot, not an error.
    other = tmp_path / "autre"
    other.mkdir()
    st2 = Settings.from_env(data_dir=other / "d", annee_appel=2026, marge_m=MARGE,
                            ecoute="127.0.0.1")
    with Registre(settings=st2) as reg:
        reg.importer(V1, lot="appel2026", annuaire=False)
    with _local_client(st2) as c:
        r = c.get("/registre/diff")
    assert r.status_code == 200 and "Premier import du lot « appel2026 »" in _read(r)


def test_withdraw_an_import_from_the_web(tmp_path) -> None:
    """20: « annuler l'import n° k » on the web, with who and why and a confirmation step;
    its sites leave the lists, the history keeps both events."""
    st = _local(tmp_path)
    with Registre(settings=st) as reg:
        reg.importer(V2, annuaire=False, auteur="Léa Roux")
    with _local_client(st) as c:
        page = _read(c.get("/registre/imports"))
        assert re.findall(r'<tr data-import="(\d+)" data-etat="(\w+)"', page) == [
            ("2", "courant"), ("1", "remplace")]
        assert "Annuler l'import n° 2…" in page
        confirm = c.get("/registre/annuler?import=2")
        assert confirm.status_code == 200
        assert "Ses 50 site(s) quitteront les listes courantes ; l'import n° 1 (appel_v1.csv" \
            in _read(confirm) and "redeviendra le courant" in _read(confirm)
        assert 'name="auteur"' in _read(confirm) and 'name="motif"' in _read(confirm)
        token = _csrf(_read(confirm))
        form = {"import": "2", "motif": "fichier non validé", "csrf": token}
        assert c.post("/registre/annuler", data={**form, "csrf": "faux", "auteur": "Ana"}
                      ).status_code == 403
        r = c.post("/registre/annuler", data=form)
        assert r.status_code == 400 and "personne qui annule l'import est obligatoire" in _read(r)
        assert "champ « Votre nom »" in _read(r) and "--auteur" not in _read(r)
        r = c.post("/registre/annuler", data={**form, "auteur": "Ana Martin", "motif": " "})
        assert r.status_code == 400 and "motif de l'annulation est obligatoire" in _read(r)
        assert "dans le champ « Motif »" in _read(r) and "--motif" not in _read(r)
        assert 'id="form-annuler"' in _read(r)  # still the confirmation step
        assert "qpv_registre_auteur=" in r.headers["set-cookie"]  # asked once, as decisions
        with Registre(settings=st) as reg:
            assert reg.imports()[1]["annulation"] is None
        r = c.post("/registre/annuler", data=form, follow_redirects=False)  # name remembered
        assert r.status_code == 303 and r.headers["location"] == "/registre/imports?annule=2"
        page = _read(c.get(r.headers["location"]))
        assert ("Import n° 2 annulé par Ana Martin : fichier non validé. L'import n° 1 est "
                "le courant du lot « principal ».") in page
        assert re.findall(r'<tr data-import="(\d+)" data-etat="(\w+)"', page) == [
            ("2", "annule"), ("1", "courant")]
        assert "Annuler l'import n° 2…" not in page
        listed = _read(c.get("/registre?tous=1"))
        assert 'data-site="CE26-051"' not in listed and 'data-site="CE26-009"' in listed
        site = _read(c.get("/registre/site?id=CE26-051"))
        assert "Le dernier import où figurait ce site a été annulé" in site
        assert "import n° 2 (appel_v2.csv) annulé par Ana Martin : fichier non validé" in site
        again = c.post("/registre/annuler", data={**form, "auteur": "Ana Martin"})
        assert again.status_code == 400 and "déjà annulé" in _read(again)
        assert "qpv-geo registre" not in _read(again) and "page « Imports »" in _read(again)
        unknown = c.get("/registre/annuler?import=99")
        assert unknown.status_code == 400 and "Import n° 99 inconnu" in _read(unknown)
    with Registre(settings=st) as reg:
        kinds = [e["type"] for e in reversed(reg.journal())]
        assert kinds == ["import", "import", "annulation"]
        assert reg.imports()[1]["annulation"]["auteur"] == "Ana Martin"


def test_withdrawal_is_signed_by_the_account(tmp_path) -> None:
    st = Settings.from_env(data_dir=tmp_path / "d", annee_appel=2026, marge_m=MARGE,
                           registre_comptes=str(_comptes(tmp_path)), ecoute="0.0.0.0")
    src = tmp_path / "sites.csv"
    src.write_text("N° dossier;Adresse;Code postal;Commune\n"
                   "D1;26 Allée des Coquelicots;42700;Firminy\n", encoding="utf-8")
    with Registre(settings=st) as reg:
        reg.importer(src, annuaire=False)
    with TestClient(create_app(st)) as c:
        confirm = _read(c.get("/registre/annuler?import=1", auth=ANA))
        assert 'name="auteur"' not in confirm  # the account signs
        assert "le lot « principal » n'aura plus d'import courant" in confirm
        r = c.post("/registre/annuler", auth=ANA, follow_redirects=False, data={
            "import": "1", "motif": "mauvais appel", "auteur": "Quelqu'un d'autre",
            "csrf": _csrf(confirm)})
        assert r.status_code == 303
    with Registre(settings=st) as reg:
        assert reg.imports()[0]["annulation"]["auteur"] == "Ana Martin"
        assert reg.sites() == []


def test_waiting_for_the_porteur_on_the_web(tmp_path) -> None:
    """20.6: « en attente du porteur » with what was asked, a list of the sites waiting,
    and the site page saying what was asked and since when."""
    from qpv_geo._french import heure_paris as format_paris

    st = _local(tmp_path)
    with _local_client(st) as c:
        html = _read(c.get("/registre"))
        # the motif field says what it holds for « en attente » (no script needed)
        assert html.count('<span class="motif-attente">Ce qui a été demandé au porteur'
                          '</span>') == html.count('<select name="decision"') > 0
        assert "Pour « En attente du porteur » : ce qui a été demandé au porteur." in html
        r = _decide(c, "CE26-038", decision="en_attente", motif=" ", auteur="Ana Martin")
        assert r.status_code == 400 and "Indiquez ce qui a été demandé au porteur" in _read(r)
        assert "champ « Ce qui a été demandé au porteur »" in _read(r) and "--motif" not in _read(r)
        r = _decide(c, "CE26-038", decision="en_attente", motif="plan du local et bail",
                    auteur="Ana Martin")
        assert r.status_code == 303
        assert ("Site CE26-038 mis en attente du porteur (demandé : plan du local et bail)."
                in _read(c.get(r.headers["location"])))
        html = _read(c.get("/registre"))
        assert 'data-site="CE26-038"' not in html  # waiting: not « à revoir »
        assert '<strong id="nb-en-attente">1</strong>' in html
        waiting = _read(c.get("/registre?attente=1"))
        assert "Sites en attente du porteur (1)" in waiting
        assert re.findall(r'<tr data-site="([^"]+)"', waiting) == ["CE26-038"]
        assert "demandé : plan du local et bail" in waiting
        site = _read(c.get("/registre/site?id=CE26-038"))
    with Registre(settings=st) as reg:
        d = reg.site("CE26-038").decision
    block = re.search(r'<div class="attente-bloc" id="attente">(.*?)</div>', site, re.S).group(1)
    assert "En attente du porteur</strong> <span id=\"depuis\">depuis aujourd'hui</span>" in block
    assert f"demande faite le {format_paris(d['date'])} par Ana Martin" in block
    assert '<strong id="demande">plan du local et bail</strong>' in block
    assert "Verdict retenu" not in site


def test_waiting_since() -> None:
    import datetime as dt

    from qpv_geo.web.registre import _depuis

    now = dt.datetime.now(dt.UTC)
    assert _depuis(now.isoformat()) == "depuis aujourd'hui"
    assert _depuis((now - dt.timedelta(days=12)).isoformat()) == "depuis 12 jours"
    assert _depuis((now - dt.timedelta(days=1)).isoformat()) == "depuis hier"


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
    from qpv_geo.reference.install import import_layer

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
        assert "Premier import du lot « principal » : 50 site(s)" in \
            page.locator("#diff-resume").inner_text()
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
        assert "périmètres QPV changés" in flagged and "sha256" not in flagged  # the cause
        assert "gardé son point enregistré" in page.locator("#reverif-mode").inner_text()
        page.screenshot(path=str(artifacts / "registre-reverification.png"), full_page=True)
        # The decision is kept, with its history; the sheet says what it is.
        page.goto(base + "/registre/site?id=CE26-038")
        assert "Éligible (décision)" in page.locator("#final").inner_text()
        assert "Non éligible" in page.locator("#verdict-calcule").inner_text()
        types = page.locator("#table-historique tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.type)")
        assert types.count("decision") == 1 and types.count("verdict") == 3
        last = page.locator('#table-historique tbody tr[data-type="verdict"]').last.inner_text()
        assert "pourquoi : périmètres QPV changés" in last and "(sha256" not in last
        page.screenshot(path=str(artifacts / "registre-site.png"), full_page=True)
        with page.expect_download() as dl:
            page.locator("#fiche-pdf").click()
        assert Path(dl.value.path()).read_bytes().startswith(b"%PDF")
        assert not errors, errors
    finally:
        ctx.close()


@pytest.mark.browser
def test_instructor_on_loopback_in_chromium(browser, tmp_path, artifacts) -> None:
    """20.6 as an instructor sees it: the name asked once, no decision chosen in advance
    (the browser refuses to send the form), the site page with « Que faire ? » and its map."""
    st = Settings.from_env(data_dir=tmp_path / "d", annee_appel=2026, marge_m=MARGE,
                           ecoute="127.0.0.1")
    with Registre(settings=st) as reg:
        reg.importer(V1, annuaire=False)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        with serve_app(create_app(st), timeout_s=20) as base:
            page.goto(base + "/registre")
            assert page.locator("#signataire").get_attribute("open") is not None
            form = page.locator('tr[data-site="CE26-014"] form.decision')
            form.locator('input[name="motif"]').fill("entrée du local côté quartier")
            form.locator('input[name="auteur"]').fill("Ana Martin")
            form.get_by_role("button").click()  # no decision chosen: not sent
            assert form.locator("select").evaluate("s => s.validity.valueMissing")
            assert page.locator("#message").count() == 0
            form.locator("select").select_option("eligible")
            form.get_by_role("button").click()
            page.wait_for_selector("#message")
            assert page.locator("#auteur").inner_text() == "Ana Martin"
            assert page.locator('tr[data-site] input[name="auteur"]').count() == 0
            page.screenshot(path=str(artifacts / "registre-local-a-revoir.png"), full_page=True)
            # « En attente du porteur »: the motif field says it holds what was asked.
            form = page.locator('tr[data-site="CE26-038"] form.decision')
            label = form.locator("label.motif")
            assert label.inner_text().startswith("Motif")
            form.locator("select").select_option("en_attente")
            assert label.inner_text().strip() == "Ce qui a été demandé au porteur"
            form.locator('input[name="motif"]').fill("plan du local et bail")
            form.get_by_role("button").click()
            page.wait_for_selector("#message")
            page.get_by_role("link", name="En attente du porteur").first.click()
            assert page.locator("#titre-liste").inner_text() == \
                "Sites en attente du porteur (1)"
            page.screenshot(path=str(artifacts / "registre-local-attente.png"), full_page=True)
            page.goto(base + "/registre/site?id=CE26-038")
            page.wait_for_selector('#carte[data-pret="1"]', timeout=15000)
            assert "Que faire ?" in page.locator(".que-faire").inner_text()
            assert page.locator("#carte .leaflet-interactive").count() > 0
            assert page.locator("#demande").inner_text() == "plan du local et bail"
            page.screenshot(path=str(artifacts / "registre-local-site.png"), full_page=True)
            # Withdraw the import: a confirmation step, a reason required.
            page.get_by_role("link", name="Imports").click()
            page.get_by_role("button", name="Annuler l'import n° 1…").click()
            page.wait_for_selector("#form-annuler")
            page.screenshot(path=str(artifacts / "registre-local-annuler.png"), full_page=True)
            page.locator("#form-annuler button").click()  # no reason: not sent
            assert page.locator('#form-annuler input[name="motif"]').evaluate(
                "i => i.validity.valueMissing")
            page.locator('#form-annuler input[name="motif"]').fill("fichier du mauvais appel")
            page.locator("#form-annuler button").click()
            page.wait_for_selector("#message")
            assert "Import n° 1 annulé par Ana Martin : fichier du mauvais appel" in \
                page.locator("#message").inner_text()
            assert page.locator('tr[data-import="1"]').get_attribute("data-etat") == "annule"
            page.screenshot(path=str(artifacts / "registre-local-imports.png"), full_page=True)
        assert not errors, errors
    finally:
        ctx.close()
