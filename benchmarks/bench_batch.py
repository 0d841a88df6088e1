"""Benchmark of ``qpv-geo batch`` (make bench-batch).

Two files, generated in a temporary folder (seeded):

* ``coords``: 1,000,000 rows with coordinates (decimal comma, as French Excel writes them),
  points spread over SEM and around it;
* ``adresses``: 100,000 rows with addresses drawn from the demonstration address file (some
  abbreviated, some unknown), geocoded offline by the local geocoder.

For each: the batch (read → geocode → judge → write CSV) against the baselines of reading and
writing the same file with pandas alone and (coordinates) with pyarrow alone, measured in the
same run with the load average; then the first 100,000
coordinate rows written as XLSX by the batch against pandas reading the CSV and writing it
with ``to_excel(engine="xlsxwriter")``. Every measurement runs in its own Python process,
which reports its wall time, CPU time and peak RSS (``VmHWM`` of ``/proc/self/status``:
``ru_maxrss`` would include the parent's memory at fork). The runs are interleaved
(pandas, batch, pandas, batch…) ``--repeat`` times; min and median are printed, and the
targets of issue 13 are checked on the medians.

Usage: ``.venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--adresses 100000]
[--xlsx 100000] [--repeat 3]`` (``--adresses 0`` / ``--xlsx 0`` skip those files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    "pyarrow": """
        import pyarrow as pa
        import pyarrow.csv as pacsv
        table = pacsv.read_csv(SRC, parse_options=pacsv.ParseOptions(delimiter=";"),
                               convert_options=pacsv.ConvertOptions(
                                   column_types={}, strings_can_be_null=False,
                                   auto_dict_encode=False))
        table = table.cast(pa.schema([(f.name, pa.string()) for f in table.schema]))
        pacsv.write_csv(table, OUT, pacsv.WriteOptions(delimiter=";"))
        extra = {"rows": table.num_rows}
    """,
    "pandas-xlsx": """
        import pandas as pd
        frame = pd.read_csv(SRC, sep=";", dtype=str, keep_default_na=False)
        frame.to_excel(OUT, index=False, engine="xlsxwriter")
        extra = {"rows": len(frame)}
    """,
    "batch": """
        from qpv_geo.batch import validate_file
        # the address rows come from the demonstration address file: its local geocoder
        result = validate_file(SRC, OUT, progress=False, geocoder_name="demo")
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
        t0, c0 = time.perf_counter(), time.process_time()
    """) + textwrap.dedent(_CHILD[kind]) + textwrap.dedent("""
        extra["seconds"] = time.perf_counter() - t0
        extra["cpu"] = time.process_time() - c0
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


def measure(kinds: list[str], src: Path, outs: dict[str, Path], repeat: int
            ) -> dict[str, list[dict]]:
    """Interleaved runs: each kind in turn (the references, then the batch), *repeat* times;
    the load average is recorded before each run."""
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(repeat):
        for kind in kinds:
            load = os.getloadavg()[0]
            r = run_child(kind, src, outs[kind])
            r["load"] = load
            runs[kind].append(r)
    return runs


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(label: str, src: Path, runs: dict[str, list[dict]], out: Path,
           names: dict[str, str]) -> dict:
    """Medians of each kind, and the batch's ratio to each reference of the same run."""
    bat = runs["batch"]
    size = src.stat().st_size / 1e6
    rows = bat[0]["rows"]
    loads = [r["load"] for rs in runs.values() for r in rs]
    print(f"\n{label} — {_n(rows)} rows, {size:.0f} MB in, {len(bat)} interleaved runs, "
          f"load average {min(loads):.1f}–{max(loads):.1f} (2-core machine shared)")
    for kind, runs_k in runs.items():
        wall = sorted(r["seconds"] for r in runs_k)
        print(f"  {names.get(kind, 'qpv-geo batch'):<22}: wall min {wall[0]:6.2f} s, median "
              f"{_med(runs_k, 'seconds'):6.2f} s; CPU median {_med(runs_k, 'cpu'):6.2f} s; "
              f"{_n(rows / _med(runs_k, 'seconds')):>9} rows/s; peak RSS "
              f"{max(r['peak_rss_mb'] for r in runs_k):5.0f} MB")
    ratios = {}
    for kind in runs:
        if kind == "batch":
            continue
        ratio = _med(bat, "seconds") / _med(runs[kind], "seconds")
        ratio_cpu = _med(bat, "cpu") / _med(runs[kind], "cpu")
        ratios[kind] = (ratio, ratio_cpu)
        print(f"  ratio batch / {names[kind]}: {ratio:.1f}x the wall time, {ratio_cpu:.1f}x "
              "the CPU (medians, same run)")
        assert runs[kind][0]["rows"] == rows, "rows lost"
    per_row = out.stat().st_size / rows
    print(f"  rows read {_n(bat[0]['lues'])}, written {_n(rows)}; streamed: "
          f"{bat[0]['streamed']}; output {out.stat().st_size / 1e6:.0f} MB = {per_row:.0f} B "
          "per row")
    print(f"  statuses: {bat[0]['par_statut']}")
    assert bat[0]["lues"] == rows, "rows lost"
    first = next(iter(ratios))
    return {"seconds": _med(bat, "seconds"), "ratio": ratios[first][0],
            "ratio_cpu": ratios[first][1], "ratios": ratios,
            "peak": max(r["peak_rss_mb"] for r in bat), "per_row": per_row}


def _check(name: str, ok: bool, detail: str) -> None:
    print(f"  [{'tenu' if ok else 'MANQUÉ'}] {name}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--adresses", type=int, default=100_000)
    parser.add_argument("--xlsx", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, pandas {pd.__version__}, "
          f"{os.cpu_count()} CPU, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="qpv-geo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # A fresh cache for this run: the address rows are geocoded, not read from the
        # results cache of an earlier run (the index is built once, in warm_up).
        os.environ["QPV_GEO_CACHE_DIR"] = str(tmp / "cache")
        t0 = time.perf_counter()
        coords = tmp / "coords.csv"
        make_coords(coords, args.rows)
        small = tmp / "coords-xlsx.csv"
        if args.xlsx:
            make_coords(small, args.xlsx)
        adresses = tmp / "adresses.csv"
        if args.adresses:
            make_adresses(adresses, args.adresses)
        print(f"files generated in {time.perf_counter() - t0:.1f} s")
        warm_up(tmp)
        names = {"pandas": "pandas read+write", "pyarrow": "pyarrow read+write",
                 "pandas-xlsx": "pandas read+to_excel"}
        out = tmp / "coords-out.csv"
        runs = measure(["pandas", "pyarrow", "batch"], coords,
                       {"pandas": tmp / "coords-pandas.csv", "pyarrow": tmp / "coords-pa.csv",
                        "batch": out}, args.repeat)
        big = report("Coordinates → CSV", coords, runs, out, names)
        xlsx = None
        if args.xlsx:
            out_x = tmp / "coords-out.xlsx"
            runs = measure(["pandas-xlsx", "batch"], small,
                           {"pandas-xlsx": tmp / "coords-pandas.xlsx", "batch": out_x},
                           args.repeat)
            xlsx = report("Coordinates → XLSX", small, runs, out_x, names)
        if args.adresses:
            out_a = tmp / "adresses-out.csv"
            runs = measure(["pandas", "batch"], adresses,
                           {"pandas": tmp / "adresses-pandas.csv", "batch": out_a}, 1)
            report("Addresses (local geocoder, offline) → CSV", adresses, runs, out_a, names)
        print(f"\nTargets (issues 13 and 24, medians; load average {os.getloadavg()[0]:.1f} "
              "at the end):")
        for kind, (ratio, ratio_cpu) in big["ratios"].items():
            print(f"  batch / {names[kind]}: {ratio:.1f}× wall ({ratio_cpu:.1f}× CPU)")
        _check(f"{_n(args.rows)} rows ≤ 3× pandas", big["ratio"] <= 3,
               f"{big['ratio']:.1f}× wall ({big['ratio_cpu']:.1f}× CPU)")
        _check("peak ≤ 350 MB", big["peak"] <= 350, f"{big['peak']:.0f} MB")
        _check("output ≤ 200 B per row", big["per_row"] <= 200, f"{big['per_row']:.0f} B")
        if xlsx is not None:
            _check(f"XLSX {_n(args.xlsx)} rows ≤ 6 s", xlsx["seconds"] <= 6,
                   f"{xlsx['seconds']:.1f} s")


if __name__ == "__main__":
    main()
