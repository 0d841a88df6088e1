"""The instruction register: sites of dossiers, their verdicts, instructors' decisions, the
call's other criteria, history, diffs between imports and re-checks after a data change.

Everything is appended, nothing is updated in place (the tables refuse UPDATE and DELETE):
a new import adds observations and verdicts, a re-check adds verdicts, a decision adds a
decision. The current state (latest import of each lot, latest verdict and decision of each
site) is read through views.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo import __version__
from qpv_geo._files import sha256_file
from qpv_geo.batch import ColumnMapping, read_sites, validate_sites
from qpv_geo.batch.table import outside_table
from qpv_geo.exceptions import InputFileError, RegistreError
from qpv_geo.registre import _db
from qpv_geo.registre.colonnes import (
    RegistreColumns,
    cells,
    detect_registre_columns,
    place_keys,
    site_ids,
)
from qpv_geo.registre.criteres import (
    Critere,
    critere_bilan,
    critere_lieu,
    critere_periode,
    critere_porteur,
)
from qpv_geo.registre.etats import (
    A_REVOIR,
    DECISIONS,
    LOT_DEFAUT,
    Changement,
    Diff,
    DossierState,
    ImportResult,
    Reverification,
    SiteState,
    agrees,
    label_verdict,
    normalize_decision,
)
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.eligibility import Engine
    from qpv_geo.geocoding import Geocoder
    from qpv_geo.registre.annuaire import Annuaire

#: The register flag recording that a dossier's bilans N-1 were received.
DRAPEAU_BILAN = "bilan_n1"

_VERDICT_FIELDS = ("status", "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m",
                   "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m", "lon", "lat",
                   "motifs", "marge_m", "marge_motif")


def default_path(settings: Settings) -> Path:
    """Where the register lives: ``registre.sqlite`` in the user data folder."""
    return Path(settings.data_dir) / "registre.sqlite"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _py(v: Any) -> Any:
    """A numpy/pandas scalar as a plain Python value (NaN → None)."""
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


# ---------------------------------------------------------------------------------------------
# The register
# ---------------------------------------------------------------------------------------------


def _verdict_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One verdict dict per row of a validated frame (plain Python values)."""
    cols = {c: frame[c].to_numpy(object) for c in _VERDICT_FIELDS if c in frame.columns}
    geo = {c: frame[c].to_numpy(object) if c in frame.columns else None
           for c in ("geocodage_label", "geocodage_score", "geocodage_precision",
                     "geocodage_source")}
    out = []
    for i in range(len(frame)):
        v = {c: _py(a[i]) for c, a in cols.items()}
        g = {k.removeprefix("geocodage_"): _py(a[i]) for k, a in geo.items() if a is not None}
        v["geocodage"] = g if any(x is not None for x in g.values()) else None
        out.append(v)
    return out


class Registre:
    """The register file (SQLite). Open it, use it, close it (or use ``with``).

    Parameters
    ----------
    path
        The database file; default ``registre.sqlite`` in ``settings.data_dir``.
    settings
        Options (margin, geocoder, call year, company directory); default from the
        environment.
    """

    def __init__(self, path: str | Path | None = None, *,
                 settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.path = Path(path) if path else default_path(self.settings)
        self.db = _db.connect(self.path)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def __enter__(self) -> Registre:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @functools.cached_property
    def statuts(self) -> dict[str, str]:
        """Status labels in the words of the register's territory (SEM's by default)."""
        from qpv_geo.libelles import libelles_reglages

        return libelles_reglages(self.settings).statuts

    @functools.cached_property
    def criteres(self) -> dict[str, str]:
        """Names of the dossier criteria in the register's territory's words."""
        from qpv_geo.libelles import libelles_reglages
        from qpv_geo.registre.criteres import criteres_de

        return criteres_de(libelles_reglages(self.settings))

    @property
    def annee_appel(self) -> int:
        """Year of the call (``settings.annee_appel``, else the current year)."""
        return self.settings.annee_appel or dt.date.today().year

    # ------------------------------------------------------------------ import
    def importer(self, path: str | Path, *, lot: str = LOT_DEFAUT, auteur: str | None = None,
                 colonnes: dict[str, str | None] | None = None,
                 colonnes_registre: dict[str, str | None] | None = None,
                 sheet: str | int | None = None, engine: Engine | None = None,
                 geocoder: Geocoder | None = None, annuaire: Annuaire | bool | None = True,
                 progress: Callable[[int], None] | None = None,
                 header_line: int | None = None, forcer: bool = False) -> ImportResult:
        """Record every row of a sites file as a site of a dossier, with its verdict and
        the criteria of each dossier; return the diff with the lot's previous import.

        ``colonnes`` overrides the batch's column roles (``adresse``, ``lat``…),
        ``colonnes_registre`` the register's (``dossier``, ``site``, ``siret``, ``statut``,
        ``debut``, ``fin``, ``bilan``). ``annuaire``: a client, ``True`` for the one of
        the settings, ``False``/``None`` to not consult the company directory.
        """
        path = Path(path)
        lot = (lot or LOT_DEFAUT).strip() or LOT_DEFAUT
        frame, mapping = read_sites(path, sheet=sheet, mapping_overrides=colonnes,
                                    header_line=header_line)
        off = outside_table(frame, mapping) != ""
        if off.any():  # a total, a note under the table: not a site of any dossier
            frame = frame[~off]
        cols = detect_registre_columns(list(frame.columns), mapping, colonnes_registre)
        lieux = place_keys(frame, mapping)
        ids, dossiers = site_ids(frame, mapping, cols, lieux)
        engine = engine or _engine(self.settings)
        result = validate_sites(frame, mapping, settings=self.settings, engine=engine,
                                geocoder=geocoder, progress=progress)
        out = result.frame
        if result.summary.get("fichier_mal_lu") and not forcer:
            # nothing recorded: the register keeps every import for ever
            raise InputFileError(f"{path.name} : {result.summary['fichier_mal_lu']} ; rien "
                                 "n'a été enregistré.",
                                 hint="Corrigez la lecture (--ligne-entete N, --col-…), ou "
                                 "importez quand même avec --forcer.")
        verdicts = _verdict_rows(out)
        client, own = _annuaire(annuaire, self.settings)
        try:
            criteres = self._criteres(frame, cols, dossiers, client)
        finally:
            if own and client is not None:
                client.close()
        colonnes_json = {"batch": mapping.as_dict(), "registre": cols.as_dict(),
                         "colonnes": [str(c) for c in frame.columns]}
        shas = {k: v.sha256 for k, v in engine.reference.layers.items()}
        records = frame.astype(object).where(frame.notna(), "").to_dict("records")
        affiche = _display_places(frame, mapping)
        porteur = cells(frame, mapping.porteur)
        action = cells(frame, mapping.action)
        lignes = out["ligne"].to_numpy()
        now = _now()
        common = (now, engine.marge_m, engine.reference.version,
                  json.dumps(shas, sort_keys=True), __version__)
        with _db.write(self.db) as db:
            prev = db.execute("SELECT id FROM imports WHERE lot = ? ORDER BY id DESC LIMIT 1",
                              (lot,)).fetchone()
            import_id = db.execute(
                "INSERT INTO imports (lot, date, fichier, fichier_sha256, lignes, colonnes, "
                "donnees_version, donnees_sha256, marge_m, outil_version, auteur) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (lot, now, path.name, sha256_file(path), len(frame),
                 json.dumps(colonnes_json, ensure_ascii=False), engine.reference.version,
                 common[3], engine.marge_m, __version__, auteur)).lastrowid
            base = db.execute("SELECT coalesce(max(id), 0) FROM observations").fetchone()[0]
            db.executemany(
                "INSERT INTO observations (id, import_id, site_id, dossier, ligne, porteur, "
                "action, lieu, lieu_affiche, valeurs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((base + i + 1, import_id, str(ids[i]), str(dossiers[i]), int(lignes[i]),
                  porteur[i] or None, action[i] or None, str(lieux[i]), affiche[i],
                  json.dumps(records[i], ensure_ascii=False, default=str))
                 for i in range(len(frame))))
            self._insert_verdicts(db, [(str(ids[i]), base + i + 1, verdicts[i])
                                       for i in range(len(frame))],
                                  import_id=import_id, verification_id=None, common=common)
            db.executemany(
                "INSERT INTO criteres (import_id, dossier, critere, etat, valeur, motif, source,"
                " date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((import_id, d, c.critere, c.etat, c.valeur, c.motif, c.source, now)
                 for d, cs in criteres.items() for c in cs))
            diff = self._diff(db, prev[0] if prev else None, import_id)
            db.execute(
                "INSERT INTO journal (date, type, auteur, detail) VALUES (?, 'import', ?, ?)",
                (now, auteur, json.dumps(
                    {"import_id": import_id, "lot": lot, "fichier": path.name,
                     "sites": len(frame), "nouveaux": len(diff.nouveaux),
                     "retires": len(diff.retires), "deplaces": len(diff.deplaces),
                     "verdicts_changes": len(diff.verdicts_changes)}, ensure_ascii=False)))
        statuses = out["status"].value_counts().to_dict()
        a_revoir = sum(1 for s in self.sites(lot=lot) if s.a_revoir)
        return ImportResult(import_id=import_id, lot=lot, sites=len(frame),
                            colonnes=colonnes_json, par_statut={str(k): int(v) for k, v in
                                                                statuses.items()},
                            diff=diff, a_revoir=a_revoir)

    def _criteres(self, frame: pd.DataFrame, cols: RegistreColumns, dossiers: np.ndarray,
                  annuaire: Annuaire | None) -> dict[str, list[Critere]]:
        rows: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(dossiers):
            rows[str(d)].append(i)
        siret, statut = cells(frame, cols.siret), cells(frame, cols.statut)
        debut, fin, bilan = cells(frame, cols.debut), cells(frame, cols.fin), \
            cells(frame, cols.bilan)
        out: dict[str, list[Critere]] = {}
        for d, idx in rows.items():
            out[d] = [
                critere_porteur([siret[i] for i in idx], [statut[i] for i in idx],
                                annuaire=annuaire, col_siret=cols.siret,
                                col_statut=cols.statut),
                critere_periode([debut[i] for i in idx], [fin[i] for i in idx],
                                annee=self.annee_appel, col_debut=cols.debut, col_fin=cols.fin),
                critere_bilan([bilan[i] for i in idx], col_bilan=cols.bilan),
            ]
        return out

    @staticmethod
    def _insert_verdicts(db: sqlite3.Connection, rows: list[tuple[str, int, dict[str, Any]]],
                         *, import_id: int | None, verification_id: int | None,
                         common: tuple[Any, ...]) -> None:
        now, _forced, version, shas, outil = common
        # The data versions are written once in ``donnees`` (migration 0002), not per verdict.
        db.execute("INSERT OR IGNORE INTO donnees (version, sha256) VALUES (?, ?)",
                   (version, shas))
        donnees_id = db.execute("SELECT id FROM donnees WHERE version = ? AND sha256 = ?",
                                (version, shas)).fetchone()[0]
        db.executemany(
            "INSERT INTO verdicts (site_id, observation_id, import_id, verification_id, date, "
            "status, code_qp, lib_qp, insee_com, lib_com, distance_bord_m, code_qp_proche, "
            "lib_qp_proche, distance_qp_proche_m, lon, lat, geocodage, motifs, marge_m, "
            "marge_motif, donnees_version, donnees_sha256, outil_version, donnees_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((sid, obs, import_id, verification_id, now, v["status"], v.get("code_qp"),
              v.get("lib_qp"), v.get("insee_com"), v.get("lib_com"), v.get("distance_bord_m"),
              v.get("code_qp_proche"), v.get("lib_qp_proche"), v.get("distance_qp_proche_m"),
              v.get("lon"), v.get("lat"),
              json.dumps(v["geocodage"], ensure_ascii=False) if v.get("geocodage") else None,
              v.get("motifs") or "", v.get("marge_m"), v.get("marge_motif") or None, "", "",
              outil, donnees_id)
             for sid, obs, v in rows))

    # ------------------------------------------------------------------ reading
    def imports(self) -> list[dict[str, Any]]:
        """Every import, oldest first."""
        return [dict(r) | {"colonnes": json.loads(r["colonnes"])}
                for r in self.db.execute("SELECT * FROM imports ORDER BY id")]

    def _states(self, where: str = "", params: Iterable[Any] = ()) -> list[SiteState]:
        """Sites (last observation of each) with their current verdict and decision."""
        # Correlated max(id) lookups on the (site_id, id) indexes: one index probe per site,
        # where joining the GROUP BY views would scan them once per row.
        sql = f"""
            SELECT o.site_id, o.dossier, o.ligne, o.porteur, o.action, o.lieu, o.lieu_affiche,
                   o.id AS observation_id, i.lot,
                   (o.import_id IN (SELECT id FROM imports_courants)) AS present,
                   v.id AS verdict_id, v.status, v.code_qp, v.lib_qp, v.insee_com, v.lib_com,
                   v.distance_bord_m, v.code_qp_proche, v.lib_qp_proche,
                   v.distance_qp_proche_m, v.lon, v.lat, v.geocodage, v.motifs, v.marge_m,
                   v.marge_motif, coalesce(dd.version, v.donnees_version) AS donnees_version,
                   coalesce(dd.sha256, v.donnees_sha256) AS donnees_sha256, v.outil_version,
                   v.date AS verdict_date,
                   x.id AS decision_id, x.decision, x.motif AS decision_motif,
                   x.auteur AS decision_auteur, x.date AS decision_date,
                   x.verdict_id AS decision_verdict_id,
                   dv.status AS dv_status, dv.code_qp AS dv_code_qp, do.lieu AS dv_lieu
            FROM observations o
            JOIN imports i ON i.id = o.import_id
            JOIN verdicts v ON v.id = (SELECT max(id) FROM verdicts WHERE site_id = o.site_id)
            LEFT JOIN donnees dd ON dd.id = v.donnees_id
            LEFT JOIN decisions x
              ON x.id = (SELECT max(id) FROM decisions WHERE site_id = o.site_id)
            LEFT JOIN verdicts dv ON dv.id = x.verdict_id
            LEFT JOIN observations do ON do.id = dv.observation_id
            WHERE o.id = (SELECT max(id) FROM observations WHERE site_id = o.site_id)
            {where}
            ORDER BY i.lot, o.dossier, o.site_id"""
        out = []
        parsed: dict[str, Any] = {}  # the same JSON texts repeat from row to row

        def load(text: str | None) -> Any:
            if not text:
                return None
            if text not in parsed:
                if len(parsed) > 10_000:
                    parsed.clear()
                parsed[text] = json.loads(text)
            return parsed[text]

        for r in self.db.execute(sql, tuple(params)):
            verdict = {k: r[k] for k in (*_VERDICT_FIELDS, "donnees_version",
                                         "outil_version")}
            verdict["id"] = r["verdict_id"]
            verdict["date"] = r["verdict_date"]
            verdict["donnees_sha256"] = load(r["donnees_sha256"])
            verdict["geocodage"] = load(r["geocodage"])
            verdict["statut_libelle"] = self.statuts.get(r["status"], r["status"])
            decision = None
            revoir = None
            if r["decision_id"] is not None:
                decision = {"id": r["decision_id"], "decision": r["decision"],
                            "libelle": DECISIONS[r["decision"]], "motif": r["decision_motif"],
                            "auteur": r["decision_auteur"], "date": r["decision_date"],
                            "verdict_id": r["decision_verdict_id"]}
                why = []
                if r["dv_lieu"] is not None and r["dv_lieu"] != r["lieu"]:
                    why.append("le lieu a changé depuis la décision")
                if (r["dv_status"], r["dv_code_qp"]) != (r["status"], r["code_qp"]) and (
                        why or not agrees(r["decision"], r["status"])):
                    why.append("le verdict calculé a changé depuis la décision ("
                               f"{label_verdict(r['dv_status'], r['dv_code_qp'], self.statuts)} → "
                               f"{label_verdict(r['status'], r['code_qp'], self.statuts)})")
                revoir = " ; ".join(why) or None
            out.append(SiteState(
                site_id=r["site_id"], dossier=r["dossier"], lot=r["lot"],
                present=bool(r["present"]), ligne=r["ligne"], porteur=r["porteur"],
                action=r["action"], lieu=r["lieu_affiche"], verdict=verdict,
                decision=decision, decision_a_revoir=revoir))
        return out

    def sites(self, *, lot: str | None = None, a_revoir: bool = False,
              retires: bool = False) -> list[SiteState]:
        """Current sites (of ``lot``), only those to review with ``a_revoir``; sites removed
        by a later import too with ``retires``."""
        where, params = [], []
        if lot:
            where.append("i.lot = ?")
            params.append(lot)
        if not retires:
            where.append("o.import_id IN (SELECT id FROM imports_courants)")
        states = self._states("".join(" AND " + w for w in where), params)
        return [s for s in states if s.a_revoir] if a_revoir else states

    def site(self, site_id: str) -> SiteState:
        """One site (current or removed); :class:`RegistreError` when unknown."""
        found = self._states("AND o.site_id = ?", (site_id,))
        if not found:
            raise RegistreError(f"Site inconnu du registre : « {site_id} ».",
                                hint="Listez les sites avec « qpv-geo registre liste ».")
        return found[0]

    def observation_values(self, site_id: str) -> dict[str, Any]:
        """The cells of the site's last imported row."""
        r = self.db.execute("SELECT valeurs FROM observations WHERE site_id = ? "
                            "ORDER BY id DESC LIMIT 1", (site_id,)).fetchone()
        return json.loads(r[0]) if r else {}

    # ------------------------------------------------------------------ decisions
    def decider(self, site_id: str, decision: str, motif: str, auteur: str) -> dict[str, Any]:
        """Record an instructor's decision on a site (the computed verdict is kept)."""
        decision = normalize_decision(decision)
        motif, auteur = (motif or "").strip(), (auteur or "").strip()
        if not motif:
            raise RegistreError("Le motif de la décision est obligatoire.",
                                hint="Expliquez en une phrase pourquoi le site est "
                                "(ou n'est pas) éligible : --motif « … ».")
        if not auteur:
            raise RegistreError("Le nom de la personne qui décide est obligatoire.",
                                hint="Indiquez votre nom : --auteur « Prénom Nom ».")
        now = _now()
        with _db.write(self.db) as db:
            v = db.execute("SELECT v.id, o.dossier FROM verdicts v JOIN observations o "
                           "ON o.id = v.observation_id WHERE v.id = "
                           "(SELECT max(id) FROM verdicts WHERE site_id = ?)",
                           (site_id,)).fetchone()
            if v is None:
                raise RegistreError(f"Site inconnu du registre : « {site_id} ».",
                                    hint="Listez les sites avec « qpv-geo registre liste ».")
            did = db.execute(
                "INSERT INTO decisions (site_id, verdict_id, date, decision, motif, auteur) "
                "VALUES (?, ?, ?, ?, ?, ?)", (site_id, v[0], now, decision, motif,
                                              auteur)).lastrowid
            db.execute("INSERT INTO journal (date, type, site_id, dossier, auteur, detail) "
                       "VALUES (?, 'decision', ?, ?, ?, ?)",
                       (now, site_id, v[1], auteur, json.dumps(
                           {"decision": decision, "motif": motif, "verdict_id": v[0]},
                           ensure_ascii=False)))
        return {"id": did, "site_id": site_id, "decision": decision, "motif": motif,
                "auteur": auteur, "date": now, "verdict_id": v[0]}

    def marquer_bilan(self, dossier: str, fourni: bool, auteur: str,
                      motif: str | None = None) -> None:
        """Record in the register whether a dossier's bilans N-1 were received."""
        auteur = (auteur or "").strip()
        if not auteur:
            raise RegistreError("Le nom de la personne est obligatoire.",
                                hint="Indiquez votre nom : --auteur « Prénom Nom ».")
        now = _now()
        with _db.write(self.db) as db:
            if db.execute("SELECT 1 FROM observations WHERE dossier = ? LIMIT 1",
                          (dossier,)).fetchone() is None:
                raise RegistreError(f"Dossier inconnu du registre : « {dossier} ».",
                                    hint="Listez les dossiers : « qpv-geo registre dossiers ».")
            db.execute("INSERT INTO drapeaux (dossier, nom, valeur, motif, auteur, date) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (dossier, DRAPEAU_BILAN, int(bool(fourni)), motif, auteur, now))
            db.execute("INSERT INTO journal (date, type, dossier, auteur, detail) "
                       "VALUES (?, 'bilan', ?, ?, ?)",
                       (now, dossier, auteur, json.dumps({"fourni": bool(fourni),
                                                          "motif": motif}, ensure_ascii=False)))

    # ------------------------------------------------------------------ dossiers
    def dossiers(self, *, lot: str | None = None) -> list[DossierState]:
        """Every current dossier with every criterion (place included)."""
        sites = self.sites(lot=lot)
        by: dict[tuple[str, str], list[SiteState]] = defaultdict(list)
        for s in sites:
            by[(s.lot, s.dossier)].append(s)
        stored: dict[str, list[Critere]] = defaultdict(list)
        for r in self.db.execute(
                "SELECT c.* FROM criteres c JOIN imports_courants i ON i.id = c.import_id "
                "ORDER BY c.id"):
            stored[r["dossier"]].append(Critere(r["critere"], r["etat"], r["valeur"],
                                                r["motif"], r["source"]))
        flags = {r["dossier"]: (bool(r["valeur"]), r["auteur"], r["date"], r["motif"])
                 for r in self.db.execute("SELECT * FROM drapeaux_courants WHERE nom = ?",
                                          (DRAPEAU_BILAN,))}
        out = []
        for (lot_name, dossier), ss in by.items():
            lieu = critere_lieu([(s.final, s.decision["auteur"] if s.decision else None)
                                 for s in ss], lambda st: self.statuts.get(
                                     st, DECISIONS.get(st, st)))
            if self.criteres["lieu"] != lieu.libelle:  # another territory names its QPV
                lieu = dataclasses.replace(lieu, nom=self.criteres["lieu"])
            crit = [lieu]
            for c in stored.get(dossier, []):
                if c.critere == "bilan" and dossier in flags:
                    c = critere_bilan([], col_bilan=None, drapeau=flags[dossier])
                crit.append(c)
            out.append(DossierState(dossier=dossier, lot=lot_name, porteur=ss[0].porteur,
                                    sites=[s.site_id for s in ss], criteres=crit))
        return out

    # ------------------------------------------------------------------ history and diff
    def historique(self, site_id: str) -> list[dict[str, Any]]:
        """Everything that happened to a site, oldest first: imports (and moves), verdicts,
        decisions, removals."""
        self.site(site_id)  # unknown → RegistreError
        events: list[dict[str, Any]] = []
        prev_lieu = None
        seen_imports: dict[str, list[int]] = defaultdict(list)
        for r in self.db.execute(
                "SELECT o.id, o.import_id, o.lieu, o.lieu_affiche, o.ligne, i.date, i.fichier, "
                "i.lot, i.auteur FROM observations o JOIN imports i ON i.id = o.import_id "
                "WHERE o.site_id = ? ORDER BY o.id", (site_id,)):
            seen_imports[r["lot"]].append(r["import_id"])
            kind = "import" if prev_lieu is None else \
                "lieu_modifie" if r["lieu"] != prev_lieu else "reimport"
            text = {"import": "ajouté au registre", "reimport": "présent dans le nouveau fichier",
                    "lieu_modifie": "lieu modifié dans le nouveau fichier"}[kind]
            events.append({"date": r["date"], "type": kind, "auteur": r["auteur"],
                           "texte": f"{text} : {r['lieu_affiche']} (fichier {r['fichier']}, "
                                    f"ligne {r['ligne']}, import n° {r['import_id']})"})
            prev_lieu = r["lieu"]
        for lot, ids in seen_imports.items():
            later = self.db.execute("SELECT id, date, fichier FROM imports WHERE lot = ? AND "
                                    "id > ? ORDER BY id", (lot, max(ids))).fetchone()
            if later is not None:
                events.append({"date": later["date"], "type": "retire", "auteur": None,
                               "texte": f"absent du fichier {later['fichier']} (import n° "
                                        f"{later['id']}) : retiré du registre courant"})
        for r in self.db.execute(
                "SELECT v.*, coalesce(d.version, v.donnees_version) AS version_donnees "
                "FROM verdicts v LEFT JOIN donnees d ON d.id = v.donnees_id "
                "WHERE v.site_id = ? ORDER BY v.id", (site_id,)):
            cause = (f"import n° {r['import_id']}" if r["import_id"] is not None
                     else f"revérification n° {r['verification_id']}")
            events.append({"date": r["date"], "type": "verdict", "auteur": None,
                           "texte": f"verdict calculé ({cause}) : "
                                    f"{label_verdict(r['status'], r['code_qp'], self.statuts)}"
                                    " — marge "
                                    f"{_m(r['marge_m'])} — données {r['version_donnees']}",
                           "verdict_id": r["id"]})
        for r in self.db.execute("SELECT * FROM decisions WHERE site_id = ? ORDER BY id",
                                 (site_id,)):
            events.append({"date": r["date"], "type": "decision", "auteur": r["auteur"],
                           "texte": f"décision « {DECISIONS[r['decision']]} » par "
                                    f"{r['auteur']} : {r['motif']}",
                           "decision_id": r["id"]})
        order = {"import": 0, "reimport": 0, "lieu_modifie": 0, "verdict": 1, "decision": 2,
                 "retire": 3}
        events.sort(key=lambda e: (e["date"], order[e["type"]]))
        return events

    def diff(self, avant: int | None = None, apres: int | None = None, *,
             lot: str = LOT_DEFAUT) -> Diff:
        """Diff between two imports (default: the last two of ``lot``)."""
        if apres is None:
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM imports WHERE lot = ? ORDER BY id DESC LIMIT 2", (lot,))]
            if not ids:
                raise RegistreError(f"Aucun import dans le lot « {lot} ».",
                                    hint="Importez un fichier : qpv-geo registre ajouter "
                                    "FICHIER.")
            apres = ids[0]
            avant = ids[1] if len(ids) > 1 and avant is None else avant
        for i in (avant, apres):
            if i is not None and self.db.execute("SELECT 1 FROM imports WHERE id = ?",
                                                 (i,)).fetchone() is None:
                raise RegistreError(f"Import n° {i} inconnu.",
                                    hint="Listez les imports : qpv-geo registre imports.")
        return self._diff(self.db, avant, apres)

    def _diff(self, db: sqlite3.Connection, avant: int | None, apres: int) -> Diff:
        def load(import_id: int) -> dict[str, sqlite3.Row]:
            return {r["site_id"]: r for r in db.execute(
                "SELECT o.site_id, o.dossier, o.lieu, o.lieu_affiche, o.ligne, v.status, "
                "v.code_qp FROM observations o JOIN verdicts v ON v.id = "
                "(SELECT max(id) FROM verdicts WHERE observation_id = o.id) "
                "WHERE o.import_id = ?", (import_id,))}

        new = load(apres)
        diff = Diff(avant=avant, apres=apres)
        if avant is None:
            diff.nouveaux = [_brief(r, self.statuts) for r in new.values()]
            return diff
        old = load(avant)
        diff.nouveaux = [_brief(r, self.statuts) for k, r in new.items() if k not in old]
        diff.retires = [_brief(r, self.statuts) for k, r in old.items() if k not in new]
        for k in sorted(new.keys() & old.keys()):
            a, b = old[k], new[k]
            if a["lieu"] != b["lieu"]:
                diff.deplaces.append({**_brief(b, self.statuts), "avant": a["lieu_affiche"],
                                      "apres": b["lieu_affiche"]})
            if (a["status"], a["code_qp"]) != (b["status"], b["code_qp"]):
                diff.verdicts_changes.append({
                    **_brief(b, self.statuts),
                    "avant": label_verdict(a["status"], a["code_qp"], self.statuts),
                    "apres": label_verdict(b["status"], b["code_qp"], self.statuts)})
        return diff

    # ------------------------------------------------------------------ re-check
    def reverifier(self, *, engine: Engine | None = None, geocoder: Geocoder | None = None,
                   auteur: str | None = None) -> Reverification:
        """Judge every current site again with the current data, margin and geocoder.

        A new verdict is appended for each site whose verdict, point, data version or margin
        differs; the sites whose verdict (status or quartier) changed are returned with why,
        and the decided ones among them are flagged for a second look.
        """
        engine = engine or _engine(self.settings)
        current = {r["site_id"]: r for r in self.db.execute(
            "SELECT o.site_id, o.dossier, o.id AS observation_id, o.import_id, o.ligne, "
            "o.valeurs, v.status, v.code_qp, v.lon, v.lat, "
            "coalesce(d.version, v.donnees_version) AS donnees_version, "
            "coalesce(d.sha256, v.donnees_sha256) AS donnees_sha256, "
            "v.marge_m, v.geocodage, x.decision, x.auteur, x.date AS ddate, x.motif "
            "FROM observations o "
            "JOIN verdicts v ON v.id = (SELECT max(id) FROM verdicts WHERE site_id = o.site_id) "
            "LEFT JOIN donnees d ON d.id = v.donnees_id "
            "LEFT JOIN decisions x "
            "  ON x.id = (SELECT max(id) FROM decisions WHERE site_id = o.site_id) "
            "WHERE o.import_id IN (SELECT id FROM imports_courants) ORDER BY o.id")}
        groups: dict[int, list[sqlite3.Row]] = defaultdict(list)
        for r in current.values():
            groups[r["import_id"]].append(r)
        shas = json.dumps({k: v.sha256 for k, v in engine.reference.layers.items()},
                          sort_keys=True)
        new_rows: list[tuple[str, int, dict[str, Any]]] = []
        changes: list[Changement] = []
        for import_id, rows in groups.items():
            meta = json.loads(self.db.execute("SELECT colonnes FROM imports WHERE id = ?",
                                              (import_id,)).fetchone()[0])
            frame = pd.DataFrame.from_records([json.loads(r["valeurs"]) for r in rows],
                                              columns=meta["colonnes"])
            frame.index = pd.Index([r["ligne"] for r in rows], name="ligne")
            frame = frame.fillna("").astype(str)
            mapping = ColumnMapping(**meta["batch"])
            out = validate_sites(frame, mapping, settings=self.settings, engine=engine,
                                 geocoder=geocoder).frame
            for r, v in zip(rows, _verdict_rows(out), strict=True):
                why = _why(r, v, engine, shas)
                if not why:
                    continue
                new_rows.append((r["site_id"], r["observation_id"], v))
                if (r["status"], r["code_qp"]) != (v["status"], v.get("code_qp")):
                    decision = None if r["decision"] is None else {
                        "decision": r["decision"], "libelle": DECISIONS[r["decision"]],
                        "auteur": r["auteur"], "date": r["ddate"], "motif": r["motif"]}
                    changes.append(Changement(
                        site_id=r["site_id"], dossier=r["dossier"],
                        avant={"status": r["status"], "code_qp": r["code_qp"],
                               "libelle": label_verdict(r["status"], r["code_qp"], self.statuts)},
                        apres={"status": v["status"], "code_qp": v.get("code_qp"),
                               "libelle": label_verdict(v["status"], v.get("code_qp"),
                                                        self.statuts)},
                        pourquoi=why, decision=decision,
                        decision_a_revoir=decision is not None and not agrees(
                            decision["decision"], v["status"])))
        now = _now()
        with _db.write(self.db) as db:
            vid = db.execute(
                "INSERT INTO verifications (date, donnees_version, donnees_sha256, marge_m, "
                "outil_version, auteur, sites, changements) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, engine.reference.version, shas, engine.marge_m, __version__, auteur,
                 len(current), len(changes))).lastrowid
            self._insert_verdicts(db, new_rows, import_id=None, verification_id=vid,
                                  common=(now, engine.marge_m, engine.reference.version, shas,
                                          __version__))
            db.execute("INSERT INTO journal (date, type, auteur, detail) "
                       "VALUES (?, 'reverification', ?, ?)",
                       (now, auteur, json.dumps(
                           {"verification_id": vid, "sites": len(current),
                            "nouveaux_verdicts": len(new_rows),
                            "verdicts_changes": [c.site_id for c in changes]},
                           ensure_ascii=False)))
        return Reverification(verification_id=vid, sites=len(current),
                              nouveaux_verdicts=len(new_rows), changements=changes)

    def journal(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The latest entries of the audit journal, newest first."""
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in self.db.execute(
            "SELECT * FROM journal ORDER BY id DESC LIMIT ?", (limit,))]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _engine(settings: Settings) -> Engine:
    from qpv_geo.eligibility import engine_from_settings

    return engine_from_settings(settings)


def _annuaire(annuaire: Annuaire | bool | None, settings: Settings
              ) -> tuple[Annuaire | None, bool]:
    if annuaire is True:
        from qpv_geo.registre.annuaire import Annuaire

        return Annuaire.from_settings(settings), True
    if annuaire is False or annuaire is None:
        return None, False
    return annuaire, False


_LAYER_NAMES = {"qpv": "périmètres QPV", "qva": "périmètres QVA", "communes": "communes",
                "qpv_hors_sem": "QPV hors SEM"}


def _m(value: float | None) -> str:
    return "—" if value is None else f"{value:g} m"


def _brief(r: sqlite3.Row, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"site_id": r["site_id"], "dossier": r["dossier"], "ligne": r["ligne"],
            "lieu": r["lieu_affiche"], "verdict": label_verdict(r["status"], r["code_qp"], labels)}


def _display_places(frame: pd.DataFrame, mapping: ColumnMapping) -> list[str]:
    adr = cells(frame, mapping.adresse)
    cp = cells(frame, mapping.code_postal)
    com = cells(frame, mapping.commune)
    pts = [(cells(frame, mapping.lat), cells(frame, mapping.lon), "lat {} , lon {}"),
           (cells(frame, mapping.x), cells(frame, mapping.y), "x {} , y {} (Lambert-93)")]
    out = []
    for i in range(len(frame)):
        text = ", ".join(p for p in (adr[i], " ".join(q for q in (cp[i], com[i]) if q)) if p)
        if not text:
            for a, b, fmt in pts:
                if a[i] or b[i]:
                    text = fmt.format(a[i], b[i]).replace(" ,", ",")
                    break
        out.append(text or "(lieu non renseigné)")
    return out


def _why(old: sqlite3.Row, new: dict[str, Any], engine: Engine, shas: str) -> list[str]:
    """Why a re-check's verdict differs from the stored one (empty: nothing differs)."""
    why = []
    if old["donnees_sha256"] != shas or old["donnees_version"] != engine.reference.version:
        before, after = json.loads(old["donnees_sha256"]), json.loads(shas)
        layers = [f"{_LAYER_NAMES.get(k, k)} sha256 {(before.get(k) or 'aucune')[:8]} → "
                  f"{(after.get(k) or 'aucune')[:8]}"
                  for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        why.append("nouvelles données de référence : " + (", ".join(layers) or
                                                          engine.reference.version))
    a_m, b_m = old["marge_m"], new.get("marge_m")
    if (a_m is None) != (b_m is None) or (a_m is not None and not math.isclose(a_m, b_m)):
        why.append(f"marge changée : {_m(a_m)} → {_m(b_m)}")
    a = (old["lon"], old["lat"])
    b = (new.get("lon"), new.get("lat"))
    if (a[0] is None) != (b[0] is None):
        why.append("géocodage : point " + ("trouvé" if b[0] is not None else "perdu"))
    elif a[0] is not None and b[0] is not None:
        ax, ay = engine.lonlat_to_plan([a[0]], [a[1]])
        bx, by = engine.lonlat_to_plan([b[0]], [b[1]])
        moved = float(np.hypot(ax[0] - bx[0], ay[0] - by[0]))
        if moved > 0.5:
            why.append(f"nouveau géocodage : point déplacé de {moved:.0f} m")
    if not why and (old["status"], old["code_qp"]) != (new["status"], new.get("code_qp")):
        why.append("nouveau calcul (même point, mêmes données)")
    return why


__all__ = ["A_REVOIR", "DECISIONS", "LOT_DEFAUT", "Changement", "Diff", "DossierState",
           "ImportResult", "Registre", "Reverification", "SiteState", "default_path",
           "normalize_decision"]
