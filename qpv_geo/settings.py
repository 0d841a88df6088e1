"""Every option of qpv-geo in one frozen dataclass, each overridable by an environment variable."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from qpv_geo.exceptions import SettingsError

#: Official national QPV file (data.gouv.fr dataset « Quartiers prioritaires de la politique de la
#: ville (QPV) », resource 942d4ee8-8142-4556-8ea1-335537ce1119: zip of GeoJSON + Shapefile).
QPV_OFFICIAL_URL = "https://www.data.gouv.fr/fr/datasets/r/942d4ee8-8142-4556-8ea1-335537ce1119"
#: sha256 of ``GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson`` inside that zip.
QPV_OFFICIAL_SHA256 = "c8d2c3e3850f2271836bad57fe3181acbfa910701718793769f17c753217c09f"
#: BAN address file of the Loire (format « BAN CSV », one line per address).
ADRESSES_OFFICIAL_URL = "https://adresse.data.gouv.fr/data/ban/adresses/latest/csv/adresses-42.csv.gz"
#: Géoplateforme geocoding service (successor of api-adresse.data.gouv.fr, same contract).
BAN_DEFAULT_URL = "https://data.geopf.fr/geocodage"
#: Public company directory (« API Recherche d'entreprises », DINUM), ``GET /search?q=SIREN``.
ANNUAIRE_DEFAULT_URL = "https://recherche-entreprises.api.gouv.fr"
#: Geocoders: ``auto`` (the installed BAN file, else the online service), ``local`` (the
#: installed BAN file), ``ban`` (the online service), ``demo`` (the demonstration file).
GEOCODERS = ("auto", "local", "ban", "demo")
#: SIREN of Saint-Étienne Métropole (EPCI).
SIREN_SEM = "244200770"
_TERRITOIRE = re.compile(r"^(\d{9}|\d{5}|2[ABab]\d{3}|[Ff][Rr][Aa][Nn][Cc][Ee])$")


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
    #: Distance (m) to a QPV/QVA edge under which the verdict is « à vérifier », forced for
    #: every point; ``None`` (default): the margin of each point follows the evidence (edge
    #: precision of the perimeter + position uncertainty of the point, see docs/marges.md).
    marge_m: float | None = None
    #: Position uncertainty (m) of coordinates given without one (see docs/marges.md).
    precision_point_m: float = 10.0
    #: Bounded search radius (m) for the nearest QPV of a point outside every QPV.
    rayon_recherche_m: float = 3000.0
    #: Tolerance (m) on the coarse commune outlines for « hors territoire SEM ».
    tolerance_territoire_m: float = 150.0
    #: Geocoder used for addresses (:data:`GEOCODERS`): ``auto`` (default) = the installed BAN
    #: file if any, else the online service; the demonstration file only with ``demo``.
    geocoder: str = "auto"
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
    #: Reading limits of a sites file (bounded work on hostile files; generous for real ones):
    #: cells of an XLSX sheet, rows of a file, characters of one cell, uncompressed size (MB)
    #: of an XLSX and ratio uncompressed / compressed of its members.
    max_cellules: int = 50_000_000
    max_lignes: int = 2_000_000
    max_caracteres_cellule: int = 1_000_000
    max_xlsx_decompresse_mb: float = 2_000.0
    max_ratio_compression: float = 200.0
    #: Largest uncompressed member (MB) extracted from a downloaded zip (``data update``).
    max_zip_decompresse_mb: float = 2_000.0
    #: Web: extra origins allowed to POST forms (comma-separated, e.g.
    #: ``https://qpv.example.org``); the served host is always allowed.
    origines_autorisees: str = ""
    #: Web: seconds a slow client may take to send its request headers / keep a connection idle.
    delai_client_s: float = 20.0
    #: Year of the call for projects (actions must take place in it); 0 = the current year.
    annee_appel: int = 0
    #: « API Recherche d'entreprises » (company directory, no key) for the porteur criterion.
    annuaire_url: str = ANNUAIRE_DEFAULT_URL
    #: Web: accounts file of the register's pages (``nom:empreinte`` lines, see ``qpv-geo
    #: registre compte``); empty: pages open only when the server listens on 127.0.0.1.
    registre_comptes: str = ""
    #: Web: address the server listens on (set by ``qpv-geo serve --host``).
    ecoute: str = "127.0.0.1"
    #: Territory checked (``--territoire``): an EPCI SIREN (default: Saint-Étienne Métropole),
    #: a commune INSEE code, or ``france`` (see :mod:`qpv_geo.reference.territories`).
    territoire: str = SIREN_SEM
    #: Web: folder where the server keeps the /lot results and uploads and the form secret,
    #: shared by its worker processes; empty: ``<cache_dir>/web/serveur`` (``qpv-geo serve``
    #: uses one per port).
    dossier_serveur: str = ""
    #: Web: secret signing the /lot form tokens (the same for every worker); empty: made once
    #: and kept in the server folder.
    secret_formulaires: str = ""

    def __post_init__(self) -> None:
        if not _TERRITOIRE.match(str(self.territoire).strip().replace(" ", "")):
            raise SettingsError(f"Territoire inconnu : « {self.territoire} ».",
                                hint="Donnez un SIREN d'EPCI (9 chiffres), un code INSEE de "
                                "commune (5 caractères) ou « france » (--territoire ou "
                                "QPV_GEO_TERRITOIRE).")
        for name, (low, high, low_open) in _RANGES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(
                    f"Réglage {name} : « {value} » n'est pas un nombre.",
                    hint=f"Donnez un nombre entre {_fr(low)} et {_fr(high)}.")
            if not math.isfinite(value) or value < low or value > high or (
                    low_open and value == low):
                bound = f"plus grand que {_fr(low)}" if low_open else f"au moins {_fr(low)}"
                raise SettingsError(
                    f"Réglage {_LABELS.get(name, name)} : « {_fr(value)} » hors des valeurs "
                    f"admises ({bound} et au plus {_fr(high)}).",
                    hint=f"Corrigez l'option ou la variable QPV_GEO_{name.upper()}.")
        if str(self.geocoder).strip().lower() not in GEOCODERS:
            raise SettingsError(f"Géocodeur inconnu : « {self.geocoder} ».",
                                hint="Choisissez auto (fichier BAN installé, sinon service en "
                                "ligne), local (fichier BAN installé), ban (service en ligne) "
                                "ou demo (fichier de démonstration) (--geocoder ou "
                                "QPV_GEO_GEOCODER).")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``QPV_GEO_*`` environment variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QPV_GEO_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = _OPTIONAL.get(f.name) or type(getattr(_DEFAULTS, f.name))
            if kind is bool:
                values[f.name] = raw.strip().lower() in {"1", "true", "oui", "yes"}
            elif issubclass(kind, Path):
                values[f.name] = Path(raw).expanduser()
            elif kind in (int, float):
                values[f.name] = _number(raw, kind, f.name)
            else:
                values[f.name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _fr(value: float) -> str:
    """A number as a French reader writes it (decimal comma, no ``.0``)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return str(value).replace(".", ",")


def _number(raw: str, kind: type, name: str) -> float | int:
    """An environment variable as a number (decimal comma accepted), or a French error."""
    text = raw.strip().replace(",", ".").replace("\u202f", "").replace(" ", "")
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"Variable QPV_GEO_{name.upper()} : « {raw} » n'est pas un nombre.",
                            hint="Corrigez ou supprimez cette variable d'environnement."
                            ) from None
    if kind is int:
        if not math.isfinite(value) or not value.is_integer():
            raise SettingsError(f"Variable QPV_GEO_{name.upper()} : « {raw} » n'est pas un "
                                "nombre entier.",
                                hint="Corrigez ou supprimez cette variable d'environnement.")
        return int(value)
    return value


#: Allowed range of every numeric setting: (lowest, highest, lowest excluded).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "marge_m": (0.0, 1_000.0, False),
    "precision_point_m": (0.0, 1_000.0, False),
    "rayon_recherche_m": (0.0, 50_000.0, True),
    "tolerance_territoire_m": (0.0, 5_000.0, False),
    "ban_rate_limit": (0.0, 1_000.0, True),
    "score_min": (0.0, 1.0, False),
    "max_upload_mb": (0.0, 10_000.0, True),
    "max_batch_items": (1, 1_000_000, False),
    "timeout_s": (0.0, 3_600.0, True),
    "max_cellules": (1, 10_000_000_000, False),
    "max_lignes": (1, 1_000_000_000, False),
    "max_caracteres_cellule": (1, 1_000_000_000, False),
    "max_xlsx_decompresse_mb": (0.0, 1_000_000.0, True),
    "max_ratio_compression": (1.0, 100_000.0, False),
    "max_zip_decompresse_mb": (0.0, 1_000_000.0, True),
    "delai_client_s": (0.0, 3_600.0, True),
    "annee_appel": (0, 2_100, False),
}
#: Numeric settings that may be None (unset), with their type.
_OPTIONAL: dict[str, type] = {"marge_m": float}
#: How the error names a setting that has a CLI option.
_LABELS = {"marge_m": "marge (m) (--marge, QPV_GEO_MARGE_M)",
           "precision_point_m": "précision du point (m) (--precision-point, "
                                "QPV_GEO_PRECISION_POINT_M)",
           "rayon_recherche_m": "rayon de recherche (m) (QPV_GEO_RAYON_RECHERCHE_M)"}


_DEFAULTS = Settings(data_dir=Path("."), cache_dir=Path("."))
