"""Web pages of the instruction register (``/registre``): sites to review with a decision
form, dossiers and their criteria, import of a new file version with its diff, re-check,
history, exports and instruction sheets. A thin shell over :mod:`qpv_geo.register`.

Access: these pages change data, so they need an identity. With an accounts file
(``QPV_GEO_REGISTRE_COMPTES``: ``nom:empreinte`` lines, PBKDF2 hashes) every page asks for
HTTP Basic credentials and decisions are signed with the account's name. Passwords are
checked in a worker thread, one at a time (the event loop keeps answering the API), with the
same work for an unknown name as for a known one, and :class:`~qpv_geo.web.security.LoginGuard`
locks a name or an address after repeated failures (429). Without accounts, the pages answer
only when the server listens on the loopback (``qpv-geo serve`` on 127.0.0.1), the request
comes from this computer and names it (``Host``, ``Origin``: no DNS rebinding); otherwise 403
saying how to configure accounts. The person's name is then asked once and remembered by the
browser (a cookie), instead of being typed for each decision.
Every form carries a CSRF token (double submit: a random cookie ``SameSite=Strict`` and the
same value in a hidden field). The checker pages (``/``, ``/lot``, the API) stay open.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qpv_geo._french import heure_paris
from qpv_geo.eligibility.wording import libelles_reglages
from qpv_geo.exceptions import InputFileError, QpvGeoError, RegistreError
from qpv_geo.geocoding.messages import hint_web
from qpv_geo.register import DECISIONS, ETATS, LOT_DEFAUT, Registre
from qpv_geo.register.accounts import authenticate, load_comptes
from qpv_geo.register.criteria import criteres_de
from qpv_geo.register.exports import export_diff, export_registre
from qpv_geo.register.fiche import fiche_html, fiche_pdf_bytes
from qpv_geo.settings import Settings
from qpv_geo.web._present import geocode_payload
from qpv_geo.web.security import LoginGuard, locked_out, loopback_refusal, upload_name

CSRF_COOKIE = "qpv_registre_csrf"
#: The name a person signs with on a loopback server without accounts (asked once).
AUTEUR_COOKIE = "qpv_registre_auteur"
REALM = "qpv-geo registre"
#: The sheet is a standalone page (its own styles, the map as a data: image, no script).
FICHE_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'none'")


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    """Who is asking: an account (HTTP Basic), or nobody on a loopback-only server.

    :meth:`identify` is the routes' dependency (run on the event loop): the password hash is
    computed in a worker thread, one sign-in at a time, so a burst of sign-ins neither
    blocks the loop nor takes every core."""

    def __init__(self, settings: Settings, *, guard: LoginGuard | None = None) -> None:
        self.comptes = load_comptes(settings.registre_comptes) \
            if settings.registre_comptes else {}
        self.local = _loopback(settings.ecoute)
        self.guard = guard or LoginGuard()
        self._ok: dict[str, str] = {}
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def requires_login(self) -> bool:
        """True when the pages ask for credentials."""
        return bool(self.comptes)

    async def identify(self, request: Request) -> str | None:
        """The account name, ``None`` for an anonymous local user; raises 401/403/429."""
        if self.comptes:
            return await self._basic(request)
        client = request.client.host if request.client else None
        if not (self.local and _loopback(client)):
            raise StarletteHTTPException(
                403, detail="Le registre d'instruction exige des comptes dès que le serveur "
                "est joignable depuis le réseau : demandez à l'administrateur de qpv-geo de "
                "créer les comptes des instructeurs (réglage QPV_GEO_REGISTRE_COMPTES).")
        refusal = loopback_refusal(request.scope)
        if refusal is not None:
            raise refusal
        return None

    async def _basic(self, request: Request) -> str:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and value:
            key = hashlib.sha256(value.encode()).hexdigest()
            if key in self._ok:  # signed in already (the browser resends the same header)
                return self._ok[key]
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, password = "", "", ""
            if sep:
                client = request.client.host if request.client else "?"
                wait = self.guard.wait_s(user, client)
                if wait > 0:  # locked: answered at once, without queueing
                    raise locked_out(wait)
                if self._limiter is None:
                    self._limiter = anyio.CapacityLimiter(1)
                async with self._limiter:  # one hash at a time; the queue sees new locks
                    wait = self.guard.wait_s(user, client)
                    if wait > 0:
                        raise locked_out(wait)
                    ok = await anyio.to_thread.run_sync(authenticate, self.comptes, user,
                                                        password)
                    if not ok:
                        self.guard.failed(user, client)
                if ok:
                    self.guard.succeeded(user)
                    if len(self._ok) > 1000:
                        self._ok.clear()
                    self._ok[key] = user
                    return user
        raise StarletteHTTPException(
            401, detail="Identifiez-vous pour accéder au registre d'instruction.",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})


def _check_csrf(request: Request, form: Any) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = str(form.get("csrf") or "")
    if not (cookie and sent and hmac.compare_digest(cookie, sent)):
        raise StarletteHTTPException(
            403, detail="Formulaire expiré ou envoyé depuis un autre site : rechargez la page "
            "du registre et recommencez.")


def _clean_name(text: object) -> str:
    """A person's name as typed: one line, no control characters, 200 characters at most."""
    return " ".join("".join(c for c in str(text or "") if c.isprintable()).split())[:200]


def _remembered(request: Request) -> str:
    """The name this browser signs with (loopback server without accounts), or ``""``."""
    return _clean_name(unquote(request.cookies.get(AUTEUR_COOKIE, "")))


def _remember(resp: Response, request: Request, name: str) -> Response:
    """Keep ``name`` in this browser for the next decisions (a year, register pages only);
    an empty name forgets it."""
    if name:
        resp.set_cookie(AUTEUR_COOKIE, quote(name), max_age=365 * 86400, httponly=True,
                        samesite="strict", path="/registre",
                        secure=request.url.scheme == "https")
    else:
        resp.delete_cookie(AUTEUR_COOKIE, path="/registre")
    return resp


def _depuis(value: str) -> str:
    """How long since a stored time, in Paris days: « depuis aujourd'hui », « depuis hier »,
    « depuis 12 jours »."""
    import datetime as dt

    try:
        then = dt.datetime.strptime(heure_paris(value, heure=False), "%d/%m/%Y").date()
        today = dt.datetime.strptime(heure_paris(dt.datetime.now(dt.UTC).isoformat(),
                                                 heure=False), "%d/%m/%Y").date()
    except ValueError:
        return ""
    days = (today - then).days
    return ("depuis aujourd'hui" if days <= 0 else "depuis hier" if days == 1
            else f"depuis {days} jours")


#: The register's advice written for the command line, as the web pages give it (by the
#: advice's first words).
_WEB_HINTS = (
    ("Indiquez votre nom", "Indiquez votre nom dans le champ « Votre nom »."),
    ("Expliquez en une phrase pourquoi le site", "Expliquez en une phrase, dans le champ "
     "« Motif », pourquoi le site est (ou n'est pas) éligible."),
    ("Par exemple : « plan du local", "Écrivez-le dans le champ « Ce qui a été demandé au "
     "porteur », par exemple « plan du local et bail »."),
    ("Expliquez en une phrase pourquoi l'import", "Expliquez en une phrase, dans le champ "
     "« Motif », pourquoi l'import est annulé."),
    ("Listez les imports", "Voyez la page « Imports » du registre."),
    ("Listez les sites", "Ouvrez le site depuis la liste « Tous les sites »."),
    ("Précisez le lot du site", "Ouvrez le site depuis la liste « Tous les sites » : elle "
     "précise son lot et son dossier."),
    ("Listez les dossiers", "Voyez la page « Dossiers et critères »."),
    ("Précisez le lot du dossier", "Notez les bilans depuis la page « Dossiers et "
     "critères » : elle précise le lot de chaque dossier."),
    ("Importez un fichier", "Importez un fichier avec le formulaire « Importer » de la page "
     "du registre."),
    ("Indiquez « éligible »", "Choisissez une décision dans la liste."),
    ("Corrigez la lecture", "Corrigez le fichier dans le tableur (ligne des noms de colonnes, "
     "séparateur, colonnes), puis importez-le à nouveau."),
)


def _web_hint(exc: QpvGeoError) -> str | None:
    """A register message's advice as a web page gives it: the form's fields and the
    register's pages for the register's own advice, then the web wording every page uses
    (:func:`qpv_geo.geocoding.messages.hint_web`: never a command-line option)."""
    hint = exc.hint
    if hint:
        for start, text in _WEB_HINTS:
            if hint.startswith(start):
                return text
    return hint_web(exc)


def _without_checksums(cause: str) -> str:
    """A re-check's cause as a person reads it: « périmètres QPV changés » without the
    checksums the register keeps (« (sha256 bac26f0c → 4898f646) », shown on hover)."""
    return re.sub(r" \(sha256 [^)]*\)", "", str(cause))


def _web_error(exc: QpvGeoError) -> dict[str, Any]:
    """What the register pages show for an error: its message and its advice, web-worded."""
    return {"message": str(exc), "hint": _web_hint(exc)}


def site_payload(site: Any, statuts: dict[str, str]) -> dict[str, Any]:
    """A register site's stored verdict in the shape of the verdict page's payload (what
    :func:`qpv_geo.reporting.next_steps.next_steps` and the maps read). The register does not
    store the QPV on the other side of a doubtful edge: for an « à vérifier » it is the site's
    quartier, else the nearest one (the zone whose edge the margin reached)."""
    v = site.verdict
    status = v.get("status")
    geo = v.get("geocodage") or None
    candidat = v.get("candidat_autre_cote")
    if candidat is None and status == "a_verifier":
        candidat = v.get("code_qp") or v.get("code_qp_proche")
    geocode = None
    if geo:
        geocode = geocode_payload(SimpleNamespace(
            query=site.lieu, found=bool(geo.get("label") or geo.get("precision")),
            label=geo.get("label"), score=geo.get("score"), precision=geo.get("precision"),
            citycode=None, postcode=None, source=geo.get("source"), motif=None))
    motifs = v.get("motifs")
    return {**{k: v.get(k) for k in (
        "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m", "marge_m",
        "marge_motif", "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m", "lon",
        "lat")},
        "status": status, "statut_libelle": statuts.get(status or "", status),
        "candidat_autre_cote": candidat, "geocodage": geocode,
        "motifs": [m for m in str(motifs or "").split(" ; ") if m]
        if not isinstance(motifs, list) else motifs}


def add_registre_routes(app: FastAPI, settings: Settings, templates: Jinja2Templates,
                        page_context: Any, *,
                        verdict_aids: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                        ) -> None:
    """Add the ``/registre`` pages to ``app`` (called by :func:`qpv_geo.web.app.create_app`);
    ``verdict_aids(payload)`` gives what the verdict page shows under a verdict (« Que
    faire ? », the maps), shown on each site's page too."""
    access = Access(settings)
    templates.env.filters["sans_empreintes"] = _without_checksums
    User = Annotated[str | None, Depends(access.identify)]

    def open_registre() -> Registre:
        return Registre(settings=settings)

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        user = ctx.pop("utilisateur", None)
        context = page_context(page="registre", csrf=token, utilisateur=user,
                               auteur=user or ("" if access.requires_login
                                               else _remembered(request)),
                               connexion=access.requires_login, decisions=DECISIONS,
                               etats=ETATS, criteres=criteres_de(libelles_reglages(settings)),
                               chemin=request.url.path, **ctx)
        resp = templates.TemplateResponse(request, name, context, status_code=status)
        resp.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict",
                        path="/registre", secure=request.url.scheme == "https")
        resp.headers["Cache-Control"] = "no-store"
        # With « no-referrer », Chromium sends « Origin: null » on form posts, which the
        # origin guard refuses; « same-origin » still gives nothing to other sites.
        resp.headers["Referrer-Policy"] = "same-origin"
        return resp

    def auteur_of(user: str | None, form: Any, request: Request) -> str:
        """Who signs: the account, else the name typed in the form, else the remembered one."""
        if user:
            return user
        return _clean_name(form.get("auteur")) or _remembered(request)

    def signed(resp: Response, request: Request, user: str | None, form: Any) -> Response:
        """Remember the name typed in a form (loopback server without accounts)."""
        typed = _clean_name(form.get("auteur"))
        if not user and not access.requires_login and typed and typed != _remembered(request):
            _remember(resp, request, typed)
        return resp

    def error_page(request: Request, user: str | None, titre: str,
                   exc: QpvGeoError) -> Response:
        """A register page that cannot be shown: why, in the register (its links kept)."""
        return render(request, "registre_erreur.html", status=400, utilisateur=user,
                      titre=titre, error=_web_error(exc))

    def registre_page(request: Request, user: str | None, *, status: int = 200,
                      **extra: Any) -> Response:
        vue = ("tous" if request.query_params.get("tous") == "1" else "attente"
               if request.query_params.get("attente") == "1" else "a_revoir")
        with open_registre() as reg:
            tous_sites = reg.sites()
            dossiers = reg.dossiers()
            imports = [i for i in reg.imports() if i["annulation"] is None]
        sites = {"tous": tous_sites,
                 "attente": [s for s in tous_sites if s.en_attente],
                 "a_revoir": [s for s in tous_sites if s.a_revoir]}[vue]
        return render(request, "registre.html", status=status, utilisateur=user, sites=sites,
                      vue=vue, tous=vue == "tous", total=len(tous_sites),
                      tous_sites=tous_sites,
                      a_revoir=sum(1 for s in tous_sites if s.a_revoir),
                      en_attente=sum(1 for s in tous_sites if s.en_attente),
                      bloques=[d for d in dossiers if d.etat == "bloquant"],
                      dossiers_total=len(dossiers), dernier_import=imports[-1] if imports
                      else None, **extra)

    @app.get("/registre", response_class=HTMLResponse, include_in_schema=False)
    def page_registre(request: Request, user: User) -> Response:
        fait = request.query_params.get("decide")
        return registre_page(request, user, fait=fait)

    @app.post("/registre/nom", include_in_schema=False)
    async def post_nom(request: Request, user: User) -> Response:
        """The name this browser signs with (loopback server without accounts)."""
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        _check_csrf(request, form)
        retour = str(form.get("retour") or "")
        if not retour.startswith("/registre") or "//" in retour or "\\" in retour:
            retour = "/registre"
        resp = RedirectResponse(retour, status_code=303)
        if not user and not access.requires_login:
            _remember(resp, request, _clean_name(form.get("auteur")))
        return resp

    @app.post("/registre/decision", include_in_schema=False)
    async def post_decision(request: Request, user: User) -> Response:
        form = await request.form(max_files=0, max_fields=8, max_part_size=8192)
        _check_csrf(request, form)
        site = str(form.get("site") or "")
        lot = str(form.get("lot") or "") or None  # a site is (lot, dossier, site)
        dossier = str(form.get("dossier") or "") or None
        retour = "site" if form.get("retour") == "site" else "liste"
        decision = str(form.get("decision") or "")

        def decide() -> None:
            if decision not in DECISIONS:  # nothing chosen: no default decision
                raise RegistreError("Choisissez une décision dans la liste avant "
                                    "d'enregistrer.",
                                    hint="Aucune décision n'est proposée par défaut : "
                                    "choisissez « " + " » ou « ".join(DECISIONS.values())
                                    + " ».")
            with open_registre() as reg:
                reg.decider(site, decision, str(form.get("motif") or "")[:2000],
                            auteur_of(user, form, request), lot=lot, dossier=dossier)

        try:
            await run_in_threadpool(decide)
        except QpvGeoError as exc:
            error = _web_error(exc)
            if retour == "site":
                resp = await run_in_threadpool(site_page, request, user, site, error, lot,
                                               dossier)
            else:
                resp = await run_in_threadpool(lambda: registre_page(request, user, status=400,
                                                                     error=error))
            return signed(resp, request, user, form)
        ident = urlencode({"id": site, **({"lot": lot} if lot else {}),
                           **({"dossier": dossier} if dossier else {})})
        target = (f"/registre/site?{ident}&decide=1" if retour == "site"
                  else f"/registre?decide={quote(site)}")
        return signed(RedirectResponse(target, status_code=303), request, user, form)

    @app.post("/registre/import", include_in_schema=False)
    async def post_import(request: Request, user: User) -> Response:
        form = await request.form(max_files=1, max_fields=6, max_part_size=8192)
        try:
            _check_csrf(request, form)
            upload = form.get("fichier")
            if upload is None or isinstance(upload, str) or not upload.filename:
                raise InputFileError("Aucun fichier reçu.",
                                     hint="Choisissez un fichier CSV ou XLSX puis cliquez sur "
                                     "« Importer ».")
            name, suffix = upload_name(upload.filename)
            data = await upload.read()
            lot = str(form.get("lot") or "").strip()[:100] or "principal"
            auteur = auteur_of(user, form, request) or None

            def run() -> Any:
                with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp:
                    path = Path(tmp) / (Path(name).stem[:80] + suffix)
                    path.write_bytes(data)
                    with open_registre() as reg:
                        return reg.importer(path, lot=lot, auteur=auteur)

            result = await run_in_threadpool(run)
        except QpvGeoError as exc:
            error = _web_error(exc)
            return await run_in_threadpool(lambda: registre_page(request, user, status=400,
                                                                 error=error))
        finally:
            await form.close()
        resp = await run_in_threadpool(lambda: registre_page(request, user,
                                                             resultat_import=result))
        return signed(resp, request, user, form)

    @app.post("/registre/reverifier", include_in_schema=False)
    async def post_reverifier(request: Request, user: User) -> Response:
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        _check_csrf(request, form)

        # Each site keeps its stored point unless the person ticked « géocoder de nouveau ».
        regeocoder = form.get("regeocoder") == "1"

        def run() -> Any:
            with open_registre() as reg:
                return reg.reverifier(auteur=auteur_of(user, form, request) or None,
                                      regeocoder=regeocoder)

        result = await run_in_threadpool(run)
        resp = await run_in_threadpool(lambda: registre_page(request, user,
                                                             reverification=result,
                                                             regeocodage=regeocoder))
        return signed(resp, request, user, form)

    def site_page(request: Request, user: str | None, site_id: str,
                  error: dict[str, Any] | None = None, lot: str | None = None,
                  dossier: str | None = None) -> Response:
        with open_registre() as reg:
            site = reg.site(site_id, lot=lot, dossier=dossier)
            historique = reg.historique(site_id, lot=site.lot, dossier=site.dossier)
            dossier = next((d for d in reg.dossiers() if d.dossier == site.dossier
                            and d.lot == site.lot), None)
            statuts = reg.statuts
        payload = site_payload(site, statuts)
        aids = verdict_aids(payload) if verdict_aids is not None else {}
        return render(request, "registre_site.html", status=400 if error else 200,
                      utilisateur=user, site=site, historique=historique, dossier=dossier,
                      error=error, fait=request.query_params.get("decide") == "1",
                      verdict=payload, depuis=_depuis(site.decision["date"])
                      if site.en_attente else "", **aids)

    @app.get("/registre/site", response_class=HTMLResponse, include_in_schema=False)
    def page_site(request: Request, user: User, id: str = "", lot: str = "",
                  dossier: str = "") -> Response:
        try:
            return site_page(request, user, id, None, lot or None, dossier or None)
        except QpvGeoError as exc:
            return error_page(request, user, "Site introuvable", exc)

    def dossiers_page(request: Request, user: str | None, *, status: int = 200,
                      error: dict[str, Any] | None = None) -> Response:
        with open_registre() as reg:
            dossiers = reg.dossiers()
        return render(request, "registre_dossiers.html", status=status, utilisateur=user,
                      dossiers=dossiers, error=error)

    @app.get("/registre/dossiers", response_class=HTMLResponse, include_in_schema=False)
    def page_dossiers(request: Request, user: User) -> Response:
        return dossiers_page(request, user)

    @app.post("/registre/bilan", include_in_schema=False)
    async def post_bilan(request: Request, user: User) -> Response:
        form = await request.form(max_files=0, max_fields=6, max_part_size=4096)
        _check_csrf(request, form)
        dossier = str(form.get("dossier") or "")
        lot = str(form.get("lot") or "") or None
        fourni = str(form.get("fourni") or "")

        def run() -> None:
            if fourni not in ("oui", "non"):  # nothing chosen: no default answer
                raise RegistreError(f"Dossier {dossier[:60]} : indiquez si les bilans N-1 "
                                    "ont été reçus (oui ou non).",
                                    hint="Aucune réponse n'est proposée par défaut : "
                                    "choisissez « oui » ou « non » puis « Noter ».")
            with open_registre() as reg:
                reg.marquer_bilan(dossier, fourni == "oui", auteur_of(user, form, request),
                                  str(form.get("motif") or "").strip()[:500] or None, lot=lot)

        try:
            await run_in_threadpool(run)
        except QpvGeoError as exc:
            error = _web_error(exc)
            resp = await run_in_threadpool(lambda: dossiers_page(request, user, status=400,
                                                                 error=error))
            return signed(resp, request, user, form)
        return signed(RedirectResponse("/registre/dossiers", status_code=303), request, user,
                      form)

    def diff_of(lot: str, avant: int | None, apres: int | None) -> Any:
        if (avant is None) != (apres is None):
            raise InputFileError("Indiquez deux n° d'import (avant et après), ou aucun.",
                                 hint="Choisissez l'import de départ et l'import d'arrivée "
                                 "dans les listes de la page « Dernier diff ».")
        for n in (avant, apres):
            if n is not None and not 0 <= n < 2 ** 63:  # beyond what SQLite can hold
                raise RegistreError(f"Import n° {str(n)[:20]}{'…' if len(str(n)) > 20 else ''}"
                                    " inconnu.", hint="Choisissez les imports dans les listes "
                                    "de la page « Dernier diff ».")
        with open_registre() as reg:
            imports = reg.imports()
            if not lot:  # the lot of the latest import still in force
                lot = next((i["lot"] for i in reversed(imports) if i["annulation"] is None),
                           LOT_DEFAUT)
            return reg.diff(avant, apres, lot=lot), imports

    @app.get("/registre/diff", response_class=HTMLResponse, include_in_schema=False)
    def page_diff(request: Request, user: User, lot: str = "",
                  avant: int | None = None, apres: int | None = None) -> Response:
        try:
            diff, imports = diff_of(lot, avant, apres)
        except QpvGeoError as exc:
            return error_page(request, user, "Comparaison impossible", exc)
        return render(request, "registre_diff.html", utilisateur=user, diff=diff,
                      lot=diff.lot or lot, imports=imports,
                      lots=sorted({i["lot"] for i in imports}))

    @app.get("/registre/diff.xlsx", include_in_schema=False)
    def diff_xlsx(request: Request, user: User, lot: str = "",
                  avant: int | None = None, apres: int | None = None) -> Response:
        try:
            diff, _ = diff_of(lot, avant, apres)
        except QpvGeoError as exc:
            return error_page(request, user, "Comparaison impossible", exc)
        with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp:
            data = export_diff(diff, Path(tmp) / "diff.xlsx").read_bytes()
        name = f"diff-{diff.avant or 0}-{diff.apres}.xlsx"
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})

    def imports_state(imports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each import with ``courant`` (its lot's import in force) and, when it was
        withdrawn or replaced, the lot's import in force now."""
        courants = {}
        for i in imports:
            if i["annulation"] is None:
                courants[i["lot"]] = i["id"]
        return [i | {"courant": courants.get(i["lot"]) == i["id"],
                     "courant_du_lot": courants.get(i["lot"])} for i in imports]

    def imports_page(request: Request, user: str | None, *, status: int = 200,
                     **extra: Any) -> Response:
        with open_registre() as reg:
            imports = imports_state(reg.imports())
        annule = request.query_params.get("annule", "")
        fait = next((i for i in imports if str(i["id"]) == annule and i["annulation"]), None)
        return render(request, "registre_imports.html", status=status, utilisateur=user,
                      imports=list(reversed(imports)), annule=fait, **extra)

    @app.get("/registre/imports", response_class=HTMLResponse, include_in_schema=False)
    def page_imports(request: Request, user: User) -> Response:
        return imports_page(request, user)

    def withdrawal_page(request: Request, user: str | None, numero: str, *,
                        error: dict[str, Any] | None = None, motif: str = "") -> Response:
        """The confirmation step: what withdrawing import n° ``numero`` will do."""
        with open_registre() as reg:
            imports = imports_state(reg.imports())
        imp = next((i for i in imports if str(i["id"]) == numero.strip()), None)
        if imp is None:
            shown = numero.strip()[:20] + ("…" if len(numero.strip()) > 20 else "")
            error = error or {"message": f"Import n° {shown or '?'} inconnu.",
                              "hint": "Choisissez l'import à annuler dans la liste des "
                              "imports."}
            return imports_page(request, user, status=400, error=error)
        previous = next((i for i in reversed(imports) if i["lot"] == imp["lot"]
                         and i["id"] < imp["id"] and i["annulation"] is None), None)
        return render(request, "registre_annuler.html", status=400 if error else 200,
                      utilisateur=user, imp=imp, precedent=previous, error=error,
                      motif=motif)

    @app.get("/registre/annuler", response_class=HTMLResponse, include_in_schema=False)
    def page_annuler(request: Request, user: User) -> Response:
        return withdrawal_page(request, user, request.query_params.get("import", ""))

    @app.post("/registre/annuler", include_in_schema=False)
    async def post_annuler(request: Request, user: User) -> Response:
        """Withdraw an import (after the confirmation page): who and why are required."""
        form = await request.form(max_files=0, max_fields=6, max_part_size=4096)
        _check_csrf(request, form)
        numero = str(form.get("import") or "")
        motif = str(form.get("motif") or "").strip()[:2000]

        def run() -> Any:
            with open_registre() as reg:
                return reg.annuler_import(numero, auteur=auteur_of(user, form, request),
                                          motif=motif)

        try:
            done = await run_in_threadpool(run)
        except QpvGeoError as exc:
            error = _web_error(exc)
            resp = await run_in_threadpool(lambda: withdrawal_page(
                request, user, numero, error=error, motif=motif))
            return signed(resp, request, user, form)
        return signed(RedirectResponse(f"/registre/imports?annule={done.import_id}",
                                       status_code=303), request, user, form)

    @app.get("/registre/export.xlsx", include_in_schema=False)
    def export_xlsx(request: Request, user: User) -> Response:
        with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp, \
                open_registre() as reg:
            data = export_registre(reg, Path(tmp) / "registre.xlsx").read_bytes()
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                        headers={"Content-Disposition": 'attachment; filename="registre.xlsx"',
                                 "Cache-Control": "no-store"})

    @app.get("/registre/fiche", include_in_schema=False)
    def fiche(request: Request, user: User, id: str = "", format: str = "pdf", lot: str = "",
              dossier: str = "") -> Response:
        where = {"lot": lot or None, "dossier": dossier or None}
        try:
            with open_registre() as reg:
                if format == "html":
                    return HTMLResponse(fiche_html(reg, id, **where), headers={
                        "Cache-Control": "no-store", "Content-Security-Policy": FICHE_CSP})
                data = fiche_pdf_bytes(reg, id, **where)
        except RegistreError as exc:  # an unknown site; a missing PDF library goes up as is
            return error_page(request, user, "Fiche impossible", exc)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in id)[:60] or "site"
        return Response(data, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="fiche-{safe}.pdf"',
            "Cache-Control": "no-store"})


__all__ = ["AUTEUR_COOKIE", "CSRF_COOKIE", "Access", "add_registre_routes", "site_payload"]
