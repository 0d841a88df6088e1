"""Benchmark of the instruction register (make bench-registre).

A seeded file of N sites (default 100,000) in N/5 dossiers, with coordinates (decimal comma),
a SIRET-less status column, action dates and « bilan N-1 fourni », generated in a temporary
folder. Measured in the same run:

* the register: ``registre ajouter`` (read → judge → criteria → store), a re-check with the
  same data (nothing changes), a re-check with another margin (every verdict appended), the
  export of the register to XLSX; the database size after each step (WAL checkpointed);
* the competent alternative: the batch alone on the same file (``validate_sites``, what
  ``qpv-geo batch`` does before writing) and a plain dump of its result into SQLite with
  ``pandas.DataFrame.to_sql`` (one table, no history, no criteria): the cost of keeping a
  register rather than a spreadsheet.

Coordinates only: geocoding is measured by make bench-geocoding / bench-batch.

Usage: ``.venv/bin/python benchmarks/bench_registre.py [--sites 100000]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_sites(path: Path, n: int) -> None:
    rng = np.random.default_rng(2027)
    lon = 4.25 + rng.random(n) * 0.35
    lat = 45.36 + rng.random(n) * 0.16
    dossier = np.arange(n) // 5
    frame = pd.DataFrame({
        "N° dossier": [f"CE26-{d:06d}" for d in dossier],
        "Porteur": [f"Association fictive {d % 997}" for d in dossier],
        "Statut juridique": np.where(dossier % 11 == 0, "SAS", "Association loi 1901"),
        "Action": [f"Action {d % 31}" for d in dossier],
        "Latitude": np.char.replace(np.round(lat, 6).astype(str), ".", ","),
        "Longitude": np.char.replace(np.round(lon, 6).astype(str), ".", ","),
        "Date de début": "01/03/2026",
        "Date de fin": np.where(dossier % 13 == 0, "31/01/2027", "30/11/2026"),
        "Bilan N-1 fourni": np.where(dossier % 17 == 0, "non", "oui"),
    })
    frame.to_csv(path, sep=";", index=False)


def size_mb(path: Path) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    args = parser.parse_args()

    from qpv_geo.batch import read_sites, validate_sites
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.register import Registre
    from qpv_geo.register.exports import export_registre
    from qpv_geo.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-registre-") as tmp:
        tmp = Path(tmp)
        src = tmp / "sites.csv"
        make_sites(src, args.sites)
        st = Settings.from_env(data_dir=tmp / "donnees", cache_dir=tmp / "cache",
                               annee_appel=2026, marge_m=25.0)
        engine = engine_from_settings(st)
        engine.judge_lonlat([4.39], [45.43])  # build the grid outside the timings
        print(f"qpv-geo registre — {args.sites:,} sites, {args.sites // 5:,} dossiers "
              "(coordonnées)".replace(",", " "))

        # The alternative: the batch alone, then a plain dump into SQLite.
        t = time.perf_counter()
        frame, mapping = read_sites(src)
        out = validate_sites(frame, mapping, settings=st, engine=engine).frame
        t_batch = time.perf_counter() - t
        dump = tmp / "dump.sqlite"
        t = time.perf_counter()
        with sqlite3.connect(dump) as db:
            keep = ~out.columns.str.lower().duplicated()  # SQLite names ignore case
            out.loc[:, keep].to_sql("sites", db, index=False, chunksize=20_000)
        t_dump = time.perf_counter() - t
        dump_mb = dump.stat().st_size / 1e6

        # The register.
        path = tmp / "registre.sqlite"
        with Registre(path, settings=st) as reg:
            t = time.perf_counter()
            res = reg.importer(src, engine=engine, annuaire=False)
            t_import = time.perf_counter() - t
            mb_import = size_mb(path)
            t = time.perf_counter()
            rv = reg.reverifier(engine=engine)
            t_same = time.perf_counter() - t
            assert rv.nouveaux_verdicts == 0, rv.nouveaux_verdicts
            st30 = st.with_(marge_m=30.0)
            engine30 = engine_from_settings(st30)
            t = time.perf_counter()
            rv30 = reg.reverifier(engine=engine30)
            t_marge = time.perf_counter() - t
            mb_recheck = size_mb(path)
            t = time.perf_counter()
            export_registre(reg, tmp / "registre.xlsx")
            t_export = time.perf_counter() - t
            t = time.perf_counter()
            dossiers = reg.dossiers()
            t_dossiers = time.perf_counter() - t
        base = t_batch + t_dump
        rows = [
            ("batch seul (lecture + jugement)", t_batch, None),
            ("batch + to_sql (alternative)", base, dump_mb),
            ("registre ajouter", t_import, mb_import),
            ("registre reverifier (mêmes données)", t_same, None),
            (f"registre reverifier (marge 30 m : {rv30.nouveaux_verdicts:,} verdicts "
             f"ajoutés, {len(rv30.changements):,} changés)".replace(",", " "), t_marge,
             mb_recheck),
            ("registre exporter (XLSX)", t_export, None),
            (f"état des {len(dossiers):,} dossiers (critères)".replace(",", " "),
             t_dossiers, None),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'étape':<{width}}  {'temps':>8}  {'base':>6}  {'sites/s':>9}  {'taille':>9}")
        for name, secs, mb in rows:
            ratio = f"{secs / base:5.1f}×"
            rate = f"{args.sites / secs:9,.0f}".replace(",", " ")
            size = f"{mb:7.1f} Mo" if mb is not None else ""
            print(f"{name:<{width}}  {secs:7.2f}s  {ratio:>6}  {rate}  {size:>9}")
        print(f"Taille : registre {mb_import:.1f} Mo après l'import "
              f"({mb_import / dump_mb:.1f}× le simple to_sql, {mb_import * 1e6 / args.sites:.0f}"
              f" octets/site), {mb_recheck:.1f} Mo après les deux revérifications.")
        print(f"Import : {res.sites} sites, {res.a_revoir} à revoir ; base = batch + to_sql.")
        print(f"Charge moyenne : {os.getloadavg()[0]:.1f} ({os.cpu_count()} cœurs) ; un passage.")


if __name__ == "__main__":
    main()
