"""Benchmark of the offline geocoder, side by side with addok (the BAN's own engine).

    make bench-geocoding                    # or: .venv/bin/python benchmarks/bench_geocoding.py
    python benchmarks/bench_geocoding.py --n 3000 --seed 7 --fichier adresses-42.csv.gz

From the address file the local geocoder uses (the installed BAN file, else the demonstration
file), draws addresses with a fixed seed and writes perturbed queries as people type them
(abbreviations, typos, missing or wrong postcode, case, accents, extra words, commune first,
« St-Etienne »), keeping the true point. Reports, for each engine: share of queries placed
within 30 m of the truth, share wrongly placed (> 200 m), not found, queries per second
(single thread), index build time and size. Then the ratios local / addok.

addok runs in its own virtualenv (created once in the cache directory: ``pip install addok
addok-fr addok-france``, with the configuration of the BAN's addok images) against a
``redis-server`` (Debian package) started here on 127.0.0.1 on a free port and stopped at the
end. If either cannot be had, the script says why and still reports the local figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qpv_geo.geocoding import (  # noqa: E402
    LocalGeocoder,
    _read_ban_csv,
    adresses_info,
    communes_sem,
)
from qpv_geo.settings import Settings  # noqa: E402

ABBREV = {"Rue": "r", "Avenue": "av", "Boulevard": "bd", "Place": "pl", "Chemin": "ch",
          "Impasse": "imp", "Allée": "all", "Route": "rte", "Montée": "mte", "Saint": "St",
          "Sainte": "Ste", "Passage": "pass", "Square": "sq", "Général": "Gal",
          "Docteur": "Dr", "Président": "Pdt", "Maréchal": "Mal"}
EXTRA_BEFORE = ["Appt 12,", "chez M. Martin", "Mme Durand", "Bât. B", "Résidence Les Lilas,"]
EXTRA_AFTER = ["bâtiment C", "2e étage", "porte 4", "escalier A"]


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))


def typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 5:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(0, 4)
    if kind == 0:
        return word[:i] + word[i + 1:]                           # deletion
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]   # swap
    if kind == 2:
        return word[:i] + "aeioutrsn"[int(rng.integers(0, 9))] + word[i + 1:]  # substitution
    return word[:i] + word[i] + word[i:]                         # doubled letter


def perturb(row: dict, rng: np.random.Generator, postcodes: list[str]) -> tuple[str, list[str]]:
    """One query for an address row, and the names of the perturbations applied."""
    num = f"{row['numero']}{' ' + row['rep'] if row['rep'] else ''}"
    street, pc, city = row["nom_voie"], row["code_postal"], row["nom_commune"]
    kinds = list(rng.choice(["abbrev", "typo", "no_postcode", "case", "accents", "extra",
                             "commune_first", "wrong_postcode", "no_commune", "typo2"],
                            size=int(rng.integers(1, 4)), replace=False))
    if "abbrev" in kinds:
        street = " ".join(ABBREV.get(w, w) for w in street.replace("-", " - ").split()
                          ).replace(" - ", "-")
        city = city.replace("Saint-", "St-").replace("Sainte-", "Ste-")
    if "typo" in kinds or "typo2" in kinds:
        words = street.split()
        k = int(np.argmax([len(w) for w in words]))
        words[k] = typo(words[k], rng)
        if "typo2" in kinds:
            words[k] = typo(words[k], rng)
        street = " ".join(words)
    if "no_postcode" in kinds:
        pc = ""
    elif "wrong_postcode" in kinds:
        pc = str(rng.choice([p for p in postcodes if p != pc]))
    if "no_commune" in kinds and pc:
        city = ""
    text_city = " ".join(p for p in (pc, city) if p)
    if "commune_first" in kinds:
        text = f"{text_city}, {num} {street}"
    else:
        text = f"{num} {street}, {text_city}"
    if "extra" in kinds:
        if rng.random() < 0.5:
            text = f"{rng.choice(EXTRA_BEFORE)} {text}"
        else:
            text = f"{num} {street} {rng.choice(EXTRA_AFTER)}, {text_city}"
    if "case" in kinds:
        text = text.upper() if rng.random() < 0.5 else text.lower()
    if "accents" in kinds:
        text = strip_accents(text)
    return text.strip(" ,"), [str(k) for k in kinds]


def make_queries(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sample = df.sample(n=min(n, len(df)), random_state=seed).to_dict("records")
    postcodes = sorted({p for c in communes_sem() for p in c.postcodes})
    out = []
    for row in sample:
        text, kinds = perturb(row, rng, postcodes)
        out.append({"query": text, "kinds": "+".join(kinds), "lon": float(row["lon"]),
                    "lat": float(row["lat"])})
    return pd.DataFrame(out)


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float))
                              for v in (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_000 * np.arcsin(np.sqrt(a))


def score(truth: pd.DataFrame, lon: np.ndarray, lat: np.ndarray,
          precise: np.ndarray) -> dict[str, float]:
    """Shares within 30 m, beyond 200 m (and among them, claimed at the house number)."""
    found = np.isfinite(lon) & np.isfinite(lat)
    d = np.full(len(truth), np.inf)
    d[found] = haversine_m(truth["lon"].to_numpy()[found], truth["lat"].to_numpy()[found],
                           lon[found], lat[found])
    return {"within_30m": float((d <= 30).mean()), "wrong_200m": float((found & (d > 200)).mean()),
            "wrong_precise": float((found & precise & (d > 200)).mean()),
            "not_found": float((~found).mean()), "median_m": float(np.median(d[found]))
            if found.any() else math.nan}


# ---------------------------------------------------------------------------------------------
# local
# ---------------------------------------------------------------------------------------------


def bench_local(path: Path, queries: pd.DataFrame, *, demo: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        g = LocalGeocoder(path, cache_dir=Path(tmp), demo=demo)
        build = time.perf_counter() - t0
        size = g.index_bytes
        t0 = time.perf_counter()
        g2 = LocalGeocoder(path, cache_dir=Path(tmp), demo=demo)
        load = time.perf_counter() - t0
        texts = queries["query"].tolist()
        t0 = time.perf_counter()
        results = [g2.geocode(q) for q in texts]
        elapsed = time.perf_counter() - t0
    lon = np.array([r.lon if r.found else np.nan for r in results], dtype=float)
    lat = np.array([r.lat if r.found else np.nan for r in results], dtype=float)
    precise = np.array([r.precision == "housenumber" for r in results])
    return {"engine": "qpv-geo local", **score(queries, lon, lat, precise),
            "qps": len(texts) / elapsed,
            "build_s": build, "load_s": load, "index_mb": size / 1e6,
            "_lon": lon, "_lat": lat}


# ---------------------------------------------------------------------------------------------
# addok
# ---------------------------------------------------------------------------------------------

ADDOK_CONFIG = """
REDIS = {{"host": "127.0.0.1", "port": {port}, "indexes": {{"db": 0}},
          "documents": {{"db": 1}}}}
LOG_DIR = {logdir!r}
BATCH_WORKERS = 1
QUERY_PROCESSORS_PYPATHS = [
    "addok.helpers.text.check_query_length",
    "addok_france.extract_address",
    "addok_france.clean_query",
    "addok_france.remove_leading_zeros",
]
SEARCH_RESULT_PROCESSORS_PYPATHS = [
    "addok.helpers.results.match_housenumber",
    "addok_france.make_labels",
    "addok.helpers.results.score_by_importance",
    "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_ngram_distance",
    "addok.helpers.results.score_by_geo_distance",
]
PROCESSORS_PYPATHS = [
    "addok.helpers.text.tokenize",
    "addok.helpers.text.normalize",
    "addok_france.glue_ordinal",
    "addok_france.fold_ordinal",
    "addok_france.flag_housenumber",
    "addok.helpers.text.synonymize",
    "addok_fr.phonemicize",
]
FIELDS = [
    {{"key": "name", "boost": 4, "null": False}},
    {{"key": "street"}},
    {{"key": "postcode", "boost": lambda doc: 1.2 if doc.get("type") == "municipality" else 1}},
    {{"key": "city"}},
    {{"key": "housenumbers"}},
    {{"key": "context"}},
]
FILTERS = ["type", "postcode", "citycode"]
"""

ADDOK_RUNNER = r"""
import json, sys, time
from addok.config import config
config.load()
from addok.core import search
queries = json.load(open(sys.argv[1], encoding="utf-8"))
out = []
t0 = time.perf_counter()
for q in queries:
    try:
        res = search(q, limit=1)
    except Exception as exc:  # one query failing must not stop the benchmark
        res = []
    if res:
        f = res[0].format()
        lon, lat = f["geometry"]["coordinates"]
        out.append([lon, lat, f["properties"].get("score"), f["properties"].get("type")])
    else:
        out.append(None)
elapsed = time.perf_counter() - t0
json.dump({"results": out, "elapsed": elapsed}, open(sys.argv[2], "w"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def addok_venv(cache: Path) -> Path:
    """A virtualenv with addok, addok-fr and addok-france (created once)."""
    venv = cache / "bench" / "addok-venv"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import addok, addok_fr, "
                                           "addok_france"], capture_output=True).returncode == 0:
        return venv
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    print("  installation d'addok dans", venv, "…", flush=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "addok", "addok-fr",
                           "addok-france"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("pip install addok addok-fr addok-france a échoué : "
                           + proc.stderr.strip().splitlines()[-1])
    return venv


def addok_documents(df: pd.DataFrame) -> list[dict]:
    """The address file as addok documents: one per street (with its numbers), per commune."""
    docs: list[dict] = []
    df = df.assign(lonf=df["lon"].astype(float), latf=df["lat"].astype(float))
    for (insee, voie), g in df.groupby(["code_insee", "nom_voie"], sort=True):
        mid = g.iloc[len(g) // 2]
        hn = {}
        for r in g.itertuples(index=False):
            key = f"{r.numero} {r.rep}".strip()
            hn.setdefault(key, {"lat": r.latf, "lon": r.lonf})
        docs.append({"id": f"{insee}_{len(docs)}", "type": "street", "name": voie,
                     "postcode": mid["code_postal"], "citycode": insee,
                     "city": mid["nom_commune"], "lon": mid["lonf"], "lat": mid["latf"],
                     "importance": 0.5, "housenumbers": hn})
    for c in communes_sem():
        g = df[df["code_insee"] == c.insee]
        if len(g):
            docs.append({"id": c.insee, "type": "municipality", "name": c.nom,
                         "postcode": list(c.postcodes), "citycode": c.insee, "city": c.nom,
                         "lon": float(g["lonf"].median()), "lat": float(g["latf"].median()),
                         "importance": 0.8})
    return docs


def bench_addok(df: pd.DataFrame, queries: pd.DataFrame, cache: Path) -> dict | str:
    redis = shutil.which("redis-server")
    if redis is None:
        return ("redis-server absent (paquet Debian « redis-server » : apt-get install "
                "redis-server)")
    try:
        venv = addok_venv(cache)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        return f"addok indisponible : {exc}"
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        port = free_port()
        server = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            conf = tmpd / "addok_bench_conf.py"
            conf.write_text(ADDOK_CONFIG.format(port=port, logdir=tmp), encoding="utf-8")
            env = {**os.environ, "ADDOK_CONFIG_MODULE": str(conf)}
            docs = tmpd / "docs.ndjson"
            with open(docs, "w", encoding="utf-8") as fh:
                for d in addok_documents(df):
                    fh.write(json.dumps(d, ensure_ascii=False) + "\n")
            addok = str(venv / "bin" / "addok")
            t0 = time.perf_counter()
            for cmd in ([addok, "batch", str(docs)], [addok, "ngrams"]):
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
                if proc.returncode != 0:
                    return f"addok {cmd[1]} a échoué : {proc.stderr.strip()[-300:]}"
            build = time.perf_counter() - t0
            info = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"],
                                  capture_output=True, text=True).stdout
            mem = next((int(line.split(":")[1]) for line in info.splitlines()
                        if line.startswith("used_memory:")), 0)
            qfile, rfile = tmpd / "q.json", tmpd / "r.json"
            qfile.write_text(json.dumps(queries["query"].tolist(), ensure_ascii=False),
                             encoding="utf-8")
            runner = tmpd / "run.py"
            runner.write_text(ADDOK_RUNNER, encoding="utf-8")
            proc = subprocess.run([str(venv / "bin" / "python"), str(runner), str(qfile),
                                   str(rfile)], env=env, capture_output=True, text=True,
                                  cwd=tmp)
            if proc.returncode != 0:
                return f"recherche addok impossible : {proc.stderr.strip()[-300:]}"
            data = json.loads(rfile.read_text(encoding="utf-8"))
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    res = data["results"]
    lon = np.array([r[0] if r else np.nan for r in res], dtype=float)
    lat = np.array([r[1] if r else np.nan for r in res], dtype=float)
    precise = np.array([bool(r) and r[3] == "housenumber" for r in res])
    return {"engine": "addok + addok-fr + addok-france (Redis)",
            **score(queries, lon, lat, precise),
            "qps": len(res) / data["elapsed"], "build_s": build, "load_s": math.nan,
            "index_mb": mem / 1e6, "_lon": lon, "_lat": lat}


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fichier", type=Path, help="fichier BAN CSV (défaut : celui du géocodeur "
                    "local : installé, sinon démonstration)")
    ap.add_argument("--n", type=int, default=2000, help="nombre de requêtes (défaut 2000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-addok", action="store_true", help="ne pas lancer addok")
    ap.add_argument("--json", type=Path, help="écrire les chiffres dans ce fichier JSON")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    if args.fichier:
        path, demo = args.fichier, False
    else:
        info = adresses_info(settings)
        path, demo = Path(info["path"]), bool(info["demo"])
    df = _read_ban_csv(path, insee=[c.insee for c in communes_sem()])
    df = df[(df["nom_voie"] != "") & (df["lon"] != "") & (df["lat"] != "")]
    queries = make_queries(df, args.n, args.seed)
    print(f"Fichier : {path} ({len(df)} adresses de SEM{', DÉMONSTRATION' if demo else ''})")
    print(f"Requêtes : {len(queries)} (graine {args.seed}), exemples :")
    for q in queries["query"].head(5):
        print("   ", q)
    rows = [bench_local(path, queries, demo=demo)]
    if args.no_addok:
        print("addok : non lancé (--no-addok)")
    else:
        addok = bench_addok(df, queries, settings.cache_dir)
        if isinstance(addok, str):
            print("addok : non mesuré —", addok)
        else:
            rows.append(addok)
    print()
    print(f"{'moteur':<46} {'≤30 m':>7} {'>200 m':>7} {'dont n°':>7} {'non trouvé':>10} "
          f"{'méd. m':>7} "
          f"{'req/s':>8} {'index s':>8} {'index Mo':>9}")
    for r in rows:
        print(f"{r['engine']:<46} {r['within_30m']:>7.1%} {r['wrong_200m']:>7.1%} "
              f"{r['wrong_precise']:>7.1%} {r['not_found']:>10.1%} {r['median_m']:>7.1f} "
              f"{r['qps']:>8.0f} "
              f"{r['build_s']:>8.2f} {r['index_mb']:>9.2f}")
    print("(« dont n° » : placés à plus de 200 m alors que le résultat se dit au numéro)")
    print(f"index local déjà construit, rechargé en {rows[0]['load_s']:.3f} s")
    if len(rows) == 2:
        loc, ad = rows
        print("\nratios local / addok : précision ≤30 m "
              f"×{loc['within_30m'] / ad['within_30m']:.3f}"
              f", erreurs >200 m ×{loc['wrong_200m'] / max(ad['wrong_200m'], 1e-9):.2f}, "
              f"débit ×{loc['qps'] / ad['qps']:.1f}, construction ×"
              f"{loc['build_s'] / ad['build_s']:.2f}")
    # by perturbation, for the local engine (and addok)
    print("\n≤30 m par type de perturbation (une requête peut en cumuler) :")
    kinds = sorted({k for ks in queries["kinds"] for k in ks.split("+")})
    for k in kinds:
        mask = queries["kinds"].str.split("+").apply(lambda ks, k=k: k in ks).to_numpy()
        cells = []
        for r in rows:
            d = haversine_m(queries["lon"][mask], queries["lat"][mask], r["_lon"][mask],
                            r["_lat"][mask])
            cells.append(f"{np.nan_to_num(d <= 30).mean():6.1%}")
        print(f"  {k:<16} n={mask.sum():<5} " + "  ".join(cells))
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")}
                                         for r in rows], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
