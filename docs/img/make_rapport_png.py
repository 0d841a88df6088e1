"""Write docs/img/rapport.png (and rapport-carte.png): the committee report of the sample call,
as Chromium shows it — the README's picture, made from the real output, never drawn by hand.

Run by ``make img-rapport`` (and checked by tests/test_report.py). Needs Chromium (Debian's
package) and Playwright's Python package, like the browser tests.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def write_pngs(out_dir: Path, *, width: int = 1280) -> list[Path]:
    """Validate the sample call (demonstration geocoder), write its report, screenshot it."""
    from playwright.sync_api import sync_playwright

    from qpv_geo.batch import validate_file
    from qpv_geo.reference import get_reference
    from qpv_geo.report import write_report

    reference = get_reference()
    sites = validate_file(ROOT / "data" / "exemple_appel.csv", geocoder_name="demo",
                          progress=False).frame
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        page_path = write_report(sites, Path(tmp) / "rapport.html", reference=reference,
                                 source="exemple_appel.csv")["html"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": width, "height": 1500})
            page.goto(page_path.as_uri())
            page.wait_for_selector(".qpvgeo-site")
            page.wait_for_timeout(500)
            # The top of the report: key figures and the chart per priority.
            top = out_dir / "rapport.png"
            box = page.locator("#priorites .graphique").bounding_box()
            page.screenshot(path=str(top), clip={"x": 0, "y": 0, "width": width,
                                                 "height": box["y"] + box["height"] + 4},
                            full_page=True)
            written.append(top)
            # The map of the actions, as it opens.
            carte = out_dir / "rapport-carte.png"
            page.locator("#carte-sites").screenshot(path=str(carte))
            written.append(carte)
            browser.close()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img"
    for path in write_pngs(target):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
