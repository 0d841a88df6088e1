"""Coordinates typed where an address is expected (« 45.46881, 4.39862 », « 45,46881 4,39862 »,
Lambert-93 « 808000 6480000 »): read as coordinates by the CLI, the web page/API and batch.

:func:`parse_coordinates` recognises them (degrees need decimals, so « 12 15 » stays an
address); :func:`coordinates_result` turns them into a :class:`GeocodeResult` of precision
``coordonnees`` (exact, as given: no geocoding, no consistency rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qpv_geo.geocoding.base import AddressQuery, GeocodeResult, _query_text

PRECISION = "coordonnees"
SOURCE = "coordonnees"

_DEG = re.compile(r"^[-+]?\d{1,3}[.,]\d+$")
_NUM = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$")
_LAT, _LON = (41.0, 51.6), (-5.6, 10.0)           # metropolitan France (and Corsica)
_X, _Y = (50_000.0, 1_300_000.0), (6_000_000.0, 7_200_000.0)  # Lambert-93 over France


@dataclass(frozen=True)
class Coordinates:
    """Coordinates read from a text: WGS84 degrees (``lat``/``lon``) or Lambert-93 metres."""

    kind: str                 # "wgs84" or "lambert93"
    lon: float
    lat: float
    x: float | None = None
    y: float | None = None

    def label(self) -> str:
        """« coordonnées saisies : lat 45.46881, lon 4.39862 » (or x/y)."""
        if self.kind == "lambert93":
            return f"coordonnées saisies (Lambert-93) : x {self.x:.0f}, y {self.y:.0f}"
        return f"coordonnées saisies : lat {self.lat:.6f}, lon {self.lon:.6f}"


def _num(text: str) -> float:
    return float(text.replace(",", "."))


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
    from qpv_geo.projections import zone_du_point

    return (_in(lat, _LAT) and _in(lon, _LON)) or (abs(lat) <= 90
                                                   and zone_du_point(lon, lat) is not None)


def parse_coordinates(text: str) -> Coordinates | None:
    """The coordinates typed in ``text``, or ``None`` when it is not a pair of coordinates.

    Degrees (with decimals, « . » or « , ») are read in the order that falls in France,
    overseas territories included (« lat, lon » as maps copy them, or « lon, lat »); without
    such an order, as « lat, lon ».
    Two numbers in the Lambert-93 ranges are x and y (either order).
    """
    if not text or len(text) > 80:
        return None
    parts = _split(str(text))
    if len(parts) != 2 or not all(_NUM.match(p) for p in parts):
        return None
    a, b = _num(parts[0]), _num(parts[1])
    if all(_DEG.match(p) for p in parts) and abs(a) <= 180 and abs(b) <= 180:
        if _en_france(lat=b, lon=a) and not _en_france(lat=a, lon=b):
            a, b = b, a
        return Coordinates("wgs84", lon=b, lat=a)
    for x, y in ((a, b), (b, a)):
        if _in(x, _X) and _in(y, _Y):
            from qpv_geo.eligibility import Engine

            lon, lat = Engine.l93_to_lonlat([x], [y])
            return Coordinates("lambert93", lon=float(lon[0]), lat=float(lat[0]), x=x, y=y)
    return None


def coordinates_result(query: str | AddressQuery) -> GeocodeResult | None:
    """A result at the coordinates typed in the address field, or ``None`` (an address)."""
    text = query.adresse if isinstance(query, AddressQuery) else str(query or "")
    c = parse_coordinates(text)
    if c is None:
        return None
    return GeocodeResult(query=_query_text(query), lon=c.lon, lat=c.lat, label=c.label(),
                         score=1.0, precision=PRECISION, source=SOURCE)
