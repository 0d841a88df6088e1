"""Generate the DEMONSTRATION address file ``adresses-demo-sem.csv.gz`` (synthetic, seeded).

    python data/adresses/make_demo_adresses.py            # rewrites the file next to this script

The file has the exact columns of the BAN « adresses » CSV, but every street, number and
position is INVENTED: streets are straight or bent lines drawn at random inside the real
commune outlines (``data/reference/communes_sem.geojson``), with real INSEE codes and postcodes
(``communes_sem.csv``). Several streets cross each of the 20 QPV of SEM
(``qpv2024_sem_fullprecision.geojson``; the shipped file was drawn against the simplified copy
shipped before, so a new run differs) and a few run along their edges (just inside or just
outside), so
that a demonstration batch gives eligible, not eligible and « à vérifier » verdicts. The
fantoir codes start with ``X`` and ``source_position`` / ``source_nom`` say ``demo``: no row can
be mistaken for a real BAN row. Same seed → same file, byte for byte (gzip mtime 0).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import unicodedata
from pathlib import Path

import numpy as np
import pyproj
import shapely
from shapely.geometry import LineString, Point, shape
from shapely.ops import substring

HERE = Path(__file__).resolve().parent
REF = HERE.parent / "reference"
OUT = HERE / "adresses-demo-sem.csv.gz"
SEED = 20240101

COLUMNS = (
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom", "certification_commune", "cad_parcelles",
)

TYPES = ["Rue"] * 10 + ["Avenue"] * 2 + ["Boulevard", "Place", "Chemin", "Chemin", "Impasse",
                                         "Impasse", "Allée", "Allée", "Route", "Montée",
                                         "Cours", "Passage", "Square"]
NAMES = [
    "Victor Hugo", "Jean Jaurès", "de la République", "Pasteur", "Gambetta", "des Écoles",
    "du Stade", "de la Mairie", "Émile Zola", "Jules Ferry", "Voltaire", "Anatole France",
    "du 8 Mai 1945", "du 11 Novembre", "Marcel Pagnol", "des Tilleuls", "des Acacias",
    "Saint-Jean", "Sainte-Barbe", "de la Gare", "du Moulin", "Paul Bert", "Louis Pasteur",
    "Charles de Gaulle", "Jean Moulin", "Pierre et Marie Curie", "de l'Église", "des Lilas",
    "du Marché", "Claude Bernard", "Antoine de Saint-Exupéry", "Gabriel Péri",
    "Georges Brassens", "Albert Camus", "de la Paix", "des Mineurs", "de la Verrerie",
    "des Passementiers", "du Puits Couriot", "Benoît Malon", "Michel Rondet", "Jacquard",
    "Francis Garnier", "Honoré de Balzac", "Frédéric Mistral", "Aristide Briand",
    "Léon Blum", "Romain Rolland", "Paul Éluard", "Louis Aragon", "Jean Macé",
    "Ferdinand Buisson", "des Peupliers", "des Cerisiers", "des Chênes", "des Roses",
    "des Coquelicots", "du Château", "du Bois", "de la Fontaine", "du Lavoir", "du Four",
    "de la Croix", "des Jardins", "des Prés", "des Vignes", "du Pilat", "du Gier",
    "du Furan", "de l'Ondaine", "de la Loire", "du Lyonnais", "du Forez", "des Cévennes",
    "de Bellevue", "du Soleil", "des Alouettes", "des Hirondelles", "Jeanne d'Arc",
    "Docteur Rémy", "Professeur Calmette", "Maréchal Foch", "Général Leclerc",
    "Président Wilson", "Commandant Marchand", "Capitaine Dreyfus", "Henri Barbusse",
    "Salvador Allende", "Nelson Mandela", "Simone Veil", "Lucie Aubrac", "Olympe de Gouges",
    "Marie Curie", "George Sand", "Louise Michel", "Rosa Parks", "Jean de La Fontaine",
    "Molière", "Racine", "Lamartine", "Alphonse Daudet", "Guy de Maupassant", "Jules Verne",
    "Charles Baudelaire", "Arthur Rimbaud", "Paul Verlaine", "Stéphane Mallarmé",
    "Antoine Lumière", "Pierre Bérard", "Ampère", "Jean-Baptiste Say", "Denis Papin",
    "des Forges", "des Aciéries", "de la Mine", "du Crêt", "des Chappes", "de la Côte",
    "des Granges", "du Vernay", "de la Tour", "du Plateau", "de la Vallée", "des Sources",
    "du Ruisseau", "des Sapins", "des Érables", "des Platanes", "des Marronniers",
    "de la Liberté", "de l'Égalité", "de la Fraternité", "de l'Industrie", "du Commerce",
    "de l'Avenir", "du Progrès", "des Arts", "de la Résistance", "des Déportés",
    "des Anciens Combattants", "du Souvenir", "Saint-Roch", "Saint-Pierre", "Saint-Martin",
    "Sainte-Anne", "Notre-Dame", "de Montaud", "de la Richelandière", "des Rives",
]
LIEUX_DITS = [
    "Le Pré Rond", "La Croix Blanche", "Les Granges", "Le Bois Noir", "Les Combes", "Le Mas",
    "La Varenne", "Chez Bonnet", "Le Plat", "La Grange Neuve", "Le Fayet", "Les Littes",
    "La Bruyère", "Le Montcel", "La Sagne", "Les Rochettes", "Le Thiollet", "La Chaux",
    "Le Crozet", "Les Essarts", "La Planche", "Le Buisson", "Les Biefs", "La Garde",
    "Le Replat", "Les Hauts de Chazal", "La Jasserie", "Le Coin", "Les Molières",
    "La Boutonnière", "Le Crêt Rond", "Les Arcis", "La Côte Chaude", "Le Vieux Bourg",
]

_TO_L93 = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
_TO_WGS = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)


def _ascii_upper(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))
    return " ".join(text.replace("'", " ").replace("-", " ").upper().split())


def _to_l93(geom):
    return shapely.transform(geom, lambda c: np.column_stack(_TO_L93.transform(c[:, 0], c[:, 1])))


def _read_layers():
    communes = {}
    with open(REF / "communes_sem.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            communes[r["insee_com"]] = {"nom": r["nom"], "postcodes": r["codes_postaux"].split(";"),
                                        "population": int(r["population"])}
    for feat in json.loads((REF / "communes_sem.geojson").read_text("utf-8"))["features"]:
        geom = _to_l93(shape(feat["geometry"]))
        communes[feat["properties"]["insee_com"]]["geom"] = shapely.make_valid(geom)
    qpvs = []
    qpv_file = REF / "qpv2024_sem_fullprecision.geojson"
    for feat in json.loads(qpv_file.read_text("utf-8"))["features"]:
        geom = shapely.make_valid(_to_l93(shape(feat["geometry"])))
        qpvs.append({"code_qp": feat["properties"]["code_qp"],
                     "lib_qp": feat["properties"]["lib_qp"], "geom": geom})
    return communes, qpvs


def _random_point_in(geom, rng: np.random.Generator) -> Point:
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(10_000):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains(p):
            return p
    return geom.representative_point()


def _line_through(center: Point, length: float, rng: np.random.Generator) -> LineString:
    """A straight or once-bent line of about ``length`` m centred on ``center``."""
    angle = rng.uniform(0, math.pi)
    bend = rng.uniform(-0.35, 0.35) if rng.random() < 0.5 else 0.0
    half = length / 2
    a = (center.x - half * math.cos(angle), center.y - half * math.sin(angle))
    b = (center.x + half * math.cos(angle + bend), center.y + half * math.sin(angle + bend))
    return LineString([a, (center.x, center.y), b])


def _clip(line: LineString, geom) -> LineString | None:
    part = line.intersection(geom)
    if part.is_empty:
        return None
    if part.geom_type != "LineString":
        parts = [g for g in getattr(part, "geoms", []) if g.geom_type == "LineString"]
        if not parts:
            return None
        part = max(parts, key=lambda g: g.length)
    return part if part.length >= 60 else None


def _addresses_along(line: LineString, rng: np.random.Generator, *, spacing: tuple[float, float],
                     offset: float = 8.0):
    """(numero, x, y) on both sides: odd numbers on the left, even on the right."""
    out = []
    for side, first in ((1, 1), (-1, 2)):
        d = rng.uniform(3, spacing[1])
        num = first
        while d < line.length - 3:
            p = line.interpolate(d)
            q = line.interpolate(min(line.length, d + 1.0))
            dx, dy = q.x - p.x, q.y - p.y
            norm = math.hypot(dx, dy) or 1.0
            x = p.x - side * offset * dy / norm
            y = p.y + side * offset * dx / norm
            out.append((num, x, y))
            num += 2 * int(rng.choice([1, 1, 1, 1, 2]))  # sometimes a number is skipped
            d += rng.uniform(*spacing)
    return out


def _postcode(insee: str, commune: dict, x: float, y: float) -> str:
    pcs = commune["postcodes"]
    if len(pcs) == 1:
        return pcs[0]
    lon, lat = _TO_WGS.transform(x, y)
    if insee == "42218":  # Saint-Étienne: west (Saint-Victor) 42230, south 42100, else 42000
        if lon < 4.30:
            return "42230"
        return "42100" if lat < 45.43 else "42000"
    return pcs[0]


class _Names:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: dict[str, set[str]] = {}

    def street(self, insee: str) -> str:
        used = self.used.setdefault(insee, set())
        for _ in range(200):
            name = f"{self.rng.choice(TYPES)} {self.rng.choice(NAMES)}"
            if name not in used:
                used.add(name)
                return name
        raise RuntimeError("not enough street names")

    def lieu_dit(self, insee: str) -> str:
        used = self.used.setdefault(insee, set())
        for _ in range(200):
            name = str(self.rng.choice(LIEUX_DITS))
            if name not in used:
                used.add(name)
                return name
        return self.street(insee)


def generate(seed: int = SEED) -> list[dict[str, str]]:
    """All demonstration rows (dicts with the BAN columns)."""
    rng = np.random.default_rng(seed)
    communes, qpvs = _read_layers()
    names = _Names(rng)
    rows: list[dict[str, str]] = []
    fantoir: dict[str, int] = {}

    def emit(insee: str, line: LineString, name: str, *, ld_name: str = "",
             spacing=(14.0, 26.0)) -> None:
        commune = communes[insee]
        fantoir[insee] = fantoir.get(insee, 0) + 1
        code = f"X{fantoir[insee]:03d}"
        mid = line.interpolate(0.5, normalized=True)
        pc = _postcode(insee, commune, mid.x, mid.y)
        for num, x, y in _addresses_along(line, rng, spacing=spacing):
            reps = [""]
            r = rng.random()
            if r < 0.07:
                reps.append("bis")
            elif r < 0.09:
                reps += ["bis", "ter"]
            for rep in reps:
                lon, lat = _TO_WGS.transform(x, y)
                rows.append({
                    "id": f"{insee}_{code}_{num:05d}" + (f"_{rep}" if rep else ""),
                    "id_fantoir": f"{insee}_{code}", "numero": str(num), "rep": rep,
                    "nom_voie": name, "code_postal": pc, "code_insee": insee,
                    "nom_commune": commune["nom"], "code_insee_ancienne_commune": "",
                    "nom_ancienne_commune": "", "x": f"{x:.2f}", "y": f"{y:.2f}",
                    "lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "type_position": "entrée",
                    "alias": "", "nom_ld": ld_name,
                    "libelle_acheminement": _ascii_upper(commune["nom"]),
                    "nom_afnor": _ascii_upper(name), "source_position": "demo",
                    "source_nom": "demo", "certification_commune": "0", "cad_parcelles": "",
                })

    # 1. Ordinary streets and lieux-dits in every commune.
    for insee in sorted(communes):
        commune = communes[insee]
        geom = commune["geom"]
        n_streets = int(np.clip(math.sqrt(commune["population"]) / 4.0, 5, 110))
        rural = commune["population"] < 5000
        made = 0
        while made < n_streets:
            center = _random_point_in(geom, rng)
            line = _clip(_line_through(center, rng.uniform(150, 800), rng), geom)
            if line is None:
                continue
            if rural and rng.random() < 0.3:
                emit(insee, line, names.lieu_dit(insee), spacing=(25.0, 60.0))
            else:
                ld_name = names.lieu_dit(insee) if rng.random() < 0.08 else ""
                emit(insee, line, names.street(insee), ld_name=ld_name)
            made += 1

    # 2. Streets crossing each QPV, and short ones along its edge (inside and outside).
    for qpv in qpvs:
        geom = qpv["geom"]
        for _ in range(4):
            center = _random_point_in(geom, rng)
            insee = next((c for c in sorted(communes) if communes[c]["geom"].contains(center)),
                         None)
            if insee is None:
                continue
            line = _clip(_line_through(center, rng.uniform(300, 700), rng),
                         communes[insee]["geom"])
            if line is not None:
                emit(insee, line, names.street(insee))
        for dist in (22.0, -22.0, 45.0):
            ring = geom.buffer(dist)
            if ring.is_empty:
                continue
            if ring.geom_type == "MultiPolygon":
                ring = max(ring.geoms, key=lambda g: g.area)
            ext = LineString(ring.exterior.coords)
            start = rng.uniform(0, max(1.0, ext.length - 200))
            part = substring(ext, start, start + rng.uniform(120, 200))
            center = part.interpolate(0.5, normalized=True)
            insee = next((c for c in sorted(communes) if communes[c]["geom"].contains(center)),
                         None)
            if insee is None or part.length < 60:
                continue
            line = _clip(part, communes[insee]["geom"])
            if line is not None:
                # numbers on both sides, 8 m off the line: 14–30 m (or 37–53 m) from the edge
                emit(insee, line, names.street(insee), spacing=(12.0, 20.0))
    rows.sort(key=lambda r: r["id"])
    return rows


def write(rows: list[dict[str, str]], path: Path = OUT) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter=";", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def main() -> None:
    rows = generate()
    write(rows)
    streets = {(r["code_insee"], r["nom_voie"]) for r in rows}
    print(f"{OUT.name}: {len(rows)} adresses fictives, {len(streets)} voies, "
          f"{len({r['code_insee'] for r in rows})} communes")


if __name__ == "__main__":
    main()
