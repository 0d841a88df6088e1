"""bench-maps: does a 10,000-site map stay usable?

Builds synthetic validated sites around the shipped QPV of SEM (judged by the engine), writes
self-contained offline maps (no tiles) and opens them in headless Chromium (Debian's
/usr/bin/chromium through Playwright). For each variant it measures the HTML size, the Python
build time, the time to first render (navigation → markers or clusters drawn) and the time of
one zoom step, then prints ratios against the baselines measured in the same run:

* 1,000 sites, clustered (the same code at a tenth of the load);
* 10,000 sites without clustering (every marker in the DOM);
* 10,000 sites, clustered, without the OpenStreetMap street layer (what the streets cost).

Not a test: run ``make bench-maps`` (or ``.venv/bin/python benchmarks/bench_maps.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from qpv_geo.batch.priorities import PRIORITES
from qpv_geo.eligibility.engine import Engine
from qpv_geo.reference.layers import load_reference
from qpv_geo.reporting import maps
from qpv_geo.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking"]


def synthetic_sites(reference, n: int, seed: int = 42) -> pd.DataFrame:
    """n sites: 60 % scattered around the QPV (≤ 600 m), 40 % anywhere in SEM's extent."""
    rng = np.random.default_rng(seed)
    qpv = reference.qpv.to_crs(2154)
    cent = np.column_stack([qpv.centroid.x, qpv.centroid.y])
    near = int(n * 0.6)
    pick = rng.integers(0, len(cent), near)
    xy_near = cent[pick] + rng.normal(0, 450, (near, 2))
    minx, miny, maxx, maxy = reference.communes.to_crs(2154).total_bounds
    xy_far = np.column_stack([rng.uniform(minx, maxx, n - near),
                              rng.uniform(miny, maxy, n - near)])
    xy = np.vstack([xy_near, xy_far])
    lon, lat = Engine.l93_to_lonlat(xy[:, 0], xy[:, 1])
    verdicts = Engine(reference).judge_lonlat(lon, lat)
    keys = list(PRIORITES)
    frame = pd.DataFrame({
        "ligne": np.arange(2, n + 2),
        "porteur": [f"Association {i % 400}" for i in range(n)],
        "action": [f"Action {i % 900}" for i in range(n)],
        "priorite": [keys[i] for i in rng.integers(0, len(keys), n)],
        "adresse": [f"{i} rue de l'Exemple 42000 Saint-Étienne" for i in range(n)],
    })
    for col in ("lon", "lat", "status", "code_qp", "lib_qp", "code_qp_proche", "lib_qp_proche",
                "distance_qp_proche_m", "motifs", "donnees"):
        frame[col] = list(verdicts[col])
    frame["motifs"] = [" ; ".join(m) if isinstance(m, list) else m for m in frame["motifs"]]
    return frame


def measure(browser, path: Path, repeat: int) -> dict[str, float]:
    renders, zooms = [], []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=180_000)
        page.wait_for_function(
            "document.querySelectorAll('.leaflet-marker-pane > *').length > 0",
            timeout=180_000)
        # Two animation frames: the markers are painted, not only in the DOM.
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                      "requestAnimationFrame(r)))")
        renders.append(time.perf_counter() - t0)
        zooms.append(page.evaluate("""() => new Promise(resolve => {
            const map = window[Object.keys(window).find(k => k.startsWith('map_'))];
            const t = performance.now();
            map.once('zoomend', () => requestAnimationFrame(() =>
                requestAnimationFrame(() => resolve((performance.now() - t) / 1000))));
            map.setZoom(map.getZoom() + 1, {animate: false});
        })"""))
        if errors:
            raise RuntimeError(f"{path.name}: {errors}")
        context.close()
    return {"render_s": statistics.median(renders), "zoom_s": statistics.median(zooms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print("Chromium manquant : apt-get install chromium (make system-deps).")
        return 1
    from playwright.sync_api import sync_playwright

    reference = load_reference(Settings.from_env())
    big = synthetic_sites(reference, args.n)
    small = big.iloc[: args.n // 10]
    variants = [
        (f"{len(small):,} sites, regroupés (référence)", small, maps.SEUIL_CLUSTER, True),
        (f"{len(big):,} sites, sans regroupement (référence)", big, 10**9, True),
        (f"{len(big):,} sites, regroupés, sans les rues", big, maps.SEUIL_CLUSTER, False),
        (f"{len(big):,} sites, regroupés (défaut)", big, maps.SEUIL_CLUSTER, True),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for i, (label, frame, seuil, rues) in enumerate(variants):
            t0 = time.perf_counter()
            m = maps.map_from_sites(frame, reference, tiles=None, seuil_cluster=seuil, rues=rues)
            path = maps.save_map(m, Path(tmp) / f"carte_{i}.html")
            build = time.perf_counter() - t0
            # The unclustered baseline takes about a minute per load: measured once.
            r = measure(browser, path, 1 if seuil > len(frame) else args.repeat)
            r.update(label=label, build_s=build, size_mb=path.stat().st_size / 1e6)
            results.append(r)
            print(f"{label:45s} HTML {r['size_mb']:6.2f} Mo · construction {build:5.2f} s · "
                  f"premier rendu {r['render_s']:6.2f} s · zoom {r['zoom_s']:6.3f} s",
                  flush=True)
        browser.close()
    base_small, base_flat, no_streets, target = results
    print(f"Charge moyenne : {os.getloadavg()[0]:.1f} ({os.cpu_count()} cœurs) ; "
          "rendus : médianes.")
    print()
    print(f"10× plus de sites (regroupés) : HTML ×{target['size_mb'] / base_small['size_mb']:.1f},"
          f" premier rendu ×{target['render_s'] / base_small['render_s']:.1f},"
          f" zoom ×{target['zoom_s'] / base_small['zoom_s']:.1f}")
    print(f"Regroupement vs marqueurs seuls ({args.n:,} sites) : premier rendu "
          f"×{target['render_s'] / base_flat['render_s']:.2f}, zoom "
          f"×{target['zoom_s'] / base_flat['zoom_s']:.2f} (HTML identique à "
          f"{abs(target['size_mb'] - base_flat['size_mb']) * 1000:.0f} ko près)")
    print(f"Rues OpenStreetMap (à ≤ 300 m des QPV) : HTML +"
          f"{(target['size_mb'] - no_streets['size_mb']) * 1000:.0f} ko "
          f"(×{target['size_mb'] / no_streets['size_mb']:.2f}), premier rendu "
          f"×{target['render_s'] / no_streets['render_s']:.2f}, zoom "
          f"×{target['zoom_s'] / no_streets['zoom_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
