"""Coverage QPV × priority on hand-made squares with known answers (tests/data/coverage)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from qpv_geo.batch.priorities import PRIORITES
from qpv_geo.reporting.coverage import (
    MATRIX_COLUMNS,
    PAR_PRIORITE_COLUMNS,
    PAR_QPV_COLUMNS,
    coverage_from_sites,
    site_links,
)

DATA = Path(__file__).parent / "data" / "coverage"
ALPHA, BETA, GAMMA = "QN04201M", "QN04202M", "QN04203M"




def cell(cov, code, prio):
    m = cov.matrix
    row = m[(m["code_qp"] == code) & (m["priorite"] == prio)]
    assert len(row) == 1
    return row.iloc[0]


def test_columns_and_shape(ref, sites):
    cov = coverage_from_sites(sites, ref)
    assert tuple(cov.matrix.columns) == MATRIX_COLUMNS
    assert tuple(cov.par_priorite.columns) == PAR_PRIORITE_COLUMNS
    assert tuple(cov.par_qpv.columns) == PAR_QPV_COLUMNS
    # 3 QPV of SEM (the other EPCI's is not counted) × (8 priorities + "autre" present).
    assert cov.qpv_total == 3
    assert len(cov.matrix) == 3 * (len(PRIORITES) + 1)
    assert set(cov.matrix["code_qp"]) == {ALPHA, BETA, GAMMA}


def test_known_counts_default_radius(ref, sites):
    cov = coverage_from_sites(sites, ref)
    a = cell(cov, ALPHA, "mobilite")
    # S1 and S2 inside (one action), S3 120 m away (another action and porteur).
    assert (a.sites_dans, a.sites_proximite, a.actions_dans, a.actions, a.porteurs) == \
        (2, 1, 1, 2, 2)
    assert a.couverture == "dans"
    assert a.porteurs_liste == "Asso Roue Libre ; Bus Pour Tous"
    e = cell(cov, ALPHA, "entreprises")
    assert (e.sites_dans, e.sites_proximite, e.actions, e.couverture) == (0, 1, 1, "proximite")
    b = cell(cov, BETA, "linguistique")
    assert (b.sites_dans, b.sites_proximite, b.actions, b.porteurs) == (1, 1, 2, 2)
    # S11 spells S1's porteur/action differently: the same action, counted once per QPV.
    g = cell(cov, GAMMA, "mobilite")
    assert (g.sites_dans, g.actions, g.porteurs) == (1, 1, 1)
    assert cell(cov, GAMMA, "autre").sites_dans == 1
    assert cell(cov, BETA, "sante").couverture == "aucune"  # S12 is 600 m away


def test_gaps(ref, sites):
    cov = coverage_from_sites(sites, ref)
    reached = {(ALPHA, "mobilite"), (ALPHA, "entreprises"), (BETA, "linguistique"),
               (GAMMA, "sante"), (GAMMA, "mobilite")}
    got = set(zip(cov.gaps["code_qp"], cov.gaps["priorite"], strict=True))
    expected = {(q, p) for q in (ALPHA, BETA, GAMMA) for p in PRIORITES} - reached
    assert got == expected
    assert len(cov.gaps) == 3 * 8 - 5
    assert "autre" not in set(cov.gaps["priorite"])


def test_par_priorite(ref, sites):
    cov = coverage_from_sites(sites, ref)
    p = cov.par_priorite.set_index("priorite")
    mob = p.loc["mobilite"]
    # S1, S2, S3, S9 (no point), S11, S13 (other EPCI).
    assert (mob.sites, mob.sites_localises) == (6, 5)
    # auto-école (S1/S2/S11), navette, réparation, covoiturage.
    assert (mob.actions, mob.porteurs) == (4, 4)
    assert (mob.qpv_dans, mob.qpv_atteints, mob.qpv_total) == (2, 2, 3)
    assert (mob.qpv_proximite, mob.qpv_lacunes) == (0, 1)
    assert mob.taux_dans == pytest.approx(2 / 3) and mob.taux_proximite == 0
    ent = p.loc["entreprises"]
    # Reached only within the radius: counted apart, never as a QPV with an action inside.
    assert (ent.qpv_dans, ent.qpv_proximite, ent.qpv_lacunes, ent.qpv_atteints) == (0, 1, 2, 1)
    assert ent.taux_dans == 0 and ent.taux_proximite == pytest.approx(1 / 3)
    assert ent.taux_lacunes == pytest.approx(2 / 3)
    assert "taux_couverture" not in p.columns  # no rate mixing inside and nearby
    assert (p["qpv_dans"] + p["qpv_proximite"] + p["qpv_lacunes"] == p["qpv_total"]).all()
    assert p.loc["sante", "axe"] == p.loc["mobilite", "axe"] == "Lever les freins"
    assert p.loc["garde_enfants", "qpv_atteints"] == 0  # S7 is in the QVA, far from any QPV
    assert list(cov.par_priorite["priorite"]) == list(PRIORITES)


def test_par_qpv(ref, sites):
    cov = coverage_from_sites(sites, ref)
    q = cov.par_qpv.set_index("code_qp")
    assert (q.loc[ALPHA, "sites_dans"], q.loc[ALPHA, "sites_proximite"]) == (2, 2)
    assert (q.loc[ALPHA, "priorites_dans"], q.loc[ALPHA, "priorites_atteintes"]) == (1, 2)
    assert (q.loc[BETA, "priorites_dans"], q.loc[BETA, "priorites_atteintes"]) == (1, 1)
    # "autre" is not a priority of the call: Gamma reaches 2, not 3.
    assert q.loc[GAMMA, "priorites_atteintes"] == 2
    assert (q.loc[ALPHA, "priorites_proximite"], q.loc[ALPHA, "priorites_lacunes"]) == (1, 6)
    assert q.loc[GAMMA, "actions"] == 3
    assert "Garde d'enfants" in q.loc[GAMMA, "priorites_manquantes"]
    assert "Santé" not in q.loc[GAMMA, "priorites_manquantes"]


def test_counters(ref, sites):
    cov = coverage_from_sites(sites, ref)
    assert cov.sites_non_localises == 1  # S9
    assert cov.sites_hors_rayon == 3  # S7 (QVA), S12 (600 m), S13 (other EPCI)


@pytest.mark.parametrize(("rayon", "proximite"), [(0, 0), (100, 0), (130, 1), (200, 2),
                                                   (300, 3), (700, 4)])
def test_radius_changes_only_the_nearby_counts(ref, sites, rayon, proximite):
    cov = coverage_from_sites(sites, ref, rayon_m=rayon)
    assert int(cov.matrix["sites_proximite"].sum()) == proximite
    # Sites inside never depend on the radius: S1, S2, S4, S6, S10, S11.
    assert int(cov.matrix["sites_dans"].sum()) == 6


def test_links_distances_in_metres(ref, sites):
    links = site_links(sites, ref.qpv, rayon_m=300)
    by_site = {sites.loc[i, "site"]: (c, d) for i, c, d in
               zip(links["index"], links["code_qp"], links["distance_m"], strict=True)}
    assert by_site["S3"] == (ALPHA, pytest.approx(120, abs=1))
    assert by_site["S5"] == (BETA, pytest.approx(250, abs=1))
    assert by_site["S1"] == (ALPHA, 0)
    with pytest.raises(ValueError):
        site_links(sites, ref.qpv, rayon_m=-1)


def test_statuts_filter(ref, sites):
    cov = coverage_from_sites(sites, ref, statuts=["eligible"])
    assert int(cov.matrix["sites_proximite"].sum()) == 0
    assert int(cov.matrix["sites_dans"].sum()) == 6


def test_free_text_priorities_and_missing_columns(ref, sites):
    raw = sites[["lon", "lat"]].copy()
    raw["priorite"] = ["Levée des freins : mobilité"] * len(raw)
    cov = coverage_from_sites(raw, ref)
    # Without porteur/action columns every row is its own action.
    assert cell(cov, ALPHA, "mobilite").actions == 4  # S1, S2, S3, S8
    assert cell(cov, ALPHA, "mobilite").porteurs == 0
    assert "autre" not in set(cov.matrix["priorite"])


def test_empty_sites(ref):
    empty = pd.DataFrame({"lon": [], "lat": [], "priorite": []})
    cov = coverage_from_sites(empty, ref)
    assert len(cov.gaps) == 3 * 8
    assert (cov.par_priorite["taux_dans"] == 0).all()
    assert (cov.par_priorite["taux_lacunes"] == 1).all()
    assert cov.cellules() == {"total": 24, "dans": 0, "proximite": 0, "lacunes": 24}


def test_pivot(ref, sites):
    cov = coverage_from_sites(sites, ref)
    wide = cov.pivot("actions")
    assert list(wide.columns) == [*PRIORITES, "autre"]
    assert wide.loc[(ALPHA, "Alpha"), "mobilite"] == 2
    with pytest.raises(KeyError):
        cov.pivot("nope")


def test_shipped_reference_has_20_qpv(reference):
    cov = coverage_from_sites(pd.DataFrame({"lon": [4.3871], "lat": [45.4605],
                                            "priorite": ["sante"]}), reference)
    assert cov.qpv_total == 20


def test_cells_partition_and_gaps_per_qpv(ref, sites):
    cov = coverage_from_sites(sites, ref)
    assert cov.cellules() == {"total": 24, "dans": 4, "proximite": 1, "lacunes": 19}
    per = cov.lacunes_par_qpv()
    assert list(per.columns) == ["code_qp", "lib_qp", "lib_com", "lacunes", "proximite",
                                 "n_lacunes"]
    assert per["n_lacunes"].sum() == len(cov.gaps) == 19
    assert list(per["n_lacunes"]) == sorted(per["n_lacunes"], reverse=True)
    alpha = per.set_index("code_qp").loc[ALPHA]
    assert alpha["proximite"] == ["entreprises"]
    assert "mobilite" not in alpha["lacunes"] and "entreprises" not in alpha["lacunes"]
    assert alpha["lacunes"] == [k for k in PRIORITES if k not in ("mobilite", "entreprises")]


def test_axes_of_call():
    from qpv_geo.reporting.coverage import axes_of_call

    axes = axes_of_call()
    assert axes[0] == ("Lever les freins au retour à l'emploi",
                       ["mobilite", "linguistique", "garde_enfants", "sante"])
    assert [len(k) for _, k in axes] == [4, 1, 1, 1, 1]
    assert sorted(k for _, ks in axes for k in ks) == sorted(PRIORITES)
