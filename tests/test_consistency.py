"""The consistency rules: the commune written wins, a different street is not a match."""

from __future__ import annotations

import pytest

from qpv_geo.geocoding import GeocodeResult, reliability_issues
from qpv_geo.geocoding.consistency import check, read_written, street_similarity
from qpv_geo.reference.communes import communes_france


def _res(label: str, street: str | None, citycode: str, precision: str = "housenumber",
         score: float = 0.95) -> GeocodeResult:
    return GeocodeResult(query="q", lon=4.39, lat=45.44, label=label, score=score,
                         precision=precision, citycode=citycode, postcode="42000",
                         source="ban", street=street)


def test_national_list_is_the_shipped_one_and_knows_sem():
    cl = communes_france()
    assert len(cl) > 34_000
    sem = {c.insee for c in cl.by_insee.values() if c.kind == "C" and c.in_sem}
    assert len(sem) == 53 and "42218" in sem and "42279" not in sem
    assert [c.insee for c in cl.by_name("St-Etienne")] == ["42218"]
    assert {c.insee for c in cl.by_postcode("42170")} == {"42042", "42279"}


@pytest.mark.parametrize(("query", "insee"), [
    ("26 Allée des Coquelicots 69002 Lyon", "69123"),
    ("3 rue de la République 42300 Roanne", "42187"),
    ("5 place Bellecour 69002 Lyon", "69123"),
    ("1 rue Gambetta 42170 Saint-Just-Saint-Rambert", "42279"),
    ("12 rue de Paris, 75001 Paris", "75056"),
    ("Lyon 69002, 5 place Bellecour", "69123"),
])
def test_commune_written_outside_sem_wins_whatever_the_result(query, insee):
    # the geocoder answered with a confident point in SEM: the written commune decides
    res = check(query, _res("26 Allée des Coquelicots 42700 Firminy", "Allée des Coquelicots",
                            "42095"))
    assert res.hors_territoire and f"INSEE {insee}" in res.hors_territoire
    assert not res.found and res.citycode == insee
    assert reliability_issues(res, score_min=0.6) == [res.hors_territoire]


def test_postcode_alone_outside_sem():
    res = check("12 rue Gambetta 42170", _res("12 Rue Gambetta 42000 Saint-Étienne",
                                               "Rue Gambetta", "42218"))
    assert res.hors_territoire and "42170" in res.hors_territoire
    assert "Saint-Just-Saint-Rambert" in res.hors_territoire


def test_street_name_ending_like_a_commune_is_not_a_commune():
    # « rue de Lyon »: a street, not Lyon; « rue Paul Bert »: Bert (Allier) is the street's
    assert read_written("12 rue de Lyon").commune is None
    res = check("12 rue Paul Bert", _res("12 Rue Paul Bert 42000 Saint-Étienne",
                                         "Rue Paul Bert", "42218"))
    assert not res.issues and res.found
    # the same words without a matching street: « à vérifier », never a guess
    res = check("12 rue Paul Bert", _res("12 Rue Paul 42000 Saint-Étienne", "Rue Pasteur",
                                         "42218"))
    assert res.found and not res.hors_territoire
    assert any("Bert (03)" in i for i in res.issues)


def test_another_street_at_a_high_score_is_not_a_match():
    res = check("12 rue Balay 42000 Saint-Étienne",
                _res("12 Rue Sainte-Anne 42000 Saint-Étienne", "Rue Sainte-Anne", "42218"))
    assert any("rue trouvée : Rue Sainte-Anne, différente" in i for i in res.issues)
    res = check("12 rue Jean Jaurès 42000 Saint-Étienne",
                _res("12 Rue Jean Macé 42230 Saint-Étienne", "Rue Jean Macé", "42218"))
    assert any("Rue Jean Macé" in i for i in res.issues)
    assert reliability_issues(res, score_min=0.6)


@pytest.mark.parametrize("query", [
    "8 bd Jules Janin 42000 St-Etienne", "8 boulevard jules janin saint etienne",
    "8 Boulevard Jules Janni, 42000 Saint-Etiene", "Appt 4, 8 Bd Jules-Janin 42000",
])
def test_same_street_written_differently_is_a_match(query):
    res = check(query, _res("8 Boulevard Jules Janin 42000 Saint-Étienne",
                            "Boulevard Jules Janin", "42218"))
    assert res.issues == () and res.hors_territoire is None


def test_commune_and_postcode_disagree_or_result_elsewhere():
    res = check("8 bd Jules Janin 42400 Saint-Étienne",
                _res("8 Boulevard Jules Janin 42000 Saint-Étienne", "Boulevard Jules Janin",
                     "42218"))
    assert any("42400" in i and "Saint-Chamond" in i for i in res.issues)
    res = check("8 bd Jules Janin 42000 Saint-Étienne",
                _res("8 Boulevard Jules Janin 42700 Firminy", "Boulevard Jules Janin",
                     "42095"))
    assert any("résultat à Firminy" in i and "Saint-Étienne" in i for i in res.issues)
    res = check("8 bd Jules Janin 42100",
                _res("8 Boulevard Jules Janin 42700 Firminy", "Boulevard Jules Janin",
                     "42095"))
    assert any("code postal écrit 42100" in i for i in res.issues)


def test_number_absent_and_bare_commune():
    res = check("99 bd Jules Janin 42000 Saint-Étienne",
                _res("Boulevard Jules Janin 42000 Saint-Étienne", "Boulevard Jules Janin",
                     "42218", precision="street"))
    assert any("numéro 99 absent" in i for i in res.issues)
    res = check("42100 Saint-Étienne", _res("1 Rue de la Paix 42100 Saint-Étienne",
                                             "Rue de la Paix", "42218"))
    assert any("aucune voie demandée" in i for i in res.issues)
    ok = check("42100 Saint-Étienne", _res("42100 Saint-Étienne", None, "42218",
                                           precision="municipality"))
    assert ok.issues == ()


def test_street_similarity_orders_variants_above_other_streets():
    assert street_similarity("boulevard jules janin", "boulevard jules janin") == 100
    assert street_similarity("rue jean jaures", "rue jean mace") < 80
    assert street_similarity("rue victro hugo", "rue victor hugo") >= 80


def test_another_type_of_street_with_the_same_name_is_not_a_match():
    res = check("7 Route Charles de Gaulle, 42400 Saint-Chamond",
                _res("7 Rue Charles de Gaulle 42400 Saint-Chamond", "Rue Charles de Gaulle",
                     "42207"))
    assert any("autre type de voie" in i for i in res.issues)
    # a mistyped type is still the type of the street found
    ok = check("30 Boulevaod Jules Verne, 42500 Le Chambon-Feugerolles",
               _res("30 Boulevard Jules Verne 42500 Le Chambon-Feugerolles",
                    "Boulevard Jules Verne", "42044"))
    assert ok.issues == ()


def test_a_commune_name_after_a_comma_without_postcode_is_not_a_verdict():
    # « …, Les Granges » is a lieu-dit here and a commune of the Aube: never hors territoire
    # on a guess, « à vérifier » when it is not the street found
    res = check("Chez Martin, Les Granges", _res("Les Granges 42380 Aboën", "Les Granges",
                                                 "42001", precision="locality"))
    assert not res.hors_territoire and not any("Granges (10)" in i for i in res.issues)
    res = check("5 place Bellecour, Lyon", _res("5 Place Bellevue 42000 Saint-Étienne",
                                                "Place Bellevue", "42218"))
    assert not res.hors_territoire and any("Lyon (69)" in i for i in res.issues)


def test_a_homonym_of_a_sem_commune_is_not_outside_another_territory():
    """« Villars » written alone reads SEM's Villars (42) first; under the territory of
    Villars (84) it must not be « hors territoire », while « 42390 Villars » still is."""
    from qpv_geo.geocoding.consistency import written_outside
    from qpv_geo.reference.territories import resolve_territoire

    vaucluse = resolve_territoire("84145")
    assert written_outside("3 rue de la Poste, Villars", territoire=vaucluse) is None
    out = written_outside("3 rue de la Poste 42390 Villars", territoire=vaucluse)
    assert out is not None and "Villars (42)" in out.hors_territoire
    assert "hors Villars" in out.hors_territoire
    # SEM's reading is unchanged: Villars (42) is in SEM, Villars (84) with its postcode is not.
    assert written_outside("3 rue de la Poste, Villars") is None
    assert written_outside("3 rue de la Poste 84400 Villars") is not None
    lyon = resolve_territoire("200046977")
    pc = written_outside("3 rue de la Poste 42000", territoire=lyon)
    assert pc is not None and "hors de la Métropole de Lyon" in pc.hors_territoire


def test_a_homonym_found_outside_the_territory_is_to_be_checked():
    """Under the territory of Villars (84), « Villars » alone is that Villars: a result at
    Villars (42), SEM's, is not taken (« à vérifier », both named with their département)."""
    from qpv_geo.reference.territories import resolve_territoire

    vaucluse = resolve_territoire("84145")
    res = check("3 rue de la Poste, Villars",
                _res("Villars", None, "42330", precision="municipality"),
                territoire=vaucluse)
    assert res.hors_territoire is None
    assert any("Villars (42)" in i and "Villars (84)" in i for i in res.issues), res.issues


def test_a_result_in_another_commune_does_not_settle_hors_territoire(engine):
    """« 12 rue X 42000 Saint-Étienne » answered in Lyon: the commune is what is in doubt, so
    the result's commune cannot make a firm « hors territoire » (SEM and any territory)."""
    res = check("12 rue de la République 42000 Saint-Étienne",
                GeocodeResult(query="q", lon=4.8357, lat=45.7640, label="12 Rue de la "
                              "République 69001 Lyon", score=0.9, precision="housenumber",
                              citycode="69381", postcode="69001", source="ban",
                              street="Rue de la République"))
    assert res.commune_douteuse and res.hors_territoire is None
    verdict = engine.judge_point(geocode=res)
    assert verdict.status == "a_verifier", verdict.motifs
    assert any("Saint-Étienne" in m and "Lyon" in m for m in verdict.motifs)
    # a result in the commune written outside SEM stays « hors territoire »
    lyon = check("12 rue de la République 69001 Lyon",
                 GeocodeResult(query="q", lon=4.8357, lat=45.7640, label="12 Rue de la "
                               "République 69001 Lyon", score=0.9, precision="housenumber",
                               citycode="69381", postcode="69001", source="ban",
                               street="Rue de la République"))
    assert engine.judge_point(geocode=lyon).status == "hors_territoire"
