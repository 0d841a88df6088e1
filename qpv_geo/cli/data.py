"""The ``qpv-geo data`` commands: reference data versions, export, update, import, reset, and
the address file of the local geocoder (:data:`data_app`, which :mod:`qpv_geo.cli` adds as
``qpv-geo data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qpv_geo.cli.common import (
    TerritoireOption,
    console,
    get_settings,
    print_json,
    user_errors,
)

data_app = typer.Typer(help="Données de référence : versions, export, mise à jour, import.",
                       no_args_is_help=True, rich_markup_mode="rich")


@data_app.command("info")
@user_errors
def data_info(
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
    territoire: TerritoireOption = None,
) -> None:
    """Couches de référence, versions et provenance (exemple : qpv-geo data info)."""
    from rich.panel import Panel
    from rich.table import Table

    from qpv_geo.eligibility.wording import libelles, reference_from_settings

    ref = reference_from_settings(get_settings().with_(territoire=territoire))
    mots = libelles(ref)
    if as_json:
        if mots.profil.reference_propre:  # and the national layer of the other territories
            from qpv_geo.reference.territories import national_info

            print_json({**ref.version_dict(),
                        "qpv_france": national_info(get_settings()).as_dict()})
        else:
            print_json({"territoire": mots.nom, **ref.version_dict()})
        return
    if not mots.par_defaut:
        console.print(f"[bold]Territoire :[/] {mots.nom} ({len(ref.qpv)} QPV)", highlight=False)
    used = {"qpv": len(ref.qpv), "qpv_hors_sem": len(ref.qpv_hors_sem), "qva": len(ref.qva),
            "communes": len(ref.communes)}
    console.print("[bold]Données de référence[/]")
    for key, info in ref.layers.items():
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True, min_width=11)
        table.add_column(overflow="fold")
        count = f"{info.features}"
        if key in used and used[key] != info.features:
            count = (f"{used[key]} utilisés ({info.features} dans le fichier ; seuls "
                     "ceux hors de Saint-Étienne Métropole forment cette couche)"
                     if info.name == "qpv_hors_sem" else
                     f"{used[key]} utilisés ({info.features} dans le fichier)")
        table.add_row("Origine", str(info.origin))
        table.add_row("Objets", count)
        for label, value in (("Millésime", info.millesime), ("Précision", info.precision),
                             ("Source", info.source)):
            if value:
                table.add_row(label, str(value))
        if info.sha256:
            table.add_row("sha256", info.sha256[:16] + "…")
        console.print(Panel(table, title=f"[bold]{info.name}[/]", title_align="left"),
                      highlight=False)
    if mots.profil.reference_propre:  # else the national layer is its « qpv » above
        _print_national_panel()
    console.print(f"Version : {ref.version}", highlight=False)
    for note in ref.notes:
        console.print(f"[yellow]⚠ {note}[/]", highlight=False)


def _print_national_panel() -> None:
    """The national layer that serves the other territories, in ``data info``."""
    from rich.panel import Panel
    from rich.table import Table

    from qpv_geo.reference.territories import national_info

    nat = national_info(get_settings())
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True, min_width=11)
    table.add_column(overflow="fold")
    table.add_row("Sert", "les territoires autres que SEM (--territoire)")
    kind = ("fichier officiel vérifié" if nat.official else "copie simplifiée"
            if nat.simplified else "non vérifiée comme fichier officiel")
    table.add_row("Origine", f"{nat.origin} ({kind})")
    table.add_row("Objets", str(nat.features))
    for label, value in (("Millésime", nat.millesime), ("Précision", nat.precision),
                         ("Source", nat.source)):
        if value:
            table.add_row(label, str(value))
    if nat.sha256:
        table.add_row("sha256", nat.sha256[:16] + "…")
    console.print(Panel(table, title="[bold]qpv_france[/]", title_align="left"),
                  highlight=False)


@data_app.command("export")
@user_errors
def data_export(
    layer: Annotated[str, typer.Option("--layer", help="qpv, qva, communes ou qpv_hors_sem.")],
    output: Annotated[Path, typer.Option("-o", "--output",
                                         help="Fichier .geojson, .gpkg ou .shp.")],
    territoire: TerritoireOption = None,
) -> None:
    """Écrire une couche pour QGIS (exemple : qpv-geo data export --layer qpv -o qpv.gpkg)."""
    import warnings

    from qpv_geo.eligibility.wording import reference_from_settings
    from qpv_geo.reference.install import export_layer

    reference = reference_from_settings(get_settings().with_(territoire=territoire))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = export_layer(reference, layer, output)
    console.print(f"Couche « {layer} » écrite dans {path}", highlight=False)
    if caught and path.suffix.lower() == ".shp":
        console.print("[yellow]⚠ Shapefile : les noms de champs sont coupés à 10 caractères "
                      "(« avertissement » devient « avertissem »). Le GeoPackage (.gpkg) "
                      "garde les noms entiers.[/]", highlight=False)


@data_app.command("import")
@user_errors
def data_import(
    fichier: Annotated[Path, typer.Argument(help="GeoJSON, Shapefile ou GeoPackage.")],
    layer: Annotated[str, typer.Option("--layer", help="qpv, qva ou communes.")] = "qpv",
    champ_code: Annotated[str | None, typer.Option(help="Champ du code du quartier.")] = None,
    champ_nom: Annotated[str | None, typer.Option(help="Champ du nom du quartier.")] = None,
    millesime: Annotated[str, typer.Option(help="Millésime / édition du fichier.")] = "",
) -> None:
    """Installer une couche depuis un fichier local (exemple : les périmètres QVA de SEM :
    qpv-geo data import qva_sem.gpkg --layer qva)."""
    from qpv_geo.reference.install import import_layer

    info = import_layer(fichier, layer, get_settings(), champ_code=champ_code,
                        champ_nom=champ_nom, millesime=millesime)
    from qpv_geo.eligibility.wording import pluriel

    console.print(f"Couche « {layer} » installée : {pluriel(info.features, 'périmètre')}, sha256 "
                  f"{(info.sha256 or '')[:16]}… ({info.path})")
    if layer == "qpv":
        _print_national(info)
    if info.demo:
        console.print("[yellow]⚠ Codes « QD… » : périmètres de démonstration, signalés comme "
                      "tels sur chaque sortie.[/]")


@data_app.command("update")
@user_errors
def data_update(
    url: Annotated[str | None, typer.Option(
        help="URL du fichier national des QPV (avec --communes : adresse du service).")] = None,
    sha256: Annotated[str | None, typer.Option(
        help="sha256 attendu du GeoJSON (par défaut celui de la provenance).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify",
                                            help="Ne pas vérifier la somme de contrôle.")] = False,
    adresses: Annotated[bool, typer.Option(
        "--adresses", help="Mettre à jour le fichier d'adresses BAN de la Loire (géocodeur "
        "local) au lieu des périmètres.")] = False,
    communes: Annotated[bool, typer.Option(
        "--communes", help="Installer les contours des communes d'un territoire autre que SEM "
        "(--territoire : EPCI, commune ou france) depuis geo.api.gouv.fr : le fond de ses "
        "cartes (contours simplifiés).")] = False,
    territoire: TerritoireOption = None,
) -> None:
    """Télécharger les données officielles (exemple : qpv-geo data update ; qpv-geo data
    update --adresses ; qpv-geo data update --communes --territoire 200046977)."""
    settings = get_settings()
    if communes:
        _update_communes(settings, territoire, url)
        return
    if adresses:
        from qpv_geo.geocoding import update_adresses_cli

        console.print(update_adresses_cli(settings))
        return
    from qpv_geo.reference.install import update_qpv

    with console.status("Téléchargement du fichier officiel des QPV…"):
        info = update_qpv(settings, url=url, sha256=sha256, verify=not no_verify)
    if info.official:
        console.print(f"Périmètres officiels installés : {info.features} QPV (SEM et voisins), "
                      f"sha256 {(info.sha256 or '')[:16]}…. Les sorties les disent "
                      "officiels (la mention « empreinte non vérifiable » disparaît).")
    else:
        console.print(f"Périmètres installés sans vérification : {info.features} QPV (SEM et "
                      "voisins). Les sorties le signalent (« non vérifiés comme fichier "
                      "officiel »).", highlight=False)
    _print_national(info)


def _update_communes(settings: Any, territoire: str | None, url: str | None) -> None:
    """``data update --communes``: the commune outlines of a territory other than SEM."""
    from qpv_geo.eligibility.wording import pluriel
    from qpv_geo.exceptions import SettingsError
    from qpv_geo.reference.commune_outlines import GEO_API_URL, install_outlines
    from qpv_geo.reference.territories import resolve_territoire

    terr = resolve_territoire(territoire or settings.territoire)
    if terr.profil.communes:
        raise SettingsError(f"{terr.nom} a déjà ses contours des communes (embarqués).",
                            hint="Donnez un autre territoire avec --territoire (SIREN d'EPCI, "
                            "code INSEE ou france).")
    with console.status("Téléchargement des contours des communes…"):
        info = install_outlines(terr, settings, base_url=url or GEO_API_URL)
    last = next(r for r in _info_downloads(info) if r["territoire"] == terr.code)
    console.print(f"Contours des communes installés pour {terr.nom} : "
                  f"{pluriel(last['communes'], 'commune')} (couche {info.name} : "
                  f"{info.features} contours en tout), sha256 {(info.sha256 or '')[:16]}…. "
                  "Contours simplifiés (geo.api.gouv.fr, Licence Ouverte) : ils servent de fond "
                  "aux cartes, jamais à un verdict.", highlight=False)


def _info_downloads(info: Any) -> list[dict[str, Any]]:
    """The downloads recorded in the manifest entry of the outlines layer."""
    import json

    assert info.path is not None
    manifest = json.loads((info.path.parent / "manifest.json").read_text(encoding="utf-8"))
    return manifest["layers"][info.name].get("telechargements", [])


def _print_national(info: Any) -> None:
    """Say whether the national layer was installed with SEM's (``data update``/``import``)."""
    from qpv_geo.reference.territories import national_info

    nat = national_info(get_settings())
    if nat.origin == "installée" and nat.installed_at == info.installed_at:
        n = f"{nat.features:,}".replace(",", "\u202f")
        console.print(f"Couche nationale installée : {n} QPV de toute la France "
                      f"({'fichier officiel vérifié' if nat.official else 'non vérifiée'}) : "
                      "elle sert les autres territoires (--territoire) à la place de la copie "
                      "simplifiée embarquée.", highlight=False)
    else:
        console.print("Le fichier ne contient pas tous les QPV de France : la couche nationale "
                      "n'est pas installée (hors SEM, "
                      + ("la couche nationale installée précédemment sert encore)."
                         if nat.origin == "installée" else
                         "la copie simplifiée embarquée sert encore)."), highlight=False)


@data_app.command("reset")
@user_errors
def data_reset(
    layer: Annotated[str, typer.Option("--layer", help="qpv (avec la couche nationale "
                                       "installée avec elle), qpv_france, qva, communes ou "
                                       "communes_contours.")],
) -> None:
    """Oublier une couche installée et revenir aux données embarquées
    (exemple : qpv-geo data reset --layer qva)."""
    from qpv_geo.reference.install import remove_installed

    if remove_installed(layer, get_settings()):
        if layer == "communes_contours":
            console.print("Contours des communes installés supprimés : les cartes des "
                          "territoires autres que SEM n'ont plus de fond.")
            return
        extra = " (et la couche nationale installée avec elle)" if layer == "qpv" else ""
        console.print(f"Couche « {layer} » installée supprimée{extra} : les données embarquées "
                      "servent.")
    else:
        console.print(f"Aucune couche « {layer} » installée.")


@data_app.command("import-adresses")
@user_errors
def data_import_adresses(
    fichier: Annotated[Path, typer.Argument(
        help="Fichier BAN « adresses » (csv ou csv.gz, séparateur ;), ex. adresses-42.csv.gz.")],
) -> None:
    """Installer un fichier d'adresses BAN pour le géocodeur local (communes de SEM seulement).

    Exemple : qpv-geo data import-adresses adresses-42.csv.gz
    """
    from qpv_geo.geocoding import install_adresses

    with console.status("Installation du fichier d'adresses…"):
        info = install_adresses(fichier, get_settings())
    console.print(f"Fichier d'adresses installé : {info['rows']} adresses des communes de "
                  f"Saint-Étienne Métropole (sur {info['rows_source']} lues), sha256 "
                  f"{info['sha256'][:16]}…. Le géocodeur local l'utilise désormais.")
