"""Benchmark of the eligibility engine (make bench). Not a test.

Classifies 1,000,000 random points over SEM's bounding box — full verdict: QPV, QVA,
territory, edge margin, nearest QPV — and, in the same run, times

* a competent shapely 2 implementation of the core fields (containment in the dissolved QPV
  through an STRtree, signed distance to the edge for the points inside, nearest QPV within
  3 km by ``query_nearest``, « near an edge » from those distances), on all 1,000,000 points;
* the naive geopandas recipe (``sjoin`` for containment, then ``distance`` from every point to
  every boundary the verdict depends on) on a 20,000-point subset, scaled up to 1,000,000.

Prints the times and the ratios (CPU time of this process, medians of interleaved runs, with
the load average: the machine may be shared).

``--table [N]`` measures only the cost of the French verdict table (issue 24): the engine alone
(``classify_xy`` with each point's margin, from WGS84 coordinates as a batch gives them)
against the engine and the table (``judge_lonlat``: statuses, reasons, margin explanations)
on N points (default 1,000,000), interleaved runs, medians, load average printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import platform
import statistics
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qpv_geo.eligibility.engine import Engine
from qpv_geo.eligibility.margins import incertitudes
from qpv_geo.eligibility.verdict_table import verdict_frame
from qpv_geo.reference.layers import load_reference

N = 1_000_000
N_NAIVE = 20_000


def interleaved(fns: dict, repeat: int = 3) -> dict[str, float]:
    """CPU seconds of each function, median of ``repeat`` interleaved runs (a, b, a, b…)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.process_time()
            fn()
            times[name].append(time.process_time() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def competent_shapely(engine: Engine, x: np.ndarray, y: np.ndarray, marge: float
                      ) -> dict[str, np.ndarray]:
    """The same core fields with shapely 2 done well: an STRtree over the dissolved QPV
    parts for containment and the nearest QPV, distances to the edge where they matter."""
    parts = engine.parts.geoms[engine.parts.kind == 0]
    tree = engine._bench_tree if hasattr(engine, "_bench_tree") else shapely.STRtree(parts)
    engine._bench_tree = tree
    pts = shapely.points(x, y)
    pi, pj = tree.query(pts, predicate="within")
    part = np.full(len(x), -1)
    part[pi] = pj
    inside = part >= 0
    dist = np.full(len(x), np.nan)
    dist[inside] = shapely.distance(shapely.boundary(parts)[part[inside]], pts[inside])
    bx0, by0, bx1, by1 = shapely.total_bounds(parts)
    out = np.flatnonzero(~inside & (x >= bx0 - 3000) & (x <= bx1 + 3000) & (y >= by0 - 3000)
                         & (y <= by1 + 3000))  # only points that can have a QPV within 3 km
    (qi, qj), d = tree.query_nearest(pts[out], max_distance=3000.0, return_distance=True,
                                     all_matches=False)
    near = np.full(len(x), -1)
    near[out[qi]] = qj
    dist[out[qi]] = -d
    return {"part": part, "near": near, "dist": dist, "near_edge": np.abs(dist) <= marge}


def naive(engine: Engine, x: np.ndarray, y: np.ndarray, marge: float) -> pd.DataFrame:
    """The textbook recipe: sjoin for containment, then distance to every boundary."""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=2154)
    zones = engine.zones[["code_qp", "_kind", "geometry"]]
    joined = gpd.sjoin(pts, zones, how="left", predicate="within")
    communes = engine.communes[["insee_com", "geometry"]]
    in_com = gpd.sjoin(pts, communes, how="left", predicate="within")
    # every boundary the verdict depends on: the perimeters', and SEM's outline (tolerance)
    boundaries = [*zones.geometry.boundary.values, engine._sem.boundary]
    dist = np.column_stack([pts.geometry.distance(b).to_numpy() for b in boundaries])
    nearest = dist.min(axis=1)
    return pd.DataFrame({"code_qp": joined.groupby(level=0)["code_qp"].first(),
                         "insee_com": in_com.groupby(level=0)["insee_com"].first(),
                         "near_edge": nearest <= marge})


def scalar_shapely(tree: shapely.STRtree, edges: np.ndarray, x: float, y: float) -> float:
    """A bare scalar shapely check of one point: the QPV part it is in and the distance to
    its edge, else the nearest QPV within 3 km and the distance to it (NaN: none)."""
    pt = shapely.Point(x, y)
    hit = tree.query(pt, predicate="within")
    if len(hit):
        return float(shapely.distance(edges[hit[0]], pt))
    near, dist = tree.query_nearest(pt, max_distance=3000.0, return_distance=True)
    return -float(dist[0]) if len(near) else math.nan


def single_point(engine: Engine, lon: np.ndarray, lat: np.ndarray, x: np.ndarray,
                 y: np.ndarray, runs: int = 5) -> float:
    """Per-verdict time of ``judge_point`` (lat/lon: the web page, ``check``) and of a bare
    scalar shapely check of the same points, interleaved runs, medians; the single verdicts
    compared with the batch rows. Returns the time of one verdict (s)."""
    parts = engine.parts.geoms[engine.parts.kind == 0]
    tree, edges = shapely.STRtree(parts), shapely.boundary(parts)
    pl = list(zip(lon.tolist(), lat.tolist(), strict=True))
    xy = list(zip(x.tolist(), y.tolist(), strict=True))
    for a, b in pl[:200]:  # warm-up
        engine.judge_point(lon=a, lat=b)
    t_one, t_peer = [], []
    for _ in range(runs):
        t0 = time.process_time()
        singles = [engine.judge_point(lon=a, lat=b) for a, b in pl]
        t_one.append((time.process_time() - t0) / len(pl))
        t0 = time.process_time()
        for a, b in xy:
            scalar_shapely(tree, edges, a, b)
        t_peer.append((time.process_time() - t0) / len(xy))
    one, peer = statistics.median(t_one), statistics.median(t_peer)
    frame = engine.judge_lonlat(lon, lat)
    same = sum(v.to_dict() == engine._verdict(frame.iloc[i], None).to_dict()
               for i, v in enumerate(singles))
    print(f"single point (judge_point, lat/lon)              : {one * 1e6:6.1f} µs per "
          f"verdict; identical to the batch rows for {same:,} of {len(pl):,} points")
    print(f"bare scalar shapely check (within + distance)    : {peer * 1e6:6.1f} µs per point")
    print(f"ratio judge_point / scalar shapely               : {one / peer:6.1f}× "
          f"(goal ≤ 15×: {'OK' if one <= 15 * peer else 'MISSED'}); medians of {runs} "
          f"interleaved runs, load average {os.getloadavg()[0]:.2f}")
    return one


def table_vs_engine(n: int, repeat: int = 5) -> None:
    """Engine alone vs engine + verdict table on the same n WGS84 points (interleaved)."""
    engine = Engine(load_reference())
    rng = np.random.default_rng(2025)
    lon = np.round(4.15 + rng.random(n) * 0.50, 6)  # as bench-batch's coordinates file
    lat = np.round(45.30 + rng.random(n) * 0.30, 6)
    engine.judge_lonlat(lon[:1000], lat[:1000])  # grid and tables built once

    def alone() -> None:
        bad = engine.check_lonlat_zones(lon, lat)
        x, y = engine.lonlat_to_plan(np.where(bad == 0, lon, np.nan),
                                     np.where(bad == 0, lat, np.nan))
        incert, _ = incertitudes(n, None, None, defaut=engine.precision_point_m, lon=lon,
                                 lat=lat)
        engine.classify_xy(x, y, bad=bad, incertitude_m=incert)

    def with_table() -> None:
        engine.judge_lonlat(lon, lat)

    times: dict[str, list[float]] = {"engine": [], "table": []}
    loads = []
    for _ in range(repeat):
        for name, fn in (("engine", alone), ("table", with_table)):
            loads.append(os.getloadavg()[0])
            t0 = time.process_time()
            fn()
            times[name].append(time.process_time() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"verdict table vs engine — {n:,} WGS84 points, {repeat} interleaved runs, CPU "
          f"medians, load average {min(loads):.1f}–{max(loads):.1f}")
    print(f"  engine alone (margins, classify_xy)        : {med['engine']:6.2f} s "
          f"(min {min(times['engine']):.2f})")
    print(f"  engine + verdict table (judge_lonlat)      : {med['table']:6.2f} s "
          f"(min {min(times['table']):.2f})")
    ratio = med["table"] / med["engine"]
    print(f"  ratio engine + table / engine alone        : {ratio:6.2f}× "
          f"→ target ≤ 2× {'tenu' if ratio <= 2 else 'MANQUÉ'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=0, metavar="N",
                        help="only the single-point part, on N points")
    args = parser.parse_args()
    print(f"qpv-geo eligibility benchmark — {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, single thread")
    ref = load_reference()
    t0 = time.perf_counter()
    engine = Engine(ref)
    t_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine._grid = engine._build_grid()
    t_grid = time.perf_counter() - t0
    x0, y0, x1, y1 = engine.communes.total_bounds
    rng = np.random.default_rng(2024)
    x = rng.uniform(x0, x1, N)
    y = rng.uniform(y0, y1, N)
    lon, lat = Engine.l93_to_lonlat(x, y)

    if args.single:
        single_point(engine, lon[:args.single], lat[:args.single], x[:args.single],
                     y[:args.single])
        return
    load_before = os.getloadavg()[0]
    c = engine.classify_xy(x, y)

    def from_wgs84() -> None:
        bad = engine.check_lonlat(lon, lat)
        xx, yy = engine.lonlat_to_l93(lon, lat)
        engine.classify_xy(xx, yy, bad=bad)

    sub = slice(0, N_NAIVE)
    med = interleaved({"l93": lambda: engine.classify_xy(x, y), "wgs": from_wgs84,
                       "frame": lambda: verdict_frame(engine, c, lon, lat, None, None),
                       "shapely": lambda: competent_shapely(engine, x, y, 11.0)})
    t_l93, t_wgs, t_frame, t_shapely = med["l93"], med["wgs"], med["frame"], med["shapely"]
    t_naive_sub = interleaved({"naive": lambda: naive(engine, x[sub], y[sub], 11.0)},
                              repeat=1)["naive"]
    t_naive = t_naive_sub * N / N_NAIVE

    counts = pd.Series(np.bincount(c.status, minlength=6),
                       index=["eligible", "qva", "hors_qpv", "hors_territoire", "a_verifier",
                              "non_geocode"])
    print(f"engine build {t_engine * 1000:.0f} ms, grid build {t_grid * 1000:.0f} ms "
          f"({engine._grid.nx}×{engine._grid.ny} cells)")
    print(f"statuses of the 1M points: {counts.to_dict()}")
    print(f"CPU medians of 3 interleaved runs (engine, WGS84, table, shapely); load average "
          f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at the end")
    print(f"full verdict, 1,000,000 points, Lambert-93 input : {t_l93:6.2f} s "
          f"({N / t_l93 / 1e6:.2f} M points/s)")
    print(f"full verdict, 1,000,000 points, WGS84 input      : {t_wgs:6.2f} s")
    print(f"verdict table with French reasons (1M rows)      : {t_frame:6.2f} s")
    print(f"competent shapely (STRtree, same core fields, 1M): {t_shapely:6.2f} s")
    print(f"ratio shapely / engine (Lambert-93)              : {t_shapely / t_l93:6.2f}×")
    print(f"naive sjoin + distance to every boundary         : {t_naive_sub:6.2f} s for "
          f"{N_NAIVE:,} points → {t_naive:6.1f} s for 1M (scaled)")
    print(f"ratio naive / engine (Lambert-93)                : {t_naive / t_l93:6.1f}×")
    # The single-point path (web page, check): per verdict, and the same answers as the batch.
    n1 = 20_000
    t_one = single_point(engine, lon[:n1], lat[:n1], x[:n1], y[:n1], runs=1)
    print(f"target: ≤ 0.2 ms per single verdict → {'OK' if t_one <= 2e-4 else 'MISSED'}")
    print(f"target: ≤ 0.4 s for 1M on one core → {'OK' if t_l93 <= 0.4 else 'MISSED'}; "
          f"faster than competent shapely → {'OK' if t_shapely > t_l93 else 'MISSED'}; "
          f"≥ 20× the naive recipe → {'OK' if t_naive / t_l93 >= 20 else 'MISSED'}")


if __name__ == "__main__":
    if "--table" in sys.argv:
        rest = sys.argv[sys.argv.index("--table") + 1:]
        table_vs_engine(int(rest[0]) if rest else 1_000_000)
    else:
        main()
