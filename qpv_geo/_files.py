"""Small file helpers shared by every stage that reads or writes a user's files.

* :func:`sha256_file` — checksum of reference layers and address files;
* :class:`AtomicOutputs` / :func:`atomic_path` — every output (CSV, XLSX, GeoJSON, GPKG,
  synthesis, map, report, exports) is written to a temporary file *in the same folder* and
  renamed into place only when complete: a failed, interrupted or killed run leaves the
  previous outputs exactly as they were, never a half-written file under the final name;
* :func:`check_output_path` — the one output guard of every command that writes: an output
  never overwrites an input (same file, through a link or not) nor a file that belongs to an
  input (its synthesis, a database's journal), never goes through a symbolic-link loop, and
  never creates missing folders;
* :func:`summary_paths` — the names of the synthesis files beside a batch output (one pair
  per output file: ``x.csv`` and ``x.xlsx`` never share one);
* :func:`scratch_dir` — a temporary folder that never outlives its process (block end,
  process exit on SIGTERM, or swept by the next one after a ``kill -9``);
* :func:`writing` / :func:`os_error_message` — a failed write (full disk, read-only medium,
  ``ulimit -f``, a link loop…), whichever library raised it, becomes one French message.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import tempfile
import threading
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


def shown(path: str | Path) -> str:
    """A path as people read it: a name that is not valid UTF-8 (bytes of another system's
    encoding, kept by Python as surrogates) gets « � » where the bad bytes are, so it can be
    printed, put in a page or in JSON."""
    text = os.fsdecode(path) if not isinstance(path, str) else path
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def summary_paths(path: str | Path) -> tuple[Path, Path]:
    """The synthesis files of a batch output, ``.csv`` and ``.json``: ``x-synthese.*`` for
    ``x.csv``, ``x-<format>-synthese.*`` for any other format (``x-xlsx-synthese.json`` for
    ``x.xlsx``): two outputs of the same name never share one synthesis."""
    path = Path(path)
    suffix = path.suffix.lower()
    stem = path.with_suffix("")
    tag = "" if suffix in ("", ".csv") else f"-{suffix.lstrip('.')}"
    return Path(f"{stem}{tag}-synthese.csv"), Path(f"{stem}{tag}-synthese.json")


def belongings(path: str | Path) -> list[Path]:
    """*path* and the files that belong to it: its synthesis files (a batch output), its
    journal files (a SQLite database such as the register). Writing over one of them would
    break the file, so no output may be one of them."""
    path = Path(path)
    return [path, *summary_paths(path),
            *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop (RuntimeError before 3.13)
        return None


def _loop_error(out: Path) -> InputFileError:
    return InputFileError(f"Le chemin de sortie « {shown(out)} » passe par une boucle de liens "
                          "symboliques (un lien qui pointe, directement ou non, vers lui-même).",
                          hint="Supprimez le lien en boucle ou choisissez un autre chemin (-o).")


def check_output_path(output: str | Path, inputs: Iterable[str | Path] = (), *,
                      create_folder: bool = False) -> Path:
    """The output guard of every command that writes: check that *output* can be written
    without harming anything; return it as a Path.

    Refuses (:class:`~qpv_geo.exceptions.InputFileError`, message in French): an output that
    is one of *inputs* or a file that belongs to one (:func:`belongings`: its synthesis, its
    journal) — same path, or the same file through a hard or symbolic link —, an output whose
    path goes through a symbolic-link loop, an output that is a folder, and an output whose
    folder does not exist (never created silently, unless ``create_folder``: then the folder
    is created by the writer, but a file in the way is still refused).
    """
    out = Path(output)
    out_real = _resolved(out)
    if out_real is None:
        raise _loop_error(out)
    for source in inputs:
        src = Path(source)
        for owned in belongings(src):
            if not (_same_file(out, owned) or out_real == _resolved(owned)):
                continue
            what = ("le fichier d'entrée" if owned == src else
                    f"un fichier qui accompagne le fichier d'entrée « {shown(src)} »")
            raise InputFileError(
                f"Le fichier de sortie « {shown(out)} » est {what}"
                + (f" « {shown(src)} »" if owned == src else "") + " : il serait écrasé.",
                hint="Donnez un autre nom de sortie avec -o (par exemple "
                f"« {shown(src.stem)}_resultat{shown(out.suffix)} »).",
            )
    if out.is_dir():
        raise InputFileError(f"« {shown(out)} » est un dossier, pas un fichier de sortie.",
                             hint="Donnez un nom de fichier avec -o, par exemple "
                             f"« {shown(out / 'resultat.csv')} ».")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        in_the_way = next((p for p in (parent, *parent.parents)
                           if p.exists() and not p.is_dir()), None)
        if in_the_way is not None:
            raise InputFileError(f"« {shown(in_the_way)} » est un fichier, pas un dossier : "
                                 f"impossible d'écrire « {shown(out)} ».",
                                 hint="Choisissez un dossier existant (-o).")
        if not create_folder:
            raise InputFileError(f"Le dossier de sortie « {shown(parent)} » n'existe pas.",
                                 hint="Créez-le d'abord, ou choisissez un dossier existant.")
    return out


def _plain(text: str) -> str:
    """*text* without the bytes that are not UTF-8 (libraries that take a path as UTF-8 text,
    GDAL for one, refuse them): a temporary's name is always one they can write."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace(
        "\ufffd", "_")


def _temp_name(final: Path) -> Path:
    return final.with_name(f".{_plain(final.stem)}.{os.getpid()}-{secrets.token_hex(3)}"
                           f"{PARTIAL_MARK}{_plain(final.suffix)}")


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
            if m and m["stem"] == _plain(final.stem) \
                    and p.name.endswith(_plain(final.suffix)) \
                    and not _pid_alive(int(m["pid"])):
                with contextlib.suppress(OSError):
                    p.unlink()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        os.fsync(fh.fileno())


#: Why a write failed, and what to do, by errno.
_WRITE_ERRORS = {
    errno.ENOSPC: ("le disque est plein", "Libérez de la place ou écrivez ailleurs (-o)."),
    errno.EROFS: ("le support est en lecture seule", "Écrivez dans un dossier modifiable (-o)."),
    errno.EACCES: ("vous n'avez pas le droit d'y écrire", "Écrivez dans un dossier à vous (-o)."),
    errno.EPERM: ("vous n'avez pas le droit d'y écrire", "Écrivez dans un dossier à vous (-o)."),
    errno.EDQUOT: ("le quota de disque est atteint",
                   "Libérez de la place ou écrivez ailleurs (-o)."),
    errno.EFBIG: ("le fichier dépasse la taille maximale permise (limite « ulimit -f » de la "
                  "session, ou celle du système de fichiers)",
                  "Relevez la limite (ulimit -f unlimited) ou écrivez ailleurs (-o)."),
    errno.ELOOP: ("le chemin passe par une boucle de liens symboliques",
                  "Supprimez le lien en boucle ou choisissez un autre chemin (-o)."),
    errno.ENAMETOOLONG: ("le nom est trop long", "Choisissez un nom plus court (-o)."),
    errno.ENOTDIR: ("un élément du chemin n'est pas un dossier",
                    "Choisissez un dossier existant (-o)."),
    errno.ENOENT: ("le dossier n'existe pas (ou plus)", "Choisissez un dossier existant (-o)."),
    errno.EISDIR: ("c'est un dossier", "Donnez un nom de fichier (-o)."),
    errno.EIO: ("erreur d'entrée-sortie du disque", "Vérifiez le disque, ou écrivez ailleurs."),
}


def os_error_message(exc: OSError, path: Path | str) -> InputFileError:
    """A French, actionable error for a failed write (read-only, full disk, no right, file
    size limit, link loop…); never the system's English text."""
    code = exc.errno or 0
    why, hint = _WRITE_ERRORS.get(code, (
        "erreur du système" + (f" ({errno.errorcode[code]})" if code in errno.errorcode
                               else ""), "Vérifiez le dossier de sortie."))
    return InputFileError(f"Impossible d'écrire « {shown(path)} » : {why}. Les fichiers de "
                          "sortie précédents sont restés tels quels.", hint=hint)


def _probable_errno(path: Path) -> int | None:
    """Why a write failed when the library that failed does not say (GDAL): the file size
    limit, a read-only medium, a full disk, no right to write; None when none of them."""
    try:
        import resource

        if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):
        pass
    folder = path.parent if str(path.parent) else Path(".")
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError, ValueError):
        return None
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        return errno.EROFS
    if st.f_bavail * st.f_frsize < 4 << 20:
        return errno.ENOSPC
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    return None


def write_error(exc: BaseException, path: Path | str) -> InputFileError | None:
    """The French error for a failed write of *path*, whichever library raised *exc*: an
    OSError, xlsxwriter's wrapper of one, a GDAL error (pyogrio: no errno, the cause is
    looked for), a file name that is not UTF-8 refused by a library; None if *exc* is not a
    write failure (a bug must keep its traceback)."""
    if isinstance(exc, OSError):
        return os_error_message(exc, path)
    inner = exc.args[0] if exc.args else None
    if type(exc).__name__ == "FileCreateError" and isinstance(inner, OSError):  # xlsxwriter
        return os_error_message(inner, path)
    if type(exc).__module__.startswith("pyogrio"):
        code = _probable_errno(Path(path))
        if code is not None:
            return os_error_message(OSError(code, ""), path)
        return InputFileError(f"Impossible d'écrire « {shown(path)} » : l'écriture du fichier "
                              "géographique a échoué. Les fichiers de sortie précédents sont "
                              "restés tels quels.", hint="Vérifiez la place libre et les droits "
                              "du dossier, ou écrivez un .csv.")
    if isinstance(exc, UnicodeEncodeError) and "surrogates" in str(exc):
        return InputFileError(f"Impossible d'écrire « {shown(path)} » : son nom contient des "
                              "caractères qui ne sont pas de l'UTF-8.",
                              hint="Renommez le fichier ou le dossier (lettres, chiffres, "
                              "accents ordinaires).")
    return None


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn a failed write inside the block into :func:`write_error`'s French message."""
    try:
        yield
    except Exception as exc:
        error = write_error(exc, path)
        if error is None:
            raise
        raise error from exc


_SCRATCH: set[str] = set()
_SCRATCH_LOCK = threading.Lock()


def _remove_scratch_dirs() -> None:
    """At the process's exit (a server stopped by SIGTERM while a worker thread was still
    checking a file): the folders of the blocks that did not end."""
    with _SCRATCH_LOCK:
        left = list(_SCRATCH)
        _SCRATCH.clear()
    for path in left:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_remove_scratch_dirs)


_SWEPT: set[tuple[str, str]] = set()


def _sweep_scratch(base: Path, prefix: str) -> None:
    """Remove the folders of *prefix* left by processes that are gone (kill -9); once per
    process and folder (the temporary directory may hold many files)."""
    with _SCRATCH_LOCK:
        if (str(base), prefix) in _SWEPT:
            return
        _SWEPT.add((str(base), prefix))
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    with contextlib.suppress(OSError):
        for p in base.iterdir():
            m = pattern.match(p.name)
            if m and not _pid_alive(int(m[1])) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder (an uploaded file and its outputs) removed at the end of
    the block — and, when the block cannot end, at the process's exit (SIGTERM) or, after a
    ``kill -9``, by the next :func:`scratch_dir` of the same *prefix* (its name holds the
    process id): nobody's upload stays behind in the temporary directory."""
    base = Path(tempfile.gettempdir())
    _sweep_scratch(base, prefix)
    path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)
    with _SCRATCH_LOCK:
        _SCRATCH.add(path)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with _SCRATCH_LOCK:
            _SCRATCH.discard(path)


@contextlib.contextmanager
def utf8_path(path: str | Path) -> Iterator[Path]:
    """*path*, or — when its name is not UTF-8 (a file named on another system), which GDAL
    cannot take — a link to it with a UTF-8 name in a private temporary folder, with links
    to its sidecar files (a Shapefile's .dbf, .shx, .prj…), for the time of the block."""
    path = Path(path)
    if _plain(str(path)) == str(path):
        yield path
        return
    with scratch_dir("qpv-geo-lecture-") as folder:
        link = folder / f"fichier{_plain(path.suffix)}"
        for part in path.parent.glob("*"):
            if part.stem == path.stem and part != path:
                (folder / f"fichier{_plain(part.suffix)}").symlink_to(part.absolute())
        link.symlink_to(path.absolute())
        yield link


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

    def pending(self, final: str | Path) -> Path | None:
        """The temporary path given for *final* (None if none was asked)."""
        final = Path(final)
        return next((tmp for tmp, f in self._pending if f == final), None)

    def commit(self) -> list[Path]:
        """Move every temporary into place, the first one asked for *last*; return the final
        paths in the order they were asked for.

        The first output is the main file and the others describe it (a batch's synthesis
        names the file it describes, with its size and sha256): they are in place before it,
        so a run killed between two renames leaves the previous main file beside a synthesis
        that does not describe it — which its reader detects — never a new main file with
        an old synthesis that cannot tell."""
        for tmp, _final in self._pending:
            if tmp.exists():
                _fsync(tmp)
        done: list[Path] = []
        while self._pending:
            tmp, final = self._pending[-1]
            if tmp.exists():  # else the writer chose not to write this one
                os.replace(tmp, final)  # on failure the rest stays pending: discard()
                done.append(final)
            self._pending.pop()
        return done[::-1]

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
