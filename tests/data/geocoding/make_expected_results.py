"""Records ``resultats-attendus.jsonl``: the local geocoder's answers on the demonstration file
for a fixed sample of queries (tests/test_geocoding_same_results.py).

Recorded from the code before issue 24's speed work (commit aacaef5), so that the faster
geocoder is held to the very same results::

    PYTHONPATH=<tree> .venv/bin/python tests/data/geocoding/make_expected_results.py

The queries: the tricky ones written by hand below, then positives, negatives and issue 19's
commune classes drawn by ``benchmarks/bench_geocoding.py`` with fixed seeds.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_geocoding as bench  # noqa: E402

import qpv_geo.geocoding.local as local_module  # noqa: E402
from qpv_geo.geocoding import (  # noqa: E402
    AddressQuery,
    LocalGeocoder,
    communes_sem,
    demo_adresses_path,
    read_ban_csv,
)

TRICKY: list[str | dict] = [
    "42007 ST ETIENNE CEDEX", "Saint-Étienne (Loire)", "rue", "Rue", "Cours", "Place du",
    "8 Mai 1945", "rue du 8 mai 1945", "12 rue du 8 Mai 1945 Saint-Etienne",
    "12 rue du 8 mai 1950, 42000 Saint-Étienne", "42100 Saint-Étienne", "Saint-Étienne",
    "12 rue de la République 42000 St-Etienne", "12 r de la republque st etienne",
    "3 bis rue Victor Hugo, 42000 Saint-Étienne", "3b r Victor Hugo 42000",
    "10 rue Victor Hugo Saint-Victor-sur-Loire", "Saint-Victor-sur-Loire",
    "5 place Jean Jaurès, Terrenoire", "Rochetaillée", "Le Bourg", "Mairie", "Loire",
    "12 rue Paul Bert", "12 rue Paul Bert Lyon", "12 rue Paul Bert 69003 Lyon",
    "1 rue de la Paix, 75002 Paris", "12 rue de la Paix 42300", "Appt 12, 4 rue Gambetta",
    "4 rue Gambetta bâtiment C 2e étage", "45.4335, 4.3790", "", "   ", "xqzw prtk",
    "42000, Saint-Étienne, 12 rue Gambetta", "26 Allée Francis Garnier Genia",
    {"adresse": "12 rue de la République", "postcode": "42007", "city": "Saint-Etienne Cedex 1"},
    {"adresse": "12 rue de la République", "city": "Saint-Étienne (Loire)"},
    {"adresse": "12 rue de la République", "city": "Saint-Étienne (42)"},
    {"adresse": "12 rue de la République", "city": "Saint-Victor-sur-Loire"},
    {"adresse": "12 rue de la République", "city": "St Etiene"},
    {"adresse": "12 rue de la République", "city": "Lyon"},
    {"adresse": "12 rue de la République", "postcode": "42000"},
    {"adresse": "rue", "city": "Saint-Étienne"},
    {"adresse": "8 Mai 1945", "postcode": "42000", "city": "Saint-Étienne"},
    {"adresse": "12 rue Gambetta", "citycode": "42218"},
]


def queries() -> list[str | dict]:
    df = read_ban_csv(demo_adresses_path(), insee=[c.insee for c in communes_sem()])
    df = df[(df["nom_voie"] != "") & (df["lon"] != "") & (df["lat"] != "")]
    out: list[str | dict] = list(TRICKY)
    out += bench.make_queries(df, 120, 42)["query"].tolist()
    out += bench.make_negatives(df, 48, 2026)["query"].tolist()
    cq = bench.make_commune_queries(df, 3, 1919)
    out += cq["query"].tolist()
    out += [{"adresse": r.adresse, "postcode": r.code_postal or None, "city": r.commune or None}
            for r in cq.itertuples()]
    return out


def as_query(q: str | dict) -> str | AddressQuery:
    return q if isinstance(q, str) else AddressQuery(**q)


def results(g: LocalGeocoder, qs: list[str | dict]) -> list[dict]:
    one = [g.geocode(as_query(q)).__dict__ for q in qs]
    many = [r.__dict__ for r in g.geocode_many([as_query(q) for q in qs])]
    assert many == one  # the same answer one by one and in a batch
    return json.loads(json.dumps(one, ensure_ascii=False))


def main() -> None:
    qs = queries()
    with tempfile.TemporaryDirectory() as tmp:
        g = LocalGeocoder(demo_adresses_path(), cache_dir=Path(tmp) / "a", demo=True)
        expected = results(g, qs)
        local_module.PREFILTER_MIN = 0  # the 3-gram prefilter on every scope (as at ×10)
        g = LocalGeocoder(demo_adresses_path(), cache_dir=Path(tmp) / "b", demo=True)
        assert results(g, qs) == expected
    lines = [json.dumps({"query": q, "result": r}, ensure_ascii=False)
             for q, r in zip(qs, expected, strict=True)]
    (HERE / "resultats-attendus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(len(qs), "requêtes")


if __name__ == "__main__":
    main()
