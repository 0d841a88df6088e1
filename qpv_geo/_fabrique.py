"""The engine of the settings: built once per reference and settings, and kept.

:func:`engine_from_settings` (re-exported by :mod:`qpv_geo.eligibility`) resolves the territory
of the settings, takes SEM's installed-or-shipped reference or builds the territory's from the
national layer (once per territory), and keeps the last engine built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.eligibility import Engine
    from qpv_geo.reference import Reference

_ENGINES: dict[tuple[Any, ...], Engine] = {}


_TERRITORY_REFS: dict[str, Any] = {}


def _territory_reference(territoire: Any, build: Any) -> Reference:
    """The reference of a territory other than SEM, built once per territory."""
    if territoire.code not in _TERRITORY_REFS:
        _TERRITORY_REFS.clear()
        _TERRITORY_REFS[territoire.code] = build(territoire)
    return _TERRITORY_REFS[territoire.code]


def engine_from_settings(settings: Settings | None = None) -> Engine:
    """Engine on the installed-or-shipped reference data, cached per settings."""
    from qpv_geo.eligibility import Engine
    from qpv_geo.reference import get_reference

    settings = settings or Settings.from_env()
    from qpv_geo.territoire import reference_territoire, resolve_territoire

    territoire = resolve_territoire(settings.territoire)
    reference = get_reference(settings) if territoire.est_sem else \
        _territory_reference(territoire, reference_territoire)
    key = (id(reference), settings.marge_m, settings.rayon_recherche_m,
           settings.tolerance_territoire_m, settings.score_min, settings.precision_point_m)
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = Engine(reference, marge_m=settings.marge_m,
                               rayon_recherche_m=settings.rayon_recherche_m,
                               tolerance_territoire_m=settings.tolerance_territoire_m,
                               score_min=settings.score_min,
                               precision_point_m=settings.precision_point_m)
    return _ENGINES[key]


__all__ = ["engine_from_settings"]
