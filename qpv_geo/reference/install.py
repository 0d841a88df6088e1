"""Installing reference layers: export for QGIS, import of a local file, update from the
official national file, reset. Every install goes through :mod:`qpv_geo.reference.store` (a new
version folder, then one rename of a pointer), so an interruption never leaves a layer whose
checksum disagrees with its manifest."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

import qpv_geo.reference._national_layer as _nationale
from qpv_geo._files import (
    atomic_path,
    check_output_path,
    sha256_file,
    shown,
    utf8_path,
    write_error,
    writing,
)
from qpv_geo._http import download_failure_reason, download_name, remove_other_downloads
from qpv_geo.exceptions import DownloadError, InputFileError, ReferenceDataError
from qpv_geo.reference import store
from qpv_geo.reference.layers import (
    CODE_QP_2024,
    COMMUNE_FIELDS,
    IMPORTABLE_LAYERS,
    PRECISION_PERIMETRE_DEFAUT_M,
    REFERENCE_CACHE,
    ZONE_FIELDS,
    LayerInfo,
    Reference,
    clean_geometries,
    installed_dir,
    layer_info,
    read_manifest,
)
from qpv_geo.reference.zipsafe import check_sizes, copy_member
from qpv_geo.settings import SIREN_SEM, Settings

_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}


def export_layer(reference: Reference, layer: str, path: Path) -> Path:
    """Write a layer to GeoJSON/GPKG/Shapefile (by extension) for QGIS users."""
    path = Path(path)
    frames = {"qpv": reference.qpv, "qva": reference.qva, "communes": reference.communes,
              "qpv_hors_sem": reference.qpv_hors_sem}
    if layer not in frames:
        raise InputFileError(f"Couche inconnue « {layer} ».",
                             hint=f"Choisissez parmi : {', '.join(frames)}.")
    driver = _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputFileError(
            f"Extension « {path.suffix} » non prise en charge pour l'export.",
            hint="Utilisez .geojson, .gpkg ou .shp.",
        )
    gdf = frames[layer].copy()
    gdf["donnees"] = reference.version
    if reference.notes:
        gdf["avertissement"] = " ; ".join(reference.notes)

    info = reference.layers.get(layer)
    source = [info.path] if info is not None and info.path is not None else []
    parts = [path.with_suffix(s) for s in (".shp", ".dbf", ".shx", ".prj", ".cpg")] \
        if driver == "ESRI Shapefile" else [path]
    for part in parts:  # never over the layer's own file
        check_output_path(part, source)
    with writing(path):
        if driver == "ESRI Shapefile":  # several files (.shp, .dbf, .shx, .prj, .cpg)
            _export_shapefile(gdf, path)
        else:
            with atomic_path(path) as tmp:
                extra = {"layer": layer} if driver == "GPKG" else {}
                gdf.to_file(tmp, driver=driver, **extra)
    return path


def _export_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """A Shapefile's files written in a temporary folder beside it, then each renamed."""
    import os

    with tempfile.TemporaryDirectory(prefix=f".{shown(path.stem)}.", dir=path.parent) as tmp:
        gdf.to_file(Path(tmp) / "couche.shp", driver="ESRI Shapefile")  # a UTF-8 name
        for part in sorted(Path(tmp).iterdir()):
            os.replace(part, path.with_suffix(part.suffix))


def _read_user_layer(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")

    try:
        with utf8_path(path) as readable:  # GDAL takes UTF-8 names only
            gdf = gpd.read_file(readable)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(
            f"Impossible de lire {shown(path.name)} comme couche géographique ({exc}).",
            hint="Formats acceptés : GeoJSON, Shapefile (.shp avec .dbf/.shx/.prj), GeoPackage.",
        ) from exc
    if len(gdf) == 0:
        raise InputFileError(f"{path.name} ne contient aucun objet.",
                             hint="Exportez la couche avec ses entités depuis QGIS.")
    return gdf


def _rename_fields(gdf: gpd.GeoDataFrame, layer: str, champ_code: str | None,
                   champ_nom: str | None) -> gpd.GeoDataFrame:
    lower = {str(c).lower(): c for c in gdf.columns}
    if layer == "communes":
        wanted = {"insee_com": (champ_code, "insee_com", "code", "code_insee", "insee"),
                  "nom": (champ_nom, "nom", "nom_commune", "libelle", "name")}
    else:
        wanted = {"code_qp": (champ_code, "code_qp", "code_qva", "code", "code_quartier"),
                  "lib_qp": (champ_nom, "lib_qp", "nom_qp", "lib_qva", "nom_qva", "nom", "libelle",
                             "nom_quartier", "name")}
    renames = {}
    for target, options in wanted.items():
        for opt in options:
            if opt and opt.lower() in lower:
                renames[lower[opt.lower()]] = target
                break
        else:
            raise InputFileError(
                f"Champ « {target} » introuvable dans le fichier ; champs présents : "
                f"{', '.join(map(str, gdf.columns))}.",
                hint="Indiquez le champ avec --champ-code / --champ-nom.",
            )
    return gdf.rename(columns=renames)


def write_version(settings: Settings,
                  fill: Callable[[Path, dict[str, Any]], None]) -> dict[str, Any]:
    """Install reference files in one switch: ``fill`` writes its files into a new version
    folder and enters them in the manifest it is given (the folder's, read for it); the
    manifest is written, then the folder becomes the installed version in one rename. A crash
    at any point leaves the previous layers and manifest intact; a failed write (full disk,
    read-only…) is said in French. Returns the manifest installed."""
    try:
        with store.new_version(settings.data_dir / "reference") as target_dir:
            manifest = read_manifest(target_dir)
            fill(target_dir, manifest)
            (target_dir / "manifest.json").write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
            store.step("manifeste")
    except Exception as exc:  # a failed write (full disk, read-only…) from Python or GDAL
        error = write_error(exc, settings.data_dir / "reference")
        if error is None:
            raise
        raise error from exc
    REFERENCE_CACHE.clear()
    return manifest


def write_layer_file(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write a layer as GeoJSON in a new version folder (where ``path`` may still be a link to
    the previous version's file)."""
    path.unlink(missing_ok=True)
    gdf.to_file(path, driver="GeoJSON")
    store.step("couche")


def _install(gdf: gpd.GeoDataFrame, layer: str, settings: Settings, *, source: str,
             millesime: str, licence: str, simplified: bool, demo: bool,
             precision: str, official: bool = False,
             national: gpd.GeoDataFrame | None = None) -> LayerInfo:
    """Write the layer and its manifest entry in one switch (:func:`write_version`).

    ``national``: the whole official national file, installed in the same switch as the
    national layer ``qpv_france`` (same source, millésime and verification as ``gdf``)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    fname = f"{layer}.geojson"

    def fill(target_dir: Path, manifest: dict[str, Any]) -> None:
        write_layer_file(gdf, target_dir / fname)
        fields = [c for c in gdf.columns if c != "geometry"]
        manifest["layers"][layer] = {
            "file": fname, "title": f"{layer} (importée)", "source": source,
            "millesime": millesime, "licence": licence,
            "sha256": sha256_file(target_dir / fname), "features": len(gdf),
            "crs": "EPSG:4326", "fields": fields, "precision": precision,
            "simplified": simplified, "demo": demo, "official": official,
            "precision_m": PRECISION_PERIMETRE_DEFAUT_M if official else None,
            "installed_at": now,
        }
        if national is not None:
            nfile = target_dir / _nationale.FILE
            nfile.unlink(missing_ok=True)
            _nationale.write(national, nfile)
            store.step("couche")
            manifest["layers"][_nationale.LAYER] = {
                "file": _nationale.FILE,
                "title": "QPV 2024 de toute la France (métropole et outre-mer) — fichier "
                "national installé (pour les territoires autres que SEM et --territoire "
                "france)",
                "source": source, "millesime": millesime, "licence": licence,
                "sha256": sha256_file(nfile), "features": len(national),
                "crs": "EPSG:4326",
                "fields": [c for c in national.columns if c != "geometry"],
                "precision": precision, "simplified": False, "demo": demo,
                "official": official,
                "precision_m": PRECISION_PERIMETRE_DEFAUT_M if official else None,
                "transformations": "géométries et attributs du fichier tels quels "
                "(géométries invalides réparées par make_valid) ; lib_epci repris de la "
                "copie embarquée par siren_epci ; FlatGeobuf compressé gzip",
                "installed_at": now,
            }

    manifest = write_version(settings, fill)
    return layer_info(layer, manifest["layers"][layer], installed_dir(settings), "installée")


def import_layer(
    path: Path,
    layer: str,
    settings: Settings | None = None,
    *,
    champ_code: str | None = None,
    champ_nom: str | None = None,
    source: str | None = None,
    millesime: str = "",
) -> LayerInfo:
    """Validate a local GeoJSON/Shapefile/GeoPackage and install it as ``layer``.

    ``qpv``: official 2024 perimeters (any extent; SEM and its neighbours are kept);
    ``qva``: QVA perimeters from SEM's GIS service; ``communes``: a better commune outline.
    """
    settings = settings or Settings.from_env()
    if layer not in IMPORTABLE_LAYERS:
        raise InputFileError(f"Couche inconnue « {layer} ».",
                             hint=f"Choisissez parmi : {', '.join(IMPORTABLE_LAYERS)}.")
    path = Path(path)
    gdf = _rename_fields(_read_user_layer(path), layer, champ_code, champ_nom)
    try:
        gdf = clean_geometries(gdf, layer)
    except ReferenceDataError as exc:
        raise InputFileError(str(exc), hint=exc.hint) from exc
    if len(gdf) == 0:
        raise InputFileError(f"{path.name} : aucun polygone utilisable.",
                             hint="La couche doit contenir des polygones.")
    if layer == "communes":
        for f in COMMUNE_FIELDS:
            if f not in gdf.columns:
                gdf[f] = None
        gdf["insee_com"] = gdf["insee_com"].astype(str)
        gdf = gdf[[*COMMUNE_FIELDS, "geometry"]]
        return _install(gdf, layer, settings, source=source or shown(path.name),
                        millesime=millesime, licence="", simplified=False, demo=False,
                        precision="importée")
    national = _national_or_none(gdf) if layer == "qpv" else None
    for f in ZONE_FIELDS:
        if f not in gdf.columns:
            gdf[f] = SIREN_SEM if (f == "siren_epci" and layer == "qva") else None
    gdf = gdf[[*ZONE_FIELDS, "geometry"]].copy()
    for f in ZONE_FIELDS:
        gdf[f] = [None if pd.isna(v) else str(v) for v in gdf[f]]
    codes = gdf["code_qp"].dropna()
    if gdf["code_qp"].isna().any() or codes.duplicated().any():
        raise InputFileError(f"{path.name} : codes de quartier manquants ou en double.",
                             hint="Chaque périmètre doit avoir un code unique.")
    demo = bool(codes.str.startswith("QD").any())
    if layer == "qpv":
        if gdf["siren_epci"].isna().all():
            raise InputFileError(
                f"{path.name} : le champ siren_epci manque ; impossible de savoir quels QPV sont "
                "ceux de Saint-Étienne Métropole.",
                hint="Importez le fichier officiel de l'ANCT (qpv-geo data update le fait).",
            )
        if not (gdf["siren_epci"] == SIREN_SEM).any():
            raise InputFileError(f"{path.name} ne contient aucun QPV de SEM "
                                 f"(siren_epci {SIREN_SEM}).",
                                 hint="Vérifiez le fichier (il doit couvrir la Loire).")
        bad = [c for c in codes if not CODE_QP_2024.match(c)]
        if bad and not demo:
            raise InputFileError(
                f"{path.name} : codes qui ne sont pas des codes QPV 2024 (QNdddddX) : "
                f"{', '.join(bad[:5])}.",
                hint="Seuls les périmètres 2024 (décret n° 2023-1314) comptent pour l'appel.",
            )
        gdf = _keep_sem_and_neighbours(gdf)
    # The official national GeoJSON downloaded by hand is recognised by its sha256.
    official = layer == "qpv" and bool(settings.qpv_sha256) and (
        path.is_file() and sha256_file(path) == settings.qpv_sha256.lower())
    return _install(gdf, layer, settings, source=source or shown(path.name),
                    millesime=millesime or ("QPV 2024" if layer == "qpv" else "QVA"),
                    licence="", simplified=False, demo=demo,
                    precision="fichier officiel pleine précision" if official
                    else "fichier importé (précision de la source)", official=official,
                    national=national)


def _national_or_none(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    """The national layer to install from a cleaned QPV file, or None when the file does not
    hold every QPV of France with an area (an extract: the shipped copy keeps serving)."""
    if _nationale.missing_codes(gdf):
        return None
    return _nationale.national_frame(gdf)


def _keep_sem_and_neighbours(gdf: gpd.GeoDataFrame, radius_m: float = 100_000) -> gpd.GeoDataFrame:
    """Keep SEM's QPV and the others within ``radius_m`` (to name the EPCI of a near miss)."""
    metric = gdf.to_crs(2154)
    sem = metric[metric["siren_epci"] == SIREN_SEM]
    zone = shapely.buffer(shapely.union_all(sem.geometry.values), radius_m)
    keep = shapely.intersects(metric.geometry.values, zone)
    return gdf[keep].reset_index(drop=True)


def remove_installed(layer: str, settings: Settings | None = None) -> bool:
    """Forget an installed layer (the shipped one serves again). True if something was removed.
    ``qpv`` takes the national layer installed with it (``qpv_france``) too."""
    settings = settings or Settings.from_env()
    target_dir = installed_dir(settings)
    manifest = read_manifest(target_dir)
    # the national layer comes with SEM's (same file, same switch): it goes with it
    names = [layer, "qpv_france"] if layer == "qpv" else [layer]
    entries = [e for e in (manifest["layers"].pop(n, None) for n in names) if e is not None]
    if not entries:
        return False

    with store.new_version(settings.data_dir / "reference") as new_dir:
        for entry in entries:
            (new_dir / entry["file"]).unlink(missing_ok=True)
        (new_dir / "manifest.json").unlink()
        (new_dir / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    REFERENCE_CACHE.clear()
    return True


def update_qpv(settings: Settings | None = None, *, url: str | None = None,
               sha256: str | None = None, verify: bool = True) -> LayerInfo:
    """Download the official national QPV file, check it, install SEM's layer and, when the
    file holds every QPV of France, the national layer ``qpv_france`` (same switch).

    The data.gouv.fr resource is a zip holding ``GEOJSON/QP2024_…_WGS84.geojson``; a plain
    GeoJSON URL works too. The GeoJSON's sha256 must equal ``settings.qpv_sha256`` (the value
    recorded in the provenance) unless ``verify`` is False.
    """
    import pooch  # maintained download helper: url + cache dir + progress

    pooch.get_logger().setLevel("WARNING")
    settings = settings or Settings.from_env()
    url = url or settings.qpv_url
    expected = (sha256 or settings.qpv_sha256 or "").lower()
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)

    fname = download_name("qpv", url, expected)
    remove_other_downloads(downloads, "qpv", keep=fname, former=("qpv_national_download",))
    try:
        fetched = Path(pooch.retrieve(
            url, known_hash=None, path=downloads, fname=fname,
            downloader=pooch.HTTPDownloader(timeout=settings.timeout_s, progressbar=False,
                                            headers={"User-Agent": "qpv-geo"}),
        ))
    except Exception as exc:  # requests/pooch raise many kinds: all mean "not downloaded"

        raise DownloadError(
            f"Téléchargement impossible depuis {url} : {download_failure_reason(exc)}.",
            hint="Vérifiez l'accès à internet ou téléchargez le fichier sur data.gouv.fr puis "
            "lancez qpv-geo data import FICHIER.",
        ) from exc
    try:
        with tempfile.TemporaryDirectory() as tmp:
            geojson = _extract_geojson(fetched, Path(tmp), settings)
            actual = sha256_file(geojson)
            verified = bool(expected) and actual == expected
            if verify and expected and not verified:
                raise DownloadError(
                    f"Le fichier téléchargé ({geojson.name}) n'a pas la somme de contrôle "
                    f"attendue : {actual[:16]}… au lieu de {expected[:16]}…. L'ANCT a peut-être "
                    "publié une nouvelle édition, ou le fichier est corrompu.",
                    hint="Vérifiez l'édition sur data.gouv.fr ; si elle est légitime, relancez "
                    "avec --sha256 <nouvelle valeur>.",
                )
            gdf = _read_user_layer(geojson)
            gdf = _rename_fields(gdf, "qpv", None, None)
            gdf = clean_geometries(gdf, "qpv")
            if "siren_epci" not in gdf.columns or not (gdf["siren_epci"] == SIREN_SEM).any():
                raise DownloadError("Le fichier téléchargé ne contient aucun QPV de SEM.",
                                    hint="Vérifiez l'URL (option --url).")
            national = _national_or_none(gdf)
            for f in ZONE_FIELDS:
                if f not in gdf.columns:
                    gdf[f] = None
            gdf = _keep_sem_and_neighbours(gdf[[*ZONE_FIELDS, "geometry"]].copy())
            return _install(
                gdf, "qpv", settings, source=f"{url} (sha256 {actual})",
                millesime="QPV 2024 (décret n° 2023-1314) — fichier officiel ANCT",
                licence="Licence Ouverte 2.0 (Etalab)", simplified=False, demo=False,
                precision="fichier officiel pleine précision" if verified
                else "téléchargé sans vérification de la somme de contrôle",
                official=verified, national=national,
            )
    finally:
        fetched.unlink(missing_ok=True)


def _extract_geojson(path: Path, workdir: Path, settings: Settings | None = None) -> Path:
    """The GeoJSON of a downloaded file (zip or not). Sizes are checked from the zip
    directory before anything is inflated, and the extraction stops at the cap whatever the
    directory says (a zip bomb never reaches the disk)."""
    settings = settings or Settings.from_env()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist()
                       if m.lower().endswith(".geojson") and "wgs84" in m.lower()]
            members = members or [m for m in zf.namelist() if m.lower().endswith(".geojson")]
            if not members:
                raise DownloadError("L'archive téléchargée ne contient aucun fichier GeoJSON.",
                                    hint="Vérifiez l'URL (option --url).")
            check_sizes(zf, "L'archive téléchargée", error=DownloadError,
                        max_total_mb=settings.max_zip_decompresse_mb,
                        max_ratio=settings.max_ratio_compression,
                        members=[zf.getinfo(members[0])])
            target = workdir / Path(members[0]).name
            copy_member(zf, members[0], target, max_mb=settings.max_zip_decompresse_mb,
                        name="L'archive téléchargée", error=DownloadError)
            return target
    target = workdir / "qpv.geojson"
    shutil.copyfile(path, target)
    return target
