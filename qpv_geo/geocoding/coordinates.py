"""Coordinates typed where an address is expected: read as coordinates by the CLI, the web
page/API and batch.

Read: decimal degrees (« 45.46881, 4.39862 », « 45,46881 4,39862 »), with hemisphere letters
(« 45.4611 N, 4.3867 E », « 61.5 O »), degrees-minutes-seconds as maps and GPS print them
(« 45°27'40"N 4°23'12"E », « 45° 27.667' N »), labelled (« lat=45.46, lon=4.38 »,
« latitude : 45,46 longitude : 4,38 »), ``geo:`` URIs (RFC 5870, ``;u=`` uncertainty kept),
OpenStreetMap links (marker ``mlat``/``mlon``, else ``#map=zoom/lat/lon``) and Google Maps
links (the place ``!3d…!4d…``, else ``q=``/``query=``/``ll=``, else ``@lat,lon``), and
Lambert-93 « 808000 6480000 ».

:func:`parse_coordinates` recognises them (plain degrees need decimals, so « 12 15 » stays an
address); :func:`coordinates_result` turns them into a :class:`GeocodeResult` of precision
``coordonnees`` (no geocoding, no consistency rule) that carries the uncertainty of the
figures as written: « 45.41, 4.39 » is a cell of 0.01° — ± 556 m in latitude — not a point
(:func:`incertitude_arrondi_m`, used by the margins for every coordinate given).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qpv_geo.geocoding.base import AddressQuery, GeocodeResult, query_text
from qpv_geo.reference.metric_zones import l93_to_lonlat, zone_du_point

PRECISION = "coordonnees"
SOURCE = "coordonnees"

#: Metres per degree of latitude (and of longitude at the equator), WGS84 mean.
METRES_PAR_DEGRE = 111_320.0
#: Decimals beyond which a figure's rounding no longer matters (< 1 cm).
_DECIMALES_MAX = 7
#: Half the step of k decimals, k = 0 … _DECIMALES_MAX, computed as for one cell
_HALF_STEPS = np.array([0.5 * 10.0 ** -k for k in range(_DECIMALES_MAX + 1)])

_DEG = re.compile(r"^[-+]?\d{1,3}[.,]\d+$")
_NUM = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$")
_LAT, _LON = (41.0, 51.6), (-5.6, 10.0)           # metropolitan France (and Corsica)
_X, _Y = (50_000.0, 1_300_000.0), (6_000_000.0, 7_200_000.0)  # Lambert-93 over France

_N = r"[-+\u2212]?\d{1,3}(?:[.,]\d+)?"
# One angle: degrees, optional minutes and seconds, optional hemisphere letter (before or after).
_ANGLE = re.compile(
    r"(?P<h1>[NSEOW])?\s*(?P<d>[-+\u2212]?\d{1,3}(?:[.,]\d+)?)\s*(?:°|º|˚|deg\b|d\b)?\s*"
    r"(?:(?P<m>\d{1,2}(?:[.,]\d+)?)\s*(?:'|′|’|‘|min\b|m\b)\s*)?"
    r"(?:(?P<s>\d{1,2}(?:[.,]\d+)?)\s*(?:\"|″|”|“|''|′′|’’|sec\b|s\b)\s*)?"
    r"(?P<h2>[NSEOW])?(?![A-Za-z])", re.IGNORECASE)
_LABELLED = re.compile(
    r"^\s*(?:lat(?:itude)?)\s*[:=]?\s*(?P<lat>" + _N + r")\s*[,;/]?\s*"
    r"(?:lng|lon(?:g(?:itude)?)?)\s*[:=]?\s*(?P<lon>" + _N + r")\s*$"
    r"|^\s*(?:lng|lon(?:g(?:itude)?)?)\s*[:=]?\s*(?P<lon2>" + _N + r")\s*[,;/]?\s*"
    r"(?:lat(?:itude)?)\s*[:=]?\s*(?P<lat2>" + _N + r")\s*$", re.IGNORECASE)
_PAIR = re.compile(r"^\s*(" + _N + r")\s*,\s*(" + _N + r")")
_GOOGLE_PLACE = re.compile(r"!3d(" + _N + r")!4d(" + _N + r")")
_GOOGLE_AT = re.compile(r"@(" + _N + r"),(" + _N + r")(?:,|$|/|\?)")


@dataclass(frozen=True)
class Coordinates:
    """Coordinates read from a text: WGS84 degrees (``lat``/``lon``) or Lambert-93 metres.

    ``incertitude_m``: uncertainty of the position as written (half the last digit given, or
    the ``u=`` of a ``geo:`` URI), 0 when negligible.
    """

    kind: str                 # "wgs84" or "lambert93"
    lon: float
    lat: float
    x: float | None = None
    y: float | None = None
    incertitude_m: float = 0.0
    texte: str | None = None   # the figures as written (« lat 45.41, lon 4.39 »)

    def label(self) -> str:
        """« coordonnées saisies : lat 45.41, lon 4.39 » (as written), or x/y."""
        if self.kind == "lambert93":
            return f"coordonnées saisies (Lambert-93) : x {self.x:.0f}, y {self.y:.0f}"
        return f"coordonnées saisies : {self.texte or f'lat {self.lat!r}, lon {self.lon!r}'}"


# ---------------------------------------------------------------------------------------------
# Uncertainty of figures as written (one rule for text and numbers)
# ---------------------------------------------------------------------------------------------


def incertitude_arrondi_m(lat: object, demi_pas_lat: object, demi_pas_lon: object
                          ) -> np.ndarray:
    """Metres between a point written with half-steps ``demi_pas_lat`` / ``demi_pas_lon``
    (degrees: 0.005 for two decimals) and the farthest true point it may stand for: the
    half-diagonal of the rounding cell at latitude ``lat``."""
    lat = np.asarray(lat, dtype=np.float64)
    a = np.asarray(demi_pas_lat, dtype=np.float64) * METRES_PAR_DEGRE
    b = np.asarray(demi_pas_lon, dtype=np.float64) * METRES_PAR_DEGRE * np.cos(np.radians(lat))
    return np.hypot(a, b)


def demi_pas_decimales(values: object) -> np.ndarray:
    """Half the last decimal step of numbers read from text or a sheet (0.005 for 45.41): the
    fewest decimals that write each float exactly. A number does not keep its trailing zeros
    (« 45.40 » is 45.4): text read by :func:`parse_coordinates` counts its own digits."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 1:  # one point (the web page, check): the same steps on a Python float
        return np.full(v.shape, _demi_pas_un(float(v.flat[0])))
    out = np.full(v.shape, 0.5 * 10.0 ** -_DECIMALES_MAX)
    todo = np.isfinite(v) & (np.abs(v) < 1e6)
    v = np.where(todo, v, 0.0)
    for d in range(_DECIMALES_MAX):
        exact = todo & (np.abs(np.round(v, d) - v) <= 1e-10)
        out[exact] = 0.5 * 10.0 ** -d
        todo &= ~exact
        if not todo.any():
            break
    return out


def _demi_pas_un(v: float) -> float:
    """:func:`demi_pas_decimales` of one number, bit for bit: ``np.round(v, d)`` is
    ``rint(v * 10**d) / 10**d``, and Python's ``round`` rounds half to even like ``rint``."""
    if not (math.isfinite(v) and abs(v) < 1e6):
        return 0.5 * 10.0 ** -_DECIMALES_MAX
    for d in range(_DECIMALES_MAX):
        f = 10.0 ** d
        if abs(round(v * f) / f - v) <= 1e-10:
            return 0.5 * 10.0 ** -d
    return 0.5 * 10.0 ** -_DECIMALES_MAX


def demi_pas_textes(texts: object) -> np.ndarray:
    """:func:`demi_pas_decimales` of numbers as written in cells (« 45,40 » keeps its two
    decimals); NaN where a cell is not a plain decimal number."""
    cells = np.asarray(texts, dtype=object).ravel()
    if len(cells) >= 64 and all(type(t) is str for t in cells):
        return _demi_pas_textes_arrow(cells)
    out = []
    for t in cells:
        text = str(t).strip() if t is not None else ""
        out.append(_demi_pas_texte(text) if _NUM.match(text) else np.nan)
    return np.asarray(out, dtype=np.float64)


def _demi_pas_textes_arrow(cells: np.ndarray) -> np.ndarray:
    """:func:`demi_pas_textes` of text cells: the cells that are plain ASCII decimals as they
    stand (« 45,4066 », « -4.5 », « 45 »: ``_NUM`` on ASCII text) are counted by Arrow, the
    others (blanks around, other digits, text) by :func:`_demi_pas_textes_np`."""
    text = pa.array(cells, type=pa.string())
    ok = pc.and_(pc.string_is_ascii(text),
                 pc.match_substring_regex(text, r"^[-+]?[0-9]+(?:[.,][0-9]+)?$"))
    ok = ok.to_numpy(zero_copy_only=False)
    sep_at = np.maximum(pc.find_substring(text, ",").to_numpy(zero_copy_only=False),
                        pc.find_substring(text, ".").to_numpy(zero_copy_only=False))
    length = pc.binary_length(text).to_numpy(zero_copy_only=False)
    d = np.minimum(np.where(sep_at >= 0, length - 1 - sep_at, 0), _DECIMALES_MAX)
    out = np.where(ok, _HALF_STEPS[d], np.nan)
    if not ok.all():
        rest = np.flatnonzero(~ok)
        out[rest] = _demi_pas_textes_np(cells[rest])
    return out


def _demi_pas_textes_np(cells: np.ndarray) -> np.ndarray:
    """:func:`demi_pas_textes` of text cells by numpy's string functions (no loop by cell):
    the same rule as ``_NUM`` and ``_demi_pas_texte`` — \\d is a Unicode decimal digit, and
    ``strip`` removes what ``str.strip`` does."""
    t = np.strings.strip(cells.astype(str))
    signed = np.strings.startswith(t, "-") | np.strings.startswith(t, "+")
    body = np.where(signed, np.strings.slice(t, 1, None), t)
    seps = np.strings.count(body, ".") + np.strings.count(body, ",")
    sep_at = np.maximum(np.strings.rfind(body, "."), np.strings.rfind(body, ","))
    length = np.strings.str_len(body)
    digits = np.strings.isdecimal(np.strings.replace(np.strings.replace(body, ".", ""),
                                                     ",", ""))
    ok = digits & ((seps == 0) | ((seps == 1) & (sep_at > 0) & (sep_at < length - 1)))
    d = np.minimum(np.where(seps == 1, length - 1 - sep_at, 0), _DECIMALES_MAX)
    return np.where(ok, _HALF_STEPS[d], np.nan)


def _demi_pas_texte(text: str) -> float:
    """Half the last step of a decimal written in ``text`` (« 45,41 » → 0.005)."""
    m = re.search(r"[.,](\d+)$", text.strip())
    d = min(len(m.group(1)), _DECIMALES_MAX) if m else 0
    return 0.5 * 10.0 ** -d


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _num(text: str) -> float:
    return float(text.replace(",", ".").replace("\u2212", "-"))


def _split(text: str) -> list[str]:
    t = text.strip().strip("()[]")
    parts = [p for p in re.split(r"\s*[;/|]\s*|,\s+|\s+", t) if p]
    if len(parts) == 1 and t.count(",") == 1:  # « 45.46881,4.39862 »
        parts = t.split(",")
    return parts


def _in(v: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= v <= bounds[1]


def _en_france(*, lat: float, lon: float) -> bool:
    """In metropolitan France or an overseas territory holding QPV (generous boxes)."""
    return (_in(lat, _LAT) and _in(lon, _LON)) or (abs(lat) <= 90
                                                   and zone_du_point(lon, lat) is not None)


def _degrees(lat_text: str, lon_text: str, *, u: float = 0.0,
             ordered: bool = True) -> Coordinates | None:
    """Decimal degrees written as text; ``ordered``: latitude first for sure."""
    try:
        lat, lon = _num(lat_text), _num(lon_text)
    except ValueError:
        return None
    if not ordered and _en_france(lat=lon, lon=lat) and not _en_france(lat=lat, lon=lon):
        lat, lon, lat_text, lon_text = lon, lat, lon_text, lat_text
    if abs(lat) > 90 or abs(lon) > 180:
        return None
    arrondi = float(incertitude_arrondi_m(lat, _demi_pas_texte(lat_text),
                                          _demi_pas_texte(lon_text)))
    return Coordinates("wgs84", lon=lon, lat=lat, incertitude_m=max(arrondi, u),
                       texte=f"lat {lat_text.strip()}, lon {lon_text.strip()}")


def _angle(m: re.Match[str]) -> tuple[float, float, str | None, str]:
    """(degrees, half-step in degrees, hemisphere letter, text) of one angle match."""
    d, mi, s = m.group("d"), m.group("m"), m.group("s")
    value = abs(_num(d)) + (_num(mi) / 60 if mi else 0.0) + (_num(s) / 3600 if s else 0.0)
    last, unit = (s, 3600.0) if s else (mi, 60.0) if mi else (d, 1.0)
    half = _demi_pas_texte(last) / unit
    if d.strip().startswith(("-", "\u2212")):
        value = -value
    h = (m.group("h1") or m.group("h2") or "").upper() or None
    if h in ("S", "W", "O"):
        value = -abs(value)
    return value, half, h, m.group(0).strip()


def _from_angles(text: str) -> Coordinates | None:
    """Degrees with a ° sign or hemisphere letters: « 45°27'40"N 4°23'12"E », « 45.46 N 4.38 E »."""
    t = text.strip().strip("()[]")
    if not re.search(r"[°º˚'′\"″]|(?<![A-Za-z])[NSEOW](?![A-Za-z])", t, re.IGNORECASE):
        return None
    found: list[re.Match[str]] = []
    pos = 0
    while pos < len(t) and len(found) <= 2:
        m = _ANGLE.search(t, pos)
        if m is None or not m.group(0).strip():
            break
        found.append(m)
        pos = m.end()
        sep = re.match(r"\s*[,;/]?\s*", t[pos:])
        pos += sep.end() if sep else 0
    if len(found) != 2 or t[found[1].end():].strip() or t[:found[0].start()].strip():
        return None
    (v1, h1, l1, s1), (v2, h2, l2, s2) = (_angle(m) for m in found)
    signs = re.search(r"[°º˚'′\"″]", t) is not None
    decimals = all(re.search(r"[.,]\d", m.group("d")) for m in found)
    if not (signs or (l1 and l2) or decimals):  # « 12 15 E » stays an address
        return None
    if l1 in ("E", "W", "O") or l2 in ("N", "S"):
        (v1, h1, l1, s1), (v2, h2, l2, s2) = (v2, h2, l2, s2), (v1, h1, l1, s1)
    if (l1 not in (None, "N", "S")) or (l2 not in (None, "E", "W", "O")) or abs(v1) > 90 \
            or abs(v2) > 180:
        return None
    arrondi = float(incertitude_arrondi_m(v1, h1, h2))
    return Coordinates("wgs84", lon=v2, lat=v1, incertitude_m=arrondi,
                       texte=f"{s1} {s2}")


def _from_link(text: str) -> Coordinates | None:
    """``geo:`` URIs, OpenStreetMap and Google Maps links."""
    t = text.strip()
    low = t.lower()
    if low.startswith("geo:"):
        body, _, params = t[4:].partition(";")
        parts = body.split(",")
        u = 0.0
        for p in params.split(";"):
            key, _, value = p.partition("=")
            if key.strip().lower() == "u":
                try:
                    u = max(0.0, float(value))
                except ValueError:
                    return None
        if len(parts) < 2:
            return None
        return _degrees(parts[0], parts[1], u=u)
    if not re.match(r"^(?:https?://)?(?:[\w-]+\.)*(?:openstreetmap\.(?:org|fr)|osm\.org|"
                    r"google\.[a-z.]+|goo\.gl|maps\.app\.goo\.gl)(?:[/?#]|$)", low):
        return None
    parts = urlsplit(t if "://" in t else "https://" + t)
    query = parse_qs(parts.query)
    frag = parse_qs(parts.fragment)
    path = unquote(parts.path)

    def first(*keys: str) -> str | None:
        for k in keys:
            for source in (query, frag):
                if source.get(k):
                    return source[k][0]
        return None

    if "openstreetmap" in low or "osm.org" in low:
        mlat, mlon = first("mlat"), first("mlon")
        if mlat and mlon:
            return _degrees(mlat, mlon)
        m = re.search(r"map=\d+(?:\.\d+)?/(" + _N + r")/(" + _N + r")", parts.fragment + "&"
                      + parts.query)
        return _degrees(m.group(1), m.group(2)) if m else None
    place = _GOOGLE_PLACE.search(t)
    if place:
        return _degrees(place.group(1), place.group(2))
    value = first("q", "query", "ll", "destination", "center")
    if value:
        pair = _PAIR.match(unquote(value))
        if pair:
            return _degrees(pair.group(1), pair.group(2))
    at = _GOOGLE_AT.search(path) or _GOOGLE_AT.search(t)
    return _degrees(at.group(1), at.group(2)) if at else None


def _from_labels(text: str) -> Coordinates | None:
    """« lat=45.46, lon=4.38 », « latitude : 45,46 longitude : 4,38 », « lng=4.38 lat=45.46 »."""
    m = _LABELLED.match(text)
    if m is None:
        return None
    lat, lon = m.group("lat") or m.group("lat2"), m.group("lon") or m.group("lon2")
    return _degrees(lat, lon)


def parse_coordinates(text: str) -> Coordinates | None:
    """The coordinates typed in ``text``, or ``None`` when it is not a pair of coordinates.

    Plain degrees (with decimals, « . » or « , ») are read in the order that falls in France,
    overseas territories included (« lat, lon » as maps copy them, or « lon, lat »); without
    such an order, as « lat, lon ». Hemisphere letters, labels and links say the order.
    Two numbers in the Lambert-93 ranges are x and y (either order).
    """
    if not text or len(text) > 2000:
        return None
    text = str(text)
    for reader in (_from_link, _from_labels):
        c = reader(text)
        if c is not None:
            return c
    if len(text) > 80:
        return None
    parts = _split(text)
    if len(parts) == 2 and all(_NUM.match(p) for p in parts):
        a, b = _num(parts[0]), _num(parts[1])
        if all(_DEG.match(p) for p in parts) and abs(a) <= 180 and abs(b) <= 180:
            return _degrees(parts[0], parts[1], ordered=False) or Coordinates(
                "wgs84", lon=b, lat=a)
        for x, y in ((a, b), (b, a)):
            if _in(x, _X) and _in(y, _Y):
                lon, lat = l93_to_lonlat([x], [y])
                return Coordinates("lambert93", lon=float(lon[0]), lat=float(lat[0]), x=x, y=y)
        return None
    return _from_angles(text)


def coordinates_result(query: str | AddressQuery) -> GeocodeResult | None:
    """A result at the coordinates typed in the address field, or ``None`` (an address)."""
    text = query.adresse if isinstance(query, AddressQuery) else str(query or "")
    c = parse_coordinates(text)
    if c is None:
        return None
    return GeocodeResult(query=query_text(query), lon=c.lon, lat=c.lat, label=c.label(),
                         score=1.0, precision=PRECISION, source=SOURCE,
                         incertitude_m=c.incertitude_m if c.kind == "wgs84" else None)
