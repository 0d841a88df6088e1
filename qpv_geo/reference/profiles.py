"""What sets one territory apart, as data: its layers, metric plane, streets and words.

Every territory is judged and drawn by the same code; its :class:`Profil` says what that code
finds there. Saint-Étienne Métropole's profile is one row of :data:`PROFILS` (keyed by its SIREN,
:data:`qpv_geo.settings.SIREN_SEM`): its own installed reference (exact perimeters, commune
outlines, QVA list, the QPV of the neighbouring EPCI), plain Lambert-93, the offline street
layer, and the words its outputs have always used. Any other territory gets the profile
:func:`profil` builds from its name (the national layer, the zones' projections, words built on
its name). A territory with a QVA list, streets or words of its own needs a row here, no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qpv_geo.settings import SIREN_SEM

#: Name of SEM, the default territory.
NOM_SEM = "Saint-Étienne Métropole"


@dataclass(frozen=True)
class Profil:
    """A territory's layers, plane and words (what differs from one territory to another)."""

    #: « Saint-Étienne Métropole », « Métropole de Lyon », « Lyon », « France ».
    nom: str
    #: Short name in running text (« SEM », else the name).
    sigle: str
    #: The whole of France: no territory restriction, no « hors territoire ».
    france: bool = False
    #: The installation's default territory: its outputs do not name it (titles of the
    #: report and maps, no ``territoire`` in a batch summary or a verdict).
    par_defaut: bool = False
    #: Its own installed reference (``data update``) rather than the national QPV layer.
    reference_propre: bool = False
    #: Measured in plain Lambert-93 (bit for bit as ever) rather than in each zone's projection.
    lambert93: bool = False
    #: A QVA list (not eligible): said on legends and tables even with no perimeter imported.
    qva: bool = False
    #: Commune outlines shipped: the territory of a point is read on them.
    communes: bool = False
    #: Its other QPV layer is its neighbours' (all drawn), not the national layer's others.
    voisins: bool = False
    #: The offline street layer serves its maps (else only where a map meets Saint-Étienne).
    rues: bool = False
    #: Example point of the web forms (``lat``, ``lon``, ``adresse``, ``lat_approx``,
    #: ``lon_approx``, ``lieu``); None: a point inside one of its QPV.
    exemple: dict[str, str] | None = field(default=None, hash=False)
    #: Words of its outputs that are not built from its name (see
    #: :class:`qpv_geo.eligibility.wording.Libelles`), by key.
    mots: dict[str, str] = field(default_factory=dict, hash=False)

    def mot(self, cle: str, defaut: Any = None) -> Any:
        """The territory's own word ``cle``, or ``defaut`` (the word built from its name)."""
        return self.mots.get(cle, defaut)


#: The profiles that are not built from a name, by territory code (SIREN, INSEE code).
PROFILS: dict[str, Profil] = {
    SIREN_SEM: Profil(
        nom=NOM_SEM, sigle="SEM", par_defaut=True, reference_propre=True, lambert93=True,
        qva=True, communes=True, voisins=True, rues=True,
        exemple={"lat": "45.4605", "lon": "4.3871",
                 "adresse": "12 rue Jean Jaurès 42000 Saint-Étienne", "lat_approx": "45,4",
                 "lon_approx": "4,4", "lieu": "Saint-Étienne"},
        mots={
            "qpv_autres": "QPV d'autres EPCI (non éligibles)",
            "en_dehors": "en dehors des 53 communes de Saint-Étienne Métropole",
            "entete_verification": "Vérification QPV — Saint-Étienne Métropole (Cité de "
                                   "l'emploi)",
            "attestation": "Attestation de vérification — éligibilité QPV (Cité de l'emploi, "
                           "Saint-Étienne Métropole)",
            "sous_titre_rapport": "Saint-Étienne Métropole — comité de copilotage État / SEM",
            "usage_api": ", pour la Cité de l'emploi",
            "doc_perimetres": "GeoJSON des périmètres (QPV, QVA, QPV hors SEM, communes) à "
                              "moins de `rayon_m`.",
        }),
}

#: Saint-Étienne Métropole's profile (a reference with no ``territoire`` is SEM's).
PROFIL_SEM = PROFILS[SIREN_SEM]


def profil(territoire: Any = None) -> Profil:
    """The profile of a :class:`~qpv_geo.reference.territories.Territoire` (None: SEM's):
    its row of :data:`PROFILS`, else built from its name."""
    if territoire is None:
        return PROFIL_SEM
    if territoire.genre != "france" and territoire.code in PROFILS:
        return PROFILS[territoire.code]
    return Profil(nom=territoire.nom, sigle=territoire.sigle,
                  france=territoire.genre == "france")


__all__ = ["NOM_SEM", "PROFILS", "PROFIL_SEM", "Profil", "profil"]
