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
