"""A local fake of the « API Recherche d'entreprises » (company directory), speaking its real
protocol: ``GET /search?q=…&page=…&per_page=…`` → ``{"results": [...], "total_results",
"page", "per_page", "total_pages"}``, each result with the fields of the real answer
(``siren``, ``nom_complet``, ``nom_raison_sociale``, ``nature_juridique``,
``etat_administratif``, ``siege{siret, …}``, ``complements{est_association,
collectivite_territoriale, …}``). A query shorter than 3 characters is a 400, like the real
service. Errors on demand (:attr:`FakeAnnuaire.fail_next`); every request is recorded.
Every SIREN here is fictitious.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests._serveur import LoopbackServer


def _siret(siren: str) -> str:
    """A Luhn-valid SIRET of the head office of ``siren``."""
    for nic in range(10, 100_000):
        s = f"{siren}{nic:05d}"
        total = 0
        for i, ch in enumerate(reversed(s)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return s
    raise AssertionError(siren)  # pragma: no cover


def unite(siren: str, nom: str, nature: str, *, association: bool = False,
          collectivite: bool = False, etat: str = "A") -> dict[str, Any]:
    """One result of ``/search`` in the real format (the fields qpv-geo reads and others)."""
    siret = _siret(siren)
    return {
        "siren": siren, "nom_complet": nom, "nom_raison_sociale": nom.upper(), "sigle": None,
        "nombre_etablissements": 1, "nombre_etablissements_ouverts": 1,
        "siege": {"siret": siret, "est_siege": True, "etat_administratif": etat,
                  "adresse": "1 RUE FICTIVE 42000 SAINT-ETIENNE", "code_postal": "42000",
                  "commune": "42218", "libelle_commune": "SAINT-ETIENNE", "departement": "42",
                  "latitude": "45.4397", "longitude": "4.3872",
                  "activite_principale": "94.99Z"},
        "activite_principale": "94.99Z", "categorie_entreprise": "PME",
        "date_creation": "2010-01-01", "date_mise_a_jour": "2026-01-01T00:00:00",
        "dirigeants": [], "etat_administratif": etat, "nature_juridique": nature,
        "section_activite_principale": "S", "tranche_effectif_salarie": "11",
        "statut_diffusion": "O", "matching_etablissements": [], "finances": {},
        "complements": {
            "collectivite_territoriale": ({"code": "42218", "code_insee": "42218",
                                           "niveau": "commune", "elus": []}
                                          if collectivite else None),
            "convention_collective_renseignee": False, "liste_idcc": None,
            "egapro_renseignee": False, "est_association": association, "est_bio": False,
            "est_entrepreneur_individuel": nature == "1000",
            "est_entrepreneur_spectacle": False, "est_ess": association,
            "est_finess": False, "est_organisme_formation": False, "est_qualiopi": False,
            "liste_id_organisme_formation": None, "est_rge": False,
            "est_service_public": collectivite, "est_siae": False,
            "est_societe_mission": False, "est_uai": False,
            "identifiant_association": "W421000000" if association else None,
            "statut_entrepreneur_spectacle": None, "type_siae": None},
    }


#: Fictitious legal units, by SIREN.
UNITES: dict[str, dict[str, Any]] = {}
for _siren, _nom, _nature, _kw in (
    ("100000009", "ASSOCIATION FICTIVE OSER DIRE", "9220", {"association": True}),
    ("100000017", "ASSOCIATION FICTIVE CAP EMPLOI GIER", "9220", {"association": True}),
    ("100000025", "ASSOCIATION FICTIVE ALLER VERS 42", "9220", {"association": True}),
    ("100000033", "ASSOCIATION FICTIVE MOTS PARTAGES", "9220", {"association": True}),
    ("100000041", "RADIO QUARTIERS FICTIVE SAS", "5710", {}),
    ("100000058", "ASSOCIATION FICTIVE LES ATELIERS DU FURAN", "9220", {"association": True}),
    ("100000066", "ASSOCIATION FICTIVE SANTE QUARTIERS", "9220", {"association": True}),
    ("100000074", "ASSOCIATION FICTIVE ROULE MA POULE", "9220", {"association": True}),
    ("100000082", "ASSOCIATION FICTIVE ONDAINE SOLIDAIRE", "9220", {"association": True}),
    ("100000090", "ASSOCIATION FICTIVE PASSERELLES ENTREPRISES", "9220",
     {"association": True}),
    ("100000108", "COMMUNE FICTIVE", "7210", {"collectivite": True}),
    ("100000116", "CCAS FICTIF", "7361", {}),
    ("100000124", "ASSOCIATION FICTIVE DISSOUTE", "9220",
     {"association": True, "etat": "C"}),
):
    UNITES[_siren] = unite(_siren, _nom, _nature, **_kw)


@dataclass
class FakeAnnuaire(LoopbackServer):
    """The server's state; :meth:`start` binds it to a free port of 127.0.0.1."""

    fail_next: list[int] = field(default_factory=list)
    always_fail: int | None = None
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler_base(self) -> type[_Handler]:
        return _Handler


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnnuaire
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        f = self.fake
        with f.lock:
            f.requests.append(params)
            failure = f.fail_next.pop(0) if f.fail_next else f.always_fail
        if failure:
            self._send(failure, {"erreur": "fake failure"})
            return
        if parts.path.rstrip("/") != "/search":
            self._send(404, {"erreur": "Not Found"})
            return
        q = (params.get("q") or [""])[0].replace(" ", "")
        if len(q) < 3:
            self._send(400, {"erreur": "Veuillez indiquer au moins 3 caractères."})
            return
        page = int((params.get("page") or ["1"])[0])
        per_page = int((params.get("per_page") or ["10"])[0])
        hits = [u for s, u in UNITES.items() if q[:9] == s]
        self._send(200, {"results": hits[:per_page], "total_results": len(hits),
                         "page": page, "per_page": per_page,
                         "total_pages": 1 if hits else 0})
