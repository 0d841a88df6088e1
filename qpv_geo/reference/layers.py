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

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qpv_geo._files import sha256_file
from qpv_geo._french import pluriel
from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.reference import store
from qpv_geo.reference.profiles import profil
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
#: Edge precision (m) of a perimeter whose source says nothing better (the exact ANCT geometry:
#: see docs/marges.md).
PRECISION_PERIMETRE_DEFAUT_M = 1.0
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
    here = Path(__file__).resolve().parent.parent  # qpv_geo/ (this module is in reference/)
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
    :mod:`qpv_geo.reference.store`)."""
    return store.current_dir(settings.data_dir / "reference")


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


def read_manifest(directory: Path) -> dict[str, Any]:
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


def layer_info(name: str, entry: dict[str, Any], directory: Path, origin: str) -> LayerInfo:
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
    shipped = read_manifest(shipped_dir())["layers"]
    inst_dir = installed_dir(settings)
    installed = read_manifest(inst_dir)["layers"]
    infos: dict[str, LayerInfo] = {}
    for name in (*GEO_LAYERS, *TABLE_LAYERS):
        if name in installed:
            infos[name] = layer_info(name, installed[name], inst_dir, "installée")
        elif name in shipped:
            infos[name] = layer_info(name, shipped[name], shipped_dir(), "embarquée")
        else:
            infos[name] = LayerInfo(
                name=name, path=None, title=name, source="", millesime="", licence="",
                sha256=None, features=0,
                precision="aucun périmètre importé" if name == "qva" else "",
                simplified=False, demo=False, origin="absente",
            )
    return infos


def verify_checksum(info: LayerInfo) -> None:
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


def empty_zones() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {**{f: pd.Series([], dtype=object) for f in ZONE_FIELDS},
         "precision_m": pd.Series([], dtype=float)},
        geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        crs="EPSG:4326",
    )


def clean_geometries(gdf: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
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
    verify_checksum(info)
    assert info.path is not None
    gdf = gpd.read_file(info.path)
    _check_fields(gdf, ("code_qp", "lib_qp"), info.name, info.path)
    for f in ZONE_FIELDS:
        if f not in gdf.columns:
            gdf[f] = None
    precision = precision_column(gdf, info)
    gdf = gdf[[*ZONE_FIELDS, "geometry"]].copy()
    for f in ZONE_FIELDS:
        gdf[f] = gdf[f].astype(object).where(gdf[f].notna(), None)
        gdf[f] = [None if v is None else str(v) for v in gdf[f]]
    gdf["precision_m"] = precision
    gdf = clean_geometries(gdf, info.name)
    if info.features and len(gdf) != info.features and info.name != "qpv_hors_sem":
        raise ReferenceDataError(
            f"Couche « {info.name} » : {pluriel(len(gdf), 'périmètre lu', 'périmètres lus')}"
            f", {info.features} attendus.",
            hint="Réimportez la couche.",
        )
    return gdf


def precision_column(gdf: pd.DataFrame, info: LayerInfo) -> np.ndarray:
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
    #: The territory (:class:`qpv_geo.reference.territories.Territoire`) when it is not SEM, else
    #: None.
    territoire: Any = None
    #: Notes of that territory (no commune outlines…), shown with the others.
    notes_territoire: list[str] = field(default_factory=list)
    #: QPV the simplified national copy reduced to a point
    #: (``qpv_geo.reference.territories.table_perdus``): points near them are « à vérifier ».
    #: None for SEM.
    qpv_perdus: pd.DataFrame | None = None
    #: Simplified commune outlines installed for a territory other than SEM
    #: (``data update --communes``, :mod:`qpv_geo.reference.commune_outlines`): the background
    #: of its maps only, never read for a verdict. None when not installed (and for SEM, whose
    #: ``communes`` serve).
    background_communes: gpd.GeoDataFrame | None = None

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
        return list(self._notes)

    @cached_property
    def _notes(self) -> tuple[str, ...]:
        """:attr:`notes`, worked out once (every single verdict carries them)."""
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
            notes.append("QVA : aucun périmètre importé (liste seulement)"
                         if profil(self.territoire).qva else "QVA : aucun périmètre installé "
                         "pour ce territoire")
        return (*notes, *self.notes_territoire)

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
                return empty_zones()
            g = g.copy()
            for f in ZONE_FIELDS:
                if f not in g.columns:
                    g[f] = SIREN_SEM if f == "siren_epci" else None
            default = PRECISION_SIMPLIFIEE_M if simplified else PRECISION_PERIMETRE_DEFAUT_M
            own = pd.to_numeric(g["precision_m"], errors="coerce").to_numpy(float) \
                if "precision_m" in g.columns else np.full(len(g), np.nan)
            g["precision_m"] = np.where(np.isfinite(own), own, default)
            return clean_geometries(g[[*ZONE_FIELDS, "precision_m", "geometry"]], "zones")

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
        com = clean_geometries(communes.copy(), "communes")
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
        others = empty_zones()
    others = others[others["siren_epci"].notna() & (others["siren_epci"] != SIREN_SEM)]
    # A national or departmental QPV file installed as "qpv" also tells us the others.
    extra = qpv_all[qpv_all["siren_epci"].notna() & (qpv_all["siren_epci"] != SIREN_SEM)]
    if len(extra):
        others = extra
    others = others.reset_index(drop=True)

    qva = _read_zone_layer(infos["qva"]) if infos["qva"].origin != "absente" else empty_zones()

    cinfo = infos["communes"]
    verify_checksum(cinfo)
    assert cinfo.path is not None
    communes = gpd.read_file(cinfo.path)
    _check_fields(communes, ("insee_com", "nom"), "communes", cinfo.path)
    for f in COMMUNE_FIELDS:
        if f not in communes.columns:
            communes[f] = None
    communes["insee_com"] = communes["insee_com"].astype(str)
    communes = clean_geometries(communes[[*COMMUNE_FIELDS, "geometry"]], "communes")

    qva_liste = pd.DataFrame()
    epci_names = dict(_EPCI_NAMES_FALLBACK)
    for name in TABLE_LAYERS:
        info = infos[name]
        if info.origin == "absente":
            continue
        verify_checksum(info)
        assert info.path is not None
        table = pd.read_csv(info.path, dtype=str)
        if name == "qva_liste":
            qva_liste = table
        elif {"siren_epci", "lib_epci"} <= set(table.columns):
            for siren, lib in zip(table["siren_epci"], table["lib_epci"], strict=True):
                epci_names.setdefault(siren, lib)
    return Reference(qpv=qpv, qpv_hors_sem=others, qva=qva, communes=communes,
                     qva_liste=qva_liste, epci_names=epci_names, layers=infos)


#: The references loaded, by data directory and installed manifest (an install empties it).
REFERENCE_CACHE: dict[tuple[Any, ...], Reference] = {}


def get_reference(settings: Settings | None = None) -> Reference:
    """Like :func:`load_reference`, cached per data directory and installed manifest."""
    settings = settings or Settings.from_env()
    manifest = installed_dir(settings) / "manifest.json"
    key = (str(settings.data_dir), manifest.stat().st_mtime_ns if manifest.exists() else 0)
    if key not in REFERENCE_CACHE:
        REFERENCE_CACHE.clear()
        REFERENCE_CACHE[key] = load_reference(settings)
    return REFERENCE_CACHE[key]


