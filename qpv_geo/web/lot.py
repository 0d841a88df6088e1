"""The file page (/lot): run the batch on an uploaded file and present its result to a person.

Pure Python (no FastAPI). The page shows what the CLI shows — the columns recognised (and lets
the person choose others, then re-run on the same file kept a short while on the server), the
counts by status, by QPV and by priority, the rows to review with porteur and address, the first
rows — as tables of words, never as Python structures. Errors speak of the person's own file
name and of the page's controls, never of command-line options.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from qpv_geo._files import scratch_dir
from qpv_geo._french import hors
from qpv_geo.batch import detect_columns, validate_file
from qpv_geo.batch.reading import check_xlsx, read_header
from qpv_geo.batch.table import summary_line
from qpv_geo.eligibility.engine import STATUSES, format_distance
from qpv_geo.eligibility.wording import Libelles, libelles
from qpv_geo.exceptions import InputFileError, QpvGeoError
from qpv_geo.geocoding.messages import names_a_command, pour_le_web, remplacer_pour_le_web

#: Rows of the validated file previewed on the page.
PREVIEW_ROWS = 20
#: Rows to review listed on the page (the file has them all).
REVIEW_ROWS = 50

#: Short status words of the tables (the colour comes with them, never alone).
STATUS_WORDS = {
    "eligible": "Éligible",
    "qva": "Non éligible — QVA",
    "hors_qpv": "Non éligible — hors QPV",
    "hors_territoire": "Non éligible — hors SEM",
    "a_verifier": "À vérifier",
    "non_geocode": "Non localisé",
}



def status_words(mots: Libelles | None = None) -> dict[str, str]:
    """:data:`STATUS_WORDS` in the territory's words (SEM's by default)."""
    if mots is None:
        return dict(STATUS_WORDS)
    if mots.france:
        return {**STATUS_WORDS, "eligible": "Dans un QPV 2024",
                "hors_territoire": "Non éligible — hors du territoire servi"}
    return {**STATUS_WORDS, "hors_territoire": f"Non éligible — {hors(mots.sigle)}"}


_MEDIA = {".csv": "text/csv; charset=utf-8",
          ".json": "application/json",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class LotColumnsError(InputFileError):
    """The file was read but its columns do not say where the sites are: the page shows the
    error *and* the column picker (``columns``, ``mapping``, ``source`` token)."""

    def __init__(self, message: str, hint: str | None, *, columns: list[str],
                 mapping: dict[str, str | None], source: str,
                 entete: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.columns = columns
        self.mapping = mapping
        self.source = source
        self.entete = entete


def header_choice(line: int, doubt: str, head: list[tuple[int, list[str]]],
                  chosen: bool = False) -> dict[str, Any]:
    """What the page shows to pick the header row: the line read as the header, why the guess
    is doubtful (empty: clear, the picker stays folded), and the first rows in words."""
    rows = []
    for n, cells in head:
        shown = " | ".join(c.strip() for c in cells if c.strip())
        rows.append((int(n), shown[:120] + ("…" if len(shown) > 120 else "")))
    return {"ligne": int(line), "doute": doubt, "lignes": rows, "choisie": chosen}


def user_file_name(filename: str, suffix: str) -> str:
    """The person's own file name, made safe for a temporary folder (no folders, no control
    characters), the extension kept."""
    name = Path(str(filename).replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    stem = Path(name).stem[:100].strip() or "fichier"
    return f"{stem}{suffix}"


def download_stem(filename: str) -> str:
    """Stem of the downloads: the person's file name, spaces as « _ », accents kept."""
    stem = Path(str(filename).replace("\\", "/")).stem
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE)[:80].strip("._")
    return stem or "fichier"


def web_hint(hint: str | None) -> str | None:
    """A hint of the library rewritten for the page (its controls, not CLI options)."""
    if not hint:
        return hint
    if "--col-" in hint:
        return ("Choisissez la bonne colonne dans « Colonnes du fichier » ci-dessous, puis "
                "cliquez sur « Relancer avec ces colonnes ».")
    if "--sheet" in hint or "--feuille" in hint or "--couche" in hint:
        return "Indiquez le nom ou le rang de la feuille dans le champ « Feuille », puis " \
               "déposez le fichier à nouveau."
    if "--encoding" in hint:
        return ("Dans le tableur, enregistrez le fichier en « CSV UTF-8 » (ou en XLSX), puis "
                "déposez-le à nouveau.")
    if names_a_command(remplacer_pour_le_web(hint)):
        return "Corrigez le fichier dans le tableur, puis déposez-le à nouveau."
    return pour_le_web(hint)


def validate_upload(services: Any, data: bytes | None, suffix: str, feuille: str | None,
                    filename: str, *, overrides: dict[str, str | None] | None = None,
                    source: str | None = None, header_line: int | None = None
                    ) -> dict[str, Any]:
    """Run the batch on an uploaded file (or on the one kept under ``source``) in a temporary
    folder deleted afterwards; keep the outputs and the source a short while for the links.
    ``header_line``: the header row the person picked (guessed otherwise)."""
    if source is not None:
        kept = services.sources.get(source, 0)
        if kept is None:
            raise InputFileError("Le fichier déposé n'est plus conservé sur le serveur "
                                 f"({services.results.retention_text()}).",
                                 hint="Déposez-le à nouveau.")
        filename, data, meta = kept
        suffix, _, feuille_kept = meta.partition("|")
        feuille = feuille if feuille is not None else (feuille_kept or None)
    if not data:
        raise InputFileError(f"{filename} est vide.", hint="Vérifiez le fichier choisi.")
    if source is None:
        source = services.sources.put([(filename, data, f"{suffix}|{feuille or ''}")])
    stem = download_stem(filename)
    with scratch_dir("qpv-geo-lot-") as tmp:  # removed even if the server is stopped mid-way
        src = Path(tmp) / user_file_name(filename, suffix)
        src.write_bytes(data)
        # Streamed: rows go through in chunks, the result is written as they come; only a
        # workbook small enough to be held comes back as a workbook (memory bounded by
        # design, whatever the 20 MB hold).
        out_suffix = ".xlsx" if suffix == ".xlsx" and _small_workbook(src, services) else ".csv"
        try:
            geocoder = services.geocoder()
        except QpvGeoError:
            geocoder = None  # coordinates-only files still work; batch says what is missing
        try:
            result = validate_file(src, Path(tmp) / f"{stem}-verdicts{out_suffix}",
                                   settings=services.settings, sheet=feuille,
                                   mapping_overrides=overrides, progress=False,
                                   geocoder=geocoder, header_line=header_line)
        except InputFileError as exc:
            try:
                columns, line, doubt, head = read_header(src, sheet=feuille,
                                                         settings=services.settings,
                                                         header_line=header_line)
            except QpvGeoError:
                columns, line, doubt, head = [], 1, "", []
            if not columns:  # keep the error's class: it sets the HTTP status (413, 422…)
                exc.hint = web_hint(exc.hint)
                raise
            try:
                guess = detect_columns(columns, overrides).as_dict()
            except QpvGeoError:
                guess = detect_columns(columns).as_dict()
            raise LotColumnsError(
                str(exc), web_hint(exc.hint), columns=columns, mapping=guess, source=source,
                entete=header_choice(line, doubt or "les colonnes lues ne disent pas où sont "
                                     "les sites", head, header_line is not None)) from None
        columns, line, doubt, head = read_header(src, sheet=feuille,
                                                 settings=services.settings,
                                                 header_line=header_line)
        files = [(Path(p).name, Path(p),
                  _MEDIA.get(Path(p).suffix.lower(), "application/octet-stream"))
                 for p in result.paths]
        token = services.results.put(files)  # copied from disk, never read whole
        sizes = [Path(p).stat().st_size for p in result.paths]
    summary = result.summary
    mapping = result.mapping
    shown = result.frame if len(result.frame) else result.head
    words = status_words(libelles(services.engine()))
    return {
        "token": token,
        "source": source,
        "nom": filename,
        "feuille": feuille or "",
        "files": [(i, name, size) for i, ((name, _, _), size) in
                  enumerate(zip(files, sizes, strict=True))],
        "columns": [str(c) for c in columns if not str(c).startswith("_")],
        "mapping": mapping.as_dict(),
        "tables": summary_tables(summary, words),
        "preview": preview(shown, mapping.as_dict(), words),
        "demo": services.engine().reference.demo or bool(summary.get("notes") and any(
            "DÉMONSTRATION" in n for n in summary["notes"])),
        "notes": list(summary.get("notes") or []),
        "entete": header_choice(line, doubt, head, header_line is not None),
        "mal_lu": str(summary.get("fichier_mal_lu") or ""),
        "hors_tableau": summary_line(summary),
        "rows": int(summary.get("total", 0)),
        "lues": int(summary.get("lignes_lues", 0)),
    }


#: A workbook up to this many rows comes back as a workbook; a bigger one as CSV (written
#: as it is validated, never held whole in memory).
XLSX_RESULT_ROWS = 50_000
XLSX_RESULT_CELLS = 1_000_000


def _small_workbook(path: Path, services: Any) -> bool:
    """True when the uploaded workbook's sheets hold at most :data:`XLSX_RESULT_ROWS` rows
    (counted on the zip stream; a workbook the guards refuse is left to the reader)."""
    try:
        facts = check_xlsx(path, services.settings)
    except QpvGeoError:
        return True  # the reader says why, in the same words
    return (max((f.rows for f in facts.values()), default=0) <= XLSX_RESULT_ROWS
            and max((f.cells for f in facts.values()), default=0) <= XLSX_RESULT_CELLS)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}".replace(".", ",")
    return str(value)


def summary_tables(summary: dict[str, Any],
                   words: dict[str, str] | None = None) -> dict[str, Any]:
    """The batch summary as the tables of the page (the same as the CLI's); ``words``: the
    status words (:func:`status_words`)."""
    words = words or STATUS_WORDS
    par_statut = summary.get("par_statut") or {}
    statuts = [(s, words.get(s, s), int(par_statut.get(s, 0))) for s in STATUSES
               if s in words]
    qpv = [(code, str(e.get("lib_qp") or ""), int(e.get("sites", 0)),
            int(e.get("eligibles", 0)))
           for code, e in (summary.get("par_qpv") or {}).items()]
    prio = [(str(e.get("label") or key), int(e.get("sites", 0)), int(e.get("eligibles", 0)))
            for key, e in (summary.get("par_priorite") or {}).items()]
    review = []
    for r in (summary.get("a_revoir") or [])[:REVIEW_ROWS]:
        review.append({
            "ligne": _cell(r.get("ligne")),
            "status": str(r.get("status") or ""),
            "statut": words.get(str(r.get("status")), str(r.get("status") or "")),
            "porteur": _cell(r.get("porteur")),
            "action": _cell(r.get("action")),
            "adresse": _cell(r.get("adresse")),
            "motifs": _cell(r.get("motifs")),
        })
    return {"statuts": statuts, "total": int(summary.get("total", 0)), "qpv": qpv,
            "priorites": prio, "a_revoir": review,
            "a_revoir_total": int(summary.get("a_revoir_total", len(review))),
            "marge": summary.get("marge_m")}


def preview(frame: Any, mapping: dict[str, str | None],
            words: dict[str, str] | None = None) -> dict[str, Any]:
    """The first rows: line, the person's identifying columns, then the verdict in words."""
    words = words or STATUS_WORDS
    keep: list[tuple[str, str]] = [("ligne", "Ligne")]
    for role in ("porteur", "action", "adresse", "commune"):
        col = mapping.get(role)
        if col and col in frame.columns and all(col != c for c, _ in keep):
            keep.append((col, col))
    if not any(mapping.get(r) for r in ("porteur", "action", "adresse")):
        for col in ("lat", "lon"):
            if col in frame.columns:
                keep.append((col, col))
    keep += [("status", "Verdict"), ("code_qp", "Code QPV"), ("lib_qp", "Quartier"),
             ("distance_bord_m", "Distance au bord"), ("motifs", "Motifs")]
    keep = [(c, label) for c, label in keep if c in frame.columns]
    rows = []
    head = frame.head(PREVIEW_ROWS)
    for rec in head[[c for c, _ in keep]].itertuples(index=False, name=None):
        row = []
        for (col, _), v in zip(keep, rec, strict=True):
            if col == "status":
                row.append({"status": str(v), "text": words.get(str(v), str(v))})
            elif col == "distance_bord_m":
                row.append({"text": format_distance(None if v is None else float(v))})
            else:
                row.append({"text": _cell(v)})
        rows.append(row)
    return {"columns": [label for _, label in keep], "rows": rows}


__all__ = [
    "STATUS_WORDS",
    "LotColumnsError",
    "download_stem",
    "preview",
    "status_words",
    "summary_tables",
    "user_file_name",
    "validate_upload",
    "web_hint",
]
