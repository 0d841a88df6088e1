"""FastAPI application: the instructors' page, the file page and the JSON API.

A thin shell over the Python API (:mod:`qpv_geo.eligibility`, :mod:`qpv_geo.geocoding`,
:mod:`qpv_geo.batch`). Like ``cli.py``, it is a place where exceptions become messages: every
error is ``{"erreur": …, "conseil": …}`` in JSON (or the same words on an HTML page), with a
status code that says whose fault it is, and never a trace.

Routes
------
``GET /``                       page: address (suggestions as you type) or lat/lon → verdict
``GET /lot``, ``POST /lot``     page: upload a CSV/XLSX, get the validated file and summary
``GET /api/v1/verdict``         one verdict (``adresse`` or ``lat`` + ``lon``)
``POST /api/v1/verdicts``       up to ``Settings.max_batch_items`` addresses or points
``GET /api/v1/donnees``         data versions and warnings
``GET /api/v1/suggestions``     address suggestions (local geocoder)
``GET /api/v1/perimetres``      GeoJSON of the perimeters near a point (the page's map)
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qpv_geo import __version__
from qpv_geo.eligibility import STATUS_LABELS, STATUSES, Engine, engine_from_settings
from qpv_geo.exceptions import (
    CoordinateError,
    DownloadError,
    GeocoderNotConfigured,
    GeocoderQueryError,
    GeocoderRateLimited,
    GeocoderUnavailable,
    InputFileError,
    QpvGeoError,
    ReferenceDataError,
)
from qpv_geo.settings import Settings
from qpv_geo.web._present import (
    HEADLINES,
    NOTE_ADRESSES_DEMO,
    format_date,
    now_paris,
    verdict_payload,
    verdict_rows,
    verdict_text,
)

log = logging.getLogger("qpv_geo.web")

HERE = Path(__file__).resolve().parent
#: Longest address accepted (characters); a real French address is under 200.
MAX_ADRESSE = 300
#: Body cap (bytes) of JSON requests, per batch item, plus a fixed allowance.
_JSON_BYTES_PER_ITEM = 1024
_JSON_BYTES_BASE = 64 * 1024
#: Multipart overhead allowed on top of the file itself (boundaries, other fields).
_MULTIPART_SLACK = 64 * 1024
#: Extensions accepted by /lot (the file is saved under a fixed name with this suffix).
_UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx")
#: Rows of the validated file previewed on the /lot page.
_PREVIEW_ROWS = 20

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


# ------------------------------------------------------------------------------------------
# API models
# ------------------------------------------------------------------------------------------

Statut = Literal["eligible", "qva", "hors_qpv", "hors_territoire", "a_verifier", "non_geocode"]
assert set(Statut.__args__) == set(STATUSES)  # type: ignore[attr-defined]


class Erreur(BaseModel):
    """An error: what went wrong and how to fix it."""

    erreur: str = Field(description="Ce qui ne va pas.")
    conseil: str | None = Field(None, description="Comment corriger.")


class Geocodage(BaseModel):
    """How an address was turned into a point."""

    requete: str
    trouve: bool
    label: str | None = Field(None, description="Adresse retenue par le géocodeur.")
    score: float | None = None
    precision: str | None = Field(None, description="housenumber, street, locality, …")
    precision_libelle: str | None = None
    citycode: str | None = Field(None, description="Code INSEE de la commune.")
    postcode: str | None = None
    source: str | None = None
    motif: str | None = Field(None, description="Pourquoi l'adresse n'a pas été trouvée.")


class VerdictOut(BaseModel):
    """The verdict for one place, with everything needed to defend it."""

    status: Statut
    statut_libelle: str
    titre: str
    eligible: bool
    code_qp: str | None = Field(None, description="Code du QPV (ou QVA) contenant le point.")
    lib_qp: str | None = None
    insee_com: str | None = None
    lib_com: str | None = None
    distance_bord_m: float | None = Field(
        None, description="Distance signée au bord qui compte (positive à l'intérieur).")
    code_qp_proche: str | None = None
    lib_qp_proche: str | None = None
    distance_qp_proche_m: float | None = None
    candidat_autre_cote: str | None = None
    motifs: list[str]
    donnees: str = Field(description="Version des données de référence (et avertissements).")
    notes: list[str]
    demo: bool = Field(description="Vrai si des données de démonstration ont servi.")
    lon: float | None = None
    lat: float | None = None
    x_l93: float | None = None
    y_l93: float | None = None
    verifie_le: str = Field(description="Date et heure de la vérification (ISO 8601).")
    geocodage: Geocodage | None = None


class Lieu(BaseModel):
    """One place to check: an address, or a latitude and a longitude."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=100, description="Votre identifiant (renvoyé).")
    adresse: str | None = Field(None, max_length=MAX_ADRESSE)
    lat: float | None = None
    lon: float | None = None


class VerdictsIn(BaseModel):
    """Several places (at most ``max_batch_items`` of the server's settings)."""

    model_config = ConfigDict(extra="forbid")

    lieux: list[Lieu]


class VerdictItem(VerdictOut):
    """A verdict in a list, with the caller's identifier."""

    id: str | None = None


class VerdictsOut(BaseModel):
    """Verdicts in the order of the request, and a count per status."""

    resultats: list[VerdictItem]
    resume: dict[str, int]
    donnees: str
    notes: list[str]


class Couche(BaseModel):
    """Provenance of one reference layer."""

    name: str
    title: str
    source: str
    millesime: str
    licence: str
    sha256: str | None
    features: int
    precision: str
    simplified: bool
    demo: bool
    origin: str
    official: bool = False
    installed_at: str | None = None


class Donnees(BaseModel):
    """Data versions: every answer depends on them."""

    version: str
    notes: list[str]
    simplifiee: bool
    demo: bool
    couches: dict[str, Couche]
    geocodeur: str
    application: str


class Suggestion(BaseModel):
    """An address proposed while typing."""

    label: str
    lon: float
    lat: float
    score: float | None = None
    precision: str | None = None
    citycode: str | None = None
    postcode: str | None = None


class Suggestions(BaseModel):
    """Suggestions for a prefix (empty under 3 characters)."""

    suggestions: list[Suggestion]
    methode: Literal["suggest", "geocode", "aucune"]


class Feature(BaseModel):
    """A GeoJSON feature: a perimeter (``type``: qpv, qva, qpv_hors_sem, commune)."""

    type: Literal["Feature"]
    properties: dict[str, Any]
    geometry: dict[str, Any]


class FeatureCollection(BaseModel):
    """GeoJSON of the perimeters near a point (WGS84)."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": Erreur} for c in codes}


# ------------------------------------------------------------------------------------------
# Errors → messages
# ------------------------------------------------------------------------------------------

class _ServiceUnavailable(QpvGeoError):
    """A part of qpv-geo this server lacks (module not installed)."""


def status_for(exc: QpvGeoError) -> int:
    """HTTP status of a user-facing error: 503 for services or data the server lacks."""
    if isinstance(exc, (GeocoderUnavailable, GeocoderNotConfigured, GeocoderRateLimited,
                        ReferenceDataError, DownloadError, _ServiceUnavailable)):
        return 503
    return 400


_HTTP_MESSAGES = {
    404: ("Page ou ressource introuvable.", "Vérifiez l'adresse de la page ; l'accueil est « / »."),
    405: ("Méthode HTTP non autorisée pour cette adresse.",
          "Consultez le schéma OpenAPI : /openapi.json."),
    413: ("Requête trop volumineuse.", "Envoyez moins de données à la fois."),
}


def _wants_json(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def _fmt_size(n: int) -> str:
    """« 20 Mo », « 50 ko » (decimal units, as file managers show them)."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} Mo".replace(".", ",")
    return f"{n / 1000:.3g} ko".replace(".", ",")


class _TooLarge(StarletteHTTPException):
    """Raised while reading a body that goes over the cap."""

    def __init__(self, limit: int, upload: bool, shown: int | None = None) -> None:
        if upload:
            msg = f"Fichier trop volumineux : la limite est de {_fmt_size(shown or limit)}."
            hint = ("Découpez le fichier en plusieurs lots, ou utilisez la commande "
                    "qpv-geo batch FICHIER sur le poste de travail.")
        else:
            msg = f"Requête trop volumineuse (plus de {_fmt_size(limit)})."
            hint = "Envoyez moins de lieux par requête (voir max_batch_items)."
        super().__init__(status_code=413, detail=msg)
        self.hint = hint


# ------------------------------------------------------------------------------------------
# Middlewares (pure ASGI: no per-request task overhead)
# ------------------------------------------------------------------------------------------

class _SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyLimit:
    """Refuse bodies over the cap: by Content-Length at once, else while streaming."""

    def __init__(self, app: Any, *, upload_bytes: int, json_bytes: int, upload_shown: int,
                 render: Any) -> None:
        self.app = app
        self.upload_shown = upload_shown
        self.upload_bytes = upload_bytes
        self.json_bytes = json_bytes
        self.render = render

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] == "/lot"
        limit = self.upload_bytes if upload else self.json_bytes
        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            response = self.render(scope["path"], _TooLarge(limit, upload, self.upload_shown))
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit, upload, self.upload_shown)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:
            if started:
                raise
            await self.render(scope["path"], exc)(scope, receive, send)


# ------------------------------------------------------------------------------------------
# Services: engine, geocoder, map index, results of /lot
# ------------------------------------------------------------------------------------------

class _PerimeterIndex:
    """GeoJSON features of every perimeter, with their lon/lat bounds for a quick filter."""

    def __init__(self, reference: Any) -> None:
        import shapely

        features: list[dict[str, Any]] = []
        bounds: list[np.ndarray] = []
        layers = (("commune", reference.communes, "insee_com", "nom"),
                  ("qpv_hors_sem", reference.qpv_hors_sem, "code_qp", "lib_qp"),
                  ("qva", reference.qva, "code_qp", "lib_qp"),
                  ("qpv", reference.qpv, "code_qp", "lib_qp"))
        for kind, gdf, code_col, name_col in layers:
            if len(gdf) == 0:
                continue
            geoms = gdf.geometry.values
            for code, name, geom, b in zip(gdf[code_col], gdf[name_col], geoms,
                                           shapely.bounds(np.asarray(geoms)), strict=True):
                features.append({
                    "type": "Feature",
                    "properties": {"type": kind, "code": str(code), "nom": str(name)},
                    "geometry": shapely.geometry.mapping(geom),
                })
                bounds.append(b)
        self.features = features
        self.bounds = np.array(bounds) if bounds else np.zeros((0, 4))

    def around(self, lon: float, lat: float, radius_m: float) -> list[dict[str, Any]]:
        dlat = radius_m / 111_320.0
        dlon = radius_m / (111_320.0 * max(0.1, math.cos(math.radians(lat))))
        b = self.bounds
        sel = np.flatnonzero((b[:, 0] <= lon + dlon) & (b[:, 2] >= lon - dlon)
                             & (b[:, 1] <= lat + dlat) & (b[:, 3] >= lat - dlat))
        return [self.features[i] for i in sel]


class _ResultStore:
    """Validated files of /lot, kept in memory a short while for the download link."""

    def __init__(self, *, ttl_s: float = 3600.0, max_entries: int = 16) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, list[tuple[str, bytes, str]]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, files: list[tuple[str, bytes, str]]) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._purge()
            self._items[token] = (time.monotonic(), files)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return token

    def get(self, token: str, index: int) -> tuple[str, bytes, str] | None:
        with self._lock:
            self._purge()
            entry = self._items.get(token)
        if entry is None or not 0 <= index < len(entry[1]):
            return None
        return entry[1][index]

    def _purge(self) -> None:
        limit = time.monotonic() - self.ttl_s
        for token in [t for t, (at, _) in self._items.items() if at < limit]:
            del self._items[token]


class Services:
    """What the routes share: settings, the cached engine, the geocoder, the map index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._geocoder: Any = None
        self._index: tuple[int, _PerimeterIndex] | None = None
        self.results = _ResultStore()

    def engine(self) -> Engine:
        with self._lock:
            return engine_from_settings(self.settings)

    def geocoder(self) -> Any:
        with self._lock:
            if self._geocoder is None:
                try:
                    from qpv_geo.geocoding import geocoder_from_settings
                except ImportError as exc:
                    raise GeocoderNotConfigured(
                        "Le géocodage des adresses n'est pas disponible sur ce serveur.",
                        hint="Saisissez la latitude et la longitude du lieu.",
                    ) from exc
                self._geocoder = geocoder_from_settings(self.settings)
            return self._geocoder

    def perimeters(self) -> _PerimeterIndex:
        reference = self.engine().reference
        with self._lock:
            if self._index is None or self._index[0] != id(reference):
                self._index = (id(reference), _PerimeterIndex(reference))
            return self._index[1]

    def demo_addresses(self, geocode: Any = None) -> bool:
        """True when the local geocoder answers from its demonstration address file."""
        geocoder = self._geocoder
        for obj in (geocoder, geocode):
            if obj is None:
                continue
            flag = getattr(obj, "demo", None)
            if isinstance(flag, bool) and flag:
                return True
        source = str(getattr(geocode, "source", "") or "").lower()
        return "demo" in source or "démo" in source

    def notes_and_demo(self, engine: Engine, geocodes: list[Any]) -> tuple[list[str], bool]:
        notes = list(engine.reference.notes)
        demo_adr = any(self.demo_addresses(g) for g in geocodes if g is not None)
        if demo_adr:
            notes.insert(0, NOTE_ADRESSES_DEMO)
        return notes, engine.reference.demo or demo_adr

    # -------------------------------------------------------------- verdicts
    def verdict_for_address(self, adresse: str) -> tuple[dict[str, Any], Any]:
        adresse = _check_adresse(adresse)
        geocode = self.geocoder().geocode(adresse)
        engine = self.engine()
        verdict = engine.judge_point(geocode=geocode)
        notes, demo = self.notes_and_demo(engine, [geocode])
        return verdict_payload(verdict, geocode=geocode, notes=notes, demo=demo,
                               checked_at=now_paris()), geocode

    def verdict_for_point(self, lat: float, lon: float) -> dict[str, Any]:
        engine = self.engine()
        verdict = engine.judge_point(lon=lon, lat=lat)
        notes, demo = self.notes_and_demo(engine, [])
        return verdict_payload(verdict, notes=notes, demo=demo, checked_at=now_paris())

    def verdicts(self, lieux: list[Lieu]) -> VerdictsOut:
        n = len(lieux)
        cap = self.settings.max_batch_items
        if n > cap:
            raise _BatchTooLong(n, cap)
        engine = self.engine()
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        problems: dict[int, str] = {}
        address_rows = [i for i, lieu in enumerate(lieux) if lieu.adresse is not None]
        geocodes: list[Any] = [None] * n
        for i, lieu in enumerate(lieux):
            has_point = lieu.lat is not None or lieu.lon is not None
            if lieu.adresse is not None and has_point:
                problems[i] = "donnez soit une adresse, soit lat et lon, pas les deux"
            elif lieu.adresse is None and (lieu.lat is None or lieu.lon is None):
                problems[i] = "il faut une adresse, ou lat et lon ensemble"
            elif lieu.adresse is None:
                lon[i], lat[i] = lieu.lon, lieu.lat
        address_rows = [i for i in address_rows if i not in problems]
        if address_rows:
            queries = [str(lieux[i].adresse).strip() for i in address_rows]
            results = self.geocoder().geocode_many(queries)
            for i, g in zip(address_rows, results, strict=True):
                geocodes[i] = g
                if g.found and g.lon is not None and g.lat is not None:
                    lon[i], lat[i] = g.lon, g.lat
        frame = engine.judge_lonlat(lon, lat, geocodes=geocodes if address_rows else None)
        notes, demo = self.notes_and_demo(engine, geocodes)
        checked = now_paris()
        items = []
        for i, row in enumerate(frame.to_dict(orient="records")):
            if i in problems:
                row["motifs"] = problems[i]
            payload = verdict_payload(row, geocode=geocodes[i], notes=notes, demo=demo,
                                      checked_at=checked)
            items.append(VerdictItem(id=lieux[i].id, **payload))
        counts = frame["status"].value_counts()
        resume = {s: int(counts.get(s, 0)) for s in STATUSES}
        return VerdictsOut(resultats=items, resume=resume, donnees=engine.reference.version,
                           notes=notes)


class _BatchTooLong(QpvGeoError):
    def __init__(self, n: int, cap: int) -> None:
        super().__init__(f"{n} lieux envoyés : au plus {cap} par requête.",
                         hint="Découpez la liste, ou déposez un fichier CSV/XLSX sur la page "
                         "/lot (ou qpv-geo batch FICHIER).")


def _check_adresse(adresse: str) -> str:
    text = adresse.strip()
    if not text:
        raise GeocoderQueryError("Adresse vide.", hint="Saisissez une adresse, ex. « 12 rue "
                                 "Jean Jaurès 42000 Saint-Étienne ».")
    if len(text) > MAX_ADRESSE:
        raise GeocoderQueryError(f"Adresse trop longue ({len(text)} caractères, au plus "
                                 f"{MAX_ADRESSE}).", hint="Saisissez une seule adresse postale.")
    if any(ord(c) < 32 for c in text):
        raise GeocoderQueryError("Adresse contenant des caractères de contrôle.",
                                 hint="Saisissez l'adresse sur une seule ligne.")
    return text


def _parse_coordinate(raw: str, name: str) -> float:
    text = raw.strip().replace(",", ".").replace("\u00a0", "").replace(" ", "")
    try:
        value = float(text)
    except ValueError:
        raise CoordinateError(f"{name} « {raw[:40]} » n'est pas un nombre.",
                              hint="Exemple : latitude 45.4605, longitude 4.3871.") from None
    if not math.isfinite(value):
        raise CoordinateError(f"{name} « {raw[:40]} » n'est pas un nombre fini.",
                              hint="Exemple : latitude 45.4605, longitude 4.3871.")
    return value


# ------------------------------------------------------------------------------------------
# The application
# ------------------------------------------------------------------------------------------

def _leaflet_dir() -> Path:
    """Leaflet 1.9.4, vendored once for the whole package (shared with the folium maps)."""
    for candidate in (HERE.parent / "static" / "vendor" / "leaflet-1.9.4",
                      HERE / "static" / "vendor" / "leaflet-1.9.4"):
        if (candidate / "leaflet.js").is_file():
            return candidate
    raise ReferenceDataError("Leaflet (static/vendor/leaflet-1.9.4) est introuvable.",
                             hint="Réinstallez qpv-geo depuis le dépôt complet.")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the engine and the map index before the first request (a few hundred ms)."""
    await run_in_threadpool(_warm_up, app.state.services)
    yield


def _warm_up(services: Services) -> None:
    try:
        engine = services.engine()
        engine.judge_point(lon=4.3871, lat=45.4605)
        services.perimeters()
    except QpvGeoError as exc:  # the routes will answer 503 with the same message
        log.warning("Données de référence indisponibles : %s", exc)
    try:
        services.geocoder()
    except QpvGeoError as exc:
        log.warning("Géocodeur indisponible : %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; see the module docstring for the routes."""
    settings = settings or Settings.from_env()
    services = Services(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on .html
    templates.env.filters["date_fr"] = format_date
    max_upload = int(settings.max_upload_mb * 1_000_000)

    app = FastAPI(
        title="qpv-geo — éligibilité QPV de Saint-Étienne Métropole",
        version=__version__,
        description=(
            "Vérifier si une adresse ou un point est dans un quartier prioritaire de la "
            "politique de la ville (QPV 2024) de Saint-Étienne Métropole, pour la Cité de "
            "l'emploi. Chaque réponse porte la version des données. Erreurs : "
            "`{\"erreur\": …, \"conseil\": …}`."
        ),
        docs_url=None, redoc_url=None,  # Swagger UI would load from a CDN; the schema stays
        lifespan=_lifespan,
    )
    app.state.services = services

    def error_response(path: str, status: int, message: str, hint: str | None,
                       headers: dict[str, str] | None = None) -> Response:
        if _wants_json(path):
            return JSONResponse({"erreur": message, "conseil": hint}, status_code=status,
                                headers=headers)
        html = templates.get_template("erreur.html").render(
            status=status, message=message, hint=hint, version=None, app_version=__version__)
        return HTMLResponse(html, status_code=status, headers=headers)

    def render_too_large(path: str, exc: _TooLarge) -> Response:
        return error_response(path, 413, str(exc.detail), exc.hint)

    app.add_middleware(_BodyLimit, upload_bytes=max_upload + _MULTIPART_SLACK,
                       upload_shown=max_upload,
                       json_bytes=_JSON_BYTES_BASE + _JSON_BYTES_PER_ITEM
                       * settings.max_batch_items, render=render_too_large)
    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(QpvGeoError)
    async def _user_error(request: Request, exc: QpvGeoError) -> Response:
        headers = None
        if isinstance(exc, GeocoderRateLimited) and exc.retry_after:
            headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        if isinstance(exc, _BatchTooLong):
            status = 413
        elif isinstance(exc, _AddressNotFound):
            status = 404
        else:
            status = status_for(exc)
        return error_response(request.url.path, status, str(exc), exc.hint, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, _TooLarge):
            return render_too_large(request.url.path, exc)
        message, hint = _HTTP_MESSAGES.get(exc.status_code, (str(exc.detail), None))
        return error_response(request.url.path, exc.status_code, message, hint,
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body"))
            parts.append(f"{loc or 'requête'} : {_french_validation(err)}")
        return error_response(request.url.path, 422, "Paramètres invalides — "
                              + " ; ".join(parts) + ".",
                              "Consultez le schéma OpenAPI : /openapi.json.")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        log.exception("Erreur interne sur %s", request.url.path, exc_info=exc)
        return error_response(request.url.path, 500, "Erreur interne du serveur.",
                              "Réessayez ; si le problème persiste, signalez-le avec l'heure "
                              "de la requête.")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.mount("/vendor/leaflet", StaticFiles(directory=str(_leaflet_dir())), name="leaflet")

    def page_context(**extra: Any) -> dict[str, Any]:
        engine = services.engine()
        return {"version": engine.reference.version, "data_notes": engine.reference.notes,
                "app_version": __version__, "max_upload_mb": settings.max_upload_mb,
                "headlines": HEADLINES, **extra}

    # ---------------------------------------------------------------- page /
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_verdict(request: Request, adresse: str | None = None, lat: str | None = None,
                     lon: str | None = None) -> Response:
        payload = None
        error = None
        status = 200
        adresse = (adresse or "")[:2 * MAX_ADRESSE]
        lat_s, lon_s = (lat or "")[:40], (lon or "")[:40]
        try:
            if adresse.strip():
                payload, _ = services.verdict_for_address(adresse)
            elif lat_s.strip() or lon_s.strip():
                if not (lat_s.strip() and lon_s.strip()):
                    raise CoordinateError("Donnez la latitude et la longitude ensemble.",
                                          hint="Exemple : latitude 45.4605, longitude 4.3871.")
                payload = services.verdict_for_point(_parse_coordinate(lat_s, "Latitude"),
                                                     _parse_coordinate(lon_s, "Longitude"))
        except QpvGeoError as exc:
            error = {"message": str(exc), "hint": exc.hint}
            status = status_for(exc)
        context = page_context(page="verdict", adresse=adresse, lat=lat_s, lon=lon_s,
                               error=error, verdict=payload)
        if payload is not None:
            saisie = adresse.strip() or None
            context["rows"] = verdict_rows(payload, adresse_saisie=saisie)
            context["text"] = verdict_text(payload, adresse_saisie=saisie)
        return templates.TemplateResponse(request, "index.html", context, status_code=status)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((HERE / "static" / "favicon.svg").read_bytes(),
                        media_type="image/svg+xml")

    # ---------------------------------------------------------------- page /lot
    @app.get("/lot", response_class=HTMLResponse, include_in_schema=False)
    def page_lot(request: Request) -> Response:
        return templates.TemplateResponse(request, "lot.html", page_context(page="lot"))

    @app.post("/lot", response_class=HTMLResponse, include_in_schema=False)
    async def page_lot_post(request: Request) -> Response:
        error = None
        outcome = None
        status = 200
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=4096)
            try:
                upload = form.get("fichier")
                feuille = str(form.get("feuille") or "").strip()[:100] or None
                if upload is None or isinstance(upload, str) or not upload.filename:
                    raise InputFileError("Aucun fichier reçu.",
                                         hint="Choisissez un fichier CSV ou XLSX puis "
                                         "cliquez sur « Vérifier le fichier ».")
                suffix = Path(upload.filename).suffix.lower()
                if suffix not in _UPLOAD_SUFFIXES:
                    raise InputFileError(
                        f"Format « {suffix or 'sans extension'} » non pris en charge.",
                        hint="Enregistrez la feuille en CSV (UTF-8, séparateur ;) ou en XLSX.")
                data = await upload.read()
                outcome = await run_in_threadpool(_validate_upload, services, data, suffix,
                                                  feuille, upload.filename)
            finally:
                await form.close()
        except _TooLarge:
            raise
        except QpvGeoError as exc:
            error = {"message": str(exc), "hint": exc.hint}
            status = status_for(exc)
        return templates.TemplateResponse(request, "lot.html",
                                          page_context(page="lot", error=error,
                                                       outcome=outcome),
                                          status_code=status)

    @app.get("/lot/resultat/{token}/{index}", include_in_schema=False)
    def lot_result(token: str, index: int) -> Response:
        if not re.fullmatch(r"[A-Za-z0-9_-]{10,64}", token):
            raise StarletteHTTPException(404)
        found = services.results.get(token, index)
        if found is None:
            raise QpvGeoError("Ce résultat n'est plus disponible (conservé une heure, en "
                              "mémoire).", hint="Déposez le fichier à nouveau sur /lot.")
        name, content, media = found
        return Response(content, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # ---------------------------------------------------------------- API
    @app.get("/api/v1/verdict", response_model=VerdictOut, tags=["verdicts"],
             responses=_errors(400, 404, 422, 503))
    def api_verdict(
        adresse: Annotated[str | None, Query(max_length=MAX_ADRESSE,
                                             description="Adresse postale.")] = None,
        lat: Annotated[float | None, Query(description="Latitude WGS84 (≈ 45,4).")] = None,
        lon: Annotated[float | None, Query(description="Longitude WGS84 (≈ 4,4).")] = None,
    ) -> VerdictOut:
        """Verdict pour une adresse (`adresse`) ou un point (`lat` et `lon`).

        Exemple : `/api/v1/verdict?lat=45.4605&lon=4.3871`. Coordonnées impossibles ou
        inversées : 400 ; adresse introuvable : 404 ; géocodeur indisponible : 503.
        """
        if adresse is not None and (lat is not None or lon is not None):
            raise CoordinateError("Donnez soit une adresse, soit lat et lon, pas les deux.")
        if adresse is not None:
            payload, geocode = services.verdict_for_address(adresse)
            if not getattr(geocode, "found", False):
                raise _AddressNotFound(adresse, getattr(geocode, "motif", None))
            return VerdictOut(**payload)
        if lat is None or lon is None:
            raise CoordinateError("Donnez une adresse, ou lat et lon ensemble.",
                                  hint="Exemple : /api/v1/verdict?lat=45.4605&lon=4.3871")
        return VerdictOut(**services.verdict_for_point(lat, lon))

    @app.post("/api/v1/verdicts", response_model=VerdictsOut, tags=["verdicts"],
              responses=_errors(400, 413, 422, 503))
    def api_verdicts(body: VerdictsIn) -> VerdictsOut:
        """Verdicts pour une liste de lieux (adresses ou points), dans l'ordre reçu.

        Au plus `max_batch_items` lieux (1 000 par défaut) : au-delà, 413. Un lieu
        inutilisable est un résultat `non_geocode` avec son motif, pas une erreur.
        """
        return services.verdicts(body.lieux)

    @app.get("/api/v1/donnees", response_model=Donnees, tags=["données"],
             responses=_errors(503))
    def api_donnees() -> dict[str, Any]:
        """Versions des données de référence (sha256, millésime, source) et avertissements."""
        return _donnees(services)

    @app.get("/api/v1/suggestions", response_model=Suggestions, tags=["adresses"],
             responses=_errors(400, 422, 503))
    def api_suggestions(
        q: Annotated[str, Query(max_length=MAX_ADRESSE, description="Début d'adresse.")],
        limite: Annotated[int, Query(ge=1, le=20)] = 8,
    ) -> Suggestions:
        """Adresses proposées pendant la saisie (géocodeur local ; 3 caractères minimum)."""
        return _suggestions(services, q, limite)

    @app.get("/api/v1/perimetres", response_model=FeatureCollection, tags=["carte"],
             responses=_errors(422, 503))
    def api_perimetres(
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        rayon_m: Annotated[float, Query(gt=0, le=20_000)] = 3000.0,
    ) -> Response:
        """GeoJSON des périmètres (QPV, QVA, QPV hors SEM, communes) à moins de `rayon_m`."""
        features = services.perimeters().around(lon, lat, rayon_m)
        return JSONResponse({"type": "FeatureCollection", "features": features})

    return app


_VALIDATION_FR = {
    "missing": "valeur obligatoire manquante",
    "float_parsing": "nombre attendu (avec un point décimal)",
    "float_type": "nombre attendu",
    "finite_number": "nombre fini attendu",
    "int_parsing": "nombre entier attendu",
    "int_type": "nombre entier attendu",
    "string_type": "texte attendu",
    "list_type": "liste attendue",
    "model_type": "objet JSON attendu",
    "dict_type": "objet JSON attendu",
    "model_attributes_type": "objet JSON attendu (en-tête Content-Type: application/json)",
    "extra_forbidden": "champ inconnu",
    "json_invalid": "JSON invalide",
    "string_too_long": "texte trop long",
    "greater_than": "valeur trop petite",
    "greater_than_equal": "valeur trop petite",
    "less_than": "valeur trop grande",
    "less_than_equal": "valeur trop grande",
}


def _french_validation(err: dict[str, Any]) -> str:
    text = _VALIDATION_FR.get(str(err.get("type")), str(err.get("msg", "valeur invalide")))
    ctx = err.get("ctx") or {}
    for key in ("max_length", "ge", "gt", "le", "lt"):
        if key in ctx:
            text += f" (limite : {ctx[key]})"
            break
    return text


class _AddressNotFound(QpvGeoError):
    def __init__(self, adresse: str, motif: str | None) -> None:
        super().__init__(f"Adresse introuvable : « {adresse.strip()[:MAX_ADRESSE]} »"
                         + (f" ({motif})." if motif else "."),
                         hint="Vérifiez le numéro, la rue et la commune, ou donnez lat/lon.")


def _donnees(services: Services) -> dict[str, Any]:
    ref = services.engine().reference
    d = ref.version_dict()
    couches = {}
    for name, info in d["couches"].items():
        info = {k: v for k, v in info.items() if k != "path"}  # no server paths
        couches[name] = info
    return {**{k: d[k] for k in ("version", "notes", "simplifiee", "demo")},
            "couches": couches, "geocodeur": services.settings.geocoder,
            "application": __version__}


def _suggestions(services: Services, q: str, limite: int) -> Suggestions:
    text = q.strip()
    if len(text) < 3 or any(ord(c) < 32 for c in text):
        return Suggestions(suggestions=[], methode="aucune")
    geocoder = services.geocoder()
    suggest = getattr(geocoder, "suggest", None)
    if callable(suggest):
        results, methode = list(suggest(text, limit=limite)), "suggest"
    else:
        results, methode = [geocoder.geocode(text)], "geocode"
    out = []
    seen = set()
    for r in results:
        if not getattr(r, "found", False) or r.lon is None or r.lat is None or not r.label:
            continue
        if r.label in seen:
            continue
        seen.add(r.label)
        out.append(Suggestion(label=r.label, lon=r.lon, lat=r.lat, score=r.score,
                              precision=r.precision, citycode=r.citycode, postcode=r.postcode))
    return Suggestions(suggestions=out[:limite], methode=methode)  # type: ignore[arg-type]


def _safe_stem(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename).stem)[:60].strip("_")
    return stem or "lot"


_MEDIA = {".csv": "text/csv; charset=utf-8",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _validate_upload(services: Services, data: bytes, suffix: str, feuille: str | None,
                     filename: str) -> dict[str, Any]:
    """Run the batch on an uploaded file inside a temporary directory (deleted after)."""
    try:
        from qpv_geo.batch import read_sites, validate_sites, write_result
    except ImportError as exc:
        raise _ServiceUnavailable(
            "La vérification de fichiers n'est pas disponible sur ce serveur.",
            hint="Utilisez l'API /api/v1/verdicts ou la page d'accueil, lieu par lieu.",
        ) from exc
    if not data:
        raise InputFileError("Le fichier reçu est vide.", hint="Vérifiez le fichier choisi.")
    out_suffix = ".xlsx" if suffix == ".xlsx" else ".csv"
    with tempfile.TemporaryDirectory(prefix="qpv-geo-lot-") as tmp:
        src = Path(tmp) / f"entree{suffix}"
        src.write_bytes(data)
        frame, mapping = read_sites(src, sheet=feuille)
        try:
            geocoder = services.geocoder()
        except QpvGeoError:
            geocoder = None  # coordinates-only files still work; batch says what is missing
        result = validate_sites(frame, mapping, settings=services.settings,
                                engine=services.engine(), geocoder=geocoder)
        paths = write_result(result, Path(tmp) / f"resultat{out_suffix}")
        stem = _safe_stem(filename)
        files = []
        for p in paths:
            p = Path(p)
            name = f"{stem}-verdicts{p.suffix}" if p.stem == "resultat" else \
                f"{stem}-{_safe_stem(p.name)}{p.suffix}"
            files.append((name, p.read_bytes(), _MEDIA.get(p.suffix.lower(),
                                                           "application/octet-stream")))
    token = services.results.put(files)
    return {
        "token": token,
        "files": [(i, name, len(content)) for i, (name, content, _) in enumerate(files)],
        "summary": _summary_rows(result.summary),
        "preview": _preview(result.frame),
        "demo": services.engine().reference.demo or _frame_is_demo(result.frame),
        "rows": len(result.frame),
    }


def _summary_rows(summary: Any) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if not isinstance(summary, dict):
        return [("Résumé", str(summary))]
    for key, value in summary.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                label = STATUS_LABELS.get(str(k2), str(k2))
                rows.append((f"{key} — {label}", str(v2)))
        elif isinstance(value, (list, tuple)):
            rows.append((str(key), " ; ".join(map(str, value))))
        else:
            rows.append((str(key), str(value)))
    return rows


_PREVIEW_VERDICT_COLS = ("status", "code_qp", "lib_qp", "motifs")


def _preview(frame: Any) -> dict[str, Any]:
    """First rows: up to 4 of the user's columns, then the verdict's main columns."""
    from qpv_geo.eligibility import VERDICT_COLUMNS

    added = set(VERDICT_COLUMNS)
    cols = [c for c in frame.columns
            if c not in added and not str(c).startswith("geocodage_")][:4]
    cols += [c for c in _PREVIEW_VERDICT_COLS if c in frame.columns]
    head = frame.head(_PREVIEW_ROWS)[cols]
    rows = []
    for rec in head.itertuples(index=False, name=None):
        row = []
        for col, v in zip(cols, rec, strict=True):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                row.append("")
            elif col == "status":
                row.append(HEADLINES.get(str(v), str(v)))
            else:
                row.append(str(v))
        rows.append(row)
    return {"columns": ["verdict" if c == "status" else str(c) for c in cols], "rows": rows}


def _frame_is_demo(frame: Any) -> bool:
    for col in ("geocodage_source", "donnees"):
        if col in frame.columns:
            text = frame[col].dropna().astype(str).str.lower()
            if text.str.contains("démo|demo", regex=True).any():
                return True
    return False


__all__ = ["CSP", "Services", "create_app", "status_for"]
