"""Column roles of a sites file: name folding, role detection, :class:`ColumnMapping`, and
reading numbers as people type them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qpv_geo.exceptions import InputFileError

#: Roles a source column can play, in the order of :meth:`ColumnMapping.describe`.
ROLES = ("adresse", "code_postal", "commune", "lat", "lon", "x", "y", "priorite", "porteur",
         "action", "precision_point")
#: The roles a person can choose a column for, with their label (the web page's column choice,
#: the table « Colonnes reconnues » of the command line).
COLUMN_ROLE_LABELS = {
    "adresse": "Adresse",
    "code_postal": "Code postal",
    "commune": "Commune",
    "lat": "Latitude (WGS84)",
    "lon": "Longitude (WGS84)",
    "x": "X Lambert-93",
    "y": "Y Lambert-93",
    "priorite": "Priorité",
    "porteur": "Porteur",
    "action": "Action",
    "precision_point": "Précision du point (m)",
}
#: Geocoding columns of the output.
GEOCODING_COLUMNS = ("geocodage_label", "geocodage_score", "geocodage_precision",
                     "geocodage_source")
#: Verdict columns of the output (from the engine, plus the plain-French label of the status).
VERDICT_OUTPUT_COLUMNS = (
    "status", "statut_libelle", "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m",
    "marge_m", "marge_motif", "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m", "motifs",
    "donnees",
)
#: Columns added when the matching role was detected (normalised values).
ROLE_OUTPUT_COLUMNS = ("priorite", "porteur", "action")
#: Every column the batch adds (``ligne`` first, then after the input columns, the rest).
OUTPUT_COLUMNS = ("ligne", *GEOCODING_COLUMNS, "lon", "lat", *VERDICT_OUTPUT_COLUMNS,
                  *ROLE_OUTPUT_COLUMNS)
#: Numeric output columns (written as numbers, never neutralised).
NUMERIC_COLUMNS = ("ligne", "geocodage_score", "lon", "lat", "distance_bord_m", "marge_m",
                   "distance_qp_proche_m")
#: Columns that mark a file as already validated (see :func:`read_validated`).
VALIDATED_MARKERS = ("status", "code_qp", "ligne")
#: Column holding the cells of a row beyond the header's width (ragged rows).
EXTRA_COLUMN = "colonnes en trop"
#: Column holding why a row was read with a problem (unclosed quote, cell cut, NUL removed…).
PROBLEM_COLUMN = "problème de lecture"

_SPACES = re.compile(r"[\s\u00a0\u202f]+")


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
                "lieu de l action", "lieu de realisation", "adresse de realisation",
                "lieu de realisation de l action", "lieu d intervention", "lieux",
                "street", "street address", "rue", "voie"),
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
    "precision_point": ("precision point", "precision du point", "precision position",
                        "precision de la position", "precision m", "precision gps",
                        "incertitude", "incertitude m", "incertitude position"),
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
    if w & {"adresse", "adresses", "address", "addr", "rue", "voie", "lieu", "lieux"}:
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
    precision_point: str | None = None

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
        if c in taken or c in (EXTRA_COLUMN, PROBLEM_COLUMN):
            continue
        role = _role_by_words(folded[c])
        if role and role not in chosen and role not in overrides:
            chosen[role] = c
            taken.add(c)
    return ColumnMapping(**chosen)


def check_mapping(mapping: ColumnMapping, columns: Sequence[str], name: str,
                   overrides: dict[str, str | None] | None = None) -> None:
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
    given = {r for r, v in (overrides or {}).items() if v is not None and str(v).strip()}
    if not (mapping.adresse or mapping.has_lonlat or mapping.has_xy) and not given:
        found = ", ".join(f"{getattr(mapping, r)} ({r.replace('_', ' ')})"
                          for r in ("code_postal", "commune") if getattr(mapping, r))
        raise InputFileError(
            f"{name} : ni colonne d'adresse ni colonnes de coordonnées reconnues (seulement "
            f"{found}) : chaque site serait placé au hasard dans sa commune. Colonnes "
            f"présentes : {', '.join(map(str, columns))}.",
            hint="Indiquez la colonne de l'adresse : --col-adresse NOM (ou les coordonnées : "
            "--col-lat NOM --col-lon NOM) ; pour accepter une localisation à la commune, "
            "indiquez-la explicitement : --col-commune NOM.")


# ---------------------------------------------------------------------------------------------
# Numbers and text cells
# ---------------------------------------------------------------------------------------------


def _stripped(values: pd.Series) -> np.ndarray:
    """Cells as stripped text, "" for missing ones (``astype(str).str.strip()``, without
    pandas' per-cell string machinery)."""
    vals = values.to_numpy(object)
    if pd.api.types.infer_dtype(vals, skipna=False) not in ("string", "empty"):
        missing = pd.isna(vals)
        vals = np.array(["" if m else str(v) for v, m in zip(vals, missing, strict=True)],
                        dtype=object)
    out = np.empty(len(vals), dtype=object)
    out[:] = [v.strip() for v in vals]
    return out


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as people type them (``45,43``, ``45.43``, ``808 000``, ``1.234,5``).

    Returns ``(numbers, unreadable)``: NaN for empty or unreadable cells, and a mask of the
    non-empty cells that are not numbers.
    """
    parsed = _plain_numbers(values)
    numbers, empty = parsed if parsed is not None else _typed_numbers(values)
    numbers[~np.isfinite(numbers)] = np.nan
    numbers += 0.0  # « -0 » is 0 (pandas reads it as the integer 0 in a column of integers)
    return numbers, np.isnan(numbers) & ~empty


def _typed_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of any column, as typed (spaces, « 1.234,5 », « 808 000 », « −4 »), and
    its empty cells: pandas reads what it can, Python's ``float`` the rest."""
    text = _stripped(values)
    empty = text == ""
    dotted = pd.Series([t.replace(",", ".") for t in text], dtype=object)
    numbers = np.array(pd.to_numeric(dotted, errors="coerce"), dtype=np.float64)
    retry = np.flatnonzero(np.isnan(numbers) & ~empty)
    for i in retry:
        s = _SPACES.sub("", text[i]).replace("\u2212", "-")
        if "," in s and "." in s:
            s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else \
                s.replace(",", "")
        try:
            numbers[i] = float(s.replace(",", "."))
        except ValueError:
            continue
    return numbers, empty


def _plain_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The numbers and empty cells of a column whose every cell is empty or a plain decimal
    number (« 45,43 », « -4.5 », « 1e3 »): Arrow parses the whole column at C speed. None as
    soon as one cell is anything else (spaces, « 1.234,5 », text, a number stored as a
    number): :func:`_typed_numbers` reads that column. Arrow's parser accepts a subset of
    what Python's ``float`` accepts and rounds as it does (correctly)."""
    if len(values) < 64:
        return None
    try:
        cells = pa.array(values.to_numpy(object), type=pa.string(), from_pandas=True)
        cells = pc.fill_null(cells, "")
        empty = pc.equal(cells, "")
        dotted = pc.if_else(empty, pa.scalar(None, pa.string()),
                            pc.replace_substring(cells, ",", "."))
        numbers = pc.cast(dotted, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return np.array(numbers, dtype=np.float64), empty.to_numpy(zero_copy_only=False)


def column_text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if not column:
        return np.full(len(frame), "", dtype=object)
    return _stripped(frame[column])


class CellTexts:
    """:func:`column_text` of one frame's columns, each stripped once: a chunk asks for the
    same columns several times (rows outside the table, duplicates, places). The arrays are
    shared: read them, never change them in place."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._done: dict[str, np.ndarray] = {}

    def __call__(self, column: str | None) -> np.ndarray:
        if not column:
            return np.full(len(self.frame), "", dtype=object)
        if column not in self._done:
            self._done[column] = column_text(self.frame, column)
        return self._done[column]
