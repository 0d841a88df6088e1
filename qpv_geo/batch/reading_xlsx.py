"""Reading an XLSX workbook safely: sizes, expansion ratio, DOCTYPE and row counts checked on
the zip before openpyxl parses anything; formulas without cached values said, row by row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpv_geo._french import nombre
from qpv_geo.batch.cancel import check_cancelled
from qpv_geo.batch.source import (
    MAX_COLUMNS,
    Source,
    adopt,
    cell_text,
    excel_letter,
    named_lines,
    too_many_columns,
    with_header,
)
from qpv_geo.exceptions import InputFileError, InputTooLargeError, UnreadableInputError
from qpv_geo.reference.zipsafe import check_no_dtd, check_sizes
from qpv_geo.settings import Settings

#: Rows of an Excel sheet (Excel itself stops there): more is not a real workbook.
XLSX_MAX_ROWS = 1_048_576
_XLSX_HINT = ("Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de nouveau en .xlsx (ou "
              "en CSV).")
#: Decompressed bytes of one worksheet, and of the shared strings (which openpyxl holds in
#: memory), counted while streaming: the zip directory can lie, and a sheet of 1.9 GB of XML
#: under the compression-ratio cap took minutes and 5 GB. Real workbooks of sites are far
#: smaller (500 MB of XML is some 15 million cells).
SHEET_MAX_MB = 500
SHARED_STRINGS_MAX_MB = 200
#: A cell reference beyond column XFD (16 384): openpyxl would pad the row up to it.
_BEYOND_XFD = re.compile(rb'<c r="(?:[A-Z]{4,}|[YZ][A-Z]{2}|X[G-Z][A-Z]|XF[E-Z])[0-9]')
#: A formula cell without a cached value (``<f>…</f>`` or ``<f …/>`` then no ``<v>``).
_FORMULA_NO_VALUE = re.compile(rb"(</f>|<f[^>]*/>)\s*(<v\s*/>|<v>\s*</v>)?\s*</c>")


@dataclass
class _SheetFacts:
    """What a worksheet's XML holds, counted at C speed before openpyxl parses it."""

    rows: int = 0
    cells: int = 0
    formulas_without_values: bool = False
    #: Most cells in one row (counted between ``<row`` tags).
    row_cells_max: int = 0
    #: Decompressed bytes of the sheet's XML.
    size: int = 0


def _too_big(name: str, member: str, what: str, cap_mb: float) -> InputTooLargeError:
    return InputTooLargeError(
        f"{name} : {what} ({member.rsplit('/', 1)[-1]}) dépasse {nombre(cap_mb)} Mo une fois "
        "décompressé(e), au-delà de ce qu'un classeur de sites contient.",
        hint="Enregistrez seulement la feuille des sites en CSV (ou découpez le classeur).")


def _sheet_facts(zf: Any, name: str = "classeur") -> dict[str, _SheetFacts]:
    """Rows, cells, cells per row and formulas without cached values of each worksheet (by
    member name), read as a stream, with bounded work: a sheet past :data:`SHEET_MAX_MB`
    decompressed, the shared strings past :data:`SHARED_STRINGS_MAX_MB`, a row past
    :data:`~qpv_geo.batch.source.MAX_COLUMNS` cells or a cell beyond column XFD is refused as
    soon as it is seen, before openpyxl parses anything."""

    out: dict[str, _SheetFacts] = {}
    for info in zf.infolist():
        member = info.filename
        if member == "xl/sharedStrings.xml":
            size = 0
            with zf.open(info) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    size += len(block)
                    if size > SHARED_STRINGS_MAX_MB * (1 << 20):
                        raise _too_big(name, member, "le tableau des textes partagés",
                                       SHARED_STRINGS_MAX_MB)
                    check_cancelled()
            continue
        if not member.startswith("xl/worksheets/") or not member.endswith(".xml"):
            continue
        facts = out[member] = _SheetFacts()
        row_cells = 0
        with zf.open(info) as fh:
            tail = b""
            for block in iter(lambda: fh.read(1 << 20), b""):
                facts.size += len(block)
                if facts.size > SHEET_MAX_MB * (1 << 20):
                    raise _too_big(name, member, "une feuille", SHEET_MAX_MB)
                check_cancelled()  # a web client that left stops the work here
                facts.rows += block.count(b"<row ") + block.count(b"<row>")
                facts.cells += block.count(b"<c ") + block.count(b"<c>")
                pieces = block.split(b"<row")
                counts = [p.count(b"<c ") + p.count(b"<c>") for p in pieces]
                counts[0] += row_cells
                row_cells = counts[-1]
                facts.row_cells_max = max(facts.row_cells_max, *counts)
                if facts.row_cells_max > MAX_COLUMNS:
                    raise too_many_columns(name, None, facts.row_cells_max)
                if _BEYOND_XFD.search(tail + block):
                    raise too_many_columns(name, None, MAX_COLUMNS + 1)
                if not facts.formulas_without_values and _FORMULA_NO_VALUE.search(tail + block):
                    facts.formulas_without_values = True
                tail = block[-256:]
    return out


#: The facts of the last workbook checked, by (path, size, mtime, caps): the web peeks at a
#: workbook's rows before reading it, and the pre-pass over a big sheet takes seconds.
_FACTS: dict[tuple[Any, ...], dict[str, _SheetFacts]] = {}


def check_xlsx(path: Path, settings: Settings | None = None) -> dict[str, _SheetFacts]:
    """Run the workbook guards (sizes, expansion ratio, no DOCTYPE) before anything opens it
    with openpyxl; return what each worksheet holds (:class:`_SheetFacts`). Raises
    :class:`InputFileError` (or a subclass) for a workbook that must not be parsed."""
    import zipfile

    settings = settings or Settings.from_env()
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns,
               settings.max_xlsx_decompresse_mb, settings.max_ratio_compression)
        if key in _FACTS:  # the same file checked a moment ago (a peek, then the reader)
            return _FACTS[key]
        with zipfile.ZipFile(path) as zf:
            check_sizes(zf, path.name, max_total_mb=settings.max_xlsx_decompresse_mb,
                        max_ratio=settings.max_ratio_compression)
            check_no_dtd(zf, path.name)
            facts = _sheet_facts(zf, path.name)
        _FACTS.clear()  # one workbook remembered: bounded
        _FACTS[key] = facts
        return facts
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise InputFileError(f"{path.name} n'est pas un classeur XLSX lisible (archive zip "
                             "abîmée ou incomplète).", hint=_XLSX_HINT) from exc


def xlsx_is_safe(path: Path) -> bool:
    """True when :func:`check_xlsx` accepts the workbook (for quick peeks that must not
    parse a hostile file; the reader then says what is wrong)."""
    try:
        check_xlsx(path)
    except InputFileError:
        return False
    return True


def open_xlsx(path: Path, *, sheet: str | int | None, settings: Settings,
               header_line: int | None = None) -> Source:
    import zipfile
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook

    all_facts = check_xlsx(path, settings)
    max_rows = min(settings.max_lignes, XLSX_MAX_ROWS)
    for member, facts in all_facts.items():
        # Before openpyxl opens the workbook: it may parse a whole sheet to size it.
        if facts.rows > max_rows or facts.cells > settings.max_cellules:
            raise InputTooLargeError(
                f"{path.name} : la feuille {member.rsplit('/', 1)[-1]} contient "
                f"{nombre(facts.rows)} lignes et {nombre(facts.cells)} cellules, au-delà des "
                f"limites ({nombre(max_rows)} lignes, {nombre(settings.max_cellules)} cellules).",
                hint="Découpez le fichier, ou relevez QPV_GEO_MAX_LIGNES / "
                "QPV_GEO_MAX_CELLULES si c'est voulu.")
    try:
        # data_only: cached values, never formulas; nothing is evaluated.
        wb = load_workbook(path, read_only=True, data_only=True)
    except (ParseError, zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError,
            AttributeError, IndexError) as exc:
        raise UnreadableInputError(f"{path.name} n'est pas un classeur XLSX lisible (contenu "
                                   "XML illisible ou incomplet).", hint=_XLSX_HINT) from exc
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
    facts = all_facts.get(str(getattr(ws, "_worksheet_path", "")).lstrip("/"), _SheetFacts())
    formulas = facts.formulas_without_values
    declared = ws.max_row if isinstance(ws.max_row, int) else None
    if declared is not None and declared > max_rows:
        wb.close()
        raise InputTooLargeError(
            f"{path.name} : la feuille « {ws.title} » annonce {nombre(declared)} lignes, "
            f"au-delà de la limite de {nombre(max_rows)}.",
            hint="Découpez le fichier, ou relevez QPV_GEO_MAX_LIGNES si c'est voulu.")
    # The declared dimension may be wrong (too small): read every row that is there.
    ws.reset_dimensions()
    closers = [wb.close]
    ws_f = None
    if formulas:
        wb_f = load_workbook(path, read_only=True, data_only=False)
        closers.append(wb_f.close)
        ws_f = wb_f[ws.title]
        ws_f.reset_dimensions()
    source_ref: list[Source] = []
    no_value: list[int] = []

    def records() -> Iterator[tuple[int, list[str]]]:
        cells_seen = 0
        line = 0
        rows = ws.iter_rows(values_only=True)
        frows = ws_f.iter_rows(values_only=True) if ws_f is not None else None
        try:
            for values in rows:
                line += 1
                cells_seen += len(values)
                if line > max_rows or cells_seen > settings.max_cellules:
                    raise InputTooLargeError(
                        f"{path.name} : plus de {nombre(min(line - 1, max_rows))} lignes "
                        f"ou de {nombre(settings.max_cellules)} cellules dans la feuille "
                        f"« {ws.title} », au-delà des limites.",
                        hint="Découpez le fichier, ou relevez QPV_GEO_MAX_LIGNES / "
                        "QPV_GEO_MAX_CELLULES si c'est voulu.")
                cells = [cell_text(v) for v in values]
                if frows is not None:
                    formulas_row = next(frows, ())
                    missing = [i for i, f in enumerate(formulas_row)
                               if isinstance(f, str) and f.startswith("=")
                               and (i >= len(values) or values[i] is None)]
                    if missing and source_ref:
                        no_value.append(line)
                        letters = ", ".join(excel_letter(i) for i in missing[:10])
                        source_ref[0].problems[line] = (
                            f"formules sans valeur calculée (colonnes {letters}) : le classeur "
                            "n'a pas été recalculé ; ouvrez-le dans Excel ou LibreOffice, "
                            "enregistrez-le et relancez")
                yield line, cells
        except InputFileError:
            raise
        except (ParseError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                OSError, EOFError) as exc:
            raise UnreadableInputError(f"{path.name}, ligne {line + 1} de la feuille "
                                       f"« {ws.title} » : contenu XML illisible.",
                                       hint=_XLSX_HINT) from exc
        if no_value and source_ref:
            source_ref[0].warnings.append(
                f"{len(no_value)} ligne(s) avec des formules sans valeur calculée (lignes "
                f"{named_lines(no_value)}) : ces cellules sont lues vides. Ouvrez le classeur "
                "dans Excel ou LibreOffice, enregistrez-le, relancez.")

    def close() -> None:
        for c in closers:
            c()

    holder = Source(name=path.name, columns=[], rows=iter(()), skipped_above=[],
                     fmt="xlsx", cell_max=settings.max_caracteres_cellule)
    source_ref.append(holder)
    try:
        header = with_header(path.name, records(), declared, close, fmt="xlsx",
                              header_line=header_line)
    except InputFileError:
        close()
        raise
    return adopt(holder, header)
