"""National files on Dask: ``qpv-geo batch FICHIER --moteur dask``.

A CSV or Parquet file (or a folder of them, partitioned) too large for one machine's memory is
cut into blocks — byte ranges of a CSV cut at line ends (at least two per worker, ``blocksize``
at most), or the row groups of a Parquet file — and each block is read once, on a worker, and
goes through the SAME code as the single-process path (:func:`qpv_geo.batch.validate_sites`:
the same engine, built once per worker process and never pickled with a task; the same column
mapping, the same reasons; geocoding per block with its cache) and is written as one part of a
partitioned output (Parquet, or CSV through the single-process CSV writer). Every input row
comes out once, with its line number (``ligne``), the one the single-process reader gives: the
CSV record's number in the file, header included, counting the blank lines (empty, spaces or
separators only) and the titles above the header that both paths skip — the header is found by
the same rule, and each block keeps its blank rows until its rows are numbered, then drops
them; for Parquet, position + 2. A block's first number comes from a count of the line ends
before it (C speed, no parsing; Parquet: the row counts in the files' metadata); when a quoted
cell holds a line break, the blocks after it are numbered again from the records parsed.
Memory per worker is bounded by the block size.

The output folder is written under a temporary name and renamed when every part is complete:
an interrupted run leaves no half-written result.

Cluster: a local one (``LocalCluster``, ``workers`` processes of one thread) by default, or an
existing scheduler given by address (``--scheduler tcp://HOST:8786``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpv_geo._files import check_output_path
from qpv_geo.batch import validate_sites
from qpv_geo.batch.columns import PROBLEM_COLUMN, check_mapping, detect_columns
from qpv_geo.batch.reading_csv import sniff_sep as sniff
from qpv_geo.batch.reading_csv import swallows_a_row
from qpv_geo.batch.source import head_rows, header_index, named_lines
from qpv_geo.batch.writing import CsvWriter, machine_frame
from qpv_geo.eligibility.factory import engine_from_settings
from qpv_geo.exceptions import DaskError, InputFileError, QpvGeoError
from qpv_geo.settings import Settings

#: Files are cut into two blocks per worker at least, but no smaller than this (bytes) unless
#: the block size asked for is smaller.
_MIN_SPLIT = 1 << 20

#: Output formats of the partitioned result (the output name's suffix).
FORMATS = (".parquet", ".csv")


@dataclass
class NationalResult:
    """What a distributed run did: rows, parts, counts by status, duration."""

    lignes_lues: int
    lignes_ecrites: int
    parties: int
    statuts: dict[str, int]
    duree_s: float
    sortie: Path
    synthese: dict[str, Any] = field(default_factory=dict)
    #: Seconds from the first block submitted to the last written (no cluster start, no
    #: engine build): what the number of workers divides.
    calcul_s: float = 0.0
    #: Peak resident memory (MB) of each worker process that judged a block.
    memoire_travailleurs_mo: list[float] = field(default_factory=list)


def _imports() -> Any:
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise DaskError("Le moteur dask n'est pas installé.",
                        hint="Installez l'extra national : pip install 'qpv-geo[national]'.") \
            from exc
    return dask, distributed


def _input_kind(path: Path) -> str:
    if path.is_dir():
        if any(path.glob("*.parquet")):
            return "parquet"
        if any(path.glob("*.csv")):
            return "csv"
        raise InputFileError(f"Dossier {path} : aucun fichier .parquet ni .csv.",
                             hint="Donnez un fichier CSV ou Parquet, ou un dossier de parties.")
    if not path.exists():
        raise InputFileError(f"Fichier introuvable : {path}.", hint="Vérifiez le chemin.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise InputFileError(f"{path.name} : le moteur dask lit les fichiers CSV ou Parquet.",
                         hint="Convertissez le fichier, ou utilisez le moteur par défaut "
                         "(sans --moteur dask) pour XLSX, GeoJSON et GeoPackage.")


def _csv_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.csv"))


def _sniff_sep(path: Path) -> str:
    """The separator, sniffed on the first 50 lines as the single-process reader does."""

    with open(_csv_files(path)[0], encoding="utf-8-sig", errors="replace") as fh:
        head = [fh.readline(1 << 16) for _ in range(50)]  # bounded reads
    return sniff([line for line in head if line])


def _records_before_header(path: Path, sep: str) -> int:
    """CSV records above the header as the single-process reader finds it (blank rows, titles:
    it skips them): the header's index for the reader of each file's first block."""

    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            head = head_rows(enumerate(csv.reader(fh, delimiter=sep), start=1))
    except csv.Error as exc:
        raise InputFileError(f"{path.name} : en-tête illisible ({exc}).",
                             hint="Vérifiez les guillemets des premières lignes.") from exc
    return header_index(head) or 0


@dataclass(frozen=True)
class _Block:
    """One partition of the input, read by one task: a byte range of a CSV file cut at line
    ends (``rows``: its physical lines, the header's and those above it excluded; a quoted
    cell holding a line break makes the parsed records fewer), or row groups of a Parquet
    file (``rows``: from the file's metadata). ``offset``: records of the blocks before it,
    as first assumed."""

    path: str
    start: int
    length: int
    head: bool  # the file's first block (CSV: holds the header)
    rows: int
    offset: int = 0
    groups: tuple[int, ...] = ()


def _csv_blocks(files: list[Path], blocksize: int, skip: int) -> list[_Block]:
    """The byte ranges of each CSV file, cut at the first line end after each ``blocksize``,
    with their line counts: one C-speed count of line ends (no parsing); the rows themselves
    are parsed once, by the tasks."""
    blocks: list[_Block] = []
    for f in files:
        pos = 0
        with open(f, "rb") as fh:
            while True:
                data = fh.read(blocksize)
                if not data:
                    break
                if not data.endswith(b"\n"):
                    data += fh.readline()
                lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
                head = pos == 0
                blocks.append(_Block(str(f), pos, len(data), head,
                                     max(0, lines - (skip + 1 if head else 0))))
                pos += len(data)
        if pos == 0:
            blocks.append(_Block(str(f), 0, 0, True, 0))
    return blocks


def _parquet_blocks(files: list[Path]) -> list[_Block]:
    """One block per row group, its rows from the file's metadata (no data read)."""
    import pyarrow.parquet as pq

    blocks = []
    for f in files:
        meta = pq.read_metadata(f)
        for g in range(meta.num_row_groups):
            blocks.append(_Block(str(f), 0, 0, g == 0, meta.row_group(g).num_rows, groups=(g,)))
        if meta.num_row_groups == 0:
            blocks.append(_Block(str(f), 0, 0, True, 0))
    return blocks


def _size(blocksize: str | int) -> int:
    if isinstance(blocksize, int):
        return blocksize
    from dask.utils import parse_bytes

    return int(parse_bytes(blocksize))


def _read(path: Path, kind: str, *, blocksize: int, sep: str | None,
          header_line: int | None = None, workers: int = 1,
          ) -> tuple[list[_Block], list[str], int, str | None]:
    """The blocks of the input, its columns, the number of the first data line (CSV: header's
    record + 1, blank records above it counted; Parquet: 2) and the CSV separator. Blocks are
    at most ``blocksize`` and at least two per worker (partitions sized to the cores)."""
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
            blocks = _parquet_blocks(files)
            columns = [str(c) for c in pq.read_schema(files[0]).names
                       if not str(c).startswith("__index_level_")]
            return _numbered(blocks), columns, 2, None
        sep = sep or _sniff_sep(path)
        files = _csv_files(path)
        above = {f.name: (header_line - 1 if header_line else _records_before_header(f, sep))
                 for f in files}
        if len(set(above.values())) > 1:
            raise InputFileError(
                f"Dossier {path.name} : l'en-tête n'est pas à la même ligne dans tous les "
                "fichiers (lignes au-dessus : " + ", ".join(f"{n} : {k}" for n, k in
                                                             above.items()) + ").",
                hint="Retirez les lignes vides ou de titre au début des fichiers.")
        skip = next(iter(above.values()), 0)
        columns = [str(c) for c in pd.read_csv(
            files[0], sep=sep, dtype=object, keep_default_na=False, na_filter=False, nrows=0,
            encoding="utf-8-sig", skip_blank_lines=False, header=skip).columns]
        total = sum(f.stat().st_size for f in files)
        size = max(1, min(blocksize, max(_MIN_SPLIT, -(-total // (2 * max(1, workers))))))
        return _numbered(_csv_blocks(files, size, skip)), columns, skip + 2, sep
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path.name} : lecture impossible ({type(exc).__name__}).",
                             hint="Vérifiez que le fichier est un CSV (UTF-8) ou un Parquet "
                             "valide.") from exc


def _numbered(blocks: list[_Block], rows: list[int] | None = None) -> list[_Block]:
    """The blocks with their offsets: the records before them (``rows``: those parsed)."""
    counts = rows if rows is not None else [b.rows for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist() \
        if blocks else []
    return [_Block(b.path, b.start, b.length, b.head, b.rows, off, b.groups)
            for b, off in zip(blocks, offsets, strict=True)]


def _load(block: _Block, kind: str, columns: list[str], sep: str | None,
          skip: int) -> tuple[pd.DataFrame, bool]:
    """The block's rows, as the frame the single-process readers give (cells as text): read
    once, CSV by pandas' C parser into Python strings (no Arrow string inference); and
    whether it may hold a cell with a NUL byte or a line break (CSV: a NUL in its bytes, or
    fewer records than lines)."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.ParquetFile(block.path).read_row_groups(list(block.groups))
        frame = table.to_pandas()
        frame = frame[[c for c in frame.columns if str(c) in columns]]
        return _as_text(frame), True
    with open(block.path, "rb") as fh:
        fh.seek(block.start)
        data = fh.read(block.length)
    import io

    options: dict[str, Any] = dict(sep=sep, dtype=object, keep_default_na=False,
                                   na_filter=False, skip_blank_lines=False)
    if not data:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}), False
    if block.head:
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", header=skip, **options)
    else:
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8", header=None, names=columns,
                            index_col=False, **options)
    return _as_text(frame), b"\x00" in data or len(frame) != block.rows


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as text, as the single-process readers give them (empty for missing)."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out[str(c)] = col.astype(object).where(col.notna(), "").astype(str).to_numpy(object)
        else:
            out[str(c)] = np.where(col.isna(), "", col.astype(str)).astype(object)
    return pd.DataFrame(out, dtype=object)


def _nonblank(text: pd.DataFrame) -> np.ndarray:
    """Rows with a cell that is not only spaces (the single-process reader skips the others)."""
    keep = np.zeros(len(text), dtype=bool)
    for c in text.columns:
        keep |= text[c].str.strip().ne("").to_numpy(bool)
    return keep


def _flag_swallowed(text: pd.DataFrame, sep: str) -> list[int]:
    """Rows (line numbers) of a partition whose cell holds a line break and what looks like
    a row of the file — a stray quote swallowed it (the single-process reader's rule,
    :func:`~qpv_geo.batch.reading_csv.swallows_a_row`); NUL bytes are removed. The reasons
    go in :data:`~qpv_geo.batch.columns.PROBLEM_COLUMN`."""

    if not len(text.columns):
        return []
    problems = np.full(len(text), "", dtype=object)
    for c in list(text.columns):  # NUL bytes: removed and said, as the single-process reader
        nul = text[c].str.contains("\x00", regex=False).to_numpy(bool)
        if nul.any():
            text[c] = text[c].str.replace("\x00", "", regex=False)
            problems[nul] = "caractères NUL supprimés"
    multi = np.zeros(len(text), dtype=bool)
    for c in text.columns:
        multi |= text[c].str.contains("\n", regex=False).to_numpy(bool)
    if not multi.any():
        if (problems != "").any():
            text[PROBLEM_COLUMN] = problems
        return []
    width = len(text.columns)
    flagged = []
    for i in np.flatnonzero(multi):
        cells = [str(v) for v in text.iloc[i].tolist()]
        if swallows_a_row(cells, sep, width - 1, width):
            problems[i] = (("caractères NUL supprimés ; " if problems[i] else "")
                           + "guillemet non fermé probable : une cellule de cette ligne contient "
                           "plusieurs lignes du fichier, qui ne sont pas lues comme des lignes "
                           "séparées ; corrigez le guillemet dans le fichier et relancez")
            flagged.append(int(text.index[i]))
    if (problems != "").any():
        text[PROBLEM_COLUMN] = problems
    return flagged


def _part(block: _Block, kind: str, columns: list[str], skip: int, index: int, folder: str,
          fmt: str, mapping: Any, settings: Settings, sep: str, first: int = 2,
          table_ends: bool = True, input_sep: str = ";",
          ) -> tuple[int, dict[str, int], float, int, list[int], int, int]:
    """One block on a worker: read once, its rows numbered from ``first + block.offset``
    (blank rows counted, then dropped for CSV), judged by validate_sites, written as one part.
    Returns rows written, counts by status, peak memory (MB), rows read (not blank), the
    lines a stray quote probably swallowed a row into, the records parsed (blank ones
    included: they check the offsets assumed from the line count) and the worker's pid."""

    engine = engine_from_settings(settings)  # built once per worker process, then cached
    csv_input = kind == "csv"
    text, odd = _load(block, kind, columns, input_sep if csv_input else None, skip)
    records = len(text)
    text.index = pd.Index(np.arange(block.offset + first, block.offset + first + len(text),
                                    dtype=np.int64), name="ligne")
    if csv_input:
        text = text[_nonblank(text)]
    swallowed = _flag_swallowed(text, input_sep) if csv_input and odd else []
    result = validate_sites(text, mapping, settings=settings, engine=engine,
                            table_ends=table_ends)
    out = result.frame
    target = Path(folder) / f"partie-{index:05d}{fmt}"
    if fmt == ".csv":
        writer = CsvWriter(target, sep)
        try:
            writer.write(out)
        finally:
            writer.close()
    else:
        _parquet_frame(machine_frame(out)).to_parquet(target, index=False)
    counts = {str(k): int(v) for k, v in out["status"].value_counts().items()}
    return len(out), counts, _peak_mb(), len(text), swallowed, records, os.getpid()


def _warm(settings: Settings) -> tuple[str, list[str]]:
    """Build (and cache) the engine in a worker before its first block; the data's version
    and notes for the summary. A bad territory fails here, before any block is read."""
    engine = engine_from_settings(settings)
    return engine.reference.version, list(engine.reference.notes)


def _peak_mb() -> float:
    """Peak resident memory (MB) of this process: ``VmHWM`` (Linux), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parquet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as text (None kept), so that every part has the same schema."""
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float)
                                                                and np.isnan(v)) else str(v))
    return out


def _client(scheduler: str | None, workers: int, processes: bool) -> tuple[Any, Any]:
    _, distributed = _imports()
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskError(f"Ordonnanceur dask injoignable : {scheduler}.",
                            hint="Vérifiez l'adresse (ex. tcp://10.0.0.5:8786) et que "
                            "« dask scheduler » y tourne.") from exc
    # The scheduler's HTTP server (health routes; no dashboard without bokeh) on a free port:
    # with None it tries 8787 and warns, in English, when another cluster holds it.
    import logging

    # silence_logs: the workers' English log lines (a failed task) never reach the terminal;
    # the error comes back here and is said in French
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                       processes=processes, dashboard_address=":0",
                                       silence_logs=logging.CRITICAL)
    return distributed.Client(cluster), cluster


def validate_national(path: str | Path, output: str | Path, *, settings: Settings | None = None,
                      scheduler: str | None = None, workers: int = 2, processes: bool = True,
                      client: Any = None, mapping_overrides: dict[str, str | None] | None = None,
                      blocksize: str = "8MB", sep: str = ";", input_sep: str | None = None,
                      header_line: int | None = None) -> NationalResult:
    """Validate a CSV/Parquet file on Dask into a partitioned output folder (``.parquet`` or
    ``.csv`` suffix); see the module docstring."""

    _imports()
    settings = settings or Settings.from_env()
    src, out = Path(path), Path(output)
    fmt = out.suffix.lower()
    if fmt not in FORMATS:
        raise InputFileError(f"Sortie {out.name} : avec --moteur dask, la sortie est un dossier "
                             "de parties .parquet ou .csv.",
                             hint="Nommez-la par exemple resultat.parquet ou resultat.csv.")
    if out.exists():
        raise InputFileError(f"La sortie {out} existe déjà.",
                             hint="Choisissez un autre nom ou supprimez l'ancien résultat.")

    check_output_path(out, [src], create_folder=True)  # the one guard (a link loop…)
    if not out.parent.is_dir():
        raise InputFileError(f"Dossier de sortie introuvable : {out.parent}.",
                             hint="Créez-le ou choisissez un autre chemin.")
    kind = _input_kind(src)
    cores = len(client.scheduler_info()["workers"]) if client is not None else workers
    blocks, columns, first, sep_in = _read(src, kind, blocksize=_size(blocksize),
                                           sep=input_sep, header_line=header_line,
                                           workers=cores)
    mapping = detect_columns(columns, mapping_overrides)
    check_mapping(mapping, columns, src.name, mapping_overrides)
    started = time.perf_counter()
    own = client is None
    cluster = None
    if own:
        client, cluster = _client(scheduler, workers, processes)
    tmp = out.with_name(f".{out.name}.partiel-{os.getpid()}")
    try:
        tmp.mkdir()
        # The engine is built in each worker process (cached there), never pickled: the
        # warm-up says the data's version, and a bad territory fails before any block is read.
        # Every worker builds it before the first block (in parallel).
        warm = [client.submit(_warm, settings, pure=False, workers=[w],
                              allow_other_workers=False)
                for w in client.scheduler_info()["workers"]] or \
            [client.submit(_warm, settings, pure=False)]
        version, notes = client.gather(warm)[0]
        in_sep = sep_in or ";"
        skip = first - 2 if kind == "csv" else 0

        def submit(todo: list[int]) -> list[Any]:
            return [client.submit(_part, blocks[i], kind, columns, skip, i, str(tmp), fmt,
                                  mapping, settings, sep, first, i == len(blocks) - 1,
                                  in_sep, pure=False) for i in todo]

        computing = time.perf_counter()
        try:
            done = client.gather(submit(list(range(len(blocks)))))
            records = [d[5] for d in done]
            # A quoted cell holding a line break makes a block's records fewer than its
            # lines: the blocks after it are numbered again from the records parsed.
            fixed = _numbered(blocks, records)
            again = [i for i, (b0, b1) in enumerate(zip(blocks, fixed, strict=True))
                     if b0.offset != b1.offset]
            if again:
                blocks = fixed
                for i, d in zip(again, client.gather(submit(again)), strict=True):
                    done[i] = d
        except pd.errors.ParserError as exc:
            raise _parser_error(src, exc, first if len(blocks) == 1 else None) from None
        calcul = time.perf_counter() - computing
        written = sum(d[0] for d in done)
        statuts: Counter[str] = Counter()
        for d in done:
            statuts.update(d[1])
        lues = sum(d[3] for d in done)
        peaks: dict[int, float] = {}
        for d in done:
            peaks[d[6]] = max(peaks.get(d[6], 0.0), d[2])
        swallowed = sorted(line for d in done for line in d[4])
        if written != lues:
            raise QpvGeoError(f"{lues} lignes lues mais {written} écrites : résultat abandonné.",
                              hint="Relancez ; si cela se reproduit, signalez-le.")
        synthese = {
            "fichier": src.name, "lignes_lues": lues, "lignes_ecrites": written,
            "parties": len(done), "statuts": dict(sorted(statuts.items())),
            "territoire": settings.territoire, "donnees": version,
            "notes": notes, "moteur": "dask",
            "memoire_max_travailleur_mo": round(max((d[2] for d in done), default=0.0), 1),
        }
        if swallowed:
            synthese["avertissements_lecture"] = [
                f"Guillemet non fermé probable aux lignes {named_lines(swallowed)} : une "
                "cellule y contient plusieurs lignes du fichier, qui n'ont pas été lues comme "
                "des lignes séparées. Corrigez le guillemet et relancez."]
        ignorees = sum(records) - lues + (first - 2 if kind == "csv" else 0)
        if ignorees:  # blank rows, and those above the header, as the single-process summary
            synthese["lignes_ignorees_total"] = ignorees
        (tmp / "_synthese.json").write_text(json.dumps(synthese, ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return NationalResult(lignes_lues=lues, lignes_ecrites=written, parties=len(done),
                          statuts=dict(statuts), duree_s=time.perf_counter() - started,
                          sortie=out, synthese=synthese,
                          calcul_s=calcul, memoire_travailleurs_mo=sorted(peaks.values()))


def _parser_error(path: Path, exc: Exception, first: int | None) -> InputFileError:
    """pandas' tokenizer error on a CSV, in French (a quote never closed runs to the end);
    ``first``: the first data line when the file is one partition (its row numbers are then
    the file's), else None (they are the partition's: not said)."""
    import re

    text = str(exc)
    row = re.search(r"starting at row (\d+)", text)
    where = f" ligne {int(row.group(1)) + first - 1}" if row and first is not None else ""
    if "EOF inside string" in text:
        return InputFileError(
            f"{path.name} : guillemet non fermé probable{where} — la cellule qui s'y ouvre "
            "court jusqu'à la fin du fichier.",
            hint="Corrigez le guillemet et relancez (sans --moteur dask, la ligne est lue et "
            "signalée dans le résultat).")
    return InputFileError(f"{path.name} : CSV illisible{where} (guillemets ou séparateurs).",
                          hint="Vérifiez les guillemets de cette ligne dans un éditeur de "
                          "texte, ou validez sans --moteur dask pour voir les lignes "
                          "signalées.")


def read_parts(output: str | Path) -> pd.DataFrame:
    """A partitioned output read back in line order (tests, small results)."""
    out = Path(output)
    if out.suffix.lower() == ".parquet":
        frames = [pd.read_parquet(p) for p in sorted(out.glob("partie-*.parquet"))]
    else:
        frames = [pd.read_csv(p, sep=None, engine="python", dtype=str, keep_default_na=False,
                              encoding="utf-8-sig")
                  for p in sorted(out.glob("partie-*.csv"))]
    return pd.concat(frames, ignore_index=True)
