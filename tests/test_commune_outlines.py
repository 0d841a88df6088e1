"""Commune outlines of a territory other than SEM (``data update --communes``), installed from a
local fake of geo.api.gouv.fr (tests/fake_geo_api.py), and drawn under the QPV of its maps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import shapely
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.exceptions import DownloadError
from qpv_geo.reference import commune_outlines as co
from qpv_geo.reference.communes import communes_france
from qpv_geo.reference.territories import qpv_france, reference_territoire, resolve_territoire
from qpv_geo.settings import Settings
from tests.fake_geo_api import FakeGeoApi, cells_around

LYON = "200046977"
runner = CliRunner()


def _lyon_departement() -> dict[str, list]:
    """Département 69 as the fake serves it: a cell per commune of the Métropole de Lyon that
    holds a QPV (around its QPV), plus one commune of the Rhône outside it (Villefranche)."""
    terr = resolve_territoire(LYON)
    gdf, _ = qpv_france()
    mine = gdf[gdf["siren_epci"] == LYON]
    names = communes_france().by_insee
    points = {}
    for codes, geom in zip(mine["insee_com"], mine.geometry, strict=True):
        code = str(codes).split(",")[0].strip()
        if code in terr.communes and code not in points:
            points[code] = (names[code].nom, shapely.point_on_surface(geom))
    points["69264"] = ("Villefranche-sur-Saône", shapely.Point(4.72, 45.99))
    hull = shapely.buffer(shapely.convex_hull(shapely.MultiPoint(
        [p for _, p in points.values()])), 0.02)
    return {"69": cells_around(points, hull)}


@pytest.fixture(scope="module")
def fake():
    server = FakeGeoApi(communes=_lyon_departement()).start()
    yield server
    server.stop()


@pytest.fixture()
def settings(tmp_path: Path, fake) -> Settings:
    fake.requests.clear()
    fake.fail_next.clear()
    fake.slow_next.clear()
    fake.half_next = 0
    return Settings.from_env().with_(data_dir=tmp_path / "data", timeout_s=1.0)


def test_install_lyon_speaks_the_protocol_and_records_provenance(fake, settings) -> None:
    terr = resolve_territoire(LYON)
    info = co.install_outlines(terr, settings, base_url=fake.url)
    # one request per département of the territory, asking GeoJSON outlines with code and name
    assert fake.requests == ["/departements/69/communes?format=geojson&geometry=contour"
                             "&fields=code,nom"]
    served = {c for c, _, _ in fake.communes["69"]}
    gdf, _ = co.outlines_of(terr, settings)
    assert set(gdf["insee_com"]) == served - {"69264"}  # Villefranche is not Lyon's
    assert info.features == len(gdf) and info.simplified and not info.official
    manifest = json.loads((info.path.parent / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["layers"]["communes_contours"]
    from qpv_geo._files import sha256_file

    assert entry["sha256"] == sha256_file(info.path)
    assert entry["licence"].startswith("Licence Ouverte")
    assert "simplifiés" in entry["precision"] and "jamais lus pour un verdict" in entry["precision"]
    assert fake.url in entry["source"] and "ADMIN EXPRESS" in entry["source"]
    (dl,) = entry["telechargements"]
    assert dl["territoire"] == LYON and dl["urls"] == [fake.url + fake.requests[0]]
    assert dl["communes"] == len(gdf) and len(dl["sha256_reponses"]) == 64


def test_the_territory_reference_draws_them_but_never_judges_with_them(fake, settings) -> None:
    from qpv_geo.eligibility.engine import Engine

    terr = resolve_territoire(LYON)
    before = reference_territoire(terr, settings)
    assert before.background_communes is None and "communes_contours" not in before.layers
    assert any("contours des communes non installés" in n for n in before.notes)
    co.install_outlines(terr, settings, base_url=fake.url)
    after = reference_territoire(terr, settings)
    assert len(after.background_communes) == len(fake.communes["69"]) - 1
    assert after.layers["communes_contours"].origin == "installée"
    assert any("fond des cartes seulement (simplifiés, geo.api.gouv.fr)" in n
               for n in after.notes)
    assert len(after.communes) == 0 and not Engine(after).contours  # verdicts unchanged
    assert after.version == before.version


@pytest.mark.parametrize(("setup", "words"), [
    (lambda f: f.fail_next.append(503), "erreur 503"),
    (lambda f: f.slow_next.append(3.0), "délai"),
    (lambda f: setattr(f, "half_next", 1), "illisible"),
])
def test_a_failed_download_says_why_and_changes_nothing(fake, settings, setup, words) -> None:
    terr = resolve_territoire(LYON)
    first = co.install_outlines(terr, settings, base_url=fake.url)
    setup(fake)
    with pytest.raises(DownloadError, match=words):
        co.install_outlines(terr, settings, base_url=fake.url)
    kept = co.outlines_info(settings)
    assert kept is not None and kept.sha256 == first.sha256 and kept.path == first.path


def test_unknown_departement_and_wrong_answers(fake, settings) -> None:
    gers = resolve_territoire("32013")  # Auch: département 32, unknown to this fake
    with pytest.raises(DownloadError, match="404"):
        co.install_outlines(gers, settings, base_url=fake.url)
    assert co.outlines_info(settings) is None
    # a service that answers a plain JSON array (format=json) is not taken for outlines
    with pytest.raises(DownloadError, match="FeatureCollection"):
        co._features([{"code": "69123"}], "u")


def test_a_second_territory_keeps_the_first(fake, settings) -> None:
    co.install_outlines(resolve_territoire(LYON), settings, base_url=fake.url)
    villefranche = resolve_territoire("69264")
    info = co.install_outlines(villefranche, settings, base_url=fake.url)
    assert info.features == len(fake.communes["69"])
    gdf, _ = co.outlines_of(villefranche, settings)
    assert list(gdf["insee_com"]) == ["69264"]
    assert co.outlines_of(resolve_territoire(LYON), settings)[0].shape[0] == info.features - 1


def test_cli_installs_and_sem_is_refused(fake, settings, monkeypatch) -> None:
    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(settings.data_dir))
    res = runner.invoke(app, ["data", "update", "--communes", "--territoire", LYON,
                              "--url", fake.url])
    assert res.exit_code == 0, res.output
    assert "Contours des communes installés pour" in res.output
    assert "jamais à un verdict" in res.output
    res = runner.invoke(app, ["data", "info", "--territoire", LYON])
    assert "communes_contours" in res.output and "simplifiés" in res.output
    res = runner.invoke(app, ["data", "update", "--communes", "--territoire", "244200770",
                              "--url", fake.url])
    assert res.exit_code != 0 and "déjà ses contours" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["data", "reset", "--layer", "communes_contours"])
    assert res.exit_code == 0 and "n'ont plus de fond" in res.output
    assert co.outlines_info(settings) is None


def test_cli_map_says_the_install_command_the_page_does_not(settings, monkeypatch,
                                                              tmp_path) -> None:
    """The map's legend says who can install the outlines; the command line that wrote it
    says how (a command never shows on a page)."""
    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(settings.data_dir))
    sites = tmp_path / "sites.csv"
    sites.write_text("Porteur;Latitude;Longitude\nA;45,76;4,84\n", encoding="utf-8")
    out = tmp_path / "carte.html"
    res = runner.invoke(app, ["map", str(sites), "-o", str(out), "--tiles", "none",
                              "--territoire", LYON])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"pour les dessiner : qpv-geo data update --communes --territoire {LYON}" in said
    page = _plain(out.read_text(encoding="utf-8"))
    assert "peut les installer" in page and "qpv-geo data" not in page


def _plain(page: str) -> str:
    """The page with the JSON escapes of its legend (``\\u00e9``, ``\\u003c``) read back."""
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), page)


def test_lyon_maps_draw_the_outlines_or_say_how_to_install_them(fake, settings) -> None:
    import pandas as pd

    from qpv_geo.reporting.maps import map_from_sites, map_html, outlines_to_install

    terr = resolve_territoire(LYON)
    sites = pd.DataFrame({"latitude": [45.76], "longitude": [4.84], "statut": ["eligible"],
                          "priorite": ["emploi"]})
    before = _plain(map_html(map_from_sites(sites, reference_territoire(terr, settings))))
    assert ("contours des communes non installés pour ce territoire (seuls les QPV sont "
            "dessinés) ; la personne qui gère les données de qpv-geo peut les installer") \
        in before
    assert "qpv-geo data" not in before and "--territoire" not in before  # no command line
    assert outlines_to_install(reference_territoire(terr, settings)) == \
        f"qpv-geo data update --communes --territoire {LYON}"
    assert "Communes (contours simplifiés, geo.api.gouv.fr)" not in before
    co.install_outlines(terr, settings, base_url=fake.url)
    ref = reference_territoire(terr, settings)
    after = _plain(map_html(map_from_sites(sites, ref)))
    assert "Communes (contours simplifiés, geo.api.gouv.fr)" in after
    assert "peut les installer" not in after and outlines_to_install(ref) is None
    name = ref.background_communes["nom"].iloc[0]
    assert name in after  # each outline named in its tooltip


def test_static_png_draws_the_outlines(fake, settings) -> None:
    import pandas as pd

    from qpv_geo.reporting.figures import static_sites_png

    terr = resolve_territoire(LYON)
    sites = pd.DataFrame({"lat": [45.76], "lon": [4.84], "statut": ["eligible"],
                          "priorite": ["emploi"]})
    before = static_sites_png(sites, reference_territoire(terr, settings))
    co.install_outlines(terr, settings, base_url=fake.url)
    after = static_sites_png(sites, reference_territoire(terr, settings))
    assert before != after


def test_web_serves_them_and_the_donnees_page_tells_their_provenance(fake, settings) -> None:
    import warnings

    with warnings.catch_warnings():  # Starlette's announced switch to httpx2 (see test_web)
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient

    from qpv_geo.web import create_app

    co.install_outlines(resolve_territoire(LYON), settings, base_url=fake.url)
    with TestClient(create_app(settings.with_(territoire=LYON))) as client:
        feats = client.get("/api/v1/perimetres", params={"lat": 45.76, "lon": 4.86,
                                                         "rayon_m": 3000}).json()["features"]
        assert any(f["properties"]["type"] == "commune" for f in feats)
        page = client.get("/donnees").text
    assert "Contours des communes (fond des cartes" in page
    assert "jamais lus pour un verdict" in page and "Licence Ouverte" in page
    assert "qpv-geo data" not in page and "--" not in page.split("<main")[-1]


def test_web_detail_map_names_the_outlines_or_whom_to_ask(fake, settings, page, artifacts):
    """In Chromium: the verdict page of a Lyon point says, under its maps, that the commune
    outlines are missing and whom to ask (no command), then, installed, draws and names them."""
    from qpv_geo.web import create_app
    from tests._serveur import served

    terr = resolve_territoire(LYON)
    point = shapely.point_on_surface(reference_territoire(terr, settings).qpv.geometry.iloc[0])
    lyon = settings.with_(territoire=LYON)
    notes = []
    for install in (False, True):
        if install:
            co.install_outlines(terr, settings, base_url=fake.url)
        with served(create_app(lyon)) as base_url:
            page.goto(f"{base_url}/?lat={point.y:.6f}&lon={point.x:.6f}")
            page.wait_for_selector('#carte[data-pret="1"]', timeout=20_000)
            notes.append(page.locator("#communes-note").inner_text())
            page.screenshot(path=str(artifacts / f"verdict_lyon_contours_{install}.png"),
                            full_page=True)
    assert "contours des communes non installés" in notes[0]
    assert "demandez à l'administrateur de qpv-geo de les installer" in notes[0]
    assert "--" not in notes[0] and "qpv-geo data" not in notes[0]
    assert "communes (contours simplifiés)" in notes[1] and "non installés" not in notes[1]
    assert page.console_errors == []
