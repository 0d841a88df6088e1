"""Benchmark of national files (make bench-national): ``batch --territoire france`` on N points.

N points (default 1,000,000; ``--rows``; seeded; one row in 997 without latitude): 80 % drawn
uniformly over metropolitan France's bounding box, 20 % around the QPV 2024 (a QPV drawn at
random among the 1,609, overseas included, and a point within about 1 km of it: addresses
cluster in towns, and these are the points that cost the engine edge distances and margins),
written as one CSV and as partitioned Parquet (4 files, row groups of 100,000 rows) in a
temporary folder, and validated with ``--territoire france`` by:

* the single-process path (:func:`qpv_geo.batch.validate_file`, CSV → CSV, streamed);
* the Dask path (:func:`qpv_geo.batch.national.validate_national`, CSV → partitioned CSV through
  the same writer) on a ``LocalCluster`` of 1 and then 2 worker processes (one thread each),
  and on 2 workers reading the partitioned Parquet (→ partitioned Parquet);
* the peer for the bare question « in which QPV? »: pandas + geopandas ``sjoin`` (points within
  the QPV, no margin, no reasons, no distance, no nearest QPV), whole file in memory.

``--rounds`` interleaved rounds (each path once per round, each run in its own Python
process); medians are printed, with each ratio against its peer measured in the same run
(single process against sjoin; 2 workers against 1, end to end and on the blocks' compute
alone), the peak RSS of each process (``VmHWM``; every Dask worker's), the load average at
start and end, and whether the Dask CSV parts put end to end are the single-process output
byte for byte. On 2 cores shared with other work, 2 workers cannot give 2×.

Usage: ``.venv/bin/python benchmarks/bench_national.py [--rows 1000000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
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


def to_parquet_parts(src: Path, folder: Path, files: int = 4, group: int = 100_000) -> None:
    """The bench file as partitioned Parquet: ``files`` files of row groups of ``group`` rows,
    every cell as text (as the CSV is read)."""
    frame = pd.read_csv(src, sep=";", dtype=str, keep_default_na=False)
    folder.mkdir()
    step = -(-len(frame) // files)
    for k in range(files):
        frame.iloc[k * step:(k + 1) * step].to_parquet(folder / f"part-{k:03d}.parquet",
                                                       index=False, row_group_size=group)


def same_bytes(mono: Path, parts: Path) -> bool:
    """The single-process CSV, byte for byte, against the parts put end to end (each part's
    header, and its BOM, said once)."""
    files = sorted(parts.glob("partie-*.csv"))
    joined = bytearray(files[0].read_bytes())
    for f in files[1:]:
        data = f.read_bytes()
        joined += data[data.index(b"\n") + 1:]
    return bytes(joined) == mono.read_bytes()


def run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"échec :\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measures(src: Path, pq: Path, d: Path, k: int, blocksize: str) -> dict[str, dict]:
    """One round: every path once, each in its own process."""
    results = {}
    results["mono-processus"] = run(f"""
        from qpv_geo.batch import validate_file
        from qpv_geo.settings import Settings
        r = validate_file({str(src)!r}, {str(d / f'mono{k}.csv')!r},
                          settings=Settings.from_env(territoire='france'), progress=False)
        print(json.dumps({{'s': time.perf_counter() - t0, 'rows': r.summary['lignes_ecrites'],
                          'peak': vmhwm()}}))
        """)
    results["geopandas sjoin"] = run(f"""
        import geopandas as gpd, pandas as pd
        from qpv_geo.reference.territories import qpv_france
        qpv, _ = qpv_france()
        df = pd.read_csv({str(src)!r}, sep=';')
        ok = df['lat'].notna()
        pts = gpd.GeoDataFrame(df[ok], geometry=gpd.points_from_xy(df.loc[ok, 'lon'],
                               df.loc[ok, 'lat']), crs=4326)
        j = gpd.sjoin(pts, qpv[['code_qp', 'geometry']], predicate='within', how='left')
        j.drop(columns='geometry').to_csv({str(d / f'sjoin{k}.csv')!r}, sep=';', index=False)
        print(json.dumps({{'s': time.perf_counter() - t0, 'rows': int(len(df)),
                          'peak': vmhwm()}}))
        """)
    for workers, path, name in ((1, src, "csv"), (2, src, "csv"), (2, pq, "parquet")):
        out = d / f"dask{workers}-{name}-{k}.{'csv' if name == 'csv' else 'parquet'}"
        results[f"dask {workers} trav. ({name})"] = run(f"""
            from qpv_geo.batch.national import validate_national
            from qpv_geo.settings import Settings
            r = validate_national({str(path)!r}, {str(out)!r},
                                  settings=Settings.from_env(territoire='france'),
                                  workers={workers}, blocksize={blocksize!r})
            print(json.dumps({{'s': time.perf_counter() - t0, 'rows': r.lignes_ecrites,
                              'peak': max(r.memoire_travailleurs_mo), 'calc': r.calcul_s,
                              'workers': r.memoire_travailleurs_mo,
                              'driver': vmhwm(), 'parts': r.parties}}))
            """)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=int(os.environ.get("N", 1_000_000)))
    ap.add_argument("--blocksize", default="8MB")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    args = ap.parse_args()
    n = args.rows
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-national-") as tmp:
        d = Path(tmp)
        src = d / "france.csv"
        generate(src, n)
        pq = d / "france-parquet"
        to_parquet_parts(src, pq)
        print(f"{started} ; {n:,} points".replace(",", " ")
              + f" ; {src.stat().st_size / 1e6:.0f} Mo de CSV, {len(list(pq.glob('*')))} "
              f"fichiers Parquet ; {os.cpu_count()} cœurs ; blocs dask ≤ {args.blocksize} ; "
              f"{args.rounds} tours entrelacés")
        rounds = [measures(src, pq, d, k, args.blocksize) for k in range(args.rounds)]
        load1 = os.getloadavg()
        identical = all(same_bytes(d / f"mono{k}.csv", d / f"dask{w}-csv-{k}.csv")
                        for k in range(args.rounds) for w in (1, 2))
        mono = pd.read_csv(d / "mono0.csv", sep=";", usecols=["ligne", "status", "code_qp"],
                           dtype=str, encoding="utf-8-sig")
        pq_out = pd.concat([pd.read_parquet(p, columns=["ligne", "status", "code_qp"])
                            for p in sorted((d / "dask2-parquet-0.parquet").glob("*.parquet"))],
                           ignore_index=True)
        pq_same = (mono["ligne"].astype(int).tolist() == pq_out["ligne"].astype(int).tolist()
                   and mono["status"].tolist() == pq_out["status"].tolist()
                   and mono["code_qp"].fillna("").tolist() == pq_out["code_qp"].fillna("")
                   .tolist())
    med = {name: {"s": float(np.median([r[name]["s"] for r in rounds])),
                  **{k: v for k, v in rounds[0][name].items() if k != "s"}}
           for name in rounds[0]}
    print(f"{'chemin':<26} {'durée s (méd.)':>15} {'lignes/s':>10} {'pic Mo/proc.':>13} "
          f"{'pic pilote Mo':>14}")
    for name, r in med.items():
        print(f"{name:<26} {r['s']:>15.1f} {r['rows'] / r['s']:>10,.0f} {r['peak']:>13,.0f} "
              f"{r.get('driver', float('nan')):>14,.0f}".replace(",", " "))
    sj, mono_s = med["geopandas sjoin"], med["mono-processus"]
    print(f"mono-processus (verdict complet) / sjoin (appartenance seule) : "
          f"{sj['s'] / mono_s['s'] * mono_s['rows'] / sj['rows']:.2f}× le débit de sjoin")
    per_round = [r["dask 1 trav. (csv)"]["s"] / r["dask 2 trav. (csv)"]["s"] for r in rounds]
    calc = [r["dask 1 trav. (csv)"]["calc"] / r["dask 2 trav. (csv)"]["calc"] for r in rounds]
    print(f"dask 2 travailleurs / 1 travailleur : {np.median(per_round):.2f}× de bout en bout "
          f"(médiane ; tours " + ", ".join(f"{x:.2f}" for x in per_round) + f") ; "
          f"{np.median(calc):.2f}× sur le calcul des blocs (sans démarrage de la grappe ni "
          "construction du moteur ; tours " + ", ".join(f"{x:.2f}" for x in calc) + ")")
    pw = med["dask 2 trav. (parquet)"]["workers"]
    print("Parquet partitionné, LocalCluster 2 processus : pic par travailleur "
          + " / ".join(f"{x:.0f}" for x in pw) + " Mo")
    print(f"sorties dask CSV = mono-processus octet pour octet : {'oui' if identical else 'NON'} ;"
          f" dask Parquet : ligne/statut/code identiques : {'oui' if pq_same else 'NON'}")
    print(f"charge (loadavg 1/5/15 min) : début {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
          f"fin {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}")
    print("geopandas sjoin : appartenance seule (ni marge, ni motifs, ni distance, ni QPV le "
          "plus proche).")


if __name__ == "__main__":
    main()
