"""Data versions stored once: verdicts, imports and re-checks point to a row of ``donnees``
(version text and sha256 of every layer) instead of copying ≈ 550 bytes into every verdict.
Verdicts written before keep their inline copy (``donnees_id`` NULL); readers take
``coalesce(donnees.…, verdicts.…)``."""

from yoyo import step

__depends__ = {"0001_registre"}

steps = [
    step("""CREATE TABLE donnees (
                id INTEGER PRIMARY KEY,
                version TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                UNIQUE (version, sha256))""", "DROP TABLE donnees"),
    step("CREATE TRIGGER donnees_sans_update BEFORE UPDATE ON donnees "
         "BEGIN SELECT RAISE(ABORT, 'registre en ajout seul : donnees'); END",
         "DROP TRIGGER donnees_sans_update"),
    step("CREATE TRIGGER donnees_sans_delete BEFORE DELETE ON donnees "
         "BEGIN SELECT RAISE(ABORT, 'registre en ajout seul : donnees'); END",
         "DROP TRIGGER donnees_sans_delete"),
    step("ALTER TABLE verdicts ADD COLUMN donnees_id INTEGER REFERENCES donnees(id)"),
]
