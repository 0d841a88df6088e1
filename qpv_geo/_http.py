"""HTTP plumbing of the online geocoder: session, User-Agent, retries, rate limit, result cache.

Nothing here knows about addresses: :mod:`qpv_geo.geocoding` builds on it.

* one :class:`requests.Session` per geocoder (connection reuse), with a User-Agent naming
  qpv-geo and its version;
* :func:`request_with_retry`: exponential backoff on 429/5xx/timeouts/connection errors and on
  answers cut off half-way or unreadable (a ``parse`` that fails), ``Retry-After`` respected,
  then one table (:data:`ERROR_CODE_MAP`) turning the last HTTP status into an exception of
  :mod:`qpv_geo.exceptions` — a service's failure is always a :class:`GeocoderUnavailable`
  with a French message, never the HTTP library's own exception;
* :class:`RateLimiter`: a client-side cap on requests per second, shared by threads;
* :class:`ResultCache`: a small SQLite key → JSON store in the cache directory, written as
  each answer arrives so that an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qpv_geo import __version__
from qpv_geo.exceptions import (
    GeocoderQueryError,
    GeocoderRateLimited,
    GeocoderUnavailable,
    GeocodingError,
)

if TYPE_CHECKING:
    import requests

USER_AGENT = f"qpv-geo/{__version__} (eligibilite QPV, Saint-Etienne Metropole)"

#: HTTP statuses worth retrying (after a pause).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Final HTTP status → exception (like geopy's ERROR_CODE_MAP). Anything else ≥ 400 that is
#: not listed is a :class:`GeocoderUnavailable`.
ERROR_CODE_MAP: dict[int, type[GeocodingError]] = {
    400: GeocoderQueryError,
    413: GeocoderQueryError,
    414: GeocoderQueryError,
    429: GeocoderRateLimited,
    500: GeocoderUnavailable,
    502: GeocoderUnavailable,
    503: GeocoderUnavailable,
    504: GeocoderUnavailable,
}

_HINTS = {
    GeocoderQueryError: "Vérifiez l'adresse (vide, trop longue ?) ou le fichier envoyé.",
    GeocoderRateLimited: "Le service demande de ralentir : relancez plus tard ou baissez "
                         "QPV_GEO_BAN_RATE_LIMIT (le cache garde ce qui est déjà fait).",
    GeocoderUnavailable: "Vérifiez l'accès à internet et QPV_GEO_BAN_URL, ou utilisez le "
                         "géocodeur local (--geocoder local).",
}


def make_session(user_agent: str = USER_AGENT) -> requests.Session:
    """A :class:`requests.Session` (keep-alive) with qpv-geo's User-Agent."""
    import requests  # heavy: loaded when a service is called, not with the geocoding package

    session = requests.Session()
    session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"})
    return session


def sorted_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Parameters as a sorted list of ``(name, value)`` without ``None`` (stable URLs/keys)."""
    if not params:
        return []
    out: list[tuple[str, str]] = []
    for key in sorted(params):
        value = params[key]
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out.extend((key, str(v)) for v in value)
        else:
            out.append((key, str(value)))
    return out


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or HTTP date); ``None`` when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(status: int, url: str, detail: str = "", *,
                     retry_after: float | None = None) -> GeocodingError:
    """The exception of :data:`ERROR_CODE_MAP` for a final HTTP status, with a French message."""
    cls = ERROR_CODE_MAP.get(status, GeocoderUnavailable)
    detail = f" : {detail.strip()[:200]}" if detail and detail.strip() else ""
    if cls is GeocoderQueryError:
        msg = f"Le service de géocodage a refusé la requête (HTTP {status}){detail}."
    elif cls is GeocoderRateLimited:
        msg = (f"Le service de géocodage limite le débit (HTTP 429) malgré les pauses"
               f"{detail}.")
        return GeocoderRateLimited(msg, retry_after=retry_after, hint=_HINTS[cls])
    else:
        msg = f"Le service de géocodage ne répond pas correctement (HTTP {status}, {url}){detail}."
    return cls(msg, hint=_HINTS.get(cls))


class RateLimiter:
    """At most ``rate`` calls of :meth:`wait` per second (evenly spaced), thread-safe."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next call is allowed."""
        if self.interval <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)


def request_with_retry(
    session: requests.Session,
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    data: Any = None,
    files: Any = None,
    timeout: float = 30.0,
    retries: int = 4,
    backoff_s: float = 0.5,
    max_wait_s: float = 60.0,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    parse: Callable[[requests.Response], Any] | None = None,
) -> requests.Response:
    """Send one request, retrying 429/5xx/timeouts with exponential backoff.

    Waits ``Retry-After`` when the server gives it (up to ``max_wait_s``; longer means
    :class:`GeocoderRateLimited` at once), else ``backoff_s * 2**attempt``. An answer cut off
    half-way (the connection closed before its end) or that ``parse`` cannot read (it raises
    ``ValueError``; its result is kept in ``resp.parsed``) is retried the same way. Raises the
    exception of :data:`ERROR_CODE_MAP` for a final error status, and
    :class:`GeocoderUnavailable` when the server cannot be reached or only gives broken
    answers.
    """
    import requests  # heavy: loaded when a service is called, not with the geocoding package

    query = sorted_params(params)
    last_exc: Exception | None = None
    for attempt in range(retries + 1):
        if limiter is not None:
            limiter.wait()
        try:
            resp = session.request(method, url, params=query or None, data=data, files=files,
                                   timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last_exc = exc
            if attempt < retries:
                sleep(backoff_s * 2 ** attempt)
                continue
            raise GeocoderUnavailable(
                f"Le service de géocodage est injoignable ({url}) : "
                f"{exc.__class__.__name__}.", hint=_HINTS[GeocoderUnavailable]) from exc
        except requests.RequestException as exc:  # answer cut off, undecodable body…
            last_exc = exc
            if attempt < retries:
                sleep(backoff_s * 2 ** attempt)
                continue
            raise _broken(url, retries, "réponse coupée en cours de route") from exc
        if resp.status_code < 400 and parse is not None:
            try:
                resp.parsed = parse(resp)  # type: ignore[attr-defined]
            except ValueError as exc:
                last_exc = exc
                if attempt < retries:
                    sleep(backoff_s * 2 ** attempt)
                    continue
                raise _broken(url, retries, f"réponse illisible ou incomplète ({exc})"
                              ) from exc
        if resp.status_code < 400:
            return resp
        wait = retry_after_seconds(resp.headers.get("Retry-After"))
        if resp.status_code in RETRY_STATUSES and attempt < retries:
            if wait is not None and wait > max_wait_s:
                raise error_for_status(resp.status_code, url, retry_after=wait)
            sleep(wait if wait is not None else backoff_s * 2 ** attempt)
            continue
        raise error_for_status(resp.status_code, url, _error_detail(resp), retry_after=wait)
    raise GeocoderUnavailable(f"Le service de géocodage ne répond pas ({url}).",
                              hint=_HINTS[GeocoderUnavailable]) from last_exc  # pragma: no cover


def _broken(url: str, retries: int, what: str) -> GeocoderUnavailable:
    """The service's failure after ``retries + 1`` broken answers, in French."""
    essais = f"{retries + 1} essais" if retries else "1 essai"
    return GeocoderUnavailable(
        f"Le service de géocodage ne répond pas correctement ({url}) : {what[:200]}, "
        f"{essais}.", hint="Panne passagère du service : relancez plus tard (ce qui est déjà "
        "géocodé est gardé en cache et n'est pas redemandé), ou utilisez le géocodeur local "
        "(--geocoder local).")


def _error_detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body.get("description") or "")
    return ""


class ResultCache:
    """A persistent key → JSON store (SQLite, one table), safe across threads.

    Keys are hashed from a JSON dump with sorted keys, so equal requests share an entry.
    Each :meth:`set_many` commits at once: what is done survives an interruption.

    A cache only saves work: when its file cannot be written (full disk, read-only folder,
    ``ulimit -f``) the work goes on without it — in memory if the file cannot even be opened,
    ``persistent`` then False — rather than failing a whole batch.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.persistent = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(str(self.path))
        except (OSError, sqlite3.Error):
            self.persistent = False
            self._db = self._open(":memory:")

    @staticmethod
    def _open(where: str) -> sqlite3.Connection:
        db = sqlite3.connect(where, check_same_thread=False, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, "
                       "value TEXT NOT NULL, created REAL NOT NULL)")
            db.commit()
        except sqlite3.Error:
            db.close()
            raise
        return db

    @staticmethod
    def key(obj: Any) -> str:
        """Stable key of a JSON-able object."""
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """Cached values of those keys that are present."""
        out: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, value FROM results WHERE key IN ({marks})", part).fetchall()
                out.update((k, json.loads(v)) for k, v in rows)
        return out

    def get(self, key: str) -> Any | None:
        return self.get_many([key]).get(key)

    def set_many(self, items: Mapping[str, Any]) -> None:
        """Store values and commit."""
        now = time.time()
        with self._lock:
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results (key, value, created) VALUES (?, ?, ?)",
                    [(k, json.dumps(v, ensure_ascii=False), now) for k, v in items.items()])
                self._db.commit()
            except sqlite3.OperationalError:  # full disk, read-only, ulimit -f: not kept
                self._db.rollback()
                self.persistent = False

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM results")
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def download_name(kind: str, url: str, sha256: str = "") -> str:
    """The file a download of *url* (expected to hold *sha256*) is kept under until it is
    installed: a download left by a killed run is reused only for the same URL and the same
    expected checksum, never taken for another URL's file."""
    key = hashlib.sha256(f"{url}\n{sha256.lower()}".encode()).hexdigest()[:32]
    return f"{kind}-{key}.telechargement"


def remove_other_downloads(folder: Path, kind: str, *, keep: str,
                           former: tuple[str, ...] = ()) -> None:
    """Remove the downloads of *kind* that killed runs left for other URLs (and the files of
    the *former* single names)."""
    for old in folder.glob(f"{kind}*"):
        if old.name != keep and old.name.endswith(".telechargement"):
            old.unlink(missing_ok=True)
    for name in former:
        (folder / name).unlink(missing_ok=True)


def download_failure_reason(exc: BaseException) -> str:
    """Why a download failed, in French words for a person (never the library's repr).

    Walks the exception chain (requests → urllib3 → socket) for the first cause it knows.
    """
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    names = " ".join(type(e).__name__ for e in seen)
    text = " ".join(str(e) for e in seen)
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status:
        return f"le serveur a répondu « erreur {status} »"
    if "NameResolution" in names or "gaierror" in names or "Name or service not known" in text \
            or "Failed to resolve" in text:
        return "serveur introuvable (pas d'accès à internet, ou nom de serveur inconnu)"
    if "SSL" in names or "CERTIFICATE" in text:
        return "connexion sécurisée refusée (certificat non reconnu, ou proxy d'entreprise)"
    if "Timeout" in names or "timed out" in text:
        return "le serveur n'a pas répondu à temps"
    if "ConnectionRefused" in names or "Connection refused" in text:
        return "connexion refusée par le serveur"
    if "InvalidURL" in names or "MissingSchema" in names or "InvalidSchema" in names:
        return "adresse (URL) invalide"
    if "Connection" in names:
        return "connexion impossible"
    if isinstance(exc, OSError) and exc.strerror:
        return f"erreur système : {exc.strerror}"
    return "erreur réseau"
