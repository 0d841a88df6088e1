"""The register over several calls and over time: a site is (lot, dossier, site) — two calls
that both number their dossiers 001 keep apart, and a register of the old schema is moved to
that identity —; a re-check judges again the stored point (an outage never becomes a verdict
change, every change names its cause); an import can be withdrawn; « en attente du
porteur »; times in Paris time; a migration lock left by a killed process; French messages
for absurd import numbers, a read-only or full register."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qpv_geo.exceptions import RegistreError
from qpv_geo.register import Registre, database
from qpv_geo.register.database import MIGRATIONS
from qpv_geo.register.statements import heure_paris
from qpv_geo.settings import Settings
from tests.test_registre import MARGE, V1, V2

HERE = Path(__file__).resolve().parent

#: Lot « appel2026 »: dossier 001 of Asso Alpha, in a QPV of Firminy (demo address file).
APPEL_2026 = ("N° dossier;Porteur;Action;Adresse;Code postal;Commune\n"
              "001;Asso Alpha;Atelier CV;26 Allée des Coquelicots;42700;Firminy\n")
#: Lot « appel2027 »: its own dossier 001, Asso Zeta, elsewhere (outside any QPV).
APPEL_2027 = ("N° dossier;Porteur;Action;Adresse;Code postal;Commune\n"
              "001;Asso Zeta;Forum;41 Route Charles Baudelaire;42400;Saint-Chamond\n")


def _settings(tmp: Path, **kw) -> Settings:
    return Settings.from_env(data_dir=tmp / "donnees", annee_appel=2026, marge_m=MARGE,
                             annuaire_url="http://127.0.0.1:9", **kw)


def _files(tmp: Path) -> tuple[Path, Path]:
    a, b = tmp / "appel2026.csv", tmp / "appel2027.csv"
    a.write_text(APPEL_2026, encoding="utf-8")
    b.write_text(APPEL_2027, encoding="utf-8")
    return a, b


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from qpv_geo.cli import app

    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(tmp_path / "donnees"))
    monkeypatch.setenv("QPV_GEO_ANNEE_APPEL", "2026")
    monkeypatch.setenv("QPV_GEO_MARGE_M", str(MARGE))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["registre", *args])
        assert res.exit_code == code, res.output
        assert "Traceback" not in res.output
        # JSON as written; messages as read (rich wraps long lines)
        return res.output if "--json" in args else " ".join(res.output.split())

    return run


# ------------------------------------------------------------------ 1. lots sharing numbers
def test_two_calls_numbering_dossiers_alike_stay_apart(tmp_path, cli) -> None:
    a, b = _files(tmp_path)
    cli("ajouter", str(a), "--lot", "appel2026", "--sans-annuaire")
    cli("decider", "001", "--decision", "éligible", "--motif", "entrée côté quartier",
        "--auteur", "Ana")
    cli("ajouter", str(b), "--lot", "appel2027", "--sans-annuaire")
    sites = {s["lot"]: s for s in json.loads(cli("liste", "--json"))}
    assert set(sites) == {"appel2026", "appel2027"}
    alpha, zeta = sites["appel2026"], sites["appel2027"]
    assert alpha["porteur"] == "Asso Alpha" and alpha["present"]
    assert alpha["final_libelle"] == "Éligible (décision)"
    assert zeta["porteur"] == "Asso Zeta" and zeta["decision"] is None
    assert zeta["verdict"]["status"] == "hors_qpv"
    assert zeta["final_libelle"].endswith("(calculé)")
    # Naming « 001 » alone is now ambiguous: said in French, nothing decided.
    out = cli("decider", "001", "--decision", "non éligible", "--motif", "x", "--auteur", "Bea",
              code=2)
    assert "existe dans plusieurs lots" in out and "appel2027" in out and "--lot" in out
    cli("decider", "001", "--lot", "appel2027", "--decision", "non éligible", "--motif",
        "hors quartier, vu sur place", "--auteur", "Bea")
    hist = json.loads(cli("historique", "001", "--lot", "appel2026", "--json"))
    assert [e["auteur"] for e in hist if e["type"] == "decision"] == ["Ana"]
    # The exports: one row per (lot, dossier, site), the lot shown.
    import openpyxl

    cli("exporter", str(tmp_path / "r.xlsx"), "--retires")
    rows = list(openpyxl.load_workbook(tmp_path / "r.xlsx")["sites"].iter_rows(values_only=True))
    by = {r[rows[0].index("lot")]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert len(rows) == 3
    assert by["appel2026"]["porteur"] == "Asso Alpha"
    assert by["appel2026"]["verdict_final"] == "Éligible (décision)"
    assert by["appel2027"]["verdict_final"] == "Non éligible (décision)"
    assert by["appel2027"]["decide_par"] == "Bea"
    # Dossiers are per lot too, and so are their flags.
    assert {(d["lot"], d["porteur"]) for d in json.loads(cli("dossiers", "--json"))} == {
        ("appel2026", "Asso Alpha"), ("appel2027", "Asso Zeta")}
    out = cli("bilan", "001", "--auteur", "Ana", code=2)
    assert "plusieurs lots" in out
    cli("bilan", "001", "--lot", "appel2026", "--auteur", "Ana")
    ds = {d["lot"]: d for d in json.loads(cli("dossiers", "--json"))}
    bilans = {lot: next(c for c in d["criteres"] if c["critere"] == "bilan")
              for lot, d in ds.items()}
    assert bilans["appel2026"]["etat"] == "ok" and bilans["appel2027"]["etat"] != "ok"
    # The diff of a lot names it; imports of two lots are not compared.
    out = cli("diff", "--lot", "appel2027")
    assert "Premier import du lot « appel2027 »" in out
    out = cli("diff", "1", "2", code=2)
    assert "ne sont pas du même lot" in out


def test_same_site_id_in_two_dossiers_of_one_file(tmp_path) -> None:
    src = tmp_path / "sites.csv"
    src.write_text("Dossier;Site;Porteur;Latitude;Longitude\n"
                   "D1;1;Asso A;45,43;4,39\nD2;1;Asso B;45,44;4,40\n", encoding="utf-8")
    with Registre(settings=_settings(tmp_path)) as reg:
        reg.importer(src, annuaire=False)
        assert sorted((s.dossier, s.site_id) for s in reg.sites()) == [("D1", "1"), ("D2", "1")]
        with pytest.raises(RegistreError, match="plusieurs lots ou dossiers"):
            reg.site("1")
        assert reg.site("1", dossier="D2").porteur == "Asso B"


def test_old_register_is_moved_to_the_new_identity(tmp_path) -> None:
    """A register written by schema 0001–0002 in the state the issue found: appel2027's
    dossier 001 imported after appel2026's, whose site had a decision and a flag. After the
    upgrade both sites are listed, the decision stays with Asso Alpha's site and the flag
    with appel2026's dossier."""
    from yoyo import get_backend, read_migrations

    path = tmp_path / "ancien.sqlite"
    backend = get_backend("sqlite:///" + urllib.parse.quote(str(path)))
    old = read_migrations(str(MIGRATIONS)).filter(lambda m: m.id in ("0001_registre",
                                                                      "0002_donnees"))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(old))
    backend.connection.close()
    db = sqlite3.connect(path)
    for i, lot, date in ((1, "appel2026", "2026-01-05T10:00:00+00:00"),
                         (2, "appel2027", "2027-01-05T10:00:00+00:00")):
        db.execute("INSERT INTO imports VALUES (?, ?, ?, 'a.csv', 'x', 1, '{}', 'QPV', "
                   "'{\"qpv\": \"aaaa\"}', 25, '0.1.0', 'Ana')", (i, lot, date))
    db.execute("INSERT INTO observations VALUES (1, 1, '001', '001', 2, 'Asso Alpha', 'CV', "
               "'lieu a', '26 Allée des Coquelicots, 42700 Firminy', '{}')")
    db.execute("INSERT INTO observations VALUES (2, 2, '001', '001', 2, 'Asso Zeta', 'Forum', "
               "'lieu z', '41 Route Charles Baudelaire, 42400 Saint-Chamond', '{}')")
    for vid, obs, imp, status in ((1, 1, 1, "a_verifier"), (2, 2, 2, "hors_qpv")):
        db.execute("INSERT INTO verdicts (id, site_id, observation_id, import_id, date, status,"
                   " motifs, marge_m, donnees_version, donnees_sha256, outil_version) VALUES "
                   "(?, '001', ?, ?, '2026-01-05T10:00:00+00:00', ?, '', 25, 'QPV', "
                   "'{\"qpv\": \"aaaa\"}', '0.1.0')", (vid, obs, imp, status))
    db.execute("INSERT INTO decisions VALUES (1, '001', 1, '2026-02-01T10:00:00+00:00', "
               "'eligible', 'entrée côté quartier', 'Ana')")
    db.execute("INSERT INTO journal VALUES (1, '2026-02-01T10:00:00+00:00', 'decision', '001', "
               "'001', 'Ana', '{\"decision\": \"eligible\", \"verdict_id\": 1}')")
    db.execute("INSERT INTO criteres (import_id, dossier, critere, etat, motif, source, date) "
               "VALUES (1, '001', 'bilan', 'a_verifier', 'non renseigné', 'fichier', "
               "'2026-01-05T10:00:00+00:00')")
    db.execute("INSERT INTO drapeaux VALUES (1, '001', 'bilan_n1', 1, NULL, 'Ana', "
               "'2026-03-01T10:00:00+00:00')")
    db.commit()
    db.close()
    with Registre(path, settings=_settings(tmp_path)) as reg:
        sites = {s.lot: s for s in reg.sites()}
        assert set(sites) == {"appel2026", "appel2027"}
        assert sites["appel2026"].porteur == "Asso Alpha"
        assert sites["appel2026"].decision["auteur"] == "Ana"
        assert sites["appel2026"].final_libelle == "Éligible (décision)"
        assert sites["appel2027"].decision is None
        assert sites["appel2027"].final_libelle.endswith("(calculé)")
        assert reg.db.execute("SELECT lot FROM drapeaux").fetchone()[0] == "appel2026"
        assert reg.db.execute("SELECT lot FROM journal WHERE type = 'decision'"
                              ).fetchone()[0] == "appel2026"
        bilan = {d.lot: d.critere("bilan") for d in reg.dossiers() if d.lot == "appel2026"}
        assert bilan["appel2026"].source.startswith("registre (Ana")
        # Still append-only after the upgrade.
        with pytest.raises(sqlite3.IntegrityError, match="registre en ajout seul"):
            reg.db.execute("UPDATE decisions SET decision = 'non_eligible'")
        with pytest.raises(sqlite3.IntegrityError, match="registre en ajout seul"):
            reg.db.execute("DELETE FROM sites")


# ------------------------------------------------------------------ 2. re-check
def test_recheck_without_any_geocoder_changes_nothing(tmp_path, cli, monkeypatch) -> None:
    """The issue's sequence: a register filled with the demo geocoder, then « registre
    reverifier » on a machine without an address service."""
    cli("ajouter", str(V1), "--sans-annuaire", "--geocoder", "demo")
    cli("decider", "CE26-014", "--decision", "éligible", "--motif", "vu", "--auteur", "Ana")
    listed = json.loads(cli("liste", "--json"))
    before = {s["site_id"]: s["verdict"]["id"] for s in listed}
    geocoded = {s["site_id"] for s in listed
                if not (s["verdict"]["geocodage"] or {}).get("source", "").startswith("coord")}
    assert 30 < len(geocoded) < 50  # the file's other rows give coordinates
    monkeypatch.setenv("QPV_GEO_GEOCODER", "auto")  # no address file: the online service
    monkeypatch.setenv("QPV_GEO_BAN_URL", "http://127.0.0.1:9/geocodage")  # ... unreachable
    out = cli("reverifier")
    assert "50 sites rejugés, 0 verdict(s) changé(s)" in out and "À REVOIR" not in out
    rv = json.loads(cli("reverifier", "--json"))
    assert rv["changements"] == [] and rv["nouveaux_verdicts"] == 0
    assert rv["non_reverifies"] == []
    # Asked to geocode again, with the service down: verdicts kept, sites listed.
    rv = json.loads(cli("reverifier", "--regeocoder", "--json"))
    assert rv["changements"] == [] and rv["nouveaux_verdicts"] == 0
    assert {x["site_id"] for x in rv["non_reverifies"]} == geocoded
    assert rv["non_reverifies"][0]["raison"] == "non revérifié (service indisponible)"
    after = {s["site_id"]: s["verdict"]["id"] for s in json.loads(cli("liste", "--json"))}
    assert after == before
    assert not [s for s in json.loads(cli("liste", "--a-revoir", "--json"))
                if s["site_id"] == "CE26-014"]
    # A margin change is judged on the stored points, and says so.
    rv = json.loads(cli("reverifier", "--marge", "300", "--json"))
    assert rv["non_reverifies"] == [] and rv["changements"]
    assert all(c["pourquoi"] == [f"marge changée {MARGE:g} → 300 m"]
               for c in rv["changements"])
    sid = rv["changements"][0]["site_id"]
    hist = json.loads(cli("historique", sid, "--json"))
    assert hist[-1]["texte"].endswith(f"pourquoi : marge changée {MARGE:g} → 300 m")


def test_reimport_during_an_outage_keeps_the_known_points(tmp_path, cli, monkeypatch) -> None:
    """The corrected file imported while no address service answers: the unchanged
    addresses keep their point and verdict; only the moved ones cannot be located."""
    cli("ajouter", str(V1), "--sans-annuaire", "--geocoder", "demo")
    before = {s["site_id"]: s["verdict"] for s in json.loads(cli("liste", "--json"))}
    monkeypatch.setenv("QPV_GEO_GEOCODER", "auto")
    monkeypatch.setenv("QPV_GEO_BAN_URL", "http://127.0.0.1:9/geocodage")
    diff = json.loads(cli("ajouter", str(V2), "--sans-annuaire", "--json"))["diff"]
    changed = {x["site_id"]: x for x in diff["verdicts_changes"]}
    assert set(changed) == {"CE26-014", "CE26-044"}  # the two moved sites (coordinates)
    assert all(x["pourquoi"] == "lieu modifié dans le fichier" for x in changed.values())
    after = {s["site_id"]: s["verdict"] for s in json.loads(cli("liste", "--json"))}
    for sid in before.keys() & after.keys() - set(changed):
        assert (after[sid]["lon"], after[sid]["status"]) == (before[sid]["lon"],
                                                              before[sid]["status"]), sid


def test_recheck_regeocodes_only_when_asked(tmp_path) -> None:
    from tests import fake_ban

    fake = fake_ban.FakeBan().start()
    try:
        src = tmp_path / "sites.csv"
        src.write_text("N° dossier;Porteur;Adresse;Code postal;Commune\n"
                       "D1;Asso;8 Boulevard Jules Janin;42000;Saint-Étienne\n",
                       encoding="utf-8")
        path = tmp_path / "registre.sqlite"

        def opened(n: int) -> Registre:  # a fresh geocoding cache each time: the service's
            return Registre(path, settings=_settings(  # answer, not a cached one
                tmp_path, geocoder="ban", ban_url=fake.url, cache_dir=tmp_path / f"cache{n}"))

        with opened(1) as reg:
            reg.importer(src, annuaire=False)
            lon = reg.site("D1").verdict["lon"]
        asked = fake.count()
        assert asked > 0
        # The address service now places it 240 m east.
        key = fake_ban._norm("8 boulevard jules janin 42000 saint-etienne")
        old = fake_ban.KNOWN[key]
        fake_ban.KNOWN[key] = (old[0] + 240 / 78_120, old[1], old[2])
        try:
            with opened(2) as reg:
                rv = reg.reverifier()
                assert rv.nouveaux_verdicts == 0 and fake.count() == asked  # not asked again
            with opened(3) as reg:
                rv = reg.reverifier(regeocoder=True)
                assert fake.count() > asked and rv.nouveaux_verdicts == 1
                cause = reg.historique("D1")[-1]["texte"]
                assert "nouveau géocodage : point déplacé de 240 m" in cause
                assert reg.site("D1").verdict["lon"] != lon
            fake.always_fail = 503
            with opened(4) as reg:
                rv = reg.reverifier(regeocoder=True)
                assert rv.nouveaux_verdicts == 0 and rv.changements == []
                assert [x["site_id"] for x in rv.non_reverifies] == ["D1"]
            fake.always_fail = None
            with opened(5) as reg:  # the stored point is now the moved one
                assert reg.reverifier().nouveaux_verdicts == 0
        finally:
            fake_ban.KNOWN[key] = old
    finally:
        fake.stop()


# ------------------------------------------------------------------ 3. withdrawing an import
def test_withdrawn_import_leaves_the_lists_and_stays_in_history(tmp_path, cli) -> None:
    cli("ajouter", str(V1), "--sans-annuaire")
    cli("ajouter", str(V2), "--sans-annuaire")
    current = {s["site_id"] for s in json.loads(cli("liste", "--json"))}
    assert "CE26-051" in current and "CE26-009" not in current
    diff = json.loads(cli("diff", "--json"))
    assert diff["lot"] == "principal"
    assert {x["site_id"]: x["pourquoi"] for x in diff["verdicts_changes"]} == {
        "CE26-014": "lieu modifié dans le fichier", "CE26-044": "lieu modifié dans le fichier"}
    out = cli("annuler-import", "2", "--auteur", "Ana", "--motif", "fichier non validé")
    assert "Import n° 2 annulé" in out and "l'import n° 1 est de nouveau le courant" in out
    current = {s["site_id"] for s in json.loads(cli("liste", "--json"))}
    assert "CE26-051" not in current and "CE26-009" in current and len(current) == 50
    with Registre(settings=Settings.from_env()) as reg:
        moved = reg.site("CE26-014")  # its place is v1's again, and so is its verdict
        assert moved.lieu.startswith("20 r. Guy de Maupassant")
        assert moved.verdict["status"] == "a_verifier"
        gone = reg.site("CE26-051")
        assert not gone.present and gone.import_annule
        kinds = [e["type"] for e in reg.historique("CE26-051")]
        assert kinds[0] == "import" and "annulation" in kinds
        assert any(e["texte"] == "import n° 2 (appel_v2.csv) annulé par Ana : fichier non "
                   "validé" for e in reg.historique("CE26-051"))
        assert reg.imports()[1]["annulation"]["motif"] == "fichier non validé"
        assert reg.diff().avant is None  # the lot's only import left
    out = cli("annuler-import", "2", "--auteur", "Ana", "--motif", "encore", code=2)
    assert "déjà annulé" in out
    out = cli("annuler-import", "1", "--auteur", "Ana", "--motif", " ", code=2)
    assert "motif de l'annulation est obligatoire" in out
    cli("annuler-import", "1", "--auteur", "Ana", "--motif", "appel abandonné")
    assert json.loads(cli("liste", "--json")) == []
    imports = json.loads(cli("imports", "--json"))
    assert [i["annulation"]["motif"] for i in imports] == ["appel abandonné",
                                                           "fichier non validé"]


# ------------------------------------------------------------------ 6. en attente, Paris time
def test_waiting_for_the_porteur(tmp_path, cli) -> None:
    cli("ajouter", str(V1), "--sans-annuaire")
    out = cli("decider", "CE26-038", "--decision", "en attente", "--motif",
              "plan du local et bail", "--auteur", "Ana")
    assert "en attente du porteur (demandé : plan du local et bail)" in out
    assert "heure de Paris" in out
    attente = json.loads(cli("liste", "--en-attente", "--json"))
    assert [s["site_id"] for s in attente] == ["CE26-038"]
    assert attente[0]["final_libelle"] == "En attente du porteur (demandé : plan du local et bail)"
    assert "CE26-038" not in {s["site_id"] for s in json.loads(cli("liste", "--a-revoir",
                                                                    "--json"))}
    lieu = next(c for d in json.loads(cli("dossiers", "--json")) if d["dossier"] == "CE26-038"
                for c in d["criteres"] if c["critere"] == "lieu")
    assert lieu["etat"] == "a_verifier" and "en attente du porteur" in lieu["motif"]
    out = cli("decider", "CE26-038", "--decision", "en attente", "--motif", "", "--auteur",
              "Ana", code=2)
    assert "ce qui a été demandé au porteur" in out
    hist = json.loads(cli("historique", "CE26-038", "--json"))
    assert "demandé : plan du local et bail" in hist[-1]["texte"]
    assert "heure de Paris" in cli("historique", "CE26-038")


def test_times_in_paris() -> None:
    assert heure_paris("2026-12-07T22:16:05.123456+00:00") == \
        "07/12/2026 à 23:16 (heure de Paris)"
    assert heure_paris("2026-07-01T10:00:00+00:00", secondes=True) == \
        "01/07/2026 à 12:00:00 (heure de Paris)"
    assert heure_paris(None) == ""


def test_exports_and_sheet_in_paris_time(tmp_path) -> None:
    import openpyxl

    from qpv_geo.register.exports import export_registre
    from qpv_geo.register.fiche import fiche_html

    with Registre(settings=_settings(tmp_path)) as reg:
        reg.importer(V1, annuaire=False)
        reg.decider("CE26-041", "éligible", "entrée dans le quartier", "Ana")
        out = export_registre(reg, tmp_path / "r.xlsx")
        html = fiche_html(reg, "CE26-041")
    rows = list(openpyxl.load_workbook(out)["sites"].iter_rows(values_only=True))
    row = next(dict(zip(rows[0], r, strict=True)) for r in rows[1:] if r[0] == "CE26-041")
    assert row["decision_date"].endswith(")") and "(heure de Paris)" in row["decision_date"]
    assert "heure de Paris" in row["verdict_date"]
    assert "(UTC)" not in html and "(heure de Paris)" in html


# ------------------------------------------------------------------ 4. stale migration lock
_DIES_MID_UPGRADE = """
import sqlite3, sys, time
reg, lock = sys.argv[1], sys.argv[1] + "-migration.lock"
held = sqlite3.connect(lock, isolation_level=None)
held.execute("BEGIN EXCLUSIVE")
db = sqlite3.connect(reg)
db.execute("CREATE TABLE IF NOT EXISTS yoyo_lock (locked INT DEFAULT 1, ctime TIMESTAMP, "
           "pid INT NOT NULL, PRIMARY KEY (locked))")
db.execute("INSERT INTO yoyo_lock VALUES (1, '2026-12-07 10:00:00', ?)", (12345678,))
db.commit()
print("verrou pris", flush=True)
time.sleep(600)
"""


def test_a_killed_upgrade_does_not_block_the_next_commands(tmp_path, cli, monkeypatch) -> None:
    """A process killed -9 in the middle of a schema upgrade (its side lock held, yoyo's lock
    row written): the next command neither waits nor shows a traceback."""
    path = tmp_path / "donnees" / "registre.sqlite"
    path.parent.mkdir(parents=True)
    p = subprocess.Popen([sys.executable, "-c", _DIES_MID_UPGRADE, str(path)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "verrou pris"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    p.stdout.close()
    database._MIGRATED.clear()
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 5.0)
    started = time.monotonic()
    out = cli("liste")
    assert time.monotonic() - started < 5 and "0 site(s)" in out
    with Registre(path, settings=_settings(tmp_path)) as reg:
        assert reg.db.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0] == 0


def test_an_upgrade_in_progress_is_said_in_french(tmp_path, cli, monkeypatch) -> None:
    path = tmp_path / "donnees" / "registre.sqlite"
    path.parent.mkdir(parents=True)
    held = sqlite3.connect(str(path) + "-migration.lock", isolation_level=None)
    held.execute("BEGIN EXCLUSIVE")
    try:
        database._MIGRATED.clear()
        monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.5)
        out = cli("liste", code=2)
        assert "en cours de mise à jour par un autre programme" in out
    finally:
        held.execute("ROLLBACK")
        held.close()
    cli("liste")


# ------------------------------------------------------------------ 5. Low
def test_absurd_import_numbers(tmp_path, cli) -> None:
    cli("ajouter", str(V1), "--sans-annuaire")
    for args in (("1", "99999999999999999999999999"), ("-5", "1"), ("0", "1")):
        out = cli("diff", *args, code=2)
        assert "inconnu" in out
    out = cli("annuler-import", "99999999999999999999999999", "--auteur", "A", "--motif", "m",
              code=2)
    assert "inconnu" in out


def test_full_or_read_only_register(tmp_path, cli, monkeypatch) -> None:
    """SQLite's own « disk full » and « read-only » failures, during ``registre ajouter``:
    a French message, exit 2, nothing half-written."""
    cli("ajouter", str(V1), "--sans-annuaire")
    real = database.connect

    def full(path):
        db = real(path)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")
        return db

    def read_only(path):
        db = real(path)
        db.execute("PRAGMA query_only = ON")
        return db

    for fake, words in ((full, "disque plein"), (read_only, "lecture seule")):
        monkeypatch.setattr(database, "connect", fake)
        out = cli("ajouter", str(V2), "--sans-annuaire", code=2)
        assert "Écriture impossible dans le registre" in out and words in out
        assert "rien n'a été enregistré" in out
        monkeypatch.setattr(database, "connect", real)
        assert len(json.loads(cli("imports", "--json"))) == 1


# ------------------------------------------------------------------ the web pages
def test_web_pages_address_a_site_by_lot(tmp_path) -> None:
    pytest.importorskip("fastapi")
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient

    from qpv_geo.web import create_app
    from tests.test_registre_web import ANA, _comptes

    a, b = _files(tmp_path)
    st = _settings(tmp_path, registre_comptes=str(_comptes(tmp_path)), ecoute="0.0.0.0")
    with Registre(settings=st) as reg:
        reg.importer(a, lot="appel2026", annuaire=False)
        reg.importer(b, lot="appel2027", annuaire=False)
    with TestClient(create_app(st)) as c:
        page = c.get("/registre?tous=1", auth=ANA)
        assert page.status_code == 200
        assert "/registre/site?id=001&amp;lot=appel2026&amp;dossier=001" in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        ok = c.post("/registre/decision", auth=ANA, follow_redirects=False, data={
            "site": "001", "lot": "appel2026", "dossier": "001", "decision": "eligible",
            "motif": "entrée côté quartier", "csrf": token, "retour": "site"})
        assert ok.status_code == 303 and "lot=appel2026" in ok.headers["location"]
        site = c.get("/registre/site?id=001&lot=appel2027&dossier=001", auth=ANA)
        assert site.status_code == 200 and "Asso Zeta" in site.text
        alone = c.get("/registre/site?id=001", auth=ANA)
        assert alone.status_code == 400 and "existe dans plusieurs lots" in alone.text
        fiche = c.get("/registre/fiche?id=001&lot=appel2026&dossier=001&format=html",
                      auth=ANA)
        assert fiche.status_code == 200 and "Asso Alpha" in fiche.text
        for q in ("avant=1&apres=99999999999999999999999999", "avant=1&apres=2"):
            r = c.get(f"/registre/diff?{q}", auth=ANA)
            assert r.status_code == 400 and "Traceback" not in r.text
        assert "inconnu" in c.get("/registre/diff?avant=1&apres=99999999999999999999999999",
                                  auth=ANA).text
    with Registre(settings=st) as reg:
        assert reg.site("001", lot="appel2026").decision["auteur"] == "Ana Martin"
        assert reg.site("001", lot="appel2027").decision is None
