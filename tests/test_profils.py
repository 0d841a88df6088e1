"""A territory's profile is data: SEM is one row of it, and a territory with QVA, streets or
words of its own needs a row, no code (issue 22)."""

from __future__ import annotations

from types import SimpleNamespace

from qpv_geo.eligibility.wording import SEM, libelles
from qpv_geo.reference.profiles import PROFIL_SEM, PROFILS, Profil, profil
from qpv_geo.reference.territories import resolve_territoire
from qpv_geo.register.criteria import criteres_de
from qpv_geo.reporting.maps import TITRE_SITES, titre_sites
from qpv_geo.reporting.report import TITRE_RAPPORT, titre_rapport
from qpv_geo.settings import SIREN_SEM
from qpv_geo.web.lot import status_words

LYON = "200046977"


def test_sem_is_one_row_of_the_profiles() -> None:
    sem = resolve_territoire(SIREN_SEM)
    assert profil(None) is PROFIL_SEM and sem.profil is PROFIL_SEM is PROFILS[SIREN_SEM]
    assert libelles(sem) is SEM and libelles(None) is SEM and SEM.profil is PROFIL_SEM
    assert PROFIL_SEM.lambert93 and PROFIL_SEM.qva and PROFIL_SEM.rues and PROFIL_SEM.par_defaut
    # its words are data, read by the outputs
    assert SEM.attestation == PROFIL_SEM.mots["attestation"]
    assert SEM.qpv_autres == "QPV d'autres EPCI (non éligibles)"


def test_other_territories_get_a_profile_built_from_their_name() -> None:
    lyon, france = resolve_territoire(LYON), resolve_territoire("france")
    assert lyon.profil == Profil(nom="Métropole de Lyon", sigle="Métropole de Lyon")
    assert not (lyon.profil.qva or lyon.profil.rues or lyon.profil.lambert93)
    assert france.profil.france and not france.profil.par_defaut
    mots = libelles(lyon)
    assert mots.attestation == "Attestation de vérification — éligibilité QPV (Métropole de Lyon)"
    assert titre_rapport(SimpleNamespace(territoire=lyon)) == f"{TITRE_RAPPORT} — Métropole de Lyon"


def test_a_territory_with_qva_streets_and_words_needs_only_a_row(monkeypatch) -> None:
    lyon = resolve_territoire(LYON)
    monkeypatch.setitem(PROFILS, LYON, Profil(
        nom="Métropole de Lyon", sigle="Lyon", par_defaut=True, qva=True, rues=True,
        mots={"attestation": "Attestation — Cité de l'emploi, Métropole de Lyon",
              "qpv_autres": "QPV voisins (non éligibles)"}))
    mots = libelles(lyon)
    assert mots.a_des_qva and mots.rues and mots.par_defaut and mots is not SEM
    assert mots.attestation == "Attestation — Cité de l'emploi, Métropole de Lyon"
    assert mots.qpv_autres == "QPV voisins (non éligibles)"
    assert mots.qpv_court == "QPV de Lyon" and mots.titres["hors_territoire"].endswith(
        "hors territoire de la Métropole de Lyon")
    assert criteres_de(mots)["lieu"] == "Lieu de l'action dans un QPV de Lyon"
    assert status_words(mots)["hors_territoire"] == "Non éligible — hors Lyon"
    # the default territory's titles do not name it
    assert titre_sites(SimpleNamespace(territoire=lyon)) == TITRE_SITES
