"""What every reader of a sites file shares: the opened source (:class:`Source`: header,
rows, problems by line, warnings, skipped rows), header detection, and cells as text."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from qpv_geo.batch.columns import detect_columns
from qpv_geo.exceptions import InputFileError, InputTooLargeError

#: Skipped rows listed one by one in the summary (all are counted).
SKIPPED_LISTED = 1_000
#: Columns of a sheet (Excel stops at XFD): a row with more cells is not a spreadsheet — it is
#: refused before it is split into cells (a 19 MB header of 9.5 million columns took minutes
#: and gigabytes).
MAX_COLUMNS = 16_384


def too_many_columns(name: str, line: int | None, count: int) -> Exception:
    """The French error of a row beyond :data:`MAX_COLUMNS` cells."""

    where = f", ligne {line}" if line else ""
    big = f"{count:,}".replace(",", "\u202f")
    cap = f"{MAX_COLUMNS:,}".replace(",", "\u202f")
    return InputTooLargeError(
        f"{name}{where} : au moins {big} colonnes, au-delà de la limite de {cap} (le "
        "maximum d'Excel) ; ce n'est pas un tableau de sites.",
        hint="Vérifiez le séparateur et les guillemets de cette ligne, ou enregistrez le "
        "tableau de nouveau depuis le tableur.")
#: Lines named one by one in a reading warning.
LINES_NAMED = 20


def excel_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def header_names(cells: Sequence[str]) -> list[str]:
    """Header cells as column names: blanks named after their Excel letter, duplicates
    numbered, so that no column is dropped."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, cell in enumerate(cells):
        name = re.sub(r"\s+", " ", str(cell or "")).strip().lstrip("\ufeff")
        if not name:
            name = f"colonne {excel_letter(i)}"
        seen[name] += 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        names.append(name)
    return names


def cell_text(value: Any) -> str:
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
class RowBlock:
    """Rows ``first`` … ``first + count - 1`` of a file, read in one go, that none of the row
    rules of :func:`~qpv_geo.batch.reading.source_frames` changes: each exactly as wide as
    the header, not blank, no cell over the cap, no problem. ``cells``: their cells, row
    after row (``count`` × header width)."""

    first: int
    count: int
    cells: list[str]


@dataclass
class Source:
    """An opened sites file: its header and an iterator of (line number, cells) — or of
    :class:`RowBlock` (several regular rows at once)."""

    name: str
    columns: list[str]
    rows: Iterator[tuple[int, list[str]] | RowBlock]
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
    #: Line of the header, why its guess is doubtful (empty: clear), and the first non-empty
    #: rows (line, first cells) a person can pick the header from.
    header_line: int = 1
    header_doubt: str = ""
    head: list[tuple[int, list[str]]] = field(default_factory=list)

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
        if self.header_line != 1:
            out["ligne_entete"] = int(self.header_line)
        if self.header_doubt:
            out["entete_douteux"] = self.header_doubt
        return out


#: Pseudo-encoding of a UTF-8 file with some Windows-1252 lines (each line decoded alone).
def named_lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:LINES_NAMED])
    return shown + (f" … (et {len(lines) - LINES_NAMED} autres)" if len(lines) > LINES_NAMED
                    else "")


def head_rows(records: Iterator[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """The first rows of a file, up to the tenth non-empty one (where the header is sought)."""
    buffered: list[tuple[int, list[str]]] = []
    filled = 0
    for line, cells in records:
        buffered.append((line, cells))
        if any(str(c).strip() for c in cells):
            filled += 1
            if filled >= 10:
                break
    return buffered


#: A cell that holds a value rather than a column name (a street number, a postcode…), unless
#: it names a coordinate system (« X L93 », « Lat WGS84 »).
_VALUE_LIKE = re.compile(r"\d{2,}")
_COORD_NAME = re.compile(r"l93|lambert|wgs|2154|epsg", re.IGNORECASE)


def _filled(cells: Sequence[str]) -> int:
    return sum(1 for c in cells if str(c).strip())


def _roles_named(cells: Sequence[str]) -> int:
    """How many column roles (address, postcode, commune, lat/lon, porteur…) a row names;
    cells that hold a value (digits: « 12 rue … », « 42000 ») name none."""
    names = [c if not (_VALUE_LIKE.search(str(c)) and not _COORD_NAME.search(str(c))) else ""
             for c in cells]
    mapping = detect_columns(header_names(names))
    return sum(1 for _, col in mapping.describe() if col)


@dataclass
class HeaderGuess:
    """Where the header was found among the first rows, and whether a person should check."""

    index: int | None
    #: Why the guess may be wrong (empty: a clear header); said on /lot with a row picker.
    doubt: str = ""


def _guess_header(buffered: Sequence[tuple[int, Sequence[str]]]) -> HeaderGuess:
    """The header among the first rows, as a person finds it: the row that names the most
    roles (first one on a tie); a row of one cell (a title, even « … lieux de réalisation
    des actions ») never beats a fuller row below it that names a role (or when it names
    none itself). No role anywhere: the first non-empty row."""
    nonblank = [k for k, (_, cells) in enumerate(buffered) if _filled(cells)]
    if not nonblank:
        return HeaderGuess(None)
    roles = {k: _roles_named(buffered[k][1]) for k in nonblank}
    width = {k: _filled(buffered[k][1]) for k in nonblank}
    best = nonblank[0]
    for k in nonblank[1:]:
        if roles[k] > roles[best] or (width[best] == 1 and width[k] >= 2
                                      and (roles[k] >= 1 or roles[best] == 0)):
            best = k
    doubt = ""
    rivals = [k for k in nonblank if k != best and roles[k] == roles[best] and roles[k]
              and width[k] >= 2]
    if roles[best] == 0:
        doubt = "aucune ligne du début ne nomme une colonne d'adresse ou de coordonnées"
    elif width[best] == 1 and any(width[k] >= 2 for k in nonblank if k > best):
        doubt = "l'en-tête trouvé n'a qu'une cellule, les lignes suivantes en ont plusieurs"
    elif rivals:
        doubt = (f"la ligne {buffered[rivals[0]][0]} nomme autant de colonnes que la ligne "
                 f"{buffered[best][0]}")
    elif best != nonblank[0]:
        doubt = (f"{len([k for k in nonblank if k < best])} ligne(s) au-dessus de l'en-tête "
                 "ignorée(s) (titre)")
    return HeaderGuess(best, doubt)


def header_index(buffered: Sequence[tuple[int, Sequence[str]]]) -> int | None:
    """Index of the header among the first rows (:func:`_guess_header`); None when all
    are empty."""
    return _guess_header(buffered).index


def with_header(name: str, records: Iterator[Any], est: int | None,
                 closer: Callable[[], None] | None, *, header_line: int | None = None,
                 **info: Any) -> Source:
    """Find the header (:func:`_guess_header` among the first ten non-empty rows, or the row
    ``header_line`` a person named) and return the source positioned after it. Blank rows
    among those read ahead are kept for :func:`source_frames` (which counts and lists them).
    ``records`` yields ``(line, cells)`` while the header is sought; after it, a reader may
    also yield :class:`RowBlock` (it learns the header's width once this returns)."""
    if header_line is not None:
        buffered = []
        filled = 0
        for line, cells in records:  # up to the header, and ten non-empty rows to show
            buffered.append((line, cells))
            filled += bool(_filled(cells))
            if line >= header_line and filled >= 10:
                break
        pick = next((k for k, (line, _) in enumerate(buffered) if line == header_line), None)
        if pick is None or not _filled(buffered[pick][1]):
            if closer:
                closer()
            raise InputFileError(
                f"{name} : la ligne d'en-tête {header_line} "
                + ("est vide." if pick is not None else
                   f"n'existe pas (le fichier a {buffered[-1][0] if buffered else 0} "
                   "ligne(s))."),
                hint="Indiquez le numéro de la ligne des noms de colonnes : --ligne-entete N.")
        doubt = ""
    else:
        buffered = head_rows(records)
        guess = _guess_header(buffered)
        pick, doubt = guess.index, guess.doubt
    if pick is None:
        if closer:
            closer()
        raise InputFileError(f"{name} ne contient aucune ligne (fichier vide ou seulement des "
                             "séparateurs).", hint="Vérifiez que le bon fichier a été exporté.")
    header_line, header = buffered[pick]
    above = buffered[:pick]
    skipped = [line for line, cells in above if any(str(c).strip() for c in cells)]
    blank_above = [(line, cells) for line, cells in above if not any(str(c).strip()
                                                                     for c in cells)]
    rest = buffered[pick + 1:]
    source = Source(name=name, columns=header_names(header), rows=iter(()),
                     skipped_above=skipped,
                     estimated_rows=None if est is None else max(0, est - header_line),
                     closer=closer, **info)
    source.header_line = header_line
    source.header_doubt = doubt
    source.head = [(line, [str(c) for c in cells[:12]]) for line, cells in buffered
                   if _filled(cells)]
    for line in skipped:
        source.skip(line, "titre au-dessus de l'en-tête")

    def rows() -> Iterator[tuple[int, list[str]] | RowBlock]:
        yield from blank_above
        yield from rest
        yield from records

    source.rows = rows()
    return source


def adopt(holder: Source, header: Source) -> Source:
    """``holder`` (whose problems/warnings the reader fills) with the header's fields."""
    holder.columns, holder.rows = header.columns, header.rows
    holder.skipped_above, holder.estimated_rows = header.skipped_above, header.estimated_rows
    holder.skipped, holder.skipped_total = header.skipped, header.skipped_total
    holder.closer = header.closer
    holder.header_line, holder.header_doubt = header.header_line, header.header_doubt
    holder.head = header.head
    return holder
