"""The instruction register of the Cité de l'emploi call: sites of dossiers with a stable
identity, their computed verdicts with everything that produced them, instructors' decisions
(never overwriting the computed verdict), the call's other criteria per dossier, history and
diffs between imports, re-checks after a data change, exports and a dated instruction sheet.

One SQLite file in the user data folder (WAL mode, schema migrations by yoyo-migrations),
append-only: see :mod:`qpv_geo.register.store`. The CLI (``qpv-geo registre …``) and the web
pages (``/registre``) are thin shells over :class:`Registre`.
"""

from __future__ import annotations

from qpv_geo.register.criteria import CRITERES, ETATS, Critere
from qpv_geo.register.store import (
    A_REVOIR,
    DECISIONS,
    LOT_DEFAUT,
    Annulation,
    Changement,
    Diff,
    DossierState,
    ImportResult,
    Registre,
    Reverification,
    SiteState,
    default_path,
    normalize_decision,
)

__all__ = ["A_REVOIR", "CRITERES", "DECISIONS", "ETATS", "LOT_DEFAUT", "Annulation",
           "Changement", "Critere", "Diff", "DossierState", "ImportResult", "Registre",
           "Reverification", "SiteState", "default_path", "normalize_decision"]
