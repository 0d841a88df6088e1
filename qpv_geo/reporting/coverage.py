"""Coverage of the QPV by the call's priorities: which quartiers each priority reaches.

From validated sites (the output of :mod:`qpv_geo.batch`: one row per site with ``lon``,
``lat``, ``status``, ``priorite``, ``porteur``, ``action``), :func:`coverage_from_sites`
builds, for every QPV of SEM and every priority of the call:

* the sites **inside** the QPV (the point lies in the perimeter, edge included);
* the sites **serving** it ("quartier vécu"): outside the perimeter but within ``rayon_m``
  metres of it — counted apart, never mixed with the sites inside;
* the number of distinct actions (porteur + action) and of porteurs reaching it either way.

A *gap* is a QPV × priority pair reached by no action, neither inside nor within the radius.
The figures keep the two relations apart: the QPV × priority cells with an action **inside**,
the cells served **only within the radius** (« quartier vécu »), and the gaps partition the
cells (:meth:`Coverage.cellules`); no rate adds the first two.
A site located only to its commune or lieu-dit (``geocodage_precision`` ``municipality`` or
``locality``: its point is the centre of the commune, not the place) is counted nowhere in the
matrix — neither inside a QPV nor « à moins de 300 m » — but apart
(:attr:`Coverage.sites_imprecis`): a relation needs a place known at least to the street.
Distances are computed in Lambert-93 (EPSG:2154; overseas, in the territory's UTM zone, see
:mod:`qpv_geo.reporting._zones`) from ``lon``/``lat`` against the QPV
polygons of the reference given: the count does not depend on the verdict columns, so a site
« à vérifier » near an edge counts where its point is (the report lists those rows apart).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpv_geo.batch.priorities import AUTRE, PRIORITES, label_of, normalize_priorite
from qpv_geo.batch.table import is_duplicate, is_outside_table
from qpv_geo.eligibility.projections import ZONES
from qpv_geo.reporting._zones import par_zone

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference

#: Default radius (m) of the "quartier vécu": a site this close to a QPV serves it.
RAYON_DEFAUT_M = 300.0

#: Geocoding precisions that do not place a site (the commune's or lieu-dit's centre).
PRECISIONS_IMPRECISES = frozenset({"municipality", "locality"})

#: Columns of :attr:`Coverage.matrix` (public API: tested).
MATRIX_COLUMNS = (
    "code_qp", "lib_qp", "priorite", "priorite_label", "sites_dans", "sites_proximite",
    "actions_dans", "actions", "porteurs", "porteurs_liste", "couverture",
)
#: Columns of :attr:`Coverage.par_priorite`.
PAR_PRIORITE_COLUMNS = (
    "priorite", "priorite_label", "axe", "sites", "sites_localises", "actions", "porteurs",
    "qpv_dans", "qpv_proximite", "qpv_lacunes", "qpv_atteints", "qpv_total", "taux_dans",
    "taux_proximite", "taux_lacunes",
)
#: Columns of :attr:`Coverage.par_qpv`.
PAR_QPV_COLUMNS = (
    "code_qp", "lib_qp", "lib_com", "sites_dans", "sites_proximite", "actions", "porteurs",
    "priorites_dans", "priorites_proximite", "priorites_lacunes", "priorites_atteintes",
    "priorites_manquantes",
)

#: Axes of the call, in its order: (key of ``Priorite.axe``, label as the call words it).
#: « Lever les freins » groups four priorities; the other axes hold one priority each.
AXES: tuple[tuple[str, str], ...] = (
    ("Lever les freins", "Lever les freins au retour à l'emploi"),
    ("Entreprises", "Rapprocher le monde de l'entreprise des QPV"),
    ("Confiance en soi", "Lutter contre l'autocensure, favoriser la confiance en soi"),
    ("Aller vers", "Identifier et capter des publics « hors radars »"),
    ("Communication", "Améliorer la communication des actions"),
)


def axes_of_call() -> list[tuple[str, list[str]]]:
    """The call's axes in order: ``[(axis label, [priority keys]), …]`` (every priority once)."""
    out: list[tuple[str, list[str]]] = []
    labels = dict(AXES)
    order = [a for a, _ in AXES] + [p.axe for p in PRIORITES.values() if p.axe not in labels]
    for axe in dict.fromkeys(order):
        keys = [k for k, p in PRIORITES.items() if p.axe == axe]
        if keys:
            out.append((labels.get(axe, axe), keys))
    return out


@dataclass
class Coverage:
    """QPV × priority coverage of a set of validated sites.

    Attributes
    ----------
    matrix
        One row per QPV × priority (every QPV of the reference × every priority of the call,
        plus ``autre`` when some rows have no recognised priority): see :data:`MATRIX_COLUMNS`.
        ``couverture`` is ``dans`` (an action has a site inside), ``proximite`` (only sites
        within the radius) or ``aucune`` (a gap).
    gaps
        The rows of ``matrix`` with ``couverture == "aucune"``, call priorities only.
    par_priorite
        Per priority of the call: sites, actions, porteurs; the QPV with an action inside
        (``qpv_dans``, ``taux_dans``), those served only within the radius (``qpv_proximite``,
        ``taux_proximite``) and the gaps (``qpv_lacunes``, ``taux_lacunes``) — three disjoint
        counts that add up to ``qpv_total``; ``qpv_atteints`` = inside or within the radius.
    par_qpv
        Per QPV: sites inside / nearby, actions, porteurs, number of call priorities with an
        action inside, served only nearby, with no action (and inside or nearby), and the
        labels of the priorities missing.
    liens
        One row per (site, QPV) within the radius: ``index`` (row label of the site in the
        input), ``code_qp``, ``distance_m`` (0 inside), ``relation`` (``dans``/``proximite``).
    rayon_m
        The radius used.
    sites_non_localises
        Rows without usable coordinates (not counted anywhere in the matrix).
    sites_hors_rayon
        Located rows farther than the radius from every QPV.
    sites_imprecis
        Rows located only to their commune or lieu-dit (:data:`PRECISIONS_IMPRECISES`): not
        counted in the matrix, neither inside nor nearby.
    """

    matrix: pd.DataFrame
    gaps: pd.DataFrame
    par_priorite: pd.DataFrame
    par_qpv: pd.DataFrame
    liens: pd.DataFrame
    rayon_m: float
    sites_non_localises: int
    sites_hors_rayon: int
    qpv_total: int
    sites_imprecis: int = 0

    def cellules(self) -> dict[str, int]:
        """The QPV × priority cells of the call: ``total``, ``dans``, ``proximite``, ``lacunes``.

        ``dans`` (an action inside the QPV), ``proximite`` (served only within the radius) and
        ``lacunes`` (no action) are disjoint and add up to ``total``.
        """
        call = self.matrix[self.matrix["priorite"] != AUTRE]["couverture"]
        return {"total": len(call), "dans": int((call == "dans").sum()),
                "proximite": int((call == "proximite").sum()),
                "lacunes": int((call == "aucune").sum())}

    def lacunes_par_qpv(self) -> pd.DataFrame:
        """One row per QPV: ``code_qp``, ``lib_qp``, ``lib_com``, ``lacunes`` (keys of the
        priorities with no action, in the call's order), ``proximite`` (keys served only within
        the radius), ``n_lacunes``; QPV with the most gaps first."""
        call = self.matrix[self.matrix["priorite"] != AUTRE]
        order = {k: i for i, k in enumerate(PRIORITES)}
        communes = dict(zip(self.par_qpv["code_qp"], self.par_qpv["lib_com"], strict=True))
        rows = []
        for (code, lib), g in call.groupby(["code_qp", "lib_qp"], sort=True):
            gap = sorted(g.loc[g["couverture"] == "aucune", "priorite"], key=order.get)
            near = sorted(g.loc[g["couverture"] == "proximite", "priorite"], key=order.get)
            rows.append({"code_qp": code, "lib_qp": lib, "lib_com": communes.get(code),
                         "lacunes": gap, "proximite": near, "n_lacunes": len(gap)})
        out = pd.DataFrame(rows, columns=["code_qp", "lib_qp", "lib_com", "lacunes",
                                          "proximite", "n_lacunes"])
        return out.sort_values(["n_lacunes", "code_qp"], ascending=[False, True],
                               kind="stable").reset_index(drop=True)

    def pivot(self, value: str = "actions") -> pd.DataFrame:
        """Wide table: one row per QPV (``code_qp``, ``lib_qp``), one column per priority key."""
        if value not in self.matrix.columns:
            raise KeyError(f"unknown column {value!r}; choose one of {list(self.matrix.columns)}")
        wide = self.matrix.pivot(index=["code_qp", "lib_qp"], columns="priorite", values=value)
        keys = [k for k in [*PRIORITES, AUTRE] if k in wide.columns]
        wide = wide[keys]
        wide.columns.name = None
        return wide


def fold(text: object) -> str:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = unicodedata.normalize("NFKD", str(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = re.sub(r"\s+", " ", s.lower()).strip()
    return "" if s in {"nan", "none", "-"} else s


def _clean_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    s = re.sub(r"\s+", " ", str(value)).strip()
    return "" if s.lower() in {"nan", "none"} else s


def _priority_keys(values: pd.Series) -> np.ndarray:
    known = {*PRIORITES, AUTRE}
    return np.array([v if v in known else normalize_priorite(v) for v in values], dtype=object)


def site_links(sites: pd.DataFrame, qpv: pd.DataFrame, *, rayon_m: float) -> pd.DataFrame:
    """(site, QPV) pairs within ``rayon_m`` metres, distances in Lambert-93.

    Parameters
    ----------
    sites
        Frame with ``lon`` and ``lat`` (WGS84 degrees); rows without both are skipped.
    qpv
        GeoDataFrame of QPV polygons (any CRS) with ``code_qp``.
    rayon_m
        Radius in metres (0: inside only).

    Returns
    -------
    pandas.DataFrame
        Columns ``index`` (row label in ``sites``), ``code_qp``, ``distance_m`` (0 when the
        point is inside or on the edge), ``relation`` (``dans`` or ``proximite``); one row per
        pair, the shortest distance kept when a QPV has several polygons.
    """
    import geopandas as gpd
    import shapely

    if rayon_m < 0:
        raise ValueError("rayon_m must be >= 0")
    cols = ["index", "code_qp", "distance_m", "relation"]
    lon = pd.to_numeric(sites.get("lon"), errors="coerce") if "lon" in sites else None
    lat = pd.to_numeric(sites.get("lat"), errors="coerce") if "lat" in sites else None
    if lon is None or lat is None or len(qpv) == 0:
        return pd.DataFrame(columns=cols)
    ok = (lon.notna() & lat.notna()).to_numpy()
    if not ok.any():
        return pd.DataFrame(columns=cols)

    lon_ok, lat_ok = lon[ok].to_numpy(), lat[ok].to_numpy()
    labels_ok = np.asarray(sites.index)[ok]
    codes = np.asarray(qpv["code_qp"], dtype=object)
    groups = list(par_zone(qpv))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for epsg, mask in groups:
        # each zone in its own metric projection (Lambert-93 alone in metropolitan France)
        if len(groups) == 1:
            near = np.ones(len(lon_ok), dtype=bool)
        else:
            zone = next(z for z in ZONES if z.epsg == epsg)
            near = zone.contient(lon_ok, lat_ok)
            if not near.any():
                continue
        pts = gpd.GeoSeries(gpd.points_from_xy(lon_ok[near], lat_ok[near]),
                            crs=4326).to_crs(epsg).values
        polys = gpd.GeoSeries(qpv.geometry.values[mask], crs=qpv.crs).to_crs(epsg).values
        tree = shapely.STRtree(polys)
        pi, qi = tree.query(pts, predicate="dwithin", distance=float(rayon_m))
        if len(pi) == 0:
            continue
        inside = shapely.intersects(pts[pi], polys[qi])
        dist = np.where(inside, 0.0, shapely.distance(pts[pi], polys[qi]))
        found.append((labels_ok[near][pi], codes[mask][qi], dist))
    if not found:
        return pd.DataFrame(columns=cols)
    links = pd.DataFrame({
        "index": np.concatenate([f[0] for f in found]),
        "code_qp": np.concatenate([f[1] for f in found]),
        "distance_m": np.round(np.concatenate([f[2] for f in found]), 1),
    })
    links = (links.sort_values(["index", "code_qp", "distance_m"])
             .drop_duplicates(["index", "code_qp"]).reset_index(drop=True))
    links["relation"] = np.where(links["distance_m"] <= 0, "dans", "proximite")
    return links[cols]


def coverage_from_sites(
    sites: pd.DataFrame,
    reference: Reference,
    *,
    rayon_m: float = RAYON_DEFAUT_M,
    statuts: Iterable[str] | None = None,
) -> Coverage:
    """QPV × priority coverage of validated sites.

    Parameters
    ----------
    sites
        Validated sites (batch output): ``lon``, ``lat``, ``priorite`` (key of
        :data:`~qpv_geo.batch.priorities.PRIORITES`, ``autre``, or free text, normalised here),
        ``porteur`` and ``action`` (optional; without ``action`` every row is its own action).
    reference
        Reference layers; its ``qpv`` layer gives the quartiers counted.
    rayon_m
        Radius (m) of the "quartier vécu": a site outside a QPV but this close serves it.
    statuts
        Keep only the rows with these ``status`` values (default: every located row).
        Rows outside the table (a total, a note) are never counted, and a row that repeats a
        site (« doublon de la ligne … », :mod:`qpv_geo.batch.table`) counts once.

    Returns
    -------
    Coverage
    """
    # a total or a note under the table is no site; a site given twice counts once
    drop = is_outside_table(sites) | is_duplicate(sites)
    frame = sites[~drop] if drop.any() else sites
    if statuts is not None:
        if "status" not in frame.columns:
            raise ValueError("statuts given but the sites have no 'status' column")
        frame = frame[frame["status"].isin(list(statuts))]
    n = len(frame)
    prio = _priority_keys(frame["priorite"]) if "priorite" in frame else np.full(n, AUTRE, object)
    porteur = (np.array([_clean_text(v) for v in frame["porteur"]], dtype=object)
               if "porteur" in frame else np.full(n, "", object))
    porteur_key = np.array([fold(v) for v in porteur], dtype=object)
    if "action" in frame:
        action_txt = np.array([fold(v) for v in frame["action"]], dtype=object)
    else:
        action_txt = np.full(n, "", object)
    row_ids = np.array([f"\x00ligne {i}" for i in range(n)], dtype=object)
    action_key = np.where(action_txt != "", porteur_key + "\x1f" + action_txt, row_ids)
    attrs = pd.DataFrame({"priorite": prio, "porteur": porteur, "porteur_key": porteur_key,
                          "action_key": action_key}, index=frame.index)

    qpv = reference.qpv.sort_values("code_qp").reset_index(drop=True)
    codes = list(dict.fromkeys(qpv["code_qp"]))
    names = dict(zip(qpv["code_qp"], qpv["lib_qp"], strict=True))
    communes = dict(zip(qpv["code_qp"], qpv["lib_com"], strict=True))
    lon = pd.to_numeric(frame["lon"], errors="coerce") if "lon" in frame else pd.Series(
        np.nan, index=frame.index)
    lat = pd.to_numeric(frame["lat"], errors="coerce") if "lat" in frame else pd.Series(
        np.nan, index=frame.index)
    located = (lon.notna() & lat.notna()).to_numpy()
    non_localises = int((~located).sum())
    # a point at the commune's (or lieu-dit's) centre is not the place: no relation to a QPV
    imprecis = located & (frame["geocodage_precision"].isin(list(PRECISIONS_IMPRECISES))
                          .to_numpy() if "geocodage_precision" in frame else False)
    links = site_links(frame[~imprecis] if imprecis.any() else frame, qpv, rayon_m=rayon_m)
    joined = links.join(attrs, on="index")
    placed = located & ~imprecis
    hors_rayon = int(placed.sum() - links["index"].nunique()) if len(links) else int(
        placed.sum())

    prio_keys = list(PRIORITES)
    if (attrs["priorite"] == AUTRE).any():
        prio_keys.append(AUTRE)

    rows = []
    groups = {key: g for key, g in joined.groupby(["code_qp", "priorite"], sort=False)}
    for code in codes:
        for key in prio_keys:
            g = groups.get((code, key))
            if g is None:
                g = joined.iloc[0:0]
            dans = g[g["relation"] == "dans"]
            prox = g[g["relation"] == "proximite"]
            porteurs = sorted({p for p, k in zip(g["porteur"], g["porteur_key"], strict=True)
                               if k}, key=fold)
            # One name per folded key (first spelling met).
            seen: dict[str, str] = {}
            for p in porteurs:
                seen.setdefault(fold(p), p)
            actions_dans = dans["action_key"].nunique()
            actions = g["action_key"].nunique()
            rows.append({
                "code_qp": code, "lib_qp": names[code], "priorite": key,
                "priorite_label": label_of(key), "sites_dans": len(dans),
                "sites_proximite": len(prox), "actions_dans": actions_dans, "actions": actions,
                "porteurs": len(seen), "porteurs_liste": " ; ".join(seen.values()),
                "couverture": "dans" if actions_dans else ("proximite" if actions else "aucune"),
            })
    matrix = pd.DataFrame(rows, columns=list(MATRIX_COLUMNS))
    for col in ("sites_dans", "sites_proximite", "actions_dans", "actions", "porteurs"):
        matrix[col] = matrix[col].astype("int64")

    call = matrix[matrix["priorite"] != AUTRE]
    gaps = call[call["couverture"] == "aucune"][
        ["code_qp", "lib_qp", "priorite", "priorite_label"]].reset_index(drop=True)

    total = len(codes)
    par_p = []
    for key in PRIORITES:
        sel = attrs["priorite"] == key
        m = call[call["priorite"] == key]
        dans = int((m["actions_dans"] > 0).sum())
        atteints = int((m["actions"] > 0).sum())
        par_p.append({
            "priorite": key, "priorite_label": label_of(key), "axe": PRIORITES[key].axe,
            "sites": int(sel.sum()),
            "sites_localises": int((sel.to_numpy() & located).sum()),
            "actions": int(attrs.loc[sel, "action_key"].nunique()),
            "porteurs": int(attrs.loc[sel & (attrs["porteur_key"] != ""),
                                      "porteur_key"].nunique()),
            "qpv_dans": dans, "qpv_proximite": atteints - dans,
            "qpv_lacunes": total - atteints, "qpv_atteints": atteints, "qpv_total": total,
            "taux_dans": dans / total if total else 0.0,
            "taux_proximite": (atteints - dans) / total if total else 0.0,
            "taux_lacunes": (total - atteints) / total if total else 0.0,
        })
    par_priorite = pd.DataFrame(par_p, columns=list(PAR_PRIORITE_COLUMNS))

    par_q = []
    for code in codes:
        g = joined[joined["code_qp"] == code]
        m = call[call["code_qp"] == code]
        missing = [label_of(k) for k in m.loc[m["actions"] == 0, "priorite"]]
        par_q.append({
            "code_qp": code, "lib_qp": names[code], "lib_com": communes.get(code),
            "sites_dans": int((g["relation"] == "dans").sum()),
            "sites_proximite": int((g["relation"] == "proximite").sum()),
            "actions": int(g["action_key"].nunique()),
            "porteurs": int(g.loc[g["porteur_key"] != "", "porteur_key"].nunique()),
            "priorites_dans": int((m["actions_dans"] > 0).sum()),
            "priorites_proximite": int(((m["actions"] > 0) & (m["actions_dans"] == 0)).sum()),
            "priorites_lacunes": int((m["actions"] == 0).sum()),
            "priorites_atteintes": int((m["actions"] > 0).sum()),
            "priorites_manquantes": " ; ".join(missing),
        })
    par_qpv = pd.DataFrame(par_q, columns=list(PAR_QPV_COLUMNS))

    return Coverage(matrix=matrix, gaps=gaps, par_priorite=par_priorite, par_qpv=par_qpv,
                    liens=links, rayon_m=float(rayon_m), sites_non_localises=non_localises,
                    sites_hors_rayon=hors_rayon, qpv_total=total,
                    sites_imprecis=int(imprecis.sum()))


__all__ = [
    "AXES",
    "MATRIX_COLUMNS",
    "PAR_PRIORITE_COLUMNS",
    "PAR_QPV_COLUMNS",
    "PRECISIONS_IMPRECISES",
    "RAYON_DEFAUT_M",
    "Coverage",
    "axes_of_call",
    "coverage_from_sites",
    "site_links",
]
