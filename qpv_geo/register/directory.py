"""The porteur's legal category from the public company directory (« API Recherche
d'entreprises », ``GET /search?q=SIREN``, no key), cached on disk and retried.

Only what the call needs is read from an answer: ``results[].siren``, ``nom_complet``,
``nature_juridique`` (INSEE legal category code), ``etat_administratif`` and
``complements.est_association`` / ``complements.collectivite_territoriale``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpv_geo._http import RateLimiter, ResultCache, make_session, request_with_retry
from qpv_geo.exceptions import GeocodingError
from qpv_geo.settings import Settings

#: Requests per second the directory allows (its documented limit is 7).
RATE_LIMIT = 7.0
_DIGITS = re.compile(r"\D+")


def luhn_ok(number: str) -> bool:
    """True when ``number`` passes the Luhn check (SIREN and SIRET use it)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def siren_of(text: str) -> str | None:
    """The SIREN (9 digits) of a SIRET or SIREN as typed (spaces, dots), else ``None``."""
    digits = _DIGITS.sub("", text or "")
    if len(digits) not in (9, 14) or not luhn_ok(digits[:9]):
        return None
    if len(digits) == 14 and not luhn_ok(digits) and not digits.startswith("356000000"):
        return None  # La Poste's establishments are the one known exception to the check
    return digits[:9]


@dataclass(frozen=True)
class Entreprise:
    """What the directory says of one legal unit."""

    siren: str
    nom: str
    nature_juridique: str | None
    etat_administratif: str | None
    est_association: bool
    est_collectivite: bool

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> Entreprise:
        """From one item of ``results`` of ``/search``."""
        comp = r.get("complements") or {}
        return cls(siren=str(r.get("siren") or ""),
                   nom=str(r.get("nom_complet") or r.get("nom_raison_sociale") or ""),
                   nature_juridique=(str(r["nature_juridique"]) if r.get("nature_juridique")
                                     else None),
                   etat_administratif=r.get("etat_administratif"),
                   est_association=bool(comp.get("est_association")),
                   est_collectivite=comp.get("collectivite_territoriale") is not None)


class AnnuaireIndisponible(Exception):
    """The directory could not be reached (the criterion becomes « à vérifier »)."""


class Annuaire:
    """Client of the directory: one lookup per SIREN, answers kept in a disk cache.

    After one failure to reach the service, the remaining lookups of the same client are
    not attempted (a file of 500 porteurs does not wait 500 times for a dead network).
    """

    def __init__(self, url: str, *, cache_dir: Path | None = None, timeout_s: float = 30.0,
                 retries: int = 2, backoff_s: float = 0.5, rate: float = RATE_LIMIT) -> None:
        self.url = url.rstrip("/")
        self._session = make_session()
        self._cache = ResultCache(Path(cache_dir) / "annuaire.sqlite") if cache_dir else None
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s
        self._limiter = RateLimiter(rate)
        self.down: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Annuaire:
        """Client on ``settings.annuaire_url``, cache in ``settings.cache_dir``."""
        return cls(settings.annuaire_url, cache_dir=settings.cache_dir,
                   timeout_s=settings.timeout_s)

    def lookup(self, siren: str) -> Entreprise | None:
        """The legal unit of ``siren``; ``None`` when the directory does not know it.

        Raises :class:`AnnuaireIndisponible` when the service cannot be reached.
        """
        key = ResultCache.key({"annuaire": self.url, "siren": siren})
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is None:
            if self.down:
                raise AnnuaireIndisponible(self.down)
            try:
                resp = request_with_retry(
                    self._session, "GET", f"{self.url}/search",
                    params={"q": siren, "page": 1, "per_page": 1}, timeout=self._timeout,
                    retries=self._retries, backoff_s=self._backoff, limiter=self._limiter)
                body = resp.json()
            except (GeocodingError, ValueError) as exc:
                self.down = (f"annuaire des entreprises injoignable ou réponse illisible "
                             f"({self.url})") if not isinstance(exc, GeocodingError) else \
                    f"annuaire des entreprises injoignable ({self.url})"
                raise AnnuaireIndisponible(self.down) from exc
            found = [r for r in body.get("results") or [] if str(r.get("siren")) == siren]
            cached = {"result": found[0] if found else None}
            if self._cache is not None:  # (an empty cache has len 0)
                self._cache.set_many({key: cached})
        return Entreprise.from_result(cached["result"]) if cached["result"] else None

    def close(self) -> None:
        """Release the HTTP session and the cache."""
        self._session.close()
        if self._cache is not None:
            self._cache.close()
