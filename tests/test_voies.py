"""Streets decide what they can: a point known only at the street, judged by the whole street.

On the demonstration address file (invented streets drawn across the real QPV of SEM).
"""

from __future__ import annotations

import pytest

from qpv_geo.eligibility.engine import Engine
from qpv_geo.eligibility.street_rule import ENTIERE, HORS, LIMITE, PARTIE, Voies
from qpv_geo.geocoding import GeocodeResult, LocalGeocoder
from qpv_geo.settings import Settings


@pytest.fixture(scope="module")
def demo_geocoder() -> LocalGeocoder:
    return LocalGeocoder.from_settings(Settings.from_env(), demo=True)


def _street(geocoder: LocalGeocoder, name: str) -> GeocodeResult:
    r = geocoder.geocode(f"{name} 42160 Andrézieux-Bouthéon")
    assert r.precision == "street" and r.street == name, r
    return r


def test_a_street_entirely_in_a_qpv_is_eligible(engine: Engine, demo_geocoder) -> None:
    v = engine.judge_point(geocode=_street(demo_geocoder, "Rue du Progrès"))
    assert v.status == "eligible" and v.code_qp == "QN04202M" and v.lib_qp == "La Chapelle"
    assert any(m.startswith(f"{ENTIERE} dans le QPV QN04202M « La Chapelle » : les 26 "
                            "adresses") for m in v.motifs)
    assert not any("rue seulement" in m for m in v.motifs)
    assert v.marge_motif.startswith("marge ") and "adresses de la voie" in v.marge_motif


def test_a_street_outside_every_qpv_is_hors_qpv(engine: Engine, demo_geocoder) -> None:
    v = engine.judge_point(geocode=_street(demo_geocoder, "Allée Gabriel Péri"))
    assert v.status == "hors_qpv" and v.code_qp is None
    assert any(m.startswith(f"{HORS} : aucune des 26 adresses") for m in v.motifs)


def test_a_street_partly_in_or_along_a_qpv_is_to_review_naming_it(engine: Engine,
                                                                  demo_geocoder) -> None:
    part = engine.judge_point(geocode=_street(demo_geocoder, "Allée Jean Moulin"))
    assert part.status == "a_verifier" and part.candidat_autre_cote == "QN04202M"
    assert any(m.startswith(f"{PARTIE} dans le QPV QN04202M « La Chapelle » : nos 1 à 44 "
                            "dedans, nos 50 à 76 dehors") for m in part.motifs)
    edge = engine.judge_point(geocode=_street(demo_geocoder, "Cours de Bellevue"))
    assert edge.status == "a_verifier" and edge.candidat_autre_cote == "QN04202M"
    assert any(m.startswith(f"{LIMITE} du QPV QN04202M « La Chapelle » : no 82") for m in
               edge.motifs)


def test_a_number_absent_from_the_file_is_judged_by_its_street(engine: Engine,
                                                               demo_geocoder) -> None:
    r = demo_geocoder.geocode("1000 Rue du Progrès 42160 Andrézieux-Bouthéon")
    assert r.precision == "street"
    v = engine.judge_point(geocode=r)
    assert v.status == "eligible" and v.code_qp == "QN04202M"


def test_other_doubts_still_make_it_to_review(engine: Engine, demo_geocoder) -> None:
    from dataclasses import replace

    low = replace(_street(demo_geocoder, "Rue du Progrès"), score=0.3)
    v = engine.judge_point(geocode=low)
    assert v.status == "a_verifier" and any("score 0.30" in m for m in v.motifs)
    # A street unknown to the address file (online result): the point alone, « à vérifier ».
    other = replace(_street(demo_geocoder, "Rue du Progrès"), street="Rue Inconnue")
    assert engine.judge_point(geocode=other).status == "a_verifier"


def test_streets_are_classified_once_per_engine(engine: Engine, demo_geocoder) -> None:
    voies = Voies(demo_geocoder)
    i = voies.street("42005", "Rue du Progrès")
    assert i is not None and voies.street("42005", "Rue Inconnue") is None
    assert voies.classify(engine, i) is voies.classify(engine, i)
    # In batch: the same verdicts as one by one.
    rows = [_street(demo_geocoder, n) for n in ("Rue du Progrès", "Allée Gabriel Péri",
                                                "Allée Jean Moulin")]
    frame = engine.judge_lonlat([r.lon for r in rows], [r.lat for r in rows], geocodes=rows)
    assert list(frame["status"]) == ["eligible", "hors_qpv", "a_verifier"]
