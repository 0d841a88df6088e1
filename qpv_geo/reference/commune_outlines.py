"""Commune outlines of a territory other than SEM, for the background of its maps.

No official commune outline is shipped for all of France (size): ``qpv-geo data update
--communes --territoire CODE`` installs those of one territory (an EPCI, a commune, or
``france``) from the API Découpage administratif of geo.api.gouv.fr (DINUM / Etalab), whose
contours are the generalised « communes-5m » of Etalab's contours-administratifs, derived from
IGN ADMIN EXPRESS (Licence Ouverte 2.0). They are SIMPLIFIED outlines: drawn on the maps, never
read for a verdict (the territory of a point stays read on the commune code of its address).

Protocol (the API's swagger, ``definition.yml`` of github.com/datagouv/api-geo):
``GET {base}/departements/{code}/communes?format=geojson&geometry=contour&fields=code,nom`` →
200 and a GeoJSON ``FeatureCollection`` whose features carry ``code`` (INSEE) and ``nom``, the
geometry a Polygon or MultiPolygon in WGS84; an unknown département is a 404, a malformed query
a 400. One request per département of the territory; only its communes are kept.

Every install goes through :mod:`qpv_geo.reference.store` (new version folder, one rename): the
layer ``communes_contours`` holds the outlines of every territory installed so far (a new
install replaces the communes it brings), its manifest entry says the source URLs, date, licence,
sha256 and that the outlines are simplified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from qpv_geo._files import sha256_file
from qpv_geo._http import USER_AGENT, make_session
from qpv_geo.exceptions import DownloadError
from qpv_geo.reference.communes import communes_france
from qpv_geo.reference.install import write_layer_file, write_version
from qpv_geo.reference.layers import (
    LayerInfo,
    clean_geometries,
    installed_dir,
    layer_info,
    read_manifest,
    verify_checksum,
)
from qpv_geo.settings import Settings

#: Name of the installed layer in the manifest, and its file.
LAYER = "communes_contours"
FILE = "communes_contours.geojson"
#: The API Découpage administratif (geo.api.gouv.fr); the base URL can be given (tests, mirror).
GEO_API_URL = "https://geo.api.gouv.fr"
LICENCE = "Licence Ouverte 2.0 (Etalab)"
#: What the outlines are, said wherever they are shown.
PRECISION = ("contours simplifiés (généralisation « communes-5m » d'Etalab, dérivée d'IGN ADMIN "
             "EXPRESS) : fond de carte seulement, jamais lus pour un verdict")
#: Columns of the layer.
FIELDS = ("insee_com", "nom")


def departement_of(insee: str) -> str:
    """The département of an INSEE commune code (« 69123 » → « 69 », « 97411 » → « 974 »)."""
    return insee[:3] if insee.startswith("97") else insee[:2]


def _get_json(session: Any, url: str, *, timeout: float) -> Any:
    """The JSON answer of one request, or a :class:`DownloadError` in French that says what
    failed (status, timeout, unreadable answer)."""
    import requests

    try:
        response = session.get(url, timeout=timeout)
    except requests.Timeout as exc:
        raise DownloadError(f"Le service {url} n'a pas répondu dans le délai ({timeout:g} s).",
                            hint="Réessayez plus tard, ou vérifiez l'accès à internet.") from exc
    except requests.RequestException as exc:
        raise DownloadError(f"Service injoignable : {url}.",
                            hint="Vérifiez l'accès à internet (ou l'adresse donnée avec "
                            "--url).") from exc
    if response.status_code == 404:
        raise DownloadError(f"Le service ne connaît pas cette adresse (404) : {url}.",
                            hint="Vérifiez le code du territoire et l'adresse du service.")
    if response.status_code != 200:
        raise DownloadError(f"Le service a répondu par une erreur {response.status_code} : "
                            f"{url}.", hint="Réessayez plus tard (le service est peut-être "
                            "surchargé ou en maintenance).")
    try:
        return response.json()
    except ValueError as exc:  # a cut or non-JSON answer
        raise DownloadError(f"Réponse illisible (pas du JSON complet) : {url}.",
                            hint="Réessayez plus tard.") from exc


def _features(data: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise DownloadError(f"Réponse inattendue (pas une FeatureCollection GeoJSON) : {url}.",
                            hint="Vérifiez l'adresse du service (--url).")
    return data["features"]


def fetch_outlines(territoire: Any, *, base_url: str = GEO_API_URL,
                   timeout: float = 30.0, session: Any = None
                   ) -> tuple[gpd.GeoDataFrame, list[str], str]:
    """The outlines of the territory's communes (``insee_com``, ``nom``, geometry, WGS84), the
    URLs requested, and the sha256 of the answers (in order). Communes the service does not
    return are simply absent (their count is ``len(territoire.communes)`` minus the result's)."""
    session = session or make_session(USER_AGENT)
    base = base_url.rstrip("/")
    deps = sorted({departement_of(c) for c in territoire.communes}) if not territoire.france \
        else None
    if deps is None:
        deps = sorted({departement_of(c.insee) for c in communes_france().by_insee.values()
                       if c.kind == "C"})
    digest = hashlib.sha256()
    urls, rows = [], []
    for dep in deps:
        url = (f"{base}/departements/{dep}/communes?format=geojson&geometry=contour"
               "&fields=code,nom")
        data = _get_json(session, url, timeout=timeout)
        digest.update(json.dumps(data, sort_keys=True).encode())
        urls.append(url)
        for f in _features(data, url):
            props = f.get("properties") or {}
            code = str(props.get("code") or "")
            if f.get("geometry") is None or not code:
                continue
            if territoire.france or code in territoire.communes:
                rows.append({"insee_com": code, "nom": str(props.get("nom") or code),
                             "geometry": f["geometry"]})
    if not rows:
        raise DownloadError("Le service n'a renvoyé aucun contour pour les communes de "
                            f"{territoire.nom}.", hint="Vérifiez le code du territoire.")
    gdf = gpd.GeoDataFrame.from_features(
        [{"type": "Feature", "properties": {k: r[k] for k in FIELDS}, "geometry": r["geometry"]}
         for r in rows], crs=4326)
    gdf = clean_geometries(gdf[[*FIELDS, "geometry"]], "communes")
    return gdf.reset_index(drop=True), urls, digest.hexdigest()


def install_outlines(territoire: Any, settings: Settings | None = None, *,
                     base_url: str = GEO_API_URL, session: Any = None) -> LayerInfo:
    """Download the outlines of the territory's communes and install them (with those of the
    territories installed before) in one switch. Nothing changes if the download fails."""
    settings = settings or Settings.from_env()
    gdf, urls, answers_sha = fetch_outlines(territoire, base_url=base_url,
                                            timeout=settings.timeout_s, session=session)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    previous_dir = installed_dir(settings)
    manifest = read_manifest(previous_dir)
    old = manifest["layers"].get(LAYER)
    if old is not None:
        before = _read(layer_info(LAYER, old, previous_dir, "installée"))
        gdf = pd.concat([before[~before["insee_com"].isin(gdf["insee_com"])], gdf],
                        ignore_index=True)
    gdf = gpd.GeoDataFrame(gdf.sort_values("insee_com").reset_index(drop=True),
                           geometry="geometry", crs=4326)
    requests_done = [r for r in (old or {}).get("telechargements", [])
                     if r.get("territoire") != territoire.code]
    requests_done.append({"territoire": territoire.code, "nom": territoire.nom, "date": now,
                          "urls": urls, "sha256_reponses": answers_sha,
                          "communes": int(gdf["insee_com"].isin(
                              list(territoire.communes) if not territoire.france
                              else gdf["insee_com"]).sum())})
    def fill(target_dir: Path, manifest: dict[str, Any]) -> None:
        write_layer_file(gdf, target_dir / FILE)
        manifest["layers"][LAYER] = {
            "file": FILE,
            "title": "Contours des communes (fond des cartes des territoires autres que SEM)",
            "source": "API Découpage administratif, " + base_url.rstrip("/")
            + " (contours Etalab « communes-5m », dérivés d'IGN ADMIN EXPRESS)",
            "millesime": f"téléchargé le {now[:10]}", "licence": LICENCE,
            "sha256": sha256_file(target_dir / FILE), "features": len(gdf),
            "crs": "EPSG:4326", "fields": list(FIELDS), "precision": PRECISION,
            "simplified": True, "demo": False, "official": False, "precision_m": None,
            "installed_at": now, "telechargements": requests_done,
        }

    manifest = write_version(settings, fill)
    return layer_info(LAYER, manifest["layers"][LAYER], installed_dir(settings), "installée")


def outlines_info(settings: Settings | None = None) -> LayerInfo | None:
    """The installed outlines layer (without reading it), or None."""
    settings = settings or Settings.from_env()
    inst = installed_dir(settings)
    entry = read_manifest(inst)["layers"].get(LAYER)
    return None if entry is None else layer_info(LAYER, entry, inst, "installée")


def _read(info: LayerInfo) -> gpd.GeoDataFrame:
    verify_checksum(info)
    assert info.path is not None
    gdf = gpd.read_file(info.path)
    gdf["insee_com"] = gdf["insee_com"].astype(str)
    return gdf[[*FIELDS, "geometry"]]


def outlines_of(territoire: Any, settings: Settings | None = None
                ) -> tuple[gpd.GeoDataFrame, LayerInfo] | None:
    """The installed outlines of the territory's communes (checksum verified) and the layer's
    info, or None when none of its communes has an installed outline."""
    info = outlines_info(settings)
    if info is None:
        return None
    gdf = _read(info)
    if not territoire.france:
        gdf = gdf[gdf["insee_com"].isin(territoire.communes)]
    if not len(gdf):
        return None
    return gdf.reset_index(drop=True), info


def install_command(territoire: Any) -> str:
    """The command that installs the outlines of a territory (said on CLI outputs only)."""
    return f"qpv-geo data update --communes --territoire {territoire.code}"


__all__ = ["FILE", "GEO_API_URL", "LAYER", "departement_of", "fetch_outlines",
           "install_command", "install_outlines", "outlines_info", "outlines_of"]
