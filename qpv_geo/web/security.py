"""Security middlewares (pure ASGI: no per-request task overhead).

Security headers (CSP and friends) on every response, a body-size cap that answers 413
before reading an oversized body (by Content-Length) or as soon as the stream goes over it,
a request-forgery guard (the ``Origin``/``Host`` of every POST checked against the served
host and :attr:`Settings.origines_autorisees`, and a signed token in the /lot form), and a
deadline for slow request bodies (408).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException as StarletteHTTPException

#: Body cap (bytes) of JSON requests, per batch item, plus a fixed allowance.
_JSON_BYTES_PER_ITEM = 1024
_JSON_BYTES_BASE = 64 * 1024
#: Multipart overhead allowed on top of the file itself (boundaries, other fields).
_MULTIPART_SLACK = 64 * 1024

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
        chunked = False
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
            elif k == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            # no body (HTTP/1.1 without Content-Length nor Transfer-Encoding): nothing to
            # count, no wrappers on the way (most GETs: one layer less per message)
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > limit:
            response = self.render(scope["path"], _TooLarge(limit, upload, self.upload_shown))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit, upload, self.upload_shown)
            return message

        await _answer_refusal(self.app, scope, receive, limited_receive, send, self.render,
                              _TooLarge)


class _Refused(StarletteHTTPException):
    """A request refused by a guard, with a French message and what to do."""

    def __init__(self, status: int, message: str, hint: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.hint = hint


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _host_port(netloc: str, default_port: int) -> tuple[str, int]:
    """``("exemple.org", 443)`` from ``exemple.org`` or ``[::1]:8000`` (lower case)."""
    parts = urlsplit("//" + netloc.strip().lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    return host, port if port is not None else default_port


class _OriginGuard:
    """Refuse (403) a POST whose ``Host`` is not the served host nor an allowed origin, or
    whose ``Origin`` (else ``Referer``) is another site: a page from elsewhere cannot make
    the instructor's browser post to the local server (CSRF, DNS rebinding)."""

    def __init__(self, app: Any, *, allowed: str = "", render: Any) -> None:
        self.app = app
        self.render = render
        #: Allowed ``(host, port)`` pairs, and host names allowed on any port (an entry
        #: without a port: behind a reverse proxy the port seen differs from the public one).
        self.allowed: set[tuple[str, int]] = set()
        self.allowed_names: set[str] = set()
        for item in allowed.replace(";", ",").split(","):
            item = item.strip()
            if not item:
                continue
            parts = urlsplit(item if "//" in item else "//" + item)
            host, port = _host_port(parts.netloc, -1)
            if port == -1:
                self.allowed_names.add(host)
            else:
                self.allowed.add((host, port))

    def _is_allowed(self, host: str, port: int) -> bool:
        return host in self.allowed_names or (host, port) in self.allowed

    def _served(self, host: str, port: int, scope: dict) -> bool:
        if self._is_allowed(host, port):
            return True
        server = scope.get("server")
        if not server:  # in-process test clients have no socket
            return host in {"testserver", *_LOOPBACK}
        s_host, s_port = str(server[0]).lower(), int(server[1] or 0)
        if port != s_port:
            return False
        if s_host in _LOOPBACK or s_host in {"0.0.0.0", "::"}:
            return host in _LOOPBACK or host == s_host
        return host == s_host

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        default_port = 443 if scope.get("scheme") == "https" else 80
        host = _host_port(headers.get(b"host", ""), default_port)
        problem = None
        if not self._served(*host, scope):
            problem = f"l'adresse demandée ({headers.get(b'host', '?')[:80]}) n'est pas celle " \
                "du serveur"
        else:
            origin = headers.get(b"origin") or headers.get(b"referer")
            if origin is not None:
                parts = urlsplit(origin)
                o_default = 443 if parts.scheme == "https" else 80
                o_host = _host_port(parts.netloc, o_default) if parts.netloc else ("", 0)
                if o_host != host and not self._is_allowed(*o_host):
                    problem = f"la page d'origine ({origin[:80]}) est un autre site"
        if problem:
            exc = _Refused(403, f"Requête refusée : {problem}.",
                           "Envoyez le formulaire depuis la page de qpv-geo elle-même. Si le "
                           "serveur est publié sous un autre nom, ajoutez-le à "
                           "QPV_GEO_ORIGINES_AUTORISEES.")
            await self.render(scope["path"], exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class FormTokens:
    """Signed, time-limited tokens for the /lot form (a second guard after the origin)."""

    def __init__(self, *, ttl_s: float = 12 * 3600, secret: bytes | None = None) -> None:
        self.ttl_s = ttl_s
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def new(self) -> str:
        """A token for a form rendered now."""
        stamp = str(int(time.time()))
        return f"{stamp}.{self._sign(stamp)}"

    def valid(self, token: object) -> bool:
        """True for a token made by :meth:`new` less than ``ttl_s`` ago."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 64:
            return False
        stamp, sig = token.split(".")
        if not stamp.isdigit() or not hmac.compare_digest(sig, self._sign(stamp)):
            return False
        return 0 <= time.time() - int(stamp) <= self.ttl_s


def from_browser(headers: Any) -> bool:
    """True when a request carries what browsers add (``Origin``, ``Referer``,
    ``Sec-Fetch-Site``): those must carry the form token; scripts need not."""
    return any(headers.get(h) for h in ("origin", "referer", "sec-fetch-site"))


def token_refused() -> _Refused:
    """The 403 of a browser form post without a valid token."""
    return _Refused(403, "Formulaire expiré ou venu d'une autre page : fichier non traité.",
                    "Rechargez la page /lot et déposez le fichier à nouveau.")


class _SlowBody:
    """408 when a request body stalls longer than ``delay_s`` between two chunks (a slow
    client holding a connection and a worker); once the body is complete, nothing changes."""

    def __init__(self, app: Any, *, delay_s: float, render: Any) -> None:
        self.app = app
        self.delay_s = delay_s
        self.render = render

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        complete = False

        async def timed_receive() -> dict:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.delay_s)
            except TimeoutError:
                raise _Refused(408, "Envoi trop lent : la connexion a été fermée.",
                               "Réessayez depuis une connexion plus stable.") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await _answer_refusal(self.app, scope, receive, timed_receive, send, self.render,
                              _Refused, only=lambda exc: exc.status_code == 408)


async def _answer_refusal(app: Any, scope: dict, receive: Any, wrapped_receive: Any, send: Any,
                          render: Any, refusal: type[Exception], *,
                          only: Any = None) -> None:
    """Run *app* with *wrapped_receive*; when it raises *refusal* (and ``only(exc)`` holds)
    before any response has started, answer with ``render(path, exc)`` instead. A refusal
    raised after the response started cannot be answered: it propagates."""
    started = False

    async def tracking_send(message: dict) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, wrapped_receive, tracking_send)
    except refusal as exc:
        if started or (only is not None and not only(exc)):
            raise
        await render(scope["path"], exc)(scope, receive, send)


__all__ = ["CSP", "FormTokens", "from_browser", "token_refused"]
