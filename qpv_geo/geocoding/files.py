"""Address files of the local geocoder: shipped demonstration file, installed BAN file.

Where they are (:func:`demo_adresses_path`, :func:`installed_adresses_dir`), the communes of
Saint-Étienne Métropole (:func:`communes_sem`), reading a BAN CSV (:func:`read_ban_csv`), and
installing or downloading a real BAN file (:func:`install_adresses`,
:func:`download_adresses`, :func:`update_adresses_cli`).
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import gzip
import json
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpv_geo._files import os_error_message, sha256_file, writing
from qpv_geo._http import USER_AGENT, download_failure_reason, download_name, remove_other_downloads
from qpv_geo.exceptions import DownloadError, GeocoderNotConfigured, InputFileError
from qpv_geo.geocoding.messages import CONSEILS
from qpv_geo.reference import store
from qpv_geo.reference.store import package_data_dir
from qpv_geo.settings import Settings

#: Columns of the BAN « adresses » CSV (``;``-separated, UTF-8), in the published order.
BAN_CSV_COLUMNS = (
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom", "certification_commune", "cad_parcelles",
)
#: Columns the local geocoder needs (a file without them is refused).
BAN_CSV_REQUIRED = ("numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
                    "lon", "lat")
_BAN_CSV_USED = (*BAN_CSV_REQUIRED, "nom_ld", "nom_ancienne_commune", "type_position")

DEMO_FILE = "adresses-demo-sem.csv.gz"
INSTALLED_FILE = "adresses-sem.csv.gz"


# ---------------------------------------------------------------------------------------------
# Where the address files are
# ---------------------------------------------------------------------------------------------


#: The local geocoders loaded from an address file (one at a time, by file, sha256 and cache
#: directory; see :meth:`~qpv_geo.geocoding.local.LocalGeocoder.from_settings`): emptied when
#: a new file is installed.
LOADED_GEOCODERS: dict[tuple[Any, ...], Any] = {}
LOADED_LOCK = threading.Lock()

def demo_adresses_path() -> Path:
    """The shipped demonstration address file (synthetic)."""
    return package_data_dir("adresses") / DEMO_FILE


def installed_adresses_dir(settings: Settings) -> Path:
    """Where ``import-adresses`` / ``data update --adresses`` installed the current BAN file
    (each install writes a new version folder and switches to it atomically, see
    :mod:`qpv_geo.reference.store`)."""
    return store.current_dir(settings.data_dir / "adresses")


@dataclass(frozen=True)
class CommuneSem:
    """One of the 53 communes of SEM (from ``data/reference/communes_sem.csv``)."""

    insee: str
    nom: str
    postcodes: tuple[str, ...]


def communes_sem() -> list[CommuneSem]:
    """The communes of Saint-Étienne Métropole with their postcodes."""
    path = package_data_dir("reference") / "communes_sem.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        return [CommuneSem(r["insee_com"], r["nom"], tuple(p for p in r["codes_postaux"].split(";")
                                                           if p))
                for r in csv.DictReader(fh)]

def read_ban_csv(path: Path, *, insee: Iterable[str] | None = None) -> Any:
    """Read a BAN CSV (plain or gzip) as strings, checking the header; optionally keep communes."""
    import pandas as pd

    path = Path(path)
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            header = fh.readline().rstrip("\r\n").split(";")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).",
                             hint="Donnez le fichier « adresses-42.csv.gz » de la BAN "
                             "(séparateur ;, UTF-8).") from exc
    missing = [c for c in BAN_CSV_REQUIRED if c not in header]
    if missing:
        raise InputFileError(
            f"{path.name} n'est pas au format BAN CSV : colonnes manquantes "
            f"{', '.join(missing)} (en-tête lu : {';'.join(header[:8])}…).",
            hint="Téléchargez « adresses-42.csv.gz » sur adresse.data.gouv.fr (format csv, "
            "séparateur ;).")
    usecols = [c for c in _BAN_CSV_USED if c in header]
    try:
        df = pd.read_csv(path, sep=";", dtype=str, usecols=usecols, keep_default_na=False,
                         compression="gzip" if _is_gzip(path) else None, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).") from exc
    for c in _BAN_CSV_USED:
        if c not in df.columns:
            df[c] = ""
    if insee is not None:
        df = df[df["code_insee"].isin(set(insee))]
    return df


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"

# ---------------------------------------------------------------------------------------------
# Installing a real BAN address file
# ---------------------------------------------------------------------------------------------


#: What to do when no real address file is installed (and the online service is not there).
INSTALL_HINT = CONSEILS["adresses_absentes"]


def installed_adresses_info(settings: Settings | None = None) -> dict[str, Any] | None:
    """The installed real BAN address file (its manifest), or ``None`` when there is none."""
    settings = settings or Settings.from_env()
    manifest_path = installed_adresses_dir(settings) / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = None
        if manifest:
            path = installed_adresses_dir(settings) / manifest.get("file", INSTALLED_FILE)
            if path.is_file():
                return {**manifest, "path": str(path), "demo": False, "origin": "installé"}
    return None


def demo_adresses_info() -> dict[str, Any]:
    """The shipped demonstration address file (synthetic addresses)."""
    path = demo_adresses_path()
    if not path.is_file():
        raise GeocoderNotConfigured("Le fichier d'adresses de démonstration est absent.",
                                    hint=INSTALL_HINT)
    return {"path": str(path), "demo": True, "origin": "démonstration", "file": path.name,
            "source": "fichier de démonstration synthétique (data/adresses/PROVENANCE.md)",
            "sha256": None}


def adresses_info(settings: Settings | None = None) -> dict[str, Any]:
    """The installed BAN file, else the demonstration file (what ``--geocoder demo`` and the
    benchmarks fall back to; the ``auto`` and ``local`` geocoders never use the demo file)."""
    installed = installed_adresses_info(settings)
    if installed is not None:
        return installed
    path = demo_adresses_path()
    if not path.is_file():
        raise GeocoderNotConfigured(
            "Aucun fichier d'adresses pour le géocodeur local (ni installé, ni de "
            "démonstration).", hint=CONSEILS["fichier_loire"])
    return {"path": str(path), "demo": True, "origin": "démonstration", "file": path.name,
            "source": "fichier de démonstration synthétique (data/adresses/PROVENANCE.md)",
            "sha256": None}


def install_adresses(path: Path, settings: Settings | None = None, *,
                     source: str | None = None) -> dict[str, Any]:
    """Install a BAN address file (csv or csv.gz) for the local geocoder, SEM communes only.

    Checks the header and that rows of SEM remain, writes ``adresses-sem.csv.gz`` and a
    ``manifest.json`` (sha256 of the installed and source files, rows, date) in
    ``settings.data_dir/adresses``, and returns the manifest.
    """
    settings = settings or Settings.from_env()
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"Fichier introuvable : {path}.")
    codes = {c.insee for c in communes_sem()}
    opener = gzip.open if _is_gzip(path) else open
    # The file and its manifest are written in a new version folder, made current by one
    # rename when both are complete: an interrupted install leaves the previous file in use.
    with writing(settings.data_dir / "adresses"), \
            store.new_version(settings.data_dir / "adresses") as target_dir:
        manifest = _write_adresses(path, target_dir, codes, opener, source)
    with LOADED_LOCK:
        LOADED_GEOCODERS.clear()
    return {**manifest, "path": str(installed_adresses_dir(settings) / INSTALLED_FILE)}


#: Errors of the write, not of the file read: said as such (not « fichier illisible »).
_WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def _write_adresses(path: Path, target_dir: Path, codes: set[str], opener: Any,
                    source: str | None) -> dict[str, Any]:
    """Filter a BAN file to SEM's communes into ``target_dir``, with its manifest."""
    rows = total = 0
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as src:
            header_line = src.readline()
            header = header_line.rstrip("\r\n").split(";")
            missing = [c for c in BAN_CSV_REQUIRED if c not in header]
            if missing:
                raise InputFileError(
                    f"{path.name} n'est pas au format BAN CSV : colonnes manquantes "
                    f"{', '.join(missing)}.", hint="Donnez le fichier « adresses-42.csv.gz » "
                    "de la BAN (séparateur ;).")
            col = header.index("code_insee")
            with tempfile.NamedTemporaryFile("wb", dir=target_dir, suffix=".tmp",
                                             delete=False) as tmp_raw:
                tmp_path = Path(tmp_raw.name)
                with gzip.open(tmp_raw, "wt", encoding="utf-8", newline="") as dst:
                    dst.write(";".join(header) + "\n")
                    for line in src:
                        total += 1
                        parts = line.split(";", col + 1)
                        if len(parts) > col and parts[col] in codes:
                            dst.write(line if line.endswith("\n") else line + "\n")
                            rows += 1
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno in _WRITE_FAILURES:
            raise os_error_message(exc, target_dir.parent) from exc
        raise InputFileError(f"Fichier d'adresses illisible : {path} ({exc}).",
                             hint="Le fichier doit être un CSV BAN en UTF-8, éventuellement "
                             "compressé en .gz.") from exc
    if rows == 0:
        tmp_path.unlink(missing_ok=True)
        raise InputFileError(
            f"{path.name} ne contient aucune adresse des communes de Saint-Étienne Métropole "
            f"({total} lignes lues).", hint="Donnez le fichier de la Loire (adresses-42.csv.gz).")
    target = target_dir / INSTALLED_FILE
    target.unlink(missing_ok=True)  # a link to the previous version's file
    tmp_path.replace(target)
    manifest = {
        "file": INSTALLED_FILE,
        "rows": rows,
        "rows_source": total,
        "communes": len(codes),
        "sha256": sha256_file(target),
        "sha256_source": sha256_file(path),
        "source": source or str(path.resolve()),
        "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "format": "BAN CSV (adresses), communes de Saint-Étienne Métropole",
    }
    (target_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2),
                                              encoding="utf-8")
    return manifest


def download_adresses(settings: Settings | None = None, *, url: str | None = None
                      ) -> dict[str, Any]:
    """Download the BAN file of the Loire (``settings.adresses_url``) with pooch and install it."""
    import pooch

    settings = settings or Settings.from_env()
    url = url or settings.adresses_url
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    pooch.get_logger().setLevel("WARNING")

    fname = download_name("adresses", url)  # never another URL's file left by a killed run
    remove_other_downloads(downloads, "adresses", keep=fname,
                           former=("adresses_download.csv.gz",))
    try:
        fetched = Path(pooch.retrieve(
            url, known_hash=None, path=downloads, fname=fname,
            downloader=pooch.HTTPDownloader(timeout=settings.timeout_s, progressbar=False,
                                            headers={"User-Agent": USER_AGENT})))
    except Exception as exc:  # requests/pooch raise many kinds: all mean "not downloaded"

        raise DownloadError(
            f"Téléchargement impossible depuis {url} : {download_failure_reason(exc)}.",
            hint="Vérifiez l'accès à internet, ou téléchargez adresses-42.csv.gz sur "
            "adresse.data.gouv.fr puis lancez qpv-geo data import-adresses FICHIER.") from exc
    try:
        return install_adresses(fetched, settings, source=url)
    finally:
        fetched.unlink(missing_ok=True)


def update_adresses_cli(settings: Settings | None = None) -> str:
    """``qpv-geo data update --adresses``: download, install, and say what happened."""
    info = download_adresses(settings)
    return (f"Fichier d'adresses BAN installé : {info['rows']} adresses des communes de "
            f"Saint-Étienne Métropole (sur {info['rows_source']} lues), sha256 "
            f"{info['sha256'][:16]}…. Le géocodeur local l'utilise désormais (source « local »).")
