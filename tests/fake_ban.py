"""A local fake of the BAN / Géoplateforme geocoding service, speaking its real protocol.

Paths and parameters as the Géoplateforme documents them (https://data.geopf.fr/geocodage,
``/search`` and ``/search/csv``, **no trailing slash**: ``/search/`` is a 404 here):

* ``GET  <prefix>/search?q=…&limit=…[&index=address][&postcode=…][&citycode=…]`` → GeoJSON
  FeatureCollection (properties ``label``, ``score``, ``type``, ``name``, ``street``,
  ``housenumber``, ``citycode``, ``postcode``, ``city``, ``context``…); an unknown parameter
  or a ``q`` out of 3–200 characters is a 400, as is a ``limit`` out of 1–20.
* ``POST <prefix>/search/csv`` (multipart: ``data`` file, ``columns`` repeated, optional
  ``postcode`` / ``citycode`` naming columns, ``indexes``) → the uploaded CSV plus
  ``latitude``, ``longitude`` and the ``result_*`` columns (``result_status`` ok / not-found /
  skipped). As addok-csv writes them: the document's own fields, so for a house number
  ``result_name`` is the street's name and ``result_street`` is empty (the ``street``
  property exists in the ``/search`` GeoJSON only, added by addok's formatter). Results with
  a score ≤ 0.5 are not returned (``not-found``), on both paths as the
  fake is told (:attr:`FakeBan.score_floor`).

Addresses are known by their normalised text (:data:`KNOWN`); a few come back as *another*
street at a high score, as the real service does (« 12 rue balay 42000 saint-etienne » →
« 12 Rue Sainte-Anne », 0.71). Errors on demand: push statuses
on :attr:`FakeBan.fail_next` (with an optional ``Retry-After``), or set
:attr:`FakeBan.always_fail`. Every request is recorded (:attr:`FakeBan.requests`), so tests can
check the parameters sent, the retries and the cache. Runs on 127.0.0.1, random port.

Broken answers on demand, as a failing service or network gives them: push on
:attr:`FakeBan.cut_next` ``"truncate"`` (a 200 whose body stops half-way, the connection then
closed: the announced ``Content-Length`` is not reached), ``"chunked"`` (the same with a
chunked body that never ends), ``"drop"`` (the connection closed before any answer),
``"half"`` (a complete 200 carrying half of the JSON or CSV: a malformed answer); or set
:attr:`FakeBan.down_after` (every request after that many is dropped: the service goes down
mid-batch).
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests._serveur import LoopbackServer

#: normalised query → (lon, lat, properties)
KNOWN: dict[str, tuple[float, float, dict[str, Any]]] = {}


def _norm(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text or "")
                   if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


#: normalised query → the next results, after :data:`KNOWN`'s (``/search`` with a ``limit``
#: above 1 returns them too; ``/search/csv`` answers the first result only, as addok does)
MORE: dict[str, list[tuple[float, float, dict[str, Any]]]] = {}


def _add(q: str, lon: float, lat: float, **props: Any) -> None:
    KNOWN[_norm(q)] = (lon, lat, props)


def add_more(q: str, lon: float, lat: float, **props: Any) -> None:
    """One more result for ``q`` (after the first, in the order added)."""
    MORE.setdefault(_norm(q), []).append((lon, lat, props))


_add("8 boulevard jules janin 42000 saint-etienne", 4.3859, 45.4405,
     label="8 Boulevard Jules Janin 42000 Saint-Étienne", score=0.97, type="housenumber",
     citycode="42218", postcode="42000", housenumber="8", street="Boulevard Jules Janin",
     city="Saint-Étienne", name="8 Boulevard Jules Janin")
_add("rue de la republique saint-chamond", 4.5141, 45.4752,
     label="Rue de la République 42400 Saint-Chamond", score=0.81, type="street",
     citycode="42207", postcode="42400", street="Rue de la République", city="Saint-Chamond",
     name="Rue de la République")
_add("firminy", 4.2886, 45.3876, label="Firminy", score=0.93, type="municipality",
     citycode="42095", postcode="42700", city="Firminy", name="Firminy")
_add("3 rue victor hugo", 4.3886, 45.4336, label="3 Rue Victor Hugo 42000 Saint-Étienne",
     score=0.88, type="housenumber", citycode="42218", postcode="42000", housenumber="3",
     street="Rue Victor Hugo", city="Saint-Étienne", name="3 Rue Victor Hugo")
# The real service's weakness: another street of the same commune at a high score.
_add("12 rue balay 42000 saint-etienne", 4.3908, 45.4353,
     label="12 Rue Sainte-Anne 42000 Saint-Étienne", score=0.71, type="housenumber",
     citycode="42218", postcode="42000", housenumber="12", street="Rue Sainte-Anne",
     city="Saint-Étienne", name="12 Rue Sainte-Anne")
_add("26 allee des coquelicots 69002 lyon", 4.2931, 45.3790,
     label="26 Allée des Coquelicots 42700 Firminy", score=0.74, type="housenumber",
     citycode="42095", postcode="42700", housenumber="26", street="Allée des Coquelicots",
     city="Firminy", name="26 Allée des Coquelicots")
_add("99 rue inventee 42000 saint-etienne", 4.39, 45.44, label="Rue Inventée 42000 "
     "Saint-Étienne", score=0.42, type="street", citycode="42218", postcode="42000",
     street="Rue Inventée", city="Saint-Étienne", name="Rue Inventée")
for _k in range(20):
    _add(f"{_k + 1} rue du test saint-etienne", 4.38 + _k / 1000, 45.43,
         label=f"{_k + 1} Rue du Test 42100 Saint-Étienne", score=0.9, type="housenumber",
         citycode="42218", postcode="42100", housenumber=str(_k + 1), street="Rue du Test",
         city="Saint-Étienne", name=f"{_k + 1} Rue du Test")

#: Parameters the service documents (others are refused).
SEARCH_PARAMS = frozenset({"q", "limit", "index", "postcode", "citycode", "type", "lat", "lon",
                           "autocomplete", "returntruegeometry", "category", "departmentcode"})
CSV_PARAMS = frozenset({"data", "columns", "postcode", "citycode", "indexes", "result_columns",
                        "type"})

RESULT_COLUMNS = ("latitude", "longitude", "result_label", "result_score", "result_score_next",
                  "result_type", "result_id", "result_housenumber", "result_name",
                  "result_street", "result_postcode", "result_city", "result_context",
                  "result_citycode", "result_oldcitycode", "result_oldcity", "result_district",
                  "result_status")


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    rows: int = 0


@dataclass
class FakeBan(LoopbackServer):
    """The server's state; :meth:`start` binds it to a free port of 127.0.0.1."""

    prefix: str = "/geocodage"
    fail_next: list[tuple[int, str | None]] = field(default_factory=list)
    always_fail: int | None = None
    #: statuses answered by ``/search/csv`` only (``/search`` still works): 400, 503…
    csv_fail: int | None = None
    #: answer CSV without the ``result_status`` column (as older services do)
    omit_status: bool = False
    #: broken answers, one per request: "truncate", "chunked", "drop" or "half"
    cut_next: list[str] = field(default_factory=list)
    #: requests answered normally before the service « goes down » (None: never)
    down_after: int | None = None
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler_base(self) -> type[_Handler]:
        return _Handler

    def count(self, path_end: str = "") -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path.endswith(path_end))

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.fail_next.clear()
            self.always_fail = None
            self.csv_fail = None
            self.omit_status = False
            self.cut_next.clear()
            self.down_after = None


def _street_name(props: dict[str, Any]) -> str:
    """The name of the street (or lieu-dit) document a house number belongs to."""
    name = str(props.get("street") or props.get("locality") or props.get("name") or "")
    number = str(props.get("housenumber") or "")
    return name[len(number):].strip() if number and name.startswith(number + " ") else name


def lookup(q: str, postcode: str | None, citycode: str | None
           ) -> tuple[float, float, dict[str, Any]] | None:
    hits = lookup_all(q, postcode, citycode)
    return hits[0] if hits else None


def lookup_all(q: str, postcode: str | None, citycode: str | None
               ) -> list[tuple[float, float, dict[str, Any]]]:
    """The results for ``q``, best first (:data:`KNOWN`, then :data:`MORE`)."""
    key = _norm(q)
    if key not in KNOWN:  # the postcode in the text is not needed to find an address
        key = " ".join(w for w in key.split() if not re.fullmatch(r"\d{5}", w))
    if key not in KNOWN:
        return []
    return [hit for hit in (KNOWN[key], *MORE.get(key, ()))
            if not (postcode and hit[2].get("postcode") != postcode)
            and not (citycode and hit[2].get("citycode") != citycode)]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBan
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self, params: dict[str, list[str]], rows: int = 0) -> bool:
        """Record the request; answer an error instead when asked to. True if answered."""
        f = self.fake
        with f.lock:
            f.requests.append(Recorded(self.command, urlsplit(self.path).path, params,
                                       dict(self.headers.items()), rows))
            failure = f.fail_next.pop(0) if f.fail_next else None
            if failure is None and f.always_fail:
                failure = (f.always_fail, None)
            down = f.down_after is not None and len(f.requests) > f.down_after
            if not down and failure is None and f.cut_next and f.cut_next[0] == "drop":
                down = bool(f.cut_next.pop(0))
        if down:  # no answer at all: the connection is closed
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if failure is None:
            return False
        status, retry_after = failure
        body = json.dumps({"code": status, "message": "fake failure"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        with self.fake.lock:
            cut = self.fake.cut_next.pop(0) if status == 200 and self.fake.cut_next else None
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if cut == "half":  # a complete answer carrying half of the document
            body = body[:len(body) // 2]
        if cut == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = body[:len(body) // 2]
            self.wfile.write(f"{len(body):x}\r\n".encode() + half)
            self.wfile.flush()
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2] if cut == "truncate" else body)
        if cut in ("truncate", "chunked"):  # the rest never comes: the connection closes
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        if self._record(params):
            return
        if parts.path != f"{self.fake.prefix}/search":
            self._send(404, b'{"message": "not found"}', "application/json")
            return
        unknown = set(params) - SEARCH_PARAMS
        if unknown:
            self._send(400, json.dumps({"code": 400, "message": f"unknown parameter "
                                        f"{sorted(unknown)}"}).encode(), "application/json")
            return
        q = (params.get("q") or [""])[0]
        if not 3 <= len(q.strip()) <= 200 or "refus400" in q:
            self._send(400, json.dumps({"code": 400, "message": "q must contain between 3 "
                                        "and 200 chars"}).encode(), "application/json")
            return
        limit = int((params.get("limit") or ["10"])[0])
        if not 1 <= limit <= 20:
            self._send(400, b'{"code": 400, "message": "limit must be between 1 and 20"}',
                       "application/json")
            return
        hits = lookup_all(q, (params.get("postcode") or [None])[0],
                          (params.get("citycode") or [None])[0])
        features = []
        for lon, lat, props in hits:
            features.append({"type": "Feature",
                             "geometry": {"type": "Point", "coordinates": [lon, lat]},
                             "properties": {**props, "id": f"fake_{len(KNOWN)}",
                                            "context": "42, Loire, Auvergne-Rhône-Alpes",
                                            "importance": 0.6, "x": 808000.0,
                                            "y": 6480000.0}})
        body = {"type": "FeatureCollection", "version": "draft", "features": features[:limit],
                "attribution": "BAN", "licence": "ETALAB-2.0", "query": q, "limit": limit}
        self._send(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + raw)
        fields: dict[str, list[str]] = {}
        data = b""
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "data":
                data = payload
            elif name:
                fields.setdefault(name, []).append(payload.decode("utf-8"))
        text = data.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        if self._record(fields, rows=len(rows)):
            return
        if parts.path != f"{self.fake.prefix}/search/csv":
            self._send(404, b'{"message": "not found"}', "application/json")
            return
        if self.fake.csv_fail:
            self._send(self.fake.csv_fail, json.dumps({"code": self.fake.csv_fail, "message":
                       "fake csv failure"}).encode(), "application/json")
            return
        unknown = set(fields) - CSV_PARAMS
        if unknown:
            self._send(400, json.dumps({"code": 400, "message": f"unknown parameter "
                                        f"{sorted(unknown)}"}).encode(), "application/json")
            return
        if not data:
            self._send(400, b'{"code": 400, "message": "A file is required"}',
                       "application/json")
            return
        columns = fields.get("columns") or (list(rows[0]) if rows else [])
        pc_col = (fields.get("postcode") or [None])[0]
        cc_col = (fields.get("citycode") or [None])[0]
        out = io.StringIO()
        header = next(csv.reader(io.StringIO(text))) if text.strip() else []
        result_columns = [c for c in RESULT_COLUMNS
                          if not (self.fake.omit_status and c == "result_status")]
        writer = csv.DictWriter(out, fieldnames=[*header, *result_columns], lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            q = " ".join(row.get(c, "") for c in columns).strip()
            res = {c: "" for c in RESULT_COLUMNS}
            if len(q) < 3:
                res["result_status"] = "skipped"
            else:
                hit = lookup(q, row.get(pc_col) if pc_col else None,
                             row.get(cc_col) if cc_col else None)
                if hit is not None and float(hit[2]["score"]) <= 0.5:
                    hit = None  # the service does not return weak results in CSV
                if hit is None:
                    res["result_status"] = "not-found"
                else:
                    lon, lat, props = hit
                    # addok writes the document's own fields: a house number's ``name`` is
                    # its street's name, and there is no ``street`` field (``/search`` adds
                    # it to the GeoJSON only): ``result_street`` is empty
                    number = props["type"] == "housenumber"
                    res.update(latitude=str(lat), longitude=str(lon),
                               result_label=props["label"], result_score=str(props["score"]),
                               result_type=props["type"], result_postcode=props["postcode"],
                               result_citycode=props["citycode"], result_city=props["city"],
                               result_name=_street_name(props) if number
                               else props.get("name", ""),
                               result_housenumber=props.get("housenumber", ""),
                               result_street="", result_status="ok")
            writer.writerow({**row, **res})
        self._send(200, out.getvalue().encode("utf-8"), "text/csv; charset=utf-8")
