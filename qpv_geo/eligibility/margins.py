"""Margins from the evidence: how far a point may be from where it should be, and why.

The margin of a verdict is the distance to an edge under which the verdict is « à vérifier ».
By default it is, for each point, the sum of

* the **edge precision of the perimeter** (``precision_m`` of the QPV feature or its layer:
  1 m for the exact ANCT geometry, 11 m for the simplified copy), and
* the **position uncertainty of the point**, from :data:`INCERTITUDE_TYPE_POSITION` (BAN
  ``type_position`` of a house-number result), :data:`INCERTITUDE_PRECISION` (geocoding precision
  coarser than the house number) or, for coordinates, :data:`INCERTITUDE_COORDONNEES_M` unless
  the user states one (``--precision-point``, a batch column) — and never less than what the
  figures as written allow (« 45.41, 4.39 » is a cell of 0.01°, ± 681 m:
  :func:`~qpv_geo.geocoding.coordinates.incertitude_arrondi_m`), on every path.

``--marge`` (``Settings.marge_m``) forces one value for every point instead. Each verdict says
which margin it used and why (``marge_m``, ``marge_motif``). The figures and their grounds are in
docs/marges.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qpv_geo.eligibility.coded import Coded, factorize_rows
from qpv_geo.geocoding.coordinates import demi_pas_decimales, incertitude_arrondi_m

if TYPE_CHECKING:
    from qpv_geo.geocoding import GeocodeResult

#: Position uncertainty (m) of a BAN address point, by ``type_position`` (BAL 1.3 values).
INCERTITUDE_TYPE_POSITION: dict[str, float] = {
    "entrée": 8.0,
    "délivrance postale": 8.0,
    "service technique": 10.0,
    "cage d'escalier": 10.0,
    "logement": 10.0,
    "bâtiment": 15.0,
    "parcelle": 30.0,
    "segment": 40.0,
}
#: A house-number result whose position type is unknown (online service, older files).
INCERTITUDE_TYPE_INCONNU_M = 15.0
#: Position uncertainty (m) of a result coarser than the house number. A street point is
#: decided by the street's extent when it can be (qpv_geo.eligibility.street_rule); these
#: figures only bound the geometric test of the point itself.
INCERTITUDE_PRECISION: dict[str, float] = {
    "street": 150.0,
    "locality": 300.0,
    "municipality": 1000.0,
}
#: Coordinates given without a stated precision (typed, read on a map or a phone).
INCERTITUDE_COORDONNEES_M = 10.0

_LIBELLE_PRECISION = {"street": "voie", "locality": "lieu-dit", "municipality": "commune"}
_APOSTROPHES = re.compile("[\u2019\u02bc`´]")


def type_position_normalise(value: Any) -> str | None:
    """The BAL ``type_position`` as a key of :data:`INCERTITUDE_TYPE_POSITION`, or None."""
    if value is None:
        return None
    text = _APOSTROPHES.sub("'", str(value)).strip().lower()
    return text if text in INCERTITUDE_TYPE_POSITION else None


def geocoded_rows(geocodes: Sequence[GeocodeResult | None] | None
                  ) -> tuple[list[int], list[GeocodeResult]]:
    """The rows that have a geocoding result, and those results: the rules on geocoding read
    these alone (a file of coordinates has none, told by one count at C speed)."""
    if geocodes is None or len(geocodes) == 0 or (
            isinstance(geocodes, list) and geocodes.count(None) == len(geocodes)):
        return [], []
    rows = [i for i, g in enumerate(geocodes) if g is not None]
    return rows, [geocodes[i] for i in rows]  # type: ignore[misc]


def incertitudes(n: int, geocodes: Sequence[GeocodeResult | None] | None,
                 precision_point_m: Any = None, *,
                 defaut: float = INCERTITUDE_COORDONNEES_M, lon: Any = None,
                 lat: Any = None, arrondi_m: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per point: position uncertainty (m) and the French words that say where it comes from.

    ``precision_point_m`` is a number for every point, or one value per point (NaN: not
    stated, ``defaut`` applies); it applies to points without a geocoding result. ``lon`` /
    ``lat``: the coordinates given (points without geocoding, or typed in the address field):
    their uncertainty is at least that of their decimals (:func:`arrondi_des_coordonnees`, or
    ``arrondi_m`` per point where the text they were read from said it: NaN elsewhere).
    """
    stated = _par_point(precision_point_m, n)
    given = np.isfinite(stated) & (stated >= 0)
    values = np.where(given, stated, defaut)
    # A default changed by the user (--precision-point, QPV_GEO_PRECISION_POINT_M) is stated.
    usual = "position de coordonnées (valeur par défaut)" if defaut == \
        INCERTITUDE_COORDONNEES_M else "position déclarée"
    words = np.where(given, "position déclarée", usual).astype(object)
    # uncertainty known from the text the coordinates were read from (a cell, the address field)
    typed = np.array(_par_point(arrondi_m, n))
    # the rows with a geocoding result (a file of coordinates has none)
    results = list(zip(*geocoded_rows(geocodes), strict=True))
    for i, g in results:  # one result per row: already a per-row object
        if g.found and g.precision == "coordonnees" and g.incertitude_m is not None:
            typed[i] = g.incertitude_m
    if lon is not None and lat is not None:
        _plus_arrondi(values, words, lon, lat, typed)
    if geocodes is None:
        return values, words
    for i, g in results:
        if not g.found or g.precision == "coordonnees":
            continue  # coordinates typed in the address field: a point like any other
        if g.precision == "housenumber":
            kind = type_position_normalise(getattr(g, "type_position", None))
            if kind is None:
                values[i] = INCERTITUDE_TYPE_INCONNU_M
                words[i] = "position d'adresse de type inconnu"
            else:
                values[i] = INCERTITUDE_TYPE_POSITION[kind]
                words[i] = f"position « {kind} »"
        else:
            values[i] = INCERTITUDE_PRECISION.get(g.precision or "", INCERTITUDE_PRECISION[
                "municipality"])
            words[i] = f"position à la {_LIBELLE_PRECISION.get(g.precision or '', 'commune')}"
    return values, words


def _par_point(value: Any, n: int) -> np.ndarray:
    """``value`` (None: NaN; a number, or one per point) as ``n`` floats, read-only."""
    a = np.asarray(np.nan if value is None else value, dtype=np.float64)
    return np.full(n, float(a)) if a.ndim == 0 else np.broadcast_to(a, (n,))


def arrondi_des_coordonnees(lon: Any, lat: Any) -> np.ndarray:
    """Uncertainty (m) of coordinates from their decimals alone (« 45.41 » is 45.41 ± 0.005°):
    the half-diagonal of the rounding cell; NaN where a coordinate is missing."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    out = incertitude_arrondi_m(lat, demi_pas_decimales(lat), demi_pas_decimales(lon))
    return np.where(np.isfinite(lon) & np.isfinite(lat), out, np.nan)


def _plus_arrondi(values: np.ndarray, words: np.ndarray, lon: Any, lat: Any,
                  typed: np.ndarray) -> None:
    """Raise ``values`` to the uncertainty of the coordinates' decimals where it is larger
    (``typed``: the figure known from the text, which keeps its trailing zeros)."""
    arrondi = np.where(np.isfinite(typed), typed, arrondi_des_coordonnees(lon, lat))
    more = np.isfinite(arrondi) & (arrondi > values)
    if not more.any():
        return
    values[more] = np.round(arrondi[more])
    words[more] = "arrondi des coordonnées données"


def fmt_metres(values: np.ndarray) -> np.ndarray:
    """« 9 m », « 2,5 m » for each value (vectorised over the few distinct values)."""
    v = np.round(np.asarray(values, dtype=np.float64), 1)
    if len(v) <= 4:  # a single verdict: no sorting machinery
        return np.array([_metres(float(u)) for u in v], dtype=object).reshape(len(v))
    out = np.full(len(v), "? m", dtype=object)
    ok = np.isfinite(v)
    if ok.any():
        uniq, inv = np.unique(v[ok], return_inverse=True)
        text = np.array([(f"{u:.0f}" if float(u).is_integer() else f"{u:.1f}".replace(".", ","))
                         + " m" for u in uniq], dtype=object)
        out[ok] = text[inv]
    return out


def _metres(u: float) -> str:
    if not np.isfinite(u):
        return "? m"
    return (f"{u:.0f}" if u.is_integer() else f"{u:.1f}".replace(".", ",")) + " m"


def motifs_marge(marge: np.ndarray, perimetre: np.ndarray, incertitude: np.ndarray,
                 mots: np.ndarray, forcee: bool) -> np.ndarray:
    """« marge 9 m = périmètre 1 m + position « entrée » 8 m » for each point ("" if none)."""
    n = len(marge)
    if n == 1:  # one verdict (the web page, check): the same phrase from Python numbers
        m = float(marge[0])
        if not np.isfinite(m):
            return np.array([""], dtype=object)
        return np.array([_phrase_marge(_metres(_round1(m)), _metres(_round1(float(perimetre[0]))),
                                       str(mots[0]), _metres(_round1(float(incertitude[0]))),
                                       forcee)], dtype=object)
    out = np.full(n, "", dtype=object)
    ok = np.isfinite(marge)
    if not ok.any():
        return out
    if forcee:
        out[ok] = _phrase_marge(fmt_metres(marge[ok]), "", "", "", forcee)
        return out
    out[ok] = _phrase_marge(fmt_metres(marge[ok]), fmt_metres(perimetre[ok]),
                            mots[ok].astype(str), fmt_metres(incertitude[ok]), forcee)
    return out


def _phrase_marge(marge: Any, perimetre: Any, mot: Any, incertitude: Any, forcee: bool) -> Any:
    """The words of :func:`motifs_marge` from the figures as text (strings, or arrays)."""
    if forcee:
        return "marge " + marge + " imposée (--marge ou QPV_GEO_MARGE_M)"
    return "marge " + marge + " = périmètre " + perimetre + " + " + mot + " " + incertitude


def _round1(v: float) -> float:
    return _round_float(v, 1)


def _round_float(v: float, decimals: int) -> float:
    """``np.round(v, decimals)`` of one Python float, bit for bit: numpy computes
    ``rint(v * 10**decimals) / 10**decimals`` and Python's ``round`` rounds half to even."""
    if not math.isfinite(v):
        return v
    f = 10.0 ** decimals
    y = v * f
    return math.copysign(float(round(y)), y) / f


def rounded(values: np.ndarray, decimals: int) -> np.ndarray:
    """``values.round(decimals)`` (float arrays); one value rounded from a Python float, the
    same number without numpy's per-call cost (a single verdict rounds nine values)."""
    if values.shape == (1,):
        return np.array([_round_float(float(values[0]), decimals)])
    return values.round(decimals)


def motifs_marge_codes(marge: np.ndarray, perimetre: np.ndarray, incertitude: np.ndarray,
                       mots: np.ndarray, forcee: bool) -> Coded:
    """:func:`motifs_marge` as codes: its text once per distinct (margin, perimeter,
    uncertainty, words), the rows as codes into them (the batch path)."""
    rows, first = factorize_rows(marge, perimetre, incertitude, mots)
    texts = motifs_marge(marge[first], perimetre[first], incertitude[first],
                         np.asarray(mots, dtype=object)[first], forcee)
    return Coded(texts, rows)


def fmt_m(values: np.ndarray) -> np.ndarray:
    """« 12 m » for each distance (vectorised), « ? m » where unknown."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    if len(v) == 1:  # one verdict: Python's round is rint's half to even
        u = float(v[0])
        return np.array([f"{round(u)} m" if np.isfinite(u) else "? m"], dtype=object)
    out = np.full(len(v), "? m", dtype=object)
    ok = np.isfinite(v)
    out[ok] = np.char.add(np.round(v[ok]).astype(np.int64).astype(str), " m").astype(object)
    return out


__all__ = [
    "INCERTITUDE_COORDONNEES_M",
    "INCERTITUDE_PRECISION",
    "INCERTITUDE_TYPE_INCONNU_M",
    "INCERTITUDE_TYPE_POSITION",
    "arrondi_des_coordonnees",
    "fmt_m",
    "incertitudes",
    "motifs_marge",
    "motifs_marge_codes",
    "rounded",
    "type_position_normalise",
]
