"""Security middlewares (pure ASGI: no per-request task overhead).

Security headers (CSP and friends) on every response, and a body-size cap that answers 413
before reading an oversized body (by Content-Length) or as soon as the stream goes over it.
"""

from __future__ import annotations

from typing import Any

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


__all__ = ["CSP"]
