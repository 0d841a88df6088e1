"""The geocoder the register hands to the batch: it remembers every result it gives (stored
with the import or re-check that used it), answers a re-check from those stored results
(the site keeps its point: it is judged again, not geocoded again) and, in a re-check, turns
a geocoding failure into a marked « not found » that the register keeps out of the verdicts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qpv_geo.exceptions import GeocoderNotConfigured, GeocodingError
from qpv_geo.geocoding import GeocodeResult, geocoder_from_settings, not_found

if TYPE_CHECKING:
    from qpv_geo.geocoding import AddressQuery, Geocoder, GeocodeResult
    from qpv_geo.settings import Settings

#: ``geocodage_source`` of a row whose geocoding failed during a re-check (service down,
#: rate limited, not configured): the register keeps that site's verdict.
SOURCE_PANNE = "registre:geocodage-indisponible"


def query_key(query: AddressQuery | str) -> str:
    """A stable text key of a geocoding query."""
    if isinstance(query, str):
        return json.dumps([query, None, None, None], ensure_ascii=False)
    return json.dumps([query.adresse, query.postcode, query.city, query.citycode],
                      ensure_ascii=False)


def result_to_json(result: GeocodeResult) -> str:
    """The whole result (point, precision, street, issues, alternatives…) as JSON."""
    return json.dumps(dataclasses.asdict(result), ensure_ascii=False)


def result_from_json(text: str) -> GeocodeResult:
    """A stored result back."""

    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(GeocodeResult)}
    return GeocodeResult(**{k: v for k, v in data.items() if k in names})


class RegisterGeocoder:
    """Answers from ``stored`` results first, then from the live geocoder (created on first
    need from ``settings``, unless ``geocoder`` is given); records every answer in
    :attr:`used`.

    ``recheck``: a live failure (service unreachable, rate limited, not configured) answers
    « not found » with :data:`SOURCE_PANNE` as source instead of stopping the run or
    becoming an ordinary « not found ».
    """

    def __init__(self, settings: Settings, geocoder: Geocoder | None = None, *,
                 stored: dict[str, GeocodeResult] | None = None,
                 recheck: bool = False) -> None:
        self._settings = settings
        self._live = geocoder
        self._stored = stored or {}
        self._recheck = recheck
        self._error: str | None = None
        self.name: str = getattr(geocoder, "name", None) or "registre"
        #: Every result given, by query key: what the run's verdicts were judged on.
        self.used: dict[str, GeocodeResult] = {}
        #: Keys of the queries that went to the live geocoder.
        self.live_keys: set[str] = set()

    def _geocoder(self) -> Geocoder | None:
        if self._live is None and self._error is None:
            try:
                self._live = geocoder_from_settings(self._settings)
                self.name = self._live.name
            except GeocoderNotConfigured as exc:
                self._error = f"géocodeur indisponible : {exc}" + (
                    f" ({exc.hint})" if exc.hint else "")
        return self._live

    def geocode(self, query: AddressQuery | str) -> GeocodeResult:
        """One query."""
        return self.geocode_many([query])[0]

    def geocode_many(self, queries: Sequence[AddressQuery | str], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """Stored answers, then the live geocoder for the others."""

        keys = [query_key(q) for q in queries]
        out: list[Any] = [self._stored.get(k) for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            live = self._geocoder()
            asked = [queries[i] for i in todo]
            if live is None:
                source = SOURCE_PANNE if self._recheck else ""
                results = [not_found(q, self._error or "géocodeur indisponible",
                                     source=source) for q in asked]
            elif self._recheck:
                try:
                    results = live.geocode_many(asked)
                except (GeocodingError, OSError) as exc:
                    results = [not_found(q, f"géocodeur indisponible : {exc}",
                                         source=SOURCE_PANNE) for q in asked]
            else:
                results = live.geocode_many(asked)
            for i, r in zip(todo, results, strict=True):
                out[i] = r
                self.live_keys.add(keys[i])
        for k, r in zip(keys, out, strict=True):
            if r.source != SOURCE_PANNE:
                self.used[k] = r
        if progress:
            progress(len(queries))
        return out

    @property
    def unavailable_hint(self) -> str | None:
        """The live geocoder's hint (the batch reads it when the service is down)."""
        return getattr(self._live, "unavailable_hint", None)


__all__ = ["SOURCE_PANNE", "RegisterGeocoder", "query_key", "result_from_json",
           "result_to_json"]
