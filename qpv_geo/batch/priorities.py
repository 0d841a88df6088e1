"""The priorities of the Cité de l'emploi's call for projects, as one vocabulary.

Spreadsheets name them in many ways (« Mobilité », « levée des freins : mobilité »,
« FLE / linguistique », « Garde d'enfants »…): :func:`normalize_priorite` maps what people
type to one key; the label, colour and icon are used by the batch summary, the coverage table
and the maps.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Priorite:
    """One priority of the call."""

    key: str
    label: str
    axe: str
    color: str  # nearest folium/awesome-markers colour name (the maps draw ``hex``)
    hex: str  # Okabe-Ito colour-blind-safe palette, one distinct colour per priority
    icon: str  # Font Awesome icon name (folium, prefix "fa")
    synonyms: tuple[str, ...]


PRIORITES: dict[str, Priorite] = {
    p.key: p
    for p in (
        Priorite("mobilite", "Mobilité", "Lever les freins", "blue", "#0072B2", "bus",
                 ("mobilite", "transport", "permis", "deplacement", "vehicule", "velo")),
        Priorite("linguistique", "Linguistique", "Lever les freins", "pink", "#CC79A7",
                 "language", ("linguistique", "langue", "fle", "francais", "alphabetisation",
                              "illettrisme", "asl")),
        Priorite("garde_enfants", "Garde d'enfants", "Lever les freins", "orange", "#E69F00",
                 "child", ("garde", "enfant", "creche", "parentalite", "petite enfance")),
        Priorite("sante", "Santé", "Lever les freins", "red", "#D55E00", "heartbeat",
                 ("sante", "soin", "psy", "handicap", "bien-etre", "bien etre")),
        Priorite("entreprises", "Rapprocher les entreprises des quartiers", "Entreprises",
                 "green", "#009E73", "briefcase",
                 ("entreprise", "employeur", "recrutement", "job dating", "stage", "immersion",
                  "rapprocher")),
        Priorite("confiance_en_soi", "Lutte contre l'autocensure", "Confiance en soi",
                 "beige", "#F0E442", "star",
                 ("autocensure", "auto-censure", "confiance", "estime", "soft skills",
                  "savoir-etre")),
        Priorite("hors_radars", "Publics « hors radars »", "Aller vers", "lightblue",
                 "#56B4E9", "search",
                 ("hors radar", "invisible", "aller vers", "aller-vers", "repérage", "reperage",
                  "neet", "decrocheur")),
        Priorite("communication", "Mieux communiquer", "Communication", "black", "#000000",
                 "bullhorn", ("communication", "communiquer", "information", "forum")),
    )
}

#: Key used when a row's priority cannot be recognised (kept, counted, shown apart).
AUTRE = "autre"
AUTRE_LABEL = "Autre / non renseignée"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def normalize_priorite(text: object) -> str:
    """Map what a spreadsheet says of a priority to a key of :data:`PRIORITES` (or ``autre``).

    Exact keys and labels win; otherwise the first priority whose synonym appears in the text.
    """
    if text is None:
        return AUTRE
    folded = _fold(str(text))
    if not folded or folded in {"nan", "none", "-"}:
        return AUTRE
    for key, p in PRIORITES.items():
        if folded in (key.replace("_", " "), key, _fold(p.label)):
            return key
    for key, p in PRIORITES.items():
        if any(_fold(s) in folded for s in p.synonyms):
            return key
    return AUTRE


def label_of(key: str) -> str:
    """Label of a priority key (``autre`` included)."""
    return PRIORITES[key].label if key in PRIORITES else AUTRE_LABEL


__all__ = ["AUTRE", "AUTRE_LABEL", "PRIORITES", "Priorite", "label_of", "normalize_priorite"]
