"""Territories beyond SEM: another EPCI, a commune, the whole of France (national QPV layer)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.exceptions import SettingsError
from qpv_geo.reference.territories import qpv_france, resolve_territoire
from qpv_geo.settings import SIREN_SEM, Settings

runner = CliRunner()
LYON = "200046977"  # Métropole de Lyon


def _interior(geom_wgs) -> tuple[float, float, float]:
    """A point well inside a QPV (50 m from its edge when the QPV allows it): lon, lat, depth."""
    import geopandas as gpd

    g = gpd.GeoSeries([geom_wgs], crs=4326).to_crs(2154).iloc[0]
    for depth in (60.0, 40.0, 30.0):
        inner = g.buffer(-depth)
        if not inner.is_empty:
            p = shapely.point_on_surface(inner)
            lon, lat = gpd.GeoSeries([p], crs=2154).to_crs(4326).iloc[0].coords[0]
            return lon, lat, depth
    pytest.fail("QPV trop étroit pour un point intérieur")


@pytest.fixture(scope="module")
def national():
    gdf, _ = qpv_france()
    return gdf


@pytest.fixture(scope="module")
def france_engine():
    return engine_from_settings(Settings.from_env(territoire="france"))


def test_national_layer_is_simplified_and_checked(national) -> None:
    _, info = qpv_france()
    assert info.simplified and info.sha256 and info.precision_m == 12.0
    # 1,609 QPV (247 overseas included) minus 3 the simplified copy reduced to a point: those
    # are named in every verdict's notes, never silently answered « hors QPV »
    assert len(national) == 1606 and national["code_qp"].is_unique
    assert (national["insee_dep"].astype(str).str[:2].isin(["97", "98"])).sum() == 247
    lost = [q["code_qp"] for q in national.attrs["perdus"]]
    assert lost == ["QN09105I", "QN09113I", "QN09503I"]
    notes = engine_from_settings(Settings.from_env(territoire="france")).reference.notes
    assert any("QN09105I" in n and "contour inconnu" in n for n in notes)


def test_france_names_one_qpv_per_region(national, france_engine) -> None:
    metro = national[~national["insee_dep"].astype(str).str[:2].isin(["97", "98"])]
    regions = metro.groupby("lib_reg").head(1)  # overseas: tests/test_outremer.py
    assert len(regions) == 13  # the 13 metropolitan régions, Corsica included
    lons, lats = [], []
    for geom in regions.geometry:
        lon, lat, _ = _interior(geom)
        lons.append(lon)
        lats.append(lat)
    out = france_engine.judge_lonlat(lons, lats)
    assert list(out["code_qp"]) == list(regions["code_qp"])
    assert list(out["status"]) == ["eligible"] * 13
    for code, lon, lat in zip(regions["code_qp"], lons, lats, strict=True):
        v = france_engine.judge_point(lon=lon, lat=lat)  # the single-point path too
        assert v.code_qp == code and v.eligible
    assert "copie simplifiée" in out["donnees"].iloc[0]


def test_check_territoire_france_cli(national) -> None:
    row = national[national["code_qp"] == "QN07519M"].iloc[0]
    lon, lat, _ = _interior(row.geometry)
    res = runner.invoke(app, ["check", "--territoire", "france", "--lat", str(lat),
                              "--lon", str(lon), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "eligible" and out["code_qp"] == "QN07519M"
    assert out["lib_qp"] == row["lib_qp"] and out["territoire"] == "France"
    assert out["statut_libelle"] == "Dans un QPV 2024"


def test_epci_territory_and_other_qpv(national) -> None:
    lyon_qpv = national[national["siren_epci"] == LYON].iloc[0]
    lon, lat, _ = _interior(lyon_qpv.geometry)
    lyon = engine_from_settings(Settings.from_env(territoire=LYON)).judge_point(lon=lon, lat=lat)
    assert lyon.status == "eligible" and lyon.code_qp == lyon_qpv["code_qp"]
    assert lyon.label == "Éligible — dans un QPV de la Métropole de Lyon"
    st_etienne = engine_from_settings(Settings.from_env(territoire="42218"))
    other = st_etienne.judge_point(lon=lon, lat=lat)
    assert other.status == "hors_territoire"
    assert any("Métropole de Lyon" in m and "hors Saint-Étienne" in m for m in other.motifs)
    # far from every QPV: not in a QPV, and the territory is said to be unverified
    far = st_etienne.judge_lonlat([4.30001], [45.50001])
    assert far["status"].iloc[0] == "hors_qpv"
    assert "aucun contour communal installé" in far["motifs"].iloc[0]
    # with the address's commune code, the territory is decided by it
    by_code = st_etienne.judge_lonlat([4.30001, 4.30001], [45.50001, 45.50001],
                                      citycodes=["42218", "69123"])
    assert "dans Saint-Étienne (code commune de l'adresse)" in by_code["motifs"].iloc[0]
    assert by_code["status"].iloc[1] == "hors_territoire"


def test_resolve_territoire() -> None:
    assert resolve_territoire(SIREN_SEM).profil.par_defaut
    assert Settings(data_dir=".", cache_dir=".").territoire == SIREN_SEM
    commune = resolve_territoire("69123")  # Lyon: its arrondissements belong to it
    assert commune.genre == "commune" and "69381" in commune.communes
    assert "42218" in resolve_territoire("FRANCE").communes
    for bad in ("123456789", "99999"):
        with pytest.raises(SettingsError):
            resolve_territoire(bad)
    with pytest.raises(SettingsError, match="Territoire inconnu"):
        Settings.from_env(territoire="Lyon")


def test_bad_territoire_cli_is_french_exit_2() -> None:
    res = runner.invoke(app, ["check", "--territoire", "nulle-part", "--lat", "45.4",
                              "--lon", "4.4"])
    assert res.exit_code == 2
    assert "Territoire inconnu" in res.output and "Traceback" not in res.output


def test_sem_default_keeps_its_exact_reference(engine) -> None:
    default = engine_from_settings(Settings.from_env())
    assert default.contours and not default.reference.simplified
    assert default.reference.territoire is None
    v = default.judge_point(lon=4.3871, lat=45.4605)
    assert "territoire" not in v.to_dict()
    assert np.isfinite(len(default.zones))


def test_batch_territoire_labels_and_rows(tmp_path, national) -> None:
    lyon_qpv = national[national["siren_epci"] == LYON].iloc[0]
    lon, lat, _ = _interior(lyon_qpv.geometry)
    sem_lon, sem_lat, _ = _interior(national[national["code_qp"] == "QN04213M"].iloc[0].geometry)
    src = tmp_path / "sites.csv"
    src.write_text(f"nom;lat;lon\nA;{lat};{lon}\nB;{sem_lat};{sem_lon}\n", encoding="utf-8")
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"),
                              "--territoire", LYON])
    assert res.exit_code == 0, res.output
    assert "Éligible — dans un QPV de la Métropole de Lyon" in res.output.replace("\n", " ")
    out = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert lyon_qpv["code_qp"] in out and "QN04213M" in out
    assert "hors de la Métropole de Lyon" in out
    summary = (tmp_path / "r-synthese.json").read_text(encoding="utf-8")
    assert "QVA : aucun périmètre installé pour ce territoire" in summary
