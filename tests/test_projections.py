"""Metric projections per zone: Lambert-93 in metropolitan France, UTM overseas, one plane."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from qpv_geo.eligibility.projections import (
    DECALAGE_M,
    METROPOLE,
    ZONES,
    PlanMetrique,
    epsg_metrique,
    plan_des_departements,
    zone_du_departement,
)

# One point per zone (a QPV's neighbourhood): Saint-Étienne, Pointe-à-Pitre, Cayenne,
# Saint-Denis (Réunion), Mamoudzou, Papeete.
POINTS = {
    2154: (4.3872, 45.4397),
    5490: (-61.5331, 16.2411),
    2972: (-52.3260, 4.9372),
    2975: (55.4481, -20.8789),
    4471: (45.2279, -12.7806),
    3297: (-149.5585, -17.5350),
}
GEOD = pyproj.Geod(ellps="WGS84")


def test_metropolitan_plane_is_plain_lambert93() -> None:
    plan = PlanMetrique()
    assert plan.lambert93
    lon, lat = np.array([4.3872, 2.35]), np.array([45.4397, 48.85])
    x, y = plan.vers_plan(lon, lat)
    ex, ey = pyproj.Transformer.from_crs(4326, 2154, always_xy=True).transform(lon, lat)
    assert np.array_equal(x, ex) and np.array_equal(y, ey)


@pytest.mark.parametrize("epsg", sorted(POINTS))
def test_each_zone_distances_are_true_metres(epsg: int) -> None:
    plan = PlanMetrique(ZONES)
    lon0, lat0 = POINTS[epsg]
    # Two points 500 m apart (east then north-east): plane distance = geodesic within 0.1 %.
    lon1, lat1, _ = GEOD.fwd(lon0, lat0, 90, 500)
    lon2, lat2, _ = GEOD.fwd(lon0, lat0, 45, 1200)
    x, y = plan.vers_plan([lon0, lon1, lon2], [lat0, lat1, lat2])
    k = plan.zone_xy(x)
    assert plan.zones[k[0]].epsg == epsg and len(set(k)) == 1
    assert np.hypot(x[1] - x[0], y[1] - y[0]) == pytest.approx(500, rel=1e-3)
    assert np.hypot(x[2] - x[0], y[2] - y[0]) == pytest.approx(1200, rel=1e-3)
    back = plan.vers_lonlat(x, y)
    assert np.allclose(back[0], [lon0, lon1, lon2], atol=1e-9)
    assert np.allclose(back[1], [lat0, lat1, lat2], atol=1e-9)
    assert epsg_metrique((lon0, lat0)) == epsg


def test_zones_are_far_apart_in_the_plane_and_outside_is_nan() -> None:
    plan = PlanMetrique(ZONES)
    lons, lats = zip(*POINTS.values(), strict=True)
    x, _ = plan.vers_plan(lons, lats)
    assert np.all(np.diff(np.sort(x)) > DECALAGE_M / 2)
    # New York, Nouméa (no QPV), and NaN: outside every zone.
    x, y = plan.vers_plan([-74.0, 166.45, np.nan], [40.7, -22.27, np.nan])
    assert np.isnan(x).all() and np.isnan(y).all()
    assert (plan.zone_lonlat([-74.0, 166.45], [40.7, -22.27]) == -1).all()


def test_plan_of_departements_and_epsg_of_layers() -> None:
    assert plan_des_departements(["42", "69"]).lambert93
    assert [z.epsg for z in plan_des_departements(["974"]).zones] == [2975]
    assert len(plan_des_departements(None).zones) == len(ZONES)
    assert zone_du_departement("978").epsg == 5490
    assert zone_du_departement("2A") is METROPOLE
    reunion = gpd.GeoSeries([shapely.box(55.44, -20.89, 55.46, -20.87)], crs=4326)
    assert epsg_metrique(reunion) == 2975
    assert epsg_metrique(reunion.to_crs(2975)) == 2975
    assert epsg_metrique(gpd.GeoSeries([], crs=4326)) == 2154


def test_geometries_take_the_zone_of_their_point() -> None:
    plan = PlanMetrique(ZONES)
    # A 0.01° square in Mamoudzou: its plane area is its true area (pyproj geodesic).
    sq = shapely.box(45.22, -12.79, 45.23, -12.78)
    [proj] = plan.geometries_vers_plan([sq], np.array([45.225]), np.array([-12.785]))
    true_area = abs(GEOD.geometry_area_perimeter(sq)[0])
    assert proj.area == pytest.approx(true_area, rel=2e-3)
    assert plan.zones[plan.zone_xy([proj.centroid.x])[0]].epsg == 4471
    with pytest.raises(ValueError):
        plan.geometries_vers_plan([sq], np.array([0.0]), np.array([0.0]))
