"""qpv-geo: is this place in a quartier prioritaire (QPV) of Saint-Étienne Métropole?

The import stays light: folium, FastAPI and geopandas-heavy modules are imported by the
functions that need them, and the package version is read only when asked for.
"""

from __future__ import annotations

from typing import Any

from qpv_geo.exceptions import QpvGeoError
from qpv_geo.settings import Settings

__all__ = ["QpvGeoError", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    """``qpv_geo.__version__``, read from the installed metadata on first use (importing
    importlib.metadata costs more than the rest of this package's import)."""
    if name != "__version__":
        raise AttributeError(f"module 'qpv_geo' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("qpv-geo")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        value = "0.0.0"
    globals()["__version__"] = value
    return value
