"""Columns the register reads beyond the batch's roles, and the stable identity of a site.

Roles: ``dossier`` (dossier number), ``site`` (site id), ``siret`` (SIRET or SIREN of the
porteur), ``statut`` (legal status in words), ``debut`` / ``fin`` (action dates), ``bilan``
(« bilan N-1 fourni »). Detected from the column names (accents and case folded) or given.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from qpv_geo.batch import ColumnMapping, fold_name
from qpv_geo.exceptions import InputFileError

#: Folded names that give each register role (exact match first, then words).
_EXACT: dict[str, tuple[str, ...]] = {
    "dossier": ("dossier", "n dossier", "no dossier", "numero dossier", "numero de dossier",
                "num dossier", "ref dossier", "reference dossier", "id dossier",
                "identifiant dossier", "dossier id"),
    "site": ("site", "id site", "n site", "no site", "ref site", "identifiant site",
             "numero de site", "site id"),
    "siret": ("siret", "siren", "n siret", "no siret", "siret du porteur", "siren du porteur",
              "numero siret", "siret siren", "siren siret"),
    "statut": ("statut", "statut juridique", "forme juridique", "categorie juridique",
               "type de porteur", "type de structure", "nature juridique", "statut du porteur"),
    "debut": ("debut", "date de debut", "date debut", "debut de l action",
              "date de debut de l action", "du", "start", "start date"),
    "fin": ("fin", "date de fin", "date fin", "fin de l action", "date de fin de l action",
            "au", "end", "end date"),
    "bilan": ("bilan", "bilan n 1", "bilan n 1 fourni", "bilans n 1", "bilans n 1 fournis",
              "bilan fourni", "bilans fournis", "bilan de l annee precedente"),
}
ROLES = tuple(_EXACT)
#: ``fold_name`` remembered: a file repeats its porteurs, actions, streets and communes.
_fold = functools.lru_cache(maxsize=200_000)(fold_name)


def _by_words(folded: str) -> str | None:
    w = set(folded.split())
    if "dossier" in w:
        return "dossier"
    if w & {"siret", "siren"}:
        return "siret"
    if "bilan" in w or "bilans" in w:
        return "bilan"
    if "debut" in w:
        return "debut"
    if "fin" in w and "date" in w:
        return "fin"
    if "statut" in w or ("juridique" in w):
        return "statut"
    return None


@dataclass
class RegistreColumns:
    """Source column of each register role (``None``: absent)."""

    dossier: str | None = None
    site: str | None = None
    siret: str | None = None
    statut: str | None = None
    debut: str | None = None
    fin: str | None = None
    bilan: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """JSON-friendly view."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def detect_registre_columns(columns: Sequence[str], mapping: ColumnMapping,
                            overrides: dict[str, str | None] | None = None) -> RegistreColumns:
    """Find the register's columns among ``columns`` (those already used by the batch
    ``mapping`` are skipped). ``overrides`` maps a role to a column name (``""`` removes it)."""
    taken = {c for _, c in mapping.describe() if c}
    folded = {c: fold_name(c) for c in columns}
    chosen: dict[str, str | None] = {}
    for role, wanted in (overrides or {}).items():
        if role not in ROLES:
            raise InputFileError(f"Rôle de colonne inconnu : {role}.",
                                 hint=f"Rôles possibles : {', '.join(ROLES)}.")
        if wanted is None or not str(wanted).strip():
            chosen[role] = None
            continue
        match = wanted if wanted in folded else next(
            (c for c, f in folded.items() if f == fold_name(wanted)), None)
        if match is None:
            raise InputFileError(
                f"Colonne « {wanted} » (indiquée pour le rôle {role}) absente du fichier ; "
                f"colonnes présentes : {', '.join(map(str, columns))}.",
                hint=f"Recopiez le nom exact d'une colonne dans --col-{role}.")
        chosen[role] = match
        taken.add(match)
    for role in ROLES:
        if role in chosen:
            continue
        for c in columns:
            if c not in taken and folded[c] in _EXACT[role]:
                chosen[role] = c
                taken.add(c)
                break
    for c in columns:
        if c in taken:
            continue
        role = _by_words(folded[c])
        if role and role not in chosen:
            chosen[role] = c
            taken.add(c)
    return RegistreColumns(**{k: v for k, v in chosen.items() if v})


def cells(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """The cells of ``column`` as stripped text (empty strings when absent)."""
    if not column:
        return np.full(len(frame), "", dtype=object)
    s = frame[column]
    return s.astype(object).where(s.notna(), "").astype(str).str.strip().to_numpy(object)


def place_keys(frame: pd.DataFrame, mapping: ColumnMapping) -> np.ndarray:
    """Normalised place of every row (address, postcode, commune, coordinates), to tell
    whether a site moved between two imports."""
    parts = [cells(frame, getattr(mapping, role))
             for role in ("adresse", "code_postal", "commune", "lat", "lon", "x", "y")]
    out = np.empty(len(frame), dtype=object)
    for i in range(len(frame)):
        out[i] = " | ".join(_fold(p[i]) if j < 3 else p[i].replace(",", ".")
                            for j, p in enumerate(parts)).strip(" |")
    return out


def site_ids(frame: pd.DataFrame, mapping: ColumnMapping, cols: RegistreColumns,
             lieux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(site id, dossier id) of every row.

    The site column gives the site id; else the dossier column (``DOSSIER-2``, ``-3``… for
    its second, third site in file order); else a key from porteur + action + normalised
    place (``S-`` and 10 hex digits: a changed address then makes a new site). The dossier
    is the dossier column, else porteur + action. A site is known by (lot, dossier, site):
    two dossiers may number their sites alike. Raises :class:`InputFileError` when two rows
    claim the same site of the same dossier.
    """
    n = len(frame)
    lignes = frame.index.to_numpy() if frame.index.name == "ligne" else np.arange(n) + 2
    porteur = cells(frame, mapping.porteur)
    action = cells(frame, mapping.action)
    dossier = cells(frame, cols.dossier)
    site = cells(frame, cols.site)
    auto = np.array([_fold(p) + " / " + _fold(a) for p, a in
                     zip(porteur, action, strict=True)], dtype=object)
    dossiers = np.where(dossier != "", dossier, auto)
    ids = np.empty(n, dtype=object)
    rank: Counter[str] = Counter()
    for i in range(n):
        if site[i]:
            ids[i] = site[i]
        elif dossier[i]:
            rank[dossier[i]] += 1
            ids[i] = dossier[i] if rank[dossier[i]] == 1 else f"{dossier[i]}-{rank[dossier[i]]}"
        else:
            raw = f"{porteur[i]}|{action[i]}|{lieux[i]}".lower().encode("utf-8")
            ids[i] = "S-" + hashlib.sha256(raw).hexdigest()[:10]
    seen: dict[tuple[str, str], int] = {}
    for i, sid in enumerate(ids):
        key = (str(dossiers[i]), str(sid))  # a site is one of its dossier's (and lot's)
        if key in seen:
            what = ("la colonne « " + (cols.site or cols.dossier or "") + " »"
                    if (site[i] or dossier[i]) else "porteur, action et lieu")
            raise InputFileError(
                f"Lignes {seen[key]} et {lignes[i]} : même site « {sid} » ({what} identiques).",
                hint="Donnez à chaque site un identifiant distinct (colonne « Site » ou "
                "« N° dossier »), ou supprimez le doublon.")
        seen[key] = int(lignes[i])
    return ids, dossiers
