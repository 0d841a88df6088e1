"""Generate data/exemple_appel.csv: a SYNTHETIC call-for-projects file (seeded, reproducible).

Every porteur is « Association fictive … » and every address comes from the demonstration
address file (data/adresses/adresses-demo-sem.csv.gz, itself fictitious). The rows are chosen so
that the demo shows every status: addresses and coordinates inside the QPV of SEM, near their
edges (« à vérifier »), outside them, in a QPV of Roanne (another EPCI), outside SEM, and a few
bad rows (swapped coordinates, unknown address, commune only).

Run from the repository root: ``.venv/bin/python data/make_exemple_appel.py``. Each chosen
address is checked against the local geocoder and the engine, so the file stays right when
they change.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

HERE = Path(__file__).resolve().parent
OUT = HERE / "exemple_appel.csv"
SEED = 20250301

PRIORITES = [
    ("Mobilité", ["Auto-école sociale", "Location de vélos à assistance électrique",
                  "Plateforme mobilité vers l'emploi"]),
    ("Levée des freins : mobilité", ["Covoiturage vers les zones d'activité"]),
    ("FLE / linguistique", ["Ateliers sociolinguistiques", "Français à visée professionnelle"]),
    ("Garde d'enfants", ["Crèche à vocation d'insertion professionnelle",
                         "Garde d'enfants en horaires décalés"]),
    ("Santé", ["Bilan de santé et accès aux soins", "Soutien psychologique des demandeurs "
               "d'emploi"]),
    ("Rapprocher les entreprises des quartiers", ["Job dating en pied d'immeuble",
                                                  "Parrainage par des salariés"]),
    ("Confiance en soi / autocensure", ["Théâtre et prise de parole",
                                        "Estime de soi et image professionnelle"]),
    ("Publics hors radars", ["Aller vers les jeunes NEET", "Repérage en porte-à-porte"]),
    ("Communication", ["Forum de l'emploi du quartier", "Journal des offres du quartier"]),
]
PORTEURS = [
    "Association fictive Les Ateliers du Furan", "Association fictive Cap Emploi Gier",
    "Association fictive Ondaine Solidaire", "Association fictive Mots Partagés",
    "Association fictive Petits Pas", "Association fictive Santé Quartiers",
    "Association fictive Passerelles Entreprises", "Association fictive Oser Dire",
    "Association fictive Aller Vers 42", "Association fictive Radio Quartiers",
    "Association fictive Roule Ma Poule", "Association fictive Le Lien",
]
COLUMNS = ["Porteur", "Action", "Priorité", "Adresse", "Code postal", "Commune", "Latitude",
           "Longitude"]


def _address_text(row: pd.Series, rng: random.Random) -> str:
    number = str(row["numero"]) + (f" {row['rep']}" if isinstance(row["rep"], str)
                                   and row["rep"] else "")
    street = row["nom_voie"]
    style = rng.random()
    if style < 0.15:
        street = street.replace("Rue ", "r. ").replace("Boulevard ", "bd ").replace(
            "Avenue ", "av. ")
    elif style < 0.25:
        street = street.lower()
    return f"{number} {street}"


def _coord(value: float, rng: random.Random) -> str:
    text = f"{value:.6f}"
    return text.replace(".", ",") if rng.random() < 0.6 else text


def main() -> None:
    from qpv_geo.eligibility.engine import Engine
    from qpv_geo.geocoding import AddressQuery, LocalGeocoder, demo_adresses_path
    from qpv_geo.reference.layers import load_reference
    from qpv_geo.settings import Settings

    rng = random.Random(SEED)
    settings = Settings.from_env()
    reference = load_reference(settings)
    engine = Engine(reference)
    geocoder = LocalGeocoder(demo_adresses_path(), cache_dir=settings.cache_dir, demo=True)
    adresses = pd.read_csv(demo_adresses_path(), sep=";", dtype={"code_postal": str,
                                                                 "code_insee": str})
    adresses = adresses[adresses["numero"] < 5000].reset_index(drop=True)
    verdicts = engine.judge_lonlat(adresses["lon"], adresses["lat"])
    adresses["status"] = verdicts["status"].to_numpy()
    adresses["code_qp"] = verdicts["code_qp"].to_numpy()

    rows: list[dict[str, str]] = []
    order = [(p, a) for p, actions in PRIORITES for a in actions]
    rng.shuffle(order)
    k = 0

    def next_action() -> tuple[str, str, str]:
        nonlocal k
        prio, action = order[k % len(order)]
        porteur = PORTEURS[(k * 5) % len(PORTEURS)]
        k += 1
        return porteur, action, prio

    def add_addresses(status: str, count: int, *, spread_qpv: bool = False) -> None:
        pool = adresses[adresses["status"] == status]
        idx = list(pool.index)
        rng.shuffle(idx)
        used_qpv: set[str] = set()
        added = 0
        for i in idx:
            if added >= count:
                break
            row = adresses.loc[i]
            if spread_qpv and row["code_qp"] in used_qpv and len(used_qpv) < 20:
                continue
            text = _address_text(row, rng)
            cp, commune = row["code_postal"], row["nom_commune"]
            q = AddressQuery(text, postcode=cp, city=commune)
            g = geocoder.geocode(q)
            if not g.found or g.precision != "housenumber":
                continue
            got = engine.judge_lonlat([g.lon], [g.lat], geocodes=[g])["status"].iloc[0]
            if got != status:
                continue
            used_qpv.add(row["code_qp"])
            porteur, action, prio = next_action()
            rows.append({"Porteur": porteur, "Action": action, "Priorité": prio,
                         "Adresse": text, "Code postal": cp, "Commune": commune})
            added += 1

    def add_points(points: list[tuple[float, float]], *, with_address: str = "") -> None:
        for lon, lat in points:
            porteur, action, prio = next_action()
            rows.append({"Porteur": porteur, "Action": action, "Priorité": prio,
                         "Adresse": with_address, "Latitude": _coord(lat, rng),
                         "Longitude": _coord(lon, rng)})

    add_addresses("eligible", 22, spread_qpv=True)
    add_addresses("a_verifier", 5)
    add_addresses("hors_qpv", 9)

    # Coordinates: inside a QPV of SEM (well inside), near an edge, outside any QPV.
    qpv = reference.qpv.to_crs(2154)
    inside_pts = []
    for geom in qpv.geometry.values[rng.sample(range(len(qpv)), 5)]:
        inner = shapely.buffer(geom, -60)
        pt = shapely.point_on_surface(inner if not inner.is_empty else geom)
        inside_pts.append((pt.x, pt.y))
    edge_pts = []
    for geom in qpv.geometry.values[rng.sample(range(len(qpv)), 2)]:
        ring = shapely.boundary(geom)
        pt = shapely.line_interpolate_point(ring, rng.random(), normalized=True)
        edge_pts.append((pt.x, pt.y))
    to_wgs = Engine.l93_to_lonlat
    for group in (inside_pts, edge_pts):
        lon, lat = to_wgs(np.array([p[0] for p in group]), np.array([p[1] for p in group]))
        add_points(list(zip(lon.tolist(), lat.tolist(), strict=True)))
    # Roanne: one point in a QPV of Roannais Agglomération (not this call's territory).
    roanne = reference.qpv_hors_sem
    roanne = roanne[roanne["lib_com"] == "Roanne"].to_crs(2154)
    pts = [shapely.point_on_surface(shapely.buffer(g, -40)) for g in roanne.geometry.values[:2]]
    lon, lat = to_wgs(np.array([p.x for p in pts]), np.array([p.y for p in pts]))
    add_points(list(zip(lon.tolist(), lat.tolist(), strict=True)))
    # Outside SEM: Lyon (Part-Dieu), with its address too: the coordinates win.
    add_points([(4.8590, 45.7606)], with_address="Place Charles Béraudier, 69003 Lyon")
    # An address and coordinates that agree: the coordinates are used and the row says so.
    both = adresses[adresses["status"] == "eligible"].sample(1, random_state=SEED).iloc[0]
    porteur, action, prio = next_action()
    rows.append({"Porteur": porteur, "Action": action, "Priorité": prio,
                 "Adresse": _address_text(both, rng), "Code postal": both["code_postal"],
                 "Commune": both["nom_commune"], "Latitude": _coord(float(both["lat"]), rng),
                 "Longitude": _coord(float(both["lon"]), rng)})
    # Bad rows: swapped coordinates, an address that does not exist, a commune only.
    porteur, action, prio = next_action()
    rows.append({"Porteur": porteur, "Action": action, "Priorité": prio,
                 "Latitude": "4,3905", "Longitude": "45,4397"})
    porteur, action, prio = next_action()
    rows.append({"Porteur": porteur, "Action": action, "Priorité": prio,
                 "Adresse": "Local associatif (adresse à préciser)", "Code postal": "",
                 "Commune": ""})
    porteur, action, prio = next_action()
    rows.append({"Porteur": porteur, "Action": action, "Priorité": prio, "Adresse": "",
                 "Code postal": "42500", "Commune": "Le Chambon-Feugerolles"})

    order_rows = list(range(len(rows)))
    rng.shuffle(order_rows)
    with open(OUT, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter=";", restval="",
                                lineterminator="\n")
        writer.writeheader()
        for i in order_rows:
            writer.writerow(rows[i])
    print(f"{OUT} : {len(rows)} sites")


if __name__ == "__main__":
    main()
