"""Bounded work on zip files from outside (XLSX workbooks, downloaded archives): sizes read
from the zip directory before anything is inflated, capped extraction, and XML that declares
no DOCTYPE (no entities, so no « billion laughs »)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from qpv_geo._french import nombre
from qpv_geo.exceptions import InputTooLargeError, QpvGeoError, UnreadableInputError

_MB = 1 << 20
#: Members smaller than this are not checked for their compression ratio (tiny XML parts
#: of a workbook compress very well and are harmless).
RATIO_FLOOR_BYTES = 1 << 20
_PROLOG_MAX = 1 << 20
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def check_sizes(zf: zipfile.ZipFile, name: str, *, max_total_mb: float, max_ratio: float,
                error: type[QpvGeoError] = InputTooLargeError,
                members: Iterable[zipfile.ZipInfo] | None = None) -> int:
    """Refuse an archive whose declared uncompressed size or compression ratio is beyond the
    caps (a zip bomb), before inflating anything. Returns the total uncompressed size."""
    infos = list(members if members is not None else zf.infolist())
    total = sum(i.file_size for i in infos)
    if total > max_total_mb * _MB:
        raise error(
            f"{name} : {nombre(total / _MB)} Mo une fois décompressé, au-delà de la limite de "
            f"{nombre(max_total_mb)} Mo.",
            hint="Un fichier réel de sites est bien plus petit : vérifiez le fichier (ou "
            "relevez la limite QPV_GEO_MAX_XLSX_DECOMPRESSE_MB / "
            "QPV_GEO_MAX_ZIP_DECOMPRESSE_MB).")
    for info in infos:
        if info.file_size < RATIO_FLOOR_BYTES:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise error(
                f"{name} : la partie {info.filename} se décompresse {nombre(ratio)} fois "
                f"({nombre(info.file_size / _MB)} Mo), au-delà de {nombre(max_ratio)} fois : "
                "fichier piégé (« bombe zip ») ou anormal.",
                hint="Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de nouveau (ou "
                "relevez QPV_GEO_MAX_RATIO_COMPRESSION si le fichier est sûr).")
    return total


def check_no_dtd(zf: zipfile.ZipFile, name: str) -> None:
    """Refuse XML parts declaring a DOCTYPE or entities (never needed by a workbook; the way of
    « billion laughs » and external entities). Reads each part only up to its root element."""
    for info in zf.infolist():
        if not info.filename.lower().endswith((".xml", ".rels", ".vml")):
            continue
        with zf.open(info) as fh:
            head = b""
            while len(head) < _PROLOG_MAX:
                block = fh.read(1 << 14)
                if not block:
                    break
                head += block
                if _DTD.search(head):
                    raise UnreadableInputError(
                        f"{name} : la partie {info.filename} déclare un DOCTYPE ou des entités "
                        "XML, ce qu'un classeur Excel ne fait jamais (fichier piégé ?).",
                        hint="Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de "
                        "nouveau en .xlsx (ou en CSV).")
                if _root_reached(head):
                    break
            else:
                raise UnreadableInputError(
                    f"{name} : la partie {info.filename} commence par plus de "
                    f"{_PROLOG_MAX // 1024} Ko avant son premier élément (fichier anormal).",
                    hint="Ouvrez-le dans Excel ou LibreOffice et enregistrez-le de nouveau.")


def _root_reached(head: bytes) -> bool:
    """True once the bytes read reach the root element (past the XML declaration and
    comments): no DOCTYPE can follow."""
    i = 0
    while True:
        j = head.find(b"<", i)
        if j < 0 or j + 1 >= len(head):
            return False
        nxt = head[j + 1:j + 2]
        if nxt == b"?":
            k = head.find(b"?>", j)
        elif head.startswith(b"<!--", j):
            k = head.find(b"-->", j)
        else:  # a declaration (keep reading: the DTD check sees it) or the root element
            return nxt != b"!"
        if k < 0:
            return False
        i = k + 2


def extract_capped(zf: zipfile.ZipFile, member: str, dest: IO[bytes], *, max_mb: float,
                   name: str, error: type[QpvGeoError]) -> int:
    """Copy one member to ``dest``, stopping (``error``) past ``max_mb`` whatever the
    directory says (a lying directory cannot make the copy unbounded)."""
    info = zf.getinfo(member)
    cap = int(max_mb * _MB)
    if info.file_size > cap:
        raise error(f"{name} : {member} fait {nombre(info.file_size / _MB)} Mo décompressé, "
                    f"au-delà de la limite de {nombre(max_mb)} Mo.",
                    hint="Vérifiez l'adresse du fichier (ou relevez "
                    "QPV_GEO_MAX_ZIP_DECOMPRESSE_MB).")
    written = 0
    with zf.open(info) as src:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            written += len(block)
            if written > cap:
                raise error(f"{name} : {member} dépasse {nombre(max_mb)} Mo une fois "
                            "décompressé.",
                            hint="Vérifiez l'adresse du fichier.")
            dest.write(block)
    return written


def copy_member(zf: zipfile.ZipFile, member: str, target: Path, *, max_mb: float, name: str,
                error: type[QpvGeoError]) -> int:
    """:func:`extract_capped` into a file (removed if the copy fails)."""
    try:
        with open(target, "wb") as out:
            return extract_capped(zf, member, out, max_mb=max_mb, name=name, error=error)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


__all__ = ["check_no_dtd", "check_sizes", "copy_member", "extract_capped"]
