"""Serving the application with uvicorn, with deadlines for slow clients.

uvicorn closes idle keep-alive connections but waits for ever for the headers of a request
(« slowloris »): :class:`TimedH11Protocol` closes a connection whose request headers are not
complete within ``Settings.delai_client_s``. Slow bodies are handled by the ``_SlowBody``
middleware (408), and a stopped server cancels the files still being checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def timed_protocol(delay_s: float) -> type[H11Protocol]:
    """An h11 protocol class closing connections whose request headers take over
    ``delay_s`` seconds."""

    class TimedH11Protocol(H11Protocol):
        _headers_deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._headers_deadline is None:
                self._headers_deadline = self.loop.call_later(delay_s, self._too_slow)

        def _disarm(self) -> None:
            if self._headers_deadline is not None:
                self._headers_deadline.cancel()
                self._headers_deadline = None

        def _too_slow(self) -> None:
            self._headers_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._arm()  # the headers of a (next) request are arriving
            super().data_received(data)

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:
                self._disarm()  # headers complete: the body has its own deadline

    return TimedH11Protocol


def run(app: Any, *, host: str, port: int, delay_s: float, **kwargs: Any) -> None:
    """``uvicorn.run`` with the deadlines: headers and idle connections ``delay_s``,
    graceful shutdown at most 10 s (then running work is cancelled)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, http=timed_protocol(delay_s),
                timeout_keep_alive=max(1, int(delay_s)), timeout_graceful_shutdown=10,
                **kwargs)


__all__ = ["run", "timed_protocol"]
