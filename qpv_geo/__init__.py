"""qpv-geo: is this place in a quartier prioritaire (QPV) of Saint-Étienne Métropole?

The import stays light: folium, FastAPI and geopandas-heavy modules are imported by the
functions that need them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qpv-geo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

from qpv_geo.exceptions import QpvGeoError
from qpv_geo.settings import Settings

__all__ = ["QpvGeoError", "Settings", "__version__"]
