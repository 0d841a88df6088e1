"""Outside France is outside (issue 19, point 6): the zones are lon/lat rectangles that also
hold Barcelona, Geneva, Brussels and Roseau; the country outlines (approximate, Natural Earth)
say where a bare point is, and a point of another overseas collectivity is outside an EPCI of
Guadeloupe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.reference import countries as _pays
from qpv_geo.settings import Settings

runner = CliRunner()
CAP_EXCELLENCE = "200018653"  # CA CAP Excellence (Pointe-à-Pitre, Les Abymes, Baie-Mahault)
LYON = "200046977"

ABROAD = {  # five decimals: the figures say nothing coarser than a metre
    "Barcelone": (2.16861, 41.38741, "en Espagne"),
    "Genève": (6.14321, 46.20441, "en Suisse"),
    "Bruxelles": (4.35171, 50.85031, "en Belgique"),
    "Roseau (Dominique)": (-61.38701, 15.30101, "en Dominique"),
    "Philipsburg (Sint Maarten)": (-63.05481, 18.02601, "Sint Maarten"),
    "Luxembourg": (6.12961, 49.61161, "au Luxembourg"),
}


@pytest.fixture(scope="module")
def france():
    return engine_from_settings(Settings.from_env(territoire="france"))


def _check(lon: float, lat: float, territoire: str) -> dict:
    res = runner.invoke(app, ["check", "--lat", str(lat), "--lon", str(lon), "--territoire",
                              territoire, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("place", sorted(ABROAD))
def test_foreign_places_are_not_in_france(place):
    lon, lat, where = ABROAD[place]
    v = _check(lon, lat, "france")
    assert v["status"] == "hors_territoire", v
    assert not any("en France" in m for m in v["motifs"]), v
    assert any(m.startswith("hors de France") and where in m and "approchés" in m
               for m in v["motifs"]), v
    assert "Saint-Étienne" not in v["statut_libelle"]


def test_same_answer_in_a_batch_and_french_places_unchanged(france):
    names = sorted(ABROAD)
    lon = [ABROAD[k][0] for k in names] + [2.35221, 4.38011, 55.45011, -52.33011]
    lat = [ABROAD[k][1] for k in names] + [48.85661, 45.43011, -20.88011, 4.93011]
    frame = france.judge_lonlat(lon, lat)
    assert list(frame["status"].iloc[:len(names)]) == ["hors_territoire"] * len(names)
    french = frame.iloc[len(names):]
    assert set(french["status"]) <= {"hors_qpv", "eligible"}, french[["status", "motifs"]]
    assert all("hors de France" not in m for m in french["motifs"])


def test_near_a_border_the_outlines_do_not_decide(france):
    # Kehl, across the Rhine from Strasbourg: 0,8 km from the French outline
    v = france.judge_point(lon=7.81361, lat=48.57061)
    assert v.status == "a_verifier", v
    assert any("frontière avec l'Allemagne" in m and "vérifiez" in m for m in v.motifs)
    # an address's commune code places it: no doubt from the outlines
    frame = france.judge_lonlat([7.81361], [48.57061], citycodes=["67482"])
    assert frame["status"].iloc[0] == "hors_qpv"


def test_a_point_in_a_qpv_stays_in_it(france):
    from qpv_geo.reference.territories import qpv_france

    gdf, _ = qpv_france()
    row = gdf[gdf["code_qp"] == "QN06719I"].iloc[0]  # Port du Rhin, on the German border
    p = row.geometry.representative_point()
    assert france.judge_point(lon=p.x, lat=p.y).status in ("eligible", "a_verifier")


def test_other_overseas_collectivities_are_outside_an_epci_of_guadeloupe():
    cases = {
        "Martinique": (-61.00013, 14.70013, "en Martinique"),
        "Saint-Martin": (-63.05011, 18.07081, "à Saint-Martin"),
        "Saint-Barthélemy": (-62.83013, 17.90013, "à Saint-Barthélemy"),
        "Dominique": (-61.38701, 15.30101, "en Dominique"),
    }
    for name, (lon, lat, where) in cases.items():
        v = _check(lon, lat, CAP_EXCELLENCE)
        assert v["status"] == "hors_territoire", (name, v)
        assert any(where in m for m in v["motifs"]), (name, v)
    engine = engine_from_settings(Settings.from_env(territoire=CAP_EXCELLENCE))
    frame = engine.judge_lonlat([c[0] for c in cases.values()], [c[1] for c in cases.values()])
    assert set(frame["status"]) == {"hors_territoire"}


def test_another_epci_sees_geneva_abroad():
    v = _check(6.14321, 46.20441, LYON)
    assert v["status"] == "hors_territoire" and any("en Suisse" in m for m in v["motifs"])


def test_the_outlines_say_they_are_approximate():
    from qpv_geo.reference.layers import read_manifest, shipped_dir

    entry = read_manifest(shipped_dir())["layers"]["pays"]
    assert entry["simplified"] is True and "APPROCHÉS" in entry["precision"]
    assert "pas des limites officielles" in entry["precision"]
    etat, pays = _pays.etat_des_points([2.16861, 2.35221, np.nan], [41.38741, 48.85661, np.nan])
    assert list(etat) == [_pays.ETRANGER, _pays.FRANCE, _pays.DOUTE]
    assert pays[0] == "Espagne"


def test_cells_of_one_answer_give_what_the_outlines_give_point_by_point(monkeypatch):
    """Issue 24: cells whose points all get the same answer (in France, far from any land,
    inside one foreign country) are classified once; every point gets what the outlines give
    it point by point — over metropolitan France and its neighbours, the Antilles, Guiana,
    and around the borders and coasts."""
    rng = np.random.default_rng(19)
    lon = [rng.uniform(-5.5, 10.0, 60_000), rng.uniform(-63.5, -60.5, 20_000),
           rng.uniform(-55.0, -51.0, 10_000)]
    lat = [rng.uniform(41.0, 51.5, 60_000), rng.uniform(14.0, 18.5, 20_000),
           rng.uniform(2.0, 6.0, 10_000)]
    # points on cell corners and edges, and within a hair of them
    k = rng.integers(-600, 1000, 20_000) * _pays._CELLULE_DEG / 10
    lon.append(np.round(k, 9) + rng.choice([0.0, 1e-12, -1e-12], len(k)))
    lat.append(np.round(rng.integers(4100, 5150, len(k)) * _pays._CELLULE_DEG / 10, 9))
    lon, lat = np.concatenate(lon), np.round(np.concatenate(lat), 6)
    _pays._cellules.cache_clear()
    got = _pays.etat_des_points(lon, lat)
    again = _pays.etat_des_points(lon[::-1], lat[::-1])  # cells known now
    states = _pays._cellules().etats[1]
    assert {_pays._CELLULE_FRANCE, _pays._CELLULE_LOIN} <= set(states)
    assert (states >= _pays._CELLULE_PAYS).any() and (states == 0).any()
    with monkeypatch.context() as m:  # every point through the outlines
        m.setattr(_pays, "_etats_des_cellules", lambda p, x, y: np.zeros(len(x), np.int8))
        want = _pays.etat_des_points(lon, lat)
    for a, b in ((got, want), ((again[0][::-1], again[1][::-1]), want)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert set(want[0]) == {_pays.FRANCE, _pays.ETRANGER, _pays.DOUTE}


def test_a_batch_says_each_country_as_each_point_alone(france):
    """Issue 24: the reasons of a batch's points abroad, near a border or at sea are written
    once per distinct (state, country) and given to their rows: each row reads what the same
    point judged alone reads (several countries, repeated, mixed with French points)."""
    places = [ABROAD[k][:2] for k in sorted(ABROAD)] + [
        (7.81361, 48.57061), (-3.5, 46.5), (2.35221, 48.85661), (-4.5, 44.0)]
    order = np.random.default_rng(3).permutation(np.arange(3 * len(places)) % len(places))
    lon = np.array([places[i][0] for i in order])
    lat = np.array([places[i][1] for i in order])
    frame = france.judge_lonlat(lon, lat, geocodes=[None] * len(lon))
    for row, (lo, la) in zip(frame.itertuples(), zip(lon, lat, strict=True), strict=True):
        alone = france.judge_point(lon=float(lo), lat=float(la))
        assert (row.status, row.motifs) == (alone.status, " ; ".join(alone.motifs))
    assert frame["motifs"].str.contains("frontière avec l'Allemagne").any()
    assert frame["motifs"].str.contains("loin de toute terre").any()
