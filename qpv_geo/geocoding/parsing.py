"""Reading the words of an address query: house number, street words, street types, 3-grams.

Shared by the local geocoder (:mod:`~qpv_geo.geocoding.local`) and the consistency rules
(:mod:`~qpv_geo.geocoding.consistency`), so that both read the street asked the same way.
"""

from __future__ import annotations

import functools

from qpv_geo.reference.text import NOISE_BEFORE_NUMBER, REPETITIONS, STREET_TYPES


def split_number(words: list[str]) -> tuple[int | None, str, list[str]]:
    """(house number, repetition, street words) of a query without its commune/postcode.

    The house number is a number of 1–4 digits that is not part of the street name (« rue du
    8 Mai 1945 »: after a street type or a month) nor a flat/building number (« appt 12 »);
    one followed by a street type wins. Words before it (name, residence) and after the street
    (« bâtiment C », « 2e étage ») are not part of the street.
    """
    number, rep, street = _split_number(tuple(words))
    return number, rep, list(street)


@functools.lru_cache(maxsize=4096)
def _split_number(words: tuple[str, ...]) -> tuple[int | None, str, tuple[str, ...]]:
    # cached: the geocoder and the consistency rules read the same words
    cand = []
    for k, w in enumerate(words):
        if not (w.isdigit() and len(w) <= 4):
            continue
        prev = words[k - 1] if k > 0 else ""
        if prev in NOISE_BEFORE_NUMBER or prev in STREET_TYPES or prev in _MONTHS:
            continue
        if k + 1 < len(words) and words[k + 1] in _MONTHS:
            continue
        cand.append(k)
    number, rep, street = None, "", words
    if cand:
        def typed(k: int) -> bool:
            nxt = k + 1
            if nxt < len(words) and words[nxt] in REPETITIONS:
                nxt += 1
            return nxt < len(words) and words[nxt] in STREET_TYPES

        k = next((c for c in cand if typed(c)), cand[0])
        number = int(words[k])
        after = k + 1
        if after < len(words) and words[after] in REPETITIONS and (
                words[after] in ("bis", "ter", "quater", "quinquies")
                or after + 1 < len(words)):
            rep = REPETITIONS[words[after]]
            after += 1
        street = words[after:]
    # cut what follows the street: « batiment c », « 2 e etage », « porte 4 »…
    cut = next((j for j, w in enumerate(street) if j > 0 and w in _NOISE_AFTER_STREET),
               len(street))
    street = street[:cut]
    # leftovers after the street (« … 3 », « … b »), but never the year of a date in its name
    # (« rue du 8 mai 1945 », « du 19 mars 1962 », « du 4 septembre 1870 »)
    while len(street) > 1 and (street[-1].isdigit() or len(street[-1]) == 1) \
            and not (street[-1].isdigit() and street[-2] in _MONTHS):
        street = street[:-1]
    return number, rep, tuple(street)


def forget_split_numbers() -> None:
    """Forget the words read so far (a benchmark's cold run)."""
    _split_number.cache_clear()


_MONTHS = frozenset({"janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                     "septembre", "octobre", "novembre", "decembre"})
_NOISE_AFTER_STREET = frozenset({"batiment", "bat", "bt", "etage", "etg", "porte", "escalier",
                                 "esc", "appartement", "appt", "apt", "app", "logement", "log",
                                 "boite", "bal", "cedex", "bp", "cs", "tsa", "entree",
                                 "chez"})


def word_grams(text: str) -> set[str]:
    """3-grams of the words of ``text``, each word padded with a space at both ends."""
    out: set[str] = set()
    for w in text.split():
        w = f" {w} "
        out.update(w[i:i + 3] for i in range(len(w) - 2))
    return out


def strip_types(key: str) -> str:
    return " ".join(w for w in key.split() if w not in STREET_TYPES)
