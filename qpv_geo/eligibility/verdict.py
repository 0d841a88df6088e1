"""The verdict for one point (:class:`Verdict`), as :meth:`Engine.judge_point
<qpv_geo.eligibility.engine.Engine.judge_point>` returns it, on the batch path and the single-point
path alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qpv_geo.eligibility.verdict_table import STATUS_LABELS, status_labels


@dataclass(frozen=True)
class Verdict:
    """The verdict for one point, with everything needed to defend it."""

    status: str
    eligible: bool
    code_qp: str | None
    lib_qp: str | None
    insee_com: str | None
    lib_com: str | None
    distance_bord_m: float | None
    code_qp_proche: str | None
    lib_qp_proche: str | None
    distance_qp_proche_m: float | None
    candidat_autre_cote: str | None
    motifs: list[str]
    donnees: str
    lon: float | None
    lat: float | None
    x_l93: float | None
    y_l93: float | None
    notes: list[str] = field(default_factory=list)
    geocodage: dict[str, Any] | None = None
    #: The margin (m) the verdict used, and why (« marge 9 m = périmètre 1 m + … »).
    marge_m: float | None = None
    marge_motif: str = ""
    #: Name of the territory when it is not SEM (``--territoire``), else None.
    territoire: str | None = None

    @property
    def label(self) -> str:
        """Plain-French label of the status."""
        if self.territoire:
            return status_labels(self.territoire)[self.status]
        return STATUS_LABELS[self.status]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: verdict fields, then geocoding fields when there are some."""
        d = asdict(self)
        if d["territoire"] is None:  # SEM: the same keys as ever
            del d["territoire"]
        d["statut_libelle"] = self.label
        geo = d.pop("geocodage")
        if geo:
            d.update(geo)
        return d


__all__ = ["Verdict"]
