"""FastAPI application: the instructors' page, the file page and the JSON API.

A thin shell over the Python API (:mod:`qpv_geo.eligibility.engine`, :mod:`qpv_geo.geocoding`,
:mod:`qpv_geo.batch`). Like ``cli.py``, it is a place where exceptions become messages: every
error is ``{"erreur": …, "conseil": …}`` in JSON (or the same words on an HTML page), with a
status code that says whose fault it is, and never a trace.

This module wires the routes and the error handlers; the API models are in
:mod:`qpv_geo.web.schemas`, the middlewares in :mod:`qpv_geo.web.security`, the shared
state and the work behind the routes in :mod:`qpv_geo.web.services`.

Routes
------
``GET /``                       page: address (suggestions as you type) or lat/lon → verdict
``GET /lot``, ``POST /lot``     page: upload a CSV/XLSX, get the validated file and summary
``GET /donnees``                page: the data behind the verdicts (sources, versions, checksums,
                                which geocoder answers), the JSON one link away
``GET /api/v1/verdict``         one verdict (``adresse`` or ``lat`` + ``lon``)
``POST /api/v1/verdicts``       up to ``Settings.max_batch_items`` addresses or points
``GET /api/v1/donnees``         data versions and warnings
``GET /api/v1/suggestions``     address suggestions (local geocoder)
``GET /api/v1/perimetres``      GeoJSON of the perimeters near a point (the page's map)
``GET /api/v1/voies``           OpenStreetMap streets near a point (Saint-Étienne only, ODbL)
"""


import contextlib
import gc
import logging
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qpv_geo import __version__
from qpv_geo._french import de, heure_paris
from qpv_geo.batch.cancel import cancellable
from qpv_geo.batch.columns import COLUMN_ROLE_LABELS
from qpv_geo.eligibility.wording import (
    COUCHES,
    GEOCODEURS,
    Libelles,
    libelles,
    libelles_reglages,
)
from qpv_geo.exceptions import (
    CoordinateError,
    DownloadError,
    GeocoderNotConfigured,
    GeocoderRateLimited,
    GeocoderUnavailable,
    InputFileError,
    InputTooLargeError,
    QpvGeoError,
    ReferenceDataError,
    UnreadableInputError,
)
from qpv_geo.geocoding import geocoder_info
from qpv_geo.geocoding.messages import CONSEILS, hint_web, remplacer_pour_le_web
from qpv_geo.reporting.next_steps import edge_street, next_steps, zone_names
from qpv_geo.reporting.osm import ROADS_CSS, covers, roads_js
from qpv_geo.settings import Settings
from qpv_geo.web._present import (
    format_date,
    texte,
    verdict_rows,
    verdict_text,
)
from qpv_geo.web._store import StoreUnavailable, shared_secret
from qpv_geo.web.lot import LotColumnsError, status_words, validate_upload
from qpv_geo.web.registre import add_registre_routes
from qpv_geo.web.schemas import (
    MAX_ADRESSE,
    Donnees,
    FeatureCollection,
    Suggestions,
    VerdictOut,
    VerdictsIn,
    VerdictsOut,
    error_responses,
)
from qpv_geo.web.security import (
    CSP,
    JSON_BYTES_BASE,
    JSON_BYTES_PER_ITEM,
    MULTIPART_SLACK,
    BodyLimit,
    FormTokens,
    OriginGuard,
    Refused,
    SecurityHeaders,
    SlowBody,
    TooLarge,
    from_browser,
    token_refused,
    upload_name,
)
from qpv_geo.web.services import (
    BatchTooLong,
    Services,
    donnees_payload,
    suggest_addresses,
    warm_up,
)

log = logging.getLogger("qpv_geo.web")

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------
# Errors → messages
# ------------------------------------------------------------------------------------------

def status_for(exc: QpvGeoError) -> int:
    """HTTP status of a user-facing error: 503 for services or data the server lacks."""
    if isinstance(exc, (GeocoderUnavailable, GeocoderNotConfigured, GeocoderRateLimited,
                        ReferenceDataError, DownloadError, StoreUnavailable)):
        return 503
    if isinstance(exc, InputTooLargeError):
        return 413
    if isinstance(exc, UnreadableInputError):
        return 422
    return 400


_HTTP_MESSAGES = {
    404: ("Page ou ressource introuvable.", "Vérifiez l'adresse de la page ; l'accueil est « / »."),
    405: ("Méthode HTTP non autorisée pour cette adresse.",
          "Consultez le schéma OpenAPI : /openapi.json."),
    413: ("Requête trop volumineuse.", "Envoyez moins de données à la fois."),
}


#: The framework's refusals of a body it cannot parse (400, in English: Starlette's forms,
#: FastAPI's bodies) and what a person reads instead.
_FORM_ERRORS = (
    ("Too many files", "Formulaire refusé : un seul fichier à la fois."),
    ("Too many fields", "Formulaire refusé : trop de champs."),
    ("Field exceeded", "Formulaire refusé : un champ dépasse la taille permise."),
    ("Part exceeded", "Formulaire refusé : un champ dépasse la taille permise."),
    ("", "Requête illisible : le formulaire ou le JSON envoyé est mal formé."),
)


def _form_error(detail: str) -> tuple[str, str]:
    """The French words for a body the framework could not parse."""
    message = next(fr for en, fr in _FORM_ERRORS if detail.startswith(en))
    return message, ("Envoyez le formulaire depuis la page elle-même, sans le modifier (API : "
                     "voir le schéma /openapi.json).")


def _wants_json(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def _form_page(resp: Response) -> Response:
    """A page whose forms POST: with « no-referrer », Chromium sends « Origin: null » on form
    posts, which the origin guard refuses; « same-origin » still gives nothing to other
    sites (as the register pages do)."""
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def _attachment(name: str) -> str:
    """Content-Disposition of a download: the ASCII fallback and the UTF-8 name (RFC 6266)."""
    from urllib.parse import quote

    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                         for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def _json_model(model: Any) -> Response:
    """The JSON FastAPI would send for ``model`` under its own response model, validated
    once (returned as a model, FastAPI would validate it a second time)."""
    return JSONResponse(model.model_dump(mode="json", by_alias=True))


def _parse_coordinate(raw: str, name: str,
                      hint: str = "Exemple : latitude 45.4605, longitude 4.3871.") -> float:
    text = raw.strip().replace(",", ".").replace("\u00a0", "").replace(" ", "")
    try:
        value = float(text)
    except ValueError:
        raise CoordinateError(f"{name} « {raw[:40]} » n'est pas un nombre.",
                              hint=hint) from None
    if not math.isfinite(value):
        raise CoordinateError(f"{name} « {raw[:40]} » n'est pas un nombre fini.", hint=hint)
    return value


# ------------------------------------------------------------------------------------------
# The application
# ------------------------------------------------------------------------------------------

def _leaflet_dir() -> Path:
    """Leaflet 1.9.4, vendored once for the whole package (shared with the folium maps)."""
    for candidate in (HERE.parent / "reporting" / "static" / "vendor" / "leaflet-1.9.4",
                      HERE / "static" / "vendor" / "leaflet-1.9.4"):
        if (candidate / "leaflet.js").is_file():
            return candidate
    raise ReferenceDataError("Leaflet (static/vendor/leaflet-1.9.4) est introuvable.",
                             hint=CONSEILS["reinstaller"])


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the engine and the map index before the first request (a few hundred ms)."""
    await run_in_threadpool(warm_up, app.state.services)
    # The reference layers, the engine and the indexes are millions of long-lived objects:
    # out of the garbage collector's sight, its full passes no longer stall every request
    # in flight (they made the p99 at 32 connections).
    gc.collect()
    gc.freeze()
    yield


async def _run_while_connected(request: Request, func: Any, *args: Any) -> Any:
    """Run ``func`` in a worker thread; stop it (:func:`~qpv_geo.batch.cancel.check_cancelled`)
    when the client disconnects or the server stops."""
    import asyncio
    import threading

    event = threading.Event()

    def work() -> Any:
        with cancellable(event):
            return func(*args)

    task = asyncio.ensure_future(run_in_threadpool(work))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                return task.result()
            if await request.is_disconnected():
                event.set()
    except asyncio.CancelledError:
        event.set()
        raise


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; see the module docstring for the routes."""
    settings = settings or Settings.from_env()
    services = Services(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on .html
    templates.env.filters["date_fr"] = format_date
    templates.env.filters["heure_paris"] = heure_paris
    templates.env.filters["texte"] = texte
    max_upload = int(settings.max_upload_mb * 1_000_000)
    mots = _territory_words(settings)

    app = FastAPI(
        title=_api_title(mots),
        version=__version__,
        description=_api_description(mots),
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
            status=status, message=message, hint=hint, version=None, app_version=__version__,
            mots=mots)
        return HTMLResponse(html, status_code=status, headers=headers)

    def render_too_large(path: str, exc: TooLarge) -> Response:
        return error_response(path, 413, str(exc.detail), exc.hint)

    def render_refused(path: str, exc: Refused) -> Response:
        return error_response(path, exc.status_code, str(exc.detail), exc.hint)

    app.add_middleware(BodyLimit, upload_bytes=max_upload + MULTIPART_SLACK,
                       upload_shown=max_upload,
                       json_bytes=JSON_BYTES_BASE + JSON_BYTES_PER_ITEM
                       * settings.max_batch_items, render=render_too_large)
    app.add_middleware(SlowBody, delay_s=settings.delai_client_s, render=render_refused)
    app.add_middleware(OriginGuard, allowed=settings.origines_autorisees,
                       render=render_refused)
    app.add_middleware(SecurityHeaders)
    tokens = FormTokens(secret=shared_secret(services.folder, settings.secret_formulaires))

    @app.exception_handler(QpvGeoError)
    async def _user_error(request: Request, exc: QpvGeoError) -> Response:
        headers = None
        if isinstance(exc, GeocoderRateLimited) and exc.retry_after:
            headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        if isinstance(exc, BatchTooLong):
            status = 413
        elif isinstance(exc, _AddressNotFound):
            status = 404
        else:
            status = status_for(exc)
        return error_response(request.url.path, status, str(exc), hint_web(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, TooLarge):
            return render_too_large(request.url.path, exc)
        if isinstance(exc, Refused):
            return render_refused(request.url.path, exc)
        if exc.status_code == 400:  # no 400 of ours is an HTTPException: the framework's
            message, hint = _form_error(str(exc.detail))
        else:
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
        words = libelles(engine)
        return {"version": engine.reference.version, "data_notes": engine.reference.notes,
                "geocodeur": geocoder_info(settings),
                "app_version": __version__, "max_upload_mb": settings.max_upload_mb,
                "jeton": tokens.new(), "retention": services.results.retention_text(),
                "headlines": words.titres, "mots": words,
                "exemple": _example_point(engine.reference, words), **extra}

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
                engine = services.engine()
                ex = _example_point(engine.reference, libelles(engine))
                hint = f"Exemple : latitude {ex['lat']}, longitude {ex['lon']}."
                if not (lat_s.strip() and lon_s.strip()):
                    raise CoordinateError("Donnez la latitude et la longitude ensemble.",
                                          hint=hint)
                payload = services.verdict_for_point(_parse_coordinate(lat_s, "Latitude", hint),
                                                     _parse_coordinate(lon_s, "Longitude", hint))
        except QpvGeoError as exc:
            error = {"message": str(exc), "hint": hint_web(exc)}
            status = status_for(exc)
        context = page_context(page="verdict", adresse=adresse, lat=lat_s, lon=lon_s,
                               error=error, verdict=payload)
        if payload is not None:
            saisie = adresse.strip() or None
            reference = services.engine().reference
            noms = zone_names(reference)
            context.update(verdict_aids(services, payload))
            context["rows"] = verdict_rows(payload, adresse_saisie=saisie, noms=noms)
            context["text"] = verdict_text(payload, adresse_saisie=saisie, noms=noms,
                                           conseils=context["conseils"],
                                           mots=libelles(reference))
        return templates.TemplateResponse(request, "index.html", context, status_code=status)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((HERE / "static" / "favicon.svg").read_bytes(),
                        media_type="image/svg+xml")

    # ---------------------------------------------------------------- page /donnees
    @app.get("/donnees", response_class=HTMLResponse, include_in_schema=False)
    def page_donnees(request: Request) -> Response:
        return templates.TemplateResponse(request, "donnees.html", page_context(
            page="donnees", donnees=donnees_payload(services), couches_libelles=COUCHES,
            geocodeur_libelle=_geocodeur_libelle(services)))

    # ---------------------------------------------------------------- page /lot
    @app.get("/lot", response_class=HTMLResponse, include_in_schema=False)
    def page_lot(request: Request) -> Response:
        return _form_page(templates.TemplateResponse(request, "lot.html",
                                                     page_context(page="lot")))

    @app.post("/lot", response_class=HTMLResponse, include_in_schema=False)
    async def page_lot_post(request: Request) -> Response:
        error = None
        outcome = None
        picker = None
        status = 200
        try:
            form = await request.form(max_files=1, max_fields=9 + len(COLUMN_ROLE_LABELS),
                                      max_part_size=4096)
            try:
                upload = form.get("fichier")
                feuille = str(form.get("feuille") or "").strip()[:100] or None
                source = str(form.get("source") or "").strip()[:64] or None
                if from_browser(request.headers) and not tokens.valid(form.get("jeton")):
                    raise token_refused()
                overrides = None
                ligne = str(form.get("ligne_entete") or "").strip()
                if ligne and not (ligne.isdigit() and 1 <= int(ligne) <= 1_048_576):
                    raise InputFileError(f"Ligne d'en-tête invalide : « {ligne[:20]} ».",
                                         hint="Choisissez la ligne des noms de colonnes dans "
                                         "la liste, puis relancez.")
                header_line = int(ligne) if ligne else None
                if source is not None and header_line is not None and not any(
                        k.startswith("col_") for k in form):
                    # a new header row: its own columns, guessed again
                    data, suffix, name = None, "", ""
                elif source is not None:  # the column picker: every role says its column
                    if not re.fullmatch(r"[A-Za-z0-9_-]{10,64}", source):
                        raise InputFileError("Formulaire de colonnes invalide.",
                                             hint="Déposez le fichier à nouveau.")
                    overrides = {role: (str(form.get(f"col_{role}") or "").strip()[:200]
                                        or None) for role in COLUMN_ROLE_LABELS}
                    data, suffix, name = None, "", ""
                else:
                    if upload is None or isinstance(upload, str) or not upload.filename:
                        raise InputFileError("Aucun fichier reçu.",
                                             hint="Choisissez un fichier CSV ou XLSX puis "
                                             "cliquez sur « Vérifier le fichier ».")
                    name, suffix = upload_name(upload.filename)
                    data = await upload.read()
                outcome = await _run_while_connected(
                    request, lambda: validate_upload(services, data, suffix, feuille, name,
                                                     overrides=overrides, source=source,
                                                     header_line=header_line))
            finally:
                await form.close()
        except (TooLarge, Refused):
            raise
        except LotColumnsError as exc:
            error = {"message": str(exc), "hint": hint_web(exc)}
            picker = {"columns": exc.columns, "mapping": exc.mapping, "source": exc.source,
                      "entete": exc.entete}
            status = 400
        except QpvGeoError as exc:
            error = {"message": str(exc), "hint": hint_web(exc)}
            status = status_for(exc)
        if outcome is not None:
            picker = {"columns": outcome["columns"], "mapping": outcome["mapping"],
                      "source": outcome["source"], "entete": outcome.get("entete")}
        return _form_page(templates.TemplateResponse(
            request, "lot.html",
            page_context(page="lot", error=error, outcome=outcome, picker=picker,
                         roles=COLUMN_ROLE_LABELS,
                         status_words=status_words(libelles(services.engine()))),
            status_code=status))

    @app.get("/lot/resultat/{token}/{index}", include_in_schema=False)
    def lot_result(token: str, index: int) -> Response:
        if not re.fullmatch(r"[A-Za-z0-9_-]{10,64}", token):
            raise StarletteHTTPException(404)
        found = services.results.get(token, index)
        if found is None:
            kept = services.results.retention_text()
            raise QpvGeoError(f"Ce résultat n'est plus disponible ({kept}).",
                              hint="Déposez le fichier à nouveau sur /lot.")
        name, content, media = found
        return Response(content, media_type=media,
                        headers={"Content-Disposition": _attachment(name),
                                 "Cache-Control": "no-store"})

    # ---------------------------------------------------------------- API
    @app.get("/api/v1/verdict", response_model=VerdictOut, tags=["verdicts"],
             responses=error_responses(400, 404, 422, 503),
             description=None if mots.par_defaut else (
                 "Verdict pour une adresse (`adresse`) ou un point (`lat` et `lon`, en degrés "
                 "décimaux WGS84). Coordonnées impossibles ou inversées : 400 ; adresse "
                 "introuvable : 404 ; géocodeur indisponible : 503."))
    async def api_verdict(
        adresse: Annotated[str | None, Query(max_length=MAX_ADRESSE,
                                             description="Adresse postale.")] = None,
        lat: Annotated[float | None, Query(description=_coordonnee_doc("Latitude", "lat", mots))
                       ] = None,
        lon: Annotated[float | None, Query(description=_coordonnee_doc("Longitude", "lon", mots))
                       ] = None,
    ) -> Response:
        """Verdict pour une adresse (`adresse`) ou un point (`lat` et `lon`).

        Exemple : `/api/v1/verdict?lat=45.4605&lon=4.3871`. Coordonnées impossibles ou
        inversées : 400 ; adresse introuvable : 404 ; géocodeur indisponible : 503.
        """
        if adresse is not None and (lat is not None or lon is not None):
            raise CoordinateError("Donnez soit une adresse, soit lat et lon, pas les deux.")
        if adresse is not None:
            if services.geocoder_in_memory():
                # the local geocoder answers from memory in about a millisecond: on the event
                # loop, like a point (a thread-pool hop per request made the p99 at 32
                # connections)
                payload, geocode = services.verdict_for_address(adresse)
            else:  # a geocoder may wait on the network: in a worker thread
                payload, geocode = await run_in_threadpool(services.verdict_for_address,
                                                           adresse)
            if not getattr(geocode, "found", False) and not getattr(geocode, "hors_territoire",
                                                                    None):
                raise _AddressNotFound(adresse, getattr(geocode, "motif", None))
            return _json_model(VerdictOut(**payload))
        if lat is None or lon is None:
            engine = services.engine()
            ex = _example_point(engine.reference, libelles(engine))
            raise CoordinateError("Donnez une adresse, ou lat et lon ensemble.",
                                  hint=f"Exemple : /api/v1/verdict?lat={ex['lat']}&lon={ex['lon']}")
        # a point costs ≈ 0.3 ms: judged on the event loop, without a thread-pool hop (at 32
        # connections the hops and the GIL hand-offs between 32 threads made the p99)
        return _json_model(VerdictOut(**services.verdict_for_point(lat, lon)))

    @app.post("/api/v1/verdicts", response_model=VerdictsOut, tags=["verdicts"],
              responses=error_responses(400, 413, 422, 503))
    def api_verdicts(body: VerdictsIn) -> VerdictsOut:
        """Verdicts pour une liste de lieux (adresses ou points), dans l'ordre reçu.

        Au plus `max_batch_items` lieux (1 000 par défaut) : au-delà, 413. Un lieu
        inutilisable est un résultat `non_geocode` avec son motif, pas une erreur.
        """
        return services.verdicts(body.lieux)

    @app.get("/api/v1/donnees", response_model=Donnees, tags=["données"],
             responses=error_responses(503))
    def api_donnees() -> dict[str, Any]:
        """Versions des données de référence (sha256, millésime, source) et avertissements."""
        return donnees_payload(services)

    @app.get("/api/v1/suggestions", response_model=Suggestions, tags=["adresses"],
             responses=error_responses(400, 422, 503))
    def api_suggestions(
        q: Annotated[str, Query(max_length=MAX_ADRESSE, description="Début d'adresse.")],
        limite: Annotated[int, Query(ge=1, le=20)] = 8,
    ) -> Suggestions:
        """Adresses proposées pendant la saisie (géocodeur local ; 3 caractères minimum)."""
        return suggest_addresses(services, q, limite)

    @app.get("/api/v1/perimetres", response_model=FeatureCollection, tags=["carte"],
             responses=error_responses(422, 503), description=_perimeters_doc(mots))
    def api_perimetres(
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        rayon_m: Annotated[float, Query(gt=0, le=20_000)] = 3000.0,
    ) -> Response:
        """GeoJSON des périmètres (QPV, QVA, QPV hors SEM, communes) à moins de `rayon_m`."""
        features = services.perimeters().around(lon, lat, rayon_m)
        return JSONResponse({"type": "FeatureCollection", "features": features})

    @app.get("/api/v1/voies", tags=["carte"], responses=error_responses(422, 503))
    def api_voies(
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        rayon_m: Annotated[float, Query(ge=1, le=3000)] = 1000.0,
    ) -> Response:
        """Rues OpenStreetMap (GeoJSON compact) à moins de `rayon_m` du point, pour lire la
        carte hors ligne : propriétés `n` (nom) et `c` (classe 0 grande voie, 1 secondaire,
        2 autre), avec `attribution` (ODbL, à afficher) et `couverture` (la couche s'arrête
        aux limites de Saint-Étienne ; ailleurs la liste est vide). Aucun verdict n'en
        dépend."""
        return JSONResponse(services.roads(lon, lat, rayon_m),
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/carte/rues.js", include_in_schema=False)
    def rues_js() -> Response:
        return Response(roads_js(), media_type="text/javascript; charset=utf-8")

    @app.get("/carte/rues.css", include_in_schema=False)
    def rues_css() -> Response:
        return Response(ROADS_CSS, media_type="text/css; charset=utf-8")

    add_registre_routes(app, settings, templates, page_context,
                        verdict_aids=lambda payload: verdict_aids(services, payload))
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


def verdict_aids(services: Services, payload: dict[str, Any]) -> dict[str, Any]:
    """What a page shows under a verdict besides its details: « Que faire ? » (``conseils``),
    the street it names (``rue``), whether the street layer reaches the point (``rues_ici``)
    and whether the maps are drawn (``cartes``). The verdict page and the register's site
    page both show these."""
    reference = services.engine().reference
    conseils = next_steps(payload, reference)
    return {
        "conseils": conseils,
        "rue": edge_street(payload, reference) if conseils else None,
        "rues_ici": _streets_here(payload),
        # Far outside the territory, nothing would be drawn around the point: no empty maps.
        "cartes": payload.get("lat") is not None and (
            payload["status"] != "hors_territoire"
            or bool(services.perimeters().around(payload["lon"], payload["lat"], 3000))),
    }


def _geocodeur_libelle(services: Services) -> str:
    """Which geocoder answers the page's addresses, in words (and whether it is the demo)."""
    info = geocoder_info(services.settings)
    if info["demo"]:
        return "fichier d'adresses de DÉMONSTRATION (adresses fictives, aucune valeur officielle)"
    return GEOCODEURS.get(info["geocodeur"], info["geocodeur"])


def _streets_here(payload: dict[str, Any]) -> bool:
    """True when the street layer (Saint-Étienne) reaches the verdict's point."""
    if payload.get("lat") is None:
        return False
    try:
        return covers((payload["lon"], payload["lat"], payload["lon"], payload["lat"]))
    except QpvGeoError:
        return False


def _territory_words(settings: Settings) -> Libelles:
    """The words of the settings' territory, without loading any data (SEM: its own)."""
    return libelles_reglages(settings)


def _perimeters_doc(mots: Libelles) -> str:
    """The description of /api/v1/perimetres in the territory's words."""
    if mots.france:
        return "GeoJSON des QPV 2024 à moins de `rayon_m`."
    return mots.mot("doc_perimetres", f"GeoJSON des périmètres ({mots.qpv_court}, "
                    f"{mots.qpv_autres_court}) à moins de `rayon_m` (type `qpv_hors_sem` : "
                    "les autres QPV).")


def _coordonnee_doc(nom: str, cle: str, mots: Libelles) -> str:
    """« Latitude WGS84 (≈ 45,4). »: the API's words for a coordinate, near the territory's
    example point when its profile has one."""
    if mots.exemple:
        return f"{nom} WGS84 (≈ {mots.exemple[cle + '_approx']})."
    return f"{nom} WGS84."


def _api_title(mots: Libelles) -> str:
    if mots.france:
        return "qpv-geo — appartenance aux QPV 2024, France"
    return f"qpv-geo — éligibilité QPV {de(mots.nom)}"


def _api_description(mots: Libelles) -> str:
    where = ("de France (métropole, Corse et outre-mer)" if mots.france else de(mots.nom))
    usage = mots.mot("usage_api", "")
    return ("Vérifier si une adresse ou un point est dans un quartier prioritaire de la "
            f"politique de la ville (QPV 2024) {where}{usage}. Chaque réponse porte la "
            "version des données. Erreurs : `{\"erreur\": …, \"conseil\": …}`.")


def _example_point(reference: Any, mots: Libelles) -> dict[str, str]:
    """Example coordinates of the forms: the profile's (SEM's), else a point inside one of the
    territory's QPV (Paris's for France), with no example address."""
    if mots.exemple:
        return mots.exemple
    qpv = reference.qpv
    if mots.france or not len(qpv):
        lat, lon, lieu = 48.8566, 2.3522, "Paris"
    else:
        p = qpv.geometry.values[0].representative_point()
        lat, lon, lieu = p.y, p.x, mots.nom
    return {"lat": f"{lat:.4f}", "lon": f"{lon:.4f}", "adresse": "",
            "lat_approx": f"{lat:.1f}".replace(".", ","),
            "lon_approx": f"{lon:.1f}".replace(".", ","), "lieu": lieu}


class _AddressNotFound(QpvGeoError):
    def __init__(self, adresse: str, motif: str | None) -> None:
        super().__init__(f"Adresse introuvable : « {adresse.strip()[:MAX_ADRESSE]} »"
                         + (f" ({remplacer_pour_le_web(motif)})." if motif else "."),
                         hint="Vérifiez le numéro, la rue et la commune, ou donnez lat/lon.")


__all__ = ["CSP", "Services", "create_app", "status_for"]
