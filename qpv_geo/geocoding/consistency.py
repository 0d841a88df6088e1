"""Does the result answer the address asked? The consistency rules applied to every geocoder.

A geocoder's score says how well *some* address matches the text, not that it is the one asked
for: « 12 rue Balay » can come back as « 12 Rue Sainte-Anne » at 0.70, « 26 allée des
Coquelicots 69002 Lyon » as an allée of Firminy. :func:`check` reads what the user wrote
(:func:`read_written`: postcode and commune, resolved against the national list of communes,
:mod:`qpv_geo.communes`; the street and house number) and compares it with the result:

* a commune or postcode written outside the territory (Saint-Étienne Métropole, or the
  ``--territoire`` given to the geocoder) → ``hors_territoire`` naming it, whatever the geocoder
  found (the point is dropped);
* a postcode that is not one of the commune written, a result in another commune than the one
  written (or than the communes of the postcode) → an issue (« à vérifier », both named);
* a street found that is not the street asked (similarity below :data:`STREET_SIM_MIN`,
  measured by ``make bench-geocoding``) → « rue trouvée : X, différente de la rue demandée » ;
* a house number asked but not found → « numéro N absent … » ;
* a street found when only a commune was written → an issue.

Issues go in :attr:`GeocodeResult.issues`; :func:`~qpv_geo.geocoding.base.reliability_issues`
turns them into « à vérifier ».
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any

from qpv_geo._francais import a, hors
from qpv_geo.communes import Commune, communes_france, name_key
from qpv_geo.geocoding.base import (
    _POSTCODE_RE,
    STOP_WORDS,
    STREET_TYPES,
    AddressQuery,
    GeocodeResult,
    _as_query,
    match_key,
    tokens,
)

#: Street similarity (0–100, see :func:`street_similarity`) under which the street found is not
#: the street asked. Measured on ``make bench-geocoding`` (positives with typos and
#: abbreviations vs absent streets): see docs/geocoding.md.
STREET_SIM_MIN = 80.0

#: Words before a commune name that make it part of a street name (« rue de Lyon »).
_LINKS = frozenset({"de", "du", "des", "d", "l", "la", "le", "les", "a", "au", "aux"})
_HOUSE_RE = re.compile(r"^\d{1,4}$")


@dataclass(frozen=True)
class Written:
    """What the user wrote, read from the query: postcode, commune, house number, street."""

    postcode: str | None = None
    commune: Commune | None = None
    #: True when the commune is set apart (a field, a postcode, a comma): it is the commune.
    #: False for trailing words that may also end a street name (« rue Paul Bert »).
    commune_certain: bool = False
    commune_words: tuple[str, ...] = ()
    number: int | None = None
    street: str = ""  # match key of the street asked


def _resolve(key: str, postcode: str | None) -> Commune | None:
    """The commune of a name (match key), preferring one served by ``postcode``, then SEM."""
    cl = communes_france()
    found = [cl.current(c) for c in cl.by_key(key)]
    if not found:
        return None
    if postcode:
        with_pc = [c for c in found if postcode in c.codes_postaux]
        if with_pc:
            found = with_pc
    sem = [c for c in found if c.in_sem]
    return (sem or found)[0]


def _segments(text: str) -> list[list[str]]:
    """Normalised words of each comma-separated part of the text."""
    return [ws for ws in (tokens(part) for part in re.split(r"[,;\n]", text)) if ws]


def read_written(query: str | AddressQuery) -> Written:
    """The postcode, commune, house number and street written in a query (text or fields)."""
    q = _as_query(query)
    return _read_written(q.adresse, q.postcode, q.city, q.citycode)


@functools.lru_cache(maxsize=4096)
def _read_written(adresse: str, postcode: str | None, city: str | None,
                  citycode: str | None) -> Written:
    # cached: the geocoders read a query before searching and the rules after
    q = AddressQuery(adresse, postcode=postcode, city=city, citycode=citycode)
    segs = _segments(q.adresse)
    postcode = (q.postcode or "").strip() or None
    commune: Commune | None = None
    certain = False
    span: tuple[int, int, int] | None = None  # (segment, start, end) of the commune words
    pc_pos: tuple[int, int] | None = None
    for si, ws in enumerate(segs):
        for wi, w in enumerate(ws):
            if len(w) == 5 and _POSTCODE_RE.match(w) and pc_pos is None:
                pc_pos = (si, wi)
                postcode = postcode or w
    if q.citycode and q.citycode.strip():
        c = communes_france().by_insee.get(q.citycode.strip())
        commune, certain = (communes_france().current(c) if c else None), c is not None
    if commune is None and q.city and q.city.strip():
        commune = _resolve(name_key(q.city), postcode)
        certain = commune is not None
    cl = communes_france()

    def key_of(words: list[str]) -> str:
        return " ".join(words)

    def serves(key: str) -> Commune | None:
        c = _resolve(key, postcode) if key and cl.has_key(key) else None
        return c if c is not None and postcode in c.codes_postaux else None

    if commune is None and pc_pos is not None:
        si, wi = pc_pos
        ws = segs[si]
        # after the postcode: « 42000 Saint-Étienne » (the rest of its part), or the first
        # words there that name a commune this postcode serves (« 42000 Saint-Étienne 12 rue »)
        key = key_of(ws[wi + 1:])
        if key and cl.has_key(key):
            commune, certain, span = _resolve(key, postcode), True, (si, wi + 1, len(ws))
        for k in range(min(6, len(ws) - wi - 1), 0, -1):
            if commune is not None:
                break
            c = serves(key_of(ws[wi + 1:wi + 1 + k]))
            if c is not None:
                commune, certain, span = c, True, (si, wi + 1, wi + 1 + k)
        if commune is None and si + 1 < len(segs) and wi == len(ws) - 1:
            key = key_of(segs[si + 1])  # « …, 42000, Saint-Étienne »
            if key and cl.has_key(key):
                commune, certain = _resolve(key, postcode), True
                span = (si + 1, 0, len(segs[si + 1]))
        if commune is None:
            # before it: « Lyon 69002 », only a commune that this postcode serves
            for k in range(min(6, wi), 0, -1):
                c = serves(key_of(ws[wi - k:wi]))
                if c is not None:
                    commune, certain, span = c, True, (si, wi - k, wi)
                    break
    if commune is None and len(segs) > 1:
        # a whole comma-separated part: « 5 place Bellecour, Lyon » / « Lyon, 5 place … ».
        # Without a postcode it may as well be a lieu-dit or a quartier (« …, Les Granges »,
        # « …, Le Bourg » are also communes elsewhere): not certain, so never « hors
        # territoire » on its own, but « à vérifier » when it is not the street found.
        for si in (len(segs) - 1, 0):
            key = key_of(segs[si])
            if key and cl.has_key(key) and not any(_HOUSE_RE.match(w) for w in segs[si]):
                commune, span = _resolve(key, postcode), (si, 0, len(segs[si]))
                certain = commune is not None and (commune.in_sem or postcode is not None)
                break
    if commune is None and segs and pc_pos is None:
        # trailing words of the text: « 5 place Bellecour Lyon » (not « rue de Lyon »)
        ws = segs[-1]
        for k in range(min(6, len(ws)), 0, -1):
            start = len(ws) - k
            if start > 0 and (ws[start - 1] in _LINKS or ws[start - 1] in STREET_TYPES):
                continue
            key = key_of(ws[start:])
            if key and cl.has_key(key):
                commune, span = _resolve(key, postcode), (len(segs) - 1, start, len(ws))
                certain = start == 0 and len(segs) == 1  # the whole text is a commune
                break
    words: list[str] = []
    commune_words: tuple[str, ...] = ()
    for si, ws in enumerate(segs):
        for wi, w in enumerate(ws):
            if pc_pos == (si, wi):
                continue
            if span is not None and span[0] == si and span[1] <= wi < span[2]:
                commune_words += (w,)
                continue
            words.append(w)
    from qpv_geo.geocoding.parsing import _split_number

    number, _rep, street = _split_number([w for w in words if w not in STOP_WORDS])
    return Written(postcode=postcode, commune=commune, commune_certain=certain,
                   commune_words=commune_words, number=number, street=" ".join(street))


def _strip_types(key: str) -> str:
    return " ".join(w for w in key.split() if w not in STREET_TYPES)


def _split_type(words: list[str], found_type: str | None) -> tuple[str | None, list[str]]:
    """(street type, name words) of a street asked; a mistyped type (« Boulevaod »,
    « Cors ») is read as the type of the street found when it is close to it."""
    from rapidfuzz import fuzz

    if not words:
        return None, words
    if words[0] in STREET_TYPES:
        return words[0], words[1:]
    if found_type and len(words) > 1 and fuzz.ratio(words[0], found_type) >= 70:
        return found_type, words[1:]
    return None, words


def compare_streets(asked: str, found: str) -> tuple[float, str | None, str | None]:
    """(similarity 0–100, type asked, type found) of two street names (match keys).

    The names without their types weigh 3/4, the full names (types included: « rue » ≠
    « avenue ») 1/4. A number of the name asked that the name found does not hold (« rue du
    8 Mai 1945 » / « … 1950 ») makes them different streets, however close the letters."""

    sim, a_type, f_type = _compare_names(asked, found)
    if {w for w in asked.split() if w.isdigit()} - {w for w in found.split() if w.isdigit()}:
        sim = min(sim, STREET_SIM_MIN - 1)
    return sim, a_type, f_type


def _compare_names(asked: str, found: str) -> tuple[float, str | None, str | None]:
    from rapidfuzz import fuzz

    f_words = found.split()
    f_type = f_words[0] if f_words and f_words[0] in STREET_TYPES else None
    f_name = " ".join(f_words[1:] if f_type else f_words)
    a_type, a_words = _split_type(asked.split(), f_type)
    a_name = " ".join(a_words)
    full = fuzz.token_sort_ratio(" ".join(filter(None, (a_type, a_name))), found)
    if not a_name or not f_name:
        return float(full), a_type, f_type
    name = max(fuzz.token_sort_ratio(a_name, f_name), fuzz.ratio(a_name, f_name))
    return 0.75 * name + 0.25 * full, a_type, f_type


def street_similarity(asked: str, found: str) -> float:
    """Similarity 0–100 of two street names (match keys), see :func:`compare_streets`."""
    return compare_streets(asked, found)[0]


def _drop_commune_words(street: str, commune: Commune | None) -> str:
    """The street asked without the (mistyped) name of the commune found at either end."""
    if commune is None or not street:
        return street
    from rapidfuzz import fuzz

    ckey = match_key(commune.nom)
    n = len(ckey.split())
    ws = street.split()
    if len(ws) > n:
        if fuzz.ratio(" ".join(ws[-n:]), ckey) >= 80:
            ws = ws[:-n]
        elif fuzz.ratio(" ".join(ws[:n]), ckey) >= 80:
            ws = ws[n:]
    return " ".join(ws)


def _names(communes: list[Commune]) -> str:
    names = sorted({c.nom for c in communes})
    return ", ".join(names[:4]) + (" …" if len(names) > 4 else "")


def _dans(commune: Commune, territoire: Any = None) -> bool:
    """True when ``commune`` is in the territory (a :class:`~qpv_geo.territoire.Territoire`;
    None: Saint-Étienne Métropole)."""
    if territoire is None:
        return commune.in_sem
    return commune.insee in territoire.communes or commune.commune in territoire.communes


def _pour_territoire(w: Written, territoire: Any) -> Written:
    """``w`` with the written commune read as the territory's when only its name chose
    another one: « Villars » alone reads SEM's Villars (42), but under the territory of
    Villars (84) it is that one (a postcode written still decides)."""
    if territoire is None or w.commune is None or _dans(w.commune, territoire) \
            or (w.postcode and w.postcode in w.commune.codes_postaux):
        return w
    cl = communes_france()
    for c in cl.by_key(name_key(w.commune.nom)):
        if _dans(cl.current(c), territoire):
            return dataclasses.replace(w, commune=cl.current(c))
    return w


def _nom(territoire: Any = None) -> str:
    return "Saint-Étienne Métropole" if territoire is None else str(territoire.nom)


def _outside_reason(w: Written, territoire: Any = None) -> str | None:
    """Why the commune or postcode written puts the address outside the territory (SEM by
    default; ``None``: it does not, or it is not sure: trailing words that may be part of the
    street name)."""
    if w.commune is not None:
        if _dans(w.commune, territoire) or not w.commune_certain:
            return None
        reason = (f"commune écrite : {w.commune.label}, {hors(_nom(territoire))} "
                  f"(INSEE {w.commune.insee})")
        if w.postcode and w.postcode not in w.commune.codes_postaux:
            reason += f" ; code postal {w.postcode} écrit"
        return reason
    if w.postcode:
        communes = communes_france().by_postcode(w.postcode)
        if communes and not any(_dans(c, territoire) for c in communes):
            return (f"code postal écrit {w.postcode} ({_names(communes)}), "
                    f"{hors(_nom(territoire))}")
    return None


def written_outside(query: str | AddressQuery, *, source: str = "",
                    territoire: Any = None) -> GeocodeResult | None:
    """The ``hors_territoire`` result of a query whose commune or postcode written is outside
    the territory (SEM by default; a :class:`~qpv_geo.territoire.Territoire` otherwise) —
    known before any geocoding (no service call, no address file needed) — else ``None``."""
    w = _pour_territoire(read_written(query), territoire)
    reason = _outside_reason(w, territoire)
    if reason is None:
        return None
    return GeocodeResult(query=query.text() if isinstance(query, AddressQuery) else str(query),
                         lon=None, lat=None, citycode=w.commune.insee if w.commune else None,
                         postcode=w.postcode, source=source, motif=reason,
                         hors_territoire=reason)


def check(query: str | AddressQuery, result: GeocodeResult,
          written: Written | None = None, territoire: Any = None) -> GeocodeResult:
    """``result`` with the consistency rules applied (issues, or ``hors_territoire`` for a
    commune or postcode written outside ``territoire``: SEM by default)."""
    if result.precision == "coordonnees":  # typed by the user: nothing to compare
        return result
    w = _pour_territoire(written or read_written(query), territoire)
    cl = communes_france()
    issues: list[str] = []
    found_commune = cl.by_insee.get(result.citycode or "") if result.citycode else None
    # 1. The commune or postcode written decides « hors territoire ».
    pc_communes = cl.by_postcode(w.postcode) if w.postcode else []
    outside: str | None = None
    in_street = bool(result.street) and bool(w.commune_words) and " ".join(
        x for x in w.commune_words if x not in STOP_WORDS) in match_key(result.street or "")
    asked_street = w.street
    if in_street and not w.commune_certain:  # « rue Paul Bert »: Bert was the street's
        asked_street = f"{w.street} {' '.join(w.commune_words)}".strip()
    if w.commune is not None and not _dans(w.commune, territoire):
        if w.commune_certain:
            outside = _outside_reason(w, territoire)
        elif not in_street:
            # trailing words that may end a street name as well: never a guess either way
            issues.append(f"« {' '.join(w.commune_words)} » en fin d'adresse : est-ce la "
                          f"commune {w.commune.label}, {hors(_nom(territoire))} ? "
                          "Précisez le code postal")
    elif w.commune is None and w.postcode:
        if not pc_communes:
            issues.append(f"code postal {w.postcode} inconnu")
        else:
            outside = _outside_reason(w, territoire)
    if outside is not None:
        return dataclasses.replace(
            result, lon=None, lat=None, label=None, score=0.0, precision=None,
            citycode=w.commune.insee if w.commune is not None else None,
            postcode=w.postcode, street=None, motif=outside, hors_territoire=outside,
            issues=(f"le géocodeur proposait « {result.label} »",) if result.label else ())
    # 2. Postcode and commune written agree; the result is in the commune written.
    commune = w.commune if (w.commune_certain or not in_street) else None
    if commune is not None and w.postcode and w.postcode not in commune.codes_postaux:
        others = [c for c in pc_communes if c.insee != commune.insee]
        issues.append(f"code postal {w.postcode} écrit, qui n'est pas celui de "
                      f"{commune.nom} ({' '.join(commune.codes_postaux)})"
                      + (f" mais de {_names(others)}" if others else ""))
    douteuse = False
    if result.found and found_commune is not None:
        # an arrondissement of the commune written is that commune (BAN answers « 69381 »
        # for « … 69001 Lyon »)
        arrondissement = found_commune.kind == "M" and commune is not None \
            and found_commune.commune == commune.insee
        if commune is not None and _dans(commune, territoire) \
                and found_commune.insee != commune.insee and not arrondissement:
            douteuse = True
            same = found_commune.nom == commune.nom  # homonyms: say which is which
            issues.append(f"résultat {a(found_commune.label if same else found_commune.nom)}, "
                          "alors que la commune écrite est "
                          f"{commune.label if same else commune.nom}")
        elif commune is None and pc_communes and found_commune.insee not in {
                c.insee for c in pc_communes}:
            douteuse = True
            issues.append(f"résultat {a(found_commune.nom)}, hors des communes du code postal "
                          f"écrit {w.postcode} ({_names(pc_communes)})")
    # 3. The street found is the street asked; the number asked was found.
    if result.found:
        asked = _drop_commune_words(asked_street, found_commune)
        found_street = match_key(result.street or "")
        if asked and found_street and result.precision in ("housenumber", "street"):
            sim, asked_type, found_type = compare_streets(asked, found_street)
            if sim < STREET_SIM_MIN:
                issues.append(f"rue trouvée : {result.street}, différente de la rue demandée "
                              f"(similarité {sim:.0f} %)")
            elif asked_type is not None and found_type != asked_type:
                # « Route Charles de Gaulle » is not « Rue Charles de Gaulle »
                issues.append(f"rue trouvée : {result.street}, d'un autre type de voie que "
                              f"celle demandée ({asked_type})")
        elif asked and result.precision == "municipality" and not result.motif:
            issues.append("voie demandée non trouvée : point de la commune")
        elif not asked and w.number is None and result.precision in ("housenumber", "street"):
            issues.append(f"aucune voie demandée, mais le géocodeur a trouvé « {result.label} »")
        if w.number is not None and result.precision == "street" and asked:
            issues.append(f"numéro {w.number} absent de la voie trouvée : position interpolée "
                          "ou point de la rue")
    if not issues:
        return result
    return dataclasses.replace(result, issues=tuple(dict.fromkeys((*result.issues, *issues))),
                               commune_douteuse=result.commune_douteuse or douteuse)


def check_many(queries: list[str | AddressQuery] | tuple[str | AddressQuery, ...],
               results: list[GeocodeResult], territoire: Any = None) -> list[GeocodeResult]:
    """:func:`check` for each (query, result) pair; identical queries are read once."""
    memo: dict[tuple[str, str | None, str | None, str | None], Written] = {}
    out = []
    for query, res in zip(queries, results, strict=True):
        q = _as_query(query)
        key = (q.adresse, q.postcode, q.city, q.citycode)
        w = memo.get(key)
        if w is None:
            w = memo[key] = read_written(q)
        out.append(check(q, res, w, territoire))
    return out
