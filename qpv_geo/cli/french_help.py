"""The command line in French: help pages, usage lines and the framework's own error messages.

typer (0.29) vendors its own click, whose messages are English f-strings (« Show this message
and exit. », « Invalid value for '--lat' », « No such option », ``<bool>``…). Rather than patch
the library's modules for good, the root command class :class:`FrenchGroup`:

* before parsing, walks the command tree once and gives each command a French usage prefix, a
  French help option and French type names (:func:`frenchify`);
* while it runs, swaps typer's help-panel strings for French ones (:func:`french_strings`);
* runs the command in non-standalone mode and turns every framework error into one French line
  built from the exception's *structure* (which option, which expected type, which value), not
  from its English text, then exits with code 2. A :class:`~qpv_geo.exceptions.QpvGeoError`
  that escapes a command (a parser, a callback) gets the same treatment.

:func:`nombre`, :func:`positif` and :func:`strictement_positif` parse numbers the way a French
user types them (decimal comma accepted) and say in French what is wrong.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer import _click
from typer import rich_utils as _rich
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.exceptions import Abort as _Abort

from qpv_geo._files import shown
from qpv_geo.exceptions import QpvGeoError

#: Help option text, usage prefix and metavars.
HELP_TEXT = "Afficher cette aide et quitter."
USAGE_PREFIX = "Utilisation : "
SUBCOMMAND_METAVAR = "COMMANDE [ARGUMENTS]..."

#: typer's help-panel strings and their French.
_PANEL_STRINGS = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commandes",
    "ERRORS_PANEL_TITLE": "Erreur",
    "ABORTED_TEXT": "Interrompu.",
    "DEFAULT_STRING": "[défaut : {}]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "DEPRECATED_STRING": "(obsolète) ",
    "RICH_HELP": "Aide : [blue]{command_path} {help_option}[/]",
}

#: Type names shown in help pages and in « … attendu » messages.
_TYPE_NAMES: dict[Any, tuple[str, str]] = {
    float: ("<nombre>", "un nombre (virgule ou point décimal, ex. 45,4605)"),
    int: ("<entier>", "un nombre entier"),
    str: ("<texte>", "un texte"),
    Path: ("<fichier>", "un chemin de fichier"),
    bool: ("", "oui ou non"),
}


class FrenchBadParameter(_click.exceptions.BadParameter):
    """A bad option value whose message is already French (raised by our parsers)."""


# ------------------------------------------------------------------------------ numbers
def nombre(value: str | float) -> float:
    """A finite number typed by a person: « 45,46881 », « 45.46881 », « 1 200,5 »."""
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise FrenchBadParameter(f"« {value} » n'est pas un nombre (exemple : 45,4605 ou "
                                     "45.4605).") from None
    if not math.isfinite(number):
        raise FrenchBadParameter(f"« {value} » n'est pas un nombre fini.")
    return number


def positif(value: str | float) -> float:
    """A finite number ≥ 0 (a margin)."""
    number = nombre(value)
    if number < 0:
        raise FrenchBadParameter(f"{value} est négatif : donnez une distance en mètres, "
                                 "positive ou nulle (ex. 25).")
    return number


def strictement_positif(value: str | float) -> float:
    """A finite number > 0 (a radius)."""
    number = nombre(value)
    if number <= 0:
        raise FrenchBadParameter(f"{value} : donnez une distance en mètres strictement "
                                 "positive (ex. 300).")
    return number


# ------------------------------------------------------------------------------ help pages
class _FrenchFormatter(_click.formatting.HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, USAGE_PREFIX if prefix is None else prefix)


class _FrenchContext(_click.Context):
    formatter_class = _FrenchFormatter


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is not None and getattr(descriptor, "is_path", False):
        return Path
    return annotation


def _type_label(param: Any) -> str | None:
    """The French metavar of a parameter, or None to keep typer's (choices)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and getattr(descriptor, "is_choice", False):
        return None
    if getattr(param, "is_flag", False):
        return ""
    names = _TYPE_NAMES.get(_annotation(param))
    return names[0] if names else "<valeur>"


def _one_line_summary(text: str | None) -> str | None:
    """A docstring's first paragraph on one line (the command list and the help's first
    paragraph), the rest (examples) kept as written."""
    if not text:
        return text
    import inspect

    first, sep, rest = inspect.cleandoc(text).partition("\n\n")
    return " ".join(first.split()) + sep + rest


def frenchify(command: Any) -> None:
    """Give a command (and its subcommands) French usage, help option and type names."""
    if getattr(command, "_qpv_fr", False):
        return
    command._qpv_fr = True
    command.context_class = _FrenchContext
    command.help = _one_line_summary(command.help)
    if isinstance(command, TyperGroup):
        if command.subcommand_metavar == "COMMAND [ARGS]...":
            command.subcommand_metavar = SUBCOMMAND_METAVAR
        for sub in command.commands.values():
            frenchify(sub)
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            label = _type_label(param)
            if label is not None:
                param.metavar = label
        elif isinstance(param, TyperArgument):
            label = _type_label(param)
            if label is not None:
                param.display_type_rich = lambda ctx, _label=label: _label  # type: ignore
    original = command.get_help_option

    def get_help_option(ctx: Any, _original: Any = original) -> Any:
        option = _original(ctx)
        if option is not None:
            option.help = HELP_TEXT
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


class _HelpTable(Table):
    """typer's help tables with every column but the last (the help text) kept whole: rich
    squeezes the widest columns first and cut « --col-precision-point » into
    « --col-precision-poi… » in an 80-column terminal; the help text wraps instead."""

    def __rich_console__(self, console: Any, options: Any) -> Any:
        for column in self.columns[:-1]:
            column.no_wrap = True
        return super().__rich_console__(console, options)


@contextlib.contextmanager
def french_strings() -> Iterator[None]:
    """typer's help-panel strings in French (and option names never cut, :class:`_HelpTable`)
    for the duration of a command."""
    saved = {name: getattr(_rich, name) for name in (*_PANEL_STRINGS, "Table")
             if hasattr(_rich, name)}
    try:
        for name in saved:
            setattr(_rich, name, _PANEL_STRINGS.get(name, _HelpTable))
        yield
    finally:
        for name, value in saved.items():
            setattr(_rich, name, value)


# ------------------------------------------------------------------------------ errors
def _param_name(param: Any, hint: Any = None) -> str:
    if hint:
        return hint if isinstance(hint, str) else " / ".join(hint)
    if param is None:
        return "une valeur"
    if isinstance(param, TyperArgument):
        return f"l'argument {str(param.name or '').upper()}"
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")] or list(param.opts)
    return opts[0] if opts else str(param.name)


def _expected(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and getattr(descriptor, "is_choice", False):
        choices = [str(getattr(c, "value", c)) for c in descriptor.choices or ()]
        return "l'une des valeurs " + ", ".join(choices)
    text = _TYPE_NAMES.get(_annotation(param), (None, "une valeur valide"))[1]
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        text += f" entre {low} et {high}"
    elif low is not None:
        text += f" supérieur ou égal à {low}"
    elif high is not None:
        text += f" inférieur ou égal à {high}"
    return text


def _raw_value(exc: BaseException) -> Any:
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            return errors()[0].get("input")
    return None


def french_message(exc: _click.exceptions.ClickException) -> str:
    """The French sentence for a typer/click error (from its type and attributes)."""
    E = _click.exceptions
    param = getattr(exc, "param", None)
    if isinstance(exc, E.MissingParameter):
        if isinstance(param, TyperArgument):
            return f"Argument manquant : {str(param.name or '').upper()}."
        return f"Option obligatoire manquante : {_param_name(param, exc.param_hint)}."
    if isinstance(exc, FrenchBadParameter):
        return f"Valeur invalide pour {_param_name(param, exc.param_hint)} : {exc.message}"
    if isinstance(exc, E.BadParameter):
        raw = _raw_value(exc)
        shown = f"« {raw} »" if raw not in (None, "") else "la valeur donnée"
        return (f"Valeur invalide pour {_param_name(param, exc.param_hint)} : {shown} ; "
                f"attendu : {_expected(param)}.")
    if isinstance(exc, E.NoSuchOption):
        text = f"Option inconnue : {exc.option_name}."
        if exc.possibilities:
            text += " Vouliez-vous dire " + " ou ".join(sorted(exc.possibilities)) + " ?"
        return text
    if isinstance(exc, E.BadOptionUsage):
        if "does not take a value" in exc.message:
            return f"L'option {exc.option_name} ne prend pas de valeur."
        return f"L'option {exc.option_name} attend une valeur."
    message = str(getattr(exc, "message", "") or "")
    if message.startswith("Got unexpected extra argument"):
        extra = message[message.rfind("(") + 1:].rstrip(")")
        return (f"Argument(s) en trop : {extra}. Mettez une adresse entre guillemets, "
                "ex. \"12 rue Jean Jaurès 42000 Saint-Étienne\".")
    if message.startswith("Missing command"):
        return "Commande manquante."
    if message.startswith("No such command"):
        name = message.split("'")[1] if message.count("'") >= 2 else ""
        text = f"Commande inconnue : {name}."
        if "Did you mean" in message:
            text += " Vouliez-vous dire " + message.split("Did you mean ")[1].rstrip("?") + " ?"
        return text
    if isinstance(exc, E.BadArgumentUsage):
        return "Nombre de valeurs incorrect pour un argument."
    return "Ligne de commande incorrecte."


def _help_hint(ctx: Any) -> str | None:
    if ctx is None:
        return None
    with contextlib.suppress(Exception):
        if ctx.command.get_help_option(ctx) is not None:
            return f"Aide : {ctx.command_path} {ctx.help_option_names[0]}"
    return None


def print_error(message: str, hint: str | None = None) -> None:
    """One French error line (+ hint) on stderr, as the commands print theirs."""
    console = Console(stderr=True)
    console.print(f"[bold red]Erreur :[/] {escape(shown(message))}", highlight=False)
    if hint:
        console.print(f"[yellow]→ {escape(shown(hint))}[/]", highlight=False)


class FrenchGroup(TyperGroup):
    """Root command: French help pages and French error messages, exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        frenchify(self)
        code: Any = 0
        with french_strings():
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                    **extra)
            except _click.exceptions.NoArgsIsHelpError:
                code = 2  # the help page is already printed
            except _click.exceptions.ClickException as exc:
                print_error(french_message(exc), _help_hint(getattr(exc, "ctx", None))
                            or self._guess_help(args, prog_name))
                code = 2
            except _Abort:
                print_error("Interrompu.")
                code = 1
            except QpvGeoError as exc:
                print_error(str(exc), exc.hint)
                code = 2
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def _guess_help(self, args: Sequence[str] | None, prog_name: str | None) -> str:
        """« Aide : qpv-geo data info --help » from the command words of ``args``."""
        words = [prog_name or _click.utils._detect_program_name()]
        group: Any = self
        for arg in sys.argv[1:] if args is None else args:
            sub = group.commands.get(arg) if isinstance(group, TyperGroup) else None
            if sub is None:
                break
            words.append(arg)
            group = sub
        return f"Aide : {' '.join(words)} --help"


__all__ = ["FrenchBadParameter", "FrenchGroup", "french_message", "french_strings",
           "frenchify", "nombre", "positif", "strictement_positif"]
