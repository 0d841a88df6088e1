"""Benchmark of ``qpv-geo batch`` (make bench-batch).

Two files, generated in a temporary folder (seeded):

* ``coords``: 1,000,000 rows with coordinates (decimal comma, as French Excel writes them),
  points spread over SEM and around it;
* ``adresses``: 100,000 rows with addresses drawn from the demonstration address file (some
  abbreviated, some unknown), geocoded offline by the local geocoder.

For each: the batch (read → geocode → judge → write CSV) against the baseline of reading and
writing the same file with pandas alone, measured in the same run. Every measurement runs in
its own Python process, which reports its wall time and peak RSS (``VmHWM`` of
``/proc/self/status``: ``ru_maxrss`` would include the parent's memory at fork).

Usage: ``.venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--adresses 100000]``.
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
PRIORITES = ["Mobilité", "FLE / linguistique", "Garde d'enfants", "Santé", "Job dating",
             "Confiance en soi", "Publics hors radars", "Communication"]


def make_coords(path: Path, rows: int) -> None:
    rng = np.random.default_rng(2025)
    lon = 4.15 + rng.random(rows) * 0.50
    lat = 45.30 + rng.random(rows) * 0.30
    frame = pd.DataFrame({
        "Porteur": [f"Association fictive {k % 997}" for k in range(rows)],
        "Action": [f"Action {k % 31}" for k in range(rows)],
        "Priorité": [PRIORITES[k % len(PRIORITES)] for k in range(rows)],
        "Latitude": np.char.replace(np.round(lat, 6).astype(str), ".", ","),
        "Longitude": np.char.replace(np.round(lon, 6).astype(str), ".", ","),
    })
    frame.to_csv(path, sep=";", index=False)


def make_adresses(path: Path, rows: int) -> None:
    from qpv_geo.geocoding import demo_adresses_path

    rng = np.random.default_rng(2026)
    src = pd.read_csv(demo_adresses_path(), sep=";", dtype=str)
    pick = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
    rep = pick["rep"].fillna("")
    street = pick["nom_voie"].where(rng.random(rows) > 0.1,
                                    pick["nom_voie"].str.replace("Rue ", "r ", regex=False))
    adresse = (pick["numero"] + np.where(rep != "", " " + rep, "") + " " + street)
    unknown = rng.random(rows) < 0.02
    adresse = adresse.where(~unknown, "Lieu inconnu " + pd.Series(np.arange(rows)).astype(str))
    frame = pd.DataFrame({
        "Porteur": [f"Association fictive {k % 997}" for k in range(rows)],
        "Priorité": [PRIORITES[k % len(PRIORITES)] for k in range(rows)],
        "Adresse": adresse, "Code postal": pick["code_postal"], "Commune": pick["nom_commune"],
    })
    frame.to_csv(path, sep=";", index=False)


_CHILD = {
    "pandas": """
        import pandas as pd
        frame = pd.read_csv(SRC, sep=";", dtype=str, keep_default_na=False)
        frame.to_csv(OUT, sep=";", index=False, encoding="utf-8-sig")
        extra = {"rows": len(frame)}
    """,
    "batch": """
        from qpv_geo.batch import validate_file
        result = validate_file(SRC, OUT, progress=False)
        s = result.summary
        extra = {"rows": s["lignes_ecrites"], "lues": s["lignes_lues"],
                 "par_statut": s["par_statut"], "streamed": result.streamed,
                 "out_mb": __import__("os").path.getsize(OUT) / 1e6}
    """,
}


def run_child(kind: str, src: Path, out: Path) -> dict:
    code = textwrap.dedent(f"""
        import json, resource, sys, time
        SRC, OUT = {str(src)!r}, {str(out)!r}
        t0 = time.perf_counter()
    """) + textwrap.dedent(_CHILD[kind]) + textwrap.dedent("""
        extra["seconds"] = time.perf_counter() - t0
        # VmHWM: peak RSS of this exec'd image (ru_maxrss would include the parent's at fork)
        hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
        extra["peak_rss_mb"] = (int(hwm[0].split()[1]) / 1024 if hwm else
                                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(extra))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_up(tmp: Path) -> None:
    """Build the local geocoder's index and the engine grid once (cached on disk / per run),
    so that the timings below measure the batch, not one-off index builds."""
    small = tmp / "warm.csv"
    make_adresses(small, 50)
    run_child("batch", small, tmp / "warm-out.csv")


def _n(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def report(label: str, src: Path, base: dict, bat: dict) -> None:
    size = src.stat().st_size / 1e6
    rows = bat["rows"]
    print(f"\n{label} — {_n(rows)} rows, {size:.0f} MB in")
    for name, m in (("pandas read+write", base), ("qpv-geo batch", bat)):
        print(f"  {name:<18}: {m['seconds']:7.2f} s  {_n(m['rows'] / m['seconds']):>10} rows/s"
              f"  peak RSS {m['peak_rss_mb']:6.0f} MB")
    print(f"  ratio batch / pandas: {bat['seconds'] / base['seconds']:.1f}x the time; rows read "
          f"{_n(bat['lues'])}, written {_n(bat['rows'])}; streamed: {bat['streamed']}; output "
          f"{bat['out_mb']:.0f} MB")
    print(f"  statuses: {bat['par_statut']}")
    assert bat["lues"] == bat["rows"] == base["rows"], "rows lost"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--adresses", type=int, default=100_000)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, pandas {pd.__version__}")
    with tempfile.TemporaryDirectory(prefix="qpv-geo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # A fresh cache for this run: the address rows are geocoded, not read from the
        # results cache of an earlier run (the index is built once, in warm_up).
        os.environ["QPV_GEO_CACHE_DIR"] = str(tmp / "cache")
        t0 = time.perf_counter()
        coords = tmp / "coords.csv"
        make_coords(coords, args.rows)
        adresses = tmp / "adresses.csv"
        make_adresses(adresses, args.adresses)
        print(f"files generated in {time.perf_counter() - t0:.1f} s")
        warm_up(tmp)
        base = run_child("pandas", coords, tmp / "coords-pandas.csv")
        bat = run_child("batch", coords, tmp / "coords-out.csv")
        report("Coordinates", coords, base, bat)
        base = run_child("pandas", adresses, tmp / "adresses-pandas.csv")
        bat = run_child("batch", adresses, tmp / "adresses-out.csv")
        report("Addresses (local geocoder, offline)", adresses, base, bat)


if __name__ == "__main__":
    main()
