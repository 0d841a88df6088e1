"""Batch validation of submitted sites: a spreadsheet in, every row out with its verdict.

The data flow is: read a sites file (:func:`read_sites`: CSV as people export it, XLSX,
GeoJSON/GeoPackage of points) → detect the columns (:class:`ColumnMapping`) → geocode the rows
without coordinates, in chunks (the geocoder's disk cache makes a re-run resume) → judge every
point with the eligibility engine, chunk by chunk → write the same rows, in the same order,
with the verdict columns (:func:`write_result`: CSV, XLSX with a « synthèse » sheet, GeoJSON,
GeoPackage) and a summary next to it.

Nothing is lost: a row that cannot be read, geocoded or judged is still in the output with its
reason (status ``non_geocode`` and ``motifs``); whole-file problems raise
:class:`~qpv_geo.exceptions.InputFileError` saying which row / which column / what to do.

Nothing from the input is executed or evaluated: XLSX files are opened with
``data_only=True`` (cached values, never formulas), and cells starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return are prefixed with ``'`` in CSV and XLSX exports
(formula injection), except plain numbers such as ``-4,5``.

Output columns (public API, :data:`OUTPUT_COLUMNS`): ``ligne`` (row number as a person counts
in the spreadsheet: the header is line 1, the first data row line 2), every input column
(renamed ``<name> (source)`` only when it collides with an output column), then the geocoding
columns, ``lon``/``lat``, the verdict columns, and ``priorite`` (key of
:data:`~qpv_geo.priorites.PRIORITES`), ``porteur``, ``action`` when those columns were found.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo.eligibility import STATUS_LABELS, STATUSES, Engine
from qpv_geo.exceptions import GeocoderNotConfigured, InputFileError
from qpv_geo.priorites import label_of, normalize_priorite
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.geocoding import AddressQuery, Geocoder, GeocodeResult

#: Roles a source column can play, in the order of :meth:`ColumnMapping.describe`.
ROLES = ("adresse", "code_postal", "commune", "lat", "lon", "x", "y", "priorite", "porteur",
         "action")
#: Geocoding columns of the output.
GEOCODING_COLUMNS = ("geocodage_label", "geocodage_score", "geocodage_precision",
                     "geocodage_source")
#: Verdict columns of the output (from the engine, plus the plain-French label of the status).
VERDICT_OUTPUT_COLUMNS = (
    "status", "statut_libelle", "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m",
    "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m", "motifs", "donnees",
)
#: Columns added when the matching role was detected (normalised values).
ROLE_OUTPUT_COLUMNS = ("priorite", "porteur", "action")
#: Every column the batch adds (``ligne`` first, then after the input columns, the rest).
OUTPUT_COLUMNS = ("ligne", *GEOCODING_COLUMNS, "lon", "lat", *VERDICT_OUTPUT_COLUMNS,
                  *ROLE_OUTPUT_COLUMNS)
#: Numeric output columns (written as numbers, never neutralised).
NUMERIC_COLUMNS = ("ligne", "geocodage_score", "lon", "lat", "distance_bord_m",
                   "distance_qp_proche_m")
#: Columns that mark a file as already validated (see :func:`read_validated`).
VALIDATED_MARKERS = ("status", "code_qp", "ligne")
#: Column holding the cells of a row beyond the header's width (ragged rows).
EXTRA_COLUMN = "colonnes en trop"
#: ``geocodage_source`` of a row whose point comes from the file's own coordinates.
SOURCE_COORDONNEES = "coordonnees"
#: Rows judged at once by the engine, and rows per streamed chunk of a big file.
CHUNK_ROWS = 100_000
#: Distinct addresses per geocoding call (each call's results are cached by the geocoder).
GEOCODE_CHUNK = 1_000
#: Rows listed one by one in ``summary["a_revoir"]`` (all are in the output file).
A_REVOIR_MAX = 5_000
#: A streamed run keeps its rows in :attr:`BatchResult.frame` up to this many rows.
KEEP_FRAME_MAX = 200_000
#: Longest text an XLSX cell holds (Excel's limit).
XLSX_CELL_MAX = 32_767
#: Rows an XLSX sheet holds (Excel's limit, header included).
XLSX_ROWS_MAX = 1_048_576

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".tab"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_GEO_SUFFIXES = {".geojson", ".json", ".gpkg"}
_SEPARATORS = (";", "\t", ",", "|")
_GEOM_LON = "longitude (géométrie)"
_GEOM_LAT = "latitude (géométrie)"


# ---------------------------------------------------------------------------------------------
# Column detection
# ---------------------------------------------------------------------------------------------


def fold_name(name: object) -> str:
    """Column name folded for matching: no accents, lower case, words separated by one space."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


#: Folded names that match a role exactly.
_EXACT: dict[str, tuple[str, ...]] = {
    "adresse": ("adresse", "adresses", "address", "adresse postale", "adresse du site",
                "adresse de l action", "adresse du lieu", "adresse complete", "lieu",
                "lieu de l action", "street", "street address", "rue", "voie"),
    "code_postal": ("code postal", "cp", "postcode", "post code", "postal code", "zip",
                    "zip code", "code postale", "codepostal"),
    "commune": ("commune", "ville", "city", "localite", "town", "municipality", "nom commune",
                "nom de la commune", "commune du site"),
    "lat": ("lat", "latitude", "lat wgs84", "latitude wgs84", "y wgs84", "latitude gps"),
    "lon": ("lon", "lng", "long", "longitude", "lon wgs84", "longitude wgs84", "x wgs84",
            "longitude gps"),
    "x": ("x", "x l93", "xl93", "x lambert", "x lambert 93", "lambert x", "coord x",
          "coordonnee x", "x 2154", "x_l93"),
    "y": ("y", "y l93", "yl93", "y lambert", "y lambert 93", "lambert y", "coord y",
          "coordonnee y", "y 2154", "y_l93"),
    "priorite": ("priorite", "priorites", "priority", "priorite de l appel", "axe",
                 "thematique", "theme", "frein", "frein leve"),
    "porteur": ("porteur", "porteurs", "porteur de projet", "structure", "structure porteuse",
                "association", "organisme", "operateur", "organisation", "organization",
                "applicant", "beneficiaire", "nom de la structure"),
    "action": ("action", "actions", "intitule", "intitule de l action", "nom de l action",
               "projet", "project", "titre", "nom du projet", "intitule du projet"),
}
#: Words that make a column never an address/commune (e-mail, phone, web, INSEE code…).
_NEVER = {"mail", "email", "courriel", "e", "tel", "telephone", "phone", "web", "url", "http",
          "internet", "insee", "siret", "siren", "contact", "date"}


def _role_by_words(folded: str) -> str | None:
    words = folded.split()
    if not words or _NEVER & set(words):
        return None
    w = set(words)
    if "postal" in w or "cp" in w or "zip" in w or "postcode" in w:
        return "code_postal"
    if any(t.startswith("lat") for t in words):
        return "lat"
    if w & {"lon", "lng", "longitude", "long"}:
        return "lon"
    if "x" in w and (w & {"l93", "lambert", "coord", "coordonnee", "2154", "93"}):
        return "x"
    if "y" in w and (w & {"l93", "lambert", "coord", "coordonnee", "2154", "93"}):
        return "y"
    if w & {"commune", "ville", "city", "localite", "town"}:
        return "commune"
    if w & {"adresse", "adresses", "address", "addr", "rue", "voie"}:
        return "adresse"
    if any(t.startswith("priorit") for t in words) or w & {"axe", "thematique", "theme"}:
        return "priorite"
    if w & {"porteur", "porteurs", "structure", "association", "organisme", "operateur"}:
        return "porteur"
    if w & {"action", "actions", "intitule", "projet", "project"}:
        return "action"
    return None


@dataclass
class ColumnMapping:
    """Which source column plays each role (``None``: not in the file)."""

    adresse: str | None = None
    code_postal: str | None = None
    commune: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None
    priorite: str | None = None
    porteur: str | None = None
    action: str | None = None

    def describe(self) -> list[tuple[str, str | None]]:
        """``(role, source column or None)`` for every role, in :data:`ROLES` order."""
        return [(role, getattr(self, role)) for role in ROLES]

    def as_dict(self) -> dict[str, str | None]:
        """JSON-friendly view."""
        return dict(self.describe())

    @property
    def has_address(self) -> bool:
        """True when a row can be geocoded (an address, a postcode or a commune column)."""
        return any(getattr(self, r) for r in ("adresse", "code_postal", "commune"))

    @property
    def has_lonlat(self) -> bool:
        """True when the file has both latitude and longitude columns."""
        return bool(self.lat and self.lon)

    @property
    def has_xy(self) -> bool:
        """True when the file has both Lambert-93 x and y columns."""
        return bool(self.x and self.y)


def detect_columns(columns: Sequence[str],
                   overrides: dict[str, str | None] | None = None) -> ColumnMapping:
    """Guess the role of each column from its name (French or English, accents/case folded).

    ``overrides`` maps a role to a column name (matched exactly, then folded); ``None`` or an
    empty string removes a role. Raises :class:`InputFileError` for an unknown role or column.
    """
    overrides = dict(overrides or {})
    unknown = [r for r in overrides if r not in ROLES]
    if unknown:
        raise InputFileError(f"Rôle de colonne inconnu : {', '.join(unknown)}.",
                             hint=f"Rôles possibles : {', '.join(ROLES)}.")
    folded = {c: fold_name(c) for c in columns}
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for role, wanted in overrides.items():
        if wanted is None or str(wanted).strip() == "":
            continue
        match = wanted if wanted in folded else next(
            (c for c, f in folded.items() if f == fold_name(wanted)), None)
        if match is None:
            raise InputFileError(
                f"Colonne « {wanted} » (indiquée pour le rôle {role}) absente du fichier ; "
                f"colonnes présentes : {', '.join(map(str, columns))}.",
                hint=f"Recopiez le nom exact d'une colonne dans --col-{role.replace('_', '-')}.")
        chosen[role] = match
        taken.add(match)
    # Pass 1: exact names; pass 2: meaningful words.
    for role in ROLES:
        if role in chosen or role in overrides:
            continue
        for c in columns:
            if c not in taken and folded[c] in _EXACT[role]:
                chosen[role] = c
                taken.add(c)
                break
    for c in columns:
        if c in taken or c == EXTRA_COLUMN:
            continue
        role = _role_by_words(folded[c])
        if role and role not in chosen and role not in overrides:
            chosen[role] = c
            taken.add(c)
    return ColumnMapping(**chosen)


def _check_mapping(mapping: ColumnMapping, columns: Sequence[str], name: str) -> None:
    for a, b in (("lat", "lon"), ("x", "y")):
        if bool(getattr(mapping, a)) != bool(getattr(mapping, b)):
            have, miss = (a, b) if getattr(mapping, a) else (b, a)
            raise InputFileError(
                f"{name} : colonne {have} trouvée (« {getattr(mapping, have)} ») mais pas de "
                f"colonne {miss}.",
                hint=f"Indiquez-la avec --col-{miss} NOM (colonnes : {', '.join(columns)}).")
    if not (mapping.has_address or mapping.has_lonlat or mapping.has_xy):
        raise InputFileError(
            f"{name} : aucune colonne d'adresse ni de coordonnées reconnue ; colonnes "
            f"présentes : {', '.join(map(str, columns)) or '(aucune)'}.",
            hint="Nommez les colonnes Adresse / Code postal / Commune ou Latitude / Longitude "
            "(ou x / y en Lambert-93), ou indiquez-les : --col-adresse NOM, --col-lat NOM "
            "--col-lon NOM.")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as people type them (``45,43``, ``45.43``, ``808 000``, ``1.234,5``).

    Returns ``(numbers, unreadable)``: NaN for empty or unreadable cells, and a mask of the
    non-empty cells that are not numbers.
    """
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    empty = (text == "").to_numpy()
    fast = np.array(pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce"),
                    dtype=np.float64)
    retry = np.flatnonzero(np.isnan(fast) & ~empty)
    for i in retry:
        s = _SPACES.sub("", text.iat[i]).replace("\u2212", "-")
        if "," in s and "." in s:
            s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else \
                s.replace(",", "")
        try:
            fast[i] = float(s.replace(",", "."))
        except ValueError:
            continue
    fast[~np.isfinite(fast)] = np.nan
    return fast, np.isnan(fast) & ~empty


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if not column:
        return np.full(len(frame), "", dtype=object)
    s = frame[column]
    return s.astype(object).where(s.notna(), "").astype(str).str.strip().to_numpy(object)


@dataclass
class BatchResult:
    """Validated sites, their summary and the column mapping used.

    ``frame`` holds every row, unless a streamed run (:func:`validate_file` on a big CSV with
    an output) had more than :data:`KEEP_FRAME_MAX` rows: then ``frame`` is empty, ``streamed``
    is True and the rows are in ``paths[0]``.
    """

    frame: pd.DataFrame
    summary: dict[str, Any]
    mapping: ColumnMapping
    paths: list[Path] = field(default_factory=list)
    streamed: bool = False


class _Geocoding:
    """Geocodes distinct addresses in chunks, remembering the results of the whole run."""

    def __init__(self, geocoder: Geocoder | None, settings: Settings,
                 geocoder_name: str | None = None) -> None:
        self._geocoder = geocoder
        self._settings = settings
        self._name = geocoder_name
        self._error: str | None = None
        self._memo: dict[Any, GeocodeResult] = {}
        self.name: str | None = getattr(geocoder, "name", None)

    def geocoder(self) -> Geocoder | None:
        if self._geocoder is None and self._error is None:
            from qpv_geo.geocoding import geocoder_from_settings

            try:
                self._geocoder = geocoder_from_settings(self._settings, self._name)
                self.name = self._geocoder.name
            except GeocoderNotConfigured as exc:
                self._error = f"géocodeur indisponible : {exc}" + (
                    f" ({exc.hint})" if exc.hint else "")
        return self._geocoder

    def run(self, queries: list[AddressQuery],
            progress: Callable[[int], None] | None) -> list[GeocodeResult]:
        from qpv_geo.geocoding import not_found

        geocoder = self.geocoder()
        if geocoder is None:
            out = [not_found(q, self._error or "géocodeur indisponible", source="")
                   for q in queries]
            if progress:
                progress(len(queries))
            return out
        todo = list(dict.fromkeys(q for q in queries if q not in self._memo))
        known = len(queries) - sum(1 for q in queries if q not in self._memo)
        if progress and known:
            progress(known)
        pending = Counter(q for q in queries if q not in self._memo)
        for i in range(0, len(todo), GEOCODE_CHUNK):
            chunk = todo[i:i + GEOCODE_CHUNK]
            results = geocoder.geocode_many(chunk)
            if len(results) != len(chunk):
                raise RuntimeError(f"geocoder {geocoder.name} returned {len(results)} results "
                                   f"for {len(chunk)} queries")
            for q, r in zip(chunk, results, strict=True):
                self._memo[q] = r
            if progress:
                progress(sum(pending[q] for q in chunk))
        out = [self._memo[q] for q in queries]
        if len(self._memo) > 500_000:
            self._memo.clear()
        return out


def validate_sites(frame: pd.DataFrame, mapping: ColumnMapping, *,
                   settings: Settings | None = None, engine: Engine | None = None,
                   geocoder: Geocoder | None = None,
                   progress: Callable[[int], None] | None = None) -> BatchResult:
    """Geocode and judge every row of ``frame`` (as returned by :func:`read_sites`).

    Rows with coordinates (lat/lon, else Lambert-93 x/y) are judged on them; the others are
    geocoded from their address, postcode and commune. Coordinates win over an address (the
    row's ``motifs`` says so), unless they are unusable: then the address is geocoded.

    Parameters
    ----------
    frame
        Sites, cells as text. Its index named ``ligne`` gives the line numbers (otherwise
        line = position + 2).
    mapping
        Column roles (:func:`detect_columns`).
    settings, engine, geocoder
        Default: from the environment (:func:`~qpv_geo.eligibility.engine_from_settings`,
        :func:`~qpv_geo.geocoding.geocoder_from_settings`, created only if a row needs it).
    progress
        Called with the number of rows just finished (an increment).

    Returns
    -------
    BatchResult
        Same rows in the same order, every input column kept, plus :data:`OUTPUT_COLUMNS`.
    """
    settings = settings or Settings.from_env()
    if engine is None:
        from qpv_geo.eligibility import engine_from_settings

        engine = engine_from_settings(settings)
    state = _Geocoding(geocoder, settings)
    parts = [_validate_chunk(frame.iloc[i:i + CHUNK_ROWS], mapping, engine, state, progress)
             for i in range(0, max(len(frame), 1), CHUNK_ROWS)]
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    summary = _Summary(engine, mapping)
    summary.add(out)
    skipped = frame.attrs.get("lignes_titre_ignorees")
    return BatchResult(frame=out, summary=summary.result(geocodeur=state.name,
                                                         titre_ignore=skipped),
                       mapping=mapping)


def _output_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Input columns, renamed only when they collide with an output column."""
    renames = {c: f"{c} (source)" for c in frame.columns if c in OUTPUT_COLUMNS}
    out = frame.rename(columns=renames) if renames else frame.copy()
    return out.reset_index(drop=True)


def _validate_chunk(frame: pd.DataFrame, mapping: ColumnMapping, engine: Engine,
                    geocoding: _Geocoding, progress: Callable[[int], None] | None
                    ) -> pd.DataFrame:
    from qpv_geo.geocoding import AddressQuery

    n = len(frame)
    if frame.index.name == "ligne":
        ligne = frame.index.to_numpy(np.int64)
    else:
        ligne = np.arange(n, dtype=np.int64) + 2
    pre = np.full(n, "", dtype=object)  # reasons found before judging

    def add(mask: np.ndarray, text: Any) -> None:
        if not np.any(mask):
            return
        sep = np.where(pre[mask] == "", "", " ; ")
        pre[mask] = pre[mask] + sep + text

    if EXTRA_COLUMN in frame.columns:
        extra = _text(frame, EXTRA_COLUMN)
        has_extra = extra != ""
        add(has_extra, "ligne irrégulière, " + extra[has_extra].astype(str))

    # Coordinates given in the file.
    kind = np.zeros(n, dtype=np.int8)  # 0 none, 1 lon/lat, 2 Lambert-93 x/y
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    for role_a, role_b, label, code in (("lon", "lat", ("longitude", "latitude"), 1),
                                        ("x", "y", ("x", "y"), 2)):
        col_a, col_b = getattr(mapping, role_a), getattr(mapping, role_b)
        if not (col_a and col_b):
            continue
        va, bad_a = parse_numbers(frame[col_a])
        vb, bad_b = parse_numbers(frame[col_b])
        free = kind == 0
        for bad, col, name in ((bad_a, col_a, label[0]), (bad_b, col_b, label[1])):
            m = bad & free
            add(m, f"{name} illisible (colonne « {col} ») : « "
                + _text(frame, col)[m].astype(str) + " »")
        both = free & ~np.isnan(va) & ~np.isnan(vb)
        one = free & (np.isnan(va) != np.isnan(vb))
        add(one, f"{label[0]} ou {label[1]} manquante (colonnes « {col_a} » / « {col_b} »)")
        kind[both] = code
        a[both], b[both] = va[both], vb[both]

    # What the engine would say of those coordinates: unusable ones give way to an address.
    reason = np.zeros(n, dtype=np.int8)
    ll = kind == 1
    xy = kind == 2
    if ll.any():
        reason[ll] = Engine.check_lonlat(a[ll], b[ll])
    if xy.any():
        reason[xy] = Engine.check_xy(a[xy], b[xy])

    adresse = _text(frame, mapping.adresse)
    cp = _text(frame, mapping.code_postal)
    commune = _text(frame, mapping.commune)
    has_address = (adresse != "") | (cp != "") | (commune != "")
    use_coords = (kind > 0) & ((reason == 0) | ~has_address)
    geocode_rows = np.flatnonzero(~use_coords & has_address)
    add(use_coords & has_address, "coordonnées du fichier utilisées ; l'adresse n'est pas "
        "géocodée")
    fallback = (kind > 0) & ~use_coords
    if fallback.any():
        from qpv_geo.eligibility import _BAD_REASONS

        why = np.array([_BAD_REASONS.get(int(r), "coordonnées inutilisables")
                        for r in reason[fallback]], dtype=object)
        add(fallback, "coordonnées du fichier inutilisables (" + why + ") : adresse géocodée "
            "à la place")
    add((kind == 0) & ~has_address & (pre == ""), "ni adresse ni coordonnées sur cette ligne")

    # Geocoding.
    geocodes: list[GeocodeResult | None] = [None] * n
    if len(geocode_rows):
        queries = []
        for i in geocode_rows:
            if adresse[i]:
                queries.append(AddressQuery(adresse[i], postcode=cp[i] or None,
                                            city=commune[i] or None))
            else:  # postcode and/or commune only: the geocoder answers at the commune
                queries.append(AddressQuery(" ".join(p for p in (cp[i], commune[i]) if p)))
        results = geocoding.run(queries, progress)
        for i, r in zip(geocode_rows, results, strict=True):
            geocodes[i] = r

    # Judge: lon/lat rows (file or geocoder) in one call, Lambert-93 rows in another.
    lon = np.where(use_coords & (kind == 1), a, np.nan)
    lat = np.where(use_coords & (kind == 1), b, np.nan)
    for i in geocode_rows:
        g = geocodes[i]
        if g is not None and g.found:
            lon[i], lat[i] = g.lon, g.lat
    xy_rows = np.flatnonzero(use_coords & (kind == 2))
    verdict = engine.judge_lonlat(lon, lat, geocodes=geocodes)
    vcols = {c: verdict[c].to_numpy() for c in verdict.columns}
    if len(xy_rows):
        v_xy = engine.judge_xy(a[xy_rows], b[xy_rows])
        for c, arr in vcols.items():
            if c not in v_xy.columns:
                continue
            new = v_xy[c].to_numpy()
            arr = arr.astype(object) if arr.dtype != new.dtype else arr.copy()
            arr[xy_rows] = new
            vcols[c] = arr
    if progress:
        progress(n - len(geocode_rows))

    out = _output_frame(frame)
    out.insert(0, "ligne", ligne)
    gl = np.full(n, None, dtype=object)
    gs = np.full(n, np.nan)
    gp = np.full(n, None, dtype=object)
    gsrc = np.full(n, None, dtype=object)
    gsrc[use_coords & (kind == 1)] = SOURCE_COORDONNEES
    gsrc[use_coords & (kind == 2)] = SOURCE_COORDONNEES + " (Lambert-93)"
    for i in geocode_rows:
        g = geocodes[i]
        if g is not None:
            d = g.to_dict()
            gl[i], gp[i], gsrc[i] = d["geocodage_label"], d["geocodage_precision"], \
                d["geocodage_source"] or None
            gs[i] = d["geocodage_score"] if g.found else np.nan
    motifs = vcols["motifs"].astype(object).astype(str)
    both = (pre != "") & (motifs != "")
    motifs = np.where(both, pre + " ; " + motifs, np.where(pre != "", pre, motifs))
    status = vcols["status"].astype(object)
    labels = {s: STATUS_LABELS[s] for s in STATUSES}
    added: dict[str, Any] = {
        "geocodage_label": gl, "geocodage_score": gs, "geocodage_precision": gp,
        "geocodage_source": gsrc,
        "lon": vcols["lon"].astype(np.float64), "lat": vcols["lat"].astype(np.float64),
        "status": status,
        "statut_libelle": np.array([labels[s] for s in status], dtype=object),
    }
    for col in VERDICT_OUTPUT_COLUMNS[2:]:
        added[col] = motifs if col == "motifs" else vcols[col]
    if mapping.priorite:
        raw = frame[mapping.priorite].astype(object).where(frame[mapping.priorite].notna(), "")
        uniques = {v: normalize_priorite(v) for v in pd.unique(raw)}
        added["priorite"] = raw.map(uniques).to_numpy(object)
    if mapping.porteur:
        added["porteur"] = _text(frame, mapping.porteur)
    if mapping.action:
        added["action"] = _text(frame, mapping.action)
    extra = pd.DataFrame(added)
    return pd.concat([out, extra], axis=1)


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------


class _Summary:
    """Counts accumulated chunk by chunk (a streamed run never holds every row)."""

    def __init__(self, engine: Engine, mapping: ColumnMapping) -> None:
        self.engine = engine
        self.mapping = mapping
        self.total = 0
        self.par_statut: Counter[str] = Counter()
        self.qpv: dict[str, dict[str, Any]] = {}
        self.prio: Counter[str] = Counter()
        self.prio_ok: Counter[str] = Counter()
        self.a_revoir: list[dict[str, Any]] = []
        self.a_revoir_total = 0
        self.demo = False
        self.lignes_vides = 0

    def add(self, out: pd.DataFrame) -> None:
        self.total += len(out)
        status = out["status"]
        self.par_statut.update(status.value_counts().to_dict())
        coded = out[out["code_qp"].notna()]
        for (code, lib, st), k in coded.groupby(["code_qp", "lib_qp", "status"],
                                                dropna=False).size().items():
            entry = self.qpv.setdefault(str(code), {"lib_qp": lib, "sites": 0, "eligibles": 0})
            entry["sites"] += int(k)
            if st == "eligible":
                entry["eligibles"] += int(k)
        if "priorite" in out.columns:
            self.prio.update(out["priorite"].value_counts().to_dict())
            self.prio_ok.update(out.loc[status == "eligible", "priorite"].value_counts()
                                .to_dict())
        review = out[status.isin(["a_verifier", "non_geocode"])]
        self.a_revoir_total += len(review)
        room = A_REVOIR_MAX - len(self.a_revoir)
        if room > 0 and len(review):
            keep = [c for c in ("ligne", "status", "porteur", "action", "motifs")
                    if c in review.columns]
            for rec in review[keep].head(room).to_dict("records"):
                self.a_revoir.append({k: (int(v) if k == "ligne" else v) for k, v in rec.items()})
        src = out["geocodage_source"]
        if not self.demo and bool(src.astype(str).str.contains("demo", regex=False).any()):
            self.demo = True

    def result(self, *, geocodeur: str | None = None, lignes_lues: int | None = None,
               titre_ignore: list[int] | None = None) -> dict[str, Any]:
        ref = self.engine.reference
        notes = list(ref.notes)
        if self.demo:
            notes.insert(0, "DÉMONSTRATION — adresses fictives (fichier d'adresses de "
                         "démonstration), aucune valeur officielle")
        prio = {k: {"label": label_of(k), "sites": int(v), "eligibles": int(self.prio_ok[k])}
                for k, v in sorted(self.prio.items(), key=lambda kv: (-kv[1], kv[0]))}
        summary: dict[str, Any] = {
            "total": int(self.total),
            "lignes_lues": int(self.total if lignes_lues is None else lignes_lues),
            "par_statut": {s: int(self.par_statut.get(s, 0)) for s in STATUSES},
            "par_qpv": {k: self.qpv[k] for k in sorted(self.qpv)},
            "par_priorite": prio,
            "a_revoir": self.a_revoir,
            "a_revoir_total": int(self.a_revoir_total),
            "notes": notes,
            "donnees": ref.version,
            "colonnes": self.mapping.as_dict(),
            "geocodeur": geocodeur,
            "marge_m": self.engine.marge_m,
            "lignes_vides_ignorees": int(self.lignes_vides),
        }
        if titre_ignore:
            summary["lignes_titre_ignorees"] = [int(v) for v in titre_ignore]
        return summary


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# One call: file in, file out
# ---------------------------------------------------------------------------------------------


def _rich_progress(total: int | None) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class _Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} lignes/s".replace(",", " ") if speed else "— lignes/s")

    return Progress(TextColumn("[bold]Validation"), BarColumn(), MofNCompleteColumn(),
                    _Rate(), TimeElapsedColumn(), TextColumn("reste"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)


def validate_file(path: str | Path, output: str | Path | None = None, *,
                  settings: Settings | None = None, geocoder_name: str | None = None,
                  sheet: str | int | None = None,
                  mapping_overrides: dict[str, str | None] | None = None,
                  sep: str = ";", encoding: str | None = None, input_sep: str | None = None,
                  progress: bool = True,
                  geocoder: Geocoder | None = None,
                  on_mapping: Callable[[ColumnMapping, list[str]], None] | None = None,
                  ) -> BatchResult:
    """Read, validate and (if ``output`` is given) write a sites file, chunk by chunk.

    A CSV input written to a CSV output is streamed in chunks of :data:`CHUNK_ROWS` rows:
    memory stays bounded whatever the file's length. ``progress`` shows a rich progress bar
    (rows/s, remaining time) on stderr. ``on_mapping`` is called with the mapping and the
    columns once the header is read (the CLI prints it). ``sep`` is the output separator;
    ``input_sep`` and ``encoding`` force how the input CSV is read (detected otherwise).
    """
    settings = settings or Settings.from_env()
    from qpv_geo.eligibility import engine_from_settings

    engine = engine_from_settings(settings)
    source = _open(path, sheet=sheet, encoding=encoding, sep=input_sep)
    kind = _kind_of(Path(output)) if output is not None else None
    stream = kind == "csv"
    state = _Geocoding(geocoder, settings, geocoder_name)
    writer = _CsvWriter(Path(output), sep) if stream and output is not None else None
    kept: list[pd.DataFrame] = []
    kept_rows = 0
    summary: _Summary | None = None
    mapping: ColumnMapping | None = None
    bar = _rich_progress(source.estimated_rows) if progress else None
    task = None
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task("validation", total=source.estimated_rows)

        def advance(k: int) -> None:
            if bar is not None and task is not None:
                bar.advance(task, k)

        for chunk, empty in _frames(source, CHUNK_ROWS):
            if mapping is None:
                mapping = _mapping_for(source, chunk, mapping_overrides)
                summary = _Summary(engine, mapping)
                if on_mapping is not None:
                    on_mapping(mapping, source.columns)
            assert summary is not None
            summary.lignes_vides += empty
            if len(chunk) == 0:
                continue
            out = _validate_chunk(chunk, mapping, engine, state, advance)
            summary.add(out)
            if writer is not None:
                writer.write(out)
            kept_rows += len(out)
            if not stream or kept_rows <= KEEP_FRAME_MAX:
                kept.append(out)
            else:
                kept = [out.iloc[0:0]]  # too many to hold: the rows are in the output only
        if bar is not None and task is not None:
            bar.update(task, total=summary.total if summary else 0,
                       completed=summary.total if summary else 0)
    finally:
        if bar is not None:
            bar.stop()
        if source.closer:
            source.closer()
        if writer is not None:
            writer.close()
    assert mapping is not None and summary is not None
    result_summary = summary.result(geocodeur=state.name, titre_ignore=source.skipped_above)
    streamed = stream and kept_rows > KEEP_FRAME_MAX
    if streamed:
        frame = kept[0].iloc[0:0]
    else:
        frame = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    result = BatchResult(frame=frame, summary=result_summary, mapping=mapping, streamed=streamed)
    if output is None:
        return result
    out_path = Path(output)
    if writer is not None:
        result.summary["lignes_ecrites"] = writer.rows
        result.paths = [out_path, *_write_summary_files(result.summary, out_path, sep)]
    else:
        result.paths = write_result(result, out_path, sep=sep)
    return result


# ---------------------------------------------------------------------------------------------
# Reading a batch output back
# ---------------------------------------------------------------------------------------------


def read_validated(path: str | Path) -> pd.DataFrame:
    """Read a batch output (CSV, XLSX, GeoJSON, GPKG) back, numbers as numbers.

    Raises :class:`InputFileError` if the file is not a batch output (it lacks ``status``,
    ``code_qp`` or ``ligne``): validate it first with :func:`validate_file`.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    kind = _kind_of(path) if path.suffix.lower() not in {".txt", ".tsv", ".tab"} else "csv"
    if kind in ("geojson", "gpkg"):
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # pyogrio raises several error types for unreadable files
            raise InputFileError(f"Impossible de lire {path.name} ({exc}).",
                                 hint="Formats acceptés : GeoJSON, GeoPackage.") from exc
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    else:
        sheet = "sites" if kind == "xlsx" and _has_sheet(path, "sites") else None
        source = _open(path, sheet=sheet)
        try:
            frame = pd.concat([f for f, _ in _frames(source, sys.maxsize)])
        finally:
            if source.closer:
                source.closer()
        frame = frame.reset_index(drop=True)
    missing = [c for c in VALIDATED_MARKERS if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path.name} n'est pas une sortie de qpv-geo batch (colonnes absentes : "
            f"{', '.join(missing)}).",
            hint=f"Validez-le d'abord : qpv-geo batch {path.name} -o resultat.csv")
    for col in NUMERIC_COLUMNS:
        if col in frame.columns and not pd.api.types.is_numeric_dtype(frame[col].dtype):
            frame[col] = parse_numbers(frame[col])[0]
    if "ligne" in frame.columns:
        frame["ligne"] = pd.to_numeric(frame["ligne"], errors="coerce").astype("Int64")
    for col in frame.columns:
        if col not in NUMERIC_COLUMNS and pd.api.types.is_object_dtype(frame[col].dtype):
            frame[col] = frame[col].where(frame[col] != "", None)
    return frame


def _has_sheet(path: Path, name: str) -> bool:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True)
    except Exception:  # unreadable: _open says why
        return False
    try:
        return name in wb.sheetnames
    finally:
        wb.close()


__all__ = [
    "EXTRA_COLUMN",
    "GEOCODING_COLUMNS",
    "OUTPUT_COLUMNS",
    "ROLES",
    "VERDICT_OUTPUT_COLUMNS",
    "BatchResult",
    "ColumnMapping",
    "detect_columns",
    "fold_name",
    "neutralize_cells",
    "parse_numbers",
    "read_sites",
    "read_validated",
    "validate_file",
    "validate_sites",
    "write_result",
]
