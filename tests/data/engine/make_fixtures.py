"""Writes the small fixture layers of tests/data/engine (Lambert-93 squares with known answers).

Run from this folder: python make_fixtures.py. The files are committed; this script says how
they were made.
"""

import geopandas as gpd
import shapely


def sq(x0, y0, size=1000.0):
    return shapely.box(x0, y0, x0 + size, y0 + size)


communes = gpd.GeoDataFrame(
    {"insee_com": ["42901", "42902"], "nom": ["Commune Test A", "Commune Test B"],
     "codes_postaux": ["42901", "42902"], "population": [1000, 2000]},
    geometry=[shapely.box(800000, 6470000, 810000, 6480000),
              shapely.box(810000, 6470000, 820000, 6480000)], crs=2154)
ring = shapely.Polygon(
    [(812000, 6472000), (815000, 6472000), (815000, 6475000), (812000, 6475000)],
    holes=[[(813000, 6473000), (814000, 6473000), (814000, 6474000), (813000, 6474000)]])
qpv = gpd.GeoDataFrame(
    {"code_qp": ["QN04290M", "QN04291N", "QN04292M", "QN04293M", "QN04294I"],
     "lib_qp": ["Carré Ouest", "Carré Est", "Voisin du QVA", "Anneau", "Autre EPCI"],
     "insee_com": ["42901", "42901", "42901", "42902", "42999"],
     "lib_com": ["Commune Test A", "Commune Test A", "Commune Test A", "Commune Test B",
                 "Ailleurs"],
     "siren_epci": ["244200770", "244200770", "244200770", "244200770", "200035731"]},
    geometry=[sq(802000, 6472000), sq(803000, 6472000), sq(806000, 6472000), ring,
              sq(830000, 6472000)], crs=2154)
qva = gpd.GeoDataFrame(
    {"code_qp": ["QVA-T1"], "lib_qp": ["Veille Test"], "insee_com": ["42901"],
     "lib_com": ["Commune Test A"], "siren_epci": ["244200770"]},
    geometry=[sq(805000, 6472000)], crs=2154)
for name, gdf in (("communes", communes), ("qpv", qpv), ("qva", qva)):
    gdf.to_crs(4326).to_file(f"{name}.geojson", driver="GeoJSON")
