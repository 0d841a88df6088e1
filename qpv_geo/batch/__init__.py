"""Batch validation of submitted sites: a spreadsheet in, every row out with its verdict.

The data flow is: read a sites file (:func:`read_sites`: CSV as people export it, XLSX,
GeoJSON/GeoPackage of points) → detect the columns (:class:`ColumnMapping`) → geocode the rows
without coordinates, in chunks (the geocoder's disk cache makes a re-run resume) → judge every
point with the eligibility engine, chunk by chunk → write the same rows, in the same order,
with the verdict columns (:func:`write_result`: CSV, XLSX with a « synthèse » sheet, GeoJSON,
GeoPackage) and a summary next to it.

Nothing is lost: a row that cannot be read, geocoded or judged is still in the output with its
reason (status ``non_geocode`` and ``motifs``); whole-file problems raise
:class:`~qpv_geo.exceptions.InputFileError` saying which row / which column / what to do.

Nothing from the input is executed or evaluated: XLSX files are opened with
``data_only=True`` (cached values, never formulas), and cells starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return are prefixed with ``'`` in CSV and XLSX exports
(formula injection), except plain numbers such as ``-4,5``.

Output columns (public API, :data:`OUTPUT_COLUMNS`): ``ligne`` (row number as a person counts
in the spreadsheet: the header is line 1, the first data row line 2), every input column
(renamed ``<name> (source)`` only when it collides with an output column), then the geocoding
columns, ``lon``/``lat``, the verdict columns, and ``priorite`` (key of
:data:`~qpv_geo.batch.priorities.PRIORITES`), ``porteur``, ``action`` when those columns were found.

The package is split along the data flow: :mod:`~qpv_geo.batch.columns` (column roles,
numbers as typed), :mod:`~qpv_geo.batch.reading` (opening files, header, chunks),
:mod:`~qpv_geo.batch.validation` (geocoding, judging, summary, :func:`validate_file`,
:func:`read_validated`) and :mod:`~qpv_geo.batch.writing` (CSV, XLSX, GeoJSON, GeoPackage and
summary files). The public names are re-exported here: import them from :mod:`qpv_geo.batch`.
The tuning constants (:data:`CHUNK_ROWS`, :data:`GEOCODE_CHUNK`, :data:`KEEP_FRAME_MAX`…) are
read from :mod:`qpv_geo.batch.validation`: patch them there.
"""

from __future__ import annotations

from qpv_geo.batch.columns import (
    EXTRA_COLUMN,
    GEOCODING_COLUMNS,
    OUTPUT_COLUMNS,
    ROLES,
    VERDICT_OUTPUT_COLUMNS,
    ColumnMapping,
    detect_columns,
    fold_name,
    parse_numbers,
)
from qpv_geo.batch.columns import NUMERIC_COLUMNS as NUMERIC_COLUMNS
from qpv_geo.batch.columns import ROLE_OUTPUT_COLUMNS as ROLE_OUTPUT_COLUMNS
from qpv_geo.batch.columns import VALIDATED_MARKERS as VALIDATED_MARKERS
from qpv_geo.batch.reading import read_sites
from qpv_geo.batch.validation import A_REVOIR_MAX as A_REVOIR_MAX
from qpv_geo.batch.validation import CHUNK_ROWS as CHUNK_ROWS
from qpv_geo.batch.validation import GEOCODE_CHUNK as GEOCODE_CHUNK
from qpv_geo.batch.validation import KEEP_FRAME_MAX as KEEP_FRAME_MAX
from qpv_geo.batch.validation import SOURCE_COORDONNEES as SOURCE_COORDONNEES
from qpv_geo.batch.validation import BatchResult, read_validated, validate_file, validate_sites
from qpv_geo.batch.writing import XLSX_CELL_MAX as XLSX_CELL_MAX
from qpv_geo.batch.writing import XLSX_ROWS_MAX as XLSX_ROWS_MAX
from qpv_geo.batch.writing import neutralize_cells, write_result
from qpv_geo.eligibility.engine import STATUS_LABELS as STATUS_LABELS
from qpv_geo.eligibility.engine import STATUSES as STATUSES

__all__ = [
    "EXTRA_COLUMN",
    "GEOCODING_COLUMNS",
    "OUTPUT_COLUMNS",
    "ROLES",
    "VERDICT_OUTPUT_COLUMNS",
    "BatchResult",
    "ColumnMapping",
    "detect_columns",
    "fold_name",
    "neutralize_cells",
    "parse_numbers",
    "read_sites",
    "read_validated",
    "validate_file",
    "validate_sites",
    "write_result",
]
