"""The instruction register (library and CLI): the scenario of the issue (import, criteria,
decisions, corrected file, diff, new perimeters, re-check), append-only storage, identity of
sites, criteria and the company directory against its local fake, exports, the sheet, and
two processes writing decisions at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qpv_geo.exceptions import InputFileError, RegistreError
from qpv_geo.register import Registre
from qpv_geo.register.criteria import (
    critere_bilan,
    critere_periode,
    critere_porteur,
    parse_date,
    statut_from_text,
)
from qpv_geo.register.database import MIGRATIONS
from qpv_geo.register.directory import Annuaire, siren_of
from qpv_geo.settings import Settings
from tests.fake_annuaire import FakeAnnuaire

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "registre"
V1, V2 = DATA / "appel_v1.csv", DATA / "appel_v2.csv"
QPV_CORRIGE = DATA / "qpv_corrige.geojson"
DECIDED = ("CE26-014", "CE26-038", "CE26-041")
#: What the re-check on qpv_corrige.geojson must find, and nothing else: QN04223N removed
#: (its two sites leave it, the site on its edge falls outside), QN04222N grown by 60 m (the
#: site 14 m outside it is now well inside).
EXPECTED_RECHECK = {
    "CE26-002": ("eligible", "hors_qpv"),
    "CE26-038": ("a_verifier", "hors_qpv"),
    "CE26-041": ("a_verifier", "eligible"),
    "CE26-050": ("eligible", "hors_qpv"),
}


@pytest.fixture(scope="module")
def fake():
    f = FakeAnnuaire().start()
    yield f
    f.stop()


#: The scenario forces the margin (as --marge does): its « à vérifier » sites are chosen at
#: 14 m and less from an edge, whatever the default per-point margin policy becomes.
MARGE = 25.0


def _settings(tmp: Path, fake: FakeAnnuaire | None = None) -> Settings:
    return Settings.from_env(data_dir=tmp / "donnees", annee_appel=2026, marge_m=MARGE,
                             annuaire_url=fake.url if fake else "http://127.0.0.1:9")


# ------------------------------------------------------------------ the scenario (library)
def test_scenario_library(tmp_path, fake) -> None:
    from qpv_geo.reference.install import import_layer

    st = _settings(tmp_path, fake)
    with Registre(settings=st) as reg:
        res = reg.importer(V1, auteur="Ana Instructrice")
        assert res.sites == 50 and res.diff.avant is None and len(res.diff.nouveaux) == 50
        assert res.colonnes["registre"]["dossier"] == "N° dossier"
        assert res.colonnes["registre"]["siret"] == "SIRET"
        # Criteria per dossier, each with its source.
        ds = {d.dossier: d for d in reg.dossiers()}
        assert len(ds) == 50
        assert ds["CE26-002"].etat == "ok"
        porteur = ds["CE26-002"].critere("porteur")
        assert porteur.etat == "ok" and "association" in porteur.motif
        assert porteur.source.startswith("API Recherche d'entreprises (SIREN 100000017")
        assert ds["CE26-007"].critere("porteur").etat == "bloquant"  # a SAS
        assert "porteur" in ds["CE26-007"].bloquants
        assert ds["CE26-024"].critere("porteur").etat == "a_verifier"  # unknown SIREN
        assert "inconnu de l'annuaire" in ds["CE26-024"].critere("porteur").motif
        lien = ds["CE26-004"].critere("porteur")  # no SIRET, a status column
        assert lien.etat == "ok" and lien.source == "colonne « Statut juridique »"
        assert ds["CE26-005"].critere("periode").etat == "bloquant"
        assert "31/03/2027" in ds["CE26-005"].critere("periode").motif
        assert ds["CE26-012"].critere("periode").etat == "a_verifier"
        assert ds["CE26-007"].critere("periode").etat == "ok"  # typed as 2026-02-01
        assert ds["CE26-020"].critere("bilan").etat == "bloquant"
        assert ds["CE26-021"].critere("bilan").etat == "a_verifier"
        assert ds["CE26-001"].critere("lieu").etat == "bloquant"  # its only site is hors QPV
        # Each verdict carries what produced it.
        s = reg.site("CE26-002")
        v = s.verdict
        assert v["status"] == "eligible" and v["code_qp"] == "QN04223N"
        assert v["marge_m"] == MARGE and "marge 25 m" in v["marge_motif"] and v["outil_version"]
        assert len(v["donnees_sha256"]["qpv"]) == 64
        assert v["geocodage"]["precision"] == "housenumber"
        assert reg.observation_values("CE26-002")["Adresse"] == "26 Allée des Coquelicots"

        # Decide three « à vérifier » sites.
        for sid in DECIDED:
            assert reg.site(sid).verdict["status"] == "a_verifier"
            reg.decider(sid, "éligible", "entrée du local côté quartier, vue sur place",
                        "Ana Instructrice")
        reg.marquer_bilan("CE26-021", True, "Ana Instructrice", "reçus par courriel")
        assert {s.site_id for s in reg.sites(a_revoir=True)}.isdisjoint(DECIDED)
        bilan = {d.dossier: d for d in reg.dossiers()}["CE26-021"].critere("bilan")
        assert bilan.etat == "ok" and bilan.source.startswith("registre (Ana Instructrice")

        # The corrected file: two addresses changed, one row added, one removed.
        res2 = reg.importer(V2, auteur="Ana Instructrice")
        d = res2.diff
        assert [x["site_id"] for x in d.nouveaux] == ["CE26-051"]
        assert [x["site_id"] for x in d.retires] == ["CE26-009"]
        assert [x["site_id"] for x in d.deplaces] == ["CE26-014", "CE26-044"]
        assert d.deplaces[0]["avant"].startswith("20 r. Guy de Maupassant")
        assert {x["site_id"]: x["apres"] for x in d.verdicts_changes} == {
            "CE26-014": "Éligible — dans un QPV de Saint-Étienne Métropole (QN04203M)",
            "CE26-044": "Éligible — dans un QPV de Saint-Étienne Métropole (QN04212M)"}
        assert reg.diff().to_dict() == d.to_dict()
        assert "CE26-009" not in {s.site_id for s in reg.sites()}
        assert not reg.site("CE26-009").present
        # The decision on the moved site is kept, and flagged for a second look.
        moved = reg.site("CE26-014")
        assert moved.decision["decision"] == "eligible"
        assert "le lieu a changé" in moved.decision_a_revoir
        assert moved.a_revoir

        # Other perimeters installed, then a re-check.
        import_layer(QPV_CORRIGE, "qpv", st, source="test : périmètres corrigés")
        rv = reg.reverifier(auteur="Ana Instructrice")
        assert rv.sites == 50
        got = {c.site_id: (c.avant["status"], c.apres["status"]) for c in rv.changements}
        assert got == EXPECTED_RECHECK
        by = {c.site_id: c for c in rv.changements}
        assert by["CE26-038"].decision["auteur"] == "Ana Instructrice"
        assert by["CE26-038"].decision_a_revoir  # decided eligible, now computed hors QPV
        assert not by["CE26-041"].decision_a_revoir  # decided eligible, now computed eligible
        assert by["CE26-002"].decision is None
        assert all(c.pourquoi[0].startswith("périmètres QPV changés (sha256 ")
                   for c in rv.changements)
        # Decisions kept, with their history; computed verdicts never overwritten.
        for sid in DECIDED:
            s = reg.site(sid)
            assert s.decision["auteur"] == "Ana Instructrice"
            kinds = [e["type"] for e in reg.historique(sid)]
            assert kinds.count("decision") == 1
        h = reg.historique("CE26-038")
        assert [e["type"] for e in h] == ["import", "verdict", "decision", "reimport",
                                          "verdict", "verdict"]
        assert "revérification" in h[-1]["texte"] and "Non éligible" in h[-1]["texte"]
        assert reg.site("CE26-038").final_libelle == "Éligible (décision)"
        assert "Éligible" in reg.site("CE26-041").final_libelle
        assert reg.historique("CE26-009")[-1]["type"] == "retire"
        # A second re-check with the same data changes nothing.
        again = reg.reverifier()
        assert again.changements == [] and again.nouveaux_verdicts == 0
        counts = {t: reg.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("imports", "observations", "decisions", "verifications")}
        assert counts == {"imports": 2, "observations": 100, "decisions": 3,
                          "verifications": 2}


# ------------------------------------------------------------------ the scenario (CLI)
def test_scenario_cli(tmp_path, fake, monkeypatch) -> None:
    from qpv_geo.cli import app

    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(tmp_path / "donnees"))
    monkeypatch.setenv("QPV_GEO_ANNEE_APPEL", "2026")
    monkeypatch.setenv("QPV_GEO_MARGE_M", str(MARGE))
    monkeypatch.setenv("QPV_GEO_ANNUAIRE_URL", fake.url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["registre", *args])
        assert res.exit_code == code, res.output
        return res.output

    out = run("ajouter", str(V1), "--auteur", "Ana")
    assert "50 sites enregistrés" in out and "Premier import du lot" in out
    dossiers = json.loads(run("dossiers", "--json"))
    assert {d["dossier"]: d["etat"] for d in dossiers}["CE26-007"] == "bloquant"
    a_revoir = json.loads(run("liste", "--a-revoir", "--json"))
    assert {"CE26-014", "CE26-038", "CE26-041"} <= {s["site_id"] for s in a_revoir}
    for sid in DECIDED:
        run("decider", sid, "--decision", "éligible", "--motif", "vu sur place",
            "--auteur", "Ana")
    out = run("decider", "CE26-014", "--decision", "éligible", "--motif", "  ", "--auteur",
              "Ana", code=2)
    assert "motif de la décision est obligatoire" in out
    out = run("decider", "CE26-999", "--decision", "non éligible", "--motif", "x",
              "--auteur", "Ana", code=2)
    assert "Site inconnu du registre : « CE26-999 »" in out and "Traceback" not in out
    diff = json.loads(run("ajouter", str(V2), "--json"))["diff"]
    assert [x["site_id"] for x in diff["nouveaux"]] == ["CE26-051"]
    assert [x["site_id"] for x in diff["retires"]] == ["CE26-009"]
    assert [x["site_id"] for x in diff["deplaces"]] == ["CE26-014", "CE26-044"]
    assert [x["site_id"] for x in diff["verdicts_changes"]] == ["CE26-014", "CE26-044"]
    out = run("diff", "-o", str(tmp_path / "diff.xlsx"))
    assert "lieu modifié" in out and (tmp_path / "diff.xlsx").exists()
    res = runner.invoke(app, ["data", "import", str(QPV_CORRIGE), "--layer", "qpv"])
    assert res.exit_code == 0, res.output
    rv = json.loads(run("reverifier", "--json"))
    assert {c["site_id"]: (c["avant"]["status"], c["apres"]["status"])
            for c in rv["changements"]} == EXPECTED_RECHECK
    assert [c["site_id"] for c in rv["changements"] if c["decision_a_revoir"]] == ["CE26-038"]
    out = run("reverifier")
    assert "0 verdict(s) changé(s)" in out
    hist = json.loads(run("historique", "CE26-038", "--json"))
    assert [e["type"] for e in hist].count("decision") == 1
    run("bilan", "CE26-021", "--fourni", "--auteur", "Ana")
    run("exporter", str(tmp_path / "registre.xlsx"))
    run("fiche", "CE26-038", "-o", str(tmp_path / "fiche.html"))
    assert "pas une attestation officielle" in (tmp_path / "fiche.html").read_text("utf-8")
    imports = json.loads(run("imports", "--json"))
    assert [i["fichier"] for i in imports] == ["appel_v1.csv", "appel_v2.csv"]


# ------------------------------------------------------------------ storage
def test_tables_are_append_only(tmp_path) -> None:
    st = _settings(tmp_path)
    with Registre(settings=st) as reg:
        reg.importer(V1, annuaire=False)
        reg.decider("CE26-014", "non éligible", "hors du quartier", "Ana")
        for sql in ("UPDATE decisions SET decision = 'eligible'", "DELETE FROM decisions",
                    "UPDATE verdicts SET status = 'eligible'", "DELETE FROM observations",
                    "UPDATE journal SET auteur = 'x'"):
            with pytest.raises(sqlite3.IntegrityError, match="registre en ajout seul"):
                reg.db.execute(sql)
        assert reg.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reg.decider("CE26-014", "éligible", "entrée côté quartier", "Bea")
        s = reg.site("CE26-014")
        assert s.decision["auteur"] == "Bea" and s.verdict["status"] == "a_verifier"
        assert [e["auteur"] for e in reg.historique("CE26-014")
                if e["type"] == "decision"] == ["Ana", "Bea"]
    # Reopening applies no migration twice and keeps everything.
    with Registre(settings=st) as reg:
        assert len(reg.sites()) == 50
        applied = reg.db.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0]
        assert applied == len(list(MIGRATIONS.glob("0*.py")))
        # Data versions are stored once, not copied into every verdict.
        assert reg.db.execute("SELECT count(*) FROM donnees").fetchone()[0] == 1
        assert reg.db.execute("SELECT count(DISTINCT donnees_id) FROM verdicts"
                              ).fetchone()[0] == 1


def test_site_identity_without_id_column_is_stable(tmp_path) -> None:
    src = tmp_path / "sites.csv"
    src.write_text("Porteur;Action;Adresse;Code postal;Commune\n"
                   "Asso A;Atelier;40 place paul bert;42000;Saint-Étienne\n"
                   "Asso B;Forum;63 Square Saint-Roch;42000;Saint-Étienne\n", encoding="utf-8")
    with Registre(settings=_settings(tmp_path)) as reg:
        first = {s.site_id for s in reg.importer(src, annuaire=False) and reg.sites()}
        assert all(i.startswith("S-") and len(i) == 12 for i in first)
        # Same rows, other order and spacing of the address: same sites.
        src.write_text("Porteur;Action;Adresse;Code postal;Commune\n"
                       "Asso B;Forum;63  square saint-roch;42000;Saint-Étienne\n"
                       "Asso A;Atelier;40 place paul bert;42000;Saint-Étienne\n",
                       encoding="utf-8")
        diff = reg.importer(src, annuaire=False).diff
        assert diff.vide and {s.site_id for s in reg.sites()} == first


def test_dossier_with_several_sites_and_duplicate_sites(tmp_path) -> None:
    src = tmp_path / "sites.csv"
    src.write_text("Dossier;Porteur;Latitude;Longitude\n"
                   "D1;Asso;45,43;4,39\nD1;Asso;45,44;4,40\nD2;Asso;45,45;4,41\n",
                   encoding="utf-8")
    with Registre(settings=_settings(tmp_path)) as reg:
        reg.importer(src, annuaire=False)
        assert sorted(s.site_id for s in reg.sites()) == ["D1", "D1-2", "D2"]
        assert {d.dossier: len(d.sites) for d in reg.dossiers()} == {"D1": 2, "D2": 1}
        bad = tmp_path / "doublon.csv"
        bad.write_text("Site;Latitude;Longitude\nS1;45,43;4,39\nS1;45,44;4,40\n",
                       encoding="utf-8")
        with pytest.raises(InputFileError, match="Lignes 2 et 3 : même site « S1 »"):
            reg.importer(bad, annuaire=False)
        with pytest.raises(InputFileError, match=r"Colonne « Réf » .*absente"):
            reg.importer(src, annuaire=False, colonnes_registre={"dossier": "Réf"})
        with pytest.raises(RegistreError, match="Dossier inconnu"):
            reg.marquer_bilan("D9", True, "Ana")
        with pytest.raises(RegistreError, match="nom de la personne"):
            reg.decider("D1", "éligible", "motif", " ")


# ------------------------------------------------------------------ criteria and directory
@pytest.mark.parametrize(("siren", "etat", "mot"), [
    ("100000009", "ok", "association"),
    ("100000108", "ok", "collectivité territoriale"),
    ("100000116", "a_verifier", "établissement public local"),
    ("100000041", "bloquant", "société commerciale"),
    ("100000124", "a_verifier", "cessée"),
    ("100000132", "a_verifier", "inconnu de l'annuaire"),
])
def test_porteur_from_the_directory(fake, siren, etat, mot) -> None:
    ann = Annuaire(fake.url, cache_dir=None)
    c = critere_porteur([siren], [""], annuaire=ann, col_siret="SIRET", col_statut=None)
    assert c.etat == etat and mot in c.motif


def test_directory_retries_caches_and_gives_up(tmp_path, fake) -> None:
    ann = Annuaire(fake.url, cache_dir=tmp_path, backoff_s=0.01)
    fake.requests.clear()
    fake.fail_next[:] = [503, 429]
    ent = ann.lookup("100000009")
    assert ent is not None and ent.est_association and ent.nature_juridique == "9220"
    assert len(fake.requests) == 3
    assert fake.requests[-1]["q"] == ["100000009"]
    assert ann.lookup("100000009") == ent and len(fake.requests) == 3  # from the cache
    ann.close()
    down = Annuaire("http://127.0.0.1:9", cache_dir=None, retries=0, timeout_s=2)
    c1 = critere_porteur(["100000017"], [""], annuaire=down, col_siret="SIRET",
                         col_statut=None)
    c2 = critere_porteur(["100000025"], ["Association loi 1901"], annuaire=down,
                         col_siret="SIRET", col_statut="Statut")
    assert c1.etat == "a_verifier" and "injoignable" in c1.motif
    assert c2.etat == "ok" and "injoignable" in c2.motif and c2.source == "colonne « Statut »"


def test_siret_and_status_texts() -> None:
    assert siren_of("100 000 009 00017") == "100000009"
    assert siren_of("10000000900018") is None  # Luhn
    assert siren_of("12345") is None
    c = critere_porteur(["123"], [""], annuaire=None, col_siret="SIRET", col_statut=None)
    assert c.etat == "a_verifier" and "illisible" in c.motif
    assert statut_from_text("Association loi 1901")[0] == "ok"
    assert statut_from_text("Mairie de Firminy")[0] == "ok"
    assert statut_from_text("SARL")[0] == "bloquant"
    assert statut_from_text("CCAS")[0] == "a_verifier"
    assert statut_from_text("GIP")[0] == "a_verifier"


def test_dates_and_bilan() -> None:
    assert parse_date("31/12/2026").isoformat() == "2026-12-31"
    assert parse_date("2026-02-01T00:00:00").isoformat() == "2026-02-01"
    assert parse_date("1/3/26").isoformat() == "2026-03-01"
    assert parse_date("46082").isoformat() == "2026-03-01"
    assert parse_date("31/02/2026") is None and parse_date("bientôt") is None
    ok = critere_periode(["01/03/2026"], ["30/11/2026"], annee=2026, col_debut="D",
                         col_fin="F")
    assert ok.etat == "ok"
    rev = critere_periode(["30/11/2026"], ["01/03/2026"], annee=2026, col_debut="D",
                          col_fin="F")
    assert rev.etat == "bloquant" and "avant le début" in rev.motif
    assert critere_periode(["bientôt"], ["30/11/2026"], annee=2026, col_debut="D",
                           col_fin="F").etat == "a_verifier"
    assert critere_bilan(["Oui", "x"], col_bilan="B").etat == "ok"
    assert critere_bilan(["oui", "non"], col_bilan="B").etat == "bloquant"
    assert critere_bilan(["peut-être"], col_bilan="B").etat == "a_verifier"


# ------------------------------------------------------------------ exports and the sheet
def test_exports_say_which_verdict_is_final(tmp_path) -> None:
    import openpyxl

    src = tmp_path / "sites.csv"
    src.write_text(V1.read_text("utf-8").replace("Association fictive Petits Pas",
                                                 "=HYPERLINK(\"x\")"), encoding="utf-8")
    with Registre(settings=_settings(tmp_path)) as reg:
        reg.importer(src, annuaire=False)
        reg.decider("CE26-014", "non éligible", "local hors du quartier", "Ana")
        from qpv_geo.register.exports import export_registre

        out = export_registre(reg, tmp_path / "registre.xlsx")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["sites", "dossiers"]
    rows = list(wb["sites"].iter_rows(values_only=True))
    head = rows[0]
    by = {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert len(by) == 50
    d = by["CE26-014"]
    assert d["verdict_final"] == "Non éligible (décision)" and d["final_source"] == "décision"
    assert d["decide_par"] == "Ana" and d["statut_calcule"] == "a_verifier"
    assert by["CE26-002"]["final_source"] == "calcul" and by["CE26-002"]["decide_par"] is None
    assert by["CE26-024"]["porteur"].startswith("'=HYPERLINK")
    assert "DÉMONSTRATION" not in str(by["CE26-002"]["donnees_version"])
    assert by["CE26-002"]["donnees_version"].startswith("QPV ")
    crit = list(wb["dossiers"].iter_rows(values_only=True))
    assert crit[0][:6] == ("dossier", "lot", "porteur", "etat_dossier", "critere", "etat")
    assert len(crit) == 1 + 50 * 4


def test_fiche_pdf(tmp_path) -> None:
    from qpv_geo.register.fiche import write_fiche

    with Registre(settings=_settings(tmp_path)) as reg:
        reg.importer(V1, annuaire=False)
        reg.decider("CE26-041", "éligible", "entrée de l'immeuble dans le quartier", "Ana")
        pdf = write_fiche(reg, "CE26-041", tmp_path / "fiche.pdf")
        html = write_fiche(reg, "CE26-041", tmp_path / "fiche.html").read_text("utf-8")
        with pytest.raises(InputFileError, match="Format de fiche"):
            write_fiche(reg, "CE26-041", tmp_path / "fiche.docx")
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "pas une attestation officielle" in " ".join(text.split())
    assert "Éligible (décision)" in text and "entrée de l'immeuble dans le quartier" in text
    assert "QN04222N" in text  # the nearby quartier, on the map and in the verdict
    assert 'src="data:image/png;base64,' in html


# ------------------------------------------------------------------ concurrency
_WRITER = """
import sys
from pathlib import Path
from qpv_geo.register import Registre
from qpv_geo.register.database import MIGRATIONS
from qpv_geo.settings import Settings
reg = Registre(Path(sys.argv[1]), settings=Settings.from_env())
sites = sys.argv[3].split(",")
for i in range(int(sys.argv[4])):
    reg.decider(sites[i % len(sites)], "éligible" if i % 2 else "non éligible",
                f"décision {i} de {sys.argv[2]}", sys.argv[2])
reg.close()
"""


def test_two_processes_lose_no_decision(tmp_path) -> None:
    path = tmp_path / "registre.sqlite"
    with Registre(path, settings=_settings(tmp_path)) as reg:
        reg.importer(V1, annuaire=False)
        sites = ",".join(s.site_id for s in reg.sites()[:5])
    n = 60
    root = str(HERE.parent)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, sites, str(n)],
                              cwd=root, env={**__import__("os").environ, "PYTHONPATH": root},
                              stderr=subprocess.PIPE, text=True)
             for who in ("Ana", "Bea")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Registre(path, settings=_settings(tmp_path)) as reg:
        rows = reg.db.execute("SELECT auteur, count(*) FROM decisions GROUP BY auteur")
        assert dict(rows.fetchall()) == {"Ana": n, "Bea": n}
        assert reg.db.execute("SELECT count(*) FROM journal WHERE type = 'decision'"
                              ).fetchone()[0] == 2 * n
        motifs = {r[0] for r in reg.db.execute("SELECT motif FROM decisions")}
        assert len(motifs) == 2 * n


def test_upgrade_keeps_verdicts_written_before_migration_2(tmp_path) -> None:
    """A register created by the first schema, with a verdict carrying its data versions
    inline, is upgraded on opening and still reads them."""
    import urllib.parse

    from yoyo import get_backend, read_migrations

    path = tmp_path / "ancien.sqlite"
    backend = get_backend("sqlite:///" + urllib.parse.quote(str(path)))
    first = read_migrations(str(MIGRATIONS)).filter(lambda m: m.id == "0001_registre")
    with backend.lock():
        backend.apply_migrations(backend.to_apply(first))
    backend.connection.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO imports VALUES (1, 'principal', '2026-01-05T10:00:00+00:00', "
               "'a.csv', 'x', 1, '{}', 'QPV ancienne', '{\"qpv\": \"aaaa\"}', 25, '0.1.0', "
               "'Ana')")
    db.execute("INSERT INTO observations VALUES (1, 1, 'S1', 'D1', 2, 'Asso', 'Action', "
               "'lieu', '1 rue X, 42000 Saint-Étienne', '{\"Adresse\": \"1 rue X\"}')")
    db.execute("INSERT INTO verdicts (id, site_id, observation_id, import_id, date, status, "
               "motifs, marge_m, donnees_version, donnees_sha256, outil_version) VALUES "
               "(1, 'S1', 1, 1, '2026-01-05T10:00:00+00:00', 'a_verifier', 'près du bord', "
               "25, 'QPV ancienne', '{\"qpv\": \"aaaa\"}', '0.1.0')")
    db.commit()
    db.close()
    with Registre(path, settings=_settings(tmp_path)) as reg:
        v = reg.site("S1").verdict
        assert v["donnees_version"] == "QPV ancienne" and v["donnees_sha256"] == {"qpv": "aaaa"}
        assert "données QPV ancienne" in reg.historique("S1")[1]["texte"]
        reg.decider("S1", "éligible", "vu", "Ana")
        assert reg.site("S1").decision["auteur"] == "Ana"


def test_fiche_map_keeps_street_names_off_the_point():
    from shapely.geometry import LineString, Point

    from qpv_geo.register.fiche import DEGAGEMENT_POINT_M, label_spot

    point = Point(0, 0)
    # a street passing through the point: its name is not written at its middle (the point)
    street = LineString([(-300, 0), (300, 0)])
    at = label_spot(street, "Rue Benoît Frachon", point)
    assert at is not None and abs(at.x) >= len("Rue Benoît Frachon") * 3.3 + DEGAGEMENT_POINT_M
    # a short street around the point: no name at all rather than one on the point
    assert label_spot(LineString([(-20, 0), (20, 0)]), "Rue Courte", point) is None
