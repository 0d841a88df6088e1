"""Web pages of the instruction register (``/registre``): sites to review with a decision
form, dossiers and their criteria, import of a new file version with its diff, re-check,
history, exports and instruction sheets. A thin shell over :mod:`qpv_geo.registre`.

Access: these pages change data, so they need an identity. With an accounts file
(``QPV_GEO_REGISTRE_COMPTES``: ``nom:empreinte`` lines, PBKDF2 hashes) every page asks for
HTTP Basic credentials and decisions are signed with the account's name. Without one, the
pages answer only when the server listens on the loopback (``qpv-geo serve`` on 127.0.0.1)
and the request comes from this computer; otherwise 403 saying how to configure accounts.
Every form carries a CSRF token (double submit: a random cookie ``SameSite=Strict`` and the
same value in a hidden field). The checker pages (``/``, ``/lot``, the API) stay open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qpv_geo.exceptions import InputFileError, QpvGeoError
from qpv_geo.libelles import libelles_reglages
from qpv_geo.registre import DECISIONS, ETATS, Registre
from qpv_geo.registre.comptes import load_comptes, verify_password
from qpv_geo.registre.criteres import criteres_de
from qpv_geo.settings import Settings

CSRF_COOKIE = "qpv_registre_csrf"
REALM = "qpv-geo registre"
_UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx")
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
    """Who is asking: an account (HTTP Basic), or nobody on a loopback-only server."""

    def __init__(self, settings: Settings) -> None:
        self.comptes = load_comptes(settings.registre_comptes) \
            if settings.registre_comptes else {}
        self.local = _loopback(settings.ecoute)
        self._ok: dict[str, str] = {}

    @property
    def requires_login(self) -> bool:
        """True when the pages ask for credentials."""
        return bool(self.comptes)

    def identify(self, request: Request) -> str | None:
        """The account name, ``None`` for an anonymous local user; raises 401/403."""
        if self.comptes:
            return self._basic(request.headers.get("authorization", ""))
        client = request.client.host if request.client else None
        if not (self.local and _loopback(client)):
            raise StarletteHTTPException(
                403, detail="Le registre d'instruction exige des comptes dès que le serveur "
                "est joignable depuis le réseau : définissez QPV_GEO_REGISTRE_COMPTES "
                "(lignes créées par « qpv-geo registre compte NOM »).")
        return None

    def _basic(self, header: str) -> str:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value:
            key = hashlib.sha256(value.encode()).hexdigest()
            if key in self._ok:
                return self._ok[key]
            try:
                user, _, password = base64.b64decode(value, validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            stored = self.comptes.get(user)
            if stored and verify_password(password, stored):
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


def add_registre_routes(app: FastAPI, settings: Settings, templates: Jinja2Templates,
                        page_context: Any) -> None:
    """Add the ``/registre`` pages to ``app`` (called by :func:`qpv_geo.web.app.create_app`)."""
    access = Access(settings)

    def open_registre() -> Registre:
        return Registre(settings=settings)

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        context = page_context(page="registre", csrf=token, utilisateur=ctx.pop(
            "utilisateur", None), connexion=access.requires_login, decisions=DECISIONS,
            etats=ETATS, criteres=criteres_de(libelles_reglages(settings)), **ctx)
        resp = templates.TemplateResponse(request, name, context, status_code=status)
        resp.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict",
                        path="/registre", secure=request.url.scheme == "https")
        resp.headers["Cache-Control"] = "no-store"
        # With « no-referrer », Chromium sends « Origin: null » on form posts, which the
        # origin guard refuses; « same-origin » still gives nothing to other sites.
        resp.headers["Referrer-Policy"] = "same-origin"
        return resp

    def auteur_of(user: str | None, form: Any) -> str:
        return user or str(form.get("auteur") or "").strip()[:200]

    def registre_page(request: Request, user: str | None, *, status: int = 200,
                      **extra: Any) -> Response:
        tous = request.query_params.get("tous") == "1"
        with open_registre() as reg:
            sites = reg.sites(a_revoir=not tous)
            tous_sites = reg.sites() if not tous else sites
            dossiers = reg.dossiers()
            imports = reg.imports()
        return render(request, "registre.html", status=status, utilisateur=user, sites=sites,
                      tous=tous, total=len(tous_sites),
                      a_revoir=sum(1 for s in tous_sites if s.a_revoir),
                      bloques=[d for d in dossiers if d.etat == "bloquant"],
                      dossiers_total=len(dossiers), dernier_import=imports[-1] if imports
                      else None, **extra)

    @app.get("/registre", response_class=HTMLResponse, include_in_schema=False)
    def page_registre(request: Request) -> Response:
        user = access.identify(request)
        fait = request.query_params.get("decide")
        return registre_page(request, user, fait=fait)

    @app.post("/registre/decision", include_in_schema=False)
    async def post_decision(request: Request) -> Response:
        user = access.identify(request)
        form = await request.form(max_files=0, max_fields=8, max_part_size=8192)
        _check_csrf(request, form)
        site = str(form.get("site") or "")
        retour = "site" if form.get("retour") == "site" else "liste"

        def decide() -> None:
            with open_registre() as reg:
                reg.decider(site, str(form.get("decision") or ""),
                            str(form.get("motif") or "")[:2000], auteur_of(user, form))

        try:
            await run_in_threadpool(decide)
        except QpvGeoError as exc:
            error = {"message": str(exc), "hint": exc.hint}
            if retour == "site":
                return await run_in_threadpool(site_page, request, user, site, error)
            return await run_in_threadpool(lambda: registre_page(request, user, status=400,
                                                                 error=error))
        target = (f"/registre/site?id={quote(site)}&decide=1" if retour == "site"
                  else f"/registre?decide={quote(site)}")
        return RedirectResponse(target, status_code=303)

    @app.post("/registre/import", include_in_schema=False)
    async def post_import(request: Request) -> Response:
        user = access.identify(request)
        form = await request.form(max_files=1, max_fields=6, max_part_size=8192)
        try:
            _check_csrf(request, form)
            upload = form.get("fichier")
            if upload is None or isinstance(upload, str) or not upload.filename:
                raise InputFileError("Aucun fichier reçu.",
                                     hint="Choisissez un fichier CSV ou XLSX puis cliquez sur "
                                     "« Importer ».")
            suffix = Path(upload.filename).suffix.lower()
            if suffix not in _UPLOAD_SUFFIXES:
                raise InputFileError(f"Format « {suffix or 'sans extension'} » non pris en "
                                     "charge.", hint="Enregistrez la feuille en CSV ou XLSX.")
            data = await upload.read()
            lot = str(form.get("lot") or "").strip()[:100] or "principal"
            auteur = auteur_of(user, form) or None
            name = Path(upload.filename).name

            def run() -> Any:
                with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp:
                    path = Path(tmp) / (Path(name).stem[:80] + suffix)
                    path.write_bytes(data)
                    with open_registre() as reg:
                        return reg.importer(path, lot=lot, auteur=auteur)

            result = await run_in_threadpool(run)
        except QpvGeoError as exc:
            hint = exc.hint
            if hint and re.search(r"(^|\s|\()--[a-z]", hint):  # no command-line option here
                hint = ("Corrigez le fichier dans le tableur (ligne des noms de colonnes, "
                        "séparateur, colonnes), puis importez-le à nouveau.")
            error = {"message": str(exc), "hint": hint}
            return await run_in_threadpool(lambda: registre_page(request, user, status=400,
                                                                 error=error))
        finally:
            await form.close()
        return await run_in_threadpool(lambda: registre_page(request, user,
                                                             resultat_import=result))

    @app.post("/registre/reverifier", include_in_schema=False)
    async def post_reverifier(request: Request) -> Response:
        user = access.identify(request)
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        _check_csrf(request, form)

        def run() -> Any:
            with open_registre() as reg:
                return reg.reverifier(auteur=auteur_of(user, form) or None)

        result = await run_in_threadpool(run)
        return await run_in_threadpool(lambda: registre_page(request, user,
                                                             reverification=result))

    def site_page(request: Request, user: str | None, site_id: str,
                  error: dict[str, Any] | None = None) -> Response:
        with open_registre() as reg:
            site = reg.site(site_id)
            historique = reg.historique(site_id)
            dossier = next((d for d in reg.dossiers() if d.dossier == site.dossier
                            and d.lot == site.lot), None)
        return render(request, "registre_site.html", status=400 if error else 200,
                      utilisateur=user, site=site, historique=historique, dossier=dossier,
                      error=error, fait=request.query_params.get("decide") == "1")

    @app.get("/registre/site", response_class=HTMLResponse, include_in_schema=False)
    def page_site(request: Request, id: str = "") -> Response:
        user = access.identify(request)
        return site_page(request, user, id)

    @app.get("/registre/dossiers", response_class=HTMLResponse, include_in_schema=False)
    def page_dossiers(request: Request) -> Response:
        user = access.identify(request)
        with open_registre() as reg:
            dossiers = reg.dossiers()
        return render(request, "registre_dossiers.html", utilisateur=user, dossiers=dossiers)

    @app.post("/registre/bilan", include_in_schema=False)
    async def post_bilan(request: Request) -> Response:
        user = access.identify(request)
        form = await request.form(max_files=0, max_fields=6, max_part_size=4096)
        _check_csrf(request, form)
        dossier = str(form.get("dossier") or "")

        def run() -> None:
            with open_registre() as reg:
                reg.marquer_bilan(dossier, form.get("fourni") == "oui", auteur_of(user, form),
                                  str(form.get("motif") or "").strip()[:500] or None)

        await run_in_threadpool(run)
        return RedirectResponse("/registre/dossiers", status_code=303)

    def diff_of(lot: str, avant: int | None, apres: int | None) -> Any:
        if (avant is None) != (apres is None):
            raise InputFileError("Indiquez deux n° d'import (avant et apres), ou aucun.",
                                 hint="Exemple : /registre/diff?avant=1&apres=2")
        with open_registre() as reg:
            return reg.diff(avant, apres, lot=lot), reg.imports()

    @app.get("/registre/diff", response_class=HTMLResponse, include_in_schema=False)
    def page_diff(request: Request, lot: str = "principal", avant: int | None = None,
                  apres: int | None = None) -> Response:
        user = access.identify(request)
        diff, imports = diff_of(lot, avant, apres)
        return render(request, "registre_diff.html", utilisateur=user, diff=diff, lot=lot,
                      imports=imports)

    @app.get("/registre/diff.xlsx", include_in_schema=False)
    def diff_xlsx(request: Request, lot: str = "principal", avant: int | None = None,
                  apres: int | None = None) -> Response:
        access.identify(request)
        from qpv_geo.registre.exports import export_diff

        diff, _ = diff_of(lot, avant, apres)
        with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp:
            data = export_diff(diff, Path(tmp) / "diff.xlsx").read_bytes()
        name = f"diff-{diff.avant or 0}-{diff.apres}.xlsx"
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})

    @app.get("/registre/export.xlsx", include_in_schema=False)
    def export_xlsx(request: Request) -> Response:
        access.identify(request)
        from qpv_geo.registre.exports import export_registre

        with tempfile.TemporaryDirectory(prefix="qpv-geo-registre-") as tmp, \
                open_registre() as reg:
            data = export_registre(reg, Path(tmp) / "registre.xlsx").read_bytes()
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                        headers={"Content-Disposition": 'attachment; filename="registre.xlsx"',
                                 "Cache-Control": "no-store"})

    @app.get("/registre/fiche", include_in_schema=False)
    def fiche(request: Request, id: str = "", format: str = "pdf") -> Response:
        access.identify(request)
        from qpv_geo.registre.fiche import fiche_html, fiche_pdf_bytes

        with open_registre() as reg:
            if format == "html":
                return HTMLResponse(fiche_html(reg, id), headers={
                    "Cache-Control": "no-store", "Content-Security-Policy": FICHE_CSP})
            data = fiche_pdf_bytes(reg, id)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in id)[:60] or "site"
        return Response(data, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="fiche-{safe}.pdf"',
            "Cache-Control": "no-store"})


__all__ = ["CSRF_COOKIE", "Access", "add_registre_routes"]
