"""Write docs/img/verdict.png: the instructors' verdict page as Chromium shows it, for a point
a few metres from the edge of a Saint-Étienne QPV (« à vérifier », what to do next, the two
maps with the OpenStreetMap streets offline) — the README's picture, made from the real page
served by the real application, never drawn by hand.

Run by ``make img-verdict`` (and checked by tests/test_web_browser.py). Needs Chromium
(Debian's package) and Playwright's Python package, like the browser tests.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def near_edge_point() -> tuple[float, float]:
    """(lat, lon) 3 m outside the edge of a Saint-Étienne QPV, next to a named street."""
    from qpv_geo.eligibility.factory import engine_from_settings
    from qpv_geo.reporting.next_steps import edge_near

    engine = engine_from_settings()
    ref = engine.reference
    g = ref.qpv[ref.qpv.insee_com == "42218"].to_crs(2154)
    for code, poly in zip(g.code_qp, g.geometry, strict=True):
        for t in (0.1, 0.4, 0.7):
            p = poly.boundary.interpolate(t, normalized=True)
            v = engine.judge_point(x=p.x + 3, y=p.y + 3)
            if v.status == "a_verifier" and edge_near(ref, code, v.lon, v.lat)["rue"]:
                return float(v.lat), float(v.lon)
    raise RuntimeError("aucun point près d'un bord le long d'une rue nommée")


def write_png(out: Path, *, width: int = 1100, browser: Any = None) -> Path:
    """Serve the application on loopback, open the verdict page, screenshot the verdict
    (in ``browser``, a Playwright browser, or in a Chromium launched here)."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from qpv_geo.settings import Settings
    from qpv_geo.web import create_app

    lat, lon = near_edge_point()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings.from_env()),
                                           log_level="warning", lifespan="on"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # websockets' legacy API, unused
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("le serveur web n'a pas démarré")
            time.sleep(0.05)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{port}/?lat={lat:.7f}&lon={lon:.7f}"
        if browser is not None:
            _shoot(browser, url, out, width)
        else:
            with sync_playwright() as pw:
                own = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
                _shoot(own, url, out, width)
                own.close()
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    return out


def _shoot(browser: Any, url: str, out: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 1400})
    try:
        page.goto(url)
        page.wait_for_selector('#carte[data-pret="1"]', timeout=20_000)
        page.wait_for_selector("#carte .qpvgeo-rue", timeout=10_000)
        page.wait_for_timeout(300)
        page.locator("#verdict").screenshot(path=str(out))
    finally:
        page.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "verdict.png"
    path = write_png(target)
    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
