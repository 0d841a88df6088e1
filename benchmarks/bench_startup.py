"""Start-up of the command line (make bench-startup).

Measured in the same run, each in a fresh Python process, interleaved ``--runs`` times:

* ``qpv-geo check --lat 45.4561 --lon 4.4067``: start the command line, load the reference
  layers, build the engine, judge one point, print the verdict;
* ``qpv-geo --help``: the command line alone (what ``tests/test_startup.py`` keeps light);
* the competent alternative: a bare Python script that imports what any such check needs
  (pandas, geopandas, shapely, pyproj), reads SEM's shipped QPV layer and asks shapely whether
  the point is inside one — no margin, no reasons, no verdict table.

Medians of the interleaved runs (wall and CPU time of the child process), with the machine's
load average before and after: on a loaded machine absolute times grow, the ratio less so.

Usage: ``.venv/bin/python benchmarks/bench_startup.py [--runs 7]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PEER = """
import geopandas as gpd, shapely
from pathlib import Path
path = next(Path({data!r}).glob("qpv*sem*.geojson"))
qpv = gpd.read_file(path).to_crs(2154)
import pyproj
t = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
x, y = t.transform(4.4067, 45.4561)
print(bool(qpv.contains(shapely.Point(x, y)).any()))
"""


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    data = ROOT / "data" / "reference"
    paths = {
        "qpv-geo check --lat --lon": [sys.executable, "-m", "qpv_geo", "check", "--lat",
                                      "45.4561", "--lon", "4.4067"],
        "qpv-geo --help": [sys.executable, "-m", "qpv_geo", "--help"],
        "script geopandas + shapely (référence)": [sys.executable, "-c",
                                                    PEER.format(data=str(data))],
    }
    load_before = os.getloadavg()
    for cmd in paths.values():  # warm the file cache once, not measured
        _timed(cmd)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(args.runs):
        for name, cmd in paths.items():
            runs[name].append(_timed(cmd))
    load_after = os.getloadavg()
    print(f"Démarrage, médianes de {args.runs} passages entrelacés ; charge moyenne "
          f"{load_before[0]:.1f} avant, {load_after[0]:.1f} après ({os.cpu_count()} cœurs)")
    peer = statistics.median(w for w, _ in runs["script geopandas + shapely (référence)"])
    print(f"{'chemin':<42} {'réel s':>7} {'CPU s':>7} {'vs référence':>13}")
    for name, values in runs.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(f"{name:<42} {wall:>7.2f} {cpu:>7.2f} {wall / peer:>12.2f}×")


if __name__ == "__main__":
    main()
