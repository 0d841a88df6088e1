"""Geocoding: postal addresses → WGS84 points, with a precision and a score.

One protocol (:class:`Geocoder`), one result type (:class:`GeocodeResult`), two engines:

* :class:`LocalGeocoder` (default, offline): an index of a BAN-format address file restricted
  to the 53 communes of Saint-Étienne Métropole, built once into the cache directory and
  rebuilt when the file's sha256 changes. Without an installed BAN file it uses the shipped
  *demonstration* file (synthetic addresses, ``source="local-demo"``).
* :class:`BanGeocoder` (online): the BAN / Géoplateforme service (``/search`` and
  ``/search/csv``), with retries, a rate limit and a persistent per-address cache.

:func:`reliability_issues` says why a point is not good enough for a confident verdict.
A failure for one address is a result with ``found`` False and a ``motif``; exceptions are for
failures of the whole service (:class:`~qpv_geo.exceptions.GeocoderUnavailable`, …).

Modules: :mod:`~qpv_geo.geocoding.base` (types, text normalisation),
:mod:`~qpv_geo.geocoding.index` and :mod:`~qpv_geo.geocoding.local` (offline geocoder),
:mod:`~qpv_geo.geocoding.ban` (online geocoder), :mod:`~qpv_geo.geocoding.files` (address
files); every name is importable from here.
"""

from __future__ import annotations

from qpv_geo.exceptions import GeocoderNotConfigured
from qpv_geo.geocoding.ban import BanGeocoder
from qpv_geo.geocoding.base import (  # noqa: F401 (re-exported)
    ABBREVIATIONS,
    MOTIF_DEMO,
    PRECISIONS,
    REPETITIONS,
    STOP_WORDS,
    STREET_TYPES,
    AddressQuery,
    Geocoder,
    GeocodeResult,
    match_key,
    normalize,
    not_found,
    reliability_issues,
    strip_accents,
    tokens,
)
from qpv_geo.geocoding.files import (  # noqa: F401 (re-exported)
    BAN_CSV_COLUMNS,
    BAN_CSV_REQUIRED,
    DEMO_FILE,
    INSTALLED_FILE,
    CommuneSem,
    _read_ban_csv,
    adresses_info,
    communes_sem,
    demo_adresses_path,
    download_adresses,
    install_adresses,
    installed_adresses_dir,
    update_adresses_cli,
)
from qpv_geo.geocoding.index import build_index  # noqa: F401 (re-exported)
from qpv_geo.geocoding.local import (  # noqa: F401 (re-exported)
    COMMUNE_MIN,
    NAME_MIN,
    STREET_MIN,
    STREET_MIN_IN_COMMUNE,
    LocalGeocoder,
)
from qpv_geo.settings import Settings


def geocoder_from_settings(settings: Settings | None = None, name: str | None = None) -> Geocoder:
    """The geocoder named ``name`` (default ``settings.geocoder``): ``local`` or ``ban``."""
    settings = settings or Settings.from_env()
    name = (name or settings.geocoder or "local").strip().lower()
    if name == "local":
        return LocalGeocoder.from_settings(settings)
    if name == "ban":
        return BanGeocoder.from_settings(settings)
    raise GeocoderNotConfigured(f"Géocodeur inconnu : « {name} ».",
                                hint="Choisissez local (hors ligne) ou ban (service en ligne).")




__all__ = [
    "BAN_CSV_COLUMNS",
    "PRECISIONS",
    "AddressQuery",
    "BanGeocoder",
    "GeocodeResult",
    "Geocoder",
    "LocalGeocoder",
    "adresses_info",
    "download_adresses",
    "geocoder_from_settings",
    "install_adresses",
    "normalize",
    "reliability_issues",
    "update_adresses_cli",
]
