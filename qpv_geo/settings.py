"""Every option of qpv-geo in one frozen dataclass, each overridable by an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

#: Official national QPV file (data.gouv.fr dataset « Quartiers prioritaires de la politique de la
#: ville (QPV) », resource 942d4ee8-8142-4556-8ea1-335537ce1119: zip of GeoJSON + Shapefile).
QPV_OFFICIAL_URL = "https://www.data.gouv.fr/fr/datasets/r/942d4ee8-8142-4556-8ea1-335537ce1119"
#: sha256 of ``GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson`` inside that zip.
QPV_OFFICIAL_SHA256 = "c8d2c3e3850f2271836bad57fe3181acbfa910701718793769f17c753217c09f"
#: BAN address file of the Loire (format « BAN CSV », one line per address).
ADRESSES_OFFICIAL_URL = "https://adresse.data.gouv.fr/data/ban/adresses/latest/csv/adresses-42.csv.gz"
#: Géoplateforme geocoding service (successor of api-adresse.data.gouv.fr, same contract).
BAN_DEFAULT_URL = "https://data.geopf.fr/geocodage"
#: SIREN of Saint-Étienne Métropole (EPCI).
SIREN_SEM = "244200770"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("qpv-geo", appauthor=False))


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("qpv-geo", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Options of qpv-geo.

    Every field can be set by the environment variable ``QPV_GEO_<FIELD NAME IN CAPITALS>``
    (see :meth:`from_env`).
    """

    #: Where imported/updated reference layers and address files are installed; they take
    #: precedence over the data shipped with the package.
    data_dir: Path = field(default_factory=_default_data_dir)
    #: Downloads, geocoding cache, local geocoder index.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: Distance (m) to a QPV/QVA edge under which the verdict is « à vérifier ».
    marge_m: float = 25.0
    #: Bounded search radius (m) for the nearest QPV of a point outside every QPV.
    rayon_recherche_m: float = 3000.0
    #: Tolerance (m) on the coarse commune outlines for « hors territoire SEM ».
    tolerance_territoire_m: float = 150.0
    #: Geocoder used for addresses: ``local`` (offline, default) or ``ban`` (online service).
    geocoder: str = "local"
    #: Base URL of the BAN / Géoplateforme geocoding service.
    ban_url: str = BAN_DEFAULT_URL
    #: Requests per second allowed towards the online geocoder.
    ban_rate_limit: float = 40.0
    #: Geocoding results with a lower score are « à vérifier ».
    score_min: float = 0.6
    #: Official QPV file URL and expected sha256 of its GeoJSON member (``data update``).
    qpv_url: str = QPV_OFFICIAL_URL
    qpv_sha256: str = QPV_OFFICIAL_SHA256
    #: Official BAN address file of the Loire (``data update --adresses``).
    adresses_url: str = ADRESSES_OFFICIAL_URL
    #: Largest file accepted by the web upload (MB) and largest JSON batch (items).
    max_upload_mb: float = 20.0
    max_batch_items: int = 1000
    #: Network timeout (s).
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``QPV_GEO_*`` environment variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QPV_GEO_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(getattr(_DEFAULTS, f.name))
            if kind is bool:
                values[f.name] = raw.strip().lower() in {"1", "true", "oui", "yes"}
            elif issubclass(kind, Path):
                values[f.name] = Path(raw).expanduser()
            else:
                values[f.name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_DEFAULTS = Settings(data_dir=Path("."), cache_dir=Path("."))
