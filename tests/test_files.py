"""Atomic outputs and output-path checks (qpv_geo._files)."""

from __future__ import annotations

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
    write_text_atomic,
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
