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
    color: str  # folium marker colour name
    hex: str  # the same colour for HTML/CSS/matplotlib
    icon: str  # Font Awesome icon name (folium, prefix "fa")
    synonyms: tuple[str, ...]


PRIORITES: dict[str, Priorite] = {
    p.key: p
    for p in (
        Priorite("mobilite", "Mobilité", "Lever les freins", "blue", "#2a81cb", "bus",
                 ("mobilite", "transport", "permis", "deplacement", "vehicule", "velo")),
        Priorite("linguistique", "Linguistique", "Lever les freins", "purple", "#9c2bcb",
                 "language", ("linguistique", "langue", "fle", "francais", "alphabetisation",
                              "illettrisme", "asl")),
        Priorite("garde_enfants", "Garde d'enfants", "Lever les freins", "pink", "#e377c2",
                 "child", ("garde", "enfant", "creche", "parentalite", "petite enfance")),
        Priorite("sante", "Santé", "Lever les freins", "red", "#cb2b3e", "heartbeat",
                 ("sante", "soin", "psy", "handicap", "bien-etre", "bien etre")),
        Priorite("entreprises", "Rapprocher les entreprises des quartiers", "Entreprises",
                 "darkgreen", "#2a7f3a", "briefcase",
                 ("entreprise", "employeur", "recrutement", "job dating", "stage", "immersion",
                  "rapprocher")),
        Priorite("confiance_en_soi", "Lutte contre l'autocensure", "Confiance en soi",
                 "orange", "#cb8427", "star",
                 ("autocensure", "auto-censure", "confiance", "estime", "soft skills",
                  "savoir-etre")),
        Priorite("hors_radars", "Publics « hors radars »", "Aller vers", "cadetblue",
                 "#436978", "search",
                 ("hors radar", "invisible", "aller vers", "aller-vers", "repérage", "reperage",
                  "neet", "decrocheur")),
        Priorite("communication", "Mieux communiquer", "Communication", "gray", "#575757",
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
