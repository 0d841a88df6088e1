"""Index of a BAN-format address file for the local geocoder (SEM communes only).

:func:`build_index` turns the address file into arrays (streets and lieux-dits, addresses,
communes and their aliases) that :class:`~qpv_geo.geocoding.local.LocalGeocoder` saves once
into the cache directory (``index-<sha256>.npz``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qpv_geo.geocoding.files import communes_sem, read_ban_csv
from qpv_geo.reference.store import package_data_dir
from qpv_geo.reference.text import REPETITIONS, STREET_TYPES, match_key, normalize

#: Version of the index layout (an index of another version is rebuilt). 3: a street without
#: a type word but with house numbers (« Les Granges ») is a street, not a lieu-dit.
INDEX_VERSION = 3
#: BAN house numbers from this one up are not real numbers (lieux-dits without number).
_NUMERO_FICTIF = 5000

STREET, LOCALITY = 0, 1


def build_index(path: Path) -> dict[str, np.ndarray]:
    """Index arrays of an address file (SEM communes only): streets, addresses, communes."""
    import pandas as pd

    communes = communes_sem()
    df = read_ban_csv(path, insee=[c.insee for c in communes])
    df = df.assign(
        num=pd.to_numeric(df["numero"], errors="coerce").fillna(0).astype(np.int32),
        lonf=pd.to_numeric(df["lon"], errors="coerce"),
        latf=pd.to_numeric(df["lat"], errors="coerce"),
        rep=df["rep"].map(lambda r: REPETITIONS.get(normalize(r), normalize(r))),
    )
    df = df[df["lonf"].notna() & df["latf"].notna() & (df["nom_voie"] != "")]
    df = df.sort_values(["code_insee", "nom_voie", "num", "rep"], kind="stable")
    df["sid"] = df.groupby(["code_insee", "nom_voie"], sort=False).ngroup().astype(np.int32)
    df = df.sort_values(["sid", "num", "rep"], kind="stable").reset_index(drop=True)
    grouped = df.groupby("sid", sort=True)
    first = grouped.head(1).set_index("sid")
    counts = grouped.size().to_numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    mid = starts + counts // 2
    s_name = first["nom_voie"].to_numpy(dtype=str)
    s_insee = first["code_insee"].to_numpy(dtype=str)
    s_postcode = grouped["code_postal"].agg(lambda s: s.mode().iat[0]).to_numpy(dtype=str)
    # A street: a type word (« Rue … »), or house numbers in the address file (« Le Coin »,
    # « Les Granges » numbered like any street: judged on all their addresses,
    # qpv_geo.eligibility.street_rule).
    numbered = grouped["num"].agg(lambda s: bool(((s > 0) & (s < _NUMERO_FICTIF)).any())
                                  ).to_numpy(bool)
    s_kind = np.array([STREET if has_numbers or (match_key(n).split() or [""])[0]
                       in STREET_TYPES else LOCALITY
                       for n, has_numbers in zip(s_name, numbered, strict=True)], dtype=np.int8)
    streets = {
        "s_name": s_name, "s_insee": s_insee, "s_postcode": s_postcode, "s_kind": s_kind,
        "s_start": starts, "s_end": starts + counts,
        "s_lon": df["lonf"].to_numpy()[mid], "s_lat": df["latf"].to_numpy()[mid],
    }
    # Lieux-dits named on addresses (nom_ld): a toponym at the centre of its addresses.
    ld = df[df["nom_ld"] != ""]
    if len(ld):
        g = ld.groupby(["code_insee", "nom_ld"], sort=True)
        agg = g.agg(lon=("lonf", "median"), lat=("latf", "median"),
                    postcode=("code_postal", lambda s: s.mode().iat[0])).reset_index()
        n = len(agg)
        streets = {
            "s_name": np.concatenate([s_name, agg["nom_ld"].to_numpy(dtype=str)]),
            "s_insee": np.concatenate([s_insee, agg["code_insee"].to_numpy(dtype=str)]),
            "s_postcode": np.concatenate([s_postcode, agg["postcode"].to_numpy(dtype=str)]),
            "s_kind": np.concatenate([s_kind, np.full(n, LOCALITY, np.int8)]),
            "s_start": np.concatenate([starts, np.zeros(n, np.int64)]),
            "s_end": np.concatenate([starts + counts, np.zeros(n, np.int64)]),
            "s_lon": np.concatenate([streets["s_lon"], agg["lon"].to_numpy()]),
            "s_lat": np.concatenate([streets["s_lat"], agg["lat"].to_numpy()]),
        }
    streets["s_key"] = np.array([match_key(n) for n in streets["s_name"]], dtype=str)
    # Communes: point = median of their addresses (the shipped outline's centre otherwise).
    med = df.groupby("code_insee").agg(lon=("lonf", "median"), lat=("latf", "median"))
    c_lon, c_lat = [], []
    for c in communes:
        if c.insee in med.index:
            c_lon.append(float(med.at[c.insee, "lon"]))
            c_lat.append(float(med.at[c.insee, "lat"]))
        else:
            lon, lat = _commune_outline_point(c.insee)
            c_lon.append(lon)
            c_lat.append(lat)
    # Aliases: official name + former communes (« Saint-Victor-sur-Loire » → Saint-Étienne).
    alias_key, alias_insee = [], []
    for c in communes:
        alias_key.append(match_key(c.nom))
        alias_insee.append(c.insee)
    old = df[df["nom_ancienne_commune"] != ""][["nom_ancienne_commune", "code_insee"]]
    for name, code in old.drop_duplicates().itertuples(index=False):
        key = match_key(name)
        if key and key not in alias_key:
            alias_key.append(key)
            alias_insee.append(code)
    return {
        **streets,
        "a_num": df["num"].to_numpy(np.int32), "a_rep": df["rep"].to_numpy(dtype=str),
        "a_type": df["type_position"].to_numpy(dtype=str),
        "a_lon": df["lonf"].to_numpy(np.float64), "a_lat": df["latf"].to_numpy(np.float64),
        "a_postcode": df["code_postal"].to_numpy(dtype=str),
        "c_insee": np.array([c.insee for c in communes], dtype=str),
        "c_name": np.array([c.nom for c in communes], dtype=str),
        "c_postcodes": np.array([";".join(c.postcodes) for c in communes], dtype=str),
        "c_lon": np.array(c_lon), "c_lat": np.array(c_lat),
        "alias_key": np.array(alias_key, dtype=str),
        "alias_insee": np.array(alias_insee, dtype=str),
        "meta": np.array([json.dumps({"version": INDEX_VERSION, "rows": len(df)})]),
    }


def _commune_outline_point(insee: str) -> tuple[float, float]:
    """A point inside the shipped outline of a commune (for communes without addresses)."""
    import shapely.geometry

    path = package_data_dir("reference") / "communes_sem.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    for feat in data["features"]:
        if feat["properties"].get("insee_com") == insee:
            p = shapely.geometry.shape(feat["geometry"]).representative_point()
            return float(p.x), float(p.y)
    return float("nan"), float("nan")
