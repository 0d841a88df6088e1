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


def test_help_never_cuts_an_option_name_in_80_columns() -> None:
    """« --col-precision-point » was shown as « --col-precision-poi… » by ``batch --help``."""
    import re

    import typer

    root = typer.main.get_command(app)
    for path in _commands(app):
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert res.exit_code == 0, path
        assert max(len(line) for line in res.stdout.splitlines()) <= 80, path
        command = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("--"):
                    assert re.search(rf"{re.escape(opt)}(?![\w-])(?!…)", res.stdout), (path, opt)
        cut = [line for line in res.stdout.splitlines()
               if re.search(r"[\w.)/-]…\s*│?\s*$", line) and "qpv-geo" not in line]
        assert not cut, (path, cut)


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
    # the report's three coverage figures, not « QPV with at least one eligible site »
    import re

    out = " ".join(res.stdout.split())
    assert "au moins un site éligible" not in out
    html = (tmp_path / "rapport.html").read_text(encoding="utf-8")
    for ident, words in (("cases-dans", "avec une action dans le QPV"),
                         ("cases-vecu", "desservies seulement par le quartier vécu"),
                         ("cases-lacunes", "lacunes : aucune action")):
        figure = re.search(rf'id="{ident}"><b>(\d+ / \d+)</b>', html).group(1)
        assert f"{figure} {words}" in out, (ident, figure)
    assert "Couverture des 160 cases QPV × priorité (20 QPV × 8 priorités" in out


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
    assert res.exit_code == 2 and "--precision-point" in res.stderr and "négatif" in res.stderr


# ------------------------------------------------------------------ French everywhere
#: Strings of typer/click/uvicorn/urllib3 a French user must never see.
ENGLISH = ("Show this message", "Usage:", "Invalid value", "Missing argument", "Missing option",
           "No such option", "No such command", "Did you mean", "Possible options", "Try '",
           "for help", "<bool>", "<str>", "<float>", "<int>", "<Path>", "[default:",
           "[required]", "Error", "Commands", "requires an argument", "unexpected extra",
           "Traceback", "HTTPConnection", "Errno", "Max retries", "Warning")


def assert_french(text: str) -> None:
    for word in ENGLISH:
        assert word not in text, f"{word!r} in:\n{text}"


def test_help_of_every_command_is_in_french() -> None:
    assert_french(runner.invoke(app, ["--help"]).output)
    for path in _commands(app):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, path
        assert "Afficher cette aide" in res.stdout, path
        assert "Utilisation : " in res.stdout, path
        assert_french(res.output)


def test_no_arguments_shows_the_french_help() -> None:
    res = runner.invoke(app, [])
    assert "Commandes" in res.output and "Utilisation : " in res.output
    assert_french(res.output)


@pytest.mark.parametrize(("args", "words"), [
    (["check", "--lat", "abc", "--lon", "4.38"], ["--lat", "« abc » n'est pas un nombre"]),
    (["check", "--foo"], ["Option inconnue : --foo"]),
    (["check", "--lat"], ["--lat attend une valeur"]),
    (["check", "12", "rue"], ["Argument(s) en trop : rue", "guillemets"]),
    (["batch"], ["Argument manquant : SITES"]),
    (["batch", "x.csv"], ["Option obligatoire manquante : --output"]),
    (["chekc"], ["Commande inconnue : chekc", "check"]),
    (["serve", "--port", "0"], ["--port", "« 0 »", "entier entre 1 et 65535"]),
    (["check", "--marge", "-5", "--lat", "45.46", "--lon", "4.38"], ["--marge", "négatif"]),
    (["batch", "x.csv", "-o", "y.csv", "--marge", "-3"], ["--marge", "négatif"]),
    (["report", "x.csv", "--rayon", "-10"], ["--rayon", "strictement positive"]),
    (["map", "x.csv", "--rayon", "-5"], ["--rayon", "strictement positive"]),
    (["map", "x.csv", "--rayon", "nan"], ["--rayon", "nombre fini"]),
    (["batch", "x.csv", "-o", "y.csv", "--geocoder", "foo"], ["--geocoder", "« foo »",
                                                             "ban ou demo"]),
    (["map", "x.csv", "--tiles", "satellite"], ["--tiles", "osm"]),
    (["report", "x.csv", "--tiles", "satellite"], ["--tiles", "osm"]),
])
def test_usage_errors_are_french_and_exit_2(args: list[str], words: list[str]) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("Erreur : "), res.stderr
    for word in words:
        assert word in " ".join(res.stderr.split()), res.stderr
    assert "Aide : " in res.stderr
    assert_french(res.output)


def test_decimal_comma_is_accepted(montreynaud) -> None:
    lat, lon = (f"{montreynaud[k]:.6f}".replace(".", ",") for k in ("lat", "lon"))
    res = runner.invoke(app, ["check", "--lat", lat, "--lon", lon, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["code_qp"] == "QN04213M"


def test_one_name_per_option_and_old_spellings_hidden(tmp_path: Path) -> None:
    for cmd in ("map", "report", "batch"):
        text = runner.invoke(app, [cmd, "--help"]).stdout
        assert "--geocoder" in text and "--feuille" in text, cmd
        assert "--geocodeur" not in text and "--sheet" not in text, cmd
    for cmd in ("map", "report"):
        assert "<osm|none>" in runner.invoke(app, [cmd, "--help"]).stdout
    # The old spellings still parse (they reach the missing-file check, not a usage error).
    for args in (["map", str(tmp_path / "absent.csv"), "--geocodeur", "local"],
                 ["batch", str(tmp_path / "absent.csv"), "-o", str(tmp_path / "o.csv"),
                  "--sheet", "1"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "introuvable" in res.stderr, res.output


def test_any_qpv_geo_error_escaping_a_command_is_french(monkeypatch) -> None:
    from qpv_geo import cli
    from qpv_geo.exceptions import QpvGeoError

    def broken() -> None:
        raise QpvGeoError("Réglage invalide : marge_m = inf.", hint="Corrigez QPV_GEO_MARGE_M.")

    monkeypatch.setattr(cli, "get_settings", broken)
    res = runner.invoke(app, ["check", "--lat", "45.46", "--lon", "4.38"])
    assert res.exit_code == 2
    assert "Réglage invalide" in res.stderr and "QPV_GEO_MARGE_M" in res.stderr


def test_precision_words_are_french(engine) -> None:
    from .test_web import demo_address_in_qpv

    text, _, _ = demo_address_in_qpv(engine)
    res = runner.invoke(app, ["geocode", text])
    assert res.exit_code == 0, res.output
    assert "trouvée au numéro" in res.stdout and "housenumber" not in res.stdout
    assert "source : fichier de démonstration" in res.stdout and "local-demo" not in res.stdout
    res = runner.invoke(app, ["check", text])
    out = " ".join(w for w in res.stdout.split() if w != "│")
    assert "trouvée au numéro" in out and "housenumber" not in out
    assert "source : fichier de démonstration" in out and "local-demo" not in out
    assert "score" not in out


def test_serve_on_a_busy_port_says_so_in_french() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        res = runner.invoke(app, ["serve", "--port", str(port)])
    assert res.exit_code == 2
    assert f"Le port {port} est déjà utilisé" in res.stderr
    assert f"--port {port + 1}" in res.stderr
    assert_french(res.output)


def test_data_update_unreachable_says_why_in_french() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = runner.invoke(app, ["data", "update", "--url", f"http://127.0.0.1:{port}/qpv.zip"])
    assert res.exit_code == 2
    assert "connexion refusée par le serveur" in res.stderr
    assert_french(res.output)


def test_shapefile_export_prints_a_french_note_not_python_warnings(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "export", "--layer", "qpv", "-o", str(tmp_path / "q.shp")])
    assert res.exit_code == 0, res.output
    assert "coupés à 10 caractères" in res.stdout
    assert "UserWarning" not in res.output and "RuntimeWarning" not in res.output


def test_data_info_fits_80_columns_and_counts_what_is_used(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, ["data", "info"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = [w for line in lines for w in line.strip("│ ").split()]
    assert len(lines) < 0.6 * len(words), "one word per line"
    from qpv_geo.reference.layers import get_reference
    from qpv_geo.settings import Settings

    ref = get_reference(Settings.from_env())
    counts = [line.split("Objets")[1].split()[0] for line in lines if "│ Objets" in line]
    names = [line.split("─ ")[1].split()[0] for line in lines if line.startswith("╭─ ")]
    shown = dict(zip(names, counts, strict=True))
    for layer in ("qpv", "qpv_hors_sem", "qva", "communes"):
        assert shown[layer] == str(len(getattr(ref, layer))), (layer, shown)


def test_hors_qpv_reason_says_qva_were_not_checked(engine) -> None:
    assert len(engine.reference.qva) == 0
    res = runner.invoke(app, ["check", "--lat", "45.4561", "--lon", "4.4067", "--json"])
    out = json.loads(res.stdout)
    assert out["status"] == "hors_qpv"
    assert any("QVA non vérifiés" in m for m in out["motifs"]), out["motifs"]
    assert not any("ni QVA" in m for m in out["motifs"])


def test_check_a_verifier_says_what_to_do_in_french(engine) -> None:
    from .test_web import near_edge_in_saint_etienne

    lat, lon, code, name = near_edge_in_saint_etienne(engine)
    res = runner.invoke(app, ["check", "--lat", f"{lat:.7f}".replace(".", ","),
                              "--lon", f"{lon:.7f}"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Que faire ?" in res.stdout and f"Le bord du QPV {code} — {name}" in res.stdout
    assert "qpv-geo serve" in res.stdout and "sig.ville.gouv.fr" in res.stdout


def test_check_outside_sem_shows_no_empty_distance() -> None:
    res = runner.invoke(app, ["check", "--lat", "45,764", "--lon", "4,8357"])
    assert res.exit_code == 0, res.output
    assert "hors territoire" in res.stdout
    assert "Distance au bord" not in res.stdout and "Marge" not in res.stdout


def test_batch_tables_use_words_not_column_codes(tmp_path: Path) -> None:
    sample = DATA.parents[1] / "data" / "exemple_appel.csv"
    res = runner.invoke(app, ["batch", str(sample), "-o", str(tmp_path / "o.csv"),
                              "--geocoder", "demo"],
                        env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    for code in ("code_postal", "priorite", "precision_point", "code_qp "):
        assert code not in res.output, code
    assert "Code postal" in res.output and "Précision du point (m) (absente)" in res.output
