"""What every command module of the CLI shares: the consoles, the French error wrapper, the
settings, the JSON printer and the ``--territoire`` option. The command modules
(:mod:`qpv_geo.cli`, :mod:`qpv_geo.cli.data`, :mod:`qpv_geo.cli.registre`) import it; it
imports none of them."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from qpv_geo._files import shown
from qpv_geo.exceptions import QpvGeoError
from qpv_geo.settings import Settings


class _Console(Console):
    """A console that prints a file name that is not UTF-8 (bytes of another system's
    encoding, kept by Python as surrogates) with « � » instead of failing."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(shown(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _Console()
err_console = _Console(stderr=True)

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


TerritoireOption = Annotated[str | None, typer.Option(
    "--territoire", help="Territoire : SIREN d'un EPCI (défaut 244200770, Saint-Étienne "
    "Métropole), code INSEE d'une commune, ou « france » (tous les QPV, sans restriction de "
    "territoire). Hors SEM : périmètres QPV nationaux (copie simplifiée embarquée ≈ 12 m, ou "
    "le fichier officiel installé par qpv-geo data update) ; contours des communes : "
    "qpv-geo data update --communes.")]


__all__ = ["TerritoireOption", "console", "err_console", "get_settings", "print_json",
           "user_errors"]
