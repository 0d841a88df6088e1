"""Serving the application with uvicorn, with deadlines for slow clients.

uvicorn closes idle keep-alive connections but waits for ever for the headers of a request
(« slowloris »): :class:`TimedH11Protocol` closes a connection whose request headers are not
complete within ``Settings.delai_client_s``. Slow bodies are handled by the ``SlowBody``
middleware (408), and a stopped server cancels the files still being checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from qpv_geo.settings import Settings


def _no_delay(transport: Any) -> None:
    """Send small responses at once (TCP_NODELAY). asyncio sets it only on sockets whose
    ``proto`` is TCP, and uvicorn's workers share a listening socket made with ``proto`` 0:
    without this, every response waited ≈ 40 ms for the client's delayed ACK (Nagle)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Sweeper:
    """One timer per event loop closing the connections whose request headers are late
    (a timer per request cost ≈ 5 % of the throughput of a cheap route)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: set[TimedH11Protocol] = set()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, proto: TimedH11Protocol) -> None:
        self.waiting.add(proto)
        if self.handle is None:
            self.handle = self.loop.call_later(self._period(proto.delay_s), self.sweep)

    @staticmethod
    def _period(delay_s: float) -> float:
        return max(0.05, min(1.0, delay_s / 4))

    def sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        for proto in list(self.waiting):
            since = proto._headers_since
            if since is None:
                self.waiting.discard(proto)
            elif now - since >= proto.delay_s:
                self.waiting.discard(proto)
                proto._too_slow()
        if self.waiting:
            shortest = min(p.delay_s for p in self.waiting)
            self.handle = self.loop.call_later(self._period(shortest), self.sweep)


_SWEEPERS: dict[asyncio.AbstractEventLoop, _Sweeper] = {}


class TimedH11Protocol(H11Protocol):
    """h11 protocol closing connections whose request headers take over ``delay_s``
    (checked by one :class:`_Sweeper` per loop, at most ``delay_s / 4`` late, ≤ 1 s)."""

    delay_s: float = 20.0
    #: Loop time the headers of the current request began to be awaited (None: not waiting).
    _headers_since: float | None = None

    def _arm(self) -> None:
        if self._headers_since is None:
            self._headers_since = self.loop.time()
            sweeper = _SWEEPERS.get(self.loop)
            if sweeper is None:
                for old in [lp for lp in _SWEEPERS if lp.is_closed()]:
                    del _SWEEPERS[old]
                sweeper = _SWEEPERS[self.loop] = _Sweeper(self.loop)
            sweeper.add(self)

    def _disarm(self) -> None:
        self._headers_since = None  # the sweeper forgets it on its next pass

    def _too_slow(self) -> None:
        self._headers_since = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _no_delay(transport)
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


def timed_protocol(delay_s: float) -> type[H11Protocol]:
    """An h11 protocol class closing connections whose request headers take over
    ``delay_s`` seconds."""
    return type("TimedH11Protocol", (TimedH11Protocol,), {"delay_s": float(delay_s)})


@functools.lru_cache(maxsize=1)
def _delay_from_env() -> float:
    return Settings.from_env().delai_client_s


class EnvTimedH11Protocol(TimedH11Protocol):
    """The protocol of worker processes (uvicorn imports it by name in each worker): the
    delay from ``QPV_GEO_DELAI_CLIENT_S``, as the parent's settings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = _delay_from_env()


#: The application factory the workers import (it reads its settings from QPV_GEO_*).
APP_FACTORY = "qpv_geo.web.app:create_app"


def run(app: Any, *, host: str, port: int, delay_s: float, workers: int = 1,
        **kwargs: Any) -> None:
    """``uvicorn.run`` with the deadlines: headers and idle connections ``delay_s``,
    graceful shutdown at most 10 s (then running work is cancelled).

    With ``workers`` > 1, ``app`` is ignored: each worker process builds its own from
    :data:`APP_FACTORY` and the ``QPV_GEO_*`` environment (the caller puts its settings
    there); they share results and the form secret through the server folder."""
    import uvicorn

    common = {"host": host, "port": port, "timeout_keep_alive": max(1, int(delay_s)),
              "timeout_graceful_shutdown": 10, **kwargs}
    if workers > 1:
        uvicorn.run(APP_FACTORY, factory=True, workers=workers,
                    http=f"{__name__}:EnvTimedH11Protocol", **common)
    else:
        uvicorn.run(app, http=timed_protocol(delay_s), **common)


__all__ = ["APP_FACTORY", "EnvTimedH11Protocol", "TimedH11Protocol", "run", "timed_protocol"]
