"""QPV the simplified national copy reduced to a point: nearby points are « à vérifier »."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from qpv_geo._french import hors
from qpv_geo.cli import app
from qpv_geo.eligibility.engine import Engine
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.reference.territories import RAYON_QPV_PERDU_M
from qpv_geo.settings import Settings

runner = CliRunner()
CHAMPIOUX = (2.22828, 48.93913)  # the point QN09503I was reduced to (Argenteuil, 95018)
# Argenteuil, its EPCI (the Métropole du Grand Paris: the ANCT file files its QPV under the EPT
# Boucle Nord de Seine, 200057990), all of France
TERRITOIRES = ("95018", "200054781", "france")


def _north_of(lonlat: tuple[float, float], metres: float) -> tuple[float, float]:
    x, y = Engine.lonlat_to_l93([lonlat[0]], [lonlat[1]])
    lon, lat = Engine.l93_to_lonlat(x, y + metres)
    return round(float(lon[0]), 7), round(float(lat[0]), 7)


def _names_champioux(motifs: str, metres: int) -> bool:
    return ("QN09503I « Champioux »" in motifs and "contour inconnu" in motifs
            and f"réduit à un point situé à {metres} m" in motifs
            and "fichier officiel de l'ANCT" in motifs)


@pytest.fixture(scope="module", params=TERRITOIRES)
def territoire_engine(request) -> Engine:
    return engine_from_settings(Settings.from_env(territoire=request.param))


@pytest.mark.parametrize("territoire", TERRITOIRES)
@pytest.mark.parametrize("metres", [50, 600])
def test_check_near_a_lost_qpv_is_a_verifier(territoire: str, metres: int) -> None:
    lon, lat = _north_of(CHAMPIOUX, metres)
    res = runner.invoke(app, ["check", "--territoire", territoire, "--lat", str(lat),
                              "--lon", str(lon), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "a_verifier"
    assert any(_names_champioux(m, metres) for m in out["motifs"]), out["motifs"]
    # no invented edge: neither the candidate across an edge nor « dans aucun QPV »
    assert out["candidat_autre_cote"] is None
    assert not any("aucun QPV" in m for m in out["motifs"])


def test_batch_near_a_lost_qpv(tmp_path) -> None:
    rows = [(_north_of(CHAMPIOUX, m), m) for m in (50, 600, 3000)]
    src = tmp_path / "sites.csv"
    src.write_text("nom;lat;lon\n" + "".join(f"à {m} m;{lat};{lon}\n"
                                              for (lon, lat), m in rows), encoding="utf-8")
    for territoire in TERRITOIRES:
        out_path = tmp_path / f"r-{territoire}.csv"
        res = runner.invoke(app, ["batch", str(src), "-o", str(out_path),
                                  "--territoire", territoire])
        assert res.exit_code == 0, res.output
        out = pd.read_csv(out_path, sep=";", dtype=str, keep_default_na=False,
                          encoding="utf-8-sig")
        assert list(out["status"][:2]) == ["a_verifier", "a_verifier"], territoire
        assert _names_champioux(out["motifs"][0], 50)
        assert _names_champioux(out["motifs"][1], 600)
        assert out["status"][2] == "hors_qpv" and "Champioux" not in out["motifs"][2]


def test_far_point_unchanged_and_single_equals_batch(territoire_engine: Engine,
                                                     monkeypatch) -> None:
    e = territoire_engine
    pts = [_north_of(CHAMPIOUX, m) for m in (0, 50, 600, 1900, 3000)]
    lon, lat = [p[0] for p in pts], [p[1] for p in pts]
    batch = e.judge_lonlat(lon, lat)
    assert list(batch["status"]) == ["a_verifier"] * 4 + ["hors_qpv"]
    for k, (lo, la) in enumerate(pts):  # the single-point path answers the same
        v = e.judge_point(lon=lo, lat=la).to_dict()
        for col in ("status", "code_qp", "code_qp_proche", "candidat_autre_cote"):
            assert v[col] == (None if pd.isna(batch[col][k]) else batch[col][k]), col
        assert v["motifs"] == [m for m in batch["motifs"][k].split(" ; ") if m]
    # 3 km away, farther than the QPV can extend: the verdict is the one without the rule
    monkeypatch.setattr(e.reference, "qpv_perdus", None)
    without = e.judge_lonlat(lon, lat)
    pd.testing.assert_series_equal(batch.iloc[4], without.iloc[4])
    assert list(without["status"][:3]) == ["hors_qpv"] * 3  # what was answered before


def test_radius_and_uncertainty_bound_the_rule(territoire_engine: Engine) -> None:
    e = territoire_engine
    inside = _north_of(CHAMPIOUX, RAYON_QPV_PERDU_M - 50)
    outside = _north_of(CHAMPIOUX, RAYON_QPV_PERDU_M + 50)
    frame = e.judge_lonlat([inside[0], outside[0], outside[0]],
                           [inside[1], outside[1], outside[1]],
                           precision_point_m=[10.0, 10.0, 100.0])
    # the point's own uncertainty widens the reach, as it widens an edge's margin
    assert list(frame["status"]) == ["a_verifier", "hors_qpv", "a_verifier"]


def test_a_point_surely_inside_a_real_qpv_stays_eligible() -> None:
    e = engine_from_settings(Settings.from_env(territoire="95018"))
    qpv = e.reference.qpv.set_index("code_qp").to_crs(2154)
    # Brigadières - Henri Barbusse (QN09504I), a few hundred metres from Champioux
    inner = qpv.loc["QN09504I"].geometry.buffer(-40)
    p = inner.representative_point()
    lon, lat = Engine.l93_to_lonlat([p.x], [p.y])
    x0, y0 = Engine.lonlat_to_l93([CHAMPIOUX[0]], [CHAMPIOUX[1]])
    assert np.hypot(p.x - x0[0], p.y - y0[0]) < RAYON_QPV_PERDU_M
    v = e.judge_point(lon=float(lon[0]), lat=float(lat[0]))
    assert v.status == "eligible" and v.code_qp == "QN09504I"


def test_lost_qpv_of_another_territory_and_no_fictional_perimeter() -> None:
    # Grand Paris Sud (Corbeil-Essonnes) does not hold Champioux: being in it would make the
    # point « in a QPV outside the territory », which differs from « hors QPV »
    e = engine_from_settings(Settings.from_env(territoire="200059228"))
    lon, lat = _north_of(CHAMPIOUX, 50)
    v = e.judge_point(lon=lon, lat=lat)
    assert v.status == "a_verifier"
    assert any("Champioux" in m and f"dans un QPV {hors(e.sigle_territoire)} (non éligible)" in m
               for m in v.motifs), v.motifs
    lost = e.reference.qpv_perdus
    assert list(lost["code_qp"]) == ["QN09105I", "QN09113I", "QN09503I"]
    assert list(lost["du_territoire"]) == [True, False, False]
    # nothing is drawn for them: no perimeter of the reference bears their codes
    for frame in (e.reference.qpv, e.reference.qpv_hors_sem):
        assert not frame["code_qp"].isin(lost["code_qp"]).any()
    assert any("QN09105I" in n and "contour inconnu" in n for n in e.reference.notes)


def test_grand_paris_holds_its_qpv_and_an_ept_is_refused_in_french() -> None:
    e = engine_from_settings(Settings.from_env(territoire="200054781"))
    assert e.nom_territoire == "Métropole du Grand Paris"
    # its QPV are filed under their EPT's SIREN: they belong to it by their communes
    assert {"QN09504I", "QN09506M", "QN07519M"} <= set(e.reference.qpv["code_qp"])
    res = runner.invoke(app, ["check", "--territoire", "200057990", "--lat", "48.94",
                              "--lon", "2.23"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "EPT Boucle Nord de Seine" in text and "200054781" in text


def test_sem_reference_has_no_lost_qpv(engine: Engine) -> None:
    default = engine_from_settings(Settings.from_env())
    assert default.reference.qpv_perdus is None and engine.reference.qpv_perdus is None


def test_only_points_within_reach_by_latitude_are_measured_same_answer():
    """Issue 24: the distance to a lost QPV is measured only for the points whose latitude
    alone keeps them within reach; the nearest lost QPV and its distance are those of
    measuring every point (points around each lost QPV at and beyond the reach, north, east,
    diagonal, with large position uncertainties)."""
    from qpv_geo.eligibility import _lost_qpv
    from qpv_geo.eligibility.verdict_table import A_VERIFIER, ELIGIBLE, HORS_QPV

    engine = engine_from_settings(Settings.from_env(territoire="france"))
    table = engine.reference.qpv_perdus
    assert len(table) >= 2
    rng = np.random.default_rng(4)
    lon0, lat0 = table["lon"].to_numpy(float), table["lat"].to_numpy(float)
    k = rng.integers(0, len(table), 30_000)
    step = rng.uniform(0, 3 * RAYON_QPV_PERDU_M, len(k)) / 111_000
    angle = rng.uniform(0, 2 * np.pi, len(k))
    lat = lat0[k] + step * np.sin(angle)
    lon = lon0[k] + step * np.cos(angle) / np.cos(np.radians(lat0[k]))
    lat[:50] = np.nan
    base = rng.choice([ELIGIBLE, HORS_QPV, A_VERIFIER], len(k))
    incert = rng.choice([0.0, 10.0, 1500.0, np.nan], len(k))
    c = type("C", (), {"bad": np.where(np.isnan(lat), 1, 0), "incertitude": incert})()
    which, dist = _lost_qpv.perdus_proches(table, c, lon, lat, base, ELIGIBLE, HORS_QPV,
                                           A_VERIFIER)
    # every point measured
    reach = RAYON_QPV_PERDU_M + np.nan_to_num(incert, nan=0.0)
    want_w, want_d = np.full(len(k), -1), np.full(len(k), np.nan)
    for j, mine in enumerate(table["du_territoire"].to_numpy(bool)):
        d = _lost_qpv.distance_m(lon, lat, lon0[j], lat0[j])
        changes = (base != ELIGIBLE) if mine else (base == HORS_QPV)
        hit = (d <= reach) & (changes | (base == A_VERIFIER)) & (np.isnan(want_d) | (d < want_d))
        want_w[hit], want_d[hit] = j, d[hit]
    np.testing.assert_array_equal(which, want_w)
    np.testing.assert_array_equal(dist, want_d)
    assert (which >= 0).sum() > 5000 and (which < 0).sum() > 5000
