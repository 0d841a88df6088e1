"""The copilotage committee report: one self-contained HTML file (and optionally a PDF).

Contents: key figures (the QPV × priority cells with an action inside the QPV, served only
within the radius of the « quartier vécu », and the gaps — three separate figures, never one
rate), coverage per priority grouped by the call's axes and per QPV (tables and charts), the
matrix QPV × priority, the gaps per QPV, the rows to review, the maps framed on SEM
(interactive on screen, static PNG in print and PDF) with the sites outside SEM listed apart,
the data versions and notes, and a demonstration mark whenever demo data or demo addresses
are used. Built with jinja2 (autoescape on) from ``templates/rapport.html.j2``.

PDF: WeasyPrint runs no JavaScript, so the PDF variant carries the static maps (matplotlib)
in place of the interactive ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from qpv_geo import __version__
from qpv_geo._files import os_error_message, write_bytes_atomic, write_text_atomic
from qpv_geo._french import heure_paris
from qpv_geo.batch.priorities import AUTRE, PRIORITES, label_of
from qpv_geo.eligibility.engine import STATUSES
from qpv_geo.eligibility.wording import Libelles, libelles
from qpv_geo.exceptions import QpvGeoError
from qpv_geo.reference.layers import get_reference
from qpv_geo.reporting import figures, maps, osm
from qpv_geo.reporting._zones import par_zone
from qpv_geo.reporting.condensed_report import (
    chemin_par_qpv,
    condensation,
    hors_cadre_par_zone,
    write_table_par_qpv,
)
from qpv_geo.reporting.coverage import RAYON_DEFAUT_M, axes_of_call, coverage_from_sites, fold
from qpv_geo.reporting.figures import non_localises, sites_outside_map, zoom_extent

if TYPE_CHECKING:
    import folium

    from qpv_geo.reference.layers import Reference
    from qpv_geo.reporting.coverage import Coverage
    from qpv_geo.settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Statuses whose rows the report lists for review.
A_REVOIR = ("a_verifier", "non_geocode")

_HEAD = re.compile(r"<head>(.*?)</head>", re.S)
_BODY = re.compile(r"<body>(.*?)</body>\s*(.*?)</html>", re.S)
_PAGE_STYLE = re.compile(r"<style>\s*html, body \{[^}]*\}\s*</style>")
_META = re.compile(r"<meta[^>]*>")


def _map_parts(m: folium.Map) -> tuple[str, str]:
    """(head, body) of a rendered folium map, to place several maps in one page."""
    page = m.get_root().render()
    head = _HEAD.search(page)
    body = _BODY.search(page)
    if head is None or body is None:  # pragma: no cover - folium's page layout changed
        raise RuntimeError("unexpected folium page layout")
    head_html = _META.sub("", _PAGE_STYLE.sub("", head.group(1)))
    return head_html, body.group(1) + body.group(2)


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pct(n: int, total: int) -> str:
    """« 18 % » (French spacing); « — » without a total."""
    return f"{100 * n / total:.0f} %" if total else "—"


def _key_figures(sites: pd.DataFrame, coverage: Coverage,
                 mots: Libelles | None = None) -> dict[str, Any]:
    mots = mots or libelles()

    status = sites["status"] if "status" in sites.columns else pd.Series(dtype=object)
    counts = status.value_counts()
    porteurs = {fold(p) for p in sites.get("porteur", pd.Series(dtype=object))} - {""}
    if "action" in sites.columns:
        keys = {(fold(p), fold(a)) for p, a in zip(sites.get("porteur", [""] * len(sites)),
                                                     sites["action"], strict=True) if fold(a)}
        anonymous = int(sum(1 for a in sites["action"] if not fold(a)))
        n_actions = len(keys) + anonymous
    else:
        n_actions = len(sites)
    cells = coverage.cellules()
    q = coverage.par_qpv
    return {
        "sites": len(sites),
        "localises": len(sites) - coverage.sites_non_localises,
        "actions": n_actions,
        "porteurs": len(porteurs),
        "statuts": [{"key": s, "label": mots.statuts[s], "n": int(counts.get(s, 0))}
                    for s in STATUSES if counts.get(s, 0) or s not in _sans_objet(mots)],
        "eligibles": int(counts.get("eligible", 0)),
        "a_revoir": int(sum(int(counts.get(s, 0)) for s in A_REVOIR)),
        "cellules": cells,
        "pct_dans": _pct(cells["dans"], cells["total"]),
        "pct_proximite": _pct(cells["proximite"], cells["total"]),
        "pct_lacunes": _pct(cells["lacunes"], cells["total"]),
        "qpv_total": coverage.qpv_total,
        "qpv_avec_action_dans": int((q["priorites_dans"] > 0).sum()),
        "qpv_sans_action": int((q["priorites_atteintes"] == 0).sum()),
        "qpv_complets": int((q["priorites_dans"] == len(PRIORITES)).sum()),
        "n_priorites": len(PRIORITES),
        "hors_rayon": coverage.sites_hors_rayon,
        "imprecis": coverage.sites_imprecis,
        "priorite_autre": int((sites["priorite"] == AUTRE).sum()) if "priorite" in sites else 0,
    }


def _sans_objet(mots: Libelles) -> tuple[str, ...]:
    """Statuses a territory cannot give, left out of its tables when nobody has them: QVA
    outside SEM (no QVA list elsewhere), « hors territoire » for France."""
    return (() if mots.a_des_qva else ("qva",)) + (("hors_territoire",) if mots.france else ())


def _axes_header() -> list[dict[str, Any]]:
    """Header groups of the matrix: one per axis of the call (colspan = its priorities)."""

    return [{"label": axe if len(keys) > 1 else "", "span": len(keys)}
            for axe, keys in axes_of_call()]


def _priority_groups(coverage: Coverage) -> list[dict[str, Any]]:
    """Per axis of the call, its priorities with the three disjoint counts of QPV."""

    rates = coverage.par_priorite.set_index("priorite")
    groups = []
    for axe, keys in axes_of_call():
        rows = []
        for key in keys:
            r = rates.loc[key]
            total = int(r["qpv_total"])
            rows.append({
                "key": key, "label": label_of(key), "hex": PRIORITES[key].hex,
                "sites": int(r["sites"]), "non_localises": non_localises(coverage, key),
                "actions": int(r["actions"]),
                "porteurs": int(r["porteurs"]), "dans": int(r["qpv_dans"]),
                "proximite": int(r["qpv_proximite"]), "lacunes": int(r["qpv_lacunes"]),
                "total": total, "pct_dans": _pct(int(r["qpv_dans"]), total),
                "pct_proximite": _pct(int(r["qpv_proximite"]), total),
                "pct_lacunes": _pct(int(r["qpv_lacunes"]), total),
                "w_dans": 100 * int(r["qpv_dans"]) / total if total else 0,
                "w_proximite": 100 * int(r["qpv_proximite"]) / total if total else 0,
            })
        groups.append({"axe": axe if len(keys) > 1 else None, "rows": rows})
    return groups


def _matrix_rows(coverage: Coverage, listes: frozenset[str] | None = None
                 ) -> list[dict[str, Any]]:
    """Rows of the matrix QPV × priority (only the QPV in ``listes`` when given)."""

    order = [k for _, keys in axes_of_call() for k in keys]
    m = coverage.matrix.set_index(["code_qp", "priorite"])
    rows = []
    for q in coverage.par_qpv.itertuples(index=False):
        if listes is not None and q.code_qp not in listes:
            continue
        cells = []
        for key in order:
            r = m.loc[(q.code_qp, key)]
            cells.append({"actions": int(r["actions"]), "dans": int(r["sites_dans"]),
                          "proximite": int(r["sites_proximite"]),
                          "actions_dans": int(r["actions_dans"]),
                          "couverture": r["couverture"], "porteurs": r["porteurs_liste"],
                          "label": label_of(key)})
        rows.append({"code_qp": q.code_qp, "lib_qp": q.lib_qp, "lib_com": q.lib_com or "",
                     "cells": cells, "atteintes": q.priorites_atteintes,
                     "dans": q.priorites_dans, "proximite": q.priorites_proximite,
                     "lacunes": q.priorites_lacunes})
    return rows


def _review_rows(sites: pd.DataFrame, mots: Libelles | None = None) -> list[dict[str, str]]:
    statuts = (mots or libelles()).statuts
    if "status" not in sites.columns:
        return []
    mask = sites["status"].isin(A_REVOIR)
    if "priorite" in sites.columns:
        mask |= sites["priorite"] == AUTRE
    out = []
    for _, r in sites[mask].iterrows():
        adresse = r.get("adresse") if "adresse" in sites.columns else r.get("geocodage_label")
        reasons = _text(r.get("motifs"))
        if r.get("priorite") == AUTRE:
            reasons = (reasons + " ; " if reasons else "") + "priorité non reconnue"
        out.append({"ligne": _text(r.get("ligne")), "porteur": _text(r.get("porteur")),
                    "action": _text(r.get("action")), "adresse": _text(adresse),
                    "statut": statuts.get(_text(r.get("status")), _text(r.get("status"))),
                    "status": _text(r.get("status")), "motifs": reasons})
    return out


def _outside_rows(sites: pd.DataFrame, reference: Reference,
                  regroupes: pd.Index | None = None) -> list[dict[str, str]]:
    """Sites the maps framed on the territory do not show: outside it (status or position),
    but for those in ``regroupes`` (counted apart)."""

    statuts = libelles(reference).statuts
    outside = sites_outside_map(sites, reference)
    if "status" in sites.columns:
        extra = sites[sites["status"] == "hors_territoire"]
        outside = pd.concat([outside, extra[~extra.index.isin(outside.index)]])
    if regroupes is not None:
        outside = outside[~outside.index.isin(regroupes)]
    out = []
    for idx, r in outside.sort_index().iterrows():
        adresse = r.get("adresse") if "adresse" in sites.columns else r.get("geocodage_label")
        lon, lat = r.get("lon"), r.get("lat")
        try:
            position = f"{float(lat):.5f}, {float(lon):.5f}"
        except (TypeError, ValueError):
            position = ""
        out.append({"ligne": _text(r.get("ligne")) or str(idx), "porteur": _text(r.get("porteur")),
                    "action": _text(r.get("action")), "adresse": _text(adresse),
                    "position": position if position != "nan, nan" else "",
                    "statut": statuts.get(_text(r.get("status")), _text(r.get("status")))})
    return out


def _gaps_by_qpv(coverage: Coverage) -> list[dict[str, Any]]:
    """Per QPV (most gaps first): the priorities with no action, grouped by axis."""

    axes = axes_of_call()
    out = []
    for r in coverage.lacunes_par_qpv().itertuples(index=False):
        gaps = set(r.lacunes)
        parts = []
        for axe, keys in axes:
            missing = [label_of(k) for k in keys if k in gaps]
            if not missing:
                continue
            if len(keys) > 1:
                whole = f"les {len(keys)} — " if len(missing) == len(keys) else ""
                parts.append(f"{axe} : {whole}{', '.join(missing)}")
            else:
                parts.append(missing[0])
        out.append({"code_qp": r.code_qp, "lib_qp": r.lib_qp, "lib_com": r.lib_com or "",
                    "lacunes": parts, "n": r.n_lacunes, "total": len(PRIORITES),
                    "proximite": [label_of(k) for k in r.proximite]})
    return out


def _data_info(sites: pd.DataFrame, reference: Reference) -> dict[str, Any]:
    layers = [{"name": i.name, "origin": i.origin, "features": i.features,
               "millesime": i.millesime, "precision": i.precision,
               "sha256": (i.sha256 or "")[:16], "source": i.source}
              for i in reference.layers.values()]
    donnees = []
    if "donnees" in sites.columns:
        donnees = sorted({str(d).split(" — ")[0] for d in sites["donnees"].dropna()})
    mismatch = [d for d in donnees if d != reference.version]
    return {"version": reference.version, "layers": layers, "donnees": donnees,
            "mismatch": mismatch, "qpv_geo": __version__}


def report_from_sites(
    sites: pd.DataFrame,
    reference: Reference,
    *,
    rayon_m: float = RAYON_DEFAUT_M,
    tiles: str | None = None,
    static: bool = False,
    title: str | None = None,
    source: str | None = None,
    demo: bool | None = None,
    coverage: Coverage | None = None,
    export_qpv: str | None = None,
) -> str:
    """The committee report as one self-contained HTML page.

    A large territory (more than :data:`qpv_geo.reporting._carto.SEUIL_GRAND_TERRITOIRE` QPV) gets
    the condensed report of :mod:`qpv_geo.reporting.condensed_report`: the matrix lists the QPV some
    action reaches (its red cells are their gaps, not repeated in a second table), the others are
    counted per département, and a sentence says so and names the full per-QPV CSV.

    Parameters
    ----------
    sites
        Validated sites (batch output).
    reference
        Reference layers (the same the sites were judged with).
    rayon_m
        Radius of the "quartier vécu" for the coverage.
    tiles
        Background of the interactive maps (``None``: none, works offline; ``"osm"``).
    static
        Static maps only (PNG), no JavaScript: the variant printed to PDF.
    title, source
        Title (default: :func:`titre_rapport`), and the name of the sites file shown in the
        header.
    demo
        Force the demonstration mark (default: detected from the data and the sites).
    coverage
        A coverage already computed with the same ``rayon_m`` (computed otherwise).
    export_qpv
        Name of the full per-QPV CSV written next to the report (condensed report only).

    Returns
    -------
    str
        The HTML page.
    """
    import jinja2

    mots = libelles(reference)
    title = title or titre_rapport(reference)
    cov = coverage if coverage is not None else coverage_from_sites(sites, reference,
                                                                    rayon_m=rayon_m)
    is_demo = demo if demo is not None else maps.is_demo(sites, reference)
    notes = maps.notes_for(reference, sites, demo=is_demo)
    heads: list[str] = []
    cartes: dict[str, str] = {}
    if not static:
        for name, m in (
            ("sites", maps.map_from_sites(sites, reference, tiles=tiles, demo=is_demo,
                                          rayon_m=cov.rayon_m)),
            ("couverture", maps.coverage_map(cov, reference, tiles=tiles, demo=is_demo, rues=False,
                                             sites=sites)),
        ):
            head, body = _map_parts(m)
            heads.append(head)
            cartes[name] = body

    images = {"sites": _png_uri(maps.static_sites_png(sites, reference, demo=is_demo)),
              "couverture": _png_uri(maps.static_coverage_png(cov, reference, demo=is_demo,
                                                              sites=sites)),
              "par_priorite": _png_uri(figures.figure_png(
                  figures.coverage_by_priority_figure(cov, reference), dpi=120)),
              "par_qpv": _png_uri(figures.figure_png(figures.coverage_by_qpv_figure(cov),
                                                     dpi=120))}

    condense = condensation(cov, reference)
    listes = condense.listes if condense is not None else None
    regroupes, hors_cadre = (hors_cadre_par_zone(sites, reference) if condense is not None
                             else (None, []))
    chiffres = _key_figures(sites, cov, mots)
    revoir = _review_rows(sites, mots)
    chiffres["a_revoir"] = len(revoir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True)
    template = env.get_template("rapport.html.j2")
    page = template.render(
        title=title, source=source, generated=heure_paris(dt.datetime.now(dt.UTC).isoformat()),
        demo=is_demo, notes=notes, rayon=cov.rayon_m, static=static,
        chiffres=chiffres, axes=_axes_header(), groupes=_priority_groups(cov),
        matrix=_matrix_rows(cov, listes), revoir=revoir,
        lacunes=_gaps_by_qpv(cov) if condense is None else [],
        condense=condense, export_qpv=export_qpv,
        hors_carte=_outside_rows(sites, reference, regroupes), hors_cadre=hors_cadre,
        data=_data_info(sites, reference), heads=heads, cartes=cartes, images=images,
        fond=_fond(tiles, static, rues=_rues_dessinees(reference)), mots=mots,
        sous_titre=_sous_titre(mots), projection=_projection(reference),
    )
    return maps.inline_assets(page) if not static else page


#: Default title of the report (SEM's call for projects).
TITRE_RAPPORT = "Cité de l'emploi — couverture des QPV par les actions de l'appel à projets"


def titre_rapport(reference: Reference) -> str:
    """Title of the report for the reference's territory."""
    mots = libelles(reference)
    if mots.france:
        return "Couverture des QPV 2024 par les actions — France"
    return TITRE_RAPPORT if mots.par_defaut else f"{TITRE_RAPPORT} — {mots.nom}"


def _sous_titre(mots: Libelles) -> str:
    """The line under the title, before the date (the committee is SEM's)."""
    return "QPV 2024 — France" if mots.france else \
        mots.mot("sous_titre_rapport", f"{mots.nom} — QPV 2024")


def _projection(reference: Reference) -> str:
    """Where the report's distances are measured: Lambert-93, or each zone's UTM projection."""

    epsgs = sorted({epsg for epsg, _ in par_zone(reference.qpv)})
    if epsgs in ([], [2154]):
        return "Lambert-93"
    if len(epsgs) == 1:
        return f"projection UTM du territoire, EPSG:{epsgs[0]}"
    return "Lambert-93 en métropole, projection UTM de chaque territoire outre-mer"


def _rues_dessinees(reference: Reference) -> bool:
    """True when the maps draw OpenStreetMap streets: some of the territory's QPV are in
    Saint-Étienne, the only place the street layer covers (never on a map of France)."""
    return libelles(reference).rues or zoom_extent(reference) is not None


def _fond(tiles: str | None, static: bool, *, rues: bool = True) -> str:
    """What the maps are drawn on, with the street layer's attribution and extent (only
    when streets are drawn)."""

    if rues:
        rues_txt = (f"rues {osm.ROADS_ATTRIBUTION}, "
                    f"{osm.ROADS_COVERAGE_TEXT.removeprefix('rues : ')}")
    else:
        rues_txt = "sans rues (aucune couche de rues installée pour ce territoire)"
    if static:
        return f"cartes statiques ; {rues_txt}" + (" (zoom sur Saint-Étienne)" if rues else "")
    if maps.tile_url(tiles):
        return f"{maps.tile_url(tiles)} (en ligne)"
    return f"aucun fond en ligne (carte utilisable hors ligne) ; {rues_txt}"


def write_pdf(page: str, path: str | Path) -> Path:
    """Print a static report page to PDF with WeasyPrint (the ``pdf`` extra)."""
    try:
        import weasyprint
    except ImportError as exc:  # pragma: no cover - depends on the installed extras

        raise QpvGeoError("WeasyPrint n'est pas installé : impossible d'écrire le PDF.",
                          hint="pip install 'qpv-geo[pdf]' (et les paquets Pango du système).") \
            from exc

    path = Path(path)
    data = weasyprint.HTML(string=page, base_url=str(TEMPLATES)).write_pdf()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomic(path, data)  # aside, then renamed: never half a PDF
    except OSError as exc:
        raise os_error_message(exc, path) from exc


def report_outputs(output: str | Path, *, pdf: bool = False) -> list[Path]:
    """Every file :func:`write_report` may write for ``output``: the HTML (unless ``output``
    ends in ``.pdf``), the PDF (with ``pdf``), the per-QPV CSV of a large territory."""

    output = Path(output)
    is_pdf = output.suffix.lower() == ".pdf"
    return ([] if is_pdf else [output]) + ([output.with_suffix(".pdf")] if pdf or is_pdf
                                           else []) + [chemin_par_qpv(output)]


def write_report(
    sites: pd.DataFrame,
    output: str | Path,
    *,
    reference: Reference | None = None,
    settings: Settings | None = None,
    rayon_m: float = RAYON_DEFAUT_M,
    tiles: str | None = None,
    pdf: bool = False,
    title: str | None = None,
    source: str | None = None,
    demo: bool | None = None,
    coverage: Coverage | None = None,
) -> dict[str, Path]:
    """Write the report: ``output`` (HTML), and with ``pdf`` the PDF next to it (``coverage``:
    one already computed with the same ``rayon_m``, computed otherwise).

    An ``output`` ending in ``.pdf`` writes the PDF only.

    Returns
    -------
    dict
        ``{"html": path}`` and/or ``{"pdf": path}``; for a large territory also
        ``{"par_qpv": path}``, the full per-QPV table (CSV) the condensed report points to.
    """

    if reference is None:
        reference = get_reference(settings)
    output = Path(output)
    kwargs: dict[str, Any] = {"rayon_m": rayon_m, "source": source, "demo": demo}
    if title:
        kwargs["title"] = title
    cov = coverage if coverage is not None else coverage_from_sites(sites, reference,
                                                                    rayon_m=rayon_m)
    written: dict[str, Path] = {}

    if condensation(cov, reference) is not None:  # a large territory: the full table aside
        written["par_qpv"] = write_table_par_qpv(cov, reference, chemin_par_qpv(output))
        kwargs["export_qpv"] = written["par_qpv"].name
    if output.suffix.lower() != ".pdf":
        page = report_from_sites(sites, reference, tiles=tiles, coverage=cov, **kwargs)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            written["html"] = write_text_atomic(output, page)  # aside, then renamed
        except OSError as exc:
            raise os_error_message(exc, output) from exc
    if pdf or output.suffix.lower() == ".pdf":
        static = report_from_sites(sites, reference, static=True, coverage=cov, **kwargs)
        written["pdf"] = write_pdf(static, output.with_suffix(".pdf"))
    return written


__all__ = ["A_REVOIR", "TITRE_RAPPORT", "report_from_sites", "report_outputs", "titre_rapport",
           "write_pdf", "write_report"]
