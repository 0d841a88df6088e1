"""The official national file installed by ``data update`` / ``data import`` serves every
territory other than SEM (layer ``qpv_france``), installed with SEM's layer in one switch.

The fake official file is the shipped simplified national layer with SEM's exact perimeters and,
for the three QPV the simplification reduced to a point, an outline (a square around that
point): so the tests can tell which layer answered (a point 50 m from Champioux is « à vérifier »
on the shipped copy and in QN09503I on the installed file)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.eligibility.engine import Engine
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.reference.install import import_layer, remove_installed, update_qpv
from qpv_geo.reference.layers import installed_dir, layer_infos, load_reference, shipped_dir
from qpv_geo.reference.territories import national_info, qpv_france
from qpv_geo.settings import Settings

from .test_reference import _Server

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
CHAMPIOUX = (2.22828, 48.93913)  # the point the shipped copy reduced QN09503I to
LOST = ("QN09105I", "QN09113I", "QN09503I")
#: Half side (m) of the square given to each lost QPV in the fake official file.
HALF_M = 150.0


def _north_of(lonlat: tuple[float, float], metres: float) -> tuple[float, float]:
    x, y = Engine.lonlat_to_l93([lonlat[0]], [lonlat[1]])
    lon, lat = Engine.l93_to_lonlat(x, y + metres)
    return round(float(lon[0]), 7), round(float(lat[0]), 7)


@pytest.fixture(scope="module")
def national_geojson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A national file laid out like the official one (its attributes, no lib_epci nor
    precision_m), from the shipped copy: SEM's exact outlines, squares for the lost QPV."""
    with gzip.open(shipped_dir() / "qpv2024_france_simplifiee.geojson.gz", "rt",
                   encoding="utf-8") as fh:
        data = json.load(fh)
    gdf = gpd.GeoDataFrame.from_features(data["features"], crs=4326)
    gdf = gdf.drop(columns=["lib_epci", "precision_m"])
    sem = gpd.read_file(shipped_dir() / "qpv2024_sem_fullprecision.geojson").set_index("code_qp")
    metric = gdf.to_crs(2154)
    geoms = list(gdf.geometry.values)
    for k, code in enumerate(gdf["code_qp"]):
        if code in sem.index:
            geoms[k] = sem.loc[code].geometry
        elif code in LOST:
            c = shapely.centroid(metric.geometry.values[k])
            square = shapely.box(c.x - HALF_M, c.y - HALF_M, c.x + HALF_M, c.y + HALF_M)
            geoms[k] = gpd.GeoSeries([square], crs=2154).to_crs(4326).iloc[0]
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, crs=4326))
    path = tmp_path_factory.mktemp("national") / "QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def official(national_geojson: Path) -> tuple[bytes, str]:
    """The data.gouv.fr zip around the national file, and the file's sha256."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson",
                    national_geojson.read_bytes())
    return buf.getvalue(), hashlib.sha256(national_geojson.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def server(official: tuple[bytes, str]) -> Iterator[_Server]:
    srv = _Server({"/qpv.zip": (200, official[0])})
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture()
def settings(tmp_path: Path, server: _Server, official: tuple[bytes, str],
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh data directory (also the CLI's), the fake server as the official source."""
    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QPV_GEO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("QPV_GEO_QPV_URL", f"{server.url}/qpv.zip")
    monkeypatch.setenv("QPV_GEO_QPV_SHA256", official[1])
    return Settings.from_env()


def _check(territoire: str, lonlat: tuple[float, float]) -> dict:
    res = runner.invoke(app, ["check", "--territoire", territoire, "--lat", str(lonlat[1]),
                              "--lon", str(lonlat[0]), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_update_installs_the_national_layer_and_check_answers_from_it(settings) -> None:
    near = _north_of(CHAMPIOUX, 50)  # inside the official square, 50 m from the lost point
    before = _check("95018", near)
    assert before["status"] == "a_verifier" and "simplifiée" in before["donnees"]
    assert any("QN09503I" in m and "contour inconnu" in m for m in before["motifs"])

    res = runner.invoke(app, ["data", "update"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 609 QPV" in text and "toute la France" in text

    info = national_info(settings)
    assert info.origin == "installée" and info.official and not info.simplified
    assert info.features == 1609 and info.precision_m == 1.0
    assert settings.qpv_sha256 in info.source  # the official download's sha256
    gdf, _ = qpv_france(settings)
    assert len(gdf) == 1609 and gdf.attrs["perdus"] == []
    assert gdf["lib_epci"].notna().sum() > 1500  # names taken from the shipped copy
    assert (gdf["insee_dep"].str[:2].isin(["97", "98"])).sum() == 247

    after = _check("95018", near)
    assert after["status"] == "eligible" and after["code_qp"] == "QN09503I"
    assert not any("contour inconnu" in m for m in after["motifs"])
    assert after["donnees"].startswith("QPV installée officielle")
    assert not any("simplifiée" in n for n in after["notes"]), after["notes"]
    assert "périmètre 1 m" in after["marge_motif"]
    far = _check("95018", _north_of(CHAMPIOUX, 600))  # outside the square: no lost-QPV rule
    assert far["status"] == "hors_qpv", far["motifs"]

    # the provenance: data info lists the national layer, the API gives its source
    res = runner.invoke(app, ["data", "info"])
    text = " ".join(res.output.split())
    assert "qpv_france" in text and "installée" in text and settings.qpv_sha256[:16] in text
    listed = json.loads(runner.invoke(app, ["data", "info", "--json"]).stdout)["qpv_france"]
    assert listed["origin"] == "installée" and listed["official"] and listed["features"] == 1609
    e = engine_from_settings(settings.with_(territoire="france"))
    couche = e.reference.version_dict()["couches"]["qpv"]
    assert couche["name"] == "qpv_france" and couche["official"]
    assert settings.qpv_sha256 in couche["source"]

    # reset: the shipped copy answers again (the rule of the lost QPV with it)
    res = runner.invoke(app, ["data", "reset", "--layer", "qpv"])
    assert res.exit_code == 0, res.output
    assert national_info(settings).origin == "embarquée"
    assert layer_infos(settings)["qpv"].origin == "embarquée"
    assert _check("95018", near) == before


def test_sem_is_unchanged_by_the_national_layer(settings, reference) -> None:
    update_qpv(settings)
    ref = load_reference(settings)
    assert ref.layers["qpv"].official and len(ref.qpv) == 20
    for a, b in zip(ref.qpv.sort_values("code_qp").geometry,
                    reference.qpv.sort_values("code_qp").geometry, strict=True):
        assert shapely.equals_exact(a, b, 1e-12)
    sem = engine_from_settings(settings)
    assert sem.reference.qpv_perdus is None and "qpv_france" not in sem.reference.layers


def test_a_fresh_process_reads_the_installed_layer(settings) -> None:
    update_qpv(settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("from qpv_geo.reference.territories import qpv_france; g, i = qpv_france(); "
            "print(i.origin, len(g), len(g.attrs['perdus']))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["installée", "1609", "0"], out.stderr


def test_caches_do_not_leak_between_data_dirs(settings, tmp_path) -> None:
    update_qpv(settings)
    other = Settings(data_dir=tmp_path / "autre", cache_dir=tmp_path / "autre-cache",
                     territoire="95018")
    installed = engine_from_settings(settings.with_(territoire="95018"))
    shipped = engine_from_settings(other)
    assert installed.reference.layers["qpv"].origin == "installée"
    assert shipped.reference.layers["qpv"].origin == "embarquée"
    assert list(shipped.reference.qpv_perdus["code_qp"]) == list(LOST)
    assert len(installed.reference.qpv_perdus) == 0
    assert engine_from_settings(settings.with_(territoire="95018")) \
        .reference.layers["qpv"].origin == "installée"
    assert qpv_france(other)[1].origin == "embarquée"


def test_a_hand_downloaded_national_file_is_installed_when_recognised(
        settings, national_geojson) -> None:
    info = import_layer(national_geojson, "qpv", settings)
    assert info.official
    nat = national_info(settings)
    assert nat.origin == "installée" and nat.official and nat.features == 1609
    # the same file, not recognised (another sha256): installed, never called official
    import_layer(national_geojson, "qpv", settings.with_(qpv_sha256="0" * 64))
    nat = national_info(settings)
    assert nat.origin == "installée" and not nat.official and nat.precision_m is None
    e = engine_from_settings(settings.with_(territoire="france"))
    assert "non vérifiés comme fichier officiel" in " ".join(e.reference.notes)
    assert "officielle" not in e.reference.version


def test_an_incomplete_file_leaves_the_shipped_national_copy(settings, national_geojson,
                                                              tmp_path) -> None:
    gdf = gpd.read_file(national_geojson)
    extract = tmp_path / "sans_champioux.geojson"
    gdf[gdf["code_qp"] != "QN09503I"].to_file(extract, driver="GeoJSON")
    import_layer(extract, "qpv", settings)
    assert layer_infos(settings)["qpv"].origin == "installée"
    assert national_info(settings).origin == "embarquée"  # a QPV missing: never installed


_KILL_UPDATE = """
import os, signal, sys
from pathlib import Path
from qpv_geo.reference import store
from qpv_geo.reference.install import update_qpv
from qpv_geo.settings import Settings

stop = sys.argv[2]
def after(step):
    if step == stop:
        os.kill(os.getpid(), signal.SIGKILL)
store.after_step = after
update_qpv(Settings(data_dir=Path(sys.argv[1]), cache_dir=Path(sys.argv[1]) / "cache",
                    qpv_url=sys.argv[3], qpv_sha256=sys.argv[4]))
"""


@pytest.mark.parametrize("stop", ["couche", "manifeste", "dossier", "pointeur"])
def test_update_killed_at_each_step_leaves_both_layers_old_or_new(settings, server, official,
                                                                  stop) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_UPDATE, str(settings.data_dir), stop,
                           f"{server.url}/qpv.zip", official[1]], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    new = stop == "pointeur"
    assert layer_infos(settings)["qpv"].origin == ("installée" if new else "embarquée")
    info = national_info(settings)
    assert info.origin == ("installée" if new else "embarquée")
    gdf, _ = qpv_france(settings)  # sha256 checked: never a half-written layer
    assert len(gdf) == (1609 if new else 1606)
    assert installed_dir(settings).name.startswith("v-") == new


def test_reset_of_qpv_removes_both_in_one_switch(settings) -> None:
    update_qpv(settings)
    manifest = json.loads((installed_dir(settings) / "manifest.json").read_text())
    assert {"qpv", "qpv_france"} <= set(manifest["layers"])
    assert remove_installed("qpv", settings)
    manifest = json.loads((installed_dir(settings) / "manifest.json").read_text())
    assert not {"qpv", "qpv_france"} & set(manifest["layers"])
    assert not list(installed_dir(settings).glob("qpv_france*"))


def test_the_api_gives_the_installed_national_layer(settings, tmp_path) -> None:
    import warnings

    with warnings.catch_warnings():  # Starlette announces httpx2: nothing to do here
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient
    from qpv_geo.web import create_app

    update_qpv(settings)
    web = settings.with_(territoire="95018", dossier_serveur=str(tmp_path / "serveur"))
    near = _north_of(CHAMPIOUX, 50)
    with TestClient(create_app(web)) as client:
        donnees = client.get("/api/v1/donnees").json()
        verdict = client.get("/api/v1/verdict", params={"lat": near[1], "lon": near[0]}).json()
    couche = donnees["couches"]["qpv"]
    assert couche["name"] == "qpv_france" and couche["origin"] == "installée"
    assert couche["official"] and settings.qpv_sha256 in couche["source"]
    assert not donnees["simplifiee"] and donnees["version"].startswith("QPV installée officielle")
    assert not any("simplifiée" in n for n in donnees["notes"])
    assert verdict["status"] == "eligible" and verdict["code_qp"] == "QN09503I"
