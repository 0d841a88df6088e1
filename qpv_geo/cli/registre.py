"""``qpv-geo registre …``: the instruction register on the command line (a thin shell over
:mod:`qpv_geo.register`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qpv_geo._files import write_text_atomic
from qpv_geo.cli.common import console, get_settings, print_json, user_errors

registre_app = typer.Typer(
    help="Registre d'instruction : sites des dossiers, décisions, critères de l'appel, "
    "historique, revérification après un changement de données, exports et fiches.",
    no_args_is_help=True)

RegistreOpt = Annotated[Path | None, typer.Option(
    "--registre", help="Fichier du registre (défaut : registre.sqlite dans le dossier des "
    "données, QPV_GEO_DATA_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Sortie JSON (pour un script).")]
LotSiteOpt = Annotated[str | None, typer.Option(
    "--lot", help="Lot du site (utile seulement si un autre lot a un site de même "
    "identifiant).")]
DossierSiteOpt = Annotated[str | None, typer.Option(
    "--dossier", help="Dossier du site (utile seulement si un autre dossier du lot a un site "
    "de même identifiant).")]


def _open(registre: Path | None, **settings: Any) -> Any:
    from qpv_geo.register import Registre

    return Registre(registre, settings=get_settings().with_(**settings))


_ETAT_STYLE = {"ok": "green", "bloquant": "bold red", "a_verifier": "yellow"}


def _print_diff(diff: Any) -> None:
    lot = f" « {diff.lot} »" if diff.lot else ""
    if diff.avant is None:
        console.print(f"Premier import du lot{lot} : {len(diff.nouveaux)} sites ajoutés.",
                      highlight=False)
        return
    if diff.vide:
        console.print(f"Lot{lot} : aucun changement entre l'import n° {diff.avant} et l'import "
                      f"n° {diff.apres}.", highlight=False)
        return
    table = Table(title=f"Changements du lot{lot} : import n° {diff.avant} → n° {diff.apres}")
    for col in ("changement", "site", "dossier", "avant", "après"):
        table.add_column(col, overflow="fold")
    for it in diff.nouveaux:
        table.add_row("[green]nouveau[/]", it["site_id"], it["dossier"], "", it["verdict"])
    for it in diff.retires:
        table.add_row("[red]retiré[/]", it["site_id"], it["dossier"], it["verdict"], "")
    for it in diff.deplaces:
        table.add_row("[yellow]lieu modifié[/]", it["site_id"], it["dossier"], it["avant"],
                      it["apres"])
    for it in diff.verdicts_changes:
        table.add_row("[bold yellow]verdict changé[/]", it["site_id"], it["dossier"],
                      it["avant"], it["apres"] + (f" — pourquoi : {it['pourquoi']}"
                                                  if it.get("pourquoi") else ""))
    console.print(table)


@registre_app.command("ajouter")
@user_errors
def ajouter(
    fichier: Annotated[Path, typer.Argument(help="Fichier des sites (CSV, XLSX, GeoJSON).")],
    lot: Annotated[str, typer.Option(
        help="Lot : les versions successives d'un même fichier (le diff compare au dernier "
        "import du lot).")] = "principal",
    auteur: Annotated[str | None, typer.Option(help="Qui importe (journal).")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", "--feuille",
                                              help="Feuille du classeur XLSX.")] = None,
    geocoder: Annotated[str | None, typer.Option(help="Géocodeur : local ou ban.")] = None,
    marge: Annotated[float | None, typer.Option(help="Marge (m) « à vérifier ».")] = None,
    annee: Annotated[int | None, typer.Option(
        help="Année de l'appel (défaut : QPV_GEO_ANNEE_APPEL, sinon l'année en cours).")]
    = None,
    sans_annuaire: Annotated[bool, typer.Option(
        "--sans-annuaire", help="Ne pas consulter l'annuaire des entreprises (catégorie du "
        "porteur « à vérifier » sauf colonne de statut).")] = False,
    col_dossier: Annotated[str | None, typer.Option(help="Colonne du n° de dossier.")] = None,
    col_site: Annotated[str | None, typer.Option(help="Colonne de l'identifiant du site.")]
    = None,
    col_siret: Annotated[str | None, typer.Option(help="Colonne du SIRET/SIREN.")] = None,
    col_statut: Annotated[str | None, typer.Option(help="Colonne du statut juridique.")]
    = None,
    col_debut: Annotated[str | None, typer.Option(help="Colonne de la date de début.")] = None,
    col_fin: Annotated[str | None, typer.Option(help="Colonne de la date de fin.")] = None,
    col_bilan: Annotated[str | None, typer.Option(help="Colonne « bilan N-1 fourni ».")]
    = None,
    col_adresse: Annotated[str | None, typer.Option(help="Colonne de l'adresse.")] = None,
    col_lat: Annotated[str | None, typer.Option(help="Colonne de la latitude.")] = None,
    col_lon: Annotated[str | None, typer.Option(help="Colonne de la longitude.")] = None,
    col_porteur: Annotated[str | None, typer.Option(help="Colonne du porteur.")] = None,
    col_action: Annotated[str | None, typer.Option(help="Colonne de l'action.")] = None,
    ligne_entete: Annotated[int | None, typer.Option(
        "--ligne-entete", min=1, metavar="N", help="Ligne des noms de colonnes (1 = la "
        "première), si celle trouvée n'est pas la bonne.")] = None,
    forcer: Annotated[bool, typer.Option(
        "--forcer", help="Importer même si le fichier semble mal lu (plus de la moitié des "
        "lignes irrégulières ou sans adresse lue).")] = False,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Importer un fichier de sites dans le registre : chaque ligne devient un site de son
    dossier, avec son verdict et tout ce qui l'a produit ; affiche ce qui a changé depuis
    l'import précédent du lot.

    Exemple : qpv-geo registre ajouter appel_2026.xlsx --auteur « A. Martin » ·
    qpv-geo registre ajouter appel_corrige.csv --col-dossier « Réf. »
    """
    batch_cols = {k: v for k, v in (("adresse", col_adresse), ("lat", col_lat),
                                    ("lon", col_lon), ("porteur", col_porteur),
                                    ("action", col_action)) if v is not None}
    reg_cols = {k: v for k, v in (("dossier", col_dossier), ("site", col_site),
                                  ("siret", col_siret), ("statut", col_statut),
                                  ("debut", col_debut), ("fin", col_fin),
                                  ("bilan", col_bilan)) if v is not None}
    with _open(registre, marge_m=marge, geocoder=geocoder, annee_appel=annee) as reg:
        res = reg.importer(fichier, lot=lot, auteur=auteur, colonnes=batch_cols or None,
                           colonnes_registre=reg_cols or None, sheet=sheet,
                           annuaire=not sans_annuaire, header_line=ligne_entete,
                           forcer=forcer)
    if json_out:
        print_json(res.to_dict())
        return
    console.print(f"[bold]Import n° {res.import_id}[/] (lot « {res.lot} ») : {res.sites} "
                  f"sites enregistrés dans {reg.path}", highlight=False)
    cols = ", ".join(f"{k} = « {v} »" for k, v in res.colonnes["registre"].items() if v)
    console.print(f"Colonnes du registre : {cols or 'aucune'}", highlight=False)
    from qpv_geo.eligibility.engine import STATUS_LABELS

    for status, count in res.par_statut.items():
        console.print(f"  {count:>6} × {STATUS_LABELS.get(status, status)}", highlight=False)
    _print_diff(res.diff)
    console.print(f"[yellow]{res.a_revoir} site(s) à revoir[/] : qpv-geo registre liste "
                  "--a-revoir", highlight=False)


@registre_app.command("liste")
@user_errors
def liste(
    a_revoir: Annotated[bool, typer.Option("--a-revoir", help="Seulement les sites à revoir "
                                           "(« à vérifier » sans décision, décision à revoir).")]
    = False,
    retires: Annotated[bool, typer.Option("--retires", help="Inclure les sites retirés.")]
    = False,
    en_attente: Annotated[bool, typer.Option(
        "--en-attente", help="Seulement les sites en attente du porteur.")] = False,
    lot: Annotated[str | None, typer.Option(help="Seulement ce lot.")] = None,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lister les sites du registre : lot, verdict calculé, décision (heure de Paris),
    verdict retenu.

    Exemple : qpv-geo registre liste --a-revoir
    """
    with _open(registre) as reg:
        sites = reg.sites(lot=lot, a_revoir=a_revoir, retires=retires, en_attente=en_attente)
    if json_out:
        print_json([s.to_dict() for s in sites])
        return
    table = Table(title=f"{len(sites)} site(s)" + (" à revoir" if a_revoir else "")
                  + (" en attente du porteur" if en_attente else ""))
    for col in ("lot", "site", "dossier", "lieu", "calculé", "décision", "retenu"):
        table.add_column(col, overflow="fold")
    for s in sites:
        v = s.verdict
        calc = v["statut_libelle"] + (f" ({v['code_qp']})" if v["code_qp"] else "")
        dec = (f"{s.decision['libelle']} — {s.decision['auteur']}, "
               f"{s.decision['date_paris']}" if s.decision else "")
        if s.decision_a_revoir:
            dec += f" [yellow](à revoir : {s.decision_a_revoir})[/]"
        retenu = s.final_libelle + (" — import annulé" if s.import_annule else
                                    "" if s.present else " — retiré")
        table.add_row(s.lot, s.site_id, s.dossier, s.lieu, calc, dec, retenu)
    console.print(table)


@registre_app.command("decider")
@user_errors
def decider(
    site: Annotated[str, typer.Argument(help="Identifiant du site (colonne « site »).")],
    decision: Annotated[str, typer.Option(
        help="« éligible », « non éligible » ou « en attente » (du porteur).")],
    motif: Annotated[str, typer.Option(
        help="Pourquoi (obligatoire) ; pour « en attente » : ce qui a été demandé au "
        "porteur.")],
    auteur: Annotated[str, typer.Option(help="Votre nom (obligatoire).")],
    lot: LotSiteOpt = None,
    dossier: DossierSiteOpt = None,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Enregistrer la décision d'un instructeur sur un site ; le verdict calculé est gardé.
    « en attente » met le site en attente du porteur (le motif dit ce qui lui a été demandé).

    Exemple : qpv-geo registre decider CE26-014 --decision éligible --motif « entrée du local
    côté quartier, vérifiée sur place » --auteur « A. Martin » ·
    qpv-geo registre decider CE26-021 --decision « en attente » --motif « plan du local »
    --auteur « A. Martin »
    """
    with _open(registre) as reg:
        d = reg.decider(site, decision, motif, auteur, lot=lot, dossier=dossier)
    if json_out:
        print_json(d)
        return
    quoi = (f"en attente du porteur (demandé : {d['motif']})" if d["decision"] == "en_attente"
            else d["libelle"])
    console.print(f"[green]Décision enregistrée[/] pour le site {site} (lot « {d['lot']} », "
                  f"dossier {d['dossier']}) : {quoi} ({d['auteur']}, {d['date_paris']}).",
                  highlight=False)


@registre_app.command("bilan")
@user_errors
def bilan(
    dossier: Annotated[str, typer.Argument(help="N° du dossier.")],
    auteur: Annotated[str, typer.Option(help="Votre nom (obligatoire).")],
    fourni: Annotated[bool, typer.Option("--fourni/--non-fourni",
                                         help="Les bilans N-1 ont-ils été reçus ?")] = True,
    motif: Annotated[str | None, typer.Option(help="Précision (facultatif).")] = None,
    lot: Annotated[str | None, typer.Option(
        "--lot", help="Lot du dossier (utile seulement si un autre lot a le même n°).")]
    = None,
    registre: RegistreOpt = None,
) -> None:
    """Noter au registre que les bilans N-1 d'un dossier ont (ou n'ont pas) été fournis.

    Exemple : qpv-geo registre bilan CE26-021 --fourni --auteur « A. Martin »
    """
    with _open(registre) as reg:
        reg.marquer_bilan(dossier, fourni, auteur, motif, lot=lot)
    console.print(f"Bilans N-1 du dossier {dossier} : {'fournis' if fourni else 'non fournis'}"
                  f" ({auteur}).", highlight=False)


@registre_app.command("dossiers")
@user_errors
def dossiers(
    bloques: Annotated[bool, typer.Option("--bloques", help="Seulement les dossiers bloqués "
                                          "ou à vérifier.")] = False,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Les critères de l'appel par dossier (lieu, porteur, période, bilans) et ce qui bloque.

    Exemple : qpv-geo registre dossiers --bloques
    """
    from qpv_geo.register import ETATS

    with _open(registre) as reg:
        ds = reg.dossiers()
    if bloques:
        ds = [d for d in ds if d.etat != "ok"]
    if json_out:
        print_json([d.to_dict() for d in ds])
        return
    table = Table(title=f"{len(ds)} dossier(s)")
    for col in ("lot", "dossier", "porteur", "état", "lieu", "porteur éligible", "période",
                "bilans"):
        table.add_column(col, overflow="fold")
    for d in ds:
        cells = []
        for name in ("lieu", "porteur", "periode", "bilan"):
            c = next((c for c in d.criteres if c.critere == name), None)
            cells.append("" if c is None else
                         f"[{_ETAT_STYLE[c.etat]}]{ETATS[c.etat]}[/] {c.motif}")
        table.add_row(d.lot, d.dossier, d.porteur or "",
                      f"[{_ETAT_STYLE[d.etat]}]{ETATS[d.etat]}[/]", *cells)
    console.print(table)


@registre_app.command("historique")
@user_errors
def historique(
    site: Annotated[str, typer.Argument(help="Identifiant du site.")],
    lot: LotSiteOpt = None,
    dossier: DossierSiteOpt = None,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Tout ce qui est arrivé à un site : imports, lieux, verdicts (et pourquoi), décisions,
    retrait, imports annulés.

    Exemple : qpv-geo registre historique CE26-014
    """
    with _open(registre) as reg:
        s = reg.site(site, lot=lot, dossier=dossier)
        events = reg.historique(site, lot=s.lot, dossier=s.dossier)
    if json_out:
        print_json(events)
        return
    table = Table(title=f"Historique du site {site} (lot « {s.lot} », dossier {s.dossier})")
    table.add_column("date (heure de Paris)")
    table.add_column("événement", overflow="fold")
    for e in events:
        table.add_row(e["date_paris"], e["texte"])
    console.print(table)


@registre_app.command("imports")
@user_errors
def imports(registre: RegistreOpt = None, json_out: JsonOpt = False) -> None:
    """Les imports du registre (n°, lot, fichier, date, données).

    Exemple : qpv-geo registre imports
    """
    with _open(registre) as reg:
        rows = reg.imports()
    if json_out:
        print_json(rows)
        return
    from qpv_geo.register.statements import heure_paris

    table = Table(title=f"{len(rows)} import(s)")
    for col in ("n°", "lot", "date (heure de Paris)", "fichier", "lignes", "par", "données",
                "annulé"):
        table.add_column(col, overflow="fold")
    for r in rows:
        a = r["annulation"]
        table.add_row(str(r["id"]), r["lot"], heure_paris(r["date"]), r["fichier"],
                      str(r["lignes"]), r["auteur"] or "", r["donnees_version"],
                      f"[red]annulé[/] par {a['auteur']} le {heure_paris(a['date'])} : "
                      f"{a['motif']}" if a else "")
    console.print(table)


@registre_app.command("annuler-import")
@user_errors
def annuler_import(
    numero: Annotated[int, typer.Argument(help="N° de l'import à annuler (registre imports).")],
    auteur: Annotated[str, typer.Option(help="Votre nom (obligatoire).")],
    motif: Annotated[str, typer.Option(help="Pourquoi l'import est annulé (obligatoire).")],
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Annuler l'import n° k (mauvais fichier, mauvais lot) : ses sites quittent les listes
    courantes — l'import précédent du lot, s'il y en a un, redevient le courant. Rien n'est
    effacé : l'import et son annulation restent dans l'historique.

    Exemple : qpv-geo registre annuler-import 3 --auteur « A. Martin » --motif « fichier du
    mauvais appel »
    """
    from qpv_geo.register.statements import heure_paris

    with _open(registre) as reg:
        a = reg.annuler_import(numero, auteur=auteur, motif=motif)
    if json_out:
        print_json(a.to_dict())
        return
    if not a.etait_courant:
        suite = (f"ce n'était pas l'import courant du lot (le n° {a.import_courant} le reste)"
                 if a.import_courant is not None else "le lot n'a pas d'import courant")
    elif a.import_courant is not None:
        suite = (f"ses sites quittent les listes courantes ; l'import n° {a.import_courant} "
                 "est de nouveau le courant du lot")
    else:
        suite = "ses sites quittent les listes courantes ; le lot n'a plus d'import courant"
    console.print(f"[green]Import n° {a.import_id} annulé[/] ({a.fichier}, lot « {a.lot} », "
                  f"{a.sites} site(s)) par {a.auteur} le {heure_paris(a.date)} : {a.motif}. "
                  f"{suite[0].upper()}{suite[1:]}.", highlight=False)



@registre_app.command("diff")
@user_errors
def diff(
    avant: Annotated[int | None, typer.Argument(help="N° de l'import de départ.")] = None,
    apres: Annotated[int | None, typer.Argument(help="N° de l'import d'arrivée.")] = None,
    lot: Annotated[str, typer.Option(help="Lot (sans n° : ses deux derniers imports ; avec "
                                          "n° : celui des imports).")]
    = "principal",
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Exporter le diff (.xlsx ou .csv).")]
    = None,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ce qui a changé entre deux imports : sites nouveaux, retirés, déplacés, verdicts changés.

    Exemple : qpv-geo registre diff · qpv-geo registre diff 1 2 -o diff.xlsx
    """
    from qpv_geo.register.exports import export_diff

    if avant is not None and apres is None:
        raise typer.BadParameter("indiquez deux n° d'import (ou aucun).", param_hint="APRES")
    with _open(registre) as reg:
        d = reg.diff(avant, apres, lot=lot)
    if output is not None:
        console.print(f"Écrit : {export_diff(d, output)}", highlight=False)
    if json_out:
        print_json(d.to_dict())
    else:
        _print_diff(d)


@registre_app.command("reverifier")
@user_errors
def reverifier(
    regeocoder: Annotated[bool, typer.Option(
        "--regeocoder", help="Géocoder de nouveau les adresses (sinon chaque site garde le "
        "point enregistré et il est seulement rejugé).")] = False,
    geocoder: Annotated[str | None, typer.Option(
        help="Géocodeur (local ou ban) pour --regeocoder.")] = None,
    marge: Annotated[float | None, typer.Option(help="Marge (m) « à vérifier ».")] = None,
    auteur: Annotated[str | None, typer.Option(help="Qui lance la revérification.")] = None,
    registre: RegistreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rejuger tous les sites après un changement de données (data update / data import, autre
    marge) : chaque site garde son point et son géocodage enregistrés et il est jugé de
    nouveau ; liste les verdicts changés et leur cause, et signale les décisions à revoir.
    Avec --regeocoder, les adresses sont géocodées de nouveau ; un site dont le géocodage
    échoue (service indisponible) garde son verdict.

    Exemple : qpv-geo data import qpv_2025.geojson --couche qpv && qpv-geo registre reverifier
    """
    with _open(registre, marge_m=marge, geocoder=geocoder) as reg:
        rv = reg.reverifier(auteur=auteur, regeocoder=regeocoder)
    if json_out:
        print_json(rv.to_dict())
        return
    console.print(f"Revérification n° {rv.verification_id} : {rv.sites} sites rejugés, "
                  f"{len(rv.changements)} verdict(s) changé(s).", highlight=False)
    if rv.non_reverifies:
        console.print(f"[yellow]{len(rv.non_reverifies)} site(s) non revérifié(s) (service "
                      "indisponible)[/] : leur verdict est gardé — "
                      + ", ".join(f"{x['site_id']} (lot « {x['lot']} »)"
                                  for x in rv.non_reverifies[:20])
                      + (" …" if len(rv.non_reverifies) > 20 else ""), highlight=False)
    if rv.changements:
        table = Table()
        for col in ("lot", "site", "avant", "après", "pourquoi", "décision"):
            table.add_column(col, overflow="fold")
        for c in rv.changements:
            dec = ""
            if c.decision:
                dec = (f"{c.decision['libelle']} ({c.decision['auteur']})"
                       + (" [bold yellow]À REVOIR[/]" if c.decision_a_revoir else ""))
            table.add_row(c.lot or "", c.site_id, c.avant["libelle"], c.apres["libelle"],
                          " ; ".join(c.pourquoi), dec)
        console.print(table)


@registre_app.command("exporter")
@user_errors
def exporter(
    output: Annotated[Path, typer.Argument(help="Fichier .xlsx (feuilles sites et dossiers) "
                                           "ou .csv (et <nom>-dossiers.csv).")],
    retires: Annotated[bool, typer.Option("--retires", help="Inclure les sites retirés.")]
    = False,
    registre: RegistreOpt = None,
) -> None:
    """Exporter le registre : verdict calculé, décision, lequel est retenu et qui a décidé,
    version des données, critères bloquants du dossier.

    Exemple : qpv-geo registre exporter registre.xlsx
    """
    from qpv_geo.register.exports import export_registre

    with _open(registre) as reg:
        path = export_registre(reg, output, retires=retires)
    console.print(f"Écrit : {path}", highlight=False)


@registre_app.command("fiche")
@user_errors
def fiche(
    site: Annotated[str, typer.Argument(help="Identifiant du site.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Fiche .pdf ou .html.")],
    lot: LotSiteOpt = None,
    dossier: DossierSiteOpt = None,
    registre: RegistreOpt = None,
) -> None:
    """Écrire la fiche d'instruction datée d'un site (PDF ou HTML) : lieu, verdict et motifs,
    carte, versions des données, décision. Une fiche de preuve, pas une attestation.

    Exemple : qpv-geo registre fiche CE26-014 -o CE26-014.pdf
    """
    from qpv_geo.register.fiche import write_fiche

    with _open(registre) as reg:
        path = write_fiche(reg, site, output, lot=lot, dossier=dossier)
    console.print(f"Écrit : {path}", highlight=False)


@registre_app.command("compte")
@user_errors
def compte(
    nom: Annotated[str, typer.Argument(help="Nom de l'instructeur (signe ses décisions).")],
    fichier: Annotated[Path | None, typer.Option(
        help="Fichier des comptes où ajouter la ligne (sinon elle est affichée).")] = None,
) -> None:
    """Créer un compte pour les pages web du registre : demande le mot de passe, écrit la
    ligne « nom:empreinte » (PBKDF2, jamais le mot de passe) ; le serveur lit le fichier
    indiqué par QPV_GEO_REGISTRE_COMPTES.

    Exemple : qpv-geo registre compte « Ana Martin » --fichier comptes.txt
    """
    from qpv_geo.register.accounts import compte_line

    password = typer.prompt("Mot de passe", hide_input=True, confirmation_prompt=True)
    line = compte_line(nom, password)
    if fichier is None:
        typer.echo(line)
        return
    old = fichier.read_text(encoding="utf-8") if fichier.exists() else ""
    kept = [x for x in old.splitlines() if x.rpartition(":")[0].strip() != nom.strip()]
    write_text_atomic(fichier, "\n".join([*kept, line]) + "\n")
    console.print(f"Compte « {nom} » écrit dans {fichier} ; lancez le serveur avec "
                  f"QPV_GEO_REGISTRE_COMPTES={fichier}.", highlight=False)
