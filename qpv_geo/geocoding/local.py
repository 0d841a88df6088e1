"""Offline geocoder over the index of a BAN-format address file (SEM communes only).

:class:`LocalGeocoder` loads (or builds, see :mod:`qpv_geo.geocoding.index`) the index, parses
a query (house number, street, commune, postcode) and matches it with rapidfuzz.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qpv_geo._files import sha256_file
from qpv_geo._http import ResultCache
from qpv_geo.exceptions import GeocoderNotConfigured
from qpv_geo.geocoding.base import AddressQuery, GeocodeResult, as_query, not_found, query_text
from qpv_geo.geocoding.consistency import (
    candidates,
    check,
    check_many,
    read_written,
    written_outside,
    written_unusable,
)
from qpv_geo.geocoding.coordinates import coordinates_result
from qpv_geo.geocoding.files import (
    INSTALL_HINT,
    LOADED_GEOCODERS,
    LOADED_LOCK,
    demo_adresses_info,
    installed_adresses_info,
)
from qpv_geo.geocoding.index import INDEX_VERSION, STREET, build_index
from qpv_geo.geocoding.messages import CONSEILS
from qpv_geo.geocoding.parsing import split_number, strip_types, word_grams
from qpv_geo.reference.text import (
    ABBREVIATIONS,
    POSTCODE_RE,
    REPETITIONS,
    STOP_WORDS,
    normalize,
    tokens,
)
from qpv_geo.settings import Settings

# ---------------------------------------------------------------------------------------------
# Local geocoder: search
# ---------------------------------------------------------------------------------------------

#: Street similarity (0–100) under which a street is not accepted (search in all SEM or in the
#: communes of a postcode), and within the one commune named.
STREET_MIN = 72.0
STREET_MIN_IN_COMMUNE = 62.0
#: Similarity (0–100) of the names without their street types (« rue », « chemin »…).
NAME_MIN = 60.0
#: Commune-name similarity (0–100) needed to recognise a commune in the text.
COMMUNE_MIN = 88.0
#: Above this many streets in scope, only the :data:`PREFILTER_KEEP` streets sharing the most
#: name 3-grams with the query go to the full scorers (issue 13: 10× the demo file).
PREFILTER_MIN = 80
PREFILTER_KEEP = 40


@dataclass
class _Parsed:
    number: int | None = None
    rep: str = ""
    street: str = ""          # match key of the street part
    insee: str | None = None  # commune recognised (or given)
    commune_sim: float = 0.0  # 0–1
    commune_given: bool = False
    postcode: str | None = None
    extra: list[str] = field(default_factory=list)


class LocalGeocoder:
    """Offline geocoder over an index of a BAN-format address file (SEM only).

    Parameters
    ----------
    path
        The address file (BAN CSV, plain or gzip).
    cache_dir
        Where the index is written (``index-<sha256>.npz``); rebuilt when the file changes.
    demo
        True for the shipped demonstration file: every result has ``source="local-demo"``.
    """

    name = "local"
    #: The territory whose communes an address may be written in
    #: (:mod:`qpv_geo.reference.territories`;
    #: None: Saint-Étienne Métropole), set by :func:`~qpv_geo.geocoding.geocoder_from_settings`.
    territoire: Any = None

    def __init__(self, path: Path, *, cache_dir: Path, demo: bool = False,
                 sha256: str | None = None) -> None:
        from rapidfuzz import fuzz, process

        self._fuzz, self._process = fuzz, process
        self.path = Path(path)
        if not self.path.is_file():
            raise GeocoderNotConfigured(f"Fichier d'adresses introuvable : {self.path}.",
                                        hint=CONSEILS["fichier_loire_court"])
        self.demo = demo
        self.source = "local-demo" if demo else "local"
        self.sha256 = sha256 or sha256_file(self.path)
        self.index_path = Path(cache_dir) / "geocodage" / f"index-{self.sha256[:24]}.npz"
        self.build_seconds: float | None = None
        self._load_or_build()

    @classmethod
    def from_settings(cls, settings: Settings, *, demo: bool = False) -> LocalGeocoder:
        """The installed BAN file (cached); the demonstration file only with ``demo=True``.

        Raises :class:`GeocoderNotConfigured` (saying how to install one) without a file."""
        if demo:
            info = demo_adresses_info()
        else:
            found = installed_adresses_info(settings)
            if found is None:
                raise GeocoderNotConfigured(
                    "Aucun fichier d'adresses BAN installé pour le géocodeur local.",
                    hint=INSTALL_HINT)
            info = found
        key = (str(info["path"]), info.get("sha256"), str(settings.cache_dir))
        with LOADED_LOCK:
            geocoder = LOADED_GEOCODERS.get(key)
            if geocoder is None:
                geocoder = cls(Path(info["path"]), cache_dir=settings.cache_dir,
                               demo=bool(info["demo"]), sha256=info.get("sha256"))
                LOADED_GEOCODERS.clear()
                LOADED_GEOCODERS[key] = geocoder
        return geocoder

    # ------------------------------------------------------------------ index
    def _load_or_build(self) -> None:
        import time

        arrays: dict[str, np.ndarray] | None = None
        if self.index_path.is_file():
            try:
                with np.load(self.index_path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                if json.loads(str(arrays["meta"][0])).get("version") != INDEX_VERSION:
                    arrays = None
            except (OSError, ValueError, KeyError):
                arrays = None
        if arrays is None:
            t0 = time.perf_counter()
            arrays = build_index(self.path)
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.index_path.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(self.index_path)
            self.build_seconds = time.perf_counter() - t0
        self._arrays = arrays
        a = arrays
        self.rows = int(json.loads(str(a["meta"][0]))["rows"])
        self.s_key: list[str] = a["s_key"].tolist()
        self.s_name: list[str] = a["s_name"].tolist()
        self.s_insee: list[str] = a["s_insee"].tolist()
        self._s_insee_arr = a["s_insee"]
        self.s_postcode: list[str] = a["s_postcode"].tolist()
        self.s_kind, self.s_start, self.s_end = a["s_kind"], a["s_start"], a["s_end"]
        self.s_lon, self.s_lat = a["s_lon"], a["s_lat"]
        self.a_num, self.a_rep, self.a_type = a["a_num"], a["a_rep"], a["a_type"]
        self.a_lon, self.a_lat, self.a_postcode = a["a_lon"], a["a_lat"], a["a_postcode"]
        self.c_insee: list[str] = a["c_insee"].tolist()
        self.c_name: dict[str, str] = dict(zip(self.c_insee, a["c_name"].tolist(), strict=True))
        self.c_postcodes = {c: tuple(p.split(";")) for c, p in
                            zip(self.c_insee, a["c_postcodes"].tolist(), strict=True)}
        self.c_point = {c: (float(x), float(y)) for c, x, y in
                        zip(self.c_insee, a["c_lon"], a["c_lat"], strict=True)}
        self.alias_key: list[str] = a["alias_key"].tolist()
        self.alias_insee: list[str] = a["alias_insee"].tolist()
        self._alias_exact: dict[str, str] = {}
        for k, c in zip(self.alias_key, self.alias_insee, strict=True):
            if len(k) >= 3:
                self._alias_exact.setdefault(k, c)
        self._by_commune: dict[str, np.ndarray] = {}
        insee_arr = a["s_insee"]
        for c in self.c_insee:
            self._by_commune[c] = np.flatnonzero(insee_arr == c)
        self._keys_by_commune = {c: [self.s_key[i] for i in idx]
                                 for c, idx in self._by_commune.items()}
        self._s_sorted = [_sorted_words(k) for k in self.s_key]
        self._sorted_by_commune = {c: [self._s_sorted[i] for i in idx]
                                   for c, idx in self._by_commune.items()}
        #: the street names without their types (« rue », « chemin »…)
        self._s_name_key = [strip_types(k) for k in self.s_key]
        self._all_idx = np.arange(len(self.s_key))
        self._by_postcode: dict[str, list[str]] = {}
        for c, pcs in self.c_postcodes.items():
            for p in pcs:
                self._by_postcode.setdefault(p, []).append(c)
        self._build_grams()

    def _build_grams(self) -> None:
        """Inverted index of the 3-grams of the street names (types left out): the candidate
        prefilter of :meth:`_street_scores`."""
        postings: dict[str, list[int]] = {}
        sizes = np.zeros(len(self.s_key), dtype=np.float64)
        for i, key in enumerate(self.s_key):
            grams = word_grams(strip_types(key) or key)
            sizes[i] = len(grams)
            for g in grams:
                postings.setdefault(g, []).append(i)
        self.grams = {g: np.asarray(v, dtype=np.int32) for g, v in postings.items()}
        self._gram_sizes = sizes
        by_key: dict[str, list[int]] = {}
        for i, key in enumerate(self.s_key):
            by_key.setdefault(key, []).append(i)
        self._by_key = {k: np.asarray(v, dtype=np.int64) for k, v in by_key.items()}

    @property
    def index_bytes(self) -> int:
        """Size of the index file on disk."""
        return self.index_path.stat().st_size if self.index_path.is_file() else 0

    # ------------------------------------------------------------------ parsing
    def _find_commune(self, words: list[str]) -> tuple[str | None, float, int, int]:
        """Commune named at the end (or start) of ``words``: (insee, sim 0–1, start, end)."""
        n = len(words)
        windows = [(k, start) for k in range(min(5, n), 0, -1)
                   for start in ((n - k, 0) if n - k != 0 else (0,))]
        # an exact name first (the usual case): what the fuzzy scan below would return
        for k, start in windows:
            insee = self._alias_exact.get(" ".join(words[start:start + k]))
            if insee is not None:
                return insee, 1.0, start, start + k
        best: tuple[str | None, float, int, int] = (None, 0.0, n, n)
        texts = {k_start: " ".join(words[k_start[1]:k_start[1] + k_start[0]])
                 for k_start in windows}
        texts = {w: t for w, t in texts.items() if len(t) >= 3}
        if not texts:
            return best
        # every window against every name at once; each row read as extractOne would (the
        # first of the best names, if it reaches the cut-off)
        scores = self._process.cdist(list(texts.values()), self.alias_key,
                                     scorer=self._fuzz.ratio, dtype=np.float64, workers=1)
        row_of = {w: r for r, w in enumerate(texts)}
        for k in range(min(5, n), 0, -1):
            for start in (n - k, 0) if n - k != 0 else (0,):
                r = row_of.get((k, start))
                if r is None:
                    continue
                j = int(scores[r].argmax())
                score = float(scores[r, j])
                if score < (100.0 if len(texts[(k, start)]) < 6 else COMMUNE_MIN):
                    continue
                if score / 100 > best[1] + 1e-9:
                    best = (self.alias_insee[j], score / 100, start, start + k)
            if best[1] >= 0.999:
                break
        return best

    def _commune_from_fields(self, q: AddressQuery) -> tuple[str | None, float]:
        if q.citycode and q.citycode.strip() in self.c_point:
            return q.citycode.strip(), 1.0
        if q.city and q.city.strip():
            words = [w for w in tokens(q.city) if w not in STOP_WORDS]
            insee, sim, start, end = self._find_commune(words)
            if insee is not None and start == 0 and end == len(words):
                return insee, sim
        return None, 0.0

    def _parse(self, q: AddressQuery) -> list[_Parsed]:
        """Hypotheses on the query: with the commune recognised in the text, and without."""
        words = tokens(q.adresse)
        postcode = (q.postcode or "").strip() or None
        rest: list[str] = []
        for w in words:
            if POSTCODE_RE.match(w) and len(w) == 5:
                postcode = postcode or w
            else:
                rest.append(w)
        words = [w for w in rest if w not in STOP_WORDS]
        given, given_sim = self._commune_from_fields(q)
        hyps: list[tuple[str | None, float, list[str], bool]] = []
        # the commune as the consistency rules read it (CEDEX, « (Loire) », former communes
        # of the national list…): the same reading on every path
        written = read_written(q)
        if written.cedex:  # « 42029 Saint-Étienne Cedex 1 »: the name decides, not the code
            postcode = None
        rest_words = [x for x in written.rest if x not in STOP_WORDS]
        read = written.commune.insee if written.commune is not None \
            and written.commune.insee in self.c_point else None
        if given is None and read is not None and written.commune_certain:
            hyps.append((read, 1.0, rest_words, True))
        elif given is None and read is not None:
            # trailing words that may also end the street's name: with and without
            hyps.append((read, 1.0, rest_words, False))
            hyps.append((None, 0.0, words, False))
        elif given is not None:
            # the commune may be repeated in the text: drop it there too
            insee, sim, start, end = self._find_commune(words)
            if insee == given and (start > 0 or end == len(words)):
                words = words[:start] + words[end:]
            hyps.append((given, given_sim, words, True))
        else:
            insee, sim, start, end = self._find_commune(words)
            if insee is not None:
                hyps.append((insee, sim, words[:start] + words[end:], False))
            hyps.append((None, 0.0, words, False))
        out = []
        for insee, sim, ws, is_given in hyps:
            number, rep, street = split_number(ws)
            out.append(_Parsed(number=number, rep=rep, street=" ".join(street), insee=insee,
                               commune_sim=sim, commune_given=is_given, postcode=postcode))
        return out

    # ------------------------------------------------------------------ search
    def _street_scores(self, key: str, insees: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """(street indices, similarity 0–100) of the streets of these communes (or all)."""
        if insees is None:
            idx = self._all_idx
        elif len(insees) == 1:
            idx = self._by_commune.get(insees[0], self._all_idx[:0])
        else:
            idx = np.concatenate([self._by_commune.get(c, self._all_idx[:0]) for c in insees])
        if len(idx) == 0:
            return idx, np.zeros(0)
        exact = self._by_key.get(key)
        if exact is not None:
            # the very name typed: nothing scores higher, no need to compare with the others
            if insees is not None:
                s_insee = self.s_insee
                exact = np.asarray([i for i in exact.tolist() if s_insee[i] in insees],
                                   dtype=np.int64)
            if len(exact):
                return exact, np.full(len(exact), 100.0)
        if len(idx) > PREFILTER_MIN:
            idx = self._prefilter(key, idx)
            if len(idx) == 0:
                return idx, np.zeros(0)
        if insees is not None and len(insees) == 1 and len(idx) == len(
                self._by_commune.get(insees[0], ())):
            choices, sorted_choices = self._keys_by_commune[insees[0]], \
                self._sorted_by_commune[insees[0]]
        else:
            ids = idx.tolist()
            s_key, s_sorted = self.s_key, self._s_sorted
            choices = [s_key[i] for i in ids]
            sorted_choices = [s_sorted[i] for i in ids]
        cdist, fuzz = self._process.cdist, self._fuzz
        # token_sort_ratio is the ratio of the words sorted: the names' are sorted once
        a = cdist([_sorted_words(key)], sorted_choices, scorer=fuzz.ratio, workers=1)[0]
        b = cdist([key], choices, scorer=fuzz.token_set_ratio, workers=1)[0]
        c = cdist([key], choices, scorer=fuzz.ratio, workers=1)[0]
        return idx, (0.4 * a + 0.3 * b + 0.3 * c).astype(np.float64)

    def _prefilter(self, key: str, idx: np.ndarray) -> np.ndarray:
        """The :data:`PREFILTER_KEEP` streets of ``idx`` sharing the most name 3-grams with
        ``key`` (those sharing none cannot reach the similarity floor)."""
        grams = word_grams(strip_types(key) or key)
        lists = [self.grams[g] for g in grams if g in self.grams]
        if not lists:
            return idx[:0]
        # grams shared by more than 1/8 of the streets say little and cost the most
        common = len(self.s_key) / 8
        rare = [x for x in lists if len(x) <= common]
        if len(rare) >= max(2, len(lists) // 2):
            lists = rare
        shared = np.bincount(np.concatenate(lists), minlength=len(self.s_key))
        if len(idx) != len(self.s_key):
            shared = shared[idx]
        hit = np.flatnonzero(shared)
        if len(hit) > PREFILTER_KEEP:
            # the best PREFILTER_KEEP by Dice coefficient of the gram sets (a long name
            # sharing a few grams ranks below), and the streets tied with the last one (≤ 3×)
            c = shared[hit] / (len(grams) + self._gram_sizes[idx[hit]])
            kth = np.partition(c, len(hit) - PREFILTER_KEEP)[len(hit) - PREFILTER_KEEP]
            keep = c >= kth
            if keep.sum() > 3 * PREFILTER_KEEP:
                keep = c > kth
                if keep.sum() < PREFILTER_KEEP:
                    tied = np.flatnonzero(c == kth)[:PREFILTER_KEEP - int(keep.sum())]
                    keep[tied] = True
            hit = hit[keep]
        return idx[hit]

    def _candidates(self, p: _Parsed, limit: int) -> list[tuple[float, int, float]]:
        """Best streets for a hypothesis: (score 0–1, street index, street sim 0–1)."""
        if not p.street:
            return []
        pc_communes = self._by_postcode.get(p.postcode or "", [])
        if p.insee is not None:
            scopes: list[list[str] | None] = [[p.insee]]
        elif pc_communes:
            scopes = [pc_communes, None]
        else:
            scopes = [None]
        out: list[tuple[float, int, float]] = []
        for scope in scopes:
            idx, sims = self._street_scores(p.street, scope)
            if len(idx) == 0:
                continue
            k = max(limit, 3)
            if len(sims) > k:  # the k best without sorting everything
                part = np.argpartition(-sims, k - 1)[:k]
                top = part[np.argsort(-sims[part], kind="stable")]
            else:
                top = np.argsort(-sims, kind="stable")
            floor = STREET_MIN_IN_COMMUNE if scope is not None and len(scope) == 1 else STREET_MIN
            name = strip_types(p.street)
            for j in top:
                sim = float(sims[j])
                if sim < floor:
                    break
                i = int(idx[j])
                # the name itself must look alike, not just « rue » and a few letters
                other = self._s_name_key[i]
                if name and other and self._fuzz.token_set_ratio(name, other) < NAME_MIN:
                    continue
                out.append((self._street_score(p, i, sim / 100), i, sim / 100))
            if out and max(o[2] for o in out) >= 0.9:
                break
        out.sort(key=lambda o: -o[0])
        seen: set[int] = set()
        uniq = []
        for o in out:
            if o[1] not in seen:
                seen.add(o[1])
                uniq.append(o)
        return uniq[:limit]

    def _street_score(self, p: _Parsed, i: int, sim: float) -> float:
        """BAN-like score of a street for a hypothesis: name similarity × commune agreement."""
        insee = self.s_insee[i]
        if p.insee is not None:
            factor = p.commune_sim if insee == p.insee else 0.7
        elif p.postcode:
            # the street's own postcode first (42230 is shared by two communes)
            factor = (0.97 if self.s_postcode[i] == p.postcode else
                      0.95 if insee in self._by_postcode.get(p.postcode, ()) else 0.85)
        else:
            factor = 0.9
        if p.postcode and p.insee is not None and p.postcode not in self.c_postcodes.get(insee, ()):
            factor -= 0.05
        return sim * factor

    def _result_for(self, query: str, p: _Parsed, score: float, i: int) -> GeocodeResult:
        insee = self.s_insee[i]
        city = self.c_name.get(insee, "")
        start, end = int(self.s_start[i]), int(self.s_end[i])
        name = self.s_name[i]
        kind = "street" if self.s_kind[i] == STREET else "locality"
        if p.number is not None and end > start:
            nums = self.a_num[start:end]
            lo = start + int(nums.searchsorted(p.number, side="left"))
            hi = start + int(nums.searchsorted(p.number, side="right"))
            if hi > lo:
                reps = self.a_rep[lo:hi].tolist()
                exact = reps.index(p.rep) if p.rep in reps else None
                j = lo + (exact if exact is not None else 0)
                penalty = 0.0 if exact is not None else 0.05
                rep = self.a_rep[j]
                label = f"{p.number}{' ' + rep if rep else ''} {name} {self.a_postcode[j]} {city}"
                return GeocodeResult(query, float(self.a_lon[j]), float(self.a_lat[j]),
                                     label=label, score=_clip(score - penalty),
                                     precision="housenumber", citycode=insee,
                                     postcode=str(self.a_postcode[j]), source=self.source,
                                     street=name, type_position=str(self.a_type[j]) or None)
            # Unknown number: interpolate between the neighbours of the same parity.
            point, motif = self._interpolate(start, end, p.number)
            if point is not None:
                return GeocodeResult(query, point[0], point[1],
                                     label=f"{name} {self.s_postcode[i]} {city}",
                                     score=_clip(score * 0.9), precision="street",
                                     citycode=insee, postcode=self.s_postcode[i],
                                     source=self.source, motif=motif, street=name)
            motif = (f"numéro {p.number} absent du fichier d'adresses : point au milieu de "
                     "la voie")
        else:
            motif = None
            if p.number is not None:
                motif = f"numéro {p.number} inconnu pour ce lieu-dit : point du lieu-dit"
        return GeocodeResult(query, float(self.s_lon[i]), float(self.s_lat[i]),
                             label=f"{name} {self.s_postcode[i]} {city}", score=_clip(score * 0.9
                             if p.number is not None else score), precision=kind,
                             citycode=insee, postcode=self.s_postcode[i], source=self.source,
                             motif=motif, street=name)

    def _interpolate(self, start: int, end: int, number: int
                     ) -> tuple[tuple[float, float] | None, str | None]:
        nums = self.a_num[start:end]
        same = np.flatnonzero((nums % 2) == (number % 2))
        if len(same) < 2:
            return None, None
        vals = nums[same]
        if not (vals < number).any() or not (vals > number).any():
            return None, None
        # the plain number (no bis/ter) of each neighbour: it sorts first
        jb = start + int(same[vals == vals[vals < number].max()][0])
        ja = start + int(same[vals == vals[vals > number].min()][0])
        nb, na = int(self.a_num[jb]), int(self.a_num[ja])
        if na - nb > 40:
            return None, None
        t = (number - nb) / (na - nb)
        lon = float(self.a_lon[jb] + t * (self.a_lon[ja] - self.a_lon[jb]))
        lat = float(self.a_lat[jb] + t * (self.a_lat[ja] - self.a_lat[jb]))
        return (lon, lat), (f"numéro {number} absent du fichier d'adresses : position "
                            f"interpolée entre le {nb} et le {na}")

    def _municipality(self, query: str, insee: str, sim: float, motif: str | None = None,
                      postcode: str | None = None) -> GeocodeResult:
        lon, lat = self.c_point[insee]
        pcs = self.c_postcodes.get(insee, ())
        if postcode in pcs:  # the postcode typed, when it is one of the commune's
            pcs = (postcode, *[p for p in pcs if p != postcode])
        return GeocodeResult(query, lon, lat, label=f"{pcs[0] if pcs else ''} "
                             f"{self.c_name[insee]}".strip(), score=_clip(0.9 * sim),
                             precision="municipality", citycode=insee,
                             postcode=pcs[0] if pcs else None, source=self.source, motif=motif)

    def search(self, query: str | AddressQuery, *, limit: int = 1,
               _hyps: list[_Parsed] | None = None) -> list[GeocodeResult]:
        """Up to ``limit`` results, best first; empty list when nothing matches."""
        q = as_query(query)
        text = query_text(query)
        hyps = _hyps if _hyps is not None else self._parse(q)
        scored: list[tuple[float, _Parsed, int]] = []
        named = hyps[0].insee is not None
        for h, p in enumerate(hyps):
            if h > 0 and scored and max(s[0] for s in scored) >= 0.95:
                break  # the first reading is already excellent
            if h > 0 and named and not hyps[0].street and hyps[0].number is None:
                break  # only a commune was written (« 42100 Saint-Étienne »): no street
            for score, i, sim in self._candidates(p, limit):
                # Ignoring a commune named in the text is only right when its words are
                # really part of the street name (« rue de Saint-Chamond » at Firminy).
                if h > 0 and named and self.s_insee[i] != hyps[0].insee and sim < 0.95:
                    continue
                scored.append((score, p, i))
        scored.sort(key=lambda s: -s[0])
        results: list[GeocodeResult] = []
        seen: set[int] = set()
        for score, p, i in scored:
            if i in seen:
                continue
            seen.add(i)
            results.append(self._result_for(text, p, score, i))
            if len(results) >= limit:
                break
        if results:
            return results
        # No street: the commune alone (« 42100 Saint-Étienne »), else nothing.
        for p in hyps:
            insee, sim = p.insee, p.commune_sim
            if insee is None and p.postcode and len(self._by_postcode.get(p.postcode, [])) == 1:
                insee, sim = self._by_postcode[p.postcode][0], 0.9
            if insee is not None:
                motif = (f"voie « {p.street} » non trouvée dans la commune" if p.street
                         else None)
                return [self._municipality(text, insee, sim, motif, p.postcode)]
        return []

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        """The best result for one address (``found`` False with a ``motif`` otherwise),
        checked against what was written (:func:`~qpv_geo.geocoding.consistency.check`)."""
        return check(query, self._geocode_raw(query), territoire=self.territoire)

    def _geocode_raw(self, query: str | AddressQuery) -> GeocodeResult:
        typed = coordinates_result(query)
        if typed is not None:
            return typed

        outside = written_outside(query, source=self.source, territoire=self.territoire) \
            or written_unusable(query, source=self.source)
        if outside is not None:  # « … 69002 Lyon »: no need to search SEM's streets
            return outside
        if self.territoire is not None and written_outside(query, source=self.source):
            # in the territory, but the address file covers SEM's communes only
            return not_found(query, "adresse hors du fichier d'adresses installé (communes de "
                             "Saint-Étienne Métropole seulement) : "
                             + CONSEILS["hors_fichier_adresses"].cli, source=self.source)
        text = query_text(query)
        if not normalize(text):
            return not_found(query, "adresse vide", source=self.source)
        if len(text) > 300:
            return not_found(query, "adresse trop longue (plus de 300 caractères)",
                             source=self.source)
        hyps = self._parse(as_query(query))
        unplaced = hyps[0].insee is None and hyps[0].postcode is None
        results = self.search(query, limit=8 if unplaced else 1, _hyps=hyps)
        if results:
            best = results[0]
            if unplaced:
                # the same street in other SEM communes, as good: the commune decides
                others = candidates(query, results)
                if others:
                    return dataclasses.replace(best, alternatives=others)
            return best
        return not_found(query, "adresse non trouvée dans le fichier d'adresses : ni voie ni "
                         "commune de Saint-Étienne Métropole reconnue", source=self.source)

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        """One result per query, same order; identical queries are geocoded once.

        ``progress`` is called with the number of queries just finished (an increment).
        """
        qs = [as_query(q) for q in queries]

        # another territory: its own keys (« hors territoire » depends on it)
        t = {} if self.territoire is None else {"t": str(self.territoire.code)}
        keys = [ResultCache.key({"v": 4, "index": self.sha256, "q": " ".join(q.adresse.split()),
                                 "postcode": q.postcode or None, "city": q.city or None,
                                 "citycode": q.citycode or None, **t}) for q in qs]
        # Results are kept on disk per address file: a batch interrupted by Ctrl-C or a crash
        # resumes without geocoding again what was done.
        cache = self._results_cache()
        memo: dict[str, GeocodeResult] = {
            key: GeocodeResult(**value) for key, value in cache.get_many(list(set(keys))).items()}
        new: dict[str, Any] = {}
        out: list[GeocodeResult] = []
        for k, (q, key) in enumerate(zip(qs, keys, strict=True)):
            res = memo.get(key)
            if res is None:
                res = memo[key] = self._geocode_raw(q)
                new[key] = res.__dict__
            out.append(res if res.query == query_text(queries[k]) else GeocodeResult(
                **{**res.__dict__, "query": query_text(queries[k])}))
            if progress is not None and (k % 100 == 99 or k == len(queries) - 1):
                progress(100 if k % 100 == 99 else (k % 100) + 1)
            if len(new) >= 1000:
                cache.set_many(new)
                new = {}
        if new:
            cache.set_many(new)
        return check_many(qs, out, self.territoire)

    def _results_cache(self) -> Any:
        if getattr(self, "_cache", None) is None:
            self._cache = ResultCache(self.index_path.with_name(
                f"resultats-{self.sha256[:24]}.sqlite"))
        return self._cache

    def suggest(self, text: str, *, limit: int = 5) -> list[GeocodeResult]:
        """Suggestions as one types: the streets and lieux-dits whose words *start* with the
        words typed (« rue de la répu » → Rue de la République, « Montreynaud » → the
        lieu-dit), with the number typed when the street has it, merged with the fuzzy
        search's good answers (a typo in a whole word); then the commune."""
        if len(normalize(text)) < 3:
            return []
        found = self.search(text, limit=limit)
        good = [r for r in found if r.score >= 0.8 and r.precision != "municipality"]
        out = good + self._prefix_suggestions(text, limit)
        out += [r for r in found if r not in good]
        seen: set[str] = set()
        unique = []
        for r in out:
            if r.label and r.label not in seen:
                seen.add(r.label)
                unique.append(r)
        return unique[:limit]

    def _word_index(self) -> tuple[list[str], list[np.ndarray]]:
        """Every word of the street and lieu-dit names (sorted, for prefix look-ups) with the
        streets that hold it; the words of each commune's names count for its streets."""
        cached = getattr(self, "_words", None)
        if cached is not None:
            return cached
        postings: dict[str, set[int]] = {}
        for i, key in enumerate(self.s_key):
            for w in key.split():
                postings.setdefault(w, set()).add(i)
        for key, insee in zip(self.alias_key, self.alias_insee, strict=True):
            streets = self._by_commune.get(insee)
            if streets is None:
                continue
            for w in key.split():
                postings.setdefault(w, set()).update(streets.tolist())
        words = sorted(postings)
        self._words = (words, [np.fromiter(postings[w], dtype=np.int64) for w in words])
        return self._words

    def _streets_with_prefix(self, prefix: str) -> np.ndarray:
        import bisect

        words, ids = self._word_index()
        lo = bisect.bisect_left(words, prefix)
        hi = bisect.bisect_left(words, prefix + "\uffff")
        if hi <= lo:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(ids[lo:hi]))

    def _prefix_suggestions(self, text: str, limit: int) -> list[GeocodeResult]:
        """Streets whose name (or commune) has a word starting with each word typed; the
        number typed first is looked up on each (:meth:`_result_for`)."""

        words = normalize(text).split()
        number, rep = None, ""
        if words and words[0].isdigit() and len(words[0]) <= 5:
            number = int(words.pop(0))
            if words and words[0] in REPETITIONS and len(words) > 1:
                rep = REPETITIONS[words.pop(0)]
        words = [w for w in words if w not in STOP_WORDS and not w.isdigit()]
        if not words:
            return []
        hits: np.ndarray | None = None
        for w in words:
            found = self._streets_with_prefix(w)
            full = ABBREVIATIONS.get(w)
            if full:
                found = np.union1d(found, self._streets_with_prefix(full.split()[0]))
            hits = found if hits is None else np.intersect1d(hits, found)
            if not len(hits):
                return []
        assert hits is not None
        # Shortest names first (the typed words are most of them), streets before lieux-dits.
        order = sorted(hits.tolist(), key=lambda i: (len(self.s_key[i]), int(self.s_kind[i]),
                                                     self.s_name[i]))
        parsed = _Parsed(number=number, rep=rep)
        return [self._result_for(text, parsed, 0.7, i) for i in order[:limit]]


def _sorted_words(key: str) -> str:
    """The words of ``key`` in sorted order (the form :func:`rapidfuzz.fuzz.token_sort_ratio`
    compares)."""
    return " ".join(sorted(key.split()))


def _clip(score: float) -> float:
    return round(min(1.0, max(0.0, float(score))), 4)
