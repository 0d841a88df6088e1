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


# ---------------------------------------------------- 20.3 totals, notes and duplicates

FOOTER = [["Total : 16 actions"], [], ["Source : service politique de la ville, mars 2026"]]


def _sixteen_with_duplicates() -> list[list[str]]:
    """16 sites, then the same place again for dossier CE26-003 (row 20) and the same action
    of the same porteur at the same place (row 21)."""
    rows = _rows(16)
    again = list(rows[2])
    same_action = list(rows[4])
    same_action[0] = "CE26-099"
    return [*rows, again, same_action]


@pytest.mark.parametrize("build", [titled_xlsx, titled_csv], ids=["xlsx", "csv"])
def test_total_and_note_rows_stay_out_of_every_count(build, tmp_path) -> None:
    src = build(tmp_path / f"appel{'.xlsx' if build is titled_xlsx else '.csv'}",
                rows=_rows(16), footer=FOOTER)
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert "18 lignes lues, 18 lignes écrites" in res.output
    assert "2 ligne(s) hors tableau" in res.output and "20, 22" in res.output
    import json

    import pandas as pd

    summary = json.loads((tmp_path / "r-synthese.json").read_text(encoding="utf-8"))
    assert summary["total"] == 16 and sum(summary["par_statut"].values()) == 16
    assert summary["lignes_hors_tableau"] == [20, 22]
    out = pd.read_csv(tmp_path / "r.csv", sep=";", dtype=str, encoding="utf-8-sig")
    footer = out[out["ligne"].isin(["20", "22"])]
    assert list(footer["status"]) == ["hors_tableau", "hors_tableau"]
    assert list(footer["motifs"]) == ["ligne hors tableau (total)", "ligne hors tableau (note)"]
    # the report and the map count 16 sites, never the total row
    res = runner.invoke(app, ["map", str(tmp_path / "r.csv"), "-o", str(tmp_path / "c.html"),
                              "--tiles", "none"])
    assert res.exit_code == 0 and "(16 sites" in res.output, res.output


def test_xlsx_output_says_hors_tableau_in_words(tmp_path) -> None:
    from openpyxl import load_workbook

    src = titled_xlsx(tmp_path / "appel.xlsx", rows=_rows(3), footer=FOOTER[:1])
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.xlsx"), "-q"])
    assert res.exit_code == 0, res.output
    wb = load_workbook(tmp_path / "r.xlsx", read_only=True)
    values = [c for row in wb["Sites"].iter_rows(values_only=True) for c in row]
    assert "Ligne hors tableau (total ou note, non comptée)" in values
    assert "hors_tableau" not in values
    from qpv_geo.batch import read_validated

    back = read_validated(tmp_path / "r.xlsx")
    assert list(back["status"])[-1] == "hors_tableau"


def test_a_site_without_address_mid_table_is_still_a_site(engine, fake, tmp_path) -> None:
    rows = _rows(4)
    rows[1] = ["CE26-002", "Association sans lieu", "", "", "", "", "", "", ""]
    src = titled_csv(tmp_path / "appel.csv", rows=rows)
    result = validate_sites(*read_sites(src), engine=engine, geocoder=fake)
    assert result.summary["total"] == 4 and "lignes_hors_tableau" not in result.summary
    assert result.summary["par_statut"]["non_geocode"] == 1


def test_duplicates_are_flagged_with_the_row_they_repeat_and_counted_once(
        engine, fake, tmp_path, reference) -> None:
    from qpv_geo.reporting.coverage import coverage_from_sites

    src = titled_xlsx(tmp_path / "appel.xlsx", rows=_sixteen_with_duplicates())
    frame, mapping = read_sites(src)
    out = validate_sites(frame, mapping, engine=engine, geocoder=fake).frame.set_index("ligne")
    assert "doublon de la ligne 6 (même dossier, même lieu)" in out.loc[20, "motifs"]
    assert "doublon de la ligne 8 (même action, même lieu)" in out.loc[21, "motifs"]
    assert not out.loc[4:19, "motifs"].fillna("").str.contains("doublon").any()
    assert out.loc[20, "status"] == out.loc[6, "status"]  # the verdict is kept
    cov = coverage_from_sites(out.reset_index(), reference)
    single = coverage_from_sites(out.loc[4:19].reset_index(), reference)
    assert cov.matrix["sites_dans"].sum() == single.matrix["sites_dans"].sum()


def test_registre_ajouter_skips_the_total_row(tmp_path) -> None:
    from qpv_geo.register import Registre

    src = titled_xlsx(tmp_path / "appel.xlsx", rows=_rows(4), footer=FOOTER)
    with Registre(tmp_path / "r.sqlite") as reg:
        res = reg.importer(src, annuaire=False, geocoder=FakeGeocoder())
    assert res.sites == 4


# ---------------------------------------------------- 20: a file mostly unreadable is said

def _subtitle_as_header(tmp_path: Path) -> Path:
    """The workbook whose subtitle (« … une ligne par lieu ») is read as the header when a
    person names line 2: every row has 9 cells for 1 column."""
    return titled_csv(tmp_path / "appel.csv")


def test_batch_says_first_that_the_file_is_mostly_unreadable(tmp_path) -> None:
    src = _subtitle_as_header(tmp_path)
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"),
                              "--ligne-entete", "2"])
    assert res.exit_code == 3, res.output
    first = res.output.strip().splitlines()
    mal_lu = next(i for i, line in enumerate(first) if "Fichier probablement mal lu" in line)
    tables = next(i for i, line in enumerate(first) if "Synthèse par statut" in line)
    assert mal_lu < tables  # said before any figure
    said = " ".join(res.output.split())
    assert "20 ligne(s) sur 20" in said and "(lue ligne 2 (9 colonne(s))" in said
    assert (tmp_path / "r.csv").exists()  # written anyway, nothing lost
    assert "Traceback" not in res.output
    # the normal read of the same file passes
    ok = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r2.csv"), "-q"])
    assert ok.exit_code == 0, ok.output


def test_batch_help_documents_the_exit_codes() -> None:
    res = runner.invoke(app, ["batch", "--help"], terminal_width=200)
    assert "3 fichier probablement mal lu" in " ".join(res.output.split())


def test_a_few_ragged_rows_are_not_a_file_problem(engine, fake, tmp_path) -> None:
    rows = _rows(6)
    rows[0] = [*rows[0], "en trop"]
    result = validate_sites(*read_sites(titled_csv(tmp_path / "a.csv", rows=rows)),
                            engine=engine, geocoder=fake)
    assert "fichier_mal_lu" not in result.summary


@pytest.mark.parametrize("command", ["map", "report"])
def test_map_and_report_refuse_a_mostly_unreadable_file(tmp_path, command) -> None:
    src = _subtitle_as_header(tmp_path)
    out = tmp_path / "o.html"
    res = runner.invoke(app, [command, str(src), "-o", str(out), "--tiles", "none",
                              "--ligne-entete", "2"])
    assert res.exit_code == 2 and "mal lu" in res.output and "--forcer" in res.output
    assert not out.exists()
    # a batch output read back says the same
    runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q",
                        "--ligne-entete", "2"])
    res = runner.invoke(app, [command, str(tmp_path / "r.csv"), "-o", str(out), "--tiles",
                              "none"])
    assert res.exit_code == 2 and "mal lu" in res.output, res.output
    res = runner.invoke(app, [command, str(tmp_path / "r.csv"), "-o", str(out), "--tiles",
                              "none", "--forcer"])
    assert res.exit_code == 0 and out.exists(), res.output


def test_registre_ajouter_refuses_a_mostly_unreadable_file(tmp_path) -> None:
    from qpv_geo.register import Registre

    src = _subtitle_as_header(tmp_path)
    with Registre(tmp_path / "r.sqlite") as reg:
        with pytest.raises(InputFileError, match=r"mal lu.*rien n'a été enregistré"):
            reg.importer(src, annuaire=False, geocoder=FakeGeocoder(), header_line=2)
        assert reg.importer(src, annuaire=False, geocoder=FakeGeocoder(), header_line=2,
                            forcer=True).sites == 20
    res = runner.invoke(app, ["registre", "ajouter", str(src), "--ligne-entete", "2",
                              "--sans-annuaire", "--registre", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 2 and "--forcer" in res.output, res.output


# ---------------------------------------------------- 21.3 one row swallowed by a stray quote

def _quoted_csv(path: Path, *, at: int) -> Path:
    """20 sites, the header on line 1; a stray quote opens the first cell of the site on
    line ``at`` and closes after the next line's porteur (« …n° 7" ») — or, on the last line,
    never closes."""
    rows = [";".join(r) for r in _rows(20)]
    k = at - 2
    rows[k] = '"' + rows[k]
    if k + 1 < len(rows):
        parts = rows[k + 1].split(";")
        parts[1] += '"'
        rows[k + 1] = ";".join(parts)
    path.write_text(";".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("at", [7, 21], ids=["one-row", "last-row"])
def test_a_stray_quote_swallowing_one_row_is_flagged(at, tmp_path) -> None:
    src = _quoted_csv(tmp_path / "appel.csv", at=at)
    from qpv_geo.batch.columns import PROBLEM_COLUMN

    frame, mapping = read_sites(src)
    assert "guillemet non fermé probable" in frame.loc[at, PROBLEM_COLUMN]
    out = validate_sites(frame, mapping, geocoder=FakeGeocoder()).frame.set_index("ligne")
    assert out.loc[at, "status"] in ("a_verifier", "non_geocode")
    assert out.loc[at - 1, "status"] == "eligible"
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q"])
    said = " ".join(res.output.split())
    assert f"Ligne {at} : guillemet non fermé probable" in said, said
    assert "guillemet non fermé probable" in said
    import json

    summary = json.loads((tmp_path / "r-synthese.json").read_text(encoding="utf-8"))
    assert any("guillemet" in w for w in summary["avertissements_lecture"])


def test_a_row_holding_two_sites_never_gets_a_firm_verdict(tmp_path) -> None:
    """The swallowing row takes the next site's coordinates: « à vérifier », not « éligible »."""
    src = tmp_path / "a.csv"
    src.write_text('Porteur;Latitude;Longitude\n"Asso A;45,1;4,1\nAsso B";45,4335;4,3790\n'
                   "Asso C;45,4335;4,3790\n", encoding="utf-8")
    out = validate_sites(*read_sites(src), geocoder=FakeGeocoder()).frame
    assert list(out["status"]) == ["a_verifier", "eligible"]
    assert "guillemet non fermé probable" in out.loc[0, "motifs"]


def test_a_note_on_two_lines_with_a_separator_is_still_no_quote_problem(tmp_path) -> None:
    from qpv_geo.batch.columns import PROBLEM_COLUMN

    rows = [";".join(r) for r in _rows(3)]
    rows[1] = rows[1].replace("Action 2", '"Action 2 : accueil; suivi\nbilan en juin"')
    src = tmp_path / "a.csv"
    src.write_text(";".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    frame, _ = read_sites(src)
    assert len(frame) == 3 and PROBLEM_COLUMN not in frame.columns


# ---------------------------------------------------- 21.4 bounded work by design

def test_a_header_of_millions_of_columns_is_refused_at_once(tmp_path) -> None:
    """The 19 MB CSV whose header has 9.5 million columns (> 8 min, 4.6 GB before): refused
    by the line scan, before any row is split into cells."""
    import time

    from qpv_geo.exceptions import InputTooLargeError

    src = tmp_path / "large.csv"
    src.write_bytes(b"a;" * 9_500_000 + b"\n1;2\n")
    started = time.perf_counter()
    said = r"ligne 1 : au moins 2\u202f097\u202f153 colonnes.*16\u202f384"
    with pytest.raises(InputTooLargeError, match=said):
        read_sites(src)
    assert time.perf_counter() - started < 10
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 2 and "16\u202f384" in res.output and "Traceback" not in res.output


def test_a_data_row_past_the_column_cap_is_refused_with_its_line(tmp_path) -> None:
    from qpv_geo.exceptions import InputTooLargeError

    src = tmp_path / "s.csv"
    src.write_text("Latitude;Longitude\n45,4;4,3\n" + ";" * 20_000 + "\n", encoding="utf-8")
    with pytest.raises(InputTooLargeError, match="ligne 3 : au moins 20\u202f001 colonnes"):
        read_sites(src)
    ok = tmp_path / "ok.csv"
    ok.write_text(";".join(f"c{i}" for i in range(300)) + ";Latitude;Longitude\n"
                  + ";" * 300 + "45,4335;4,3790\n", encoding="utf-8")
    frame, _ = read_sites(ok)  # wide but under the cap: read
    assert frame.shape == (1, 302)


def _xlsx_with_sheet(path: Path, sheet_xml: bytes) -> Path:
    """A workbook whose first sheet's XML is ``sheet_xml`` (the rest from openpyxl)."""
    import io
    import zipfile

    from openpyxl import Workbook

    buf = io.BytesIO()
    Workbook().save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                z.writestr(info, src.read(info.filename))
        z.writestr("xl/worksheets/sheet1.xml",
                   b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas'
                   b'.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + sheet_xml
                   + b"</sheetData></worksheet>")
    return path


def test_xlsx_rows_past_the_column_cap_are_refused_before_openpyxl(tmp_path, monkeypatch) -> None:
    import openpyxl

    from qpv_geo.exceptions import InputTooLargeError

    def never(*a, **k):
        raise AssertionError("openpyxl must not parse this workbook")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    wide = _xlsx_with_sheet(tmp_path / "wide.xlsx",
                            b"<row>" + b"<c><v>1</v></c>" * 16_385 + b"</row>")
    with pytest.raises(InputTooLargeError, match="au moins 16\u202f385 colonnes"):
        read_sites(wide)
    far = _xlsx_with_sheet(tmp_path / "far.xlsx",
                           b'<row r="1"><c r="A1"><v>1</v></c><c r="ZZZZ1"><v>2</v></c></row>')
    with pytest.raises(InputTooLargeError, match="16\u202f384"):
        read_sites(far)  # openpyxl would pad the row with 475 000 empty cells


def test_xlsx_sheet_size_is_measured_while_streaming(tmp_path, monkeypatch) -> None:
    """The zip directory may say anything: the sheet's bytes are counted as they inflate,
    and the reading stops at the cap (1.9 GB of XML under the ratio cap took 5 GB)."""
    import random

    from qpv_geo.batch import reading_xlsx
    from qpv_geo.exceptions import InputTooLargeError

    monkeypatch.setattr(reading_xlsx, "SHEET_MAX_MB", 1)
    rnd = random.Random(1)  # varied values: under the compression-ratio cap
    big = _xlsx_with_sheet(tmp_path / "big.xlsx", b"".join(
        b"<row><c><v>%d</v></c><c><v>%d</v></c></row>" % (rnd.randint(0, 10**6),
                                                          rnd.randint(0, 10**6))
        for _ in range(40_000)))
    with pytest.raises(InputTooLargeError, match="dépasse 1 Mo une fois décompress"):
        read_sites(big)


def test_xlsx_pre_pass_stops_when_the_requester_left(tmp_path) -> None:
    import threading

    from qpv_geo.batch.cancel import cancellable
    from qpv_geo.exceptions import OperationCancelled

    src = titled_xlsx(tmp_path / "appel.xlsx")
    event = threading.Event()
    event.set()
    with cancellable(event), pytest.raises(OperationCancelled):
        read_sites(src)


def test_lot_streams_a_big_file_and_still_previews_it(tmp_path, monkeypatch) -> None:
    """/lot validates through the streamed path: rows are not all held (the result is
    copied from disk), the preview comes from the first rows."""
    from qpv_geo.batch import validation
    from qpv_geo.settings import Settings
    from qpv_geo.web.lot import validate_upload
    from qpv_geo.web.services import Services

    monkeypatch.setattr(validation, "KEEP_FRAME_MAX", 5)
    monkeypatch.setattr(validation, "CHUNK_CELLS", 40)
    services = Services(Settings.from_env(dossier_serveur=str(tmp_path / "srv")))
    data = titled_csv(tmp_path / "appel.csv").read_bytes()
    out = validate_upload(services, data, ".csv", None, "appel.csv")
    assert out["rows"] == 19 and len(out["preview"]["rows"]) == 19
    assert out["files"][0][1] == "appel-verdicts.csv" and out["files"][0][2] > 1000


# ---------------------------------------------------------------------------------------------
# Duplicates, rows outside the table and reasons, computed per distinct cell (issue 24)
# ---------------------------------------------------------------------------------------------

#: The place's columns in the order the batch reads them (address … lat, lon, x, y).
_DUP_HEADER = ["N° dossier", "Porteur", "Action", "Adresse", "CP", "Commune", "Latitude",
               "Longitude", "X", "Y"]


def _dup_frame(rows: list[list[str]], first_line: int = 2):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(rows, columns=_DUP_HEADER, dtype=object)
    frame.index = pd.Index(np.arange(len(rows), dtype=np.int64) + first_line, name="ligne")
    return frame


def _dup_mapping():
    from qpv_geo.batch.columns import detect_columns

    mapping = detect_columns(_DUP_HEADER)
    assert (mapping.adresse, mapping.x, mapping.lat, mapping.action) == (
        "Adresse", "X", "Latitude", "Action")
    return mapping


def _flag_chunks(chunks: list[list[list[str]]]) -> list[str]:
    """The reasons of ``Duplicates.flag`` over chunks of one run (lines follow on)."""
    import numpy as np

    from qpv_geo.batch.table import Duplicates

    dup, out, line = Duplicates(), [], 2
    for rows in chunks:
        frame = _dup_frame(rows, line)
        out += list(dup.flag(frame, _dup_mapping(), frame.index.to_numpy(),
                             np.zeros(len(rows), dtype=bool)))
        line += len(rows)
    return out


def _reference_duplicates(chunks: list[list[list[str]]]) -> list[str]:
    """The rule as text, row by row (the key strings of the batch before issue 24)."""
    from qpv_geo.batch.columns import fold_name

    seen: dict[str, int] = {}
    out, line = [], 2
    for rows in chunks:
        for cells in rows:
            cells = [c.strip() for c in cells]
            dossier, porteur, action = cells[:3]
            place = [fold_name(c) for c in cells[3:6]] + [c.replace(",", ".")
                                                          for c in cells[6:]]
            lieu = " | ".join(place).strip(" |")
            reason = ""
            for kind, raw, text, label in (
                    ("dossier", dossier, fold_name(dossier), "même dossier, même lieu"),
                    ("action", action, fold_name(porteur) + "\x1f" + fold_name(action),
                     "même action, même lieu")):
                if not raw or not lieu:
                    continue
                first = seen.setdefault(f"{kind}\x1e{text}\x1e{lieu}", line)
                if first != line and not reason:
                    reason = f"doublon de la ligne {first} ({label}) : compté une fois"
            out.append(reason)
            line += 1
    return out


def test_a_duplicate_in_a_later_chunk_names_the_first_line_of_the_run() -> None:
    site = ["CE-1", "Asso", "Atelier", "", "", "", "", "", "45,43", "4,39"]
    other = ["CE-2", "Asso", "Atelier", "", "", "", "", "", "45,44", "4,39"]
    out = _flag_chunks([[site, other], [other, site, site]])
    assert out[:2] == ["", ""]
    assert out[2] == "doublon de la ligne 3 (même dossier, même lieu) : compté une fois"
    assert out[3] == out[4] == ("doublon de la ligne 2 (même dossier, même lieu) : "
                                "compté une fois")


def test_a_place_typed_with_a_comma_or_a_point_is_one_place() -> None:
    rows = [["", "Asso", "Atelier", "", "", "", "", "", "45,4", "4,39"],
            ["", "Asso", "Atelier", "", "", "", "", "", "45.4", "4.39"],
            ["", "Asso", "Atelier", "", "", "", "", "", "45.40", "4.39"]]
    assert _flag_chunks([rows]) == ["", "doublon de la ligne 2 (même action, même lieu) : "
                                    "compté une fois", ""]


def test_rows_without_a_place_are_never_duplicates() -> None:
    rows = [["CE-1", "Asso", "Atelier", "", "", "", "", "", "", ""],
            ["CE-1", "Asso", "Atelier", "", "", "", "", "", "", ""],
            ["CE-1", "Asso", "Atelier", " ", "", "", "|", "", "", "| |"],
            ["CE-1", "Asso", "Atelier", "", "-", "", "", "|", "", ""]]
    assert _flag_chunks([rows]) == ["", "", "", ""]


def test_keys_that_differ_only_by_folding_are_one_key() -> None:
    rows = [["", "Association Éco-Quartier", "Atelier  CV", "3 rue Fausse", "", "", "", "",
             "", ""],
            ["", "association eco quartier", "ATELIER cv", "3, RUE FAUSSE", "", "", "", "",
             "", ""],
            ["", "association eco quartiers", "ATELIER cv", "3 rue Fausse", "", "", "", "",
             "", ""]]
    assert _flag_chunks([rows[:1], rows[1:]]) == [
        "", "doublon de la ligne 2 (même action, même lieu) : compté une fois", ""]


def test_the_place_is_its_text_whichever_columns_hold_it() -> None:
    """The place is compared as the text « a | b | … » of the batch (blank ends dropped):
    « 808 000 » as an address or as an x is one place; an empty column between two cells
    is not nothing; a cell holding « | » reads as two."""
    rows = [["CE-1", "", "", "808 000", "", "", "", "", "", ""],
            ["CE-1", "", "", "", "", "", "808 000", "", "", ""],
            ["CE-2", "", "", "a", "", "b", "", "", "", ""],
            ["CE-2", "", "", "a", "b", "", "", "", "", ""],
            ["CE-3", "", "", "", "", "", "1 | 2", "", "", ""],
            ["CE-3", "", "", "", "", "", "1", "2", "", ""],
            ["CE-3", "", "", "", "", "", "1|2", "", "", ""]]
    out = _flag_chunks([rows])
    assert out == _reference_duplicates([rows])
    assert [bool(r) for r in out] == [False, True, False, False, False, True, False]


def test_duplicates_match_the_rule_as_text_on_messy_cells_across_chunks() -> None:
    import random

    rnd = random.Random(24)
    heads = [["", "CE-1", "ce 1", "CE-2"], ["", "Asso", "ASSO", "Éco"], ["", "A", "a", "B"]]
    pick = ["a", "A", "É", "e", "1,5", "1.5", "|", "x | y", " b ", "\ud800", "45,4", "45.4",
            "n° 3", "a\x00", "45,123456789012345", "45.123456789012345", "4,5 | 45"]
    rows = [[rnd.choice(h) for h in heads]
            + [rnd.choice(pick) if rnd.random() < 0.2 else "" for _ in _DUP_HEADER[3:]]
            for _ in range(3000)]
    chunks = [rows[:700], rows[700:701], rows[701:2500], rows[2500:]]
    out = _flag_chunks(chunks)
    assert out == _reference_duplicates(chunks)
    assert sum(1 for r in out if r) > 500  # the corpus does repeat itself


def test_reasons_are_read_on_every_kind_of_motifs_cell() -> None:
    import numpy as np
    import pandas as pd

    from qpv_geo.batch.table import file_reason_rows, is_duplicate

    frame = pd.DataFrame({"motifs": [
        "doublon de la ligne 4 (même dossier, même lieu) : compté une fois", None, np.nan,
        12.5, "", "ligne irrégulière, x\ndoublon de la ligne 2", "guillemet non fermé",
        "x ; ni adresse ni coordonnées sur cette ligne ; ligne irrégulière", "doublon",
        "ligne irrégulièr"]})
    assert is_duplicate(frame).tolist() == [True, False, False, False, False, True, False,
                                            False, False, False]
    assert file_reason_rows(frame) == 3
    assert not is_duplicate(pd.DataFrame({"motifs": []})).any()
    assert file_reason_rows(frame.iloc[:0]) == 0


def test_a_total_among_placed_rows_and_in_a_file_of_addresses_only() -> None:
    """Rows placed by two cells are never read for a total; the others are (the first cell
    announcing it counts, a second place cell makes it a site)."""
    import numpy as np
    import pandas as pd

    from qpv_geo.batch.columns import detect_columns
    from qpv_geo.batch.table import outside_table

    header = ["Porteur", "Action", "Adresse", "Latitude", "Longitude"]
    rows = [["Asso", f"A{i}", "", "45,4", "4,3"] for i in range(30)]
    rows += [["TOTAL : 30", "", "", "", ""], ["Asso", "Total des actions", "", "45,4", ""],
             ["Asso", "Sous-total", "", "45,4", "4,3"], ["", "(1) hors SEM", "", "", ""],
             ["Source : SEM, 2026", "", "", "", ""]]
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    lines = np.arange(len(rows), dtype=np.int64) + 2
    lines[-1] += 1  # a blank line before the note
    frame.index = pd.Index(lines, name="ligne")
    out = outside_table(frame, detect_columns(header))
    assert out.tolist() == [""] * 30 + ["total", "", "", "note", "note"]
    only = frame[["Porteur", "Action", "Adresse"]].copy()
    only.loc[only.index[:30], "Adresse"] = "3 rue Fausse"
    out = outside_table(only, detect_columns(["Porteur", "Action", "Adresse"]))
    assert out.tolist() == [""] * 30 + ["total", "total", "total", "note", "note"]


def test_coordinates_read_as_bytes_or_as_text_are_the_same_place() -> None:
    """A chunk of short ASCII coordinates is read as bytes, another (a long or accented
    cell in it) as text: the same place in both is one place."""
    site = ["", "Asso", "Atelier", "", "", "", "45,43", "4,39", "", ""]
    odd = ["", "Asso", "Autre", "", "", "", "45,4300000000000001", "4,39 É", "", ""]
    out = _flag_chunks([[site], [odd, site], [[*site[:6], "45.43", "4.39", "", ""]]])
    assert out == ["", "", "doublon de la ligne 2 (même action, même lieu) : compté une fois",
                   "doublon de la ligne 2 (même action, même lieu) : compté une fois"]
