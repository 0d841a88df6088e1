"""Geocoding: postal addresses → WGS84 points, with a precision and a score.

One protocol (:class:`Geocoder`), one result type (:class:`GeocodeResult`), two engines:

* :class:`LocalGeocoder` (default, offline): an index of a BAN-format address file restricted
  to the 53 communes of Saint-Étienne Métropole, built once into the cache directory and
  rebuilt when the file's sha256 changes. Without an installed BAN file it uses the shipped
  *demonstration* file (synthetic addresses, ``source="local-demo"``).
* :class:`BanGeocoder` (online): the BAN / Géoplateforme service (``/search`` and
  ``/search/csv``), with retries, a rate limit and a persistent per-address cache.

:func:`reliability_issues` says why a point is not good enough for a confident verdict.
A failure for one address is a result with ``found`` False and a ``motif``; exceptions are for
failures of the whole service (:class:`~qpv_geo.exceptions.GeocoderUnavailable`, …).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from qpv_geo._files import sha256_file
from qpv_geo.exceptions import (
    DownloadError,
    GeocoderNotConfigured,
    GeocoderUnavailable,
    InputFileError,
)
from qpv_geo.settings import Settings

#: Precisions, from the best to the coarsest (the BAN's ``type``).
PRECISIONS = ("housenumber", "street", "locality", "municipality")

#: Columns of the BAN « adresses » CSV (``;``-separated, UTF-8), in the published order.
BAN_CSV_COLUMNS = (
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom", "certification_commune", "cad_parcelles",
)
#: Columns the local geocoder needs (a file without them is refused).
BAN_CSV_REQUIRED = ("numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
                    "lon", "lat")
_BAN_CSV_USED = (*BAN_CSV_REQUIRED, "nom_ld", "nom_ancienne_commune")

DEMO_FILE = "adresses-demo-sem.csv.gz"
INSTALLED_FILE = "adresses-sem.csv.gz"
_INDEX_VERSION = 1

MOTIF_DEMO = "adresse de démonstration (fichier d'adresses fictif)"


# ---------------------------------------------------------------------------------------------
# Result and query types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeocodeResult:
    """The point found for one address (or why none was found)."""

    query: str
    lon: float | None
    lat: float | None
    label: str | None = None
    score: float = 0.0
    precision: str | None = None
    citycode: str | None = None
    postcode: str | None = None
    source: str = ""
    motif: str | None = None

    @property
    def found(self) -> bool:
        """True when the result has a point."""
        return self.lon is not None and self.lat is not None

    def to_dict(self) -> dict[str, Any]:
        """Output columns (public API): ``geocodage_*``, ``lon``, ``lat`` (+ motif)."""
        d: dict[str, Any] = {
            "geocodage_label": self.label,
            "geocodage_score": round(float(self.score), 3),
            "geocodage_precision": self.precision,
            "geocodage_source": self.source,
            "geocodage_citycode": self.citycode,
            "geocodage_postcode": self.postcode,
            "lon": self.lon,
            "lat": self.lat,
        }
        if self.motif is not None:
            d["geocodage_motif"] = self.motif
        return d


@dataclass(frozen=True)
class AddressQuery:
    """An address split in columns, as batch files often give it."""

    adresse: str
    postcode: str | None = None
    city: str | None = None
    citycode: str | None = None

    def text(self) -> str:
        """One line: ``adresse postcode city``."""
        return " ".join(p.strip() for p in (self.adresse, self.postcode or "", self.city or "")
                        if p and p.strip())


@runtime_checkable
class Geocoder(Protocol):
    """What every geocoder offers."""

    name: str

    def geocode(self, query: str | AddressQuery) -> GeocodeResult: ...

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]: ...


def _as_query(query: str | AddressQuery) -> AddressQuery:
    if isinstance(query, AddressQuery):
        return query
    return AddressQuery(adresse="" if query is None else str(query))


def _query_text(query: str | AddressQuery) -> str:
    return query.text() if isinstance(query, AddressQuery) else ("" if query is None
                                                                 else str(query))


def not_found(query: str | AddressQuery, motif: str, *, source: str) -> GeocodeResult:
    """A result without a point, with its French reason."""
    return GeocodeResult(query=_query_text(query), lon=None, lat=None, source=source, motif=motif)


_PRECISION_ISSUES = {
    "street": "géocodé à la rue seulement",
    "locality": "géocodé au lieu-dit seulement",
    "municipality": "géocodé à la commune seulement",
}


def reliability_issues(result: GeocodeResult, *, score_min: float) -> list[str]:
    """French reasons that make a verdict « à vérifier »; empty list = reliable point.

    Reliable means: found, ``housenumber`` precision and ``score >= score_min``. A point from
    the demonstration address file is not judged here: like demonstration perimeters, it is
    marked on every output (``result.source == "local-demo"``, :data:`MOTIF_DEMO`).
    """
    if not result.found:
        return [result.motif or "adresse non trouvée"]
    issues: list[str] = []
    if result.precision != "housenumber":
        issues.append(_PRECISION_ISSUES.get(
            result.precision or "", f"précision du géocodage inconnue ({result.precision})"))
    if result.score < score_min:
        issues.append(f"score {result.score:.2f} < {score_min:.2f}")
    return issues


def geocoder_from_settings(settings: Settings | None = None, name: str | None = None) -> Geocoder:
    """The geocoder named ``name`` (default ``settings.geocoder``): ``local`` or ``ban``."""
    settings = settings or Settings.from_env()
    name = (name or settings.geocoder or "local").strip().lower()
    if name == "local":
        return LocalGeocoder.from_settings(settings)
    if name == "ban":
        return BanGeocoder.from_settings(settings)
    raise GeocoderNotConfigured(f"Géocodeur inconnu : « {name} ».",
                                hint="Choisissez local (hors ligne) ou ban (service en ligne).")


# ---------------------------------------------------------------------------------------------
# Text normalisation (shared by the index and the queries)
# ---------------------------------------------------------------------------------------------

#: What people abbreviate, → the word of the address file (after accent stripping).
ABBREVIATIONS = {
    "r": "rue", "ru": "rue", "bd": "boulevard", "bld": "boulevard", "blvd": "boulevard",
    "boul": "boulevard", "bvd": "boulevard", "av": "avenue", "ave": "avenue", "aven": "avenue",
    "pl": "place", "plc": "place", "ch": "chemin", "chem": "chemin", "chm": "chemin",
    "imp": "impasse", "all": "allee", "al": "allee", "rte": "route", "rt": "route",
    "qu": "quai", "crs": "cours", "sq": "square", "pas": "passage", "pass": "passage",
    "psg": "passage", "mte": "montee", "fg": "faubourg", "fbg": "faubourg", "lot": "lotissement",
    "lots": "lotissement", "res": "residence", "resid": "residence", "sent": "sentier",
    "hameau": "hameau", "ham": "hameau", "rpt": "rond point", "ld": "lieu dit",
    "st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes",
    "gal": "general", "gen": "general", "mal": "marechal", "mar": "marechal",
    "pdt": "president", "pres": "president", "dr": "docteur", "doc": "docteur",
    "pr": "professeur", "prof": "professeur", "cdt": "commandant", "cne": "capitaine",
    "lt": "lieutenant", "ct": "comte", "mgr": "monseigneur", "n": "notre", "nd": "notre dame",
    "cite": "cite", "esp": "esplanade", "prom": "promenade", "tse": "traverse",
    "vla": "villa", "zi": "zone industrielle", "za": "zone artisanale", "zac": "zac",
}
#: Words that carry no identity (dropped from the matching keys).
STOP_WORDS = frozenset({"de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux",
                        "en", "sur", "sous", "lez"})
#: Words that start a street name (the house number is just before one of them).
STREET_TYPES = frozenset({
    "rue", "avenue", "boulevard", "place", "chemin", "impasse", "allee", "route", "quai",
    "cours", "square", "passage", "montee", "faubourg", "lotissement", "residence", "sentier",
    "hameau", "rond", "voie", "promenade", "esplanade", "parvis", "traverse", "ruelle",
    "venelle", "clos", "domaine", "carrefour", "cite", "villa", "zone", "parc",
    "galerie", "rampe", "escalier", "sente", "vc", "cr", "lieu",
})
#: Repetition indices (``rep`` of the BAN), with their short forms.
REPETITIONS = {"bis": "bis", "b": "bis", "ter": "ter", "t": "ter", "quater": "quater",
               "qua": "quater", "q": "quater", "quinquies": "quinquies", "c": "c", "d": "d",
               "a": "a", "e": "e", "f": "f"}
#: Words before a house number that are not part of the address (flat, building, …).
_NOISE_BEFORE_NUMBER = frozenset({"appartement", "appt", "apt", "app", "batiment", "bat",
                                  "etage", "porte", "escalier", "esc", "bp", "cs", "logement",
                                  "log", "chez", "box", "lot", "n", "no", "numero"})

_NUMBER_RE = re.compile(r"^(\d{1,4})(bis|ter|quater|quinquies|[a-f]|b|t|q)?$")
_POSTCODE_RE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8]|2[ab])\d{3}$")


def strip_accents(text: str) -> str:
    """Accents removed (NFKD), ligatures spelled out."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation → spaces, single spaces."""
    text = strip_accents(str(text or "")).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def tokens(text: str) -> list[str]:
    """Normalised words, abbreviations expanded (« St-Etienne » → ``saint etienne``)."""
    out: list[str] = []
    for word in normalize(text).split():
        out.extend(ABBREVIATIONS.get(word, word).split())
    # « 12b » / « 12bis » → « 12 bis »: the number and its repetition index apart
    split: list[str] = []
    for word in out:
        m = _NUMBER_RE.match(word)
        if m and m.group(2):
            split.extend((m.group(1), REPETITIONS.get(m.group(2), m.group(2))))
        else:
            split.append(word)
    return split


def match_key(text: str) -> str:
    """Key used to compare names: :func:`tokens` without stop words."""
    return " ".join(t for t in tokens(text) if t not in STOP_WORDS)


# ---------------------------------------------------------------------------------------------
# Where the address files are
# ---------------------------------------------------------------------------------------------


def _package_data_dir(kind: str) -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / kind, here.parent / "data" / kind):
        if candidate.is_dir():
            return candidate
    return here.parent / "data" / kind


def demo_adresses_path() -> Path:
    """The shipped demonstration address file (synthetic)."""
    return _package_data_dir("adresses") / DEMO_FILE


def installed_adresses_dir(settings: Settings) -> Path:
    """Where ``import-adresses`` / ``data update --adresses`` install a real BAN file."""
    return settings.data_dir / "adresses"


@dataclass(frozen=True)
class CommuneSem:
    """One of the 53 communes of SEM (from ``data/reference/communes_sem.csv``)."""

    insee: str
    nom: str
    postcodes: tuple[str, ...]


def communes_sem() -> list[CommuneSem]:
    """The communes of Saint-Étienne Métropole with their postcodes."""
    path = _package_data_dir("reference") / "communes_sem.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        return [CommuneSem(r["insee_com"], r["nom"], tuple(p for p in r["codes_postaux"].split(";")
                                                           if p))
                for r in csv.DictReader(fh)]


# ---------------------------------------------------------------------------------------------
# Local geocoder: index
# ---------------------------------------------------------------------------------------------

_STREET, _LOCALITY = 0, 1


def _read_ban_csv(path: Path, *, insee: Iterable[str] | None = None) -> Any:
    """Read a BAN CSV (plain or gzip) as strings, checking the header; optionally keep communes."""
    import pandas as pd

    path = Path(path)
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            header = fh.readline().rstrip("\r\n").split(";")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).",
                             hint="Donnez le fichier « adresses-42.csv.gz » de la BAN "
                             "(séparateur ;, UTF-8).") from exc
    missing = [c for c in BAN_CSV_REQUIRED if c not in header]
    if missing:
        raise InputFileError(
            f"{path.name} n'est pas au format BAN CSV : colonnes manquantes "
            f"{', '.join(missing)} (en-tête lu : {';'.join(header[:8])}…).",
            hint="Téléchargez « adresses-42.csv.gz » sur adresse.data.gouv.fr (format csv, "
            "séparateur ;).")
    usecols = [c for c in _BAN_CSV_USED if c in header]
    try:
        df = pd.read_csv(path, sep=";", dtype=str, usecols=usecols, keep_default_na=False,
                         compression="gzip" if _is_gzip(path) else None, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).") from exc
    for c in _BAN_CSV_USED:
        if c not in df.columns:
            df[c] = ""
    if insee is not None:
        df = df[df["code_insee"].isin(set(insee))]
    return df


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def build_index(path: Path) -> dict[str, np.ndarray]:
    """Index arrays of an address file (SEM communes only): streets, addresses, communes."""
    import pandas as pd

    communes = communes_sem()
    df = _read_ban_csv(path, insee=[c.insee for c in communes])
    df = df.assign(
        num=pd.to_numeric(df["numero"], errors="coerce").fillna(0).astype(np.int32),
        lonf=pd.to_numeric(df["lon"], errors="coerce"),
        latf=pd.to_numeric(df["lat"], errors="coerce"),
        rep=df["rep"].map(lambda r: REPETITIONS.get(normalize(r), normalize(r))),
    )
    df = df[df["lonf"].notna() & df["latf"].notna() & (df["nom_voie"] != "")]
    df = df.sort_values(["code_insee", "nom_voie", "num", "rep"], kind="stable")
    df["sid"] = df.groupby(["code_insee", "nom_voie"], sort=False).ngroup().astype(np.int32)
    df = df.sort_values(["sid", "num", "rep"], kind="stable").reset_index(drop=True)
    grouped = df.groupby("sid", sort=True)
    first = grouped.head(1).set_index("sid")
    counts = grouped.size().to_numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    mid = starts + counts // 2
    s_name = first["nom_voie"].to_numpy(dtype=str)
    s_insee = first["code_insee"].to_numpy(dtype=str)
    s_postcode = grouped["code_postal"].agg(lambda s: s.mode().iat[0]).to_numpy(dtype=str)
    s_kind = np.array([_STREET if (match_key(n).split() or [""])[0] in STREET_TYPES
                       else _LOCALITY for n in s_name], dtype=np.int8)
    streets = {
        "s_name": s_name, "s_insee": s_insee, "s_postcode": s_postcode, "s_kind": s_kind,
        "s_start": starts, "s_end": starts + counts,
        "s_lon": df["lonf"].to_numpy()[mid], "s_lat": df["latf"].to_numpy()[mid],
    }
    # Lieux-dits named on addresses (nom_ld): a toponym at the centre of its addresses.
    ld = df[df["nom_ld"] != ""]
    if len(ld):
        g = ld.groupby(["code_insee", "nom_ld"], sort=True)
        agg = g.agg(lon=("lonf", "median"), lat=("latf", "median"),
                    postcode=("code_postal", lambda s: s.mode().iat[0])).reset_index()
        n = len(agg)
        streets = {
            "s_name": np.concatenate([s_name, agg["nom_ld"].to_numpy(dtype=str)]),
            "s_insee": np.concatenate([s_insee, agg["code_insee"].to_numpy(dtype=str)]),
            "s_postcode": np.concatenate([s_postcode, agg["postcode"].to_numpy(dtype=str)]),
            "s_kind": np.concatenate([s_kind, np.full(n, _LOCALITY, np.int8)]),
            "s_start": np.concatenate([starts, np.zeros(n, np.int64)]),
            "s_end": np.concatenate([starts + counts, np.zeros(n, np.int64)]),
            "s_lon": np.concatenate([streets["s_lon"], agg["lon"].to_numpy()]),
            "s_lat": np.concatenate([streets["s_lat"], agg["lat"].to_numpy()]),
        }
    streets["s_key"] = np.array([match_key(n) for n in streets["s_name"]], dtype=str)
    # Communes: point = median of their addresses (the shipped outline's centre otherwise).
    med = df.groupby("code_insee").agg(lon=("lonf", "median"), lat=("latf", "median"))
    c_lon, c_lat = [], []
    for c in communes:
        if c.insee in med.index:
            c_lon.append(float(med.at[c.insee, "lon"]))
            c_lat.append(float(med.at[c.insee, "lat"]))
        else:
            lon, lat = _commune_outline_point(c.insee)
            c_lon.append(lon)
            c_lat.append(lat)
    # Aliases: official name + former communes (« Saint-Victor-sur-Loire » → Saint-Étienne).
    alias_key, alias_insee = [], []
    for c in communes:
        alias_key.append(match_key(c.nom))
        alias_insee.append(c.insee)
    old = df[df["nom_ancienne_commune"] != ""][["nom_ancienne_commune", "code_insee"]]
    for name, code in old.drop_duplicates().itertuples(index=False):
        key = match_key(name)
        if key and key not in alias_key:
            alias_key.append(key)
            alias_insee.append(code)
    return {
        **streets,
        "a_num": df["num"].to_numpy(np.int32), "a_rep": df["rep"].to_numpy(dtype=str),
        "a_lon": df["lonf"].to_numpy(np.float64), "a_lat": df["latf"].to_numpy(np.float64),
        "a_postcode": df["code_postal"].to_numpy(dtype=str),
        "c_insee": np.array([c.insee for c in communes], dtype=str),
        "c_name": np.array([c.nom for c in communes], dtype=str),
        "c_postcodes": np.array([";".join(c.postcodes) for c in communes], dtype=str),
        "c_lon": np.array(c_lon), "c_lat": np.array(c_lat),
        "alias_key": np.array(alias_key, dtype=str),
        "alias_insee": np.array(alias_insee, dtype=str),
        "meta": np.array([json.dumps({"version": _INDEX_VERSION, "rows": len(df)})]),
    }


def _commune_outline_point(insee: str) -> tuple[float, float]:
    """A point inside the shipped outline of a commune (for communes without addresses)."""
    import shapely.geometry

    path = _package_data_dir("reference") / "communes_sem.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    for feat in data["features"]:
        if feat["properties"].get("insee_com") == insee:
            p = shapely.geometry.shape(feat["geometry"]).representative_point()
            return float(p.x), float(p.y)
    return float("nan"), float("nan")


# ---------------------------------------------------------------------------------------------
# Local geocoder: search
# ---------------------------------------------------------------------------------------------

#: Street similarity (0–100) under which a street is not accepted (search in all SEM or in the
#: communes of a postcode), and within the one commune named.
STREET_MIN = 72.0
STREET_MIN_IN_COMMUNE = 62.0
#: Similarity (0–100) of the names without their street types (« rue », « chemin »…).
NAME_MIN = 60.0
#: Commune-name similarity (0–100) needed to recognise a commune in the text.
COMMUNE_MIN = 88.0


@dataclass
class _Parsed:
    number: int | None = None
    rep: str = ""
    street: str = ""          # match key of the street part
    insee: str | None = None  # commune recognised (or given)
    commune_sim: float = 0.0  # 0–1
    commune_given: bool = False
    postcode: str | None = None
    extra: list[str] = field(default_factory=list)


class LocalGeocoder:
    """Offline geocoder over an index of a BAN-format address file (SEM only).

    Parameters
    ----------
    path
        The address file (BAN CSV, plain or gzip).
    cache_dir
        Where the index is written (``index-<sha256>.npz``); rebuilt when the file changes.
    demo
        True for the shipped demonstration file: every result has ``source="local-demo"``.
    """

    name = "local"

    def __init__(self, path: Path, *, cache_dir: Path, demo: bool = False,
                 sha256: str | None = None) -> None:
        from rapidfuzz import fuzz, process

        self._fuzz, self._process = fuzz, process
        self.path = Path(path)
        if not self.path.is_file():
            raise GeocoderNotConfigured(f"Fichier d'adresses introuvable : {self.path}.",
                                        hint="Installez le fichier BAN de la Loire : qpv-geo "
                                        "data update --adresses (ou data import-adresses).")
        self.demo = demo
        self.source = "local-demo" if demo else "local"
        self.sha256 = sha256 or sha256_file(self.path)
        self.index_path = Path(cache_dir) / "geocodage" / f"index-{self.sha256[:24]}.npz"
        self.build_seconds: float | None = None
        self._load_or_build()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalGeocoder:
        """The installed BAN file if there is one, else the demonstration file (cached)."""
        info = adresses_info(settings)
        key = (str(info["path"]), info.get("sha256"), str(settings.cache_dir))
        with _LOADED_LOCK:
            geocoder = _LOADED.get(key)
            if geocoder is None:
                geocoder = cls(Path(info["path"]), cache_dir=settings.cache_dir,
                               demo=bool(info["demo"]), sha256=info.get("sha256"))
                _LOADED.clear()
                _LOADED[key] = geocoder
        return geocoder

    # ------------------------------------------------------------------ index
    def _load_or_build(self) -> None:
        import time

        arrays: dict[str, np.ndarray] | None = None
        if self.index_path.is_file():
            try:
                with np.load(self.index_path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                if json.loads(str(arrays["meta"][0])).get("version") != _INDEX_VERSION:
                    arrays = None
            except (OSError, ValueError, KeyError):
                arrays = None
        if arrays is None:
            t0 = time.perf_counter()
            arrays = build_index(self.path)
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.index_path.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(self.index_path)
            self.build_seconds = time.perf_counter() - t0
        self._arrays = arrays
        a = arrays
        self.rows = int(json.loads(str(a["meta"][0]))["rows"])
        self.s_key: list[str] = a["s_key"].tolist()
        self.s_name: list[str] = a["s_name"].tolist()
        self.s_insee: list[str] = a["s_insee"].tolist()
        self.s_postcode: list[str] = a["s_postcode"].tolist()
        self.s_kind, self.s_start, self.s_end = a["s_kind"], a["s_start"], a["s_end"]
        self.s_lon, self.s_lat = a["s_lon"], a["s_lat"]
        self.a_num, self.a_rep = a["a_num"], a["a_rep"]
        self.a_lon, self.a_lat, self.a_postcode = a["a_lon"], a["a_lat"], a["a_postcode"]
        self.c_insee: list[str] = a["c_insee"].tolist()
        self.c_name: dict[str, str] = dict(zip(self.c_insee, a["c_name"].tolist(), strict=True))
        self.c_postcodes = {c: tuple(p.split(";")) for c, p in
                            zip(self.c_insee, a["c_postcodes"].tolist(), strict=True)}
        self.c_point = {c: (float(x), float(y)) for c, x, y in
                        zip(self.c_insee, a["c_lon"], a["c_lat"], strict=True)}
        self.alias_key: list[str] = a["alias_key"].tolist()
        self.alias_insee: list[str] = a["alias_insee"].tolist()
        self._by_commune: dict[str, np.ndarray] = {}
        insee_arr = a["s_insee"]
        for c in self.c_insee:
            self._by_commune[c] = np.flatnonzero(insee_arr == c)
        self._keys_by_commune = {c: [self.s_key[i] for i in idx]
                                 for c, idx in self._by_commune.items()}
        self._all_idx = np.arange(len(self.s_key))
        self._by_postcode: dict[str, list[str]] = {}
        for c, pcs in self.c_postcodes.items():
            for p in pcs:
                self._by_postcode.setdefault(p, []).append(c)

    @property
    def index_bytes(self) -> int:
        """Size of the index file on disk."""
        return self.index_path.stat().st_size if self.index_path.is_file() else 0

    # ------------------------------------------------------------------ parsing
    def _find_commune(self, words: list[str]) -> tuple[str | None, float, int, int]:
        """Commune named at the end (or start) of ``words``: (insee, sim 0–1, start, end)."""
        extract = self._process.extractOne
        n = len(words)
        best: tuple[str | None, float, int, int] = (None, 0.0, n, n)
        for k in range(min(5, n), 0, -1):
            for start in (n - k, 0) if n - k != 0 else (0,):
                text = " ".join(words[start:start + k])
                if len(text) < 3:
                    continue
                hit = extract(text, self.alias_key, scorer=self._fuzz.ratio,
                              score_cutoff=100.0 if len(text) < 6 else COMMUNE_MIN)
                if hit is not None and hit[1] / 100 > best[1] + 1e-9:
                    best = (self.alias_insee[hit[2]], hit[1] / 100, start, start + k)
            if best[1] >= 0.999:
                break
        return best

    def _commune_from_fields(self, q: AddressQuery) -> tuple[str | None, float]:
        if q.citycode and q.citycode.strip() in self.c_point:
            return q.citycode.strip(), 1.0
        if q.city and q.city.strip():
            words = [w for w in tokens(q.city) if w not in STOP_WORDS]
            insee, sim, start, end = self._find_commune(words)
            if insee is not None and start == 0 and end == len(words):
                return insee, sim
        return None, 0.0

    def _parse(self, q: AddressQuery) -> list[_Parsed]:
        """Hypotheses on the query: with the commune recognised in the text, and without."""
        words = tokens(q.adresse)
        postcode = (q.postcode or "").strip() or None
        rest: list[str] = []
        for w in words:
            if _POSTCODE_RE.match(w) and len(w) == 5:
                postcode = postcode or w
            else:
                rest.append(w)
        words = [w for w in rest if w not in STOP_WORDS]
        given, given_sim = self._commune_from_fields(q)
        hyps: list[tuple[str | None, float, list[str], bool]] = []
        if given is not None:
            # the commune may be repeated in the text: drop it there too
            insee, sim, start, end = self._find_commune(words)
            if insee == given and (start > 0 or end == len(words)):
                words = words[:start] + words[end:]
            hyps.append((given, given_sim, words, True))
        else:
            insee, sim, start, end = self._find_commune(words)
            if insee is not None:
                hyps.append((insee, sim, words[:start] + words[end:], False))
            hyps.append((None, 0.0, words, False))
        out = []
        for insee, sim, ws, is_given in hyps:
            number, rep, street = _split_number(ws)
            out.append(_Parsed(number=number, rep=rep, street=" ".join(street), insee=insee,
                               commune_sim=sim, commune_given=is_given, postcode=postcode))
        return out

    # ------------------------------------------------------------------ search
    def _street_scores(self, key: str, insees: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """(street indices, similarity 0–100) of the streets of these communes (or all)."""
        if insees is None:
            idx, choices = self._all_idx, self.s_key
        elif len(insees) == 1:
            idx = self._by_commune.get(insees[0], self._all_idx[:0])
            choices = self._keys_by_commune.get(insees[0], [])
        else:
            idx = np.concatenate([self._by_commune.get(c, self._all_idx[:0]) for c in insees])
            choices = [self.s_key[i] for i in idx]
        if len(idx) == 0:
            return idx, np.zeros(0)
        cdist = self._process.cdist
        a = cdist([key], choices, scorer=self._fuzz.token_sort_ratio, workers=1)[0]
        b = cdist([key], choices, scorer=self._fuzz.token_set_ratio, workers=1)[0]
        c = cdist([key], choices, scorer=self._fuzz.ratio, workers=1)[0]
        return idx, (0.4 * a + 0.3 * b + 0.3 * c).astype(np.float64)

    def _candidates(self, p: _Parsed, limit: int) -> list[tuple[float, int, float]]:
        """Best streets for a hypothesis: (score 0–1, street index, street sim 0–1)."""
        if not p.street:
            return []
        pc_communes = self._by_postcode.get(p.postcode or "", [])
        if p.insee is not None:
            scopes: list[list[str] | None] = [[p.insee]]
        elif pc_communes:
            scopes = [pc_communes, None]
        else:
            scopes = [None]
        out: list[tuple[float, int, float]] = []
        for scope in scopes:
            idx, sims = self._street_scores(p.street, scope)
            if len(idx) == 0:
                continue
            top = np.argsort(-sims, kind="stable")[:max(limit, 3)]
            floor = STREET_MIN_IN_COMMUNE if scope is not None and len(scope) == 1 else STREET_MIN
            name = _strip_types(p.street)
            for j in top:
                sim = float(sims[j])
                if sim < floor:
                    break
                i = int(idx[j])
                # the name itself must look alike, not just « rue » and a few letters
                other = _strip_types(self.s_key[i])
                if name and other and self._fuzz.token_set_ratio(name, other) < NAME_MIN:
                    continue
                out.append((self._street_score(p, i, sim / 100), i, sim / 100))
            if out and max(o[2] for o in out) >= 0.9:
                break
        out.sort(key=lambda o: -o[0])
        seen: set[int] = set()
        uniq = []
        for o in out:
            if o[1] not in seen:
                seen.add(o[1])
                uniq.append(o)
        return uniq[:limit]

    def _street_score(self, p: _Parsed, i: int, sim: float) -> float:
        """BAN-like score of a street for a hypothesis: name similarity × commune agreement."""
        insee = self.s_insee[i]
        if p.insee is not None:
            factor = p.commune_sim if insee == p.insee else 0.7
        elif p.postcode:
            # the street's own postcode first (42230 is shared by two communes)
            factor = (0.97 if self.s_postcode[i] == p.postcode else
                      0.95 if insee in self._by_postcode.get(p.postcode, ()) else 0.85)
        else:
            factor = 0.9
        if p.postcode and p.insee is not None and p.postcode not in self.c_postcodes.get(insee, ()):
            factor -= 0.05
        return sim * factor

    def _result_for(self, query: str, p: _Parsed, score: float, i: int) -> GeocodeResult:
        insee = self.s_insee[i]
        city = self.c_name.get(insee, "")
        start, end = int(self.s_start[i]), int(self.s_end[i])
        name = self.s_name[i]
        kind = "street" if self.s_kind[i] == _STREET else "locality"
        if p.number is not None and end > start:
            nums = self.a_num[start:end]
            lo = start + int(np.searchsorted(nums, p.number, side="left"))
            hi = start + int(np.searchsorted(nums, p.number, side="right"))
            if hi > lo:
                reps = self.a_rep[lo:hi].tolist()
                exact = reps.index(p.rep) if p.rep in reps else None
                j = lo + (exact if exact is not None else 0)
                penalty = 0.0 if exact is not None else 0.05
                rep = self.a_rep[j]
                label = f"{p.number}{' ' + rep if rep else ''} {name} {self.a_postcode[j]} {city}"
                return GeocodeResult(query, float(self.a_lon[j]), float(self.a_lat[j]),
                                     label=label, score=_clip(score - penalty),
                                     precision="housenumber", citycode=insee,
                                     postcode=str(self.a_postcode[j]), source=self.source)
            # Unknown number: interpolate between the neighbours of the same parity.
            point, motif = self._interpolate(start, end, p.number)
            if point is not None:
                return GeocodeResult(query, point[0], point[1],
                                     label=f"{name} {self.s_postcode[i]} {city}",
                                     score=_clip(score * 0.9), precision="street",
                                     citycode=insee, postcode=self.s_postcode[i],
                                     source=self.source, motif=motif)
            motif = (f"numéro {p.number} absent du fichier d'adresses : point au milieu de "
                     "la voie")
        else:
            motif = None
            if p.number is not None:
                motif = f"numéro {p.number} inconnu pour ce lieu-dit : point du lieu-dit"
        return GeocodeResult(query, float(self.s_lon[i]), float(self.s_lat[i]),
                             label=f"{name} {self.s_postcode[i]} {city}", score=_clip(score * 0.9
                             if p.number is not None else score), precision=kind,
                             citycode=insee, postcode=self.s_postcode[i], source=self.source,
                             motif=motif)

    def _interpolate(self, start: int, end: int, number: int
                     ) -> tuple[tuple[float, float] | None, str | None]:
        nums = self.a_num[start:end]
        same = np.flatnonzero((nums % 2) == (number % 2))
        if len(same) < 2:
            return None, None
        vals = nums[same]
        if not (vals < number).any() or not (vals > number).any():
            return None, None
        # the plain number (no bis/ter) of each neighbour: it sorts first
        jb = start + int(same[vals == vals[vals < number].max()][0])
        ja = start + int(same[vals == vals[vals > number].min()][0])
        nb, na = int(self.a_num[jb]), int(self.a_num[ja])
        if na - nb > 40:
            return None, None
        t = (number - nb) / (na - nb)
        lon = float(self.a_lon[jb] + t * (self.a_lon[ja] - self.a_lon[jb]))
        lat = float(self.a_lat[jb] + t * (self.a_lat[ja] - self.a_lat[jb]))
        return (lon, lat), (f"numéro {number} absent du fichier d'adresses : position "
                            f"interpolée entre le {nb} et le {na}")

    def _municipality(self, query: str, insee: str, sim: float, motif: str | None = None,
                      postcode: str | None = None) -> GeocodeResult:
        lon, lat = self.c_point[insee]
        pcs = self.c_postcodes.get(insee, ())
        if postcode in pcs:  # the postcode typed, when it is one of the commune's
            pcs = (postcode, *[p for p in pcs if p != postcode])
        return GeocodeResult(query, lon, lat, label=f"{pcs[0] if pcs else ''} "
                             f"{self.c_name[insee]}".strip(), score=_clip(0.9 * sim),
                             precision="municipality", citycode=insee,
                             postcode=pcs[0] if pcs else None, source=self.source, motif=motif)

    def search(self, query: str | AddressQuery, *, limit: int = 1) -> list[GeocodeResult]:
        """Up to ``limit`` results, best first; empty list when nothing matches."""
        q = _as_query(query)
        text = _query_text(query)
        hyps = self._parse(q)
        scored: list[tuple[float, _Parsed, int]] = []
        named = hyps[0].insee is not None
        for h, p in enumerate(hyps):
            if h > 0 and scored and max(s[0] for s in scored) >= 0.95:
                break  # the first reading is already excellent
            for score, i, sim in self._candidates(p, limit):
                # Ignoring a commune named in the text is only right when its words are
                # really part of the street name (« rue de Saint-Chamond » at Firminy).
                if h > 0 and named and self.s_insee[i] != hyps[0].insee and sim < 0.95:
                    continue
                scored.append((score, p, i))
        scored.sort(key=lambda s: -s[0])
        results: list[GeocodeResult] = []
        seen: set[int] = set()
        for score, p, i in scored:
            if i in seen:
                continue
            seen.add(i)
            results.append(self._result_for(text, p, score, i))
            if len(results) >= limit:
                break
        if results:
            return results
        # No street: the commune alone (« 42100 Saint-Étienne »), else nothing.
        for p in hyps:
            insee, sim = p.insee, p.commune_sim
            if insee is None and p.postcode and len(self._by_postcode.get(p.postcode, [])) == 1:
                insee, sim = self._by_postcode[p.postcode][0], 0.9
            if insee is not None:
                motif = (f"voie « {p.street} » non trouvée dans la commune" if p.street
                         else None)
                return [self._municipality(text, insee, sim, motif, p.postcode)]
        return []

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        """The best result for one address (``found`` False with a ``motif`` otherwise)."""
        text = _query_text(query)
        if not normalize(text):
            return not_found(query, "adresse vide", source=self.source)
        if len(text) > 300:
            return not_found(query, "adresse trop longue (plus de 300 caractères)",
                             source=self.source)
        results = self.search(query, limit=1)
        if results:
            return results[0]
        return not_found(query, "adresse non trouvée dans le fichier d'adresses : ni voie ni "
                         "commune de Saint-Étienne Métropole reconnue", source=self.source)

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """One result per query, same order; identical queries are geocoded once.

        ``progress`` is called with the number of queries just finished (an increment).
        """
        from qpv_geo._http import ResultCache

        qs = [_as_query(q) for q in queries]
        keys = [ResultCache.key({"index": self.sha256, "q": " ".join(q.adresse.split()),
                                 "postcode": q.postcode or None, "city": q.city or None,
                                 "citycode": q.citycode or None}) for q in qs]
        # Results are kept on disk per address file: a batch interrupted by Ctrl-C or a crash
        # resumes without geocoding again what was done.
        cache = self._results_cache()
        memo: dict[str, GeocodeResult] = {
            key: GeocodeResult(**value) for key, value in cache.get_many(list(set(keys))).items()}
        new: dict[str, Any] = {}
        out: list[GeocodeResult] = []
        for k, (q, key) in enumerate(zip(qs, keys, strict=True)):
            res = memo.get(key)
            if res is None:
                res = memo[key] = self.geocode(q)
                new[key] = res.__dict__
            out.append(res if res.query == _query_text(queries[k]) else GeocodeResult(
                **{**res.__dict__, "query": _query_text(queries[k])}))
            if progress is not None and (k % 100 == 99 or k == len(queries) - 1):
                progress(100 if k % 100 == 99 else (k % 100) + 1)
            if len(new) >= 1000:
                cache.set_many(new)
                new = {}
        if new:
            cache.set_many(new)
        return out

    def _results_cache(self) -> Any:
        from qpv_geo._http import ResultCache

        if getattr(self, "_cache", None) is None:
            self._cache = ResultCache(self.index_path.with_name(
                f"resultats-{self.sha256[:24]}.sqlite"))
        return self._cache

    def suggest(self, text: str, *, limit: int = 5) -> list[GeocodeResult]:
        """Suggestions as one types (best streets/addresses, then the commune)."""
        if len(normalize(text)) < 3:
            return []
        return self.search(text, limit=limit)


_LOADED: dict[tuple[Any, ...], LocalGeocoder] = {}
_LOADED_LOCK = threading.Lock()


def _split_number(words: list[str]) -> tuple[int | None, str, list[str]]:
    """(house number, repetition, street words) of a query without its commune/postcode.

    The house number is a number of 1–4 digits that is not part of the street name (« rue du
    8 Mai 1945 »: after a street type or a month) nor a flat/building number (« appt 12 »);
    one followed by a street type wins. Words before it (name, residence) and after the street
    (« bâtiment C », « 2e étage ») are not part of the street.
    """
    cand = []
    for k, w in enumerate(words):
        if not (w.isdigit() and len(w) <= 4):
            continue
        prev = words[k - 1] if k > 0 else ""
        if prev in _NOISE_BEFORE_NUMBER or prev in STREET_TYPES or prev in _MONTHS:
            continue
        if k + 1 < len(words) and words[k + 1] in _MONTHS:
            continue
        cand.append(k)
    number, rep, street = None, "", words
    if cand:
        def typed(k: int) -> bool:
            nxt = k + 1
            if nxt < len(words) and words[nxt] in REPETITIONS:
                nxt += 1
            return nxt < len(words) and words[nxt] in STREET_TYPES

        k = next((c for c in cand if typed(c)), cand[0])
        number = int(words[k])
        after = k + 1
        if after < len(words) and words[after] in REPETITIONS and (
                words[after] in ("bis", "ter", "quater", "quinquies")
                or after + 1 < len(words)):
            rep = REPETITIONS[words[after]]
            after += 1
        street = words[after:]
    # cut what follows the street: « batiment c », « 2 e etage », « porte 4 »…
    cut = next((j for j, w in enumerate(street) if j > 0 and w in _NOISE_AFTER_STREET),
               len(street))
    street = street[:cut]
    while len(street) > 1 and (street[-1].isdigit() or len(street[-1]) == 1):
        street = street[:-1]
    return number, rep, street


_MONTHS = frozenset({"janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                     "septembre", "octobre", "novembre", "decembre"})
_NOISE_AFTER_STREET = frozenset({"batiment", "bat", "bt", "etage", "etg", "porte", "escalier",
                                 "esc", "appartement", "appt", "apt", "app", "logement", "log",
                                 "boite", "bal", "cedex", "bp", "cs", "tsa", "entree",
                                 "chez"})


def _strip_types(key: str) -> str:
    return " ".join(w for w in key.split() if w not in STREET_TYPES)


def _clip(score: float) -> float:
    return round(min(1.0, max(0.0, float(score))), 4)


# ---------------------------------------------------------------------------------------------
# Installing a real BAN address file
# ---------------------------------------------------------------------------------------------


def adresses_info(settings: Settings | None = None) -> dict[str, Any]:
    """Which address file the local geocoder uses: installed BAN file, else the demo file."""
    settings = settings or Settings.from_env()
    manifest_path = installed_adresses_dir(settings) / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = None
        if manifest:
            path = installed_adresses_dir(settings) / manifest.get("file", INSTALLED_FILE)
            if path.is_file():
                return {**manifest, "path": str(path), "demo": False, "origin": "installé"}
    path = demo_adresses_path()
    if not path.is_file():
        raise GeocoderNotConfigured(
            "Aucun fichier d'adresses pour le géocodeur local (ni installé, ni de "
            "démonstration).", hint="Installez le fichier BAN de la Loire : qpv-geo data update "
            "--adresses, ou qpv-geo data import-adresses adresses-42.csv.gz.")
    return {"path": str(path), "demo": True, "origin": "démonstration", "file": path.name,
            "source": "fichier de démonstration synthétique (data/adresses/PROVENANCE.md)",
            "sha256": None}


def install_adresses(path: Path, settings: Settings | None = None, *,
                     source: str | None = None) -> dict[str, Any]:
    """Install a BAN address file (csv or csv.gz) for the local geocoder, SEM communes only.

    Checks the header and that rows of SEM remain, writes ``adresses-sem.csv.gz`` and a
    ``manifest.json`` (sha256 of the installed and source files, rows, date) in
    ``settings.data_dir/adresses``, and returns the manifest.
    """
    settings = settings or Settings.from_env()
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"Fichier introuvable : {path}.")
    codes = {c.insee for c in communes_sem()}
    opener = gzip.open if _is_gzip(path) else open
    rows = total = 0
    target_dir = installed_adresses_dir(settings)
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as src:
            header_line = src.readline()
            header = header_line.rstrip("\r\n").split(";")
            missing = [c for c in BAN_CSV_REQUIRED if c not in header]
            if missing:
                raise InputFileError(
                    f"{path.name} n'est pas au format BAN CSV : colonnes manquantes "
                    f"{', '.join(missing)}.", hint="Donnez le fichier « adresses-42.csv.gz » "
                    "de la BAN (séparateur ;).")
            col = header.index("code_insee")
            with tempfile.NamedTemporaryFile("wb", dir=target_dir, suffix=".tmp",
                                             delete=False) as tmp_raw:
                tmp_path = Path(tmp_raw.name)
                with gzip.open(tmp_raw, "wt", encoding="utf-8", newline="") as dst:
                    dst.write(";".join(header) + "\n")
                    for line in src:
                        total += 1
                        parts = line.split(";", col + 1)
                        if len(parts) > col and parts[col] in codes:
                            dst.write(line if line.endswith("\n") else line + "\n")
                            rows += 1
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).",
                             hint="Le fichier doit être un CSV BAN en UTF-8, éventuellement "
                             "compressé en .gz.") from exc
    if rows == 0:
        tmp_path.unlink(missing_ok=True)
        raise InputFileError(
            f"{path.name} ne contient aucune adresse des communes de Saint-Étienne Métropole "
            f"({total} lignes lues).", hint="Donnez le fichier de la Loire (adresses-42.csv.gz).")
    target = target_dir / INSTALLED_FILE
    tmp_path.replace(target)
    manifest = {
        "file": INSTALLED_FILE,
        "rows": rows,
        "rows_source": total,
        "communes": len(codes),
        "sha256": sha256_file(target),
        "sha256_source": sha256_file(path),
        "source": source or str(path.resolve()),
        "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "format": "BAN CSV (adresses), communes de Saint-Étienne Métropole",
    }
    (target_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2),
                                              encoding="utf-8")
    with _LOADED_LOCK:
        _LOADED.clear()
    return {**manifest, "path": str(target)}


def download_adresses(settings: Settings | None = None, *, url: str | None = None
                      ) -> dict[str, Any]:
    """Download the BAN file of the Loire (``settings.adresses_url``) with pooch and install it."""
    import pooch

    settings = settings or Settings.from_env()
    url = url or settings.adresses_url
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    pooch.get_logger().setLevel("WARNING")
    from qpv_geo._http import USER_AGENT

    try:
        fetched = Path(pooch.retrieve(
            url, known_hash=None, path=downloads, fname="adresses_download.csv.gz",
            downloader=pooch.HTTPDownloader(timeout=settings.timeout_s, progressbar=False,
                                            headers={"User-Agent": USER_AGENT})))
    except Exception as exc:  # requests/pooch raise many kinds: all mean "not downloaded"
        raise DownloadError(
            f"Téléchargement impossible depuis {url} ({exc.__class__.__name__}: {exc}).",
            hint="Vérifiez l'accès à internet, ou téléchargez adresses-42.csv.gz sur "
            "adresse.data.gouv.fr puis lancez qpv-geo data import-adresses FICHIER.") from exc
    try:
        return install_adresses(fetched, settings, source=url)
    finally:
        fetched.unlink(missing_ok=True)


def update_adresses_cli(settings: Settings | None = None) -> str:
    """``qpv-geo data update --adresses``: download, install, and say what happened."""
    info = download_adresses(settings)
    return (f"Fichier d'adresses BAN installé : {info['rows']} adresses des communes de "
            f"Saint-Étienne Métropole (sur {info['rows_source']} lues), sha256 "
            f"{info['sha256'][:16]}…. Le géocodeur local l'utilise désormais (source « local »).")


# ---------------------------------------------------------------------------------------------
# Online: BAN / Géoplateforme
# ---------------------------------------------------------------------------------------------


class BanGeocoder:
    """The BAN / Géoplateforme geocoding service (``/search`` and ``/search/csv``).

    Parameters
    ----------
    base_url
        E.g. ``https://data.geopf.fr/geocodage`` or ``https://api-adresse.data.gouv.fr``.
    cache_dir
        Folder of the persistent result cache (``ban-cache.sqlite``); ``None`` = no cache.
    rate_limit
        Requests per second (client side).
    chunk_size
        Addresses per ``/search/csv`` upload.
    """

    name = "ban"
    source = "ban"
    demo = False

    def __init__(self, base_url: str, *, cache_dir: Path | None = None, rate_limit: float = 40.0,
                 timeout: float = 30.0, retries: int = 4, backoff_s: float = 0.5,
                 chunk_size: int = 500, batch_threshold: int = 5,
                 max_wait_s: float = 60.0) -> None:
        from qpv_geo._http import RateLimiter, ResultCache, make_session

        self.base_url = base_url.rstrip("/")
        self.session = make_session()
        self.limiter = RateLimiter(rate_limit)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self.batch_threshold = batch_threshold
        self.max_wait_s = max_wait_s
        self.cache = ResultCache(Path(cache_dir) / "ban-cache.sqlite") if cache_dir else None

    @classmethod
    def from_settings(cls, settings: Settings) -> BanGeocoder:
        return cls(settings.ban_url, cache_dir=settings.cache_dir / "geocodage",
                   rate_limit=settings.ban_rate_limit, timeout=settings.timeout_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        from qpv_geo._http import request_with_retry

        return request_with_retry(self.session, method, f"{self.base_url}{path}",
                                  timeout=self.timeout, retries=self.retries,
                                  backoff_s=self.backoff_s, max_wait_s=self.max_wait_s,
                                  limiter=self.limiter, **kwargs)

    def _cache_key(self, q: AddressQuery) -> str:
        from qpv_geo._http import ResultCache

        return ResultCache.key({"url": self.base_url, "q": " ".join(q.adresse.split()),
                                "postcode": q.postcode or None, "citycode": q.citycode or None,
                                "city": q.city or None})

    @staticmethod
    def _q_text(q: AddressQuery) -> str:
        # postcode/citycode go as filters; the city name joins the text
        return " ".join(p for p in (q.adresse.strip(), (q.city or "").strip()) if p)

    def search(self, query: str | AddressQuery, *, limit: int = 5) -> list[GeocodeResult]:
        """Raw ``/search/`` call: up to ``limit`` results (not cached)."""
        q = _as_query(query)
        params = {"q": self._q_text(q)[:200], "limit": limit,
                  "postcode": (q.postcode or "").strip() or None,
                  "citycode": (q.citycode or "").strip() or None}
        resp = self._request("GET", "/search/", params=params)
        try:
            features = resp.json().get("features", [])
        except (ValueError, AttributeError) as exc:
            raise GeocoderUnavailable("Réponse illisible du service de géocodage (JSON attendu)."
                                      ) from exc
        return [self._from_feature(_query_text(query), f) for f in features]

    def _from_feature(self, text: str, feature: dict[str, Any]) -> GeocodeResult:
        props = feature.get("properties") or {}
        coords = (feature.get("geometry") or {}).get("coordinates") or [None, None]
        return GeocodeResult(
            query=text, lon=_float(coords[0]), lat=_float(coords[1]), label=props.get("label"),
            score=float(props.get("score") or 0.0), precision=_ban_precision(props.get("type")),
            citycode=props.get("citycode"), postcode=props.get("postcode"), source=self.source)

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        """The best result of ``/search/`` (cached)."""
        q = _as_query(query)
        if not q.adresse.strip():
            return not_found(query, "adresse vide", source=self.source)
        key = self._cache_key(q)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return GeocodeResult(**{**hit, "query": _query_text(query)})
        results = self.search(q, limit=1)
        res = results[0] if results else not_found(
            query, "adresse non trouvée par le service BAN", source=self.source)
        if self.cache is not None:
            self.cache.set_many({key: res.__dict__})
        return res

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """One result per query, same order: cache first, then ``/search/csv/`` by chunks.

        Each chunk is cached as soon as it comes back: an interrupted run resumes there.
        ``progress`` is called with the number of queries just finished (an increment).
        """
        qs = [_as_query(q) for q in queries]
        out: list[GeocodeResult | None] = [None] * len(qs)
        keys = [self._cache_key(q) for q in qs]
        cached = self.cache.get_many(list(set(keys))) if self.cache is not None else {}
        todo: dict[str, list[int]] = {}
        done = 0
        for k, (q, key) in enumerate(zip(qs, keys, strict=True)):
            if not q.adresse.strip():
                out[k] = not_found(queries[k], "adresse vide", source=self.source)
                done += 1
            elif key in cached:
                out[k] = GeocodeResult(**{**cached[key], "query": _query_text(queries[k])})
                done += 1
            else:
                todo.setdefault(key, []).append(k)
        if progress is not None and done:
            progress(done)
        pending = list(todo.items())
        if len(pending) < self.batch_threshold:
            for _key, ks in pending:
                res = self.geocode(qs[ks[0]])
                for k in ks:
                    out[k] = GeocodeResult(**{**res.__dict__, "query": _query_text(queries[k])})
                if progress is not None:
                    progress(len(ks))
            return [r for r in out if r is not None]
        for i in range(0, len(pending), self.chunk_size):
            chunk = pending[i:i + self.chunk_size]
            results = self._csv_chunk([qs[ks[0]] for _, ks in chunk])
            if self.cache is not None:
                self.cache.set_many({key: res.__dict__ for (key, _), res
                                     in zip(chunk, results, strict=True)})
            n = 0
            for (_, ks), res in zip(chunk, results, strict=True):
                for k in ks:
                    out[k] = GeocodeResult(**{**res.__dict__, "query": _query_text(queries[k])})
                    n += 1
            if progress is not None:
                progress(n)
        return [r for r in out if r is not None]

    def _csv_chunk(self, qs: list[AddressQuery]) -> list[GeocodeResult]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["qpv_id", "adresse", "postcode", "citycode"])
        for k, q in enumerate(qs):
            writer.writerow([k, self._q_text(q)[:200], (q.postcode or "").strip(),
                             (q.citycode or "").strip()])
        data: list[tuple[str, str]] = [("columns", "adresse")]
        if any(q.postcode for q in qs):
            data.append(("postcode", "postcode"))
        if any(q.citycode for q in qs):
            data.append(("citycode", "citycode"))
        files = {"data": ("adresses.csv", buf.getvalue().encode("utf-8"), "text/csv")}
        resp = self._request("POST", "/search/csv/", data=data, files=files)
        text = resp.content.decode("utf-8-sig", errors="replace")
        rows = list(csv.DictReader(io.StringIO(text)))
        by_id: dict[int, dict[str, str]] = {}
        for row in rows:
            try:
                by_id[int(row.get("qpv_id", ""))] = row
            except ValueError:
                continue
        if not rows or "result_score" not in rows[0]:
            raise GeocoderUnavailable("Réponse inattendue de /search/csv/ (colonnes result_* "
                                      "absentes).")
        results = []
        for k, q in enumerate(qs):
            row = by_id.get(k)
            text_q = q.text()
            if row is None:
                results.append(not_found(text_q, "ligne absente de la réponse du service BAN",
                                         source=self.source))
                continue
            status = (row.get("result_status") or "ok").strip()
            lon, lat = _float(row.get("longitude")), _float(row.get("latitude"))
            if status != "ok" or lon is None or lat is None:
                motif = {"not-found": "adresse non trouvée par le service BAN",
                         "skipped": "adresse ignorée par le service BAN (vide ?)",
                         "error": "erreur du service BAN sur cette adresse"}.get(
                             status, f"adresse non trouvée par le service BAN ({status})")
                results.append(not_found(text_q, motif, source=self.source))
                continue
            results.append(GeocodeResult(
                query=text_q, lon=lon, lat=lat, label=row.get("result_label") or None,
                score=_float(row.get("result_score")) or 0.0,
                precision=_ban_precision(row.get("result_type")),
                citycode=row.get("result_citycode") or None,
                postcode=row.get("result_postcode") or None, source=self.source))
        return results


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _ban_precision(kind: Any) -> str | None:
    """BAN ``type`` → precision (``housenumber``, ``street``, ``locality``, ``municipality``)."""
    if kind in PRECISIONS:
        return str(kind)
    return {"interpolation": "street", "city": "municipality"}.get(str(kind or ""))


__all__ = [
    "BAN_CSV_COLUMNS",
    "PRECISIONS",
    "AddressQuery",
    "BanGeocoder",
    "GeocodeResult",
    "Geocoder",
    "LocalGeocoder",
    "adresses_info",
    "download_adresses",
    "geocoder_from_settings",
    "install_adresses",
    "normalize",
    "reliability_issues",
    "update_adresses_cli",
]
