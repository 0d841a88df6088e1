"""Geocoding and judging the rows, chunk by chunk, with the run's summary; one call from a file
in to a file out (:func:`validate_file`), and reading a batch output back."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpv_geo._files import AtomicOutputs, check_output_path, os_error_message, utf8_path
from qpv_geo._french import nombre
from qpv_geo.batch.cancel import check_cancelled
from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    NUMERIC_COLUMNS,
    OUTPUT_COLUMNS,
    PROBLEM_COLUMN,
    VALIDATED_MARKERS,
    VERDICT_OUTPUT_COLUMNS,
    CellTexts,
    ColumnMapping,
    column_text,
    detect_columns,
    parse_numbers,
)
from qpv_geo.batch.priorities import label_of, normalize_priorite
from qpv_geo.batch.reading import mapping_for, open_source, source_frames, xlsx_is_safe
from qpv_geo.batch.table import (
    HORS_TABLEAU,
    HORS_TABLEAU_LABEL,
    HORS_TABLEAU_MOTIF,
    Duplicates,
    file_reason_rows,
    is_duplicate,
    mostly_unreadable,
    outside_table,
)
from qpv_geo.batch.writing import (
    ROLE_LABELS,
    XLSX_HEADERS,
    CsvWriter,
    kind_of,
    output_paths,
    summary_mismatch,
    summary_paths,
    write_result,
    write_summary_files,
)
from qpv_geo.eligibility.engine import BAD_REASONS, STATUS_LABELS, STATUSES, Engine
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.eligibility.wording import libelles
from qpv_geo.exceptions import (
    GeocoderNotConfigured,
    GeocoderUnavailable,
    InputFileError,
    QpvGeoError,
)
from qpv_geo.geocoding import AddressQuery, geocoder_from_settings, not_found
from qpv_geo.geocoding.coordinates import coordinates_result, demi_pas_textes, incertitude_arrondi_m
from qpv_geo.settings import Settings

if TYPE_CHECKING:
    from qpv_geo.geocoding import AddressQuery, Geocoder, GeocodeResult

#: ``geocodage_source`` of a row whose point comes from the file's own coordinates.
SOURCE_COORDONNEES = "coordonnees"
#: Rows judged at once by the engine, and rows per streamed chunk of a big file.
CHUNK_ROWS = 25_000
#: Distinct addresses per geocoding call (each call's results are cached by the geocoder).
GEOCODE_CHUNK = 1_000
#: Rows listed one by one in ``summary["a_revoir"]`` (all are in the output file).
A_REVOIR_MAX = 5_000
#: A streamed run keeps its rows in :attr:`BatchResult.frame` up to this many rows.
KEEP_FRAME_MAX = 50_000
#: Start of the reading problem of a row that a stray quote probably merged with the next.
SWALLOWED = "guillemet non fermé probable"
#: Rows of :attr:`BatchResult.head` (a preview that a streamed run keeps).
HEAD_ROWS = 100
#: Cells per streamed chunk, and cells a streamed run keeps in :attr:`BatchResult.frame`: a
#: file of 16 000 columns is cut into chunks of a few rows, so memory is bounded by cells,
#: not only by rows.
CHUNK_CELLS = 500_000
KEEP_CELLS_MAX = 2_000_000


@dataclass
class BatchResult:
    """Validated sites, their summary and the column mapping used.

    ``frame`` holds every row, unless a streamed run (:func:`validate_file` on a big CSV with
    an output) had more than :data:`KEEP_FRAME_MAX` rows: then ``frame`` is empty, ``streamed``
    is True and the rows are in ``paths[0]``.
    """

    frame: pd.DataFrame
    summary: dict[str, Any]
    mapping: ColumnMapping
    paths: list[Path] = field(default_factory=list)
    streamed: bool = False
    #: The first rows of the output (up to :data:`HEAD_ROWS`), kept even when ``frame`` is not.
    head: pd.DataFrame | None = None


class _Geocoding:
    """Geocodes distinct addresses in chunks, remembering the results of the whole run."""

    def __init__(self, geocoder: Geocoder | None, settings: Settings,
                 geocoder_name: str | None = None) -> None:
        self._geocoder = geocoder
        self._settings = settings
        self._name = geocoder_name
        self._error: str | None = None
        self._memo: dict[Any, GeocodeResult] = {}
        self.name: str | None = getattr(geocoder, "name", None)
        #: The service failed during the run (its French reason): the rows still to geocode
        #: are « non localisé » with it, the file is written, a re-run resumes.
        self.panne: str | None = None

    def geocoder(self) -> Geocoder | None:
        if self._geocoder is None and self._error is None:
            try:
                self._geocoder = geocoder_from_settings(self._settings, self._name)
                self.name = self._geocoder.name
            except GeocoderNotConfigured as exc:
                self._error = f"géocodeur indisponible : {exc}" + (
                    f" ({exc.hint})" if exc.hint else "")
        return self._geocoder

    def run(self, queries: list[AddressQuery],
            progress: Callable[[int], None] | None) -> list[GeocodeResult]:
        for q in queries:  # coordinates typed in the address column: no geocoder needed
            if q not in self._memo:
                typed = coordinates_result(q)
                if typed is not None:
                    self._memo[q] = typed
        if all(q in self._memo for q in queries):
            if progress:
                progress(len(queries))
            return [self._memo[q] for q in queries]
        geocoder = self.geocoder()
        if geocoder is None:
            out = [not_found(q, self._error or "géocodeur indisponible", source="")
                   for q in queries]
            if progress:
                progress(len(queries))
            return out
        todo = list(dict.fromkeys(q for q in queries if q not in self._memo))
        known = len(queries) - sum(1 for q in queries if q not in self._memo)
        if progress and known:
            progress(known)
        pending = Counter(q for q in queries if q not in self._memo)
        failed: dict[Any, GeocodeResult] = {}
        for i in range(0, len(todo), GEOCODE_CHUNK):
            check_cancelled()  # a web client that left stops the work here
            chunk = todo[i:i + GEOCODE_CHUNK]
            if self.panne is not None:  # down once in this run: not asked again
                failed.update((q, not_found(q, self.panne, source="")) for q in chunk)
                if progress:
                    progress(sum(pending[q] for q in chunk))
                continue
            try:
                results = geocoder.geocode_many(chunk)
            except GeocoderUnavailable as exc:
                if getattr(geocoder, "unavailable_hint", None):
                    # auto: no address file and the service unreachable → rows say how to fix
                    msg = f"géocodeur indisponible : {exc} ({exc.hint})"
                    results = [not_found(q, msg, source="") for q in chunk]
                else:  # the service failed mid-run: a service error, not a file error
                    self.panne = (f"service de géocodage en panne pendant le traitement ({exc}) "
                                  "— relancez la même commande pour reprendre : les adresses "
                                  "déjà géocodées sont gardées et ne sont pas redemandées")
                    failed.update((q, not_found(q, self.panne, source="")) for q in chunk)
                    if progress:
                        progress(sum(pending[q] for q in chunk))
                    continue
            if len(results) != len(chunk):
                raise RuntimeError(f"geocoder {geocoder.name} returned {len(results)} results "
                                   f"for {len(chunk)} queries")
            for q, r in zip(chunk, results, strict=True):
                self._memo[q] = r
            if progress:
                progress(sum(pending[q] for q in chunk))
        out = [self._memo[q] if q in self._memo else failed[q] for q in queries]
        if len(self._memo) > 500_000:
            self._memo.clear()
        return out


def validate_sites(frame: pd.DataFrame, mapping: ColumnMapping, *,
                   settings: Settings | None = None, engine: Engine | None = None,
                   geocoder: Geocoder | None = None,
                   progress: Callable[[int], None] | None = None,
                   table_ends: bool = True) -> BatchResult:
    """Geocode and judge every row of ``frame`` (as returned by :func:`read_sites`).

    Rows with coordinates (lat/lon, else Lambert-93 x/y) are judged on them; the others are
    geocoded from their address, postcode and commune. Coordinates win over an address (the
    row's ``motifs`` says so), unless they are unusable: then the address is geocoded.

    Parameters
    ----------
    frame
        Sites, cells as text. Its index named ``ligne`` gives the line numbers (otherwise
        line = position + 2).
    mapping
        Column roles (:func:`detect_columns`).
    settings, engine, geocoder
        Default: from the environment (:func:`~qpv_geo.eligibility.factory.engine_from_settings`,
        :func:`~qpv_geo.geocoding.geocoder_from_settings`, created only if a row needs it).
    progress
        Called with the number of rows just finished (an increment).
    table_ends
        ``frame`` holds the end of the file: notes under the table are found there (a part
        of a bigger file passes False).

    Returns
    -------
    BatchResult
        Same rows in the same order, every input column kept, plus :data:`OUTPUT_COLUMNS`.
    """
    settings = settings or Settings.from_env()
    if engine is None:
        engine = engine_from_settings(settings)
    state = _Geocoding(geocoder, settings)
    duplicates = Duplicates()
    starts = range(0, max(len(frame), 1), CHUNK_ROWS)
    parts = [_validate_chunk(frame.iloc[i:i + CHUNK_ROWS], mapping, engine, state, progress,
                             duplicates=duplicates,
                             table_ends=table_ends and i == starts[-1])
             for i in starts]
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    summary = _Summary(engine, mapping, [str(c) for c in frame.columns
                                         if c not in (EXTRA_COLUMN, PROBLEM_COLUMN)])
    summary.add(out)
    skipped = frame.attrs.get("lignes_titre_ignorees")
    line = (frame.attrs.get("lecture") or {}).get("ligne_entete", 1)
    result = BatchResult(frame=out, summary=summary.result(geocodeur=state.name,
                                                           titre_ignore=skipped,
                                                           header_line=line),
                         mapping=mapping)
    if state.panne is not None:
        result.summary["geocodage_interrompu"] = state.panne
    result.summary.update(frame.attrs.get("lecture") or {})
    return result


def _output_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Input columns, renamed only when they collide with an output column."""
    renames = {c: f"{c} (source)" for c in frame.columns if c in OUTPUT_COLUMNS}
    out = frame.rename(columns=renames) if renames else frame.copy()
    return out.reset_index(drop=True)


def _validate_chunk(frame: pd.DataFrame, mapping: ColumnMapping, engine: Engine,
                    geocoding: _Geocoding, progress: Callable[[int], None] | None, *,
                    duplicates: Duplicates | None = None, table_ends: bool = True
                    ) -> pd.DataFrame:
    n = len(frame)
    if frame.index.name == "ligne":
        ligne = frame.index.to_numpy(np.int64)
    else:
        ligne = np.arange(n, dtype=np.int64) + 2
    pre = np.full(n, "", dtype=object)  # reasons found before judging
    cells = CellTexts(frame)  # each column stripped once

    def add(mask: np.ndarray, text: Any) -> None:
        if not np.any(mask):
            return
        sep = np.where(pre[mask] == "", "", " ; ")
        pre[mask] = pre[mask] + sep + text

    if EXTRA_COLUMN in frame.columns:
        extra = cells(EXTRA_COLUMN)
        has_extra = extra != ""
        add(has_extra, "ligne irrégulière, " + extra[has_extra].astype(str))
    if PROBLEM_COLUMN in frame.columns:
        problem = cells(PROBLEM_COLUMN)
        add(problem != "", problem[problem != ""].astype(str))

    # A total or a note under the table is not a site: neither geocoded nor judged.
    outside = outside_table(frame, mapping, table_ends=table_ends, cells=cells)
    off = outside != ""
    if duplicates is not None:
        dup = duplicates.flag(frame, mapping, ligne, off, cells)
        add(dup != "", dup[dup != ""])

    # Coordinates given in the file.
    kind = np.zeros(n, dtype=np.int8)  # 0 none, 1 lon/lat, 2 Lambert-93 x/y
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    for role_a, role_b, label, code in (("lon", "lat", ("longitude", "latitude"), 1),
                                        ("x", "y", ("x", "y"), 2)):
        col_a, col_b = getattr(mapping, role_a), getattr(mapping, role_b)
        if not (col_a and col_b):
            continue
        va, bad_a = parse_numbers(frame[col_a])
        vb, bad_b = parse_numbers(frame[col_b])
        free = kind == 0
        for bad, col, name in ((bad_a, col_a, label[0]), (bad_b, col_b, label[1])):
            m = bad & free
            if m.any():
                add(m, f"{name} illisible (colonne « {col} ») : « "
                    + cells(col)[m].astype(str) + " »")
        both = free & ~np.isnan(va) & ~np.isnan(vb)
        one = free & (np.isnan(va) != np.isnan(vb))
        add(one, f"{label[0]} ou {label[1]} manquante (colonnes « {col_a} » / « {col_b} »)")
        kind[both] = code
        a[both], b[both] = va[both], vb[both]

    # What the engine would say of those coordinates: unusable ones give way to an address.
    reason = np.zeros(n, dtype=np.int8)
    ll = kind == 1
    xy = kind == 2
    if ll.any():
        reason[ll] = engine.check_lonlat_zones(a[ll], b[ll])
    if xy.any():
        reason[xy] = Engine.check_xy(a[xy], b[xy])

    kind[off] = 0
    adresse = cells(mapping.adresse)
    cp = cells(mapping.code_postal)
    commune = cells(mapping.commune)
    has_address = ((adresse != "") | (cp != "") | (commune != "")) & ~off
    use_coords = (kind > 0) & ((reason == 0) | ~has_address)
    geocode_rows = np.flatnonzero(~use_coords & has_address)
    add(use_coords & has_address, "coordonnées du fichier utilisées ; l'adresse n'est pas "
        "géocodée")
    fallback = (kind > 0) & ~use_coords
    if fallback.any():
        why = np.array([BAD_REASONS.get(int(r), "coordonnées inutilisables")
                        for r in reason[fallback]], dtype=object)
        add(fallback, "coordonnées du fichier inutilisables (" + why + ") : adresse géocodée "
            "à la place")
    add((kind == 0) & ~has_address & (pre == ""), "ni adresse ni coordonnées sur cette ligne")

    # Geocoding.
    geocodes: list[GeocodeResult | None] = [None] * n
    if len(geocode_rows):
        queries = []
        for i in geocode_rows:
            if adresse[i]:
                queries.append(AddressQuery(adresse[i], postcode=cp[i] or None,
                                            city=commune[i] or None))
            else:  # postcode and/or commune only: the geocoder answers at the commune
                queries.append(AddressQuery(" ".join(p for p in (cp[i], commune[i]) if p)))
        results = geocoding.run(queries, progress)
        for i, r in zip(geocode_rows, results, strict=True):
            geocodes[i] = r

    # Judge: lon/lat rows (file or geocoder) in one call, Lambert-93 rows in another.
    lon = np.where(use_coords & (kind == 1), a, np.nan)
    lat = np.where(use_coords & (kind == 1), b, np.nan)
    for i in geocode_rows:
        g = geocodes[i]
        if g is not None and g.found:
            lon[i], lat[i] = g.lon, g.lat
    xy_rows = np.flatnonzero(use_coords & (kind == 2))
    # Position uncertainty stated per row (a column), for the rows' own coordinates.
    incert = np.full(n, np.nan)
    if mapping.precision_point:
        incert, bad_p = parse_numbers(frame[mapping.precision_point])
        bad_p |= incert < 0
        add(bad_p, f"précision du point illisible (colonne « {mapping.precision_point} ») : "
            "valeur par défaut utilisée")
        incert = np.where(bad_p, np.nan, incert)
    # the file's own degrees are no finer than their decimals as written (« 45,40 » keeps two)
    arrondi = np.full(n, np.nan)
    ll_rows = use_coords & (kind == 1)
    if ll_rows.any():
        arrondi[ll_rows] = incertitude_arrondi_m(
            lat[ll_rows], demi_pas_textes(cells(mapping.lat)[ll_rows]),
            demi_pas_textes(cells(mapping.lon)[ll_rows]))
    verdict = engine.judge_lonlat(lon, lat, geocodes=geocodes, precision_point_m=incert,
                                  arrondi_m=arrondi)
    # Texts stay where the verdict table stored them (Arrow): no round trip through Python
    # strings for the columns passed on as they are.
    vcols = {c: verdict[c].array if not len(xy_rows) and isinstance(verdict[c].dtype,
                                                                    pd.StringDtype)
             else verdict[c].to_numpy() for c in verdict.columns}
    if len(xy_rows):
        v_xy = engine.judge_xy(a[xy_rows], b[xy_rows], precision_point_m=incert[xy_rows])
        for c, arr in vcols.items():
            if c not in v_xy.columns:
                continue
            new = v_xy[c].to_numpy()
            arr = arr.astype(object) if arr.dtype != new.dtype else arr.copy()
            arr[xy_rows] = new
            vcols[c] = arr
    if progress:
        progress(n - len(geocode_rows))

    out = _output_frame(frame)
    out.insert(0, "ligne", ligne)
    gl = np.full(n, None, dtype=object)
    gs = np.full(n, np.nan)
    gp = np.full(n, None, dtype=object)
    gsrc = np.full(n, None, dtype=object)
    gsrc[use_coords & (kind == 1)] = SOURCE_COORDONNEES
    gsrc[use_coords & (kind == 2)] = SOURCE_COORDONNEES + " (Lambert-93)"
    for i in geocode_rows:
        g = geocodes[i]
        if g is not None:
            d = g.to_dict()
            gl[i], gp[i], gsrc[i] = d["geocodage_label"], d["geocodage_precision"], \
                d["geocodage_source"] or None
            gs[i] = d["geocodage_score"] if g.found else np.nan
    motifs = vcols["motifs"]
    has_pre = pre != ""
    if has_pre.any() or off.any() or not isinstance(motifs, pd.arrays.ArrowStringArray) \
            or motifs.isna().any():
        motifs = motifs.astype(object)
        if pd.api.types.infer_dtype(motifs, skipna=False) not in ("string", "empty"):
            motifs = motifs.astype(str).astype(object)  # (not through fixed-width numpy text)
        both = has_pre & (motifs != "")
        motifs = np.where(both, pre + " ; " + motifs, np.where(has_pre, pre, motifs))
    # else: the verdict table's texts as they are, in Arrow (written from there)
    status = vcols["status"].astype(object)
    if PROBLEM_COLUMN in frame.columns:
        # A row a stray quote swallowed another into holds cells of two sites (often the
        # next one's coordinates): its place is in doubt, never a firm verdict.
        swallowed = np.char.find(problem.astype(str), SWALLOWED) >= 0
        firm = swallowed & np.isin(status, ["eligible", "qva", "hors_qpv", "hors_territoire"])
        if firm.any():
            status = status.copy()
            status[firm] = "a_verifier"
    if off.any():
        status = status.copy()
        status[off] = HORS_TABLEAU
        motifs = np.asarray(motifs, dtype=object).copy()
        motifs[off] = [f"{HORS_TABLEAU_MOTIF} ({w})" for w in outside[off]]
    labels = {**libelles(engine).statuts, HORS_TABLEAU: HORS_TABLEAU_LABEL}
    added: dict[str, Any] = {
        "geocodage_label": gl, "geocodage_score": gs, "geocodage_precision": gp,
        "geocodage_source": gsrc,
        "lon": vcols["lon"].astype(np.float64), "lat": vcols["lat"].astype(np.float64),
        "status": status,
        "statut_libelle": _labels_of(status, labels),
    }
    for col in VERDICT_OUTPUT_COLUMNS[2:]:
        added[col] = motifs if col == "motifs" else vcols[col]
    if mapping.priorite:
        codes, uniques = pd.factorize(frame[mapping.priorite].to_numpy(object),
                                      use_na_sentinel=False)
        normal = np.empty(len(uniques), dtype=object)  # one per distinct cell
        normal[:] = [normalize_priorite("" if pd.isna(v) else v) for v in uniques]
        added["priorite"] = normal[codes]
    if mapping.porteur:
        added["porteur"] = cells(mapping.porteur)
    if mapping.action:
        added["action"] = cells(mapping.action)
    # Text columns stay Python strings (object): pandas 3 would convert them to Arrow
    # strings here, and the writer back to Python strings (issue 24: a sixth of the CPU).
    extra = pd.DataFrame({k: pd.Series(v, dtype=object, copy=False)
                          if isinstance(v, np.ndarray) and v.dtype == object else v
                          for k, v in added.items()})
    return pd.concat([out, extra], axis=1)


def _labels_of(status: np.ndarray, labels: dict[str, str]) -> np.ndarray:
    """The label of each status, looked up once per distinct status."""
    codes, uniq = pd.factorize(np.asarray(status, dtype=object), use_na_sentinel=False)
    return np.array([labels[s] for s in uniq], dtype=object)[codes] if len(uniq) \
        else np.empty(0, dtype=object)


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------


class _Summary:
    """Counts accumulated chunk by chunk (a streamed run never holds every row)."""

    def __init__(self, engine: Engine, mapping: ColumnMapping,
                 columns: list[str] | None = None) -> None:
        self.engine = engine
        self.mapping = mapping
        self.mapping_columns = columns
        self.total = 0
        self.par_statut: Counter[str] = Counter()
        self.qpv: dict[str, dict[str, Any]] = {}
        self.prio: Counter[str] = Counter()
        self.prio_ok: Counter[str] = Counter()
        self.a_revoir: list[dict[str, Any]] = []
        self.a_revoir_total = 0
        self.demo = False
        self.lignes_vides = 0
        self.hors_tableau: list[int] = []
        self.doublons = 0
        self.file_reasons = 0

    def add(self, out: pd.DataFrame) -> None:
        off = (out["status"] == HORS_TABLEAU).to_numpy(bool)
        if off.any():  # a total, a note: in the output, counted nowhere
            self.hors_tableau += [int(v) for v in out.loc[off, "ligne"]]
            out = out[~off]
        self.doublons += int(is_duplicate(out).sum())
        self.file_reasons += file_reason_rows(out)
        self.total += len(out)
        status = out["status"]
        self.par_statut.update(status.value_counts().to_dict())
        has_code = out["code_qp"].notna().to_numpy(bool)
        coded = out.loc[has_code, ["code_qp", "lib_qp", "status"]]
        for (code, lib, st), k in coded.groupby(["code_qp", "lib_qp", "status"],
                                                dropna=False).size().items():
            entry = self.qpv.setdefault(str(code), {"lib_qp": lib, "sites": 0, "eligibles": 0})
            entry["sites"] += int(k)
            if st == "eligible":
                entry["eligibles"] += int(k)
        if "priorite" in out.columns:
            self.prio.update(out["priorite"].value_counts().to_dict())
            self.prio_ok.update(out.loc[status == "eligible", "priorite"].value_counts()
                                .to_dict())
        to_review = status.isin(["a_verifier", "non_geocode"]).to_numpy(bool)
        self.a_revoir_total += int(to_review.sum())
        room = A_REVOIR_MAX - len(self.a_revoir)
        if room > 0 and to_review.any():
            head = out.iloc[np.flatnonzero(to_review)[:room]]
            keep = [c for c in ("ligne", "status", "porteur", "action", "motifs")
                    if c in head.columns]
            adresse = self._address(head)
            for rec, adr in zip(head[keep].to_dict("records"), adresse, strict=True):
                entry = {k: (int(v) if k == "ligne" else v) for k, v in rec.items()}
                entry["adresse"] = adr
                self.a_revoir.append(entry)
        if not self.demo:
            sources = pd.unique(out["geocodage_source"].to_numpy(object))
            self.demo = any("demo" in str(v) for v in sources if v is not None)

    def _address(self, rows: pd.DataFrame) -> list[str]:
        """The address of each row as the file gives it (address, postcode, commune), else
        its coordinates as typed."""

        def column(role: str) -> np.ndarray | None:
            col = getattr(self.mapping, role)
            if not col:
                return None
            name = col if col in rows.columns else f"{col} (source)"
            return column_text(rows, name) if name in rows.columns else None

        out = [""] * len(rows)
        for a, b, fmt in (("lat", "lon", "{} ; {}"), ("x", "y", "x {} ; y {}")):
            va, vb = column(a), column(b)
            if va is not None and vb is not None:
                out = [fmt.format(u, v) if (u or v) else "" for u, v in zip(va, vb, strict=True)]
                break
        parts = [p for p in (column(r) for r in ("adresse", "code_postal", "commune"))
                 if p is not None]
        if parts:
            text = [" ".join(p for p in cells if p) for cells in zip(*parts, strict=True)]
            out = [t or o for t, o in zip(text, out, strict=True)]
        return out

    def result(self, *, geocodeur: str | None = None, lignes_lues: int | None = None,
               titre_ignore: list[int] | None = None, header_line: int | None = None
               ) -> dict[str, Any]:
        ref = self.engine.reference
        notes = list(ref.notes)
        if self.demo:
            notes.insert(0, "DÉMONSTRATION — adresses fictives (fichier d'adresses de "
                         "démonstration), aucune valeur officielle")
        prio = {k: {"label": label_of(k), "sites": int(v), "eligibles": int(self.prio_ok[k])}
                for k, v in sorted(self.prio.items(), key=lambda kv: (-kv[1], kv[0]))}
        summary: dict[str, Any] = {
            "total": int(self.total),
            "lignes_lues": int(self.total + len(self.hors_tableau) if lignes_lues is None
                               else lignes_lues),
            "par_statut": {s: int(self.par_statut.get(s, 0)) for s in STATUSES},
            "par_qpv": {k: self.qpv[k] for k in sorted(self.qpv)},
            "par_priorite": prio,
            "a_revoir": self.a_revoir,
            "a_revoir_total": int(self.a_revoir_total),
            "notes": notes,
            "donnees": ref.version,
            "colonnes": self.mapping.as_dict(),
            "geocodeur": geocodeur,
            "marge_m": self.engine.marge_m,
            "lignes_vides_ignorees": int(self.lignes_vides),
        }
        if titre_ignore:
            summary["lignes_titre_ignorees"] = [int(v) for v in titre_ignore]
        if self.hors_tableau:
            summary["lignes_hors_tableau"] = list(self.hors_tableau)
        if self.doublons:
            summary["doublons_total"] = int(self.doublons)
        mal_lu = mostly_unreadable(self.file_reasons, self.total, header_line=header_line,
                                   columns=len(self.mapping_columns) if self.mapping_columns
                                   else None)
        if mal_lu:
            summary["fichier_mal_lu"] = mal_lu
        mots = libelles(ref)
        if not mots.par_defaut:  # another territory: its name and status labels
            summary["territoire"] = mots.nom
            summary["statuts_libelles"] = dict(mots.statuts)
        return summary


# ---------------------------------------------------------------------------------------------
# One call: file in, file out
# ---------------------------------------------------------------------------------------------


def _rich_progress(total: int | None) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class _Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{nombre(speed)} lignes/s" if speed else "— lignes/s")

    return Progress(TextColumn("[bold]Validation"), BarColumn(), MofNCompleteColumn(),
                    _Rate(), TimeElapsedColumn(), TextColumn("reste"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)


def validate_file(path: str | Path, output: str | Path | None = None, *,
                  settings: Settings | None = None, geocoder_name: str | None = None,
                  sheet: str | int | None = None,
                  mapping_overrides: dict[str, str | None] | None = None,
                  sep: str = ";", encoding: str | None = None, input_sep: str | None = None,
                  progress: bool = True,
                  geocoder: Geocoder | None = None,
                  on_mapping: Callable[[ColumnMapping, list[str]], None] | None = None,
                  header_line: int | None = None) -> BatchResult:
    """Read, validate and (if ``output`` is given) write a sites file, chunk by chunk.

    A CSV input written to a CSV output is streamed in chunks of :data:`CHUNK_ROWS` rows:
    memory stays bounded whatever the file's length. ``progress`` shows a rich progress bar
    (rows/s, remaining time) on stderr. ``on_mapping`` is called with the mapping and the
    columns once the header is read (the CLI prints it). ``sep`` is the output separator;
    ``input_sep`` and ``encoding`` force how the input CSV is read (detected otherwise);
    ``header_line`` names the line of the column names (guessed otherwise, see
    :func:`~qpv_geo.batch.read_sites`).
    """
    settings = settings or Settings.from_env()
    if output is not None:  # before any work: never over the input, never in a missing folder
        kind_of(Path(output))
        for p in output_paths(Path(output)):
            check_output_path(p, [path])

    engine = engine_from_settings(settings)
    source = open_source(path, sheet=sheet, encoding=encoding, sep=input_sep, settings=settings,
                   header_line=header_line)
    outs = AtomicOutputs()
    try:
        return _validate_source(source, output, outs, engine=engine, settings=settings,
                                geocoder=geocoder, geocoder_name=geocoder_name,
                                mapping_overrides=mapping_overrides, sep=sep,
                                progress=progress, on_mapping=on_mapping)
    except OSError as exc:
        outs.discard()
        if isinstance(exc, QpvGeoError):  # a service's failure is not a writing error
            raise
        if output is None or (exc.filename is not None
                              and Path(str(exc.filename)).resolve() == Path(path).resolve()):
            raise
        raise os_error_message(exc, output) from exc
    except BaseException:
        outs.discard()
        raise


def _with_last(items: Any) -> Any:
    """``(item, is_last)`` for each item (one read ahead)."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def _validate_source(source: Any, output: str | Path | None, outs: AtomicOutputs, *,
                     engine: Engine, settings: Settings, geocoder: Geocoder | None,
                     geocoder_name: str | None,
                     mapping_overrides: dict[str, str | None] | None, sep: str,
                     progress: bool,
                     on_mapping: Callable[[ColumnMapping, list[str]], None] | None,
                     ) -> BatchResult:
    """The body of :func:`validate_file`: every output goes through *outs* (renamed into
    place together at the end, removed on any failure)."""
    kind = kind_of(Path(output)) if output is not None else None
    stream = kind == "csv"
    state = _Geocoding(geocoder, settings, geocoder_name)
    writer: CsvWriter | None = None
    kept: list[pd.DataFrame] = []
    kept_rows = 0
    head: pd.DataFrame | None = None
    summary: _Summary | None = None
    mapping: ColumnMapping | None = None
    bar = _rich_progress(source.estimated_rows) if progress else None
    task = None
    try:
        if stream and output is not None:
            writer = CsvWriter(outs.path(output), sep)
        if bar is not None:
            bar.start()
            task = bar.add_task("validation", total=source.estimated_rows)

        def advance(k: int) -> None:
            if bar is not None and task is not None:
                bar.advance(task, k)

        duplicates = Duplicates()
        width = max(1, len(source.columns))
        chunk_rows = max(1, min(CHUNK_ROWS, CHUNK_CELLS // width))
        for (chunk, empty), last in _with_last(source_frames(source, chunk_rows)):
            if mapping is None:
                mapping = mapping_for(source, chunk, mapping_overrides)
                summary = _Summary(engine, mapping, list(source.columns))
                if on_mapping is not None:
                    on_mapping(mapping, source.columns)
            assert summary is not None
            summary.lignes_vides += empty
            if len(chunk) == 0:
                continue
            out = _validate_chunk(chunk, mapping, engine, state, advance,
                                  duplicates=duplicates, table_ends=last)
            summary.add(out)
            if head is None:
                head = out.head(HEAD_ROWS).copy()
            elif len(head) < HEAD_ROWS:
                head = pd.concat([head, out.head(HEAD_ROWS - len(head))], ignore_index=True)
            if writer is not None:
                writer.write(out)
            kept_rows += len(out)
            if not stream or (kept_rows <= KEEP_FRAME_MAX
                              and kept_rows * width <= KEEP_CELLS_MAX):
                kept.append(out)
            else:
                kept = [out.iloc[0:0]]  # too many to hold: the rows are in the output only
        if bar is not None and task is not None:
            bar.update(task, total=summary.total if summary else 0,
                       completed=summary.total if summary else 0)
    finally:
        if bar is not None:
            bar.stop()
        if source.closer:
            source.closer()
        if writer is not None:
            writer.close()
    assert mapping is not None and summary is not None
    result_summary = summary.result(geocodeur=state.name, titre_ignore=source.skipped_above,
                                    header_line=source.header_line)
    result_summary.update(source.lecture())
    if state.panne is not None:
        result_summary["geocodage_interrompu"] = state.panne
    streamed = stream and (kept_rows > KEEP_FRAME_MAX or kept_rows * width > KEEP_CELLS_MAX)
    if streamed:
        frame = kept[0].iloc[0:0]
    else:
        frame = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    result = BatchResult(frame=frame, summary=result_summary, mapping=mapping, streamed=streamed,
                         head=head if head is not None else frame.head(HEAD_ROWS))
    if output is None:
        return result
    out_path = Path(output)
    if writer is not None:
        result.summary["lignes_ecrites"] = writer.rows
        result.paths = [out_path, *write_summary_files(result.summary, out_path, sep, outs)]
        outs.commit()
    else:
        result.paths = write_result(result, out_path, sep=sep)
    return result


# ---------------------------------------------------------------------------------------------
# Reading a batch output back
# ---------------------------------------------------------------------------------------------


def read_validated(path: str | Path) -> pd.DataFrame:
    """Read a batch output (CSV, XLSX, GeoJSON, GPKG) back, numbers as numbers.

    The XLSX's French headers and status labels are mapped back to the machine names and
    codes; the per-run columns that outputs do not repeat on every row (``donnees``,
    ``statut_libelle``, ``porteur``, ``action``, ``priorite``) are restored from the summary
    (the companion ``-synthese.json`` or the XLSX « Données » sheet) and the input's columns.
    Raises :class:`InputFileError` if the file is not a batch output (it lacks ``status``,
    ``code_qp`` or ``ligne``): validate it first with :func:`validate_file`. A companion
    summary that describes another file (another run's, a run killed between its renames, or
    the file changed since) is not used; ``frame.attrs["avertissements_lecture"]`` says so.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.",
                             hint="Vérifiez le chemin (glisser le fichier dans le terminal aide).")
    kind = kind_of(path) if path.suffix.lower() not in {".txt", ".tsv", ".tab"} else "csv"
    if kind in ("geojson", "gpkg"):
        import geopandas as gpd

        try:
            with utf8_path(path) as readable:  # GDAL takes UTF-8 names only
                gdf = gpd.read_file(readable)
        except Exception as exc:  # pyogrio raises several error types for unreadable files
            raise InputFileError(f"Impossible de lire {path.name} ({exc}).",
                                 hint="Formats acceptés : GeoJSON, GeoPackage.") from exc
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    else:
        sheets = _sheet_names(path) if kind == "xlsx" else []
        sheet = next((s for s in ("Sites", "sites") if s in sheets), None)
        source = open_source(path, sheet=sheet, header_line=1)  # a batch output: its own header
        try:
            frame = pd.concat([f for f, _ in source_frames(source, sys.maxsize)])
        finally:
            if source.closer:
                source.closer()
        frame = frame.reset_index(drop=True)
    frame = _machine_names(frame)
    missing = [c for c in VALIDATED_MARKERS if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path.name} n'est pas une sortie de qpv-geo batch (colonnes absentes : "
            f"{', '.join(missing)}).",
            hint=f"Validez-le d'abord : qpv-geo batch {path.name} -o resultat.csv")
    for col in NUMERIC_COLUMNS:
        if col in frame.columns and not pd.api.types.is_numeric_dtype(frame[col].dtype):
            frame[col] = parse_numbers(frame[col])[0]
    if "ligne" in frame.columns:
        frame["ligne"] = pd.to_numeric(frame["ligne"], errors="coerce").astype("Int64")
    for col in frame.columns:
        if col not in NUMERIC_COLUMNS and pd.api.types.is_object_dtype(frame[col].dtype):
            frame[col] = frame[col].where(frame[col] != "", None)
    warnings: list[str] = []
    _restore_run_columns(frame, _run_facts(path, kind, warnings))
    frame.attrs["avertissements_lecture"] = warnings
    return frame


def _machine_names(frame: pd.DataFrame) -> pd.DataFrame:
    """An XLSX « Sites » sheet with machine names and status codes (no-op otherwise)."""
    if "status" in frame.columns or XLSX_HEADERS["status"] not in frame.columns:
        return frame
    back = {v: k for k, v in XLSX_HEADERS.items()}
    renames = {c: back[c] for c in frame.columns if c in back}
    # an input column named like an output (« lat », « lon »…) was written under its own name
    # beside the output's French header: it becomes « lat (source) » again, as when validated
    taken = set(renames.values())
    renames.update({c: f"{c} (source)" for c in frame.columns if c in taken and c not in back})
    frame = frame.rename(columns=renames)
    codes = {**{v: k for k, v in STATUS_LABELS.items()}, HORS_TABLEAU_LABEL: HORS_TABLEAU}
    frame["status"] = frame["status"].map(lambda v: codes.get(v, _status_code(v)))
    return frame


def _status_code(label: Any) -> Any:
    """The status code of another territory's label (« Éligible — dans un QPV de Métropole
    de Lyon », « Dans un QPV 2024 »…); the value itself when it is none."""
    text = str(label or "")
    if text.startswith(("Éligible — dans un QPV de ", "Dans un QPV 2024")):
        return "eligible"
    if text.startswith("Non éligible — hors territoire") or text.startswith(
            "Non éligible — hors du territoire"):
        return "hors_territoire"
    return label


def _run_facts(path: Path, kind: str, warnings: list[str]) -> dict[str, Any]:
    """``donnees`` and ``colonnes`` of the run that wrote *path* (companion summary, or the
    XLSX « Données » sheet); empty when neither is there. A companion summary that names
    another file (another run's, or *path* changed since) is not used: *warnings* says so."""
    import json

    companion = summary_paths(path)[1]
    if companion.exists():
        try:
            facts = json.loads(companion.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            facts = None
        if isinstance(facts, dict):
            mismatch = summary_mismatch(facts, path)
            if mismatch is None:
                return facts
            warnings.append(mismatch)
    if kind != "xlsx":
        return {}
    from openpyxl import load_workbook

    facts: dict[str, Any] = {}
    if not xlsx_is_safe(path):
        return facts
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # not ours: nothing to restore
        return facts
    try:
        if "Données" not in wb.sheetnames:
            return facts
        colonnes: dict[str, str | None] = {}
        roles = {v: k for k, v in ROLE_LABELS.items()}
        in_roles = False
        for row in wb["Données"].iter_rows(max_col=2, values_only=True):
            label, value = (*row, None, None)[:2]
            if label == "Données de référence" and value:
                facts["donnees"] = str(value)
            elif label == "Note" and value:
                facts.setdefault("notes", []).append(str(value))
            elif label == "Colonnes du fichier reconnues":
                in_roles = True
            elif in_roles and label in roles:
                colonnes[roles[label]] = None if value in (None, "(aucune)") else str(value)
            elif in_roles and label not in ("Rôle",):
                in_roles = False
        if colonnes:
            facts["colonnes"] = colonnes
    finally:
        wb.close()
    return facts


def _restore_run_columns(frame: pd.DataFrame, facts: dict[str, Any]) -> None:
    """Add back, in place, the columns outputs do not repeat on every row."""
    n = len(frame)
    if "statut_libelle" not in frame.columns:
        words = facts.get("statuts_libelles")  # another territory's run: its words
        words = words if isinstance(words, dict) else STATUS_LABELS
        frame["statut_libelle"] = frame["status"].map(lambda v: words.get(v, v))
    if "donnees" not in frame.columns and facts.get("donnees"):
        notes = [str(v) for v in facts.get("notes") or []]
        donnees = str(facts["donnees"]) + (" — " + " ; ".join(notes) if notes else "")
        frame["donnees"] = np.full(n, donnees, dtype=object)
    inputs = [c for c in frame.columns if c not in OUTPUT_COLUMNS and c != "statut_libelle"]
    roles = facts.get("colonnes") if isinstance(facts.get("colonnes"), dict) else None
    if roles is None:
        roles = detect_columns([str(c) for c in inputs]).as_dict()
    for role in ("porteur", "action", "priorite"):
        col = roles.get(role)
        if role in frame.columns or not col:
            continue
        name = col if col in frame.columns else f"{col} (source)"
        if name not in frame.columns:
            continue
        text = column_text(frame, name)
        if role == "priorite":
            uniques = {v: normalize_priorite(v) for v in pd.unique(text)}
            frame[role] = [uniques[v] for v in text]
        else:
            frame[role] = np.where(text == "", None, text)


def _sheet_names(path: Path) -> list[str]:
    from openpyxl import load_workbook

    if not xlsx_is_safe(path):
        return []  # open_source says why
    try:
        wb = load_workbook(path, read_only=True)
    except Exception:  # unreadable: open_source says why
        return []
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()
