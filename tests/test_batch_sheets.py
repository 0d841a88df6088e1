"""Spreadsheets as people really send them (issues 20 and 21): a merged title above the
header, a « Total » row under the table, duplicate sites, mostly unreadable files, a stray
quote that swallows one row, and bounded work on files built to exhaust memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qpv_geo.batch import read_sites, validate_sites
from qpv_geo.cli import app
from qpv_geo.exceptions import InputFileError
from tests.test_batch import INSIDE, FakeGeocoder

runner = CliRunner()

TITLE = "Appel à projets Cité de l'emploi SEM 2026 — lieux de réalisation des actions"
SUBTITLE = "Tableau à retourner avant le 15 mars 2026 — une ligne par lieu"
HEADER = ["N° dossier", "Porteur", "Action", "Priorité", "Lieu de réalisation", "CP",
          "Commune", "Latitude", "Longitude"]


def _rows(n: int = 19) -> list[list[str]]:
    """``n`` sites: every third one by its address (« 3 rue Fausse »), the others by their
    coordinates (inside QPV QN04212M)."""
    rows = []
    for i in range(1, n + 1):
        by_address = i % 3 == 0
        rows.append([f"CE26-{i:03d}", f"Association fictive n° {i}", f"Action {i}",
                     "Santé", "3 rue Fausse" if by_address else f"Salle {i}", "42000",
                     "Saint-Étienne", "" if by_address else str(INSIDE[1]).replace(".", ","),
                     "" if by_address else str(INSIDE[0]).replace(".", ",")])
    return rows


def titled_xlsx(path: Path, rows: list[list[str]] | None = None,
                footer: list[list[str]] | None = None) -> Path:
    """The workbook of issue 20: a merged title (A1:I1) naming « lieux de réalisation », a
    subtitle, then the real header on row 3 and 19 sites."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Lieux"
    ws.append([TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    ws.append([SUBTITLE])
    ws.append(HEADER)
    for row in [*(rows if rows is not None else _rows()), *(footer or [])]:
        ws.append(row)
    wb.save(path)
    return path


def titled_csv(path: Path, rows: list[list[str]] | None = None,
               footer: list[list[str]] | None = None) -> Path:
    """The same table saved by Excel as « CSV (séparateur : point-virgule) »."""
    width = len(HEADER)
    lines = [[TITLE, *[""] * (width - 1)], [SUBTITLE, *[""] * (width - 1)], HEADER,
             *(rows if rows is not None else _rows()), *(footer or [])]
    path.write_text("\n".join(";".join(r + [""] * (width - len(r))) for r in lines) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture()
def fake() -> FakeGeocoder:
    return FakeGeocoder()


# ---------------------------------------------------- 20.1 header found as a person would

@pytest.mark.parametrize("build", [titled_xlsx, titled_csv], ids=["xlsx", "csv"])
def test_title_naming_places_is_not_the_header(build, tmp_path, engine, fake) -> None:
    src = build(tmp_path / f"appel{'.xlsx' if build is titled_xlsx else '.csv'}")
    frame, mapping = read_sites(src)
    assert mapping.adresse == "Lieu de réalisation" and mapping.lat == "Latitude"
    assert list(frame.index) == list(range(4, 23))  # 19 sites, lines as in the spreadsheet
    result = validate_sites(frame, mapping, engine=engine, geocoder=fake)
    assert result.summary["par_statut"]["non_geocode"] == 0
    assert result.summary["par_statut"]["eligible"] == 19
    assert result.summary["lignes_titre_ignorees"] == [1, 2]


def test_cli_batch_on_the_titled_workbook(tmp_path) -> None:
    src = titled_xlsx(tmp_path / "appel.xlsx")
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert "19 lignes lues, 19 lignes écrites" in res.output
    out = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert "Non localisé" not in out and "champs au lieu de" not in out


def test_one_cell_title_never_beats_a_full_header_naming_one_role(tmp_path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("Adresses des actions 2026;;\nNom;Ville;Remarque\nAsso;Firminy;RAS\n",
                   encoding="utf-8")
    from qpv_geo.batch.reading import read_header

    columns, line, doubt, head = read_header(src)
    assert columns == ["Nom", "Ville", "Remarque"] and line == 2
    assert "au-dessus" in doubt and head[0] == (1, ["Adresses des actions 2026", "", ""])


def test_data_rows_do_not_outvote_a_plain_header(tmp_path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("Structure porteuse;Nom de l'action;Lieu\n"
                   "Association Alpha;Action emploi;12 rue de la Paix\n", encoding="utf-8")
    frame, mapping = read_sites(src)
    assert mapping.adresse == "Lieu" and list(frame.index) == [2]


def test_header_line_option_names_the_header(tmp_path, engine, fake) -> None:
    src = titled_csv(tmp_path / "appel.csv")
    frame, mapping = read_sites(src, header_line=3)
    assert mapping.adresse == "Lieu de réalisation" and len(frame) == 19
    with pytest.raises(InputFileError, match="ligne d'en-tête 99 n'existe pas"):
        read_sites(src, header_line=99)
    for command in (["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q"],
                    ["map", str(src), "-o", str(tmp_path / "c.html"), "--tiles", "none"]):
        res = runner.invoke(app, [*command, "--ligne-entete", "3"])
        assert res.exit_code == 0, res.output
    assert "19 lignes lues, 19 lignes écrites" in res.output or "19 sites" in res.output
