"""Build ``pays_natural_earth.geojson.gz``: the countries around France and its overseas
territories, from Natural Earth 1:10m as repackaged by the npm package world-atlas.

Usage (in a temporary folder)::

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python make_pays.py package/countries-10m.json

Keeps every country (Admin 0) within one degree of a zone of
:data:`qpv_geo.eligibility.projections.ZONES` (metropolitan France, the Antilles, Guyane, La
Réunion, Mayotte, Polynésie française), clipped to those boxes grown by one degree, decoded from
TopoJSON to GeoJSON (WGS84, coordinates as quantized by the package: a step of 0.0036° in
longitude, 0.0017° in latitude, written with 6 decimals). Each feature
keeps its ISO 3166-1 numeric code (``id``), gets its French name (``nom``) and ``france``
(true for France and its overseas collectivities). Written with a fixed gzip mtime so that the
same input gives the same bytes (and sha256).

This is an approximate outline for telling France from its neighbours (Barcelona, Geneva,
Roseau), never an official boundary: see PROVENANCE-pays.md.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

#: The zones' boxes (lon min, lon max, lat min, lat max), as in
#: qpv_geo.eligibility.projections.ZONES.
BOXES = ((-5.6, 9.9, 41.2, 51.2), (-63.3, -60.7, 14.2, 18.2), (-54.7, -51.4, 1.9, 6.0),
         (55.1, 56.0, -21.5, -20.7), (44.9, 45.4, -13.1, -12.5), (-155.0, -134.0, -28.0, -7.0))
#: France and its overseas collectivities in Natural Earth (ISO numeric).
FRANCE = {"250", "663", "652", "258", "540", "876", "666", "260"}
#: French names of the countries kept (English name of Natural Earth otherwise).
NOMS = {
    "250": "France", "663": "Saint-Martin", "652": "Saint-Barthélemy",
    "258": "Polynésie française", "724": "Espagne", "020": "Andorre", "492": "Monaco",
    "380": "Italie", "756": "Suisse", "276": "Allemagne", "442": "Luxembourg",
    "056": "Belgique", "528": "Pays-Bas", "826": "Royaume-Uni", "831": "Guernesey",
    "832": "Jersey", "534": "Sint Maarten (Pays-Bas)", "212": "Dominique",
    "500": "Montserrat (Royaume-Uni)", "028": "Antigua-et-Barbuda",
    "659": "Saint-Christophe-et-Niévès", "660": "Anguilla (Royaume-Uni)", "740": "Suriname",
    "076": "Brésil", "328": "Guyana", "480": "Maurice", "174": "Comores",
    "662": "Sainte-Lucie", "092": "Îles Vierges britanniques", "850": "Îles Vierges des "
    "États-Unis", "630": "Porto Rico", "674": "Saint-Marin", "438": "Liechtenstein",
    "040": "Autriche", "184": "Îles Cook", "612": "Îles Pitcairn", "450": "Madagascar",
    "535": "Pays-Bas caribéens", "670": "Saint-Vincent-et-les-Grenadines",
    "052": "Barbade", "308": "Grenade", "780": "Trinité-et-Tobago", "533": "Aruba",
    "531": "Curaçao", "862": "Venezuela", "508": "Mozambique", "336": "Vatican",
    "372": "Irlande", "705": "Slovénie", "203": "Tchéquie", "208": "Danemark",
    "620": "Portugal", "504": "Maroc", "012": "Algérie", "788": "Tunisie", "292": "Gibraltar",
    "470": "Malte", "191": "Croatie", "242": "Fidji", "296": "Kiribati",
}


def _arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((round(x * sx + tx, 6), round(y * sy + ty, 6)))
        out.append(pts)
    return out


def _ring(arcs: list, indexes: list[int]) -> list[list[float]]:
    ring: list[tuple[float, float]] = []
    for i in indexes:
        pts = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(pts[1:] if ring else pts)
    return [list(p) for p in ring]


def _geometry(arcs: list, g: dict) -> dict:
    """A MultiPolygon; rings the quantization reduced below a triangle are dropped."""
    polys = [g["arcs"]] if g["type"] == "Polygon" else g["arcs"]
    out = []
    for p in polys:
        rings = [_ring(arcs, r) for r in p]
        if len(rings[0]) >= 4:
            out.append([r for r in rings if len(r) >= 4])
    return {"type": "MultiPolygon", "coordinates": out}


def _clip(geom: dict, pad: float = 1.0) -> dict | None:
    """The part of a geometry within the zones' boxes grown by ``pad`` degrees, or None."""
    import shapely
    from shapely.geometry import mapping, shape

    area = shapely.union_all([shapely.box(b[0] - pad, b[2] - pad, b[1] + pad, b[3] + pad)
                              for b in BOXES])
    if not geom["coordinates"]:
        return None
    g = shapely.make_valid(shape(geom))
    part = shapely.intersection(g, area)
    polys = [p for p in shapely.get_parts(part) if p.geom_type == "Polygon" and p.area > 0]
    if not polys:
        return None
    out = mapping(shapely.set_precision(shapely.MultiPolygon(polys), 1e-6))
    return json.loads(json.dumps(out))


def main(path: str) -> None:
    topo = json.loads(Path(path).read_text(encoding="utf-8"))
    arcs = _arcs(topo)
    features = []
    for g in topo["objects"]["countries"]["geometries"]:
        if g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        geom = _clip(_geometry(arcs, g))
        if geom is None:
            continue
        code = str(g.get("id", ""))
        features.append({"type": "Feature", "properties": {
            "id": code, "nom": NOMS.get(code) or g["properties"]["name"],
            "france": code in FRANCE}, "geometry": geom})
    features.sort(key=lambda f: f["properties"]["id"])
    data = {"type": "FeatureCollection", "features": features}
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out = Path(__file__).with_name("pays_natural_earth.geojson.gz")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    out.write_bytes(buf.getvalue())
    print(f"{out.name}: {len(features)} pays, {len(buf.getvalue())} octets")


if __name__ == "__main__":
    main(sys.argv[1])
