"""Streets decide what they can: a point known only at the street, judged by the whole street.

A geocoding result at street precision (no number, or a number absent from the address file)
stands for any address of that street. Like the official tool of the ANCT, the street is
classified against the QPV from its extent, here the addresses it has in the address file
(the same BAN CSV the local geocoder reads, through its cached index):

* every address inside one QPV of SEM, each farther from the edge than its own margin
  (« voie entière ») → ``eligible`` in that QPV;
* no address in any QPV, each farther than its margin (« voie hors QPV ») → ``hors_qpv``
  (``hors_territoire`` when all are outside SEM);
* some inside and some outside (« voie en partie »), or addresses within their margin of an
  edge (« voie en limite ») → ``a_verifier``, naming the QPV and the stretch (numbers).

Each address is judged with its own margin (its ``type_position``, docs/marges.md). The
classification of a street is computed once per engine and address file, then kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qpv_geo.eligibility.margins import INCERTITUDE_TYPE_INCONNU_M, INCERTITUDE_TYPE_POSITION
from qpv_geo.eligibility.verdict_table import A_VERIFIER, ELIGIBLE, HORS_QPV, HORS_TERRITOIRE
from qpv_geo.exceptions import QpvGeoError
from qpv_geo.geocoding import LocalGeocoder
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Classification, Engine
    from qpv_geo.geocoding import GeocodeResult, LocalGeocoder

#: Kinds of street classification (the official tool's words).
ENTIERE, PARTIE, LIMITE, HORS = "voie entière", "voie en partie", "voie en limite", "voie hors QPV"


@dataclass(frozen=True)
class VoieVerdict:
    """What a street's addresses say about a point known only at that street."""

    kind: str  # ENTIERE, PARTIE, LIMITE or HORS
    status: int  # status code: ELIGIBLE / HORS_QPV / HORS_TERRITOIRE when decisive, else A_VERIFIER
    zone: int  # row of Engine.zones (the QPV of an « entière » street, or the one named), -1
    dist: float  # signed distance to the edge of the address nearest to it (inside > 0)
    marge: float  # the largest margin among the street's addresses
    n: int  # number of addresses of the street
    motif: str  # the French reason

    @property
    def decisive(self) -> bool:
        """True when the street settles the verdict (entière or hors QPV)."""
        return self.kind in (ENTIERE, HORS)


class Voies:
    """The streets of one address file (a :class:`LocalGeocoder`'s index), classified lazily."""

    def __init__(self, geocoder: LocalGeocoder) -> None:
        self.geocoder = geocoder
        self._by_name = {(insee, name): i for i, (insee, name) in
                         enumerate(zip(geocoder.s_insee, geocoder.s_name, strict=True))
                         if geocoder.s_end[i] > geocoder.s_start[i]}
        self._cache: dict[tuple[int, int], VoieVerdict] = {}
        self._lock = threading.Lock()

    def street(self, citycode: str | None, name: str | None) -> int | None:
        """Index of the street named ``name`` in commune ``citycode``, None if unknown."""
        if not citycode or not name:
            return None
        return self._by_name.get((str(citycode), str(name)))

    def classify(self, engine: Engine, i: int) -> VoieVerdict:
        """Classification of street ``i`` against the perimeters of ``engine`` (cached)."""
        key = (id(engine), i)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        verdict = _classify(engine, self.geocoder, i)
        with self._lock:
            self._cache[key] = verdict
        return verdict


def _adresses(k: int) -> str:
    """« 1 adresse » / « 3 adresses »."""
    return f"{k} adresse{'s' if k > 1 else ''}"


def _numbers(nums: np.ndarray) -> str:
    """« nos 2 à 48 » / « no 7 » for the numbers of a stretch."""
    nums = np.unique(nums[nums > 0])
    if len(nums) == 0:
        return "adresses sans numéro"
    if len(nums) == 1:
        return f"no {nums[0]}"
    return f"nos {nums[0]} à {nums[-1]}"


def _classify(engine: Engine, g: LocalGeocoder, i: int) -> VoieVerdict:
    start, end = int(g.s_start[i]), int(g.s_end[i])
    lon, lat = g.a_lon[start:end], g.a_lat[start:end]
    nums = np.asarray(g.a_num[start:end])
    kinds = getattr(g, "a_type", None)
    u = np.array([INCERTITUDE_TYPE_POSITION.get(str(t).replace("\u2019", "'").strip().lower(),
                                                INCERTITUDE_TYPE_INCONNU_M)
                  for t in (kinds[start:end] if kinds is not None else [""] * (end - start))])
    x, y = engine.lonlat_to_plan(lon, lat)
    c = engine.classify_xy(x, y, incertitude_m=u)
    st, n = c.status, end - start
    codes = engine.zones["code_qp"].to_numpy(object)
    names = engine.zones["lib_qp"].to_numpy(object)
    name = g.s_name[i]
    marge = float(np.nanmax(c.marge)) if n else float("nan")
    inside = st == ELIGIBLE
    zones_in = np.unique(c.zone[inside])
    if inside.all() and len(zones_in) == 1:
        z = int(zones_in[0])
        return VoieVerdict(
            ENTIERE, ELIGIBLE, z, float(np.nanmin(c.dist)), marge, n,
            f"{ENTIERE} dans le QPV {codes[z]} « {names[z]} » : les {n} adresses de « {name} » "
            f"({_numbers(nums)}) y sont toutes, chacune à plus de sa marge du bord")
    outside = (st == HORS_QPV) | (st == HORS_TERRITOIRE)
    if outside.all():
        status = HORS_TERRITOIRE if (st == HORS_TERRITOIRE).all() else HORS_QPV
        near = c.near_zone[np.nanargmax(np.where(np.isnan(c.dist), -np.inf, c.dist))] \
            if np.isfinite(c.dist).any() else -1
        where = (f" ; QPV le plus proche : {codes[near]} « {names[near]} »" if near >= 0
                 else "")
        return VoieVerdict(
            HORS, status, -1, float(np.nanmax(c.dist)) if np.isfinite(c.dist).any()
            else float("nan"), marge, n,
            f"{HORS} : aucune des {n} adresses de « {name} » ({_numbers(nums)}) n'est dans un "
            f"QPV ni à moins de sa marge d'un bord{where}")
    # Partly in, or along an edge: name the QPV and the stretch.
    near_edge = st == A_VERIFIER
    concerned = np.where(inside, c.zone, np.where(near_edge, c.edge_zone, -1))
    concerned = concerned[concerned >= 0]
    qpv = concerned[np.asarray(engine._zone_kind)[concerned] == 0] if len(concerned) else \
        concerned
    z = int(np.bincount(qpv).argmax()) if len(qpv) else -1
    label = f"QPV {codes[z]} « {names[z]} »" if z >= 0 else "un QPV"
    if inside.any() and outside.any():
        kind = PARTIE
        text = (f"{PARTIE} dans le {label} : {_numbers(nums[inside])} dedans, "
                f"{_numbers(nums[outside])} dehors ({_adresses(int(inside.sum()))} sur {n} dans "
                "un QPV) : le numéro décide")
    else:
        kind = LIMITE
        text = (f"{LIMITE} du {label} : {_numbers(nums[near_edge])} à moins de leur marge du "
                f"bord ({_adresses(int(near_edge.sum()))} sur {n}) : le numéro et le côté de la "
                "voie décident")
    dist = c.dist[near_edge] if near_edge.any() else c.dist
    return VoieVerdict(kind, A_VERIFIER, z, float(dist[np.nanargmin(np.abs(dist))])
                       if np.isfinite(dist).any() else float("nan"), marge, n, text)


_VOIES: dict[tuple[Any, ...], Voies] = {}
_VOIES_LOCK = threading.Lock()


def voies_for(result: GeocodeResult) -> Voies | None:
    """The streets of the address file that can speak for ``result`` (None if none).

    A result of the demonstration file uses that file; any other (local or online) uses the
    installed BAN file when there is one.
    """
    settings = Settings.from_env()
    try:
        geocoder = LocalGeocoder.from_settings(settings, demo=result.source == "local-demo")
    except QpvGeoError:
        return None
    key = (str(geocoder.path), geocoder.sha256)
    with _VOIES_LOCK:
        voies = _VOIES.get(key)
        if voies is None:
            _VOIES.clear()
            voies = _VOIES[key] = Voies(geocoder)
    return voies


def decide(engine: Engine, geocodes: Sequence[GeocodeResult | None]
           ) -> list[VoieVerdict | None]:
    """Per row: the street's verdict for results at street precision, else None."""
    out: list[VoieVerdict | None] = [None] * len(geocodes)
    for k, g in enumerate(geocodes):  # one geocoding result per row: already a per-row object
        if g is None or not g.found or g.precision != "street" or not g.street:
            continue
        voies = voies_for(g)
        i = voies.street(g.citycode, g.street) if voies is not None else None
        if i is not None:
            out[k] = voies.classify(engine, i)
    return out


def apply(c: Classification, verdicts: Sequence[VoieVerdict | None], mots: np.ndarray) -> None:
    """Give decisive streets' verdicts to their rows of ``c`` (in place), and their margins."""
    for k, v in enumerate(verdicts):
        if v is None or c.bad[k] != 0:
            continue
        if v.decisive:
            c.status[k] = v.status
            c.zone[k] = v.zone
            c.zone2[k] = -1
            c.dist[k] = v.dist
            c.alt_status[k] = -1
            c.edge_zone[k] = -1
            if v.zone >= 0:
                c.near_zone[k] = -1
        elif v.zone >= 0:
            c.edge_zone[k] = v.zone
        c.marge[k] = v.marge
        c.incertitude[k] = v.marge - c.perimetre[k]
        mots[k] = f"position des {v.n} adresses de la voie (au plus)"


__all__ = ["ENTIERE", "HORS", "LIMITE", "PARTIE", "VoieVerdict", "Voies", "apply", "decide",
           "voies_for"]
