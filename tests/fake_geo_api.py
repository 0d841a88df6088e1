"""A local fake of the API Découpage administratif (geo.api.gouv.fr), speaking its protocol.

As the API's swagger (``definition.yml`` of github.com/datagouv/api-geo) and server describe it:

* ``GET /departements/{code}/communes`` → the communes of a département; ``format`` is ``json``
  (default: a JSON array of objects) or ``geojson`` (a ``FeatureCollection``, one ``Feature``
  per commune, the requested ``fields`` as properties); ``geometry`` is ``centre`` (default: a
  Point) or ``contour`` (the Polygon/MultiPolygon outline); ``fields`` a comma-separated list
  (``code``, ``nom``…). An unknown département is a 404 whose body is the plain text « Not
  Found » (Express ``sendStatus``).
* ``GET /communes/{code}`` → one commune (404 when unknown), same parameters.

Failures on demand: :attr:`FakeGeoApi.fail_next` (statuses answered once each, e.g. 503),
:attr:`FakeGeoApi.slow_next` (seconds to wait before answering: a timeout),
:attr:`FakeGeoApi.half_next` (a 200 carrying half of its JSON). Every request is recorded.
Runs on 127.0.0.1, random port; no network.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import shapely

from tests._serveur import LoopbackServer


@dataclass
class FakeGeoApi(LoopbackServer):
    """Communes by département: ``{dep: [(code, nom, shapely geometry), …]}``."""

    communes: dict[str, list[tuple[str, str, Any]]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    slow_next: list[float] = field(default_factory=list)
    half_next: int = 0
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler_base(self) -> type[_Handler]:
        return _Handler


def _one(code: str, nom: str, geom: Any, dep: str, *, fmt: str, geometry: str,
         fields: list[str]) -> dict[str, Any]:
    props = {"code": code, "nom": nom, "codeDepartement": dep}
    props = {k: v for k, v in props.items() if k in fields} if fields else props
    shape = geom if geometry == "contour" else shapely.point_on_surface(geom)
    if fmt == "geojson":
        return {"type": "Feature", "properties": props,
                "geometry": json.loads(shapely.to_geojson(shape))}
    return {**props, geometry: json.loads(shapely.to_geojson(shape))}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGeoApi
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        fake = self.fake
        with fake.lock:
            fake.requests.append(self.path)
            status = fake.fail_next.pop(0) if fake.fail_next else None
            delay = fake.slow_next.pop(0) if fake.slow_next else 0.0
            half = fake.half_next > 0
            if half:
                fake.half_next -= 1
        if delay:
            time.sleep(delay)
        if status is not None:
            self._send(status, b"Service Unavailable" if status == 503 else b"Error",
                       "text/plain; charset=utf-8")
            return
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        fmt = q.get("format", "json")
        geometry = q.get("geometry", "centre")
        fields = [f for f in q.get("fields", "").split(",") if f]
        if fmt not in ("json", "geojson") or geometry not in ("centre", "contour"):
            self._send(400, b'{"code":400,"message":"Bad Request"}', "application/json")
            return
        segs = [s for s in parts.path.split("/") if s]
        if len(segs) == 3 and segs[0] == "departements" and segs[2] == "communes":
            dep = segs[1]
            if dep not in fake.communes:
                self._send(404, b"Not Found", "text/plain; charset=utf-8")
                return
            items = [_one(c, n, g, dep, fmt=fmt, geometry=geometry, fields=fields)
                     for c, n, g in fake.communes[dep]]
            data: Any = {"type": "FeatureCollection", "features": items} \
                if fmt == "geojson" else items
        elif len(segs) == 2 and segs[0] == "communes":
            found = [(c, n, g, d) for d, rows in fake.communes.items() for c, n, g in rows
                     if c == segs[1]]
            if not found:
                self._send(404, b"Not Found", "text/plain; charset=utf-8")
                return
            c, n, g, d = found[0]
            data = _one(c, n, g, d, fmt=fmt, geometry=geometry, fields=fields)
        else:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")
            return
        body = json.dumps(data).encode()
        if half:
            body = body[: len(body) // 2]
        self._send(200, body, "application/json; charset=utf-8")


def cells_around(points: dict[str, tuple[str, Any]], hull: Any) -> list[tuple[str, str, Any]]:
    """Commune-like cells for a fake département: the Voronoi cells of one point per commune
    (``{code: (nom, point)}``), clipped to ``hull`` (lon/lat)."""
    codes = sorted(points)
    multipoint = shapely.MultiPoint([points[c][1] for c in codes])
    cells = shapely.get_parts(shapely.voronoi_polygons(multipoint, extend_to=hull))
    out = []
    for code in codes:
        pt = points[code][1]
        cell = next(c for c in cells if c.contains(pt))
        out.append((code, points[code][0], shapely.intersection(cell, hull)))
    return out
