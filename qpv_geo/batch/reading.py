"""Opening sites files (CSV with encoding/separator sniffing, XLSX, GeoJSON/GeoPackage), finding
the header, and streaming the rows as DataFrames."""

from __future__ import annotations

import codecs
import csv
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpv_geo.batch.columns import EXTRA_COLUMN, ColumnMapping, _check_mapping, detect_columns
from qpv_geo.exceptions import InputFileError

_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".tab"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_GEO_SUFFIXES = {".geojson", ".json", ".gpkg"}
_SEPARATORS = (";", "\t", ",", "|")
_GEOM_LON = "longitude (géométrie)"
_GEOM_LAT = "latitude (géométrie)"


def _excel_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _header_names(cells: Sequence[str]) -> list[str]:
    """Header cells as column names: blanks named after their Excel letter, duplicates
    numbered, so that no column is dropped."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, cell in enumerate(cells):
        name = re.sub(r"\s+", " ", str(cell or "")).strip().lstrip("\ufeff")
        if not name:
            name = f"colonne {_excel_letter(i)}"
        seen[name] += 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        names.append(name)
    return names


def _cell_text(value: Any) -> str:
    """An XLSX/geo cell as the text a person sees (numbers without a trailing ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "VRAI" if value else "FAUX"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    return str(value)


@dataclass
class _Source:
    """An opened sites file: its header and an iterator of (line number, cells)."""

    name: str
    columns: list[str]
    rows: Iterator[tuple[int, list[str]]]
    skipped_above: list[int]
    estimated_rows: int | None = None
    closer: Callable[[], None] | None = None
    fmt: str = "csv"
    encoding: str | None = None
    sep: str | None = None


def _sniff_encoding(path: Path, sample: bytes) -> str:
    """Encoding of a text file: BOM, else UTF-8 if the whole file decodes, else cp1252."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        try:
            for block in iter(lambda: fh.read(1 << 22), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    # Excel's « CSV (séparateur : point-virgule) » on Windows: cp1252; latin-1 decodes anything.
    try:
        sample.decode("cp1252")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                block.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


_BINARY_SIGNATURES = {
    b"PK\x03\x04": ("une archive zip (classeur .xlsx/.ods ?)",
                    "Si c'est un classeur Excel, donnez-lui l'extension .xlsx."),
    b"\xd0\xcf\x11\xe0": ("un classeur Excel 97-2003 (.xls)",
                          "Enregistrez-le au format .xlsx ou CSV depuis Excel."),
    b"%PDF": ("un PDF", "Exportez le tableau en CSV ou XLSX."),
}


def _check_not_binary(path: Path, sample: bytes, encoding: str) -> None:
    for sig, (what, hint) in _BINARY_SIGNATURES.items():
        if sample.startswith(sig):
            raise InputFileError(f"{path.name} n'est pas un fichier texte CSV : c'est {what}.",
                                 hint=hint)
    text = sample.decode(encoding, errors="replace")
    if not text:
        return
    control = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n") or ch == "\ufffd")
    if "\x00" in text or control > max(8, len(text) // 50):
        raise InputFileError(
            f"{path.name} ne ressemble pas à un tableau CSV : {control} caractères de contrôle "
            f"ou illisibles dans les {len(text)} premiers caractères (fichier binaire ou "
            "corrompu ?).",
            hint="Ouvrez-le dans un tableur et enregistrez-le en CSV UTF-8 ou en XLSX.")


def _sniff_sep(lines: list[str]) -> str:
    """The separator giving the widest header, with rows of the same width (ties: ``;``)."""
    best, best_score = ";", (0, 0)
    for sep in _SEPARATORS:
        rows = list(csv.reader(lines, delimiter=sep))
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            continue
        width = len(rows[0])
        same = sum(1 for r in rows[1:] if len(r) == width)
        score = (width if width > 1 else 0, same)
        if score > best_score:
            best, best_score = sep, score
    return best


def _open_csv(path: Path, *, encoding: str | None, sep: str | None) -> _Source:
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path.name} est vide (0 octet).",
                             hint="Vérifiez que le bon fichier a été exporté.")
    with open(path, "rb") as fh:
        sample = fh.read(1 << 16)
    enc = encoding or _sniff_encoding(path, sample)
    try:
        codecs.lookup(enc)
    except LookupError as exc:
        raise InputFileError(f"Encodage inconnu : {enc}.",
                             hint="Essayez --encoding utf-8 ou --encoding cp1252.") from exc
    _check_not_binary(path, sample, enc)
    head = sample.decode(enc, errors="replace").splitlines()[:50]
    if len(sample) == 1 << 16 and len(head) > 1:
        head = head[:-1]  # the last line of the sample may be cut
    delimiter = sep or _sniff_sep(head)
    fh = open(path, encoding=enc, errors="strict", newline="")  # noqa: SIM115 (closed by closer)
    csv.field_size_limit(1 << 30)
    reader = csv.reader(fh, delimiter=delimiter)
    est = None
    if size < (1 << 31):
        with open(path, "rb") as raw:
            est = sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 22), b""))

    def records() -> Iterator[tuple[int, list[str]]]:
        n = 0
        try:
            for row in reader:
                n += 1
                yield n, row
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path.name} : caractère illisible en {enc} vers la ligne {n + 1}.",
                hint="Indiquez l'encodage : --encoding cp1252 (Excel Windows) ou utf-8.",
            ) from exc
        except csv.Error as exc:
            raise InputFileError(f"{path.name}, ligne {n + 1} : CSV illisible ({exc}).",
                                 hint="Vérifiez les guillemets de cette ligne.") from exc

    return _with_header(path.name, records(), est, fh.close, fmt="csv", encoding=enc,
                        sep=delimiter)


def _with_header(name: str, records: Iterator[tuple[int, list[str]]], est: int | None,
                 closer: Callable[[], None] | None, **info: Any) -> _Source:
    """Find the header (the first of the first ten non-empty rows naming a role, else the
    first non-empty row) and return the source positioned after it."""
    buffered: list[tuple[int, list[str]]] = []
    for line, cells in records:
        if any(str(c).strip() for c in cells):
            buffered.append((line, cells))
            if len(buffered) >= 10:
                break
    if not buffered:
        if closer:
            closer()
        raise InputFileError(f"{name} ne contient aucune ligne (fichier vide ou seulement des "
                             "séparateurs).", hint="Vérifiez que le bon fichier a été exporté.")
    pick = 0
    for k, (_, cells) in enumerate(buffered):
        mapping = detect_columns(_header_names(cells))
        if mapping.has_address or mapping.has_lonlat or mapping.has_xy:
            pick = k
            break
    header_line, header = buffered[pick]
    skipped = [line for line, _ in buffered[:pick]]
    rest = buffered[pick + 1:]

    def rows() -> Iterator[tuple[int, list[str]]]:
        yield from rest
        yield from records

    return _Source(name=name, columns=_header_names(header), rows=rows(),
                   skipped_above=skipped,
                   estimated_rows=None if est is None else max(0, est - header_line),
                   closer=closer, **info)


def _open_xlsx(path: Path, *, sheet: str | int | None) -> _Source:
    import zipfile

    from openpyxl import load_workbook

    try:
        # data_only: cached values, never formulas; nothing is evaluated.
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputFileError(f"{path.name} n'est pas un classeur XLSX lisible ({exc}).",
                             hint="Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de "
                             "nouveau en .xlsx (ou en CSV).") from exc
    names = wb.sheetnames
    if sheet is None or sheet == "":
        ws = wb.worksheets[0]
    elif str(sheet) in names:
        ws = wb[str(sheet)]
    elif str(sheet).isdigit() and 1 <= int(sheet) <= len(names):
        ws = wb.worksheets[int(sheet) - 1]
    else:
        wb.close()
        raise InputFileError(f"Feuille « {sheet} » absente de {path.name} ; feuilles : "
                             f"{', '.join(names)}.", hint="Indiquez --sheet NOM (ou son rang).")

    def records() -> Iterator[tuple[int, list[str]]]:
        for line, values in enumerate(ws.iter_rows(values_only=True), start=1):
            yield line, [_cell_text(v) for v in values]

    est = ws.max_row if isinstance(ws.max_row, int) else None
    return _with_header(path.name, records(), est, wb.close, fmt="xlsx")


def _open_geo(path: Path) -> _Source:
    import geopandas as gpd
    import shapely

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"Impossible de lire {path.name} comme couche géographique "
                             f"({exc}).", hint="Formats acceptés : GeoJSON, GeoPackage (points)."
                             ) from exc
    if len(gdf) == 0:
        raise InputFileError(f"{path.name} ne contient aucun objet.",
                             hint="Exportez la couche avec ses entités depuis QGIS.")
    if gdf.crs is not None:
        gdf = gdf.to_crs(4326)
    geoms = gdf.geometry.values
    is_point = np.asarray(shapely.get_type_id(geoms) == 0)
    xs = np.where(is_point, shapely.get_x(geoms), np.nan)
    ys = np.where(is_point, shapely.get_y(geoms), np.nan)
    attrs = [c for c in gdf.columns if c != gdf.geometry.name]
    columns = _header_names([*attrs, _GEOM_LON, _GEOM_LAT])
    kinds = shapely.get_type_id(geoms)

    def records() -> Iterator[tuple[int, list[str]]]:
        values = gdf[attrs].to_numpy(object) if attrs else np.empty((len(gdf), 0), object)
        for i in range(len(gdf)):
            cells = [_cell_text(v) for v in values[i]]
            lon = "" if np.isnan(xs[i]) else repr(round(float(xs[i]), 7))
            lat = "" if np.isnan(ys[i]) else repr(round(float(ys[i]), 7))
            if not is_point[i] and kinds[i] >= 0:
                lon = lat = ""
            yield i + 2, [*cells, lon, lat]

    return _Source(name=path.name, columns=columns, rows=records(), skipped_above=[],
                   estimated_rows=len(gdf), fmt="geo")


def _open(path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None,
          sep: str | None = None) -> _Source:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    if path.is_dir():
        raise InputFileError(f"{path} est un dossier, pas un fichier.",
                             hint="Donnez le chemin d'un fichier CSV, XLSX, GeoJSON ou GPKG.")
    suffix = path.suffix.lower()
    if suffix in _XLSX_SUFFIXES:
        return _open_xlsx(path, sheet=sheet)
    if suffix in _GEO_SUFFIXES:
        return _open_geo(path)
    if suffix in {".xls", ".ods"}:
        raise InputFileError(f"{path.name} : format {suffix} non pris en charge.",
                             hint="Enregistrez le tableau en .xlsx ou en CSV.")
    return _open_csv(path, encoding=encoding, sep=sep)


def _frames(source: _Source, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """DataFrames of at most ``chunk_rows`` rows (all cells text, index = spreadsheet line);
    also yields the number of entirely empty rows skipped in the chunk."""
    width = len(source.columns)
    lines: list[int] = []
    rows: list[list[str]] = []
    extras: list[str] = []
    any_extra = False
    empty = 0

    def flush() -> tuple[pd.DataFrame, int]:
        nonlocal lines, rows, extras, any_extra, empty
        frame = pd.DataFrame(rows, columns=source.columns, dtype=object) if rows else \
            pd.DataFrame({c: pd.Series([], dtype=object) for c in source.columns})
        if any_extra and EXTRA_COLUMN not in frame.columns:
            frame[EXTRA_COLUMN] = extras
        frame.index = pd.Index(lines, name="ligne", dtype=np.int64)
        out = (frame, empty)
        lines, rows, extras, any_extra, empty = [], [], [], False, 0
        return out

    for line, cells in source.rows:
        if not any(str(c).strip() for c in cells):
            empty += 1
            continue
        n = len(cells)
        if n < width:
            cells = [*cells, *[""] * (width - n)]
            extras.append("")
        elif n > width:
            spill = cells[width:]
            cells = cells[:width]
            if any(s.strip() for s in spill):
                any_extra = True
                extras.append(f"{n} champs au lieu de {width} : "
                              + " | ".join(s for s in spill))
            else:
                extras.append("")
        else:
            extras.append("")
        lines.append(line)
        rows.append(cells)
        if len(rows) >= chunk_rows:
            yield flush()
    if rows or empty or not lines:
        yield flush()


def read_sites(path: str | Path, *, sheet: str | int | None = None,
               mapping_overrides: dict[str, str | None] | None = None,
               encoding: str | None = None, sep: str | None = None
               ) -> tuple[pd.DataFrame, ColumnMapping]:
    """Read a sites file: every cell as text, every row kept, index = spreadsheet line number.

    Parameters
    ----------
    path
        CSV (``;``, ``,``, tab or ``|``; UTF-8 with or without BOM, UTF-16, cp1252/latin-1),
        XLSX, GeoJSON or GeoPackage (points: their coordinates become the columns
        ``longitude (géométrie)`` / ``latitude (géométrie)``).
    sheet
        XLSX sheet name or 1-based rank (default: the first sheet).
    mapping_overrides
        Role → column name, overriding the detection (see :func:`detect_columns`).
    encoding, sep
        Force the CSV encoding / separator (detected otherwise).

    Returns
    -------
    (frame, mapping)
        The cells (index named ``ligne``: header = line 1; rows entirely empty are skipped,
        their line numbers are not reused) and the detected column roles. Rows with more
        cells than the header keep them in the column :data:`EXTRA_COLUMN`.

    Raises
    ------
    InputFileError
        Empty file, header only, binary file, unknown sheet, no address or coordinates column.
    """
    source = _open(path, sheet=sheet, encoding=encoding, sep=sep)
    try:
        parts = [f for f, _ in _frames(source, sys.maxsize)]
    finally:
        if source.closer:
            source.closer()
    parts = [f for f in parts if len(f)] or parts[:1]
    frame = parts[0] if len(parts) == 1 else pd.concat(parts)
    mapping = _mapping_for(source, frame, mapping_overrides)
    if source.skipped_above:
        frame.attrs["lignes_titre_ignorees"] = source.skipped_above
    return frame, mapping


def _mapping_for(source: _Source, frame: pd.DataFrame,
                 overrides: dict[str, str | None] | None) -> ColumnMapping:
    mapping = detect_columns(source.columns, overrides)
    if source.fmt == "geo" and not overrides:
        mapping.lon, mapping.lat = _GEOM_LON, _GEOM_LAT
    if len(frame) == 0:
        raise InputFileError(
            f"{source.name} ne contient qu'une ligne d'en-tête, aucune ligne de données "
            f"(colonnes : {', '.join(source.columns)}).",
            hint="Vérifiez que le bon fichier (ou la bonne feuille : --sheet) a été exporté.")
    _check_mapping(mapping, source.columns, source.name)
    return mapping
