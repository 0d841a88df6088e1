"""Write the register's scenario fixtures from the sample call (data/exemple_appel.csv).

Run: ``.venv/bin/python tests/data/registre/make_registre.py``. Everything is fictitious:
porteurs « Association fictive … », SIRENs 1000000xx known only to tests/fake_annuaire.py.

* ``appel_v1.csv``: the 50 sites of the sample call with a dossier number (CE26-001 is line 2),
  a SIRET (one per porteur; « Le Lien » has none but a status column; « Petits Pas » has a
  SIREN unknown to the directory; « Radio Quartiers » is a SAS), action dates (CE26-005 ends in
  2027; CE26-012 has none; some dates typed as 2026-02-01) and « Bilan N-1 fourni » (CE26-020
  « non », CE26-021 empty).
* ``appel_v2.csv``: the corrected file: CE26-014 and CE26-044 have a new address, CE26-009 is
  removed, CE26-051 is added.
* ``qpv_corrige.geojson``: other QPV perimeters: the shipped SEM copy with QN04222N grown by
  60 m and QN04223N removed (a « new perimeter » for the re-check).
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

SIRETS = {
    "Association fictive Oser Dire": "100 000 009 00017",
    "Association fictive Cap Emploi Gier": "10000001700010",
    "Association fictive Aller Vers 42": "100000025",
    "Association fictive Mots Partagés": "10000003300017",
    "Association fictive Radio Quartiers": "10000004100010",
    "Association fictive Les Ateliers du Furan": "100000058",
    "Association fictive Santé Quartiers": "100000066",
    "Association fictive Roule Ma Poule": "100000074",
    "Association fictive Ondaine Solidaire": "100000082",
    "Association fictive Passerelles Entreprises": "100000090",
    "Association fictive Petits Pas": "100000132",
    "Association fictive Le Lien": "",
}
HEADER = ["N° dossier", "Porteur", "SIRET", "Statut juridique", "Action", "Priorité", "Adresse",
          "Code postal", "Commune", "Latitude", "Longitude", "Date de début", "Date de fin",
          "Bilan N-1 fourni"]


def _rows() -> list[dict[str, str]]:
    with open(ROOT / "data" / "exemple_appel.csv", encoding="utf-8", newline="") as fh:
        source = list(csv.DictReader(fh, delimiter=";"))
    rows = []
    for i, r in enumerate(source):
        n = i + 1  # line i + 2 of the sample
        row = {"N° dossier": f"CE26-{n:03d}", **r,
               "SIRET": SIRETS[r["Porteur"]],
               "Statut juridique": "Association loi 1901" if r["Porteur"].endswith("Le Lien")
               else "",
               "Date de début": "2026-02-01" if n % 7 == 0 else "01/03/2026",
               "Date de fin": "30/11/2026", "Bilan N-1 fourni": "oui"}
        if n == 5:
            row["Date de fin"] = "31/03/2027"
        if n == 12:
            row["Date de début"] = row["Date de fin"] = ""
        if n == 20:
            row["Bilan N-1 fourni"] = "non"
        if n == 21:
            row["Bilan N-1 fourni"] = ""
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER, delimiter=";", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    rows = _rows()
    _write(HERE / "appel_v1.csv", rows)
    by = {r["N° dossier"]: r for r in rows}
    v2 = []
    for r in rows:
        r = dict(r)
        if r["N° dossier"] == "CE26-009":
            continue
        if r["N° dossier"] == "CE26-014":  # corrected: the action moves to Le Chambon
            r.update({k: by["CE26-015"][k] for k in ("Adresse", "Code postal", "Commune")})
        if r["N° dossier"] == "CE26-044":  # corrected: a precise address instead of a vague one
            r.update({k: by["CE26-010"][k] for k in ("Adresse", "Code postal", "Commune")})
        v2.append(r)
    new = dict(by["CE26-037"])
    new.update({"N° dossier": "CE26-051", "Porteur": "Association fictive Aller Vers 42",
                "SIRET": SIRETS["Association fictive Aller Vers 42"],
                "Action": "Permanence emploi en pied d'immeuble"})
    v2.append(new)
    _write(HERE / "appel_v2.csv", v2)

    import geopandas as gpd

    qpv = gpd.read_file(ROOT / "data" / "reference" / "qpv2024_sem.geojson")
    qpv = qpv[qpv["code_qp"] != "QN04223N"].to_crs(2154)
    grow = qpv["code_qp"] == "QN04222N"
    qpv.loc[grow, "geometry"] = qpv.loc[grow, "geometry"].buffer(60)
    qpv.to_crs(4326).to_file(HERE / "qpv_corrige.geojson", driver="GeoJSON")


if __name__ == "__main__":
    main()
