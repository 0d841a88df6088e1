"""Shared fixtures: isolated data/cache dirs, the shipped engine, a headless Chromium page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
ARTIFACTS = TESTS.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never read or write the user's real data/cache directories, never use the network."""
    base = tmp_path_factory.mktemp("qpv-geo-home")
    old = {k: os.environ.get(k) for k in ("QPV_GEO_DATA_DIR", "QPV_GEO_CACHE_DIR",
                                          "QPV_GEO_GEOCODER", "QPV_GEO_BAN_URL",
                                          "QPV_GEO_ANNUAIRE_URL")}
    os.environ["QPV_GEO_DATA_DIR"] = str(base / "data")
    os.environ["QPV_GEO_CACHE_DIR"] = str(base / "cache")
    os.environ["QPV_GEO_GEOCODER"] = "demo"
    # Any accidental online call goes to a closed local port, never to the real service.
    os.environ["QPV_GEO_BAN_URL"] = "http://127.0.0.1:9/geocodage"
    os.environ["QPV_GEO_ANNUAIRE_URL"] = "http://127.0.0.1:9"
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def reference():
    """The shipped reference data (exact QPV 2024 geometry of SEM)."""
    from qpv_geo.reference.layers import load_reference
    from qpv_geo.settings import Settings

    return load_reference(Settings.from_env())


@pytest.fixture(scope="session")
def engine(reference):
    """Engine on the shipped data, default margin (25 m)."""
    from qpv_geo.eligibility.engine import Engine

    return Engine(reference)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for test artefacts (screenshots), kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's package, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium manquant : installez le paquet Debian « chromium » "
                    "(make test le fait : make system-deps).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A fresh page; console errors are collected in ``page.console_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.console_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


# ------------------------------------------------------------------ coverage/maps/report fixture
COVERAGE = DATA / "coverage"


def coverage_reference(**kw):
    """Reference on the hand-made squares of tests/data/coverage (see its make_fixtures.py)."""
    import geopandas as gpd

    from qpv_geo.reference.layers import Reference

    return Reference.from_frames(
        qpv=gpd.read_file(COVERAGE / "qpv.geojson"),
        communes=gpd.read_file(COVERAGE / "communes.geojson"),
        qva=gpd.read_file(COVERAGE / "qva.geojson"), label="tests/data/coverage", **kw)


@pytest.fixture(scope="module")
def ref():
    """The coverage fixture reference."""
    return coverage_reference()


@pytest.fixture(scope="module")
def sites():
    """The 13 validated sites of the coverage fixture (known answers)."""
    import pandas as pd

    return pd.read_csv(COVERAGE / "sites_valides.csv", sep=";")


@pytest.fixture(scope="session")
def montreynaud(reference) -> dict[str, float]:
    """A point deep inside QN04213M Montreynaud (shipped QPV 2024 perimeters): lon, lat, x, y."""
    from shapely.ops import polylabel

    from qpv_geo.eligibility.engine import Engine

    geom = reference.qpv.to_crs(2154).set_index("code_qp").geometry["QN04213M"]
    p = polylabel(geom, tolerance=1.0) if geom.geom_type == "Polygon" else geom.centroid
    lon, lat = Engine.l93_to_lonlat([p.x], [p.y])
    return {"lon": float(lon[0]), "lat": float(lat[0]), "x": p.x, "y": p.y}


@pytest.fixture(scope="session")
def inside(montreynaud) -> tuple[float, float]:
    """(lat, lon) of :func:`montreynaud`."""
    return montreynaud["lat"], montreynaud["lon"]
