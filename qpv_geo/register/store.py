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
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.eligibility.wording import libelles_reglages
from qpv_geo.exceptions import InputFileError, RegistreError
from qpv_geo.register import database
from qpv_geo.register._geocoding import (
    SOURCE_PANNE,
    RegisterGeocoder,
    result_from_json,
    result_to_json,
)
from qpv_geo.register.columns import (
    RegistreColumns,
    cells,
    detect_registre_columns,
    place_keys,
    site_ids,
)
from qpv_geo.register.criteria import (
    Critere,
    critere_bilan,
    critere_lieu,
    critere_periode,
    critere_porteur,
    criteres_de,
)
from qpv_geo.register.directory import Annuaire
from qpv_geo.register.statements import (
    A_REVOIR,
    DECISIONS,
    LOT_DEFAUT,
    Annulation,
    Changement,
    Diff,
    DossierState,
    ImportResult,
    Reverification,
    SiteState,
    agrees,
    heure_paris,
    label_verdict,
    normalize_decision,
)
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Engine
    from qpv_geo.geocoding import Geocoder
    from qpv_geo.register.directory import Annuaire

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
        self.db = database.connect(self.path)

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

        return libelles_reglages(self.settings).statuts

    @functools.cached_property
    def criteres(self) -> dict[str, str]:
        """Names of the dossier criteria in the register's territory's words."""

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
        # Addresses the lot's current verdicts were judged on are not geocoded again: the
        # same address keeps its point (an outage or another answer of the service cannot
        # change a verdict by a mere re-import); « reverifier --regeocoder » asks anew.
        geo = RegisterGeocoder(self.settings, geocoder, stored=self._lot_geocodes(lot))
        result = validate_sites(frame, mapping, settings=self.settings, engine=engine,
                                geocoder=geo, progress=progress)
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
        with database.write(self.db) as db:
            prev = db.execute("SELECT id FROM imports_courants WHERE lot = ?",
                              (lot,)).fetchone()
            import_id = db.execute(
                "INSERT INTO imports (lot, date, fichier, fichier_sha256, lignes, colonnes, "
                "donnees_version, donnees_sha256, marge_m, outil_version, auteur) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (lot, now, path.name, sha256_file(path), len(frame),
                 json.dumps(colonnes_json, ensure_ascii=False), engine.reference.version,
                 common[3], engine.marge_m, __version__, auteur)).lastrowid
            refs = _site_refs(db, lot, [(str(d), str(i)) for d, i in
                                        zip(dossiers, ids, strict=True)])
            base = db.execute("SELECT coalesce(max(id), 0) FROM observations").fetchone()[0]
            db.executemany(
                "INSERT INTO observations (id, import_id, site_id, dossier, ligne, porteur, "
                "action, lieu, lieu_affiche, valeurs, site_ref) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((base + i + 1, import_id, str(ids[i]), str(dossiers[i]), int(lignes[i]),
                  porteur[i] or None, action[i] or None, str(lieux[i]), affiche[i],
                  json.dumps(records[i], ensure_ascii=False, default=str), refs[i])
                 for i in range(len(frame))))
            self._insert_verdicts(db, [(refs[i], str(ids[i]), base + i + 1, verdicts[i])
                                       for i in range(len(frame))],
                                  import_id=import_id, verification_id=None, common=common)
            _store_geocodes(db, geo.used, import_id=import_id, verification_id=None)
            db.executemany(
                "INSERT INTO criteres (import_id, dossier, critere, etat, valeur, motif, source,"
                " date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((import_id, d, c.critere, c.etat, c.valeur, c.motif, c.source, now)
                 for d, cs in criteres.items() for c in cs))
            diff = self._diff(db, prev[0] if prev else None, import_id)
            db.execute(
                "INSERT INTO journal (date, type, auteur, lot, detail) "
                "VALUES (?, 'import', ?, ?, ?)",
                (now, auteur, lot, json.dumps(
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

    def _lot_geocodes(self, lot: str) -> dict[str, Any]:
        """The geocoding results the current verdicts of ``lot``'s sites were judged on."""
        origins = self.db.execute(
            "SELECT v.import_id, v.verification_id FROM sites s JOIN verdicts v ON "
            "v.id = (SELECT max(id) FROM verdicts WHERE site_ref = s.id) WHERE s.lot = ? "
            "GROUP BY v.import_id, v.verification_id ORDER BY max(v.id)",
            (lot,)).fetchall()
        out: dict[str, Any] = {}
        for import_id, verification_id in origins:  # the latest origin wins
            out.update(_stored_geocodes(self.db, (import_id, verification_id)))
        return out

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
    def _insert_verdicts(db: sqlite3.Connection,
                         rows: list[tuple[int, str, int, dict[str, Any]]],
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
            "marge_motif, donnees_version, donnees_sha256, outil_version, donnees_id, "
            "site_ref, cause) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?)",
            ((sid, obs, import_id, verification_id, now, v["status"], v.get("code_qp"),
              v.get("lib_qp"), v.get("insee_com"), v.get("lib_com"), v.get("distance_bord_m"),
              v.get("code_qp_proche"), v.get("lib_qp_proche"), v.get("distance_qp_proche_m"),
              v.get("lon"), v.get("lat"),
              json.dumps(v["geocodage"], ensure_ascii=False) if v.get("geocodage") else None,
              v.get("motifs") or "", v.get("marge_m"), v.get("marge_motif") or None, "", "",
              outil, donnees_id, ref, v.get("cause"))
             for ref, sid, obs, v in rows))

    # ------------------------------------------------------------------ reading
    def imports(self) -> list[dict[str, Any]]:
        """Every import, oldest first (``annulation``: who withdrew it, when and why)."""
        annulees = {r["import_id"]: dict(r) | {"date_paris": heure_paris(r["date"])}
                    for r in self.db.execute("SELECT * FROM annulations")}
        return [dict(r) | {"colonnes": json.loads(r["colonnes"]),
                           "date_paris": heure_paris(r["date"]),
                           "annulation": annulees.get(r["id"])}
                for r in self.db.execute("SELECT * FROM imports ORDER BY id")]

    def _states(self, where: str = "", params: Iterable[Any] = ()) -> list[SiteState]:
        """Sites (last observation of each, imports withdrawn aside) with their current
        verdict and decision."""
        # Correlated max(id) lookups on the (site_ref, id) indexes: one index probe per site.
        # A site's current observation and verdict come from imports not withdrawn; a site
        # seen only in withdrawn imports keeps its last ones (and is not present).
        sql = f"""
            SELECT s.id AS cle, s.site_id, s.dossier, s.lot, o.ligne, o.porteur, o.action,
                   o.lieu, o.lieu_affiche, o.id AS observation_id, o.import_id,
                   (o.import_id IN (SELECT id FROM imports_courants)) AS present,
                   (o.import_id IN (SELECT import_id FROM annulations)) AS annule,
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
            FROM sites s
            JOIN observations o ON o.id = coalesce(
                (SELECT max(id) FROM observations WHERE site_ref = s.id
                   AND import_id NOT IN (SELECT import_id FROM annulations)),
                (SELECT max(id) FROM observations WHERE site_ref = s.id))
            JOIN verdicts v ON v.id = coalesce(
                (SELECT max(w.id) FROM verdicts w JOIN observations wo
                   ON wo.id = w.observation_id
                 WHERE w.site_ref = s.id
                   AND wo.import_id NOT IN (SELECT import_id FROM annulations)),
                (SELECT max(id) FROM verdicts WHERE site_ref = s.id))
            LEFT JOIN donnees dd ON dd.id = v.donnees_id
            LEFT JOIN decisions x
              ON x.id = (SELECT max(id) FROM decisions WHERE site_ref = s.id)
            LEFT JOIN verdicts dv ON dv.id = x.verdict_id
            LEFT JOIN observations do ON do.id = dv.observation_id
            WHERE 1 {where}
            ORDER BY s.lot, s.dossier, s.site_id"""
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
            verdict["date_paris"] = heure_paris(r["verdict_date"])
            verdict["donnees_sha256"] = load(r["donnees_sha256"])
            verdict["geocodage"] = load(r["geocodage"])
            verdict["statut_libelle"] = self.statuts.get(r["status"], r["status"])
            decision = None
            revoir = None
            if r["decision_id"] is not None:
                decision = {"id": r["decision_id"], "decision": r["decision"],
                            "libelle": DECISIONS[r["decision"]], "motif": r["decision_motif"],
                            "auteur": r["decision_auteur"], "date": r["decision_date"],
                            "date_paris": heure_paris(r["decision_date"]),
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
                decision=decision, decision_a_revoir=revoir, cle=r["cle"],
                observation_id=r["observation_id"], import_annule=bool(r["annule"])))
        return out

    def sites(self, *, lot: str | None = None, a_revoir: bool = False,
              retires: bool = False, en_attente: bool = False) -> list[SiteState]:
        """Current sites (of ``lot``), only those to review with ``a_revoir``, only those
        waiting for their porteur with ``en_attente``; sites removed by a later import (or
        whose import was withdrawn) too with ``retires``."""
        where, params = [], []
        if lot:
            where.append("s.lot = ?")
            params.append(lot)
        if not retires:
            where.append("o.import_id IN (SELECT id FROM imports_courants)")
        states = self._states("".join(" AND " + w for w in where), params)
        if a_revoir:
            states = [s for s in states if s.a_revoir]
        if en_attente:
            states = [s for s in states if s.en_attente]
        return states

    def _resolve(self, site_id: str, lot: str | None = None,
                 dossier: str | None = None) -> int:
        """The register's number of the site (lot, dossier, site); :class:`RegistreError`
        when unknown or when several lots or dossiers have a site of that id."""
        sql, params = "SELECT id, lot, dossier FROM sites WHERE site_id = ?", [str(site_id)]
        for col, value in (("lot", lot), ("dossier", dossier)):
            if value:
                sql += f" AND {col} = ?"
                params.append(str(value))
        rows = self.db.execute(sql + " ORDER BY lot, dossier", params).fetchall()
        if not rows:
            where = "".join(f" ({k} « {v} »)" for k, v in (("lot", lot), ("dossier", dossier))
                            if v)
            raise RegistreError(f"Site inconnu du registre : « {site_id} »{where}.",
                                hint="Listez les sites avec « qpv-geo registre liste ».")
        if len(rows) > 1:
            lieux = " ; ".join(f"lot « {r['lot']} », dossier « {r['dossier']} »" for r in rows)
            raise RegistreError(
                f"Le site « {site_id} » existe dans plusieurs lots ou dossiers : {lieux}.",
                hint="Précisez le lot du site (--lot) et, s'il le faut, son dossier "
                "(--dossier).")
        return int(rows[0]["id"])

    def site(self, site_id: str, *, lot: str | None = None,
             dossier: str | None = None) -> SiteState:
        """One site (current or removed) of ``lot`` and ``dossier`` (needed only when
        another lot or dossier has a site of the same id); :class:`RegistreError` when
        unknown or ambiguous."""
        return self._states("AND s.id = ?", (self._resolve(site_id, lot, dossier),))[0]

    def observation_values(self, site_id: str, *, lot: str | None = None,
                           dossier: str | None = None) -> dict[str, Any]:
        """The cells of the site's last imported row."""
        cle = self._resolve(site_id, lot, dossier)
        r = self.db.execute(
            "SELECT valeurs FROM observations WHERE site_ref = ? ORDER BY "
            "(import_id IN (SELECT import_id FROM annulations)), id DESC LIMIT 1",
            (cle,)).fetchone()
        return json.loads(r[0]) if r else {}

    # ------------------------------------------------------------------ decisions
    def decider(self, site_id: str, decision: str, motif: str, auteur: str, *,
                lot: str | None = None, dossier: str | None = None) -> dict[str, Any]:
        """Record an instructor's decision on a site (the computed verdict is kept).

        ``decision``: « éligible », « non éligible » or « en attente » (du porteur: then
        ``motif`` says what was asked of the porteur).
        """
        decision = normalize_decision(decision)
        motif, auteur = (motif or "").strip(), (auteur or "").strip()
        if not motif:
            if decision == "en_attente":
                raise RegistreError("Indiquez ce qui a été demandé au porteur.",
                                    hint="Par exemple : « plan du local et bail » "
                                    "(--motif).")
            raise RegistreError("Le motif de la décision est obligatoire.",
                                hint="Expliquez en une phrase pourquoi le site est "
                                "(ou n'est pas) éligible : --motif « … ».")
        if not auteur:
            raise RegistreError("Le nom de la personne qui décide est obligatoire.",
                                hint="Indiquez votre nom : --auteur « Prénom Nom ».")
        cle = self._resolve(site_id, lot, dossier)
        now = _now()
        with database.write(self.db) as db:
            # the verdict the person saw: the site's current one (withdrawn imports aside)
            st = self._states("AND s.id = ?", (cle,))[0]
            v = (st.verdict["id"], st.dossier, st.lot)
            did = db.execute(
                "INSERT INTO decisions (site_id, verdict_id, date, decision, motif, auteur, "
                "site_ref) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (site_id, v[0], now, decision, motif, auteur, cle)).lastrowid
            db.execute("INSERT INTO journal (date, type, site_id, dossier, auteur, detail, "
                       "site_ref, lot) VALUES (?, 'decision', ?, ?, ?, ?, ?, ?)",
                       (now, site_id, v[1], auteur, json.dumps(
                           {"decision": decision, "motif": motif, "verdict_id": v[0]},
                           ensure_ascii=False), cle, v[2]))
        return {"id": did, "site_id": site_id, "lot": v[2], "dossier": v[1],
                "decision": decision, "libelle": DECISIONS[decision], "motif": motif,
                "auteur": auteur, "date": now, "date_paris": heure_paris(now),
                "verdict_id": v[0]}

    def _lot_of_dossier(self, dossier: str, lot: str | None) -> str:
        sql = ("SELECT DISTINCT i.lot FROM observations o JOIN imports i ON i.id = o.import_id "
               "WHERE o.dossier = ?")
        params = [dossier]
        if lot:
            sql += " AND i.lot = ?"
            params.append(lot)
        lots = [r[0] for r in self.db.execute(sql + " ORDER BY i.lot", params)]
        if not lots:
            raise RegistreError(f"Dossier inconnu du registre : « {dossier} »"
                                + (f" (lot « {lot} »)." if lot else "."),
                                hint="Listez les dossiers : « qpv-geo registre dossiers ».")
        if len(lots) > 1:
            raise RegistreError(f"Le dossier « {dossier} » existe dans plusieurs lots : "
                                + ", ".join(f"« {x} »" for x in lots) + ".",
                                hint="Précisez le lot du dossier (--lot).")
        return lots[0]

    def marquer_bilan(self, dossier: str, fourni: bool, auteur: str,
                      motif: str | None = None, *, lot: str | None = None) -> None:
        """Record in the register whether a dossier's bilans N-1 were received."""
        auteur = (auteur or "").strip()
        if not auteur:
            raise RegistreError("Le nom de la personne est obligatoire.",
                                hint="Indiquez votre nom : --auteur « Prénom Nom ».")
        lot = self._lot_of_dossier(dossier, lot)
        now = _now()
        with database.write(self.db) as db:
            db.execute("INSERT INTO drapeaux (dossier, nom, valeur, motif, auteur, date, lot) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (dossier, DRAPEAU_BILAN, int(bool(fourni)), motif, auteur, now, lot))
            db.execute("INSERT INTO journal (date, type, dossier, auteur, detail, lot) "
                       "VALUES (?, 'bilan', ?, ?, ?, ?)",
                       (now, dossier, auteur, json.dumps({"fourni": bool(fourni),
                                                          "motif": motif}, ensure_ascii=False),
                        lot))

    # ------------------------------------------------------------------ withdrawal
    def annuler_import(self, import_id: int, *, auteur: str, motif: str) -> Annulation:
        """Withdraw import n° ``import_id`` (a wrong file, a wrong lot): its sites leave the
        current lists — the lot's previous import, if any, is current again — and nothing
        is erased: the import, its verdicts and this withdrawal stay in the history."""
        auteur, motif = (auteur or "").strip(), (motif or "").strip()
        if not auteur:
            raise RegistreError("Le nom de la personne qui annule l'import est obligatoire.",
                                hint="Indiquez votre nom : --auteur « Prénom Nom ».")
        if not motif:
            raise RegistreError("Le motif de l'annulation est obligatoire.",
                                hint="Expliquez en une phrase pourquoi l'import est annulé "
                                "(--motif).")
        now = _now()
        with database.write(self.db) as db:
            imp = _import_row(db, import_id)
            if db.execute("SELECT 1 FROM annulations WHERE import_id = ?",
                          (imp["id"],)).fetchone() is not None:
                raise RegistreError(f"L'import n° {imp['id']} est déjà annulé.",
                                    hint="Listez les imports : qpv-geo registre imports.")
            was_current = db.execute("SELECT 1 FROM imports_courants WHERE id = ?",
                                     (imp["id"],)).fetchone() is not None
            sites = db.execute("SELECT count(*) FROM observations WHERE import_id = ?",
                               (imp["id"],)).fetchone()[0]
            aid = db.execute("INSERT INTO annulations (import_id, date, auteur, motif) "
                             "VALUES (?, ?, ?, ?)", (imp["id"], now, auteur, motif)).lastrowid
            back = db.execute("SELECT id FROM imports_courants WHERE lot = ?",
                              (imp["lot"],)).fetchone()
            courant = back[0] if back else None
            db.execute("INSERT INTO journal (date, type, auteur, lot, detail) "
                       "VALUES (?, 'annulation', ?, ?, ?)",
                       (now, auteur, imp["lot"], json.dumps(
                           {"import_id": imp["id"], "fichier": imp["fichier"], "motif": motif,
                            "sites": sites, "import_courant": courant},
                           ensure_ascii=False)))
        return Annulation(id=aid, import_id=imp["id"], lot=imp["lot"], fichier=imp["fichier"],
                          sites=sites, auteur=auteur, motif=motif, date=now,
                          import_courant=courant, etait_courant=was_current)

    # ------------------------------------------------------------------ dossiers
    def dossiers(self, *, lot: str | None = None) -> list[DossierState]:
        """Every current dossier with every criterion (place included)."""
        sites = self.sites(lot=lot)
        by: dict[tuple[str, str], list[SiteState]] = defaultdict(list)
        for s in sites:
            by[(s.lot, s.dossier)].append(s)
        stored: dict[tuple[str, str], list[Critere]] = defaultdict(list)
        for r in self.db.execute(
                "SELECT c.*, i.lot FROM criteres c JOIN imports_courants i "
                "ON i.id = c.import_id ORDER BY c.id"):
            stored[(r["lot"], r["dossier"])].append(Critere(r["critere"], r["etat"],
                                                            r["valeur"], r["motif"],
                                                            r["source"]))
        flags = {(r["lot"], r["dossier"]): (bool(r["valeur"]), r["auteur"], r["date"],
                                            r["motif"])
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
            for c in stored.get((lot_name, dossier), []):
                if c.critere == "bilan" and (lot_name, dossier) in flags:
                    c = critere_bilan([], col_bilan=None, drapeau=flags[(lot_name, dossier)])
                crit.append(c)
            out.append(DossierState(dossier=dossier, lot=lot_name, porteur=ss[0].porteur,
                                    sites=[s.site_id for s in ss], criteres=crit))
        return out

    # ------------------------------------------------------------------ history and diff
    def historique(self, site_id: str, *, lot: str | None = None,
                   dossier: str | None = None) -> list[dict[str, Any]]:
        """Everything that happened to a site, oldest first: imports (and moves), verdicts,
        decisions, removals and withdrawn imports. Each event has ``date`` (UTC, ISO) and
        ``date_paris`` (what a person reads)."""
        cle = self._resolve(site_id, lot, dossier)
        events: list[dict[str, Any]] = []
        prev_lieu = None
        seen_imports: list[int] = []
        site_lot = self.db.execute("SELECT lot FROM sites WHERE id = ?", (cle,)).fetchone()[0]
        annulees = {r["import_id"]: r for r in self.db.execute(
            "SELECT * FROM annulations WHERE import_id IN "
            "(SELECT import_id FROM observations WHERE site_ref = ?)", (cle,))}
        for r in self.db.execute(
                "SELECT o.id, o.import_id, o.lieu, o.lieu_affiche, o.ligne, i.date, i.fichier, "
                "i.lot, i.auteur FROM observations o JOIN imports i ON i.id = o.import_id "
                "WHERE o.site_ref = ? ORDER BY o.id", (cle,)):
            kind = "import" if prev_lieu is None else \
                "lieu_modifie" if r["lieu"] != prev_lieu else "reimport"
            text = {"import": "ajouté au registre", "reimport": "présent dans le nouveau fichier",
                    "lieu_modifie": "lieu modifié dans le nouveau fichier"}[kind]
            events.append({"date": r["date"], "type": kind, "auteur": r["auteur"],
                           "texte": f"{text} : {r['lieu_affiche']} (lot « {r['lot']} », "
                                    f"fichier {r['fichier']}, ligne {r['ligne']}, import n° "
                                    f"{r['import_id']})"})
            a = annulees.get(r["import_id"])
            if a is not None:
                events.append({"date": a["date"], "type": "annulation", "auteur": a["auteur"],
                               "texte": f"import n° {r['import_id']} ({r['fichier']}) annulé "
                                        f"par {a['auteur']} : {a['motif']}"})
            else:
                seen_imports.append(r["import_id"])
                prev_lieu = r["lieu"]
        if seen_imports:
            later = self.db.execute(
                "SELECT id, date, fichier FROM imports WHERE lot = ? AND id > ? AND id NOT IN "
                "(SELECT import_id FROM annulations) ORDER BY id",
                (site_lot, max(seen_imports))).fetchone()
            if later is not None:
                events.append({"date": later["date"], "type": "retire", "auteur": None,
                               "texte": f"absent du fichier {later['fichier']} (import n° "
                                        f"{later['id']}) : retiré du registre courant"})
        for r in self.db.execute(
                "SELECT v.*, coalesce(d.version, v.donnees_version) AS version_donnees "
                "FROM verdicts v LEFT JOIN donnees d ON d.id = v.donnees_id "
                "WHERE v.site_ref = ? ORDER BY v.id", (cle,)):
            cause = (f"import n° {r['import_id']}" if r["import_id"] is not None
                     else f"revérification n° {r['verification_id']}")
            pourquoi = r["cause"]
            events.append({"date": r["date"], "type": "verdict", "auteur": None,
                           "texte": f"verdict calculé ({cause}) : "
                                    f"{label_verdict(r['status'], r['code_qp'], self.statuts)}"
                                    " — marge "
                                    f"{_m(r['marge_m'])} — données {r['version_donnees']}"
                                    + (f" — pourquoi : {pourquoi}" if pourquoi else ""),
                           "verdict_id": r["id"]})
        for r in self.db.execute("SELECT * FROM decisions WHERE site_ref = ? ORDER BY id",
                                 (cle,)):
            what = (f"mis « en attente du porteur » par {r['auteur']} ; demandé : {r['motif']}"
                    if r["decision"] == "en_attente" else
                    f"décision « {DECISIONS[r['decision']]} » par {r['auteur']} : {r['motif']}")
            events.append({"date": r["date"], "type": "decision", "auteur": r["auteur"],
                           "texte": what, "decision_id": r["id"]})
        order = {"import": 0, "reimport": 0, "lieu_modifie": 0, "verdict": 1, "decision": 2,
                 "annulation": 3, "retire": 3}
        events.sort(key=lambda e: (e["date"], order[e["type"]]))
        for e in events:
            e["date_paris"] = heure_paris(e["date"])
        return events

    def diff(self, avant: int | None = None, apres: int | None = None, *,
             lot: str | None = LOT_DEFAUT) -> Diff:
        """Diff between two imports of one lot (default: the last two current imports of
        ``lot``)."""
        for i in (avant, apres):
            if i is not None:
                _import_row(self.db, i)  # unknown or absurd number → RegistreError
        if apres is None:
            lot = lot or LOT_DEFAUT
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM imports WHERE lot = ? AND id NOT IN "
                "(SELECT import_id FROM annulations) ORDER BY id DESC LIMIT 2", (lot,))]
            if not ids:
                raise RegistreError(f"Aucun import dans le lot « {lot} ».",
                                    hint="Importez un fichier : qpv-geo registre ajouter "
                                    "FICHIER.")
            apres = ids[0]
            avant = ids[1] if len(ids) > 1 and avant is None else avant
        if avant is not None:
            a, b = _import_row(self.db, avant), _import_row(self.db, apres)
            if a["lot"] != b["lot"]:
                raise RegistreError(
                    f"Les imports n° {a['id']} (lot « {a['lot']} ») et n° {b['id']} (lot "
                    f"« {b['lot']} ») ne sont pas du même lot : leurs sites ne se comparent "
                    "pas.", hint="Comparez deux imports d'un même lot.")
        return self._diff(self.db, avant, apres)

    def _diff(self, db: sqlite3.Connection, avant: int | None, apres: int) -> Diff:
        def load(import_id: int) -> dict[int, sqlite3.Row]:
            return {r["site_ref"]: r for r in db.execute(
                "SELECT o.site_ref, o.site_id, o.dossier, o.lieu, o.lieu_affiche, o.ligne, "
                "v.status, v.code_qp, v.marge_m, v.lon, v.lat, i.lot, "
                "coalesce(dd.sha256, v.donnees_sha256) AS shas FROM observations o "
                "JOIN imports i ON i.id = o.import_id JOIN verdicts v ON v.id = "
                "(SELECT max(id) FROM verdicts WHERE observation_id = o.id) "
                "LEFT JOIN donnees dd ON dd.id = v.donnees_id "
                "WHERE o.import_id = ?", (import_id,))}

        new = load(apres)
        lot = db.execute("SELECT lot FROM imports WHERE id = ?", (apres,)).fetchone()[0]
        diff = Diff(avant=avant, apres=apres, lot=lot)
        if avant is None:
            diff.nouveaux = [_brief(r, self.statuts) for r in new.values()]
            return diff
        old = load(avant)
        diff.nouveaux = [_brief(r, self.statuts) for k, r in new.items() if k not in old]
        diff.retires = [_brief(r, self.statuts) for k, r in old.items() if k not in new]
        for k in sorted(new.keys() & old.keys(), key=lambda k: (new[k]["dossier"],
                                                                new[k]["site_id"])):
            a, b = old[k], new[k]
            if a["lieu"] != b["lieu"]:
                diff.deplaces.append({**_brief(b, self.statuts), "avant": a["lieu_affiche"],
                                      "apres": b["lieu_affiche"]})
            if (a["status"], a["code_qp"]) != (b["status"], b["code_qp"]):
                diff.verdicts_changes.append({
                    **_brief(b, self.statuts),
                    "avant": label_verdict(a["status"], a["code_qp"], self.statuts),
                    "apres": label_verdict(b["status"], b["code_qp"], self.statuts),
                    "pourquoi": _diff_cause(a, b)})
        return diff

    # ------------------------------------------------------------------ re-check
    def reverifier(self, *, engine: Engine | None = None, geocoder: Geocoder | None = None,
                   auteur: str | None = None, regeocoder: bool = False) -> Reverification:
        """Judge every current site again with the current data and margin.

        By default each site keeps the point and geocoding its verdict was judged on: it is
        judged again, not geocoded again. ``regeocoder=True`` geocodes the addresses anew
        (``geocoder``, else the settings'). A site whose geocoding fails (service down) keeps
        its verdict and is listed in :attr:`Reverification.non_reverifies`: an outage never
        becomes a verdict change. A new verdict is appended for each site whose verdict,
        point, data version or margin differs, with its causes.
        """

        engine = engine or _engine(self.settings)
        current = self._states("AND o.import_id IN (SELECT id FROM imports_courants)")
        obs = {r["id"]: r for r in self.db.execute(
            "SELECT o.id, o.import_id, o.ligne, o.valeurs FROM observations o "
            "WHERE o.import_id IN (SELECT id FROM imports_courants)")}
        origin = {r["id"]: (r["import_id"], r["verification_id"]) for r in self.db.execute(
            "SELECT id, import_id, verification_id FROM verdicts WHERE id IN ({})".format(
                ",".join(str(int(s.verdict["id"])) for s in current)))} if current else {}
        groups: dict[tuple[int, Any], list[SiteState]] = defaultdict(list)
        for s in current:
            o = obs[s.observation_id]
            groups[(o["import_id"], None if regeocoder else origin[s.verdict["id"]])].append(s)
        shas = json.dumps({k: v.sha256 for k, v in engine.reference.layers.items()},
                          sort_keys=True)
        new_rows: list[tuple[int, str, int, dict[str, Any]]] = []
        changes: list[Changement] = []
        skipped: list[dict[str, Any]] = []
        used: dict[str, Any] = {}
        for (import_id, orig), states in groups.items():
            meta = json.loads(self.db.execute("SELECT colonnes FROM imports WHERE id = ?",
                                              (import_id,)).fetchone()[0])
            rows = [obs[s.observation_id] for s in states]
            frame = pd.DataFrame.from_records([json.loads(r["valeurs"]) for r in rows],
                                              columns=meta["colonnes"])
            frame.index = pd.Index([r["ligne"] for r in rows], name="ligne")
            frame = frame.fillna("").astype(str)
            mapping = ColumnMapping(**meta["batch"])
            stored = {} if orig is None else _stored_geocodes(self.db, orig)
            geo = RegisterGeocoder(self.settings, geocoder, stored=stored, recheck=True)
            out = validate_sites(frame, mapping, settings=self.settings, engine=engine,
                                 geocoder=geo).frame
            appended = len(new_rows)
            for s, r, v in zip(states, rows, _verdict_rows(out), strict=True):
                if (v.get("geocodage") or {}).get("source") == SOURCE_PANNE:
                    skipped.append({"site_id": s.site_id, "dossier": s.dossier, "lot": s.lot,
                                    "raison": "non revérifié (service indisponible)"})
                    continue
                why = _why(s.verdict, v, engine, shas)
                if not why:
                    continue
                new_rows.append((s.cle, s.site_id, r["id"], {**v, "cause": " ; ".join(why)}))
                old_status, old_code = s.verdict["status"], s.verdict["code_qp"]
                if (old_status, old_code) != (v["status"], v.get("code_qp")):
                    d = s.decision
                    decision = None if d is None else {
                        "decision": d["decision"], "libelle": d["libelle"],
                        "auteur": d["auteur"], "date": d["date"], "motif": d["motif"]}
                    changes.append(Changement(
                        site_id=s.site_id, dossier=s.dossier, lot=s.lot,
                        avant={"status": old_status, "code_qp": old_code,
                               "libelle": label_verdict(old_status, old_code, self.statuts)},
                        apres={"status": v["status"], "code_qp": v.get("code_qp"),
                               "libelle": label_verdict(v["status"], v.get("code_qp"),
                                                        self.statuts)},
                        pourquoi=why, decision=decision,
                        decision_a_revoir=decision is not None and not agrees(
                            decision["decision"], v["status"])))
            if len(new_rows) > appended:  # the new verdicts were judged on these results
                used.update(geo.used)
        now = _now()
        with database.write(self.db) as db:
            vid = db.execute(
                "INSERT INTO verifications (date, donnees_version, donnees_sha256, marge_m, "
                "outil_version, auteur, sites, changements) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, engine.reference.version, shas, engine.marge_m, __version__, auteur,
                 len(current), len(changes))).lastrowid
            self._insert_verdicts(db, new_rows, import_id=None, verification_id=vid,
                                  common=(now, engine.marge_m, engine.reference.version, shas,
                                          __version__))
            _store_geocodes(db, used, import_id=None, verification_id=vid)
            db.execute("INSERT INTO journal (date, type, auteur, detail) "
                       "VALUES (?, 'reverification', ?, ?)",
                       (now, auteur, json.dumps(
                           {"verification_id": vid, "sites": len(current),
                            "regeocodage": regeocoder,
                            "nouveaux_verdicts": len(new_rows),
                            "verdicts_changes": [c.site_id for c in changes],
                            "non_reverifies": skipped},
                           ensure_ascii=False)))
        return Reverification(verification_id=vid, sites=len(current),
                              nouveaux_verdicts=len(new_rows), changements=changes,
                              non_reverifies=skipped)

    def journal(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The latest entries of the audit journal, newest first."""
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in self.db.execute(
            "SELECT * FROM journal ORDER BY id DESC LIMIT ?", (limit,))]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _engine(settings: Settings) -> Engine:
    return engine_from_settings(settings)


def _annuaire(annuaire: Annuaire | bool | None, settings: Settings
              ) -> tuple[Annuaire | None, bool]:
    if annuaire is True:
        return Annuaire.from_settings(settings), True
    if annuaire is False or annuaire is None:
        return None, False
    return annuaire, False


_LAYER_NAMES = {"qpv": "périmètres QPV changés", "qva": "périmètres QVA changés",
                "communes": "limites communales changées",
                "qpv_hors_sem": "QPV hors SEM changés"}


def _m(value: float | None) -> str:
    return "—" if value is None else f"{value:g} m"


def _brief(r: sqlite3.Row, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"site_id": r["site_id"], "dossier": r["dossier"], "lot": r["lot"],
            "ligne": r["ligne"], "lieu": r["lieu_affiche"],
            "verdict": label_verdict(r["status"], r["code_qp"], labels)}


def _diff_cause(a: sqlite3.Row, b: sqlite3.Row) -> str:
    """Why a site's verdict differs between two imports, in words."""
    why = []
    if a["lieu"] != b["lieu"]:
        why.append("lieu modifié dans le fichier")
    if a["shas"] != b["shas"]:
        why.append("données de référence changées")
    if a["marge_m"] != b["marge_m"]:
        why.append(f"marge changée {_m(a['marge_m'])} → {_m(b['marge_m'])}")
    if a["lieu"] == b["lieu"] and (a["lon"], a["lat"]) != (b["lon"], b["lat"]):
        why.append("nouveau géocodage du même lieu : "
                   + ("point perdu" if b["lon"] is None else "point trouvé"
                      if a["lon"] is None else "autre point"))
    return " ; ".join(why) or "nouveau calcul (mêmes lieu, point, données et marge)"


#: Largest id SQLite stores (a larger number cannot be an import).
_SQLITE_MAX = 2**63 - 1


def _import_row(db: sqlite3.Connection, import_id: Any) -> sqlite3.Row:
    """The import n° ``import_id``; :class:`RegistreError` when unknown (any number, even
    one SQLite cannot hold)."""
    try:
        n = int(import_id)
    except (TypeError, ValueError, OverflowError):
        n = None
    row = None
    if n is not None and 0 < n <= _SQLITE_MAX:
        row = db.execute("SELECT * FROM imports WHERE id = ?", (n,)).fetchone()
    if row is None:
        shown = str(import_id)
        shown = shown if len(shown) <= 24 else shown[:20] + "…"
        raise RegistreError(f"Import n° {shown} inconnu.",
                            hint="Listez les imports : qpv-geo registre imports.")
    return row


def _site_refs(db: sqlite3.Connection, lot: str, keys: list[tuple[str, str]]) -> list[int]:
    """The register's number of each (dossier, site) of ``lot``, created when new."""
    db.executemany("INSERT OR IGNORE INTO sites (lot, dossier, site_id) VALUES (?, ?, ?)",
                   ((lot, d, s) for d, s in dict.fromkeys(keys)))
    known = {(r[1], r[2]): r[0] for r in db.execute(
        "SELECT id, dossier, site_id FROM sites WHERE lot = ?", (lot,))}
    return [known[k] for k in keys]


def _store_geocodes(db: sqlite3.Connection, used: dict[str, Any], *, import_id: int | None,
                    verification_id: int | None) -> None:
    """The full geocoding results a run judged its sites on (replayed by re-checks); each
    distinct result is stored once, the run points to it."""

    pairs = [(k, result_to_json(r)) for k, r in used.items()]
    db.executemany("INSERT OR IGNORE INTO geocodages (requete, resultat) VALUES (?, ?)", pairs)
    db.executemany(
        "INSERT INTO geocodages_utilises (geocodage_id, import_id, verification_id) "
        "SELECT id, ?, ? FROM geocodages WHERE requete = ? AND resultat = ?",
        ((import_id, verification_id, k, r) for k, r in pairs))


def _stored_geocodes(db: sqlite3.Connection, origin: tuple[int | None, int | None]
                     ) -> dict[str, Any]:
    """The results an import or re-check (``origin``: import id, verification id) judged
    its verdicts on, by query key."""

    import_id, verification_id = origin
    column, value = (("import_id", import_id) if import_id is not None
                     else ("verification_id", verification_id))
    return {r[0]: result_from_json(r[1]) for r in db.execute(
        "SELECT g.requete, g.resultat FROM geocodages_utilises u JOIN geocodages g "
        f"ON g.id = u.geocodage_id WHERE u.{column} = ?", (value,))}


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


def _why(old: dict[str, Any], new: dict[str, Any], engine: Engine, shas: str) -> list[str]:
    """Why a re-check's verdict differs from the stored one ``old`` (a site's verdict as
    :meth:`Registre.site` gives it), in words; empty when nothing differs."""
    why = []
    before, after = old.get("donnees_sha256") or {}, json.loads(shas)
    if before != after or old["donnees_version"] != engine.reference.version:
        layers = [f"{_LAYER_NAMES.get(k, f'couche {k} changée')} (sha256 "
                  f"{(before.get(k) or 'aucune')[:8]} → {(after.get(k) or 'aucune')[:8]})"
                  for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        why.append(", ".join(layers) or
                   f"données de référence changées ({old['donnees_version']} → "
                   f"{engine.reference.version})")
    a_m, b_m = old["marge_m"], new.get("marge_m")
    if (a_m is None) != (b_m is None) or (a_m is not None and not math.isclose(a_m, b_m)):
        if a_m is not None and b_m is not None:
            why.append(f"marge changée {a_m:g} → {b_m:g} m")
        else:
            why.append(f"marge changée {_m(a_m)} → {_m(b_m)}")
    a = (old["lon"], old["lat"])
    b = (new.get("lon"), new.get("lat"))
    if (a[0] is None) != (b[0] is None):
        why.append("nouveau géocodage : " + ("point trouvé" if b[0] is not None
                                              else "adresse non retrouvée"))
    elif a[0] is not None and b[0] is not None and a != b:  # same point: nothing moved
        ax, ay = engine.lonlat_to_plan([a[0]], [a[1]])
        bx, by = engine.lonlat_to_plan([b[0]], [b[1]])
        moved = float(np.hypot(ax[0] - bx[0], ay[0] - by[0]))
        if moved > 0.5:
            why.append(f"nouveau géocodage : point déplacé de {moved:.0f} m")
    if not why and (old["status"], old["code_qp"]) != (new["status"], new.get("code_qp")):
        if old.get("outil_version") and old["outil_version"] != __version__:
            why.append(f"règles de calcul de qpv-geo {old['outil_version']} → {__version__}")
        else:
            why.append("nouveau calcul (même point, mêmes données)")
    return why


__all__ = ["A_REVOIR", "DECISIONS", "LOT_DEFAUT", "Annulation", "Changement", "Diff",
           "DossierState", "ImportResult", "Registre", "Reverification", "SiteState",
           "default_path", "normalize_decision"]
