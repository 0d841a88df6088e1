"""Eligibility engine: invariants on fixture squares, and the shipped QPV 2024 of SEM."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.ops import polylabel

from qpv_geo.eligibility.engine import VERDICT_COLUMNS, Engine
from qpv_geo.eligibility.margins import fmt_m, motifs_marge, rounded
from qpv_geo.exceptions import CoordinateError
from qpv_geo.geocoding import LocalGeocoder
from qpv_geo.geocoding.coordinates import coordinates_result, demi_pas_decimales
from qpv_geo.reference.layers import Reference
from qpv_geo.reference.metric_zones import l93_to_lonlat, lonlat_to_l93
from qpv_geo.settings import Settings

from .conftest import DATA

FIX = DATA / "engine"
MARGE = 25.0


@pytest.fixture(scope="module")
def fixture_engine() -> Engine:
    ref = Reference.from_frames(
        qpv=gpd.read_file(FIX / "qpv.geojson"),
        qva=gpd.read_file(FIX / "qva.geojson"),
        communes=gpd.read_file(FIX / "communes.geojson"),
    )
    return Engine(ref, marge_m=MARGE, tolerance_territoire_m=150)


def one(engine: Engine, x: float, y: float) -> dict:
    return engine.judge_xy([x], [y]).iloc[0].to_dict()


# ------------------------------------------------------------------ fixture squares, by case
def test_columns_are_the_public_api(fixture_engine: Engine) -> None:
    frame = fixture_engine.judge_xy([802500.0], [6472500.0])
    assert tuple(frame.columns) == VERDICT_COLUMNS


def test_centre_of_square_is_eligible_with_its_code(fixture_engine: Engine) -> None:
    r = one(fixture_engine, 802500, 6472500)
    assert r["status"] == "eligible"
    assert r["code_qp"] == "QN04290M" and r["lib_qp"] == "Carré Ouest"
    assert r["distance_bord_m"] == pytest.approx(500, abs=0.5)
    assert r["insee_com"] == "42901"
    assert "QN04290M" in r["motifs"]


def test_shared_edge_of_two_qpv_is_not_a_false_edge(fixture_engine: Engine) -> None:
    # 5 m from the edge shared by two QPV: eligible either way, so not "à vérifier".
    r = one(fixture_engine, 802995, 6472500)
    assert r["status"] == "eligible"
    assert r["code_qp"] == "QN04290M"
    assert r["distance_bord_m"] > 400  # distance to leaving the QPV area, not to the junction
    assert "jonction" in r["motifs"] or "QN04291N" not in r["motifs"]


def test_outer_edge_is_to_review_on_both_sides(fixture_engine: Engine) -> None:
    inside = one(fixture_engine, 802010, 6472500)
    outside = one(fixture_engine, 801990, 6472500)
    assert inside["status"] == "a_verifier" and outside["status"] == "a_verifier"
    assert inside["distance_bord_m"] == pytest.approx(10, abs=0.1)
    assert outside["distance_bord_m"] == pytest.approx(-10, abs=0.1)
    assert inside["candidat_autre_cote"] == "QN04290M" == outside["candidat_autre_cote"]
    assert "hors QPV" in inside["motifs"] and "serait dans un QPV" in outside["motifs"]


def test_just_beyond_margin_is_confident(fixture_engine: Engine) -> None:
    assert one(fixture_engine, 802000 + MARGE + 1, 6472500)["status"] == "eligible"
    r = one(fixture_engine, 802000 - MARGE - 1, 6472500)
    assert r["status"] == "hors_qpv"
    assert r["code_qp_proche"] == "QN04290M"
    assert r["distance_qp_proche_m"] == pytest.approx(MARGE + 1, abs=0.1)


def test_qva_is_not_eligible_and_its_edge_with_a_qpv_is_to_review(fixture_engine: Engine) -> None:
    r = one(fixture_engine, 805500, 6472500)
    assert r["status"] == "qva"
    assert r["code_qp"] == "QVA-T1"
    assert "veille active" in r["motifs"]
    edge = one(fixture_engine, 805990, 6472500)  # in the QVA, 10 m from the QPV next door
    assert edge["status"] == "a_verifier"
    assert edge["candidat_autre_cote"] in {"QN04292M", "QVA-T1"}
    # Near the QVA's outer edge, the verdict moves between two non-eligible statuses: the
    # issue asks for "à vérifier" within the margin of a QVA edge too.
    assert one(fixture_engine, 805010, 6472500)["status"] == "a_verifier"


def test_hole_in_a_qpv_is_outside(fixture_engine: Engine) -> None:
    assert one(fixture_engine, 813500, 6473500)["status"] == "hors_qpv"
    assert one(fixture_engine, 812500, 6473500)["status"] == "eligible"


def test_qpv_of_another_epci_is_out_of_territory_and_named(fixture_engine: Engine) -> None:
    r = one(fixture_engine, 830500, 6472500)
    assert r["status"] == "hors_territoire"
    assert r["code_qp"] == "QN04294I"
    assert "Roannais Agglomération" in r["motifs"] and "hors Saint-Étienne Métropole" in r["motifs"]


def test_territory_tolerance(fixture_engine: Engine) -> None:
    assert one(fixture_engine, 820100, 6471000)["status"] == "hors_qpv"  # within tolerance
    r = one(fixture_engine, 820400, 6471000)
    assert r["status"] == "hors_territoire"
    assert "53 communes" in r["motifs"]


def test_unusable_coordinates_are_rows_not_crashes(fixture_engine: Engine) -> None:
    frame = fixture_engine.judge_lonlat(
        [np.nan, 200.0, 45.44, 808000.0, 2.35, np.inf], [45.0, 45.0, 4.39, 6480000.0, 48.85, 45])
    assert list(frame["status"]) == ["non_geocode"] * 4 + ["hors_territoire", "non_geocode"]
    assert "impossibles" in frame["motifs"][5]
    assert "manquantes" in frame["motifs"][0]
    assert "impossibles" in frame["motifs"][1]
    assert "inversées" in frame["motifs"][2]
    assert "Lambert-93" in frame["motifs"][3]
    assert np.isnan(frame["lon"][2])  # a swapped point is reported, never silently fixed


def test_judge_point_raises_on_impossible_input(fixture_engine: Engine) -> None:
    with pytest.raises(CoordinateError, match="inversées"):
        fixture_engine.judge_point(lat=4.39, lon=45.44)
    with pytest.raises(CoordinateError, match="degrés"):
        fixture_engine.judge_point(x=4.39, y=45.44)
    with pytest.raises(CoordinateError):
        fixture_engine.judge_point(lat=200, lon=4.4)


# ------------------------------------------------------------------ properties (hypothesis)
@given(st.floats(802000 + MARGE + 0.01, 803000 - 1e-6), st.floats(6472000 + MARGE + 0.01,
                                                                    6473000 - MARGE - 0.01))
@settings(max_examples=200, deadline=None)
def test_inside_farther_than_margin_is_eligible(fixture_engine: Engine, x: float,
                                                y: float) -> None:
    r = one(fixture_engine, x, y)
    assert r["status"] == "eligible"
    assert r["code_qp"] in {"QN04290M", "QN04291N"}
    assert r["distance_bord_m"] >= MARGE - 0.05


@given(st.floats(6472000 + MARGE + 1, 6473000 - MARGE - 1), st.floats(-MARGE + 0.01, MARGE - 0.01))
@settings(max_examples=200, deadline=None)
def test_points_at_an_edge_are_to_review(fixture_engine: Engine, y: float, offset: float) -> None:
    r = one(fixture_engine, 802000 + offset, y)
    assert r["status"] == "a_verifier"
    assert r["candidat_autre_cote"] == "QN04290M"


@pytest.fixture(scope="module")
def big_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 100_000
    return rng.uniform(799000, 832000, n), rng.uniform(6469000, 6481000, n)


@given(st.floats(799000, 832000), st.floats(6469000, 6481000), st.integers(0, 99_999))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_one_point_equals_same_point_in_a_batch_of_100000(
    fixture_engine: Engine, big_batch: tuple[np.ndarray, np.ndarray], x: float, y: float, k: int
) -> None:
    xs, ys = big_batch[0].copy(), big_batch[1].copy()
    xs[k], ys[k] = x, y
    batch_row = fixture_engine.judge_xy(xs, ys).iloc[k]
    single = fixture_engine.judge_xy([x], [y]).iloc[0]
    for col in ("status", "code_qp", "insee_com", "code_qp_proche", "candidat_autre_cote",
                "motifs"):
        same_missing = pd.isna(batch_row[col]) and pd.isna(single[col])
        assert same_missing or batch_row[col] == single[col], col
    for col in ("distance_bord_m", "distance_qp_proche_m"):
        assert batch_row[col] == pytest.approx(single[col], abs=1e-6, nan_ok=True), col


@given(st.floats(799000, 832000), st.floats(6469000, 6481000))
@settings(max_examples=200, deadline=None)
def test_lambert_and_wgs84_give_the_same_verdict(fixture_engine: Engine, x: float,
                                                 y: float) -> None:
    lon, lat = Engine.l93_to_lonlat([x], [y])
    a = fixture_engine.judge_xy([x], [y]).iloc[0]
    b = fixture_engine.judge_lonlat(lon, lat).iloc[0]
    d = a["distance_bord_m"]
    near_threshold = np.isfinite(d) and (abs(abs(d) - MARGE) < 1e-3 or abs(d) < 1e-3)
    if not near_threshold:
        assert a["status"] == b["status"]
        assert a["code_qp"] == b["code_qp"]
    da, db = a["distance_bord_m"], b["distance_bord_m"]
    at_search_radius = any(np.isfinite(v) and abs(abs(v) - 3000) < 0.15 for v in (da, db))
    if not at_search_radius:  # beyond the 3 km search radius, no distance is reported
        assert da == pytest.approx(db, abs=0.15, nan_ok=True)


# ------------------------------------------------------------------ shipped data (QPV 2024 of SEM)
def test_shipped_layers(reference: Reference) -> None:
    assert len(reference.qpv) == 20
    assert sorted(reference.qpv_hors_sem["code_qp"]) == ["QN04201M", "QN04217M", "QN04218M",
                                                         "QN04219I"]
    assert len(reference.communes) == 53
    assert shapely.is_valid(reference.qpv.geometry.values).all()
    assert not reference.simplified
    assert any("géométrie exacte extraite du fichier ANCT" in n for n in reference.notes)
    assert not any("copie simplifiée" in n for n in reference.notes)


def test_a_point_deep_inside_each_qpv_gives_its_code(engine: Engine, reference: Reference) -> None:
    metric = reference.qpv.to_crs(2154)
    centres = [polylabel(max(shapely.get_parts(g), key=lambda p: p.area), tolerance=1.0)
               for g in metric.geometry]
    xs = np.array([p.x for p in centres])
    ys = np.array([p.y for p in centres])
    frame = engine.judge_xy(xs, ys)
    assert list(frame["status"]) == ["eligible"] * 20, frame[["status", "motifs"]]
    assert list(frame["code_qp"]) == list(reference.qpv["code_qp"])
    assert "extrait exact ANCT" in frame["donnees"][0]
    # Through WGS84 too, and as single points.
    lon, lat = Engine.l93_to_lonlat(xs, ys)
    assert list(engine.judge_lonlat(lon, lat)["code_qp"]) == list(reference.qpv["code_qp"])
    v = engine.judge_point(lon=float(lon[0]), lat=float(lat[0]))
    assert v.eligible and v.code_qp == "QN04202M" and v.lib_qp == "La Chapelle"


def test_qn04211m_and_qn04212m_do_not_overlap_at_full_precision(engine: Engine,
                                                                 reference: Reference) -> None:
    metric = reference.qpv.to_crs(2154).set_index("code_qp")
    a, b = metric.geometry["QN04211M"], metric.geometry["QN04212M"]
    assert shapely.intersection(a, b).area == 0  # the simplified copy's 0.1 m² sliver is gone
    assert shapely.distance(a, b) == pytest.approx(0.46, abs=0.02)
    # Midway across the 0.46 m gap: in neither QPV, a few decimetres from both; the margin
    # names the QPV on the other side instead of guessing.
    pa, pb = shapely.ops.nearest_points(a, b)
    mx, my = (pa.x + pb.x) / 2, (pa.y + pb.y) / 2
    r = engine.judge_xy([mx], [my]).iloc[0]
    assert r["status"] == "a_verifier" and r["code_qp"] is None
    assert r["candidat_autre_cote"] in {"QN04211M", "QN04212M"}
    # Just inside each of the two, away from the contact, each keeps its own code.
    for code, geom in (("QN04211M", a), ("QN04212M", b)):
        q = polylabel(max(shapely.get_parts(geom), key=lambda g: g.area), tolerance=1.0)
        assert engine.judge_xy([q.x], [q.y]).iloc[0]["code_qp"] == code


def test_former_invalid_shapes_are_judged(engine: Engine) -> None:
    # Where the simplified copy had self-intersections (QN04214M, QN04222N; see PROVENANCE).
    frame = engine.judge_lonlat([4.38822, 4.28851], [45.44502, 45.39718])
    assert set(frame["status"]) <= {"eligible", "a_verifier"}
    assert set(frame["code_qp"].dropna()) | set(frame["candidat_autre_cote"].dropna()) <= {
        "QN04214M", "QN04222N"}


def test_outside_sem_and_other_epci(engine: Engine, reference: Reference) -> None:
    roanne = reference.qpv_hors_sem.set_index("code_qp").geometry["QN04217M"]
    p = polylabel(max(shapely.get_parts(roanne), key=lambda q: q.area), tolerance=1e-6)
    r = engine.judge_point(lon=p.x, lat=p.y)
    assert r.status == "hors_territoire" and r.code_qp == "QN04217M"
    assert any("Roannais" in m for m in r.motifs)
    # Saint-Just-Saint-Rambert (42279) is not in SEM; Lyon is far away.
    sjsr = engine.judge_point(lat=45.4990, lon=4.2420)
    assert sjsr.status == "hors_territoire"
    assert engine.judge_point(lat=45.7640, lon=4.8357).status == "hors_territoire"


# ------------------------------------------------------------------ geocoding quality in verdicts
def _geo(lon, lat, *, precision="housenumber", score=0.9, citycode="42218", source="local"):
    from qpv_geo.geocoding import GeocodeResult

    return GeocodeResult("q", lon, lat, label="lieu", score=score, precision=precision,
                         citycode=citycode, postcode=None, source=source)


def test_imprecise_geocoding_is_to_review_not_a_guess(engine: Engine, reference) -> None:
    geom = reference.qpv.to_crs(2154).set_index("code_qp").geometry["QN04213M"]
    p = polylabel(geom, tolerance=1.0) if geom.geom_type == "Polygon" else geom.centroid
    lon, lat = (float(v[0]) for v in Engine.l93_to_lonlat([p.x], [p.y]))
    good = engine.judge_point(geocode=_geo(lon, lat))
    assert good.status == "eligible" and good.geocodage["geocodage_precision"] == "housenumber"
    street = engine.judge_point(geocode=_geo(lon, lat, precision="street"))
    assert street.status == "a_verifier"
    assert any("rue seulement" in m for m in street.motifs)
    low = engine.judge_point(geocode=_geo(lon, lat, score=0.42))
    assert low.status == "a_verifier" and any("0.42" in m for m in low.motifs)


def test_a_town_without_qpv_settles_an_imprecise_point(engine: Engine, reference) -> None:
    # Villars (42330) holds no QPV: a town-level point there is confidently hors QPV.
    town = reference.communes.set_index("insee_com").geometry["42330"].representative_point()
    v = engine.judge_point(geocode=_geo(town.x, town.y, precision="municipality",
                                        citycode="42330"))
    assert v.status == "hors_qpv"
    assert any("la commune entière le décide" in m for m in v.motifs)


def test_geocoder_commune_outside_sem_and_not_found(engine: Engine) -> None:
    from qpv_geo.geocoding import GeocodeResult

    v = engine.judge_point(geocode=_geo(4.2420, 45.4990, citycode="42279"))  # St-Just-St-Rambert
    assert v.status == "hors_territoire" and any("42279" in m for m in v.motifs)
    miss = engine.judge_point(geocode=GeocodeResult("zzz", None, None, motif="adresse inconnue"))
    assert miss.status == "non_geocode" and miss.motifs == ["adresse inconnue"]


def test_demo_addresses_are_marked(engine: Engine) -> None:
    v = engine.judge_point(geocode=_geo(4.39, 45.44, source="local-demo"))
    assert any(m.startswith("DÉMONSTRATION") for m in v.motifs)
    assert v.geocodage["geocodage_source"] == "local-demo"


# ------------------------------------------------------------------ margins from the evidence
def _inside_edge_points(reference: Reference, depth: float) -> tuple[list[str], np.ndarray,
                                                                     np.ndarray]:
    """One point per QPV of SEM, ``depth`` m inside its edge (midpoint of its longest side,
    moved along the inward normal), checked against the exact geometry."""
    metric = reference.qpv.to_crs(2154)
    codes, xs, ys = [], [], []
    for code, geom in zip(metric["code_qp"], metric.geometry, strict=True):
        ring = np.asarray(max(shapely.get_parts(geom), key=lambda p: p.area).exterior.coords)
        seg = np.diff(ring, axis=0)
        order = np.argsort(-np.hypot(seg[:, 0], seg[:, 1]))
        for k in order:  # the longest side whose inward point is really `depth` from any edge
            mid = ring[k] + seg[k] / 2
            normal = np.array([-seg[k, 1], seg[k, 0]]) / np.hypot(*seg[k])
            for sign in (1, -1):
                x, y = mid + sign * depth * normal
                if geom.contains(shapely.Point(x, y)) and abs(
                        geom.boundary.distance(shapely.Point(x, y)) - depth) < 0.01:
                    break
            else:
                continue
            break
        codes.append(code)
        xs.append(x)
        ys.append(y)
    return codes, np.array(xs), np.array(ys)


def test_points_3_m_inside_each_qpv_are_eligible_at_marge_0(reference: Reference) -> None:
    codes, xs, ys = _inside_edge_points(reference, 3.0)
    frame = Engine(reference, marge_m=0).judge_xy(xs, ys)
    assert list(frame["status"]) == ["eligible"] * 20, frame[["status", "motifs"]]
    assert list(frame["code_qp"]) == codes
    assert np.allclose(frame["distance_bord_m"], 3.0, atol=0.1)
    assert set(frame["marge_motif"]) == {"marge 0 m imposée (--marge ou QPV_GEO_MARGE_M)"}


def _geo_at(engine: Engine, x: float, y: float, type_position: str | None,
            precision: str = "housenumber"):
    from qpv_geo.geocoding import GeocodeResult

    lon, lat = (float(v[0]) for v in Engine.l93_to_lonlat([x], [y]))
    return GeocodeResult("q", lon, lat, label="lieu", score=0.95, precision=precision,
                         citycode="42218", source="local", type_position=type_position)


def test_the_margin_follows_the_evidence_and_says_why(engine: Engine, reference) -> None:
    codes, xs, ys = _inside_edge_points(reference, 10.0)
    i = codes.index("QN04213M")
    x, y = xs[i], ys[i]
    # Coordinates without a stated precision: 1 m (perimeter) + 10 m (default) > 10 m.
    v = engine.judge_point(x=x, y=y)
    assert v.status == "a_verifier" and v.marge_m == 11
    assert v.marge_motif == ("marge 11 m = périmètre 1 m + position de coordonnées (valeur par "
                             "défaut) 10 m")
    assert any("à moins de 11 m du bord de QN04213M" in m for m in v.motifs)
    # A BAN « entrée » position: 1 + 8 = 9 m < 10 m: eligible, and it says so.
    e = engine.judge_point(geocode=_geo_at(engine, x, y, "entrée"))
    assert e.status == "eligible" and e.code_qp == "QN04213M" and e.marge_m == 9
    assert e.marge_motif == "marge 9 m = périmètre 1 m + position « entrée » 8 m"
    # Typographic apostrophe of the BAN file; a parcel centroid is far less sure.
    c = engine.judge_point(geocode=_geo_at(engine, x, y, "cage d’escalier"))
    assert c.marge_motif == "marge 11 m = périmètre 1 m + position « cage d'escalier » 10 m"
    p = engine.judge_point(geocode=_geo_at(engine, x, y, "parcelle"))
    assert p.status == "a_verifier" and p.marge_m == 31
    unknown = engine.judge_point(geocode=_geo_at(engine, x, y, None))
    assert unknown.marge_m == 16 and "type inconnu" in unknown.marge_motif
    # A stated precision (CLI --precision-point, batch column), per point.
    frame = engine.judge_xy([x, x], [y, y], precision_point_m=np.array([2.0, np.nan]))
    assert list(frame["marge_m"]) == [3.0, 11.0]
    assert list(frame["status"]) == ["eligible", "a_verifier"]
    assert frame["marge_motif"][0] == "marge 3 m = périmètre 1 m + position déclarée 2 m"
    # Forced: one value, said to be forced.
    forced = Engine(reference, marge_m=25).judge_point(geocode=_geo_at(engine, x, y, "entrée"))
    assert forced.status == "a_verifier" and forced.marge_m == 25
    assert forced.marge_motif == "marge 25 m imposée (--marge ou QPV_GEO_MARGE_M)"


def test_simplified_perimeters_widen_the_margin(engine: Engine, reference: Reference) -> None:
    # Roanne's QPV come from the simplified copy (11 m): near their edge the margin says so
    # (the verdict is « hors territoire » on both sides of it).
    metric = reference.qpv_hors_sem.to_crs(2154).set_index("code_qp")
    geom = metric.geometry["QN04217M"]
    b = shapely.get_coordinates(geom.boundary)[0]
    frame = engine.judge_xy([b[0]], [b[1]])
    assert frame["status"][0] == "hors_territoire"
    assert frame["marge_motif"][0].startswith("marge 21 m = périmètre 11 m + ")
    montbrison = metric.geometry["QN04201M"]
    m = shapely.get_coordinates(montbrison.boundary)[0]
    assert engine.judge_xy([m[0]], [m[1]])["marge_m"][0] == 11  # exact geometry: 1 m + 10 m


def test_no_confident_verdict_is_wrong_when_the_point_moves_by_its_uncertainty(
        engine: Engine, reference: Reference) -> None:
    # Points along every edge, each displaced by its stated uncertainty in 8 directions: the
    # status at the true place (margin 0) equals every confident verdict at the reported one.
    truth = Engine(reference, marge_m=0)
    metric = reference.qpv.to_crs(2154)
    rng = np.random.default_rng(11)
    pts = []
    for geom in metric.geometry:
        line = geom.boundary
        for d in rng.uniform(0, line.length, 60):
            p = line.interpolate(d)
            pts.append((p.x + rng.normal(0, 20), p.y + rng.normal(0, 20)))
    xy = np.array(pts)
    for u in (2.0, 8.0, 10.0):
        reported = engine.judge_xy(xy[:, 0], xy[:, 1], precision_point_m=u)
        confident = reported["status"].to_numpy() != "a_verifier"
        assert 0.2 < confident.mean() < 1  # the test sees both kinds
        for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            tx = xy[:, 0] + u * np.cos(angle)
            ty = xy[:, 1] + u * np.sin(angle)
            real = truth.judge_xy(tx, ty)["status"].to_numpy()
            wrong = confident & (real != reported["status"].to_numpy())
            assert not wrong.any(), reported[wrong][["status", "distance_bord_m", "marge_m"]]


def test_pruned_search_gives_the_same_verdicts_as_every_pair_and_segment(
        reference: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    # The nearest-QPV pruning and the segment chunks change no output, bit for bit: random
    # points over SEM and beyond, points on vertices and edges, several margins.
    from qpv_geo.eligibility import _geometry
    from qpv_geo.eligibility import engine as el

    fast = Engine(reference)
    parts = fast.parts
    rng = np.random.default_rng(5)
    x0, y0, x1, y1 = fast.communes.total_bounds
    n = 60_000
    xs = [rng.uniform(x0 - 4000, x1 + 4000, n)]
    ys = [rng.uniform(y0 - 4000, y1 + 4000, n)]
    v = np.arange(0, len(parts.ax), 2)
    xs += [parts.ax[v], parts.ax[v] + parts.dx[v] / 2, parts.ax[v] + rng.normal(0, 5, len(v))]
    ys += [parts.ay[v], parts.ay[v] + parts.dy[v] / 2, parts.ay[v] + rng.normal(0, 5, len(v))]
    x, y = np.concatenate(xs), np.concatenate(ys)
    u = rng.choice([0.0, 2.0, 8.0, 30.0, 150.0], len(x))
    for kw in ({}, {"marge_m": 25.0}):
        a = Engine(reference, **kw).classify_xy(x, y, incertitude_m=u)
        with monkeypatch.context() as m:
            m.setattr(el, "_signed_distance", _geometry.signed_distance_all)
            slow = Engine(reference, **kw)
            slow._prune_nearest = False
            b = slow.classify_xy(x, y, incertitude_m=u)
        for name in a.__dataclass_fields__:
            va, vb = getattr(a, name), getattr(b, name)
            assert np.array_equal(va, vb, equal_nan=va.dtype.kind == "f"), name


def _points_everywhere(engine: Engine, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points over SEM and beyond, and around the QPV edges (x, y in Lambert-93)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = engine.communes.total_bounds
    parts = engine.parts
    k = rng.integers(0, len(parts.ax), n // 2)
    x = np.concatenate([rng.uniform(x0 - 4000, x1 + 4000, n - n // 2),
                        parts.ax[k] + rng.normal(0, 15, n // 2)])
    y = np.concatenate([rng.uniform(y0 - 4000, y1 + 4000, n - n // 2),
                        parts.ay[k] + rng.normal(0, 15, n // 2)])
    return x, y


def test_the_single_point_path_gives_the_batch_verdict(engine: Engine, reference: Reference
                                                       ) -> None:
    # judge_point (qpv_geo.eligibility._single_point, scalar) against the rows of one batch call,
    # field by field, on 5,000 points (make bench: 100,000), with the default and a forced margin.
    from qpv_geo.eligibility import _single_point

    x, y = _points_everywhere(engine, 5_000, seed=13)
    lon, lat = Engine.l93_to_lonlat(x, y)
    usable = Engine.check_lonlat(lon, lat) == 0
    lon, lat = lon[usable], lat[usable]
    scalar = 0
    for eng in (engine, Engine(reference, marge_m=25.0)):
        frame = eng.judge_lonlat(lon, lat)
        cols = {c: frame[c].to_numpy() for c in frame.columns}
        for i in range(len(lon)) if eng is engine else range(0, len(lon), 10):
            one = eng.judge_point(lon=float(lon[i]), lat=float(lat[i])).to_dict()
            for k, v in one.items():
                if k in cols:
                    w = cols[k][i]
                    w = w.item() if isinstance(w, np.generic) else w
                    w = None if isinstance(w, float) and np.isnan(w) else w
                    if k == "motifs":
                        w = [m for m in str(w).split(" ; ") if m]
                    assert v == w, (i, k, v, w)
        scalar += sum(_single_point.verdict_un_point(eng, float(a), float(b), float(c), float(d),
                                                 10.0, "position") is not None
                      for a, b, c, d in zip(*Engine.lonlat_to_l93(lon[:200], lat[:200]),
                                            lon[:200], lat[:200], strict=True))
    assert scalar > 300  # the scalar path answered, not only the batch fallback
    v = engine.judge_point(x=float(x[0]), y=float(y[0]), precision_point_m=3.0)
    assert v == engine._verdict(engine.judge_xy(x[:1], y[:1], precision_point_m=3.0).iloc[0],
                                None)


def test_one_value_gives_the_numbers_and_words_of_a_batch() -> None:
    """The single verdict's Python-number branches (rounding, metres, margin phrase, decimals
    of a coordinate, Lambert-93, the zone check) give what the array path gives, bit for bit:
    halves, negative zero, NaN and infinities included."""
    rng = np.random.default_rng(24)
    odd = [np.nan, np.inf, -np.inf, -0.0, 0.0, -0.04, 0.05, 0.25, 2.5, 45.41000000000001]
    typed = [round(float(a), int(d)) for a, d in zip(rng.uniform(-180, 180, 3000),
                                                     rng.integers(0, 8, 3000), strict=True)]
    v = np.concatenate([rng.uniform(-3000, 3000, 3000), typed, odd])

    def same(fn, *arrays) -> None:
        whole = fn(*arrays)
        for i in range(len(arrays[0])):
            one = fn(*(a[i:i + 1] for a in arrays))
            got = [one] if not isinstance(one, tuple) else list(one)
            ref = [whole] if not isinstance(whole, tuple) else list(whole)
            for g, r in zip(got, ref, strict=True):
                assert g.shape == (1,)
                assert (g[0] == r[i]) or (g[0] != g[0] and r[i] != r[i]), (fn, arrays[0][i])
                if isinstance(r[i], float) and r[i] == 0:
                    assert np.signbit(g[0]) == np.signbit(r[i])

    for decimals in (0, 1, 2, 7):
        same(lambda a, d=decimals: rounded(a, d), v)
    same(fmt_m, v)
    same(demi_pas_decimales, v)
    marge = np.abs(v[:2000])
    words = np.array(["position « entrée »", "arrondi des coordonnées données"],
                     dtype=object)[rng.integers(0, 2, 2000)]
    for forcee in (False, True):
        same(lambda m, p, i, w, f=forcee: motifs_marge(m, p, i, w, f), marge,
             rng.choice([1.0, 11.0, 2.5], 2000), marge / 3, words)
    lon, lat = rng.uniform(-70, 60, 3000), rng.uniform(-30, 60, 3000)
    lon[:3], lat[3:5] = np.nan, np.inf
    same(Engine.check_lonlat, lon, lat)
    same(lonlat_to_l93, lon, lat)
    x, y = lonlat_to_l93(lon, lat)
    same(l93_to_lonlat, x, y)


def test_one_geocoded_address_gets_the_batch_row(engine: Engine) -> None:
    """judge_point(geocode=…) reads the columns of the batch path for one row (no DataFrame
    unless a rule needs the table): the same verdict as the same result in a batch, for
    numbers, streets, communes, a commune written outside the territory, a street in several
    communes, coordinates typed in the field."""
    geocoder = LocalGeocoder.from_settings(Settings.from_env(), demo=True)
    queries = ["39 Rue Pasteur 42380 Aboën", "Rue Pasteur 42380 Aboën", "Saint-Étienne",
               "Firminy", "10 rue de Rivoli 75001 Paris", "rue Victor Hugo",
               "3 avenue de la Libération 42000 Saint-Étienne", "Place Jean Jaurès"]
    geocodes = [geocoder.geocode(q) for q in queries]
    geocodes.append(coordinates_result("45.4605, 4.3871"))
    geocodes = [g for g in geocodes if g is not None and g.lon is not None]
    assert len(geocodes) >= 6
    frame = engine.judge_lonlat([g.lon for g in geocodes], [g.lat for g in geocodes],
                                geocodes=geocodes)
    for i, g in enumerate(geocodes):
        assert engine.judge_point(geocode=g).to_dict() == \
            engine._verdict(frame.iloc[i], g).to_dict(), g.label


def test_national_signed_distances_without_a_loop_by_part_are_the_same_values() -> None:
    """Issue 24: on the national layer (1,600+ parts, a handful of pairs each) the signed
    distances come from the flat path; the same floating-point values as evaluating every
    segment of each pair's part."""
    from qpv_geo.eligibility import _geometry
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.settings import Settings

    engine = engine_from_settings(Settings.from_env(territoire="france"))
    parts = engine.parts
    rng = np.random.default_rng(24)
    pj = rng.integers(0, len(parts.kind), 6000)
    b = parts.bounds[pj]
    # around each part's box: inside, on, and up to 3 km beyond its edges
    x = rng.uniform(b[:, 0] - 3000, b[:, 2] + 3000)
    y = rng.uniform(b[:, 1] - 3000, b[:, 3] + 3000)
    assert len(np.unique(pj)) >= _geometry._MANY_GROUPS
    got = _geometry.signed_distance(parts, x, y, pj)
    want = _geometry.signed_distance_all(parts, x, y, pj)
    np.testing.assert_array_equal(got, want)
    assert (got > 0).any() and (got < 0).any()


def test_decimal_steps_of_many_cells_follow_the_one_cell_rule() -> None:
    """Issue 24: the half decimal step of coordinate texts, vectorised, gives what the rule
    of one cell gives — signs, comma or point, spaces, Unicode digits, junk."""
    from qpv_geo.geocoding import coordinates

    rng = np.random.default_rng(7)
    alphabet = [*"4507.,-+ a\t\n", "\u0664", "\u00b2", "\u00a0", "\x1c"]
    cells = ["".join(rng.choice(alphabet, int(rng.integers(0, 8)))) for _ in range(20000)]
    cells += ["45.40", "-4.123456789", "+0,5", "45", "45.", ".5", "4-5", "1.2.3", " 7 "]
    got = coordinates.demi_pas_textes(np.array(cells, dtype=object))
    want = np.array([coordinates.demi_pas_textes(np.array([c], dtype=object))[0]
                     for c in cells])
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).sum() > 1000


def test_national_sparse_grid_gives_the_same_verdicts_as_the_tree_of_boxes() -> None:
    """Issue 24: all of France takes its candidates from a sparse grid of the parts' boxes and
    computes distances only where they can matter (the nearest QPV best box first, no ray
    crossings clearly outside a box): the same verdict table, bit for bit, as every pair of
    the tree of boxes with its exact signed distance — points in, on and around the QPV
    (overseas too), far from any, with small and large position uncertainties."""
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.settings import Settings

    engine = engine_from_settings(Settings.from_env(territoire="france"))
    assert engine._creuse
    parts = engine.parts
    rng = np.random.default_rng(2024)
    n = 8000
    pj = rng.integers(0, len(parts.kind), n)
    b = parts.bounds[pj]
    k = rng.integers(0, len(parts.ax), n)
    x = np.concatenate([rng.uniform(b[:, 0] - 4000, b[:, 2] + 4000),
                        parts.ax[k] + rng.normal(0, 20, n), parts.ax[k]])
    y = np.concatenate([rng.uniform(b[:, 1] - 4000, b[:, 3] + 4000),
                        parts.ay[k] + rng.normal(0, 20, n), parts.ay[k]])
    lon, lat = engine.plan_to_lonlat(x, y)
    u = rng.choice([np.nan, 0.0, 8.0, 30.0, 400.0, 6000.0], len(x))
    got = engine.judge_lonlat(lon, lat, precision_point_m=u)
    tree = engine_from_settings(Settings.from_env(territoire="france"))
    tree._creuse = False  # every pair of the tree of boxes, exact distances
    try:
        want = tree.judge_lonlat(lon, lat, precision_point_m=u)
    finally:
        tree._creuse = True  # (the engine is cached per process)
    pd.testing.assert_frame_equal(got, want)
    assert set(got["status"]) >= {"eligible", "hors_qpv", "a_verifier"}
    assert got["code_qp_proche"].notna().sum() > 1000


def test_distance_clearly_outside_a_box_needs_no_crossings() -> None:
    """Issue 24: a point at least OUTSIDE_BOX_M from its part's box is outside the part; its
    distance without counting crossings is the exact one, negative."""
    from qpv_geo.eligibility import _geometry
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.settings import Settings

    parts = engine_from_settings(Settings.from_env(territoire="france")).parts
    rng = np.random.default_rng(11)
    pj = rng.integers(0, len(parts.kind), 20000)
    b = parts.bounds[pj]
    x = rng.uniform(b[:, 0] - 3000, b[:, 2] + 3000)
    y = rng.uniform(b[:, 1] - 3000, b[:, 3] + 3000)
    # and just beyond each side of the box, level with it (the ray crosses the part)
    side = rng.integers(0, 4, len(pj))
    gap = _geometry.OUTSIDE_BOX_M * rng.choice([1.0, 1.5, 40.0], len(pj))
    mid_y = rng.uniform(b[:, 1], b[:, 3])
    mid_x = rng.uniform(b[:, 0], b[:, 2])
    x = np.concatenate([x, np.select([side == 0, side == 1], [b[:, 0] - gap, b[:, 2] + gap],
                                     mid_x)])
    y = np.concatenate([y, np.select([side == 2, side == 3], [b[:, 1] - gap, b[:, 3] + gap],
                                     mid_y)])
    pj = np.concatenate([pj, pj])
    b = parts.bounds[pj]
    lb = np.hypot(np.maximum(np.maximum(b[:, 0] - x, x - b[:, 2]), 0.0),
                  np.maximum(np.maximum(b[:, 1] - y, y - b[:, 3]), 0.0))
    out = lb >= _geometry.OUTSIDE_BOX_M
    got = _geometry.signed_distance(parts, x[out], y[out], pj[out], outside=True)
    want = _geometry.signed_distance_all(parts, x[out], y[out], pj[out])
    np.testing.assert_array_equal(got, want)
    assert out.sum() > 20000


def test_dissolved_perimeters_kept_on_disk_are_the_ones_built(
        reference: Reference, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: the parts (dissolved perimeters, their segments) are kept in the cache folder,
    named by a digest of the perimeters, their kinds and the code: read back they are the
    parts built, array for array and coordinate for coordinate; other perimeters make
    another file; an unreadable file is built again."""
    import shapely.affinity

    from qpv_geo.eligibility import _geometry

    built = Engine(reference)
    zones, kinds = built.zones, built._zone_kind
    first = _geometry.parts_from_zones(zones, kinds, cache_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    again = _geometry.parts_from_zones(zones, kinds, cache_dir=tmp_path)  # read back
    for parts in (first, again):
        for f in _geometry.fields(_geometry.Parts):
            a, b = getattr(built.parts, f.name), getattr(parts, f.name)
            if f.name == "members":
                assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
            elif f.name == "geoms":
                assert list(shapely.to_wkb(a)) == list(shapely.to_wkb(b))
            else:
                assert a.dtype == b.dtype and np.array_equal(a, b), f.name
    moved = zones.copy()
    moved.loc[0, "geometry"] = shapely.affinity.translate(moved.geometry.iloc[0], 0.001)
    _geometry.parts_from_zones(moved, kinds, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    files[0].write_bytes(b"not an npz")
    rebuilt = _geometry.parts_from_zones(zones, kinds, cache_dir=tmp_path)
    assert np.array_equal(rebuilt.ax, built.parts.ax)
    with np.load(files[0]) as saved:  # and written again
        assert np.array_equal(saved["ax"], built.parts.ax)
    # the engine of the settings keeps its parts in the cache folder
    cached = Engine(reference, cache_dir=tmp_path / "moteur")
    assert np.array_equal(cached.parts.ax, built.parts.ax)
    assert list((tmp_path / "moteur").iterdir())
    # no source to name the code by (a frozen install): built, nothing kept
    def no_source(obj):
        raise OSError("no source")

    monkeypatch.setattr(_geometry.inspect, "getsource", no_source)
    frozen = _geometry.parts_from_zones(zones, kinds, cache_dir=tmp_path / "gele")
    assert np.array_equal(frozen.ax, built.parts.ax) and not (tmp_path / "gele").exists()


def test_national_engine_reads_commune_names_when_a_code_needs_one() -> None:
    """Issue 24: without commune outlines, the names of the communes are not read at every
    build (a file of coordinates never needs them), only when a commune code asks."""
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.settings import Settings

    engine = Engine(engine_from_settings(Settings.from_env(territoire="france")).reference)
    assert engine._names is None
    frame = engine.judge_lonlat([4.3872], [45.4397])
    assert frame["lib_com"].isna().all() and engine._names is None
    frame = engine.judge_lonlat([4.3872], [45.4397], citycodes=["42218"])
    assert frame["lib_com"].iloc[0] == "Saint-Étienne" and engine._names
