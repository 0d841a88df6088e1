"""Benchmark of national files (make bench-national): ``batch --moteur dask`` on N points.

N points (default 10,000,000; ``--rows``; seeded; one row in 997 without latitude): 80 % drawn
uniformly over metropolitan France's bounding box, 20 % around the QPV 2024 (a QPV drawn at
random among the 1,609, overseas included, and a point within about 1 km of it: addresses
cluster in towns, and these are the points that cost the engine edge distances and margins),
written as one CSV in a temporary folder, and validated with ``--territoire france`` by:

* the single-process path (:func:`qpv_geo.batch.validate_file`, CSV → CSV, streamed);
* the Dask path (:func:`qpv_geo.batch.national.validate_national`, CSV → partitioned CSV through the
  same writer) on a ``LocalCluster`` of 1 and then 2 worker processes (one thread each);
* a competent alternative for the bare question « in which QPV? »: pandas + geopandas
  ``sjoin`` (points within the QPV, no margin, no reasons, no line accounting), whole file in
  memory.

Every measurement runs in its own Python process and reports its wall time and peak RSS
(``VmHWM``); for Dask, the peak of each worker process (the largest is printed) and of the
driver. Rows/s include reading, judging and writing, and the engine build (a few seconds).
The machine's core count is printed: on 2 cores, 2 workers cannot give more than 2×.

Usage: ``.venv/bin/python benchmarks/bench_national.py [--rows 10000000] [--blocksize 8MB]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, time, sys
def vmhwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
t0 = time.perf_counter()
"""


def _qpv_points() -> tuple[np.ndarray, np.ndarray]:
    """A point on the surface of each QPV of the shipped national layer (lon, lat)."""
    sys.path.insert(0, str(ROOT))
    import shapely

    from qpv_geo.reference.territories import qpv_france

    qpv, _ = qpv_france()
    rep = shapely.point_on_surface(qpv.geometry.values)
    return shapely.get_x(rep), shapely.get_y(rep)


def generate(path: Path, n: int, chunk: int = 1_000_000) -> None:
    rng = np.random.default_rng(2024)
    qlon, qlat = _qpv_points()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id;lat;lon\n")
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            lat = rng.uniform(42.4, 51.1, k)
            lon = rng.uniform(-4.8, 8.2, k)
            near = rng.random(k) < 0.2  # around a QPV: ~1 km (0.009° of latitude)
            q = rng.integers(0, len(qlon), int(near.sum()))
            lat[near] = qlat[q] + rng.normal(0, 0.006, len(q))
            lon[near] = qlon[q] + rng.normal(0, 0.006, len(q)) / np.cos(np.radians(qlat[q]))
            lat = np.round(lat, 6).astype(str)
            lon = np.round(lon, 6).astype(str)
            ids = np.arange(start, start + k)
            lat[(ids % 997) == 0] = ""
            frame = pd.DataFrame({"id": ids, "lat": lat, "lon": lon})
            frame.to_csv(fh, sep=";", index=False, header=False)


def run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"échec :\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=int(os.environ.get("N", 10_000_000)))
    ap.add_argument("--blocksize", default="8MB")
    args = ap.parse_args()
    n = args.rows
    with tempfile.TemporaryDirectory(prefix="bench-national-") as tmp:
        d = Path(tmp)
        src = d / "france.csv"
        generate(src, n)
        print(f"{n:,} points".replace(",", " ") + f" ; {src.stat().st_size / 1e6:.0f} Mo de "
              f"CSV ; {os.cpu_count()} cœurs ; blocs dask de {args.blocksize}")
        results = {}
        results["mono-processus"] = run(f"""
            from qpv_geo.batch import validate_file
            from qpv_geo.settings import Settings
            r = validate_file({str(src)!r}, {str(d / 'mono.csv')!r},
                              settings=Settings.from_env(territoire='france'), progress=False)
            print(json.dumps({{'s': time.perf_counter() - t0, 'rows': r.summary['lignes_ecrites'],
                              'peak': vmhwm()}}))
            """)
        for workers in (1, 2):
            results[f"dask {workers} travailleur(s)"] = run(f"""
                from qpv_geo.batch.national import validate_national
                from qpv_geo.settings import Settings
                r = validate_national({str(src)!r}, {str(d / f'dask{workers}.csv')!r},
                                      settings=Settings.from_env(territoire='france'),
                                      workers={workers}, blocksize={args.blocksize!r})
                print(json.dumps({{'s': time.perf_counter() - t0, 'rows': r.lignes_ecrites,
                                  'peak': r.synthese['memoire_max_travailleur_mo'],
                                  'driver': vmhwm(), 'parts': r.parties}}))
                """)
        results["alternative geopandas sjoin"] = run(f"""
            import geopandas as gpd, pandas as pd
            from qpv_geo.reference.territories import qpv_france
            qpv, _ = qpv_france()
            df = pd.read_csv({str(src)!r}, sep=';')
            ok = df['lat'].notna()
            pts = gpd.GeoDataFrame(df[ok], geometry=gpd.points_from_xy(df.loc[ok, 'lon'],
                                   df.loc[ok, 'lat']), crs=4326)
            j = gpd.sjoin(pts, qpv[['code_qp', 'geometry']], predicate='within', how='left')
            j.drop(columns='geometry').to_csv({str(d / 'sjoin.csv')!r}, sep=';', index=False)
            print(json.dumps({{'s': time.perf_counter() - t0, 'rows': int(len(df)),
                              'peak': vmhwm()}}))
            """)
        same = (pd.read_csv(d / "mono.csv", sep=";", usecols=["ligne", "status", "code_qp"],
                            dtype=str, encoding="utf-8-sig")
                .equals(pd.concat([pd.read_csv(p, sep=";", usecols=["ligne", "status",
                                                                        "code_qp"],
                                               dtype=str, encoding="utf-8-sig")
                                   for p in sorted((d / "dask2.csv").glob("partie-*.csv"))],
                                  ignore_index=True)))
    base = results["mono-processus"]["s"]
    print(f"{'chemin':<30} {'durée s':>9} {'lignes/s':>11} {'vs mono':>8} "
          f"{'pic Mo/proc.':>13} {'pic pilote Mo':>14}")
    for name, r in results.items():
        print(f"{name:<30} {r['s']:>9.1f} {r['rows'] / r['s']:>11,.0f} {base / r['s']:>7.2f}× "
              f"{r['peak']:>13,.0f} {r.get('driver', float('nan')):>14,.0f}"
              .replace(",", " "))
    print(f"parties dask : {results['dask 2 travailleur(s)']['parts']} ; statut/code identiques "
          f"mono vs dask 2 : {'oui' if same else 'NON'}")
    print("geopandas sjoin : appartenance seule (ni marge, ni motifs, ni bornes mémoire).")


if __name__ == "__main__":
    main()
