"""Online geocoder: the BAN / Géoplateforme service (``/search`` and ``/search/csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qpv_geo.exceptions import GeocoderUnavailable
from qpv_geo.geocoding.base import (
    PRECISIONS,
    AddressQuery,
    GeocodeResult,
    _as_query,
    _query_text,
    not_found,
)
from qpv_geo.settings import Settings

# ---------------------------------------------------------------------------------------------
# Online: BAN / Géoplateforme
# ---------------------------------------------------------------------------------------------


class BanGeocoder:
    """The BAN / Géoplateforme geocoding service (``/search`` and ``/search/csv``).

    Parameters
    ----------
    base_url
        E.g. ``https://data.geopf.fr/geocodage`` or ``https://api-adresse.data.gouv.fr``.
    cache_dir
        Folder of the persistent result cache (``ban-cache.sqlite``); ``None`` = no cache.
    rate_limit
        Requests per second (client side).
    chunk_size
        Addresses per ``/search/csv`` upload.
    """

    name = "ban"
    source = "ban"
    demo = False

    def __init__(self, base_url: str, *, cache_dir: Path | None = None, rate_limit: float = 40.0,
                 timeout: float = 30.0, retries: int = 4, backoff_s: float = 0.5,
                 chunk_size: int = 500, batch_threshold: int = 5,
                 max_wait_s: float = 60.0) -> None:
        from qpv_geo._http import RateLimiter, ResultCache, make_session

        self.base_url = base_url.rstrip("/")
        self.session = make_session()
        self.limiter = RateLimiter(rate_limit)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self.batch_threshold = batch_threshold
        self.max_wait_s = max_wait_s
        self.cache = ResultCache(Path(cache_dir) / "ban-cache.sqlite") if cache_dir else None

    @classmethod
    def from_settings(cls, settings: Settings) -> BanGeocoder:
        return cls(settings.ban_url, cache_dir=settings.cache_dir / "geocodage",
                   rate_limit=settings.ban_rate_limit, timeout=settings.timeout_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        from qpv_geo._http import request_with_retry

        return request_with_retry(self.session, method, f"{self.base_url}{path}",
                                  timeout=self.timeout, retries=self.retries,
                                  backoff_s=self.backoff_s, max_wait_s=self.max_wait_s,
                                  limiter=self.limiter, **kwargs)

    def _cache_key(self, q: AddressQuery) -> str:
        from qpv_geo._http import ResultCache

        return ResultCache.key({"url": self.base_url, "q": " ".join(q.adresse.split()),
                                "postcode": q.postcode or None, "citycode": q.citycode or None,
                                "city": q.city or None})

    @staticmethod
    def _q_text(q: AddressQuery) -> str:
        # postcode/citycode go as filters; the city name joins the text
        return " ".join(p for p in (q.adresse.strip(), (q.city or "").strip()) if p)

    def search(self, query: str | AddressQuery, *, limit: int = 5) -> list[GeocodeResult]:
        """Raw ``/search/`` call: up to ``limit`` results (not cached)."""
        q = _as_query(query)
        params = {"q": self._q_text(q)[:200], "limit": limit,
                  "postcode": (q.postcode or "").strip() or None,
                  "citycode": (q.citycode or "").strip() or None}
        resp = self._request("GET", "/search/", params=params)
        try:
            features = resp.json().get("features", [])
        except (ValueError, AttributeError) as exc:
            raise GeocoderUnavailable("Réponse illisible du service de géocodage (JSON attendu)."
                                      ) from exc
        return [self._from_feature(_query_text(query), f) for f in features]

    def _from_feature(self, text: str, feature: dict[str, Any]) -> GeocodeResult:
        props = feature.get("properties") or {}
        coords = (feature.get("geometry") or {}).get("coordinates") or [None, None]
        return GeocodeResult(
            query=text, lon=_float(coords[0]), lat=_float(coords[1]), label=props.get("label"),
            score=float(props.get("score") or 0.0), precision=_ban_precision(props.get("type")),
            citycode=props.get("citycode"), postcode=props.get("postcode"), source=self.source)

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        """The best result of ``/search/`` (cached)."""
        q = _as_query(query)
        if not q.adresse.strip():
            return not_found(query, "adresse vide", source=self.source)
        key = self._cache_key(q)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return GeocodeResult(**{**hit, "query": _query_text(query)})
        results = self.search(q, limit=1)
        res = results[0] if results else not_found(
            query, "adresse non trouvée par le service BAN", source=self.source)
        if self.cache is not None:
            self.cache.set_many({key: res.__dict__})
        return res

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """One result per query, same order: cache first, then ``/search/csv/`` by chunks.

        Each chunk is cached as soon as it comes back: an interrupted run resumes there.
        ``progress`` is called with the number of queries just finished (an increment).
        """
        qs = [_as_query(q) for q in queries]
        out: list[GeocodeResult | None] = [None] * len(qs)
        keys = [self._cache_key(q) for q in qs]
        cached = self.cache.get_many(list(set(keys))) if self.cache is not None else {}
        todo: dict[str, list[int]] = {}
        done = 0
        for k, (q, key) in enumerate(zip(qs, keys, strict=True)):
            if not q.adresse.strip():
                out[k] = not_found(queries[k], "adresse vide", source=self.source)
                done += 1
            elif key in cached:
                out[k] = GeocodeResult(**{**cached[key], "query": _query_text(queries[k])})
                done += 1
            else:
                todo.setdefault(key, []).append(k)
        if progress is not None and done:
            progress(done)
        pending = list(todo.items())
        if len(pending) < self.batch_threshold:
            for _key, ks in pending:
                res = self.geocode(qs[ks[0]])
                for k in ks:
                    out[k] = GeocodeResult(**{**res.__dict__, "query": _query_text(queries[k])})
                if progress is not None:
                    progress(len(ks))
            return [r for r in out if r is not None]
        for i in range(0, len(pending), self.chunk_size):
            chunk = pending[i:i + self.chunk_size]
            results = self._csv_chunk([qs[ks[0]] for _, ks in chunk])
            if self.cache is not None:
                self.cache.set_many({key: res.__dict__ for (key, _), res
                                     in zip(chunk, results, strict=True)})
            n = 0
            for (_, ks), res in zip(chunk, results, strict=True):
                for k in ks:
                    out[k] = GeocodeResult(**{**res.__dict__, "query": _query_text(queries[k])})
                    n += 1
            if progress is not None:
                progress(n)
        return [r for r in out if r is not None]

    def _csv_chunk(self, qs: list[AddressQuery]) -> list[GeocodeResult]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["qpv_id", "adresse", "postcode", "citycode"])
        for k, q in enumerate(qs):
            writer.writerow([k, self._q_text(q)[:200], (q.postcode or "").strip(),
                             (q.citycode or "").strip()])
        data: list[tuple[str, str]] = [("columns", "adresse")]
        if any(q.postcode for q in qs):
            data.append(("postcode", "postcode"))
        if any(q.citycode for q in qs):
            data.append(("citycode", "citycode"))
        files = {"data": ("adresses.csv", buf.getvalue().encode("utf-8"), "text/csv")}
        resp = self._request("POST", "/search/csv/", data=data, files=files)
        text = resp.content.decode("utf-8-sig", errors="replace")
        rows = list(csv.DictReader(io.StringIO(text)))
        by_id: dict[int, dict[str, str]] = {}
        for row in rows:
            try:
                by_id[int(row.get("qpv_id", ""))] = row
            except ValueError:
                continue
        if not rows or "result_score" not in rows[0]:
            raise GeocoderUnavailable("Réponse inattendue de /search/csv/ (colonnes result_* "
                                      "absentes).")
        results = []
        for k, q in enumerate(qs):
            row = by_id.get(k)
            text_q = q.text()
            if row is None:
                results.append(not_found(text_q, "ligne absente de la réponse du service BAN",
                                         source=self.source))
                continue
            status = (row.get("result_status") or "ok").strip()
            lon, lat = _float(row.get("longitude")), _float(row.get("latitude"))
            if status != "ok" or lon is None or lat is None:
                motif = {"not-found": "adresse non trouvée par le service BAN",
                         "skipped": "adresse ignorée par le service BAN (vide ?)",
                         "error": "erreur du service BAN sur cette adresse"}.get(
                             status, f"adresse non trouvée par le service BAN ({status})")
                results.append(not_found(text_q, motif, source=self.source))
                continue
            results.append(GeocodeResult(
                query=text_q, lon=lon, lat=lat, label=row.get("result_label") or None,
                score=_float(row.get("result_score")) or 0.0,
                precision=_ban_precision(row.get("result_type")),
                citycode=row.get("result_citycode") or None,
                postcode=row.get("result_postcode") or None, source=self.source))
        return results


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _ban_precision(kind: Any) -> str | None:
    """BAN ``type`` → precision (``housenumber``, ``street``, ``locality``, ``municipality``)."""
    if kind in PRECISIONS:
        return str(kind)
    return {"interpolation": "street", "city": "municipality"}.get(str(kind or ""))
