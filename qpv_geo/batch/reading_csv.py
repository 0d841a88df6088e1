"""Reading a CSV as people export it: the encoding decided on the whole file (or line by line,
said), the separator sniffed, bounded lines, NUL removed, unclosed quotes detected."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np

from qpv_geo._french import nombre
from qpv_geo.batch.source import (
    MAX_COLUMNS,
    RowBlock,
    Source,
    adopt,
    named_lines,
    too_many_columns,
    with_header,
)
from qpv_geo.exceptions import InputFileError, InputTooLargeError
from qpv_geo.settings import Settings

_SEPARATORS = (";", "\t", ",", "|")
#: Pseudo-encoding of a UTF-8 file with some Windows-1252 lines (each line decoded alone).
MIXED_ENCODING = "utf-8+cp1252"
#: Bytes of a clean file decoded at a time. A multiple of the text layer's chunk
#: (:data:`_TEXT_CHUNK`): a character that does not decode stops the reading at the same line
#: as when the file was read line by line through :func:`open`.
BLOCK_BYTES = 1 << 20
_TEXT_CHUNK = 8192


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


def sniff_sep(lines: list[str]) -> str:
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
    removed, and (mixed encoding) each line decoded alone. Remembers what it did, by line.

    A clean file (no NUL, no overlong line, one encoding) is decoded by blocks; once the
    header's width is known (:attr:`width`), :meth:`take_run` hands out, between two records
    of the reader, the run of regular lines that follows as one :class:`RowBlock`'s cells."""

    def __init__(self, path: Path, enc: str, line_max: int, *, clean: bool = False,
                 sep: str = ";", cell_max: int = 1_000_000) -> None:
        self.path = path
        self.sep = sep
        self.enc = enc
        self.line_max = line_max
        self.issues: dict[int, str] = {}
        self.recoded: list[int] = []
        self.nul: list[int] = []
        self.cut: list[int] = []
        #: Physical lines handed out so far (to the reader or in runs).
        self.count = 0
        #: Cells of a regular row (the header's width); 0 while the header is sought: no run.
        self.width = 0
        self.cell_max = cell_max
        ascii_compatible = enc == MIXED_ENCODING or "\n".encode(enc) == b"\n"
        self._binary = ascii_compatible and not enc.lower().startswith("utf-16")
        #: A file known to hold no NUL and no overlong line, in one encoding: decoded by
        #: blocks (no per-line work).
        self.fast = clean and enc != MIXED_ENCODING
        if self.fast:
            self._binary = True
            self._decoder = codecs.getincrementaldecoder(enc)("strict")
            self._eof = False
            self._error: UnicodeError | None = None
            self._carry = ""
            self._block = ""
            self._starts: list[int] = [0]
            self._codes: np.ndarray | None = None
            self._line_ends = np.zeros(0, dtype=np.intp)
            self._crlf = False
            self._i = self._n = 0
            self._irregular: list[int] | None = None
            self._k = 0
            #: Separator a regular line is split on (one printable character, not a quote).
            self._runs = len(sep) == 1 and (sep == "\t" or " " <= sep <= "~") and sep != '"'
        self._fh: Any = open(path, "rb") if self._binary else open(  # noqa: SIM115
            path, encoding=enc, errors="strict", newline="")

    def close(self) -> None:
        self._fh.close()

    def _note(self, line: int, text: str) -> None:
        self.issues[line] = f"{self.issues[line]} ; {text}" if line in self.issues else text

    def __iter__(self) -> Iterator[str]:
        if self.fast:
            return self._physical()
        return self._lines()

    def _physical(self) -> Iterator[str]:
        """The lines of a clean file one by one, split as :func:`open` (``newline=""``) does:
        after ``\\n``, ``\\r\\n`` or a lone ``\\r``."""
        while self._i < self._n or self._load():
            i = self._i
            self._i = i + 1
            self.count += 1
            yield self._block[self._starts[i]:self._starts[i + 1]]

    def _load(self) -> bool:
        """Decode the next block of whole lines; False at the end of the file. A character
        that does not decode is raised once the lines before its text chunk are used."""
        while True:
            if self._error is not None:
                raise self._error
            if self._eof:
                return False
            raw = self._fh.read(BLOCK_BYTES)
            state = self._decoder.getstate()
            try:
                text = self._decoder.decode(raw, final=not raw)
            except UnicodeError as exc:
                self._decoder.setstate(state)
                text, self._error = self._decode_before_error(raw), exc
            text = self._carry + text
            self._eof = not raw and self._error is None
            cut = len(text) if self._eof else _whole_lines(text)
            self._carry = text[cut:]
            if cut:
                self._index(text[:cut])
                return True

    def _decode_before_error(self, raw: bytes) -> str:
        """The text of the chunks of ``raw`` before the one that does not decode."""
        good = []
        try:
            for k in range(0, len(raw), _TEXT_CHUNK):
                good.append(self._decoder.decode(raw[k:k + _TEXT_CHUNK]))
        except UnicodeError:
            pass
        return "".join(good)

    def _index(self, text: str) -> None:
        """Where the lines of a new block start."""
        self._block, self._i, self._irregular, self._k = text, 0, None, 0
        self._crlf = "\r" in text
        if self._crlf and text.count("\r") != text.count("\r\n"):  # lone CR: old Mac lines
            lens = map(len, io.StringIO(text, newline="").readlines())
            self._starts, self._codes = [0, *accumulate(lens)], None
        else:
            self._codes = _char_codes(text)
            ends = np.flatnonzero(self._codes == 10) + 1
            if not len(ends) or ends[-1] != len(text):
                ends = np.append(ends, len(text))
            self._line_ends = ends
            self._starts = [0, *ends.tolist()]
        self._n = len(self._starts) - 1

    def take_run(self) -> tuple[int, list[str]] | None:
        """The regular lines from here on in the current block: ``(count, cells)``, each
        line one record with exactly :attr:`width` cells — no quote (a line with one is the
        reader's), not blank, none longer than a cell may be; None when the next line is not
        one (or no block is read, or the header is not known yet)."""
        if not self.width or not self.fast or not self._runs:
            return None
        if self._i >= self._n and not self._load():
            return None
        if self._irregular is None:
            self._classify()
        irregular, i, k = self._irregular, self._i, self._k
        assert irregular is not None
        while irregular[k] < i:
            k += 1
        self._k = k
        j = irregular[k]
        if j == i:
            return None
        text = self._block[self._starts[i]:self._starts[j]]
        if self._crlf:
            text = text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        self._i = j
        self.count += j - i
        return j - i, text.replace("\n", self.sep).split(self.sep)

    def _classify(self) -> None:
        """Which lines of the block are not regular (see :meth:`take_run`)."""
        codes = self._codes
        if codes is None:
            self._irregular = list(range(self._n + 1))
            return
        starts = np.concatenate(([0], self._line_ends))
        firsts = starts[:-1]
        sep = ord(self.sep)
        seps = np.add.reduceat(codes == sep, firsts, dtype=np.int32)
        # a character that is not a space (nor a separator) for sure: the row is not blank
        content = np.zeros(256, dtype=bool)
        content[33:127] = True
        content[sep] = False
        filled = content[np.minimum(codes[firsts], 255)]
        if not filled.all():
            filled = np.logical_or.reduceat((codes > 32) & (codes < 127) & (codes != sep),
                                            firsts)
        regular = (seps == self.width - 1) & filled & (np.diff(starts) <= self.cell_max)
        if '"' in self._block:
            regular &= np.diff(np.searchsorted(np.flatnonzero(codes == 34), starts)) == 0
        self._irregular = [*np.flatnonzero(~regular).tolist(), self._n]
        self._codes = None

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
                self._note(n, f"ligne du fichier coupée à {nombre(self.line_max)} caractères "
                           f"({nombre(len(raw) + rest)} au départ)")
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
            if len(text) > MAX_COLUMNS and text.count(self.sep) >= MAX_COLUMNS:
                raise too_many_columns(self.path.name, n, text.count(self.sep) + 1)
            yield text


def _whole_lines(text: str) -> int:
    """Where the last whole line of ``text`` ends (a final ``\\r`` may be a ``\\r\\n``)."""
    end = text.rfind("\n") + 1
    cr = text.rfind("\r", 0, len(text) - 1) + 1
    return max(end, cr) if cr and text[cr] != "\n" else end


def _char_codes(text: str) -> np.ndarray:
    """The code of each character of ``text`` (same indices)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), np.uint8)
    try:
        return np.frombuffer(text.encode("latin-1"), np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def open_csv(path: Path, *, encoding: str | None, sep: str | None,
              settings: Settings, header_line: int | None = None) -> Source:
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path.name} est vide (0 octet).",
                             hint="Vérifiez que le bon fichier a été exporté.")
    with open(path, "rb") as fh:
        sample = fh.read(1 << 16)
    enc = encoding or _sniff_encoding(path, sample)
    if enc != MIXED_ENCODING:
        try:
            codec = codecs.lookup(enc)
        except LookupError as exc:
            raise InputFileError(f"Encodage inconnu : {enc}.",
                                 hint="Essayez --encoding utf-8 ou --encoding cp1252.") from exc
        try:  # rot13, base64, zlib… are not text encodings; idna, punycode not for files
            if not getattr(codec, "_is_text_encoding", True):
                raise ValueError(enc)
            sample.decode(enc, errors="replace")
        except (UnicodeError, ValueError):
            raise InputFileError(f"« {enc} » n'est pas un encodage de fichier texte.",
                                 hint="Essayez --encoding utf-8 ou --encoding cp1252.") from None
    _check_not_binary(path, sample, "utf-8" if enc == MIXED_ENCODING else enc)
    sample_enc = "utf-8" if enc == MIXED_ENCODING else enc
    head = sample.decode(sample_enc, errors="replace").splitlines()[:50]
    if len(sample) == 1 << 16 and len(head) > 1:
        head = head[:-1]  # the last line of the sample may be cut
    delimiter = sep or sniff_sep(head)
    row_seps = max((line.count(delimiter) for line in head[:10]), default=0)
    cell_max = settings.max_caracteres_cellule
    field_max = max(cell_max * 8, 1 << 20)
    est, clean = _scan(path, 4 * field_max, delimiter.encode(
        "utf-8" if enc == MIXED_ENCODING else enc)) if size < (1 << 31) else (None, False)
    lines = _CsvLines(path, enc, line_max=4 * field_max, clean=clean, sep=delimiter,
                      cell_max=cell_max)
    csv.field_size_limit(field_max)
    reader = csv.reader(lines, delimiter=delimiter)
    source = Source(name=path.name, columns=[], rows=iter(()), skipped_above=[],
                     closer=lines.close, fmt="csv", encoding=enc, sep=delimiter,
                     cell_max=cell_max)
    swallowed: list[tuple[int, int, int]] = []
    width = max(1, row_seps + 1)

    def records() -> Iterator[tuple[int, list[str]] | RowBlock]:
        n = 0
        last = 0
        try:
            while True:
                run = lines.take_run()
                if run is not None:
                    count, cells = run
                    n += count
                    last = lines.count
                    yield RowBlock(n - count + 1, count, cells)
                    continue
                row = next(reader, None)
                if row is None:
                    break
                n += 1
                span = lines.count - last
                # (a quote never closed runs to the end of the file: its last cell ends
                # with the file's last line break, even when it swallowed no other line)
                if (span > 1 and (span > 50 or swallows_a_row(row, delimiter, row_seps,
                                                              width))) or (
                        row and row[-1][-1:] == "\n"):
                    swallowed.append((n, last + 1, lines.count))
                    source.problems[n] = (
                        "guillemet non fermé probable : une cellule de cette ligne "
                        + (f"contient {span} lignes du fichier (lignes {last + 1} à "
                           f"{lines.count}), qui ne sont pas lues comme des lignes "
                           "séparées" if span > 1 else "s'ouvre par un guillemet jamais "
                           "fermé et court jusqu'à la fin du fichier")
                        + " ; corrigez le guillemet dans le fichier et relancez")
                if lines.issues:
                    found = [lines.issues.pop(i) for i in range(last + 1, lines.count + 1)
                             if i in lines.issues]
                    if found:
                        old = source.problems.get(n)
                        source.problems[n] = " ; ".join([*([old] if old else []), *found])
                last = lines.count
                yield n, row
        except UnicodeError as exc:  # UTF-16 without its BOM says UnicodeError
            raise InputFileError(
                f"{path.name} : caractère illisible en {enc} vers la ligne {n + 1}.",
                hint="Indiquez l'encodage : --encoding cp1252 (Excel Windows) ou utf-8.",
            ) from exc
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise InputTooLargeError(
                    f"{path.name}, ligne {n + 1} : une cellule dépasse {nombre(field_max)} "
                    "caractères (guillemet non fermé probable, ou cellule géante).",
                    hint="Vérifiez les guillemets de cette ligne dans un éditeur de texte."
                ) from exc
            raise InputFileError(f"{path.name}, ligne {n + 1} : CSV illisible ({exc}).",
                                 hint="Vérifiez les guillemets de cette ligne.") from exc
        finally:
            _csv_warnings(source, lines, swallowed, last, n)

    try:
        header = with_header(path.name, records(), est, lines.close, fmt="csv", encoding=enc,
                              sep=delimiter, header_line=header_line)
    except InputFileError:
        lines.close()
        raise
    lines.width = len(header.columns)
    return adopt(source, header)


def _scan(path: Path, line_max: int, sep: bytes = b";") -> tuple[int, bool]:
    """Line breaks of a file, and whether it is clean: no NUL byte, no line over
    ``line_max`` bytes (one pass at C speed, bounded memory whatever the lines' length). A
    line with :data:`MAX_COLUMNS` separators or more is refused here, before anything splits
    it into cells."""
    count = 0
    clean = True
    tail_len = tail_seps = 0  # the line not ended yet: its length and separators so far
    with open(path, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 22), b""):
            if clean and b"\x00" in block:
                clean = False
            breaks = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
            # line k of the block: bytes bounds[k] + 1 … bounds[k + 1]
            bounds = np.concatenate(([-1], breaks, [len(block)]))
            lens = np.diff(bounds) - 1
            lens[0] += tail_len
            longest = int(lens.max())
            if longest > MAX_COLUMNS:  # only long lines can hold that many separators
                for k in np.flatnonzero(lens > MAX_COLUMNS).tolist():
                    seps = (block.count(sep, int(bounds[k]) + 1, int(bounds[k + 1]))
                            + (tail_seps if k == 0 else 0))
                    if seps >= MAX_COLUMNS:
                        raise too_many_columns(path.name, count + k + 1, seps + 1)
            if clean and longest > line_max:
                clean = False
            count += len(breaks)
            tail_seps = (0 if len(breaks) else tail_seps) + block.count(sep, int(bounds[-2]) + 1)
            tail_len = int(lens[-1])
    return count, clean


def swallows_a_row(row: list[str], delimiter: str, row_seps: int, width: int) -> bool:
    """Whether a record read over several lines holds a row of the file that a stray quote
    swallowed — even one row, even the last one. A cell holding a line break and the
    separator is suspect when one of its lines looks like (part of) a row (at least half the
    header's separators), when the record has fewer cells than the header (the quote opened
    in the row's first cells: the row after it lends its own last cells), or when it runs to
    the end of the file (the quote never closed). A note written on several lines, with a
    separator here and there, in a row of full width, is none of these."""
    need = max(1, row_seps // 2)
    for cell in row:
        if "\n" not in cell or delimiter not in cell:
            continue
        if any(part.count(delimiter) >= need for part in cell.split("\n")):
            return True
        if len(row) < width or cell.endswith("\n"):
            return True
    return False


def _csv_warnings(source: Source, lines: _CsvLines, swallowed: list[tuple[int, int, int]],
                  physical: int, records: int = 0) -> None:
    """Summary warnings of a CSV read (set once, at the end or on an error)."""
    for n, first, last in swallowed:
        if last == first:
            source.warnings.append(
                f"Ligne {n} : guillemet non fermé probable — une cellule s'ouvre par un "
                "guillemet jamais fermé et court jusqu'à la fin du fichier. Corrigez le "
                "guillemet et relancez.")
            continue
        source.warnings.append(
            f"Ligne {n} : guillemet non fermé probable — une cellule contient les lignes "
            f"{first} à {last} du fichier ({last - first + 1} lignes physiques), qui n'ont pas "
            f"été lues comme des lignes séparées ({physical} lignes physiques dans le fichier, "
            f"{records} lignes lues, en-tête compris). Corrigez le guillemet et relancez.")
    if lines.recoded:
        source.warnings.append(
            f"Encodage mêlé : {len(lines.recoded)} ligne(s) du fichier en Windows-1252 au "
            f"milieu d'UTF-8, lues comme telles (lignes {named_lines(lines.recoded)}). "
            "Vérifiez leurs accents ; enregistrez le fichier en UTF-8.")
    if lines.nul:
        source.warnings.append(
            f"Caractères NUL supprimés (lignes du fichier {named_lines(lines.nul)}) : fichier "
            "probablement abîmé, vérifiez ces lignes.")
    if lines.cut:
        source.warnings.append(
            f"Lignes du fichier trop longues, coupées à {nombre(lines.line_max)} caractères "
            f"(lignes {named_lines(lines.cut)}).")
