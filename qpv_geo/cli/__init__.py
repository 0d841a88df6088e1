"""Command line: ``qpv-geo``. A thin shell over the Python API; the only place (with the web
layer) where exceptions become messages.

Each command has help text and an example.

Imports: the CLI must start light (tests/test_startup.py), so a command imports the stage
modules it uses (eligibility, geocoding, batch, reference, reporting, registre, web) inside its
function; that is the one place for an import inside a function. Everything else (this package's
own modules, settings, exceptions, files) is imported at the top of the module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from qpv_geo._files import check_output_path, shown, writing
from qpv_geo.cli.common import (
    TerritoireOption,
    console,
    err_console,
    get_settings,
    print_json,
    user_errors,
)
from qpv_geo.cli.data import data_app
from qpv_geo.cli.french_help import (
    FrenchBadParameter,
    FrenchGroup,
    nombre,
    positif,
    strictement_positif,
)
from qpv_geo.cli.registre import registre_app
from qpv_geo.exceptions import CoordinateError, InputFileError, QpvGeoError
from qpv_geo.settings import GEOCODERS, SIREN_SEM, Settings

app = typer.Typer(
    cls=FrenchGroup,
    name="qpv-geo",
    help="Éligibilité QPV des actions de la Cité de l'emploi de Saint-Étienne Métropole.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(data_app, name="data")


def moteur_batch(value: str) -> str:
    """``--moteur`` value: ``local`` or ``dask``, any case."""
    name = str(value).strip().lower()
    if name not in ("local", "dask"):
        raise FrenchBadParameter(f"« {value} » : choisissez local ou dask.")
    return name


def geocodeur(value: str) -> str:
    """``--geocoder`` value: one of :data:`~qpv_geo.settings.GEOCODERS`, any case."""
    name = str(value).strip().lower()
    if name not in GEOCODERS:
        raise FrenchBadParameter(f"« {value} » : choisissez " + ", ".join(GEOCODERS[:-1])
                                 + f" ou {GEOCODERS[-1]}.")
    return name


def tuiles(value: str) -> str:
    """``--tiles`` value: osm (online OpenStreetMap tiles) or none (offline)."""
    name = str(value).strip().lower()
    if name not in ("osm", "none"):
        raise FrenchBadParameter(f"« {value} » : choisissez osm (en ligne) ou none (hors "
                                 "ligne).")
    return name


#: Options shared by several commands: one name, one meaning everywhere.
MargeOption = Annotated[float | None, typer.Option(
    parser=positif, help="Marge (m) imposée à tous les points : en deçà de cette distance "
    "d'un bord, le verdict est « à vérifier ». Par défaut, chaque point a la sienne : "
    "précision du périmètre + incertitude de sa position (docs/marges.md).")]
GeocoderOption = Annotated[str | None, typer.Option(
    "--geocoder", parser=geocodeur, metavar="<" + "|".join(GEOCODERS) + ">",
    help="Géocodeur des adresses : auto (défaut : fichier BAN installé, sinon service en "
    "ligne), local (fichier BAN installé), ban (service en ligne), demo (adresses fictives).")]
FeuilleOption = Annotated[str | None, typer.Option(
    "--feuille", help="Feuille du classeur XLSX (nom ou rang ; défaut : la première).")]
LigneEnteteOption = Annotated[int | None, typer.Option(
    "--ligne-entete", min=1, metavar="N",
    help="Ligne des noms de colonnes (1 = la première), si celle trouvée n'est pas la bonne "
    "(par défaut : la ligne du début qui nomme le plus de colonnes ; les titres au-dessus "
    "sont ignorés).")]
ForcerOption = Annotated[bool, typer.Option(
    "--forcer", help="Continuer même si le fichier semble mal lu (plus de la moitié des lignes "
    "irrégulières ou sans adresse lue).")]
RayonOption = Annotated[float, typer.Option(
    parser=strictement_positif, help="Rayon (m) du « quartier vécu » : un site à cette "
    "distance d'un QPV le dessert.")]
TilesOption = Annotated[str, typer.Option(
    "--tiles", parser=tuiles, metavar="<osm|none>",
    help="Fond de carte : osm (OpenStreetMap, en ligne) ou none (hors ligne).")]
#: Old spellings, still accepted, not shown in the help pages.
_GeocodeurAlias = Annotated[str | None, typer.Option("--geocodeur", parser=geocodeur,
                                                     hidden=True)]
_SheetAlias = Annotated[str | None, typer.Option("--sheet", hidden=True)]

#: The column options of every command that reads a raw sites file (same names everywhere).
ColAdresse = Annotated[str | None, typer.Option("--col-adresse", help="Colonne de l'adresse.")]
ColCodePostal = Annotated[str | None, typer.Option("--col-code-postal",
                                                   help="Colonne du code postal.")]
ColCommune = Annotated[str | None, typer.Option("--col-commune", help="Colonne de la commune.")]
ColLat = Annotated[str | None, typer.Option("--col-lat", help="Colonne de la latitude (WGS84).")]
ColLon = Annotated[str | None, typer.Option("--col-lon",
                                            help="Colonne de la longitude (WGS84).")]
ColX = Annotated[str | None, typer.Option("--col-x", help="Colonne X Lambert-93.")]
ColY = Annotated[str | None, typer.Option("--col-y", help="Colonne Y Lambert-93.")]
ColPriorite = Annotated[str | None, typer.Option("--col-priorite",
                                                 help="Colonne de la priorité.")]
ColPorteur = Annotated[str | None, typer.Option("--col-porteur", help="Colonne du porteur.")]
ColAction = Annotated[str | None, typer.Option("--col-action", help="Colonne de l'action.")]


def col_overrides(**cols: str | None) -> dict[str, str | None] | None:
    """``--col-…`` options given (``col_code_postal=…`` → role ``code_postal``), or None."""
    given = {k.removeprefix("col_"): v for k, v in cols.items() if v is not None}
    return given or None


# ---------------------------------------------------------------------------------------------
# check / data commands (core)
# ---------------------------------------------------------------------------------------------

_STATUS_STYLE = {
    "eligible": "bold green", "qva": "bold dark_orange", "hors_qpv": "bold red",
    "hors_territoire": "bold red", "a_verifier": "bold yellow", "non_geocode": "bold magenta",
}


def coverage_lines(coverage: Any) -> list[str]:
    """The report's three coverage figures, for the terminal: the QPV × priority cells with
    an action inside the QPV, served only by the « quartier vécu », and the gaps (never one
    « QPV reached » rate that hides the gaps)."""
    from qpv_geo.eligibility.wording import pluriel

    cells = coverage.cellules()
    total = cells["total"]
    n_qpv = int(coverage.qpv_total)
    n_prio = total // n_qpv if n_qpv else 0
    return [
        f"Couverture des {pluriel(total, 'case')} QPV × priorité ({pluriel(n_qpv, 'QPV', 'QPV')}"
        f" × {pluriel(n_prio, 'priorité')} de l'appel) :",
        f"  {cells['dans']} / {total} avec une action dans le QPV",
        f"  {cells['proximite']} / {total} desservies seulement par le quartier vécu "
        f"(site à ≤ {coverage.rayon_m:.0f} m du QPV)",
        f"  {cells['lacunes']} / {total} {'lacunes' if cells['lacunes'] > 1 else 'lacune'} :"
        " aucune action",
    ]


def render_verdict(verdict: Any, reference: Any) -> None:
    """Print a verdict for a person: status, quartier, distances, reasons, data version."""
    from rich.panel import Panel
    from rich.table import Table

    from qpv_geo.eligibility.engine import format_distance
    from qpv_geo.eligibility.wording import precision_libelle, source_libelle
    from qpv_geo.reporting.next_steps import next_steps, zone_label, zone_names

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    if verdict.code_qp:
        table.add_row("Quartier", f"{verdict.code_qp} — {verdict.lib_qp}")
    if verdict.lib_com or verdict.insee_com:
        table.add_row("Commune", f"{verdict.lib_com or '?'} ({verdict.insee_com or '?'})")
    # a point known only to its commune is the commune's centre: no distance says anything
    centre = (verdict.geocodage or {}).get("geocodage_precision") == "municipality"
    if verdict.distance_bord_m is not None and not math.isnan(verdict.distance_bord_m) \
            and not centre:
        # far from every perimeter (outside SEM) neither the distance nor the margin says
        # anything: both rows only when there is an edge to be near
        table.add_row("Distance au bord", format_distance(verdict.distance_bord_m))
        if verdict.marge_motif:
            table.add_row("Marge", verdict.marge_motif)
    if verdict.code_qp_proche and not verdict.code_qp:
        table.add_row("QPV le plus proche", f"{verdict.code_qp_proche} — {verdict.lib_qp_proche}"
                      + ("" if centre else f" ({verdict.distance_qp_proche_m:.0f} m)"))
    if verdict.candidat_autre_cote and verdict.candidat_autre_cote not in (
            verdict.code_qp, verdict.code_qp_proche):
        table.add_row("Bord le plus proche",
                      zone_label(verdict.candidat_autre_cote, zone_names(reference)) or "")
    geo = verdict.geocodage or {}
    if geo.get("geocodage_label"):  # no point found: the motifs say why
        precision = geo.get("geocodage_precision")
        table.add_row("Géocodage", f"{geo.get('geocodage_label') or '—'} · trouvée "
                      f"{precision_libelle(precision)} · source : "
                      f"{source_libelle(geo.get('geocodage_source'))}")
    if verdict.lat is not None:
        l93 = (f" · Lambert-93 x {verdict.x_l93:.0f}, y {verdict.y_l93:.0f}"
               if verdict.x_l93 is not None and verdict.y_l93 is not None else "")
        table.add_row("Point", f"lat {verdict.lat:.6f}, lon {verdict.lon:.6f}{l93}")
    for i, motif in enumerate(verdict.motifs):
        table.add_row("Motifs" if i == 0 else "", f"• {motif}")
    steps = next_steps({**verdict.to_dict(), "geocodage": verdict.geocodage}, reference,
                       page=False)
    for i, step in enumerate(steps):
        table.add_row("[bold yellow]Que faire ?[/]" if i == 0 else "", f"{i + 1}. {step}")
    table.add_row("Données", verdict.donnees.split(" — ")[0])
    for note in verdict.notes:
        table.add_row("", f"[yellow]⚠ {note}[/]")
    style = _STATUS_STYLE.get(verdict.status, "bold")
    console.print(Panel(table, title=f"[{style}]{verdict.label}[/]", title_align="left",
                        border_style=style.split()[-1]))


@app.command()
@user_errors
def check(
    adresse: Annotated[str | None, typer.Argument(
        help="Adresse postale, ex. « 12 rue Jean Jaurès 42000 Saint-Étienne ».")] = None,
    lat: Annotated[float | None, typer.Option(
        parser=nombre, help="Latitude WGS84 (≈ 45,4 à Saint-Étienne ; virgule ou point).")]
    = None,
    lon: Annotated[float | None, typer.Option(
        parser=nombre, help="Longitude WGS84 (≈ 4,4 à Saint-Étienne).")] = None,
    x: Annotated[float | None, typer.Option(
        parser=nombre, help="X Lambert-93 (EPSG:2154), en mètres.")] = None,
    y: Annotated[float | None, typer.Option(
        parser=nombre, help="Y Lambert-93 (EPSG:2154), en mètres.")] = None,
    marge: MargeOption = None,
    precision_point: Annotated[float | None, typer.Option(
        "--precision-point", parser=positif, help="Incertitude (m) de la position des "
        "coordonnées données (défaut 10 m ; une adresse géocodée a celle de son type de "
        "position).")] = None,
    geocoder: GeocoderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON (un objet).")] = False,
    territoire: TerritoireOption = None,
) -> None:
    """Vérifier un lieu : une adresse, ou des coordonnées (lat/lon ou Lambert-93 x/y).

    Exemples : qpv-geo check --lat 45.4605 --lon 4.3871 ·
    qpv-geo check --x 808000 --y 6480000 --json ·
    qpv-geo check "3 rue de la Paix 42000 Saint-Étienne"
    """
    from qpv_geo.eligibility.factory import engine_from_settings

    settings = get_settings().with_(marge_m=marge, geocoder=geocoder,
                                    precision_point_m=precision_point, territoire=territoire)
    given = [v is not None for v in (lat, lon, x, y)]
    if adresse is None and not any(given):
        raise CoordinateError("Rien à vérifier : donnez une adresse, ou --lat/--lon, ou --x/--y.",
                              hint='Exemple : qpv-geo check --lat 45.4605 --lon 4.3871')
    if adresse is not None and any(given):
        raise CoordinateError("Donnez soit une adresse, soit des coordonnées, pas les deux.")
    if (lat is None) != (lon is None) or (x is None) != (y is None) or (lat is not None
                                                                          and x is not None):
        raise CoordinateError("Donnez --lat et --lon ensemble, ou --x et --y ensemble.")
    engine = engine_from_settings(settings)
    if adresse is not None:
        from qpv_geo.geocoding import geocoder_from_settings
        from qpv_geo.geocoding.coordinates import coordinates_result

        # coordinates pasted in the address field are coordinates, geocoder or not
        result = coordinates_result(adresse) or geocoder_from_settings(settings).geocode(adresse)
        verdict = engine.judge_point(geocode=result)
    elif x is not None:
        verdict = engine.judge_point(x=x, y=y)
    else:
        verdict = engine.judge_point(lon=lon, lat=lat)
    if as_json:
        print_json(verdict.to_dict())
    else:
        render_verdict(verdict, engine.reference)
    if verdict.status == "non_geocode":
        raise typer.Exit(2)


@app.command()
@user_errors
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Dossier des résultats.")]
    = Path("out/demo"),
    fichier: Annotated[Path | None, typer.Option(
        help="Fichier de sites à traiter (par défaut l'appel exemple embarqué).")] = None,
    col_adresse: ColAdresse = None,
    col_code_postal: ColCodePostal = None,
    col_commune: ColCommune = None,
    col_lat: ColLat = None,
    col_lon: ColLon = None,
    col_x: ColX = None,
    col_y: ColY = None,
    col_priorite: ColPriorite = None,
    col_porteur: ColPorteur = None,
    col_action: ColAction = None,
) -> None:
    """Traitement principal sur les données embarquées : valider les sites d'un appel, écrire
    le fichier validé (CSV, XLSX), la carte et le rapport du comité de copilotage.

    Exemple : qpv-geo demo --output out/demo
    """
    from qpv_geo.batch import validate_file, write_result
    from qpv_geo.eligibility.engine import STATUS_LABELS
    from qpv_geo.reference.layers import get_reference, shipped_dir
    from qpv_geo.reporting.maps import notes_for, write_map
    from qpv_geo.reporting.report import report_outputs, write_report

    # the sample call's addresses are those of the demonstration address file
    settings = get_settings().with_(geocoder="demo")
    reference = get_reference(settings)
    sample = fichier or shipped_dir().parent / "exemple_appel.csv"
    csv_path, xlsx_path = output / "sites_valides.csv", output / "sites_valides.xlsx"
    map_path, report_path = output / "carte.html", output / "rapport.html"
    for path in [csv_path, xlsx_path, map_path, *report_outputs(report_path)]:  # before any work
        check_output_path(path, [sample], create_folder=True)
    with writing(output):
        output.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]qpv-geo[/] — validation de {sample.name} "
                  f"({'appel exemple fictif' if fichier is None else 'fichier fourni'})",
                  highlight=False)
    console.print(f"Données : {reference.version}", highlight=False)
    overrides = col_overrides(**{k: v for k, v in locals().items() if k.startswith("col_")})
    result = validate_file(sample, csv_path, settings=settings,
                           progress=True, mapping_overrides=overrides,
                           on_mapping=None if fichier is None else _print_mapping)
    # the XLSX holds its synthesis in its sheets: no second pair of synthesis files
    written = [*result.paths, *write_result(result, xlsx_path, inputs=[sample],
                                            summaries=False)]
    frame = result.frame
    written.append(write_map(frame, map_path, reference=reference, tiles=None))
    from qpv_geo.reporting.coverage import coverage_from_sites

    coverage = coverage_from_sites(frame, reference)  # the report's, computed once
    written += list(write_report(frame, report_path, reference=reference,
                                 source=shown(sample.name), coverage=coverage).values())
    summary = result.summary
    from rich.table import Table

    table = Table(title=f"{summary['lignes_lues']} lignes lues, {summary['total']} écrites")
    table.add_column("verdict")
    table.add_column("sites", justify="right")
    for status, label in STATUS_LABELS.items():
        table.add_row(label, str(summary["par_statut"].get(status, 0)))
    console.print(table)
    for line in coverage_lines(coverage):
        console.print(line, highlight=False)
    for note in notes_for(reference, frame):
        console.print(f"[yellow]⚠ {note}[/]", highlight=False)
    console.print("[bold]Résultats :[/]")
    for path in written:
        console.print(f"  {path}", highlight=False)
    console.print(f"Ouvrez {output / 'rapport.html'} dans un navigateur (fonctionne hors ligne).",
                  highlight=False)


# --- serve command (issue 6) ---
@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(
        help="Adresse d'écoute (127.0.0.1 : ce poste seulement ; 0.0.0.0 : le réseau local).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port TCP.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(
        help="Processus serveurs (plusieurs cœurs : plus de requêtes par seconde ; chacun "
        "charge les données, ≈ 300 Mo).", min=1, max=64)] = 1,
    territoire: TerritoireOption = None,
) -> None:
    """Lancer la page web et l'API JSON des instructeurs (extension « web »).

    Exemple : qpv-geo serve --port 8000
    puis ouvrir http://127.0.0.1:8000/ (une adresse) ou http://127.0.0.1:8000/lot (un fichier).
    """
    import os

    from qpv_geo.web import INSTALL_HINT, create_app

    try:
        import uvicorn  # noqa: F401 (installed with the « web » extra)

        from qpv_geo.web.server import run
    except ImportError as exc:
        raise QpvGeoError("uvicorn n'est pas installé.", hint=INSTALL_HINT) from exc
    _check_port_free(host, port)
    settings = get_settings().with_(territoire=territoire)
    # one folder per port for the results kept between requests, shared by the workers
    folder = settings.dossier_serveur or str(settings.cache_dir / "web" / f"serveur-{port}")
    settings = settings.with_(ecoute=host, dossier_serveur=folder)
    # the workers build their application from the environment: the same settings
    os.environ.update({"QPV_GEO_ECOUTE": host, "QPV_GEO_DOSSIER_SERVEUR": folder,
                       "QPV_GEO_TERRITOIRE": str(settings.territoire)})
    # built here even for workers: a missing extra or a bad setting is said in French now,
    # and the form secret exists before the workers start
    application = create_app(settings)
    plural = f", {workers} processus" if workers > 1 else ""
    console.print(f"qpv-geo : http://{host}:{port}/{plural} (Ctrl+C pour arrêter)",
                  highlight=False)
    # uvicorn's own lines are English: only its warnings and errors are shown
    run(application, host=host, port=port, delay_s=settings.delai_client_s, workers=workers,
        log_level="warning")
    console.print("Serveur arrêté.")


def _check_port_free(host: str, port: int) -> None:
    """A French error saying why (host, port) cannot be listened on (port taken…), if so."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise QpvGeoError(f"Adresse d'écoute inconnue : « {host} ».",
                          hint="Utilisez 127.0.0.1 (ce poste) ou 0.0.0.0 (le réseau local)."
                          ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise QpvGeoError(f"Le port {port} est déjà utilisé sur {host} (un autre "
                                  "serveur, ou qpv-geo serve déjà lancé).",
                                  hint="Choisissez un autre port : qpv-geo serve --port "
                                  f"{port + 1 if port < 65535 else 8001}") from None
            if exc.errno == errno.EACCES:
                raise QpvGeoError(f"Le port {port} est réservé (droits d'administrateur "
                                  "requis).", hint="Choisissez un port au-dessus de 1024, "
                                  "ex. --port 8000.") from None
            raise QpvGeoError(f"Impossible d'écouter sur {host}:{port} "
                              f"({exc.strerror or exc.errno}).",
                              hint="Vérifiez l'adresse --host (127.0.0.1 ou 0.0.0.0).") from None
# --- end serve command ---


# --- map and report commands (issue 5) ---
_VALIDATED_COLUMNS = {"status", "code_qp", "ligne"}


def load_sites_for_outputs(path: Path, settings: Settings, *, geocoder: str | None = None,
                           sheet: str | None = None,
                           overrides: dict[str, str | None] | None = None,
                           header_line: int | None = None, forcer: bool = False) -> Any:
    """Sites for a map or a report: a batch output as is, a raw sites file validated first;
    rows outside the table dropped. A file mostly read wrongly is refused unless ``forcer``."""
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    from qpv_geo import batch

    try:
        frame = batch.read_validated(path)
    except InputFileError:
        frame = None
    from qpv_geo.batch.table import sites_only, unreadable_of_frame

    if frame is not None and set(frame.columns) >= _VALIDATED_COLUMNS:
        for warning in frame.attrs.get("avertissements_lecture") or []:
            err_console.print(f"[bold yellow]⚠ {warning}[/]", highlight=False)
        mal_lu = unreadable_of_frame(frame)
    else:
        err_console.print(f"{path.name} n'est pas un fichier déjà validé : validation des "
                          "sites…", highlight=False)
        result = batch.validate_file(path, None, settings=settings, geocoder_name=geocoder,
                                     sheet=sheet, progress=False, mapping_overrides=overrides,
                                     on_mapping=_print_mapping, header_line=header_line)
        frame, mal_lu = result.frame, result.summary.get("fichier_mal_lu", "")
    if mal_lu and not forcer:
        raise InputFileError(f"{path.name} : {mal_lu}.",
                             hint="Corrigez la lecture (--ligne-entete N, --col-…) ; pour "
                             "continuer quand même : --forcer.")
    if mal_lu:
        err_console.print(f"[bold red]⚠ {mal_lu} (--forcer : on continue).[/]",
                          highlight=False)
    return sites_only(frame)  # a total, a note under the table: not a site


def _print_notes(reference: Any, sites: Any) -> None:
    from qpv_geo.reporting.maps import notes_for, outlines_to_install

    for note in notes_for(reference, sites):
        console.print(f"[yellow]⚠ {note}[/]", highlight=False)
    command = outlines_to_install(reference)
    if command:
        console.print(f"Fond des cartes : contours des communes non installés pour ce "
                      f"territoire ; pour les dessiner : {command}", highlight=False)


@app.command("map")
@user_errors
def map_command(
    sites: Annotated[Path, typer.Argument(
        help="Fichier des sites : sortie de qpv-geo batch, ou fichier brut CSV/XLSX (validé "
        "d'abord).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Carte HTML à écrire.")] = Path(
        "carte.html"),
    tiles: TilesOption = "osm",
    rayon: RayonOption = 300.0,
    geocoder: GeocoderOption = None,
    feuille: FeuilleOption = None,
    col_adresse: ColAdresse = None,
    col_code_postal: ColCodePostal = None,
    col_commune: ColCommune = None,
    col_lat: ColLat = None,
    col_lon: ColLon = None,
    col_x: ColX = None,
    col_y: ColY = None,
    col_priorite: ColPriorite = None,
    col_porteur: ColPorteur = None,
    col_action: ColAction = None,
    _geocodeur: _GeocodeurAlias = None,
    _sheet: _SheetAlias = None,
    territoire: TerritoireOption = None,
    ligne_entete: LigneEnteteOption = None,
    forcer: ForcerOption = False,
) -> None:
    """Carte interactive des actions par priorité, sur les périmètres QPV (un seul fichier HTML,
    utilisable hors ligne avec --tiles none).

    Exemple : qpv-geo map sites_valides.csv -o carte.html --tiles none
    """
    from qpv_geo.eligibility.wording import reference_from_settings
    from qpv_geo.reporting.maps import TILES, write_map

    settings = get_settings().with_(territoire=territoire)
    overrides = col_overrides(**{k: v for k, v in locals().items() if k.startswith("col_")})
    check_output_path(output, [sites], create_folder=True)  # before any work
    frame = load_sites_for_outputs(sites, settings, geocoder=geocoder or _geocodeur,
                                   sheet=feuille or _sheet, overrides=overrides,
                                   header_line=ligne_entete, forcer=forcer)
    reference = reference_from_settings(settings)
    path = write_map(frame, output, reference=reference, tiles=TILES[tiles.lower()],
                     rayon_m=rayon)
    console.print(f"Carte écrite : {path} ({len(frame)} sites, {path.stat().st_size // 1024} ko, "
                  "autonome)", highlight=False)
    _print_notes(reference, frame)


@app.command("report")
@user_errors
def report_command(
    sites: Annotated[Path, typer.Argument(
        help="Fichier des sites : sortie de qpv-geo batch, ou fichier brut CSV/XLSX (validé "
        "d'abord).")],
    output: Annotated[Path, typer.Option("-o", "--output",
                                         help="Rapport HTML (ou .pdf) à écrire.")] = Path(
        "rapport.html"),
    pdf: Annotated[bool, typer.Option("--pdf", help="Écrire aussi le PDF (cartes statiques).")]
    = False,
    tiles: TilesOption = "none",
    rayon: RayonOption = 300.0,
    titre: Annotated[str | None, typer.Option(help="Titre du rapport.")] = None,
    geocoder: GeocoderOption = None,
    feuille: FeuilleOption = None,
    col_adresse: ColAdresse = None,
    col_code_postal: ColCodePostal = None,
    col_commune: ColCommune = None,
    col_lat: ColLat = None,
    col_lon: ColLon = None,
    col_x: ColX = None,
    col_y: ColY = None,
    col_priorite: ColPriorite = None,
    col_porteur: ColPorteur = None,
    col_action: ColAction = None,
    _geocodeur: _GeocodeurAlias = None,
    _sheet: _SheetAlias = None,
    territoire: TerritoireOption = None,
    ligne_entete: LigneEnteteOption = None,
    forcer: ForcerOption = False,
) -> None:
    """Rapport du comité de copilotage : chiffres clés, matrice QPV × priorité, lacunes, lignes
    à revoir, cartes, versions des données (un seul fichier HTML imprimable ; --pdf via
    WeasyPrint).

    Exemple : qpv-geo report sites_valides.csv -o rapport.html --pdf
    """
    from qpv_geo.eligibility.wording import pluriel, reference_from_settings
    from qpv_geo.reporting.coverage import coverage_from_sites
    from qpv_geo.reporting.report import report_outputs, write_report

    settings = get_settings().with_(territoire=territoire)
    overrides = col_overrides(**{k: v for k, v in locals().items() if k.startswith("col_")})
    for path in report_outputs(output, pdf=pdf):  # before any work
        check_output_path(path, [sites], create_folder=True)
    frame = load_sites_for_outputs(sites, settings, geocoder=geocoder or _geocodeur,
                                   sheet=feuille or _sheet, overrides=overrides,
                                   header_line=ligne_entete, forcer=forcer)
    reference = reference_from_settings(settings)
    # once, for the report and the lines printed below (all France: ≈ 10 s each time)
    cov = coverage_from_sites(frame, reference, rayon_m=rayon)
    written = write_report(frame, output, reference=reference, rayon_m=rayon,
                           tiles="osm" if tiles == "osm" else None, pdf=pdf, title=titre,
                           source=shown(sites.name), coverage=cov)
    for kind, path in written.items():
        what = "Tableau complet par QPV (CSV)" if kind == "par_qpv" else f"Rapport {kind.upper()}"
        console.print(f"{what} écrit : {path}", highlight=False)
    for p in cov.par_priorite.itertuples(index=False):
        console.print(f"  {p.priorite_label} : {p.qpv_dans}/{p.qpv_total} QPV avec une action "
                      f"dedans ({p.taux_dans:.0%}) ; {p.qpv_proximite} seulement à ≤ "
                      f"{cov.rayon_m:.0f} m ; {p.qpv_lacunes} sans action", highlight=False)
    c = cov.cellules()
    console.print(f"  Cases QPV × priorité : {c['dans']}/{c['total']} avec une action dans le "
                  f"QPV, {c['proximite']} seulement à ≤ {cov.rayon_m:.0f} m, "
                  f"{pluriel(c['lacunes'], 'lacune')}", highlight=False)
    if cov.sites_imprecis:
        console.print(f"  [yellow]{cov.sites_imprecis} site(s) localisé(s) seulement à la "
                      "commune ou au lieu-dit : comptés nulle part (demandez leur adresse "
                      "exacte)[/]", highlight=False)
    _print_notes(reference, frame)


# --- end map and report commands ---


# --- geocoding commands (issue 3) ---
@app.command()
@user_errors
def geocode(
    adresse: Annotated[str, typer.Argument(
        help="Adresse postale, ex. « 12 rue Jean Jaurès 42000 Saint-Étienne ».")],
    geocoder: GeocoderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON (un objet).")] = False,
) -> None:
    """Géocoder une adresse : point WGS84, précision, score, et ce qui la rend à vérifier.

    Exemples : qpv-geo geocode "3 r Victor Hugo St-Etienne" ·
    qpv-geo geocode "42100 Saint-Étienne" --json · qpv-geo geocode "…" --geocoder ban
    """
    from qpv_geo.geocoding import geocoder_from_settings, reliability_issues

    settings = get_settings()
    result = geocoder_from_settings(settings, geocoder).geocode(adresse)
    issues = reliability_issues(result, score_min=settings.score_min) if result.found else []
    if as_json:
        print_json({"requete": result.query, "trouve": result.found, **result.to_dict(),
                    "a_verifier": issues})
    elif not result.found:
        err_console.print(f"[bold magenta]Non trouvée :[/] {result.motif}", highlight=False)
    else:
        from qpv_geo.eligibility.wording import precision_libelle, source_libelle

        console.print(f"[bold]{result.label}[/]  (source : {source_libelle(result.source)})",
                      highlight=False)
        console.print(f"lat {result.lat:.6f}, lon {result.lon:.6f} · trouvée "
                      f"{precision_libelle(result.precision)} · confiance du géocodeur "
                      f"{result.score:.2f} sur 1 · INSEE {result.citycode}", highlight=False)
        if result.motif:
            console.print(f"[yellow]{result.motif}[/]", highlight=False)
        for issue in issues:
            console.print(f"[yellow]⚠ à vérifier : {issue}[/]", highlight=False)
    if not result.found:
        raise typer.Exit(2)


# --- end geocoding commands ---


# --- batch command (issue 4) ---
def _print_mapping(mapping: Any, columns: list[str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from qpv_geo.batch.columns import COLUMN_ROLE_LABELS as ROLE_LABELS

    table = Table(title="Colonnes reconnues", title_justify="left")
    table.add_column("colonne du fichier")
    table.add_column("rôle")
    used = set()
    for role, column in mapping.describe():
        if column:
            used.add(column)
            table.add_row(escape(str(column)), ROLE_LABELS.get(role, role))
    for role, column in mapping.describe():
        if not column:
            table.add_row("[dim]—[/]", f"[dim]{ROLE_LABELS.get(role, role)} (absente)[/]")
    others = [c for c in columns if c not in used]
    err_console.print(table)
    if others:
        err_console.print("Conservées telles quelles : " + ", ".join(others), highlight=False)


def _print_batch_summary(summary: dict[str, Any], territoire: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from qpv_geo.eligibility.verdict_table import status_labels

    STATUS_LABELS = status_labels()
    if territoire and territoire != SIREN_SEM:
        from qpv_geo.reference.territories import resolve_territoire

        STATUS_LABELS = status_labels(resolve_territoire(territoire).nom)

    table = Table(title="Synthèse par statut", title_justify="left")
    table.add_column("statut")
    table.add_column("lignes", justify="right")
    for status, count in summary["par_statut"].items():
        style = _STATUS_STYLE.get(status, "")
        table.add_row(f"[{style}]{STATUS_LABELS[status]}[/]", str(count))
    table.add_row("[bold]Total[/]", f"[bold]{summary['total']}[/]")
    console.print(table)
    if summary["par_qpv"]:
        qpv = Table(title="Par QPV", title_justify="left")
        for col in ("code QPV", "quartier", "sites", "éligibles"):
            qpv.add_column(col, justify="right" if col in ("sites", "éligibles") else "left")
        for code, e in summary["par_qpv"].items():
            qpv.add_row(code, str(e["lib_qp"]), str(e["sites"]), str(e["eligibles"]))
        console.print(qpv)
    if summary["par_priorite"]:
        prio = Table(title="Par priorité", title_justify="left")
        for col in ("priorité", "sites", "éligibles"):
            prio.add_column(col, justify="left" if col == "priorité" else "right")
        for e in summary["par_priorite"].values():
            prio.add_row(e["label"], str(e["sites"]), str(e["eligibles"]))
        console.print(prio)
    if summary["a_revoir_total"]:
        review = Table(title=f"Lignes à revoir ({summary['a_revoir_total']})",
                       title_justify="left", show_lines=False)
        review.add_column("ligne", justify="right")
        review.add_column("statut")
        review.add_column("porteur", overflow="fold")
        review.add_column("adresse", overflow="fold")
        review.add_column("motif", overflow="fold")
        for r in summary["a_revoir"][:30]:
            style = _STATUS_STYLE.get(r["status"], "")
            short = STATUS_LABELS.get(r["status"], r["status"]).split(" — ")[0]
            review.add_row(str(r["ligne"]), f"[{style}]{short}[/]",
                           escape(str(r.get("porteur") or "")),
                           escape(str(r.get("adresse") or "")),
                           escape(str(r.get("motifs") or "")))
        console.print(review)
        if summary["a_revoir_total"] > 30:
            console.print(f"… et {summary['a_revoir_total'] - 30} autres (colonne status du "
                          "fichier de résultat, ou la synthèse).", highlight=False)
    for note in summary["notes"]:
        console.print(f"[yellow]⚠ {note}[/]", highlight=False)
    console.print(f"Données : {summary['donnees']}", highlight=False)


@app.command()
@user_errors
def batch(
    sites: Annotated[Path, typer.Argument(
        help="Fichier des sites : CSV (; , ou tabulation, UTF-8 ou Windows), XLSX, GeoJSON ou "
        "GeoPackage (points).")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Résultat : .csv, .xlsx (avec une feuille « synthèse »), "
        ".geojson ou .gpkg. La synthèse est aussi écrite à côté (-synthese.csv et "
        "-synthese.json).")],
    feuille: Annotated[str | None, typer.Option(
        "--feuille", "--couche", help="Feuille du classeur XLSX, ou couche du "
        "GeoPackage (nom ou rang ; défaut : la première).")] = None,
    sep: Annotated[str, typer.Option(
        help="Séparateur du CSV écrit : « ; » (Excel français, virgule décimale) ou « , ».")]
    = ";",
    encoding: Annotated[str | None, typer.Option(
        help="Encodage du CSV lu (détecté sinon), ex. cp1252 ou utf-8.")] = None,
    geocoder: GeocoderOption = None,
    marge: MargeOption = None,
    precision_point: Annotated[float | None, typer.Option(
        "--precision-point", parser=positif, help="Incertitude (m) de la position des "
        "coordonnées données (défaut 10 m ; une adresse géocodée a celle de son type de "
        "position).")] = None,
    col_adresse: Annotated[str | None, typer.Option(help="Colonne de l'adresse.")] = None,
    col_code_postal: Annotated[str | None, typer.Option(help="Colonne du code postal.")] = None,
    col_commune: Annotated[str | None, typer.Option(help="Colonne de la commune.")] = None,
    col_lat: Annotated[str | None, typer.Option(help="Colonne de la latitude (WGS84).")] = None,
    col_lon: Annotated[str | None, typer.Option(help="Colonne de la longitude (WGS84).")]
    = None,
    col_x: Annotated[str | None, typer.Option(help="Colonne X Lambert-93.")] = None,
    col_y: Annotated[str | None, typer.Option(help="Colonne Y Lambert-93.")] = None,
    col_priorite: Annotated[str | None, typer.Option(help="Colonne de la priorité.")] = None,
    col_porteur: Annotated[str | None, typer.Option(help="Colonne du porteur.")] = None,
    col_action: Annotated[str | None, typer.Option(help="Colonne de l'action.")] = None,
    col_precision_point: Annotated[str | None, typer.Option(
        help="Colonne de l'incertitude (m) de la position des coordonnées de chaque ligne.")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Sans barre de progression ni tableaux.")] = False,
    _sheet: _SheetAlias = None,
    territoire: TerritoireOption = None,
    moteur: Annotated[str, typer.Option(
        "--moteur", parser=moteur_batch, metavar="<local|dask>",
        help="local (défaut) ; dask : fichiers nationaux CSV ou Parquet (ou dossier de "
        "parties) traités en partitions sur un cluster dask, "
        "sortie en dossier de parties (-o resultat.parquet ou resultat.csv).")] = "local",
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Avec --moteur dask : adresse d'un ordonnanceur existant "
        "(tcp://HOTE:8786) ; sinon un cluster local.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=256, help="Avec --moteur dask et un cluster local : nombre de "
        "processus.")] = 2,
    ligne_entete: LigneEnteteOption = None,
) -> None:
    """Valider tous les sites d'un appel à projets : chaque ligne ressort, dans le même ordre,
    avec son verdict (statut, QPV, distance au bord, motifs) ; rien n'est perdu.

    Codes de sortie : 0 tout est lu ; 1 des lignes lues n'ont pas été écrites ; 2 erreur
    (fichier, option) ; 3 fichier probablement mal lu (plus de la moitié des lignes
    irrégulières ou sans adresse lue : mauvaise ligne d'en-tête ou mauvais séparateur ; le
    résultat est écrit, et la commande le dit d'abord).

    Exemple : qpv-geo batch data/exemple_appel.csv -o resultat.xlsx ·
    qpv-geo batch sites.csv -o resultat.csv --col-adresse "Lieu de l'action"
    """
    from qpv_geo.batch import validate_file

    if sep not in (";", ",", "\t", "tab"):
        raise typer.BadParameter("choisissez « ; » ou « , » (ou tab).", param_hint="--sep")
    settings = get_settings().with_(marge_m=marge, precision_point_m=precision_point,
                                    territoire=territoire)
    overrides = {role: value for role, value in (
        ("adresse", col_adresse), ("code_postal", col_code_postal), ("commune", col_commune),
        ("lat", col_lat), ("lon", col_lon), ("x", col_x), ("y", col_y),
        ("priorite", col_priorite), ("porteur", col_porteur), ("action", col_action),
        ("precision_point", col_precision_point),
    ) if value is not None}
    if moteur == "dask":
        from qpv_geo.batch.national import validate_national

        national = validate_national(sites, output, settings=settings, scheduler=scheduler,
                                     workers=workers, mapping_overrides=overrides or None,
                                     sep="\t" if sep == "tab" else sep, input_sep=None,
                                     header_line=ligne_entete)
        from qpv_geo.eligibility.engine import SHORT

        for status, count in sorted(national.statuts.items()):
            console.print(f"  {count:>10} × {SHORT.get(status, status)}", highlight=False)
        console.print(f"[green]{national.lignes_lues} lignes lues, {national.lignes_ecrites} "
                      f"lignes écrites[/] en {national.parties} parties "
                      f"({national.duree_s:.1f} s)", highlight=False)
        for warning in national.synthese.get("avertissements_lecture", []):
            console.print(f"[bold yellow]⚠ {warning}[/]", highlight=False)
        console.print(f"Écrit : {national.sortie}", highlight=False)
        return
    result = validate_file(
        sites, output, settings=settings, geocoder_name=geocoder, sheet=feuille or _sheet,
        mapping_overrides=overrides or None, sep="\t" if sep == "tab" else sep,
        encoding=encoding, progress=not quiet,
        on_mapping=None if quiet else _print_mapping, header_line=ligne_entete)
    summary = result.summary
    if summary.get("fichier_mal_lu"):  # first: every figure below is doubtful
        err_console.print(f"[bold red]⚠ {summary['fichier_mal_lu']}.[/]", highlight=False)
    if not quiet:
        _print_batch_summary(summary, settings.territoire)
    lues, ecrites = summary["lignes_lues"], summary.get("lignes_ecrites", 0)
    style = "green" if lues == ecrites else "bold red"
    extra = (f" ({summary['lignes_vides_ignorees']} lignes vides ignorées)"
             if summary.get("lignes_vides_ignorees") else "")
    console.print(f"[{style}]{lues} lignes lues, {ecrites} lignes écrites[/]{extra}",
                  highlight=False)
    for warning in summary.get("avertissements_lecture", []):
        console.print(f"[bold yellow]⚠ {warning}[/]", highlight=False)
    from qpv_geo.batch.table import summary_line

    if summary_line(summary):
        console.print(f"[yellow]⚠ {summary_line(summary)}.[/]", highlight=False)
    for path in result.paths:
        console.print(f"Écrit : {path}", highlight=False)
    panne = summary.get("geocodage_interrompu")
    if panne:  # the file is written; the rows the service did not answer say so
        err_console.print(f"[bold red]Géocodage interrompu :[/] {panne}.", highlight=False)
    if lues != ecrites or panne:
        raise typer.Exit(1)
    if summary.get("fichier_mal_lu"):
        from qpv_geo.batch.table import EXIT_MAL_LU

        err_console.print(f"[bold red]Résultat écrit, mais le fichier semble mal lu (code "
                          f"{EXIT_MAL_LU}).[/] Indiquez la ligne des noms de colonnes "
                          "(--ligne-entete N) ou le séparateur, puis relancez.",
                          highlight=False)
        raise typer.Exit(EXIT_MAL_LU)
# --- end batch command ---


app.add_typer(registre_app, name="registre")


def main() -> None:
    """Entry point of the ``qpv-geo`` script."""
    app()
