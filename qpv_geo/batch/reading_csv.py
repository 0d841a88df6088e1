"""Reading a CSV as people export it: the encoding decided on the whole file (or line by line,
said), the separator sniffed, bounded lines, NUL removed, unclosed quotes detected."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qpv_geo.batch.source import _adopt, _named_lines, _Source, _with_header
from qpv_geo.exceptions import InputFileError, InputTooLargeError
from qpv_geo.settings import Settings

_SEPARATORS = (";", "\t", ",", "|")
#: Pseudo-encoding of a UTF-8 file with some Windows-1252 lines (each line decoded alone).
MIXED_ENCODING = "utf-8+cp1252"


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
              settings: Settings, header_line: int | None = None) -> _Source:
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
                              sep=delimiter, header_line=header_line)
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
