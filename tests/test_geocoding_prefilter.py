"""Issue 13.3: the 3-gram candidate prefilter keeps the local geocoder's answers."""

from __future__ import annotations

import numpy as np
import pytest

import qpv_geo.geocoding.local as local_module
from qpv_geo.geocoding import LocalGeocoder, communes_sem, demo_adresses_path, read_ban_csv


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return LocalGeocoder(demo_adresses_path(), cache_dir=tmp_path_factory.mktemp("pf"),
                         demo=True)


def _queries(n: int, seed: int) -> list[tuple[str, float, float]]:
    df = read_ban_csv(demo_adresses_path(), insee=[c.insee for c in communes_sem()])
    rng = np.random.default_rng(seed)
    rows = df[df["nom_voie"] != ""].sample(n=n, random_state=seed).to_dict("records")
    out = []
    for r in rows:
        street = r["nom_voie"]
        if rng.random() < 0.5:  # a typo in the longest word
            words = street.split()
            k = int(np.argmax([len(w) for w in words]))
            w = words[k]
            if len(w) > 4:
                i = int(rng.integers(1, len(w) - 1))
                words[k] = w[:i] + w[i + 1:]
            street = " ".join(words)
        city = r["nom_commune"] if rng.random() < 0.7 else ""
        out.append((f"{r['numero']} {street} {city}".strip(), float(r["lon"]), float(r["lat"])))
    return out


def _within_30m(g: LocalGeocoder, queries) -> float:
    ok = 0
    for text, lon, lat in queries:
        r = g.geocode(text)
        if r.found:
            dx = (r.lon - lon) * 111_320 * np.cos(np.radians(lat))
            dy = (r.lat - lat) * 110_540
            ok += float(np.hypot(dx, dy)) <= 30
    return ok / len(queries)


def test_prefilter_keeps_the_accuracy(demo, monkeypatch):
    queries = _queries(400, 3)
    monkeypatch.setattr(local_module, "PREFILTER_MIN", 10**9)  # full scan
    full = _within_30m(demo, queries)
    monkeypatch.setattr(local_module, "PREFILTER_MIN", 0)  # prefilter on every scope
    fast = _within_30m(demo, queries)
    assert full > 0.8  # without a commune, a name shared by several communes is a guess
    assert fast >= full - 0.01


def test_prefilter_returns_a_subset_with_the_exact_name(demo):
    i = demo.s_key.index(next(k for k in demo.s_key if k.startswith("rue victor hugo")))
    cand = demo._prefilter(demo.s_key[i], demo._all_idx)
    assert i in cand and len(cand) <= 3 * local_module.PREFILTER_KEEP
    assert len(demo._prefilter("zzzz qqqq", demo._all_idx)) == 0
