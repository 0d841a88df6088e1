"""Street names with numbers and dates, streets without a type word (issue 20, point 4).

« 14 Rue du 8 Mai 1945 42800 Rive-de-Gier », typed exactly as in the address file, gave « rue
différente (similarité 70 %) »: the year was cut off the street asked. « Le Coin », « Les
Granges » (streets without a type word, numbered in the address file) were lieux-dits with a
301 m margin instead of streets judged on all their addresses.
"""

from __future__ import annotations

import gzip

import pytest

from qpv_geo.eligibility.engine import Engine
from qpv_geo.geocoding import GeocodeResult, LocalGeocoder
from qpv_geo.geocoding.consistency import check, read_written
from qpv_geo.geocoding.files import demo_adresses_path
from qpv_geo.settings import Settings

HEADER = ("id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;"
          "code_insee_ancienne_commune;nom_ancienne_commune;x;y;lon;lat;type_position;alias;"
          "nom_ld;libelle_acheminement;nom_afnor;source_position;source_nom;"
          "certification_commune;cad_parcelles")

DATES = [  # (house number, street as in the address file, postcode, commune)
    (14, "Rue du 8 Mai 1945", "42800", "Rive-de-Gier"),
    (3, "Rue du 19 Mars 1962", "42400", "Saint-Chamond"),
    (2, "Place du 4 Septembre 1870", "42000", "Saint-Étienne"),
    (7, "Avenue du 11 Novembre 1918", "42100", "Saint-Étienne"),
    (5, "Rue du 14 Juillet", "42152", "L'Horme"),
]


@pytest.fixture(scope="module")
def demo_geocoder() -> LocalGeocoder:
    return LocalGeocoder.from_settings(Settings.from_env(), demo=True)


@pytest.mark.parametrize(("number", "street", "postcode", "commune"), DATES)
def test_the_house_number_is_not_a_number_of_the_street_name(number, street, postcode,
                                                             commune):
    w = read_written(f"{number} {street} {postcode} {commune}")
    assert w.number == number
    assert w.street.split()[-1] == street.split()[-1].lower()  # the year stays in the name
    no_number = read_written(f"{street} {postcode} {commune}")
    assert no_number.number is None and no_number.street == w.street


@pytest.mark.parametrize(("number", "street", "postcode", "commune"), DATES)
def test_a_date_street_typed_as_in_the_file_is_the_same_street(number, street, postcode,
                                                               commune):
    query = f"{number} {street} {postcode} {commune}"
    found = GeocodeResult(query=query, lon=4.39, lat=45.44, label=query, score=0.95,
                          precision="housenumber", citycode=None, postcode=postcode,
                          source="ban", street=street)
    assert not [i for i in check(query, found).issues if "rue" in i], check(query, found)
    other = GeocodeResult(query=query, lon=4.39, lat=45.44, label="x", score=0.95,
                          precision="housenumber", citycode=None, postcode=postcode,
                          source="ban", street=" ".join(
                              str(int(w) + 1) if w.isdigit() else w for w in street.split()))
    # another date is another street, however close the letters
    assert any("différente de la rue demandée" in i for i in check(query, other).issues)


def _file_rows() -> list[dict[str, str]]:
    with gzip.open(demo_adresses_path(), "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    head = lines[0].split(";")
    return [dict(zip(head, line.split(";"), strict=True)) for line in lines[1:]]


def test_every_numbered_street_of_the_file_matches_itself(demo_geocoder):
    # each street whose name holds a number, typed exactly as in the address file
    seen, asked = set(), []
    for r in _file_rows():
        key = (r["code_insee"], r["nom_voie"])
        if key in seen or not any(ch.isdigit() for ch in r["nom_voie"]) or not r["numero"]:
            continue
        seen.add(key)
        asked.append(f"{r['numero']} {r['nom_voie']} {r['code_postal']} {r['nom_commune']}")
    assert len(asked) >= 2
    for query, res in zip(asked, demo_geocoder.geocode_many(asked), strict=True):
        assert res.precision == "housenumber", (query, res)
        assert not any("rue" in i for i in res.issues), (query, res.issues)


def test_rive_de_gier_end_to_end(engine: Engine, demo_geocoder):
    res = demo_geocoder.geocode("14 Rue du 8 Mai 1945 42800 Rive-de-Gier")
    v = engine.judge_point(geocode=res)
    assert not any("rue trouvée" in m for m in v.motifs), v.motifs


def test_a_local_file_with_date_streets(tmp_path):
    path = tmp_path / "adresses.csv"
    lines = [HEADER]
    for k, (number, street, postcode, commune) in enumerate(DATES):
        insee = {"Rive-de-Gier": "42186", "Saint-Chamond": "42207", "Saint-Étienne": "42218",
                 "L'Horme": "42110"}[commune]
        for n in (number, number + 2):
            lon, lat = 4.38 + k / 100 + n / 10000, 45.44
            lines.append(f"{insee}_X{k}_{n};{insee}_X{k};{n};;{street};{postcode};{insee};"
                         f"{commune};;;0;0;{lon:.6f};{lat:.6f};entrée;;;;;;;;")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    g = LocalGeocoder(path, cache_dir=tmp_path / "cache")
    for number, street, postcode, commune in DATES:
        res = g.geocode(f"{number} {street} {postcode} {commune}")
        assert res.found and res.precision == "housenumber" and res.street == street, res
        assert not res.issues, res.issues


@pytest.mark.parametrize(("name", "postcode", "commune"), [
    ("Les Granges", "42380", "Aboën"),
    ("Le Coin", "42480", "La Fouillouse"),
])
def test_a_numbered_street_without_type_word_is_a_street(engine, demo_geocoder, name, postcode,
                                                        commune):
    res = demo_geocoder.geocode(f"{name} {postcode} {commune}")
    assert res.precision == "street" and res.street == name, res
    v = engine.judge_point(geocode=res)
    assert v.marge_m < 50, v  # judged on its addresses, not a 301 m lieu-dit margin
    assert any(m.startswith("voie ") and f"« {name} »" in m for m in v.motifs), v.motifs


def test_the_103_streets_without_type_word_are_streets(demo_geocoder):
    from qpv_geo.geocoding.index import STREET
    from qpv_geo.reference.text import STREET_TYPES, match_key

    untyped = [i for i, n in enumerate(demo_geocoder.s_name)
               if demo_geocoder.s_end[i] > demo_geocoder.s_start[i]
               and (match_key(str(n)).split() or [""])[0] not in STREET_TYPES]
    assert len(untyped) >= 100
    assert all(demo_geocoder.s_kind[i] == STREET for i in untyped)
