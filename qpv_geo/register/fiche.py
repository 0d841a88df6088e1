"""The dated instruction sheet of one site (HTML and PDF): place, computed verdict and its
reasons, a static map of the nearby perimeters and the point, data versions, the decision
and its reason, the dossier's criteria and the site's history.

It is an evidence sheet for the dossier, not an official attestation, and it says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from qpv_geo import __version__
from qpv_geo._files import atomic_path, check_output_path, os_error_message
from qpv_geo._french import heure_paris
from qpv_geo.eligibility.engine import Engine, format_distance
from qpv_geo.eligibility.projections import epsg_metrique
from qpv_geo.eligibility.wording import (
    libelles,
    precision_libelle,
    reference_from_settings,
    source_libelle,
)
from qpv_geo.exceptions import InputFileError, QpvGeoError
from qpv_geo.register.store import DECISIONS, Registre
from qpv_geo.reporting import osm

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Half-width (m) of the map around the point.
RAYON_CARTE_M = 400.0
AVERTISSEMENT = ("Fiche de preuve pour le dossier d'instruction : elle retrace ce que qpv-geo a "
                 "calculé et ce que l'instructeur a décidé. Ce n'est pas une attestation "
                 "officielle d'éligibilité.")


def map_png(lon: float | None, lat: float | None, reference: Reference, *,
            marge_m: float | None) -> bytes | None:
    """A static map (PNG) of the perimeters around the point, the point and its margin."""
    if lon is None or lat is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import geopandas as gpd
    import matplotlib.pyplot as plt
    from shapely.geometry import Point, box

    mots = libelles(reference)
    epsg = epsg_metrique((lon, lat))  # Lambert-93 in metropolitan France, UTM overseas
    pt = gpd.GeoSeries([Point(lon, lat)], crs=4326).to_crs(epsg).iloc[0]
    r = RAYON_CARTE_M
    window = box(pt.x - r, pt.y - r, pt.x + r, pt.y + r)
    fig, ax = plt.subplots(figsize=(6.2, 6.2), dpi=110)
    try:
        # the street layer (Saint-Étienne) is in Lambert-93: none overseas
        streets = _draw_streets(ax, window, pt) if epsg == 2154 else "pas de rues ici"
        # SEM's communes, else the simplified outlines installed for the territory
        background = reference.background_communes is not None and not len(reference.communes)
        communes = (reference.background_communes if background
                    else reference.communes).to_crs(epsg)
        communes = communes[communes.intersects(window)]
        if len(communes):
            communes.boundary.plot(ax=ax, color="#9a9a9a", linewidth=0.8, linestyle="--",
                                   label="limites communales (simplifiées)" if background
                                   else "limites communales")
        if streets.startswith("rues ©"):  # drawn: in the legend like every drawn thing
            ax.plot([], [], color="#8c8c8c", linewidth=1.2, label="rues (OpenStreetMap)")
        for layer, face, edge, label in (
                (reference.qpv, "#2e7d32", "#1b5e20", mots.qpv_court),
                (reference.qva, "#ef6c00", "#e65100", "QVA (non éligible)"),
                (reference.qpv_hors_sem, "#6d4c41", "#4e342e", mots.qpv_autres_court)):
            if len(layer) == 0:
                continue
            if len(layer) > 200:  # the national layer: only what is near the point
                layer = layer.cx[lon - 0.05:lon + 0.05, lat - 0.05:lat + 0.05]
                if len(layer) == 0:
                    continue
            zones = layer.to_crs(epsg)
            zones = zones[zones.intersects(window)]
            if len(zones) == 0:
                continue
            zones.plot(ax=ax, color=face, alpha=0.18)
            zones.boundary.plot(ax=ax, color=edge, linewidth=1.6, label=label)
            for _, z in zones.iterrows():
                c = z.geometry.intersection(window).representative_point()
                ax.annotate(z["code_qp"], (c.x, c.y), fontsize=8, color=edge, ha="center")
        if marge_m:
            gpd.GeoSeries([pt.buffer(marge_m)]).boundary.plot(ax=ax, color="#c62828",
                                                              linewidth=0.8, linestyle=":",
                                                              zorder=9)
        # the point above everything, street names included: never covered
        ax.plot([pt.x], [pt.y], marker="o", linestyle="", color="#c62828", markersize=7,
                zorder=10, markeredgecolor="white", markeredgewidth=1.2,
                label=f"site (cercle : marge {marge_m:g} m)" if marge_m else "site")
        ax.set_xlim(pt.x - r, pt.x + r)
        ax.set_ylim(pt.y - r, pt.y + r)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.plot([pt.x - r + 20, pt.x - r + 220], [pt.y - r + 25] * 2, color="black", lw=2)
        ax.text(pt.x - r + 120, pt.y - r + 35, "200 m", ha="center", fontsize=8)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
        projection = "Lambert-93" if epsg == 2154 else f"UTM (EPSG:{epsg})"
        if not len(reference.communes) and reference.background_communes is None \
                and not mots.france:  # said, not left blank
            streets += " ; contours des communes non installés pour ce territoire"
        import textwrap  # a long caption wrapped over the map's width, not wider than it

        ax.set_title(textwrap.fill(f"{projection} ; " + streets, 100), fontsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


#: Room (m) kept free of street names around the point on the sheet's map.
DEGAGEMENT_POINT_M = 18.0


def _draw_streets(ax: Any, window: Any, point: Any) -> str:
    """OpenStreetMap streets of the window (Saint-Étienne only) with a few names, none on the
    ``point`` (Lambert-93); returns the caption (attribution, or where the layer stops —
    and where to see the streets then)."""

    try:
        (x0, y0, x1, y1) = window.bounds
        lon, lat = Engine.l93_to_lonlat([x0, x1], [y0, y1])
        bbox = (float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat)))
        if not osm.covers(bbox):
            return (osm.ROADS_COVERAGE_TEXT + " (aucune ici : voir le lieu et ses rues sur "
                    "sig.ville.gouv.fr)")
        roads = osm.roads_in_bbox(bbox).to_crs(2154)
    except (QpvGeoError, OSError, ValueError):
        return "rues indisponibles"
    if len(roads) == 0:
        return osm.ROADS_ATTRIBUTION
    for classe, width in ((2, 0.6), (1, 1.2), (0, 1.8)):
        part = roads[roads["classe"] == classe]
        if len(part):
            part.plot(ax=ax, color="#8c8c8c", linewidth=width, zorder=1)
    named = roads[roads["name"].notna()].copy()
    named["len"] = named.length
    shown: set[str] = set()
    for _, r in named.sort_values("len", ascending=False).iterrows():
        if r["name"] in shown or len(shown) >= 8 or r["len"] < 60:
            continue
        at = label_spot(r.geometry, str(r["name"]), point)
        if at is None:
            continue
        shown.add(r["name"])
        ax.annotate(r["name"], (at.x, at.y), fontsize=6, color="#3a3a3a", ha="center",
                    va="center", style="italic", zorder=3)
    return "rues " + osm.ROADS_ATTRIBUTION


def label_spot(line: Any, name: str, point: Any) -> Any:
    """Where along ``line`` a street name (6 pt, on a map of ±400 m) does not cover the
    point: the middle, else a quarter from either end; None when nowhere."""
    half_w = len(name) * 3.3 + DEGAGEMENT_POINT_M  # ≈ 6.5 m a character at this scale
    half_h = 7.0 + DEGAGEMENT_POINT_M
    for t in (0.5, 0.25, 0.75, 0.1, 0.9):
        at = line.interpolate(t, normalized=True)
        if abs(at.x - point.x) >= half_w or abs(at.y - point.y) >= half_h:
            return at
    return None


def _reference(registre: Registre) -> Reference:
    # the territory's reference: the one the register's verdicts are judged with
    return reference_from_settings(registre.settings)


def fiche_html(registre: Registre, site_id: str, *, reference: Reference | None = None,
               now: dt.datetime | None = None, lot: str | None = None,
               dossier: str | None = None) -> str:
    """The sheet of ``site_id`` (of ``lot`` and ``dossier`` when other lots or dossiers
    have a site of that id) as a self-contained HTML page (map embedded); times in Paris
    time, zone shown."""
    site = registre.site(site_id, lot=lot, dossier=dossier)
    reference = reference or _reference(registre)
    v = site.verdict
    png = map_png(v["lon"], v["lat"], reference, marge_m=v["marge_m"])
    current_shas = {k: info.sha256 for k, info in reference.layers.items()}
    same_data = current_shas == v["donnees_sha256"]
    dossier = next((d for d in registre.dossiers() if d.dossier == site.dossier
                    and d.lot == site.lot), None)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["heure_paris"] = heure_paris
    env.filters["precision"] = precision_libelle  # words, not codes (qpv_geo.eligibility.wording)
    env.filters["source"] = source_libelle
    now = now or dt.datetime.now(dt.UTC)
    return env.get_template("fiche_instruction.html.j2").render(
        site=site, v=v, decision=site.decision, decisions=DECISIONS,
        distance=format_distance(v["distance_bord_m"]), dossier=dossier,
        valeurs=registre.observation_values(site_id, lot=site.lot, dossier=site.dossier),
        historique=registre.historique(site_id, lot=site.lot, dossier=site.dossier),
        carte=("data:image/png;base64," + base64.b64encode(png).decode()) if png else None,
        same_data=same_data, carte_donnees=reference.version, notes=reference.notes,
        legende_carte=_legende_carte(v["lon"], v["lat"], reference),
        avertissement=AVERTISSEMENT, date=heure_paris(now.isoformat()),
        outil=__version__)


#: The map's caption for SEM (its streets: Saint-Étienne).
LEGENDE_CARTE_SEM = ("Périmètres, rues et point en Lambert-93, carte produite hors ligne (rues "
                     "OpenStreetMap de Saint-Étienne seulement ; © les contributeurs "
                     "d'OpenStreetMap, ODbL).")


def _legende_carte(lon: float | None, lat: float | None, reference: Reference) -> str:
    """What the map is drawn in; elsewhere than SEM, the streets' credit only where streets
    can be drawn (the layer covers Saint-Étienne)."""

    if libelles(reference).rues:  # the street layer serves the whole territory
        return LEGENDE_CARTE_SEM
    if lon is None or lat is None:
        return ""
    if epsg_metrique((lon, lat)) != 2154:
        return (f"Périmètres et point en UTM (EPSG:{epsg_metrique((lon, lat))}), carte "
                "produite hors ligne (sans rues).")
    try:  # the map's window: ± RAYON_CARTE_M around the point
        here = osm.covers((lon - 0.006, lat - 0.004, lon + 0.006, lat + 0.004))
    except (QpvGeoError, OSError):
        here = False
    if not here:
        return "Périmètres et point en Lambert-93, carte produite hors ligne (sans rues ici)."
    return LEGENDE_CARTE_SEM


def write_fiche(registre: Registre, site_id: str, output: str | Path, *,
                reference: Reference | None = None, lot: str | None = None,
                dossier: str | None = None) -> Path:
    """Write the sheet to ``output``: ``.html`` or ``.pdf`` (WeasyPrint)."""
    output = check_output_path(output, [registre.path])
    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise InputFileError(f"Format de fiche non pris en charge : « {output.suffix} ».",
                             hint="Choisissez un fichier .html ou .pdf.")
    page = fiche_html(registre, site_id, reference=reference, lot=lot, dossier=dossier)
    try:
        with atomic_path(output) as tmp:
            if suffix == ".pdf":
                try:
                    import weasyprint
                except ImportError as exc:  # pragma: no cover - depends on the extras
                    raise QpvGeoError("WeasyPrint n'est pas installé : impossible d'écrire le "
                                      "PDF.", hint="pip install 'qpv-geo[pdf]' (et les paquets "
                                      "Pango du système), ou demandez la fiche en .html.") \
                        from exc
                weasyprint.HTML(string=page, base_url=str(TEMPLATES)).write_pdf(tmp)
            else:
                tmp.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise os_error_message(exc, output) from exc
    return output


def fiche_pdf_bytes(registre: Registre, site_id: str, *,
                    reference: Reference | None = None, lot: str | None = None,
                    dossier: str | None = None) -> bytes:
    """The sheet as PDF bytes (for the web)."""
    import weasyprint

    page = fiche_html(registre, site_id, reference=reference, lot=lot, dossier=dossier)
    return weasyprint.HTML(string=page, base_url=str(TEMPLATES)).write_pdf()




__all__ = ["AVERTISSEMENT", "fiche_html", "fiche_pdf_bytes", "map_png", "write_fiche"]
