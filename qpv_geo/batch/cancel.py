"""Stopping long work whose requester left: the web layer runs a file in a worker thread
inside :func:`cancellable`; the readers call :func:`check_cancelled` as they go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from qpv_geo.exceptions import OperationCancelled

_LOCAL = threading.local()


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """In this thread, within the block, :func:`check_cancelled` raises once ``event`` is set."""
    previous = getattr(_LOCAL, "event", None)
    _LOCAL.event = event
    try:
        yield
    finally:
        _LOCAL.event = previous


def check_cancelled() -> None:
    """Raise :class:`OperationCancelled` if the current work was cancelled."""
    event = getattr(_LOCAL, "event", None)
    if event is not None and event.is_set():
        raise OperationCancelled("Traitement arrêté : le demandeur est parti.",
                                 hint="Déposez le fichier à nouveau.")


__all__ = ["cancellable", "check_cancelled"]
