"""The documentation: the CLI reference is the real help, every command explains itself, the
README stays a short guide that points to the site. (`make test` also builds the site with
``mkdocs build --strict``: a broken link or a page missing from the navigation fails it.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_the_real_help(gen_cli) -> None:
    committed = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert committed == gen_cli.render(), (
        "docs/reference/cli.md n'est plus l'aide réelle des commandes : "
        "lancez python docs/gen_cli.py et validez le fichier")


def test_cli_reference_lists_every_command(gen_cli) -> None:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    paths = [path for path, _ in gen_cli.commands(gen_cli.load_app())]
    assert ("check",) in paths and ("data", "update") in paths and ("registre", "fiche") in paths
    for path in paths:
        assert f"# `{' '.join(('qpv-geo', *path))}`\n" in text
        assert f"Utilisation : {' '.join(('qpv-geo', *path))} " in text
    assert "Usage:" not in text and "Show this message" not in text and "\x1b[" not in text


def test_every_command_and_option_has_help_text(gen_cli) -> None:
    missing = []
    for path, command in gen_cli.commands(gen_cli.load_app()):
        name = " ".join(("qpv-geo", *path))
        if not (command.help or command.short_help or "").strip():
            missing.append(name)
        for param in command.params:
            if not getattr(param, "hidden", False) and not (getattr(param, "help", "") or ""):
                missing.append(f"{name} {param.name}")
    assert not missing, f"sans texte d'aide : {missing}"


def test_readme_is_a_short_guide_to_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for command in ("make demo", "make test", "make docs"):
        assert command in readme
    assert "## Mesures" not in readme
    for page in ("guides/instructeur.md", "guides/comite.md", "guides/fichiers.md",
                 "guides/donnees.md", "mesures.md"):
        assert f"(docs/{page})" in readme
        assert (ROOT / "docs" / page).exists()
