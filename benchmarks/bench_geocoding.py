"""Benchmark of the offline geocoder, side by side with addok (the BAN's own engine).

    make bench-geocoding                    # or: .venv/bin/python benchmarks/bench_geocoding.py
    python benchmarks/bench_geocoding.py --n 3000 --seed 7 --fichier adresses-42.csv.gz
    python benchmarks/bench_geocoding.py --communes-seules   # issue 19's classes only (~1 min)
    python benchmarks/bench_geocoding.py --debit-seul        # the rate only: ×1, ×10, addok
    make bench-geocoding-debit                               # the same (~1–2 min)

From the address file the local geocoder uses (the installed BAN file, else the demonstration
file), draws addresses with a fixed seed and writes perturbed queries as people type them
(abbreviations, typos, missing or wrong postcode, case, accents, extra words, commune first,
« St-Etienne »), keeping the true point. Reports, for each engine: share of queries placed
within 30 m of the truth, share wrongly placed (> 200 m), not found, queries per second
(single thread), index build time and size. Then the ratios local / addok.

addok runs in its own virtualenv (created once in the cache directory: ``pip install addok
addok-fr addok-france addok-csv``, with the configuration of the BAN's addok images) against a
``redis-server`` (Debian package) started here on 127.0.0.1 on a free port and stopped at the
end. If either cannot be had, the script says why and still reports the local figures.

First, issue 19's classes (the commune in doubt, the ways of writing a commune), from their own
seed: false-confident verdicts per class and per path (one by one as ``check`` and the API, a
one-column batch, a three-column batch), for the local file and for addok side by side. addok
is reached as the online service is: its HTTP server (``addok serve``, with addok-csv's
``/search/csv``) queried by qpv-geo's own online client (``BanGeocoder``: ``/search`` one
address at a time, ``/search/csv`` for a batch, the same consistency rules).
"""

from __future__ import annotations

import argparse
import contextlib
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
    GeocodeResult,
    LocalGeocoder,
    adresses_info,
    communes_sem,
    not_found,
    read_ban_csv,
    reliability_issues,
)
from qpv_geo.geocoding.ban import BanGeocoder  # noqa: E402
from qpv_geo.geocoding.consistency import forget_read_queries  # noqa: E402
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


# ---------------------------------------------------------------------------------------------
# negatives: queries that must NOT give a confident verdict
# ---------------------------------------------------------------------------------------------

FIRST = ["Adèle", "Bastien", "Céline", "Damien", "Eliane", "Fabrice", "Gisèle", "Hector",
         "Inès", "Joachim", "Karine", "Lucien", "Mireille", "Norbert", "Odile", "Perrine",
         "Quentin", "Rosalie", "Sylvain", "Thérèse", "Ulysse", "Violette", "Wilfried", "Yvette"]
LAST = ["Balay", "Cochet", "Dumoulin", "Escoffier", "Fougerolle", "Grangeon", "Hautbois",
        "Jacquemond", "Lacroix", "Marcellin", "Neyron", "Oriol", "Peyrard", "Rivollier",
        "Sabatier", "Teyssier", "Vialleton", "Bruyère", "Chazelle", "Fayolle", "Gonnet"]
THINGS = ["Licornes", "Sapins Bleus", "Hirondelles", "Genêts", "Mûriers", "Frênes",
          "Glycines", "Ajoncs", "Bleuets", "Saules", "Trembles", "Fougères", "Ormeaux"]
NEG_TYPES = ["Rue", "Rue", "Rue", "Avenue", "Impasse", "Chemin", "Allée", "Place", "Boulevard"]
NONSENSE = "bcdfghjklmnpqrstvwxz"
FOREIGN = [("69002", "Lyon"), ("42300", "Roanne"), ("42170", "Saint-Just-Saint-Rambert"),
           ("75011", "Paris"), ("43200", "Yssingeaux"), ("63000", "Clermont-Ferrand"),
           ("42600", "Montbrison"), ("38200", "Vienne"), ("07100", "Annonay"),
           ("42210", "Montrond-les-Bains"), ("13001", "Marseille"), ("26000", "Valence")]
#: Kinds whose right answer is « hors territoire » (a commune or postcode outside SEM).
OUTSIDE_KINDS = ("commune_hors_sem", "code_postal_hors_sem")


def make_negatives(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` queries that must not give a confident verdict, drawn with ``seed`` (held out:
    never the seed used to tune the thresholds)."""
    from qpv_geo.geocoding import match_key

    rng = np.random.default_rng(seed)
    keys = {match_key(v) for v in df["nom_voie"].unique()}
    by_commune = {c: set(g["nom_voie"]) for c, g in df.groupby("code_insee")}
    communes = communes_sem()
    rows = df.sample(n=min(n, len(df)), random_state=seed).to_dict("records")
    kinds = ["rue_absente", "rue_absente_sans_commune", "commune_fausse", "commune_hors_sem",
             "code_postal_hors_sem", "commune_seule", "charabia", "numero_absent"]
    out = []
    for k in range(n):
        kind = kinds[k % len(kinds)]
        row = rows[k % len(rows)]
        num = int(rng.integers(1, 80))
        c = communes[int(rng.integers(0, len(communes)))]
        pc = c.postcodes[int(rng.integers(0, len(c.postcodes)))]
        if kind in ("rue_absente", "rue_absente_sans_commune"):
            while True:
                if rng.random() < 0.6:
                    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                else:
                    name = f"des {rng.choice(THINGS)}"
                street = f"{rng.choice(NEG_TYPES)} {name}"
                if match_key(street) not in keys:
                    break
            text = (f"{num} {street}, {pc} {c.nom}" if kind == "rue_absente"
                    else f"{num} {street}")
        elif kind == "commune_fausse":
            others = [o for o in communes if row["nom_voie"] not in by_commune.get(o.insee, ())
                      and o.insee != row["code_insee"]]
            o = others[int(rng.integers(0, len(others)))]
            text = f"{row['numero']} {row['nom_voie']}, {o.postcodes[0]} {o.nom}"
        elif kind == "commune_hors_sem":
            fpc, fcity = FOREIGN[int(rng.integers(0, len(FOREIGN)))]
            text = f"{row['numero']} {row['nom_voie']}, {fpc} {fcity}"
        elif kind == "code_postal_hors_sem":
            fpc, _ = FOREIGN[int(rng.integers(0, len(FOREIGN)))]
            text = f"{row['numero']} {row['nom_voie']} {fpc}"
        elif kind == "commune_seule":
            text = f"{pc} {c.nom}" if rng.random() < 0.5 else c.nom
        elif kind == "charabia":
            words = ["".join(rng.choice(list(NONSENSE), size=int(rng.integers(4, 9))))
                     for _ in range(int(rng.integers(2, 4)))]
            text = f"{num} " + " ".join(words)
        else:  # numero_absent: far beyond the last number of a real street
            last = df[(df["code_insee"] == row["code_insee"])
                      & (df["nom_voie"] == row["nom_voie"])]["numero"].astype(int).max()
            text = f"{int(last) + 300} {row['nom_voie']}, {row['code_postal']} " \
                   f"{row['nom_commune']}"
        out.append({"query": text, "kind": kind})
    return pd.DataFrame(out)


#: Issue 19's classes: the commune in doubt (negatives: no firm verdict of SEM may come out)
#: and the ways of writing a commune that must be read (positives: the true verdict).
COMMUNE_NEG = ("commune_etrangere_sans_cp", "commune_illisible_apres_cp",
               "cellule_commune_illisible", "mot_generique", "type_de_voie_seul")
COMMUNE_POS = ("cedex", "departement_entre_parentheses", "ancienne_commune",
               "commune_en_colonne")
GENERIC = ["Le Bourg", "Loire", "Mairie", "Les Granges", "Centre", "La Gare", "Eglise",
           "Le Moulin"]
FOREIGN_NAMES = ["Lyon", "Roanne", "Paris", "Montbrison", "Feurs", "Annonay", "Vienne",
                 "Grenoble", "Clermont-Ferrand", "Marseille 8e", "Lyon 3e"]


def garble(name: str, rng: np.random.Generator) -> str:
    """A commune name nobody can read back: letters changed or dropped until it is less than
    80 % like the name (a lighter typo is read as the commune, rightly) and no commune's."""
    from rapidfuzz import fuzz

    from qpv_geo.geocoding import match_key
    from qpv_geo.reference.communes import communes_france, name_key

    chars = list(name)
    while True:
        k = int(rng.integers(0, len(chars)))
        chars[k] = str(rng.choice(list(NONSENSE))) if rng.random() < 0.6 else ""
        text = "".join(chars)
        if max(fuzz.ratio(match_key(text), match_key(name)),
               fuzz.ratio(name_key(text), name_key(name))) < 80 \
                and not communes_france().has_key(name_key(text)) and match_key(text):
            return text


def make_commune_queries(df: pd.DataFrame, n_per_class: int, seed: int) -> pd.DataFrame:
    """Queries of issue 19's classes (``COMMUNE_NEG`` then ``COMMUNE_POS``), drawn with
    ``seed`` (kept apart from the tuning seed 7 and the other negatives' seed). Columns:
    ``adresse``, ``code_postal``, ``commune`` (the three-column form), ``query`` (one line),
    ``kind``, ``positive`` and, for positives, the true ``lon``/``lat``."""
    from qpv_geo.reference.communes import FORMER_COMMUNES

    rng = np.random.default_rng(seed)
    rows = df.sample(n=min(len(df), 8 * n_per_class), random_state=seed).to_dict("records")
    se = df[df["code_insee"] == "42218"].sample(n=min(n_per_class, len(df)), random_state=seed,
                                                 replace=True).to_dict("records")
    former = [k for k, v in FORMER_COMMUNES.items() if v == "42218"]
    out: list[dict] = []

    def add(kind: str, adresse: str, cp: str = "", commune: str = "", *,
            row: dict | None = None, line: str | None = None) -> None:
        out.append({"kind": kind, "adresse": adresse, "code_postal": cp, "commune": commune,
                    "query": line or " ".join(p for p in (adresse, cp, commune) if p),
                    "positive": row is not None,
                    "lon": float(row["lon"]) if row else np.nan,
                    "lat": float(row["lat"]) if row else np.nan})

    for k in range(n_per_class):
        r = rows[k]
        street = f"{r['numero']} {r['nom_voie']}"
        foreign = FOREIGN_NAMES[int(rng.integers(0, len(FOREIGN_NAMES)))]
        sep = ", " if rng.random() < 0.5 else " "
        add("commune_etrangere_sans_cp", street + sep + foreign, line=street + sep + foreign)
        add("commune_illisible_apres_cp", f"{street}, {r['code_postal']} "
            f"{garble(r['nom_commune'], rng)}")
        add("cellule_commune_illisible", street, "", garble(r["nom_commune"], rng))
        add("mot_generique", GENERIC[k % len(GENERIC)])
        add("type_de_voie_seul", str(rng.choice(["rue", "Cours", "Place", "Chemin", "Allée",
                                                 "bd", "Impasse"])))
        p = rows[n_per_class + k]
        pstreet = f"{p['numero']}{' ' + p['rep'] if p['rep'] else ''} {p['nom_voie']}"
        cedex = f"{p['code_postal'][:2]}0{int(rng.integers(10, 99))}"
        add("cedex", f"{pstreet}, BP {int(rng.integers(10, 999))}", cedex,
            f"{p['nom_commune']} Cedex {int(rng.integers(1, 9))}", row=p)
        add("departement_entre_parentheses", pstreet, "",
            f"{p['nom_commune']} ({'Loire' if rng.random() < 0.5 else '42'})", row=p)
        s_row = se[k % len(se)]
        sstreet = f"{s_row['numero']}{' ' + s_row['rep'] if s_row['rep'] else ''} " \
                  f"{s_row['nom_voie']}"
        add("ancienne_commune", sstreet, "", former[k % len(former)], row=s_row)
        add("commune_en_colonne", pstreet, p["code_postal"],
            p["nom_commune"].upper().replace("SAINT-", "ST "), row=p)
    return pd.DataFrame(out)


def bench_communes(geocoders: dict, queries: pd.DataFrame, settings: Settings,
                   *, examples: int = 3) -> dict:
    """Per class, per path (one by one as ``check`` and the API do, and as a batch of one
    column and of three columns does) and per geocoder: false-confident negatives (a firm
    verdict of SEM, or « hors territoire » for a generic word or an unread commune) and right
    positives (the true point's verdict, within 30 m). ``geocoders``: name → geocoder (the
    local file, the online client against addok); each goes through its own
    ``geocode`` / ``geocode_many``, so the online client's consistency rules, ``/search``
    for one address and ``/search/csv`` for a batch are the ones measured. Prints up to
    ``examples`` wrong answers per geocoder and class; returns the table."""
    from qpv_geo.eligibility.engine import Engine
    from qpv_geo.geocoding import AddressQuery
    from qpv_geo.reference.layers import load_reference

    engine = Engine(load_reference(settings))
    one_line = queries["query"].tolist()
    three = [AddressQuery(a, postcode=c or None, city=m or None) for a, c, m in
             zip(queries["adresse"], queries["code_postal"], queries["commune"], strict=True)]
    truth = engine.judge_lonlat(queries["lon"].to_numpy(), queries["lat"].to_numpy())
    firm = {"eligible", "qva", "hors_qpv"}
    outside_is_false = queries["kind"].isin(["mot_generique", "type_de_voie_seul",
                                             "commune_illisible_apres_cp",
                                             "cellule_commune_illisible"]).to_numpy()
    negative = queries["kind"].isin(COMMUNE_NEG).to_numpy()
    table: dict[str, dict[str, float]] = {}
    wrong: dict[str, list[str]] = {}
    misses: dict[str, dict[str, int]] = {}
    columns = []
    for gname, geocoder in geocoders.items():
        t0 = time.perf_counter()
        paths = {
            "check/API": [geocoder.geocode(q) for q in one_line],
            "lot 1 col.": geocoder.geocode_many(one_line),
            "lot 3 col.": geocoder.geocode_many(three),
        }
        print(f"  {gname} : {3 * len(queries)} géocodages en {time.perf_counter() - t0:.0f} s",
              flush=True)
        for path, results in paths.items():
            col = f"{gname} {path}"
            columns.append(col)
            lon = np.array([r.lon if r.found else np.nan for r in results], dtype=float)
            lat = np.array([r.lat if r.found else np.nan for r in results], dtype=float)
            v = engine.judge_lonlat(lon, lat, geocodes=results)
            status = v["status"].to_numpy()
            d = np.where(np.isfinite(lon), haversine_m(queries["lon"].fillna(0),
                                                       queries["lat"].fillna(0),
                                                       np.nan_to_num(lon), np.nan_to_num(lat)),
                         np.inf)
            false = np.isin(status, list(firm)) | ((status == "hors_territoire")
                                                   & outside_is_false)
            right = (status == truth["status"].to_numpy()) & (d <= 30)
            bad = np.where(negative, false, ~right)
            # why the positives missed: the point, the score gate, the margin at a QPV edge
            for i in np.flatnonzero(~negative & ~right):
                r = results[i]
                issues = reliability_issues(r, score_min=settings.score_min) if r.found else []
                why = ("point absent ou à plus de 30 m" if d[i] > 30
                       else "score sous le seuil" if any(x.startswith("score ") for x in issues)
                       else "au bord d'un QPV (marge)" if not issues
                       and "du bord de" in str(v["motifs"].iloc[i])
                       else "autre motif « à vérifier »" if status[i] == "a_verifier"
                       else f"verdict {status[i]}")
                why = f"{queries['kind'].iloc[i]}, {why}"
                misses.setdefault(col, {}).setdefault(why, 0)
                misses[col][why] += 1
            for kind in (*COMMUNE_NEG, *COMMUNE_POS):
                m = (queries["kind"] == kind).to_numpy()
                table.setdefault(kind, {})[col] = float((right if kind in COMMUNE_POS
                                                         else false)[m].mean())
                for i in np.flatnonzero(m & bad):
                    lst = wrong.setdefault(f"{gname} — {kind}", [])
                    if len(lst) < examples:
                        r = results[i]
                        where = (f"{r.label} ({r.citycode}, score {r.score:.2f}), "
                                 f"{d[i]:.0f} m" if r.found else "non trouvée")
                        why = "; ".join(reliability_issues(r, score_min=settings.score_min))
                        where += f" — {why[:160]}" if why else ""
                        lst.append(f"[{path}] « {queries['query'].iloc[i]} » → {status[i]} : "
                                   f"{where}")
            table.setdefault("négatives (toutes)", {})[col] = float(false[negative].mean())
            table.setdefault("positives (toutes)", {})[col] = float(right[~negative].mean())
    print(f"\nIssue 19 ({len(queries)} requêtes, graine à part) — négatives « − » : "
          "faux-confiants (cible ≤ 0,5 %) ; positives « + » : bon verdict à ≤ 30 m "
          "(cible ≥ 95 %)")
    for gname in geocoders:
        print(f"  {gname} :")
        cols = [c for c in columns if c.startswith(gname + " ")]
        print(f"    {'classe':<32} " + " ".join(f"{c[len(gname) + 1:]:>11}" for c in cols))
        for kind, cells in table.items():
            label = ("− " if kind in COMMUNE_NEG or kind.startswith("nég") else "+ ") + kind
            print(f"    {label:<32} " + " ".join(f"{cells[c]:>11.1%}" for c in cols))
    print("  (« check/API » = une adresse à la fois ; pour addok, le client en ligne de qpv-geo "
          "interroge le serveur HTTP d'addok : /search une à une, /search/csv en lot)")
    n_pos = int((~negative).sum())
    print(f"\nPositives manquées ({n_pos} par chemin), par cause :")
    for col, causes in misses.items():
        print(f"  {col}")
        for k, n in sorted(causes.items()):
            print(f"      {k} : {n}")
    if wrong:
        print("\nRéponses fausses (au plus", examples, "par classe) :")
        for key, lst in wrong.items():
            print(f"  {key}")
            for line in lst:
                print("     ", line)
    table["_manquées"] = misses  # type: ignore[assignment]
    return table


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float))
                              for v in (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_000 * np.arcsin(np.sqrt(a))


def confident(results: list[GeocodeResult], score_min: float) -> np.ndarray:
    """True where the result would support a confident verdict from its point."""
    return np.array([r.found and not r.hors_territoire
                     and not reliability_issues(r, score_min=score_min) for r in results],
                    dtype=bool)


def evaluate(positives: pd.DataFrame, pos: list[GeocodeResult], negatives: pd.DataFrame,
             neg: list[GeocodeResult], score_min: float) -> dict[str, float]:
    """Positives: within 30 m, confident, confident but > 30 m off (a wrong match);
    negatives: false-confident rate (a confident verdict from a wrong match, or
    « hors territoire » where the commune written is in SEM)."""
    lon = np.array([r.lon if r.found else np.nan for r in pos], dtype=float)
    lat = np.array([r.lat if r.found else np.nan for r in pos], dtype=float)
    d = np.where(np.isfinite(lon), haversine_m(positives["lon"], positives["lat"],
                                               np.nan_to_num(lon), np.nan_to_num(lat)), np.inf)
    conf_p = confident(pos, score_min)
    conf_n = confident(neg, score_min)
    outside = negatives["kind"].isin(OUTSIDE_KINDS).to_numpy()
    ht = np.array([bool(r.hors_territoire) for r in neg], dtype=bool)
    false_conf = conf_n | (ht & ~outside)
    return {"within_30m": float((d <= 30).mean()), "confident": float(conf_p.mean()),
            "confident_within_30m": float((conf_p & (d <= 30)).mean()),
            "pos_false_confident": float((conf_p & (d > 30)).mean()),
            "false_confident": float(false_conf.mean()),
            "hors_territoire_ok": float(ht[outside].mean()) if outside.any() else math.nan,
            "_d": d, "_false": false_conf}


# ---------------------------------------------------------------------------------------------
# local
# ---------------------------------------------------------------------------------------------


def bench_local(path: Path, texts: list[str], *, demo: bool) -> dict:
    """Build (timed), reload, then geocode ``texts`` one by one (median of 3 runs, single
    thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        g = LocalGeocoder(path, cache_dir=Path(tmp), demo=demo)
        build = time.perf_counter() - t0
        size = g.index_bytes
        t0 = time.perf_counter()
        g2 = LocalGeocoder(path, cache_dir=Path(tmp), demo=demo)
        load = time.perf_counter() - t0
        g2.geocode(texts[0])  # warm-up (lazy imports, commune list)
        times = []
        for _ in range(3):  # the median of 3: the machine is shared
            forget_read_queries()  # each run cold: no query read in a previous run
            t0 = time.perf_counter()
            results = [g2.geocode(q) for q in texts]
            times.append(time.perf_counter() - t0)
    return {"results": results, "elapsed": float(np.median(times)), "build_s": build,
            "load_s": load, "index_mb": size / 1e6, "streets": len(g2.s_key)}


def timed_interleaved(g1: LocalGeocoder, q1: list[str], g10: LocalGeocoder, q10: list[str],
                      *, runs: int = 5, addok: AddokIndex | None = None) -> dict:
    """Queries per second (wall clock, one thread) of ``runs`` alternated runs: the geocoder
    of the file ×1 on its queries, the one of the file ×10 on its own, and addok (the peer, on
    the ×1 queries) when given; each run cold (no query read in a previous run). Also the
    rates in CPU time of this process (what a busy machine changes least), the results of the
    last run and the load average before and after."""
    g1.geocode(q1[0])
    g10.geocode(q10[0])
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {"x1": [], "x10": [], "addok": []}
    cpu: dict[str, list[float]] = {"x1": [], "x10": []}
    res: dict[str, list[GeocodeResult]] = {}
    for _ in range(runs):
        for name, g, qs in (("x1", g1, q1), ("x10", g10, q10)):
            forget_read_queries()
            t0, c0 = time.perf_counter(), time.process_time()
            res[name] = [g.geocode(q) for q in qs]
            rates[name].append(len(qs) / (time.perf_counter() - t0))
            cpu[name].append(len(qs) / (time.process_time() - c0))
        if addok is not None:
            try:
                rates["addok"].append(len(q1) / addok.first_results(q1)["elapsed"])
            except AddokUnavailable as exc:
                print("addok : non mesuré —", exc)
                addok = None
    return {"rates": rates, "cpu": cpu, "res1": res["x1"], "res10": res["x10"],
            "load": (load_before, os.getloadavg())}


def print_rates(t: dict, *, streets1: int, rows1: int, streets10: int, rows10: int,
                within1: float, within10: float) -> dict:
    """The medians of :func:`timed_interleaved` with their spread and the load average."""
    med = {k: float(np.median(v)) for k, v in t["rates"].items() if v}
    spread = {k: f"{min(v):.0f}–{max(v):.0f}" for k, v in t["rates"].items() if v}
    n = len(t["rates"]["x1"])
    (b1, b5, b15), (a1, a5, a15) = t["load"]
    print(f"\nDébit (requêtes/s, un cœur, médiane de {n} mesures alternées ×1 / ×10"
          f"{' / addok' if 'addok' in med else ''}) — charge moyenne de la machine "
          f"{b1:.2f} {b5:.2f} {b15:.2f} avant, {a1:.2f} {a5:.2f} {a15:.2f} après ({os.cpu_count()} "
          "cœurs)")
    print(f"  ×1  : {streets1} voies ({rows1} adresses) : {med['x1']:.0f} req/s "
          f"({spread['x1']}), ≤30 m {within1:.1%}")
    print(f"  ×10 : {streets10} voies ({rows10} adresses) : {med['x10']:.0f} req/s "
          f"({spread['x10']}), ≤30 m {within10:.1%} ; ×10 coûte ×{med['x1'] / med['x10']:.2f} "
          "le temps de ×1 (cible : ≥ 2 000 req/s à ×10, précision inchangée)")
    cpu = {k: float(np.median(v)) for k, v in t["cpu"].items()}
    print(f"  en temps CPU du processus (médianes) : ×1 {cpu['x1']:.0f} req/s, ×10 "
          f"{cpu['x10']:.0f} req/s")
    if "addok" in med:
        print(f"  addok (redis, fichier ×1, API Python, un cœur) : {med['addok']:.0f} req/s "
              f"({spread['addok']}) ; local ×1 / addok = ×{med['x1'] / med['addok']:.1f}, "
              f"local ×10 / addok = ×{med['x10'] / med['addok']:.1f}")
    return {"median_qps": med, "runs": t["rates"], "median_cpu_qps": cpu,
            "loadavg_before": t["load"][0],
            "loadavg_after": t["load"][1]}


def tenfold_geocoder(df: pd.DataFrame, seed: int, tmp: Path) -> tuple[LocalGeocoder,
                                                                      pd.DataFrame, float]:
    """The geocoder of the file with 10× the streets (built in ``tmp``), the file, and the
    index build time."""
    big = make_tenfold(df, seed)
    big_path = tmp / "adresses-x10.csv.gz"
    write_ban_csv(big, big_path)
    t0 = time.perf_counter()
    g10 = LocalGeocoder(big_path, cache_dir=tmp, demo=True)
    return g10, big, time.perf_counter() - t0


def bench_throughput(args: argparse.Namespace, df: pd.DataFrame, g: LocalGeocoder,
                     settings: Settings, addok: AddokIndex | None) -> dict:
    """The rate alone (``--debit-seul``): the file ×1 and ×10 alternated, addok beside."""
    positives = make_queries(df, args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        g10, big, build10 = tenfold_geocoder(df, args.seed, Path(tmp))
        q10 = make_queries(big, args.n, args.seed)
        t = timed_interleaved(g, positives["query"].tolist(), g10, q10["query"].tolist(),
                              runs=args.runs, addok=addok)
    nothing = make_negatives(df, 1, args.seed_negatifs)
    ev1 = evaluate(positives, t["res1"], nothing, [not_found("", "", source="")],
                   settings.score_min)
    ev10 = evaluate(q10, t["res10"], nothing, [not_found("", "", source="")],
                    settings.score_min)
    print(f"Index ×10 construit en {build10:.1f} s")
    return print_rates(t, streets1=len(g.s_key), rows1=len(df), streets10=len(g10.s_key),
                       rows10=len(big), within1=ev1["within_30m"], within10=ev10["within_30m"])


def make_tenfold(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A file with 10× the streets of ``df`` (same communes): each street and its addresses
    copied 9 times under other invented names, positions shifted a little. For speed only."""
    rng = np.random.default_rng(seed)
    names = [f"{f} {last}" for f in FIRST for last in LAST] + [f"des {t}" for t in THINGS]
    streets = df[["code_insee", "nom_voie"]].drop_duplicates().to_numpy()
    parts = [df]
    for copy in range(9):
        order = rng.permutation(len(names))
        mapping = {}
        for j, (insee, voie) in enumerate(streets):
            typ = voie.split()[0] if voie.split()[0] in STREET_WORDS else "Lieu-dit"
            mapping[(insee, voie)] = (f"{typ} {names[order[(j + copy * 7) % len(names)]]} "
                                      f"{_roman(copy + 2)}")
        c = df.copy()
        c["nom_voie"] = [mapping[(i, v)] for i, v in zip(c["code_insee"], c["nom_voie"],
                                                         strict=True)]
        c["lon"] = (c["lon"].astype(float) + rng.normal(0, 0.002)).map(lambda v: f"{v:.6f}")
        c["lat"] = (c["lat"].astype(float) + rng.normal(0, 0.002)).map(lambda v: f"{v:.6f}")
        c["nom_ld"] = ""
        parts.append(c)
    return pd.concat(parts, ignore_index=True)


STREET_WORDS = {"Rue", "Avenue", "Boulevard", "Place", "Chemin", "Impasse", "Allée", "Route",
                "Montée", "Cours", "Passage", "Square"}


def _roman(k: int) -> str:
    return ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"][k]


def write_ban_csv(df: pd.DataFrame, path: Path) -> None:
    """``df`` (the columns read by the geocoder) as a BAN CSV."""
    from qpv_geo.geocoding import BAN_CSV_COLUMNS

    full = df.reindex(columns=list(BAN_CSV_COLUMNS), fill_value="")
    full.to_csv(path, sep=";", index=False, compression="gzip")


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
# the columns the BAN / Géoplateforme service adds on /search/csv (addok-csv)
CSV_EXTRA_FIELDS = ["name", "street", "postcode", "city", "context", "citycode"]
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
        p = f["properties"]
        out.append([lon, lat, p.get("score"), p.get("type"), p.get("label"), p.get("street"),
                    p.get("name"), p.get("citycode"), p.get("postcode")])
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
    """A virtualenv with addok, addok-fr, addok-france and addok-csv (the BAN's
    ``/search/csv``), created once."""
    venv = cache / "bench" / "addok-venv"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import addok, addok_fr, addok_france, addok_csv"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return venv
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    print("  installation d'addok dans", venv, "…", flush=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "addok", "addok-fr",
                           "addok-france", "addok-csv"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("pip install addok addok-fr addok-france addok-csv a échoué : "
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


class AddokUnavailable(RuntimeError):
    """addok cannot be run here; the message says why, in French."""


class AddokIndex:
    """addok on the benchmark's address file, for the time of a ``with`` block: a
    ``redis-server`` on a free port of 127.0.0.1, the documents imported (timed), then either
    addok's Python API (:meth:`first_results`) or its HTTP server with ``/search`` and
    addok-csv's ``/search/csv`` (:meth:`serve`), the protocol of the BAN / Géoplateforme
    service. Everything it started is stopped on exit."""

    def __init__(self, df: pd.DataFrame, cache: Path) -> None:
        self.df, self.cache = df, cache
        self._procs: list[subprocess.Popen] = []
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> AddokIndex:
        redis = shutil.which("redis-server")
        if redis is None:
            raise AddokUnavailable("redis-server absent (paquet Debian « redis-server » : "
                                   "apt-get install redis-server)")
        try:
            self.venv = addok_venv(self.cache)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            raise AddokUnavailable(f"addok indisponible : {exc}") from exc
        self._tmp = tempfile.TemporaryDirectory()
        try:
            self._start(redis)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, redis: str) -> None:
        tmp = self._tmp.name
        self.dir = Path(tmp)
        self.port = free_port()
        self._procs.append(subprocess.Popen(
            [redis, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not _wait_port(self.port, 5):
            raise AddokUnavailable("redis-server n'a pas démarré")
        conf = self.dir / "addok_bench_conf.py"
        conf.write_text(ADDOK_CONFIG.format(port=self.port, logdir=tmp), encoding="utf-8")
        self.env = {**os.environ, "ADDOK_CONFIG_MODULE": str(conf)}
        docs = self.dir / "docs.ndjson"
        with open(docs, "w", encoding="utf-8") as fh:
            for d in addok_documents(self.df):
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
        self.addok = str(self.venv / "bin" / "addok")
        t0 = time.perf_counter()
        for cmd in ([self.addok, "batch", str(docs)], [self.addok, "ngrams"]):
            proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, cwd=tmp)
            if proc.returncode != 0:
                raise AddokUnavailable(f"addok {cmd[1]} a échoué : "
                                       f"{proc.stderr.strip()[-300:]}")
        self.build_s = time.perf_counter() - t0
        info = subprocess.run(["redis-cli", "-p", str(self.port), "info", "memory"],
                              capture_output=True, text=True).stdout
        self.index_mb = next((int(line.split(":")[1]) for line in info.splitlines()
                              if line.startswith("used_memory:")), 0) / 1e6

    def first_results(self, texts: list[str]) -> dict:
        """addok's first result for each text through its Python API (single thread), and
        the time taken."""
        qfile, rfile = self.dir / "q.json", self.dir / "r.json"
        qfile.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        runner = self.dir / "run.py"
        runner.write_text(ADDOK_RUNNER, encoding="utf-8")
        proc = subprocess.run([str(self.venv / "bin" / "python"), str(runner), str(qfile),
                               str(rfile)], env=self.env, capture_output=True, text=True,
                              cwd=self.dir)
        if proc.returncode != 0:
            raise AddokUnavailable(f"recherche addok impossible : {proc.stderr.strip()[-300:]}")
        return json.loads(rfile.read_text(encoding="utf-8"))

    def serve(self) -> str:
        """Start addok's HTTP server (``addok serve``) and return its base URL."""
        port = free_port()
        log = open(self.dir / "serve.log", "w", encoding="utf-8")  # noqa: SIM115
        self._procs.append(subprocess.Popen(
            [self.addok, "serve", "--host", "127.0.0.1", "--port", str(port)], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir))
        log.close()
        if not _wait_port(port, 30):
            raise AddokUnavailable("le serveur HTTP d'addok n'a pas démarré : "
                                   + (self.dir / "serve.log").read_text()[-300:])
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _wait_port(port: int, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def addok_results(texts: list[str], raw: list) -> list[GeocodeResult]:
    """addok's first results as :class:`GeocodeResult` (street = ``street`` or ``name``)."""
    out = []
    for text, r in zip(texts, raw, strict=True):
        if not r:
            out.append(not_found(text, "non trouvée par addok", source="addok"))
            continue
        lon, lat, sc, kind, label, street, name, citycode, postcode = r
        out.append(GeocodeResult(
            text, float(lon), float(lat), label=label, score=float(sc or 0), precision=kind
            if kind in ("housenumber", "street", "locality", "municipality") else "street",
            citycode=citycode, postcode=postcode, source="addok",
            street=street if kind == "housenumber" else (name if kind in ("street", "locality")
                                                         else None)))
    return out


# ---------------------------------------------------------------------------------------------


def street_sim(query: str, result: GeocodeResult) -> float:
    """The street similarity the consistency rules compute for this pair (nan: none)."""
    from qpv_geo.geocoding import match_key
    from qpv_geo.geocoding.consistency import (
        STOP_WORDS,
        _drop_commune_words,
        read_written,
        street_similarity,
    )
    from qpv_geo.reference.communes import communes_france

    if not result.found or not result.street or result.precision not in ("housenumber",
                                                                          "street"):
        return math.nan
    w = read_written(query)
    asked = w.street
    words = " ".join(x for x in w.commune_words if x not in STOP_WORDS)
    if words and not w.commune_certain and words in match_key(result.street):
        asked = f"{asked} {' '.join(w.commune_words)}".strip()
    asked = _drop_commune_words(asked, communes_france().by_insee.get(result.citycode or ""))
    if not asked:
        return math.nan
    return street_similarity(asked, match_key(result.street))


def sweep(name: str, positives: pd.DataFrame, pos: list[GeocodeResult],
          negatives: pd.DataFrame, neg: list[GeocodeResult]) -> None:
    """Street-similarity thresholds: right matches refused vs absent streets accepted."""
    lon = np.array([r.lon if r.found else np.nan for r in pos], dtype=float)
    lat = np.array([r.lat if r.found else np.nan for r in pos], dtype=float)
    d = np.where(np.isfinite(lon), haversine_m(positives["lon"], positives["lat"],
                                               np.nan_to_num(lon), np.nan_to_num(lat)), np.inf)
    good = np.array([street_sim(q, r) for q, r in zip(positives["query"], pos, strict=True)])
    good = good[(d <= 30) & np.isfinite(good)]
    absent = negatives["kind"].str.startswith("rue_absente").to_numpy()
    bad = np.array([street_sim(q, r) for q, r, a in zip(negatives["query"], neg, absent,
                                                       strict=True) if a])
    bad = bad[np.isfinite(bad)]
    print(f"\nSeuil de similarité des rues — {name} (jeu de réglage) : bonnes rues "
          f"refusées / rues absentes acceptées (sur {len(good)} bonnes, {absent.sum()} "
          "absentes)")
    for t in (60, 65, 70, 75, 80, 85, 90):
        print(f"  seuil {t:>3} : {np.mean(good < t):6.1%} refusées   "
              f"{np.sum(bad >= t) / max(absent.sum(), 1):6.1%} acceptées")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fichier", type=Path, help="fichier BAN CSV (défaut : le fichier BAN "
                    "installé, sinon le fichier de démonstration)")
    ap.add_argument("--n", type=int, default=2000, help="requêtes positives (défaut 2000)")
    ap.add_argument("--negatifs", type=int, default=1200,
                    help="requêtes négatives (défaut 1200, au moins 1000)")
    ap.add_argument("--seed", type=int, default=42, help="graine des positives")
    ap.add_argument("--seed-negatifs", type=int, default=2026,
                    help="graine des négatives, tenue à l'écart du réglage (défaut 2026)")
    ap.add_argument("--seed-communes", type=int, default=1919,
                    help="graine des requêtes de l'issue 19 (communes), à part (défaut 1919)")
    ap.add_argument("--n-communes", type=int, default=40,
                    help="requêtes par classe de l'issue 19 (défaut 40)")
    ap.add_argument("--communes-seules", action="store_true",
                    help="ne mesurer que les classes de l'issue 19 (communes écrites)")
    ap.add_argument("--no-addok", action="store_true", help="ne pas lancer addok")
    ap.add_argument("--no-10x", action="store_true", help="ne pas mesurer le fichier ×10")
    ap.add_argument("--debit-seul", "--throughput-only", dest="debit_seul",
                    action="store_true", help="ne mesurer que le débit : fichiers ×1 et ×10 "
                    "en alternance, addok à côté (sauf --no-addok), avec la charge de la "
                    "machine (~1–2 min)")
    ap.add_argument("--runs", type=int, default=5,
                    help="mesures alternées du débit, dont on donne la médiane (défaut 5)")
    ap.add_argument("--json", type=Path, help="écrire les chiffres dans ce fichier JSON")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    if args.fichier:
        path, demo = args.fichier, False
    else:
        info = adresses_info(settings)
        path, demo = Path(info["path"]), bool(info["demo"])
    df = read_ban_csv(path, insee=[c.insee for c in communes_sem()])
    df = df[(df["nom_voie"] != "") & (df["lon"] != "") & (df["lat"] != "")]
    g = LocalGeocoder(path, cache_dir=settings.cache_dir / "bench", demo=demo)
    with contextlib.ExitStack() as stack:
        addok = None
        if args.no_addok:
            print("addok : non lancé (--no-addok)")
        else:
            try:
                addok = stack.enter_context(AddokIndex(df, settings.cache_dir))
            except AddokUnavailable as exc:
                print("addok : non mesuré —", exc)
        if args.debit_seul:
            out = bench_throughput(args, df, g, settings, addok)
            if args.json:
                args.json.write_text(json.dumps({"debit": out}, indent=2, ensure_ascii=False),
                                     encoding="utf-8")
            return 0
        geocoders: dict = {"fichier local": g}
        if addok is not None:
            # the online client as ``--geocoder ban`` uses it, pointed at addok's server
            geocoders["addok"] = BanGeocoder(addok.serve(), cache_dir=None, rate_limit=0,
                                             retries=1)
        communes = bench_communes(geocoders, make_commune_queries(df, args.n_communes,
                                                                  args.seed_communes), settings)
        if args.json and args.communes_seules:
            args.json.write_text(json.dumps({"communes": communes}, indent=2,
                                            ensure_ascii=False), encoding="utf-8")
        if args.communes_seules:
            return 0
        return bench_engines(args, df, path, demo, g, settings, addok, communes)


def bench_engines(args: argparse.Namespace, df: pd.DataFrame, path: Path, demo: bool,
                  g: LocalGeocoder, settings: Settings, addok: AddokIndex | None,
                  communes: dict) -> int:
    """The general comparison: perturbed positives, held-out negatives, local and addok
    (raw, and through qpv-geo's consistency rules), the street threshold, the ×10 file."""
    from qpv_geo.geocoding.consistency import STREET_SIM_MIN, check_many

    positives = make_queries(df, args.n, args.seed)
    negatives = make_negatives(df, max(args.negatifs, 1000), args.seed_negatifs)
    tuning = make_negatives(df, 800, 7)  # the seed the street threshold was chosen on
    print(f"Fichier : {path} ({len(df)} adresses de SEM{', DÉMONSTRATION' if demo else ''})")
    print(f"Positives : {len(positives)} (graine {args.seed}) ; négatives : {len(negatives)} "
          f"(graine tenue à l'écart {args.seed_negatifs}) ; réglage : {len(tuning)} (graine 7)")
    for q in negatives.groupby("kind").head(1)["query"]:
        print("   négative :", q)
    texts = positives["query"].tolist()
    local = bench_local(path, texts, demo=demo)
    neg_local = [g.geocode(q) for q in negatives["query"]]
    tun_local = [g.geocode(q) for q in tuning["query"]]
    rows = [{"engine": "qpv-geo local (règles de cohérence)",
             **evaluate(positives, local["results"], negatives, neg_local, settings.score_min),
             "qps": len(texts) / local["elapsed"], "build_s": local["build_s"],
             "index_mb": local["index_mb"]}]
    sweeps = [("local", local["results"], tun_local)]
    if addok is not None:
        all_texts = texts + negatives["query"].tolist() + tuning["query"].tolist()
        try:
            ad = addok.first_results(all_texts)
        except AddokUnavailable as exc:
            print("addok : non mesuré —", exc)
            ad = None
        if ad is not None:
            res = addok_results(all_texts, ad["results"])
            n1, n2 = len(texts), len(texts) + len(negatives)
            raw = {"qps": len(all_texts) / ad["elapsed"], "build_s": addok.build_s,
                   "index_mb": addok.index_mb}
            rows.append({"engine": "addok brut (score ≥ 0,6 et n° = confiant)",
                         **evaluate(positives, res[:n1], negatives, res[n1:n2],
                                    settings.score_min), **raw})
            checked = check_many(all_texts, res)
            rows.append({"engine": "addok + règles de cohérence de qpv-geo",
                         **evaluate(positives, checked[:n1], negatives, checked[n1:n2],
                                    settings.score_min), **raw})
            sweeps.append(("addok", checked[:n1], checked[n2:]))
    print()
    print(f"{'moteur':<44} {'≤30 m':>6} {'confiant':>8} {'conf.≤30m':>9} {'conf.>30m':>9} "
          f"{'faux-conf.':>10} {'HT ok':>6} {'req/s':>7} {'index s':>7}")
    for r in rows:
        print(f"{r['engine']:<44} {r['within_30m']:>6.1%} {r['confident']:>8.1%} "
              f"{r['confident_within_30m']:>9.1%} {r['pos_false_confident']:>9.1%} "
              f"{r['false_confident']:>10.2%} {r['hors_territoire_ok']:>6.1%} "
              f"{r['qps']:>7.0f} {r['build_s']:>7.2f}")
    print("(positives : ≤30 m = point à moins de 30 m de la vérité ; confiant = aucun motif "
          "« à vérifier » ; conf.>30m = confiant mais faux.\n négatives : faux-conf. = verdict "
          "confiant d'une mauvaise correspondance ; HT ok = « hors territoire » quand la "
          "commune ou le code postal écrit est hors SEM.) Cibles : faux-conf. ≤ 0,5 %, "
          "≤30 m ≥ 97 %.")
    print(f"Seuil de similarité des rues en service : {STREET_SIM_MIN:.0f}")
    print("\nFaux-confiants par type de négative :")
    for kind in sorted(negatives["kind"].unique()):
        mask = (negatives["kind"] == kind).to_numpy()
        cells = "  ".join(f"{r['_false'][mask].mean():6.1%}" for r in rows)
        print(f"  {kind:<28} n={mask.sum():<4} {cells}")
    print("\n≤30 m par type de perturbation (positives) :")
    kinds = sorted({k for ks in positives["kinds"] for k in ks.split("+")})
    for k in kinds:
        mask = positives["kinds"].str.split("+").apply(lambda ks, k=k: k in ks).to_numpy()
        cells = "  ".join(f"{np.mean(r['_d'][mask] <= 30):6.1%}" for r in rows)
        print(f"  {k:<16} n={mask.sum():<5} {cells}")
    for name, pos, tun in sweeps:
        sweep(name, positives, pos, tuning, tun)
    tenfold = None
    if not args.no_10x:
        with tempfile.TemporaryDirectory() as tmp:
            g10, big, build10 = tenfold_geocoder(df, args.seed, Path(tmp))
            q10 = make_queries(big, args.n, args.seed)
            t = timed_interleaved(g, texts, g10, q10["query"].tolist(), runs=args.runs)
        ev = evaluate(q10, t["res10"], negatives.iloc[:1], [not_found("", "", source="")],
                      settings.score_min)
        print(f"\nIndex ×10 construit en {build10:.1f} s")
        rates = print_rates(t, streets1=local["streets"], rows1=len(df),
                            streets10=len(g10.s_key), rows10=len(big),
                            within1=rows[0]["within_30m"], within10=ev["within_30m"])
        tenfold = {"streets": len(g10.s_key), "rows": len(big),
                   "qps": rates["median_qps"]["x10"], "qps_x1": rates["median_qps"]["x1"],
                   "runs": rates["runs"], "loadavg": rates["loadavg_after"],
                   "within_30m": ev["within_30m"],
                   "confident_within_30m": ev["confident_within_30m"], "build_s": build10}
    if args.json:
        out = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        args.json.write_text(json.dumps({"moteurs": out, "x10": tenfold, "communes": communes},
                                        indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
