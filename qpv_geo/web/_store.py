"""What the web server keeps between two requests, on disk so that several worker processes
share it: the validated files of ``/lot`` (for the download links), the uploaded files (to
re-run with other columns) and the secret that signs the form tokens.

Layout of the server folder (by default ``<cache_dir>/web/serveur``; ``qpv-geo serve``
uses one per port)::

    resultats/<jeton>/meta.json, 0, 1…   one validated upload (names, media types, date)
    sources/<jeton>/…                    one uploaded file, same layout
    secret-formulaires                   32 random bytes, made once, read by every worker

An entry is written whole in a hidden folder (each file through :mod:`qpv_geo._files`), then
renamed into place: a reader in another process sees it complete or not at all. The same
retention rules hold for every process: an hour, and only the last ``max_entries``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from qpv_geo._files import os_error_message, write_bytes_atomic, write_text_atomic
from qpv_geo.exceptions import QpvGeoError

#: What a token looks like (the routes check it too): no path can be built from anything else.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{10,64}")
_META = "meta.json"
_STAGING = ".en-cours-"


class StoreUnavailable(QpvGeoError):
    """The server folder cannot be written (full disk, rights): a server-side problem."""


def _unavailable(exc: OSError, path: Path) -> StoreUnavailable:
    why = os_error_message(exc, path)
    return StoreUnavailable(f"Le serveur ne peut pas conserver le fichier vérifié : {why}",
                            hint="Prévenez la personne qui administre le serveur (dossier "
                            "QPV_GEO_DOSSIER_SERVEUR ou QPV_GEO_CACHE_DIR).")


class DiskStore:
    """Files kept a short while under a token, in a folder shared by the server's workers."""

    def __init__(self, folder: Path, *, ttl_s: float = 3600.0, max_entries: int = 16) -> None:
        self.folder = Path(folder)
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    def retention_text(self) -> str:
        """How long a result stays, as the page and the expiry message say it."""
        hours = self.ttl_s / 3600
        span = "une heure" if hours == 1 else (
            f"{hours:g} heures".replace(".", ",") if hours >= 1 else f"{self.ttl_s / 60:g} min")
        return (f"conservé {span}, et seulement les {self.max_entries} derniers fichiers "
                "vérifiés sur ce serveur")

    def put(self, files: list[tuple[str, bytes | Path, str]]) -> str:
        """Keep ``(name, content, media type)`` files (content: bytes, or a file copied
        without being read into memory); return their token."""
        token = secrets.token_urlsafe(18)
        staging = self.folder / f"{_STAGING}{token}"
        try:
            staging.mkdir(parents=True)
            for i, (_name, content, _media) in enumerate(files):
                if isinstance(content, Path):  # the staging folder is renamed whole
                    shutil.copyfile(content, staging / str(i))
                else:
                    write_bytes_atomic(staging / str(i), content)
            meta = {"cree": time.time(),
                    "fichiers": [[name, media] for name, _content, media in files]}
            write_text_atomic(staging / _META, json.dumps(meta, ensure_ascii=False))
            os.rename(staging, self.folder / token)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise _unavailable(exc, self.folder) from None
        self._purge()
        return token

    def get(self, token: str, index: int) -> tuple[str, bytes, str] | None:
        """The file ``index`` kept under ``token``, or None (unknown, expired or dropped)."""
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            return None
        entry = self.folder / token
        try:
            meta = json.loads((entry / _META).read_text(encoding="utf-8"))
            if time.time() - float(meta["cree"]) > self.ttl_s:
                return None
            names = meta["fichiers"]
            if not 0 <= index < len(names):
                return None
            name, media = names[index]
            return str(name), (entry / str(index)).read_bytes(), str(media)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # never kept, or removed by another worker meanwhile

    def _purge(self) -> None:
        """Drop expired entries, then the oldest beyond ``max_entries`` (any worker may)."""
        now = time.time()
        kept: list[tuple[float, Path]] = []
        try:
            children = list(self.folder.iterdir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(_STAGING):
                with contextlib.suppress(OSError):  # a write killed half-way
                    if now - child.stat().st_mtime > self.ttl_s:
                        shutil.rmtree(child, ignore_errors=True)
                continue
            try:
                created = float(json.loads((child / _META).read_text(encoding="utf-8"))["cree"])
            except (OSError, ValueError, KeyError, TypeError):
                created = None
            if created is None:
                with contextlib.suppress(OSError):  # not ours, or being removed
                    if child.is_dir() and now - child.stat().st_mtime > self.ttl_s:
                        shutil.rmtree(child, ignore_errors=True)
                continue
            if now - created > self.ttl_s:
                shutil.rmtree(child, ignore_errors=True)
            else:
                kept.append((created, child))
        kept.sort()
        for _created, child in kept[:max(0, len(kept) - self.max_entries)]:
            shutil.rmtree(child, ignore_errors=True)


def shared_secret(folder: Path, configured: str = "") -> bytes:
    """The secret signing the form tokens: ``configured`` (setting
    ``QPV_GEO_SECRET_FORMULAIRES``) if given, else the one in ``folder``, made once by the
    first worker (an atomic link: two workers starting together still read the same)."""
    if configured:
        return configured.encode("utf-8")
    path = Path(folder) / "secret-formulaires"
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        staging = Path(folder) / f"{_STAGING}secret-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another worker was first: theirs
                os.link(staging, path)
        finally:
            with contextlib.suppress(OSError):
                staging.unlink()
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except OSError:
        pass
    # an unwritable folder: this process signs alone (one worker still works)
    return secrets.token_bytes(32)


__all__ = ["TOKEN_RE", "DiskStore", "StoreUnavailable", "shared_secret"]
