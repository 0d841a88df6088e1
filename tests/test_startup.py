"""Start-up stays light: importing the package or the CLI loads none of the heavy optional
modules (maps, web, spreadsheets, fuzzy matching, HTTP, the register, the batch package);
each command imports what it uses when it runs (issue 13, item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Modules a command imports when it needs them, never at import time.
HEAVY = ("folium", "branca", "jinja2", "matplotlib", "fastapi", "starlette", "uvicorn",
         "openpyxl", "xlsxwriter", "rapidfuzz", "requests", "httpx", "weasyprint", "sqlite3",
         "pandas", "geopandas", "shapely", "pyproj", "pyogrio",
         "qpv_geo.register", "qpv_geo.batch", "qpv_geo.geocoding", "qpv_geo.reporting.maps",
         "qpv_geo.reporting.report", "qpv_geo.web", "qpv_geo.eligibility.engine",
         "qpv_geo.reference.layers")


def _loaded_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\nimport json\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", ["import qpv_geo", "import qpv_geo.cli",
                                       "from qpv_geo.cli import app"])
def test_import_loads_no_heavy_module(statement: str) -> None:
    assert _loaded_after(statement) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check can fail: importing the engine does load pandas and pyproj."""
    loaded = _loaded_after("import qpv_geo.eligibility.engine")
    assert {"pandas", "pyproj", "qpv_geo.eligibility.engine"} <= set(loaded)


def test_check_does_not_import_web_maps_or_spreadsheets() -> None:
    """``qpv-geo check --lat --lon`` loads the engine only: no web framework, maps,
    spreadsheets, register or batch package."""
    statement = ("import sys\nfrom qpv_geo.cli import app\n"
                 "sys.argv = ['qpv-geo', 'check', '--lat', '45.4561', '--lon', '4.4067']\n"
                 "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n")
    loaded = set(_loaded_after(statement))
    assert "qpv_geo.eligibility.engine" in loaded
    # rapidfuzz (a core dependency, 16 ms) comes with the geocoding rules the verdict table
    # uses, imported at the top of their module like every internal import.
    unused = {"folium", "branca", "jinja2", "matplotlib", "fastapi", "starlette", "uvicorn",
              "openpyxl", "xlsxwriter", "requests", "httpx", "weasyprint",
              "qpv_geo.register", "qpv_geo.batch", "qpv_geo.reporting.maps",
              "qpv_geo.reporting.report"}
    assert loaded & unused == set()
