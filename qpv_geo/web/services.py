"""What the routes share: settings, the cached engine, the geocoder, the map index, and the
validated files of ``/lot``; plus the work behind the routes (verdicts, suggestions, data
versions, file validation) and the warm-up run before the first request.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qpv_geo import __version__
from qpv_geo.eligibility.engine import STATUSES, Engine
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.eligibility.wording import libelles
from qpv_geo.exceptions import (
    GeocoderQueryError,
    QpvGeoError,
)
from qpv_geo.geocoding import LocalGeocoder, geocoder_from_settings, geocoder_info
from qpv_geo.geocoding.coordinates import coordinates_result
from qpv_geo.geocoding.messages import CONSEILS, description_web
from qpv_geo.reporting.osm import load_roads, roads_geojson
from qpv_geo.settings import Settings
from qpv_geo.web._present import (
    NOTE_ADRESSES_DEMO,
    now_paris,
    verdict_payload,
)
from qpv_geo.web._store import DiskStore
from qpv_geo.web.schemas import (
    MAX_ADRESSE,
    Lieu,
    Suggestion,
    Suggestions,
    VerdictItem,
    VerdictsOut,
)

log = logging.getLogger("qpv_geo.web")


class _PerimeterIndex:
    """GeoJSON features of every perimeter, with their lon/lat bounds for a quick filter."""

    def __init__(self, reference: Any) -> None:
        import shapely

        features: list[dict[str, Any]] = []
        bounds: list[np.ndarray] = []
        # SEM's communes, else the outlines installed for the territory (simplified: drawn,
        # never judged with)
        communes = reference.communes if len(reference.communes) or \
            reference.background_communes is None else reference.background_communes
        layers = (("commune", communes, "insee_com", "nom"),
                  ("qpv_hors_sem", reference.qpv_hors_sem, "code_qp", "lib_qp"),
                  ("qva", reference.qva, "code_qp", "lib_qp"),
                  ("qpv", reference.qpv, "code_qp", "lib_qp"))
        for kind, gdf, code_col, name_col in layers:
            if len(gdf) == 0:
                continue
            geoms = gdf.geometry.values
            for code, name, geom, b in zip(gdf[code_col], gdf[name_col], geoms,
                                           shapely.bounds(np.asarray(geoms)), strict=True):
                features.append({
                    "type": "Feature",
                    "properties": {"type": kind, "code": str(code), "nom": str(name)},
                    "geometry": shapely.geometry.mapping(geom),
                })
                bounds.append(b)
        self.features = features
        self.bounds = np.array(bounds) if bounds else np.zeros((0, 4))

    def around(self, lon: float, lat: float, radius_m: float) -> list[dict[str, Any]]:
        dlat = radius_m / 111_320.0
        dlon = radius_m / (111_320.0 * max(0.1, math.cos(math.radians(lat))))
        b = self.bounds
        sel = np.flatnonzero((b[:, 0] <= lon + dlon) & (b[:, 2] >= lon - dlon)
                             & (b[:, 1] <= lat + dlat) & (b[:, 3] >= lat - dlat))
        return [self.features[i] for i in sel]


def server_folder(settings: Settings) -> Path:
    """Where this server keeps results, uploads and the form secret:
    ``Settings.dossier_serveur``, else ``<cache_dir>/web/serveur``."""
    configured = str(settings.dossier_serveur or "").strip()
    return Path(configured).expanduser() if configured else settings.cache_dir / "web" / "serveur"


class Services:
    """What the routes share: settings, the cached engine, the geocoder, the map index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._geocoder: Any = None
        self._index: tuple[int, _PerimeterIndex] | None = None
        #: The folder shared by the worker processes of this server (see :mod:`._store`).
        self.folder = server_folder(settings)
        self.results = DiskStore(self.folder / "resultats")
        #: Files uploaded on /lot, kept as long as their results to re-run with other columns.
        self.sources = DiskStore(self.folder / "sources")

    def engine(self) -> Engine:
        with self._lock:
            return engine_from_settings(self.settings)

    def geocoder(self) -> Any:
        with self._lock:
            if self._geocoder is None:
                self._geocoder = geocoder_from_settings(self.settings)
            return self._geocoder

    def geocoder_in_memory(self) -> bool:
        """True when addresses are answered from memory: the local geocoder, already loaded
        (no network, no file to read; about a millisecond of work per address)."""
        return isinstance(self._geocoder, LocalGeocoder)

    def roads(self, lon: float, lat: float, radius_m: float) -> dict[str, Any]:
        """OpenStreetMap streets within ``radius_m`` of the point (compact GeoJSON, with the
        attribution and the coverage note); no streets outside Saint-Étienne."""
        dlat = radius_m / 111_320.0
        dlon = radius_m / (111_320.0 * max(0.1, math.cos(math.radians(lat))))
        return roads_geojson((lon - dlon, lat - dlat, lon + dlon, lat + dlat))

    def perimeters(self) -> _PerimeterIndex:
        reference = self.engine().reference
        with self._lock:
            if self._index is None or self._index[0] != id(reference):
                self._index = (id(reference), _PerimeterIndex(reference))
            return self._index[1]

    def demo_addresses(self, geocode: Any = None) -> bool:
        """True when the local geocoder answers from its demonstration address file."""
        geocoder = self._geocoder
        for obj in (geocoder, geocode):
            if obj is None:
                continue
            flag = getattr(obj, "demo", None)
            if isinstance(flag, bool) and flag:
                return True
        source = str(getattr(geocode, "source", "") or "").lower()
        return "demo" in source or "démo" in source

    def notes_and_demo(self, engine: Engine, geocodes: list[Any]) -> tuple[list[str], bool]:
        notes = list(engine.reference.notes)
        demo_adr = any(self.demo_addresses(g) for g in geocodes if g is not None)
        if demo_adr:
            notes.insert(0, NOTE_ADRESSES_DEMO)
        return notes, engine.reference.demo or demo_adr

    # -------------------------------------------------------------- verdicts
    def verdict_for_address(self, adresse: str) -> tuple[dict[str, Any], Any]:
        # coordinates pasted in the address field are coordinates, geocoder or not (a map
        # link may be longer than any address)
        geocode = coordinates_result(adresse.strip()) if adresse else None
        engine = self.engine()  # once: each call checks the installed data on disk
        if geocode is None:
            adresse = _check_adresse(adresse, sem=libelles(engine).par_defaut)
            geocode = self.geocoder().geocode(adresse)
        verdict = engine.judge_point(geocode=geocode)
        notes, demo = self.notes_and_demo(engine, [geocode])
        return verdict_payload(verdict, geocode=geocode, notes=notes, demo=demo,
                               checked_at=now_paris(), mots=libelles(engine)), geocode

    def verdict_for_point(self, lat: float, lon: float) -> dict[str, Any]:
        engine = self.engine()
        verdict = engine.judge_point(lon=lon, lat=lat)
        notes, demo = self.notes_and_demo(engine, [])
        return verdict_payload(verdict, notes=notes, demo=demo, checked_at=now_paris(),
                               mots=libelles(engine))

    def verdicts(self, lieux: list[Lieu]) -> VerdictsOut:
        n = len(lieux)
        cap = self.settings.max_batch_items
        if n > cap:
            raise BatchTooLong(n, cap)
        engine = self.engine()
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        problems: dict[int, str] = {}
        address_rows = [i for i, lieu in enumerate(lieux) if lieu.adresse is not None]
        geocodes: list[Any] = [None] * n
        for i, lieu in enumerate(lieux):
            has_point = lieu.lat is not None or lieu.lon is not None
            if lieu.adresse is not None and has_point:
                problems[i] = "donnez soit une adresse, soit lat et lon, pas les deux"
            elif lieu.adresse is None and (lieu.lat is None or lieu.lon is None):
                problems[i] = "il faut une adresse, ou lat et lon ensemble"
            elif lieu.adresse is None:
                lon[i], lat[i] = lieu.lon, lieu.lat
        address_rows = [i for i in address_rows if i not in problems]
        if address_rows:
            queries = [str(lieux[i].adresse).strip() for i in address_rows]
            results = self.geocoder().geocode_many(queries)
            for i, g in zip(address_rows, results, strict=True):
                geocodes[i] = g
                if g.found and g.lon is not None and g.lat is not None:
                    lon[i], lat[i] = g.lon, g.lat
        frame = engine.judge_lonlat(lon, lat, geocodes=geocodes if address_rows else None)
        notes, demo = self.notes_and_demo(engine, geocodes)
        checked = now_paris()
        mots = libelles(engine)
        items = []
        for i, row in enumerate(frame.to_dict(orient="records")):
            if i in problems:
                row["motifs"] = problems[i]
            payload = verdict_payload(row, geocode=geocodes[i], notes=notes, demo=demo,
                                      checked_at=checked, mots=mots)
            items.append(VerdictItem(id=lieux[i].id, **payload))
        counts = frame["status"].value_counts()
        resume = {s: int(counts.get(s, 0)) for s in STATUSES}
        return VerdictsOut(resultats=items, resume=resume, donnees=engine.reference.version,
                           notes=notes)


class BatchTooLong(QpvGeoError):
    """More places in one request than the server takes (``max_batch_items``)."""

    def __init__(self, n: int, cap: int) -> None:
        super().__init__(f"{n} lieux envoyés : au plus {cap} par requête.",
                         hint=CONSEILS["liste_trop_longue"])


def _check_adresse(adresse: str, *, sem: bool = True) -> str:
    text = adresse.strip()
    if not text:
        raise GeocoderQueryError("Adresse vide.", hint="Saisissez une adresse, ex. « 12 rue "
                                 "Jean Jaurès 42000 Saint-Étienne »." if sem else
                                 "Saisissez une adresse : numéro, rue, code postal et "
                                 "commune.")
    if len(text) > MAX_ADRESSE:
        raise GeocoderQueryError(f"Adresse trop longue ({len(text)} caractères, au plus "
                                 f"{MAX_ADRESSE}).", hint="Saisissez une seule adresse postale.")
    if any(ord(c) < 32 for c in text):
        raise GeocoderQueryError("Adresse contenant des caractères de contrôle.",
                                 hint="Saisissez l'adresse sur une seule ligne.")
    return text


def warm_up(services: Services) -> None:
    """Load the reference data, the perimeters, the streets and the geocoder before the first
    request (a failure is logged: the routes then answer 503 with the same message)."""
    try:
        engine = services.engine()
        engine.judge_point(lon=4.3871, lat=45.4605)
        services.perimeters()
        load_roads()  # read once (≈ 2 s), before the first verdict map asks for streets
    except QpvGeoError as exc:  # the routes will answer 503 with the same message
        log.warning("Données de référence indisponibles : %s", exc)
    try:
        services.geocoder()
    except QpvGeoError as exc:
        log.warning("Géocodeur indisponible : %s", exc)


def donnees_payload(services: Services) -> dict[str, Any]:
    """The data the service answers with (versions, layers, geocoder), in web words."""
    ref = services.engine().reference
    d = ref.version_dict()
    couches = {}
    for name, info in d["couches"].items():
        info = {k: (description_web(v) if isinstance(v, str) else v)
                for k, v in info.items() if k != "path"}  # no server paths, no commands
        couches[name] = info
    geo = geocoder_info(services.settings)
    return {**{k: d[k] for k in ("version", "simplifiee")},
            "notes": [description_web(n) for n in d["notes"]],
            # demo: demonstration perimeters OR the demonstration address file answers
            "demo": bool(d["demo"] or geo["demo"]),
            "couches": couches, "geocodeur": geo["geocodeur"], "geocodeur_choix": geo["choix"],
            "adresses": geo["adresses"], "adresses_demo": geo["demo"],
            "application": __version__}


def suggest_addresses(services: Services, q: str, limite: int) -> Suggestions:
    """Up to ``limite`` addresses matching what is typed (none under 3 characters)."""
    text = q.strip()
    if len(text) < 3 or any(ord(c) < 32 for c in text):
        return Suggestions(suggestions=[], methode="aucune")
    geocoder = services.geocoder()
    suggest = getattr(geocoder, "suggest", None)
    if callable(suggest):
        results, methode = list(suggest(text, limit=limite)), "suggest"
    else:
        results, methode = [geocoder.geocode(text)], "geocode"
    out = []
    seen = set()
    for r in results:
        if not getattr(r, "found", False) or r.lon is None or r.lat is None or not r.label:
            continue
        if r.label in seen:
            continue
        seen.add(r.label)
        out.append(Suggestion(label=r.label, lon=r.lon, lat=r.lat, score=r.score,
                              precision=r.precision, citycode=r.citycode, postcode=r.postcode))
    return Suggestions(suggestions=out[:limite], methode=methode)  # type: ignore[arg-type]


__all__ = ["BatchTooLong", "Services", "donnees_payload",
           "suggest_addresses", "warm_up"]
