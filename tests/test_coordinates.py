"""Coordinates as people paste them, and the precision of their figures (issue 19, point 5).

« 45.41, 4.39 » is a cell of 0.01° (± 556 m in latitude), not a point: a QPV 145 m away leaves
the verdict open, on every path (check, API, batch columns, coordinates in the address field).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.geocoding.coordinates import coordinates_result, parse_coordinates
from qpv_geo.settings import Settings

runner = CliRunner()

LAT, LON = 45.46114, 4.38679  # Saint-Étienne, written with 5 decimals


@pytest.mark.parametrize("text", [
    "45°27'40\"N 4°23'12\"E",
    "45°27′40″N, 4°23′12″E",
    "4°23'12\"E 45°27'40\"N",
    "N 45°27'40\" E 4°23'12\"",
    "45° 27' 40\" N 4° 23' 12\" E",
])
def test_degrees_minutes_seconds(text):
    c = parse_coordinates(text)
    assert c is not None, text
    assert c.lat == pytest.approx(45 + 27 / 60 + 40 / 3600)
    assert c.lon == pytest.approx(4 + 23 / 60 + 12 / 3600)
    # a second of arc is ± 15 m in latitude: the half-diagonal of the cell ≈ 19 m
    assert 15 < c.incertitude_m < 25


@pytest.mark.parametrize("text", [
    f"{LAT} N, {LON} E", f"{LAT}N {LON}E", f"N {LAT} E {LON}", f"{LON} E {LAT} N",
    f"geo:{LAT},{LON}", f"lat={LAT}, lon={LON}", f"lat={LAT}&lon={LON}".replace("&", " "),
    f"latitude : {LAT} ; longitude : {LON}", f"lng={LON}, lat={LAT}",
    f"Latitude {str(LAT).replace('.', ',')} Longitude {str(LON).replace('.', ',')}",
    f"https://www.openstreetmap.org/#map=19/{LAT}/{LON}",
    f"https://www.openstreetmap.org/?mlat={LAT}&mlon={LON}#map=15/45.4000/4.3000",
    f"openstreetmap.org/?mlat={LAT}&mlon={LON}",
    f"https://www.google.com/maps/@{LAT},{LON},17z",
    f"https://www.google.com/maps/place/Rue+X,+42000+Saint-%C3%89tienne/@45.4601,4.3801,17z/"
    f"data=!3m1!4b1!4m6!3m5!1s0x47f5ac:0x4f!8m2!3d{LAT}!4d{LON}!16s",
    f"https://maps.google.com/?q={LAT},{LON}",
    f"https://www.google.com/maps/search/?api=1&query={LAT}%2C{LON}",
])
def test_links_labels_and_hemispheres(text):
    c = parse_coordinates(text)
    assert c is not None, text
    assert (c.lat, c.lon) == (pytest.approx(LAT), pytest.approx(LON)), text


def test_west_and_south_and_what_stays_an_address():
    c = parse_coordinates("16.2411 N, 61.5331 O")  # « O » : ouest
    assert (c.lat, c.lon) == (16.2411, -61.5331)
    c = parse_coordinates("20°52'48\"S 55°27'00\"E")
    assert c.lat == pytest.approx(-20.88) and c.lon == pytest.approx(55.45)
    for text in ("12 15", "3 rue X", "12 15 E", "14 Rue du 8 Mai 1945 42800 Rive-de-Gier",
                 "Bâtiment E 12", "https://www.google.com/maps", "geo:abc"):
        assert parse_coordinates(text) is None, text


def test_geo_uri_uncertainty_is_kept():
    c = parse_coordinates(f"geo:{LAT},{LON};u=35")
    assert c.incertitude_m == 35


def test_figures_say_their_precision():
    two = parse_coordinates("45.41, 4.39")
    assert 650 < two.incertitude_m < 700  # ± 556 m in latitude, ± 391 m in longitude
    assert parse_coordinates("45.4100, 4.3900").incertitude_m < 10  # the zeros are written
    assert parse_coordinates(f"{LAT}, {LON}").incertitude_m < 1
    g = coordinates_result("45.41, 4.39")
    assert g.incertitude_m == two.incertitude_m and "45.41" in g.label and "45.410000" \
        not in g.label


def _check(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["check", *args, "--json", "--geocoder", "demo"])
    return res.exit_code, json.loads(res.output)


def test_two_decimals_near_a_qpv_are_not_a_firm_hors_qpv(engine):
    # the point 45.41, 4.39 itself is 145 m from QN04224N « Solaure »: its figures say ± 680 m
    exact = engine.judge_point(lon=4.39, lat=45.41, precision_point_m=10.0)
    assert exact.code_qp_proche == "QN04224N" and exact.distance_qp_proche_m < 200
    for args in (["45.41, 4.39"], ["--lat", "45.41", "--lon", "4.39"], ["45,41 4,39"],
                 ["lat=45.41 lon=4.39"], ["geo:45.41,4.39"]):
        _code, v = _check(*args)
        assert v["status"] == "a_verifier", (args, v)
        assert v["marge_m"] > 550 and "arrondi des coordonnées" in v["marge_motif"], v
    # the same place written with five decimals is judged as before
    for args in (["45.41000, 4.39000"], ["45.41001, 4.39001"],
                 ["--lat", "45.41001", "--lon", "4.39001"]):
        _code, v = _check(*args)
        assert v["status"] == "hors_qpv" and v["marge_m"] == 11, (args, v)


def test_engine_counts_decimals_of_numbers(engine):
    v = engine.judge_point(lon=4.39, lat=45.41)
    assert v.status == "a_verifier" and v.marge_m > 550
    frame = engine.judge_lonlat([4.39, 4.39001], [45.41, 45.41001])
    assert list(frame["status"]) == ["a_verifier", "hors_qpv"]
    # a stated precision does not make figures finer than they are
    assert engine.judge_point(lon=4.39, lat=45.41, precision_point_m=2.0).status == "a_verifier"


def test_api_and_batch_columns_carry_the_decimals(tmp_path):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient
    from qpv_geo.batch import validate_file
    from qpv_geo.web import create_app

    settings = Settings.from_env(geocoder="demo", timeout_s=2)
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/v1/verdict", params={"lat": 45.41, "lon": 4.39})
        assert r.status_code == 200 and r.json()["status"] == "a_verifier", r.json()
        r = c.get("/api/v1/verdict", params={"adresse": "45.41 N, 4.39 E"})
        assert r.status_code == 200 and r.json()["status"] == "a_verifier", r.json()
        r = c.post("/api/v1/verdicts", json={"lieux": [{"lat": 45.41, "lon": 4.39},
                                                       {"lat": 45.41001, "lon": 4.39001}]})
        assert [v["status"] for v in r.json()["resultats"]] == ["a_verifier", "hors_qpv"]
        long_link = ("https://www.google.com/maps/place/" + "x" * 200
                     + "/data=!3d45.41001!4d4.39001")
        r = c.get("/api/v1/verdict", params={"adresse": long_link})
        assert r.status_code == 200 and r.json()["status"] == "hors_qpv", r.json()
    src = tmp_path / "sites.csv"
    src.write_text("nom;latitude;longitude;adresse\n"
                   "A;45,41;4,39;\n"
                   "B;45,41000;4,39000;\n"
                   "C;45.41001;4.39001;\n"
                   "D;;;45.41, 4.39\n"
                   "E;;;https://www.openstreetmap.org/?mlat=45.41&mlon=4.39\n",
                   encoding="utf-8")
    out = validate_file(src, tmp_path / "out.csv", settings=settings, progress=False).frame
    assert list(out["status"]) == ["a_verifier", "hors_qpv", "hors_qpv", "a_verifier",
                                   "a_verifier"], out[["status", "marge_motif"]]
    assert np.all(out["marge_m"].iloc[[0, 3, 4]] > 550)
