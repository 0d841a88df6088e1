"""Common types of the geocoders and the text normalisation shared by the index and the queries.

:class:`GeocodeResult`, :class:`AddressQuery`, the :class:`Geocoder` protocol,
:func:`not_found`, :func:`reliability_issues`, and :func:`normalize` / :func:`tokens` /
:func:`match_key` with the abbreviations, stop words and street types they use.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from qpv_geo.eligibility.libelles import PRECISIONS as _PRECISION_WORDS

#: Precisions, from the best to the coarsest (the BAN's ``type``).
PRECISIONS = ("housenumber", "street", "locality", "municipality")

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
    #: BAN ``type_position`` of a house-number point (« entrée », « bâtiment »…), if known.
    type_position: str | None = None
    #: Name of the street found (without number, postcode, commune), when the result has one.
    street: str | None = None
    #: Why this match is not the address asked for (see :mod:`~qpv_geo.geocoding.consistency`):
    #: each makes the verdict « à vérifier ».
    issues: tuple[str, ...] = ()
    #: Set when the commune or postcode written is outside SEM: the verdict is
    #: ``hors_territoire`` with this reason, whatever point the geocoder found.
    hors_territoire: str | None = None
    #: Set when the point lies in another commune than the one written (or than those of
    #: the postcode written): its commune is in doubt and cannot settle the verdict.
    commune_douteuse: bool = False
    #: Other results as good as this one in other SEM communes (the same street name, no
    #: commune written): ``label``, ``lon``, ``lat``, ``citycode`` of each. The engine judges
    #: each: one verdict if they all agree, else « à vérifier » listing them.
    alternatives: tuple[dict[str, Any], ...] = ()
    #: Coordinates typed in the address field: the uncertainty (m) of the figures as written
    #: (« 45.41, 4.39 »: ± 681 m), None when not known from the text.
    incertitude_m: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issues, tuple):  # from a JSON cache: a list
            object.__setattr__(self, "issues", tuple(self.issues or ()))
        if not isinstance(self.alternatives, tuple):
            object.__setattr__(self, "alternatives", tuple(self.alternatives or ()))

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
        if self.issues:
            d["geocodage_alertes"] = list(self.issues)
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


#: « géocodé à la rue seulement »…: the words of :data:`qpv_geo.eligibility.libelles.PRECISIONS`.
_PRECISION_ISSUES = {p: f"géocodé {_PRECISION_WORDS[p]} seulement"
                     for p in ("street", "locality", "municipality")}


def reliability_issues(result: GeocodeResult, *, score_min: float) -> list[str]:
    """French reasons that make a verdict « à vérifier »; empty list = reliable point.

    Reliable means: found, ``housenumber`` precision, ``score >= score_min`` and no
    consistency issue (``result.issues``: another street or commune than the one written). A
    result whose written commune is outside SEM gives only that reason. A point from
    the demonstration address file is not judged here: like demonstration perimeters, it is
    marked on every output (``result.source == "local-demo"``, :data:`MOTIF_DEMO`).
    """
    if result.hors_territoire:
        return [result.hors_territoire]
    if not result.found:
        return [result.motif or "adresse non trouvée", *result.issues]
    issues: list[str] = list(result.issues)
    if result.precision not in ("housenumber", "coordonnees"):  # coordinates typed: exact
        issues.append(_PRECISION_ISSUES.get(
            result.precision or "", f"précision du géocodage inconnue ({result.precision})"))
    if result.score < score_min:
        # the score explained: the geocoder's own confidence, 0 to 1, and the threshold
        issues.append(f"score {result.score:.2f} < {score_min:.2f} (confiance du géocodeur, "
                      "de 0 à 1, sous le seuil)")
    return issues


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


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def strip_accents(text: str) -> str:
    """Accents removed (NFKD), ligatures spelled out."""
    if text.isascii():
        return text
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation → spaces, single spaces."""
    text = strip_accents(str(text or "")).lower()
    return _NOT_ALNUM.sub(" ", text).strip()


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
