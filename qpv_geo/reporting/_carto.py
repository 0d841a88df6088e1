"""What the interactive and the static maps share: colours, escaping, notes, site columns."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from qpv_geo.batch.priorities import AUTRE, PRIORITES, normalize_priorite

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference

#: Above this many sites, a priority layer is clustered (Leaflet.markercluster).
SEUIL_CLUSTER = 50
#: Tile choices of the CLI: ``osm`` (OpenStreetMap, needs the network) or ``none``.
TILES = {"osm": "OpenStreetMap", "none": None}

#: Colours of the perimeters (QPV in purple: no priority colour is close to it).
COULEUR_QPV = "#5e3c99"
COULEUR_QVA = "#7f7f7f"
COULEUR_SEM = "#222222"
COULEUR_LACUNE = "#d7191c"
#: Coverage, everywhere (maps, charts, matrix): an action inside the QPV (blue), served only
#: within the radius of the « quartier vécu » (yellow), no action (a gap: red outline).
COULEUR_DANS = "#2166ac"
COULEUR_DANS_CLAIR = "#c6dbef"
COULEUR_VECU = "#f6c141"
COULEUR_VECU_CLAIR = "#fff1b8"
COULEUR_LACUNE_CLAIR = "#fde0dd"
#: Steps of the coverage choropleth for the QPV with an action inside: (lowest number of
#: actions inside, colour, label). QPV served only nearby are yellow, gaps white.
PALIER_COUVERTURE = ((1, "#c6dbef", "1"), (2, "#6baed6", "2"), (3, "#2171b5", "3–4"),
                     (5, "#08306b", "5 et +"))


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def esc(value: Any) -> str:
    """HTML-escape user text, also neutralising ``$``, backticks and backslashes.

    folium puts popup and tooltip HTML inside JavaScript template literals, where ``${…}`` and
    a backtick would be code: entities keep them text. ``{`` too: folium reads each element's
    output as a jinja template again, where a porteur named « {{ x }} » or « {% x %} » made
    the map fail.
    """
    if is_missing(value):
        return ""
    text = html.escape(str(value), quote=True)
    return (text.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")
            .replace("{", "&#123;"))


def tile_url(tiles: str | None) -> str | None:
    if tiles is None:
        return None
    key = str(tiles).lower()
    if key in TILES:
        return TILES[key]
    return tiles


def notes_for(reference: Reference, sites: pd.DataFrame | None = None, *,
              demo: bool | None = None) -> list[str]:
    """Notes every output must show: the reference's, plus a demo mark for demo addresses."""
    notes = list(reference.notes)
    if (demo if demo is not None else is_demo(sites, reference)) and not reference.demo:
        notes.insert(0, "DÉMONSTRATION — adresses fictives, aucune valeur officielle")
    return notes


def is_demo(sites: pd.DataFrame | None, reference: Reference) -> bool:
    """True when the reference is demonstration data or the sites are demo addresses.

    Demo addresses are recognised by a ``geocodage_source`` or ``donnees`` value that says
    « demo » / « démonstration », or a true ``demo`` column.
    """
    if reference.demo:
        return True
    if sites is None or len(sites) == 0:
        return False
    for col in ("geocodage_source", "donnees"):
        if col in sites.columns:
            text = sites[col].dropna().astype(str).str.lower()
            if text.str.contains(r"d[ée]mo", regex=True).any():
                return True
    if "demo" in sites.columns:
        return bool(sites["demo"].fillna(False).astype(bool).any())
    return False


#: Decimals of the coordinates drawn on a map (7 ≈ 1 cm: the full-precision perimeters keep
#: their shape, the page loses the 15-decimal digits no screen shows).
DECIMALES_CARTE = 7


#: Above this many QPV (a large territory: a métropole like Grand Paris, all France), the
#: outputs are condensed: the interactive maps draw each perimeter once, simplified
#: (:data:`TOLERANCE_GRAND_DEG`), and the report lists one by one only the QPV some action
#: reaches (the others counted per département, the full table in a CSV next to it).
SEUIL_GRAND_TERRITOIRE = 40
#: Perimeters drawn on the interactive maps of a large territory: simplified to ≈ 5 m
#: (0.00005°) and encoded with 5 decimals (≈ 1 m), :func:`formes_compactes` — a drawing at
#: the scale of a region; the verdicts and the coverage are computed on the full perimeters.
TOLERANCE_GRAND_DEG = 0.00005


#: Legend label of the commune outlines installed for a territory other than SEM
#: (``data update --communes``): drawn thin grey like SEM's, said simplified.
LIBELLE_FOND_COMMUNES = "Communes (contours simplifiés, geo.api.gouv.fr)"
#: Colour of those outlines (SEM's communes: the same grey on each kind of map).
COULEUR_FOND_COMMUNES = "#8c8c8c"


def fond_communes(reference: Reference) -> Any:
    """The commune outlines installed as the background of a territory other than SEM, or
    None (SEM draws its own ``communes``; all France draws none: too many)."""
    fond = reference.background_communes
    if fond is None or not len(fond) or len(reference.communes):
        return None
    return fond


def grand_territoire(reference: Reference) -> bool:
    """True for a territory with more than :data:`SEUIL_GRAND_TERRITOIRE` QPV."""
    return len(reference.qpv) > SEUIL_GRAND_TERRITOIRE


def geojson_from_frame(gdf: Any, props: dict[str, Sequence[Any]]) -> dict[str, Any]:
    import numpy as np
    import shapely

    feats = []
    geoms = shapely.transform(np.asarray(gdf.geometry.values),
                              lambda xy: np.round(xy, DECIMALES_CARTE))
    for i, geom in enumerate(geoms):
        feats.append({"type": "Feature", "properties": {k: v[i] for k, v in props.items()},
                      "geometry": geom.__geo_interface__})
    return {"type": "FeatureCollection", "features": feats}


def polyline(coords: Any) -> str:
    """One ring as an encoded polyline (Google's algorithm, 5 decimals, x then y): ≈ 5
    characters a vertex instead of ≈ 22 in GeoJSON; ``qpvgeoGeoJson`` decodes it. ``{`` is
    written ``!``: folium reads each element's output as a jinja template again, where
    ``{{``, ``{%`` or ``{#`` would be syntax."""
    import numpy as np

    v = np.round(np.asarray(coords, dtype=float)[:, :2] * 1e5).astype(np.int64)
    d = np.diff(v, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel()
    z = np.where(d < 0, ~(d << 1), d << 1)
    out = []
    for n in z.tolist():
        while n >= 0x20:
            out.append(chr((0x20 | (n & 0x1F)) + 63))
            n >>= 5
        out.append(chr(n + 63))
    return "".join(out).replace("{", "!")


def formes_compactes(geoms: Any, props: dict[str, Sequence[Any]], *,
                     tolerance: float = TOLERANCE_GRAND_DEG) -> list[list[Any]]:
    """Polygons for the maps of a large territory: one ``[properties, [[ring, …], …]]`` per
    geometry (each polygon a list of encoded rings, :func:`polyline`), simplified by
    ``tolerance`` degrees."""
    import numpy as np
    import shapely

    geoms = np.asarray(geoms)
    if tolerance:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    out = []
    for i, geom in enumerate(geoms):
        polygons = list(getattr(geom, "geoms", [geom])) if geom is not None else []
        rings = [[polyline(p.exterior.coords), *(polyline(r.coords) for r in p.interiors)]
                 for p in polygons if p.geom_type == "Polygon" and not p.is_empty]
        out.append([{k: v[i] for k, v in props.items()}, rings])
    return out


def located_sites(sites: pd.DataFrame) -> pd.DataFrame:
    if "lon" not in sites.columns or "lat" not in sites.columns:
        return sites.iloc[0:0]
    lon = pd.to_numeric(sites["lon"], errors="coerce")
    lat = pd.to_numeric(sites["lat"], errors="coerce")
    return sites[lon.notna() & lat.notna()]


def priority_column(sites: pd.DataFrame) -> pd.Series:
    if "priorite" not in sites.columns:
        return pd.Series(AUTRE, index=sites.index, dtype=object)
    known = {*PRIORITES, AUTRE}
    return sites["priorite"].map(lambda v: v if v in known else normalize_priorite(v))


def priority_icon(key: str) -> tuple[str, str, str]:
    """(awesome-markers colour, Font Awesome icon, hex) of a priority key."""
    if key in PRIORITES:
        p = PRIORITES[key]
        return p.color, p.icon, p.hex
    return "black", "question", "#333333"


def palier(n: int, *, proximite: int = 0) -> str:
    """Fill of a QPV on a coverage map: ``n`` actions inside, ``proximite`` only nearby."""
    if n <= 0:
        return COULEUR_VECU_CLAIR if proximite > 0 else "#ffffff"
    color = PALIER_COUVERTURE[0][1]
    for low, c, _ in PALIER_COUVERTURE:
        if n >= low:
            color = c
    return color
