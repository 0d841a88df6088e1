"""Web page and JSON API for instructors (optional extra ``web``: FastAPI, uvicorn).

Importing this package stays light; :func:`create_app` imports FastAPI when called and says
how to install it when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qpv_geo.exceptions import QpvGeoError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qpv_geo.settings import Settings

#: Install hint shown when the ``web`` extra is missing.
INSTALL_HINT = "Installez l'extension web : pip install 'qpv-geo[web]' (ou make install)."


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application (page ``/``, page ``/lot``, JSON API ``/api/v1``).

    Parameters
    ----------
    settings
        Options (upload cap, batch cap, geocoder, margins); default: from the environment.

    Returns
    -------
    FastAPI
        The ASGI application, to run with uvicorn (``qpv-geo serve``).
    """
    try:
        from qpv_geo.web.app import create_app as _create_app
    except ImportError as exc:  # fastapi, starlette, python-multipart
        raise QpvGeoError(f"Le serveur web n'est pas installé ({exc.name} manquant).",
                          hint=INSTALL_HINT) from exc
    return _create_app(settings)


__all__ = ["INSTALL_HINT", "create_app"]
