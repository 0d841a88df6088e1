"""Issue 24: the faster local geocoder gives the very same results as before.

``tests/data/geocoding/resultats-attendus.jsonl`` holds, for 268 queries (tricky ones and the
benchmark's samples), every field of the result the local geocoder gave on the demonstration
file before the speed work (recorded by ``make_expected_results.py``). The same answers are
expected one by one and in a batch, with the candidate prefilter where it applies today and on
every scope (as on a file with ten times the streets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qpv_geo.geocoding.local as local_module
from qpv_geo.geocoding import AddressQuery, LocalGeocoder, demo_adresses_path
from qpv_geo.geocoding.consistency import forget_read_queries

DATA = Path(__file__).parent / "data" / "geocoding" / "resultats-attendus.jsonl"


def _expected() -> list[tuple[str | AddressQuery, dict]]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        q = row["query"]
        out.append((q if isinstance(q, str) else AddressQuery(**q), row["result"]))
    return out


def _as_json(results) -> list[dict]:
    return json.loads(json.dumps([r.__dict__ for r in results], ensure_ascii=False))


@pytest.mark.parametrize("prefilter_min", [local_module.PREFILTER_MIN, 0],
                         ids=["prefilter-as-shipped", "prefilter-everywhere"])
def test_same_results_as_before_the_speed_work(tmp_path, monkeypatch, prefilter_min):
    monkeypatch.setattr(local_module, "PREFILTER_MIN", prefilter_min)
    rows = _expected()
    assert len(rows) == 268
    queries = [q for q, _ in rows]
    g = LocalGeocoder(demo_adresses_path(), cache_dir=tmp_path, demo=True)
    forget_read_queries()
    one = _as_json(g.geocode(q) for q in queries)
    for (q, want), got in zip(rows, one, strict=True):
        assert got == want, q
    assert _as_json(g.geocode_many(queries)) == one
    # read again from the caches of the words and communes read: still the same
    assert _as_json(g.geocode(q) for q in queries) == one


def test_the_sample_holds_the_tricky_queries():
    by_text = {q if isinstance(q, str) else q.text(): r for q, r in _expected()}
    assert by_text["42007 ST ETIENNE CEDEX"]["citycode"] == "42218"
    assert by_text["Saint-Étienne (Loire)"]["precision"] == "municipality"
    assert by_text["rue"]["lon"] is None and "type de voie" in by_text["rue"]["motif"]
    assert by_text["12 rue Paul Bert 69003 Lyon"]["hors_territoire"]
    statuses = {(r["precision"], bool(r["issues"]), bool(r["hors_territoire"]))
                for r in by_text.values()}
    assert len(statuses) >= 8  # found, in doubt, not found, outside, commune only…
