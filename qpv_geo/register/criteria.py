"""The call's criteria other than the place, each with its own state and source.

From the fiche technique of the call (Cité de l'emploi, SEM): eligible porteurs are
associations and collectivités territoriales; actions take place during the year of the
call; the subsidy requires the bilans of the previous year. Each criterion is
``ok``, ``bloquant`` or ``a_verifier`` (never guessed: unknown means « à vérifier ») and is
never folded into the geographic verdict of a site.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qpv_geo._french import de
from qpv_geo.batch import fold_name
from qpv_geo.register.directory import Annuaire, AnnuaireIndisponible, Entreprise, siren_of

#: Criteria of a dossier, in display order, with their plain-French label.
CRITERES = {
    "lieu": "Lieu de l'action dans un QPV de SEM",
    "porteur": "Porteur éligible (association ou collectivité territoriale)",
    "periode": "Action pendant l'année de l'appel",
    "bilan": "Bilans de l'exercice précédent fournis",
}
ETATS = {"ok": "conforme", "bloquant": "bloquant", "a_verifier": "à vérifier"}


def criteres_de(mots: Any = None) -> dict[str, str]:
    """:data:`CRITERES` in the words of a territory (:class:`qpv_geo.eligibility.wording.Libelles`;
    SEM's by default): the place criterion names its QPV."""
    if mots is None:
        return dict(CRITERES)
    lieu = "dans un QPV 2024" if mots.france else f"dans un QPV {de(mots.sigle)}"
    return {**CRITERES, "lieu": f"Lieu de l'action {lieu}"}

#: INSEE legal categories (level 1) in words, for the reasons.
_NIVEAU_1 = {
    "1": "entrepreneur individuel", "2": "groupement de droit privé sans personnalité morale",
    "3": "personne morale de droit étranger",
    "4": "personne morale de droit public soumise au droit commercial",
    "5": "société commerciale", "6": "autre personne morale immatriculée au RCS",
    "7": "personne morale de droit public", "8": "organisme privé spécialisé",
    "9": "groupement de droit privé",
}


@dataclass(frozen=True)
class Critere:
    """One criterion of one dossier."""

    critere: str
    etat: str
    valeur: str | None
    motif: str
    source: str
    #: Its name in another territory's words (:func:`criteres_de`); None: SEM's.
    nom: str | None = field(default=None, compare=False, repr=False)

    @property
    def libelle(self) -> str:
        """Plain-French name of the criterion."""
        return self.nom or CRITERES.get(self.critere, self.critere)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-friendly view, with the labels."""
        d = asdict(self)
        del d["nom"]
        return {**d, "libelle": self.libelle, "etat_libelle": ETATS[self.etat]}


def _categorie(code: str | None, ent: Entreprise | None = None) -> tuple[str, str]:
    """(state, reason) of an INSEE legal category code."""
    if ent is not None and ent.est_association:
        return "ok", "association"
    if ent is not None and ent.est_collectivite:
        return "ok", "collectivité territoriale"
    if not code:
        return "a_verifier", "catégorie juridique non renseignée"
    if code.startswith("92"):
        return "ok", f"association (catégorie juridique {code})"
    if code.startswith("72"):
        return "ok", f"collectivité territoriale (catégorie juridique {code})"
    if code.startswith("73"):
        return "a_verifier", (f"établissement public local (catégorie juridique {code}, ex. "
                              "EPCI, CCAS) : pas une collectivité territoriale au sens strict")
    if code.startswith("93"):
        return "a_verifier", f"fondation (catégorie juridique {code}) : pas une association"
    return "bloquant", (f"{_NIVEAU_1.get(code[:1], 'autre catégorie')} (catégorie juridique "
                        f"{code}) : ni association ni collectivité territoriale")


_ASSO = re.compile(r"\b(association|asso|loi 1901)\b")
_COLL = re.compile(r"\b(collectivite|commune|mairie|ville|departement|region|conseil "
                   r"departemental|conseil regional)\b")
_EP = re.compile(r"\b(ccas|cias|epci|etablissement public|communaute|metropole|syndicat "
                 r"intercommunal)\b")
_SOC = re.compile(r"\b(sa|sas|sasu|sarl|eurl|sci|scop|scic|snc|societe|entreprise|auto "
                  r"entrepreneur|micro entreprise|micro entrepreneur|ei)\b")


def statut_from_text(text: str) -> tuple[str, str]:
    """(state, reason) of a legal status typed in words (« Association loi 1901 », « SAS »)."""
    f = fold_name(text)
    if not f:
        return "a_verifier", "statut non renseigné"
    if _EP.search(f):
        return "a_verifier", (f"« {text} » : établissement public, pas une collectivité "
                              "au sens strict")
    if _ASSO.search(f):
        return "ok", f"« {text} » : association"
    if _COLL.search(f):
        return "ok", f"« {text} » : collectivité territoriale"
    if _SOC.search(f):
        return "bloquant", f"« {text} » : ni association ni collectivité territoriale"
    return "a_verifier", f"« {text} » : statut non reconnu"


def critere_porteur(sirets: Sequence[str], statuts: Sequence[str], *,
                    annuaire: Annuaire | None, col_siret: str | None,
                    col_statut: str | None) -> Critere:
    """The porteur criterion of one dossier from its SIRET/SIREN cells (through the
    directory) and/or its status cells; unknown → « à vérifier »."""
    siret = next((s for s in sirets if s), "")
    statut = next((s for s in statuts if s), "")
    notes: list[str] = []
    if siret:
        siren = siren_of(siret)
        if siren is None:
            notes.append(f"SIRET/SIREN « {siret} » illisible (ni 9 ni 14 chiffres valides)")
        elif annuaire is None:
            notes.append("annuaire des entreprises non consulté")
        else:
            try:
                ent = annuaire.lookup(siren)
            except AnnuaireIndisponible as exc:
                notes.append(str(exc))
            else:
                source = f"API Recherche d'entreprises (SIREN {siren}, colonne « {col_siret} »)"
                if ent is None:
                    notes.append(f"SIREN {siren} inconnu de l'annuaire des entreprises")
                else:
                    etat, motif = _categorie(ent.nature_juridique, ent)
                    if ent.etat_administratif == "C":
                        etat, motif = "a_verifier", motif + " ; unité légale cessée"
                    return Critere("porteur", etat, ent.nature_juridique,
                                   f"{ent.nom} : {motif}", source)
    if statut:
        etat, motif = statut_from_text(statut)
        if notes:
            motif += " (" + " ; ".join(notes) + ")"
        return Critere("porteur", etat, statut, motif, f"colonne « {col_statut} »")
    if notes:
        return Critere("porteur", "a_verifier", siret or None, " ; ".join(notes),
                       f"colonne « {col_siret} »")
    return Critere("porteur", "a_verifier", None,
                   "ni SIRET/SIREN ni statut : catégorie du porteur inconnue",
                   "aucune colonne du fichier")


_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")


def parse_date(text: str) -> dt.date | None:
    """A date as typed (``31/12/2026``, ``2026-12-31``, an Excel serial number)."""
    t = (text or "").strip()
    try:
        if m := _YMD.match(t):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DMY.match(t):
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            return dt.date(year, int(m[2]), int(m[1]))
        if re.fullmatch(r"\d{5}(?:\.0+)?", t) and 20_000 <= float(t) <= 80_000:
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(float(t)))
    except ValueError:
        return None
    return None


def _fr(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def critere_periode(debuts: Sequence[str], fins: Sequence[str], *, annee: int,
                    col_debut: str | None, col_fin: str | None) -> Critere:
    """The period criterion: every start and end date inside the year of the call."""
    source = " et ".join(f"colonne « {c} »" for c in (col_debut, col_fin) if c) or \
        "aucune colonne du fichier"
    if not (col_debut or col_fin):
        return Critere("periode", "a_verifier", None,
                       "dates de l'action absentes du fichier", source)
    problems: list[str] = []
    unknown: list[str] = []
    shown: list[str] = []
    for d_txt, f_txt in zip(debuts, fins, strict=True):
        d, f = parse_date(d_txt), parse_date(f_txt)
        for txt, val, what in ((d_txt, d, "début"), (f_txt, f, "fin")):
            if val is None:
                unknown.append(f"{what} « {txt} » illisible" if txt else f"{what} manquant")
            elif val.year != annee:
                problems.append(f"{what} le {_fr(val)}, hors de l'année de l'appel {annee}")
        if d and f:
            shown.append(f"{_fr(d)} → {_fr(f)}")
            if f < d:
                problems.append(f"fin ({_fr(f)}) avant le début ({_fr(d)})")
    valeur = " ; ".join(dict.fromkeys(shown)) or None
    if problems:
        return Critere("periode", "bloquant", valeur, " ; ".join(dict.fromkeys(problems)),
                       source)
    if unknown:
        return Critere("periode", "a_verifier", valeur, " ; ".join(dict.fromkeys(unknown)),
                       source)
    return Critere("periode", "ok", valeur, f"dans l'année de l'appel {annee}", source)


_OUI = {"oui", "o", "yes", "y", "x", "vrai", "true", "1", "fourni", "fournis", "ok"}
_NON = {"non", "n", "no", "faux", "false", "0", "non fourni", "non fournis", "manquant",
        "manquants", "absent"}


def parse_oui_non(text: str) -> bool | None:
    """``True``/``False`` for a yes/no cell as typed, ``None`` when empty or unreadable."""
    f = fold_name(text)
    return True if f in _OUI else False if f in _NON else None


def critere_bilan(valeurs: Sequence[str], *, col_bilan: str | None,
                  drapeau: tuple[bool, str, str, str | None] | None = None) -> Critere:
    """The bilan criterion: the register flag (value, author, date, reason) when set,
    else the column."""
    if drapeau is not None:
        fourni, auteur, date, motif = drapeau
        why = f" : {motif}" if motif else ""
        return Critere("bilan", "ok" if fourni else "bloquant", "oui" if fourni else "non",
                       ("bilans N-1 fournis" if fourni else "bilans N-1 non fournis : la "
                        "subvention en dépend") + why,
                       f"registre ({auteur}, {date[:10]})")
    if not col_bilan:
        return Critere("bilan", "a_verifier", None,
                       "bilans N-1 : ni colonne dans le fichier ni mention au registre",
                       "aucune colonne du fichier")
    parsed = [parse_oui_non(v) for v in valeurs]
    source = f"colonne « {col_bilan} »"
    shown = next((v for v in valeurs if v), None)
    if any(p is False for p in parsed):
        return Critere("bilan", "bloquant", shown,
                       "bilans N-1 non fournis : la subvention en dépend", source)
    if parsed and all(p is True for p in parsed):
        return Critere("bilan", "ok", shown, "bilans N-1 fournis", source)
    return Critere("bilan", "a_verifier", shown,
                   f"« {shown} » : réponse non reconnue (oui / non)" if shown
                   else "case vide", source)


def critere_lieu(finals: Sequence[tuple[str, str | None]],
                 label: Callable[[str], str]) -> Critere:
    """The place criterion of a dossier from its sites' final states ``(state, decided
    by)``: ok when a site is eligible and none is pending."""
    n = len(finals)
    eligibles = sum(1 for s, _ in finals if s == "eligible")
    attente = sum(1 for s, _ in finals if s == "en_attente")
    pending = sum(1 for s, _ in finals if s == "a_verifier") + attente
    decided = sum(1 for s, who in finals if who and s != "en_attente")
    parts = [f"{eligibles}/{n} site(s) éligible(s)"]
    if pending - attente:
        parts.append(f"{pending - attente} à vérifier")
    if attente:
        parts.append(f"{attente} en attente du porteur")
    if decided:
        parts.append(f"{decided} décidé(s) par un instructeur")
    motif = ", ".join(parts)
    if pending:
        etat = "a_verifier"
    elif eligibles:
        etat = "ok"
    else:
        etat = "bloquant"
    others = sorted({label(s) for s, _ in finals
                     if s not in ("eligible", "a_verifier", "en_attente")})
    if others:
        motif += " ; autres : " + ", ".join(others)
    return Critere("lieu", etat, f"{eligibles}/{n}", motif,
                   "verdicts du registre (calculés ou décidés)")


def etat_dossier(criteres: Sequence[Critere]) -> str:
    """``bloquant`` if a criterion blocks, else ``a_verifier`` if one is unknown, else ``ok``."""
    etats = {c.etat for c in criteres}
    return "bloquant" if "bloquant" in etats else "a_verifier" if "a_verifier" in etats \
        else "ok"
