"""The 247 overseas QPV 2024: served under ``france`` and overseas territories, each in the
official metric projection of its territory; SEM keeps metropolitan Lambert-93 only."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from qpv_geo.batch import validate_sites
from qpv_geo.batch.columns import detect_columns
from qpv_geo.cli import app
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.exceptions import CoordinateError
from qpv_geo.reference.territories import qpv_france, resolve_territoire
from qpv_geo.settings import Settings

runner = CliRunner()
# Official metric projection of each overseas département / collectivité, written here
# independently of qpv_geo.eligibility.projections (RGAF09, RGFG95, RGR92, RGM04, RGPF).
EPSG = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471, "978": 5490,
        "987": 3297}
CINOR = "249740119"  # CA Intercommunale du Nord de la Réunion
MAMOUDZOU = (45.2279, -12.7806)


@pytest.fixture(scope="module")
def national():
    gdf, _ = qpv_france()
    return gdf


def _metric(national, dep: str) -> gpd.GeoDataFrame:
    return national[national["insee_dep"].astype(str) == dep].to_crs(EPSG[dep])


def _interior(national, dep: str, depth: float = 40.0):
    """One QPV of ``dep`` (widest first) and a point ≥ ``depth`` m inside it, with the exact
    distance (m, in the territory's projection) from that point to the edge of the QPV."""
    metric = _metric(national, dep)
    row = metric.iloc[int(np.argmax(metric.area.to_numpy()))]
    inner = row.geometry.buffer(-depth)
    p = shapely.point_on_surface(inner)
    union = shapely.union_all(metric.geometry.values)  # the edge of the dissolved QPV layer
    expected = float(shapely.distance(p, union.boundary))
    lon, lat = gpd.GeoSeries([p], crs=EPSG[dep]).to_crs(4326).iloc[0].coords[0]
    return row, lon, lat, expected


@pytest.mark.parametrize("dep", sorted(EPSG))
def test_check_france_names_an_overseas_qpv(national, dep: str) -> None:
    row, lon, lat, expected = _interior(national, dep)
    res = runner.invoke(app, ["check", "--territoire", "france", "--lat", repr(lat),
                              "--lon", repr(lon), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "eligible" and out["code_qp"] == row["code_qp"]
    assert out["lib_qp"] == row["lib_qp"]
    assert out["distance_bord_m"] == pytest.approx(expected, abs=0.5)
    # Lambert-93 is not defined overseas: no x/y is written as such
    assert out["x_l93"] is None and out["y_l93"] is None
    assert out["lat"] == pytest.approx(lat, abs=1e-6)


def test_check_overseas_text_output_without_lambert93(national) -> None:
    _, lon, lat, _ = _interior(national, "974")
    res = runner.invoke(app, ["check", "--territoire", "france", "--lat", repr(lat),
                              "--lon", repr(lon)])
    assert res.exit_code == 0, res.output
    assert "Lambert-93 x" not in res.output and "Traceback" not in res.output


def test_point_200_m_outside_a_reunion_qpv(national) -> None:
    metric = _metric(national, "974")
    union = shapely.union_all(metric.geometry.values)
    row = metric.iloc[0]
    ring = row.geometry.buffer(200.0, quad_segs=64).exterior
    cands = shapely.points(shapely.get_coordinates(ring))
    d = shapely.distance(cands, union)
    p = cands[int(np.argmax(d))]  # the ring point farthest from every QPV: ≈ 200 m from row
    expected = float(shapely.distance(p, row.geometry))
    assert float(shapely.distance(p, union)) == pytest.approx(expected)
    assert expected == pytest.approx(200.0, abs=1.0)
    lon, lat = gpd.GeoSeries([p], crs=2975).to_crs(4326).iloc[0].coords[0]
    v = engine_from_settings(Settings.from_env(territoire="france")).judge_point(lon=lon, lat=lat)
    assert v.status == "hors_qpv" and v.code_qp is None
    assert v.code_qp_proche == row["code_qp"]
    assert v.distance_qp_proche_m == pytest.approx(expected, abs=0.5)
    assert v.x_l93 is None


def test_cinor_territory(national) -> None:
    assert resolve_territoire(CINOR).nom == "CA Intercommunale du Nord de la Réunion (CINOR)"
    cinor = national[national["siren_epci"] == CINOR]
    assert len(cinor) == 16
    metric = cinor.to_crs(2975)
    row = metric.iloc[0]
    p = shapely.point_on_surface(row.geometry.buffer(-30.0))
    lon, lat = gpd.GeoSeries([p], crs=2975).to_crs(4326).iloc[0].coords[0]
    for args, status, code in (((lat, lon), "eligible", row["code_qp"]),
                               ((MAMOUDZOU[1], MAMOUDZOU[0]), "hors_territoire", None),
                               ((45.4397, 4.3872), "hors_territoire", None)):
        res = runner.invoke(app, ["check", "--territoire", CINOR, "--lat", repr(args[0]),
                                  "--lon", repr(args[1]), "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert (out["status"], out["code_qp"]) == (status, code)
    assert "hors territoire de la CA Intercommunale du Nord de la Réunion" in out["statut_libelle"]
    assert any("en dehors de la CA Intercommunale du Nord" in m for m in out["motifs"])


def _point_in(row, epsg: int) -> tuple[float, float]:
    g = gpd.GeoSeries([row.geometry], crs=4326).to_crs(epsg).iloc[0]
    p = shapely.point_on_surface(g.buffer(-30.0))
    return gpd.GeoSeries([p], crs=epsg).to_crs(4326).iloc[0].coords[0]


def test_cacl_and_papeete_and_qpv_without_epci(national) -> None:
    assert resolve_territoire("249730045").nom == "CA du Centre Littoral"
    # no EPCI in Polynésie française nor Saint-Martin: never « NA » taken for a SIREN
    overseas = national[national["insee_dep"].astype(str).isin(["978", "987"])]
    assert len(overseas) == 91 and overseas["siren_epci"].isna().all()
    assert "NA" not in set(national["siren_epci"].dropna())
    papeete = engine_from_settings(Settings.from_env(territoire="98735"))
    assert papeete.reference.territoire.nom == "Papeete" and len(papeete.reference.qpv) == 8
    mine = papeete.reference.qpv.iloc[0]
    v = papeete.judge_point(lon=(p := _point_in(mine, 3297))[0], lat=p[1])
    assert v.status == "eligible" and v.code_qp == mine["code_qp"]
    assert v.label == "Éligible — dans un QPV de Papeete"
    faaa = overseas[(overseas["insee_dep"] == "987") & (overseas["insee_com"] != "98735")]
    other = faaa.iloc[0]
    lon, lat = _point_in(other, 3297)
    v = papeete.judge_point(lon=lon, lat=lat)  # same island, another commune's QPV
    assert v.status == "hors_territoire" and v.code_qp == other["code_qp"]
    assert any(f"de {other['lib_com']} (sans EPCI), hors Papeete" in m for m in v.motifs), \
        v.motifs
    assert not any("EPCI NA" in m or "EPCI inconnu" in m for m in v.motifs)


def test_coordinates_outside_every_zone_and_swapped() -> None:
    france = engine_from_settings(Settings.from_env(territoire="france"))
    with pytest.raises(CoordinateError, match="hors de France \\(métropole, Corse et outre-mer"):
        france.judge_point(lon=-74.0, lat=40.7)  # New York
    with pytest.raises(CoordinateError, match="inversées") as err:
        france.judge_point(lon=-20.88, lat=55.45)  # Saint-Denis (Réunion), swapped
    assert "Saint-Étienne" not in err.value.hint
    codes = france.check_lonlat_zones([55.45, -20.88, 4.39, 166.45], [-20.88, 55.45, 45.44, -22.27])
    assert codes.tolist() == [0, 4, 0, 8]


def test_sem_stays_metropolitan(engine) -> None:
    sem = engine_from_settings(Settings.from_env())
    assert sem.plan.lambert93
    with pytest.raises(CoordinateError, match="hors de France métropolitaine") as err:
        sem.judge_point(lon=55.45, lat=-20.88)
    assert "Saint-Étienne" in err.value.hint
    assert sem.check_lonlat_zones([55.45], [-20.88]).tolist() == [5]


def test_batch_mixed_points_equal_per_point_check(national) -> None:
    france = Settings.from_env(territoire="france")
    engine = engine_from_settings(france)
    rows = []
    for dep in ("971", "974", "976", "987"):
        _, lon, lat, _ = _interior(national, dep)
        rows += [(lon, lat), (lon + 0.004, lat + 0.003)]
    metro = national[national["code_qp"].isin(["QN04213M", "QN07519M"])]
    for geom in metro.geometry:
        p = shapely.point_on_surface(geom)
        rows += [(p.x, p.y), (p.x + 0.01, p.y)]
    rows += [(-74.0, 40.7), (-20.88, 55.45)]  # outside every zone, swapped
    frame = pd.DataFrame({"nom": [f"s{i}" for i in range(len(rows))],
                          "lat": [repr(r[1]) for r in rows], "lon": [repr(r[0]) for r in rows]})
    out = validate_sites(frame, detect_columns(frame), engine=engine).frame
    for i, (lon, lat) in enumerate(rows):
        try:
            v = engine.judge_point(lon=lon, lat=lat).to_dict()
            v["motifs"] = " ; ".join(v["motifs"])
        except CoordinateError:
            assert out["status"].iloc[i] == "non_geocode"
            continue
        for col in ("status", "code_qp", "code_qp_proche", "distance_bord_m",
                    "distance_qp_proche_m", "marge_m", "motifs", "lon", "lat"):
            got = out[col].iloc[i]
            got = None if got is None or (isinstance(got, float) and np.isnan(got)) else got
            assert got == v[col], (i, col, got, v[col])
    # the engine's own table: no Lambert-93 overseas, true Lambert-93 in metropolitan France
    table = engine.judge_lonlat([r[0] for r in rows], [r[1] for r in rows])
    assert table["x_l93"].iloc[:8].isna().all() and table["x_l93"].iloc[8:12].notna().all()
    assert {"eligible", "hors_qpv", "non_geocode"} <= set(out["status"])
    assert "hors de France (métropole, Corse et outre-mer" in out["motifs"].iloc[12]


def test_coordinates_typed_as_an_address_overseas(national) -> None:
    from qpv_geo.geocoding.coordinates import parse_coordinates

    for text in ("-20.88, 55.45", "55.45, -20.88", "55,45 -20,88"):
        c = parse_coordinates(text)
        assert c is not None and (c.lat, c.lon) == (-20.88, 55.45), text
    assert parse_coordinates("4.39862, 45.46881").lat == 45.46881  # metropolitan unchanged
    row, lon, lat, _ = _interior(national, "974")
    res = runner.invoke(app, ["check", f"{lon:.7f} {lat:.7f}", "--territoire", "france",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "eligible" and out["code_qp"] == row["code_qp"]
    assert out["geocodage_precision"] == "coordonnees" and out["x_l93"] is None
