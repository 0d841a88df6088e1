"""Eligibility verdicts, vectorised: is a point in a QPV of the territory (SEM by default), and
how sure are we?

A point gets one status (:data:`STATUSES`):

``eligible``         inside a QPV 2024 of SEM, farther than the margin from its edge;
``qva``              inside a quartier de veille active: not eligible;
``hors_qpv``         in SEM, in no QPV and no QVA;
``hors_territoire``  clearly outside SEM's 53 communes, or in a QPV of another EPCI;
``a_verifier``       within the margin of an edge where the verdict would change, or the
                     geocoding is not precise enough (street, commune, low score);
``non_geocode``      no usable point (missing, impossible or swapped coordinates).

How it works (metric work in Lambert-93, EPSG:2154, for SEM; for any other territory or
``france``, in a :class:`~qpv_geo.eligibility.projections.PlanMetrique` of every zone holding QPV —
Lambert-93 in metropolitan France, each overseas territory in its official UTM zone, shifted far
apart — so that the same geometry serves the 247 overseas QPV with true distances;
``x_l93``/``y_l93`` are only written where the plane is Lambert-93):

* the perimeters of each kind (QPV of SEM, QVA, QPV of other EPCI) are dissolved, so that two
  adjacent QPV do not create a false edge, and cut into *parts* (connected pieces);
* every part's boundary is a set of segments; a regular grid stores, for each cell, the parts
  that can matter to a point of the cell (lower/upper distance bounds from the cell centre);
* for each (point, candidate part) pair, one vectorised pass over the part's segments gives the
  exact distance to the edge and the inside/outside parity (crossing number): a signed distance;
* statuses follow from the signed distances; the margin decides « à vérifier » whenever moving
  the point by less than the margin across an edge would change the status.
* all of France (1,600 QPV, no commune outline): a sparse grid of the parts' boxes gives the
  candidates, and the distances are computed only where they can matter (the nearest QPV best
  box first); the dissolved parts are kept in the cache folder (``cache_dir``).

There is no per-point Python loop, and no distance from every point to every edge: the
loops are over parts (a few dozen) and chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import qpv_geo.eligibility._coordinate_checks as _coordonnees
from qpv_geo._french import de
from qpv_geo.eligibility import street_rule as _voies
from qpv_geo.eligibility._geometry import K_AUTRE as _K_AUTRE
from qpv_geo.eligibility._geometry import K_QPV as _K_QPV
from qpv_geo.eligibility._geometry import K_QVA as _K_QVA
from qpv_geo.eligibility._geometry import OUTSIDE_BOX_M as _OUTSIDE_BOX_M
from qpv_geo.eligibility._geometry import best as _best
from qpv_geo.eligibility._geometry import parts_from_zones as _parts_from_zones
from qpv_geo.eligibility._geometry import signed_distance as _signed_distance
from qpv_geo.eligibility._geometry import signed_distance_few as _signed_distance_few
from qpv_geo.eligibility._grid import Grille as _Grille
from qpv_geo.eligibility._grid import GrilleCreuse as _GrilleCreuse
from qpv_geo.eligibility._grid import (
    build_grid,
    build_sparse_grid,
    grid_candidates,
    sparse_candidates,
)
from qpv_geo.eligibility._single_point import classify_un_point, verdict_un_point
from qpv_geo.eligibility.margins import (
    INCERTITUDE_COORDONNEES_M,
    INCERTITUDE_TYPE_INCONNU_M,
    INCERTITUDE_TYPE_POSITION,
    geocoded_rows,
    incertitudes,
)
from qpv_geo.eligibility.projections import METROPOLE, ZONES, PlanMetrique, zone_du_departement
from qpv_geo.eligibility.verdict import Verdict as Verdict
from qpv_geo.eligibility.verdict_table import (
    A_VERIFIER,
    BAD_REASONS,
    NON_GEOCODE,
    SHORT,
    STATUS_KIND,
    STATUS_LABELS,
    STATUSES,
    T_IN,
    T_LIMIT,
    T_OUT,
    Classification,
    decide,
    distance_retenue,
    perimetre_retenu,
    verdict_frame,
)
from qpv_geo.eligibility.verdict_table import format_distance as format_distance
from qpv_geo.exceptions import CoordinateError
from qpv_geo.reference.countries import COLLECTIVITES, collectivite_du_point
from qpv_geo.reference.layers import PRECISION_PERIMETRE_DEFAUT_M
from qpv_geo.reference.profiles import profil
from qpv_geo.reference.territories import nom_communes
from qpv_geo.settings import SIREN_SEM

if TYPE_CHECKING:
    from qpv_geo.geocoding import GeocodeResult
    from qpv_geo.reference.layers import Reference

#: Columns of :meth:`Engine.judge_lonlat` (public API: tested).
VERDICT_COLUMNS = (
    "status", "eligible", "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m",
    "marge_m", "marge_motif", "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m",
    "candidat_autre_cote",
    "motifs", "donnees", "lon", "lat", "x_l93", "y_l93",
)

_FEW_PAIRS = 64  # up to this many pairs, one pass over all their segments
_GRID_MIN_POINTS = 512  # below this, candidates come from part bounding boxes (no grid build)
_MANY_PARTS = 256  # beyond this many parts (national layer), candidates come from a tree




class Engine:
    """Eligibility engine over one :class:`~qpv_geo.reference.layers.Reference`.

    Build it once (``Engine(reference)`` or :func:`get_engine`), then judge one point
    (:meth:`judge_point`) or arrays of points (:meth:`judge_lonlat`, :meth:`judge_xy`).
    """

    def __init__(self, reference: Reference, *, marge_m: float | None = None,
                 rayon_recherche_m: float = 3000.0, tolerance_territoire_m: float = 150.0,
                 score_min: float = 0.6,
                 precision_point_m: float = INCERTITUDE_COORDONNEES_M,
                 cache_dir: Path | None = None) -> None:
        if (marge_m is not None and marge_m < 0) or rayon_recherche_m <= 0 \
                or tolerance_territoire_m < 0 or precision_point_m < 0:
            raise ValueError("marge, rayon, tolerance and precision must be positive")
        self.reference = reference
        #: The margin forced for every point (``--marge``), or None: each point's own margin.
        self.marge_m = None if marge_m is None else float(marge_m)
        self.precision_point_m = float(precision_point_m)
        self.rayon_m = float(rayon_recherche_m)
        self.tolerance_m = float(tolerance_territoire_m)
        self.score_min = float(score_min)
        frames = [reference.qpv.assign(_kind=_K_QPV), reference.qva.assign(_kind=_K_QVA),
                  reference.qpv_hors_sem.assign(_kind=_K_AUTRE)]
        zones = pd.concat([f for f in frames if len(f)], ignore_index=True)
        territoire = getattr(reference, "territoire", None)
        #: What sets the territory apart (:mod:`qpv_geo.reference.profiles`; None: SEM's).
        self.profil = profil(territoire)
        #: The metric plane: plain Lambert-93 where the profile says so (SEM); elsewhere (or
        #: ``france``), every zone holding QPV (metropolitan France in Lambert-93, each overseas
        #: territory in its UTM zone, see :mod:`qpv_geo.eligibility.projections`).
        self.plan = PlanMetrique() if self.profil.lambert93 else PlanMetrique(ZONES)
        assert self.plan.zones[0] is METROPOLE  # Lambert-93 x/y are plane x/y as they are
        self.zones = self._gdf_vers_plan(zones.set_geometry("geometry"))
        self._zone_kind = self.zones["_kind"].to_numpy(np.int8)
        # (``cache_dir``: the dissolved perimeters kept on disk, keyed by what they come from)
        self.parts = _parts_from_zones(self.zones, self._zone_kind, cache_dir=cache_dir)
        self._part_single = np.array([len(m) == 1 for m in self.parts.members], dtype=bool)
        self._part_first = np.array([m[0] for m in self.parts.members], dtype=np.int32)
        # Edge precision (m) of each part: the least precise of its perimeters.
        prec = self.zones["precision_m"].to_numpy(np.float64) if "precision_m" in \
            self.zones.columns else np.full(len(self.zones), PRECISION_PERIMETRE_DEFAUT_M)
        prec = np.where(np.isfinite(prec), prec, PRECISION_PERIMETRE_DEFAUT_M)
        self._part_prec = np.array([prec[m].max() for m in self.parts.members], dtype=np.float64)
        qpv_prec = self._part_prec[self.parts.kind == _K_QPV]
        self._prec_defaut = float(qpv_prec.max()) if len(qpv_prec) else \
            PRECISION_PERIMETRE_DEFAUT_M
        #: The coarsest edge precision (the single-point path's reach).
        self._part_prec_max = float(self._part_prec.max()) if len(self._part_prec) else 0.0
        # The largest margin the grid serves (larger ones take the direct path).
        self._marge_grille = self.marge_m if self.marge_m is not None else (
            max(self.precision_point_m, INCERTITUDE_TYPE_INCONNU_M,
                *INCERTITUDE_TYPE_POSITION.values())
            + (float(self._part_prec.max()) if len(self._part_prec) else 0.0))
        #: The territory's names in the reasons (its profile's).
        self.nom_territoire = self.profil.nom
        self.sigle_territoire = self.profil.sigle
        self.texte_hors_territoire = self.profil.mot("en_dehors",
                                                     "en dehors " + de(self.profil.nom))
        #: Commune outlines installed: the territory of a point is read on them; without them
        #: (territories other than SEM) only the commune code of an address decides it.
        self.contours = len(reference.communes) > 0
        self.france = self.profil.france
        communes = self._gdf_vers_plan(reference.communes)
        self.communes = communes.reset_index(drop=True)
        self._commune_geoms = self.communes.geometry.values
        self._commune_tree = shapely.STRtree(self._commune_geoms)
        self._sem = shapely.union_all(self._commune_geoms)
        shapely.prepare(self._sem)
        self._sem_grown = shapely.buffer(self._sem, self.tolerance_m + 2.0)
        shapely.prepare(self._sem_grown)
        self._sem_codes = set(self.communes["insee_com"].astype(str))
        # Communes that hold (part of) a QPV of SEM: by the official field, and by geometry
        # because the commune outlines are coarse.
        with_qpv = {c.strip() for v in reference.qpv["insee_com"].dropna() for c in v.split(",")}
        qpv_parts = self.parts.geoms[self.parts.kind == _K_QPV]
        if len(qpv_parts):
            hit = self._commune_tree.query(qpv_parts, predicate="intersects")[1]
            with_qpv |= set(self.communes["insee_com"].astype(str).to_numpy()[hit])
        self._communes_with_qpv = with_qpv
        self._names: dict[str, str] | None = dict(zip(
            self.communes["insee_com"].astype(str), self.communes["nom"], strict=True))
        self._names_of: Any = None
        if not self.contours and territoire is not None:
            self._sem_codes = territoire.communes
            self._names, self._names_of = None, territoire  # read on first use
        if not self.contours:  # no outlines: the area is that of the perimeters
            self._sem = shapely.box(*self.parts.bounds.min(axis=0)[:2],
                                    *self.parts.bounds.max(axis=0)[2:]) \
                if len(self.parts.bounds) else shapely.box(0, 0, 1, 1)
        xmin, ymin, xmax, ymax = shapely.bounds(self._sem)
        pad = self.rayon_m + self._marge_grille
        # The grid covers SEM and its surroundings; farther points (a QPV of another EPCI
        # kilometres away) take the direct path.
        self._grid_area = (xmin - pad, ymin - pad, xmax + pad, ymax + pad)
        if len(self.parts.bounds):
            pb = self.parts.bounds
            xmin, ymin = min(xmin, pb[:, 0].min()), min(ymin, pb[:, 1].min())
            xmax, ymax = max(xmax, pb[:, 2].max()), max(ymax, pb[:, 3].max())
        self._core = (xmin, ymin, xmax, ymax)
        # Zones of the plane outside the territory (its points are « hors territoire »), with
        # a last True entry for index -1; None when every point is judged by its place alone.
        self._hors_zones: np.ndarray | None = None
        #: Overseas collectivities of a zone the territory is in but has no commune in (an
        #: EPCI of Guadeloupe: Martinique, Saint-Martin, Saint-Barthélemy share its zone).
        self._collectivites_hors: frozenset[str] = frozenset()
        if not self.plan.lambert93 and territoire is not None and not self.france:
            mine = {zone_du_departement(c[:3]) for c in territoire.communes}
            self._hors_zones = np.array([z not in mine for z in self.plan.zones] + [True])

            deps = {c[:3] for c in territoire.communes}
            self._collectivites_hors = frozenset(
                k for k in COLLECTIVITES if k not in deps
                and zone_du_departement(k) in mine)
        #: Bare coordinates are placed in France by the country outlines (approximate) where
        #: no commune outline says it: every territory but SEM (qpv_geo.reference.countries).
        self.pays = not self.contours
        self._grid: _Grille | None = None
        self._box_tree: shapely.STRtree | None = None
        #: Many parts and no commune outline (all of France): candidates from a sparse grid of
        #: the parts' boxes, distances only where they can matter (see _pair_distances).
        self._creuse = not self.contours and len(self.parts.kind) > _MANY_PARTS
        self._grille_creuse: _GrilleCreuse | None = None
        self._members_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: Skip the (point, part) pairs that cannot be the nearest QPV (see _pair_distances).
        self._prune_nearest = True
        #: Zone and commune names for the verdict table (index -1 reads the last entry, None).
        self._tables = (
            np.append(self.zones["code_qp"].to_numpy(object), None),
            np.append(self.zones["lib_qp"].to_numpy(object), None),
            np.append(self.zones["siren_epci"].to_numpy(object), None),
            np.append(self._zone_kind, -1),
            np.append(self.communes["insee_com"].astype(str).to_numpy(object), None),
            np.append(self.communes["nom"].to_numpy(object), None),
        )

    @property
    def _commune_names(self) -> dict[str, str]:
        """INSEE code → name of the territory's communes (without outlines, read from the
        list of French communes the first time a commune code needs its name)."""
        if self._names is None:
            self._names = nom_communes(self._names_of)
        return self._names

    # ------------------------------------------------------------------ inputs
    def _gdf_vers_plan(self, gdf: Any) -> Any:
        """A GeoDataFrame (any CRS) in the engine's plane, each geometry in the zone of its
        representative point (plain Lambert-93 for SEM)."""
        if self.plan.lambert93:
            return gdf.to_crs(2154)
        wgs = gdf.to_crs(4326)
        geoms = wgs.geometry.values
        rep = shapely.point_on_surface(geoms) if len(geoms) else geoms
        plane = self.plan.geometries_vers_plan(geoms, shapely.get_x(rep), shapely.get_y(rep)) \
            if len(geoms) else np.zeros(0, dtype=object)
        return gpd.GeoDataFrame(wgs.drop(columns=wgs.geometry.name),
                                geometry=gpd.GeoSeries(plane, index=wgs.index), crs=None)

    def lonlat_to_plan(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat → x/y in the engine's plane (Lambert-93 for SEM; NaN outside every
        zone of the plane)."""
        if self.plan.lambert93:
            return _coordonnees.lonlat_to_l93(lon, lat)
        return self.plan.vers_plan(lon, lat)

    def plan_to_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """x/y in the engine's plane → WGS84 lon/lat."""
        if self.plan.lambert93:
            return _coordonnees.l93_to_lonlat(x, y)
        return self.plan.vers_lonlat(x, y)

    def l93_of_plan(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Plane x/y as Lambert-93 where they are (metropolitan France), NaN elsewhere: the
        shifted coordinates of an overseas zone are never Lambert-93."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.plan.lambert93:
            return x, y
        l93 = self.plan.zone_xy(x) == 0
        return np.where(l93, x, np.nan), np.where(l93, y, np.nan)

    def check_lonlat_zones(self, lon: Any, lat: Any) -> np.ndarray:
        """Reason code (0 = usable) of each lon/lat pair for this engine: in metropolitan
        France for SEM (:meth:`check_lonlat`), in any zone of the plane otherwise."""
        return _coordonnees.check_lonlat_plan(lon, lat, self.plan)

    @staticmethod
    def lonlat_to_l93(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat → Lambert-93 x/y (arrays)."""
        return _coordonnees.lonlat_to_l93(lon, lat)

    @staticmethod
    def l93_to_lonlat(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lambert-93 x/y → WGS84 lon/lat (arrays)."""
        return _coordonnees.l93_to_lonlat(x, y)

    @staticmethod
    def check_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Reason code (0 = usable) for each lon/lat pair; see the module's reasons."""
        return _coordonnees.check_lonlat(lon, lat)

    @staticmethod
    def check_xy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Reason code (0 = usable) for each Lambert-93 x/y pair."""
        return _coordonnees.check_xy(x, y)

    # ------------------------------------------------------------------ grid
    def _build_grid(self) -> _Grille:
        return build_grid(self)

    def _candidates(self, x: np.ndarray, y: np.ndarray, *, slack: float,
                    marge: float | np.ndarray, with_s: bool = False) -> Any:
        """(point, part) pairs that can matter to a point within ``slack`` of (x, y).

        A part matters if it may contain the point, if its edge may be within the margin
        (``marge``: one bound, or one per point, covering every part's precision), or if it may
        be the nearest QPV of SEM within the search radius. With slack 0 this uses exact
        distances; with slack h (half cell diagonal) it is a superset for the whole cell.
        ``with_s``: also return the exact signed distance of each pair kept.
        """
        parts = self.parts
        n, npart = len(x), len(parts.kind)
        if n == 0 or npart == 0:
            empty = np.zeros(0, np.int64)
            return (empty, empty, np.zeros(0)) if with_s else (empty, empty)
        marge = np.broadcast_to(np.asarray(marge, dtype=np.float64), (n,))
        # Bounding-box prefilter: parts whose box is within radius + slack.
        reach = self.rayon_m + float(marge.max()) + slack
        b = parts.bounds
        if npart > _MANY_PARTS:  # national layer: a tree of the parts' boxes
            if self._box_tree is None:
                self._box_tree = shapely.STRtree(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
            pi, pj = self._box_tree.query(shapely.points(x, y), predicate="dwithin",
                                          distance=reach)
            order = np.lexsort((pj, pi))
            pi, pj = pi[order].astype(np.int64), pj[order].astype(np.int64)
        elif n * npart <= 1 << 20:  # few points: one (point, part) matrix
            pi, pj = np.nonzero((x[:, None] >= b[:, 0] - reach) & (x[:, None] <= b[:, 2] + reach)
                                & (y[:, None] >= b[:, 1] - reach)
                                & (y[:, None] <= b[:, 3] + reach))
        else:
            pi_list, pj_list = [], []
            for j in range(npart):
                close = np.flatnonzero((x >= b[j, 0] - reach) & (x <= b[j, 2] + reach)
                                       & (y >= b[j, 1] - reach) & (y <= b[j, 3] + reach))
                pi_list.append(close)
                pj_list.append(np.full(len(close), j, dtype=np.int64))
            pi = np.concatenate(pi_list)
            pj = np.concatenate(pj_list)
        if len(pi) == 0:
            return (pi, pj, np.zeros(0)) if with_s else (pi, pj)
        # A few pairs (one point): one pass over their segments; else by part and chunk.
        few = len(pi) <= _FEW_PAIRS
        s = (_signed_distance_few if few else _signed_distance)(parts, x[pi], y[pi], pj)
        d = np.abs(s)
        keep = (s > -slack) | (d - slack <= marge[pi])
        # The nearest QPV of SEM: keep those whose lower bound beats the best upper bound.
        is_qpv = parts.kind[pj] == _K_QPV
        upper = np.full(n, np.inf)
        np.minimum.at(upper, pi[is_qpv], d[is_qpv] + slack)
        keep |= is_qpv & (d - slack <= np.minimum(upper[pi], self.rayon_m))
        return (pi[keep], pj[keep], s[keep]) if with_s else (pi[keep], pj[keep])

    # ------------------------------------------------------------------ core
    def classify_xy(self, x: Any, y: Any, *, bad: np.ndarray | None = None,
                    incertitude_m: Any = None) -> Classification:
        """Full verdict (QPV, QVA, territory, edge margin) for points of the engine's plane
        (Lambert-93 for SEM, see :meth:`lonlat_to_plan`), as arrays.

        ``incertitude_m``: position uncertainty of each point (m; one number or one per point),
        default :attr:`precision_point_m`. The margin of a (point, perimeter) pair is the
        forced :attr:`marge_m`, or that uncertainty plus the perimeter's edge precision.
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        n = len(x)
        if bad is None:  # plane x/y: Lambert-93 for SEM, else in a zone of the plane
            bad = self.check_xy(x, y) if self.plan.lambert93 else np.where(
                np.isnan(x) | np.isnan(y), 1, np.where(self.plan.zone_xy(x) >= 0, 0, 7)
            ).astype(np.int8)
        usable = bad == 0
        xs = np.where(usable, x, np.nan)
        ys = np.where(usable, y, np.nan)
        parts = self.parts
        incert = np.array(np.broadcast_to(np.asarray(
            self.precision_point_m if incertitude_m is None else incertitude_m,
            dtype=np.float64), (n,)))
        incert = np.where(np.isfinite(incert) & (incert >= 0), incert, self.precision_point_m)
        if n == 1 and usable[0]:  # one point (an address on the web page): its own geometry
            one = classify_un_point(self, float(xs[0]), float(ys[0]), float(incert[0]))
            if one is not None:
                return one
        prec_max = float(self._part_prec.max()) if len(self._part_prec) else 0.0
        # The largest margin a point can get from any part (its search reach).
        reach = np.full(n, self.marge_m) if self.marge_m is not None else incert + prec_max
        pad = self.rayon_m + (float(reach[usable].max()) if usable.any() else 0.0)
        ax0, ay0, ax1, ay1 = self._core
        in_area = usable & (xs >= ax0 - pad) & (xs <= ax1 + pad) & (ys >= ay0 - pad) \
            & (ys <= ay1 + pad)
        idx_area = np.flatnonzero(in_area)
        commune = np.full(n, -1, dtype=np.int32)
        territory = np.full(n, T_OUT, dtype=np.int8)
        grille = n >= _GRID_MIN_POINTS and self.contours
        if grille:
            gx0, gy0, gx1, gy1 = self._grid_area
            in_grid = (xs[idx_area] >= gx0) & (xs[idx_area] <= gx1) & (ys[idx_area] >= gy0) \
                & (ys[idx_area] <= gy1)
            # Points whose margin exceeds the grid's take the direct path.
            in_grid &= reach[idx_area] <= self._marge_grille
            idx_grid, idx_far = idx_area[in_grid], idx_area[~in_grid]
            gi, gj, cgrid = grid_candidates(self, xs[idx_grid], ys[idx_grid])
            fi, fj = self._candidates(xs[idx_far], ys[idx_far], slack=0.0,
                                      marge=reach[idx_far])
            pi = np.concatenate([idx_grid[gi], idx_far[fi]])
            pj = np.concatenate([gj, fj])
            commune[idx_grid] = cgrid
            gx0, gy0, gx1, gy1 = self._grid_area
            beyond = (xs[idx_far] < gx0) | (xs[idx_far] > gx1) | (ys[idx_far] < gy0) \
                | (ys[idx_far] > gy1)
            commune[idx_far[beyond]] = -2  # beyond the search radius around SEM: clearly out
        elif self._creuse:
            # Points whose margin exceeds the grid's take the direct path.
            in_grid = reach[idx_area] <= self._marge_grille
            idx_grid, idx_far = idx_area[in_grid], idx_area[~in_grid]
            if self._grille_creuse is None:
                self._grille_creuse = build_sparse_grid(self.parts.bounds,
                                                        self.rayon_m + self._marge_grille)
            gi, gj = sparse_candidates(self._grille_creuse, xs[idx_grid], ys[idx_grid])
            fi, fj = self._candidates(xs[idx_far], ys[idx_far], slack=0.0,
                                      marge=reach[idx_far])
            pi = np.concatenate([idx_grid[gi], idx_far[fi]])
            pj = np.concatenate([gj, fj])
        else:
            # Few points: every candidate pair's exact distance is already computed.
            pi, pj, s_known = self._candidates(xs[idx_area], ys[idx_area], slack=0.0,
                                               marge=reach[idx_area], with_s=True)
            pi = idx_area[pi]
            commune[idx_area] = -1
        # The margin of a pair: forced, or the point's uncertainty + the part's edge precision.
        m = np.full(len(pi), self.marge_m) if self.marge_m is not None else \
            incert[pi] + self._part_prec[pj]
        s = self._pair_distances(xs, ys, pi, pj, m) if grille or self._creuse else s_known
        kind = parts.kind[pj]

        # Territory: cells inside one commune are settled by the grid; others exactly.
        known = commune >= 0
        territory[known] = T_IN
        # (no outline: nothing to look up, every usable point is in the territory below)
        todo = np.flatnonzero(in_area & (commune == -1)) if self.contours else idx_area[:0]
        if len(todo):
            pts = shapely.points(xs[todo], ys[todo])
            hit_p, hit_c = self._commune_tree.query(pts, predicate="intersects")
            first = np.full(len(todo), -1, dtype=np.int32)
            # lowest commune index wins on a shared edge (deterministic)
            order = np.lexsort((hit_c, hit_p))
            hp, hc = hit_p[order], hit_c[order]
            firsts = np.r_[True, hp[1:] != hp[:-1]] if len(hp) else np.zeros(0, bool)
            first[hp[firsts]] = hc[firsts]
            commune[todo] = first
            territory[todo[first >= 0]] = T_IN
            rest = todo[first < 0]
            if len(rest):
                close = shapely.dwithin(self._sem, pts[first < 0], self.tolerance_m)
                territory[rest[close]] = T_LIMIT
        commune[commune < 0] = -1
        if not self.contours:  # no outline: no point is placed out of the territory by its place
            territory[usable] = T_IN
        if self._hors_zones is not None:  # ... except in a part of France it has no commune in
            territory[usable & self._hors_zones[self.plan.zone_xy(xs)]] = T_OUT
        if self._collectivites_hors and usable.any():  # ... or another island of its zone

            idx = np.flatnonzero(usable & (territory != T_OUT))
            lo, la = self.plan.vers_lonlat(xs[idx], ys[idx])
            coll = collectivite_du_point(lo, la)
            territory[idx[np.isin(coll.astype(str), list(self._collectivites_hors))]] = T_OUT

        # Per kind: inside (any part with s > 0), sure (s > margin), maybe (s > -margin).
        flags = {}
        for k in (_K_QPV, _K_QVA, _K_AUTRE):
            sel = kind == k
            inside = np.zeros(n, bool)
            inside[pi[sel & (s > 0)]] = True
            sure = np.zeros(n, bool)
            sure[pi[sel & (s > m)]] = True
            maybe = np.zeros(n, bool)
            maybe[pi[sel & (s > -m)]] = True
            flags[k] = (inside, maybe & ~sure)
        status, alt = decide(flags[_K_QPV][0], flags[_K_QVA][0], flags[_K_AUTRE][0],
                             flags[_K_QPV][1], flags[_K_QVA][1], flags[_K_AUTRE][1],
                             territory != T_OUT)
        uncertain = alt >= 0

        # The part that gives the status (deepest containing part of the status's kind).
        status_kind = STATUS_KIND[status]
        own = (s > 0) & (kind == status_kind[pi])
        zone_pair = _best(np.flatnonzero(own), pi, pj, s, n)
        # The edge that makes it uncertain: nearest part edge within the margin.
        edge_pair = _best(np.flatnonzero(np.abs(s) <= m), pi, pj, -np.abs(s), n)
        # Nearest QPV of SEM outside (within the search radius).
        near_pair = _best(np.flatnonzero((kind == _K_QPV) & (s <= 0) & (-s <= self.rayon_m)),
                          pi, pj, s, n)
        # Pair index -1 (none) reads a sentinel: part -1, distance NaN.
        pj_none, s_none = np.append(pj, -1), np.append(s, np.nan)
        zone_part, edge_part, near_part = (pj_none[k] for k in (zone_pair, edge_pair, near_pair))
        zone_s, edge_s, near_s = (s_none[k] for k in (zone_pair, edge_pair, near_pair))

        status[uncertain] = A_VERIFIER
        status[~usable] = NON_GEOCODE
        alt[~usable] = -1

        # The margin each point is judged with: that of the edge that makes it uncertain, else
        # of its own perimeter, else of the nearest QPV, else the QPV layer's precision.
        prec_none = np.append(self._part_prec, np.nan)
        perim = perimetre_retenu(prec_none[edge_part], prec_none[zone_part], prec_none[near_part],
                                 self._prec_defaut)
        marge = np.full(n, self.marge_m) if self.marge_m is not None else incert + perim
        marge = np.where(usable, marge, np.nan)

        zone, zone2 = self._part_to_zone(zone_part, xs, ys)
        near_zone, _ = self._part_to_zone(near_part, xs, ys, nearest=True)
        edge_zone, _ = self._part_to_zone(edge_part, xs, ys, nearest=True)
        dist = distance_retenue(zone, zone_s, uncertain, edge_s, near_part, near_s)
        near_dist = -near_s
        edge_zone = np.where(uncertain, edge_zone, -1)
        return Classification(
            x=x, y=y, status=status, zone=zone, zone2=zone2, dist=dist, near_zone=near_zone,
            near_dist=near_dist, edge_zone=edge_zone, alt_status=alt, commune=commune,
            territory=territory, bad=bad, marge=marge, perimetre=np.where(usable, perim, np.nan),
            incertitude=np.where(usable, incert, np.nan),
        )

    def _pair_distances(self, x: np.ndarray, y: np.ndarray, pi: np.ndarray, pj: np.ndarray,
                        m: np.ndarray) -> np.ndarray:
        """Signed distance of each (point, part) pair that can matter, NaN for the others.

        A pair whose part's bounding box is farther than the pair's margin cannot hold the point
        nor bring an edge within the margin: it only competes for the nearest QPV of SEM. Those
        are computed best-first (smallest box distance), and skipped once the box distance is
        beyond the nearest edge already found — a lower bound cannot beat it, so the nearest QPV
        and every other field are the same as with every pair computed.
        """
        parts = self.parts
        b = parts.bounds[pj]
        px, py = x[pi], y[pi]
        lb = np.hypot(np.maximum(np.maximum(b[:, 0] - px, px - b[:, 2]), 0.0),
                      np.maximum(np.maximum(b[:, 1] - py, py - b[:, 3]), 0.0))
        need = lb <= m
        s = np.full(len(pi), np.nan)
        s[need] = _signed_distance(parts, px[need], py[need], pj[need])
        if not self._prune_nearest:
            rest = np.flatnonzero(~need)
            s[rest] = _signed_distance(parts, px[rest], py[rest], pj[rest])
            return s
        n = len(x)
        is_qpv = parts.kind[pj] == _K_QPV
        best = np.full(n, self.rayon_m)  # nothing beyond the search radius is reported
        done = need & is_qpv & (s <= 0)
        np.minimum.at(best, pi[done], -s[done])
        # (best never exceeds the radius: boxes beyond it are never computed)
        rest = np.flatnonzero(~need & is_qpv & (lb <= self.rayon_m))
        rest = rest[np.lexsort((pj[rest], lb[rest], pi[rest]))]  # per point, best box first
        while len(rest):
            rest = rest[lb[rest] <= best[pi[rest]]]
            if not len(rest):
                break
            first = np.r_[True, pi[rest][1:] != pi[rest][:-1]]
            now = rest[first]
            # clearly outside the box: outside the part, no crossing to count
            far = lb[now] >= _OUTSIDE_BOX_M
            s[now[far]] = _signed_distance(parts, px[now[far]], py[now[far]], pj[now[far]],
                                           outside=True)
            near = now[~far]
            s[near] = _signed_distance(parts, px[near], py[near], pj[near])
            np.minimum.at(best, pi[now], -s[now])
            rest = rest[~first]
        return s

    def _part_to_zone(self, part: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                      nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Original zone(s) for points in (or near) a dissolved part."""
        zone = np.full(len(part), -1, dtype=np.int32)
        zone2 = np.full(len(part), -1, dtype=np.int32)
        has = part >= 0
        single, first = self._part_single, self._part_first
        if not has.any():
            return zone, zone2
        simple = has & single[np.where(has, part, 0)]
        zone[simple] = first[part[simple]]
        multi = np.flatnonzero(has & ~simple)
        if len(multi) == 0:
            return zone, zone2
        # Parts made of several originals (adjacent or overlapping QPV): one pass per part.
        for p in np.unique(part[multi]):
            pts_idx = multi[part[multi] == p]
            members = self.parts.members[p]
            geoms, edges = self._members_of(p)
            px, py = x[pts_idx], y[pts_idx]
            # (point, member) grid: inside flag, and the key of each member: the distance to
            # its edge when inside (else -inf), or minus the distance to it (0 inside) —
            # each distance computed only where it counts.
            inside = shapely.contains_xy(geoms[None, :], px[:, None], py[:, None])
            if nearest:
                key = np.full(inside.shape, -0.0)
                ri, mi = np.nonzero(~inside)
                key[ri, mi] = -shapely.distance(geoms[mi], shapely.points(px[ri], py[ri]))
            else:
                key = np.full(inside.shape, -np.inf)
                ri, mi = np.nonzero(inside)
                key[ri, mi] = shapely.distance(edges[mi], shapely.points(px[ri], py[ri]))
            order = np.argsort(-key, axis=1, kind="stable")
            zone[pts_idx] = members[order[:, 0]]
            if not nearest and len(members) > 1:
                second = order[:, 1]
                ok = inside[np.arange(len(pts_idx)), second]
                zone2[pts_idx[ok]] = members[second[ok]]
        return zone, zone2

    def _members_of(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """The original perimeters of a part made of several (prepared) and their edges,
        computed once."""
        got = self._members_cache.get(p)
        if got is None:
            geoms = np.asarray(self.zones.geometry.values[self.parts.members[p]], dtype=object)
            geoms = shapely.from_wkb(shapely.to_wkb(geoms))  # own copies, then prepared
            shapely.prepare(geoms)
            got = self._members_cache[p] = (geoms, shapely.boundary(geoms))
        return got

    # ------------------------------------------------------------------ outputs
    def judge_xy(self, x: Any, y: Any, *, citycodes: Sequence[str | None] | None = None,
                 geocodes: Sequence[GeocodeResult | None] | None = None,
                 precision_point_m: Any = None) -> pd.DataFrame:
        """Verdicts for Lambert-93 points, one row per point (columns :data:`VERDICT_COLUMNS`).

        ``precision_point_m``: position uncertainty (m) of the points (one number, or one per
        point, NaN where not stated), default :attr:`precision_point_m`.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        bad = self.check_xy(x, y)
        lon, lat = self.l93_to_lonlat(np.where(bad == 0, x, np.nan), np.where(bad == 0, y, np.nan))
        return self._judge(x, y, bad, lon, lat, citycodes, geocodes, precision_point_m,
                           degres=False)

    def judge_lonlat(self, lon: Any, lat: Any, *, citycodes: Sequence[str | None] | None = None,
                     geocodes: Sequence[GeocodeResult | None] | None = None,
                     precision_point_m: Any = None, arrondi_m: Any = None,
                     columns: bool = False) -> Any:
        """Verdicts for WGS84 points, one row per point (columns :data:`VERDICT_COLUMNS`).

        ``geocodes`` (same length) adds the geocoding fields, gives each point its position
        uncertainty (BAN ``type_position``, geocoding precision) and turns imprecise geocoding
        into « à vérifier »; ``citycodes`` (INSEE, from the geocoder) name the commune;
        ``precision_point_m`` as in :meth:`judge_xy`. The uncertainty of given coordinates is
        never less than their decimals allow: ``arrondi_m`` (per point, NaN where unknown)
        when the text they were read from is known (« 45.40 » keeps its two decimals), else
        from the numbers themselves. ``columns=True``: the columns as a dict of arrays when
        no row needs the table (:func:`~qpv_geo.eligibility.verdict_table.verdict_frame`).
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        bad = self.check_lonlat_zones(lon, lat)
        x, y = self.lonlat_to_plan(np.where(bad == 0, lon, np.nan),
                                   np.where(bad == 0, lat, np.nan))
        return self._judge(x, y, bad, lon, lat, citycodes, geocodes, precision_point_m,
                           arrondi_m=arrondi_m, columns=columns)

    def _judge(self, x: np.ndarray, y: np.ndarray, bad: np.ndarray, lon: np.ndarray,
               lat: np.ndarray, citycodes: Sequence[str | None] | None,
               geocodes: Sequence[GeocodeResult | None] | None,
               precision_point_m: Any, *, degres: bool = True,
               arrondi_m: Any = None, columns: bool = False) -> Any:
        # degrees given (not Lambert-93 converted): no finer than their decimals
        incert, mots = incertitudes(len(x), geocodes, precision_point_m,
                                    defaut=self.precision_point_m,
                                    lon=lon if degres else None, lat=lat if degres else None,
                                    arrondi_m=arrondi_m)
        c = self.classify_xy(x, y, bad=bad, incertitude_m=incert)
        voies = None
        if any(g.found and g.precision == "street" for g in geocoded_rows(geocodes)[1]):
            # a point known at the street: ask the street
            voies = _voies.decide(self, geocodes)
            _voies.apply(c, voies, mots)
        return verdict_frame(self, c, lon, lat, citycodes, geocodes, mots, voies,
                             columns=columns)

    def judge_point(self, *, lon: float | None = None, lat: float | None = None,
                    x: float | None = None, y: float | None = None,
                    geocode: GeocodeResult | None = None,
                    precision_point_m: float | None = None) -> Verdict:
        """Verdict for one point given as lon/lat, Lambert-93 x/y, or a geocoding result.

        ``precision_point_m``: position uncertainty (m) of given coordinates (default
        :attr:`precision_point_m`). Raises :class:`CoordinateError` when the coordinates cannot
        be a place in France.
        """
        if geocode is not None:
            lon, lat = geocode.lon, geocode.lat
            if lon is None or lat is None:
                frame = self.judge_lonlat([np.nan], [np.nan], geocodes=[geocode])
                return self._verdict(frame.iloc[0], geocode)
        if x is not None or y is not None:
            if x is None or y is None:
                raise CoordinateError("Il faut x et y (Lambert-93) ensemble.")
            code = int(self.check_xy(np.array([x]), np.array([y]))[0])
            if code:
                raise CoordinateError(f"x={x}, y={y} : {BAD_REASONS[code]}.",
                                      hint=_coordonnees.hint_for(code, self.plan.lambert93))
            if geocode is None:
                xa, ya = np.array([x], float), np.array([y], float)
                lon_a, lat_a = self.l93_to_lonlat(xa, ya)
                return self._judge_one(xa, ya, lon_a, lat_a, precision_point_m, degres=False)
            frame = self.judge_xy([x], [y], precision_point_m=precision_point_m)
        else:
            if lon is None or lat is None:
                raise CoordinateError("Il faut une latitude et une longitude.")
            code = int(self.check_lonlat_zones(np.array([lon]), np.array([lat]))[0])
            if code:
                raise CoordinateError(f"lat={lat}, lon={lon} : {BAD_REASONS[code]}.",
                                      hint=_coordonnees.hint_for(code, self.plan.lambert93))
            if geocode is None:
                lon_a, lat_a = np.array([lon], float), np.array([lat], float)
                xa, ya = self.lonlat_to_plan(lon_a, lat_a)
                return self._judge_one(xa, ya, lon_a, lat_a, precision_point_m)
            # a geocoded point: the batch path's rules, read from its columns (no DataFrame
            # for one row unless a rule needs the table)
            cols = self.judge_lonlat([lon], [lat], geocodes=[geocode],
                                     precision_point_m=precision_point_m, columns=True)
            if isinstance(cols, dict):
                return self._verdict({k: (v[0] if isinstance(v, np.ndarray | list) else v)
                                      for k, v in cols.items()}, geocode)
            return self._verdict(cols.iloc[0], geocode)
        return self._verdict(frame.iloc[0], geocode)

    def _judge_one(self, x: np.ndarray, y: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                   precision_point_m: float | None, *, degres: bool = True) -> Verdict:
        """One usable point without geocoding: the same computation as :meth:`judge_lonlat`,
        read from the columns without building a DataFrame (the web's single-point path)."""
        incert, mots = incertitudes(1, None, precision_point_m, defaut=self.precision_point_m,
                                    lon=lon if degres else None, lat=lat if degres else None)
        cols = verdict_un_point(self, float(x[0]), float(y[0]), float(lon[0]), float(lat[0]),
                                float(incert[0]), str(mots[0]))
        if cols is None:  # not covered by the single-point geometry: the batch path's
            c = self.classify_xy(x, y, bad=np.zeros(1, dtype=np.int8), incertitude_m=incert)
            cols = verdict_frame(self, c, lon, lat, None, None, mots, columns=True)
        row = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in cols.items()}
        return self._verdict(row, None)

    def _verdict(self, row: Any, geocode: GeocodeResult | None) -> Verdict:
        def val(name: str) -> Any:
            v = row[name]
            if isinstance(v, np.generic):
                v = v.item()
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return Verdict(
            status=row["status"], eligible=bool(row["eligible"]),
            code_qp=val("code_qp"), lib_qp=val("lib_qp"), insee_com=val("insee_com"),
            lib_com=val("lib_com"), distance_bord_m=val("distance_bord_m"),
            code_qp_proche=val("code_qp_proche"), lib_qp_proche=val("lib_qp_proche"),
            distance_qp_proche_m=val("distance_qp_proche_m"),
            candidat_autre_cote=val("candidat_autre_cote"),
            motifs=[m for m in str(row["motifs"]).split(" ; ") if m],
            donnees=row["donnees"], lon=val("lon"), lat=val("lat"), x_l93=val("x_l93"),
            y_l93=val("y_l93"), notes=list(self.reference.notes),
            geocodage=geocode.to_dict() if geocode is not None else None,
            marge_m=val("marge_m"), marge_motif=str(row["marge_motif"]),
            territoire=None if self.profil.par_defaut else self.nom_territoire,
        )

__all__ = [
    "BAD_REASONS",
    "SHORT",
    "SIREN_SEM",
    "STATUSES",
    "STATUS_LABELS",
    "VERDICT_COLUMNS",
    "Classification",
    "Engine",
    "Verdict",
    "format_distance",
]
