"""Opening sites files (CSV with encoding/separator sniffing, XLSX, GeoJSON/GeoPackage), finding
the header, and streaming the rows as DataFrames.

One module per format: :mod:`~qpv_geo.batch.reading_csv`, :mod:`~qpv_geo.batch.reading_xlsx`,
:mod:`~qpv_geo.batch.reading_geo`; what they share is in :mod:`~qpv_geo.batch.source`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpv_geo._french import nombre
from qpv_geo.batch.cancel import check_cancelled
from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    PROBLEM_COLUMN,
    ColumnMapping,
    check_mapping,
    detect_columns,
)
from qpv_geo.batch.reading_csv import MIXED_ENCODING, open_csv
from qpv_geo.batch.reading_geo import GEOM_LAT, GEOM_LON, open_geo
from qpv_geo.batch.reading_xlsx import XLSX_MAX_ROWS, check_xlsx, open_xlsx, xlsx_is_safe
from qpv_geo.batch.source import SKIPPED_LISTED, RowBlock, Source, excel_letter
from qpv_geo.exceptions import InputFileError
from qpv_geo.settings import Settings

CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".tab"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_GEO_SUFFIXES = {".geojson", ".json", ".gpkg"}


def open_source(path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None,
          sep: str | None = None, settings: Settings | None = None,
          header_line: int | None = None) -> Source:
    settings = settings or Settings.from_env()
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    if path.is_dir():
        raise InputFileError(f"{path} est un dossier, pas un fichier.",
                             hint="Donnez le chemin d'un fichier CSV, XLSX, GeoJSON ou GPKG.")
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return open_xlsx(path, sheet=sheet, settings=settings, header_line=header_line)
    if suffix in _GEO_SUFFIXES:
        return open_geo(path, layer=sheet, cell_max=settings.max_caracteres_cellule)
    if suffix in {".xls", ".ods"}:
        raise InputFileError(f"{path.name} : format {suffix} non pris en charge.",
                             hint="Enregistrez le tableau en .xlsx ou en CSV.")
    if suffix and suffix not in CSV_SUFFIXES:
        raise InputFileError(
            f"{path.name} n'est pas un tableau : l'extension {suffix} n'est pas celle d'un "
            "fichier de sites.",
            hint="Formats acceptés : CSV (.csv, .txt, .tsv), XLSX, GeoJSON, GeoPackage. Si "
            "c'est bien un tableau CSV, renommez-le en .csv.")
    return open_csv(path, encoding=encoding, sep=sep, settings=settings,
                     header_line=header_line)


def source_frames(source: Source, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """DataFrames of at most ``chunk_rows`` rows (all cells text, index = spreadsheet line);
    also yields the number of entirely empty rows skipped in the chunk.

    The row rules (blank row skipped, cell cut at the cap, short row padded, cells beyond
    the header kept in :data:`EXTRA_COLUMN`, problem said) apply to each ``(line, cells)``;
    a :class:`RowBlock` holds rows none of them changes, taken as they are."""
    width = len(source.columns)
    lines: list[int] = []  # lines of the rows read one by one, since the last block
    line_parts: list[Any] = []  # the chunk's lines so far, part after part
    count = 0  # rows in the chunk
    pieces: list[list[str]] = []  # the chunk's cells, row after row, ``width`` per row
    cells_in: list[str] = []  # the cells of the rows read one by one, since the last block
    extras: dict[int, str] = {}  # row in the chunk → its cells beyond the header
    problems: dict[int, str] = {}  # row in the chunk → its problem
    empty = 0
    cap = source.cell_max

    def column(said: dict[int, str]) -> list[str]:
        out = [""] * count
        for k, text in said.items():
            out[k] = text
        return out

    def flush() -> tuple[pd.DataFrame, int]:
        nonlocal lines, line_parts, count, pieces, cells_in, extras, problems, empty
        if count:
            grid = np.empty(count * width, dtype=object)
            at = 0
            for piece in [*pieces, cells_in]:
                grid[at:at + len(piece)] = piece
                at += len(piece)
            frame = pd.DataFrame(grid.reshape(count, width), columns=source.columns,
                                 dtype=object)
        else:
            frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in source.columns})
        if extras and EXTRA_COLUMN not in frame.columns:
            frame[EXTRA_COLUMN] = column(extras)
        if problems and PROBLEM_COLUMN not in frame.columns:
            frame[PROBLEM_COLUMN] = column(problems)
        frame.index = pd.Index(np.concatenate([*line_parts, np.array(lines, dtype=np.int64)]),
                               name="ligne", dtype=np.int64)
        out = (frame, empty)
        lines, line_parts, pieces, cells_in, extras, problems = [], [], [], [], {}, {}
        count = empty = 0
        return out

    seen = 0
    for item in source.rows:
        if type(item) is RowBlock:
            if (seen + item.count) >> 10 != seen >> 10:
                check_cancelled()
            seen += item.count
            if lines:
                line_parts.append(np.array(lines, dtype=np.int64))
                pieces.append(cells_in)
                lines, cells_in = [], []
            done = 0
            while done < item.count:
                take = min(item.count - done, chunk_rows - count)
                pieces.append(item.cells if take == item.count else
                              item.cells[done * width:(done + take) * width])
                line_parts.append(np.arange(item.first + done, item.first + done + take,
                                            dtype=np.int64))
                count += take
                done += take
                if count >= chunk_rows:
                    yield flush()
            continue
        line, cells = item
        seen += 1
        if not seen & 1023:
            check_cancelled()
        problem = source.problems.pop(line, "") if source.problems else ""
        joined = "".join(cells)  # one C-level pass: emptiness, and a bound on every cell
        if not joined.strip():
            empty += 1
            source.skip(line, "ligne vide" + (f" ({problem})" if problem else ""))
            continue
        if len(joined) > cap and max(map(len, cells)) > cap:
            cut = []
            for i, c in enumerate(cells):
                if len(c) > cap:
                    name = source.columns[i] if i < width else f"colonne {excel_letter(i)}"
                    cut.append(f"cellule « {name} » coupée à {nombre(cap)} caractères "
                               f"({nombre(len(c))} au départ)")
                    cells[i] = c[:cap]
            problem = " ; ".join([*([problem] if problem else []), *cut])
        if problem:
            problems[count] = problem
        n = len(cells)
        if n < width:
            cells = [*cells, *[""] * (width - n)]
        elif n > width:
            spill = cells[width:]
            cells = cells[:width]
            if any(s.strip() for s in spill):
                extras[count] = (f"{n} champs au lieu de {width} : "
                                 + " | ".join(s for s in spill))
        lines.append(line)
        cells_in += cells
        count += 1
        if count >= chunk_rows:
            yield flush()
    yield flush()  # the last rows, or (none left) an empty frame


def read_sites(path: str | Path, *, sheet: str | int | None = None,
               mapping_overrides: dict[str, str | None] | None = None,
               encoding: str | None = None, sep: str | None = None,
               settings: Settings | None = None,
               header_line: int | None = None) -> tuple[pd.DataFrame, ColumnMapping]:
    """Read a sites file: every cell as text, every row kept, index = spreadsheet line number.

    Parameters
    ----------
    path
        CSV (``;``, ``,``, tab or ``|``; UTF-8 with or without BOM, UTF-16, cp1252/latin-1),
        XLSX, GeoJSON or GeoPackage (points: their coordinates become the columns
        ``longitude (géométrie)`` / ``latitude (géométrie)``).
    sheet
        XLSX sheet (or GeoPackage layer) name or 1-based rank (default: the first sheet; a
        GeoPackage with several layers needs it).
    mapping_overrides
        Role → column name, overriding the detection (see :func:`detect_columns`).
    encoding, sep
        Force the CSV encoding / separator (detected otherwise).
    settings
        Reading limits (cells, rows, cell length, XLSX expansion); default from the
        environment.
    header_line
        Line of the column names (1 = first line), when the guess is wrong; default: the row
        naming the most roles among the first ten (titles above it are skipped and listed).

    Returns
    -------
    (frame, mapping)
        The cells (index named ``ligne``: header = line 1; rows entirely empty are skipped,
        their line numbers are not reused) and the detected column roles. Rows with more
        cells than the header keep them in the column :data:`EXTRA_COLUMN`; rows read with
        a problem (unclosed quote, cell cut, NUL removed, formula without value, unreadable
        geometry) say why in :data:`PROBLEM_COLUMN`. ``frame.attrs["lecture"]`` holds the
        reading warnings and the rows not kept (blank, title), for the summary.

    Raises
    ------
    InputFileError
        Empty file, header only, binary file, unknown sheet, no address or coordinates column.
    """
    source = open_source(path, sheet=sheet, encoding=encoding, sep=sep, settings=settings,
                   header_line=header_line)
    try:
        parts = [f for f, _ in source_frames(source, sys.maxsize)]
    finally:
        if source.closer:
            source.closer()
    parts = [f for f in parts if len(f)] or parts[:1]
    frame = parts[0] if len(parts) == 1 else pd.concat(parts)
    mapping = mapping_for(source, frame, mapping_overrides)
    if source.skipped_above:
        frame.attrs["lignes_titre_ignorees"] = source.skipped_above
    frame.attrs["premieres_lignes"] = list(source.head)
    lecture = source.lecture()
    if lecture:
        frame.attrs["lecture"] = lecture
    return frame, mapping


def mapping_for(source: Source, frame: pd.DataFrame,
                 overrides: dict[str, str | None] | None) -> ColumnMapping:
    mapping = detect_columns(source.columns, overrides)
    if source.fmt == "geo" and not overrides and GEOM_LON in source.columns:
        mapping.lon, mapping.lat = GEOM_LON, GEOM_LAT
    if len(frame) == 0:
        raise InputFileError(
            f"{source.name} ne contient qu'une ligne d'en-tête, aucune ligne de données "
            f"(colonnes : {', '.join(source.columns)}).",
            hint="Vérifiez que le bon fichier (ou la bonne feuille : --sheet) a été exporté.")
    check_mapping(mapping, source.columns, source.name, overrides)
    return mapping


def read_columns(path: str | Path, *, sheet: str | int | None = None,
                 settings: Settings | None = None, header_line: int | None = None) -> list[str]:
    """The column names of a sites file (its header), without checking their roles: what a
    person can pick from when the detection found no address or coordinates column."""
    return read_header(path, sheet=sheet, settings=settings, header_line=header_line)[0]


def read_header(path: str | Path, *, sheet: str | int | None = None,
                settings: Settings | None = None, header_line: int | None = None
                ) -> tuple[list[str], int, str, list[tuple[int, list[str]]]]:
    """``(columns, header line, doubt, first rows)`` of a sites file: the header found (or
    the one named), why the guess is doubtful (empty if clear), and the first non-empty rows
    ``(line, first cells)`` a person can pick the header from."""
    source = open_source(path, sheet=sheet, settings=settings, header_line=header_line)
    try:
        return ([str(c) for c in source.columns], source.header_line, source.header_doubt,
                list(source.head))
    finally:
        if source.closer:
            source.closer()


__all__ = ["MIXED_ENCODING", "SKIPPED_LISTED", "XLSX_MAX_ROWS", "check_xlsx", "read_columns",
           "read_header", "read_sites", "xlsx_is_safe"]
