"""Common types of the geocoders.

:class:`GeocodeResult`, :class:`AddressQuery`, the :class:`Geocoder` protocol,
:func:`not_found`, :func:`reliability_issues`, and the words of each precision
(:data:`PRECISION_WORDS`). The text normalisation (:func:`normalize`, :func:`tokens`,
:func:`match_key`) lives in :mod:`qpv_geo.reference.text`: the communes use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: Precisions, from the best to the coarsest (the BAN's ``type``).
PRECISIONS = ("housenumber", "street", "locality", "municipality")

#: How precisely an address was located (BAN « type », or coordinates typed by a person), in
#: the words people read (also :data:`qpv_geo.eligibility.wording.PRECISIONS`).
PRECISION_WORDS = {
    "housenumber": "au numéro",
    "interpolation": "au numéro (interpolé)",
    "street": "à la rue",
    "locality": "au lieu-dit",
    "municipality": "à la commune",
    "coordonnees": "coordonnées fournies",
}

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


def as_query(query: str | AddressQuery) -> AddressQuery:
    if isinstance(query, AddressQuery):
        return query
    return AddressQuery(adresse="" if query is None else str(query))


def query_text(query: str | AddressQuery) -> str:
    return query.text() if isinstance(query, AddressQuery) else ("" if query is None
                                                                 else str(query))


def not_found(query: str | AddressQuery, motif: str, *, source: str) -> GeocodeResult:
    """A result without a point, with its French reason."""
    return GeocodeResult(query=query_text(query), lon=None, lat=None, source=source, motif=motif)


#: « géocodé à la rue seulement »…: the words of :data:`PRECISION_WORDS`.
_PRECISION_ISSUES = {p: f"géocodé {PRECISION_WORDS[p]} seulement"
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
