"""Text columns as codes: each distinct text built once, the rows as integer codes into them.

A verdict table of a million rows holds a few hundred distinct statuses, QPV names, margin
explanations: :class:`Coded` keeps the distinct texts and one code per row, and makes the
column (the same values and dtype as a column of Python strings) by one vectorised lookup —
in Arrow when pandas stores its strings there, without a Python string per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd


@cache
def _inferred_text_dtype() -> Any:
    """The dtype pandas gives a column of Python strings (``str`` on Arrow in pandas 3)."""
    return pd.Series(np.array(["x", None], dtype=object)).dtype


@dataclass(frozen=True)
class Coded:
    """A column of ``texts[codes]`` (code -1: missing, None)."""

    texts: np.ndarray  # object: the distinct texts (None allowed)
    codes: np.ndarray  # integer, one per row, -1 for missing

    def __len__(self) -> int:
        return len(self.codes)

    def values(self) -> np.ndarray:
        """The column as an object array of Python strings (None where missing)."""
        out = np.append(np.asarray(self.texts, dtype=object), None)[self.codes]
        return np.asarray(out, dtype=object)

    def column(self) -> Any:
        """The column as pandas would store :meth:`values` (same values, same dtype), built
        by one lookup of the codes in the distinct texts."""
        dtype = _inferred_text_dtype()
        texts = np.asarray(self.texts, dtype=object)
        used = self.codes >= 0
        if (not used.any() or getattr(dtype, "storage", None) != "pyarrow"
                or not all(t is None or type(t) is str for t in texts)):
            return self.values()
        import pyarrow as pa  # optional heavy dependency: pandas' own string storage

        table = pa.array(texts, type=pa.large_string())
        picked = table.take(pa.array(self.codes, mask=~used))
        if picked.null_count == len(picked):  # pandas infers « object » for all-None
            return self.values()
        return pd.array(picked, dtype=dtype)


def coded(values: Any, codes: np.ndarray) -> Coded:
    """:class:`Coded` of the texts ``values`` (indexable by code) for ``codes``."""
    return Coded(np.asarray(values, dtype=object), np.asarray(codes, dtype=np.intp))


def factorize_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct rows of several equal-length columns (NaN and None are values
    like any other), and the index of the first row of each distinct one."""
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    for col in columns:
        codes, uniq = pd.factorize(np.asarray(col), use_na_sentinel=False)
        key, _ = pd.factorize(key * max(len(uniq), 1) + codes)
    first = np.empty(int(key.max()) + 1 if n else 0, dtype=np.intp)
    first[key[::-1]] = np.arange(n - 1, -1, -1)
    return key.astype(np.intp), first


__all__ = ["Coded", "coded", "factorize_rows"]
