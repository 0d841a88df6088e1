"""Reference layers: QPV 2024 of SEM, QPV outside SEM, QVA, communes of SEM.

Each layer is a GeoDataFrame in WGS84 (EPSG:4326) with a documented schema, read from a file
listed in a manifest (source, millésime, licence, sha256, feature count, precision note).
Loading verifies the checksum and the schema and repairs invalid geometries (``make_valid``).

Two places hold layers:

* the data shipped with qpv-geo (``data/reference``: the exact geometry of SEM's QPV extracted
  from the ANCT national file, whose checksum cannot be matched to the official download; the
  other QPV of the Loire as precise as available, said per feature; no QVA perimeters);
* the user data directory (``Settings.data_dir / "reference"``), filled by ``qpv-geo data
  update`` (official national file) and ``qpv-geo data import`` (local file). A layer installed
  there takes precedence over the shipped one.

Schemas (field names of the official ANCT file, defined once here):

* ``qpv`` / ``qpv_hors_sem`` / ``qva``: :data:`ZONE_FIELDS` (``code_qp``, ``lib_qp``,
  ``insee_com``, ``lib_com``, ``siren_epci``) + ``precision_m`` (how far the edges of the
  feature may be from the official ones, metres: the feature's own property, else the layer's)
  + geometry (Polygon/MultiPolygon);
* ``communes``: :data:`COMMUNE_FIELDS` (``insee_com``, ``nom``, ``codes_postaux``,
  ``population``) + geometry.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qpv_geo._files import sha256_file
from qpv_geo.exceptions import DownloadError, InputFileError, ReferenceDataError
from qpv_geo.marges import PRECISION_PERIMETRE_DEFAUT_M
from qpv_geo.settings import SIREN_SEM, Settings

#: Fields of a zone layer (QPV, QVA), named as in the official ANCT file.
ZONE_FIELDS = ("code_qp", "lib_qp", "insee_com", "lib_com", "siren_epci")
#: Fields of the communes layer.
COMMUNE_FIELDS = ("insee_com", "nom", "codes_postaux", "population")
#: Layers that are polygons, and those that are plain tables.
GEO_LAYERS = ("qpv", "qpv_hors_sem", "qva", "communes")
TABLE_LAYERS = ("qva_liste", "qpv_liste_loire")
#: Layers a user can import or export.
IMPORTABLE_LAYERS = ("qpv", "qva", "communes")

#: The note shown on every output while the simplified copy of the QPV file is in use.
NOTE_SIMPLIFIEE = "périmètres QPV 2024 — copie simplifiée (précision ≈ 10 m)"
#: The note of the shipped exact extract (its manifest says it; this is the fallback).
NOTE_EXTRAIT = ("périmètres QPV 2024 — géométrie exacte extraite du fichier ANCT (empreinte du "
                "fichier officiel non vérifiable)")
#: Edge precision (m) of the simplified copy (largest Hausdorff distance measured, 11.0 m).
PRECISION_SIMPLIFIEE_M = 11.0
#: The note shown while demonstration (synthetic) perimeters are in use.
NOTE_DEMO = "DÉMONSTRATION — périmètres fictifs, aucune valeur officielle"

#: Official 2024 QPV code: QN + département (3, « 02A »/« 02B » in Corsica) + order (2) +
#: letter (M, N or I).
CODE_QP_2024 = re.compile(r"^QN(\d{3}|02A|02B)\d{2}[A-Z]$")  # Corsica: QN02A01M

#: EPCI names of the QPV of the Loire that are not in SEM (from the INSEE table).
_EPCI_NAMES_FALLBACK = {
    "244200770": "Saint-Étienne Métropole",
    "200065886": "Loire Forez Agglomération",
    "200035731": "Roannais Agglomération",
}


def shipped_dir() -> Path:
    """Directory of the reference data shipped with qpv-geo."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / "reference", here.parent / "data" / "reference"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise ReferenceDataError(
        "Les données de référence embarquées sont introuvables (data/reference/manifest.json).",
        hint="Réinstallez qpv-geo depuis le dépôt (make demo) ou un paquet complet.",
    )


def installed_dir(settings: Settings) -> Path:
    """Directory of the current installed version (``data update`` / ``data import``): each
    install writes a new version folder and switches to it atomically (see
    :mod:`qpv_geo._refstore`)."""
    from qpv_geo import _refstore

    return _refstore.current_dir(settings.data_dir / "reference")


@dataclass(frozen=True)
class LayerInfo:
    """What is known of one layer: where it comes from and how good it is."""

    name: str
    path: Path | None
    title: str
    source: str
    millesime: str
    licence: str
    sha256: str | None
    features: int
    precision: str
    simplified: bool
    demo: bool
    origin: str  # "embarquée", "installée" or "absente"
    #: The official ANCT file, checked by its sha256 (``data update``, or an import of it).
    official: bool = False
    installed_at: str | None = None
    #: Edge precision (m) of the layer's perimeters (features may state their own), None: unknown.
    precision_m: float | None = None
    #: What every output must say while this layer serves (e.g. the exact-extract label).
    note: str = ""
    #: Short word for the data version string (« extrait exact ANCT »).
    tag: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["path"] = str(self.path) if self.path else None
        return d


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    if not path.is_file():
        return {"schema": 1, "layers": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReferenceDataError(
            f"Manifeste illisible : {path} ({exc}).",
            hint="Supprimez ce fichier puis réimportez la couche (qpv-geo data import).",
        ) from exc


def _layer_info(name: str, entry: dict[str, Any], directory: Path, origin: str) -> LayerInfo:
    return LayerInfo(
        name=name,
        path=directory / entry["file"],
        title=entry.get("title", name),
        source=entry.get("source", ""),
        millesime=entry.get("millesime", ""),
        licence=entry.get("licence", ""),
        sha256=entry.get("sha256"),
        features=int(entry.get("features", 0)),
        precision=entry.get("precision", ""),
        simplified=bool(entry.get("simplified", False)),
        official=bool(entry.get("official", False)),
        demo=bool(entry.get("demo", False)),
        origin=origin,
        installed_at=entry.get("installed_at"),
        precision_m=None if entry.get("precision_m") is None else float(entry["precision_m"]),
        note=entry.get("note", ""),
        tag=entry.get("tag", ""),
    )


def layer_infos(settings: Settings | None = None) -> dict[str, LayerInfo]:
    """Which file serves each layer (installed first, then shipped), without reading it."""
    settings = settings or Settings.from_env()
    shipped = _read_manifest(shipped_dir())["layers"]
    inst_dir = installed_dir(settings)
    installed = _read_manifest(inst_dir)["layers"]
    infos: dict[str, LayerInfo] = {}
    for name in (*GEO_LAYERS, *TABLE_LAYERS):
        if name in installed:
            infos[name] = _layer_info(name, installed[name], inst_dir, "installée")
        elif name in shipped:
            infos[name] = _layer_info(name, shipped[name], shipped_dir(), "embarquée")
        else:
            infos[name] = LayerInfo(
                name=name, path=None, title=name, source="", millesime="", licence="",
                sha256=None, features=0,
                precision="aucun périmètre importé" if name == "qva" else "",
                simplified=False, demo=False, origin="absente",
            )
    return infos


def _verify_checksum(info: LayerInfo) -> None:
    assert info.path is not None
    if not info.path.is_file():
        raise ReferenceDataError(
            f"Couche « {info.name} » : fichier manquant {info.path}.",
            hint="Réinstallez les données (qpv-geo data update, ou data import FICHIER).",
        )
    if info.sha256:
        actual = sha256_file(info.path)
        if actual != info.sha256:
            raise ReferenceDataError(
                f"Couche « {info.name} » : somme de contrôle inattendue pour {info.path.name} "
                f"(attendu {info.sha256[:12]}…, trouvé {actual[:12]}…). Le fichier a été modifié "
                "ou corrompu.",
                hint="Ne modifiez pas les fichiers de référence à la main ; réimportez-les "
                "(qpv-geo data import FICHIER --layer …) ou restaurez le dépôt.",
            )


def _empty_zones() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {**{f: pd.Series([], dtype=object) for f in ZONE_FIELDS},
         "precision_m": pd.Series([], dtype=float)},
        geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        crs="EPSG:4326",
    )


def _clean_geometries(gdf: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    """Reproject to WGS84, repair invalid shapes, keep only (multi)polygons, drop empties."""
    if gdf.crs is None:
        raise ReferenceDataError(
            f"Couche « {layer} » : aucun système de coordonnées déclaré.",
            hint="Enregistrez le fichier avec son SCR (EPSG:4326 ou EPSG:2154) depuis QGIS.",
        )
    gdf = gdf.to_crs(4326)
    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        # make_valid may return a GeometryCollection: keep its polygonal part.
        fixed = [_polygonal_part(g) for g in fixed]
        geoms = geoms.copy()
        geoms[invalid] = fixed
    geoms = [_polygonal_part(g) for g in geoms]
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=4326))
    arr = np.asarray(gdf.geometry.values, dtype=object)
    gdf = gdf[~shapely.is_missing(arr) & ~shapely.is_empty(arr)]
    return gdf.reset_index(drop=True)


def _polygonal_part(geom: Any) -> Any:
    if geom is None:
        return shapely.Polygon()
    kind = shapely.get_type_id(geom)
    if kind in (3, 6):  # Polygon, MultiPolygon
        return geom
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


def _check_fields(gdf: pd.DataFrame, required: tuple[str, ...], layer: str, path: Path) -> None:
    missing = [f for f in required if f not in gdf.columns]
    if missing:
        raise ReferenceDataError(
            f"Couche « {layer} » ({path.name}) : champ(s) manquant(s) {', '.join(missing)} ; "
            f"champs présents : {', '.join(map(str, gdf.columns))}.",
            hint="Le fichier doit avoir le schéma du fichier officiel (code_qp, lib_qp, …).",
        )


def _read_zone_layer(info: LayerInfo) -> gpd.GeoDataFrame:
    _verify_checksum(info)
    assert info.path is not None
    gdf = gpd.read_file(info.path)
    _check_fields(gdf, ("code_qp", "lib_qp"), info.name, info.path)
    for f in ZONE_FIELDS:
        if f not in gdf.columns:
            gdf[f] = None
    precision = _precision_column(gdf, info)
    gdf = gdf[[*ZONE_FIELDS, "geometry"]].copy()
    for f in ZONE_FIELDS:
        gdf[f] = gdf[f].astype(object).where(gdf[f].notna(), None)
        gdf[f] = [None if v is None else str(v) for v in gdf[f]]
    gdf["precision_m"] = precision
    gdf = _clean_geometries(gdf, info.name)
    if info.features and len(gdf) != info.features and info.name != "qpv_hors_sem":
        raise ReferenceDataError(
            f"Couche « {info.name} » : {len(gdf)} périmètres lus, {info.features} attendus.",
            hint="Réimportez la couche.",
        )
    return gdf


def _precision_column(gdf: pd.DataFrame, info: LayerInfo) -> np.ndarray:
    """Edge precision (m) per feature: its own ``precision_m``, else the layer's, else 1 m."""
    layer = info.precision_m
    if layer is None:
        layer = PRECISION_SIMPLIFIEE_M if info.simplified else PRECISION_PERIMETRE_DEFAUT_M
    own = pd.to_numeric(gdf["precision_m"], errors="coerce").to_numpy(float) \
        if "precision_m" in gdf.columns else np.full(len(gdf), np.nan)
    return np.where(np.isfinite(own) & (own >= 0), own, layer)


@dataclass
class Reference:
    """All reference layers, in WGS84, with their provenance.

    ``qpv``: QPV 2024 of SEM (the eligible perimeters); ``qpv_hors_sem``: QPV of neighbouring
    EPCI (in a QPV, but not SEM's: not eligible for this call); ``qva``: quartiers de veille
    active (not eligible; empty until imported); ``communes``: the 53 communes of SEM.
    """

    qpv: gpd.GeoDataFrame
    qpv_hors_sem: gpd.GeoDataFrame
    qva: gpd.GeoDataFrame
    communes: gpd.GeoDataFrame
    qva_liste: pd.DataFrame = field(default_factory=pd.DataFrame)
    epci_names: dict[str, str] = field(default_factory=lambda: dict(_EPCI_NAMES_FALLBACK))
    layers: dict[str, LayerInfo] = field(default_factory=dict)

    @property
    def simplified(self) -> bool:
        """True while the QPV perimeters are the simplified copy (edges within ≈ 10 m)."""
        info = self.layers.get("qpv")
        return bool(info and info.simplified)

    @property
    def demo(self) -> bool:
        """True when any perimeter layer (QPV, QVA) is synthetic demonstration data."""
        return any(self.layers[k].demo for k in ("qpv", "qva") if k in self.layers)

    @property
    def notes(self) -> list[str]:
        """Warnings every verdict, export and map must show."""
        notes = []
        if self.demo:
            notes.append(NOTE_DEMO)
        if self.simplified:
            notes.append(NOTE_SIMPLIFIEE)
        qpv_info = self.layers.get("qpv")
        if qpv_info and qpv_info.note and not (qpv_info.official or self.simplified):
            notes.append(qpv_info.note)
        info = self.layers.get("qpv")
        if info and info.origin == "installée" and not (info.official or info.demo):
            notes.append(f"périmètres QPV importés ({info.source}) : non vérifiés comme fichier "
                         "officiel de l'ANCT")
        if len(self.qva) == 0:
            notes.append("QVA : aucun périmètre importé (liste seulement)")
        return notes

    @cached_property
    def version(self) -> str:
        """Short data version carried by every verdict (``QPV embarquée … sha256:bac26f0c``)."""
        parts = []
        for name, label in (("qpv", "QPV"), ("qva", "QVA"), ("communes", "communes")):
            info = self.layers.get(name)
            if info is None or info.origin == "absente":
                parts.append(f"{label} : aucun")
                continue
            if info.origin == "mémoire":  # built in memory (tests, notebooks): not official
                tag = "non officielle"
            else:
                tag = ("démo" if info.demo else "simplifiée" if info.simplified
                       else "officielle" if info.official else info.tag or "importée")
            sha = (info.sha256 or "")[:8]
            parts.append(f"{label} {info.origin} {tag} sha256:{sha}")
        return " | ".join(parts)

    def version_dict(self) -> dict[str, Any]:
        """Data versions and provenance (for JSON outputs and the web API)."""
        return {
            "version": self.version,
            "notes": self.notes,
            "simplifiee": self.simplified,
            "demo": self.demo,
            "couches": {k: v.as_dict() for k, v in self.layers.items()},
        }

    def epci_name(self, siren: str | None) -> str:
        """Name of an EPCI from its SIREN (falls back to the SIREN itself)."""
        if not siren:
            return "EPCI inconnu"
        return self.epci_names.get(str(siren), f"EPCI {siren}")

    @classmethod
    def from_frames(
        cls,
        *,
        qpv: gpd.GeoDataFrame,
        communes: gpd.GeoDataFrame,
        qva: gpd.GeoDataFrame | None = None,
        qpv_hors_sem: gpd.GeoDataFrame | None = None,
        demo: bool = False,
        simplified: bool = False,
        label: str = "test",
    ) -> Reference:
        """Build a reference from in-memory layers (tests, fixtures, notebooks).

        QPV whose ``siren_epci`` is not SEM's go to ``qpv_hors_sem``.
        """

        def norm(g: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
            if g is None or len(g) == 0:
                return _empty_zones()
            g = g.copy()
            for f in ZONE_FIELDS:
                if f not in g.columns:
                    g[f] = SIREN_SEM if f == "siren_epci" else None
            default = PRECISION_SIMPLIFIEE_M if simplified else PRECISION_PERIMETRE_DEFAUT_M
            own = pd.to_numeric(g["precision_m"], errors="coerce").to_numpy(float) \
                if "precision_m" in g.columns else np.full(len(g), np.nan)
            g["precision_m"] = np.where(np.isfinite(own), own, default)
            return _clean_geometries(g[[*ZONE_FIELDS, "precision_m", "geometry"]], "zones")

        layers = {}
        for name, g in (("qpv", qpv), ("qva", qva), ("communes", communes)):
            n = 0 if g is None else len(g)
            layers[name] = LayerInfo(
                name=name, path=None, title=name, source=label, millesime="", licence="",
                sha256=None, features=n, precision="", simplified=simplified and name == "qpv",
                demo=demo, origin="absente" if n == 0 else "mémoire",
            )
        qpv = norm(qpv)
        others = qpv[qpv["siren_epci"].notna() & (qpv["siren_epci"] != SIREN_SEM)]
        qpv = qpv.drop(others.index).reset_index(drop=True)
        if qpv_hors_sem is not None and len(qpv_hors_sem):
            others = pd.concat([others, norm(qpv_hors_sem)], ignore_index=True)
        com = _clean_geometries(communes.copy(), "communes")
        for f in COMMUNE_FIELDS:
            if f not in com.columns:
                com[f] = None
        return cls(qpv=qpv, qpv_hors_sem=others.reset_index(drop=True), qva=norm(qva),
                   communes=com, layers=layers)


def load_reference(settings: Settings | None = None) -> Reference:
    """Load every layer (installed ones first), verifying checksums and schemas."""
    settings = settings or Settings.from_env()
    infos = layer_infos(settings)

    qpv_all = _read_zone_layer(infos["qpv"])
    qpv = qpv_all[qpv_all["siren_epci"].fillna(SIREN_SEM) == SIREN_SEM].reset_index(drop=True)
    if len(qpv) == 0:
        raise ReferenceDataError(
            "La couche QPV ne contient aucun QPV de Saint-Étienne Métropole (siren_epci "
            f"{SIREN_SEM}).",
            hint="Importez un fichier QPV qui couvre SEM (qpv-geo data import FICHIER).",
        )
    if infos["qpv_hors_sem"].origin != "absente":
        others = _read_zone_layer(infos["qpv_hors_sem"])
    else:
        others = _empty_zones()
    others = others[others["siren_epci"].notna() & (others["siren_epci"] != SIREN_SEM)]
    # A national or departmental QPV file installed as "qpv" also tells us the others.
    extra = qpv_all[qpv_all["siren_epci"].notna() & (qpv_all["siren_epci"] != SIREN_SEM)]
    if len(extra):
        others = extra
    others = others.reset_index(drop=True)

    qva = _read_zone_layer(infos["qva"]) if infos["qva"].origin != "absente" else _empty_zones()

    cinfo = infos["communes"]
    _verify_checksum(cinfo)
    assert cinfo.path is not None
    communes = gpd.read_file(cinfo.path)
    _check_fields(communes, ("insee_com", "nom"), "communes", cinfo.path)
    for f in COMMUNE_FIELDS:
        if f not in communes.columns:
            communes[f] = None
    communes["insee_com"] = communes["insee_com"].astype(str)
    communes = _clean_geometries(communes[[*COMMUNE_FIELDS, "geometry"]], "communes")

    qva_liste = pd.DataFrame()
    epci_names = dict(_EPCI_NAMES_FALLBACK)
    for name in TABLE_LAYERS:
        info = infos[name]
        if info.origin == "absente":
            continue
        _verify_checksum(info)
        assert info.path is not None
        table = pd.read_csv(info.path, dtype=str)
        if name == "qva_liste":
            qva_liste = table
        elif {"siren_epci", "lib_epci"} <= set(table.columns):
            for siren, lib in zip(table["siren_epci"], table["lib_epci"], strict=True):
                epci_names.setdefault(siren, lib)
    return Reference(qpv=qpv, qpv_hors_sem=others, qva=qva, communes=communes,
                     qva_liste=qva_liste, epci_names=epci_names, layers=infos)


_CACHE: dict[tuple[Any, ...], Reference] = {}


def get_reference(settings: Settings | None = None) -> Reference:
    """Like :func:`load_reference`, cached per data directory and installed manifest."""
    settings = settings or Settings.from_env()
    manifest = installed_dir(settings) / "manifest.json"
    key = (str(settings.data_dir), manifest.stat().st_mtime_ns if manifest.exists() else 0)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_reference(settings)
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------
# Export, import, update
# ------------------------------------------------------------------------------------------------

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
    from qpv_geo._files import atomic_path, check_output_path, os_error_message

    check_output_path(path)
    try:
        if driver == "ESRI Shapefile":  # several files (.shp, .dbf, .shx, .prj, .cpg)
            _export_shapefile(gdf, path)
        else:
            with atomic_path(path) as tmp:
                extra = {"layer": layer} if driver == "GPKG" else {}
                gdf.to_file(tmp, driver=driver, **extra)
    except OSError as exc:
        raise os_error_message(exc, path) from exc
    return path


def _export_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """A Shapefile's files written in a temporary folder beside it, then each renamed."""
    import os

    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as tmp:
        gdf.to_file(Path(tmp) / path.name, driver="ESRI Shapefile")
        for part in sorted(Path(tmp).iterdir()):
            os.replace(part, path.with_suffix(part.suffix))


def _read_user_layer(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(
            f"Impossible de lire {path.name} comme couche géographique ({exc}).",
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


def _install(gdf: gpd.GeoDataFrame, layer: str, settings: Settings, *, source: str,
             millesime: str, licence: str, simplified: bool, demo: bool,
             precision: str, official: bool = False) -> LayerInfo:
    """Write the layer and its manifest entry into a new version folder, then switch to it
    in one rename: a crash at any point leaves the previous layers and manifest intact."""
    from qpv_geo import _refstore

    fname = f"{layer}.geojson"
    try:
        with _refstore.new_version(settings.data_dir / "reference") as target_dir:
            (target_dir / fname).unlink(missing_ok=True)  # a link to the previous version
            gdf.to_file(target_dir / fname, driver="GeoJSON")
            _refstore.step("couche")
            manifest = _read_manifest(target_dir)
            fields = [c for c in gdf.columns if c != "geometry"]
            manifest["layers"][layer] = {
                "file": fname, "title": f"{layer} (importée)", "source": source,
                "millesime": millesime, "licence": licence,
                "sha256": sha256_file(target_dir / fname), "features": len(gdf),
                "crs": "EPSG:4326", "fields": fields, "precision": precision,
                "simplified": simplified, "demo": demo, "official": official,
                "precision_m": PRECISION_PERIMETRE_DEFAUT_M if official else None,
                "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            (target_dir / "manifest.json").write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
            _refstore.step("manifeste")
    except OSError as exc:
        from qpv_geo._files import os_error_message

        raise os_error_message(exc, settings.data_dir / "reference") from exc
    _CACHE.clear()
    return _layer_info(layer, manifest["layers"][layer], installed_dir(settings), "installée")


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
        gdf = _clean_geometries(gdf, layer)
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
        return _install(gdf, layer, settings, source=source or str(path.name),
                        millesime=millesime, licence="", simplified=False, demo=False,
                        precision="importée")
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
    return _install(gdf, layer, settings, source=source or str(path.name),
                    millesime=millesime or ("QPV 2024" if layer == "qpv" else "QVA"),
                    licence="", simplified=False, demo=demo,
                    precision="fichier officiel pleine précision" if official
                    else "fichier importé (précision de la source)", official=official)


def _keep_sem_and_neighbours(gdf: gpd.GeoDataFrame, radius_m: float = 100_000) -> gpd.GeoDataFrame:
    """Keep SEM's QPV and the others within ``radius_m`` (to name the EPCI of a near miss)."""
    metric = gdf.to_crs(2154)
    sem = metric[metric["siren_epci"] == SIREN_SEM]
    zone = shapely.buffer(shapely.union_all(sem.geometry.values), radius_m)
    keep = shapely.intersects(metric.geometry.values, zone)
    return gdf[keep].reset_index(drop=True)


def remove_installed(layer: str, settings: Settings | None = None) -> bool:
    """Forget an installed layer (the shipped one serves again). True if something was removed."""
    settings = settings or Settings.from_env()
    target_dir = installed_dir(settings)
    manifest = _read_manifest(target_dir)
    entry = manifest["layers"].pop(layer, None)
    if entry is None:
        return False
    from qpv_geo import _refstore

    with _refstore.new_version(settings.data_dir / "reference") as new_dir:
        (new_dir / entry["file"]).unlink(missing_ok=True)
        (new_dir / "manifest.json").unlink()
        (new_dir / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _CACHE.clear()
    return True


def update_qpv(settings: Settings | None = None, *, url: str | None = None,
               sha256: str | None = None, verify: bool = True) -> LayerInfo:
    """Download the official national QPV file, check it, extract SEM and install it.

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
    try:
        fetched = Path(pooch.retrieve(
            url, known_hash=None, path=downloads, fname="qpv_national_download",
            downloader=pooch.HTTPDownloader(timeout=settings.timeout_s, progressbar=False,
                                            headers={"User-Agent": "qpv-geo"}),
        ))
    except Exception as exc:  # requests/pooch raise many kinds: all mean "not downloaded"
        from qpv_geo._http import download_failure_reason

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
            gdf = _clean_geometries(gdf, "qpv")
            if "siren_epci" not in gdf.columns or not (gdf["siren_epci"] == SIREN_SEM).any():
                raise DownloadError("Le fichier téléchargé ne contient aucun QPV de SEM.",
                                    hint="Vérifiez l'URL (option --url).")
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
                official=verified,
            )
    finally:
        fetched.unlink(missing_ok=True)


def _extract_geojson(path: Path, workdir: Path, settings: Settings | None = None) -> Path:
    """The GeoJSON of a downloaded file (zip or not). Sizes are checked from the zip
    directory before anything is inflated, and the extraction stops at the cap whatever the
    directory says (a zip bomb never reaches the disk)."""
    from qpv_geo._zipsafe import check_sizes, copy_member

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
