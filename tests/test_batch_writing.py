"""Batch outputs: never over the input, written whole or not at all, formulas neutralised, a
spreadsheet people read (French headers, coloured verdicts, synthesis tables), per-run facts
once, and the kill test."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from qpv_geo import batch
from qpv_geo.batch import read_validated, validate_file, write_result
from qpv_geo.batch import writing as writing_mod
from qpv_geo.cli import app
from qpv_geo.exceptions import InputFileError

ROOT = Path(__file__).resolve().parent.parent
EXEMPLE = ROOT / "data" / "exemple_appel.csv"
INSIDE = (4.3790, 45.4335)  # inside QPV QN04212M (shipped copy)
runner = CliRunner()


def _coords_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """Points spread over SEM and around it, as in ``make bench-batch``."""
    rng = np.random.default_rng(seed)
    lon = np.round(4.15 + rng.random(rows) * 0.50, 6)
    lat = np.round(45.30 + rng.random(rows) * 0.30, 6)
    pd.DataFrame({
        "Porteur": [f"Association {k % 97}" for k in range(rows)],
        "Priorité": np.where(np.arange(rows) % 2 == 0, "Mobilité", "Santé"),
        "Latitude": np.char.replace(lat.astype(str), ".", ","),
        "Longitude": np.char.replace(lon.astype(str), ".", ","),
    }).to_csv(path, sep=";", index=False)
    return path


def _small(tmp_path: Path, name: str = "sites.csv") -> Path:
    path = tmp_path / name
    path.write_text("Porteur;Action;Latitude;Longitude\nAsso A;Atelier;45,4335;4,3790\n"
                    "Asso B;Forum;45,7606;4,8590\n", encoding="utf-8")
    return path


def _said(res) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partiel" in p.name)


# ----------------------------------------------------------------- 10.1 output = input


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson"])
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused(tmp_path, suffix, how) -> None:
    src = _small(tmp_path)
    if suffix != ".csv":  # make an input of that format with the batch itself
        made = tmp_path / f"made{suffix}"
        validate_file(src, made, progress=False)
        src = made
    before = src.read_bytes()
    out = {"same": src, "symlink": tmp_path / f"lien{suffix}",
           "hardlink": tmp_path / f"dur{suffix}"}[how]
    if how == "symlink":
        out.symlink_to(src)
    elif how == "hardlink":
        os.link(src, out)
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q"])
    assert res.exit_code == 2, res.output
    assert "est le fichier d'entrée" in _said(res) and "Traceback" not in _said(res)
    assert src.read_bytes() == before
    assert _partials(tmp_path) == []


def test_a_summary_file_over_the_input_is_refused(tmp_path) -> None:
    src = _small(tmp_path, "r-synthese.csv")
    before = src.read_bytes()
    with pytest.raises(InputFileError, match="fichier d'entrée"):
        validate_file(src, tmp_path / "r.csv", progress=False)
    assert src.read_bytes() == before and not (tmp_path / "r.csv").exists()


def test_missing_output_folder_is_refused_and_not_created(tmp_path) -> None:
    src = _small(tmp_path)
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "absent" / "x.csv"),
                              "-q"])
    assert res.exit_code == 2 and "n'existe pas" in _said(res)
    assert not (tmp_path / "absent").exists()
    res = runner.invoke(app, ["batch", str(src), "-o", "/nonexistent_dir/x.csv", "-q"])
    assert res.exit_code == 2 and not Path("/nonexistent_dir").exists()


# ----------------------------------------------------- 10.3 / 10.13 whole or not at all


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson", ".gpkg"])
def test_a_failed_run_leaves_the_previous_outputs_as_they_were(tmp_path, monkeypatch,
                                                                suffix) -> None:
    src = _small(tmp_path)
    out = tmp_path / f"resultat{suffix}"
    paths = validate_file(src, out, progress=False).paths
    before = {p: p.read_bytes() for p in paths}
    assert len(before) == 3

    def full_disk(self):
        self._fh.close()
        raise OSError(errno.ENOSPC, "No space left on device")

    # the last file written fails: the sites file and the JSON summary were complete aside
    monkeypatch.setattr(writing_mod.CsvWriter, "close", full_disk)
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q"])
    assert res.exit_code == 2, res.output
    assert "le disque est plein" in _said(res) and "Traceback" not in _said(res)
    assert {p: p.read_bytes() for p in paths} == before
    assert _partials(tmp_path) == []


def test_read_only_folder_gives_a_french_error(tmp_path, monkeypatch) -> None:
    src = _small(tmp_path)
    out = tmp_path / "resultat.csv"

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(writing_mod, "CsvWriter", read_only)
    monkeypatch.setattr("qpv_geo.batch.validation.CsvWriter", read_only)
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q"])
    assert res.exit_code == 2 and "lecture seule" in _said(res), res.output
    assert not out.exists() and _partials(tmp_path) == []


def test_streamed_run_interrupted_mid_file_keeps_the_old_output(tmp_path, monkeypatch) -> None:
    src = _coords_csv(tmp_path / "grand.csv", 2_500)
    out = tmp_path / "grand-out.csv"
    validate_file(src, out, progress=False)
    before = out.read_bytes()
    summary_before = (tmp_path / "grand-out-synthese.json").read_bytes()
    monkeypatch.setattr("qpv_geo.batch.validation.CHUNK_ROWS", 500)
    calls = {"n": 0}
    real = writing_mod.CsvWriter.write

    def write_then_fail(self, frame):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(self, frame)

    monkeypatch.setattr(writing_mod.CsvWriter, "write", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        validate_file(src, out, progress=False, sep=",")
    assert out.read_bytes() == before
    assert (tmp_path / "grand-out-synthese.json").read_bytes() == summary_before
    assert _partials(tmp_path) == []


def test_gpkg_with_columns_differing_by_case(tmp_path) -> None:
    src = tmp_path / "casse.csv"
    src.write_text("ligne;Ligne;STATUS;Latitude;Longitude\n1;a;x;45,4335;4,3790\n",
                   encoding="utf-8")
    out = tmp_path / "casse.gpkg"
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    back = read_validated(out)
    assert back["status"].tolist() == ["eligible"]
    assert {"ligne (source)", "Ligne (2)", "STATUS (2)"} <= set(back.columns)
    assert _partials(tmp_path) == []


# ------------------------------------------------------------------ 10.14 formulas


HOSTILE_CELLS = ["\uff1dHYPERLINK(\"x\")", "\uff0b1+1", "\uff0dcmd", "\uff20SUM(A1)",
                 " =1+1", "\u00a0=1+1", "\u200b=1+1", "\n=1+1", "\t=1+1", "=HDR()"]
LEGIT_CELLS = ["-", "- à définir", "@asso", "+33 6 12 34 56 78"]


def test_formulas_neutralised_in_csv_and_text_cells_in_xlsx(tmp_path) -> None:
    cells = HOSTILE_CELLS + LEGIT_CELLS
    frame = pd.DataFrame({"=HDR()": cells, "Latitude": [str(INSIDE[1])] * len(cells),
                          "Longitude": [str(INSIDE[0])] * len(cells)})
    src = tmp_path / "f.csv"
    frame.to_csv(src, sep=";", index=False)
    result = validate_file(src, None, progress=False)
    csv_path = write_result(result, tmp_path / "out.csv")[0]
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    col = rows[0].index("'=HDR()")  # the header is neutralised too
    for value, row in zip(cells, rows[1:], strict=True):
        assert row[col] == "'" + value, (value, row[col])
    xlsx = write_result(result, tmp_path / "out.xlsx")[0]
    wb = load_workbook(xlsx)
    for ws in wb.worksheets:
        assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)
    ws = wb["Sites"]
    header = [c.value for c in ws[1]]
    assert "=HDR()" in header  # shown as typed, as text
    k = header.index("=HDR()")
    got = [ws.cell(row=i + 2, column=k + 1).value for i in range(len(cells))]
    assert got == cells  # as typed: no quote shows (legitimate « - », « @asso », « +33 … »)


def test_xml_shaped_text_stays_text_in_xlsx(tmp_path) -> None:
    """xlsxwriter copies a text shaped like ``<r>…</r>`` as raw XML in constant-memory mode:
    headers and the Synthèse's porteur cells must stay plain texts."""
    rich = '<r><t>x</t></r><r><rPr><b/></rPr><t>y</t></r>'
    src = tmp_path / "x.csv"
    src.write_text(f"{rich};Porteur;Latitude;Longitude\nv;A;45,7606;4,8590\n"
                   f"w;{rich};nan;4,3\n", encoding="utf-8")
    out = tmp_path / "x.xlsx"
    validate_file(src, out, progress=False)
    wb = load_workbook(out)
    assert rich in [str(c.value).strip() for c in wb["Sites"][1]]
    porteurs = [r[0] for r in wb["Synthèse"].iter_rows(values_only=True)]
    assert any(isinstance(p, str) and p.strip() == rich for p in porteurs)


def test_xlsx_cells_keep_their_blanks_and_drop_control_characters() -> None:
    """A text cell starting or ending with a blank (any Unicode one, on any row) is marked
    xml:space="preserve" and only it; control characters become U+FFFD, tabs, line breaks and
    non-breaking spaces stay; a column of empty cells is all ``<c/>``."""
    rng = random.Random(3)
    alphabet = ["a", "é", " ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "\x1f", "<", "&"]
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
              for _ in range(3000)]
    values = np.array([*values, "x", "y ", "z"], dtype=object)  # a blank at a cell's end
    cells = writing_mod._cells_xml(values, False, None)
    marked = [' xml:space="preserve"' in c for c in cells]
    assert marked == [v[:1].isspace() or v[-1:].isspace() for v in values]
    assert [c == "<c/>" for c in cells] == [v == "" for v in values]
    one = np.array(["x", "y ", "z"], dtype=object)
    assert [' xml:space="preserve"' in c for c in writing_mod._cells_xml(one, False, None)] \
        == [False, True, False]
    plain = np.array(["x", "y", "z z"], dtype=object)
    assert "preserve" not in "".join(writing_mod._cells_xml(plain, False, None))
    empty = np.array([""] * 5, dtype=object)
    assert writing_mod._cells_xml(empty, False, None).tolist() == ["<c/>"] * 5
    texts = np.array(["ok", "bad\x01", "tab\tok\n", "\ufffe", "\u00a0nbsp"], dtype=object)
    assert writing_mod._xlsx_text(texts).tolist() == ["ok", "bad\ufffd", "tab\tok\n",
                                                      "\ufffd", "\u00a0nbsp"]
    kept = np.array(["tab\tok", "\u00a0", "ligne\r\n"], dtype=object)
    assert writing_mod._xlsx_text(kept) is kept


def test_neutralize_cells_keeps_plain_numbers() -> None:
    frame = pd.DataFrame({"a": ["-4,5", "+12", "-", "=1", None, "texte"]})
    out = batch.neutralize_cells(frame)
    assert out["a"].tolist()[:4] == ["-4,5", "+12", "'-", "'=1"]
    assert out["a"].tolist()[5] == "texte"


# ------------------------------------------------------------- the spreadsheet for people


def test_xlsx_is_laid_out_for_people(tmp_path) -> None:
    out = tmp_path / "resultat.xlsx"
    result = validate_file(EXEMPLE, out, progress=False)
    zipped = __import__("zipfile").ZipFile(out)
    sheet1 = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert 'state="frozen"' in sheet1 and "<autoFilter" in sheet1 and "<cols>" in sheet1
    wb = load_workbook(out)
    assert wb.sheetnames == ["Sites", "Synthèse", "Données"]
    ws = wb["Sites"]
    header = [c.value for c in ws[1]]
    for french in ("Ligne", "Statut", "Code QPV", "Quartier (QPV)", "Distance au bord (m)",
                   "Motifs"):
        assert french in header
    # no duplicated columns, no machine copies, no per-row data version
    assert len(header) == len(set(header))
    for machine in ("status", "porteur", "priorite", "donnees", "statut_libelle"):
        assert machine not in header
    assert header.count("Porteur") == 1 and header.count("Priorité") == 1
    assert ws.column_dimensions["B"].width > 10
    assert header[:2] == ["Ligne", "Statut"]  # the verdict in view, Ligne and Statut frozen
    assert ws.freeze_panes == "C2"
    k = header.index("Statut") + 1
    seen = {}
    for r in range(2, ws.max_row + 1):
        cell = ws.cell(row=r, column=k)
        seen[cell.value] = cell.fill.fgColor.rgb
    assert "Éligible — dans un QPV de Saint-Étienne Métropole" in seen
    assert len(set(seen.values())) == len(seen) >= 3  # one colour per verdict, with its text
    # the synthesis: tables a person reads, rows to review with porteur, action and address
    syn = [[c for c in row] for row in wb["Synthèse"].iter_rows(values_only=True)]
    titles = [r[0] for r in syn if r and isinstance(r[0], str)]
    assert "Par statut" in titles and any(t.startswith("Par QPV") for t in titles)
    assert "Par priorité de l'appel" in titles
    assert any(t.startswith("Lignes à revoir") for t in titles)
    head = next(i for i, r in enumerate(syn) if r[0] == "Porteur")
    assert list(syn[head][:6]) == ["Porteur", "Ligne", "Statut", "Action", "Adresse", "Motif"]
    first = syn[head + 1]
    assert first[0].startswith("Association") and first[3] and first[4]
    assert len(syn) < 80
    # the data version once, in « Données »
    don = [r for r in wb["Données"].iter_rows(values_only=True)]
    assert any(r[0] == "Données de référence" and "sha256" in str(r[1]) for r in don)
    assert ("Distance au bord (m)", "distance_bord_m") in {(r[0], r[1]) for r in don}
    # read back: machine names and codes
    back = read_validated(out)
    assert back["status"].tolist() == result.frame["status"].tolist()
    assert back["porteur"].tolist() == result.frame["porteur"].tolist()
    assert back["priorite"].tolist() == result.frame["priorite"].tolist()
    assert back["donnees"].str.contains("sha256").all()


def test_xlsx_read_back_without_its_companion_files(tmp_path) -> None:
    out = tmp_path / "resultat.xlsx"
    result = validate_file(EXEMPLE, out, progress=False)
    for p in tmp_path.glob("resultat-synthese.*"):
        p.unlink()
    back = read_validated(out)
    assert back["donnees"].str.contains("sha256").all()
    assert back["porteur"].tolist() == result.frame["porteur"].tolist()


def test_csv_keeps_machine_names_and_per_run_facts_once(tmp_path) -> None:
    out = tmp_path / "resultat.csv"
    result = validate_file(EXEMPLE, out, progress=False)
    header = out.read_text(encoding="utf-8-sig").splitlines()[0].split(";")
    for machine in ("ligne", "status", "code_qp", "distance_bord_m", "motifs"):
        assert machine in header
    for gone in ("donnees", "statut_libelle", "porteur", "action", "priorite"):
        assert gone not in header
    assert "sha256" not in out.read_text(encoding="utf-8-sig")
    summary = json.loads((tmp_path / "resultat-synthese.json").read_text(encoding="utf-8"))
    assert "sha256" in summary["donnees"]
    assert "sha256" in (tmp_path / "resultat-synthese.csv").read_text(encoding="utf-8-sig")
    back = read_validated(out)
    assert back["porteur"].tolist() == result.frame["porteur"].tolist()
    assert back["action"].tolist() == result.frame["action"].tolist()
    assert back["priorite"].tolist() == result.frame["priorite"].tolist()
    for text in set(result.frame["donnees"]):  # the version and the reference's notes
        for part in text.split(" — ", 1)[1].split(" ; "):
            assert back["donnees"].str.contains(part, regex=False).all()
        assert back["donnees"].str.startswith(text.split(" — ")[0]).all()


def test_output_stays_small_per_row(tmp_path) -> None:
    """Issue 13's budget on the benchmark's kind of file: at most 200 bytes per row on top of
    the input's. The margin's
    per-row explanation (``marge_motif``, evidence for each verdict) is counted apart: the
    README says by how much it makes the file miss the budget."""
    rows = 5_000
    src = _coords_csv(tmp_path / "c.csv", rows)
    out = tmp_path / "c-out.csv"
    validate_file(src, out, progress=False)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        motif = sum(len(r["marge_motif"].encode()) + 1
                    for r in csv.DictReader(fh, delimiter=";"))
    added = (out.stat().st_size - src.stat().st_size - motif) / rows
    assert added < 200, added


def test_cli_rows_to_review_show_porteur_and_address(tmp_path) -> None:
    res = runner.invoke(app, ["batch", str(EXEMPLE), "-o", str(tmp_path / "r.csv")],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    table = res.output[res.output.index("Lignes à revoir"):]
    assert "porteur" in table and "adresse" in table
    assert "Association fictive" in table and "Rue" in table


# ---------------------------------------------------------------------------- kill test


def test_killed_at_random_points_leaves_old_outputs_or_new_complete(tmp_path) -> None:
    """A 200,000-row batch killed (SIGKILL) at random moments: each output is the previous
    complete one or the new complete one, never a cut file."""
    rows = 200_000
    src = _coords_csv(tmp_path / "lot.csv", rows)
    out = tmp_path / "lot-out.csv"
    cmd = [sys.executable, "-m", "qpv_geo", "batch", str(src), "-o", str(out), "-q"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    duration = time.perf_counter() - t0
    files = [out, tmp_path / "lot-out-synthese.csv", tmp_path / "lot-out-synthese.json"]
    old = {p: p.read_bytes() for p in files}
    new_cmd = [*cmd, "--sep", ","]  # the new outputs differ from the old ones
    rng = random.Random(2026)
    for _ in range(3):
        proc = subprocess.Popen(new_cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.0) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for p in files:
            data = p.read_bytes()
            if data != old[p]:  # then it is the new one, complete
                if p == out:
                    text = data.decode("utf-8-sig")
                    assert text.count("\r\n") == rows + 1 and text.endswith("\r\n")
                    assert text.splitlines()[0].startswith("ligne,")
                elif p.suffix == ".json":
                    assert json.loads(data)["lignes_ecrites"] == rows
    subprocess.run(new_cmd, check=True, capture_output=True, cwd=ROOT)
    text = out.read_bytes().decode("utf-8-sig")
    assert text.count("\r\n") == rows + 1
    assert _partials(tmp_path) == []  # the killed runs' temporaries are gone


# --------------------------------------------- issue 21.8: a batch's outputs switch together


def _sites(tmp_path: Path, name: str, rows: int, col: str = "Porteur") -> Path:
    path = tmp_path / name
    lines = [f"{col};Latitude;Longitude"] + [f"Asso {k};45,4335;4,3790" for k in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("survive", [1, 2])
def test_kill_between_renames_is_detected_by_the_reader(tmp_path, monkeypatch, survive) -> None:
    out = tmp_path / "ex.csv"
    validate_file(_sites(tmp_path, "a.csv", 3), out, progress=False)
    old = out.read_bytes()
    real_replace, renamed = os.replace, []

    def replace_then_die(src, dst):  # the process dies after `survive` renames
        if len(renamed) == survive:
            raise OSError(errno.EIO, "killed")
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(InputFileError, match="Impossible d'écrire"):
        validate_file(_sites(tmp_path, "b.csv", 5), out, progress=False)
    monkeypatch.setattr(os, "replace", real_replace)
    # the synthesis first, the file it describes last: never a new file beside an old synthesis
    assert "ex.csv" not in renamed and out.read_bytes() == old
    assert _partials(tmp_path) == []
    summary = json.loads((tmp_path / "ex-synthese.json").read_text(encoding="utf-8"))
    back = read_validated(out)
    assert len(back) == 3
    if "ex-synthese.json" in renamed:  # 3 rows beside a synthesis saying 5: said, not believed
        assert summary["lignes_ecrites"] == 5
        assert summary["fichier_decrit"]["nom"] == "ex.csv"
        assert "donnees" not in back.columns
        [warning] = back.attrs["avertissements_lecture"]
        assert "décrit un autre fichier" in warning
        res = runner.invoke(app, ["map", str(out), "-o", str(tmp_path / "c.html"), "--tiles",
                                  "none"])
        assert res.exit_code == 0 and "décrit un autre fichier" in _said(res), res.output
    else:  # the previous synthesis still describes the previous file
        assert summary["lignes_ecrites"] == 3 and back.attrs["avertissements_lecture"] == []
    # a complete run: the synthesis describes its file again
    validate_file(_sites(tmp_path, "b.csv", 5), out, progress=False)
    back = read_validated(out)
    assert len(back) == 5 and back.attrs["avertissements_lecture"] == []
    assert back["donnees"].notna().all()


def test_csv_and_xlsx_of_the_same_name_keep_their_own_synthesis(tmp_path) -> None:
    validate_file(_sites(tmp_path, "a.csv", 2, col="Porteur"), tmp_path / "x.csv", progress=False)
    validate_file(_sites(tmp_path, "b.csv", 4, col="Structure"), tmp_path / "x.xlsx",
                  progress=False)
    csv_facts = json.loads((tmp_path / "x-synthese.json").read_text(encoding="utf-8"))
    xlsx_facts = json.loads((tmp_path / "x-xlsx-synthese.json").read_text(encoding="utf-8"))
    assert (csv_facts["lignes_ecrites"], csv_facts["colonnes"]["porteur"]) == (2, "Porteur")
    assert (xlsx_facts["lignes_ecrites"], xlsx_facts["colonnes"]["porteur"]) == (4, "Structure")
    assert xlsx_facts["fichier_decrit"]["nom"] == "x.xlsx"
    back = read_validated(tmp_path / "x.csv")  # its own run's columns, not the XLSX's
    assert list(back["porteur"]) == ["Asso 0", "Asso 1"]
    assert back.attrs["avertissements_lecture"] == []
    # another run's synthesis put beside a file is refused for it
    (tmp_path / "x-synthese.json").write_text(json.dumps(xlsx_facts), encoding="utf-8")
    assert "décrit un autre fichier" in read_validated(tmp_path / "x.csv").attrs[
        "avertissements_lecture"][0]


_KILLED_BETWEEN_RENAMES = """
import os, sys, time
from pathlib import Path
from qpv_geo.batch import validate_file
real, done = os.replace, []
def replace(src, dst):
    if len(done) == 2:  # both synthesis files are in place, the file they describe is not
        print("entre deux renommages", flush=True)
        time.sleep(60)
    done.append(dst)
    real(src, dst)
os.replace = replace
validate_file(sys.argv[1], sys.argv[2], progress=False)
"""


def test_kill_9_between_renames_is_detected_by_the_reader(tmp_path) -> None:
    out = tmp_path / "ex.csv"
    validate_file(_sites(tmp_path, "a.csv", 3), out, progress=False)
    old = out.read_bytes()
    with subprocess.Popen([sys.executable, "-c", _KILLED_BETWEEN_RENAMES,
                           str(_sites(tmp_path, "b.csv", 5)), str(out)],
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "entre deux renommages"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert out.read_bytes() == old
    summary = json.loads((tmp_path / "ex-synthese.json").read_text(encoding="utf-8"))
    assert summary["lignes_ecrites"] == 5  # the new synthesis beside the old file…
    back = read_validated(out)
    assert len(back) == 3 and "décrit un autre fichier" in back.attrs[
        "avertissements_lecture"][0]  # …is not believed


def _tricky_frame(rows: int, seed: int) -> pd.DataFrame:
    """Cells that test a CSV writer: separators, quotes, line breaks, accents, formulas,
    missing values, negative zero, large integers, numbers to round."""
    rng = random.Random(seed)
    texts = ["", "plain", 'say "hi"', "a;b", "a,b", "line\nbreak", "cr\rlf\r\n", "Saint-Étienne",
             "=SUM(A1)", "+33 4 77", "-4,5", "-x", "@user", "\tlead", " =1", "\uff1dfull",
             "\u00a0=nbsp", "emoji 🏠", "\u2028sep", "'quoted", '"', ";", "é;\"è\"\n"]
    pick = [rng.choice(texts) for _ in range(rows)]
    nums = [rng.choice([0.0, -0.0, 1.25, -1.25, 2.675, 45.4000001, -4.3999999, 1e15, 1e-7,
                        -0.04, 123456789.123456, float("nan"), 7.05, -0.0000001])
            for _ in range(rows)]
    frame = pd.DataFrame({
        "ligne": np.arange(2, rows + 2, dtype=np.int64),
        "Porteur": pd.Series(pick, dtype="str"),
        "objet": pd.Series([None if t == "" else t for t in pick], dtype=object),
        # no cell starting like a formula: the whole column goes through Arrow
        "objet_sans_formule": pd.Series(
            [None if t == "" else float("nan") if t == "plain" else t
             for t in pick if t[:1] not in ("=", "+", "-", "@", "\t", " ", "\uff1d", "\u00a0",
                                            "\u2028")][:rows] + [None] * rows, dtype=object
        )[:rows].reset_index(drop=True),
        "mixte": pd.Series([rng.choice([1, 2.5, "x;y", None, True]) for _ in range(rows)],
                           dtype=object),
        "status": pd.Series([rng.choice(["eligible", "hors_qpv", None]) for _ in range(rows)],
                            dtype="str"),
        "motifs": pd.Series(pick[::-1], dtype="str"),
        "lon": nums, "lat": nums[::-1], "distance_bord_m": nums, "geocodage_score": nums,
        "autre_nombre": nums,
        "entier": pd.array([rng.choice([None, 0, -1, 2**53 + 1]) for _ in range(rows)],
                           dtype="Int64"),
        "grand": np.array([2**62, -(2**62)] * (rows // 2) + [0] * (rows % 2), dtype=np.int64),
        "eligible": [rng.random() < 0.5 for _ in range(rows)],
        "donnees": "not written",
    })
    return frame


@pytest.mark.parametrize("sep", [";", ","])
def test_arrow_csv_writer_gives_the_bytes_of_the_python_path(tmp_path, sep) -> None:
    """The Arrow row join (C speed) writes exactly the bytes of the column-by-column Python
    writer, over several chunks and every tricky cell."""
    paths = {}
    for arrow in (True, False):
        path = tmp_path / f"{arrow}.csv"
        writer = writing_mod.CsvWriter(path, sep, arrow=arrow)
        for seed, rows in ((1, 300), (2, 0), (3, 257), (4, 1)):
            writer.write(_tricky_frame(rows, seed))
        # a column made of several Arrow chunks (frames concatenated)
        writer.write(pd.concat([_tricky_frame(70, 6), _tricky_frame(30, 7)],
                               ignore_index=True))
        writer.close()
        paths[arrow] = path.read_bytes()
    assert paths[True] == paths[False]
    assert paths[True].startswith(b"\xef\xbb\xbfligne" + sep.encode())
    assert b"'=SUM(A1)" in paths[True] and b'"a' + sep.encode() + b'b"' in paths[True]
    # the Arrow path did write those chunks (no silent fallback to Python)
    frame = writing_mod.machine_frame(_tricky_frame(50, 5))
    columns = [(str(c), frame[c]) for c in frame.columns]
    assert writing_mod._arrow_rows(columns, sep, "," if sep == ";" else ".") is not None


def test_only_cells_starting_like_a_formula_go_through_the_python_rule(monkeypatch) -> None:
    """A text column with a few cells starting like a formula (negative longitudes west of
    Greenwich, « -x », « =1 ») stays in Arrow: the rule looks at those cells only, and
    writes what the Python path writes."""
    values = ["4,5", "-1,55", "-x", " =1", "Brest", None, "a;b", "\u00a0@x"] * 500
    values += ["-1,5\n", "+\u0663", "-1e5", "-1,5;", "-٣,٤", "+1.5E-3", "-1,", "--1"]
    frame = pd.DataFrame({"Longitude": pd.Series(values, dtype=object)})
    seen = []
    rule = writing_mod._neutral_text
    monkeypatch.setattr(writing_mod, "_neutral_text", lambda v: seen.append(v) or rule(v))
    cells = writing_mod._arrow_column("Longitude", frame["Longitude"], ";", ",").to_pylist()
    # -1,55, -1e5, +1.5E-3: plain numbers in ASCII digits, left to Arrow
    assert set(seen) == {" =1", "-x", "\u00a0@x", "-1,5\n", "+\u0663", "-1,5;", "-٣,٤", "-1,",
                         "--1"}
    assert len(seen) == 3 * 500 + 6
    assert cells == writing_mod._csv_column("Longitude", frame["Longitude"], ";", ",")
    assert cells[:8] == ["4,5", "-1,55", "'-x", "' =1", "Brest", "", '"a;b"', "'\u00a0@x"]


@pytest.mark.parametrize("name", ["marge_m", "lon", "autre_nombre", "geocodage_score",
                                  "ligne"])
def test_numbers_of_a_column_read_as_each_alone(name) -> None:
    """A numeric column written by Arrow (:func:`_number_cells`) holds the texts of each number
    formatted alone by the Python path (-0.0 and 0.0, NaN, ties to round, large values)."""
    values = [11.0, 11.0, -0.0, 0.0, float("nan"), 2.675, -0.05, 1e15, 1e16, 45.4000005] * 40
    series = pd.Series(values)
    if name == "ligne":
        series = pd.Series([2, 3, -4, 0, 2**62, -(2**62)] * 40, dtype=np.int64)
    whole = writing_mod._number_cells(name, series, ",").to_pylist()
    alone = [writing_mod._number_texts(name, series.iloc[[k]], ",")[0]
             for k in range(len(series))]
    assert whole == alone


def _python_fixed(x: float, digits: int, decimal: str) -> str:
    """The written rule, restated: Python's correctly rounded fixed decimals, trailing zeros
    dropped, -0 written 0, nothing for NaN and infinities."""
    if x != x or x in (float("inf"), float("-inf")):
        return ""
    t = ("{:." + str(digits) + "f}").format(x).rstrip("0").rstrip(".")
    return "0" if t == "-0" else t.replace(".", decimal)


def _adversarial_numbers(digits: int, seed: int) -> np.ndarray:
    """Random numbers of every magnitude and the ones a scaled-integer formatter gets wrong:
    ties after scaling (exact or not, and their float neighbours), huge values, -0, NaN,
    infinities, subnormals."""
    rng = np.random.default_rng(seed)
    scale = 10.0**digits
    ties = (rng.integers(-10**9, 10**9, 20_000) + 0.5) / scale
    exact_ties = rng.integers(-2**20, 2**20, 2_000) / 2.0**rng.integers(1, 12, 2_000)
    near = np.concatenate([np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf),
                           np.nextafter(np.nextafter(ties, np.inf), np.inf)])
    rounded = np.concatenate([np.round(rng.uniform(-5e3, 5e3, 2_500), k) for k in range(8)])
    wide = rng.standard_normal(20_000) * 10.0**rng.integers(-12, 22, 20_000)
    coords = np.round(rng.uniform(-180, 180, 20_000), 6)
    edge = 2.0**40 / scale
    named = [0.0, -0.0, 0.0000005, -0.0000005, 0.0000015, 2.675, -2.675, 0.05, -0.05, 0.15,
             0.25, 0.35, 0.45, 1e15, -1e15, 1e16, 1e22, 1.7976931348623157e308, 5e-324,
             -5e-324, float("nan"), float("inf"), float("-inf"), 45.4000005, 4.3999995,
             edge, -edge, np.nextafter(edge, 0), np.nextafter(edge, np.inf), 0.5 / scale,
             -0.5 / scale, 1.5 / scale, -1.5 / scale, 0.49 / scale, -0.49 / scale,
             999999.9999995, 0.9999995, -0.9999995, 9.95, -9.95, 99.95]
    return np.concatenate([ties, exact_ties, near, rounded, wide, coords, named])


@pytest.mark.parametrize("digits", [1, 3, 6])
@pytest.mark.parametrize("decimal", [",", "."])
def test_fixed_decimals_vectorised_are_python_formatting(digits, decimal, monkeypatch) -> None:
    """The numbers formatted on the whole column by Arrow (scaled integers) are the texts of
    Python's correctly rounded formatting, on random and adversarial values; only the few
    values near a tie, too large or not finite take the Python rule (the rest is
    vectorised)."""
    values = _adversarial_numbers(digits, seed=digits)
    calls = []
    rule = writing_mod._fixed_text
    monkeypatch.setattr(writing_mod, "_fixed_text",
                        lambda x, d, dec: calls.append(x) or rule(x, d, dec))
    got = writing_mod._fixed_cells(values, digits, decimal).to_pylist()
    expected = [_python_fixed(x, digits, decimal) for x in values.tolist()]
    wrong = [(x, g, e) for x, g, e in zip(values.tolist(), got, expected, strict=True)
             if g != e]
    assert wrong == []
    assert len(got) == len(values)
    assert [rule(x, digits, decimal) for x in values.tolist()] == expected
    # the ties went to Python, the plain values did not
    assert len(calls) >= 20_000
    plain = np.round(np.random.default_rng(1).uniform(-200, 200, 50_000), digits)
    calls.clear()
    assert writing_mod._fixed_cells(plain, digits, decimal).to_pylist() == \
        [_python_fixed(x, digits, decimal) for x in plain.tolist()]
    assert len(calls) == 0


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_layer_is_named_sites_not_after_the_temporary_file(tmp_path, suffix) -> None:
    """A GIS shows the layer's name: it was the temporary file's (« .r.123-ab.partiel »)
    in GeoJSON."""
    import pyogrio

    out = tmp_path / f"r{suffix}"
    validate_file(_small(tmp_path), out, progress=False)
    assert [name for name, _ in pyogrio.list_layers(out)] == ["sites"]
    if suffix == ".geojson":
        assert json.loads(out.read_text(encoding="utf-8"))["name"] == "sites"
