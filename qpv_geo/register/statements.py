"""What the register answers: the state of a site (computed verdict, decision, which one
counts), of a dossier (every criterion), the diff between two imports and the outcome of a
re-check; the decisions an instructor can record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from qpv_geo._french import heure_paris
from qpv_geo.batch import fold_name
from qpv_geo.eligibility.engine import STATUS_LABELS
from qpv_geo.exceptions import RegistreError
from qpv_geo.register.criteria import Critere, etat_dossier

#: Decisions an instructor can record, with their label. « En attente du porteur » is not a
#: verdict: the site waits for what was asked of its porteur (the decision's motif).
DECISIONS = {"eligible": "Éligible", "non_eligible": "Non éligible",
             "en_attente": "En attente du porteur"}
#: Computed statuses that need an instructor's look.
A_REVOIR = ("a_verifier", "non_geocode")
#: Default lot: the successive versions of one call's file.
LOT_DEFAUT = "principal"


def normalize_decision(text: str) -> str:
    """``eligible`` / ``non_eligible`` from what a person types (« éligible », « non éligible »)."""

    f = fold_name(text).replace(" ", "_")
    if f in ("eligible", "oui", "accepte"):
        return "eligible"
    if f in ("non_eligible", "noneligible", "non", "inéligible", "ineligible", "refuse"):
        return "non_eligible"
    if f in ("en_attente", "attente", "en_attente_du_porteur", "attente_porteur",
             "en_attente_porteur"):
        return "en_attente"
    raise RegistreError(f"Décision inconnue : « {text} ».",
                        hint="Indiquez « éligible », « non éligible » ou « en attente » (du "
                        "porteur).")


def agrees(decision: str, status: str) -> bool:
    """True when a decision says what the computed status says (nothing to look at again)."""
    if decision == "eligible":
        return status == "eligible"
    if decision == "en_attente":
        return False
    return status in ("hors_qpv", "qva", "hors_territoire")


def label_verdict(status: str | None, code: str | None,
                  labels: dict[str, str] | None = None) -> str:
    """« Éligible — … (QN04213M) »: the label of a status (in the territory's ``labels``,
    SEM's by default), with its quartier."""
    text = (labels or STATUS_LABELS).get(status or "", status or "?")
    return f"{text} ({code})" if code else text



# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class SiteState:
    """A site as the register sees it now: last observation, computed verdict, decision."""

    site_id: str
    dossier: str
    lot: str
    present: bool
    ligne: int
    porteur: str | None
    action: str | None
    lieu: str
    verdict: dict[str, Any]
    decision: dict[str, Any] | None
    decision_a_revoir: str | None = None
    #: The register's number of the site: one per (lot, dossier, site).
    cle: int | None = None
    observation_id: int | None = None
    #: True when the site's last observation comes from a withdrawn import.
    import_annule: bool = False

    @property
    def final(self) -> str:
        """The state that counts: the decision when there is one (``en_attente`` while the
        site waits for its porteur), else the computed one."""
        return self.decision["decision"] if self.decision else self.verdict["status"]

    @property
    def en_attente(self) -> bool:
        """True while the site waits for what was asked of its porteur."""
        return bool(self.decision) and self.decision["decision"] == "en_attente"

    @property
    def query(self) -> str:
        """The site's address in a URL query: ``id=…&lot=…&dossier=…``."""
        return urlencode({"id": self.site_id, "lot": self.lot, "dossier": self.dossier})

    @property
    def final_libelle(self) -> str:
        """Label of :attr:`final`, saying where it comes from."""
        if self.en_attente:
            return f"En attente du porteur (demandé : {self.decision['motif']})"
        if self.decision:
            return f"{DECISIONS[self.decision['decision']]} (décision)"
        label = self.verdict.get("statut_libelle") or STATUS_LABELS.get(
            self.verdict["status"], self.verdict["status"])  # the territory's, when read
        return f"{label} (calculé)"

    @property
    def a_revoir(self) -> bool:
        """True when an instructor should look at this site."""
        if not self.present:
            return False
        if self.decision is None:
            return self.verdict["status"] in A_REVOIR
        if self.en_attente:  # the porteur's answer is awaited, unless the place changed
            return self.decision_a_revoir is not None and "lieu" in self.decision_a_revoir
        return self.decision_a_revoir is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"site_id": self.site_id, "dossier": self.dossier, "lot": self.lot,
                "present": self.present, "ligne": self.ligne, "porteur": self.porteur,
                "action": self.action, "lieu": self.lieu, "verdict": self.verdict,
                "decision": self.decision, "decision_a_revoir": self.decision_a_revoir,
                "final": self.final, "final_libelle": self.final_libelle,
                "a_revoir": self.a_revoir, "en_attente": self.en_attente,
                "import_annule": self.import_annule}


@dataclass
class DossierState:
    """A dossier: its current sites and every criterion, with the ones that block it."""

    dossier: str
    lot: str
    porteur: str | None
    sites: list[str]
    criteres: list[Critere]

    @property
    def etat(self) -> str:
        """``ok``, ``a_verifier`` or ``bloquant``."""
        return etat_dossier(self.criteres)

    @property
    def bloquants(self) -> list[str]:
        """Names of the criteria that block the dossier."""
        return [c.critere for c in self.criteres if c.etat == "bloquant"]

    @property
    def a_verifier(self) -> list[str]:
        """Names of the criteria still unknown."""
        return [c.critere for c in self.criteres if c.etat == "a_verifier"]

    def critere(self, name: str) -> Critere:
        """The criterion ``name``."""
        return next(c for c in self.criteres if c.critere == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"dossier": self.dossier, "lot": self.lot, "porteur": self.porteur,
                "sites": self.sites, "etat": self.etat, "bloquants": self.bloquants,
                "a_verifier": self.a_verifier,
                "criteres": [c.to_dict() for c in self.criteres]}


@dataclass
class Diff:
    """What changed between two imports of a lot."""

    avant: int | None
    apres: int
    lot: str | None = None
    nouveaux: list[dict[str, Any]] = field(default_factory=list)
    retires: list[dict[str, Any]] = field(default_factory=list)
    deplaces: list[dict[str, Any]] = field(default_factory=list)
    verdicts_changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def vide(self) -> bool:
        """True when nothing changed."""
        return not (self.nouveaux or self.retires or self.deplaces or self.verdicts_changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"avant": self.avant, "apres": self.apres, "lot": self.lot,
                "nouveaux": self.nouveaux,
                "retires": self.retires, "deplaces": self.deplaces,
                "verdicts_changes": self.verdicts_changes}


@dataclass
class ImportResult:
    """One import: its id, its sites, the columns used and the diff with the previous one."""

    import_id: int
    lot: str
    sites: int
    colonnes: dict[str, Any]
    par_statut: dict[str, int]
    diff: Diff
    a_revoir: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"import_id": self.import_id, "lot": self.lot, "sites": self.sites,
                "colonnes": self.colonnes, "par_statut": self.par_statut,
                "a_revoir": self.a_revoir, "diff": self.diff.to_dict()}


@dataclass
class Changement:
    """A site whose verdict changed on a re-check, and why."""

    site_id: str
    dossier: str
    avant: dict[str, Any]
    apres: dict[str, Any]
    pourquoi: list[str]
    decision: dict[str, Any] | None
    decision_a_revoir: bool = False
    lot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"site_id": self.site_id, "dossier": self.dossier, "lot": self.lot,
                "avant": self.avant,
                "apres": self.apres, "pourquoi": self.pourquoi, "decision": self.decision,
                "decision_a_revoir": self.decision_a_revoir}


@dataclass
class Reverification:
    """A re-check of every current site."""

    verification_id: int
    sites: int
    nouveaux_verdicts: int
    changements: list[Changement]
    #: Sites whose geocoding failed during the re-check: verdict kept, listed with why.
    non_reverifies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"verification_id": self.verification_id, "sites": self.sites,
                "nouveaux_verdicts": self.nouveaux_verdicts,
                "changements": [c.to_dict() for c in self.changements],
                "non_reverifies": self.non_reverifies}


@dataclass
class Annulation:
    """An import withdrawn: who, why, and which import of its lot is current now."""

    id: int
    import_id: int
    lot: str
    fichier: str
    sites: int
    auteur: str
    motif: str
    date: str
    #: The lot's current import after the withdrawal (None: the lot has none left).
    import_courant: int | None
    #: True when the withdrawn import was its lot's current one (its sites then left).
    etait_courant: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"id": self.id, "import_id": self.import_id, "lot": self.lot,
                "fichier": self.fichier, "sites": self.sites, "auteur": self.auteur,
                "motif": self.motif, "date": self.date,
                "date_paris": heure_paris(self.date), "import_courant": self.import_courant,
                "etait_courant": self.etait_courant}


__all__ = ["A_REVOIR", "DECISIONS", "LOT_DEFAUT", "Annulation", "Changement", "Diff",
           "DossierState", "ImportResult", "Reverification", "SiteState", "agrees",
           "heure_paris", "label_verdict", "normalize_decision"]
