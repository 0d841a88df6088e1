"""The territory of a check: Saint-Étienne Métropole (default), another EPCI, a commune, or France.

``Settings.territoire`` / ``--territoire`` takes an EPCI SIREN (9 digits), a commune INSEE code
(5 characters, « 2A004 » in Corsica) or ``france``. :func:`resolve_territoire` reads it against
the shipped national list of communes (:mod:`qpv_geo.reference.communes`, with each commune's EPCI).
What sets a territory apart (its layers, metric plane, streets, words) is data: its
:attr:`Territoire.profil` (:mod:`qpv_geo.reference.profiles`, where SEM is one row).

SEM keeps its own reference (exact QPV perimeters, commune outlines, QVA list): nothing changes
for it. Any other territory is served by the national layer ``qpv_france`` (every QPV 2024): the
official file installed in the settings' data directory by ``data update`` (or ``data import``
of the national file, :mod:`qpv_geo.reference._national_layer`) when there is one, else the shipped
SIMPLIFIED
copy (edges within ≈ 12 m, 3 QPV reduced to a point). Its QPV are those of the national layer
whose EPCI (or commune) is the territory's; the other QPV are « hors territoire ». Commune
outlines are only shipped for SEM: elsewhere the territory check reads the commune code of a
geocoded address, and for bare coordinates the verdict says that no outline is installed.
``france`` answers QPV membership nationally with no territory restriction, the 247 overseas QPV
included (Guadeloupe,
Martinique, Guyane, La Réunion, Mayotte, Saint-Martin, Polynésie française): the engine measures
each in its territory's official projection (:mod:`qpv_geo.eligibility.projections`). Saint-Martin
and Polynésie française have no EPCI (« NA » in the layer, read as None): a commune code selects
their QPV.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

import qpv_geo.reference._national_layer as _nationale
from qpv_geo.exceptions import ReferenceDataError, SettingsError
from qpv_geo.reference.commune_outlines import LAYER as OUTLINES_LAYER
from qpv_geo.reference.commune_outlines import outlines_of
from qpv_geo.reference.communes import communes_france
from qpv_geo.reference.layers import (
    COMMUNE_FIELDS,
    ZONE_FIELDS,
    LayerInfo,
    Reference,
    clean_geometries,
    empty_zones,
    installed_dir,
    layer_info,
    precision_column,
    read_manifest,
    shipped_dir,
    verify_checksum,
)
from qpv_geo.reference.profiles import PROFILS, Profil, profil
from qpv_geo.settings import Settings

FRANCE = "france"
_SIREN = re.compile(r"^\d{9}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


class _Partout(frozenset):
    """A set of commune codes that holds every code (``france``: no territory restriction)."""

    def __contains__(self, item: object) -> bool:
        return True


@dataclass(frozen=True)
class Territoire:
    """A territory: its code, kind (``epci``, ``commune``, ``france``), names and communes."""

    code: str
    genre: str
    nom: str
    #: Short name used in reasons (« SEM » for Saint-Étienne Métropole, else the name).
    sigle: str
    #: INSEE codes of its communes (current ones, déléguées, arrondissements).
    communes: frozenset[str]

    @property
    def profil(self) -> Profil:
        """Its layers, plane and words (:mod:`qpv_geo.reference.profiles`)."""
        return profil(self)

    @property
    def france(self) -> bool:
        """True for the whole of France (no territory restriction)."""
        return self.genre == FRANCE


def _hint() -> str:
    return ("Donnez un SIREN d'EPCI (9 chiffres, ex. 244200770 pour Saint-Étienne Métropole), "
            "un code INSEE de commune (ex. 42218) ou « france » (--territoire ou "
            "QPV_GEO_TERRITOIRE).")


@functools.lru_cache(maxsize=32)
def resolve_territoire(code: str) -> Territoire:
    """The territory of a ``--territoire`` value, or a French :class:`SettingsError`."""
    raw = str(code or "").strip()
    key = raw.replace(" ", "").upper()
    if raw.lower() == FRANCE:
        return Territoire(FRANCE, FRANCE, "France", "France", _Partout())
    liste = communes_france()
    if _SIREN.match(key):
        codes = frozenset(c.insee for c in liste.by_insee.values() if c.epci == key)
        if not codes:
            _refuse_ept(raw, key)
            raise SettingsError(f"Territoire « {raw} » : aucun EPCI de ce SIREN dans la liste "
                                "nationale des communes.", hint=_hint())
        if key in PROFILS:  # a row of the profiles: its names (SEM: no national layer read)
            return Territoire(key, "epci", PROFILS[key].nom, PROFILS[key].sigle, codes)
        nom = _epci_names().get(key) or f"EPCI {key}"
        return Territoire(key, "epci", nom, nom, codes)
    if _INSEE.match(key):
        commune = liste.by_insee.get(key)
        if commune is None:
            raise SettingsError(f"Territoire « {raw} » : aucune commune de ce code INSEE.",
                                hint=_hint())
        current = liste.current(commune)
        codes = frozenset({current.insee} | {c.insee for c in liste.by_insee.values()
                                             if c.commune == current.insee})
        return Territoire(current.insee, "commune", current.nom, current.nom, codes)
    raise SettingsError(f"Territoire « {raw} » : ni un SIREN d'EPCI, ni un code INSEE, ni "
                        "« france ».", hint=_hint())


def _refuse_ept(raw: str, siren: str) -> None:
    """A SIREN the QPV layer names as ``siren_epci`` but the list of communes does not: an
    établissement public territorial of the Métropole du Grand Paris (whose QPV the ANCT file
    files under their EPT). Its communes are not listed: say which EPCI holds them."""
    gdf, _ = qpv_france()
    rows = gdf[gdf["siren_epci"] == siren]
    if not len(rows):
        return
    liste = communes_france().by_insee
    communes = sorted({c for v in rows["insee_com"] for c in _communes_of(v) if c in liste})
    epcis = sorted({liste[c].epci for c in communes if liste[c].epci})
    nom = next((n for n in rows["lib_epci"] if n), f"SIREN {siren}")
    exemple = f" (ex. {communes[0]} pour {liste[communes[0]].nom})" if communes else ""
    raise SettingsError(
        f"Territoire « {raw} » : {nom} n'est pas un EPCI de la liste nationale des communes "
        "(établissement public territorial) : ses communes n'y sont pas listées.",
        hint=f"Donnez le SIREN de l'EPCI qui le contient ({', '.join(epcis)}"
        + (f", {_EPCI_SANS_QPV.get(epcis[0], '')}" if epcis and epcis[0] in _EPCI_SANS_QPV
           else "") + f") ou le code INSEE d'une de ses communes{exemple}.")


#: EPCI whose QPV the ANCT file files under another SIREN (their EPT): named here.
_EPCI_SANS_QPV = {"200054781": "Métropole du Grand Paris"}


#: Loaded national layers, by file (path and sha256): the shipped copy and, per data
#: directory, the installed one. A new install is a new version folder, hence a new key.
_NATIONALES: dict[tuple[str, str | None], tuple[gpd.GeoDataFrame, Any]] = {}


def national_info(settings: Settings | None = None) -> Any:  # -> LayerInfo
    """Which national layer serves (without reading it): the one installed in the settings'
    data directory by ``data update`` / ``data import`` of the national file, else the
    shipped simplified copy."""
    settings = settings or Settings.from_env()
    inst = installed_dir(settings)
    manifest = inst / "manifest.json"
    # cached like get_reference: a new install is a new version folder (or manifest)
    key = (str(manifest), manifest.stat().st_mtime_ns if manifest.exists() else 0)
    if key not in _INFOS:
        _INFOS.clear()
        _INFOS[key] = _national_info(inst)
    return _INFOS[key]


_INFOS: dict[tuple[str, int], Any] = {}


def _national_info(inst: Any) -> Any:
    entry = read_manifest(inst)["layers"].get("qpv_france")
    if entry is not None:
        return layer_info("qpv_france", entry, inst, "installée")
    entry = read_manifest(shipped_dir())["layers"].get("qpv_france")
    if entry is None:
        raise ReferenceDataError("Couche nationale des QPV absente du manifeste.",
                                 hint="Réinstallez qpv-geo (la couche qpv_france est embarquée).")
    return layer_info("qpv_france", entry, shipped_dir(), "embarquée")


def qpv_france(settings: Settings | None = None) -> tuple[gpd.GeoDataFrame, Any]:
    """The national QPV layer and its LayerInfo, sha256 checked: the official file installed
    in the settings' data directory if any (:func:`national_info`), else the shipped
    simplified copy. QPV lost to a point by a simplification are in ``attrs["perdus"]``."""
    info = national_info(settings)
    key = (str(info.path), info.sha256)
    if key not in _NATIONALES:
        if len(_NATIONALES) >= 2:  # the shipped copy and one installed layer at most
            _NATIONALES.clear()
        _NATIONALES[key] = _load_national(info)
    return _NATIONALES[key]


def _load_national(info: Any) -> tuple[gpd.GeoDataFrame, Any]:
    verify_checksum(info)
    assert info.path is not None
    if info.path.name.endswith(".fgb.gz"):
        gdf = _nationale.read(info.path)
    else:
        with gzip.open(info.path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        gdf = gpd.GeoDataFrame.from_features(data["features"], crs=4326)
    for col in ("code_qp", "lib_qp", "insee_com", "lib_com", "siren_epci", "lib_epci"):
        if col not in gdf.columns:
            gdf[col] = None
        gdf[col] = gdf[col].astype(object).where(gdf[col].notna(), None)
    # each feature's own precision, else the layer's (12 m for the copy, 1 m for the
    # official file: docs/marges.md)
    gdf["precision_m"] = precision_column(gdf, info)
    # Saint-Martin and Polynésie française have no EPCI: the layer writes « NA ».
    gdf["siren_epci"] = gdf["siren_epci"].where(
        gdf["siren_epci"].astype(str).str.fullmatch(r"\d{9}"), None)
    clean = clean_geometries(gdf, "qpv_france")
    clean.attrs["perdus"] = _perdus(gdf, clean)
    return clean, info


def _perdus(gdf: gpd.GeoDataFrame, clean: gpd.GeoDataFrame) -> list[dict[str, object]]:
    """QPV the simplification collapsed to a point (no area): their codes, names and the point
    (lon, lat) they were reduced to. Points near them are « à vérifier »
    (qpv_geo.eligibility._lost_qpv)."""
    import shapely

    lost = gdf.loc[~gdf["code_qp"].isin(clean["code_qp"]),
                   ["code_qp", "lib_qp", "lib_com", "insee_com", "siren_epci", "geometry"]]
    records = []
    for row in lost.itertuples(index=False):
        coords = shapely.get_coordinates(row.geometry) if row.geometry is not None else []
        if not len(coords):
            continue  # no point at all: nothing to place (none in the shipped layer)
        lon, lat = np.asarray(coords, dtype=float).mean(axis=0)
        records.append({"code_qp": row.code_qp, "lib_qp": row.lib_qp, "lib_com": row.lib_com,
                        "insee_com": row.insee_com, "siren_epci": row.siren_epci,
                        "lon": float(lon), "lat": float(lat)})
    return records


def _epci_names(settings: Settings | None = None) -> dict[str, str]:
    gdf, _ = qpv_france(settings)
    names = {s: n for s, n in zip(gdf["siren_epci"], gdf["lib_epci"], strict=True)
             if s and n}
    names.update({k: p.nom for k, p in PROFILS.items() if _SIREN.match(k)})
    for siren, nom in _EPCI_SANS_QPV.items():
        names.setdefault(siren, nom)
    return names


def _communes_of(insee: str | None) -> list[str]:
    return [c.strip() for c in str(insee or "").split(",") if c.strip()]


@functools.lru_cache(maxsize=1)
def _epci_connus() -> frozenset[str]:
    return frozenset(c.epci for c in communes_france().by_insee.values() if c.epci)


def _du_territoire(territoire: Territoire, siren: str | None, insee: str | None) -> bool:
    """Whether a QPV of the national layer belongs to the territory: all for France; by its
    commune(s) for a commune; by SIREN for an EPCI — and by its communes when it is filed under
    a SIREN the list of communes does not know (an EPT of the Métropole du Grand Paris)."""
    if territoire.france:
        return True
    communes = _communes_of(insee)
    if territoire.genre == "epci":
        return siren == territoire.code or (siren not in _epci_connus() and any(
            c in territoire.communes for c in communes))
    return any(c in territoire.communes for c in communes)


#: How far (m) a QPV the simplified copy reduced to a point may extend from that point. The
#: three such QPV have 1,120–1,857 residents (INSEE popMuniQPV); among the 569 metropolitan QPV
#: of fewer than 2,000 residents, 566 have a diameter ≤ 2,000 m (99th percentile 1,854 m) and
#: all 154 « I » QPV (outline unchanged since 2015, like the three) ≤ 1,869 m. The point kept by
#: the simplification is presumably one of the outline's vertices (or inside it): either way the
#: QPV lies within its diameter of it.
#: Measured on the simplified layer itself: see docs/marges.md § 5.
RAYON_QPV_PERDU_M = 2000.0

#: Columns of the table of lost QPV (:func:`table_perdus`).
COLONNES_PERDUS = ("code_qp", "lib_qp", "lib_com", "insee_com", "siren_epci", "lon", "lat",
                   "du_territoire")


def table_perdus(perdus: Iterable[Mapping[str, Any]], du_territoire: Iterable[bool]
                 ) -> pd.DataFrame:
    """The lost QPV (``code_qp``, ``lib_qp``, ``lib_com``, ``lon``/``lat`` of the point they
    were reduced to…) and whether each belongs to the territory."""
    frame = pd.DataFrame(list(perdus))
    if not len(frame):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLONNES_PERDUS})
    for col in ("code_qp", "lib_qp", "lib_com", "insee_com", "siren_epci"):
        if col not in frame.columns:
            frame[col] = None
    frame["du_territoire"] = np.asarray(list(du_territoire), dtype=bool)
    return frame[list(COLONNES_PERDUS)].reset_index(drop=True)


def reference_territoire(territoire: Territoire,
                         settings: Settings | None = None):  # -> Reference
    """The reference of a territory other than SEM, from the national layer of the settings'
    data directory (:func:`qpv_france`), and the commune outlines installed for it
    (``data update --communes``) as the background of its maps."""
    gdf, info = qpv_france(settings)
    cols = [*ZONE_FIELDS, "precision_m", "geometry"]
    mine = np.array([_du_territoire(territoire, s, v)
                     for s, v in zip(gdf["siren_epci"], gdf["insee_com"], strict=True)],
                    dtype=bool)
    qpv = gdf.loc[mine, cols].reset_index(drop=True)
    autres = gdf.loc[~mine, cols].reset_index(drop=True)
    communes = gpd.GeoDataFrame({f: pd.Series(dtype=object) for f in COMMUNE_FIELDS},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    absent = {name: LayerInfo(name=name, path=None, title=name, source="", millesime="",
                              licence="", sha256=None, features=0, precision="",
                              simplified=False, demo=False, origin="absente")
              for name in ("qva", "communes")}
    notes = []
    perdus = gdf.attrs.get("perdus", [])
    du_territoire = [_du_territoire(territoire, q["siren_epci"], q["insee_com"])
                     for q in perdus]
    lost = [q for q, mine in zip(perdus, du_territoire, strict=True) if mine]
    rayon = f"{RAYON_QPV_PERDU_M:,.0f}".replace(",", "\u202f")
    if lost:
        notes.append(f"{len(lost)} QPV réduit(s) à un point dans la copie simplifiée, contour "
                     "inconnu : " + ", ".join(f"{q['code_qp']} « {q['lib_qp']} »" for q in lost)
                     + f" — tout point à moins de {rayon} m de l'un d'eux est « à vérifier » "
                     "(sauf sûrement dans un autre QPV du territoire) ; vérifiez ces quartiers "
                     "sur le fichier officiel de l'ANCT (data.gouv.fr), ou installez-le "
                     "(qpv-geo data update) : il remplace cette copie")
    # all France: no background (35,000 outlines under a national map draw nothing legible)
    background = None if territoire.france else outlines_of(territoire, settings)
    layers = {"qpv": info, **absent}
    if background is not None:  # drawn under the QPV; the verdicts do not read them
        layers[OUTLINES_LAYER] = background[1]
    if not territoire.france:
        drawn = ("contours des communes installés pour le fond des cartes seulement "
                 "(simplifiés, geo.api.gouv.fr)" if background is not None
                 else "contours des communes non installés")
        notes.append(f"territoire {territoire.nom} : {drawn} ; "
                     "l'appartenance au territoire se lit au code commune de l'adresse "
                     "géocodée, elle n'est pas vérifiée pour des coordonnées")
    return Reference(qpv=qpv if len(qpv) else empty_zones(), qpv_hors_sem=autres,
                     qva=empty_zones(), communes=communes, epci_names=_epci_names(settings),
                     layers=layers, territoire=territoire,
                     notes_territoire=notes, qpv_perdus=table_perdus(perdus, du_territoire),
                     background_communes=None if background is None else background[0])


def nom_communes(territoire: Territoire) -> dict[str, str]:
    """INSEE code → commune name, for the territory's communes (all of France for ``france``)."""
    liste = communes_france()
    return {code: c.nom for code, c in liste.by_insee.items()
            if territoire.france or code in territoire.communes}
