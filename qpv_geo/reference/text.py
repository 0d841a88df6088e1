"""Text normalisation of French place names, shared by the communes, the address index and the
queries: :func:`normalize`, :func:`tokens`, :func:`match_key`, with the abbreviations, stop words
and street types they use, and the shape of a French postcode (:data:`POSTCODE_RE`).
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: What people abbreviate, → the word of the address file (after accent stripping).
ABBREVIATIONS = {
    "r": "rue", "ru": "rue", "bd": "boulevard", "bld": "boulevard", "blvd": "boulevard",
    "boul": "boulevard", "bvd": "boulevard", "av": "avenue", "ave": "avenue", "aven": "avenue",
    "pl": "place", "plc": "place", "ch": "chemin", "chem": "chemin", "chm": "chemin",
    "imp": "impasse", "all": "allee", "al": "allee", "rte": "route", "rt": "route",
    "qu": "quai", "crs": "cours", "sq": "square", "pas": "passage", "pass": "passage",
    "psg": "passage", "mte": "montee", "fg": "faubourg", "fbg": "faubourg", "lot": "lotissement",
    "lots": "lotissement", "res": "residence", "resid": "residence", "sent": "sentier",
    "hameau": "hameau", "ham": "hameau", "rpt": "rond point", "ld": "lieu dit",
    "st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes",
    "gal": "general", "gen": "general", "mal": "marechal", "mar": "marechal",
    "pdt": "president", "pres": "president", "dr": "docteur", "doc": "docteur",
    "pr": "professeur", "prof": "professeur", "cdt": "commandant", "cne": "capitaine",
    "lt": "lieutenant", "ct": "comte", "mgr": "monseigneur", "n": "notre", "nd": "notre dame",
    "cite": "cite", "esp": "esplanade", "prom": "promenade", "tse": "traverse",
    "vla": "villa", "zi": "zone industrielle", "za": "zone artisanale", "zac": "zac",
}
#: Words that carry no identity (dropped from the matching keys).
STOP_WORDS = frozenset({"de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux",
                        "en", "sur", "sous", "lez"})
#: Words that start a street name (the house number is just before one of them).
STREET_TYPES = frozenset({
    "rue", "avenue", "boulevard", "place", "chemin", "impasse", "allee", "route", "quai",
    "cours", "square", "passage", "montee", "faubourg", "lotissement", "residence", "sentier",
    "hameau", "rond", "voie", "promenade", "esplanade", "parvis", "traverse", "ruelle",
    "venelle", "clos", "domaine", "carrefour", "cite", "villa", "zone", "parc",
    "galerie", "rampe", "escalier", "sente", "vc", "cr", "lieu",
})
#: Repetition indices (``rep`` of the BAN), with their short forms.
REPETITIONS = {"bis": "bis", "b": "bis", "ter": "ter", "t": "ter", "quater": "quater",
               "qua": "quater", "q": "quater", "quinquies": "quinquies", "c": "c", "d": "d",
               "a": "a", "e": "e", "f": "f"}
#: Words before a house number that are not part of the address (flat, building, …).
NOISE_BEFORE_NUMBER = frozenset({"appartement", "appt", "apt", "app", "batiment", "bat",
                                  "etage", "porte", "escalier", "esc", "bp", "cs", "logement",
                                  "log", "chez", "box", "lot", "n", "no", "numero"})

NUMBER_RE = re.compile(r"^(\d{1,4})(bis|ter|quater|quinquies|[a-f]|b|t|q)?$")
POSTCODE_RE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8]|2[ab])\d{3}$")


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def strip_accents(text: str) -> str:
    """Accents removed (NFKD), ligatures spelled out."""
    if text.isascii():
        return text
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation → spaces, single spaces."""
    text = strip_accents(str(text or "")).lower()
    return _NOT_ALNUM.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """Normalised words, abbreviations expanded (« St-Etienne » → ``saint etienne``)."""
    if not isinstance(text, str):
        return list(_tokens(text))
    parts = _PARTS.split(text)
    if len(parts) == 1:
        return list(_tokens(text))
    # the words of a text are those of its comma-separated parts, each read once (cached)
    return [w for part in parts for w in _tokens(part)]


_PARTS = re.compile(r"[,;\n]")


@functools.lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    # cached by text: a query is read several times (its parts, the geocoder, the rules)
    out: list[str] = []
    for word in normalize(text).split():
        full = ABBREVIATIONS.get(word)
        if full is not None:  # (no abbreviation stands for a number)
            out.extend(full.split())
            continue
        # « 12b » / « 12bis » → « 12 bis »: the number and its repetition index apart
        m = NUMBER_RE.match(word) if word[0].isdigit() else None
        if m and m.group(2):
            out.extend((m.group(1), REPETITIONS.get(m.group(2), m.group(2))))
        else:
            out.append(word)
    return tuple(out)


@functools.lru_cache(maxsize=16384)
def match_key(text: str) -> str:
    """Key used to compare names: :func:`tokens` without stop words."""
    return " ".join(t for t in _tokens(text) if t not in STOP_WORDS)


def clear_text_caches() -> None:
    """Forget the texts read so far (a benchmark's cold run)."""
    _tokens.cache_clear()
    match_key.cache_clear()
