"""Command line: ``qpv-geo``. A thin shell over the Python API; the only place (with the web
layer) where exceptions become messages.

Each command has help text and an example.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from qpv_geo.exceptions import QpvGeoError
from qpv_geo.settings import Settings

app = typer.Typer(
    name="qpv-geo",
    help="Éligibilité QPV des actions de la Cité de l'emploi de Saint-Étienne Métropole.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Données de référence : versions, export, mise à jour, import.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a :class:`QpvGeoError` into a one-line message (+ hint) and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QpvGeoError as exc:
            err_console.print(f"[bold red]Erreur :[/] {exc}", highlight=False)
            if exc.hint:
                err_console.print(f"[yellow]→ {exc.hint}[/]", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]Interrompu.[/] Relancez la même commande pour reprendre "
                              "(le géocodage déjà fait est en cache).")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def get_settings() -> Settings:
    """Settings from the environment (``QPV_GEO_*``)."""
    return Settings.from_env()


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (UTF-8, no ASCII escaping)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# check / data commands (core)
# ---------------------------------------------------------------------------------------------

_ = Path, Annotated  # used by the commands below


def main() -> None:
    """Entry point of the ``qpv-geo`` script."""
    app()
