"""Reference layers: checksums, schemas, export, import, and update from a local fake server."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from qpv_geo.eligibility.engine import Engine
from qpv_geo.exceptions import DownloadError, InputFileError, ReferenceDataError
from qpv_geo.reference.install import export_layer, import_layer, remove_installed, update_qpv
from qpv_geo.reference.layers import (
    NOTE_DEMO,
    NOTE_EXTRAIT,
    NOTE_SIMPLIFIEE,
    installed_dir,
    layer_infos,
    load_reference,
    shipped_dir,
)
from qpv_geo.settings import Settings

from .conftest import DATA


@pytest.fixture(scope="module")
def loire(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 24 QPV of the Loire (SEM's 20 and the 4 others) in one file, like a national extract."""
    parts = [gpd.read_file(shipped_dir() / f) for f in
             ("qpv2024_sem_fullprecision.geojson", "qpv2024_loire_hors_sem.geojson")]
    gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
    gdf = gdf.drop(columns=["fid", "precision", "precision_m"]).sort_values("code_qp")
    path = tmp_path_factory.mktemp("loire") / "qpv2024_loire_42.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def test_shipped_manifest_matches_files() -> None:
    infos = layer_infos(Settings(data_dir=Path("/nonexistent"), cache_dir=Path("/nonexistent")))
    for name in ("qpv", "qpv_hors_sem", "communes", "qva_liste", "qpv_liste_loire"):
        info = infos[name]
        assert info.origin == "embarquée"
        assert hashlib.sha256(info.path.read_bytes()).hexdigest() == info.sha256
        assert info.source and info.licence and info.millesime
    assert infos["qva"].origin == "absente"
    assert not infos["qpv"].simplified and not infos["qpv"].demo and not infos["qpv"].official
    assert infos["qpv"].precision_m == 1.0 and "non vérifiable" in infos["qpv"].note


def test_version_and_notes(reference) -> None:
    assert "extrait exact ANCT sha256:bac26f0c" in reference.version
    assert NOTE_EXTRAIT in reference.notes and NOTE_SIMPLIFIEE not in reference.notes
    assert not any("officiel vérifié" in n for n in reference.notes)
    # Precision per feature: Montbrison exact, Roanne simplified.
    prec = dict(zip(reference.qpv_hors_sem["code_qp"], reference.qpv_hors_sem["precision_m"],
                    strict=True))
    assert prec == {"QN04201M": 1.0, "QN04217M": 11.0, "QN04218M": 11.0, "QN04219I": 11.0}
    assert (reference.qpv["precision_m"] == 1.0).all()
    assert len(reference.qva_liste) == 12
    assert reference.epci_name("200035731") == "Roannais Agglomération"


def test_export_layers_for_qgis(reference, tmp_path: Path) -> None:
    for layer, ext, n in (("qpv", "gpkg", 20), ("communes", "geojson", 53)):
        out = export_layer(reference, layer, tmp_path / f"{layer}.{ext}")
        back = gpd.read_file(out)
        assert len(back) == n
        assert back["donnees"].iloc[0] == reference.version
        assert NOTE_EXTRAIT in back["avertissement"].iloc[0]
    with pytest.raises(InputFileError, match="Extension"):
        export_layer(reference, "qpv", tmp_path / "qpv.txt")


def test_import_qva_perimeters_then_reset(settings: Settings) -> None:
    info = import_layer(DATA / "demo" / "qva_demo.geojson", "qva", settings)
    assert info.features == 3 and info.demo  # "QD…" codes: demonstration, flagged as such
    ref = load_reference(settings)
    assert len(ref.qva) == 3
    assert ref.demo and NOTE_DEMO in ref.notes
    engine = Engine(ref)
    p = ref.qva.to_crs(2154).geometry.iloc[0].representative_point()
    inside = engine.judge_xy([p.x], [p.y]).iloc[0]
    assert inside["status"] in {"qva", "a_verifier"}
    assert inside["code_qp"] == ref.qva["code_qp"].iloc[0]
    assert remove_installed("qva", settings)
    assert len(load_reference(settings).qva) == 0


def test_tampered_installed_layer_is_refused(settings: Settings) -> None:
    info = import_layer(DATA / "demo" / "qva_demo.geojson", "qva", settings)
    info.path.write_text(info.path.read_text(encoding="utf-8").replace("Démo", "Dxmo"),
                         encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="somme de contrôle"):
        load_reference(settings)


def test_import_refuses_unusable_files(loire: Path, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="introuvable"):
        import_layer(tmp_path / "absent.geojson", "qpv", settings)
    garbage = tmp_path / "garbage.geojson"
    garbage.write_bytes(b"\x00\x01 not a geojson")
    with pytest.raises(InputFileError, match="Impossible de lire"):
        import_layer(garbage, "qpv", settings)
    # QPV without siren_epci: we cannot tell SEM's apart.
    no_siren = tmp_path / "no_siren.geojson"
    gdf = gpd.read_file(loire).drop(columns=["siren_epci"])
    gdf.to_file(no_siren, driver="GeoJSON")
    with pytest.raises(InputFileError, match="siren_epci"):
        import_layer(no_siren, "qpv", settings)
    # Old (2015) codes are not QPV 2024.
    old = tmp_path / "old.geojson"
    gdf = gpd.read_file(loire)
    gdf["code_qp"] = [f"QP042{i:03d}" for i in range(len(gdf))]
    gdf.to_file(old, driver="GeoJSON")
    with pytest.raises(InputFileError, match="QPV 2024"):
        import_layer(old, "qpv", settings)
    with pytest.raises(InputFileError, match="Couche inconnue"):
        import_layer(loire, "routes", settings)


class _Server:
    def __init__(self, routes: dict[str, tuple[int, bytes]]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                status, body = outer.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture()
def official_zip(loire: Path) -> tuple[bytes, str]:
    """A zip laid out like the data.gouv.fr resource, holding the Loire QPV as 'official'."""
    content = loire.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SHP/README.txt", "shapefile omitted in the fixture")
        zf.writestr("GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson", content)
    return buf.getvalue(), hashlib.sha256(content).hexdigest()


@pytest.fixture()
def server(official_zip: tuple[bytes, str]) -> Iterator[_Server]:
    srv = _Server({"/qpv.zip": (200, official_zip[0]), "/broken": (500, b"boom")})
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_update_installs_the_official_file(settings: Settings, server: _Server,
                                           official_zip: tuple[bytes, str]) -> None:
    s = settings.with_(qpv_url=f"{server.url}/qpv.zip", qpv_sha256=official_zip[1])
    info = update_qpv(s)
    assert info.origin == "installée" and not info.simplified
    assert info.features == 24  # SEM's 20 and the Loire neighbours within reach
    ref = load_reference(s)
    assert len(ref.qpv) == 20 and len(ref.qpv_hors_sem) == 4
    assert NOTE_SIMPLIFIEE not in ref.notes and NOTE_EXTRAIT not in ref.notes
    assert "officielle" in ref.version
    manifest = json.loads((installed_dir(s) / "manifest.json").read_text())
    assert manifest["layers"]["qpv"]["sha256"] == info.sha256
    assert not list((s.cache_dir / "downloads").glob("*"))  # the download is not kept


def test_update_refuses_a_wrong_checksum_and_a_server_error(settings: Settings,
                                                            server: _Server) -> None:
    with pytest.raises(DownloadError, match="somme de contrôle"):
        update_qpv(settings.with_(qpv_url=f"{server.url}/qpv.zip", qpv_sha256="0" * 64))
    with pytest.raises(DownloadError, match="Téléchargement impossible"):
        update_qpv(settings.with_(qpv_url=f"{server.url}/broken"))
    assert layer_infos(settings)["qpv"].origin == "embarquée"  # nothing half-installed


def test_an_imported_file_is_not_called_official_unless_its_checksum_says_so(
        loire: Path, settings: Settings, tmp_path: Path) -> None:
    info = import_layer(loire, "qpv", settings)
    assert not info.official
    ref = load_reference(settings)
    assert "importée" in ref.version and "officielle" not in ref.version
    assert any("non vérifiés comme fichier officiel" in n for n in ref.notes)
    assert NOTE_SIMPLIFIEE not in ref.notes
    # The official GeoJSON downloaded by hand is recognised by its sha256.
    s = settings.with_(qpv_sha256=hashlib.sha256(loire.read_bytes()).hexdigest())
    assert import_layer(loire, "qpv", s).official
    assert "officielle" in load_reference(s).version


def test_corsican_codes_are_qpv_2024_codes(loire: Path, settings: Settings,
                                           tmp_path: Path) -> None:
    gdf = gpd.read_file(loire)
    gdf.loc[gdf["code_qp"] == "QN04201M", "code_qp"] = "QN02A01M"
    path = tmp_path / "avec_corse.geojson"
    gdf.to_file(path, driver="GeoJSON")
    assert import_layer(path, "qpv", settings).features == 24


class _Killed(BaseException):
    """A kill -9 right after the download: nothing after it runs."""


def test_a_download_left_by_a_killed_run_is_never_taken_for_another_url(
        settings: Settings, server: _Server, monkeypatch) -> None:
    """Issue 21.9: after a kill once the download finished, `data update --url B --no-verify`
    installed the file of URL A and recorded B (even a URL that does not exist) as its
    source."""
    from qpv_geo.reference import install as reference_install

    def killed(*_args, **_kwargs):
        raise _Killed

    with monkeypatch.context() as m:  # the download of A completes, then the process dies
        m.setattr(reference_install, "_extract_geojson", killed)
        m.setattr(Path, "unlink", lambda *_a, **_k: None)  # no clean-up after a kill -9
        with pytest.raises(_Killed):
            update_qpv(settings.with_(qpv_url=f"{server.url}/qpv.zip"), verify=False)
    assert list((settings.cache_dir / "downloads").iterdir())  # the killed run's file
    hits = len(server.hits)
    with pytest.raises(DownloadError, match="Téléchargement impossible"):
        update_qpv(settings.with_(qpv_url=f"{server.url}/absent.zip"), verify=False)
    assert server.hits[hits:] == ["/absent.zip"]
    assert layer_infos(settings)["qpv"].origin == "embarquée"  # nothing installed from A
    assert not list((settings.cache_dir / "downloads").glob("*.telechargement"))
