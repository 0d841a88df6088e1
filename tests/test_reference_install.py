"""Installing reference layers atomically (issue 10.4), bounded extraction of a downloaded zip
(10.7), atomic exports (10.3): a process killed at any step leaves the previous layers whole or
the new ones complete, never a layer whose checksum disagrees with its manifest."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest

from qpv_geo.exceptions import DownloadError, InputFileError
from qpv_geo.reference import store
from qpv_geo.reference.install import _extract_geojson, export_layer, import_layer, remove_installed
from qpv_geo.reference.layers import installed_dir, load_reference
from qpv_geo.settings import Settings

from .conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
QVA = DATA / "demo" / "qva_demo.geojson"
STEPS = ("couche", "manifeste", "dossier", "pointeur", "nettoyage")


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def qva_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo QVA file with two features only (the « new » version of the tests)."""
    gdf = gpd.read_file(QVA).iloc[:2]
    path = tmp_path_factory.mktemp("qva") / "qva_two.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


_KILLER = """
import os, signal, sys
from pathlib import Path
from qpv_geo.reference import store
from qpv_geo.reference.install import import_layer
from qpv_geo.settings import Settings

stop = sys.argv[3]
def after(step):
    if step == stop:
        os.kill(os.getpid(), signal.SIGKILL)
store.after_step = after
import_layer(Path(sys.argv[1]), "qva", Settings(data_dir=Path(sys.argv[2]),
                                                cache_dir=Path(sys.argv[2]) / "cache"))
"""


def _run_killer(source: Path, data_dir: Path, stop: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", _KILLER, str(source), str(data_dir), stop],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stop", STEPS)
def test_import_killed_at_each_step_leaves_old_or_new_whole(settings, qva_two, stop) -> None:
    import_layer(QVA, "qva", settings)  # the previous version: 3 perimeters
    proc = _run_killer(qva_two, settings.data_dir, stop)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ref = load_reference(settings)  # checksums verified: no half-installed layer
    expected = 2 if stop in ("pointeur", "nettoyage") else 3
    assert len(ref.qva) == expected
    # The next install cleans what the killed one left, and works.
    import_layer(QVA, "qva", settings)
    assert len(load_reference(settings).qva) == 3
    base = settings.data_dir / "reference"
    assert not [p for p in base.iterdir() if p.name.startswith(".nouvelle-")]


def test_import_killed_at_random_moments(settings, qva_two) -> None:
    import_layer(QVA, "qva", settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QPV_GEO_DATA_DIR": str(settings.data_dir),
           "QPV_GEO_CACHE_DIR": str(settings.cache_dir)}
    rng = random.Random(10)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "qpv_geo", "data", "import",
                                 str(qva_two), "--layer", "qva"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        n = len(load_reference(settings).qva)
        assert n in (2, 3)
        import_layer(QVA, "qva", settings)


def test_interrupted_import_in_process_keeps_the_previous_layer(settings, qva_two,
                                                                monkeypatch) -> None:
    import_layer(QVA, "qva", settings)

    def boom(step: str) -> None:
        if step == "manifeste":
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "after_step", boom)
    with pytest.raises(KeyboardInterrupt):
        import_layer(qva_two, "qva", settings)
    assert len(load_reference(settings).qva) == 3
    base = settings.data_dir / "reference"
    assert not [p for p in base.iterdir() if p.name.startswith(".nouvelle-")]


def test_former_layout_is_read_then_moved_to_versions(settings) -> None:
    base = settings.data_dir / "reference"
    base.mkdir(parents=True)
    src = gpd.read_file(QVA)
    src.to_file(base / "qva.geojson", driver="GeoJSON")
    from qpv_geo._files import sha256_file

    (base / "manifest.json").write_text(json.dumps({"schema": 1, "layers": {"qva": {
        "file": "qva.geojson", "sha256": sha256_file(base / "qva.geojson"),
        "features": 3}}}), encoding="utf-8")
    assert installed_dir(settings) == base
    assert len(load_reference(settings).qva) == 3
    import_layer(QVA, "qva", settings)
    assert installed_dir(settings) != base
    assert not (base / "manifest.json").exists()
    assert len(load_reference(settings).qva) == 3
    assert remove_installed("qva", settings)
    assert len(load_reference(settings).qva) == 0


def test_old_versions_are_pruned(settings) -> None:
    for _ in range(4):
        import_layer(QVA, "qva", settings)
    versions = [p for p in (settings.data_dir / "reference").iterdir()
                if p.is_dir() and p.name.startswith("v-")]
    assert len(versions) == 1 + store.KEEP_PREVIOUS


# ------------------------------------------------------------------ 10.7 zip bomb

def _zip(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


def test_update_zip_bomb_is_refused_before_extraction(tmp_path) -> None:
    bomb = tmp_path / "download"
    bomb.write_bytes(_zip("GEOJSON/QP2024_WGS84.geojson", b" " * (60 << 20)))
    assert bomb.stat().st_size < 1 << 20
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match=r"bombe zip|décompress"):
        _extract_geojson(bomb, work, Settings())
    assert not list(work.iterdir())


def test_update_extraction_is_capped(tmp_path) -> None:
    archive = tmp_path / "download"
    archive.write_bytes(_zip("GEOJSON/QP2024_WGS84.geojson", os.urandom(3 << 20)))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match="Mo"):
        _extract_geojson(archive, work, Settings(max_zip_decompresse_mb=1))
    assert not list(work.iterdir())


# ------------------------------------------------------------------ 10.3 export

def test_failed_export_leaves_the_previous_file(reference, tmp_path, monkeypatch) -> None:
    out = tmp_path / "qpv.geojson"
    out.write_text("previous", encoding="utf-8")

    def fail(self, *args, **kwargs):
        Path(args[0]).write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", fail)
    with pytest.raises(InputFileError, match="disque est plein"):
        export_layer(reference, "qpv", out)
    assert out.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["qpv.geojson"]


def test_export_refuses_a_missing_folder(reference, tmp_path) -> None:
    with pytest.raises(InputFileError, match="n'existe pas"):
        export_layer(reference, "qpv", tmp_path / "absent" / "qpv.gpkg")
    assert not (tmp_path / "absent").exists()


# ------------------------------------------------------------------ the address file too

_ADRESSES = Path(__file__).resolve().parent / "data" / "geocoding" / "adresses-test.csv"
_KILL_ADRESSES = """
import os, signal, sys
from pathlib import Path
from qpv_geo.reference import store
from qpv_geo.geocoding import install_adresses
from qpv_geo.settings import Settings

stop = sys.argv[3]
def after(step):
    if step == stop:
        os.kill(os.getpid(), signal.SIGKILL)
store.after_step = after
install_adresses(Path(sys.argv[1]), Settings(data_dir=Path(sys.argv[2]),
                                             cache_dir=Path(sys.argv[2]) / "cache"))
"""


@pytest.mark.parametrize("stop", ["dossier", "pointeur"])
def test_address_install_killed_keeps_a_whole_version(settings, tmp_path, stop) -> None:
    from qpv_geo._files import sha256_file
    from qpv_geo.geocoding import install_adresses, installed_adresses_info

    install_adresses(_ADRESSES, settings)
    before = installed_adresses_info(settings)
    smaller = tmp_path / "adresses-petit.csv"
    smaller.write_text("".join(_ADRESSES.read_text(encoding="utf-8").splitlines(True)[:11]),
                       encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_ADRESSES, str(smaller),
                           str(settings.data_dir), stop], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    info = installed_adresses_info(settings)
    assert info is not None and sha256_file(Path(info["path"])) == info["sha256"]
    assert info["rows"] == (before["rows"] if stop == "dossier" else 10)
