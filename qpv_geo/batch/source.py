"""What every reader of a sites file shares: the opened source (:class:`_Source`: header,
rows, problems by line, warnings, skipped rows), header detection, and cells as text."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from qpv_geo.batch.columns import detect_columns
from qpv_geo.exceptions import InputFileError

#: Skipped rows listed one by one in the summary (all are counted).
SKIPPED_LISTED = 1_000
#: Lines named one by one in a reading warning.
LINES_NAMED = 20


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
def _named_lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:LINES_NAMED])
    return shown + (f" … (et {len(lines) - LINES_NAMED} autres)" if len(lines) > LINES_NAMED
                    else "")


def _head_rows(records: Iterator[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
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


def _header_index(buffered: Sequence[tuple[int, Sequence[str]]]) -> int | None:
    """Index of the header among the first rows: the first non-empty row naming a role
    (address, lat/lon, x/y), else the first non-empty row; None when all are empty."""
    nonblank = [k for k, (_, cells) in enumerate(buffered) if any(str(c).strip() for c in cells)]
    if not nonblank:
        return None
    for k in nonblank:
        mapping = detect_columns(_header_names(buffered[k][1]))
        if mapping.has_address or mapping.has_lonlat or mapping.has_xy:
            return k
    return nonblank[0]


def _with_header(name: str, records: Iterator[tuple[int, list[str]]], est: int | None,
                 closer: Callable[[], None] | None, **info: Any) -> _Source:
    """Find the header (the first of the first ten non-empty rows naming a role, else the
    first non-empty row) and return the source positioned after it. Blank rows among those
    read ahead are kept for :func:`_frames` (which counts and lists them)."""
    buffered = _head_rows(records)
    pick = _header_index(buffered)
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


def _adopt(holder: _Source, header: _Source) -> _Source:
    """``holder`` (whose problems/warnings the reader fills) with the header's fields."""
    holder.columns, holder.rows = header.columns, header.rows
    holder.skipped_above, holder.estimated_rows = header.skipped_above, header.estimated_rows
    holder.skipped, holder.skipped_total = header.skipped, header.skipped_total
    holder.closer = header.closer
    return holder
