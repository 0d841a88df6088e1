"""Where reference data lives: the files shipped with the package (:func:`package_data_dir`) and
the installed versions.

Installed reference layers are switched atomically: each install writes a complete new version
folder (layers + manifest) aside, then one rename of a pointer file makes it current.

Layout of ``<data_dir>/reference``::

    ACTUELLE            the name of the current version folder (one line)
    v-20260130T101500-1a2b/   manifest.json + layer files of that version
    .nouvelle-…/        a version being written (never read; removed by the next install)

Whatever step a process is killed at, readers see either the previous version, complete, or
the new one, complete: the pointer is replaced by :func:`os.replace` only once the new folder
is written and synced. A data directory of the former layout (``manifest.json`` directly in
``reference/``) is read as is until the first install, which moves to versions.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def package_data_dir(kind: str) -> Path:
    """The folder of the data shipped with the package (``adresses``, ``reference``…): inside
    the installed package (``qpv_geo/_data``) or, from a source checkout, ``data/``."""
    here = Path(__file__).resolve().parent.parent  # qpv_geo/ (this module is in reference/)
    for candidate in (here / "_data" / kind, here.parent / "data" / kind):
        if candidate.is_dir():
            return candidate
    return here.parent / "data" / kind


#: File naming the current version folder.
POINTER = "ACTUELLE"
_VERSION_PREFIX = "v-"
_PENDING_PREFIX = ".nouvelle-"
#: Versions kept besides the current one (a reader that resolved the pointer just before a
#: switch can still open the files it expects).
KEEP_PREVIOUS = 1


def _no_op(step: str) -> None:
    """Default of :data:`after_step`."""


#: Called after each step of a switch (``couche``, ``manifeste``, ``dossier``, ``pointeur``,
#: ``nettoyage``): the kill tests stop the process there.
after_step: Callable[[str], None] = _no_op


def step(name: str) -> None:
    """Mark a step of an install (see :data:`after_step`)."""
    after_step(name)


def current_dir(base: Path) -> Path:
    """The folder holding the current installed version (``base`` itself for the former
    layout, or when nothing was ever installed)."""
    pointer = base / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return base
    if name and "/" not in name and "\\" not in name and (base / name).is_dir():
        return base / name
    return base


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not possible everywhere (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for item in path.iterdir():
        if item.is_file():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(path)


def _legacy_files(base: Path) -> list[Path]:
    """Files of the former layout (layers and manifest directly in ``base``)."""
    return [p for p in base.iterdir() if p.is_file() and p.name != POINTER]


@contextmanager
def new_version(base: Path) -> Iterator[Path]:
    """A new version folder, pre-filled with the current version's files, made current when
    the block ends without error (otherwise removed; the current version is untouched).

    Files are hard links to the current ones (copies where links are impossible), except
    ``manifest.json``, always a copy: **unlink a file before rewriting it** in the block.
    """
    base.mkdir(parents=True, exist_ok=True)
    current = current_dir(base)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{_VERSION_PREFIX}{stamp}-{secrets.token_hex(3)}"
    pending = base / f"{_PENDING_PREFIX}{name}"
    pending.mkdir()
    try:
        for item in current.iterdir():
            if not item.is_file() or item.name == POINTER or item.name.startswith("."):
                continue
            target = pending / item.name
            if item.name == "manifest.json":
                shutil.copyfile(item, target)
                continue
            try:
                os.link(item, target)
            except OSError:
                shutil.copyfile(item, target)
        yield pending
        _fsync_tree(pending)
        final = base / name
        pending.rename(final)
        _fsync_dir(base)
        step("dossier")
        tmp = base / f".{POINTER}.{secrets.token_hex(3)}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, base / POINTER)
        _fsync_dir(base)
        step("pointeur")
    except BaseException:
        shutil.rmtree(pending, ignore_errors=True)
        raise
    _cleanup(base, keep=name, previous=current)
    step("nettoyage")


def _cleanup(base: Path, *, keep: str, previous: Path) -> None:
    """Remove pending folders and versions older than the previous one (best effort)."""
    versions = sorted((p for p in base.iterdir() if p.is_dir()
                       and p.name.startswith(_VERSION_PREFIX) and p.name != keep),
                      key=lambda p: p.name)
    keep_old = {p.name for p in versions[-KEEP_PREVIOUS:]} if KEEP_PREVIOUS else set()
    for p in base.iterdir():
        if p.is_dir() and (p.name.startswith(_PENDING_PREFIX) or (
                p.name.startswith(_VERSION_PREFIX) and p.name != keep
                and p.name not in keep_old)):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and p.name.startswith(f".{POINTER}."):
            p.unlink(missing_ok=True)
    if previous == base:  # the former layout, now copied into the first version
        for p in _legacy_files(base):
            p.unlink(missing_ok=True)


__all__ = ["POINTER", "after_step", "current_dir", "new_version", "step"]
