"""uvicorn serving an app on a free loopback port, in a thread (browser and web tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@contextlib.contextmanager
def served(app: Any, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # websockets' legacy API, unused
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                      daemon=True)
            thread.start()
            deadline = time.monotonic() + timeout_s
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    pytest.fail("uvicorn n'a pas démarré")
                time.sleep(0.05)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
                thread.join(10)
    finally:
        sock.close()


class LoopbackServer:
    """A fake HTTP service of the tests (``fake_ban``, ``fake_annuaire``, ``fake_geo_api``) on a
    free port of 127.0.0.1, served from a thread. The fake names its request handler class by
    :meth:`handler_base`; the handler reaches the fake's state as ``self.fake``."""

    #: path prefix of the service's URL (``url`` ends with it)
    prefix: str = ""

    def handler_base(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Any:
        handler = type("Handler", (self.handler_base(),), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"
