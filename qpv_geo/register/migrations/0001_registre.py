"""Instruction register, first schema: imports, observations, verdicts, decisions, criteria,
flags and the audit journal. Every table is append-only (triggers refuse UPDATE and DELETE);
the current state is read through views."""

from yoyo import step

__depends__: set[str] = set()

_TABLES = {
    "imports": """
        id INTEGER PRIMARY KEY,
        lot TEXT NOT NULL,
        date TEXT NOT NULL,
        fichier TEXT NOT NULL,
        fichier_sha256 TEXT NOT NULL,
        lignes INTEGER NOT NULL,
        colonnes TEXT NOT NULL,
        donnees_version TEXT NOT NULL,
        donnees_sha256 TEXT NOT NULL,
        marge_m REAL,
        outil_version TEXT NOT NULL,
        auteur TEXT
    """,
    "observations": """
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES imports(id),
        site_id TEXT NOT NULL,
        dossier TEXT NOT NULL,
        ligne INTEGER NOT NULL,
        porteur TEXT,
        action TEXT,
        lieu TEXT NOT NULL,
        lieu_affiche TEXT NOT NULL,
        valeurs TEXT NOT NULL
    """,
    "verifications": """
        id INTEGER PRIMARY KEY,
        date TEXT NOT NULL,
        donnees_version TEXT NOT NULL,
        donnees_sha256 TEXT NOT NULL,
        marge_m REAL,
        outil_version TEXT NOT NULL,
        auteur TEXT,
        sites INTEGER NOT NULL,
        changements INTEGER NOT NULL
    """,
    "verdicts": """
        id INTEGER PRIMARY KEY,
        site_id TEXT NOT NULL,
        observation_id INTEGER NOT NULL REFERENCES observations(id),
        import_id INTEGER REFERENCES imports(id),
        verification_id INTEGER REFERENCES verifications(id),
        date TEXT NOT NULL,
        status TEXT NOT NULL,
        code_qp TEXT,
        lib_qp TEXT,
        insee_com TEXT,
        lib_com TEXT,
        distance_bord_m REAL,
        code_qp_proche TEXT,
        lib_qp_proche TEXT,
        distance_qp_proche_m REAL,
        lon REAL,
        lat REAL,
        geocodage TEXT,
        motifs TEXT NOT NULL,
        marge_m REAL,
        marge_motif TEXT,
        donnees_version TEXT NOT NULL,
        donnees_sha256 TEXT NOT NULL,
        outil_version TEXT NOT NULL
    """,
    "decisions": """
        id INTEGER PRIMARY KEY,
        site_id TEXT NOT NULL,
        verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
        date TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('eligible', 'non_eligible')),
        motif TEXT NOT NULL CHECK (length(trim(motif)) > 0),
        auteur TEXT NOT NULL CHECK (length(trim(auteur)) > 0)
    """,
    "criteres": """
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES imports(id),
        dossier TEXT NOT NULL,
        critere TEXT NOT NULL,
        etat TEXT NOT NULL CHECK (etat IN ('ok', 'bloquant', 'a_verifier')),
        valeur TEXT,
        motif TEXT NOT NULL,
        source TEXT NOT NULL,
        date TEXT NOT NULL
    """,
    "drapeaux": """
        id INTEGER PRIMARY KEY,
        dossier TEXT NOT NULL,
        nom TEXT NOT NULL,
        valeur INTEGER NOT NULL,
        motif TEXT,
        auteur TEXT NOT NULL CHECK (length(trim(auteur)) > 0),
        date TEXT NOT NULL
    """,
    "journal": """
        id INTEGER PRIMARY KEY,
        date TEXT NOT NULL,
        type TEXT NOT NULL,
        site_id TEXT,
        dossier TEXT,
        auteur TEXT,
        detail TEXT NOT NULL
    """,
}

steps = []
for _name, _columns in _TABLES.items():
    steps.append(step(f"CREATE TABLE {_name} ({_columns})", f"DROP TABLE {_name}"))
    for _op in ("UPDATE", "DELETE"):
        steps.append(step(
            f"CREATE TRIGGER {_name}_sans_{_op.lower()} BEFORE {_op} ON {_name} "
            f"BEGIN SELECT RAISE(ABORT, 'registre en ajout seul : {_name}'); END",
            f"DROP TRIGGER {_name}_sans_{_op.lower()}"))

steps += [
    step("CREATE INDEX imports_lot ON imports(lot, id)"),
    step("CREATE UNIQUE INDEX observations_import_site ON observations(import_id, site_id)"),
    step("CREATE INDEX observations_site ON observations(site_id, id)"),
    step("CREATE INDEX observations_dossier ON observations(dossier)"),
    step("CREATE INDEX verdicts_site ON verdicts(site_id, id)"),
    step("CREATE INDEX verdicts_observation ON verdicts(observation_id)"),
    step("CREATE INDEX decisions_site ON decisions(site_id, id)"),
    step("CREATE INDEX criteres_dossier ON criteres(dossier, import_id)"),
    step("CREATE INDEX drapeaux_dossier ON drapeaux(dossier, nom, id)"),
    step("CREATE INDEX journal_site ON journal(site_id, id)"),
    step("CREATE INDEX journal_dossier ON journal(dossier, id)"),
    # Current state, derived from the append-only tables.
    step("""CREATE VIEW imports_courants AS
            SELECT i.* FROM imports i
            JOIN (SELECT lot, max(id) AS id FROM imports GROUP BY lot) d ON d.id = i.id"""),
    step("""CREATE VIEW sites_courants AS
            SELECT o.* FROM observations o
            JOIN imports_courants i ON o.import_id = i.id"""),
    step("""CREATE VIEW verdicts_courants AS
            SELECT v.* FROM verdicts v
            JOIN (SELECT site_id, max(id) AS id FROM verdicts GROUP BY site_id) d
              ON d.id = v.id"""),
    step("""CREATE VIEW decisions_courantes AS
            SELECT x.* FROM decisions x
            JOIN (SELECT site_id, max(id) AS id FROM decisions GROUP BY site_id) d
              ON d.id = x.id"""),
    step("""CREATE VIEW drapeaux_courants AS
            SELECT f.* FROM drapeaux f
            JOIN (SELECT dossier, nom, max(id) AS id FROM drapeaux GROUP BY dossier, nom) d
              ON d.id = f.id"""),
]
