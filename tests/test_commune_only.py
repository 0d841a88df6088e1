"""Points known only to their commune (issue 20, point 5): the commune's centre is not the
place — no advice in metres to an edge, no « à moins de 300 m » in the coverage, and French
that reads (« n'a été trouvée qu'à la rue »)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.reporting.coverage import coverage_from_sites
from qpv_geo.reporting.next_steps import next_steps

runner = CliRunner()
ALPHA = "QN04201M"


def test_check_of_a_commune_gives_no_distance_to_an_edge():
    res = runner.invoke(app, ["check", "Firminy", "--geocoder", "demo"])
    out = " ".join(res.output.split())  # the panel wraps lines
    assert "qu'à la commune (Firminy)" in out and "centre de la commune" in out
    assert "passe à" not in out and "trop près pour trancher" not in out
    assert "Distance au bord" not in out and "trouvée que" not in out
    res = runner.invoke(app, ["check", "Firminy", "--geocoder", "demo", "--json"])
    v = json.loads(res.output)
    assert v["status"] == "a_verifier" and v["geocodage_precision"] == "municipality"
    assert not any("m du bord" in m or " à 242 m" in m for m in v["motifs"]), v["motifs"]
    assert any("position au centre de la commune seulement" in m and "Firminy Vert" in m
               for m in v["motifs"])


def test_api_and_page_say_the_same(monkeypatch):
    pytest.importorskip("fastapi")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient
    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app

    with TestClient(create_app(Settings.from_env(geocoder="demo"))) as c:
        html = c.get("/", params={"adresse": "Firminy"}).text
    assert "qu&#39;à la commune" in html or "qu'à la commune" in html
    assert "trop près pour trancher" not in html and "Distance au bord" not in html


@pytest.mark.parametrize(("precision", "words"), [
    ("street", "n'a été trouvée qu'à la rue, sans le numéro"),
    ("locality", "n'a été trouvée qu'au lieu-dit"),
])
def test_coarse_precisions_read_as_french(reference, precision, words):
    p = {"status": "a_verifier", "lat": None, "lon": None, "candidat_autre_cote": None,
         "geocodage": {"trouve": True, "label": "x", "precision": precision}}
    steps = next_steps(p, reference)
    assert any(words in s for s in steps), steps
    assert not any("trouvée que" in s for s in steps)


def test_coverage_counts_nothing_for_a_commune_centre(ref, sites):
    before = coverage_from_sites(sites, ref)
    near = sites["distance_qp_proche_m"].notna() & (sites["status"] == "hors_qpv")
    inside = sites["status"] == "eligible"
    moved = sites.assign(geocodage_precision=sites["geocodage_precision"].astype(object))
    first_near, first_in = near[near].index[0], inside[inside].index[0]
    moved.loc[[first_near, first_in], "geocodage_precision"] = "municipality"
    after = coverage_from_sites(moved, ref)
    assert after.sites_imprecis == 2 and before.sites_imprecis == 0
    assert set(after.liens["index"]) == set(before.liens["index"]) - {first_near, first_in}
    assert after.par_qpv["sites_proximite"].sum() < before.par_qpv["sites_proximite"].sum()
    assert after.par_qpv["sites_dans"].sum() == before.par_qpv["sites_dans"].sum() - 1
    # a lieu-dit's centre neither
    moved.loc[[first_near], "geocodage_precision"] = "locality"
    assert coverage_from_sites(moved, ref).sites_imprecis == 2
