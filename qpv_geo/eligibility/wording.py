"""The territory's words on every user-facing output: web page, API, maps, report, figures.

``--territoire`` (:mod:`qpv_geo.reference.territories`) changes the QPV layer and the verdicts; this
module
gives the outputs their words from the reference they draw: « QPV 2024 de SEM », « hors
territoire de Métropole de Lyon », « QPV 2024 — France »… built from the territory's name,
except the words its profile (:mod:`qpv_geo.reference.profiles`) gives: Saint-Étienne Métropole's
(a reference without ``territoire``) are its row there, the words it always had.

* :func:`libelles` — the :class:`Libelles` of a reference (or of an engine's reference);
* :func:`reference_from_settings` — the reference a command's outputs must draw: SEM's
  installed reference, or the territory's (the one :func:`engine_from_settings` judges with).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from qpv_geo._french import de, hors, pluriel
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.eligibility.verdict_table import status_labels
from qpv_geo.geocoding.base import PRECISION_WORDS
from qpv_geo.reference.layers import get_reference
from qpv_geo.reference.profiles import PROFIL_SEM, PROFILS, Profil, profil
from qpv_geo.reference.territories import resolve_territoire
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference
    from qpv_geo.settings import Settings


#: Headlines of the web page for SEM (the words of the call; also web._present.HEADLINES).
TITRES_SEM = {
    "eligible": "Éligible",
    "qva": "Non éligible — quartier de veille active (QVA)",
    "hors_qpv": "Non éligible — hors QPV",
    "hors_territoire": "Non éligible — hors territoire de Saint-Étienne Métropole",
    "a_verifier": "À vérifier",
    "non_geocode": "Non localisé",
}


# ---------------------------------------------------------------------- codes → words
# The machine values of the CSV and the API stay codes (they are public API); every output a
# person reads (web page, CLI, XLSX, report, register pages) shows these words instead.

#: How precisely an address was located (BAN « type », or coordinates typed by a person).
PRECISIONS = PRECISION_WORDS

#: Where a point comes from (``geocodage_source``: which geocoder, or the coordinates given).
SOURCES = {
    "local-demo": "fichier de démonstration",
    "local": "fichier BAN installé",
    "ban": "service en ligne",
    "coordonnees": "coordonnées fournies",
}

#: The web page's name of each reference layer that has no title of its own.
COUCHES = {
    "qpv": "Quartiers prioritaires (QPV 2024)",
    "qpv_hors_sem": "QPV hors du territoire",
    "qva": "Quartiers de veille active (QVA)",
    "communes": "Communes",
    "qva_liste": "Liste des QVA",
    "qpv_liste_loire": "Liste des QPV de la Loire",
}

#: The geocoder chosen (``geocodeur`` of :func:`qpv_geo.geocoding.geocoder_info`).
GEOCODEURS = {
    "local": "fichier d'adresses installé sur le serveur (hors ligne)",
    "ban": "service d'adresses en ligne de la Géoplateforme (IGN)",
    "aucun": "aucune : saisissez les coordonnées GPS du lieu",
}


def precision_libelle(code: Any) -> str:
    """« au numéro » for ``housenumber``… (« — » when there is none; an unknown code as is)."""
    if code is None or code != code or str(code) == "":
        return "—"
    return PRECISIONS.get(str(code), str(code))


def source_libelle(code: Any) -> str:
    """« fichier de démonstration » for ``local-demo``… (« — » when there is none)."""
    if code is None or code != code or str(code) == "":
        return "—"
    return SOURCES.get(str(code), str(code))


@dataclass(frozen=True)
class Libelles:
    """The words of one territory: its name, its short name, and the labels built on them."""

    #: The territory's layers, plane and words (:mod:`qpv_geo.reference.profiles`).
    profil: Profil = PROFIL_SEM

    @property
    def nom(self) -> str:
        """« Saint-Étienne Métropole », « Métropole de Lyon », « Lyon », « France »."""
        return self.profil.nom

    @property
    def sigle(self) -> str:
        """Short name in running text (« SEM » for Saint-Étienne Métropole, else the name)."""
        return self.profil.sigle

    @property
    def france(self) -> bool:
        """The whole of France: no territory restriction, no « hors territoire »."""
        return self.profil.france

    @property
    def par_defaut(self) -> bool:
        """The installation's default territory: its outputs do not name it."""
        return self.profil.par_defaut

    @property
    def a_des_qva(self) -> bool:
        """A QVA list: said on legends and tables even with no perimeter imported."""
        return self.profil.qva

    @property
    def rues(self) -> bool:
        """The offline street layer serves every map of the territory."""
        return self.profil.rues

    @property
    def exemple(self) -> dict[str, str] | None:
        """Example point of the web forms, or None (a point inside one of its QPV)."""
        return self.profil.exemple

    def mot(self, cle: str, defaut: str) -> str:
        """The territory's own word ``cle`` (its profile), else ``defaut``."""
        return self.profil.mot(cle, defaut)

    # ------------------------------------------------------------------ statuses
    @cached_property
    def statuts(self) -> dict[str, str]:
        """Label of each status (:data:`qpv_geo.eligibility.engine.STATUS_LABELS` for SEM)."""
        labels = status_labels(self.nom)
        if self.france:  # nothing is outside France's QPV layer but the points it refuses
            labels["hors_territoire"] = "Non éligible — hors du territoire servi"
        return labels

    @cached_property
    def titres(self) -> dict[str, str]:
        """Short headline of each status (the web page's verdict title)."""
        if self.france:
            return {**TITRES_SEM, "eligible": "Dans un QPV 2024",
                    "hors_territoire": "Non éligible — hors du territoire servi"}
        return {**TITRES_SEM, "hors_territoire": "Non éligible — hors territoire "
                + de(self.nom)}

    # ------------------------------------------------------------------ perimeters
    @property
    def qpv(self) -> str:
        """The eligible QPV layer: « QPV 2024 de SEM », « QPV 2024 — France »."""
        return "QPV 2024 — France" if self.france else f"QPV 2024 {de(self.sigle)}"

    @property
    def qpv_eligibles(self) -> str:
        """Its name on a map's layer list and legend."""
        return "QPV 2024 — France" if self.france else f"{self.qpv} (éligibles)"

    @property
    def qpv_court(self) -> str:
        """« QPV de SEM », « QPV de Lyon », « QPV » (France)."""
        return "QPV" if self.france else f"QPV {de(self.sigle)}"

    @property
    def qpv_autres(self) -> str:
        """The other QPV layer (not eligible for this territory)."""
        return self.mot("qpv_autres", f"QPV {hors(self.sigle)} (non éligibles)")

    @property
    def qpv_autres_court(self) -> str:
        """« QPV hors SEM »."""
        return f"QPV {hors(self.sigle)}"

    @property
    def contour(self) -> str:
        """The territory's outline layer."""
        return f"Contour {de(self.nom)}"

    @property
    def communes(self) -> str:
        """The commune outlines layer."""
        return f"Communes {de(self.sigle)}"

    @property
    def hors_territoire(self) -> str:
        """« hors du territoire de SEM » (sites not drawn on the maps framed on it)."""
        return "hors du cadre des cartes" if self.france else \
            f"hors du territoire {de(self.sigle)}"

    @property
    def titre_carte(self) -> str:
        """Title of an overview map panel."""
        return "QPV 2024 — France" if self.france else self.nom

    @property
    def marque(self) -> str:
        """What the pages say they are for: « Cité de l'emploi · Saint-Étienne Métropole »."""
        return f"Cité de l'emploi · {self.nom}" if not self.france else \
            "Quartiers prioritaires 2024 · France"

    @property
    def question(self) -> str:
        """The web page's question."""
        if self.france:
            return "Ce lieu est-il dans un quartier prioritaire (QPV 2024) ?"
        return f"Ce lieu est-il dans un quartier prioritaire (QPV) {de(self.nom)} ?"

    @property
    def entete_verification(self) -> str:
        """First line of the « copier » text and of the attestation."""
        if self.france:
            return "Vérification QPV 2024 — France"
        return self.mot("entete_verification", f"Vérification QPV — {self.nom}")

    @property
    def attestation(self) -> str:
        """Heading of the printed attestation."""
        if self.france:
            return "Attestation de vérification — appartenance à un QPV 2024 (France)"
        return self.mot("attestation", f"Attestation de vérification — éligibilité QPV "
                        f"({self.nom})")


SEM = Libelles()


def libelles(source: Any = None) -> Libelles:
    """The words of the territory of ``source``: a :class:`~qpv_geo.reference.layers.Reference`, an
    engine, a :class:`~qpv_geo.reference.territories.Territoire`, or None (SEM)."""
    if source is None:
        return SEM
    if hasattr(source, "reference") and not hasattr(source, "qpv"):
        source = source.reference
    territoire = getattr(source, "territoire", source)
    if not hasattr(territoire, "genre"):  # None, or no territory: SEM's reference
        return SEM
    return _de(profil(territoire))


def _de(mots: Profil) -> Libelles:
    """The :class:`Libelles` of a profile (SEM's: :data:`SEM`)."""
    return SEM if mots is PROFIL_SEM else Libelles(mots)


def libelles_reglages(settings: Settings | None = None) -> Libelles:
    """The words of ``Settings.territoire`` without loading any layer (SEM: its own)."""
    settings = settings or Settings.from_env()
    code = str(settings.territoire).strip().replace(" ", "")
    if code in PROFILS:  # a territory of the table: its words without the list of communes
        return _de(PROFILS[code])
    return libelles(resolve_territoire(settings.territoire))


def reference_from_settings(settings: Settings | None = None) -> Reference:
    """The reference the outputs of ``settings`` draw: SEM's installed one, or the
    territory's (``Settings.territoire``), the same the engine judges with."""
    settings = settings or Settings.from_env()
    code = str(settings.territoire).strip().replace(" ", "")
    if code in PROFILS and PROFILS[code].reference_propre:
        return get_reference(settings)
    return engine_from_settings(settings).reference


__all__ = ["COUCHES", "GEOCODEURS", "PRECISIONS", "SEM", "SOURCES", "Libelles", "libelles",
           "libelles_reglages", "pluriel", "precision_libelle", "reference_from_settings",
           "source_libelle"]
