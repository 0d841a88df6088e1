"""Write docs/reference/cli.md: the real ``--help`` of every ``qpv-geo`` command.

The command tree is read from typer's own click objects (``typer.main.get_command`` on
``qpv_geo.cli:app``), and each page is the output of ``qpv-geo … --help`` run through the
application itself (French usage lines, French panels), at a fixed width and without colours,
so that the file only changes when a command, an option or a help text changes.

    python docs/gen_cli.py            # rewrite docs/reference/cli.md
    python docs/gen_cli.py --check    # exit 1 if the committed file is out of date

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer import rich_utils
from typer.testing import CliRunner

OUTPUT = Path(__file__).resolve().parent / "reference" / "cli.md"
PROG = "qpv-geo"
WIDTH = 78

HEADER = f"""# Ligne de commande

Cette page est **générée** à partir de l'aide réelle de chaque commande (`{PROG} … --help`) par
`docs/gen_cli.py` ; ne la modifiez pas à la main. Après un changement d'une commande, d'une
option ou d'un texte d'aide : `python docs/gen_cli.py` (la suite de tests vérifie que la page
est à jour).

Codes de sortie : 0 quand la commande a abouti, 2 pour une entrée inutilisable ou une erreur
d'utilisation (message en français sur une ligne, avec ce qu'il faut faire), 1 quand
`batch` n'a pas écrit autant de lignes qu'il en a lu, 130 après Ctrl-C.
"""


def load_app() -> typer.Typer:
    from qpv_geo.cli import app

    return app


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every visible command under ``command`` (itself first), in the order of its help."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from walk(sub, (*path, name))


def commands(app: typer.Typer) -> list[tuple[tuple[str, ...], Any]]:
    return list(walk(typer.main.get_command(app)))


@contextlib.contextmanager
def plain_console() -> Iterator[None]:
    """typer's rich console at a fixed width, no colours, whatever the environment says."""
    names = ("MAX_WIDTH", "FORCE_TERMINAL", "COLOR_SYSTEM")
    saved = {name: getattr(rich_utils, name) for name in names}
    rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = WIDTH, False, None
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(rich_utils, name, value)


def help_text(app: typer.Typer, path: tuple[str, ...]) -> str:
    """What ``qpv-geo <path> --help`` prints."""
    with plain_console():
        result = CliRunner().invoke(app, [*path, "--help"], prog_name=PROG,
                                    env={"NO_COLOR": "1", "TERM": "dumb"})
    if result.exit_code != 0:
        raise RuntimeError(f"{PROG} {' '.join(path)} --help: code {result.exit_code}\n"
                           f"{result.output}")
    lines = [line.rstrip() for line in result.output.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def render(app: typer.Typer | None = None) -> str:
    """The whole page."""
    app = app or load_app()
    parts = [HEADER]
    for path, _command in commands(app):
        title = " ".join((PROG, *path))
        level = "#" * min(2 + max(len(path) - 1, 0), 4)
        parts.append(f"{level} `{title}`\n\n```text\n{help_text(app, path)}\n```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="ne rien écrire ; code 1 si la page n'est pas à jour")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} n'est pas à jour : lancez python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"Écrit : {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
