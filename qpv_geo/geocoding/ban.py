"""Online geocoder: the BAN / Géoplateforme service (``/search`` and ``/search/csv``)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qpv_geo._http import RateLimiter, ResultCache, make_session, request_with_retry
from qpv_geo.exceptions import GeocoderQueryError, GeocoderUnavailable
from qpv_geo.geocoding.base import (
    PRECISIONS,
    AddressQuery,
    GeocodeResult,
    as_query,
    not_found,
    query_text,
)
from qpv_geo.geocoding.consistency import (
    candidates,
    check_many,
    needs_candidates,
    read_written,
    written_outside,
    written_unusable,
)
from qpv_geo.geocoding.coordinates import coordinates_result
from qpv_geo.settings import Settings

#: Results under this score are « not found », on ``/search`` as on ``/search/csv``.
SCORE_FLOOR = 0.5
_REFUSED = "adresse refusée par le service BAN"
_NOT_FOUND = "adresse non trouvée par le service BAN (aucun résultat de score supérieur à 0,5)"


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
    #: The territory whose communes an address may be written in
    #: (:mod:`qpv_geo.reference.territories`;
    #: None: Saint-Étienne Métropole), set by :func:`~qpv_geo.geocoding.geocoder_from_settings`.
    territoire: Any = None

    def __init__(self, base_url: str, *, cache_dir: Path | None = None, rate_limit: float = 40.0,
                 timeout: float = 30.0, retries: int = 4, backoff_s: float = 0.5,
                 chunk_size: int = 500, batch_threshold: int = 5,
                 max_wait_s: float = 60.0, unavailable_hint: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = make_session()
        self.limiter = RateLimiter(rate_limit)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self.batch_threshold = batch_threshold
        self.max_wait_s = max_wait_s
        #: Said when the service cannot be reached (``auto``: how to install the address file).
        self.unavailable_hint = unavailable_hint
        self.cache = ResultCache(Path(cache_dir) / "ban-cache.sqlite") if cache_dir else None

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      unavailable_hint: str | None = None) -> BanGeocoder:
        """The service of ``settings.ban_url`` with the settings' rate limit and timeout."""
        # auto: the service is the fallback of a missing file; say so soon when it is down
        return cls(settings.ban_url, cache_dir=settings.cache_dir / "geocodage",
                   rate_limit=settings.ban_rate_limit, timeout=settings.timeout_s,
                   unavailable_hint=unavailable_hint,
                   retries=2 if unavailable_hint else 4)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._request_raw(method, path, **kwargs)
        except GeocoderUnavailable as exc:
            if self.unavailable_hint and "injoignable" in str(exc):
                msg = str(exc)
                raise GeocoderUnavailable(
                    "Aucun géocodeur disponible : pas de fichier d'adresses installé et "
                    f"{msg[:1].lower()}{msg[1:]}", hint=self.unavailable_hint) from exc
            raise

    def _request_raw(self, method: str, path: str, **kwargs: Any) -> Any:
        return request_with_retry(self.session, method, f"{self.base_url}{path}",
                                  timeout=self.timeout, retries=self.retries,
                                  backoff_s=self.backoff_s, max_wait_s=self.max_wait_s,
                                  limiter=self.limiter, **kwargs)

    def _cache_key(self, q: AddressQuery) -> str:
        sent = self._q_text(q)
        return ResultCache.key({"v": 3, "url": self.base_url, "q": " ".join(q.adresse.split()),
                                "postcode": q.postcode or None, "citycode": q.citycode or None,
                                "city": q.city or None,
                                # a CEDEX address is sent rewritten: not an older answer's key
                                **({"sent": sent} if sent != q.text() else {})})

    @staticmethod
    def _q_text(q: AddressQuery) -> str:
        """The text sent to the service for ``q``.

        Everything goes in the text, the postcode too: as a hard ``postcode=`` filter, a
        wrong postcode made the service answer with another street of that postcode. A
        CEDEX address is sent as its street and the commune read from it (with the
        commune's postcode when it has one): addok keeps only the département of a CEDEX
        code and scores « 19 Rue Pasteur, BP 512 42007 Saint-Étienne Cedex 1 » under the
        score floor, while the name and the département decide the commune anyway; the
        consistency rules still compare the result with what was written."""
        w = read_written(q)
        if w.cedex and w.commune_certain and w.commune is not None and w.rest:
            pcs = w.commune.codes_postaux
            return " ".join([*w.rest, *(pcs if len(pcs) == 1 else ()), w.commune.nom])
        return q.text()

    def search(self, query: str | AddressQuery, *, limit: int = 5) -> list[GeocodeResult]:
        """Raw ``/search`` call: up to ``limit`` results, unchecked and not cached."""
        q = as_query(query)
        params = {"q": self._q_text(q)[:200], "limit": limit, "index": "address"}
        resp = self._request("GET", "/search", params=params, parse=_features)
        return [self._from_feature(query_text(query), f) for f in resp.parsed]

    def _from_feature(self, text: str, feature: dict[str, Any]) -> GeocodeResult:
        props = feature.get("properties") or {}
        coords = (feature.get("geometry") or {}).get("coordinates") or [None, None]
        return GeocodeResult(
            query=text, lon=_float(coords[0]), lat=_float(coords[1]), label=props.get("label"),
            score=float(props.get("score") or 0.0), precision=_ban_precision(props.get("type")),
            citycode=props.get("citycode"), postcode=props.get("postcode"), source=self.source,
            street=_street_of(props.get("type"), props.get("street"), props.get("name"),
                              props.get("housenumber"), props.get("label"),
                              props.get("postcode"), props.get("city")))

    def _floor(self, query: str | AddressQuery, res: GeocodeResult) -> GeocodeResult:
        """The same score floor for ``/search`` and ``/search/csv``."""
        if res.found and res.score < SCORE_FLOOR:
            return not_found(query, _NOT_FOUND, source=self.source)
        return res

    def _one(self, q: AddressQuery) -> GeocodeResult:
        results = self.search(q, limit=1)
        if not results:
            return not_found(q, _NOT_FOUND, source=self.source)
        return self._floor(q, results[0])

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        """The best result of ``/search`` (cached), checked against what was written."""
        return self.geocode_many([query])[0]

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """One result per query, same order: cache first, then ``/search/csv`` by chunks
        (``/search`` one by one under :attr:`batch_threshold` addresses, and for the rows of
        a chunk the service refused). The same score floor and consistency rules apply to
        every row, whatever the path. Each chunk is cached as soon as it comes back: an
        interrupted run resumes there. ``progress`` gets the number of queries just finished.
        """
        qs = [as_query(q) for q in queries]
        out: list[GeocodeResult | None] = [None] * len(qs)
        keys = [self._cache_key(q) for q in qs]
        cached = self.cache.get_many(list(set(keys))) if self.cache is not None else {}
        todo: dict[str, list[int]] = {}
        done = 0

        for k, (q, key) in enumerate(zip(qs, keys, strict=True)):
            # coordinates typed, a commune/postcode written outside SEM, a street type
            # alone: no service call
            typed = coordinates_result(queries[k]) or written_outside(
                q, source=self.source, territoire=self.territoire) or written_unusable(
                q, source=self.source)
            if typed is not None:
                out[k] = typed
                done += 1
            elif len(q.text().strip()) < 3:
                out[k] = not_found(queries[k], "adresse vide ou trop courte", source=self.source)
                done += 1
            elif key in cached:
                out[k] = GeocodeResult(**{**cached[key], "query": query_text(queries[k])})
                done += 1
            else:
                todo.setdefault(key, []).append(k)
        if progress is not None and done:
            progress(done)
        pending = list(todo.items())
        step = self.chunk_size if len(pending) >= self.batch_threshold else 1
        for i in range(0, len(pending), step):
            chunk = pending[i:i + step]
            chunk_qs = [qs[ks[0]] for _, ks in chunk]
            results = (self._csv_chunk(chunk_qs) if step > 1 else None)
            if results is None:
                results = self._one_by_one(chunk_qs)
            results = [self._with_candidates(q, self._floor(q, r))
                       for q, r in zip(chunk_qs, results, strict=True)]
            if self.cache is not None:
                self.cache.set_many({key: res.__dict__ for (key, _), res
                                     in zip(chunk, results, strict=True)
                                     if res.motif is None or not res.motif.startswith(_REFUSED)})
            n = 0
            for (_, ks), res in zip(chunk, results, strict=True):
                for k in ks:
                    out[k] = GeocodeResult(**{**res.__dict__, "query": query_text(queries[k])})
                    n += 1
            if progress is not None:
                progress(n)
        return check_many(qs, [r for r in out if r is not None], self.territoire)

    def _with_candidates(self, q: AddressQuery, res: GeocodeResult) -> GeocodeResult:
        """``res`` with the other communes where the street is as good
        (:func:`~qpv_geo.geocoding.consistency.candidates`) when nothing written says which
        commune: ``/search`` gives them (``/search/csv`` answers one result per row), as the
        local file lists the same street in several communes."""
        if not needs_candidates(q, res):
            return res
        try:
            found = [self._floor(q, r) for r in self.search(q, limit=10)]
        except GeocoderQueryError:
            return dataclasses.replace(res, issues=(*res.issues, "aucune commune écrite : "
                                                    "les autres communes de cette voie n'ont "
                                                    "pas pu être cherchées"))
        others = candidates(q, [res, *[r for r in found if r.label != res.label]])
        return dataclasses.replace(res, alternatives=others) if others else res

    def _one_by_one(self, qs: list[AddressQuery]) -> list[GeocodeResult]:
        """``/search`` for each address; one the service refuses is reported, not fatal.

        The service unreachable for the first address (or for 3 in a row) is fatal: the
        caller keeps what the cache holds and says how to resume."""
        out: list[GeocodeResult] = []
        failures = 0
        for q in qs:
            try:
                out.append(self._one(q))
                failures = 0
            except GeocoderQueryError as exc:
                out.append(not_found(q, f"{_REFUSED} ({exc})", source=self.source))
            except GeocoderUnavailable:
                failures += 1
                if len(qs) == 1 or failures >= 3:
                    raise
                out.append(not_found(q, f"{_REFUSED} (service indisponible pour cette "
                                     "adresse, relancez pour la reprendre)", source=self.source))
        return out

    def _csv_chunk(self, qs: list[AddressQuery]) -> list[GeocodeResult] | None:
        """One ``/search/csv`` upload; ``None`` when the service refused it (HTTP 400 or a
        run of 5xx): the caller falls back to ``/search`` for each of its addresses."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["qpv_id", "adresse"])
        for k, q in enumerate(qs):
            writer.writerow([k, self._q_text(q)[:200]])
        data: list[tuple[str, str]] = [("columns", "adresse"), ("indexes", "address")]
        files = {"data": ("adresses.csv", buf.getvalue().encode("utf-8"), "text/csv")}
        try:  # an answer cut off, or not the documented one, is retried, then refused
            resp = self._request("POST", "/search/csv", data=data, files=files,
                                 parse=lambda r: _csv_rows(r, len(qs)))
        except GeocoderQueryError:
            return None
        except GeocoderUnavailable as exc:
            if "injoignable" in str(exc):
                raise
            return None  # ask address by address
        by_id: dict[int, dict[str, str]] = resp.parsed
        results = []
        for k, q in enumerate(qs):
            row = by_id.get(k)
            text_q = q.text()
            if row is None:
                results.append(not_found(text_q, "ligne absente de la réponse du service BAN",
                                         source=self.source))
                continue
            lon, lat = _float(row.get("longitude")), _float(row.get("latitude"))
            # no result_status column (older services): a row without a point is not found
            status = (row.get("result_status") or ("ok" if lon is not None and lat is not None
                                                   else "not-found")).strip()
            if status != "ok" or lon is None or lat is None:
                motif = {"not-found": _NOT_FOUND,
                         "skipped": "adresse ignorée par le service BAN (vide ?)",
                         "error": f"{_REFUSED} (erreur sur cette ligne)"}.get(
                             status, f"adresse non trouvée par le service BAN ({status})")
                results.append(not_found(text_q, motif, source=self.source))
                continue
            results.append(GeocodeResult(
                query=text_q, lon=lon, lat=lat, label=row.get("result_label") or None,
                score=_float(row.get("result_score")) or 0.0,
                precision=_ban_precision(row.get("result_type")),
                citycode=row.get("result_citycode") or None,
                postcode=row.get("result_postcode") or None, source=self.source,
                street=_street_of(row.get("result_type"), row.get("result_street"),
                                  row.get("result_name"), row.get("result_housenumber"),
                                  row.get("result_label"), row.get("result_postcode"),
                                  row.get("result_city"))))
        return results


def _features(resp: Any) -> list[dict[str, Any]]:
    """The features of a ``/search`` answer; ``ValueError`` when it is not a whole one."""
    body = resp.json()  # a JSON cut off half-way is a ValueError
    features = body.get("features") if isinstance(body, dict) else None
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise ValueError("GeoJSON sans liste « features »")
    return features


def _csv_rows(resp: Any, n: int) -> dict[int, dict[str, str]]:
    """The rows of a ``/search/csv`` answer by ``qpv_id``; ``ValueError`` when it is not the
    documented answer for the ``n`` rows sent (no ``result_*`` columns, a row cut off, rows
    missing: the answer stopped half-way)."""
    text = resp.content.decode("utf-8-sig")
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise ValueError(f"CSV illisible : {exc}") from exc
    if not rows or "result_score" not in rows[0]:
        raise ValueError("CSV sans les colonnes result_* du service")
    by_id: dict[int, dict[str, str]] = {}
    for row in rows:
        if None in row or any(v is None for v in row.values()):
            raise ValueError("ligne du CSV coupée")
        try:
            by_id[int(row.get("qpv_id", ""))] = row
        except ValueError:
            continue
    missing = n - len(set(by_id) & set(range(n)))
    if missing:
        raise ValueError(f"{missing} ligne(s) sur {n} absente(s) de la réponse")
    return by_id


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _street_of(kind: Any, street: Any, name: Any, housenumber: Any = None, label: Any = None,
               postcode: Any = None, city: Any = None) -> str | None:
    """The street of a BAN result, the same from ``/search`` and ``/search/csv``.

    A house number's street is ``street`` on ``/search`` (« 8 Boulevard Jules Janin » is its
    ``name``); addok's ``/search/csv`` leaves ``result_street`` empty for house numbers and
    gives the street's own name as ``result_name``; a house number of a lieu-dit has no
    ``street`` at all. So: ``street``, else ``name`` without the house number, else the label
    without the number, postcode and commune. A street or lieu-dit is its ``name``."""
    if kind == "housenumber":
        if street:
            return str(street)
        text = str(name or "").strip()
        if not text and label:
            text = str(label).strip()
            for tail in (str(city or ""), str(postcode or "")):
                if tail and text.endswith(tail):
                    text = text[:-len(tail)].strip()
        number = str(housenumber or "").strip()
        if number and text.lower().startswith(number.lower() + " "):
            text = text[len(number):].strip()
        return text or None
    if kind in ("street", "locality"):
        return str(name or street) if (name or street) else None
    return None


def _ban_precision(kind: Any) -> str | None:
    """BAN ``type`` → precision (``housenumber``, ``street``, ``locality``, ``municipality``)."""
    if kind in PRECISIONS:
        return str(kind)
    return {"interpolation": "street", "city": "municipality"}.get(str(kind or ""))
