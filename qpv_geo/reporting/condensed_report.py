"""The committee report of a large territory (more than ``SEUIL_GRAND_TERRITOIRE`` QPV: a
métropole like Grand Paris, all France), condensed so that it stays readable and quick.

* :func:`condensation`: which QPV the report lists one by one (those some action reaches: a
  site inside or within the radius of the « quartier vécu »), and the others counted per
  département (with its région), for the sentence and the table that say so;
* :func:`hors_cadre_par_zone`: the overseas sites the printed maps leave out, counted per part
  of France instead of one row each;
* :func:`table_par_qpv` / :func:`write_table_par_qpv`: the full per-QPV table (every QPV of
  the territory, coverage of each priority), the CSV written next to the report
  (``<rapport>-par-qpv.csv``) — nothing is dropped, it is moved out of the page.

SEM (and every territory up to the threshold) keeps the full report: nothing here applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from qpv_geo._files import os_error_message, write_text_atomic
from qpv_geo.batch.priorities import PRIORITES, label_of
from qpv_geo.batch.writing import neutralize_cells
from qpv_geo.eligibility.projections import zone_du_point
from qpv_geo.exceptions import QpvGeoError
from qpv_geo.reference.territories import qpv_france
from qpv_geo.reporting._carto import SEUIL_GRAND_TERRITOIRE, grand_territoire
from qpv_geo.reporting.figures import sites_outside_map

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference
    from qpv_geo.reporting.coverage import Coverage

#: Words of the coverage of one QPV × priority in the per-QPV CSV.
COUVERTURE_MOTS = {"dans": "action dans le QPV", "proximite": "seulement quartier vécu",
                   "aucune": "lacune"}


@dataclass(frozen=True)
class Condensation:
    """What the condensed report shows of a large territory's QPV."""

    qpv_total: int
    listes: frozenset[str]  # codes of the QPV listed one by one (some action reaches them)
    par_departement: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_listes(self) -> int:
        return len(self.listes)

    @property
    def n_resumes(self) -> int:
        return self.qpv_total - len(self.listes)


def chemin_par_qpv(output: str | Path) -> Path:
    """The per-QPV CSV written next to a report: ``rapport.html`` → ``rapport-par-qpv.csv``."""
    output = Path(output)
    return output.with_name(f"{output.with_suffix('').name}-par-qpv.csv")


def _departements(reference: Reference) -> pd.DataFrame:
    """One row per QPV of the territory: ``code_qp``, ``dep`` (code), ``lib_dep``,
    ``lib_reg`` (names from the national layer when it carries them, else the code)."""
    qpv = reference.qpv
    com = qpv["insee_com"].astype(str) if "insee_com" in qpv.columns else \
        pd.Series([""] * len(qpv), index=qpv.index)
    dep = [c[:3] if c.startswith("97") else c[:2] for c in com]  # 974, 2A, 93…
    out = pd.DataFrame({"code_qp": qpv["code_qp"].to_numpy(), "dep": dep})
    noms: dict[str, tuple[str, str]] = {}

    try:
        nat, _ = qpv_france()
        if {"insee_dep", "lib_dep", "lib_reg"} <= set(nat.columns):
            for d, ld, lr in zip(nat["insee_dep"].astype(str), nat["lib_dep"], nat["lib_reg"],
                                 strict=True):
                noms.setdefault(d, (str(ld), str(lr)))
    except (QpvGeoError, OSError):  # names are a nicety: the codes stay
        noms = {}
    out["lib_dep"] = [noms.get(d, (d, ""))[0] for d in out["dep"]]
    out["lib_reg"] = [noms.get(d, ("", ""))[1] for d in out["dep"]]
    return out


def condensation(coverage: Coverage, reference: Reference) -> Condensation | None:
    """What a large territory's report lists (``None`` up to the threshold: everything)."""
    if not grand_territoire(reference):
        return None
    q = coverage.par_qpv
    reached = q["priorites_atteintes"] > 0
    deps = _departements(reference).set_index("code_qp")
    frame = pd.DataFrame({"code_qp": q["code_qp"], "atteint": reached.to_numpy()})
    frame = frame.join(deps, on="code_qp")
    rows = []
    for (dep, lib_dep, lib_reg), g in frame.groupby(["dep", "lib_dep", "lib_reg"], sort=True,
                                                   dropna=False):
        rows.append({"dep": dep, "lib_dep": lib_dep, "lib_reg": lib_reg, "qpv": len(g),
                     "atteints": int(g["atteint"].sum()),
                     "sans_action": int((~g["atteint"]).sum())})
    return Condensation(qpv_total=len(q), listes=frozenset(q.loc[reached, "code_qp"]),
                        par_departement=rows)


def hors_cadre_par_zone(sites: pd.DataFrame, reference: Reference
                        ) -> tuple[pd.Index, list[dict[str, Any]]]:
    """The sites of the territory that the printed maps (framed on metropolitan France) leave
    out — located overseas, not « hors territoire » — counted per part of France: (their row
    labels, ``[{"nom", "n"}]``). The report lists the others one by one."""

    outside = sites_outside_map(sites, reference)
    if "status" in outside.columns:
        outside = outside[outside["status"] != "hors_territoire"]
    counts: dict[str, int] = {}
    for lon, lat in zip(pd.to_numeric(outside["lon"]), pd.to_numeric(outside["lat"]),
                        strict=True):
        zone = zone_du_point(lon, lat)
        nom = zone.nom if zone is not None else "autre position"
        counts[nom] = counts.get(nom, 0) + 1
    return outside.index, [{"nom": k, "n": v} for k, v in sorted(counts.items())]


def table_par_qpv(coverage: Coverage, reference: Reference) -> pd.DataFrame:
    """Every QPV of the territory, one row: place, sites, and per priority of the call its
    coverage (action dans le QPV / seulement quartier vécu / lacune) and its actions."""
    q = coverage.par_qpv
    deps = _departements(reference).set_index("code_qp")
    out = pd.DataFrame({"code_qp": q["code_qp"], "lib_qp": q["lib_qp"], "commune": q["lib_com"]})
    out = out.join(deps[["dep", "lib_dep", "lib_reg"]], on="code_qp").rename(
        columns={"dep": "departement", "lib_dep": "nom_departement", "lib_reg": "region"})
    for col in ("sites_dans", "sites_proximite", "actions", "porteurs", "priorites_dans",
                "priorites_proximite", "priorites_lacunes"):
        out[col] = q[col].to_numpy()
    m = coverage.matrix
    couverture = m.pivot(index="code_qp", columns="priorite", values="couverture")
    actions = m.pivot(index="code_qp", columns="priorite", values="actions")
    for key in PRIORITES:
        label = label_of(key)
        cov = (couverture[key].reindex(out["code_qp"]) if key in couverture.columns
               else pd.Series(index=out["code_qp"], dtype=object)).fillna("aucune")
        out[label] = [COUVERTURE_MOTS.get(str(v), str(v)) for v in cov]
        n = (actions[key].reindex(out["code_qp"]) if key in actions.columns
             else pd.Series(index=out["code_qp"], dtype=float)).fillna(0)
        out[f"{label} — actions"] = n.astype(int).to_numpy()
    return out.reset_index(drop=True)


def write_table_par_qpv(coverage: Coverage, reference: Reference, path: str | Path) -> Path:
    """Write :func:`table_par_qpv` as a CSV for French Excel (UTF-8 with BOM, ``;``), cells
    that a spreadsheet would run as a formula neutralised; written aside, then renamed."""

    path = Path(path)
    text = neutralize_cells(table_par_qpv(coverage, reference)).to_csv(sep=";", index=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, text, encoding="utf-8-sig")
    except OSError as exc:
        raise os_error_message(exc, path) from exc


__all__ = ["COUVERTURE_MOTS", "SEUIL_GRAND_TERRITOIRE", "Condensation", "chemin_par_qpv",
           "condensation", "hors_cadre_par_zone", "table_par_qpv", "write_table_par_qpv"]
