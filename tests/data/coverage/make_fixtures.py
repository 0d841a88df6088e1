"""Writes the small fixture of tests/data/coverage: three QPV squares, a QVA, two communes
(Lambert-93, written in WGS84) and 13 sites placed at known distances, judged by the engine.

Run from this folder: python make_fixtures.py. The files are committed; this script says how
they were made and the expected answers (tests/test_coverage.py) follow from it:

* Alpha  (801000–802000, 6471000–6472000): S1, S2 inside (same action, mobilité), S3 120 m
  east (mobilité, another action), S8 150 m north (entreprises);
* Bêta   (804000–805000, 6471000–6472000): S4 inside, S5 250 m north (linguistique);
* Gamma  (812000–813000, 6475000–6476000): S6 inside (santé), S10 inside (autre), S11 inside
  (mobilité, S1's action spelt differently);
* QVA    (807000–808000, 6471000–6472000): S7 inside (garde d'enfants), > 2 km from any QPV;
* a QPV of another EPCI (830000–831000): S13 inside, not counted;
* S9 has no coordinates; S12 is 600 m south of Bêta (santé).
"""

import geopandas as gpd
import pandas as pd
import shapely

from qpv_geo.eligibility.engine import Engine
from qpv_geo.reference.layers import Reference


def sq(x0, y0, size=1000.0):
    return shapely.box(x0, y0, x0 + size, y0 + size)


communes = gpd.GeoDataFrame(
    {"insee_com": ["42901", "42902"], "nom": ["Commune Test A", "Commune Test B"],
     "codes_postaux": ["42901", "42902"], "population": [1000, 2000]},
    geometry=[shapely.box(800000, 6470000, 810000, 6480000),
              shapely.box(810000, 6470000, 820000, 6480000)], crs=2154)
qpv = gpd.GeoDataFrame(
    {"code_qp": ["QN04201M", "QN04202M", "QN04203M", "QN04299M"],
     "lib_qp": ["Alpha", "Bêta", "Gamma", "Autre EPCI"],
     "insee_com": ["42901", "42901", "42902", "42999"],
     "lib_com": ["Commune Test A", "Commune Test A", "Commune Test B", "Ailleurs"],
     "siren_epci": ["244200770", "244200770", "244200770", "200035731"]},
    geometry=[sq(801000, 6471000), sq(804000, 6471000), sq(812000, 6475000),
              sq(830000, 6471000)], crs=2154)
qva = gpd.GeoDataFrame(
    {"code_qp": ["QVA-T1"], "lib_qp": ["Veille Test"], "insee_com": ["42901"],
     "lib_com": ["Commune Test A"], "siren_epci": ["244200770"]},
    geometry=[sq(807000, 6471000)], crs=2154)

SITES = [
    # id, x, y, priorite, porteur, action
    ("S1", 801500, 6471500, "mobilite", "Asso Roue Libre", "Auto-école sociale"),
    ("S2", 801200, 6471200, "mobilite", "Asso Roue Libre", "Auto-école sociale"),
    ("S3", 802120, 6471500, "mobilite", "Bus Pour Tous", "Navette"),
    ("S4", 804500, 6471500, "linguistique", "Parlons Ensemble", "Atelier FLE"),
    ("S5", 804500, 6472250, "linguistique", "<script>alert(1)</script>",
     "Cours du soir `${alert(2)}` & <b>gras</b>"),
    ("S6", 812500, 6475500, "sante", "Santé Quartiers", "Bilan de santé"),
    ("S7", 807500, 6471500, "garde_enfants", "Petits Pas", "Crèche solidaire"),
    ("S8", 801500, 6472150, "entreprises", "Club Entreprises", "Job dating"),
    ("S9", None, None, "mobilite", "Garage Solidaire", "Réparation"),
    ("S10", 812800, 6475800, "autre", "Divers", "Permanence"),
    ("S11", 812300, 6475300, "mobilite", "asso roue  libre", "AUTO-ÉCOLE SOCIALE"),
    ("S12", 804500, 6470400, "sante", "Santé Quartiers", "Bilan de santé"),
    ("S13", 830500, 6471500, "mobilite", "Voisins", "Covoiturage"),
]

if __name__ == "__main__":
    for name, gdf in (("communes", communes), ("qpv", qpv), ("qva", qva)):
        gdf.to_crs(4326).to_file(f"{name}.geojson", driver="GeoJSON")
    ref = Reference.from_frames(qpv=qpv.to_crs(4326), communes=communes.to_crs(4326),
                                qva=qva.to_crs(4326), label="tests/data/coverage")
    frame = pd.DataFrame(SITES, columns=["site", "x", "y", "priorite", "porteur", "action"])
    pts = gpd.GeoSeries(gpd.points_from_xy(frame["x"], frame["y"]), crs=2154).to_crs(4326)
    lon = [None if pd.isna(x) else p.x for x, p in zip(frame["x"], pts, strict=True)]
    lat = [None if pd.isna(x) else p.y for x, p in zip(frame["x"], pts, strict=True)]
    verdicts = Engine(ref).judge_lonlat(lon, lat)
    out = pd.DataFrame({
        "site": frame["site"],
        "adresse": [f"{s} rue du Test 42000 Testville" for s in frame["site"]],
        "porteur": frame["porteur"], "action": frame["action"], "priorite": frame["priorite"],
        "ligne": range(2, len(frame) + 2),
        "geocodage_label": None, "geocodage_score": None, "geocodage_precision": None,
        "geocodage_source": "coordonnees",
    })
    for col in ("lon", "lat", "status", "code_qp", "lib_qp", "insee_com", "lib_com",
                "distance_bord_m", "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m",
                "motifs", "donnees"):
        values = verdicts[col]
        if col == "motifs":
            values = [" ; ".join(v) if isinstance(v, list) else v for v in values]
        out[col] = list(values)
    out.to_csv("sites_valides.csv", index=False, sep=";")
    print(out[["site", "status", "code_qp", "distance_bord_m"]])
