"""Maps and reports are written aside and renamed when complete (issue 10.3): a failed write
(full disk) leaves the previous file as it was, no temporary behind, a French error; the CLI
exits 2."""

from __future__ import annotations

import errno
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
    from qpv_geo.maps import write_map

    out = tmp_path / "carte.html"
    _previous(out, b"<html>previous</html>")
    with pytest.raises(InputFileError, match="disque est plein"):
        write_map(sites, out, reference=reference, tiles=None)
    assert out.read_bytes() == b"<html>previous</html>"
    assert _only(tmp_path) == ["carte.html"]


def test_report_write_failure_keeps_the_previous_report(sites, reference, tmp_path,
                                                        full_disk) -> None:
    from qpv_geo.report import write_report

    out = tmp_path / "rapport.html"
    _previous(out, b"<html>previous</html>")
    with pytest.raises(InputFileError, match="disque est plein"):
        write_report(sites, out, reference=reference)
    assert out.read_bytes() == b"<html>previous</html>"
    assert _only(tmp_path) == ["rapport.html"]


def test_pdf_write_failure_keeps_the_previous_pdf(tmp_path, full_disk) -> None:
    pytest.importorskip("weasyprint")
    from qpv_geo.report import write_pdf

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
    from qpv_geo.registre import Registre
    from qpv_geo.registre.exports import export_registre
    from qpv_geo.registre.fiche import write_fiche

    path = tmp_path / "registre.xlsx"  # a register whose name looks like an export
    with Registre(path) as reg:
        before = path.read_bytes()
        for write in (lambda: export_registre(reg, path),
                      lambda: write_fiche(reg, "X", tmp_path / "registre.xlsx-wal")):
            with pytest.raises(InputFileError, match="serait écrasé"):
                write()
    assert path.read_bytes() == before


def test_data_export_never_writes_over_the_layer_it_exports(reference, tmp_path) -> None:
    from qpv_geo.reference import export_layer

    layer = reference.layers["qpv"].path
    before = layer.read_bytes()
    with pytest.raises(InputFileError, match="serait écrasé"):
        export_layer(reference, "qpv", layer)
    assert layer.read_bytes() == before
