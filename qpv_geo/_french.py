"""French contractions before a place name: « d'Argenteuil », « du Havre », « de la Métropole
de Lyon », « aux Abymes ».

Territory names come from the national lists (communes, EPCI) and are put into running text
(« hors territoire de … », « appartenance à … »): :func:`de` and :func:`a` give the preposition
and article French requires. Saint-Étienne Métropole reads as it always did.

Times people read are Paris times that say so (:func:`heure_paris`), whatever the server's
clock and the stored UTC.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

try:  # Debian and the wheels ship the tz database; else the server's local time.
    from zoneinfo import ZoneInfo

    _PARIS: dt.tzinfo | None = ZoneInfo("Europe/Paris")
except Exception:  # pragma: no cover - no tz database on this machine
    _PARIS = None

# EPCI names that begin with a common noun take its article (« de la Métropole de Lyon »).
_FEMININ = ("métropole", "communauté", "eurométropole", "agglomération", "ca", "cc", "cu",
            "cote", "côte", "collectivité")
_MASCULIN = ("établissement", "pays", "syndicat", "ept")
_ELIDE = "aeiouyàâäéèêëîïôöùûü"


def _first_word(nom: str) -> str:
    return nom.split(" ", 1)[0].split("-", 1)[0].lower()


def _article(nom: str) -> str:
    """« le », « la », « l' », « les » or « » (a proper name) before ``nom``."""
    word = _first_word(nom)
    if nom.startswith(("Saint-Étienne Métropole",)):
        return ""
    if word in _FEMININ:
        return "l'" if word[0] in _ELIDE else "la "
    if word in _MASCULIN:
        return "l'" if word[0] in _ELIDE else "le "
    return ""


def _elide(nom: str) -> bool:
    first = unicodedata.normalize("NFC", nom[:1]).lower()
    return first in _ELIDE


def de(nom: str) -> str:
    """« de » + ``nom`` as French writes it: « d'Argenteuil », « du Havre », « des Abymes »,
    « de la Métropole de Lyon », « de Saint-Étienne Métropole »."""
    nom = str(nom).strip()
    if nom.startswith("Le "):
        return "du " + nom[3:]
    if nom.startswith("Les "):
        return "des " + nom[4:]
    if nom.startswith(("La ", "L'", "L’")):
        return "de " + nom[0].lower() + nom[1:]
    article = _article(nom)
    if article == "le ":
        return "du " + nom
    if article:
        return "de " + article + nom
    return ("d'" if _elide(nom) else "de ") + nom


def a(nom: str) -> str:
    """« à » + ``nom``: « au Havre », « aux Abymes », « à la Métropole de Lyon », « à SEM »."""
    nom = str(nom).strip()
    if nom.startswith("Le "):
        return "au " + nom[3:]
    if nom.startswith("Les "):
        return "aux " + nom[4:]
    if nom.startswith(("La ", "L'", "L’")):
        return "à " + nom[0].lower() + nom[1:]
    article = _article(nom)
    return ("au " if article == "le " else "à " + article) + nom


def dans(nom: str) -> str:
    """« dans » + ``nom``: « dans la Métropole de Lyon », « dans Saint-Étienne Métropole »."""
    nom = str(nom).strip()
    if nom.startswith(("Le ", "La ", "Les ", "L'", "L’")):
        return "dans " + nom[0].lower() + nom[1:]
    return "dans " + _article(nom) + nom


def hors(nom: str) -> str:
    """« hors » + ``nom``: « hors SEM », « hors de la Métropole de Lyon », « hors du Havre »."""
    nom = str(nom).strip()
    if nom.startswith(("Le ", "Les ", "La ", "L'", "L’")) or _article(nom):
        return "hors " + de(nom)
    return "hors " + nom


def heure_paris(value: str | None, *, zone: bool = True, heure: bool = True,
                secondes: bool = False) -> str:
    """A stored timestamp (ISO, UTC when it names no zone) in Paris time: « 07/12/2026 à
    22:16 (heure de Paris) »; ``zone=False`` where a heading already names the zone,
    ``heure=False`` for the date alone (the Paris date: 23:30 UTC is already tomorrow),
    ``secondes=True`` for exports. Empty for no value."""
    if not value:
        return ""
    try:
        d = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    d = d.astimezone(_PARIS) if _PARIS else d.astimezone()
    if not heure:
        return d.strftime("%d/%m/%Y")
    fmt = "%d/%m/%Y à %H:%M:%S" if secondes else "%d/%m/%Y à %H:%M"
    return d.strftime(fmt) + (" (heure de Paris)" if zone else "")


def nombre(x: float) -> str:
    """A whole number as French writes it, thousands apart: « 16 384 » (rounded)."""
    return f"{x:,.0f}".replace(",", " ")


def pluriel(n: int, singulier: str, pluriel_: str | None = None) -> str:
    """« 0 périmètre », « 1 périmètre », « 2 périmètres » (in French 0 and 1 are singular)."""
    word = singulier if abs(n) < 2 else (pluriel_ or singulier + "s")
    return f"{n} {word}"


__all__ = ["a", "dans", "de", "heure_paris", "hors", "nombre", "pluriel"]
