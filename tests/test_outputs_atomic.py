"""Maps and reports are written aside and renamed when complete (issue 10.3): a failed write
(full disk) leaves the previous file as it was, no temporary behind, a French error; the CLI
exits 2."""

from __future__ import annotations

import errno
import os
import pathlib
from pathlib import Path

import pytest

from qpv_geo.batch import read_validated
from qpv_geo.exceptions import InputFileError

DATA = Path(__file__).parent / "data" / "coverage"


@pytest.fixture(scope="module")
def sites():
    return read_validated(DATA / "sites_valides.csv")


_REAL_BYTES = pathlib.Path.write_bytes


def _previous(path: Path, data: bytes) -> None:
    _REAL_BYTES(path, data)


@pytest.fixture()
def full_disk(monkeypatch):
    """Path.write_text / write_bytes write half of their data, then fail with ENOSPC."""
    real_text, real_bytes = pathlib.Path.write_text, pathlib.Path.write_bytes

    def text(self, data, *args, **kwargs):
        real_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    def data_(self, data):
        real_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", text)
    monkeypatch.setattr(pathlib.Path, "write_bytes", data_)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_map_write_failure_keeps_the_previous_map(sites, reference, tmp_path,
                                                  full_disk) -> None:
    from qpv_geo.reporting.maps import write_map

    out = tmp_path / "carte.html"
    _previous(out, b"<html>previous</html>")
    with pytest.raises(InputFileError, match="disque est plein"):
        write_map(sites, out, reference=reference, tiles=None)
    assert out.read_bytes() == b"<html>previous</html>"
    assert _only(tmp_path) == ["carte.html"]


def test_report_write_failure_keeps_the_previous_report(sites, reference, tmp_path,
                                                        full_disk) -> None:
    from qpv_geo.reporting.report import write_report

    out = tmp_path / "rapport.html"
    _previous(out, b"<html>previous</html>")
    with pytest.raises(InputFileError, match="disque est plein"):
        write_report(sites, out, reference=reference)
    assert out.read_bytes() == b"<html>previous</html>"
    assert _only(tmp_path) == ["rapport.html"]


def test_pdf_write_failure_keeps_the_previous_pdf(tmp_path, full_disk) -> None:
    pytest.importorskip("weasyprint")
    from qpv_geo.reporting.report import write_pdf

    out = tmp_path / "rapport.pdf"
    _previous(out, b"%PDF previous")
    with pytest.raises(InputFileError, match="disque est plein"):
        write_pdf("<html><body><p>Rapport</p></body></html>", out)
    assert out.read_bytes() == b"%PDF previous"
    assert _only(tmp_path) == ["rapport.pdf"]


def test_cli_map_on_a_full_disk_exits_2(tmp_path, full_disk) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    res = CliRunner().invoke(app, ["map", str(DATA / "sites_valides.csv"), "-o",
                                   str(tmp_path / "c.html"), "--tiles", "none"])
    assert res.exit_code == 2, res.output
    assert "disque est plein" in res.output and not (tmp_path / "c.html").exists()


# ------------------------------------------------ issue 21.1: one guard for every command


def _validated(tmp_path: Path) -> tuple[Path, bytes]:
    """A batch output with its synthesis, as `qpv-geo batch` leaves it."""
    from qpv_geo.batch import validate_file

    src = tmp_path / "sites.csv"
    src.write_text("Porteur;Latitude;Longitude\nAsso A;45,4335;4,3790\n", encoding="utf-8")
    out = tmp_path / "ex.csv"
    validate_file(src, out, progress=False)
    return out, out.read_bytes()


@pytest.mark.parametrize("command", ["map", "report"])
@pytest.mark.parametrize("target", ["ex.csv", "lien.html", "ex-synthese.json"])
def test_map_and_report_never_write_over_their_input(tmp_path, command, target) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    out, before = _validated(tmp_path)
    (tmp_path / "lien.html").symlink_to(out)
    synthese = (tmp_path / "ex-synthese.json").read_bytes()
    res = CliRunner().invoke(app, [command, str(out), "-o", str(tmp_path / target),
                                   "--tiles", "none"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "il serait écrasé" in said, res.output
    assert "Traceback" not in res.output
    assert out.read_bytes() == before and (tmp_path / "ex-synthese.json").read_bytes() == synthese


def test_register_exports_never_write_over_the_register(tmp_path) -> None:
    from qpv_geo.register import Registre
    from qpv_geo.register.exports import export_registre
    from qpv_geo.register.fiche import write_fiche

    path = tmp_path / "registre.xlsx"  # a register whose name looks like an export
    with Registre(path) as reg:
        before = path.read_bytes()
        for write in (lambda: export_registre(reg, path),
                      lambda: write_fiche(reg, "X", tmp_path / "registre.xlsx-wal")):
            with pytest.raises(InputFileError, match="serait écrasé"):
                write()
    assert path.read_bytes() == before


def test_data_export_never_writes_over_the_layer_it_exports(reference, tmp_path) -> None:
    from qpv_geo.reference.install import export_layer

    layer = reference.layers["qpv"].path
    before = layer.read_bytes()
    with pytest.raises(InputFileError, match="serait écrasé"):
        export_layer(reference, "qpv", layer)
    assert layer.read_bytes() == before


# ----------------------------- issue 21 (Low): failed writes of every format said in French


def _coords(path: Path, rows: int) -> Path:
    lines = ["Porteur;Latitude;Longitude"] + [
        f"Association {k};45,{4300 + k % 500};4,{3700 + k % 300}" for k in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fail_the_write(monkeypatch, suffix: str, err: int) -> None:
    """The write of an XLSX (xlsxwriter) or a GeoPackage/GeoJSON (GDAL) fails as on a full
    disk or a read-only medium. Tests run as root, whom chmod does not stop: the library's
    own write raises what it raises there (xlsxwriter an OSError it wraps, GDAL an error
    without errno, the medium being full or read-only as statvfs then says)."""
    if suffix == ".xlsx":
        from xlsxwriter.workbook import Workbook

        def store(self):
            raise OSError(err, os.strerror(err))

        monkeypatch.setattr(Workbook, "_store_workbook", store)
        return
    import geopandas as gpd
    from pyogrio.errors import DataSourceError

    def to_file(self, path, *args, **kwargs):
        Path(path).write_bytes(b"SQLite format 3\x00 half")
        raise DataSourceError(f"sqlite3_open({path}) failed: disk I/O error")

    real = os.statvfs(".")

    class Full:  # what statvfs says of a full disk, or of a read-only mount
        f_flag = real.f_flag | (os.ST_RDONLY if err == errno.EROFS else 0)
        f_bavail = 0 if err == errno.ENOSPC else real.f_bavail
        f_frsize = real.f_frsize

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", to_file)
    monkeypatch.setattr(os, "statvfs", lambda _p: Full())


@pytest.mark.parametrize("suffix", [".xlsx", ".gpkg", ".geojson"])
@pytest.mark.parametrize(("err", "words"), [(errno.ENOSPC, "disque est plein"),
                                            (errno.EROFS, "lecture seule")])
def test_full_or_read_only_disk_for_every_output_format(tmp_path, monkeypatch, suffix, err,
                                                        words) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    src = _coords(tmp_path / "sites.csv", 5)
    out = tmp_path / f"resultat{suffix}"
    out.write_bytes(b"previous")
    _fail_the_write(monkeypatch, suffix, err)
    res = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), "-q"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and words in said, res.output
    assert "Traceback" not in res.output and "Error" not in res.output
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resultat" + suffix, "sites.csv"]


def test_data_export_and_import_on_a_full_disk(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app
    from qpv_geo.reference.layers import shipped_dir

    _fail_the_write(monkeypatch, ".gpkg", errno.ENOSPC)
    runner = CliRunner()
    res = runner.invoke(app, ["data", "export", "--layer", "qpv", "-o", str(tmp_path / "q.gpkg")])
    assert res.exit_code == 2 and "disque est plein" in " ".join(res.output.split()), res.output
    res = runner.invoke(app, ["data", "import", str(shipped_dir()
                                                    / "qpv2024_sem_fullprecision.geojson")],
                        env={"QPV_GEO_DATA_DIR": str(tmp_path / "donnees")})
    assert res.exit_code == 2 and "disque est plein" in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output


def _limited(size: int):
    def limit() -> None:  # ulimit -f: a write beyond `size` bytes fails with EFBIG
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    return limit


@pytest.mark.parametrize("args", [
    ["batch", "{src}", "-o", "{tmp}/r.csv"], ["batch", "{src}", "-o", "{tmp}/r.xlsx"],
    ["batch", "{src}", "-o", "{tmp}/r.gpkg"], ["batch", "{src}", "-o", "{tmp}/r.geojson"],
    ["data", "import", "{qpv}"]])
def test_file_size_limit_is_said_in_french(tmp_path, args) -> None:
    """A real `ulimit -f` (RLIMIT_FSIZE; Python ignores SIGXFSZ, so writes fail with EFBIG)."""
    import subprocess
    import sys

    from qpv_geo.reference.layers import shipped_dir

    src = _coords(tmp_path / "sites.csv", 3000)
    qpv = shipped_dir() / "qpv2024_sem_fullprecision.geojson"
    argv = [a.format(src=src, tmp=tmp_path, qpv=qpv) for a in args]
    env = {**os.environ, "QPV_GEO_DATA_DIR": str(tmp_path / "donnees"),
           "QPV_GEO_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "qpv_geo", *argv, *(
        ["-q"] if argv[0] == "batch" else [])], capture_output=True, text=True, env=env,
        preexec_fn=_limited(40_000), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "taille maximale" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("r")]


@pytest.mark.parametrize("out", ["boucle.csv", "boucle/r.csv"])
def test_a_link_loop_in_the_output_path_is_said_in_french(tmp_path, out) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    for name in ("boucle.csv", "boucle.html", "boucle"):
        (tmp_path / name).symlink_to(tmp_path / name)
    src = _coords(tmp_path / "sites.csv", 2)
    runner = CliRunner()
    for args in (["batch", str(src), "-o", str(tmp_path / out), "-q"],
                 ["map", str(src), "-o", str(tmp_path / out.replace(".csv", ".html"))]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert "boucle de liens symboliques" in " ".join(res.output.split())


def test_file_names_that_are_not_utf8(tmp_path) -> None:
    """Bytes of another system's encoding in a name (« café » in Latin-1): every output is
    written, the names shown with « � »."""
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    src = _coords(tmp_path / "caf\udce9.csv", 3)  # b"caf\xe9.csv" on disk
    runner = CliRunner()
    for suffix in (".csv", ".xlsx", ".gpkg", ".geojson"):
        out = tmp_path / f"r\udce9{suffix}"
        res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q"])
        assert res.exit_code == 0 and out.stat().st_size > 0, res.output
    res = runner.invoke(app, ["report", str(tmp_path / "r\udce9.csv"), "-o",
                              str(tmp_path / "rapport\udce9.html")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "rapport\udce9.html").read_text(encoding="utf-8")
    assert "r\ufffd.csv" in page
    facts = (tmp_path / "r\udce9-synthese.json").read_text(encoding="utf-8")
    assert '"nom": "r\ufffd.csv"' in facts
    # read back by GDAL (which takes UTF-8 names only), imported, exported
    res = runner.invoke(app, ["map", str(tmp_path / "r\udce9.gpkg"), "-o",
                              str(tmp_path / "c.html"), "--tiles", "none"])
    assert res.exit_code == 0 and "(3 sites" in res.output, res.output
    res = runner.invoke(app, ["data", "export", "--layer", "qpv", "-o",
                              str(tmp_path / "q\udce9.shp")])
    assert res.exit_code == 0 and (tmp_path / "q\udce9.dbf").exists(), res.output
    from qpv_geo.reference.layers import shipped_dir

    layer = tmp_path / "qpv\udce9.geojson"
    layer.write_bytes((shipped_dir() / "qpv2024_sem_fullprecision.geojson").read_bytes())
    res = runner.invoke(app, ["data", "import", str(layer)],
                        env={"QPV_GEO_DATA_DIR": str(tmp_path / "donnees")})
    assert res.exit_code == 0 and "installée" in res.output, res.output


@pytest.mark.parametrize("encoding", ["rot13", "base64", "zlib", "idna", "punycode", "utf-16"])
def test_encodings_that_cannot_read_a_text_file_are_said_in_french(tmp_path, encoding) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    src = _coords(tmp_path / "sites.csv", 2)
    res = CliRunner().invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q",
                                   "--encoding", encoding])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "n'est pas un encodage de fichier texte" in said or f"illisible en {encoding}" in said


def test_the_dask_output_goes_through_the_same_guard(tmp_path) -> None:
    pytest.importorskip("dask")
    from qpv_geo.batch.national import validate_national

    (tmp_path / "boucle.csv").symlink_to(tmp_path / "boucle.csv")
    src = _coords(tmp_path / "sites.csv", 2)
    with pytest.raises(InputFileError, match="boucle de liens symboliques"):
        validate_national(src, tmp_path / "boucle.csv")


def test_a_cache_that_cannot_be_written_never_stops_the_work(tmp_path) -> None:
    """The geocoding cache on a full disk (SQLite's own « database or disk is full », through
    its page limit) or in a folder it cannot open: the work goes on, without it."""
    from qpv_geo._http import ResultCache

    cache = ResultCache(tmp_path / "cache.sqlite")
    cache.set_many({"a": 1})
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")
    cache.set_many({f"k{i}": "x" * 5000 for i in range(50)})  # no room: not kept, no error
    assert not cache.persistent and cache.get("a") == 1 and cache.get("k1") is None
    cache.close()
    (tmp_path / "dossier.sqlite").mkdir()  # cannot be opened as a database
    memory = ResultCache(tmp_path / "dossier.sqlite")
    memory.set_many({"b": 2})
    assert not memory.persistent and memory.get("b") == 2


def test_demo_never_writes_over_the_file_it_validates(tmp_path) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    runner = CliRunner()
    out = tmp_path / "demo"
    out.mkdir()
    src = _coords(out / "carte.html", 2)  # the sites file where the map would go
    before = src.read_bytes()
    res = runner.invoke(app, ["demo", "--output", str(out), "--fichier", str(src)])
    assert res.exit_code == 2 and "il serait écrasé" in " ".join(res.output.split()), res.output
    assert src.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["carte.html"]
    res = runner.invoke(app, ["demo", "--output", str(src)])  # a file where the folder goes
    assert res.exit_code == 2 and "pas un dossier" in " ".join(res.output.split()), res.output
