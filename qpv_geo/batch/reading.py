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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpv_geo._cancel import check_cancelled
from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    PROBLEM_COLUMN,
    ColumnMapping,
    _check_mapping,
    detect_columns,
)
from qpv_geo.exceptions import (
    InputFileError,
    InputTooLargeError,
    UnreadableInputError,
)
from qpv_geo.settings import Settings

#: Skipped rows listed one by one in the summary (all are counted).
SKIPPED_LISTED = 1_000
#: Rows of an Excel sheet (Excel itself stops there): more is not a real workbook.
XLSX_MAX_ROWS = 1_048_576
#: Lines named one by one in a reading warning.
LINES_NAMED = 20

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
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
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
    #: Line → why that row is suspect (unclosed quote, cell cut, NUL removed…): a row reason.
    problems: dict[int, str] = field(default_factory=dict)
    #: Whole-file reading warnings for the summary (encoding by line, unclosed quote…).
    warnings: list[str] = field(default_factory=list)
    #: Rows not written and why (blank rows), at most :data:`SKIPPED_LISTED` listed.
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_total: int = 0
    #: Longest cell kept (characters); longer cells are cut and their row says so.
    cell_max: int = 1_000_000

    def skip(self, line: int, motif: str) -> None:
        """Remember a row that is not written (listed up to :data:`SKIPPED_LISTED`)."""
        self.skipped_total += 1
        if len(self.skipped) < SKIPPED_LISTED:
            self.skipped.append({"ligne": int(line), "motif": motif})

    def lecture(self) -> dict[str, Any]:
        """What the summary says about the reading: warnings and skipped rows."""
        out: dict[str, Any] = {}
        if self.warnings:
            out["avertissements_lecture"] = list(self.warnings)
        if self.skipped_total:
            out["lignes_ignorees"] = list(self.skipped)
            out["lignes_ignorees_total"] = int(self.skipped_total)
        return out


#: Pseudo-encoding of a UTF-8 file with some Windows-1252 lines (each line decoded alone).
MIXED_ENCODING = "utf-8+cp1252"


def _named_lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:LINES_NAMED])
    return shown + (f" … (et {len(lines) - LINES_NAMED} autres)" if len(lines) > LINES_NAMED
                    else "")


def _sniff_encoding(path: Path, sample: bytes) -> str:
    """Encoding of a text file, decided on the whole file: BOM, else UTF-8 if every line
    decodes, else :data:`MIXED_ENCODING` if some lines are UTF-8 with accents and others are
    not (each line then decoded alone, the others named in a warning), else cp1252."""
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
    utf8_accented = 0
    with open(path, "rb") as fh:
        for raw in iter(lambda: fh.readline(1 << 24), b""):
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                utf8_accented += 1
                break
            except UnicodeDecodeError:
                continue
    if utf8_accented:
        return MIXED_ENCODING
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


class _CsvLines:
    """Physical lines of a CSV file as text, for :func:`csv.reader`: bounded length, NUL
    removed, and (mixed encoding) each line decoded alone. Remembers what it did, by line."""

    def __init__(self, path: Path, enc: str, line_max: int, *, clean: bool = False) -> None:
        self.path = path
        self.enc = enc
        self.line_max = line_max
        self.issues: dict[int, str] = {}
        self.recoded: list[int] = []
        self.nul: list[int] = []
        self.cut: list[int] = []
        self.count = 0
        ascii_compatible = enc == MIXED_ENCODING or "\n".encode(enc) == b"\n"
        self._binary = ascii_compatible and not enc.lower().startswith("utf-16")
        #: A file known to hold no NUL and no overlong line, in one encoding: read by the C
        #: text layer directly (no per-line work).
        self.fast = clean and enc != MIXED_ENCODING
        if self.fast:
            self._binary = False
        self._fh: Any = open(path, "rb") if self._binary else open(  # noqa: SIM115
            path, encoding=enc, errors="strict", newline="")

    def close(self) -> None:
        self._fh.close()

    def _note(self, line: int, text: str) -> None:
        self.issues[line] = f"{self.issues[line]} ; {text}" if line in self.issues else text

    def __iter__(self) -> Iterator[str]:
        if self.fast:
            return iter(self._fh)
        return self._lines()

    def _lines(self) -> Iterator[str]:
        fh = self._fh
        enc = "utf-8" if self.enc in (MIXED_ENCODING, "utf-8-sig") else self.enc
        first = True
        while True:
            raw = fh.readline(self.line_max)
            if not raw:
                return
            self.count += 1
            n = self.count
            if len(raw) >= self.line_max and raw[-1:] not in (b"\n", "\n"):
                rest = 0
                while True:  # drop the rest of the line, bounded reads
                    more = fh.readline(self.line_max)
                    rest += len(more)
                    if not more or more[-1:] in (b"\n", "\n"):
                        break
                raw = raw + (b"\n" if self._binary else "\n")
                self.cut.append(n)
                self._note(n, f"ligne du fichier coupée à {self.line_max:,} caractères "
                           f"({len(raw) + rest:,} au départ)".replace(",", " "))
            if self._binary:
                if b"\x00" in raw:
                    raw = raw.replace(b"\x00", b"")
                    self.nul.append(n)
                    self._note(n, "caractères NUL supprimés")
                try:
                    text = raw.decode(enc)
                except UnicodeDecodeError as exc:
                    if self.enc != MIXED_ENCODING:
                        raise InputFileError(
                            f"{self.path.name} : caractère illisible en {self.enc} ligne {n} "
                            "du fichier.",
                            hint="Indiquez l'encodage : --encoding cp1252 (Excel Windows) ou "
                            "utf-8.") from exc
                    text = raw.decode("cp1252", errors="replace")
                    self.recoded.append(n)
                if first and self.enc in ("utf-8-sig", MIXED_ENCODING):
                    text = text.lstrip("\ufeff")
            else:
                text = raw
                if "\x00" in text:
                    text = text.replace("\x00", "")
                    self.nul.append(n)
                    self._note(n, "caractères NUL supprimés")
            first = False
            yield text


def _open_csv(path: Path, *, encoding: str | None, sep: str | None,
              settings: Settings) -> _Source:
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path.name} est vide (0 octet).",
                             hint="Vérifiez que le bon fichier a été exporté.")
    with open(path, "rb") as fh:
        sample = fh.read(1 << 16)
    enc = encoding or _sniff_encoding(path, sample)
    if enc != MIXED_ENCODING:
        try:
            codecs.lookup(enc)
        except LookupError as exc:
            raise InputFileError(f"Encodage inconnu : {enc}.",
                                 hint="Essayez --encoding utf-8 ou --encoding cp1252.") from exc
    _check_not_binary(path, sample, "utf-8" if enc == MIXED_ENCODING else enc)
    sample_enc = "utf-8" if enc == MIXED_ENCODING else enc
    head = sample.decode(sample_enc, errors="replace").splitlines()[:50]
    if len(sample) == 1 << 16 and len(head) > 1:
        head = head[:-1]  # the last line of the sample may be cut
    delimiter = sep or _sniff_sep(head)
    row_seps = max((line.count(delimiter) for line in head[:10]), default=0)
    cell_max = settings.max_caracteres_cellule
    field_max = max(cell_max * 8, 1 << 20)
    est, clean = _scan(path, 4 * field_max) if size < (1 << 31) else (None, False)
    lines = _CsvLines(path, enc, line_max=4 * field_max, clean=clean)
    csv.field_size_limit(field_max)
    reader = csv.reader(lines, delimiter=delimiter)
    source = _Source(name=path.name, columns=[], rows=iter(()), skipped_above=[],
                     closer=lines.close, fmt="csv", encoding=enc, sep=delimiter,
                     cell_max=cell_max)
    swallowed: list[tuple[int, int, int]] = []

    def records() -> Iterator[tuple[int, list[str]]]:
        n = 0
        last = 0
        try:
            for row in reader:
                n += 1
                span = reader.line_num - last
                if span > 1:
                    k = _swallowed_lines(row, delimiter, row_seps)
                    if k >= 2 or span > 50:
                        swallowed.append((n, last + 1, reader.line_num))
                        source.problems[n] = (
                            f"guillemet non fermé probable : une cellule de cette ligne "
                            f"contient {span} lignes du fichier (lignes {last + 1} à "
                            f"{reader.line_num}), qui ne sont pas lues comme des lignes "
                            "séparées ; corrigez le guillemet dans le fichier et relancez")
                if lines.issues:
                    found = [lines.issues.pop(i) for i in range(last + 1, reader.line_num + 1)
                             if i in lines.issues]
                    if found:
                        old = source.problems.get(n)
                        source.problems[n] = " ; ".join([*([old] if old else []), *found])
                last = reader.line_num
                yield n, row
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path.name} : caractère illisible en {enc} vers la ligne {n + 1}.",
                hint="Indiquez l'encodage : --encoding cp1252 (Excel Windows) ou utf-8.",
            ) from exc
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise InputTooLargeError(
                    f"{path.name}, ligne {n + 1} : une cellule dépasse {field_max:,} "
                    "caractères (guillemet non fermé probable, ou cellule géante)."
                    .replace(",", " "),
                    hint="Vérifiez les guillemets de cette ligne dans un éditeur de texte."
                ) from exc
            raise InputFileError(f"{path.name}, ligne {n + 1} : CSV illisible ({exc}).",
                                 hint="Vérifiez les guillemets de cette ligne.") from exc
        finally:
            _csv_warnings(source, lines, swallowed, last)

    try:
        header = _with_header(path.name, records(), est, lines.close, fmt="csv", encoding=enc,
                              sep=delimiter)
    except InputFileError:
        lines.close()
        raise
    return _adopt(source, header)


def _scan(path: Path, line_max: int) -> tuple[int, bool]:
    """Line breaks of a file, and whether it is clean: no NUL byte, no line over
    ``line_max`` bytes (one pass at C speed)."""
    count = 0
    clean = True
    tail = b""
    with open(path, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 22), b""):
            count += block.count(b"\n")
            if clean:
                if b"\x00" in block:
                    clean = False
                else:
                    parts = (tail + block).split(b"\n")
                    tail = parts.pop()
                    if len(tail) > line_max or (parts and max(map(len, parts)) > line_max):
                        clean = False
    return count, clean


def _swallowed_lines(row: list[str], delimiter: str, row_seps: int) -> int:
    """How many inner lines of the row's multi-line cells look like rows of the file (at
    least half the header's separators): a row that an unclosed quote swallowed holds the
    rows after it; a note written on several lines does not."""
    need = max(1, row_seps // 2)
    k = 0
    for cell in row:
        if "\n" in cell:
            k += sum(1 for part in cell.split("\n")[1:] if part.count(delimiter) >= need)
    return k


def _csv_warnings(source: _Source, lines: _CsvLines, swallowed: list[tuple[int, int, int]],
                  physical: int) -> None:
    """Summary warnings of a CSV read (set once, at the end or on an error)."""
    for n, first, last in swallowed:
        source.warnings.append(
            f"Ligne {n} : guillemet non fermé probable — une cellule contient les lignes "
            f"{first} à {last} du fichier ({last - first + 1} lignes physiques), qui n'ont pas "
            f"été lues comme des lignes séparées ({physical} lignes physiques dans le fichier). "
            "Corrigez le guillemet et relancez.")
    if lines.recoded:
        source.warnings.append(
            f"Encodage mêlé : {len(lines.recoded)} ligne(s) du fichier en Windows-1252 au "
            f"milieu d'UTF-8, lues comme telles (lignes {_named_lines(lines.recoded)}). "
            "Vérifiez leurs accents ; enregistrez le fichier en UTF-8.")
    if lines.nul:
        source.warnings.append(
            f"Caractères NUL supprimés (lignes du fichier {_named_lines(lines.nul)}) : fichier "
            "probablement abîmé, vérifiez ces lignes.")
    if lines.cut:
        source.warnings.append(
            f"Lignes du fichier trop longues, coupées à {lines.line_max:,} caractères "
            .replace(",", " ") + f"(lignes {_named_lines(lines.cut)}).")


def _with_header(name: str, records: Iterator[tuple[int, list[str]]], est: int | None,
                 closer: Callable[[], None] | None, **info: Any) -> _Source:
    """Find the header (the first of the first ten non-empty rows naming a role, else the
    first non-empty row) and return the source positioned after it. Blank rows among those
    read ahead are kept for :func:`_frames` (which counts and lists them)."""
    buffered: list[tuple[int, list[str]]] = []
    filled = 0
    for line, cells in records:
        buffered.append((line, cells))
        if any(str(c).strip() for c in cells):
            filled += 1
            if filled >= 10:
                break
    nonblank = [k for k, (_, cells) in enumerate(buffered) if any(str(c).strip() for c in cells)]
    if not nonblank:
        if closer:
            closer()
        raise InputFileError(f"{name} ne contient aucune ligne (fichier vide ou seulement des "
                             "séparateurs).", hint="Vérifiez que le bon fichier a été exporté.")
    pick = nonblank[0]
    for k in nonblank:
        mapping = detect_columns(_header_names(buffered[k][1]))
        if mapping.has_address or mapping.has_lonlat or mapping.has_xy:
            pick = k
            break
    header_line, header = buffered[pick]
    above = buffered[:pick]
    skipped = [line for line, cells in above if any(str(c).strip() for c in cells)]
    blank_above = [(line, cells) for line, cells in above if not any(str(c).strip()
                                                                     for c in cells)]
    rest = buffered[pick + 1:]
    source = _Source(name=name, columns=_header_names(header), rows=iter(()),
                     skipped_above=skipped,
                     estimated_rows=None if est is None else max(0, est - header_line),
                     closer=closer, **info)
    for line in skipped:
        source.skip(line, "titre au-dessus de l'en-tête")

    def rows() -> Iterator[tuple[int, list[str]]]:
        yield from blank_above
        yield from rest
        yield from records

    source.rows = rows()
    return source


_XLSX_HINT = ("Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de nouveau en .xlsx (ou "
              "en CSV).")
#: A formula cell without a cached value (``<f>…</f>`` or ``<f …/>`` then no ``<v>``).
_FORMULA_NO_VALUE = re.compile(rb"(</f>|<f[^>]*/>)\s*(<v\s*/>|<v>\s*</v>)?\s*</c>")


@dataclass
class _SheetFacts:
    """What a worksheet's XML holds, counted at C speed before openpyxl parses it."""

    rows: int = 0
    cells: int = 0
    formulas_without_values: bool = False


def _sheet_facts(zf: Any) -> dict[str, _SheetFacts]:
    """Rows, cells and formulas without cached values of each worksheet (by member name)."""
    out: dict[str, _SheetFacts] = {}
    for info in zf.infolist():
        if not info.filename.startswith("xl/worksheets/") or not info.filename.endswith(".xml"):
            continue
        facts = out[info.filename] = _SheetFacts()
        with zf.open(info) as fh:
            tail = b""
            for block in iter(lambda: fh.read(1 << 20), b""):
                facts.rows += block.count(b"<row ") + block.count(b"<row>")
                facts.cells += block.count(b"<c ") + block.count(b"<c>")
                if not facts.formulas_without_values and _FORMULA_NO_VALUE.search(tail + block):
                    facts.formulas_without_values = True
                tail = block[-256:]
    return out


def check_xlsx(path: Path, settings: Settings | None = None) -> dict[str, _SheetFacts]:
    """Run the workbook guards (sizes, expansion ratio, no DOCTYPE) before anything opens it
    with openpyxl; return what each worksheet holds (:class:`_SheetFacts`). Raises
    :class:`InputFileError` (or a subclass) for a workbook that must not be parsed."""
    import zipfile

    from qpv_geo._zipsafe import check_no_dtd, check_sizes

    settings = settings or Settings.from_env()
    try:
        with zipfile.ZipFile(path) as zf:
            check_sizes(zf, path.name, max_total_mb=settings.max_xlsx_decompresse_mb,
                        max_ratio=settings.max_ratio_compression)
            check_no_dtd(zf, path.name)
            return _sheet_facts(zf)
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


def _open_xlsx(path: Path, *, sheet: str | int | None, settings: Settings) -> _Source:
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
                f"{facts.rows:,} lignes et {facts.cells:,} cellules, au-delà des limites "
                f"({max_rows:,} lignes, {settings.max_cellules:,} cellules).".replace(",", " "),
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
            f"{path.name} : la feuille « {ws.title} » annonce {declared:,} lignes, au-delà de "
            f"la limite de {max_rows:,}.".replace(",", " "),
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
    source_ref: list[_Source] = []
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
                        f"{path.name} : plus de {min(line - 1, max_rows):,} lignes "
                        f"ou de {settings.max_cellules:,} cellules dans la feuille "
                        f"« {ws.title} », au-delà des limites.".replace(",", " "),
                        hint="Découpez le fichier, ou relevez QPV_GEO_MAX_LIGNES / "
                        "QPV_GEO_MAX_CELLULES si c'est voulu.")
                cells = [_cell_text(v) for v in values]
                if frows is not None:
                    formulas_row = next(frows, ())
                    missing = [i for i, f in enumerate(formulas_row)
                               if isinstance(f, str) and f.startswith("=")
                               and (i >= len(values) or values[i] is None)]
                    if missing and source_ref:
                        no_value.append(line)
                        letters = ", ".join(_excel_letter(i) for i in missing[:10])
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
                f"{_named_lines(no_value)}) : ces cellules sont lues vides. Ouvrez le classeur "
                "dans Excel ou LibreOffice, enregistrez-le, relancez.")

    def close() -> None:
        for c in closers:
            c()

    holder = _Source(name=path.name, columns=[], rows=iter(()), skipped_above=[],
                     fmt="xlsx", cell_max=settings.max_caracteres_cellule)
    source_ref.append(holder)
    try:
        header = _with_header(path.name, records(), declared, close, fmt="xlsx")
    except InputFileError:
        close()
        raise
    return _adopt(holder, header)


def _adopt(holder: _Source, header: _Source) -> _Source:
    """``holder`` (whose problems/warnings the reader fills) with the header's fields."""
    holder.columns, holder.rows = header.columns, header.rows
    holder.skipped_above, holder.estimated_rows = header.skipped_above, header.estimated_rows
    holder.skipped, holder.skipped_total = header.skipped, header.skipped_total
    holder.closer = header.closer
    return holder


def _open_geo(path: Path, *, layer: str | int | None = None,
              cell_max: int = 1_000_000) -> _Source:
    """A GeoJSON / GeoPackage layer: attributes, and points as lon/lat columns. A feature
    whose geometry cannot be read (an unclosed ring…) is kept, its row says why; a table
    without geometry is read as a table; several layers need ``layer``."""
    import warnings

    import pyogrio
    import pyogrio.raw
    import shapely

    hint = "Formats acceptés : GeoJSON, GeoPackage (points)."
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"Impossible de lire {path.name} comme couche géographique "
                             "(fichier abîmé ou d'un autre format).", hint=hint) from exc
    chosen: str | None = None
    if layer not in (None, ""):
        if str(layer) in layers:
            chosen = str(layer)
        elif str(layer).isdigit() and 1 <= int(layer) <= len(layers):
            chosen = layers[int(layer) - 1]
        else:
            raise InputFileError(f"Couche « {layer} » absente de {path.name} ; couches : "
                                 f"{', '.join(layers)}.", hint="Indiquez --couche NOM.")
    elif len(layers) > 1:
        raise InputFileError(f"{path.name} contient {len(layers)} couches "
                             f"({', '.join(layers)}) : laquelle lire ?",
                             hint=f"Indiquez-la : --couche {layers[0]} (nom ou rang).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # « Non closed ring detected »: handled per row
            meta, _, wkb, field_data = pyogrio.raw.read(path, layer=chosen)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"Impossible de lire {path.name} comme couche géographique "
                             "(fichier abîmé ou d'un autre format).", hint=hint) from exc
    attrs = [str(f) for f in meta["fields"]]
    n = len(field_data[0]) if field_data else (0 if wkb is None else len(wkb))
    if n == 0:
        raise InputFileError(f"{path.name} ne contient aucun objet.",
                             hint="Exportez la couche avec ses entités depuis QGIS.")
    problems: dict[int, str] = {}
    if wkb is None:  # a table without geometry: its attributes only
        columns = _header_names(attrs)
        xs = ys = np.full(n, np.nan)
    else:
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
        broken = np.flatnonzero(np.array([b is not None for b in wkb]) & shapely.is_missing(geoms))
        for i in broken:
            problems[int(i) + 2] = ("géométrie illisible dans le fichier (anneau non fermé ou "
                                    "coordonnées invalides) : point ignoré")
        crs = meta.get("crs")
        if crs and str(crs).upper() not in ("EPSG:4326", "OGC:CRS84"):
            import geopandas as gpd

            try:
                geoms = gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values
            except Exception as exc:  # pyproj errors: unknown or unusable CRS
                raise InputFileError(f"{path.name} : système de coordonnées {crs} "
                                     "inutilisable.", hint="Exportez la couche en WGS84 "
                                     "(EPSG:4326) depuis QGIS.") from exc
        is_point = np.asarray(shapely.get_type_id(geoms) == 0)
        xs = np.where(is_point, shapely.get_x(geoms), np.nan)
        ys = np.where(is_point, shapely.get_y(geoms), np.nan)
        columns = _header_names([*attrs, _GEOM_LON, _GEOM_LAT])

    def records() -> Iterator[tuple[int, list[str]]]:
        for i in range(n):
            cells = [_cell_text(col[i]) for col in field_data]
            if wkb is not None:
                lon = "" if np.isnan(xs[i]) else repr(round(float(xs[i]), 7))
                lat = "" if np.isnan(ys[i]) else repr(round(float(ys[i]), 7))
                cells += [lon, lat]
            yield i + 2, cells

    source = _Source(name=path.name, columns=columns, rows=records(), skipped_above=[],
                     estimated_rows=n, fmt="geo" if wkb is not None else "geo-table",
                     problems=problems, cell_max=cell_max)
    if path.suffix.lower() in (".geojson", ".json") and _has_escaped_nul(path):
        source.warnings.append("Caractères NUL (\\u0000) dans le fichier : le texte de ces "
                               "cellules est coupé à cet endroit. Vérifiez le fichier source.")
    if problems:
        source.warnings.append(f"{len(problems)} objet(s) à la géométrie illisible (lignes "
                               f"{_named_lines(sorted(problems))}) : gardés sans point, "
                               "avec le motif.")
    return source


def _has_escaped_nul(path: Path) -> bool:
    """True when a GeoJSON holds ``\\u0000`` (GDAL cuts the text there)."""
    with open(path, "rb") as fh:
        tail = b""
        for block in iter(lambda: fh.read(1 << 20), b""):
            if b"\\u0000" in tail + block:
                return True
            tail = block[-6:]
    return False


def _open(path: str | Path, *, sheet: str | int | None = None, encoding: str | None = None,
          sep: str | None = None, settings: Settings | None = None) -> _Source:
    settings = settings or Settings.from_env()
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    if path.is_dir():
        raise InputFileError(f"{path} est un dossier, pas un fichier.",
                             hint="Donnez le chemin d'un fichier CSV, XLSX, GeoJSON ou GPKG.")
    suffix = path.suffix.lower()
    if suffix in _XLSX_SUFFIXES:
        return _open_xlsx(path, sheet=sheet, settings=settings)
    if suffix in _GEO_SUFFIXES:
        return _open_geo(path, layer=sheet, cell_max=settings.max_caracteres_cellule)
    if suffix in {".xls", ".ods"}:
        raise InputFileError(f"{path.name} : format {suffix} non pris en charge.",
                             hint="Enregistrez le tableau en .xlsx ou en CSV.")
    if suffix and suffix not in _CSV_SUFFIXES:
        raise InputFileError(
            f"{path.name} n'est pas un tableau : l'extension {suffix} n'est pas celle d'un "
            "fichier de sites.",
            hint="Formats acceptés : CSV (.csv, .txt, .tsv), XLSX, GeoJSON, GeoPackage. Si "
            "c'est bien un tableau CSV, renommez-le en .csv.")
    return _open_csv(path, encoding=encoding, sep=sep, settings=settings)


def _frames(source: _Source, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """DataFrames of at most ``chunk_rows`` rows (all cells text, index = spreadsheet line);
    also yields the number of entirely empty rows skipped in the chunk."""
    width = len(source.columns)
    lines: list[int] = []
    rows: list[list[str]] = []
    extras: list[str] = []
    problems: list[str] = []
    any_extra = False
    any_problem = False
    empty = 0
    cap = source.cell_max

    def flush() -> tuple[pd.DataFrame, int]:
        nonlocal lines, rows, extras, problems, any_extra, any_problem, empty
        frame = pd.DataFrame(rows, columns=source.columns, dtype=object) if rows else \
            pd.DataFrame({c: pd.Series([], dtype=object) for c in source.columns})
        if any_extra and EXTRA_COLUMN not in frame.columns:
            frame[EXTRA_COLUMN] = extras
        if any_problem and PROBLEM_COLUMN not in frame.columns:
            frame[PROBLEM_COLUMN] = problems
        frame.index = pd.Index(lines, name="ligne", dtype=np.int64)
        out = (frame, empty)
        lines, rows, extras, problems = [], [], [], []
        any_extra = any_problem = False
        empty = 0
        return out

    seen = 0
    for line, cells in source.rows:
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
                    name = source.columns[i] if i < width else f"colonne {_excel_letter(i)}"
                    cut.append(f"cellule « {name} » coupée à {cap:,} caractères ({len(c):,} "
                               "au départ)".replace(",", " "))
                    cells[i] = c[:cap]
            problem = " ; ".join([*([problem] if problem else []), *cut])
        problems.append(problem)
        any_problem = any_problem or bool(problem)
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
               encoding: str | None = None, sep: str | None = None,
               settings: Settings | None = None) -> tuple[pd.DataFrame, ColumnMapping]:
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
    source = _open(path, sheet=sheet, encoding=encoding, sep=sep, settings=settings)
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
    lecture = source.lecture()
    if lecture:
        frame.attrs["lecture"] = lecture
    return frame, mapping


def _mapping_for(source: _Source, frame: pd.DataFrame,
                 overrides: dict[str, str | None] | None) -> ColumnMapping:
    mapping = detect_columns(source.columns, overrides)
    if source.fmt == "geo" and not overrides and _GEOM_LON in source.columns:
        mapping.lon, mapping.lat = _GEOM_LON, _GEOM_LAT
    if len(frame) == 0:
        raise InputFileError(
            f"{source.name} ne contient qu'une ligne d'en-tête, aucune ligne de données "
            f"(colonnes : {', '.join(source.columns)}).",
            hint="Vérifiez que le bon fichier (ou la bonne feuille : --sheet) a été exporté.")
    _check_mapping(mapping, source.columns, source.name, overrides)
    return mapping


def read_columns(path: str | Path, *, sheet: str | int | None = None,
                 settings: Settings | None = None) -> list[str]:
    """The column names of a sites file (its header), without checking their roles: what a
    person can pick from when the detection found no address or coordinates column."""
    source = _open(path, sheet=sheet, settings=settings)
    try:
        return [str(c) for c in source.columns]
    finally:
        if source.closer:
            source.closer()
