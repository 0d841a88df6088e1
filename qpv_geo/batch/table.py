"""Where the table of sites ends, and which rows repeat a site: a « Total : 16 actions » row
or a note under the table is not a site; two rows for the same dossier (or the same action)
at the same place are one site.

Rows outside the table stay in the output, in their place, with the status
:data:`HORS_TABLEAU` and the reason « ligne hors tableau (total) » (or « (note) »); they are
counted nowhere (summary, report, map, register). A duplicate keeps its verdict and says
which row it repeats (« doublon de la ligne 5 … »); the coverage counts it once.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    OUTPUT_COLUMNS,
    PROBLEM_COLUMN,
    CellTexts,
    ColumnMapping,
    column_text,
    fold_name,
)

#: ``status`` of a row that is not a site (a total, a note under the table).
HORS_TABLEAU = "hors_tableau"
#: How such a row reads (the status column of the XLSX, the pages).
HORS_TABLEAU_LABEL = "Ligne hors tableau (total ou note, non comptée)"
#: Start of the reason of a row outside the table.
HORS_TABLEAU_MOTIF = "ligne hors tableau"
#: Start of the reason of a duplicate row (followed by the line it repeats).
DOUBLON_MOTIF = "doublon de la ligne"

#: A cell that announces a total (folded): « Total : 16 actions », « Sous-total », « TOTAUX ».
_TOTAL = re.compile(r"^(sous )?(total|totaux)\b|^nombre total\b|^somme\b")
#: A cell that announces a note (folded): « Source : … », « NB : … », « Remarque … ».
_NOTE = re.compile(r"^(source|sources|note|notes|nb|n b|remarque|remarques|commentaire|"
                   r"attention|important|legende|mise a jour|document)\b")
_LOCATION = ("adresse", "code_postal", "commune", "lat", "lon", "x", "y")


def _input_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (EXTRA_COLUMN, PROBLEM_COLUMN)]


def outside_table(frame: pd.DataFrame, mapping: ColumnMapping, *,
                  table_ends: bool = True, cells: CellTexts | None = None) -> np.ndarray:
    """For every row: ``"total"`` (a cell announces a total and no other cell places it),
    ``"note"`` (one cell, no place, among the last rows of the file, and set apart: after a
    blank line, a total or another note, or worded as a note — « Source : … », a sentence;
    only when ``table_ends``, the frame holding the end of the file), else ``""``. A last
    row with only a porteur stays a site (« non localisé »)."""
    n = len(frame)
    out = np.full(n, "", dtype=object)
    if not n:
        return out
    cells = cells if cells is not None else CellTexts(frame)
    texts = {c: cells(c) for c in _input_columns(frame)}
    filled = np.zeros(n, dtype=np.int32)
    for t in texts.values():
        filled += t != ""
    located_cols = [getattr(mapping, r) for r in _LOCATION if getattr(mapping, r)]
    places = np.zeros(n, dtype=np.int32)
    for c in located_cols:
        places += texts[c] != ""
    # Only rows placed by one cell at most, with few cells, can be a total: the cells of the
    # sites (placed by an address and a commune, or by coordinates) are never folded here.
    maybe = np.flatnonzero((places <= 1) & (filled <= 4))
    total_cell = np.zeros(n, dtype=bool)
    total_col: list[str | None] = [None] * n
    for i in maybe:
        for c, t in texts.items():
            if t[i] and _TOTAL.match(fold_name(t[i])):
                total_cell[i] = True
                total_col[i] = c
                break
    placed = np.zeros((n,), dtype=bool)
    for i in np.flatnonzero(total_cell):
        placed[i] = any(texts[c][i] != "" for c in located_cols if c != total_col[i])
    out[total_cell & ~placed] = "total"
    if table_ends:
        anywhere = np.zeros(n, dtype=bool)
        for c in located_cols:
            anywhere |= texts[c] != ""
        lines = (frame.index.to_numpy(np.int64) if frame.index.name == "ligne"
                 else np.arange(n, dtype=np.int64))
        for c in (EXTRA_COLUMN, PROBLEM_COLUMN):  # a row read with a problem is no note
            if c in frame.columns:
                anywhere |= cells(c) != ""
        start = n
        while start > 0 and (out[start - 1] == "total"
                             or (not anywhere[start - 1] and filled[start - 1] <= 1)):
            start -= 1
        for i in range(max(start, 1), n):
            if out[i]:
                continue
            cell = next((t[i] for t in texts.values() if t[i]), "")
            apart = lines[i] - lines[i - 1] > 1 or out[i - 1] != ""
            if apart or len(cell) >= 40 or _NOTE.match(fold_name(cell)) or cell[:1] in "*(":
                out[i] = "note"
    return out


class Duplicates:
    """Rows that repeat a site seen before in the run (same dossier and place, or same
    porteur and action and place), remembered chunk after chunk."""

    def __init__(self) -> None:
        #: key (kind, folded dossier or porteur+action, place) → line of its first row
        self._seen: dict[str, int] = {}

    def flag(self, frame: pd.DataFrame, mapping: ColumnMapping, lines: np.ndarray,
             skip: np.ndarray, cells: CellTexts | None = None) -> np.ndarray:
        """The reason of each duplicate row (« doublon de la ligne 5 (même dossier, même
        lieu) »), ``""`` for the others; rows in ``skip`` (outside the table) are ignored.
        Vectorised: each distinct cell is folded once, each distinct key looked up once."""
        n = len(frame)
        out = np.full(n, "", dtype=object)
        if not n:
            return out
        cells = cells if cells is not None else CellTexts(frame)
        used = {c for _, c in mapping.describe() if c}
        dossier_col = next((c for c in _input_columns(frame) if c not in used
                            and "dossier" in fold_name(c).split()), None)
        dossier = cells(dossier_col)
        action = cells(mapping.action)
        rows = np.flatnonzero(((dossier != "") | (action != "")) & ~skip)
        if not len(rows):
            return out
        place = [cells(getattr(mapping, r))[rows] for r in _LOCATION]
        lieu = _folded(place[0])
        for j, p in enumerate(place[1:], start=1):
            lieu = lieu + " | " + (_folded(p) if j < 3 else _replaced(p, ",", "."))
        lieu = _replaced(lieu, None, None)
        line = np.asarray(lines, dtype=np.int64)[rows]
        porteur = cells(mapping.porteur)[rows]
        found = np.full(len(rows), -1, dtype=np.int64)
        why = np.full(len(rows), "", dtype=object)
        for kind, text, label in (
                ("dossier", _folded(dossier[rows]), "même dossier, même lieu"),
                ("action", _folded(porteur) + "\x1f" + _folded(action[rows]),
                 "même action, même lieu")):
            raw = dossier[rows] if kind == "dossier" else action[rows]
            has = np.flatnonzero((raw != "") & (lieu != ""))
            if not len(has):
                continue
            first = self._first_lines(kind + "\x1e" + text[has] + "\x1e" + lieu[has],
                                      line[has])
            take = (first >= 0) & (found[has] < 0)
            found[has[take]] = first[take]
            why[has[take]] = label
        dup = found >= 0
        out[rows[dup]] = [f"{DOUBLON_MOTIF} {f} ({w}) : compté une fois"
                          for f, w in zip(found[dup].tolist(), why[dup], strict=True)]
        return out

    def _first_lines(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """For each key (in row order), the line of the first row that had it in the run,
        -1 for that first row itself; new keys are remembered."""
        codes, uniq = pd.factorize(keys)
        first_pos = np.empty(len(uniq), dtype=np.int64)
        first_pos[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        seen = self._seen
        before = np.array([seen.get(k, -1) for k in uniq], dtype=np.int64)
        new = before < 0
        seen.update(zip(uniq[new], lines[first_pos[new]].tolist(), strict=True))
        ref = np.where(new, lines[first_pos], before)[codes]
        is_first = new[codes] & (first_pos[codes] == np.arange(len(codes)))
        return np.where(is_first, -1, ref)


def _folded(texts: np.ndarray) -> np.ndarray:
    """:func:`fold_name` of each text, computed once per distinct text."""
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    if not len(uniq):
        return np.full(len(texts), "", dtype=object)
    return np.array([fold_name(v) for v in uniq], dtype=object)[codes]


def _replaced(texts: np.ndarray, old: str | None, new: str | None) -> np.ndarray:
    """Each distinct text with ``old`` replaced by ``new`` (None: stripped of « | » and
    blanks at both ends), computed once per distinct text."""
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    if not len(uniq):
        return np.full(len(texts), "", dtype=object)
    done = [v.strip(" |") if old is None else v.replace(old, new or "") for v in uniq]
    return np.array(done, dtype=object)[codes]


def is_outside_table(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a batch output that are not sites (status :data:`HORS_TABLEAU`, or its label
    in an XLSX read back)."""
    if "status" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    status = frame["status"].astype(object)
    return status.isin([HORS_TABLEAU, HORS_TABLEAU_LABEL]).to_numpy(bool)


def is_duplicate(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a batch output that repeat a site (their reason says so)."""
    if "motifs" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    motifs = frame["motifs"].astype(object).where(frame["motifs"].notna(), "").astype(str)
    return motifs.str.contains(DOUBLON_MOTIF, regex=False).to_numpy(bool)


def sites_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a batch output that are sites (rows outside the table dropped)."""
    mask = is_outside_table(frame)
    return frame[~mask] if mask.any() else frame


def summary_line(summary: dict[str, Any]) -> str:
    """What the run says of its rows outside the table (empty when there are none)."""
    lines = summary.get("lignes_hors_tableau") or []
    doublons = int(summary.get("doublons_total", 0))
    parts = []
    if lines:
        shown = ", ".join(str(v) for v in lines[:20]) + (" …" if len(lines) > 20 else "")
        parts.append(f"{len(lines)} ligne(s) hors tableau (total ou note), non comptée(s) : "
                     f"ligne(s) {shown}")
    if doublons:
        parts.append(f"{doublons} doublon(s) signalé(s) (même dossier ou même action au même "
                     "lieu), comptés une fois dans la couverture")
    return " ; ".join(parts)




# ---------------------------------------------------------------------------------------------
# A file read wrongly as a whole
# ---------------------------------------------------------------------------------------------

#: Reasons of a row that point at the file rather than at the row (a wrong header, a wrong
#: separator, a stray quote): the row's cells do not line up with the columns, or no place
#: could be read at all.
_FILE_REASONS = ("ligne irrégulière", "ni adresse ni coordonnées sur cette ligne",
                 "guillemet non fermé")
#: Above this share of such rows, the file as a whole is said to be read wrongly.
MAL_LU_PART = 0.5
#: Exit code of ``qpv-geo batch`` for a file mostly read wrongly (output written anyway).
EXIT_MAL_LU = 3


#: Name given to a column whose header cell is blank (:func:`~qpv_geo.batch.source.header_names`).
_UNNAMED = re.compile(r"^colonne [A-Z]{1,3}( \(\d+\))?$")


def file_reason_rows(frame: pd.DataFrame) -> int:
    """Rows of a batch output (sites only) whose reason points at the file, or whose cells
    are mostly under columns without a name (the header read is not the one of the data)."""
    if "motifs" not in frame.columns or not len(frame):
        return 0
    motifs = frame["motifs"].astype(object).where(frame["motifs"].notna(), "").astype(str)
    hit = np.zeros(len(frame), dtype=bool)
    for reason in _FILE_REASONS:
        hit |= motifs.str.contains(reason, regex=False).to_numpy(bool)
    unnamed = [c for c in frame.columns if _UNNAMED.match(str(c).removesuffix(" (source)"))]
    if unnamed:
        named = [c for c in frame.columns if c not in unnamed and c not in OUTPUT_COLUMNS
                 and c not in ("statut_libelle", EXTRA_COLUMN, PROBLEM_COLUMN)]
        blank = np.zeros(len(frame), dtype=np.int32)
        full = np.zeros(len(frame), dtype=np.int32)
        for c in unnamed:
            blank += column_text(frame, c) != ""
        for c in named:
            full += column_text(frame, c) != ""
        hit |= blank > full
    return int(hit.sum())


def mostly_unreadable(bad: int, total: int, *, header_line: int | None = None,
                      columns: int | None = None) -> str:
    """One French sentence when most rows (more than :data:`MAL_LU_PART`) failed for a
    reason that points at the file; empty otherwise."""
    if total <= 0 or bad <= total * MAL_LU_PART:
        return ""
    where = f"ligne {header_line}" if header_line else "en tête du fichier"
    width = f" ({columns} colonne(s))" if columns is not None else ""
    return (f"Fichier probablement mal lu : {bad} ligne(s) sur {total} ont des cellules hors "
            f"des colonnes nommées ou aucune adresse lue ; vérifiez la ligne des noms "
            f"de colonnes (lue {where}{width}) et le séparateur avant d'utiliser ce résultat")


def unreadable_of_frame(frame: pd.DataFrame) -> str:
    """:func:`mostly_unreadable` of a batch output read back (map, report)."""
    sites = sites_only(frame)
    return mostly_unreadable(file_reason_rows(sites), len(sites))


__all__ = ["DOUBLON_MOTIF", "EXIT_MAL_LU", "HORS_TABLEAU", "HORS_TABLEAU_LABEL",
           "HORS_TABLEAU_MOTIF", "MAL_LU_PART", "Duplicates", "file_reason_rows",
           "is_duplicate", "is_outside_table", "mostly_unreadable", "outside_table",
           "sites_only", "summary_line", "unreadable_of_frame"]
