"""Geocoding: postal addresses → WGS84 points, with a precision and a score.

One protocol (:class:`Geocoder`), one result type (:class:`GeocodeResult`), two engines:

* :class:`LocalGeocoder` (offline): an index of a BAN-format address file restricted
  to the 53 communes of Saint-Étienne Métropole, built once into the cache directory and
  rebuilt when the file's sha256 changes: the installed BAN file, or with ``demo`` the
  shipped *demonstration* file (synthetic addresses, ``source="local-demo"``).
* :class:`BanGeocoder` (online): the BAN / Géoplateforme service (``/search`` and
  ``/search/csv``), with retries, a rate limit and a persistent per-address cache.

:func:`geocoder_from_settings` picks one: ``auto`` (default) = the installed BAN file, else
the online service; the demonstration file only with ``demo``. Every result goes through the
consistency rules (:mod:`~qpv_geo.geocoding.consistency`).

:func:`reliability_issues` says why a point is not good enough for a confident verdict.
A failure for one address is a result with ``found`` False and a ``motif``; exceptions are for
failures of the whole service (:class:`~qpv_geo.exceptions.GeocoderUnavailable`, …).

Modules: :mod:`~qpv_geo.geocoding.base` (types),
:mod:`~qpv_geo.geocoding.index` and :mod:`~qpv_geo.geocoding.local` (offline geocoder),
:mod:`~qpv_geo.geocoding.ban` (online geocoder), :mod:`~qpv_geo.geocoding.files` (address
files); every name is importable from here.
"""

from __future__ import annotations

from typing import Any

from qpv_geo.exceptions import GeocoderNotConfigured
from qpv_geo.geocoding.ban import BanGeocoder
from qpv_geo.geocoding.base import (  # noqa: F401 (re-exported)
    MOTIF_DEMO,
    PRECISION_WORDS,
    PRECISIONS,
    AddressQuery,
    Geocoder,
    GeocodeResult,
    not_found,
    reliability_issues,
)
from qpv_geo.geocoding.files import (  # noqa: F401 (re-exported)
    BAN_CSV_COLUMNS,
    BAN_CSV_REQUIRED,
    DEMO_FILE,
    INSTALL_HINT,
    INSTALLED_FILE,
    CommuneSem,
    adresses_info,
    communes_sem,
    demo_adresses_info,
    demo_adresses_path,
    download_adresses,
    install_adresses,
    installed_adresses_dir,
    installed_adresses_info,
    read_ban_csv,
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
from qpv_geo.geocoding.messages import CONSEILS
from qpv_geo.reference.communes import communes_france
from qpv_geo.reference.territories import resolve_territoire
from qpv_geo.reference.text import (  # noqa: F401 (re-exported: the geocoding's text rules)
    ABBREVIATIONS,
    REPETITIONS,
    STOP_WORDS,
    STREET_TYPES,
    match_key,
    normalize,
    strip_accents,
    tokens,
)
from qpv_geo.settings import SIREN_SEM, Settings


def geocoder_from_settings(settings: Settings | None = None, name: str | None = None) -> Geocoder:
    """The geocoder named ``name`` (default ``settings.geocoder``, see
    :data:`~qpv_geo.settings.GEOCODERS`).

    ``auto``: the installed real BAN file if there is one (offline), else the online service;
    when that service cannot be reached, the error says how to install the address file.
    ``demo``: the shipped demonstration file (synthetic addresses), only when asked for.

    The geocoder judges « commune written outside the territory » for ``settings.territoire``
    (SEM by default); for a territory beyond SEM's communes, ``auto`` is the online service
    (the address file covers SEM only).
    """
    settings = settings or Settings.from_env()
    name = (name or settings.geocoder or "auto").strip().lower()
    territoire = _territoire(settings)
    geocoder: Any
    if name == "auto":
        covered = _file_covers(territoire)
        if installed_adresses_info(settings) is not None and covered:
            geocoder = LocalGeocoder.from_settings(settings)
        else:
            # the address file covers SEM only: elsewhere (Lyon…) it is no way out
            geocoder = BanGeocoder.from_settings(
                settings, unavailable_hint=INSTALL_HINT if covered
                else CONSEILS["service_en_ligne"])
    elif name == "local":
        geocoder = LocalGeocoder.from_settings(settings)
    elif name == "demo":
        geocoder = LocalGeocoder.from_settings(settings, demo=True)
    elif name == "ban":
        geocoder = BanGeocoder.from_settings(settings)
    else:
        raise GeocoderNotConfigured(f"Géocodeur inconnu : « {name} ».",
                                    hint="Choisissez auto, local, ban ou demo.")
    if territoire is not None:
        import copy

        # LocalGeocoder.from_settings hands out one shared, loaded instance: a shallow copy
        # (the same index) carries the territory, the shared one stays SEM's
        geocoder = copy.copy(geocoder)
        geocoder.territoire = territoire
    return geocoder


def _territoire(settings: Settings) -> Any:
    """The settings' territory (:func:`~qpv_geo.reference.territories.resolve_territoire`), None for
    SEM."""
    if str(settings.territoire).strip().replace(" ", "") == SIREN_SEM:
        return None

    return resolve_territoire(settings.territoire)


def _file_covers(territoire: Any) -> bool:
    """True when the address file (SEM's communes) covers the territory (None: SEM)."""
    if territoire is None:
        return True
    if territoire.france:
        return False

    by_insee = communes_france().by_insee
    return all(c in by_insee and by_insee[c].in_sem for c in territoire.communes)


def geocoder_info(settings: Settings | None = None, name: str | None = None) -> dict[str, Any]:
    """Which geocoder and which address data answer, without loading anything (for
    ``/api/v1/donnees``, the web page and ``data status``): ``geocodeur`` (local, ban, demo),
    ``adresses`` (a French sentence), ``demo`` (True for the demonstration file)."""
    settings = settings or Settings.from_env()
    name = (name or settings.geocoder or "auto").strip().lower()
    installed = installed_adresses_info(settings)
    if name == "auto" and not _file_covers(_territoire(settings)):
        installed = None  # SEM's address file: the online service answers elsewhere
    if name == "demo":
        return {"choix": name, "geocodeur": "local", "demo": True,
                "adresses": "fichier d'adresses de DÉMONSTRATION (adresses fictives)"}
    if name in ("auto", "local") and installed is not None:
        return {"choix": name, "geocodeur": "local", "demo": False,
                "adresses": f"fichier BAN installé ({installed.get('rows', '?')} adresses, "
                f"sha256 {str(installed.get('sha256') or '')[:12]}…, "
                f"{installed.get('installed_at', '')})"}
    if name == "local":
        return {"choix": name, "geocodeur": "aucun", "demo": False,
                "adresses": "aucun fichier d'adresses installé", "conseil": INSTALL_HINT.cli}
    return {"choix": name, "geocodeur": "ban", "demo": False,
            "adresses": f"service en ligne de la Géoplateforme ({settings.ban_url})"}


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
    "geocoder_info",
    "install_adresses",
    "normalize",
    "reliability_issues",
    "update_adresses_cli",
]
