"""The verdict table: statuses, codes and names, distances and the reasons in French.

:func:`verdict_frame` turns the integer codes of :meth:`Engine.classify_xy
<qpv_geo.eligibility.engine.Engine.classify_xy>` into the public columns (:data:`VERDICT_COLUMNS
<qpv_geo.eligibility.engine.VERDICT_COLUMNS>`), vectorised (string building on arrays), and applies
the geocoding quality rules (imprecise point → « à vérifier » unless the whole commune decides).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo._french import a as _a
from qpv_geo._french import dans, de, hors
from qpv_geo.eligibility._geometry import K_AUTRE as _K_AUTRE
from qpv_geo.eligibility._geometry import K_QPV as _K_QPV
from qpv_geo.eligibility._geometry import K_QVA as _K_QVA
from qpv_geo.eligibility._lost_qpv import motifs_perdus, perdus_proches
from qpv_geo.eligibility.coded import Coded, factorize_rows
from qpv_geo.eligibility.margins import (
    fmt_m,
    fmt_metres,
    geocoded_rows,
    motifs_marge,
    motifs_marge_codes,
    rounded,
)
from qpv_geo.geocoding import MOTIF_DEMO, reliability_issues
from qpv_geo.geocoding.consistency import as_housenumber
from qpv_geo.reference import countries as _pays
from qpv_geo.reference.communes import communes_france
from qpv_geo.reference.countries import COLLECTIVITES, collectivite_du_point

if TYPE_CHECKING:
    from qpv_geo.eligibility.engine import Engine
    from qpv_geo.eligibility.street_rule import VoieVerdict
    from qpv_geo.geocoding import GeocodeResult

#: The statuses, in the order of their integer codes.
STATUSES = ("eligible", "qva", "hors_qpv", "hors_territoire", "a_verifier", "non_geocode")
ELIGIBLE, QVA, HORS_QPV, HORS_TERRITOIRE, A_VERIFIER, NON_GEOCODE = range(6)

#: Plain-French label of each status.
STATUS_LABELS = {
    "eligible": "Éligible — dans un QPV de Saint-Étienne Métropole",
    "qva": "Non éligible — quartier de veille active (QVA)",
    "hors_qpv": "Non éligible — hors QPV",
    "hors_territoire": "Non éligible — hors territoire de Saint-Étienne Métropole",
    "a_verifier": "À vérifier — verdict incertain",
    "non_geocode": "Non localisé — adresse ou coordonnées inutilisables",
}

# Territory codes.
T_OUT, T_LIMIT, T_IN = 0, 1, 2
# Reasons a point is unusable.
BAD_REASONS = {
    1: "coordonnées manquantes",
    2: "coordonnées impossibles (latitude hors de −90…90 ou longitude hors de −180…180)",
    3: "valeurs de Lambert-93 (x/y en mètres) données comme latitude/longitude : "
       "utilisez les colonnes ou options x/y",
    4: "latitude et longitude semblent inversées (le point inversé tombe en France) : "
       "corrigez la source, qpv-geo ne les permute pas d'office",
    5: "coordonnées hors de France métropolitaine",
    6: "valeurs en degrés données comme Lambert-93 x/y : utilisez lat/lon",
    7: "coordonnées Lambert-93 hors de France métropolitaine",
    8: "coordonnées hors de France (métropole, Corse et outre-mer où existent des QPV)",
}


@dataclass
class Classification:
    """Raw, vectorised result of :meth:`Engine.classify_xy` (integer codes and distances)."""

    x: np.ndarray
    y: np.ndarray
    status: np.ndarray  # int8, index into STATUSES
    zone: np.ndarray  # int32, zone (row of Engine.zones) that gives the status, -1
    zone2: np.ndarray  # int32, second zone when the point is at a junction of two, -1
    dist: np.ndarray  # signed distance to the edge that matters (inside > 0), NaN
    near_zone: np.ndarray  # int32, nearest QPV of SEM when outside them (≤ radius), -1
    near_dist: np.ndarray  # distance to it, NaN
    edge_zone: np.ndarray  # int32, zone across the edge that makes the verdict uncertain, -1
    alt_status: np.ndarray  # int8, the status on the other side of that edge, -1
    commune: np.ndarray  # int32, commune index, -1
    territory: np.ndarray  # int8, _T_*
    bad: np.ndarray  # int8, reason code of unusable coordinates (0 = fine)
    marge: np.ndarray  # margin (m) the point was judged with, NaN when unusable
    perimetre: np.ndarray  # edge precision (m) of the perimeter in that margin
    incertitude: np.ndarray  # position uncertainty (m) of the point in that margin


def _status_rule(q: bool, v: bool, h: bool, in_territory: bool) -> int:
    """The status of a place: the first true condition wins — in a QPV of the territory, in a
    QVA, in a QPV of another EPCI, in the territory."""
    if q:
        return ELIGIBLE
    if v:
        return QVA
    if h:
        return HORS_TERRITOIRE
    return HORS_QPV if in_territory else HORS_TERRITOIRE


def _decision_table() -> tuple[np.ndarray, np.ndarray]:
    """:func:`_status_rule` for every combination of the flags of :func:`decide`, and the
    status across the edge: the first other status got by moving the point across some of the
    edges within its margin (QPV first, then QVA, then other EPCI), -1 when none changes it."""
    status = np.zeros(128, dtype=np.int8)
    alt = np.full(128, -1, dtype=np.int8)
    for code in range(128):
        q, v, h, qe, ve, he, t = (bool(code >> bit & 1) for bit in range(6, -1, -1))
        status[code] = _status_rule(q, v, h, t)
        for combo in range(1, 8):
            other = _status_rule(q ^ (bool(combo & 1) and qe), v ^ (bool(combo & 2) and ve),
                                 h ^ (bool(combo & 4) and he), t)
            if other != status[code]:
                alt[code] = other
                break
    return status, alt


_STATUS_OF, _ALT_OF = _decision_table()

#: The kind of zone that names each status (the zone a point is in, for its code_qp).
STATUS_KIND = np.array([_K_QPV, _K_QVA, _K_AUTRE, _K_AUTRE, _K_AUTRE, _K_AUTRE], dtype=np.int8)


def decide(in_qpv: Any, in_qva: Any, in_autre: Any, edge_qpv: Any, edge_qva: Any,
           edge_autre: Any, in_territory: Any) -> tuple[Any, Any]:
    """The verdict rule: status, and the status across an edge (-1 when the margin changes
    nothing), from where the point is (``in_*``: inside a perimeter of that kind), which kinds
    have an edge within its margin (``edge_*``) and whether it is in the territory.

    Boolean arrays (the batch path) or Python booleans (the single-point path): one table
    lookup either way.
    """
    code = (in_qpv * 64 + in_qva * 32 + in_autre * 16 + edge_qpv * 8 + edge_qva * 4
            + edge_autre * 2 + in_territory * 1)
    return _STATUS_OF[code], _ALT_OF[code]



def verdict_frame(self: Engine, c: Classification, lon: np.ndarray, lat: np.ndarray,
                  citycodes: Sequence[str | None] | None,
                  geocodes: Sequence[GeocodeResult | None] | None,
                  mots: np.ndarray | None = None,
                  voies: Sequence[VoieVerdict | None] | None = None, *,
                  columns: bool = False) -> Any:
    """The verdict table (:data:`VERDICT_COLUMNS`) with its French reasons, from raw codes.

    ``columns=True`` (the single-point path): the columns as a dict of arrays, without
    building a DataFrame, unless a rule needs the table (a commune written outside the
    territory, a street in several communes): then the DataFrame.
    """
    n = len(c.status)
    status = c.status.copy()
    # QPV the simplified copy reduced to a point: a point that may be in one is « à vérifier ».
    perdus = self.reference.qpv_perdus
    perdu, perdu_dist = perdus_proches(perdus, c, lon, lat, c.status, ELIGIBLE, HORS_QPV,
                                       A_VERIFIER)
    m_perdu = perdu >= 0
    status[m_perdu] = A_VERIFIER
    nom, sigle = self.nom_territoire, self.sigle_territoire
    code_dans = np.zeros(n, dtype=bool)  # the address's commune code is the territory's
    # Names of the communes, with a last entry None for index -1 (computed once).
    com_codes, com_names = self._tables[4:]
    insee = com_codes[c.commune]
    libcom = com_names[c.commune]
    motifs = np.full(n, "", dtype=object)

    def add(mask: np.ndarray, text: Any) -> None:
        _add(motifs, mask, text)

    geo_extra: dict[str, Any] = {}
    not_found = np.zeros(n, dtype=bool)
    written_out = np.zeros(n, dtype=bool)
    # The rows with a geocoding result: the rules below read those alone (a file of
    # coordinates has none).
    rows: list[int] = []
    got: list[GeocodeResult] = []
    if geocodes is not None:
        if len(geocodes) != n:
            raise ValueError("geocodes must have one item per point")
        rows, got = geocoded_rows(geocodes)
    # The commune code of each address (None: not stated), given or the geocoder's.
    cc: np.ndarray | None = None
    if citycodes is not None:
        cc = np.array([None if v is None or v == "" else str(v) for v in citycodes],
                      dtype=object)
    elif geocodes is not None:
        cc = np.full(n, None, dtype=object)
        cc[rows] = [None if g.citycode is None or g.citycode == "" else str(g.citycode)
                    for g in got]
    if cc is not None:
        have = cc != None  # noqa: E711 (element-wise)
        hv = np.flatnonzero(have)
        in_sem_code = np.zeros(n, dtype=bool)
        in_sem_code[hv] = [v in self._sem_codes for v in cc[hv]]
        code_dans = have & in_sem_code
        insee = np.where(have, cc, insee)
        names_cc = np.full(n, None, dtype=object)
        names_cc[hv] = [self._commune_names.get(v) for v in cc[hv]]
        libcom = np.where(have, names_cc, libcom)
        outside_code = have & ~in_sem_code & (status != NON_GEOCODE)
        conflict = outside_code & ((status == ELIGIBLE) | (status == A_VERIFIER))
        add(conflict, f"le géocodeur place l'adresse dans une commune {hors(sigle)} (INSEE "
            + cc[conflict].astype(str) + f") alors que le point tombe dans un QPV {de(sigle)}")
        status[conflict] = A_VERIFIER
        moved = outside_code & ~conflict
        status[moved] = HORS_TERRITOIRE
        add(moved, f"commune {hors(nom)} selon le géocodeur (INSEE "
            + cc[moved].astype(str) + ")")

    # Geocoding reliability.
    if geocodes is not None:
        unreliable = np.zeros(n, bool)
        demo_rows = np.zeros(n, bool)
        issues_txt = np.full(n, "", dtype=object)
        for i, g in zip(rows, got, strict=True):  # per geocoding result
            if not g.found:
                issues_txt[i] = g.motif or "adresse non trouvée"
                continue
            # A demonstration address is marked, like demonstration perimeters, and the
            # verdict is computed on its point as for any other.
            street = voies[i] if voies is not None else None
            if street is not None and street.decisive:  # the whole street decides the place
                g = as_housenumber(g)
            issues = reliability_issues(g, score_min=self.score_min)
            if g.source == "local-demo":
                demo_rows[i] = True
            if issues:
                unreliable[i] = True
                issues_txt[i] = " ; ".join(issues)
        # The commune or postcode written is outside SEM: that decides, whatever the point.
        written_out[rows] = [bool(g.hors_territoire) for g in got]
        not_found[rows] = [not g.found for g in got]
        not_found &= ~written_out
        status[not_found] = NON_GEOCODE
        add(not_found, issues_txt[not_found])
        # An imprecise point cannot support a confident verdict, except where the whole
        # commune decides it: outside SEM, or a commune of SEM that has no QPV at all.
        no_qpv_town = np.zeros(n, dtype=bool)
        no_qpv_town[rows] = [g.citycode is not None and g.citycode in self._sem_codes
                             and g.citycode not in self._communes_with_qpv for g in got]
        # ... unless the commune itself is in doubt (the point is not in the commune written)
        douteuse = np.zeros(n, dtype=bool)
        douteuse[rows] = [bool(g.commune_douteuse) for g in got]
        settled = ((status == HORS_TERRITOIRE) | ((status == HORS_QPV) & no_qpv_town)) \
            & (~douteuse | written_out)
        downgrade = unreliable & (status != NON_GEOCODE) & ~settled
        add(unreliable & settled, "géocodage imprécis (" + issues_txt[unreliable & settled]
            .astype(str) + ") sans effet sur le verdict : la commune entière le décide")
        add(downgrade, "géocodage imprécis : " + issues_txt[downgrade].astype(str))
        status[downgrade] = A_VERIFIER
        if voies is not None:
            has = np.array([v is not None for v in voies], dtype=bool)
            add(has, np.array([v.motif if v is not None else "" for v in voies], dtype=object)
                [has])
        add(demo_rows, "DÉMONSTRATION : " + MOTIF_DEMO + ", le point n'est pas réel")
        geo_extra = _geocode_columns(n, rows, got)

    usable = c.bad == 0
    # No commune outline (any territory but SEM): bare coordinates outside every QPV are in
    # France only if the country outlines say so (Barcelona, Geneva, Roseau are in the zones'
    # rectangles); near a border, or far from any land, « à vérifier ».
    pays_dit = np.zeros(n, dtype=bool)
    if self.pays:
        sans_code = np.ones(n, dtype=bool) if cc is None else ~have
        cand = np.flatnonzero(usable & (status == HORS_QPV) & sans_code & ~m_perdu)
        if len(cand):
            etat, pays = _pays.etat_des_points(np.asarray(lon, float)[cand],
                                               np.asarray(lat, float)[cand])
            ailleurs = etat != _pays.FRANCE
            k, e, p = cand[ailleurs], etat[ailleurs], pays[ailleurs]
            status[k] = np.where(e == _pays.ETRANGER, HORS_TERRITOIRE, A_VERIFIER)
            # each distinct (state, country) reason written once
            which, first = factorize_rows(e, p)
            texts = np.array([_pays.motif_pays(int(e[i]), p[i]) for i in first], dtype=object)
            pays_dit[k] = True
            add(pays_dit, texts[which])
    # A point known only to its commune is the commune's centre: no distance to an edge says
    # anything about the place (issue 20).
    centre = np.zeros(n, dtype=bool)
    centre[rows] = [g.found and g.precision == "municipality" for g in got]
    unc = motifs_du_lieu(self, c, motifs, status, dit_ailleurs=m_perdu | pays_dit,
                         code_dans=code_dans, centre=centre, lon=lon, lat=lat)
    if m_perdu.any():
        add(m_perdu, motifs_perdus(perdus, perdu[m_perdu], perdu_dist[m_perdu], sigle,
                                  self.france))
    unplaced = ~usable & ~not_found  # the geocoder's own reason says it for the others
    add(unplaced, np.array([BAD_REASONS.get(int(b), "") for b in c.bad[unplaced]],
                          dtype=object))
    if self.reference.simplified:
        close = usable & (np.abs(np.nan_to_num(c.dist, nan=1e9)) <= 15) & (status != A_VERIFIER)
        add(close, "à moins de 15 m d'un bord de la copie simplifiée : à confirmer avec le "
            "fichier officiel")

    ambiguous = any(g.alternatives and g.found and not g.hors_territoire for g in got)
    table = not (columns and not written_out.any() and not ambiguous)
    own_commune = cc is None  # the commune the point is in: by codes
    cols = colonnes_du_verdict(self, c, status, motifs, unc, lon, lat, mots,
                               insee=None if own_commune else insee,
                               libcom=None if own_commune else libcom, voies=voies,
                               coded=table)
    if not table:
        return {**cols, **geo_extra}
    frame = pd.DataFrame({k: v.column() if isinstance(v, Coded) else v
                          for k, v in cols.items()})
    for k, v in geo_extra.items():
        frame[k] = v
    if written_out.any():
        _written_outside(frame, written_out, geocodes or ())
    if ambiguous:
        _ambiguous(self, frame, geocodes or ())
    return frame



def perimetre_retenu(prec_edge: Any, prec_zone: Any, prec_near: Any, defaut: float) -> Any:
    """The edge precision (m) in a verdict's margin: that of the edge that makes it uncertain,
    else of the perimeter it is in, else of the nearest QPV, else ``defaut`` (NaN: no such
    part). Arrays or numbers."""
    if isinstance(prec_edge, float):  # one point: the same choice on Python numbers
        for value in (prec_edge, prec_zone, prec_near):
            if not math.isnan(value):
                return value
        return defaut
    perim = np.where(np.isnan(prec_edge), prec_zone, prec_edge)
    perim = np.where(np.isnan(perim), prec_near, perim)
    return np.where(np.isnan(perim), defaut, perim)


def distance_retenue(zone: Any, zone_s: Any, uncertain: Any, edge_s: Any, near_part: Any,
                     near_s: Any) -> Any:
    """The signed distance a verdict reports (``distance_bord_m``): to the edge of the zone it
    is in, else to the edge that makes it uncertain, else to the nearest QPV (-1 / NaN: none).
    Arrays or numbers."""
    if isinstance(zone, int):  # one point: the same choice on Python numbers
        value = zone_s if zone >= 0 else math.nan
        if uncertain and zone < 0:
            value = edge_s
        return near_s if math.isnan(value) and near_part >= 0 else value
    dist = np.where(zone >= 0, zone_s, np.nan)
    dist = np.where(uncertain & (zone < 0), edge_s, dist)
    return np.where(np.isnan(dist) & (near_part >= 0), near_s, dist)


#: Count of true entries: a cheap « any » for one point as for a batch.
_some = np.count_nonzero
#: Status names by code, and the same with "" for -1 (no status across the edge) first.
_STATUS_NAMES = np.array(STATUSES, dtype=object)
_ALT_LABELS = np.array(["", *STATUSES], dtype=object)


def _add(motifs: np.ndarray, mask: np.ndarray, text: Any) -> None:
    """Append ``text`` (one string, or one per true entry of ``mask``) to those reasons."""
    sep = np.where(motifs[mask] == "", "", " ; ")
    motifs[mask] = motifs[mask] + sep + text


def motifs_du_lieu(self: Engine, c: Classification, motifs: np.ndarray, status: np.ndarray, *,
                   dit_ailleurs: np.ndarray, code_dans: np.ndarray, centre: np.ndarray,
                   lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Add to ``motifs`` the reasons that the place gives, in their order: the zone the point is
    in, the territory, the nearest QPV, the edge within the margin. The one implementation of
    those French reasons, for a batch and for one point (arrays of length 1).

    ``status``: the status so far (after the commune code and the geocoding rules);
    ``dit_ailleurs``: points whose « in no QPV » is said by another reason (QPV reduced to a
    point, a country); ``code_dans``: the address's commune code is the territory's;
    ``centre``: the point is only the centre of its commune. Returns the points « à vérifier »
    because of an edge within their margin (they name the candidate across it).
    """
    n = len(c.status)
    nom, sigle = self.nom_territoire, self.sigle_territoire
    codes, names, sirens, zkind, _, _ = self._tables
    z = c.zone
    zk = zkind[z]
    zone_code, zone_name = codes[z], names[z]
    dist = rounded(c.dist, 1)
    base = c.status
    usable = c.bad == 0

    def add(mask: np.ndarray, text: Any) -> None:
        _add(motifs, mask, text)

    m_in_qpv = usable & (zk == _K_QPV)
    if _some(m_in_qpv):
        add(m_in_qpv, "dans le QPV " + zone_code[m_in_qpv].astype(str) + " « "
            + zone_name[m_in_qpv].astype(str) + " », à " + fmt_m(dist[m_in_qpv])
            + " à l'intérieur du bord")
        junction = m_in_qpv & (c.zone2 >= 0)
        add(junction, "à la jonction avec le QPV " + codes[c.zone2[junction]].astype(str))
    m_qva = usable & (zk == _K_QVA)
    if _some(m_qva):
        add(m_qva, "dans le quartier de veille active « " + zone_name[m_qva].astype(str)
            + " » : les QVA ne sont pas éligibles à l'appel")
    m_autre = usable & (zk == _K_AUTRE)
    if _some(m_autre):
        za = z[m_autre]
        com = self.zones["lib_com"].to_numpy(object)[za] if "lib_com" in self.zones.columns \
            else np.full(len(za), None, dtype=object)
        epci = np.array([self.reference.epci_name(s) if s or not lc else f"{lc} (sans EPCI)"
                         for s, lc in zip(sirens[za], com, strict=True)], dtype=object)
        add(m_autre, "dans le QPV " + zone_code[m_autre].astype(str) + " « "
            + zone_name[m_autre].astype(str) + " » de " + epci
            + f", {hors(nom)} : non éligible à cet appel")
    m_hors = usable & (zk < 0) & (c.territory != T_OUT)
    dit = m_hors & (base != A_VERIFIER) & (status != HORS_TERRITOIRE) & ~dit_ailleurs
    if not self.contours and not self.france:  # no outline: only a commune code places it
        add(dit & code_dans, f"{dans(nom)} (code commune de l'adresse), dans aucun QPV")
        add(dit & ~code_dans, f"dans aucun QPV {de(nom)} ; appartenance {_a(nom)} non vérifiée : "
            "aucun contour communal installé pour ce territoire (seul le code commune d'une "
            "adresse la décide)")
    elif _some(dit):
        dans_ = "en France" if self.france else dans(nom)
        add(dit, f"{dans_}, dans aucun QPV ni QVA" if len(self.reference.qva)
            else f"{dans_}, dans aucun QPV (QVA non vérifiés : aucun "
            "périmètre QVA installé)")
    limite = usable & (c.territory == T_LIMIT)
    if _some(limite):
        add(limite, f"en limite du territoire {de(sigle)} (contour communal approximatif, "
            f"tolérance {self.tolerance_m:.0f} m)")
    m_out = usable & (zk < 0) & (c.territory == T_OUT)
    if self._collectivites_hors and m_out.any():  # another island of the zone: name it
        coll = np.full(n, None, dtype=object)
        coll[m_out] = collectivite_du_point(np.asarray(lon, float)[m_out],
                                            np.asarray(lat, float)[m_out])
        for code in self._collectivites_hors:
            add(coll == code, COLLECTIVITES[code][0])
    if _some(m_out):
        add(m_out, self.texte_hors_territoire)
    near = usable & (c.near_zone >= 0) & (zk != _K_QPV)
    near_pt, near_c = near & ~centre, near & centre
    if _some(near_pt):
        add(near_pt, "QPV le plus proche : " + codes[c.near_zone[near_pt]].astype(str)
            + " « " + names[c.near_zone[near_pt]].astype(str) + " » à "
            + fmt_m(rounded(c.near_dist[near_pt], 0)))
    if _some(near_c):
        add(near_c, "QPV le plus proche du centre de la commune : "
            + codes[c.near_zone[near_c]].astype(str) + " « "
            + names[c.near_zone[near_c]].astype(str) + " »")
    unc = (base == A_VERIFIER) & ~centre
    if _some(unc):
        texts = alt_text(sigle)
        alt_txt = np.array([texts.get(a) for a in _ALT_LABELS[c.alt_status[unc] + 1]],
                           dtype=object)
        add(unc, "à moins de " + fmt_metres(c.marge[unc]) + " du bord de "
            + codes[c.edge_zone[unc]].astype(str) + " « " + names[c.edge_zone[unc]].astype(str)
            + " » : de l'autre côté, " + alt_txt)
    unc_c = (base == A_VERIFIER) & centre
    if _some(unc_c):
        add(unc_c, "position au centre de la commune seulement : le lieu peut être dans le QPV "
            + codes[c.edge_zone[unc_c]].astype(str) + " « "
            + names[c.edge_zone[unc_c]].astype(str) + " » ou hors de lui")
    return unc


def colonnes_du_verdict(self: Engine, c: Classification, status: np.ndarray, motifs: np.ndarray,
                        unc: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                        mots: np.ndarray | None, *, insee: np.ndarray | None = None,
                        libcom: np.ndarray | None = None,
                        voies: Sequence[VoieVerdict | None] | None = None,
                        coded: bool = False) -> dict[str, Any]:
    """The columns :data:`VERDICT_COLUMNS <qpv_geo.eligibility.engine.VERDICT_COLUMNS>` as
    arrays, from the classification, the final status and reasons (one implementation for a
    batch and for one point). ``unc``: the points uncertain by an edge (they name the QPV
    across it); ``insee``/``libcom``: the commune, default the one the point is in.

    ``coded=True`` (the batch path): the columns of statuses, zone and commune names, margin
    explanations as :class:`~qpv_geo.eligibility.coded.Coded` (codes into their distinct
    texts) instead of one Python string per row."""
    n = len(c.status)
    codes, names, _, zkind, com_codes, com_names = self._tables
    zk = zkind[c.zone]
    dist = rounded(c.dist, 1)
    usable = c.bad == 0
    cand_zone = np.where(unc, c.edge_zone, -1)
    if voies is not None:  # a street partly in, or along, a QPV: that QPV is the candidate
        for k, v in enumerate(voies):
            if v is not None and not v.decisive and v.zone >= 0 and status[k] == A_VERIFIER:
                cand_zone[k] = v.zone
    is_outside_q = (zk != _K_QPV)
    near_zone = np.where(is_outside_q, c.near_zone, -1)
    in_zone = np.where(zk >= 0, c.zone, -1)

    def text(table: np.ndarray, index: np.ndarray) -> Any:
        """``table[index]`` (index -1: None), as codes or as texts."""
        return Coded(table[:-1], index) if coded else table[index]

    insee = text(com_codes, c.commune) if insee is None else insee
    libcom = text(com_names, c.commune) if libcom is None else libcom
    if coded:
        marge_motif: Any = motifs_marge_codes(
            c.marge, c.perimetre, c.incertitude,
            np.full(n, "position", dtype=object) if mots is None else mots,
            self.marge_m is not None)
    else:
        marge_motif = motifs_marge(c.marge, c.perimetre, c.incertitude,
                                   np.full(n, "position", dtype=object) if mots is None
                                   else mots, self.marge_m is not None)
    donnees = self.reference.version
    notes = self.reference.notes
    if notes:
        donnees = donnees + " — " + " ; ".join(notes)
    # Plane coordinates are Lambert-93 in metropolitan France only: none elsewhere.
    x, y = self.l93_of_plan(np.where(usable, c.x, np.nan), np.where(usable, c.y, np.nan))
    return {
        "status": Coded(_STATUS_NAMES, status) if coded else _STATUS_NAMES[status],
        "eligible": status == ELIGIBLE,
        "code_qp": text(codes, in_zone),
        "lib_qp": text(names, in_zone),
        "insee_com": insee,
        "lib_com": libcom,
        "distance_bord_m": dist,
        "marge_m": rounded(c.marge, 1),
        "marge_motif": marge_motif,
        "code_qp_proche": text(codes, near_zone),
        "lib_qp_proche": text(names, near_zone),
        "distance_qp_proche_m": np.where(is_outside_q, rounded(c.near_dist, 1), np.nan),
        "candidat_autre_cote": text(codes, cand_zone),
        "motifs": motifs,
        "donnees": Coded(np.array([donnees], dtype=object), np.zeros(n, np.intp)) if coded
        else donnees,
        "lon": np.where(usable, rounded(np.asarray(lon, float), 7), np.nan),
        "lat": np.where(usable, rounded(np.asarray(lat, float), 7), np.nan),
        "x_l93": rounded(x, 2),
        "y_l93": rounded(y, 2),
    }


def format_distance(value: float | None) -> str:
    """« 120 m à l'intérieur du périmètre » / « 35 m à l'extérieur du périmètre »."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    side = "à l'intérieur du périmètre" if value > 0 else "à l'extérieur du périmètre"
    return f"{abs(value):.0f} m {side}"


def alt_text(sigle: str = "SEM") -> dict[str, str]:
    """What the point would be on the other side of an edge, for a territory's short name."""
    return {
        "eligible": f"le point serait dans un QPV {de(sigle)} (éligible)",
        "qva": "le point serait dans un QVA (non éligible)",
        "hors_qpv": "le point serait hors QPV (non éligible)",
        "hors_territoire": f"le point serait dans un QPV {hors(sigle)} (non éligible)",
        "": "",
    }


def status_labels(nom: str = "Saint-Étienne Métropole") -> dict[str, str]:
    """:data:`STATUS_LABELS` for a territory's name."""
    if nom == "Saint-Étienne Métropole":
        return dict(STATUS_LABELS)
    if nom == "France":  # no call for projects nationally: membership only
        return {**STATUS_LABELS, "eligible": "Dans un QPV 2024",
                "hors_territoire": "Non éligible — hors du territoire servi"}
    return {**STATUS_LABELS, "eligible": f"Éligible — dans un QPV {de(nom)}",
            "hors_territoire": f"Non éligible — hors territoire {de(nom)}"}



def _geocode_columns(n: int, rows: list[int], got: list[GeocodeResult]
                     ) -> dict[str, list[Any]]:
    """The geocoding columns of ``n`` rows: the results ``got`` on ``rows``, None elsewhere."""
    keys = ("geocodage_label", "geocodage_score", "geocodage_precision", "geocodage_source")
    cols: dict[str, list[Any]] = {k: [None] * n for k in keys}
    for i, g in zip(rows, got, strict=True):
        d = g.to_dict()
        for k in keys:
            cols[k][i] = d.get(k)
    return cols


def _written_outside(frame: pd.DataFrame, rows: np.ndarray,
                     geocodes: Sequence[GeocodeResult | None]) -> None:
    """Rows whose commune or postcode written is outside SEM: ``hors_territoire`` naming it,
    without the QPV fields of whatever point the geocoder proposed."""
    picked = [g for g, w in zip(geocodes, rows, strict=True) if w and g is not None]
    names = communes_france().by_insee
    frame.loc[rows, "status"] = "hors_territoire"
    frame.loc[rows, "eligible"] = False
    frame.loc[rows, "motifs"] = [" ; ".join((g.hors_territoire or "", *g.issues))
                                 for g in picked]
    for col in ("code_qp", "lib_qp", "code_qp_proche", "lib_qp_proche", "candidat_autre_cote"):
        if col in frame.columns:
            frame.loc[rows, col] = None
    for col in ("distance_qp_proche_m", "distance_bord_m"):
        if col in frame.columns:
            frame.loc[rows, col] = np.nan
    frame.loc[rows, "lib_com"] = [names[g.citycode].nom if g.citycode in names else None
                                  for g in picked]


SHORT = {"eligible": "éligible", "qva": "QVA", "hors_qpv": "hors QPV",
          "hors_territoire": "hors territoire", "a_verifier": "à vérifier",
          "non_geocode": "non localisé"}


def _ambiguous(engine: Engine, frame: pd.DataFrame,
               geocodes: Sequence[GeocodeResult | None]) -> None:
    """Rows whose street exists, as good, in several communes (no commune written):
    « à vérifier » with the verdict of every candidate (issue 19: the commune is in doubt)."""
    rows = [i for i, g in enumerate(geocodes) if g is not None and g.alternatives and g.found
            and not g.hors_territoire]
    alts = [(i, a) for i in rows for a in geocodes[i].alternatives]  # type: ignore[union-attr]
    other = engine.judge_lonlat([float(a["lon"]) for _, a in alts],
                                [float(a["lat"]) for _, a in alts])
    names = engine._commune_names
    by_row: dict[int, list[tuple[str, str, str | None]]] = {}
    for (i, a), (_, o) in zip(alts, other.iterrows(), strict=True):
        by_row.setdefault(i, []).append((names.get(a.get("citycode"), a.get("label") or "?"),
                                         str(o["status"]), o["code_qp"]))
    status_col = frame.columns.get_loc("status")
    for i in rows:
        g = geocodes[i]
        assert g is not None
        main = (names.get(g.citycode or "", g.label or "?"), str(frame.iat[i, status_col]),
                frame.at[frame.index[i], "code_qp"])
        cands = [main, *by_row.get(i, [])]
        communes = ", ".join(c for c, _, _ in cands)
        voie = f"voie « {g.street} »"
        if any(a.get("street", g.street) != g.street for a in g.alternatives):
            voie = f"voie « {g.street} » ou du même nom"  # the type was not written
        codes = {g.citycode, *(a.get("citycode") for a in g.alternatives)}
        where = f"communes {de(engine.sigle_territoire)}" if codes <= engine._sem_codes \
            else "communes"
        # The commune is not written: the place is in doubt, even when every candidate has
        # the same verdict (the street may exist outside the territory too, and the middle
        # of a street or a lieu-dit does not say where the place asked is).
        if len({s for _, s, _ in cands}) == 1:
            text = (f"{voie} présente dans {len(cands)} {where} ({communes}), commune "
                    f"non précisée : même verdict pour toutes ({SHORT.get(main[1], main[1])})"
                    ", mais la voie existe peut-être ailleurs. Précisez la commune")
        else:
            listing = ", ".join(f"à {c} → {SHORT.get(s, s)}" + (f" ({q})" if q else "")
                                for c, s, q in cands)
            text = (f"{voie} présente dans {len(cands)} {where}, commune "
                    f"non précisée : {listing}. Précisez la commune")
        frame.iat[i, status_col] = "a_verifier"
        frame.at[frame.index[i], "eligible"] = False
        old = str(frame.at[frame.index[i], "motifs"] or "")
        frame.at[frame.index[i], "motifs"] = f"{old} ; {text}" if old else text
