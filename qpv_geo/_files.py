"""Small file helpers shared by every stage that reads or writes a user's files.

* :func:`sha256_file` — checksum of reference layers and address files;
* :class:`AtomicOutputs` / :func:`atomic_path` — every output (CSV, XLSX, GeoJSON, GPKG,
  synthesis, map, report, exports) is written to a temporary file *in the same folder* and
  renamed into place only when complete: a failed, interrupted or killed run leaves the
  previous outputs exactly as they were, never a half-written file under the final name;
* :func:`check_output_path` — an output never overwrites an input (same file, through a link
  or not) and never creates missing folders.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from qpv_geo.exceptions import InputFileError

#: Marker in the name of a temporary output (hidden file next to the final one).
PARTIAL_MARK = ".partiel"


def sha256_file(path: Path) -> str:
    """sha256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Check that *output* can be written without harming anything; return it as a Path.

    Refuses (:class:`~qpv_geo.exceptions.InputFileError`, message in French): an output that
    is one of *inputs* (same inode: the same path, a hard or symbolic link), an output that is
    a folder, and an output whose folder does not exist (it is never created silently).
    """
    out = Path(output)
    for source in inputs:
        src = Path(source)
        if _same_file(out, src) or out.resolve() == src.resolve():
            raise InputFileError(
                f"Le fichier de sortie « {out} » est le fichier d'entrée « {src} » : "
                "il serait écrasé.",
                hint="Donnez un autre nom de sortie avec -o (par exemple "
                f"« {src.stem}_valide{src.suffix} »).",
            )
    if out.is_dir():
        raise InputFileError(f"« {out} » est un dossier, pas un fichier de sortie.",
                             hint="Donnez un nom de fichier avec -o, par exemple "
                             f"« {out / 'resultat.csv'} ».")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputFileError(f"Le dossier de sortie « {parent} » n'existe pas.",
                             hint="Créez-le d'abord, ou choisissez un dossier existant.")
    return out


def _temp_name(final: Path) -> Path:
    return final.with_name(
        f".{final.stem}.{os.getpid()}-{secrets.token_hex(3)}{PARTIAL_MARK}{final.suffix}")


_PARTIAL_RE = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)-[0-9a-f]{6}" + re.escape(PARTIAL_MARK))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(final: Path) -> None:
    """Remove temporaries left for *final* by a run that was killed (its process is gone)."""
    with contextlib.suppress(OSError):
        for p in final.parent.iterdir():
            m = _PARTIAL_RE.match(p.name)
            if m and m["stem"] == final.stem and p.name.endswith(final.suffix) \
                    and not _pid_alive(int(m["pid"])):
                with contextlib.suppress(OSError):
                    p.unlink()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        os.fsync(fh.fileno())


def os_error_message(exc: OSError, path: Path | str) -> InputFileError:
    """A French, actionable error for a failed write (read-only, full disk, no right)."""
    reasons = {
        errno.ENOSPC: ("le disque est plein", "Libérez de la place ou écrivez ailleurs (-o)."),
        errno.EROFS: ("le support est en lecture seule",
                      "Écrivez dans un dossier modifiable (-o)."),
        errno.EACCES: ("vous n'avez pas le droit d'y écrire",
                       "Écrivez dans un dossier à vous (-o)."),
        errno.EPERM: ("vous n'avez pas le droit d'y écrire",
                      "Écrivez dans un dossier à vous (-o)."),
        errno.EDQUOT: ("le quota de disque est atteint",
                       "Libérez de la place ou écrivez ailleurs (-o)."),
    }
    why, hint = reasons.get(exc.errno or 0, (exc.strerror or "erreur d'écriture",
                                             "Vérifiez le dossier de sortie."))
    return InputFileError(f"Impossible d'écrire « {path} » : {why}. Les fichiers de sortie "
                          "précédents sont restés tels quels.", hint=hint)


class AtomicOutputs:
    """Write several outputs aside, then move them all into place at once.

    >>> with AtomicOutputs() as outs:          # doctest: +SKIP
    ...     write_csv(outs.path(final_csv))
    ...     write_json(outs.path(final_json))

    Each :meth:`path` returns a hidden temporary file in the final file's folder (same
    suffix, so writers that look at the extension still work). On a clean exit every
    temporary is flushed to disk and renamed over its final name (``os.replace``: atomic on
    one file system); on any exception, Ctrl-C included, the temporaries are removed and the
    previous outputs are left untouched. Temporaries of a killed run (``kill -9``) are
    removed by the next write of the same output.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def path(self, final: str | Path) -> Path:
        """A temporary path to write *final* to."""
        final = Path(final)
        _remove_stale_partials(final)
        tmp = _temp_name(final)
        self._pending.append((tmp, final))
        return tmp

    def commit(self) -> list[Path]:
        """Move every temporary into place; return the final paths."""
        done: list[Path] = []
        for tmp, final in self._pending:
            if not tmp.exists():  # the writer chose not to write this one
                continue
            _fsync(tmp)
            os.replace(tmp, final)
            done.append(final)
        self._pending.clear()
        return done

    def discard(self) -> None:
        """Remove every temporary (the final files are untouched)."""
        for tmp, _final in self._pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending.clear()

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Context manager giving a temporary path that replaces *final* when the block succeeds."""
    with AtomicOutputs() as outs:
        yield outs.path(final)


def write_text_atomic(final: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write *text* to *final* through a temporary file; return *final*."""
    final = Path(final)
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding=encoding)
    return final


def write_bytes_atomic(final: str | Path, data: bytes) -> Path:
    """Write *data* to *final* through a temporary file; return *final*."""
    final = Path(final)
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
    return final
