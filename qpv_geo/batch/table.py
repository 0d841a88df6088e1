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
from pandas.util import hash_array

from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    OUTPUT_COLUMNS,
    PROBLEM_COLUMN,
    CellTexts,
    ColumnMapping,
    column_text,
    fold_name,
)
from qpv_geo.eligibility.coded import factorize_rows

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
    row with only a porteur stays a site (« non localisé »).

    Only the rows placed by one cell at most can be either (a row placed by an address and a
    commune, or by coordinates, is a site): the other columns are read for those rows only,
    and each distinct cell of them is folded once."""
    n = len(frame)
    out = np.full(n, "", dtype=object)
    if not n:
        return out
    cells = cells if cells is not None else CellTexts(frame)
    located_cols = [getattr(mapping, r) for r in _LOCATION if getattr(mapping, r)]
    places = np.zeros(n, dtype=np.int32)
    for c in located_cols:
        places += cells(c) != ""
    maybe = np.flatnonzero(places <= 1)
    if not len(maybe):
        return out
    # The cells of those rows only: a column stripped by the chunk already is reused, any
    # other is stripped for those rows (most rows of a file are placed).
    few = len(maybe) * 4 < n
    part = frame.iloc[maybe] if few else frame
    texts = {c: column_text(part, c) if few else cells(c)[maybe]
             for c in _input_columns(frame)}
    filled = np.zeros(len(maybe), dtype=np.int32)
    for t in texts.values():
        filled += t != ""
    # A total: few cells (a site has more), one of them announcing it.
    can = filled <= 4
    total_col = np.full(len(maybe), -1, dtype=np.int64)
    for k, t in enumerate(texts.values()):
        free = np.flatnonzero(can & (total_col < 0) & (t != ""))
        if len(free):
            total_col[free[_matches(t[free], _TOTAL)]] = k
    names = list(texts)
    total = np.zeros(len(maybe), dtype=bool)
    for i in np.flatnonzero(total_col >= 0):
        col = names[total_col[i]]
        total[i] = not any(texts[c][i] != "" for c in located_cols if c != col)
    out[maybe[total]] = "total"
    if table_ends:
        _notes(frame, cells, out, maybe, texts, filled, located_cols)
    return out


def _notes(frame: pd.DataFrame, cells: CellTexts, out: np.ndarray, maybe: np.ndarray,
           texts: dict[str, np.ndarray], filled: np.ndarray, located_cols: list[str]) -> None:
    """Mark the notes among the last rows (``out`` changed in place). Those rows are totals
    or rows with one cell at most and no place, all of them among ``maybe``."""
    n = len(out)
    at = np.full(n, -1, dtype=np.int64)  # row → its place in maybe
    at[maybe] = np.arange(len(maybe))
    extra = [cells(c) for c in (EXTRA_COLUMN, PROBLEM_COLUMN)  # a row read with a problem
             if c in frame.columns]                             # is no note

    def anywhere(i: int) -> bool:
        return (at[i] < 0 or any(texts[c][at[i]] != "" for c in located_cols)
                or any(e[i] != "" for e in extra))

    start = n
    while start > 0 and (out[start - 1] == "total"
                         or (not anywhere(start - 1) and filled[at[start - 1]] <= 1)):
        start -= 1
    if start >= n:
        return
    lines = (frame.index.to_numpy(np.int64) if frame.index.name == "ligne"
             else np.arange(n, dtype=np.int64))
    for i in range(max(start, 1), n):
        if out[i]:
            continue
        cell = next((t[at[i]] for t in texts.values() if t[at[i]]), "")
        apart = lines[i] - lines[i - 1] > 1 or out[i - 1] != ""
        if apart or len(cell) >= 40 or _NOTE.match(fold_name(cell)) or cell[:1] in "*(":
            out[i] = "note"


def _matches(texts: np.ndarray, pattern: re.Pattern[str]) -> np.ndarray:
    """Whether each text, folded (:func:`fold_name`), starts with ``pattern``; each distinct
    text is folded and tested once."""
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    hit = np.array([bool(pattern.match(fold_name(v))) for v in uniq], dtype=bool)
    return hit[codes]


class Duplicates:
    """Rows that repeat a site seen before in the run (same dossier and place, or same
    porteur and action and place), remembered chunk after chunk.

    A row's key is its place (:func:`_places`), its folded dossier (or folded porteur and
    action) and its kind (``dossier`` or ``action``): the same sequence of texts as the
    key « kind, text, place » written out, made 128 bits (each text packed or hashed by
    :func:`_hashes`, mixed in turn by :func:`_mixed`). No Python work per row: each text
    column is factorised once and its distinct cells folded once (coordinates are worked
    on as bytes), rows are grouped by their 128 bits, and a chunk's distinct keys are
    looked up in the run's memory all at once (:class:`_Seen`)."""

    def __init__(self) -> None:
        #: 128-bit keys (:func:`_hashes`) of the run → line of their first row
        self._seen = _Seen()
        self._folds = _Folds()

    def flag(self, frame: pd.DataFrame, mapping: ColumnMapping, lines: np.ndarray,
             skip: np.ndarray, cells: CellTexts | None = None) -> np.ndarray:
        """The reason of each duplicate row (« doublon de la ligne 5 (même dossier, même
        lieu) »), ``""`` for the others; rows in ``skip`` (outside the table) are ignored."""
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
        place, parts = _places(len(rows), [cells(getattr(mapping, r))[rows]
                                           if getattr(mapping, r) else None
                                           for r in _LOCATION], self._folds)
        line = np.asarray(lines, dtype=np.int64)[rows]
        found = np.full(len(rows), -1, dtype=np.int64)
        why = np.zeros(len(rows), dtype=np.int8)  # 1: same dossier, 2: same action
        for kind, columns, label in (
                ("dossier", [dossier], 1), ("action", [cells(mapping.porteur), action], 2)):
            has = np.flatnonzero((columns[-1][rows] != "") & (parts > 0))
            if not len(has):
                continue
            # key: the parts of the place, the folded text(s), the kind, the number of
            # parts (the kind tells how many texts: the sequence reads back one way only)
            key = place[has]
            for column in columns:
                codes, texts = _distinct(column[rows[has]], self._folds)
                key = _mixed(key, _hashes(texts)[codes])
            key = _mixed(key, _KINDS[kind])
            key = _mixed(key, np.repeat(parts[has, None], 2, axis=1).astype(np.uint64))
            first = self._first_lines(key, line[has])
            take = (first >= 0) & (found[has] < 0)
            found[has[take]] = first[take]
            why[has[take]] = label
        dup = found >= 0
        out[rows[dup]] = [f"{DOUBLON_MOTIF} {f} ({_LABELS[w]}) : compté une fois"
                          for f, w in zip(found[dup].tolist(), why[dup].tolist(), strict=True)]
        return out

    def _first_lines(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """For each key (rows of 2 × 64 bits, in row order), the line of the first row that
        had it in the run, -1 for that first row itself; new keys are remembered."""
        codes, first_pos = factorize_rows(keys[:, 0], keys[:, 1])
        before = self._seen.first_lines(keys[first_pos], lines[first_pos])
        new = before < 0
        ref = np.where(new, lines[first_pos], before)[codes]
        is_first = new[codes] & (first_pos[codes] == np.arange(len(codes)))
        return np.where(is_first, -1, ref)


class _Seen:
    """Keys of 2 × 64 bits, each with a line, looked up and added a chunk at a time (never
    one by one in Python): kept as a few runs sorted by the keys' first half, a run merged
    with the one before when it grows as large (each key moves a few times in a run)."""

    def __init__(self) -> None:
        #: runs of (first halves, second halves, lines), sorted by first half
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def first_lines(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """The line remembered for each key (distinct keys), -1 for a new key: it is
        remembered with its line."""
        order = np.argsort(keys[:, 0])  # sorted needles: searchsorted walks memory once
        high, low = keys[order, 0], keys[order, 1]
        found = np.full(len(keys), -1, dtype=np.int64)
        for run_high, run_low, run_lines in self._runs:
            start = np.searchsorted(run_high, high)
            size = len(run_high)
            same = np.flatnonzero(start < size)
            same = same[run_high[start[same]] == high[same]]
            hit = same[run_low[start[same]] == low[same]]
            found[hit] = run_lines[start[hit]]
            # two keys of the same first half (1 in 2⁶⁴): look further
            after = np.minimum(start[same] + 1, size - 1)
            for i in same[(start[same] + 1 < size) & (run_high[after] == high[same])]:
                stop = np.searchsorted(run_high, high[i], side="right")
                match = np.flatnonzero(run_low[start[i]:stop] == low[i])
                if len(match):
                    found[i] = run_lines[start[i] + match[0]]
        new = found < 0
        run = (high[new], low[new], lines[order][new])
        while self._runs and len(self._runs[-1][0]) <= 2 * len(run[0]):
            before = self._runs.pop()
            both = [np.concatenate([a, b]) for a, b in zip(before, run, strict=True)]
            merged = np.argsort(both[0], kind="stable")  # two sorted runs: O(n)
            run = (both[0][merged], both[1][merged], both[2][merged])
        if len(run[0]):
            self._runs.append(run)
        out = np.empty_like(found)
        out[order] = found
        return out


def _places(n: int, columns: list[np.ndarray | None],
            folds: _Folds) -> tuple[np.ndarray, np.ndarray]:
    """The place of each of ``n`` rows, hashed, and its number of parts (0: no place);
    ``None`` for a column the file does not have.

    The place is « a | b | … » over the folded address, postcode and commune (the first
    three columns) and the coordinates with « , » read as « . », stripped of « | » and
    blanks at both ends (« 45,4 » and « 45.4 » are one place). It is hashed as the
    sequence of its « | »-separated parts (``place.split(" | ")``). When no cell holds
    « | » nor starts or ends with a blank (always, but for odd coordinate cells), those
    parts are the cells from the first non-empty one to the last; the other rows are
    joined and split as text."""
    cells: list[np.ndarray | None] = []  # hashes of each cell, None: all empty
    filled = np.zeros((n, len(columns)), dtype=bool)
    odd = np.zeros(n, dtype=bool)
    for j, raw in enumerate(columns):
        if raw is None:
            cells.append(None)
            continue
        fast = _dotted_fast(raw) if j >= 3 else None
        if fast is not None:
            cells.append(fast[0])
            filled[:, j] = fast[1]
            odd |= fast[2]
            continue
        codes, texts = _distinct(raw, folds if j < 3 else None)
        cells.append(_hashes(texts)[codes])
        filled[:, j] = (texts != "")[codes]
        bad = _odd(texts)
        if bad.any():
            odd |= bad[codes]
    first = filled.argmax(axis=1)
    last = len(columns) - 1 - filled[:, ::-1].argmax(axis=1)
    parts = np.where(filled.any(axis=1), last - first + 1, 0)
    place = np.zeros((n, 2), dtype=np.uint64)
    for j, hashes in enumerate(cells):
        inside = (first <= j) & (j <= last)
        if inside.any():
            mixed = _mixed(place, _EMPTY if hashes is None else hashes)
            place = np.where(inside[:, None], mixed, place)
    for i in np.flatnonzero(odd):
        texts = ["" if c is None else str(c[i]) for c in columns]
        done = [fold_name(t) if j < 3 else t.replace(",", ".") for j, t in enumerate(texts)]
        lieu = " | ".join(done).strip(" |")
        split = lieu.split(" | ") if lieu else []
        place[i] = 0
        for h in _hashes(split):
            place[i] = _mixed(place[i], h)
        parts[i] = len(split)
    return place, parts


def _odd(texts: np.ndarray) -> np.ndarray:
    """Which texts hold « | » or start or end with a blank (their place is not simply their
    cells side by side)."""
    whole = "\n".join(texts)
    if ("|" not in whole and "\n " not in whole and " \n" not in whole
            and whole[:1] != " " and whole[-1:] != " "):
        return np.zeros(len(texts), dtype=bool)
    return np.array([("|" in t or t[:1] == " " or t[-1:] == " ") for t in texts], dtype=bool)


def _distinct(texts: np.ndarray, folds: _Folds | None) -> tuple[np.ndarray, np.ndarray]:
    """Each text folded (:func:`fold_name`, with ``folds``; each distinct text once), or
    else with « , » read as « . » (coordinates, nearly all distinct: every row at once), as
    codes and values (texts changed alike may keep two codes)."""
    if folds is None:
        dotted = "\n".join(texts).replace(",", ".").split("\n")
        if len(dotted) != len(texts):  # a cell holding a line break
            dotted = [v.replace(",", ".") for v in texts]
        done = np.empty(len(texts), dtype=object)
        done[:] = dotted
        return np.arange(len(texts)), done
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    done = np.empty(len(uniq), dtype=object)
    done[:] = folds(uniq)
    return codes, done


class _Folds:
    """:func:`fold_name` of cells, remembered through the run (porteurs and actions come
    back chunk after chunk); forgotten past :data:`_FOLDS_MAX` texts."""

    def __init__(self) -> None:
        self._done: dict[str, str] = {}

    def __call__(self, texts: np.ndarray) -> list[str]:
        done = self._done
        if len(done) > _FOLDS_MAX:
            done.clear()
        return [f if (f := done.get(t)) is not None else done.setdefault(t, fold_name(t))
                for t in texts]


#: Most folded texts remembered by :class:`_Folds`.
_FOLDS_MAX = 200_000


#: A text shorter than this, in ASCII (coordinates, postcodes, short names), is its own
#: 128 bits: its bytes and its length (exact, no hash).
_PACKED = 16
#: Two SipHash keys (pandas' ``hash_array``): any other text gets two independent 64-bit
#: hashes, so two different keys of a run (n keys) share their 128 bits with a probability
#: about n² / 2¹²⁹ (1e-27 for a million keys): never in practice.
_HASH_KEYS = ("qpv-geo doublons", "lieu-dossier-act")


def _hashes(texts: Any) -> np.ndarray:
    """The 128 bits of each text, as a (n, 2) array of 64-bit halves: a short ASCII text
    packed (:data:`_PACKED`), any other one hashed twice."""
    values = np.asarray(texts, dtype=object).reshape(-1)
    n = len(values)
    out = np.empty((n, 2), dtype=np.uint64)
    size = np.fromiter(map(len, values), dtype=np.int64, count=n)
    short = (size < _PACKED) & np.fromiter(map(str.isascii, values), dtype=bool, count=n)
    if short.any():
        out[short] = _packed(_bytes(values[short]), size[short])
    if short.all():
        return out
    rest = values[~short]
    try:
        lanes = [hash_array(rest, hash_key=k, categorize=False) for k in _HASH_KEYS]
    except UnicodeEncodeError:  # a lone surrogate: hashed on its UTF-8 bytes kept as is
        raw = np.empty(len(rest), dtype=object)
        raw[:] = [str(t).encode("utf-8", "surrogatepass") for t in rest]
        lanes = [hash_array(raw, hash_key=k, categorize=False) for k in _HASH_KEYS]
    out[~short] = np.stack(lanes, axis=-1)
    return out


def _bytes(texts: np.ndarray) -> np.ndarray:
    """Short ASCII texts as rows of :data:`_PACKED` bytes (padded with zeros)."""
    raw = np.asarray(texts, dtype=f"S{_PACKED}")
    return raw.view(np.uint8).reshape(len(texts), _PACKED).copy()


def _packed(raw: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Rows of bytes of texts of ``size`` characters (< :data:`_PACKED`) as 128 bits: the
    last byte holds the size (a text ending in a zero character stays apart) and a mark
    (no hash of a longer text is meant to look like one)."""
    raw[:, _PACKED - 1] = 0x80 | size
    return raw.view(np.uint64).reshape(len(raw), 2)


def _dotted_fast(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For coordinates as typed, all short ASCII texts: :func:`_hashes` of each text with
    « , » read as « . », whether it is not empty and whether it is odd (:func:`_odd`),
    worked out on bytes; None for other texts."""
    n = len(texts)
    size = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    if not n or size.max() >= _PACKED or not "".join(texts).isascii():
        return None
    raw = _bytes(texts)
    raw[raw == ord(",")] = ord(".")
    last = raw[np.arange(n), np.maximum(size - 1, 0)]
    odd = (raw == ord("|")).any(axis=1) | (raw[:, 0] == ord(" ")) | (last == ord(" "))
    return _packed(raw, size), size > 0, odd


#: Why a duplicate is one (:meth:`Duplicates.flag`).
_LABELS = {1: "même dossier, même lieu", 2: "même action, même lieu"}
#: Hashes of the empty text and of the two kinds of keys.
_EMPTY = _hashes([""])
_KINDS = {kind: _hashes([kind]) for kind in ("dossier", "action")}


def _mixed(acc: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``acc`` with one more hash of a sequence mixed in (each lane on its own; for a given
    ``acc`` a bijection of ``value``, so two sequences differing only in their last item
    never collide)."""
    acc = (acc ^ value) * np.uint64(0x9E3779B97F4A7C15)
    return acc ^ (acc >> np.uint64(29))


def is_outside_table(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a batch output that are not sites (status :data:`HORS_TABLEAU`, or its label
    in an XLSX read back)."""
    if "status" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    status = frame["status"].astype(object)
    return status.isin([HORS_TABLEAU, HORS_TABLEAU_LABEL]).to_numpy(bool)


def is_duplicate(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a batch output that repeat a site (their reason says so)."""
    return _motifs_say(frame, (DOUBLON_MOTIF,))


def _motifs_say(frame: pd.DataFrame, reasons: tuple[str, ...]) -> np.ndarray:
    """Rows of a batch output whose reason (``motifs``) holds one of ``reasons``: the
    reasons of all rows are searched as one text (a reason holds no line break), one
    search per row found."""
    if "motifs" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    values = frame["motifs"].to_numpy(object)
    if pd.api.types.infer_dtype(values, skipna=False) != "string":  # a missing one, a number
        missing = pd.isna(values)
        values = np.array(["" if m else str(v) for v, m in zip(values, missing, strict=True)],
                          dtype=object)
    text = "\n".join(values)
    said = np.zeros(len(values), dtype=bool)
    ends: np.ndarray | None = None  # where each row's reason ends in the text
    for reason in reasons:
        at = text.find(reason)
        while at >= 0:
            if ends is None:
                ends = np.cumsum(np.fromiter(map(len, values), dtype=np.int64,
                                             count=len(values)) + 1)
            row = int(np.searchsorted(ends, at, side="right"))
            said[row] = True
            at = text.find(reason, int(ends[row]))
    return said


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
    hit = _motifs_say(frame, _FILE_REASONS)
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
