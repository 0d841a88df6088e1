"""Writing validated sites: formula neutralisation, CSV (streamed, French decimal comma), XLSX
with a « synthèse » sheet, GeoJSON/GeoPackage, and the summary files."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo.batch.columns import OUTPUT_COLUMNS
from qpv_geo.batch.reading import _CSV_SUFFIXES, _XLSX_SUFFIXES
from qpv_geo.eligibility import STATUS_LABELS
from qpv_geo.exceptions import InputFileError

if TYPE_CHECKING:
    from qpv_geo.batch.validation import BatchResult

#: Longest text an XLSX cell holds (Excel's limit).
XLSX_CELL_MAX = 32_767
#: Rows an XLSX sheet holds (Excel's limit, header included).
XLSX_ROWS_MAX = 1_048_576

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


#: Output columns whose text comes only from qpv-geo and the reference data (never from the
#: input file): not scanned for formulas.
_SAFE_TEXT_COLUMNS = frozenset({"status", "statut_libelle", "code_qp", "lib_qp", "insee_com",
                                "lib_com", "code_qp_proche", "lib_qp_proche", "donnees",
                                "geocodage_precision", "geocodage_source", "priorite"})


def neutralize_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix with ``'`` the text cells that a spreadsheet would take as a formula.

    Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are
    prefixed, except plain numbers (``-4,5``); numeric columns are left as they are.
    """
    out = frame
    copied = False
    for col in frame.columns:
        s = frame[col]
        if col in _SAFE_TEXT_COLUMNS or not (pd.api.types.is_object_dtype(s.dtype)
                                             or pd.api.types.is_string_dtype(s.dtype)):
            continue
        vals = s.to_numpy(object)
        risky = [i for i, v in enumerate(vals)
                 if isinstance(v, str) and v[:1] in _FORMULA_START
                 and not _PLAIN_NUMBER.fullmatch(v)]
        if not risky:
            continue
        fixed = vals.copy()
        for i in risky:
            fixed[i] = "'" + vals[i]
        if not copied:
            out = frame.copy()
            copied = True
        out[col] = pd.Series(fixed, index=frame.index, dtype=object)
    return out


def _neutral_text(v: str) -> str:
    """One text cell, neutralised like :func:`neutralize_cells`."""
    return "'" + v if v[:1] in _FORMULA_START and not _PLAIN_NUMBER.fullmatch(v) else v


def _csv_columns(frame: pd.DataFrame, decimal: str) -> list[list[str]]:
    """Every column as a list of cell texts (numbers formatted in C, ``decimal`` applied)."""
    cols: list[list[str]] = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            cols.append(np.where(s.to_numpy(bool), "True", "False").tolist())
        elif pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
            cols.append(s.to_numpy(np.int64).astype(str).tolist())
        elif pd.api.types.is_numeric_dtype(s.dtype):
            v = s.to_numpy(np.float64, na_value=np.nan)
            ok = np.isfinite(v)
            txt = np.where(ok, v, 0.0).astype(str)
            if decimal != ".":
                txt = np.strings.replace(txt, ".", decimal)
            cols.append(np.where(ok, txt, "").tolist())
        else:
            cols.append(s.astype(object).where(s.notna(), "").tolist())
    return cols


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix in _XLSX_SUFFIXES:
        return "xlsx"
    if suffix in {".geojson", ".json"}:
        return "geojson"
    if suffix == ".gpkg":
        return "gpkg"
    raise InputFileError(f"Format de sortie « {path.suffix or path.name} » non pris en charge.",
                         hint="Utilisez .csv, .xlsx, .geojson ou .gpkg.")


class _CsvWriter:
    """Appends chunks to a CSV (BOM once, French decimal comma with ``;``)."""

    def __init__(self, path: Path, sep: str) -> None:
        self.path = path
        self.sep = sep
        self.decimal = "," if sep == ";" else "."
        self.columns: list[str] | None = None
        self.rows = 0
        self._header = True
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115

    def write(self, frame: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = list(frame.columns)
        else:
            frame = _conform(frame, self.columns)
        writer = csv.writer(self._fh, delimiter=self.sep, lineterminator="\r\n")
        if self._header:
            writer.writerow([_neutral_text(str(c)) for c in frame.columns])
        writer.writerows(zip(*_csv_columns(neutralize_cells(frame), self.decimal),
                             strict=True))
        self.rows += len(frame)
        self._header = False

    def close(self) -> None:
        self._fh.close()


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


_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (int, float)):
        return v
    s = _ILLEGAL_XLSX.sub("\ufffd", str(v))
    if len(s) > XLSX_CELL_MAX:
        tail = f"… [tronqué : {len(s)} caractères, texte complet dans la sortie CSV]"
        s = s[:XLSX_CELL_MAX - len(tail)] + tail
    return s


def _summary_rows(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The summary as a flat table: (rubrique, clé, libellé, valeur)."""
    rows: list[tuple[Any, ...]] = [("rubrique", "cle", "libelle", "valeur")]
    rows.append(("total", "lignes_lues", "lignes lues", summary["lignes_lues"]))
    rows.append(("total", "lignes_ecrites", "lignes écrites",
                 summary.get("lignes_ecrites", summary["total"])))
    for s, k in summary["par_statut"].items():
        rows.append(("statut", s, STATUS_LABELS[s], k))
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
    for role, col in summary["colonnes"].items():
        rows.append(("colonne", role, col or "", ""))
    return rows


def _write_summary_files(summary: dict[str, Any], path: Path, sep: str) -> list[Path]:
    stem = path.with_suffix("")
    json_path = Path(f"{stem}-synthese.json")
    csv_path = Path(f"{stem}-synthese.csv")
    json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str),
                         encoding="utf-8")
    table = pd.DataFrame(_summary_rows(summary)[1:], columns=list(_summary_rows(summary)[0]))
    neutralize_cells(table.astype({"cle": str, "valeur": str})).to_csv(
        csv_path, sep=sep, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return [csv_path, json_path]


def _write_xlsx(frame: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    if len(frame) + 1 > XLSX_ROWS_MAX:
        raise InputFileError(f"{len(frame)} lignes : trop pour une feuille Excel "
                             f"({XLSX_ROWS_MAX - 1} au plus).", hint="Écrivez un .csv.")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("sites")
    ws.freeze_panes = "B2"
    bold = Font(bold=True)

    def header(cells: Iterable[Any]) -> list[Any]:
        out = []
        for c in cells:
            cell = WriteOnlyCell(ws, value=_xlsx_value(c))
            cell.font = bold
            out.append(cell)
        return out

    safe = neutralize_cells(frame)
    ws.append(header(safe.columns))
    for rec in safe.itertuples(index=False, name=None):
        ws.append([_xlsx_value(v) for v in rec])
    ws2 = wb.create_sheet("synthèse")
    rows = _summary_rows(summary)
    ws2.append(header(rows[0]))
    table = neutralize_cells(pd.DataFrame([[str(v) if not isinstance(v, int) else v
                                            for v in r] for r in rows[1:]], dtype=object))
    for rec in table.itertuples(index=False, name=None):
        ws2.append([_xlsx_value(v) for v in rec])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def _write_geo(frame: pd.DataFrame, path: Path, kind: str) -> None:
    import geopandas as gpd

    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(np.float64)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = gpd.GeoSeries.from_xy(np.where(ok, lon, 0.0), np.where(ok, lat, 0.0), crs=4326)
    geoms[~ok] = None
    data = frame.copy()
    if kind == "gpkg":  # SQLite column names ignore case: « Porteur » collides with « porteur »
        added = {c.lower() for c in OUTPUT_COLUMNS if c in data.columns}
        data = data.rename(columns={c: f"{c} (source)" for c in data.columns
                                    if c not in OUTPUT_COLUMNS and c.lower() in added})
    for col in data.columns:
        if pd.api.types.is_object_dtype(data[col].dtype):
            data[col] = data[col].astype(object).where(data[col].notna(), None)
    gdf = gpd.GeoDataFrame(data, geometry=geoms.values, crs=4326)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    gdf.to_file(path, driver="GeoJSON" if kind == "geojson" else "GPKG",
                **({"layer": "sites"} if kind == "gpkg" else {}))


def write_result(result: BatchResult, path: str | Path, *, sep: str = ";") -> list[Path]:
    """Write validated sites (by extension: .csv, .xlsx, .geojson, .gpkg) and the summary.

    CSV: UTF-8 with BOM, ``;`` and decimal comma by default (French Excel), ``sep=","`` gives
    a decimal point. XLSX: sheets « sites » and « synthèse ». Next to the output:
    ``<name>-synthese.csv`` and ``<name>-synthese.json``. Returns the paths written, the
    sites file first.
    """
    path = Path(path)
    kind = _kind_of(path)
    frame = result.frame
    summary = dict(result.summary)
    summary["lignes_ecrites"] = len(frame)
    if kind == "csv":
        writer = _CsvWriter(path, sep)
        try:
            writer.write(frame)
        finally:
            writer.close()
    elif kind == "xlsx":
        _write_xlsx(frame, summary, path)
    else:
        _write_geo(frame, path, kind)
    result.summary["lignes_ecrites"] = len(frame)
    return [path, *_write_summary_files(summary, path, sep)]
