"""The qpv-geo command line: verdicts, exit codes, data commands, help texts."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app

from .conftest import DATA

runner = CliRunner()




def test_check_lat_lon_json(montreynaud) -> None:
    lon, lat = montreynaud["lon"], montreynaud["lat"]
    res = runner.invoke(app, ["check", "--lat", str(lat), "--lon", str(lon), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "eligible" and out["code_qp"] == "QN04213M"
    assert out["lib_qp"] == "Montreynaud" and out["insee_com"] == "42218"
    assert out["distance_bord_m"] > 25
    assert "extrait exact ANCT" in out["donnees"]
    assert any("géométrie exacte extraite du fichier ANCT" in n for n in out["notes"])
    assert not any("copie simplifiée" in n or "officiel vérifié" in n for n in out["notes"])


def test_check_lambert_text(montreynaud) -> None:
    x, y = montreynaud["x"], montreynaud["y"]
    res = runner.invoke(app, ["check", "--x", str(x), "--y", str(y)])
    assert res.exit_code == 0, res.output
    assert "Éligible" in res.stdout and "QN04213M" in res.stdout
    assert "géométrie exacte" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--lat", "4.39", "--lon", "45.44"], "inversées"),
    (["--lat", "200", "--lon", "4.4"], "impossibles"),
    (["--lat", "6480000", "--lon", "808000"], "Lambert-93"),
    (["--x", "4.4", "--y", "45.4"], "degrés"),
    (["--lat", "45.4"], "ensemble"),
    ([], "Rien à vérifier"),
])
def test_check_unusable_input_exits_2_with_a_reason(args: list[str], message: str) -> None:
    res = runner.invoke(app, ["check", *args])
    assert res.exit_code == 2
    assert message in res.stderr
    assert "Traceback" not in res.output


def test_check_outside_sem() -> None:
    res = runner.invoke(app, ["check", "--lat", "45.764", "--lon", "4.8357", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["status"] == "hors_territoire"


def test_data_info_and_export(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "info", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["simplifiee"] is False
    assert info["couches"]["qpv"]["features"] == 20
    res = runner.invoke(app, ["data", "info"])
    assert res.exit_code == 0 and "géométrie exacte" in res.stdout
    out = tmp_path / "qpv.gpkg"
    res = runner.invoke(app, ["data", "export", "--layer", "qpv", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(gpd.read_file(out)) == 20


def test_data_import_reset_and_bad_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "import", str(DATA / "demo" / "qva_demo.geojson"),
                              "--layer", "qva"])
    assert res.exit_code == 0, res.output
    assert "démonstration" in res.stdout
    res = runner.invoke(app, ["data", "info", "--json"])
    assert json.loads(res.stdout)["demo"] is True
    res = runner.invoke(app, ["data", "reset", "--layer", "qva"])
    assert res.exit_code == 0
    res = runner.invoke(app, ["data", "import", str(tmp_path / "nope.gpkg"), "--layer", "qva"])
    assert res.exit_code == 2 and "introuvable" in res.stderr


def _commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group)
    for name, cmd in click_group.commands.items():
        if hasattr(cmd, "commands"):
            for sub in cmd.commands:
                yield (*prefix, name, sub)
        else:
            yield (*prefix, name)


def test_every_command_has_help_and_an_example() -> None:
    for path in _commands(app):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, path
        assert "xemple" in res.stdout, f"{' '.join(path)}: --help has no example"


def test_import_qpv_geo_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, qpv_geo; heavy = {'folium', 'fastapi', 'geopandas', 'matplotlib'} "
            "& set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_writes_every_output(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in ("sites_valides.csv", "sites_valides.xlsx", "carte.html", "rapport.html",
                 "sites_valides-synthese.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "sites_valides-synthese.json").read_text(encoding="utf-8"))
    assert summary["lignes_lues"] == summary["total"] == sum(summary["par_statut"].values())
    assert summary["par_statut"]["eligible"] > 0 and summary["par_statut"]["a_verifier"] > 0
    assert "géométrie exacte" in res.stdout and "DÉMONSTRATION" in res.stdout
    reached = int(res.stdout.split("site éligible : ")[1].split(" /")[0])
    assert 0 < reached <= 20


def test_check_states_its_margin_and_takes_a_point_precision(montreynaud) -> None:
    lat, lon = str(montreynaud["lat"]), str(montreynaud["lon"])
    out = json.loads(runner.invoke(app, ["check", "--lat", lat, "--lon", lon, "--json"]).stdout)
    assert out["marge_m"] == 11 and out["marge_motif"].startswith("marge 11 m = périmètre 1 m")
    res = runner.invoke(app, ["check", "--lat", lat, "--lon", lon, "--precision-point", "2",
                              "--json"])
    assert json.loads(res.stdout)["marge_motif"] == ("marge 3 m = périmètre 1 m + position "
                                                     "déclarée 2 m")
    res = runner.invoke(app, ["check", "--lat", lat, "--lon", lon, "--marge", "40"])
    assert res.exit_code == 0 and "marge 40 m imposée" in res.stdout
    res = runner.invoke(app, ["check", "--lat", lat, "--lon", lon, "--precision-point", "-1"])
    assert res.exit_code == 2 and "précision du point" in res.stderr
