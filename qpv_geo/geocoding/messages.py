"""What to do, said twice: to a person at the command line and to a person on a web page.

A hint of the library often names a command (« qpv-geo data update --adresses ») or an option
(« --geocoder demo »). That is right in a terminal, and useless on a web page, where the person
can neither type a command nor restart the server. Each such hint lives once here, as a
:class:`Conseil` with its two wordings; the library raises with the CLI wording, and the web
layer shows the web wording (:func:`pour_le_web`), which says what to do on the page and what
to ask the administrator.

:func:`pour_le_web` also rewrites a sentence that merely *contains* a CLI wording (a geocoding
motif with its hint at the end), and gives a neutral sentence for any hint still naming a
command: no option or command ever reaches a web page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Conseil:
    """One piece of advice: its command-line wording and its web-page wording."""

    cli: str
    web: str

    def __str__(self) -> str:
        return self.cli


#: Ask the administrator for addresses (said by every web variant that needs it).
_ADMIN_ADRESSES = ("demandez à l'administrateur de qpv-geo d'installer le fichier d'adresses "
                   "BAN de la Loire, ou d'ouvrir l'accès au service d'adresses en ligne")

#: Every hint that names a command or an option, with its web wording.
CONSEILS: dict[str, Conseil] = {
    "adresses_absentes": Conseil(
        cli=("Installez le fichier d'adresses BAN : qpv-geo data update --adresses sur une "
             "machine connectée, ou qpv-geo data import-adresses adresses-42.csv.gz "
             "(téléchargé sur adresse.data.gouv.fr). Pour un simple essai : --geocoder demo "
             "(adresses fictives)."),
        web=("Saisissez les coordonnées GPS du lieu (latitude et longitude) ci-dessus ; pour "
             f"chercher par adresse, {_ADMIN_ADRESSES}.")),
    "fichier_loire": Conseil(
        cli=("Installez le fichier BAN de la Loire : qpv-geo data update --adresses, ou "
             "qpv-geo data import-adresses adresses-42.csv.gz."),
        web=("Saisissez les coordonnées GPS du lieu (latitude et longitude) ; pour chercher "
             f"par adresse, {_ADMIN_ADRESSES}.")),
    "fichier_loire_court": Conseil(
        cli=("Installez le fichier BAN de la Loire : qpv-geo data update --adresses (ou data "
             "import-adresses)."),
        web=("Saisissez les coordonnées GPS du lieu (latitude et longitude) ; pour chercher "
             f"par adresse, {_ADMIN_ADRESSES}.")),
    "service_en_ligne": Conseil(
        cli=("Vérifiez l'accès au service d'adresses en ligne de la Géoplateforme (réglage "
             "QPV_GEO_BAN_URL) : le fichier d'adresses installable couvre Saint-Étienne "
             "Métropole seulement. Sinon, donnez les coordonnées (--lat, --lon)."),
        web=("Saisissez les coordonnées GPS du lieu (latitude et longitude) ; pour chercher "
             "par adresse, demandez à l'administrateur de qpv-geo d'ouvrir l'accès au service "
             "d'adresses en ligne (Géoplateforme).")),
    "hors_fichier_adresses": Conseil(
        cli="utilisez le géocodeur en ligne (--geocoder ban)",
        web=("saisissez les coordonnées GPS du lieu, ou demandez à l'administrateur d'ouvrir "
             "l'accès au service d'adresses en ligne")),
    "lot_trop_gros": Conseil(
        cli="utilisez la commande qpv-geo batch FICHIER sur le poste de travail",
        web="demandez à l'administrateur de qpv-geo de le vérifier sur son poste"),
    "registre_trop_gros": Conseil(
        cli=("importez-le sur le poste de travail avec la commande qpv-geo registre ajouter "
             "FICHIER"),
        web="demandez à l'administrateur de qpv-geo de l'importer sur son poste"),
    "liste_trop_longue": Conseil(
        cli=("Découpez la liste, ou déposez un fichier CSV/XLSX sur la page /lot (ou qpv-geo "
             "batch FICHIER)."),
        web="Découpez la liste, ou déposez un fichier CSV/XLSX sur la page /lot."),
    "reinstaller": Conseil(
        cli="Réinstallez qpv-geo depuis le dépôt complet.",
        web="Signalez-le à l'administrateur de qpv-geo (installation incomplète)."),
}

#: A command or an option in a sentence: « qpv-geo data … », « --geocoder ».
_COMMANDE = re.compile(r"qpv-geo (?:check|demo|serve|map|report|geocode|batch|data|registre)\b"
                       r"|(^|[\s(«])--[a-z]")

#: What the web says of a hint that still names a command (none should: a test checks).
_NEUTRE = ("Si le problème persiste, signalez-le à l'administrateur de qpv-geo avec l'heure "
           "de la demande.")


def names_a_command(text: str | None) -> bool:
    """True when ``text`` names a qpv-geo command or a command-line option."""
    return bool(text) and bool(_COMMANDE.search(str(text)))


def remplacer_pour_le_web(text: str | None) -> str | None:
    """``text`` (a motif, a sentence) with every CLI wording of :data:`CONSEILS` replaced by
    its web wording."""
    if not text:
        return text
    out = str(text)
    for conseil in CONSEILS.values():
        if conseil.cli in out:
            out = out.replace(conseil.cli, conseil.web)
    return out


def pour_le_web(text: str | None) -> str | None:
    """A hint in the words of a web page (:func:`remplacer_pour_le_web`); a hint still naming
    a command becomes a neutral « ask the administrator »."""
    out = remplacer_pour_le_web(text)
    if out and names_a_command(out):
        return _NEUTRE
    return out


_PARENTHESE_COMMANDE = re.compile(r"\s*\((?:qpv-geo [^)]*|--[a-z][^)]*)\)")


def description_web(text: str | None) -> str | None:
    """A description of the data (a layer's precision, a note) for the web: a command in
    parentheses becomes « (à faire par l'administrateur de qpv-geo) »."""
    if not text:
        return text
    out = _PARENTHESE_COMMANDE.sub(" (à faire par l'administrateur de qpv-geo)",
                                   str(remplacer_pour_le_web(text)))
    return out if not names_a_command(out) else _NEUTRE


def hint_web(exc: BaseException) -> str | None:
    """The hint of an error as a web page says it."""
    web = getattr(exc, "hint_web", None)
    return web if web else pour_le_web(getattr(exc, "hint", None))


__all__ = ["CONSEILS", "Conseil", "description_web", "hint_web", "names_a_command", "pour_le_web",
           "remplacer_pour_le_web"]
