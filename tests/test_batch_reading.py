"""Reading hostile sites files (issue 10) and recognising their columns (issue 12): nothing
swallowed or dropped uncounted, bounded work on bombs, French errors for what is not a table."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from qpv_geo.batch import read_sites, validate_file, validate_sites
from qpv_geo.batch.columns import PROBLEM_COLUMN, detect_columns
from qpv_geo.cli import app
from qpv_geo.exceptions import InputFileError
from qpv_geo.settings import Settings
from tests.test_batch import FakeGeocoder

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
runner = CliRunner()


def _h(name: str) -> Path:
    return HOSTILE / name


@pytest.fixture()
def fake() -> FakeGeocoder:
    return FakeGeocoder()


def _run(path: Path, engine, fake, **kw):
    frame, mapping = read_sites(path, **kw)
    return validate_sites(frame, mapping, engine=engine, geocoder=fake)


# ------------------------------------------------------------------ 12: batch input columns

@pytest.mark.parametrize("header", ["Lieu de réalisation", "lieu", "Adresse du lieu",
                                    "Lieu de l'action", "Adresse de l'action",
                                    "Lieu de réalisation de l'action"])
def test_place_headers_are_the_address(header: str) -> None:
    mapping = detect_columns(["Porteur", header, "Code postal", "Commune"])
    assert mapping.adresse == header


def test_lieu_de_realisation_file_is_geocoded_on_its_address(engine, fake) -> None:
    out = _run(_h("lieu_de_realisation.csv"), engine, fake).frame
    assert fake.queries[-1].startswith("3 rue Fausse")
    assert out.loc[0, "status"] == "eligible"


def test_postcode_and_commune_only_stops_with_the_columns() -> None:
    with pytest.raises(InputFileError, match=r"ni colonne d'adresse.*Porteur, Action, Code "
                       "postal, Commune") as err:
        read_sites(_h("commune_only.csv"))
    assert "--col-adresse" in (err.value.hint or "")
    # …unless the user says so explicitly.
    frame, mapping = read_sites(_h("commune_only.csv"),
                                mapping_overrides={"commune": "Commune"})
    assert mapping.commune == "Commune" and len(frame) == 2


def test_cli_batch_without_address_column_exits_2(tmp_path) -> None:
    res = runner.invoke(app, ["batch", str(_h("commune_only.csv")), "-o",
                              str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 2, res.output
    assert "Code postal" in res.output and "Traceback" not in res.output


def test_markdown_is_not_a_table(tmp_path) -> None:
    readme = Path(__file__).resolve().parent.parent / "README.md"
    with pytest.raises(InputFileError, match="n'est pas un tableau"):
        read_sites(readme)
    res = runner.invoke(app, ["batch", str(readme), "-o", str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 2 and "n'est pas un tableau" in res.output
    assert not (tmp_path / "r.csv").exists()


# ------------------------------------------------------------------ 10.2 unclosed quote

def test_unclosed_quote_flags_the_row_and_the_summary(engine, fake, tmp_path) -> None:
    frame, mapping = read_sites(_h("unclosed_quote.csv"))
    assert len(frame) == 5  # rows 2-5 and the swallowing row 6
    assert "guillemet non fermé" in frame.loc[6, PROBLEM_COLUMN]
    result = validate_sites(frame, mapping, engine=engine, geocoder=fake)
    motifs = result.frame.set_index("ligne").loc[6, "motifs"]
    assert "guillemet non fermé" in motifs and "lignes 6 à 100" in motifs
    warnings = result.summary["avertissements_lecture"]
    assert any("Ligne 6" in w and "100 lignes physiques" in w for w in warnings)


def test_cli_batch_says_the_quote_swallowed_lines(tmp_path) -> None:
    res = runner.invoke(app, ["batch", str(_h("unclosed_quote.csv")), "-o",
                              str(tmp_path / "r.csv"), "-q"])
    assert "guillemet non fermé" in res.output, res.output


def test_legitimate_multiline_cell_is_not_flagged() -> None:
    frame, _ = read_sites(_h("utf8_bom_comma_quoted_newline.csv"))
    assert PROBLEM_COLUMN not in frame.columns


# ------------------------------------------------------------------ 10.10 encoding

def test_one_cp1252_line_does_not_garble_the_utf8_file(engine, fake) -> None:
    result = _run(_h("mixed_encoding.csv"), engine, fake)
    out = result.frame
    assert (out["Porteur"].str.contains("Été")).all()
    assert not out["Porteur"].str.contains("Ã").any()
    warning = " ".join(result.summary["avertissements_lecture"])
    assert "Windows-1252" in warning and "201" in warning  # file line 201 (header = 1)


def test_pure_cp1252_file_has_no_warning(engine, fake) -> None:
    result = _run(_h("cp1252_excel.csv"), engine, fake)
    assert "avertissements_lecture" not in result.summary


# ------------------------------------------------------------------ 10.8 NUL and long cells

def test_nul_after_64k_is_removed_and_said(engine, fake) -> None:
    result = _run(_h("nul_after_64k.csv"), engine, fake)
    out = result.frame
    assert not out.apply(lambda c: c.astype(str).str.contains("\x00")).any().any()
    assert "Association fictive NUL" in set(out["Porteur"])
    assert any("NUL" in w for w in result.summary["avertissements_lecture"])
    assert "NUL" in out.loc[out["Porteur"] == "Association fictive NUL", "motifs"].iloc[0]


def test_cell_beyond_the_cap_is_cut_with_a_reason(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("Porteur;Latitude;Longitude\n" + "x" * 5000 + ";45,4335;4,3790\n")
    frame, _ = read_sites(path, settings=Settings(max_caracteres_cellule=1000))
    assert len(frame.iloc[0]["Porteur"]) == 1000
    assert "coupée à 1 000 caractères (5 000 au départ)" in frame.iloc[0][PROBLEM_COLUMN]


def test_giant_cell_is_refused_before_memory_blows(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"Porteur;Latitude;Longitude\n\"" + b"x" * (3 << 20) + b"\n;45;4\n")
    with pytest.raises(InputFileError, match="une cellule dépasse"):
        read_sites(path, settings=Settings(max_caracteres_cellule=10_000))


# ------------------------------------------------------------------ 10.5 XLSX rows

def test_formula_rows_without_values_are_listed_not_lost(engine, fake) -> None:
    result = _run(_h("formula_no_cache.xlsx"), engine, fake)
    summary = result.summary
    skipped = {r["ligne"]: r["motif"] for r in summary["lignes_ignorees"]}
    assert 3 in skipped and "formules sans valeur calculée" in skipped[3]
    assert list(result.frame["ligne"]) == [2, 4]
    assert "formules sans valeur calculée" in result.frame.loc[1, "motifs"]
    assert any("formules" in w for w in summary["avertissements_lecture"])


def test_blank_rows_before_the_tenth_are_counted(engine, fake, tmp_path) -> None:
    result = validate_file(_h("blank_rows.xlsx"), tmp_path / "r.csv", geocoder=fake,
                           progress=False)
    summary = result.summary
    assert list(result.frame["ligne"]) == [2, 5, 7]
    assert summary["lignes_vides_ignorees"] == 3
    assert [r["ligne"] for r in summary["lignes_ignorees"]] == [3, 4, 6]
    assert summary["total"] + summary["lignes_ignorees_total"] + 1 == 7  # every row, header


def test_blank_rows_of_a_csv_are_listed(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("Porteur;Latitude;Longitude\n\nA;45,4335;4,3790\n;;\nB;45,4335;4,3790\n")
    frame, _ = read_sites(path)
    assert [r["ligne"] for r in frame.attrs["lecture"]["lignes_ignorees"]] == [2, 4]


# ------------------------------------------------------------------ 10.6 / 10.13 XLSX bombs

def test_xlsx_zip_bomb_is_refused_from_the_zip_directory() -> None:
    start = time.perf_counter()
    with pytest.raises(InputFileError, match="bombe zip"):
        read_sites(_h("zip_bomb.xlsx"))
    assert time.perf_counter() - start < 5


def test_xlsx_uncompressed_total_is_capped() -> None:
    with pytest.raises(InputFileError, match="décompressé"):
        read_sites(_h("blank_rows.xlsx"), settings=Settings(max_xlsx_decompresse_mb=0.001))


def test_xlsx_declared_millions_of_rows_refused_up_front() -> None:
    with pytest.raises(InputFileError, match="5 970 000 lignes"):
        read_sites(_h("declared_millions_of_rows.xlsx"))


def test_xlsx_rows_and_cells_capped_while_reading() -> None:
    with pytest.raises(InputFileError, match="au-delà des limites"):
        read_sites(_h("blank_rows.xlsx"), settings=Settings(max_cellules=10))


def test_billion_laughs_is_refused_in_french() -> None:
    with pytest.raises(InputFileError, match="DOCTYPE"):
        read_sites(_h("billion_laughs.xlsx"))


def test_cli_xlsx_bomb_exits_2(tmp_path) -> None:
    for name in ("zip_bomb.xlsx", "billion_laughs.xlsx"):
        res = runner.invoke(app, ["batch", str(_h(name)), "-o", str(tmp_path / "r.csv"),
                                  "-q"])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output


def test_broken_xml_inside_a_zip_is_a_french_error(tmp_path) -> None:
    import zipfile

    path = tmp_path / "casse.xlsx"
    with zipfile.ZipFile(_h("blank_rows.xlsx")) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(info.filename, data)
    with pytest.raises(InputFileError, match="illisible"):
        read_sites(path)


# ------------------------------------------------------------------ 10.13 geo inputs

def test_gpkg_without_geometry_is_read_as_a_table(engine, fake) -> None:
    out = _run(_h("no_geometry.gpkg"), engine, fake).frame
    assert out.loc[0, "Porteur"] == "Association fictive G"
    assert out.loc[0, "status"] == "eligible"


def test_gpkg_with_two_layers_says_so() -> None:
    with pytest.raises(InputFileError, match=r"2 couches.*sites.*autres_sites") as err:
        read_sites(_h("two_layers.gpkg"))
    assert "--couche" in (err.value.hint or "")
    frame, _ = read_sites(_h("two_layers.gpkg"), sheet="autres_sites")
    assert len(frame) == 1


def test_cli_gpkg_layer_option(tmp_path) -> None:
    res = runner.invoke(app, ["batch", str(_h("two_layers.gpkg")), "--couche", "sites",
                              "-o", str(tmp_path / "r.csv"), "-q"])
    assert res.exit_code == 0, res.output


def test_unclosed_ring_rejects_that_row_only(engine, fake) -> None:
    out = _run(_h("unclosed_ring.geojson"), engine, fake).frame
    assert list(out["status"]) == ["eligible", "non_geocode", "eligible"]
    assert "géométrie illisible" in out.loc[1, "motifs"]


# ------------------------------------------------------------------ 12: same options everywhere

def _endroit(tmp_path) -> Path:
    path = tmp_path / "brut.csv"
    path.write_text("Porteur;Endroit;Code postal;Commune;Priorité\n"
                    "Association fictive E;3 rue Fausse;42000;Saint-Étienne;Mobilité\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["map", "report", "demo"])
def test_raw_file_commands_show_the_mapping_and_take_col_options(tmp_path, command) -> None:
    raw = _endroit(tmp_path)
    if command == "demo":
        base = ["demo", "--fichier", str(raw), "-o", str(tmp_path / "out")]
    else:
        base = [command, str(raw), "-o", str(tmp_path / "sortie.html")]
        if command == "map":
            base += ["--tiles", "none"]
    res = runner.invoke(app, base)
    assert res.exit_code == 2, res.output
    assert "Endroit" in res.output  # the columns are listed
    res = runner.invoke(app, [*base, "--col-adresse", "Endroit"])
    assert res.exit_code == 0, res.output
    assert "Colonnes reconnues" in res.output and "Endroit" in res.output


def test_nul_in_a_geojson_property_never_reaches_the_output(tmp_path) -> None:
    path = tmp_path / "s.geojson"
    path.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
                    '{"Porteur":"Asso\\u0000 NUL"},"geometry":{"type":"Point","coordinates":'
                    '[4.379,45.4335]}}]}', encoding="utf-8")
    frame, _ = read_sites(path)
    assert "\x00" not in frame.iloc[0]["Porteur"]  # GDAL cuts the text at the NUL…
    assert "NUL" in frame.attrs["lecture"]["avertissements_lecture"][0]  # …and it is said


def test_xlsx_rows_are_counted_before_openpyxl_parses_anything(monkeypatch) -> None:
    import openpyxl

    from qpv_geo.batch.reading import XLSX_MAX_ROWS

    assert XLSX_MAX_ROWS == 1_048_576  # Excel's own limit: never more from a workbook
    opened: list[object] = []
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: opened.append(a))
    with pytest.raises(InputFileError, match="au-delà des limites"):
        read_sites(_h("blank_rows.xlsx"), settings=Settings(max_lignes=3))
    assert opened == []  # an undeclared 6-million-row sheet costs a scan, not a parse


def test_a_note_on_several_lines_is_not_an_unclosed_quote(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('Porteur;Action;Note;Adresse;Code postal;Commune;Latitude;Longitude\n'
                    'A;B;"suivi : a; b\nbilan : c; d\nsuite : e; f";;;;45,4335;4,3790\n'
                    'C;D;;;;;45,4335;4,3790\n', encoding="utf-8")
    frame, _ = read_sites(path)
    assert len(frame) == 2 and PROBLEM_COLUMN not in frame.columns


@pytest.mark.parametrize("name", ["zip_bomb.xlsx", "billion_laughs.xlsx"])
def test_no_peek_parses_a_hostile_workbook(name, monkeypatch) -> None:
    import openpyxl

    from qpv_geo.batch import read_validated

    opened: list[object] = []

    def never(*args, **kwargs):
        opened.append(args)
        raise AssertionError("openpyxl opened a hostile workbook")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with pytest.raises(InputFileError):
        read_validated(_h(name))
    assert opened == []


# ------------------------------------------------------------------ 24: CSV read by blocks

_TRICKY_ROWS = [
    "Porteur;Adresse;Latitude;Longitude",
    "A;1 rue Ré;45,4335;4,3790",
    "",                                       # blank line
    "B;2 rue Zé;45,4335;4,3790",
    "   ;  ;\t;",                            # blank cells only
    "C;court",                                # ragged: padded
    "D;3 rue;45,4;4,3;en trop;encore",        # ragged: extra cells kept
    'E;"4 rue, bât. 2',                       # a quoted cell on three lines…
    'escalier B;x',
    'fin";45,4;4,3',                          # …closed here
    "F;5 rue;45,4;4,3;;",                     # blank extra cells: nothing said
    "G;" + "y" * 60 + ";45,4;4,3",            # a cell over the cap (40)
    '\u00a0;\u00a0;\u00a0;\u00a0',            # non-breaking spaces only: blank
    'H;6 "rue";45,4;4,3',                     # a quote inside a cell
    "I;7 rue;45,4;4,3",
    "J;8 rue;45,4;4,3",
]


def _read_all(path: Path, chunk_rows: int, **kw):
    from qpv_geo.batch.reading import open_source, source_frames

    source = open_source(path, settings=Settings(max_caracteres_cellule=40), **kw)
    try:
        frames = [(f.to_dict("split"), [str(t) for t in f.dtypes], e)
                  for f, e in source_frames(source, chunk_rows)]
    finally:
        source.closer()
    return frames, source.skipped, source.warnings, source.lecture()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16"])
@pytest.mark.parametrize("final", [True, False], ids=["final-newline", "no-final-newline"])
def test_blocks_of_any_size_read_the_rows_like_one_by_one(tmp_path, monkeypatch, newline,
                                                          encoding, final) -> None:
    """Every block boundary (down to one byte: inside a quoted cell on several lines, between
    ``\\r`` and ``\\n``, inside a multi-byte character), every chunk size: the same frames,
    line numbers, blank rows, extras, problems and warnings as rows read one by one."""
    from qpv_geo.batch import reading_csv

    path = tmp_path / "s.csv"
    path.write_bytes((newline.join(_TRICKY_ROWS) + (newline if final else ""))
                     .encode(encoding))
    frame, _ = read_sites(path, settings=Settings(max_caracteres_cellule=40))
    assert list(frame.index) == [2, 4, 6, 7, 8, 9, 10, 12, 13, 14]
    assert frame.loc[8, "Adresse"] == f"4 rue, bât. 2{newline}escalier B;x{newline}fin"
    assert list(frame.loc[6])[:4] == ["C", "court", "", ""]
    assert frame.loc[7, "colonnes en trop"] == "6 champs au lieu de 4 : en trop | encore"
    assert frame.loc[10, "Adresse"] == "y" * 40
    assert "coupée à 40 caractères (60 au départ)" in frame.loc[10, PROBLEM_COLUMN]
    assert frame.loc[12, "Adresse"] == '6 "rue"' and frame.loc[14, "Porteur"] == "J"
    assert [r["ligne"] for r in frame.attrs["lecture"]["lignes_ignorees"]] == [3, 5, 11]
    one_by_one = {size: _read_all(path, size) for size in (2, 4, 1000)}
    for block in (1, 3, 16, 37, 64, 1 << 20):
        monkeypatch.setattr(reading_csv, "BLOCK_BYTES", block)
        for size, expected in one_by_one.items():
            with monkeypatch.context() as m:
                m.setattr(reading_csv._CsvLines, "take_run", lambda self: None)
                assert _read_all(path, size) == expected
            assert _read_all(path, size) == expected, (block, size)


def test_regular_rows_come_in_blocks_with_their_line_numbers(tmp_path, monkeypatch) -> None:
    from qpv_geo.batch import reading_csv
    from qpv_geo.batch.reading import open_source, source_frames
    from qpv_geo.batch.source import RowBlock

    monkeypatch.setattr(reading_csv, "BLOCK_BYTES", 1000)
    rows = [f"Porteur {k};{k} rue de la Paix;45,4;4,3" for k in range(3000)]
    rows[1500] = ""                                     # a blank line in the middle
    rows[2000] = 'Q;"rue\r\nsur deux lignes";45,4;4,3'  # a record on two lines
    path = tmp_path / "s.csv"
    path.write_bytes(("Porteur;Adresse;Latitude;Longitude\r\n" + "\r\n".join(rows))
                     .encode("utf-8"))
    source = open_source(path)
    items = list(source.rows)
    source.closer()
    in_blocks = sum(i.count for i in items if isinstance(i, RowBlock))
    assert in_blocks > 2900 and len(items) < 200
    source = open_source(path)
    frames = list(source_frames(source, 700))
    source.closer()
    assert [len(f) for f, _ in frames] == [700, 700, 700, 700, 199]
    assert [e for _, e in frames] == [0, 0, 1, 0, 0]
    frame = pd.concat([f for f, _ in frames])
    assert all(t is np.dtype(object) for t in frame.dtypes)
    lines = list(range(2, 1502)) + list(range(1503, 3002))
    assert list(frame.index) == lines and frame.index.name == "ligne"
    assert frame.loc[2002, "Adresse"] == "rue\r\nsur deux lignes"
    assert frame.loc[3001].tolist() == ["Porteur 2999", "2999 rue de la Paix", "45,4", "4,3"]
    assert frame.loc[1503, "Porteur"] == "Porteur 1501"


@pytest.mark.parametrize("block", [8192, 1 << 20])
def test_a_character_that_does_not_decode_stops_at_the_same_line(tmp_path, monkeypatch,
                                                                 block) -> None:
    """Read through :func:`open`, the text layer decodes 8 KiB at a time: the rows before
    the chunk holding the bad byte are read, the next one fails (line 257 here, whatever the
    size of the blocks)."""
    from qpv_geo.batch import reading_csv

    monkeypatch.setattr(reading_csv, "BLOCK_BYTES", block)
    line = "a" * 30 + ";" + "b" * 32 + "\n"  # 64 bytes: 256 lines in two chunks
    path = tmp_path / "s.csv"
    path.write_bytes(("Adresse;Commune" + " " * 48 + "\n" + line * 299).encode()
                     + "é;x\n".encode("cp1252") + (line * 50).encode())
    with pytest.raises(InputFileError, match="illisible en utf-8 vers la ligne 257"):
        read_sites(path, encoding="utf-8")
