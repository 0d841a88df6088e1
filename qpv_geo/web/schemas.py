"""Pydantic models of the JSON API (``/api/v1``): requests, answers and errors.

They make the OpenAPI schema (``/openapi.json``); field descriptions are in French, as the API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qpv_geo.eligibility.engine import STATUSES

#: Longest address accepted (characters); a real French address is under 200.
MAX_ADRESSE = 300


Statut = Literal["eligible", "qva", "hors_qpv", "hors_territoire", "a_verifier", "non_geocode"]
assert set(Statut.__args__) == set(STATUSES)  # type: ignore[attr-defined]


class Erreur(BaseModel):
    """An error: what went wrong and how to fix it."""

    erreur: str = Field(description="Ce qui ne va pas.")
    conseil: str | None = Field(None, description="Comment corriger.")


class Geocodage(BaseModel):
    """How an address was turned into a point."""

    requete: str
    trouve: bool
    label: str | None = Field(None, description="Adresse retenue par le géocodeur.")
    score: float | None = None
    precision: str | None = Field(None, description="housenumber, street, locality, …")
    precision_libelle: str | None = None
    citycode: str | None = Field(None, description="Code INSEE de la commune.")
    postcode: str | None = None
    source: str | None = None
    motif: str | None = Field(None, description="Pourquoi l'adresse n'a pas été trouvée.")


class VerdictOut(BaseModel):
    """The verdict for one place, with everything needed to defend it."""

    status: Statut
    statut_libelle: str
    titre: str
    eligible: bool
    code_qp: str | None = Field(None, description="Code du QPV (ou QVA) contenant le point.")
    lib_qp: str | None = None
    insee_com: str | None = None
    lib_com: str | None = None
    distance_bord_m: float | None = Field(
        None, description="Distance signée au bord qui compte (positive à l'intérieur).")
    marge_m: float | None = Field(
        None, description="Marge (m) du verdict : en deçà, le verdict est « à vérifier ».")
    marge_motif: str | None = Field(
        None, description="D'où vient la marge (précision du périmètre + de la position).")
    code_qp_proche: str | None = None
    lib_qp_proche: str | None = None
    distance_qp_proche_m: float | None = None
    candidat_autre_cote: str | None = None
    motifs: list[str]
    donnees: str = Field(description="Version des données de référence (et avertissements).")
    notes: list[str]
    demo: bool = Field(description="Vrai si des données de démonstration ont servi.")
    lon: float | None = None
    lat: float | None = None
    x_l93: float | None = None
    y_l93: float | None = None
    verifie_le: str = Field(description="Date et heure de la vérification (ISO 8601).")
    geocodage: Geocodage | None = None


class Lieu(BaseModel):
    """One place to check: an address, or a latitude and a longitude."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=100, description="Votre identifiant (renvoyé).")
    adresse: str | None = Field(None, max_length=MAX_ADRESSE)
    lat: float | None = None
    lon: float | None = None


class VerdictsIn(BaseModel):
    """Several places (at most ``max_batch_items`` of the server's settings)."""

    model_config = ConfigDict(extra="forbid")

    lieux: list[Lieu]


class VerdictItem(VerdictOut):
    """A verdict in a list, with the caller's identifier."""

    id: str | None = None


class VerdictsOut(BaseModel):
    """Verdicts in the order of the request, and a count per status."""

    resultats: list[VerdictItem]
    resume: dict[str, int]
    donnees: str
    notes: list[str]


class Couche(BaseModel):
    """Provenance of one reference layer."""

    name: str
    title: str
    source: str
    millesime: str
    licence: str
    sha256: str | None
    features: int
    precision: str
    simplified: bool
    demo: bool
    origin: str
    official: bool = False
    installed_at: str | None = None


class Donnees(BaseModel):
    """Data versions: every answer depends on them."""

    version: str
    notes: list[str]
    simplifiee: bool
    demo: bool
    couches: dict[str, Couche]
    geocodeur: str = Field(description="Géocodeur qui répond : local, ban, aucun.")
    geocodeur_choix: str = Field(description="Réglage : auto, local, ban ou demo.")
    adresses: str = Field(description="Données d'adresses qui répondent.")
    adresses_demo: bool = Field(description="Vrai si le fichier d'adresses de "
                                "démonstration (fictif) répond.")
    application: str


class Suggestion(BaseModel):
    """An address proposed while typing."""

    label: str
    lon: float
    lat: float
    score: float | None = None
    precision: str | None = None
    citycode: str | None = None
    postcode: str | None = None


class Suggestions(BaseModel):
    """Suggestions for a prefix (empty under 3 characters)."""

    suggestions: list[Suggestion]
    methode: Literal["suggest", "geocode", "aucune"]


class Feature(BaseModel):
    """A GeoJSON feature: a perimeter (``type``: qpv, qva, qpv_hors_sem, commune)."""

    type: Literal["Feature"]
    properties: dict[str, Any]
    geometry: dict[str, Any]


class FeatureCollection(BaseModel):
    """GeoJSON of the perimeters near a point (WGS84)."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: each error code with the :class:`Erreur` model."""
    return {c: {"model": Erreur} for c in codes}


__all__ = [
    "MAX_ADRESSE", "Couche", "Donnees", "Erreur", "Feature", "FeatureCollection", "Geocodage",
    "Lieu", "Statut", "Suggestion", "Suggestions", "VerdictItem", "VerdictOut", "VerdictsIn",
    "VerdictsOut", "error_responses",
]
