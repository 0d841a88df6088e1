"""Does the result answer the address asked? The consistency rules applied to every geocoder.

A geocoder's score says how well *some* address matches the text, not that it is the one asked
for: « 12 rue Balay » can come back as « 12 Rue Sainte-Anne » at 0.70, « 26 allée des
Coquelicots 69002 Lyon » as an allée of Firminy. :func:`check` reads what the user wrote
(:func:`read_written`: postcode and commune, resolved against the national list of communes,
:mod:`qpv_geo.reference.communes`; the street and house number) and compares it with the result:

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

from rapidfuzz import fuzz

from qpv_geo._french import a, hors
from qpv_geo.geocoding.base import AddressQuery, GeocodeResult, as_query, not_found
from qpv_geo.geocoding.parsing import forget_split_numbers, split_number
from qpv_geo.reference.communes import (
    Commune,
    communes_france,
    departement_of,
    departement_of_postcode,
    name_key,
)
from qpv_geo.reference.profiles import profil
from qpv_geo.reference.text import (
    POSTCODE_RE,
    STOP_WORDS,
    STREET_TYPES,
    clear_text_caches,
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
_ARTICLES = frozenset({"le", "la", "les", "l"})


@dataclass(frozen=True)
class Written:
    """What the user wrote, read from the query: postcode, commune, house number, street."""

    postcode: str | None = None
    commune: Commune | None = None
    #: True when the commune is set apart (a field, a postcode, a comma, « (Loire) »): it is
    #: the commune. False for trailing words that may also end a street name (« rue Paul
    #: Bert »), for a lieu-dit-like name alone (« Les Granges ») or a generic word (« Loire »).
    commune_certain: bool = False
    commune_words: tuple[str, ...] = ()
    number: int | None = None
    street: str = ""  # match key of the street asked
    #: The postcode is a CEDEX code (not a postcode of any commune) of the département of
    #: the commune written with it (« 42029 Saint-Étienne Cedex 1 »).
    cedex: bool = False
    #: A commune written that is not one of the national list (a commune cell, the words
    #: after a postcode): never ignored, the verdict is « à vérifier » naming it.
    unread: str | None = None
    #: The words of the address without the postcode, the commune, « Cedex 1 », « BP 512 »
    #: (what the local geocoder searches the street in).
    rest: tuple[str, ...] = ()
    #: The text is a street type alone (« rue », « Cours »): neither an address nor a commune.
    bare_type: bool = False
    #: The text is a generic name alone (« Le Moulin », « Mairie », « Le Bourg »): no number,
    #: no commune, no postcode — a lieu-dit or a building of any village.
    generic: bool = False


def _resolve(key: str, postcode: str | None, departement: str | None = None
             ) -> Commune | None:
    """The commune of a name (match key), preferring one served by ``postcode`` (or of the
    ``departement`` written: « (Loire) », a CEDEX code), then SEM."""
    cl = communes_france()
    found = [cl.current(c) for c in cl.by_key(key)]
    if not found:
        return None
    if departement:
        in_dep = [c for c in found if c.departement == departement]
        if in_dep:
            found = in_dep
    if postcode:
        with_pc = [c for c in found if postcode in c.codes_postaux]
        if with_pc:
            found = with_pc
    sem = [c for c in found if c.in_sem]
    return (sem or found)[0]


def _mistyped(key: str, postcode: str | None) -> Commune | None:
    """The commune of ``postcode`` (of its département for a CEDEX code) whose name ``key``
    is a typo of (« 42000 Saint-Etiene »): the postcode says where, the name only has to
    agree (similarity ≥ 80 %, as :func:`_drop_commune_words`)."""
    if not postcode or not key:
        return None

    cl = communes_france()
    served = cl.by_postcode(postcode)
    if not served:  # a CEDEX code: the communes of its département
        dep = departement_of_postcode(postcode)
        served = [c for c in cl.by_insee.values() if c.departement == dep and c.kind == "C"]
    best = max(((_agreement(key, name_key(c.nom)), c) for c in served),
               default=None, key=lambda sc: sc[0])
    return cl.current(best[1]) if best is not None and best[0] >= 80 else None


def _agreement(written: str, name: str) -> float:
    """How much a commune name written (a key) is ``name`` (a key), 0–100: mistyped
    (similarity), or its first words (« Le Chambon » for Le Chambon-Feugerolles,
    « Andrézieux » for Andrézieux-Bouthéon)."""
    if len(written) >= 5 and name.startswith(written + " "):
        return 100.0
    return fuzz.ratio(written, name)


#: Words that alone are not a commune, even when some commune bears that name (« Rue »,
#: Somme; « Le Bourg », Lot; « Loire » read as Loiré): street types, département names and
#: what people write for a place in a village.
_GENERIC = frozenset({"bourg", "le bourg", "mairie", "la mairie", "centre", "centre ville",
                      "gare", "la gare", "eglise", "l eglise", "poste", "la poste", "ecole",
                      "stade", "cimetiere", "chateau", "le chateau", "moulin", "le moulin",
                      "pont", "le pont", "village", "hameau", "quartier", "france"})
_POSTAL_CODES = frozenset({"bp", "cs", "tsa"})
_PAREN = re.compile(r"\(\s*([^()]{1,40}?)\s*\)")


def _is_generic(key: str) -> bool:
    """True for a name that alone is not a commune: a street type, a département, a word
    of :data:`_GENERIC`."""
    words = key.split()
    if key in _GENERIC or all(w in STREET_TYPES or w in STOP_WORDS for w in words):
        return True
    dep = departement_of(key) if len(words) <= 4 and not key.isdigit() else None
    # « Loire » is no commune of the Loire (Loiré is in Maine-et-Loire); « Paris » is Paris
    return dep is not None and not any(c.departement == dep
                                       for c in communes_france().by_key(key))


def _drop_postal(words: list[str]) -> list[str]:
    """``words`` without « cedex [1] », « bp 512 », « cs 70001 », « tsa 1234 »."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "cedex":
            i += 2 if i + 1 < len(words) and words[i + 1].isdigit() \
                and len(words[i + 1]) <= 2 else 1
            continue
        if w in _POSTAL_CODES and i + 1 < len(words) and words[i + 1].isdigit():
            i += 2
            continue
        out.append(w)
        i += 1
    return out


def _departement_hint(text: str) -> tuple[str, str | None]:
    """``text`` without a département written in brackets (« Saint-Étienne (Loire) »,
    « (42) »), and that département."""
    hint: str | None = None

    def drop(m: re.Match[str]) -> str:
        nonlocal hint
        dep = departement_of(m.group(1))
        if dep is None:
            return m.group(0)
        hint = dep
        return " , " if m.end() < len(m.string.rstrip()) else " "

    return _PAREN.sub(drop, text), hint


_POSTCODE_SPACED = re.compile(r"(?<![\d,.])\b(\d{2}) (\d{3})\b(?=\s+[^\W\d])")


def _join_postcode(m: re.Match[str]) -> str:
    """« 42 000 Saint-Étienne » → « 42000 Saint-Étienne » when 42000 is a postcode."""
    code = m.group(1) + m.group(2)
    return code if communes_france().is_postcode(code) else m.group(0)


_PARTS = re.compile(r"[,;\n]")
_POSTAL_WORDS = re.compile(r"(?i)\b(cedex|bp|cs|tsa)\b\s*\d*")


def _segments(text: str) -> list[list[str]]:
    """Normalised words of each comma-separated part of the text (« Cedex 1 », « BP 512 »
    dropped)."""
    segs = [_drop_postal(tokens(part)) for part in _PARTS.split(text)]
    return [ws for ws in segs if ws and ws != ["france"]]


def read_written(query: str | AddressQuery) -> Written:
    """The postcode, commune, house number and street written in a query (text or fields)."""
    q = as_query(query)
    return _read_written(q.adresse, q.postcode, q.city, q.citycode)


def forget_read_queries() -> None:
    """Forget the queries read so far (their words, their commune): a benchmark's cold run."""
    _read_written.cache_clear()
    clear_text_caches()
    forget_split_numbers()


def _raw_after(text: str, postcode: str) -> str:
    """What follows ``postcode`` in ``text`` up to the next comma, as written."""
    m = re.search(rf"(?<!\d){postcode}(?!\d)\s*([^,;\n]*)", text)
    raw = m.group(1) if m else ""
    raw = _POSTAL_WORDS.sub(" ", raw)
    return " ".join(raw.split()).strip(" -")


@functools.lru_cache(maxsize=4096)
def _read_written(adresse: str, postcode: str | None, city: str | None,
                  citycode: str | None) -> Written:
    # cached: the geocoders read a query before searching and the rules after
    text, hint = _departement_hint(_POSTCODE_SPACED.sub(_join_postcode, adresse or ""))
    segs = _segments(text)
    postcode = (postcode or "").strip() or None
    commune: Commune | None = None
    certain = False
    unread: str | None = None
    span: tuple[int, int, int] | None = None  # (segment, start, end) of the commune words
    pc_pos: tuple[int, int] | None = None
    for si, ws in enumerate(segs):
        for wi, w in enumerate(ws):
            if len(w) == 5 and POSTCODE_RE.match(w) and pc_pos is None:
                pc_pos = (si, wi)
                postcode = postcode or w
    cl = communes_france()
    # a postcode of no commune (« 42029 », a CEDEX code): its département still counts
    pc_dep = departement_of_postcode(postcode) if postcode and not cl.is_postcode(postcode) \
        else None
    if citycode and citycode.strip():
        c = cl.by_insee.get(citycode.strip())
        commune, certain = (cl.current(c) if c else None), c is not None
        if c is None:
            unread = citycode.strip()
    if commune is None and city and city.strip():
        city_text, city_hint = _departement_hint(city)
        city_words = []
        for x in _drop_postal(tokens(city_text)):  # « 42000 Saint-Étienne » in the cell
            if len(x) == 5 and POSTCODE_RE.match(x):
                postcode = postcode or x
            else:
                city_words.append(x)
        if postcode and pc_dep is None and not cl.is_postcode(postcode):
            pc_dep = departement_of_postcode(postcode)
        commune = _resolve(" ".join(city_words), postcode, city_hint or pc_dep) \
            if city_words else None
        if commune is None and city_words:
            commune = _mistyped(" ".join(city_words), postcode)
        certain = commune is not None
        if commune is None:
            unread = city.strip()

    def key_of(words: list[str]) -> str:
        return " ".join(words)

    def serves(key: str) -> Commune | None:
        c = _resolve(key, postcode, pc_dep) if key and cl.has_key(key) else None
        if c is None:
            return None
        return c if postcode in c.codes_postaux or c.departement == pc_dep else None

    if commune is None and pc_pos is not None:
        si, wi = pc_pos
        ws = segs[si]
        # after the postcode: « 42000 Saint-Étienne » (the rest of its part), or the first
        # words there that name a commune this postcode serves (« 42000 Saint-Étienne 12 rue »)
        key = key_of(ws[wi + 1:])
        if key and cl.has_key(key):
            commune, certain, span = _resolve(key, postcode, pc_dep), True, (si, wi + 1, len(ws))
            if commune is not None and postcode not in commune.codes_postaux and not pc_dep:
                # « 42500 Le Chambon »: Le Chambon-Feugerolles, which 42500 serves, not the
                # Le Chambon of the Ardèche
                commune = _mistyped(key, postcode) or commune
        for k in range(min(6, len(ws) - wi - 1), 0, -1):
            if commune is not None:
                break
            c = serves(key_of(ws[wi + 1:wi + 1 + k]))
            if c is not None:
                commune, certain, span = c, True, (si, wi + 1, wi + 1 + k)
        if commune is None and si + 1 < len(segs) and wi == len(ws) - 1:
            key = key_of(segs[si + 1])  # « …, 42000, Saint-Étienne »
            if key and cl.has_key(key):
                commune, certain = _resolve(key, postcode, pc_dep), True
                span = (si + 1, 0, len(segs[si + 1]))
        if commune is None:
            # before it: « Lyon 69002 », only a commune that this postcode serves
            for k in range(min(6, wi), 0, -1):
                c = serves(key_of(ws[wi - k:wi]))
                if c is not None:
                    commune, certain, span = c, True, (si, wi - k, wi)
                    break
        after = ws[wi + 1:]
        if commune is None and unread is None and after and after[0] not in STREET_TYPES \
                and not any(ch.isdigit() for w in after for ch in w) \
                and not _is_generic(key_of(after)):  # « 42000 France »
            # words after the postcode, no number, no street type: a commune, mistyped
            # (« 42000 Saint-Etiene ») or unreadable
            commune = _mistyped(key_of(after), postcode)
            if commune is not None:
                certain, span = True, (si, wi + 1, len(ws))
            else:
                unread = _raw_after(text, ws[wi]) or " ".join(after)
    if commune is None and len(segs) > 1:
        # a whole comma-separated part: « 5 place Bellecour, Lyon » / « Lyon, 5 place … ».
        # Without a postcode it may as well be a lieu-dit or a quartier (« …, Les Granges »,
        # « …, Le Bourg » are also communes elsewhere): not certain, so never « hors
        # territoire » on its own, but « à vérifier » when it is not the street found.
        for si in (len(segs) - 1, 0):
            key = key_of(segs[si])
            if key and cl.has_key(key) and (not any(_HOUSE_RE.match(w) for w in segs[si])
                                            or cl.by_key(key)[0].kind == "M"):
                commune, span = _resolve(key, postcode, hint), (si, 0, len(segs[si]))
                certain = commune is not None and not _is_generic(key) and (
                    commune.in_sem or postcode is not None
                    or (hint is not None and commune.departement == hint)
                    or cl.by_key(key)[0].kind == "M")  # « …, Lyon 3e »
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
                commune, span = _resolve(key, postcode, hint), (len(segs) - 1, start, len(ws))
                kind = cl.by_key(key)[0].kind
                # the whole text is a commune (not a generic word nor a lieu-dit-like name
                # of elsewhere: « Les Granges »), or the département follows it
                # (« Saint-Étienne (Loire) »), or an arrondissement (« Lyon 3e »)
                certain = commune is not None and (
                    (start == 0 and len(segs) == 1 and not _is_generic(key)
                     and (commune.in_sem or ws[0] not in _ARTICLES))
                    or (hint is not None and commune.departement == hint) or kind == "M")
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

    number, _rep, street = split_number([w for w in words if w not in STOP_WORDS])
    all_words = [w for ws in segs for w in ws]
    bare = bool(all_words) and all(w in STREET_TYPES or w in STOP_WORDS for w in all_words) \
        and not city and not citycode and not postcode
    generic = bool(all_words) and not city and not citycode and not postcode and _is_generic(
        " ".join(all_words))
    return Written(postcode=postcode, commune=commune, commune_certain=certain,
                   commune_words=commune_words, number=number, street=" ".join(street),
                   generic=generic and not bare,
                   cedex=commune is not None and pc_dep is not None
                   and commune.departement == pc_dep,
                   unread=unread, rest=tuple(words), bare_type=bare)


def strip_types(key: str) -> str:
    return " ".join(w for w in key.split() if w not in STREET_TYPES)


def _split_type(words: list[str], found_type: str | None) -> tuple[str | None, list[str]]:
    """(street type, name words) of a street asked; a mistyped type (« Boulevaod »,
    « Cors ») is read as the type of the street found when it is close to it."""
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
    ckey = match_key(commune.nom)
    n = len(ckey.split())
    ws = street.split()
    if len(ws) > n:
        if fuzz.ratio(" ".join(ws[-n:]), ckey) >= 80:
            ws = ws[:-n]
        elif fuzz.ratio(" ".join(ws[:n]), ckey) >= 80:
            ws = ws[n:]
    return " ".join(ws)


def _same_name(written: str, commune: Commune | None) -> bool:
    """True when ``written`` is ``commune``'s name, mistyped (the measure and threshold of
    :func:`_drop_commune_words`)."""
    if commune is None:
        return False
    return max(fuzz.ratio(match_key(written), match_key(commune.nom)),
               _agreement(name_key(written), name_key(commune.nom))) >= 80


def _unread_tail(asked: str, found: str) -> str:
    """The words of the street asked after those of the street found (types left out):
    « francis garnier genia » after « allee francis garnier » → ``genia``; empty when the
    street asked is not the street found followed by other words."""
    a, f = strip_types(asked).split(), strip_types(found).split()
    if not f or len(a) <= len(f) or fuzz.ratio(" ".join(a[:len(f)]), " ".join(f)) < 85:
        return ""
    tail = [x for x in a[len(f):] if x not in STOP_WORDS]
    if not tail or any(ch.isdigit() for x in tail for ch in x) \
            or _is_generic(" ".join(tail)):
        return ""
    return " ".join(tail)


def _names(communes: list[Commune]) -> str:
    names = sorted({c.nom for c in communes})
    return ", ".join(names[:4]) + (" …" if len(names) > 4 else "")


def _dans(commune: Commune, territoire: Any = None) -> bool:
    """True when ``commune`` is in the territory (a
    :class:`~qpv_geo.reference.territories.Territoire`;
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
    return str(profil(territoire).nom)


def _outside_reason(w: Written, territoire: Any = None) -> str | None:
    """Why the commune or postcode written puts the address outside the territory (SEM by
    default; ``None``: it does not, or it is not sure: trailing words that may be part of the
    street name)."""
    if w.commune is not None:
        if _dans(w.commune, territoire) or not w.commune_certain:
            return None
        reason = (f"commune écrite : {w.commune.label}, {hors(_nom(territoire))} "
                  f"(INSEE {w.commune.insee})")
        if w.postcode and w.postcode not in w.commune.codes_postaux and not w.cedex:
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
    the territory (SEM by default; a :class:`~qpv_geo.reference.territories.Territoire` otherwise) —
    known before any geocoding (no service call, no address file needed) — else ``None``."""
    w = _pour_territoire(read_written(query), territoire)
    reason = _outside_reason(w, territoire)
    if reason is None:
        return None
    return GeocodeResult(query=query.text() if isinstance(query, AddressQuery) else str(query),
                         lon=None, lat=None, citycode=w.commune.insee if w.commune else None,
                         postcode=w.postcode, source=source, motif=reason,
                         hors_territoire=reason)


def written_unusable(query: str | AddressQuery, *, source: str = "") -> GeocodeResult | None:
    """The ``non_geocode`` result of a query that names neither a place nor a street: a street
    type alone (« rue », « Cours », « Place du »), else ``None`` — on every path, before any
    search (the national list has communes named « Rue » or « Chemin »)."""
    q = as_query(query)
    if not read_written(q).bare_type:
        return None

    return not_found(query, f"« {q.text().strip()} » n'est qu'un type de voie, sans nom de voie "
                     "ni commune : écrivez l'adresse complète (numéro, voie, code postal, "
                     "commune)", source=source)


def needs_candidates(query: str | AddressQuery, result: GeocodeResult) -> bool:
    """True when nothing written places ``result`` in its commune: no postcode, no commune
    set apart, and no commune named at the end that is the result's (« 12 rue X
    Saint-Étienne » found at Saint-Étienne is placed)."""
    if not result.found or not result.street:
        return False
    w = read_written(query)
    if w.postcode or w.unread or (w.commune is not None and w.commune_certain):
        return False
    if w.commune is not None and result.citycode:
        found = communes_france().by_insee.get(result.citycode)
        if found is not None and communes_france().current(found).insee == w.commune.insee:
            return False
    return True


def candidates(query: str | AddressQuery, results: list[GeocodeResult]
               ) -> tuple[dict[str, Any], ...]:
    """The places as good as ``results[0]`` in other communes, when nothing written says
    which commune (no postcode, no commune set apart): each is a candidate the engine judges
    (« voie présente dans N communes »). A street written with its type: the same street
    within 0.02 of the score; a name written without its type (« Mairie »): the same name,
    whatever the type (« Rue de la Mairie » here, « Allée de la Mairie » there). The same
    rule for the local file and the online service."""
    if not results or not needs_candidates(query, results[0]):
        return ()
    w = read_written(query)
    best = results[0]
    typed = any(x in STREET_TYPES for x in w.street.split())
    name = strip_types(match_key(best.street or ""))
    others: dict[str, dict[str, Any]] = {}
    for r in results[1:]:
        same = (r.street == best.street and r.score >= best.score - 0.02) if typed \
            else strip_types(match_key(r.street or "")) == name
        if (same and r.found and r.citycode != best.citycode and r.precision == best.precision
                and r.citycode not in others):
            others[r.citycode or ""] = {"label": r.label, "lon": r.lon, "lat": r.lat,
                                        "citycode": r.citycode, "street": r.street}
    return tuple(others.values())


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
    if w.unread and outside is None and not _same_name(w.unread, found_commune):
        # (a typo of the result's own commune is read as it, as the local geocoder does)
        issues.append(f"commune écrite non reconnue : « {w.unread} »")
    if outside is not None:
        return dataclasses.replace(
            result, lon=None, lat=None, label=None, score=0.0, precision=None,
            citycode=w.commune.insee if w.commune is not None else None,
            postcode=w.postcode, street=None, motif=outside, hors_territoire=outside,
            issues=(f"le géocodeur proposait « {result.label} »",) if result.label else ())
    # 2. Postcode and commune written agree; the result is in the commune written.
    commune = w.commune if (w.commune_certain or not in_street) else None
    pc_agrees = not w.postcode or w.cedex or commune is None \
        or w.postcode in commune.codes_postaux
    if not pc_agrees and commune is not None:
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
        elif commune is None and not w.postcode and not w.unread \
                and not _dans(found_commune, territoire):
            # nothing written says where: the same street may exist in the territory too
            issues.append(f"aucune commune écrite : résultat {a(found_commune.label)}, "
                          f"{hors(_nom(territoire))} ; précisez la commune")
        # The commune decides a verdict only when it is certain: the commune written (its
        # name set apart, or the one commune of its postcode), with nothing against it, is
        # the result's. Anything else leaves the commune itself in doubt.
        current = cl.current(found_commune).insee
        pc_current = {c.commune for c in pc_communes}
        certain = not w.unread and pc_agrees and (
            (commune is not None and w.commune_certain and current == commune.insee)
            or (commune is None and pc_current == {current}))
        douteuse = douteuse or not certain
    elif result.found:
        douteuse = True
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
    if w.generic and result.found:
        issues.append(f"« {as_query(query).text().strip()} » seul : un nom courant "
                      "(lieu-dit, bâtiment) sans numéro ni commune ; précisez l'adresse")
    # 4. Words written after the street that are neither the street found nor a commune:
    # perhaps the commune, unreadable (« 26 Allée Francis Garnier Genia »): never ignored.
    if result.found and result.street and not w.commune_words and not w.unread \
            and result.precision in ("housenumber", "street"):
        tail = _unread_tail(_drop_commune_words(asked_street, found_commune),
                            match_key(result.street))
        if tail:
            issues.append(f"« {tail} » en fin d'adresse : ni la voie trouvée ni une commune "
                          "connue ; précisez la commune")
    if not issues and not douteuse:
        return result
    return dataclasses.replace(result, issues=tuple(dict.fromkeys((*result.issues, *issues))),
                               commune_douteuse=result.commune_douteuse or douteuse)


def check_many(queries: list[str | AddressQuery] | tuple[str | AddressQuery, ...],
               results: list[GeocodeResult], territoire: Any = None) -> list[GeocodeResult]:
    """:func:`check` for each (query, result) pair; identical queries are read once."""
    memo: dict[tuple[str, str | None, str | None, str | None], Written] = {}
    out = []
    for query, res in zip(queries, results, strict=True):
        q = as_query(query)
        key = (q.adresse, q.postcode, q.city, q.citycode)
        w = memo.get(key)
        if w is None:
            w = memo[key] = read_written(q)
        out.append(check(q, res, w, territoire))
    return out


#: The doubt raised above about a number absent from the street found (« numéro 12 absent de
#: la voie trouvée : … »): when the whole street decides the place, its verdict answers it.
NUMERO_ABSENT = "absent de la voie trouvée"


def as_housenumber(g: GeocodeResult) -> GeocodeResult:
    """The same result judged like a house number (its street has decided the place, see
    :mod:`qpv_geo.eligibility.street_rule`): the doubts about the number's position go, every other
    doubt stays."""
    return dataclasses.replace(g, precision="housenumber",
                               issues=tuple(i for i in g.issues if NUMERO_ABSENT not in i))
