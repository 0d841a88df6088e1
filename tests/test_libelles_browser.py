"""In headless Chromium: the page of another territory, its map's tooltips in its words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("uvicorn")

from tests._serveur import served

pytestmark = pytest.mark.browser

LYON = "200046977"  # Métropole de Lyon


@pytest.fixture(scope="module")
def lyon_url(tmp_path_factory) -> Iterator[str]:
    """uvicorn serving create_app() for the Métropole de Lyon on a free loopback port."""
    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app

    app = create_app(Settings.from_env(territoire=LYON, dossier_serveur=str(
        tmp_path_factory.mktemp("serveur-lyon"))))
    with served(app) as url:
        yield url


def test_lyon_page_map_tooltip_names_the_territory(page, lyon_url, artifacts) -> None:
    import geopandas as gpd
    import shapely

    from qpv_geo.reference.territories import qpv_france

    gdf, _ = qpv_france()
    qpv = gdf[gdf["siren_epci"] == LYON].iloc[0]
    metric = gpd.GeoSeries([qpv.geometry], crs=4326).to_crs(2154).iloc[0]
    inner = shapely.point_on_surface(metric.buffer(-60))
    lon, lat = gpd.GeoSeries([inner], crs=2154).to_crs(4326).iloc[0].coords[0]
    page.goto(f"{lyon_url}/?lat={lat:.6f}&lon={lon:.6f}")
    assert page.locator("h1").inner_text() == ("Ce lieu est-il dans un quartier prioritaire "
                                               "(QPV) de la Métropole de Lyon ?")
    assert page.locator("#verdict .libelle").inner_text() == (
        "Éligible — dans un QPV de la Métropole de Lyon")
    page.wait_for_selector('#carte[data-pret="1"]', timeout=15_000)
    carte = page.locator("#carte")
    carte.scroll_into_view_if_needed()
    box = carte.bounding_box()
    assert box is not None
    # 60 m inside the QPV at zoom 17: 25 px off the point (not on its marker) is still in it
    for dx in (25, 27, 29):
        carte.hover(position={"x": box["width"] / 2 + dx, "y": box["height"] / 2 + 2})
    tip = page.locator("#carte .leaflet-tooltip", has_text="QPV").first
    tip.wait_for(timeout=5_000)
    assert tip.inner_text() == f"QPV de la Métropole de Lyon {qpv['code_qp']} — {qpv['lib_qp']}"
    legend = page.locator("#verdict .legende").inner_text()
    assert "QPV de la Métropole de Lyon" in legend and "SEM" not in legend
    # no commune outline shipped, no street here: said, not drawn as if it were there
    assert "contours des communes non installés pour ce territoire" in legend
    assert "rues (fond hors ligne" not in legend and "sig.ville.gouv.fr" in legend
    assert page.locator("#carte .leaflet-control-scale-line").count() == 1
    page.screenshot(path=str(artifacts / "web-verdict-lyon.png"), full_page=True)
    assert page.console_errors == []
