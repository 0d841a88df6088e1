"""Security middlewares (pure ASGI: no per-request task overhead).

Security headers (CSP and friends) on every response, a body-size cap that answers 413
before reading an oversized body (by Content-Length) or as soon as the stream goes over it,
a request-forgery guard (the ``Origin``/``Host`` of every POST checked against the served
host and :attr:`Settings.origines_autorisees`, and a signed token in the /lot form), and a
deadline for slow request bodies (408). For the register: the ``Host``/``Origin`` check of a
loopback server on every method (:func:`loopback_refusal`, DNS rebinding), the sign-in rate
limit and lockout (:class:`LoginGuard`), and the uploaded file names (:func:`upload_name`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException as StarletteHTTPException

from qpv_geo.exceptions import InputFileError
from qpv_geo.geocoding.messages import CONSEILS

#: Body cap (bytes) of JSON requests, per batch item, plus a fixed allowance.
JSON_BYTES_PER_ITEM = 1024
JSON_BYTES_BASE = 64 * 1024
#: Multipart overhead allowed on top of the file itself (boundaries, other fields).
MULTIPART_SLACK = 64 * 1024
#: The routes that take a file, all under the same cap (``Settings.max_upload_mb``), with
#: what to do with a bigger one.
_UPLOAD_PATHS = {
    "/lot": CONSEILS["lot_trop_gros"].web,
    "/registre/import": CONSEILS["registre_trop_gros"].web,
}

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


class TooLarge(StarletteHTTPException):
    """Raised while reading a body that goes over the cap."""

    def __init__(self, limit: int, upload: bool, shown: int | None = None,
                 path: str = "/lot") -> None:
        if upload:
            msg = f"Fichier trop volumineux : la limite est de {_fmt_size(shown or limit)}."
            hint = ("Découpez le fichier en plusieurs lots, ou " + _UPLOAD_PATHS.get(
                path, _UPLOAD_PATHS["/lot"]) + ".")
        else:
            msg = f"Requête trop volumineuse (plus de {_fmt_size(limit)})."
            hint = "Envoyez moins de lieux par requête (voir max_batch_items)."
        super().__init__(status_code=413, detail=msg)
        self.hint = hint


class SecurityHeaders:
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


class BodyLimit:
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
        path = scope["path"]
        upload = path in _UPLOAD_PATHS
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
            response = self.render(path, TooLarge(limit, upload, self.upload_shown, path))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(limit, upload, self.upload_shown, path)
            return message

        await _answer_refusal(self.app, scope, receive, limited_receive, send, self.render,
                              TooLarge)


class Refused(StarletteHTTPException):
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


class OriginGuard:
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
            exc = Refused(403, f"Requête refusée : {problem}.",
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


def token_refused() -> Refused:
    """The 403 of a browser form post without a valid token."""
    return Refused(403, "Formulaire expiré ou venu d'une autre page : fichier non traité.",
                    "Rechargez la page /lot et déposez le fichier à nouveau.")


def loopback_refusal(scope: dict) -> Refused | None:
    """Why a request to a server that answers on the loopback only is refused (``None``: it
    is not), on every method: its ``Host`` must be one of the loopback names with the port
    the server listens on, and its ``Origin``, when the browser sends one, the same. A page
    of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own
    name as ``Host``: without this check it could read the register."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    server = scope.get("server")
    s_port = int(server[1]) if server and server[1] else None
    served = _LOOPBACK | ({str(server[0]).lower()} if server else set())
    default_port = 443 if scope.get("scheme") == "https" else 80
    raw_host = headers.get(b"host", "")
    host, port = _host_port(raw_host, default_port)
    hint = ("Ouvrez le registre à son adresse sur ce poste (http://127.0.0.1:PORT/registre, "
            "affichée au démarrage du serveur), depuis ses propres pages. Pour l'ouvrir sous un "
            "autre nom, demandez à l'administrateur de qpv-geo d'activer les comptes du "
            "registre (réglage QPV_GEO_REGISTRE_COMPTES).")
    if host not in served or (s_port is not None and port != s_port):
        return Refused(403, f"Requête refusée : l'adresse demandée ({raw_host[:80] or '?'}) "
                        "n'est pas celle de ce poste.", hint)
    origin = headers.get(b"origin")
    if origin is not None:
        parts = urlsplit(origin)
        o_default = 443 if parts.scheme == "https" else 80
        o_host = _host_port(parts.netloc, o_default) if parts.netloc else ("", 0)
        if o_host[0] not in served or o_host[1] != port:
            return Refused(403, f"Requête refusée : la page d'origine ({origin[:80]}) est "
                            "un autre site.", hint)
    return None


class LoginGuard:
    """Failed sign-ins counted per account name and per client address.

    After ``max_failures`` failures in a row a name is locked for ``lock_s`` seconds, twice
    as long at each new lock (at most ``max_lock_s``); a client address that fails
    ``per_client`` times within ``window_s`` waits until the oldest failure leaves the
    window. Known and unknown names are counted alike, so a lock says nothing about whether
    an account exists. A success clears its name's count (not its address's: one valid
    account must not reset the guessing of others). Counts live in memory, per process.
    """

    def __init__(self, *, max_failures: int = 5, lock_s: float = 60.0,
                 max_lock_s: float = 900.0, per_client: int = 20, window_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.max_failures = max_failures
        self.lock_s = lock_s
        self.max_lock_s = max_lock_s
        self.per_client = per_client
        self.window_s = window_s
        self.clock = clock
        self.max_entries = max_entries
        #: name → [failures in a row, locked until, locks so far]
        self._names: dict[str, list[float]] = {}
        self._clients: dict[str, collections.deque[float]] = {}

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().casefold()[:200]

    def _trim(self, table: dict[str, Any], now: float) -> None:
        """Bound the memory a flood of names or addresses takes: past ``max_entries``,
        the oldest half of the entries that are not locked goes (a flood must not free a
        locked name), then the oldest of all if that is not enough."""
        if len(table) <= self.max_entries:
            return
        target = self.max_entries // 2
        if table is self._names:
            for key in [k for k, st in table.items() if st[1] <= now]:
                if len(table) <= target:
                    return
                del table[key]
        for key in list(table)[:max(0, len(table) - target)]:
            del table[key]

    def wait_s(self, name: str, client: str) -> float:
        """Seconds before ``name`` may try again from ``client`` (0: now)."""
        now = self.clock()
        wait = 0.0
        state = self._names.get(self._key(name))
        if state is not None:
            wait = max(wait, state[1] - now)
        times = self._clients.get(client)
        if times is not None:
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.per_client:
                wait = max(wait, times[0] + self.window_s - now)
        return max(0.0, wait)

    def failed(self, name: str, client: str) -> None:
        """Count a failed sign-in."""
        now = self.clock()
        state = self._names.setdefault(self._key(name), [0, 0.0, 0])
        state[0] += 1
        if state[0] >= self.max_failures:
            state[1] = now + min(self.lock_s * 2 ** state[2], self.max_lock_s)
            state[2] += 1
            state[0] = 0
        self._clients.setdefault(client, collections.deque()).append(now)
        self._trim(self._names, now)
        self._trim(self._clients, now)

    def succeeded(self, name: str) -> None:
        """Forget the failures of ``name``."""
        self._names.pop(self._key(name), None)


def locked_out(wait_s: float) -> StarletteHTTPException:
    """The 429 of a sign-in tried while its name or address is locked."""
    minutes = max(1, int(-(-wait_s // 60)))
    return StarletteHTTPException(
        429, detail=f"Trop d'essais de connexion : réessayez dans {minutes} minute"
        f"{'s' if minutes > 1 else ''}. Si vous avez oublié votre mot de passe, demandez à "
        "la personne qui gère le serveur de recréer votre compte.",
        headers={"Retry-After": str(max(1, int(-(-wait_s // 1))))})


#: The formats the upload routes take (the file is saved under a fixed name with this suffix).
UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx")


def upload_name(filename: str, suffixes: tuple[str, ...] = UPLOAD_SUFFIXES) -> tuple[str, str]:
    """``(name, suffix)`` of an uploaded file, the name without any folder; an
    :class:`InputFileError` (400) for a name holding control characters (a NUL byte cannot
    be a file name) or a format not in ``suffixes``."""
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise InputFileError("Nom de fichier invalide : il contient un caractère de contrôle.",
                             hint="Renommez le fichier (lettres, chiffres, tirets) puis "
                             "déposez-le à nouveau.")
    name = PurePosixPath(filename.replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in suffixes:
        raise InputFileError(f"{name} : format « {suffix or 'sans extension'} » non pris en "
                             "charge.", hint="Enregistrez la feuille en CSV (UTF-8, séparateur "
                             ";) ou en XLSX.")
    return name, suffix


class SlowBody:
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
                raise Refused(408, "Envoi trop lent : la connexion a été fermée.",
                               "Réessayez depuis une connexion plus stable.") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await _answer_refusal(self.app, scope, receive, timed_receive, send, self.render,
                              Refused, only=lambda exc: exc.status_code == 408)


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


__all__ = ["CSP", "JSON_BYTES_BASE", "JSON_BYTES_PER_ITEM", "MULTIPART_SLACK", "UPLOAD_SUFFIXES",
           "BodyLimit", "FormTokens", "LoginGuard", "OriginGuard", "Refused", "SecurityHeaders",
           "SlowBody", "TooLarge", "from_browser", "locked_out", "loopback_refusal",
           "token_refused", "upload_name"]
