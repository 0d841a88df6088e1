"""Write docs/img/rapport.png (and rapport-carte.png): the committee report of the sample call,
as Chromium shows it — the README's picture, made from the real output, never drawn by hand.

Run by ``make img-rapport`` (and checked by tests/test_report.py). Needs Chromium (Debian's
package) and Playwright's Python package, like the browser tests.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def write_pngs(out_dir: Path, *, width: int = 1280, browser: Any = None) -> list[Path]:
    """Validate the sample call (demonstration geocoder), write its report, screenshot it.

    ``browser``: a Playwright Chromium already running (the test suite's); else one is started.
    """
    from qpv_geo.batch import validate_file
    from qpv_geo.reference.layers import get_reference
    from qpv_geo.reporting.report import write_report

    reference = get_reference()
    sites = validate_file(ROOT / "data" / "exemple_appel.csv", geocoder_name="demo",
                          progress=False).frame
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = write_report(sites, Path(tmp) / "rapport.html", reference=reference,
                                 source="exemple_appel.csv")["html"]
        if browser is None:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                own = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
                written = _shoot(own, page_path, out_dir, width)
                own.close()
        else:
            written = _shoot(browser, page_path, out_dir, width)
    return written


def _shoot(browser: Any, page_path: Path, out_dir: Path, width: int) -> list[Path]:
    context = browser.new_context(viewport={"width": width, "height": 1500})
    page = context.new_page()
    page.goto(page_path.as_uri())
    page.wait_for_selector(".qpvgeo-site")
    page.wait_for_timeout(500)
    # The top of the report: key figures and the chart per priority.
    top = out_dir / "rapport.png"
    box = page.locator("#priorites .graphique").bounding_box()
    page.screenshot(path=str(top), clip={"x": 0, "y": 0, "width": width,
                                         "height": box["y"] + box["height"] + 4},
                    full_page=True)
    # The map of the actions, as it opens.
    carte = out_dir / "rapport-carte.png"
    page.locator("#carte-sites").screenshot(path=str(carte))
    context.close()
    return [top, carte]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img"
    for path in write_pngs(target):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
