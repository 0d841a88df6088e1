"""Verdicts as the web layer shows them: one JSON payload, one HTML view, one plain text.

Pure Python (no FastAPI): the page, the API and the « copier » text all come from the same
payload, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from qpv_geo.eligibility.engine import STATUS_LABELS, format_distance
from qpv_geo.eligibility.wording import (
    PRECISIONS,
    TITRES_SEM,
    Libelles,
    libelles,
    precision_libelle,
    source_libelle,
)
from qpv_geo.geocoding.messages import remplacer_pour_le_web

try:  # Debian and the wheels ship the tz database; fall back to the server's local time.
    from zoneinfo import ZoneInfo

    _PARIS: dt.tzinfo | None = ZoneInfo("Europe/Paris")
except Exception:  # pragma: no cover - no tz database on this machine
    _PARIS = None

#: Short headline of each status, in the words the call uses.
HEADLINES = dict(TITRES_SEM)

#: What the geocoder's precision (BAN « type ») means for a person (one table for every
#: output: :data:`qpv_geo.eligibility.wording.PRECISIONS`).
PRECISION_LABELS = PRECISIONS

#: Note added while the local geocoder uses the demonstration address file.
NOTE_ADRESSES_DEMO = "DÉMONSTRATION — adresses fictives, aucune valeur officielle"


def now_paris() -> dt.datetime:
    """Current time in Europe/Paris (local time if the tz database is missing)."""
    return dt.datetime.now(_PARIS) if _PARIS else dt.datetime.now().astimezone()


def _clean(value: Any) -> Any:
    """numpy scalars → Python, NaN → None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def geocode_payload(geocode: Any) -> dict[str, Any] | None:
    """The geocoding result as the API shows it (from the result's attributes)."""
    if geocode is None:
        return None
    precision = getattr(geocode, "precision", None)
    score = _clean(getattr(geocode, "score", None))
    return {
        "requete": str(getattr(geocode, "query", "") or ""),
        "trouve": bool(getattr(geocode, "found", False)),
        "label": getattr(geocode, "label", None),
        "score": None if score is None else float(score),
        "precision": precision,
        "precision_libelle": precision_libelle(precision) if precision else None,
        "citycode": getattr(geocode, "citycode", None),
        "postcode": getattr(geocode, "postcode", None),
        "source": getattr(geocode, "source", None),
        "motif": remplacer_pour_le_web(getattr(geocode, "motif", None)),
    }


_VERDICT_FIELDS = (
    "status", "eligible", "code_qp", "lib_qp", "insee_com", "lib_com", "distance_bord_m",
    "marge_m", "marge_motif", "code_qp_proche", "lib_qp_proche", "distance_qp_proche_m",
    "candidat_autre_cote", "donnees", "lon", "lat", "x_l93", "y_l93",
)


def verdict_payload(source: Any, *, geocode: Any = None, notes: list[str], demo: bool,
                    checked_at: dt.datetime, mots: Libelles | None = None) -> dict[str, Any]:
    """One verdict as a JSON-ready dict.

    ``source`` is a :class:`~qpv_geo.eligibility.engine.Verdict` or a row (mapping) of
    :meth:`Engine.judge_lonlat`'s frame; ``notes`` are the data warnings (plus the demo address
    note when the demonstration address file answered); ``mots`` the territory's words (SEM's
    by default).
    """
    if isinstance(source, Mapping):
        values = {k: _clean(source.get(k)) for k in _VERDICT_FIELDS}
        motifs = [m for m in str(source.get("motifs") or "").split(" ; ") if m]
    else:
        values = {k: _clean(getattr(source, k)) for k in _VERDICT_FIELDS}
        motifs = list(source.motifs)
    motifs = [str(remplacer_pour_le_web(m)) for m in motifs]  # the web's words, not options
    values["eligible"] = bool(values["eligible"])
    status = str(values["status"])
    return {
        **values,
        "statut_libelle": (mots.statuts if mots else STATUS_LABELS)[status],
        "titre": (mots.titres if mots else HEADLINES)[status],
        "motifs": motifs,
        "notes": list(notes),
        "demo": bool(demo),
        "verifie_le": checked_at.isoformat(timespec="seconds"),
        "geocodage": geocode_payload(geocode),
    }


def texte(value: Any) -> Markup:
    """Text for an HTML text node: escaped, but the apostrophe kept as typed (« Cité de
    l'emploi »), as the page's own French is written; never for an attribute value."""
    return Markup(str(escape(value)).replace("&#39;", "'"))


def format_date(value: str) -> str:
    """ISO timestamp → « 29/11/2025 à 14:03 »."""
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return d.strftime("%d/%m/%Y à %H:%M")


def verdict_rows(p: Mapping[str, Any], *, adresse_saisie: str | None = None,
                 noms: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, value) lines describing a verdict, in reading order; ``noms`` (code → name
    of the perimeters) names the QPV on the other side of a near edge."""
    rows: list[tuple[str, str]] = []
    if adresse_saisie:
        rows.append(("Adresse saisie", adresse_saisie))
    geo = p.get("geocodage")
    if geo:
        if geo["trouve"]:
            rows.append(("Adresse retenue", geo["label"] or "—"))
            # the score means nothing to a person: the precision and the source say it
            rows.append(("Précision du géocodage",
                         f"{geo['precision_libelle'] or '—'} (source : "
                         f"{source_libelle(geo['source'])})"))
        else:
            rows.append(("Géocodage", geo["motif"] or "adresse introuvable"))
    if p.get("code_qp"):
        rows.append(("Quartier", f"{p['code_qp']} — {p['lib_qp']}"))
    if p.get("lib_com") or p.get("insee_com"):
        rows.append(("Commune", f"{p.get('lib_com') or '?'} ({p.get('insee_com') or '?'})"))
    # a point known only to its commune is the commune's centre: no distance says anything
    centre = bool(geo) and geo.get("precision") == "municipality"
    if p.get("lat") is not None and p.get("distance_bord_m") is not None and not centre:
        rows.append(("Distance au bord", format_distance(p.get("distance_bord_m"))))
        if p.get("marge_motif"):
            rows.append(("Marge", str(p["marge_motif"])))
    if p.get("code_qp_proche") and not p.get("code_qp"):
        dist = None if centre else p.get("distance_qp_proche_m")
        rows.append(("QPV le plus proche", f"{p['code_qp_proche']} — {p['lib_qp_proche']}"
                     + (f" ({dist:.0f} m)" if dist is not None else "")))
    if p.get("candidat_autre_cote") and p["candidat_autre_cote"] not in (
            p.get("code_qp"), p.get("code_qp_proche")):
        code = str(p["candidat_autre_cote"])
        name = (noms or {}).get(code)
        rows.append(("Bord le plus proche", f"{code} — {name}" if name else code))
    if p.get("lat") is not None:
        rows.append(("Point", f"lat {p['lat']:.6f}, lon {p['lon']:.6f}"))
    return rows


def verdict_text(p: Mapping[str, Any], *, adresse_saisie: str | None = None,
                 noms: Mapping[str, str] | None = None,
                 conseils: list[str] | None = None, mots: Libelles | None = None) -> str:
    """Plain-text summary (the « copier » button and the attestation)."""
    lines = [
        (mots or libelles()).entete_verification,
        f"Date : {format_date(p['verifie_le'])}",
        f"Verdict : {p['titre']} — {p['statut_libelle']}",
    ]
    lines += [f"{k} : {v}" for k, v in verdict_rows(p, adresse_saisie=adresse_saisie,
                                                      noms=noms)]
    if p["motifs"]:
        lines.append("Motifs :")
        lines += [f"  - {m}" for m in p["motifs"]]
    if conseils:
        lines.append("Que faire :")
        lines += [f"  - {c}" for c in conseils]
    lines.append(f"Données : {str(p['donnees']).split(' — ')[0]}")
    if p["notes"]:
        lines.append("Avertissements :")
        lines += [f"  - {n}" for n in p["notes"]]
    if p["demo"]:
        lines.append("DÉMONSTRATION : ce résultat n'a aucune valeur officielle.")
    return "\n".join(lines)


__all__ = [
    "HEADLINES",
    "NOTE_ADRESSES_DEMO",
    "PRECISION_LABELS",
    "format_date",
    "format_distance",
    "geocode_payload",
    "now_paris",
    "texte",
    "verdict_payload",
    "verdict_rows",
    "verdict_text",
]
