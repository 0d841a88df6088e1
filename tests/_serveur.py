"""uvicorn serving an app on a free loopback port, in a thread (browser and web tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
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
