"""A site is (lot, dossier, site), not a site id alone: dossier numbers restart with every
call, so lot « appel2027 »'s dossier 001 is not lot « appel2026 »'s.

- ``sites`` gives each (lot, dossier, site) a number; observations, verdicts and decisions
  point to it (``site_ref``), flags and journal entries name their lot. Existing rows are
  attached through what they already point to: an observation through its import's lot, a
  verdict through its observation, a decision through the verdict it was taken on — so a
  decision taken on appel2026's site stays with it even where the old views showed it on
  appel2027's site of the same number.
- ``annulations``: an import withdrawn (who, why); its sites leave the current lists.
- ``geocodages`` (each distinct result once) and ``geocodages_utilises`` (which import or
  re-check judged its verdicts on it): the full geocoding results, so that a re-check judges
  the stored point again instead of geocoding anew.
- ``verdicts.cause``: why a re-check appended a verdict (« périmètres QPV changés »,
  « marge changée 9 → 3 m », « nouveau géocodage : point déplacé de 240 m »).
- decisions may also be « en attente du porteur » (``en_attente``, the motif says what was
  asked); the table is rebuilt for its CHECK, rows kept as they were.

The append-only triggers are lifted for the back-fill only, inside this migration's
transaction.
"""

from yoyo import step

__depends__ = {"0002_donnees"}


def _guard(table: str) -> list:
    return [step(f"CREATE TRIGGER {table}_sans_{op.lower()} BEFORE {op} ON {table} "
                 f"BEGIN SELECT RAISE(ABORT, 'registre en ajout seul : {table}'); END",
                 f"DROP TRIGGER {table}_sans_{op.lower()}")
            for op in ("UPDATE", "DELETE")]


def _unguard(table: str) -> list:
    return [step(f"DROP TRIGGER IF EXISTS {table}_sans_{op.lower()}")
            for op in ("UPDATE", "DELETE")]


steps = [
    step("""CREATE TABLE sites (
                id INTEGER PRIMARY KEY,
                lot TEXT NOT NULL,
                dossier TEXT NOT NULL,
                site_id TEXT NOT NULL,
                UNIQUE (lot, dossier, site_id))""", "DROP TABLE sites"),
    *_guard("sites"),
    step("""CREATE TABLE annulations (
                id INTEGER PRIMARY KEY,
                import_id INTEGER NOT NULL UNIQUE REFERENCES imports(id),
                date TEXT NOT NULL,
                auteur TEXT NOT NULL CHECK (length(trim(auteur)) > 0),
                motif TEXT NOT NULL CHECK (length(trim(motif)) > 0))""",
         "DROP TABLE annulations"),
    *_guard("annulations"),
    step("""CREATE TABLE geocodages (
                id INTEGER PRIMARY KEY,
                requete TEXT NOT NULL,
                resultat TEXT NOT NULL,
                UNIQUE (requete, resultat))""", "DROP TABLE geocodages"),
    *_guard("geocodages"),
    step("""CREATE TABLE geocodages_utilises (
                geocodage_id INTEGER NOT NULL REFERENCES geocodages(id),
                import_id INTEGER REFERENCES imports(id),
                verification_id INTEGER REFERENCES verifications(id))""",
         "DROP TABLE geocodages_utilises"),
    *_guard("geocodages_utilises"),
    step("CREATE INDEX geocodages_import ON geocodages_utilises(import_id)"),
    step("CREATE INDEX geocodages_verification ON geocodages_utilises(verification_id)"),
    # Views over the old keys: rebuilt below.
    step("DROP VIEW IF EXISTS sites_courants"),
    step("DROP VIEW IF EXISTS verdicts_courants"),
    step("DROP VIEW IF EXISTS decisions_courantes"),
    step("DROP VIEW IF EXISTS drapeaux_courants"),
    step("DROP VIEW IF EXISTS imports_courants"),
    *_unguard("observations"), *_unguard("verdicts"), *_unguard("decisions"),
    *_unguard("journal"), *_unguard("drapeaux"),
    step("ALTER TABLE observations ADD COLUMN site_ref INTEGER REFERENCES sites(id)"),
    step("ALTER TABLE verdicts ADD COLUMN site_ref INTEGER REFERENCES sites(id)"),
    step("ALTER TABLE verdicts ADD COLUMN cause TEXT"),
    step("ALTER TABLE journal ADD COLUMN site_ref INTEGER REFERENCES sites(id)"),
    step("ALTER TABLE journal ADD COLUMN lot TEXT"),
    step("ALTER TABLE drapeaux ADD COLUMN lot TEXT"),
    step("""INSERT INTO sites (lot, dossier, site_id)
            SELECT i.lot, o.dossier, o.site_id FROM observations o
            JOIN imports i ON i.id = o.import_id
            GROUP BY i.lot, o.dossier, o.site_id ORDER BY min(o.id)"""),
    step("""UPDATE observations SET site_ref = (
                SELECT s.id FROM sites s JOIN imports i ON i.id = observations.import_id
                WHERE s.lot = i.lot AND s.dossier = observations.dossier
                  AND s.site_id = observations.site_id)"""),
    step("""UPDATE verdicts SET site_ref = (
                SELECT o.site_ref FROM observations o WHERE o.id = verdicts.observation_id)"""),
    # Decisions: rebuilt (new CHECK), each attached to the site of the verdict it was taken on.
    step("""CREATE TABLE decisions_v3 (
                id INTEGER PRIMARY KEY,
                site_id TEXT NOT NULL,
                verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
                date TEXT NOT NULL,
                decision TEXT NOT NULL
                    CHECK (decision IN ('eligible', 'non_eligible', 'en_attente')),
                motif TEXT NOT NULL CHECK (length(trim(motif)) > 0),
                auteur TEXT NOT NULL CHECK (length(trim(auteur)) > 0),
                site_ref INTEGER REFERENCES sites(id))"""),
    step("""INSERT INTO decisions_v3 (id, site_id, verdict_id, date, decision, motif, auteur,
                                      site_ref)
            SELECT x.id, x.site_id, x.verdict_id, x.date, x.decision, x.motif, x.auteur,
                   (SELECT v.site_ref FROM verdicts v WHERE v.id = x.verdict_id)
            FROM decisions x ORDER BY x.id"""),
    step("DROP TABLE decisions"),
    step("ALTER TABLE decisions_v3 RENAME TO decisions"),
    step("""UPDATE journal SET site_ref = (
                SELECT v.site_ref FROM verdicts v
                WHERE v.id = json_extract(journal.detail, '$.verdict_id'))
            WHERE type = 'decision'"""),
    step("""UPDATE journal SET lot = (SELECT s.lot FROM sites s WHERE s.id = journal.site_ref)
            WHERE site_ref IS NOT NULL"""),
    step("""UPDATE journal SET lot = json_extract(detail, '$.lot') WHERE type = 'import'"""),
    # A flag named a dossier only: it goes to the lot that held that dossier when it was set
    # (the latest import before it), else to the first lot that has the dossier.
    step("""UPDATE drapeaux SET lot = coalesce(
                (SELECT i.lot FROM observations o JOIN imports i ON i.id = o.import_id
                 WHERE o.dossier = drapeaux.dossier AND i.date <= drapeaux.date
                 ORDER BY o.id DESC LIMIT 1),
                (SELECT i.lot FROM observations o JOIN imports i ON i.id = o.import_id
                 WHERE o.dossier = drapeaux.dossier ORDER BY o.id LIMIT 1))"""),
    step("UPDATE journal SET lot = (SELECT lot FROM drapeaux d WHERE d.dossier = journal.dossier"
         " ORDER BY d.id DESC LIMIT 1) WHERE type = 'bilan'"),
    *_guard("observations"), *_guard("verdicts"), *_guard("decisions"), *_guard("journal"),
    *_guard("drapeaux"),
    step("DROP INDEX IF EXISTS observations_import_site"),
    step("CREATE UNIQUE INDEX observations_import_site ON observations(import_id, site_ref)"),
    step("CREATE INDEX observations_site_ref ON observations(site_ref, id)"),
    step("CREATE INDEX verdicts_site_ref ON verdicts(site_ref, id)"),
    # The site id alone no longer finds a site: its indexes go.
    step("DROP INDEX IF EXISTS observations_site"),
    step("DROP INDEX IF EXISTS verdicts_site"),
    step("CREATE INDEX sites_site_id ON sites(site_id)"),
    step("CREATE INDEX decisions_site ON decisions(site_ref, id)"),
    step("CREATE INDEX decisions_verdict ON decisions(verdict_id)"),
    step("CREATE INDEX drapeaux_lot_dossier ON drapeaux(lot, dossier, nom, id)"),
    step("CREATE INDEX criteres_import ON criteres(import_id, dossier)"),
    # Current state. An import withdrawn does not count: the lot's current import is its
    # latest one not withdrawn.
    step("""CREATE VIEW imports_courants AS
            SELECT i.* FROM imports i
            JOIN (SELECT lot, max(id) AS id FROM imports
                  WHERE id NOT IN (SELECT import_id FROM annulations) GROUP BY lot) d
              ON d.id = i.id"""),
    step("""CREATE VIEW sites_courants AS
            SELECT o.* FROM observations o
            JOIN imports_courants i ON o.import_id = i.id"""),
    step("""CREATE VIEW drapeaux_courants AS
            SELECT f.* FROM drapeaux f
            JOIN (SELECT lot, dossier, nom, max(id) AS id FROM drapeaux
                  GROUP BY lot, dossier, nom) d ON d.id = f.id"""),
]
