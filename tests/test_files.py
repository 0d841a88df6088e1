"""Atomic outputs and output-path checks (qpv_geo._files)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qpv_geo._files import (
    PARTIAL_MARK,
    AtomicOutputs,
    atomic_path,
    check_output_path,
    os_error_message,
    summary_paths,
    write_error,
    write_text_atomic,
    writing,
)
from qpv_geo.exceptions import InputFileError


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text("a\n1\n")
    with pytest.raises(InputFileError, match="fichier d'entrée"):
        check_output_path(src, [src])
    link = tmp_path / "lien.csv"
    link.symlink_to(src)
    with pytest.raises(InputFileError, match="écrasé"):
        check_output_path(link, [src])
    hard = tmp_path / "dur.csv"
    os.link(src, hard)
    with pytest.raises(InputFileError):
        check_output_path(hard, [src])
    assert src.read_text() == "a\n1\n"


def test_missing_folder_is_refused_not_created(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="n'existe pas"):
        check_output_path(tmp_path / "absent" / "x.csv")
    assert not (tmp_path / "absent").exists()
    with pytest.raises(InputFileError, match="dossier"):
        check_output_path(tmp_path)
    assert check_output_path(tmp_path / "ok.csv", [tmp_path / "autre.csv"]) == tmp_path / "ok.csv"


def test_failure_leaves_previous_outputs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "a-synthese.json"
    a.write_text("ancien")
    b.write_text("ancienne synthèse")
    with pytest.raises(RuntimeError), AtomicOutputs() as outs:
        outs.path(a).write_text("nouveau, à moitié")
        outs.path(b).write_text("nouvelle")
        raise RuntimeError("coupure")
    assert a.read_text() == "ancien"
    assert b.read_text() == "ancienne synthèse"
    assert [p.name for p in tmp_path.iterdir() if PARTIAL_MARK in p.name] == []


def test_success_replaces_all_at_once(tmp_path: Path) -> None:
    a = tmp_path / "a.xlsx"
    a.write_text("ancien")
    with atomic_path(a) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".xlsx" and tmp.name.startswith(".")
        assert not tmp.exists()
        tmp.write_text("nouveau")
        assert a.read_text() == "ancien"
    assert a.read_text() == "nouveau"
    assert write_text_atomic(tmp_path / "t.json", "{}").read_text() == "{}"


def test_killed_writer_leaves_final_intact_and_next_run_cleans(tmp_path: Path) -> None:
    final = tmp_path / "sortie.csv"
    final.write_text("complet\n")
    code = (
        "import sys, time\n"
        "from qpv_geo._files import atomic_path\n"
        f"with atomic_path({str(final)!r}) as tmp:\n"
        "    fh = open(tmp, 'w')\n"
        "    fh.write('ligne\\n' * 1000); fh.flush()\n"
        "    print('pret', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "pret"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert final.read_text() == "complet\n"
    left = [p for p in tmp_path.iterdir() if PARTIAL_MARK in p.name]
    assert len(left) == 1  # the killed run's temporary, hidden
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the pid is gone once reaped
        with atomic_path(final) as tmp:
            tmp.write_text("nouveau\n")
        if not any(PARTIAL_MARK in p.name for p in tmp_path.iterdir()):
            break
    assert final.read_text() == "nouveau\n"
    assert not any(PARTIAL_MARK in p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(("err", "words"), [(28, "disque est plein"), (30, "lecture seule")])
def test_os_errors_in_french(err: int, words: str) -> None:
    msg = os_error_message(OSError(err, os.strerror(err)), "/x/y.csv")
    assert words in str(msg) and msg.hint


# ------------------------------------------------- issue 21: one guard, French write errors


def test_files_that_belong_to_an_input_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "ex.csv"
    src.write_text("a\n1\n")
    for name in ("ex-synthese.json", "ex-synthese.csv"):  # the input's own synthesis
        (tmp_path / name).write_text("{}")
        with pytest.raises(InputFileError, match="accompagne le fichier d'entrée"):
            check_output_path(tmp_path / name, [src])
    base = tmp_path / "registre.sqlite"  # a database and its journal
    with pytest.raises(InputFileError, match="fichier d'entrée"):
        check_output_path(base, [base])
    with pytest.raises(InputFileError, match="accompagne"):
        check_output_path(tmp_path / "registre.sqlite-wal", [base])
    lien = tmp_path / "lien.json"
    lien.symlink_to(tmp_path / "ex-synthese.json")
    with pytest.raises(InputFileError, match="accompagne"):
        check_output_path(lien, [src])
    assert check_output_path(tmp_path / "ex-xlsx-synthese.json", [src])  # another output's


def test_summary_paths_are_distinct_per_output() -> None:
    names = {p.name for suffix in (".csv", ".xlsx", ".geojson", ".gpkg")
             for p in summary_paths(Path(f"x{suffix}"))}
    assert len(names) == 8 and "x-synthese.json" in names and "x-xlsx-synthese.json" in names


def test_link_loops_are_refused_in_french(tmp_path: Path) -> None:
    (tmp_path / "boucle").symlink_to(tmp_path / "boucle")
    (tmp_path / "b.csv").symlink_to(tmp_path / "b.csv")
    for out in (tmp_path / "boucle" / "x.csv", tmp_path / "b.csv"):
        with pytest.raises(InputFileError, match="boucle de liens symboliques"):
            check_output_path(out, [tmp_path / "entree.csv"])
    (tmp_path / "fichier").write_text("")
    with pytest.raises(InputFileError, match="est un fichier, pas un dossier"):
        check_output_path(tmp_path / "fichier" / "x.html", create_folder=True)
    assert check_output_path(tmp_path / "nouveau" / "x.html", create_folder=True)


def test_commit_renames_the_first_output_last(tmp_path: Path, monkeypatch) -> None:
    order: list[str] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append(Path(b).name), real(a, b)))
    with AtomicOutputs() as outs:
        for name in ("x.csv", "x-synthese.json", "x-synthese.csv"):
            outs.path(tmp_path / name).write_text(name)
    assert order[-1] == "x.csv" and len(order) == 3


@pytest.mark.parametrize(("err", "words"), [
    (errno.EFBIG, "taille maximale"), (errno.ELOOP, "boucle de liens"),
    (errno.ENOTDIR, "pas un dossier"), (errno.EXDEV, "erreur du système (EXDEV)")])
def test_every_os_error_is_said_in_french(err: int, words: str) -> None:
    msg = str(os_error_message(OSError(err, os.strerror(err)), "/x/y.csv"))
    assert words in msg and os.strerror(err) not in msg


def test_library_write_failures_become_french(tmp_path: Path, monkeypatch) -> None:
    import resource

    pyogrio_errors = pytest.importorskip("pyogrio.errors")
    from xlsxwriter.exceptions import FileCreateError

    out = tmp_path / "x.gpkg"
    err = write_error(FileCreateError(OSError(errno.ENOSPC, "No space")), tmp_path / "x.xlsx")
    assert err is not None and "disque est plein" in str(err)
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (20_000, resource.RLIM_INFINITY))
    err = write_error(pyogrio_errors.FeatureError("Cannot write feature"), out)
    assert err is not None and "taille maximale" in str(err) and "Cannot" not in str(err)
    assert write_error(ValueError("a bug"), out) is None  # a bug keeps its traceback
    with pytest.raises(InputFileError, match="UTF-8"), writing(out):
        "caf\udce9".encode()


_SCRATCH_WORKER = """
import signal, sys, threading, time
from qpv_geo._files import scratch_dir
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a graceful stop, as uvicorn's
def check():  # a long check of an upload, in a worker thread (as the web's /lot)
    with scratch_dir("qpv-geo-lot-") as folder:
        (folder / "depot.csv").write_text("Porteur;lat;lon\\n")
        print(folder, flush=True)
        time.sleep(60)
threading.Thread(target=check, daemon=True).start()
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_an_upload_folder_never_outlives_its_process(tmp_path: Path, sig: int) -> None:
    """Issue 21: SIGTERM during a long check left the upload's folder in the temporary
    directory. SIGTERM: removed at exit; kill -9: removed by the next check."""
    from qpv_geo._files import scratch_dir

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with subprocess.Popen([sys.executable, "-c", _SCRATCH_WORKER], stdout=subprocess.PIPE,
                          text=True, env=env) as proc:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
        assert folder.parent == tmp_path and (folder / "depot.csv").exists()
        proc.send_signal(sig)
        proc.wait(timeout=20)
    if sig == signal.SIGTERM:
        assert not folder.exists()
        return
    assert folder.exists()  # nothing runs after kill -9…
    import tempfile

    old, tempfile.tempdir = tempfile.tempdir, str(tmp_path)
    try:
        with scratch_dir("qpv-geo-lot-") as mine:  # …the next check sweeps it
            assert not folder.exists() and mine.exists()
    finally:
        tempfile.tempdir = old
    assert not mine.exists()
