"""The engine of the settings: built once per reference and settings, and kept.

:func:`engine_from_settings` resolves the
territory of the settings, takes SEM's installed-or-shipped reference or builds the territory's from
the national layer of the settings' data directory (once per territory and layer), and keeps the
last engine built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qpv_geo.eligibility.engine import Engine
from qpv_geo.reference.commune_outlines import outlines_info
from qpv_geo.reference.layers import get_reference
from qpv_geo.reference.territories import national_info, reference_territoire, resolve_territoire
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.reference.layers import Reference

_ENGINES: dict[tuple[Any, ...], Engine] = {}


_TERRITORY_REFS: dict[tuple[Any, ...], Any] = {}


def _territory_reference(territoire: Any, settings: Settings) -> Reference:
    """The reference of a territory other than SEM, built once per territory and national
    layer (the installed official file of the settings' data directory, or the shipped copy:
    a new install, another data directory, is another reference)."""
    info = national_info(settings)
    outlines = outlines_info(settings)
    key = (territoire.code, str(info.path), info.sha256,
           None if outlines is None else (str(outlines.path), outlines.sha256))
    if key not in _TERRITORY_REFS:
        _TERRITORY_REFS.clear()
        _TERRITORY_REFS[key] = reference_territoire(territoire, settings)
    return _TERRITORY_REFS[key]


def engine_from_settings(settings: Settings | None = None) -> Engine:
    """Engine on the installed-or-shipped reference data, cached per settings."""
    settings = settings or Settings.from_env()
    territoire = resolve_territoire(settings.territoire)
    reference = get_reference(settings) if territoire.profil.reference_propre else \
        _territory_reference(territoire, settings)
    key = (id(reference), settings.marge_m, settings.rayon_recherche_m,
           settings.tolerance_territoire_m, settings.score_min, settings.precision_point_m)
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = Engine(reference, marge_m=settings.marge_m,
                               rayon_recherche_m=settings.rayon_recherche_m,
                               tolerance_territoire_m=settings.tolerance_territoire_m,
                               score_min=settings.score_min,
                               precision_point_m=settings.precision_point_m,
                               cache_dir=Path(settings.cache_dir) / "moteur")
    return _ENGINES[key]


__all__ = ["engine_from_settings"]
