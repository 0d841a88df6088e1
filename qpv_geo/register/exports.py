"""Exports of the register: sites with computed verdict, decision and dossier criteria (XLSX
or CSV), and the diff between two imports. Written aside and renamed when complete."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from qpv_geo._files import atomic_path, check_output_path, os_error_message
from qpv_geo.batch import neutralize_cells
from qpv_geo.exceptions import InputFileError
from qpv_geo.register.criteria import ETATS
from qpv_geo.register.statements import heure_paris
from qpv_geo.register.store import Diff, Registre

#: Columns of the sites export, in order.
SITE_COLUMNS = (
    "site", "dossier", "lot", "present", "porteur", "action", "lieu", "verdict_final",
    "final_source", "decide_par", "decision_date", "decision_motif", "decision_a_revoir",
    "statut_calcule", "statut_calcule_libelle", "code_qp", "lib_qp", "distance_bord_m",
    "code_qp_proche", "distance_qp_proche_m", "motifs", "geocodage_label", "geocodage_score",
    "geocodage_precision", "lon", "lat", "marge_m", "marge_motif", "donnees_version",
    "verdict_date", "outil_version", "etat_dossier", "criteres_bloquants", "criteres_a_verifier",
)


def sites_frame(registre: Registre, *, retires: bool = False) -> pd.DataFrame:
    """One row per site: computed verdict, decision, which is final and who decided, and the
    state of its dossier. A site is (lot, dossier, site); times are Paris time, zone shown."""
    dossiers = {(d.lot, d.dossier): d for d in registre.dossiers()}
    noms = registre.criteres  # the criteria in the register's territory's words
    rows: list[dict[str, Any]] = []
    for s in registre.sites(retires=retires):
        v, x = s.verdict, s.decision
        d = dossiers.get((s.lot, s.dossier))
        geo = v.get("geocodage") or {}
        rows.append({
            "site": s.site_id, "dossier": s.dossier, "lot": s.lot,
            "present": "oui" if s.present else "non (import annulé)" if s.import_annule
            else "non (retiré)", "porteur": s.porteur,
            "action": s.action, "lieu": s.lieu, "verdict_final": s.final_libelle,
            "final_source": "décision" if x else "calcul",
            "decide_par": x["auteur"] if x else None,
            "decision_date": heure_paris(x["date"], secondes=True) if x else None,
            "decision_motif": x["motif"] if x else None,
            "decision_a_revoir": s.decision_a_revoir,
            "statut_calcule": v["status"], "statut_calcule_libelle": v["statut_libelle"],
            "code_qp": v["code_qp"], "lib_qp": v["lib_qp"],
            "distance_bord_m": v["distance_bord_m"], "code_qp_proche": v["code_qp_proche"],
            "distance_qp_proche_m": v["distance_qp_proche_m"], "motifs": v["motifs"],
            "geocodage_label": geo.get("label"), "geocodage_score": geo.get("score"),
            "geocodage_precision": geo.get("precision"), "lon": v["lon"], "lat": v["lat"],
            "marge_m": v["marge_m"], "marge_motif": v.get("marge_motif"),
            "donnees_version": v["donnees_version"],
            "verdict_date": heure_paris(v["date"], secondes=True),
            "outil_version": v["outil_version"],
            "etat_dossier": ETATS[d.etat] if d else None,
            "criteres_bloquants": ", ".join(noms[c] for c in d.bloquants) if d else None,
            "criteres_a_verifier": ", ".join(noms[c] for c in d.a_verifier) if d else None,
        })
    return pd.DataFrame(rows, columns=list(SITE_COLUMNS))


def dossiers_frame(registre: Registre) -> pd.DataFrame:
    """One row per dossier and criterion: state, value, reason and source."""
    rows = []
    for d in registre.dossiers():
        for c in d.criteres:
            rows.append({"dossier": d.dossier, "lot": d.lot, "porteur": d.porteur,
                         "etat_dossier": ETATS[d.etat], "critere": c.libelle,
                         "etat": ETATS[c.etat], "valeur": c.valeur, "motif": c.motif,
                         "source": c.source})
    return pd.DataFrame(rows, columns=["dossier", "lot", "porteur", "etat_dossier", "critere",
                                       "etat", "valeur", "motif", "source"])


def diff_frame(diff: Diff) -> pd.DataFrame:
    """The diff as one row per change."""
    rows = []
    for kind, items in (("nouveau", diff.nouveaux), ("retiré", diff.retires),
                        ("lieu modifié", diff.deplaces),
                        ("verdict changé", diff.verdicts_changes)):
        for it in items:
            rows.append({"changement": kind, "lot": it.get("lot", diff.lot),
                         "site": it["site_id"], "dossier": it["dossier"],
                         "ligne": it["ligne"], "lieu": it["lieu"], "verdict": it["verdict"],
                         "avant": it.get("avant"), "apres": it.get("apres"),
                         "pourquoi": it.get("pourquoi")})
    return pd.DataFrame(rows, columns=["changement", "lot", "site", "dossier", "ligne", "lieu",
                                       "verdict", "avant", "apres", "pourquoi"])


def _cell(v: Any) -> Any:
    """A frame value as an XLSX cell (missing → empty)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v.item() if hasattr(v, "item") else v


def _write_xlsx(frames: dict[str, pd.DataFrame], path: Path) -> None:
    """One sheet per frame, written row by row (openpyxl's streaming mode: 100k rows in
    seconds, where the in-memory workbook takes minutes)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, f in frames.items():
        ws = wb.create_sheet(name)
        ws.freeze_panes = "A2"
        header = []
        for col in f.columns:
            c = WriteOnlyCell(ws, value=str(col))
            c.font = bold
            header.append(c)
        ws.append(header)
        for row in f.itertuples(index=False, name=None):
            ws.append([_cell(v) for v in row])
    wb.save(path)


def _write_frames(frames: dict[str, pd.DataFrame], output: str | Path,
                  inputs: tuple[Path, ...] = ()) -> Path:
    """XLSX (one sheet per frame) or CSV (``;``, UTF-8 with BOM: the first frame; the others
    next to it as ``<name>-<sheet>.csv``). None of them may be one of *inputs*."""
    output = check_output_path(output, inputs)
    for name in list(frames)[1:]:
        check_output_path(output.with_name(f"{output.stem}-{name}.csv"), inputs)
    suffix = output.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise InputFileError(f"Format de sortie non pris en charge : « {output.suffix} ».",
                             hint="Choisissez un fichier .xlsx ou .csv.")
    frames = {k: neutralize_cells(f) for k, f in frames.items()}
    try:
        if suffix == ".xlsx":
            with atomic_path(output) as tmp:
                _write_xlsx(frames, tmp)
        else:
            for i, (name, f) in enumerate(frames.items()):
                path = output if i == 0 else output.with_name(f"{output.stem}-{name}.csv")
                with atomic_path(path) as tmp:
                    f.to_csv(tmp, sep=";", index=False, encoding="utf-8-sig",
                             quoting=csv.QUOTE_MINIMAL, decimal=",")
    except OSError as exc:
        raise os_error_message(exc, output) from exc
    return output


def export_registre(registre: Registre, output: str | Path, *, retires: bool = False) -> Path:
    """Write the register: sheets/files ``sites`` and ``dossiers`` (criteria)."""
    return _write_frames({"sites": sites_frame(registre, retires=retires),
                          "dossiers": dossiers_frame(registre)}, output, (registre.path,))


def export_diff(diff: Diff, output: str | Path) -> Path:
    """Write the diff between two imports."""
    return _write_frames({"diff": diff_frame(diff)}, output)


__all__ = ["SITE_COLUMNS", "diff_frame", "dossiers_frame", "export_diff", "export_registre",
           "sites_frame"]
