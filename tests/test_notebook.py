"""notebooks/rapport_copilotage.ipynb: stored executed and readable, still runs, and the checks
that used to sit in its cells (now here, on the same sample call).

The kernel is this interpreter (the venv's python with its ipykernel): a kernel spec pointing
at ``sys.executable`` is written to a temporary Jupyter path, whatever kernels are installed.
Re-execute the stored notebook with ``make notebook``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "rapport_copilotage.ipynb"
KERNEL = "qpv-geo-test"


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _texts(nb) -> str:
    parts = []
    for o in _outputs(nb):
        parts.append(o.get("text", ""))
        parts.append(o.get("data", {}).get("text/plain", ""))
        parts.append(o.get("data", {}).get("text/html", "")[:200_000])
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


@pytest.fixture(scope="module")
def stored():
    import nbformat

    return nbformat.read(NOTEBOOK, as_version=4)


def test_stored_notebook_is_executed_and_readable(stored):
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    assert all(c.get("outputs") for c in code[1:])  # every step shows its result
    outputs = _outputs(stored)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]  # no warnings shown
    # Charts and maps inline: the two coverage charts and two static maps, one live map.
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<iframe " in h and " srcdoc=" in h and "qpvgeoRues" in h for h in html)
    # The live map is self-contained: no script or stylesheet fetched from a CDN.
    live = next(h for h in html if "<iframe " in h and " srcdoc=" in h)
    assert "&lt;script src=&quot;http" not in live
    assert "stylesheet&quot; href=&quot;http" not in live
    # No test asserts left in the cells.
    assert not any(re.search(r"^\s*assert\b", c.source, re.M) for c in code)


def test_stored_notebook_speaks_french_to_its_reader(stored):
    text = _texts(stored)
    for label in ("Lever les freins au retour à l'emploi", "Mobilité", "Garde d'enfants",
                  "Éligible — dans un QPV", "avec une action dans le QPV",
                  "desservies seulement par le quartier vécu", "lacunes : aucune action",
                  "Priorités sans action"):
        assert label in text, label
    assert re.search(r"\b\d+ %", text)  # percentages, French style
    # No internal codes or raw ratios (« mobilite », « hors_radars », 0.20).
    plain = "\n".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
                      for o in _outputs(stored))
    for raw in ("mobilite", "garde_enfants", "hors_radars", "confiance_en_soi", "a_verifier",
                "non_geocode", "{'", "taux_"):
        assert raw not in plain, raw
    assert not re.search(r"(?<![\d,.])0\.\d{2}\b", plain)
    # Paths shown relative to the output folder, never this machine's.
    assert str(ROOT) not in plain and "/tmp/" not in plain


@pytest.fixture()
def kernel_name(tmp_path, monkeypatch) -> str:
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})", "language": "python",
    }), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return KERNEL


def test_notebook_still_runs_and_builds_the_report(kernel_name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    out = tmp_path / "rapport"
    monkeypatch.setenv("RAPPORT_DIR", str(out))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert errors == []
    for name in ("rapport_copilotage.html", "carte_actions.html", "carte_couverture.html"):
        assert (out / name).stat().st_size > 100_000
    assert "Rapport écrit : rapport/rapport_copilotage.html" in _texts(nb)


@pytest.fixture(scope="module")
def sample(reference):
    """The sample call as the notebook validates it (demonstration geocoder)."""
    from qpv_geo.batch import validate_file
    from qpv_geo.reporting.coverage import coverage_from_sites

    sites = validate_file(ROOT / "data" / "exemple_appel.csv", geocoder_name="demo",
                          progress=False).frame
    return sites, coverage_from_sites(sites, reference, rayon_m=300)


def test_every_eligible_site_counts_inside_its_qpv(sample):
    """Verdict (engine) and coverage agree: an eligible site is inside the QPV it names."""
    sites, cov = sample
    eligible = sites[sites["status"] == "eligible"]
    assert len(eligible) > 10
    inside = cov.liens[cov.liens["relation"] == "dans"]
    pairs = set(zip(inside["index"], inside["code_qp"], strict=True))
    missing = [i for i, code in zip(eligible.index, eligible["code_qp"], strict=True)
               if (i, code) not in pairs]
    assert missing == []
    assert int(cov.matrix["sites_dans"].sum()) == len(inside)
    cells = cov.cellules()
    assert cells["dans"] + cells["proximite"] + cells["lacunes"] == cells["total"] == 160


def test_sample_report_is_self_contained_with_its_notes(sample, reference, tmp_path):
    from qpv_geo.reporting.report import write_report

    sites, cov = sample
    page = write_report(sites, tmp_path / "r.html", reference=reference,
                        rayon_m=cov.rayon_m)["html"].read_text(encoding="utf-8")
    assert "Matrice QPV × priorité" in page
    assert not re.search(r'<script[^>]+src="https?:', page)
    import html

    for note in reference.notes:
        assert html.escape(note) in page or note in page
