"""Writing validated sites: formula neutralisation, CSV (streamed, French decimal comma), XLSX
for people (« Sites », « Synthèse », « Données » sheets), GeoJSON/GeoPackage, and the summary
files.

Two audiences, two sets of column names:

* the CSV, GeoJSON, GeoPackage and the API keep the stable machine names of
  :data:`~qpv_geo.batch.columns.OUTPUT_COLUMNS` (``status``, ``code_qp``…);
* the XLSX is read by people: French headers (:data:`XLSX_HEADERS`), the status as its
  plain-French label in a coloured cell, header frozen, autofilter, column widths.
  :func:`~qpv_geo.batch.read_validated` maps them back.

Per-run facts (the reference data version ``donnees`` with its checksums, the geocoder, the
column mapping) are written once — in the « Données » sheet and in the companion
``-synthese.csv``/``-synthese.json`` — never on every row. The copies of input columns
(``porteur``, ``action``, ``priorite``: the input's own columns are kept) and
``statut_libelle`` (the label of ``status``) are not written either.

Every output is written to a temporary file in the destination folder and renamed into place
only when all of them are complete (:class:`~qpv_geo._files.AtomicOutputs`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo import __version__, _files
from qpv_geo._files import AtomicOutputs, check_output_path
from qpv_geo.batch.columns import OUTPUT_COLUMNS, fold_name
from qpv_geo.batch.reading import CSV_SUFFIXES, XLSX_SUFFIXES
from qpv_geo.batch.table import HORS_TABLEAU, HORS_TABLEAU_LABEL
from qpv_geo.eligibility.engine import STATUS_LABELS
from qpv_geo.eligibility.wording import PRECISIONS, SOURCES
from qpv_geo.exceptions import InputFileError

if TYPE_CHECKING:
    from qpv_geo.batch.validation import BatchResult

#: Longest text an XLSX cell holds (Excel's limit).
XLSX_CELL_MAX = 32_767
#: Rows an XLSX sheet holds (Excel's limit, header included).
XLSX_ROWS_MAX = 1_048_576

#: Columns of the in-memory result that no output file repeats on every row: the label of
#: ``status`` (its code is written; the XLSX shows the label), the data version (once in the
#: summary), and the copies of the input's porteur/action/priority columns (the input columns
#: are kept; :func:`~qpv_geo.batch.read_validated` derives them again).
NOT_WRITTEN = ("statut_libelle", "donnees", "porteur", "action", "priorite")

#: Machine name (CSV, GeoJSON, GPKG, API) → header of the XLSX « Sites » sheet. Added columns
#: only: the input's own columns keep their names.
XLSX_HEADERS: dict[str, str] = {
    "ligne": "Ligne",
    "status": "Statut",
    "code_qp": "Code QPV",
    "lib_qp": "Quartier (QPV)",
    "distance_bord_m": "Distance au bord (m)",
    "motifs": "Motifs",
    "marge_m": "Marge « à vérifier » (m)",
    "marge_motif": "D'où vient la marge",
    "insee_com": "Code INSEE",
    "lib_com": "Commune trouvée",
    "code_qp_proche": "Code du QPV le plus proche",
    "lib_qp_proche": "QPV le plus proche",
    "distance_qp_proche_m": "Distance au QPV le plus proche (m)",
    "geocodage_label": "Adresse trouvée",
    "geocodage_score": "Score du géocodage",
    "geocodage_precision": "Précision du géocodage",
    "geocodage_source": "Source du point",
    "lon": "Longitude du point",
    "lat": "Latitude du point",
}
#: Column roles as the « Données » sheet names them.
ROLE_LABELS = {"adresse": "Adresse", "code_postal": "Code postal", "commune": "Commune",
               "lat": "Latitude", "lon": "Longitude", "x": "X (Lambert-93)",
               "y": "Y (Lambert-93)", "priorite": "Priorité", "porteur": "Porteur",
               "action": "Action"}
#: What each XLSX column says (the « Données » sheet lists it for the reader).
_XLSX_HELP = {
    "ligne": "Ligne du fichier d'origine (l'en-tête est la ligne 1).",
    "status": "Verdict (couleur + texte). Code machine dans le CSV : status.",
    "code_qp": "Code du QPV 2024 qui contient le point (vide sinon).",
    "lib_qp": "Nom du QPV qui contient le point.",
    "distance_bord_m": "Distance au bord le plus proche du QPV (positive dedans, négative "
                       "dehors).",
    "motifs": "Pourquoi ce verdict, et ce qu'il faut vérifier.",
    "marge_m": "En deçà de cette distance au bord, le verdict est « à vérifier ».",
    "marge_motif": "Précision du périmètre + incertitude sur la position du point.",
    "insee_com": "Code INSEE de la commune du point.",
    "lib_com": "Commune du point selon la référence.",
    "code_qp_proche": "Code du QPV le plus proche (point hors QPV).",
    "lib_qp_proche": "Nom du QPV le plus proche.",
    "distance_qp_proche_m": "Distance au QPV le plus proche.",
    "geocodage_label": "Adresse reconnue par le géocodeur.",
    "geocodage_score": "Confiance du géocodeur (0 à 1).",
    "geocodage_precision": "Précision du géocodage (numéro, rue, commune…).",
    "geocodage_source": "D'où vient le point : coordonnées du fichier ou géocodeur.",
    "lon": "Longitude WGS84 du point jugé.",
    "lat": "Latitude WGS84 du point jugé.",
}
#: Decimals written for the numeric output columns (0.1 m for distances, ≈ 0.1 m for degrees).
_DECIMALS = {"lon": 6, "lat": 6, "distance_bord_m": 1, "distance_qp_proche_m": 1,
             "geocodage_score": 3, "marge_m": 1}

#: Output columns whose text comes only from qpv-geo and the reference data (never from the
#: input file, never starting like a formula): not scanned.
_SAFE_TEXT_COLUMNS = frozenset({"status", "statut_libelle", "code_qp", "lib_qp", "insee_com",
                                "lib_com", "code_qp_proche", "lib_qp_proche", "donnees",
                                "geocodage_precision", "geocodage_source", "priorite",
                                "motifs", "marge_motif"})

# A cell a spreadsheet would run as a formula: it starts (after any blank, no-break or
# zero-width space, line feed…) with = + - @ or their full-width forms, or with a tab / CR.
_FORMULA_CHARS = "=+\\-@\uff1d\uff0b\uff0d\uff20"
_BLANKS = "\\s\u00a0\u180e\u200b-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff"
_RISKY = re.compile(f"[\\t\\r]|[{_BLANKS}]*[{_FORMULA_CHARS}]")
_RISKY_IN_BLOB = re.compile(f"(?:^|\\x00)(?:[\\t\\r]|[{_BLANKS}]*[{_FORMULA_CHARS}])")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")
# The same in ASCII digits, for Arrow (RE2): a subset of _PLAIN_NUMBER's matches
_ASCII_PLAIN_NUMBER = r"^[+-]?[0-9]+(?:[.,][0-9]+)?(?:[eE][+-]?[0-9]+)?$"
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL_BESIDE_NUL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SEP_BLANK = re.compile(r"\x00\s")


def _is_risky(v: str) -> bool:
    return _RISKY.match(v) is not None and not _PLAIN_NUMBER.fullmatch(v)


def _texts(values: Any) -> np.ndarray:
    """Cells of a column as an object array of ``str`` ("" for missing)."""
    arr = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(arr, skipna=False) in ("string", "empty"):
        return arr
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = ""
        if pd.api.types.infer_dtype(arr, skipna=False) == "string":
            return arr
    out = np.empty(len(arr), dtype=object)
    out[:] = [v if isinstance(v, str) else str(v) for v in arr]
    return out


def _can_start_a_formula(first: str) -> bool:
    return first in _FORMULA_SET or first.isspace() or _RISKY.match(first + "=") is not None


_FORMULA_SET = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def _risky_rows(texts: np.ndarray) -> np.ndarray:
    """Indexes of the cells that look like a formula (the first characters of the column are
    looked at first: most columns have no cell starting like a formula)."""
    firsts = {v[:1] for v in texts}
    if not any(_can_start_a_formula(f) for f in firsts if f):
        return np.zeros(0, dtype=np.int64)
    return np.array([i for i, v in enumerate(texts) if _is_risky(v)], dtype=np.int64)


def neutralize_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix with ``'`` the text cells that a spreadsheet would take as a formula (for CSV).

    Text cells starting — after any blank, no-break, zero-width space or line feed — with
    ``=``, ``+``, ``-``, ``@`` (or their full-width forms ＝＋－＠), or with a tab or a carriage
    return, are prefixed, except plain numbers (``-4,5``); numeric columns are left as they
    are. The XLSX writer does not prefix: it writes every text as a text cell.
    """
    out = frame
    copied = False
    for col in frame.columns:
        s = frame[col]
        if col in _SAFE_TEXT_COLUMNS or not (pd.api.types.is_object_dtype(s.dtype)
                                             or pd.api.types.is_string_dtype(s.dtype)):
            continue
        vals = s.to_numpy(object)
        texts = _texts(vals)
        risky = _risky_rows(texts)
        if not len(risky):
            continue
        fixed = vals.copy()
        fixed[risky] = "'" + texts[risky]
        if not copied:
            out = frame.copy()
            copied = True
        out[col] = pd.Series(fixed, index=frame.index, dtype=object)
    return out


def _neutral_text(v: str) -> str:
    """One text cell, neutralised like :func:`neutralize_cells`."""
    return "'" + v if _is_risky(v) else v


# ---------------------------------------------------------------------------------------------
# Which columns each output writes
# ---------------------------------------------------------------------------------------------


def _source_name(col: str) -> str | None:
    """The input's own name of a column renamed « X (source) » because X is an output name."""
    if col.endswith(" (source)") and col[:-9] in OUTPUT_COLUMNS:
        return col[:-9]
    return None


def machine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns written to CSV, GeoJSON and GeoPackage: machine names, without
    :data:`NOT_WRITTEN`; an input column renamed « X (source) » gets its name back when X is
    not written."""
    keep, renames = _machine_labels(frame.columns)
    out = frame[keep] if len(keep) != len(frame.columns) else frame
    return out.rename(columns=renames) if renames else out


def _machine_labels(columns: Sequence[Any]) -> tuple[list[Any], dict[Any, str]]:
    """The columns :func:`machine_frame` keeps, and their renames."""
    keep = [c for c in columns if c not in NOT_WRITTEN]
    renames = {}
    for c in keep:
        orig = _source_name(str(c))
        if orig is not None and orig in NOT_WRITTEN:
            renames[c] = orig
    return keep, renames


def _is_number_column(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _fixed_text(x: float, digits: int, decimal: str) -> str:
    """One number with *digits* fixed decimals, THE rule of the numeric output columns:
    Python's correctly rounded formatting (ties to even on the exact binary value), trailing
    zeros and point dropped, ``decimal`` applied, ``-0`` written ``0``, "" for NaN and
    infinities. :func:`_fixed_cells` writes the same texts for a whole column."""
    if not math.isfinite(x):
        return ""
    t = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if t == "-0" else t.replace(".", decimal)


def _number_texts(name: str, s: pd.Series, decimal: str) -> np.ndarray:
    """A numeric column as texts (rounded per :data:`_DECIMALS` by :func:`_fixed_text`,
    ``decimal`` applied, "" for missing): the path without Arrow, and the numbers that are
    neither integers nor of :data:`_DECIMALS`."""
    if pd.api.types.is_integer_dtype(s.dtype):
        if not s.isna().any():
            return s.to_numpy(np.int64).astype(str).astype(object)
        v = s.to_numpy(np.float64, na_value=np.nan)
        ok = np.isfinite(v)
        txt = np.where(ok, v, 0).astype(np.int64).astype(str)
        return np.where(ok, txt, "").astype(object)
    v = s.to_numpy(np.float64, na_value=np.nan)
    ok = np.isfinite(v)
    if not ok.any():
        return np.full(len(v), "", dtype=object)
    digits = _DECIMALS.get(name)
    if digits is not None:
        out = np.empty(len(v), dtype=object)
        out[:] = [_fixed_text(x, digits, decimal) for x in v.tolist()]
        return out
    txt = np.where(ok, v, 0.0).astype(str)
    if decimal != ".":
        txt = np.strings.replace(txt, ".", decimal)
    return np.where(ok, txt, "").astype(object)


def _number_cells(name: str, s: pd.Series, decimal: str) -> Any:
    """A numeric column as an Arrow string array, the texts of :func:`_number_texts`:
    integers and fixed decimals are formatted by Arrow."""
    pa, pc = _pa()
    text = pa.large_string()
    digits = _DECIMALS.get(name)
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        return pc.cast(pa.array(s.to_numpy(np.int64)), text)
    if digits is not None and not pd.api.types.is_integer_dtype(s.dtype):
        return _fixed_cells(s.to_numpy(np.float64, na_value=np.nan), digits, decimal)
    return pa.array(_number_texts(name, s, decimal), type=text)


#: :func:`_fixed_cells` rounds ``x * 10**digits`` computed in float64: that float is the one
#: nearest to the exact product, so it cannot cross a tie (a half-integer, exactly held below
#: 2**52) that the exact product is on the other side of; it can only land ON a tie the exact
#: product is beside. Values scaled within _NEAR_HALF of a tie (a margin on top of that) or
#: beyond _SCALED_MAX are formatted by Python.
_SCALED_MAX = 2.0**40
_NEAR_HALF = 2.0**-10


def _fixed_cells(v: np.ndarray, digits: int, decimal: str) -> Any:
    """:func:`_fixed_text` of every value of *v*, as an Arrow string array built on the
    column: each value scaled by 10**digits and rounded to an integer, whose digits Arrow
    writes, the decimal separator inserted before the last *digits* and the trailing zeros
    (then a bare separator) dropped. The values where the scaled float may round otherwise
    than the exact decimal rounding — within :data:`_NEAR_HALF` of a tie, or too large — and
    any *digits* below 1 go through :func:`_fixed_text` itself."""
    pa, pc = _pa()
    text = pa.large_string()
    ok = np.isfinite(v)
    if not ok.any():
        return pa.repeat(pa.scalar("", text), len(v))
    scale = 10**digits
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = v * float(scale)
        fast = np.abs(scaled) < _SCALED_MAX
        fast &= np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) > _NEAR_HALF
    if digits < 1:
        fast[:] = False
    k = np.rint(np.where(fast, scaled, 0.0)).astype(np.int64)
    units = np.abs(k)
    small = units < scale  # no integer part: 10**digits added, its 1 written 0
    cells = pc.cast(pa.array(np.where(small, units + scale, units),
                             mask=None if ok.all() else ~ok), text)
    if small.any():
        cells = pc.if_else(pa.array(small), pc.utf8_replace_slice(cells, 0, 1, "0"), cells)
    cells = pc.utf8_replace_slice(cells, -digits, -digits, decimal)  # 4647229 -> 4,647229
    cells = pc.utf8_rtrim(pc.utf8_rtrim(cells, characters="0"), characters=decimal)
    negative = k < 0
    if negative.any():
        cells = pc.if_else(pa.array(negative),
                           pc.binary_join_element_wise(pa.scalar("-", text), cells,
                                                       pa.scalar("", text)), cells)
    if not ok.all():
        cells = pc.fill_null(cells, pa.scalar("", text))
    slow = np.flatnonzero(ok & ~fast)
    if len(slow):
        exact = [_fixed_text(x, digits, decimal) for x in v[slow].tolist()]
        mask = np.zeros(len(v), dtype=bool)
        mask[slow] = True
        cells = pc.replace_with_mask(cells, pa.array(mask), pa.array(exact, type=text))
    return cells


def _csv_quote(texts: np.ndarray, sep: str) -> np.ndarray:
    """Quote (RFC 4180) the cells holding the separator, a quote or a line break."""
    blob = "\x00".join(texts)
    if not any(ch in blob for ch in (sep, '"', "\n", "\r")):
        return texts
    needs = re.compile("[" + re.escape(sep) + '"\r\n]').search
    out = np.empty(len(texts), dtype=object)
    out[:] = ['"' + v.replace('"', '""') + '"' if needs(v) else v for v in texts]
    return out


def _csv_column(name: str, s: pd.Series, sep: str, decimal: str) -> list[str]:
    """One column's cells, ready to join: numbers formatted, formulas neutralised, quoted."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.where(s.to_numpy(bool), "True", "False").tolist()
    if _is_number_column(s):
        return _number_texts(name, s, decimal).tolist()
    texts = _texts(s.to_numpy(object))
    if name not in _SAFE_TEXT_COLUMNS:
        risky = _risky_rows(texts)
        if len(risky):
            texts = texts.copy()
            texts[risky] = "'" + texts[risky]
    return _csv_quote(texts, sep).tolist()


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    if suffix in {".geojson", ".json"}:
        return "geojson"
    if suffix == ".gpkg":
        return "gpkg"
    raise InputFileError(f"Format de sortie « {path.suffix or path.name} » non pris en charge.",
                         hint="Utilisez .csv, .xlsx, .geojson ou .gpkg.")


def summary_paths(path: Path) -> tuple[Path, Path]:
    """The companion summary files of an output (:func:`qpv_geo._files.summary_paths`):
    ``x-synthese.csv``/``.json`` for ``x.csv``, ``x-xlsx-synthese.*`` for ``x.xlsx``…"""
    return _files.summary_paths(path)


def described_file(path: Path, written: Path | None = None) -> dict[str, Any]:
    """What a synthesis says of the file it describes: its name, size and sha256 (*written*:
    where it is now, its temporary before the rename)."""
    data = Path(written or path)
    return {"nom": _files.shown(path.name), "octets": data.stat().st_size,
            "sha256": _files.sha256_file(data)}


def summary_mismatch(facts: dict[str, Any], path: Path) -> str | None:
    """Why the synthesis *facts* does not describe *path* (another run's, or a file changed
    since), or None when it does. A synthesis written before it named its file says None."""
    described = facts.get("fichier_decrit")
    if not isinstance(described, dict):
        return None
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if described.get("octets") != size or described.get("sha256") != _files.sha256_file(path):
        return (f"La synthèse à côté de « {_files.shown(path.name)} » décrit un autre fichier "
                f"(« {described.get('nom')} » de {described.get('octets')} octets, écrit par "
                "une autre exécution, interrompue, ou modifié depuis) : ses informations "
                "(version des données, colonnes reconnues) ne sont pas reprises. Relancez "
                "qpv-geo batch pour des sorties cohérentes.")
    return None


class CsvWriter:
    """Appends chunks to a CSV (BOM once, French decimal comma with ``;``), column by column:
    each column is formatted, neutralised and quoted as a whole, then the rows are joined.

    The columns are formatted, quoted and neutralised in Arrow (:func:`_arrow_column`) and
    the rows joined by Arrow (C speed): the bytes are those of the column-by-column Python
    path (``arrow=False``, kept as the reference and compared by the tests), which takes the
    chunks Arrow cannot hold.
    """

    def __init__(self, path: Path, sep: str, *, arrow: bool = True) -> None:
        self.path = path
        self.sep = sep
        self.decimal = "," if sep == ";" else "."
        self.columns: list[str] | None = None
        self.rows = 0
        self.arrow = arrow and _pa() is not None
        self._fh = open(path, "wb")  # noqa: SIM115

    def write(self, frame: pd.DataFrame) -> None:
        columns: list[tuple[str, pd.Series]] | None = None
        labels = list(frame.columns)
        if len(set(labels)) == len(labels):  # the machine columns, the frame not copied
            keep, renames = _machine_labels(labels)
            if self.columns is None or [renames.get(c, c) for c in keep] == self.columns:
                kept = set(keep)
                columns = [(str(renames.get(c, c)), frame.iloc[:, k])
                           for k, c in enumerate(labels) if c in kept]
        if columns is None:
            frame = machine_frame(frame)
            if self.columns is not None:
                frame = _conform(frame, self.columns)
            columns = [(str(c), frame.iloc[:, k]) for k, c in enumerate(frame.columns)]
        if self.columns is None:
            self.columns = [name for name, _s in columns]
            header = _csv_quote(np.array([_neutral_text(c) for c in self.columns],
                                         dtype=object), self.sep)
            self._fh.write(_BOM + (self.sep.join(header) + "\r\n").encode("utf-8"))
        if len(frame):
            data = _arrow_rows(columns, self.sep, self.decimal) if self.arrow else None
            if data is None:
                cells = [_csv_column(name, s, self.sep, self.decimal) for name, s in columns]
                data = ("\r\n".join(map(self.sep.join, zip(*cells, strict=True)))
                        + "\r\n").encode("utf-8")
            self._fh.write(data)
        self.rows += len(frame)

    def close(self) -> None:
        self._fh.close()


_BOM = "\ufeff".encode()


def _pa() -> Any:
    """pyarrow and its compute module, or None (the CSV is then joined in Python)."""
    try:
        import pyarrow as pa  # optional heavy dependency: pandas' own string storage
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover
        return None
    return pa, pc


def _arrow_rows(columns: Sequence[tuple[str, pd.Series]], sep: str, decimal: str) -> Any:
    """The chunk's rows (its ``(name, column)`` written) as CSV bytes, each row ended by CRLF,
    joined by Arrow; None when a column cannot be held in Arrow (the Python path writes the
    chunk)."""
    pa, pc = _pa()
    try:
        cols = [_arrow_column(name, s, sep, decimal) for name, s in columns]
        text = pa.large_string()
        rows = pc.binary_join_element_wise(*cols, pa.scalar(sep, text))
        rows = pc.binary_join_element_wise(rows, pa.scalar("", text),
                                           pa.scalar("\r\n", text))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if rows.null_count:
        return None
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    start, end = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return rows.buffers()[2][start:end]


def _arrow_column(name: str, s: pd.Series, sep: str, decimal: str) -> Any:
    """One column's cells as an Arrow string array, the same texts as :func:`_csv_column`:
    texts (stored in Arrow, or Python strings) are quoted in Arrow, only the cells starting
    like a formula go through the rule in Python; numbers are formatted by Arrow; other
    objects (numbers, booleans in a text column) as in Python."""
    pa, pc = _pa()
    text = pa.large_string()
    arrow_text = isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"
    if arrow_text:
        cells = pa.array(s.array)
    elif pd.api.types.is_object_dtype(s.dtype):  # Python strings (None, NaN: empty cells)
        try:
            cells = pa.array(s.to_numpy(object), type=text, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers, booleans…: Python's str()
            return pa.array(_csv_column(name, s, sep, decimal), type=text)
    elif _is_number_column(s):
        return _number_cells(name, s, decimal)
    else:
        return pa.array(_csv_column(name, s, sep, decimal), type=text)
    if isinstance(cells, pa.ChunkedArray):  # a column made of several (concatenated) ones
        cells = cells.combine_chunks()
    cells = pc.fill_null(cells.cast(text), pa.scalar("", text))
    if name not in _SAFE_TEXT_COLUMNS:
        firsts = pc.utf8_slice_codeunits(cells, 0, 1)
        risky = [f for f in pc.unique(firsts).to_pylist() if f and _can_start_a_formula(f)]
        if risky:  # the cells starting like a formula (-4,5 or =1)…
            mask = pc.is_in(firsts, value_set=pa.array(risky, type=text))
            starting = cells.filter(mask)
            # …but plain numbers in ASCII digits (-4,5), which no rule changes
            other = pc.invert(pc.match_substring_regex(starting, _ASCII_PLAIN_NUMBER))
            fixed = [_neutral_text(v) for v in starting.filter(other).to_pylist()]
            starting = pc.replace_with_mask(starting, other, pa.array(fixed, type=text))
            cells = pc.replace_with_mask(cells, mask, starting)
    needs = _cells_holding(cells, (sep, '"', "\r", "\n"))
    if not needs.any():
        return cells
    quote = pa.scalar('"', text)
    mask = pa.array(needs)
    quoted = pc.binary_join_element_wise(
        quote, pc.replace_substring(cells.filter(mask), '"', '""'), quote, pa.scalar("", text))
    return pc.replace_with_mask(cells, mask, quoted)


def _cells_holding(cells: Any, chars: Sequence[str]) -> np.ndarray:
    """Which cells of an Arrow string array hold one of ``chars`` (single-byte ASCII), by a
    scan of its bytes."""
    offsets = np.frombuffer(cells.buffers()[1], dtype=np.int64)[
        cells.offset:cells.offset + len(cells) + 1]
    data = cells.buffers()[2]
    out = np.zeros(len(cells), dtype=bool)
    if data is None or offsets[-1] == offsets[0]:
        return out
    blob = memoryview(data)[offsets[0]:offsets[-1]].tobytes()
    present = [ch for ch in set(chars) if ch.encode() in blob]  # most: none (memchr)
    if not present:
        return out
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]]
    hit = raw == ord(present[0])
    for ch in present[1:]:
        hit |= raw == ord(ch)
    where = np.flatnonzero(hit) + offsets[0]
    if len(where):
        out[np.searchsorted(offsets, where, side="right") - 1] = True
    return out


def _conform(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A later chunk shaped like the first one (the extra-cells column may differ: its
    values are also in ``motifs``)."""
    if list(frame.columns) == columns:
        return frame
    out = frame.drop(columns=[c for c in frame.columns if c not in columns])
    for c in columns:
        if c not in out.columns:
            out[c] = ""
    return out[columns]


# ---------------------------------------------------------------------------------------------
# Summary as tables (the XLSX « Synthèse » sheet and the companion CSV)
# ---------------------------------------------------------------------------------------------


def _summary_rows(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The summary as a flat machine table: (rubrique, clé, libellé, valeur)."""
    rows: list[tuple[Any, ...]] = [("rubrique", "cle", "libelle", "valeur")]
    rows.append(("total", "lignes_lues", "lignes lues", summary["lignes_lues"]))
    rows.append(("total", "lignes_ecrites", "lignes écrites",
                 summary.get("lignes_ecrites", summary["total"])))
    labels = summary.get("statuts_libelles") or STATUS_LABELS
    for s, k in summary["par_statut"].items():
        rows.append(("statut", s, labels[s], k))
    for code, e in summary["par_qpv"].items():
        rows.append(("qpv", code, e["lib_qp"], e["sites"]))
        rows.append(("qpv_eligibles", code, e["lib_qp"], e["eligibles"]))
    for key, e in summary["par_priorite"].items():
        rows.append(("priorite", key, e["label"], e["sites"]))
        rows.append(("priorite_eligibles", key, e["label"], e["eligibles"]))
    for r in summary["a_revoir"]:
        rows.append(("a_revoir", r["ligne"], r["status"], r.get("motifs", "")))
    if summary["a_revoir_total"] > len(summary["a_revoir"]):
        rows.append(("a_revoir", "", "autres lignes à revoir : filtrez la colonne status",
                     summary["a_revoir_total"] - len(summary["a_revoir"])))
    for note in summary["notes"]:
        rows.append(("note", "", note, ""))
    rows.append(("donnees", "", summary["donnees"], ""))
    rows.append(("geocodeur", "", summary.get("geocodeur") or "", ""))
    rows.append(("marge_m", "", "", summary.get("marge_m", "")))
    for role, col in summary["colonnes"].items():
        rows.append(("colonne", role, col or "", ""))
    return rows


def write_summary_files(summary: dict[str, Any], path: Path, sep: str,
                         outs: AtomicOutputs) -> list[Path]:
    """Write ``<name>-synthese.csv`` and ``.json`` (through *outs*, once *path* is written
    there: they name it, with its size and sha256); return the final paths."""
    csv_path, json_path = summary_paths(path)
    described = described_file(path, outs.pending(path))
    summary = {**summary, "fichier_decrit": described}
    outs.path(json_path).write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    rows = _summary_rows(summary)
    rows.insert(1, ("fichier_decrit", described["sha256"], described["nom"], described["octets"]))
    table = pd.DataFrame(rows[1:], columns=list(rows[0])).astype({"cle": str, "valeur": str})
    writer = CsvWriter(outs.path(csv_path), sep)
    try:
        writer.write(table)
    finally:
        writer.close()
    return [csv_path, json_path]


# ---------------------------------------------------------------------------------------------
# XLSX for people (xlsxwriter, constant memory: rows streamed to disk)
# ---------------------------------------------------------------------------------------------

#: Fill and font colours of the verdict cells (the text is always there too).
_STATUS_COLOURS = {
    "eligible": ("#C6EFCE", "#006100"),
    "qva": ("#FFE0B2", "#7A3E00"),
    "hors_qpv": ("#FFC7CE", "#9C0006"),
    "hors_territoire": ("#E7E6E6", "#3A3A3A"),
    "a_verifier": ("#FFEB9C", "#7A5A00"),
    "non_geocode": ("#E4DFEC", "#4B2C6F"),
}


def _xlsx_text(texts: np.ndarray) -> np.ndarray:
    """Texts an XLSX cell can hold: no XML control characters, at most 32,767 characters."""
    blob = " ".join(texts)  # printable: none of those characters (a fast check)
    if not blob.isprintable() and _ILLEGAL_BESIDE_NUL.search(blob) is not None:
        texts = np.array([_ILLEGAL_XML.sub("\ufffd", v) for v in texts], dtype=object)
    if max(map(len, texts), default=0) > XLSX_CELL_MAX:
        fixed = texts.copy()
        for i, v in enumerate(texts):
            if len(v) > XLSX_CELL_MAX:
                tail = f"… [tronqué : {len(v)} caractères, texte complet dans la sortie CSV]"
                fixed[i] = v[:XLSX_CELL_MAX - len(tail)] + tail
        texts = fixed
    return texts


def _api_text(v: str) -> str:
    """A text for xlsxwriter's own cell writer: in constant-memory mode it would copy a text
    shaped like ``<r>…</r>`` into the sheet as raw XML (rich text); a trailing space keeps it
    a plain text, shown the same."""
    v = _xlsx_text(np.array([v], dtype=object))[0]
    return v + " " if v.startswith("<r>") and v.endswith("</r>") else v


#: The verdict's first columns, shown right after « Ligne » (visible without scrolling; Ligne and
#: Statut stay in view when the sheet is scrolled right), then the input's columns, then the
#: details.
_XLSX_FIRST = ("status", "lib_qp", "code_qp", "distance_bord_m")
_XLSX_DETAILS = ("motifs", "marge_m", "marge_motif", "lib_com", "insee_com", "lib_qp_proche",
                 "code_qp_proche", "distance_qp_proche_m", "geocodage_label",
                 "geocodage_precision", "geocodage_score", "geocodage_source", "lon", "lat")


def _geocodeur_mots(summary: dict[str, Any]) -> str:
    """The summary's geocoder (``local``, ``ban``) in words, the demonstration file named."""
    name = summary.get("geocodeur")
    if not name:
        return "aucun (coordonnées du fichier)"
    demo = any(str(n).startswith("DÉMONSTRATION — adresses") for n in summary.get("notes", ()))
    return SOURCES["local-demo"] if name == "local" and demo else SOURCES.get(name, name)


#: Columns whose codes the XLSX shows as words (the CSV keeps the codes: public API).
_XLSX_WORDS = {"geocodage_precision": PRECISIONS, "geocodage_source": SOURCES}


def _xlsx_plan(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column of frame, header)`` of the « Sites » sheet, in order: Ligne, the verdict,
    the input's columns, then the verdict's details."""
    added = [c for c in XLSX_HEADERS if c in frame.columns and c != "ligne"]
    skip = {*NOT_WRITTEN, "priorite", *added, "ligne"}
    used = {fold_name(XLSX_HEADERS[c]) for c in (*added, "ligne")}
    plan: list[tuple[str, str]] = []
    if "ligne" in frame.columns:
        plan.append(("ligne", XLSX_HEADERS["ligne"]))
    plan += [(c, XLSX_HEADERS[c]) for c in _XLSX_FIRST if c in added]
    for c in frame.columns:
        if c in skip:
            continue
        name = _source_name(str(c)) or str(c)
        if fold_name(name) in used:
            name = f"{name} (fichier)"
        plan.append((c, name))
    plan += [(c, XLSX_HEADERS[c]) for c in _XLSX_DETAILS if c in added]
    return plan


def _width(header: str, texts: Sequence[str]) -> float:
    sample = [len(t) for t in texts[:500]]
    longest = max(sample, default=0)
    words = max((len(w) for w in header.split()), default=4)
    return float(min(60, max(8, words + 2, min(longest, 50) + 2, len(header) * 0.6)))


def _write_sites_sheet(wb: Any, frame: pd.DataFrame, fmt: dict[str, Any],
                       status_labels: dict[str, str] | None = None) -> None:
    ws = wb.add_worksheet("Sites")
    plan = _xlsx_plan(frame)
    n = len(frame)
    # Each column prepared as a whole (vectorised), then the rows streamed in order.
    columns: list[tuple[str, Any, Callable[..., Any], Any]] = []
    for c, header in plan:
        s = frame[c]
        if c == "status":
            codes = _texts(s.to_numpy(object))
            words = {**(status_labels or STATUS_LABELS), HORS_TABLEAU: HORS_TABLEAU_LABEL}
            labels = np.array([words.get(v, v) for v in codes], dtype=object)
            formats = np.array([fmt.get(f"status:{v}") for v in codes], dtype=object)
            columns.append((header, labels, ws.write_string, formats))
            ws.set_column(len(columns) - 1, len(columns) - 1, 58)
            continue
        if _is_number_column(s) and not pd.api.types.is_bool_dtype(s.dtype):
            v = s.to_numpy(np.float64, na_value=np.nan)
            if c in _DECIMALS:
                v = np.round(v, _DECIMALS[c])
            number_fmt = fmt.get(f"dec:{_DECIMALS.get(c, -1)}")
            values = np.where(np.isfinite(v), v, np.nan)
            columns.append((header, values, ws.write_number, number_fmt))
            width = 7.0 if c == "ligne" else max(10.0, len(header) * 0.55)
            ws.set_column(len(columns) - 1, len(columns) - 1, width, number_fmt)
            continue
        texts = _xlsx_text(_texts(s.to_numpy(object)))
        if c in _XLSX_WORDS:  # a person reads the sheet: words, not the CSV's codes
            words = _XLSX_WORDS[c]
            texts = np.array([words.get(v, v) for v in texts], dtype=object)
        columns.append((header, texts, ws.write_string, None))
        width = 60.0 if c == "motifs" else _width(header, texts)
        ws.set_column(len(columns) - 1, len(columns) - 1, width)
    ws.set_row(0, 32)
    for k, (header, *_rest) in enumerate(columns):
        ws.write_string(0, k, _api_text(header), fmt["header"])
    _stream_rows(ws, columns, n)
    ws.freeze_panes(1, 2 if len(plan) > 1 and plan[1][0] == "status" else 1)
    if columns:
        ws.autofilter(0, 0, max(n, 1), len(columns) - 1)
    _print_setup(ws, paper=8)  # A3 landscape, header repeated on every printed page
    ws.repeat_rows(0)


def _print_setup(ws: Any, paper: int = 9) -> None:
    """Landscape, one page wide (as many pages down as needed)."""
    ws.set_landscape()
    ws.set_paper(paper)
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)


def _xml_escape(texts: np.ndarray) -> np.ndarray:
    blob = "\x00".join(texts)
    if "&" not in blob and "<" not in blob and ">" not in blob:
        return texts
    return np.array([v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                     for v in texts], dtype=object)


def _cells_xml(values: np.ndarray, is_number: bool, cell_fmt: Any) -> np.ndarray:
    """The ``<c>`` elements of one column for every row, built on the whole column at once.
    Cells carry no reference (optional in the format: a row's cells are in column order), so
    an empty cell is written ``<c/>`` to keep the ones after it in place."""
    if is_number:
        ok = np.isfinite(values)
        # (the format's index is taken even when unused: it numbers the sheet's styles)
        style = "" if cell_fmt is None else f' s="{cell_fmt._get_xf_index()}"'
        if not ok.any():  # no number (a score without geocoder)
            return np.full(len(values), "<c/>", dtype=object)
        txt = np.where(ok, values, 0.0)
        if np.all(np.mod(txt, 1) == 0) and np.all(np.abs(txt) < 2**53):
            txt = txt.astype(np.int64)
        body = txt.astype(str).astype(object)
        return np.where(ok, f"<c{style}><v>" + body + "</v></c>", "<c/>")
    if isinstance(cell_fmt, np.ndarray):
        style = np.array(["" if f is None else f' s="{f._get_xf_index()}"' for f in cell_fmt],
                         dtype=object)
    else:
        style = "" if cell_fmt is None else f' s="{cell_fmt._get_xf_index()}"'
    blob = "\x00".join(values)
    if len(blob) == len(values) - 1:  # every cell empty
        return np.full(len(values), "<c/>", dtype=object)
    body = _xml_escape(values)
    space: Any = ""
    # a cell starting or ending with a blank (searched from the separator, both ways: fast)
    if blob[:1].isspace() or blob[-1:].isspace() or _SEP_BLANK.search(blob) \
            or _SEP_BLANK.search(blob[::-1]):
        space = np.array([' xml:space="preserve"' if v[:1].isspace() or v[-1:].isspace()
                          else "" for v in values], dtype=object)
    cells = "<c" + style + ' t="inlineStr"><is><t' + space + ">" + body + "</t></is></c>"
    return np.where(values != "", cells, "<c/>")


def _stream_rows(ws: Any, columns: list[tuple[str, Any, Callable[..., Any], Any]],
                 n: int) -> None:
    """Rows 1..n of the « Sites » sheet. The XML of each column is built on the whole column
    (vectorised), then each row's XML is appended to the worksheet's row data (xlsxwriter's
    constant-memory mode streams rows to that file); empty cells are not written. Every text
    is an inline text cell: nothing can run as a formula."""
    if n == 0:
        return
    ws._check_dimensions(n, len(columns) - 1)
    ws._write_single_row(n + 1)  # flush the header row; rows up to n are written below
    step = 20_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        # one row per line of the table: its opening tag, its cells, its closing tag
        table = np.empty((stop - start, len(columns) + 2), dtype=object)
        table[:, 0] = '<row r="' + np.arange(start + 2, stop + 2).astype(str).astype(object) \
            + '">'
        for k, (_h, values, write, cell_fmt) in enumerate(columns, start=1):
            part = cell_fmt[start:stop] if isinstance(cell_fmt, np.ndarray) else cell_fmt
            table[:, k] = _cells_xml(values[start:stop], write == ws.write_number, part)
        table[:, -1] = "</row>"
        ws.fh.write("".join(table.ravel().tolist()))


def _status_formats(wb: Any) -> dict[str, Any]:
    fmt: dict[str, Any] = {
        "header": wb.add_format({"bold": True, "text_wrap": True, "valign": "top",
                                 "bg_color": "#D9E1F2", "bottom": 1}),
        "title": wb.add_format({"bold": True, "font_size": 14}),
        "h2": wb.add_format({"bold": True, "font_size": 12}),
        "th": wb.add_format({"bold": True, "bg_color": "#D9E1F2", "bottom": 1}),
        "wrap": wb.add_format({"text_wrap": True, "valign": "top"}),
        "pct": wb.add_format({"num_format": "0.0 %", "indent": 1}),
        "int": wb.add_format({"indent": 1}),
        "note": wb.add_format({"italic": True, "font_color": "#7A3E00"}),
        "dec:-1": None,
        "dec:1": wb.add_format({"num_format": "0.0", "indent": 1}),
        "dec:3": wb.add_format({"num_format": "0.000", "indent": 1}),
        "dec:6": wb.add_format({"num_format": "0.000000", "indent": 1}),
    }
    for status, (bg, fg) in _STATUS_COLOURS.items():
        fmt[f"status:{status}"] = wb.add_format({"bg_color": bg, "font_color": fg,
                                                 "bold": True})
    return fmt


def _table(ws: Any, row: int, title: str, header: Sequence[str],
           rows: Sequence[Sequence[Any]], fmt: dict[str, Any],
           cell_formats: Sequence[Any] | None = None, format_col: int = 0) -> int:
    """Write a titled table from *row*; return the next free row (one blank line after).
    ``cell_formats[i]`` formats column *format_col* of row *i* (the verdict colours)."""
    ws.write_string(row, 0, title, fmt["h2"])
    row += 1
    for k, h in enumerate(header):
        ws.write_string(row, k, h, fmt["th"])
    row += 1
    for i, rec in enumerate(rows):
        for k, v in enumerate(rec):
            f = cell_formats[i] if cell_formats is not None and k == format_col else None
            if isinstance(v, float) and header[k].startswith("Part"):
                ws.write_number(row, k, v, fmt["pct"])
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(row, k, v, f or fmt["int"])
            elif v is None or v == "":
                if f is not None:
                    ws.write_blank(row, k, None, f)
            else:
                ws.write_string(row, k, _api_text(str(v)), f)
        row += 1
    return row + 1


def _write_synthese_sheet(wb: Any, summary: dict[str, Any], fmt: dict[str, Any]) -> None:
    ws = wb.add_worksheet("Synthèse")
    _print_setup(ws)
    for k, width in enumerate((60, 12, 16, 34, 44, 110)):
        ws.set_column(k, k, width)
    row = 0
    ws.write_string(row, 0, "Synthèse de la validation", fmt["title"])
    row += 1
    lues = summary["lignes_lues"]
    ecrites = summary.get("lignes_ecrites", summary["total"])
    ws.write_string(row, 0, f"{lues} lignes lues, {ecrites} lignes écrites"
                    + (" : toutes sont dans la feuille « Sites »." if lues == ecrites
                       else " : ATTENTION, des lignes manquent."))
    row += 1
    for note in summary["notes"]:
        ws.write_string(row, 0, f"⚠ {note}", fmt["note"])
        row += 1
    row += 1
    total = max(int(summary["total"]), 1)
    words = summary.get("statuts_libelles") or STATUS_LABELS
    par_statut = [(words[s], int(k), int(k) / total)
                  for s, k in summary["par_statut"].items()]
    row = _table(ws, row, "Par statut", ("Statut", "Lignes", "Part"), par_statut, fmt,
                 [fmt[f"status:{s}"] for s in summary["par_statut"]])
    if summary["par_qpv"]:
        qpv = [(e["lib_qp"], int(e["sites"]), int(e["eligibles"]), code)
               for code, e in summary["par_qpv"].items()]
        row = _table(ws, row, "Par QPV (points dans un QPV, ou à son bord)",
                     ("Quartier (QPV)", "Sites", "dont éligibles", "Code QPV"), qpv, fmt)
    if summary["par_priorite"]:
        prio = [(e["label"], int(e["sites"]), int(e["eligibles"]))
                for e in summary["par_priorite"].values()]
        row = _table(ws, row, "Par priorité de l'appel",
                     ("Priorité", "Sites", "dont éligibles"), prio, fmt)
    if summary["a_revoir_total"]:
        listed = summary["a_revoir"]
        review = [(r.get("porteur", ""), int(r["ligne"]),
                   words.get(r["status"], r["status"]).split(" — ")[0],
                   r.get("action", ""), r.get("adresse", ""), r.get("motifs", ""))
                  for r in listed]
        row = _table(ws, row, f"Lignes à revoir ({summary['a_revoir_total']})",
                     ("Porteur", "Ligne", "Statut", "Action", "Adresse", "Motif"),
                     review, fmt, [fmt.get(f"status:{r['status']}") for r in listed],
                     format_col=2)
        if summary["a_revoir_total"] > len(listed):
            ws.write_string(row - 1, 0, f"… et {summary['a_revoir_total'] - len(listed)} "
                            "autres : filtrez la colonne « Statut » de la feuille « Sites ».")


def _write_donnees_sheet(wb: Any, summary: dict[str, Any], fmt: dict[str, Any]) -> None:
    ws = wb.add_worksheet("Données")
    _print_setup(ws)
    ws.set_column(0, 0, 34)
    ws.set_column(1, 1, 60)
    ws.set_column(2, 2, 70)
    ws.write_string(0, 0, "Données et réglages de cette validation", fmt["title"])
    facts = [
        ("Données de référence", summary["donnees"]),
        ("Géocodeur", _geocodeur_mots(summary)),
        ("Marge « à vérifier »", f"{summary['marge_m']:g} m (imposée)"
         if isinstance(summary.get("marge_m"), int | float)
         else "par ligne : précision du périmètre + incertitude de la position (voir la "
         "colonne « D'où vient la marge »)"),
        ("Version de qpv-geo", __version__),
        ("Fichier écrit le", _dt.datetime.now().strftime("%d/%m/%Y %H:%M")),
    ]
    for note in summary["notes"]:
        facts.append(("Note", note))
    row = 2
    for k, (label, value) in enumerate(facts):
        ws.write_string(row + k, 0, label, fmt["th"])
        if isinstance(value, (int, float)):
            ws.write_number(row + k, 1, value)
        else:
            ws.write_string(row + k, 1, _api_text(str(value)), fmt["wrap"])
    row += len(facts) + 1
    roles = [(ROLE_LABELS.get(role, role), col or "(aucune)")
             for role, col in summary["colonnes"].items()]
    row = _table(ws, row, "Colonnes du fichier reconnues", ("Rôle", "Colonne du fichier"),
                 roles, fmt)
    names = [(XLSX_HEADERS[c], c, _XLSX_HELP[c]) for c in XLSX_HEADERS]
    _table(ws, row, "Colonnes ajoutées (nom dans le CSV et l'API)",
           ("Colonne (feuille Sites)", "Nom machine (CSV, API)", "Ce qu'elle dit"), names, fmt)


def _write_xlsx(frame: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    import xlsxwriter

    if len(frame) + 1 > XLSX_ROWS_MAX:
        raise InputFileError(f"{len(frame)} lignes : trop pour une feuille Excel "
                             f"({XLSX_ROWS_MAX - 1} au plus).", hint="Écrivez un .csv.")
    wb = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    try:
        fmt = _status_formats(wb)
        _write_sites_sheet(wb, frame, fmt, summary.get("statuts_libelles"))
        _write_synthese_sheet(wb, summary, fmt)
        _write_donnees_sheet(wb, summary, fmt)
    finally:
        try:
            wb.close()
        except Exception:  # a failed close leaves xlsxwriter's row files open: close them
            for ws in wb.worksheets():
                with contextlib.suppress(Exception):
                    ws._opt_close()
            raise


# ---------------------------------------------------------------------------------------------
# GeoJSON / GeoPackage
# ---------------------------------------------------------------------------------------------


def _unique_ignoring_case(columns: Sequence[str]) -> dict[str, str]:
    """Renames so that no two columns differ only by case (SQLite, hence GeoPackage, ignores
    case): the later one gets « (2) », « (3) »…"""
    seen: set[str] = set()
    renames: dict[str, str] = {}
    for c in columns:
        name, k = c, 2
        while name.lower() in seen:
            name = f"{c} ({k})"
            k += 1
        seen.add(name.lower())
        if name != c:
            renames[c] = name
    return renames


def _write_geo(frame: pd.DataFrame, path: Path, kind: str) -> None:
    import geopandas as gpd

    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(np.float64)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = gpd.GeoSeries.from_xy(np.where(ok, lon, 0.0), np.where(ok, lat, 0.0), crs=4326)
    geoms[~ok] = None
    data = machine_frame(frame).copy()
    data.columns = [str(c) for c in data.columns]
    if kind == "gpkg":  # SQLite column names ignore case: « Ligne » collides with « ligne »
        ordered = [c for c in data.columns if c in OUTPUT_COLUMNS] + \
            [c for c in data.columns if c not in OUTPUT_COLUMNS]
        renames = _unique_ignoring_case(ordered)
        data = data.rename(columns=renames)
    for col in data.columns:
        if pd.api.types.is_object_dtype(data[col].dtype) or \
                pd.api.types.is_string_dtype(data[col].dtype):
            data[col] = data[col].astype(object).where(data[col].notna(), None)
    gdf = gpd.GeoDataFrame(data, geometry=geoms.values, crs=4326)
    # the layer's name (GeoJSON's « name », a GeoPackage's table): not the temporary file's
    gdf.to_file(path, driver="GeoJSON" if kind == "geojson" else "GPKG", layer="sites")


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------


def output_paths(path: Path) -> list[Path]:
    """Every file an output of *path* writes: the sites file and its two summary files."""
    return [path, *summary_paths(path)]


def write_result(result: BatchResult, path: str | Path, *, sep: str = ";",
                 inputs: Sequence[str | Path] = (), summaries: bool = True) -> list[Path]:
    """Write validated sites (by extension: .csv, .xlsx, .geojson, .gpkg) and the summary.

    CSV: UTF-8 with BOM, ``;`` and decimal comma by default (French Excel), ``sep=","`` gives
    a decimal point; machine column names. XLSX: sheets « Sites » (French headers, coloured
    verdicts), « Synthèse » and « Données ». Next to the output: ``<name>-synthese.csv`` and
    ``<name>-synthese.json`` (:func:`summary_paths`: ``<name>-xlsx-synthese.*`` for an XLSX;
    not written with ``summaries=False``, for an XLSX whose sheets already hold them). All of
    them are written aside and renamed into place together when complete, the synthesis
    naming the file it describes (:func:`summary_mismatch`); an output that is one of
    *inputs* or belongs to one, or in a missing folder, is refused. Returns the paths
    written, the sites file first.
    """
    path = Path(path)
    kind = kind_of(path)
    for p in output_paths(path) if summaries else [path]:
        check_output_path(p, inputs)
    frame = result.frame
    summary = dict(result.summary)
    summary["lignes_ecrites"] = len(frame)
    try:
        with AtomicOutputs() as outs:
            if kind == "csv":
                writer = CsvWriter(outs.path(path), sep)
                try:
                    writer.write(frame)
                finally:
                    writer.close()
            elif kind == "xlsx":
                _write_xlsx(frame, summary, outs.path(path))
            else:
                _write_geo(frame, outs.path(path), kind)
            written = [path, *(write_summary_files(summary, path, sep, outs)
                               if summaries else [])]
    except Exception as exc:
        error = _files.write_error(exc, path)
        if error is None:
            raise
        raise error from exc
    result.summary["lignes_ecrites"] = len(frame)
    return written
